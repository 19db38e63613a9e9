//! Unwind rows read one function at a time, through the binary search table linkers write
//! into `.eh_frame_hdr`. A profile touches a few hundred functions of a library that has
//! a hundred thousand, so reading only those costs microseconds where a whole table of a
//! 100 MB library costs hundreds of milliseconds and tens of MiB.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gimli::{BaseAddresses, EhFrame, EhFrameHdr, LittleEndian, UnwindContext, UnwindSection};
use object::{Object, ObjectSection};

use super::image::MappedImage;
use super::table::{compact, fde_rows, Arch, Cfa, UnwindRow};

/// Where a section is in the file and in the address space.
#[derive(Debug, Clone, Copy)]
struct Place {
    offset: usize,
    size: usize,
    address: u64,
}

impl Place {
    fn of(file: &object::File, name: &str) -> Option<Self> {
        let section = file.section_by_name(name)?;
        let (offset, size) = section.file_range()?;
        Some(Self {
            offset: usize::try_from(offset).ok()?,
            size: usize::try_from(size).ok()?,
            address: section.address(),
        })
    }

    fn bytes<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        // Checked in `FdeIndex::open`.
        &data[self.offset..self.offset + self.size]
    }
}

/// The rows of one function (one FDE), from its start to `end`.
struct Function {
    end: u64,
    rows: Box<[UnwindRow]>,
}

/// A file's unwind information, read function by function as addresses are looked up.
pub struct FdeIndex {
    image: MappedImage,
    arch: Arch,
    eh_frame: Place,
    hdr: Place,
    text: u64,
    /// The functions read so far, by start address.
    functions: BTreeMap<u64, Function>,
    ctx: Box<UnwindContext<usize>>,
    bytes: usize,
    /// Functions read, counting one read again after `forget`.
    reads: usize,
    read_time: Duration,
}

impl FdeIndex {
    /// Indexes a mapped ELF file; gives the image back when this cannot serve all its CFI:
    /// no `.eh_frame_hdr` search table, or CFI in `.debug_frame` too, which no index covers.
    pub fn open(image: MappedImage) -> Result<Self, MappedImage> {
        let Some((arch, eh_frame, hdr, text)) = Self::places(&image) else {
            return Err(image);
        };
        let index = Self {
            image,
            arch,
            eh_frame,
            hdr,
            text,
            functions: BTreeMap::new(),
            ctx: Box::new(UnwindContext::new()),
            bytes: 0,
            reads: 0,
            read_time: Duration::ZERO,
        };
        let data = index.image.bytes();
        let searchable = EhFrameHdr::new(index.hdr.bytes(data), LittleEndian)
            .parse(&index.bases(), 8)
            .is_ok_and(|hdr| hdr.table().is_some());
        if searchable {
            Ok(index)
        } else {
            Err(index.image)
        }
    }

    fn places(image: &MappedImage) -> Option<(Arch, Place, Place, u64)> {
        let file = object::File::parse(image.bytes()).ok()?;
        let arch = Arch::of(&file).ok()?;
        if file.section_by_name(".debug_frame").is_some() {
            return None;
        }
        let eh_frame = Place::of(&file, ".eh_frame")?;
        let hdr = Place::of(&file, ".eh_frame_hdr")?;
        let len = image.bytes().len();
        if [eh_frame, hdr]
            .iter()
            .any(|p| p.offset.checked_add(p.size).is_none_or(|e| e > len))
        {
            return None;
        }
        let text = file.section_by_name(".text").map_or(0, |s| s.address());
        Some((arch, eh_frame, hdr, text))
    }

    fn bases(&self) -> BaseAddresses {
        BaseAddresses::default()
            .set_eh_frame_hdr(self.hdr.address)
            .set_eh_frame(self.eh_frame.address)
            .set_text(self.text)
    }

    /// The row covering a file-relative virtual address, if any information covers it.
    pub fn lookup(&mut self, vaddr: u64) -> Option<UnwindRow> {
        let known = self
            .functions
            .range(..=vaddr)
            .next_back()
            .filter(|(_, f)| vaddr < f.end);
        let function = match known {
            Some((_, f)) => f,
            None => self.read(vaddr)?,
        };
        let i = function.rows.partition_point(|r| r.pc <= vaddr);
        let row = *function.rows.get(i.checked_sub(1)?)?;
        (row.cfa != Cfa::None).then_some(row)
    }

    /// Reads the function holding `vaddr` from the file and keeps its rows.
    fn read(&mut self, vaddr: u64) -> Option<&Function> {
        let began = Instant::now();
        let bases = self.bases();
        let data = self.image.bytes();
        let hdr = EhFrameHdr::new(self.hdr.bytes(data), LittleEndian)
            .parse(&bases, 8)
            .ok()?;
        let mut eh_frame = EhFrame::new(self.eh_frame.bytes(data), LittleEndian);
        eh_frame.set_address_size(8);
        let found =
            hdr.table()?
                .fde_for_address(&eh_frame, &bases, vaddr, EhFrame::cie_from_offset);
        let mut rows = Vec::new();
        let read = found.and_then(|fde| {
            fde_rows(&eh_frame, &bases, self.arch, &fde, &mut self.ctx, &mut rows)?;
            Ok((fde.initial_address(), fde.end_address()))
        });
        self.read_time += began.elapsed();
        let (start, end) = read.ok()?;
        let rows = compact(rows).into_boxed_slice();
        self.bytes +=
            std::mem::size_of::<(u64, Function)>() + rows.len() * std::mem::size_of::<UnwindRow>();
        self.reads += 1;
        self.functions.insert(start, Function { end, rows });
        self.functions.get(&start)
    }

    /// Memory the rows read so far hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Functions read so far.
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// Time spent reading functions.
    pub fn read_time(&self) -> Duration {
        self.read_time
    }

    /// Drops the rows read so far (to stay within a memory limit); they are read again
    /// when needed.
    pub fn forget(&mut self) {
        self.functions.clear();
        self.bytes = 0;
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::unwind::fixtures::{aarch64_toolchain, FrameSection, Target, TempDir, AARCH64_LIBC};
    use crate::unwind::table::UnwindTable;
    use std::path::Path;

    /// Every lookup through the index agrees with the whole table (itself checked against
    /// readelf in `table`'s tests): at each row's address, and on either side of it.
    fn agrees_with_whole_table(path: &Path) -> usize {
        let data = std::fs::read(path).unwrap();
        let whole = UnwindTable::from_elf(&data).unwrap();
        let mut index = FdeIndex::open(MappedImage::open(path).unwrap())
            .unwrap_or_else(|_| panic!("{} is indexable", path.display()));
        let mut checked = 0;
        for row in &whole.rows {
            for pc in [row.pc.wrapping_sub(1), row.pc, row.pc + 1] {
                // Rows can start at other addresses: the whole table merges rows with the
                // same rules across functions.
                let rules = |r: UnwindRow| (r.cfa, r.fp, r.ra);
                assert_eq!(
                    index.lookup(pc).map(rules),
                    whole.lookup(pc).copied().map(rules),
                    "{} at {pc:#x}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(index.reads() > 100, "{} functions read", index.reads());
        assert!(index.bytes() > 0);
        index.forget();
        assert_eq!(index.bytes(), 0);
        checked
    }

    #[test]
    fn index_lookups_match_the_whole_table() {
        assert!(agrees_with_whole_table(Path::new("/lib/x86_64-linux-gnu/libc.so.6")) > 10_000);
        assert!(agrees_with_whole_table(Path::new("/proc/self/exe")) > 10_000);
    }

    #[test]
    fn aarch64_index_lookups_match_the_whole_table() {
        if aarch64_toolchain() {
            assert!(agrees_with_whole_table(Path::new(AARCH64_LIBC)) > 10_000);
        }
    }

    #[test]
    fn a_fixture_without_frame_pointers_is_indexed_exactly() {
        let dir = TempDir::new("indexed");
        let path = dir.build("unwind_frames", false);
        let data = std::fs::read(&path).unwrap();
        let whole = UnwindTable::from_elf(&data).unwrap();
        let mut index = FdeIndex::open(MappedImage::open(&path).unwrap())
            .ok()
            .unwrap();
        let rules = |r: UnwindRow| (r.cfa, r.fp, r.ra);
        for row in &whole.rows {
            assert_eq!(
                index.lookup(row.pc).map(rules),
                whole.lookup(row.pc).copied().map(rules)
            );
        }
    }

    #[test]
    fn a_file_without_a_search_table_is_given_back() {
        // Stripped of .eh_frame_hdr, a file is left to the whole table.
        let dir = TempDir::new("no-hdr");
        let built = dir.build("unwind_frames", false);
        let stripped = dir.without_search_table(&built, "no_hdr");
        assert!(FdeIndex::open(MappedImage::open(&stripped).unwrap()).is_err());
        assert!(FdeIndex::open(MappedImage::open(&built).unwrap()).is_ok());
    }

    #[test]
    fn a_file_with_debug_frame_is_given_back() {
        // No index covers .debug_frame, zlib-compressed or not: such a file is left to the
        // whole table, which reads it.
        let dir = TempDir::new("debug-frame-index");
        for cfi in [FrameSection::Debug, FrameSection::CompressedDebug] {
            let built = dir.build_for(Target::Host, "unwind_frames", false, cfi);
            assert!(FdeIndex::open(MappedImage::open(&built).unwrap()).is_err());
            let whole = UnwindTable::from_elf(&std::fs::read(&built).unwrap()).unwrap();
            assert!(whole.rows.len() > 10, "{cfi:?}: {} rows", whole.rows.len());
        }
    }
}
