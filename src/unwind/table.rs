//! Compact unwind tables from an ELF file's call frame information (`.eh_frame`, and
//! `.debug_frame` where present): for each code address, how to find the caller's stack
//! pointer (the CFA), frame pointer and return address. This is what a frame-pointer walk
//! cannot know in code built without frame pointers.
//!
//! Only the rule forms compilers emit for ordinary code are kept: CFA = SP or FP plus an
//! offset, registers saved at CFA plus an offset, and the one expression every linker writes
//! for PLT stubs. The FDEs of signal trampolines (their CIE has the `S` augmentation) become
//! [`Cfa::SigReturn`]: the unwinder restores the interrupted registers from the signal frame
//! the kernel saved, whatever expressions the FDE spells that out with. Anything else (other
//! DWARF expressions) becomes [`Cfa::Unsupported`] and the unwinder falls back to frame
//! pointers there.
use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, EhFrame, EndianSlice, FrameDescriptionEntry,
    LittleEndian, Register, RegisterRule, UnwindContext, UnwindSection,
};
use object::{CompressionFormat, Object, ObjectSection};
use std::borrow::Cow;
use std::io::Read;

/// How to find the canonical frame address (the caller's stack pointer) at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cfa {
    /// SP + offset.
    Sp(i32),
    /// FP + offset.
    Fp(i32),
    /// x86-64's lazy-binding PLT stubs: SP + 8, and 8 more from byte `threshold` of each
    /// 16-byte stub on (after its push). Every linker writes this one DWARF expression for
    /// them.
    Plt { threshold: u8 },
    /// A signal trampoline (`__restore_rt`, `__kernel_rt_sigreturn`): the stack pointer
    /// points at the `ucontext` the kernel saved, laid out as on `arch`.
    SigReturn(Arch),
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
    /// In the register a sample records beside IP, SP and FP ([`Arch::link_register`]),
    /// until it is saved: glibc's x86-64 `vfork` keeps its return address in rdi.
    LinkRegister,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this program runs on, and so the processes it profiles.
    #[cfg(target_arch = "aarch64")]
    pub const HOST: Arch = Arch::Aarch64;
    #[cfg(not(target_arch = "aarch64"))]
    pub const HOST: Arch = Arch::X86_64;

    /// The architecture of an ELF file, if we know its registers.
    pub fn of(file: &object::File) -> Result<Self, TableError> {
        match file.architecture() {
            object::Architecture::X86_64 => Ok(Self::X86_64),
            object::Architecture::Aarch64 => Ok(Self::Aarch64),
            other => Err(TableError::Arch(other)),
        }
    }

    /// The DWARF number of the register samples record as `lr`: arm64's link register,
    /// x86-64's rdi (where glibc's `vfork` keeps its return address over the system call).
    pub fn link_register(self) -> Register {
        match self {
            Self::X86_64 => Register(5),
            Self::Aarch64 => Register(30),
        }
    }

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
    #[error("a section compressed as {0:?}, which we do not read")]
    Compression(CompressionFormat),
    #[error("a compressed section that does not inflate: {0}")]
    Decompress(std::io::Error),
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
        let arch = Arch::of(&file)?;
        let mut bases = BaseAddresses::default();
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let mut rows = Vec::new();
        if let Some(section) = file.section_by_name(".eh_frame") {
            let bases = bases.clone().set_eh_frame(section.address());
            let data = section_data(&section)?;
            let mut eh = EhFrame::new(&data, LittleEndian);
            eh.set_address_size(8);
            collect_rows(&eh, &bases, arch, &mut rows)?;
        }
        if let Some(section) = file.section_by_name(".debug_frame") {
            // Go and some toolchains compress their DWARF sections.
            let data = section_data(&section)?;
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

/// The bytes of a section, decompressed where the file compresses it: zlib, as `-gz` and
/// Go's linker write it (SHF_COMPRESSED, or a `.zdebug_` section).
fn section_data<'d>(section: &object::Section<'d, '_>) -> Result<Cow<'d, [u8]>, TableError> {
    let compressed = section.compressed_data()?;
    match compressed.format {
        CompressionFormat::None => Ok(Cow::Borrowed(compressed.data)),
        CompressionFormat::Zlib => {
            let size = compressed.uncompressed_size;
            // The size is the file's word: allocate no more up front than is sane, and
            // inflate no more than it says.
            let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 << 20));
            flate2::read::ZlibDecoder::new(compressed.data)
                .take(size)
                .read_to_end(&mut out)
                .map_err(TableError::Decompress)?;
            if out.len() as u64 != size {
                return Err(TableError::Decompress(std::io::Error::other(format!(
                    "{} bytes inflated, {size} expected",
                    out.len()
                ))));
            }
            Ok(Cow::Owned(out))
        }
        other => Err(TableError::Compression(other)),
    }
}

fn offset32(v: i64) -> Option<i32> {
    i32::try_from(v).ok()
}

fn saved<T: gimli::ReaderOffset>(
    rule: Option<RegisterRule<T>>,
    default: Saved,
    link: Register,
) -> Saved {
    match rule {
        None => default,
        Some(RegisterRule::Register(r)) if r == link => Saved::LinkRegister,
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
        fde_rows(section, bases, arch, &fde, &mut ctx, rows)?;
        rows.push(UnwindRow {
            pc: fde.end_address(),
            cfa: Cfa::None,
            fp: Saved::Unsupported,
            ra: Saved::Unsupported,
        });
    }
    Ok(())
}

/// Appends the rows of one FDE, in address order.
pub(crate) fn fde_rows<'d, S>(
    section: &S,
    bases: &BaseAddresses,
    arch: Arch,
    fde: &FrameDescriptionEntry<EndianSlice<'d, LittleEndian>>,
    ctx: &mut UnwindContext<usize>,
    rows: &mut Vec<UnwindRow>,
) -> Result<(), gimli::Error>
where
    S: UnwindSection<EndianSlice<'d, LittleEndian>>,
{
    let (sp, fp, abi_ra) = arch.registers();
    // x86-64 keeps the return address at CFA-8 unless a rule says otherwise; on arm64 it is
    // in the link register until saved.
    let ra_default = match arch {
        Arch::X86_64 => Saved::AtCfa(-8),
        Arch::Aarch64 => Saved::Unchanged,
    };
    // The CIE says which column is the return address. Hand-written code may name another
    // than the ABI's (glibc's arm64 `__rawmemchr` moves it to x15 around a call): there it
    // is found only where saved on the stack or in the link register, since a sample holds
    // no other register.
    let ra = fde.cie().return_address_register();
    let return_address = |rule| {
        if ra == abi_ra {
            return saved(rule, ra_default, arch.link_register());
        }
        match saved(rule, Saved::Unsupported, arch.link_register()) {
            Saved::Unchanged => Saved::Unsupported,
            other => other,
        }
    };
    let mut table = fde.rows(section, bases, ctx)?;
    while let Some(row) = table.next_row()? {
        let cfa = match row.cfa() {
            _ if fde.is_signal_trampoline() => Cfa::SigReturn(arch),
            CfaRule::RegisterAndOffset { register, offset } => {
                match (offset32(*offset), *register) {
                    (Some(o), r) if r == sp => Cfa::Sp(o),
                    (Some(o), r) if r == fp => Cfa::Fp(o),
                    _ => Cfa::Unsupported,
                }
            }
            CfaRule::Expression(e) => e
                .get(section)
                .ok()
                .and_then(|e| plt_threshold(e.0.slice()))
                .map_or(Cfa::Unsupported, |threshold| Cfa::Plt { threshold }),
        };
        rows.push(UnwindRow {
            pc: row.start_address(),
            cfa,
            // Only a return address is looked for in the link register.
            fp: saved(row.register(fp), Saved::Unchanged, Register(u16::MAX)),
            ra: return_address(row.register(ra)),
        });
    }
    Ok(())
}

/// The threshold of the PLT stub expression `rsp + 8 + ((rip & 15) >= T) << 3`, if that is
/// what `expr` is: DW_OP_breg7 8, DW_OP_breg16 0, DW_OP_lit15, DW_OP_and, DW_OP_litT,
/// DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus.
fn plt_threshold(expr: &[u8]) -> Option<u8> {
    const LIT0: u8 = 0x30;
    match *expr {
        [0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, lit, 0x2a, 0x33, 0x24, 0x22]
            if (LIT0..LIT0 + 16).contains(&lit) =>
        {
            Some(lit - LIT0)
        }
        _ => None,
    }
}

/// Sorts rows by address; where several start at one address the one with information wins
/// (an FDE starting where another ends), then drops rows that repeat their predecessor.
pub(crate) fn compact(mut rows: Vec<UnwindRow>) -> Vec<UnwindRow> {
    // Rows come mostly in order already (FDEs by address), which an unstable sort is quick at.
    rows.sort_unstable_by_key(|r| (r.pc, r.cfa == Cfa::None));
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
    fn plt_stub_expression_is_recognised() {
        let lazy = [
            0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
        ];
        assert_eq!(plt_threshold(&lazy), Some(11));
        assert_eq!(plt_threshold(&lazy[..10]), None);
        // libc's .plt (at 0x26000 in Debian 12's) is covered by it, past the first stub.
        let data = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let file = object::File::parse(&*data).unwrap();
        let plt = file.section_by_name(".plt").unwrap().address();
        let t = UnwindTable::from_elf(&data).unwrap();
        assert_eq!(
            t.lookup(plt + 0x20).map(|r| r.cfa),
            Some(Cfa::Plt { threshold: 11 })
        );
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

    /// Tables of real ELF files checked against binutils' own reading of the same call frame
    /// information (`readelf --debug-dump=frames-interp`): C fixtures the tests build at -O2
    /// with and without frame pointers, with their CFI in `.eh_frame` or only in
    /// `.debug_frame` (compressed or not), for this machine and cross-built for arm64, and
    /// the system's libc and arm64 glibc.
    #[cfg(target_arch = "x86_64")]
    mod against_readelf {
        use super::*;
        use crate::unwind::fixtures::{
            aarch64_toolchain, FrameSection, Target, TempDir, AARCH64_LIBC,
        };
        use object::{ObjectSymbol, SymbolKind};
        use std::collections::{HashMap, HashSet};
        use std::path::Path;
        use std::process::Command;

        /// Rules by readelf's column name ("CFA", "rbp", "ra", ...), as it prints them.
        type Rules = HashMap<String, String>;

        /// One FDE as readelf prints it.
        #[derive(Debug)]
        struct RefFde {
            /// Its header line, for messages.
            header: String,
            /// The section it is in: ".eh_frame" or ".debug_frame".
            section: String,
            start: u64,
            end: u64,
            /// The rules from each address on; none when the FDE has no instructions.
            rows: Vec<(u64, Rules)>,
            /// Its CIE's rules: the state before the FDE's own instructions.
            cie: Rules,
            /// Its CIE's return address column (a DWARF register number); readelf heads
            /// that column `ra`.
            ra_column: u16,
            /// Its CIE has the `S` augmentation: a signal trampoline.
            signal: bool,
            /// What its instructions do to register columns, from readelf's raw dump.
            raw: RawFde,
        }

        /// The register columns an FDE's instructions set, from `readelf --debug-dump=frames`.
        /// Where the CIE does not name a column, the interpreted dump prints `u` both for a
        /// column still at its default rule and for one made undefined (DW_CFA_undefined,
        /// as `_start` and `clone`'s child do to arm64's return address); this tells which.
        #[derive(Debug, Default)]
        struct RawFde {
            /// The FDE's offset in its section, as readelf prints it.
            offset: String,
            /// From which address on DW_CFA_undefined makes each column undefined.
            undefined: Vec<(u64, String)>,
            /// The columns other instructions set.
            others: HashSet<String>,
        }

        /// The registers of an architecture as readelf names them, and our defaults.
        struct Names {
            sp: &'static str,
            fp: &'static str,
            /// A return address held in the link register.
            link: &'static str,
            /// The return address column of the architecture's ABI.
            ra_column: u16,
            /// Where the return address is while no rule says.
            ra_default: Saved,
        }

        impl Names {
            fn of(arch: Arch) -> Self {
                match arch {
                    Arch::X86_64 => Self {
                        sp: "rsp",
                        fp: "rbp",
                        link: "r5 (rdi)",
                        ra_column: 16,
                        ra_default: Saved::AtCfa(-8),
                    },
                    // The return address stays in x30 until saved: "same value".
                    Arch::Aarch64 => Self {
                        sp: "sp",
                        fp: "x29",
                        link: "r30 (x30)",
                        ra_column: 30,
                        ra_default: Saved::Unchanged,
                    },
                }
            }
        }

        fn hex(s: &str) -> u64 {
            u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s}"))
        }

        fn readelf(args: &[&str], path: &Path) -> String {
            let out = Command::new("readelf")
                .args(args)
                .arg(path)
                .output()
                .expect("readelf (binutils) runs");
            assert!(
                out.status.success(),
                "readelf: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }

        /// readelf's interpretation of every FDE of a file (`.eh_frame` and `.debug_frame`).
        fn readelf_fdes(path: &Path) -> Vec<RefFde> {
            let no_follow = "--debug-dump=no-follow-links";
            let interp = readelf(&["--debug-dump=frames-interp", no_follow], path);
            let raw = readelf(&["--debug-dump=frames", no_follow], path);
            with_raw(parse_readelf(&interp), parse_raw(&raw))
        }

        /// Gives each FDE of the interpreted dump its raw one (both list the same FDEs in
        /// the same order).
        fn with_raw(mut fdes: Vec<RefFde>, raw: Vec<RawFde>) -> Vec<RefFde> {
            assert_eq!(fdes.len(), raw.len(), "FDEs in readelf's two dumps");
            for (fde, raw) in fdes.iter_mut().zip(raw) {
                assert!(
                    fde.header.starts_with(&format!("{} ", raw.offset)),
                    "{} against {}",
                    fde.header,
                    raw.offset
                );
                fde.raw = raw;
            }
            fdes
        }

        /// Parses `readelf -wF` output: per section, CIEs and FDEs, each a header line and,
        /// when it has instructions, a table headed by `LOC CFA <registers...>`.
        fn parse_readelf(text: &str) -> Vec<RefFde> {
            enum Entry {
                Nothing,
                Cie((usize, String)),
                Fde,
            }
            // CIE rules and return address columns by (section number, offset).
            let mut cies: HashMap<(usize, String), (Rules, u16)> = HashMap::new();
            let mut signal_cies = HashSet::new();
            let mut fdes: Vec<RefFde> = Vec::new();
            let mut section = 0;
            let mut section_name = String::new();
            let mut entry = Entry::Nothing;
            let mut columns: Vec<String> = Vec::new();
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if line.starts_with("Contents of the ") {
                    section += 1;
                    section_name = words.get(3).unwrap_or(&"").to_string();
                    entry = Entry::Nothing;
                    continue;
                }
                if words.is_empty() {
                    columns.clear();
                    continue;
                }
                let field = |name: &str| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in {line}"))
                };
                match words.get(3) {
                    Some(&"CIE") => {
                        let key = (section, words[0].to_string());
                        // The augmentation string, quoted: "zRS".
                        if words
                            .get(4)
                            .is_some_and(|a| a.starts_with('"') && a.contains('S'))
                        {
                            signal_cies.insert(key.clone());
                        }
                        let ra = field("ra=").parse().unwrap();
                        cies.insert(key.clone(), (Rules::new(), ra));
                        entry = Entry::Cie(key);
                        continue;
                    }
                    Some(&"FDE") => {
                        let (start, end) = field("pc=").split_once("..").unwrap();
                        let cie_key = (section, field("cie=").to_string());
                        let (cie, ra_column) = cies
                            .get(&cie_key)
                            .unwrap_or_else(|| panic!("unknown CIE in {line}"))
                            .clone();
                        fdes.push(RefFde {
                            header: line.trim().to_string(),
                            section: section_name.clone(),
                            start: hex(start),
                            end: hex(end),
                            rows: Vec::new(),
                            cie,
                            ra_column,
                            signal: signal_cies.contains(&cie_key),
                            raw: RawFde::default(),
                        });
                        entry = Entry::Fde;
                        continue;
                    }
                    _ => {}
                }
                if words[0] == "LOC" {
                    columns = words[1..].iter().map(ToString::to_string).collect();
                    continue;
                }
                if columns.is_empty() {
                    continue;
                }
                // A register saved in another register prints as two words: "r9 (r9)".
                let mut rules: Vec<String> = Vec::new();
                for w in &words[1..] {
                    match rules.last_mut() {
                        Some(last) if w.starts_with('(') => {
                            last.push(' ');
                            last.push_str(w);
                        }
                        _ => rules.push((*w).to_string()),
                    }
                }
                assert_eq!(rules.len(), columns.len(), "row {line:?} of {columns:?}");
                let rules: Rules = columns.iter().cloned().zip(rules).collect();
                match &entry {
                    Entry::Cie(key) => {
                        cies.get_mut(key).unwrap().0 = rules;
                    }
                    Entry::Fde => fdes.last_mut().unwrap().rows.push((hex(words[0]), rules)),
                    Entry::Nothing => panic!("a row outside any entry: {line}"),
                }
            }
            fdes
        }

        /// Parses `readelf -wf` output: for each FDE, the columns its instructions set, and
        /// where DW_CFA_undefined does (an `advance_loc` line ends with the new address).
        fn parse_raw(text: &str) -> Vec<RawFde> {
            let mut ra_columns: HashMap<(usize, String), u16> = HashMap::new();
            let mut section = 0;
            let mut cie: Option<(usize, String)> = None;
            let mut fdes: Vec<RawFde> = Vec::new();
            // The current FDE's address and return address column.
            let mut fde: Option<(u64, u16)> = None;
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if line.starts_with("Contents of the ") {
                    section += 1;
                    (cie, fde) = (None, None);
                    continue;
                }
                match words.get(3) {
                    Some(&"CIE") => {
                        (cie, fde) = (Some((section, words[0].to_string())), None);
                        continue;
                    }
                    Some(&"FDE") => {
                        let field = |name: &str| {
                            words
                                .iter()
                                .find_map(|w| w.strip_prefix(name))
                                .unwrap_or_else(|| panic!("no {name} in {line}"))
                        };
                        let start = hex(field("pc=").split_once("..").unwrap().0);
                        let ra = ra_columns[&(section, field("cie=").to_string())];
                        (cie, fde) = (None, Some((start, ra)));
                        fdes.push(RawFde {
                            offset: words[0].to_string(),
                            ..RawFde::default()
                        });
                        continue;
                    }
                    _ => {}
                }
                if let Some(n) = line.trim().strip_prefix("Return address column:") {
                    let key = cie
                        .clone()
                        .unwrap_or_else(|| panic!("outside a CIE: {line}"));
                    ra_columns.insert(key, n.trim().parse().unwrap());
                    continue;
                }
                let (Some((loc, ra)), Some(op)) = (
                    fde.as_mut(),
                    words.first().and_then(|w| w.strip_prefix("DW_CFA_")),
                ) else {
                    continue;
                };
                let op = op.trim_end_matches(':');
                if op.starts_with("advance_loc") || op == "set_loc" {
                    *loc = hex(words.last().unwrap());
                    continue;
                }
                if op.starts_with("def_cfa") {
                    continue;
                }
                // The column an instruction sets is its first operand: `r30 (x30)`.
                let Some(reg) = words
                    .get(1)
                    .and_then(|w| w.strip_prefix('r'))
                    .and_then(|n| n.parse::<u16>().ok())
                else {
                    continue;
                };
                let column = match words.get(2) {
                    _ if reg == *ra => "ra".to_string(),
                    Some(name) if name.starts_with('(') => name.trim_matches(['(', ')']).into(),
                    _ => format!("r{reg}"),
                };
                let raw = fdes.last_mut().unwrap();
                if op == "undefined" {
                    raw.undefined.push((*loc, column));
                } else {
                    raw.others.insert(column);
                }
            }
            fdes
        }

        #[test]
        fn readelf_parsing() {
            let text = "\
Contents of the .eh_frame section:


00000000 0000000000000014 00000000 CIE \"zR\" cf=1 df=-8 ra=16
   LOC           CFA      ra    
0000000000000000 rsp+8    c-8   

00000018 0000000000000014 0000001c FDE cie=00000000 pc=0000000000001060..0000000000001068

00000030 0000000000000028 00000034 FDE cie=00000000 pc=000000000003be30..000000000003be80
   LOC           CFA      rbx   rbp   ra    
000000000003be30 rsp+8    u     u     c-8   
000000000003be63 rdi+0    c+0   r9 (r9) r1 (rdx) 

00000058 ZERO terminator
";
            let fdes = parse_readelf(text);
            assert_eq!(fdes.len(), 2);
            assert_eq!((fdes[0].start, fdes[0].end), (0x1060, 0x1068));
            assert!(fdes[0].rows.is_empty());
            assert_eq!(fdes[0].cie["CFA"], "rsp+8");
            assert_eq!(fdes[1].rows.len(), 2);
            let (loc, rules) = &fdes[1].rows[1];
            assert_eq!(*loc, 0x3be63);
            assert_eq!(rules["rbp"], "r9 (r9)");
            assert_eq!(rules["ra"], "r1 (rdx)");
            assert_eq!(
                expected(Arch::X86_64, &fdes[1], *loc, rules),
                (Cfa::Unsupported, Saved::Unsupported, Saved::Unsupported)
            );
            assert_eq!(
                expected(Arch::X86_64, &fdes[1], 0x3be30, &fdes[1].rows[0].1),
                (Cfa::Sp(8), Saved::Unchanged, Saved::AtCfa(-8))
            );
        }

        #[test]
        fn readelf_parsing_aarch64() {
            // An arm64 _start (`bti c`, then DW_CFA_undefined x30), a frame saving x29 and
            // x30 and giving them back, and glibc's __rawmemchr, whose CIE names x15 its
            // return address column. The CIEs do not name x30, so `u` there is either the
            // default (the link register) or undefined; the raw dump tells which.
            let interp = "\
Contents of the .eh_frame section:


00000000 0000000000000010 00000000 CIE \"zR\" cf=4 df=-8 ra=30
   LOC           CFA      
0000000000000000 sp+0     

00000014 0000000000000010 00000018 FDE cie=00000000 pc=0000000000000780..00000000000007b4
   LOC           CFA      ra    
0000000000000780 sp+0     u     
0000000000000784 sp+0     u     

00000028 0000000000000014 0000002c FDE cie=00000000 pc=00000000000008a0..00000000000008d4
   LOC           CFA      x29   ra    
00000000000008a0 sp+0     u     u     
00000000000008a4 sp+16    c-16  c-8   
00000000000008d0 sp+0     u     u     

00000040 0000000000000010 00000000 CIE \"zR\" cf=4 df=-8 ra=15
   LOC           CFA      
0000000000000000 sp+0     

00000054 0000000000000010 00000018 FDE cie=00000040 pc=0000000000093800..0000000000093824

";
            let raw = "\
Contents of the .eh_frame section:


00000000 0000000000000010 00000000 CIE
  Version:               1
  Augmentation:          \"zR\"
  Code alignment factor: 4
  Data alignment factor: -8
  Return address column: 30
  Augmentation data:     1b
  DW_CFA_def_cfa: r31 (sp) ofs 0

00000014 0000000000000010 00000018 FDE cie=00000000 pc=0000000000000780..00000000000007b4
  DW_CFA_advance_loc: 4 to 0000000000000784
  DW_CFA_undefined: r30 (x30)

00000028 0000000000000014 0000002c FDE cie=00000000 pc=00000000000008a0..00000000000008d4
  DW_CFA_advance_loc: 4 to 00000000000008a4
  DW_CFA_def_cfa_offset: 16
  DW_CFA_offset: r29 (x29) at cfa-16
  DW_CFA_offset: r30 (x30) at cfa-8
  DW_CFA_advance_loc: 44 to 00000000000008d0
  DW_CFA_restore: r30 (x30)
  DW_CFA_restore: r29 (x29)
  DW_CFA_def_cfa_offset: 0

00000040 0000000000000010 00000000 CIE
  Version:               1
  Augmentation:          \"zR\"
  Code alignment factor: 4
  Data alignment factor: -8
  Return address column: 15
  Augmentation data:     1b
  DW_CFA_def_cfa: r31 (sp) ofs 0

00000054 0000000000000010 00000018 FDE cie=00000040 pc=0000000000093800..0000000000093824
  DW_CFA_advance_loc: 20 to 0000000000093814
  DW_CFA_nop

";
            let fdes = with_raw(parse_readelf(interp), parse_raw(raw));
            assert_eq!(fdes.len(), 3);
            assert_eq!(fdes[0].raw.undefined, [(0x784, "ra".to_string())]);
            assert_eq!(
                fdes[1].raw.others,
                HashSet::from(["ra".to_string(), "x29".to_string()])
            );
            assert_eq!((fdes[0].ra_column, fdes[2].ra_column), (30, 15));
            let at = |f: usize, row: usize| {
                let fde = &fdes[f];
                let (loc, rules) = &fde.rows[row];
                expected(Arch::Aarch64, fde, *loc, rules)
            };
            let entry = (Cfa::Sp(0), Saved::Unchanged, Saved::Unchanged);
            assert_eq!(at(0, 0), entry);
            assert_eq!(at(0, 1), (Cfa::Sp(0), Saved::Unchanged, Saved::Undefined));
            assert_eq!(at(1, 0), entry);
            assert_eq!(at(1, 1), (Cfa::Sp(16), Saved::AtCfa(-16), Saved::AtCfa(-8)));
            assert_eq!(at(1, 2), entry);
            // No rows: the CIE's rules, with the return address in x15.
            let rawmemchr = &fdes[2];
            assert!(rawmemchr.rows.is_empty());
            assert_eq!(
                expected(Arch::Aarch64, rawmemchr, 0x93800, &rawmemchr.cie),
                (Cfa::Sp(0), Saved::Unchanged, Saved::Unsupported)
            );
        }

        /// readelf's (CFA, frame pointer, return address) rules from `loc` on in `fde`, in
        /// our terms.
        fn expected(arch: Arch, fde: &RefFde, loc: u64, rules: &Rules) -> (Cfa, Saved, Saved) {
            let names = Names::of(arch);
            let cfa = match rules["CFA"].as_str() {
                // Expressions: ours is Unsupported, or Plt for the PLT stubs' (checked apart).
                "exp" => Cfa::Unsupported,
                rule => {
                    let at = rule
                        .find(['+', '-'])
                        .unwrap_or_else(|| panic!("CFA {rule}"));
                    let offset: i32 = rule[at..].parse().unwrap();
                    match &rule[..at] {
                        base if base == names.sp => Cfa::Sp(offset),
                        base if base == names.fp => Cfa::Fp(offset),
                        _ => Cfa::Unsupported,
                    }
                }
            };
            let register = |column: &str, default: Saved| {
                match rules.get(column).map(String::as_str) {
                    None => default,
                    // Where the CIE names the column, `u` is "undefined"; where it does not,
                    // `u` is also the default rule, and the raw dump says which.
                    Some("u") if fde.cie.contains_key(column) => Saved::Undefined,
                    Some("u") => {
                        let raw = &fde.raw;
                        let mut undefined = raw.undefined.iter().filter(|(_, c)| c == column);
                        assert!(
                            undefined.clone().next().is_none() || !raw.others.contains(column),
                            "readelf's `u` in {column} is ambiguous: {raw:?} ({})",
                            fde.header
                        );
                        if undefined.any(|(from, _)| *from <= loc) {
                            Saved::Undefined
                        } else {
                            default
                        }
                    }
                    Some("s") => Saved::Unchanged,
                    Some(rule) => rule
                        .strip_prefix('c')
                        .and_then(|o| o.parse().ok())
                        .map_or(Saved::Unsupported, Saved::AtCfa),
                }
            };
            let ra = match rules.get("ra").map(String::as_str) {
                // A return address held in the link register: arm64's x30, or rdi in
                // glibc's x86-64 vfork.
                Some(rule) if rule == names.link => Saved::LinkRegister,
                _ if fde.ra_column == names.ra_column => register("ra", names.ra_default),
                // Another return address column (glibc's arm64 `__rawmemchr` returns
                // through x15): only a return address saved on the stack can be found.
                _ => match register("ra", Saved::Unsupported) {
                    Saved::Unchanged => Saved::Unsupported,
                    saved => saved,
                },
            };
            (cfa, register(names.fp, Saved::Unchanged), ra)
        }

        /// Differences between `table` and readelf: at every address an FDE covers, the
        /// rules must be readelf's; at every FDE end no other FDE covers, a row must say
        /// there is no information; and code that no FDE covers must have none.
        fn differences(data: &[u8], table: &UnwindTable, fdes: &[RefFde]) -> Vec<String> {
            let mut bad = Vec::new();
            for fde in fdes {
                // readelf prints any expression as `exp`; ours reads the PLT stubs' one, and
                // knows the FDEs of signal trampolines (and only those) by their CIE.
                let show = |r: Option<&UnwindRow>| {
                    r.map(|r| match r.cfa {
                        Cfa::Plt { .. } => (Cfa::Unsupported, r.fp, r.ra),
                        Cfa::SigReturn(_) if fde.signal => (Cfa::Unsupported, r.fp, r.ra),
                        cfa => (cfa, r.fp, r.ra),
                    })
                };
                let own_rows;
                // Without instructions of its own an FDE has its CIE's rules, and readelf
                // prints no rows.
                let rows = if fde.rows.is_empty() {
                    own_rows = [(fde.start, fde.cie.clone())];
                    &own_rows[..]
                } else {
                    &fde.rows[..]
                };
                for (i, (loc, rules)) in rows.iter().enumerate() {
                    let end = rows.get(i + 1).map_or(fde.end, |r| r.0);
                    let want = expected(table.arch, fde, *loc, rules);
                    if let Some(pc) = (*loc..end).find(|&pc| show(table.lookup(pc)) != Some(want)) {
                        bad.push(format!(
                            "{pc:#x}: readelf {want:?} from {rules:?}, ours {:?} ({})",
                            show(table.lookup(pc)),
                            fde.header
                        ));
                    }
                }
            }
            // The union of the FDEs' ranges, as disjoint sorted ranges.
            let mut ranges: Vec<(u64, u64)> = fdes.iter().map(|f| (f.start, f.end)).collect();
            ranges.sort_unstable();
            let mut covered: Vec<(u64, u64)> = Vec::new();
            for (s, e) in ranges {
                match covered.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => covered.push((s, e)),
                }
            }
            let is_covered = |pc: u64| {
                let i = covered.partition_point(|&(s, _)| s <= pc);
                i > 0 && pc < covered[i - 1].1
            };
            for fde in fdes {
                if is_covered(fde.end) {
                    continue;
                }
                let i = table.rows.partition_point(|r| r.pc < fde.end);
                if table
                    .rows
                    .get(i)
                    .is_none_or(|r| (r.pc, r.cfa) != (fde.end, Cfa::None))
                {
                    bad.push(format!(
                        "no row ending the FDE at {:#x}: {:?} ({})",
                        fde.end,
                        table.rows.get(i),
                        fde.header
                    ));
                }
            }
            let file = object::File::parse(data).unwrap();
            for section in file.sections() {
                if section.kind() != object::SectionKind::Text {
                    continue;
                }
                let range = section.address()..section.address() + section.size();
                let mut uncovered = range.filter(|&pc| !is_covered(pc));
                if let Some(pc) = uncovered.find(|&pc| table.lookup(pc).is_some()) {
                    bad.push(format!(
                        "{pc:#x} in {:?}: no FDE covers it, but ours has {:?}",
                        section.name(),
                        table.lookup(pc)
                    ));
                }
            }
            bad
        }

        /// Rows sorted by address without duplicates, each with rules unlike the one before.
        fn check_invariants(path: &Path, table: &UnwindTable) {
            if let Some(w) = table.rows.windows(2).find(|w| w[0].pc >= w[1].pc) {
                panic!("{}: rows out of order: {:?}", path.display(), w);
            }
            if let Some(w) = table.rows.windows(2).find(|w| w[0].same_rules(&w[1])) {
                panic!("{}: rows not merged: {:?}", path.display(), w);
            }
        }

        /// The table of the file at `path`, an `arch` file, checked against readelf.
        fn checked_table(path: &Path, arch: Arch) -> (Vec<u8>, UnwindTable) {
            let data = std::fs::read(path).unwrap();
            let table = UnwindTable::from_elf(&data).unwrap();
            assert_eq!(table.arch, arch, "{}", path.display());
            check_invariants(path, &table);
            let fdes = readelf_fdes(path);
            assert!(
                fdes.iter().filter(|f| !f.rows.is_empty()).count() >= 4,
                "readelf shows too few FDEs in {}: {fdes:?}",
                path.display()
            );
            let bad = differences(&data, &table, &fdes);
            assert!(
                bad.is_empty(),
                "{}: {} differences from readelf:\n{}",
                path.display(),
                bad.len(),
                bad[..bad.len().min(30)].join("\n")
            );
            (data, table)
        }

        #[test]
        fn fixture_rows_match_readelf() {
            let dir = TempDir::new("match");
            for name in FIXTURES {
                for fp in [true, false] {
                    checked_table(&dir.build(name, fp), Arch::X86_64);
                }
            }
        }

        #[test]
        fn libc_rows_match_readelf() {
            let (_, table) =
                checked_table(Path::new("/lib/x86_64-linux-gnu/libc.so.6"), Arch::X86_64);
            // __restore_rt, whose FDE starts a byte early so return-address lookups find it.
            let signal: Vec<_> = table
                .rows
                .iter()
                .filter(|r| r.cfa == Cfa::SigReturn(Arch::X86_64))
                .collect();
            assert_eq!(signal.len(), 1, "{signal:?}");
        }

        /// The C fixtures whose tables are checked.
        const FIXTURES: [&str; 3] = ["unwind_chain", "unwind_rows", "unwind_frames"];

        #[test]
        fn aarch64_fixture_rows_match_readelf() {
            if !aarch64_toolchain() {
                return;
            }
            let dir = TempDir::new("match-arm64");
            for name in FIXTURES {
                for fp in [true, false] {
                    let path = dir.build_for(Target::Aarch64, name, fp, FrameSection::Eh);
                    checked_table(&path, Arch::Aarch64);
                }
            }
        }

        #[test]
        fn aarch64_libc_rows_match_readelf() {
            if !aarch64_toolchain() {
                return;
            }
            let (_, table) = checked_table(Path::new(AARCH64_LIBC), Arch::Aarch64);
            // arm64's signal trampoline is the vDSO's, not libc's.
            assert!(
                table
                    .rows
                    .iter()
                    .all(|r| !matches!(r.cfa, Cfa::SigReturn(_))),
                "a signal trampoline in arm64 libc"
            );
            // clone's child makes x30 undefined: the end of a thread's stack.
            assert!(table.rows.iter().any(|r| r.ra == Saved::Undefined));
        }

        /// On arm64 a call leaves the return address in x30, the link register, until the
        /// callee's prologue stores it (with x29 where there are frame pointers): each
        /// function of the chain starts at (SP+0, x29 unchanged, return address in the link
        /// register) and has stored x30 by its calls, and `fill`, a leaf without a frame,
        /// keeps it in the link register throughout.
        #[test]
        fn aarch64_return_addresses_are_in_the_link_register_until_saved() {
            if !aarch64_toolchain() {
                return;
            }
            let dir = TempDir::new("lr-arm64");
            let in_lr = (Cfa::Sp(0), Saved::Unchanged, Saved::Unchanged);
            for fp in [true, false] {
                let path = dir.build_for(Target::Aarch64, "unwind_frames", fp, FrameSection::Eh);
                let (data, table) = checked_table(&path, Arch::Aarch64);
                let rules_of = |name: &str| {
                    let (start, size) = function(&data, name);
                    (start..start + size)
                        .step_by(4)
                        .map(|pc| {
                            let r = table.lookup(pc).unwrap_or_else(|| {
                                panic!("{name}+{:#x} is not covered", pc - start)
                            });
                            (r.cfa, r.fp, r.ra)
                        })
                        .collect::<Vec<_>>()
                };
                for name in ["main", "outer", "middle", "leaf"] {
                    let rules = rules_of(name);
                    assert_eq!(rules[0], in_lr, "{name} (frame pointers: {fp})");
                    assert!(
                        rules.iter().any(|r| matches!(r.2, Saved::AtCfa(_))),
                        "{name} stores x30 (frame pointers: {fp}): {rules:?}"
                    );
                    assert_eq!(
                        rules.iter().any(|r| matches!(r.1, Saved::AtCfa(_))),
                        fp,
                        "{name} stores x29 (frame pointers: {fp}): {rules:?}"
                    );
                }
                let rules = rules_of("fill");
                assert!(rules.iter().all(|r| *r == in_lr), "fill: {rules:?}");
            }
        }

        /// The flags of section `name` in the file at `path` as `readelf -SW` prints them
        /// (`C`: compressed), if the file has that section.
        fn section_flags(path: &Path, name: &str) -> Option<String> {
            readelf(&["-SW"], path).lines().find_map(|line| {
                // "  [32] .debug_frame  PROGBITS  0000000000000000 003b58 000058 00   C  0   0  8":
                // name, type, address, offset, size, entry size, flags (when any), link,
                // info, alignment.
                let (_, rest) = line.split_once(']')?;
                let words: Vec<&str> = rest.split_whitespace().collect();
                (words.first() == Some(&name)).then(|| match words.len() {
                    10 => words[6].to_string(),
                    _ => String::new(),
                })
            })
        }

        /// Fixtures built for `target` without unwind tables, so that their call frame
        /// information is in `.debug_frame` only, plainly and zlib-compressed: the section
        /// is there (compressed or not, as asked), their own functions have FDEs in it and
        /// in no other section, and every row matches readelf's.
        fn check_debug_frame_fixtures(target: Target, arch: Arch) {
            let dir = TempDir::new(&format!("debug-frame-{arch:?}"));
            for name in FIXTURES {
                for (fp, cfi) in [
                    (false, FrameSection::Debug),
                    (true, FrameSection::CompressedDebug),
                ] {
                    let path = dir.build_for(target, name, fp, cfi);
                    let shown = path.display();
                    let flags = section_flags(&path, ".debug_frame")
                        .unwrap_or_else(|| panic!("{shown} has no .debug_frame"));
                    assert_eq!(
                        flags.contains('C'),
                        cfi == FrameSection::CompressedDebug,
                        "{shown}: .debug_frame flags {flags:?}"
                    );
                    let (data, _) = checked_table(&path, arch);
                    let fdes = readelf_fdes(&path);
                    for function_name in ["main", "leaf"] {
                        let (start, _) = function(&data, function_name);
                        let sections: Vec<&str> = fdes
                            .iter()
                            .filter(|f| f.start <= start && start < f.end)
                            .map(|f| f.section.as_str())
                            .collect();
                        assert_eq!(
                            sections,
                            [".debug_frame"],
                            "{shown}: the FDEs of {function_name}"
                        );
                    }
                }
            }
        }

        #[test]
        fn debug_frame_rows_match_readelf() {
            check_debug_frame_fixtures(Target::Host, Arch::X86_64);
        }

        #[test]
        fn aarch64_debug_frame_rows_match_readelf() {
            if aarch64_toolchain() {
                check_debug_frame_fixtures(Target::Aarch64, Arch::Aarch64);
            }
        }

        /// Address and size of the function `name`, or of a compiler clone of it
        /// (`name.isra.0`).
        fn function(data: &[u8], name: &str) -> (u64, u64) {
            let file = object::File::parse(data).unwrap();
            file.symbols()
                .find(|s| {
                    s.kind() == SymbolKind::Text
                        && s.name().is_ok_and(|n| {
                            n.strip_prefix(name)
                                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                        })
                })
                .map(|s| (s.address(), s.size()))
                .unwrap_or_else(|| panic!("no function {name}"))
        }

        /// The distinct rules (CFA, rbp) over a function's code.
        fn rules_in(data: &[u8], table: &UnwindTable, name: &str) -> Vec<(Cfa, Saved)> {
            let (start, size) = function(data, name);
            let mut rules: Vec<(Cfa, Saved)> = Vec::new();
            for pc in start..start + size {
                let r = table
                    .lookup(pc)
                    .unwrap_or_else(|| panic!("{name}+{:#x} is not covered", pc - start));
                assert_eq!(r.ra, Saved::AtCfa(-8), "{name}+{:#x}", pc - start);
                if !rules.contains(&(r.cfa, r.fp)) {
                    rules.push((r.cfa, r.fp));
                }
            }
            rules
        }

        #[test]
        fn frames_with_and_without_frame_pointers() {
            let dir = TempDir::new("frames");
            let rbp_frame = (Cfa::Fp(16), Saved::AtCfa(-16));
            for (name, functions) in [
                ("unwind_chain", &["middle", "outer"][..]),
                ("unwind_rows", &["saver", "vla", "branchy", "big"][..]),
            ] {
                let (data, table) = checked_table(&dir.build(name, true), Arch::X86_64);
                for f in functions {
                    let rules = rules_in(&data, &table, f);
                    assert!(rules.contains(&rbp_frame), "{name} {f} with FP: {rules:?}");
                    assert!(
                        rules.contains(&(Cfa::Sp(16), Saved::AtCfa(-16))),
                        "{name} {f} with FP, after push %rbp: {rules:?}"
                    );
                }
                let (data, table) = checked_table(&dir.build(name, false), Arch::X86_64);
                for f in functions {
                    let rules = rules_in(&data, &table, f);
                    if *f == "vla" {
                        // A run-time sized frame needs rbp even without frame pointers.
                        assert!(
                            rules.contains(&rbp_frame),
                            "{name} {f} without FP: {rules:?}"
                        );
                    } else {
                        assert!(
                            rules.iter().all(|(cfa, _)| matches!(cfa, Cfa::Sp(_))),
                            "{name} {f} without FP: {rules:?}"
                        );
                    }
                }
                if name == "unwind_rows" {
                    // Without frame pointers rbp is an ordinary callee-saved register.
                    let rules = rules_in(&data, &table, "saver");
                    assert!(
                        rules
                            .iter()
                            .any(|r| matches!(r, (Cfa::Sp(_), Saved::AtCfa(_)))),
                        "saver without FP saves rbp: {rules:?}"
                    );
                }
            }
        }

        /// The machine code at `addr`.
        fn code(data: &[u8], addr: u64, len: u64) -> Vec<u8> {
            let file = object::File::parse(data).unwrap();
            file.sections()
                .find_map(|s| s.data_range(addr, len).ok().flatten())
                .unwrap()
                .to_vec()
        }

        #[test]
        fn outer_rows_are_exact() {
            let dir = TempDir::new("outer");
            let row = |pc, cfa, fp| UnwindRow {
                pc,
                cfa,
                fp,
                ra: Saved::AtCfa(-8),
            };
            let end = |pc| UnwindRow {
                pc,
                cfa: Cfa::None,
                fp: Saved::Unsupported,
                ra: Saved::Unsupported,
            };
            let rows_of = |data: &[u8], table: &UnwindTable| {
                let (start, size) = function(data, "outer");
                let rows: Vec<UnwindRow> = table
                    .rows
                    .iter()
                    .filter(|r| (start..=start + size).contains(&r.pc))
                    .copied()
                    .collect();
                (start, size, code(data, start, size), rows)
            };

            // push %rbp; ...; mov %rsp,%rbp (the compiler may schedule other instructions
            // between them); the FDE ends with the function.
            let (data, table) = checked_table(&dir.build("unwind_chain", true), Arch::X86_64);
            let (start, size, code, rows) = rows_of(&data, &table);
            assert_eq!(code[0], 0x55, "push %rbp first: {code:x?}");
            let mov = code
                .windows(3)
                .position(|w| w == [0x48, 0x89, 0xe5])
                .unwrap_or_else(|| panic!("no mov %rsp,%rbp: {code:x?}"))
                as u64;
            assert_eq!(
                rows,
                [
                    row(start, Cfa::Sp(8), Saved::Unchanged),
                    row(start + 1, Cfa::Sp(16), Saved::AtCfa(-16)),
                    row(start + mov + 3, Cfa::Fp(16), Saved::AtCfa(-16)),
                    end(start + size),
                ]
            );

            // sub $8,%rsp: the stack aligned for the call, and no frame pointer.
            let (data, table) = checked_table(&dir.build("unwind_chain", false), Arch::X86_64);
            let (start, size, code, rows) = rows_of(&data, &table);
            assert_eq!(
                code[..4],
                [0x48, 0x83, 0xec, 0x08],
                "sub $8,%rsp: {code:x?}"
            );
            assert_eq!(
                rows,
                [
                    row(start, Cfa::Sp(8), Saved::Unchanged),
                    row(start + 4, Cfa::Sp(16), Saved::Unchanged),
                    end(start + size),
                ]
            );
        }
    }
}
