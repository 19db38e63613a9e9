//! Reading the ELF image: where the table is, and the module data that points at it.
//!
//! The table is found, in order of trust, by a section named `.gopclntab` (or
//! `.data.rel.ro.gopclntab`, as Go's own linker names it in PIE builds), by the
//! `runtime.pclntab`/`runtime.epclntab` symbols, or by scanning loaded bytes for a header
//! magic. The scan covers external links, where the system linker merges the table into
//! `.data.rel.ro`, and stripped section names; it only runs for images that carry Go's build
//! info, so other ELF files cost no scan.
//!
//! Addresses are ELF virtual addresses. Bytes are read through the `PT_LOAD` segments, with
//! `RELATIVE` dynamic relocations applied: a PIE's pointers (the 1.18+ `textStart`, 1.16–1.17
//! function entries, the module data) may be stored as zero with the value in the relocation's
//! addend, as lld and aarch64 GNU ld do. (Packed `SHT_RELR` relocations are not decoded.)

use object::{
    Architecture, Object, ObjectSection, ObjectSegment, ObjectSymbol, RelocationFlags,
    RelocationTarget, SegmentFlags,
};

use super::header::Version;
use super::raw::{self, Raw};
use super::GoTableError;

const PF_W: u32 = 2;
/// Scan candidates tried before giving up; the magic is rare enough that real images have one.
const MAX_SCAN_CANDIDATES: usize = 16;

struct Segment<'d> {
    addr: u64,
    data: &'d [u8],
    writable: bool,
}

/// Where a table might be.
pub(super) struct Candidate {
    pub addr: u64,
    /// Known length, or `None` when it runs at most to the end of its segment.
    pub len: Option<usize>,
    /// Named as the table (by section or symbol): a failure to parse it is an error, not
    /// "not Go".
    pub named: bool,
}

pub(super) struct Image<'d> {
    file: object::File<'d>,
    segments: Vec<Segment<'d>>,
    /// (place, value) of `RELATIVE` relocations with explicit addends, sorted by place.
    relocs: Vec<(u64, u64)>,
    pub ptr_size: u8,
    pub big_endian: bool,
}

/// Whether an ELF file has a section only Go's linker writes (the table itself, the build
/// info or the build id note, which stripped binaries keep too); files without section
/// headers get the benefit of the doubt.
pub(super) fn looks_like_go(data: &[u8]) -> Result<bool, GoTableError> {
    let file = object::File::parse(data)?;
    let mut sections = file.sections().peekable();
    if sections.peek().is_none() {
        return Ok(true);
    }
    Ok(sections.any(|s| {
        s.name().is_ok_and(|n| {
            n == ".gopclntab"
                || n.ends_with(".rel.ro.gopclntab")
                || n == ".go.buildinfo"
                || n == ".note.go.buildid"
                || n == ".gosymtab"
        })
    }))
}

impl<'d> Image<'d> {
    pub(super) fn parse(data: &'d [u8]) -> Result<Image<'d>, GoTableError> {
        let file = object::File::parse(data)?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(GoTableError::NotElf);
        }
        let segments = file
            .segments()
            .filter_map(|s| {
                let writable =
                    matches!(s.flags(), SegmentFlags::Elf { p_flags } if p_flags & PF_W != 0);
                Some(Segment {
                    addr: s.address(),
                    data: s.data().ok()?,
                    writable,
                })
            })
            .collect();
        let relocs = relative_relocs(&file);
        let ptr_size = if file.is_64() { 8 } else { 4 };
        let big_endian = !file.is_little_endian();
        Ok(Image {
            file,
            segments,
            relocs,
            ptr_size,
            big_endian,
        })
    }

    /// File bytes from `addr` to the end of its segment's file-backed part.
    pub(super) fn bytes_from(&self, addr: u64) -> Option<&'d [u8]> {
        self.segments.iter().find_map(|s| {
            let off = usize::try_from(addr.checked_sub(s.addr)?).ok()?;
            (off < s.data.len()).then(|| &s.data[off..])
        })
    }

    /// A copy of `len` bytes at `addr` (fewer if the segment ends first), relocations applied.
    pub(super) fn copy(&self, addr: u64, len: Option<usize>) -> Option<Vec<u8>> {
        let bytes = self.bytes_from(addr)?;
        let mut out = bytes[..len.unwrap_or(usize::MAX).min(bytes.len())].to_vec();
        let end = addr.saturating_add(out.len() as u64);
        let first = self.relocs.partition_point(|&(place, _)| place < addr);
        for &(place, value) in self.relocs[first..].iter().take_while(|&&(p, _)| p < end) {
            raw::put_word(
                &mut out,
                (place - addr) as usize,
                value,
                self.ptr_size,
                self.big_endian,
            );
        }
        Some(out)
    }

    /// The pointer stored at `addr`, relocation applied.
    pub(super) fn word(&self, addr: u64) -> Option<u64> {
        if let Ok(i) = self.relocs.binary_search_by_key(&addr, |&(place, _)| place) {
            return Some(self.relocs[i].1);
        }
        Raw::new(self.bytes_from(addr)?, self.big_endian).word(0, self.ptr_size)
    }

    /// Address and size of the first defined symbol with each name.
    pub(super) fn symbols<const N: usize>(&self, names: [&str; N]) -> [Option<(u64, u64)>; N] {
        let mut out = [None; N];
        for sym in self.file.symbols() {
            let Ok(name) = sym.name_bytes() else { continue };
            if let Some(i) = names.iter().position(|n| n.as_bytes() == name) {
                if out[i].is_none() && !sym.is_undefined() {
                    out[i] = Some((sym.address(), sym.size()));
                }
            }
        }
        out
    }

    /// Places the table might be, most trusted first.
    pub(super) fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for s in self.file.sections() {
            if s.name()
                .is_ok_and(|n| n == ".gopclntab" || n.ends_with(".rel.ro.gopclntab"))
            {
                out.push(Candidate {
                    addr: s.address(),
                    len: usize::try_from(s.size()).ok(),
                    named: true,
                });
            }
        }
        if let [Some((start, _)), end] = self.symbols(["runtime.pclntab", "runtime.epclntab"]) {
            let len = end.and_then(|(e, _)| usize::try_from(e.checked_sub(start)?).ok());
            out.push(Candidate {
                addr: start,
                len: len.filter(|&l| l > 0),
                named: true,
            });
        }
        if out.is_empty() && self.has_go_build_info() {
            out.extend(self.scan_for_magic());
        }
        out
    }

    /// Go's build-info blob (Go 1.13+), 16-byte aligned in a writable segment, or a Go
    /// section name: cheap evidence that scanning for the table is worth it.
    fn has_go_build_info(&self) -> bool {
        let go_section = self.file.sections().any(|s| {
            s.name()
                .is_ok_and(|n| n == ".go.buildinfo" || n == ".note.go.buildid" || n == ".gosymtab")
        });
        go_section
            || self.segments.iter().filter(|s| s.writable).any(|s| {
                let skip = ((16 - s.addr % 16) % 16) as usize;
                s.data
                    .get(skip..)
                    .is_some_and(|d| d.chunks(16).any(|c| c.starts_with(b"\xff Go buildinf:")))
            })
    }

    /// 4-byte aligned header magics followed by zero padding and sane sizes.
    fn scan_for_magic(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for s in &self.segments {
            let skip = ((4 - s.addr % 4) % 4) as usize;
            let Some(data) = s.data.get(skip..) else {
                continue;
            };
            for (i, c) in data.chunks_exact(4).enumerate() {
                let magic = if self.big_endian {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                };
                if Version::from_magic(magic).is_none() {
                    continue;
                }
                let off = skip + 4 * i;
                let Some(h) = s.data.get(off + 4..off + 8) else {
                    continue;
                };
                if h[0] == 0 && h[1] == 0 && matches!(h[2], 1 | 2 | 4) && h[3] == self.ptr_size {
                    out.push(Candidate {
                        addr: s.addr + off as u64,
                        len: None,
                        named: false,
                    });
                    if out.len() == MAX_SCAN_CANDIDATES {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Address of `go:func.*` (Go 1.18+), the base of funcdata offsets: from its symbol, or
    /// from the `gofunc` field of the module data that points at the table.
    pub(super) fn gofunc(
        &self,
        version: Version,
        tab_addr: u64,
        funcnames: u64,
        text_start: u64,
    ) -> Option<u64> {
        let [new_name, old_name, md_sym] =
            self.symbols(["go:func.*", "go.func.*", "runtime.firstmoduledata"]);
        if let Some((addr, _)) = new_name.or(old_name) {
            return Some(addr);
        }
        let ps = u64::from(self.ptr_size);
        // moduledata: pcHeader, then slices (3 words each) funcnametab, cutab, filetab, pctab,
        // pclntable, ftab; findfunctab, minpc, maxpc; then text at word 22. Go 1.20 added
        // covctrs/ecovctrs before end, moving gofunc from word 38 to 40.
        let gofunc_word = if version >= Version::Go120 { 40 } else { 38 };
        let field = |md: u64, i: u64| self.word(md.checked_add(i * ps)?);
        let check = |md: u64| -> Option<u64> {
            if field(md, 0)? != tab_addr
                || field(md, 1)? != tab_addr.checked_add(funcnames)?
                || field(md, 22)? != text_start
            {
                return None;
            }
            let gofunc = field(md, gofunc_word)?;
            self.bytes_from(gofunc).map(|_| gofunc)
        };
        if let Some(g) = md_sym.and_then(|(addr, _)| check(addr)) {
            return Some(g);
        }
        // Stripped: any pointer to the table is a candidate, in the file bytes or in a
        // relocation's addend.
        for &(place, value) in &self.relocs {
            if value == tab_addr {
                if let Some(g) = check(place) {
                    return Some(g);
                }
            }
        }
        for s in self.segments.iter().filter(|s| s.writable) {
            let skip = ((ps - s.addr % ps) % ps) as usize;
            let Some(data) = s.data.get(skip..) else {
                continue;
            };
            let raw = Raw::new(data, self.big_endian);
            for i in (0..data.len()).step_by(ps as usize) {
                if raw.word(i, self.ptr_size) == Some(tab_addr) {
                    if let Some(g) = check(s.addr + (skip + i) as u64) {
                        return Some(g);
                    }
                }
            }
        }
        None
    }
}

/// `R_*_RELATIVE` relocations whose value is their addend (file-relative base 0).
fn relative_relocs(file: &object::File<'_>) -> Vec<(u64, u64)> {
    let relative = match file.architecture() {
        Architecture::X86_64 | Architecture::X86_64_X32 => 8,
        Architecture::Aarch64 => 1027,
        Architecture::PowerPc64 => 22,
        Architecture::Riscv64 | Architecture::LoongArch64 => 3,
        Architecture::S390x => 12,
        // 386, arm and mips use REL: the addend is already in place.
        _ => return Vec::new(),
    };
    let mut out: Vec<(u64, u64)> = file
        .dynamic_relocations()
        .into_iter()
        .flatten()
        .filter(|(_, r)| {
            r.flags() == RelocationFlags::Elf { r_type: relative }
                && r.target() == RelocationTarget::Absolute
                && !r.has_implicit_addend()
        })
        .map(|(place, r)| (place, r.addend() as u64))
        .collect();
    out.sort_unstable();
    out
}
