//! Compact unwind tables from an ELF file's call frame information (`.eh_frame`, and
//! `.debug_frame` where present): for each code address, how to find the caller's stack
//! pointer (the CFA), frame pointer and return address. This is what a frame-pointer walk
//! cannot know in code built without frame pointers.
//!
//! Only the rule forms compilers emit for ordinary code are kept: CFA = SP or FP plus an
//! offset, registers saved at CFA plus an offset. Anything else (DWARF expressions, as in
//! PLT stubs) becomes [`Cfa::Unsupported`] and the unwinder falls back to frame pointers
//! there.
use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, EhFrame, EndianSlice, LittleEndian, Register,
    RegisterRule, UnwindContext, UnwindSection,
};
use object::{Object, ObjectSection};

/// How to find the canonical frame address (the caller's stack pointer) at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cfa {
    /// SP + offset.
    Sp(i32),
    /// FP + offset.
    Fp(i32),
    /// A rule we do not evaluate (an expression).
    Unsupported,
    /// No unwind information covers this address.
    None,
}

/// Where a register of the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Saved {
    /// Not saved: the caller's value is the current one.
    Unchanged,
    /// Saved at CFA + offset.
    AtCfa(i32),
    /// The register has no value: the outermost frame (e.g. `_start`).
    Undefined,
    /// A rule we do not evaluate.
    Unsupported,
}

/// The rules from `pc` up to the next row's `pc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnwindRow {
    pub pc: u64,
    pub cfa: Cfa,
    pub fp: Saved,
    pub ra: Saved,
}

impl UnwindRow {
    fn same_rules(&self, other: &Self) -> bool {
        (self.cfa, self.fp, self.ra) == (other.cfa, other.fp, other.ra)
    }
}

/// The architectures whose register numbering we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// DWARF numbers of (stack pointer, frame pointer, return address).
    fn registers(self) -> (Register, Register, Register) {
        match self {
            Self::X86_64 => (Register(7), Register(6), Register(16)),
            Self::Aarch64 => (Register(31), Register(29), Register(30)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("not an ELF file we can read: {0}")]
    Elf(#[from] object::Error),
    #[error("unsupported architecture {0:?}")]
    Arch(object::Architecture),
    #[error("bad call frame information: {0}")]
    Cfi(#[from] gimli::Error),
}

/// The unwind rows of one ELF file, sorted by address, each different from the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwindTable {
    pub arch: Arch,
    pub rows: Vec<UnwindRow>,
}

impl UnwindTable {
    /// Builds the table of an ELF file's image.
    pub fn from_elf(data: &[u8]) -> Result<Self, TableError> {
        let file = object::File::parse(data)?;
        let arch = match file.architecture() {
            object::Architecture::X86_64 => Arch::X86_64,
            object::Architecture::Aarch64 => Arch::Aarch64,
            other => return Err(TableError::Arch(other)),
        };
        let mut bases = BaseAddresses::default();
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let mut rows = Vec::new();
        if let Some(section) = file.section_by_name(".eh_frame") {
            let bases = bases.clone().set_eh_frame(section.address());
            let data = section.uncompressed_data()?;
            let mut eh = EhFrame::new(&data, LittleEndian);
            eh.set_address_size(8);
            collect_rows(&eh, &bases, arch, &mut rows)?;
        }
        if let Some(section) = file.section_by_name(".debug_frame") {
            // Go and some toolchains compress their DWARF sections.
            let data = section.uncompressed_data()?;
            let mut df = DebugFrame::new(&data, LittleEndian);
            df.set_address_size(8);
            collect_rows(&df, &bases, arch, &mut rows)?;
        }
        Ok(Self {
            arch,
            rows: compact(rows),
        })
    }

    /// The row covering a file-relative virtual address, if any information covers it.
    pub fn lookup(&self, vaddr: u64) -> Option<&UnwindRow> {
        let i = self.rows.partition_point(|r| r.pc <= vaddr);
        let row = self.rows.get(i.checked_sub(1)?)?;
        (row.cfa != Cfa::None).then_some(row)
    }
}

fn offset32(v: i64) -> Option<i32> {
    i32::try_from(v).ok()
}

fn saved<T: gimli::ReaderOffset>(rule: Option<RegisterRule<T>>, default: Saved) -> Saved {
    match rule {
        None => default,
        Some(RegisterRule::SameValue) => Saved::Unchanged,
        Some(RegisterRule::Undefined) => Saved::Undefined,
        Some(RegisterRule::Offset(o)) => offset32(o).map_or(Saved::Unsupported, Saved::AtCfa),
        Some(_) => Saved::Unsupported,
    }
}

/// Appends the rows of every FDE in a section, with a no-information row where an FDE ends.
fn collect_rows<'d, S>(
    section: &S,
    bases: &BaseAddresses,
    arch: Arch,
    rows: &mut Vec<UnwindRow>,
) -> Result<(), TableError>
where
    S: UnwindSection<EndianSlice<'d, LittleEndian>>,
{
    let (sp, fp, ra) = arch.registers();
    // x86-64 keeps the return address at CFA-8 unless a rule says otherwise; on arm64 it is
    // in the link register until saved.
    let ra_default = match arch {
        Arch::X86_64 => Saved::AtCfa(-8),
        Arch::Aarch64 => Saved::Unchanged,
    };
    let mut ctx = Box::new(UnwindContext::new());
    let mut entries = section.entries(bases);
    while let Some(entry) = entries.next()? {
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(S::cie_from_offset) else {
            // One broken FDE should not cost the whole file its table.
            continue;
        };
        let mut table = fde.rows(section, bases, &mut ctx)?;
        while let Some(row) = table.next_row()? {
            let cfa = match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset } => {
                    match (offset32(*offset), *register) {
                        (Some(o), r) if r == sp => Cfa::Sp(o),
                        (Some(o), r) if r == fp => Cfa::Fp(o),
                        _ => Cfa::Unsupported,
                    }
                }
                CfaRule::Expression(_) => Cfa::Unsupported,
            };
            rows.push(UnwindRow {
                pc: row.start_address(),
                cfa,
                fp: saved(row.register(fp), Saved::Unchanged),
                ra: saved(row.register(ra), ra_default),
            });
        }
        rows.push(UnwindRow {
            pc: fde.end_address(),
            cfa: Cfa::None,
            fp: Saved::Unsupported,
            ra: Saved::Unsupported,
        });
    }
    Ok(())
}

/// Sorts rows by address; where several start at one address the one with information wins
/// (an FDE starting where another ends), then drops rows that repeat their predecessor.
fn compact(mut rows: Vec<UnwindRow>) -> Vec<UnwindRow> {
    rows.sort_by_key(|r| (r.pc, r.cfa == Cfa::None));
    rows.dedup_by_key(|r| r.pc);
    let mut out: Vec<UnwindRow> = Vec::with_capacity(rows.len());
    for r in rows {
        if out.last().is_some_and(|prev| prev.same_rules(&r)) {
            continue;
        }
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pc: u64, cfa: Cfa) -> UnwindRow {
        UnwindRow {
            pc,
            cfa,
            fp: Saved::Unchanged,
            ra: Saved::AtCfa(-8),
        }
    }

    #[test]
    fn compaction_sorts_merges_and_prefers_information() {
        let rows = vec![
            row(0x20, Cfa::None),
            row(0x10, Cfa::Sp(16)),
            row(0x14, Cfa::Sp(16)),
            row(0x20, Cfa::Sp(8)),
            row(0x00, Cfa::Sp(8)),
        ];
        let c = compact(rows);
        assert_eq!(
            c,
            vec![
                row(0x00, Cfa::Sp(8)),
                row(0x10, Cfa::Sp(16)),
                row(0x20, Cfa::Sp(8))
            ]
        );
    }

    #[test]
    fn lookup_respects_gaps() {
        let t = UnwindTable {
            arch: Arch::X86_64,
            rows: vec![row(0x10, Cfa::Sp(8)), row(0x20, Cfa::None)],
        };
        assert_eq!(t.lookup(0x15).map(|r| r.cfa), Some(Cfa::Sp(8)));
        assert_eq!(t.lookup(0x25), None);
        assert_eq!(t.lookup(0x05), None);
    }

    #[test]
    fn libc_table_is_sorted_unique_and_covers_malloc() {
        let data = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let t = UnwindTable::from_elf(&data).unwrap();
        assert_eq!(t.arch, Arch::X86_64);
        assert!(t.rows.len() > 1000, "{} rows", t.rows.len());
        assert!(
            t.rows.windows(2).all(|w| w[0].pc < w[1].pc),
            "sorted, no duplicate pcs"
        );
        // malloc's first instruction: the CFA is SP+8 and the return address at CFA-8.
        let malloc = crate::allocator::defined_functions(std::path::Path::new(
            "/lib/x86_64-linux-gnu/libc.so.6",
        ))
        .into_iter()
        .find(|(n, _)| *n == "malloc")
        .unwrap()
        .1;
        let r = t.lookup(malloc).expect("malloc is covered");
        assert_eq!((r.cfa, r.ra), (Cfa::Sp(8), Saved::AtCfa(-8)));
    }
}
