//! Unwinding stacks recorded from live processes, with an unwind table per file.
//!
//! A table is built the first time a stack passes through code of its file, so only the
//! files that samples touch cost anything, and it is kept for every process that maps the
//! same file: tables are keyed by GNU build id (by the opened file when there is none).
//! Tables are built on a thread of their own; a stack that needs one still being built
//! waits for it. Their memory is bounded: past the limit, the tables used longest ago are evicted (and
//! rebuilt if their code shows up again); a table bigger than the whole limit is not kept,
//! and stacks through its file fall back to frame pointers there.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::go;
use super::image::MappedImage;
use super::indexed::FdeIndex;
use super::replay::{self, Code, CodeMap, Regs, StackMemory, Unwound};
use super::table::{Arch, UnwindRow, UnwindTable};
use crate::gopclntab::GoTable;
use crate::procs::{ExecMapping, MappedFile, ProcessInfo};

/// A file's unwind rows: a whole table, or an index read function by function.
enum Rows {
    Whole(UnwindTable),
    Indexed(Box<FdeIndex>),
}

/// A file's rows and its loadable segments, which give each mapping's bias.
struct FileUnwind {
    rows: Rows,
    /// A Go binary's pclntab, for its Go code (which no CFI covers), with the file's arch.
    go: Option<(Box<GoTable>, Arch)>,
    /// (file offset, file size, virtual address) of each segment.
    segments: Vec<(u64, u64, u64)>,
    /// The file as processes map it, its size, and the time it took to open or build.
    name: String,
    file_bytes: u64,
    opened_in: Duration,
}

impl FileUnwind {
    /// Indexes the file through `.eh_frame_hdr` where it can, else builds its whole table.
    fn read(path: &Path, name: String) -> Option<Self> {
        let began = Instant::now();
        let image = MappedImage::open(path)?;
        let file_bytes = image.bytes().len() as u64;
        let elf = object::File::parse(image.bytes()).ok()?;
        let segments = replay::segments(&elf);
        let arch = Arch::of(&elf).ok()?;
        // A damaged pclntab is as good as none: its code falls back to frame pointers.
        let go = GoTable::from_elf(image.bytes())
            .ok()
            .flatten()
            .map(|table| (Box::new(table), arch));
        let rows = match FdeIndex::open(image) {
            Ok(index) => Rows::Indexed(Box::new(index)),
            Err(image) => match UnwindTable::from_elf(image.bytes()) {
                Ok(table) => Rows::Whole(table),
                // Go binaries without cgo have no CFI at all.
                Err(_) if go.is_some() => Rows::Whole(UnwindTable {
                    arch,
                    rows: Vec::new(),
                }),
                Err(_) => return None,
            },
        };
        Some(Self {
            rows,
            go,
            segments,
            name,
            file_bytes,
            opened_in: began.elapsed(),
        })
    }

    fn lookup(&mut self, vaddr: u64) -> Option<UnwindRow> {
        let cfi = match &mut self.rows {
            Rows::Whole(table) => table.lookup(vaddr).copied(),
            Rows::Indexed(index) => index.lookup(vaddr),
        };
        cfi.or_else(|| {
            let (table, arch) = self.go.as_ref()?;
            go::row(table, *arch, vaddr)
        })
    }

    /// Memory the rows hold.
    fn bytes(&self) -> usize {
        let rows = match &self.rows {
            Rows::Whole(table) => table.rows.len() * std::mem::size_of::<UnwindRow>(),
            Rows::Indexed(index) => index.bytes(),
        };
        rows + self.segments.len() * std::mem::size_of::<(u64, u64, u64)>()
            + self.go.as_ref().map_or(0, |(table, _)| table.bytes())
    }

    /// Functions read (indexed files only).
    fn reads(&self) -> usize {
        match &self.rows {
            Rows::Whole(_) => 0,
            Rows::Indexed(index) => index.reads(),
        }
    }

    /// The time this file has cost: opening or building, and functions read since.
    fn time(&self) -> Duration {
        match &self.rows {
            Rows::Whole(_) => self.opened_in,
            Rows::Indexed(index) => self.opened_in + index.read_time(),
        }
    }

    fn build_time(&self) -> BuildTime {
        BuildTime {
            path: self.name.clone(),
            file_bytes: self.file_bytes,
            table_bytes: self.bytes(),
            took: self.time(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FileId {
    BuildId(String),
    Opened(PathBuf),
}

impl FileId {
    fn of(file: &MappedFile) -> Self {
        if file.build_id.is_empty() {
            Self::Opened(file.open_path.clone())
        } else {
            Self::BuildId(file.build_id.clone())
        }
    }
}

/// A file's place in the cache.
enum Slot {
    /// Its table is being built on the builder thread.
    Building,
    /// `None` for a file without usable CFI, or one too big for the limit.
    Ready {
        unwind: Option<FileUnwind>,
        last_used: u64,
    },
}

/// What the cache did, for the profile's comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnwindStats {
    /// Files prepared: indexed, or their whole table built (one evicted and prepared again
    /// counts twice).
    pub built: usize,
    /// Of those, files indexed through `.eh_frame_hdr`, read function by function.
    pub indexed: usize,
    /// Functions read from indexed files.
    pub functions: usize,
    /// Time spent preparing files and reading functions.
    pub build_time: Duration,
    /// The most table memory held at once, in bytes.
    pub peak_bytes: usize,
    /// Tables evicted to stay under the limit.
    pub evicted: usize,
    /// Files whose table alone exceeds the limit (frame pointers only there).
    pub too_big: usize,
    /// Times the functions read from indexed files were forgotten to stay under the limit.
    pub forgotten: usize,
    /// The file that took longest: to build its table, or to index it and read its
    /// functions.
    pub slowest: Option<BuildTime>,
    /// The biggest file prepared, with what it took (the cost of a big library).
    pub largest: Option<BuildTime>,
}

/// How long one file's table took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTime {
    /// The file as the process maps it.
    pub path: String,
    pub file_bytes: u64,
    pub table_bytes: usize,
    pub took: Duration,
}

/// What the builder thread is asked for: the cache's key, the file's name, where to read it.
type Request = (FileId, String, PathBuf);
/// A file prepared by the builder thread (None: no usable CFI).
type Built = (FileId, Option<FileUnwind>);

/// Builds tables on a thread of its own, so that a big file (hundreds of milliseconds of
/// parsing) does not stop the recording loop from emptying the ring buffer.
struct Builder {
    requests: mpsc::Sender<Request>,
    results: mpsc::Receiver<Built>,
    pending: usize,
}

impl Builder {
    fn spawn() -> Self {
        let (requests, todo) = mpsc::channel::<Request>();
        let (done, results) = mpsc::channel();
        // The thread ends when the cache, and with it `requests`, is dropped.
        std::thread::Builder::new()
            .name("unwind-tables".into())
            .spawn(move || {
                for (id, name, path) in todo {
                    if done.send((id, FileUnwind::read(&path, name))).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the unwind-table thread");
        Self {
            requests,
            results,
            pending: 0,
        }
    }
}

/// Unwind tables by file, within a memory limit.
pub struct UnwindCache {
    files: HashMap<FileId, Slot>,
    builder: Option<Builder>,
    limit: usize,
    used: usize,
    /// Advances once per stack unwound; tables used by the current one are never evicted.
    clock: u64,
    stats: UnwindStats,
}

/// The limit on unwind-table memory when none is given.
pub const DEFAULT_LIMIT: usize = 512 << 20;

impl Default for UnwindCache {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

impl UnwindCache {
    /// A cache holding at most `limit` bytes of tables.
    pub fn new(limit: usize) -> Self {
        Self {
            files: HashMap::new(),
            builder: None,
            limit,
            used: 0,
            clock: 0,
            stats: UnwindStats::default(),
        }
    }

    pub fn stats(&self) -> &UnwindStats {
        &self.stats
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Tables still being built.
    pub fn building(&self) -> usize {
        self.builder.as_ref().map_or(0, |b| b.pending)
    }

    /// Unwinds up to `max` frames of a stack of the process `info` describes. With `wait`,
    /// `None` when the stack needs a table that is still being built (try again after
    /// [`UnwindCache::receive`]); without, such code is unwound by frame pointers.
    pub fn unwind(
        &mut self,
        info: &ProcessInfo,
        regs: Regs,
        mem: &impl StackMemory,
        max: usize,
        wait: bool,
    ) -> Option<Unwound> {
        self.clock += 1;
        let mut code = ProcessCode {
            cache: self,
            info,
            waiting: false,
        };
        let unwound = replay::unwind_with(&mut code, Arch::HOST, regs, mem, max);
        (!(wait && code.waiting)).then_some(unwound)
    }

    /// The row for an address in a mapping.
    fn row_at(&mut self, m: &ExecMapping, addr: u64) -> Row {
        let unwind = match self.table_of(&m.file) {
            Lookup::Ready(u) => u,
            Lookup::None => return Row::Found(None),
            Lookup::Building => return Row::Building,
        };
        let Some(bias) = replay::segment_bias(&unwind.segments, m.start, m.file_offset) else {
            return Row::Found(None);
        };
        let (bytes, time, reads) = (unwind.bytes(), unwind.time(), unwind.reads());
        let row = unwind.lookup(addr.wrapping_sub(bias));
        if unwind.time() != time {
            // An indexed file looked for a function (and found it, or not).
            let grown = unwind.bytes() - bytes;
            let (spent, read) = (unwind.time() - time, unwind.reads() - reads);
            let took = unwind.build_time();
            self.stats.functions += read;
            self.stats.build_time += spent;
            self.note_time(took);
            if grown > 0 {
                self.used += grown;
                self.fit();
            }
        }
        Row::Found(row)
    }

    /// Gets back under the limit after an indexed file grew: evicts the whole tables used
    /// longest ago but the current stack's, then forgets the functions read from indexed
    /// files (a row just read was copied out already). So the rows held stay under the
    /// limit between lookups, over it by at most one function's rows.
    fn fit(&mut self) {
        self.make_room(0);
        if self.used > self.limit {
            self.forget_functions();
        }
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.used);
    }

    fn forget_functions(&mut self) {
        self.stats.forgotten += 1;
        for slot in self.files.values_mut() {
            if let Slot::Ready {
                unwind:
                    Some(FileUnwind {
                        rows: Rows::Indexed(index),
                        ..
                    }),
                ..
            } = slot
            {
                self.used -= index.bytes();
                index.forget();
            }
        }
    }

    /// Keeps `took` as the slowest file, or the largest, if it is (or updates it).
    fn note_time(&mut self, took: BuildTime) {
        if self
            .stats
            .largest
            .as_ref()
            .is_none_or(|l| took.file_bytes > l.file_bytes || took.path == l.path)
        {
            self.stats.largest = Some(took.clone());
        }
        if self
            .stats
            .slowest
            .as_ref()
            .is_none_or(|s| took.took > s.took)
        {
            self.stats.slowest = Some(took);
        }
    }

    /// Takes in the tables built since the last call; with `wait`, waits for all of them.
    pub fn receive(&mut self, wait: bool) {
        loop {
            let Some(builder) = self.builder.as_mut() else {
                return;
            };
            if builder.pending == 0 {
                return;
            }
            let next = if wait {
                builder.results.recv().ok()
            } else {
                builder.results.try_recv().ok()
            };
            let Some((id, unwind)) = next else {
                return;
            };
            builder.pending -= 1;
            if let Some(u) = &unwind {
                self.stats.build_time += u.opened_in;
                self.stats.indexed += usize::from(matches!(u.rows, Rows::Indexed(_)));
                self.note_time(u.build_time());
            }
            self.insert(id, unwind);
        }
    }

    /// Keeps a built table, within the limit.
    fn insert(&mut self, id: FileId, mut unwind: Option<FileUnwind>) {
        if let Some(u) = &unwind {
            self.stats.built += 1;
            let bytes = u.bytes();
            if matches!(u.rows, Rows::Indexed(_)) {
                // An index holds next to nothing until functions are read.
                self.used += bytes;
                self.fit();
            } else if bytes > self.limit {
                self.stats.too_big += 1;
                unwind = None;
            } else {
                self.make_room(bytes);
                self.used += bytes;
                self.stats.peak_bytes = self.stats.peak_bytes.max(self.used);
            }
        }
        let last_used = self.clock;
        self.files.insert(id, Slot::Ready { unwind, last_used });
    }

    /// The table of a mapped file; one not cached yet is sent to be built.
    fn table_of(&mut self, file: &MappedFile) -> Lookup<'_> {
        let id = FileId::of(file);
        if !self.files.contains_key(&id) {
            let builder = self.builder.get_or_insert_with(Builder::spawn);
            if builder
                .requests
                .send((id.clone(), file.path.clone(), file.open_path.clone()))
                .is_err()
            {
                return Lookup::None;
            }
            builder.pending += 1;
            self.files.insert(id, Slot::Building);
            return Lookup::Building;
        }
        match self.files.get_mut(&id) {
            Some(Slot::Ready { unwind, last_used }) => {
                *last_used = self.clock;
                unwind.as_mut().map_or(Lookup::None, Lookup::Ready)
            }
            _ => Lookup::Building,
        }
    }

    /// Evicts the whole tables used longest ago until `bytes` more fit, sparing those the
    /// current stack uses. Indexed files are not evicted (opening one again costs more than
    /// the few bytes it holds), only their functions forgotten.
    fn make_room(&mut self, bytes: usize) {
        while self.used + bytes > self.limit {
            let oldest = self
                .files
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Ready {
                        unwind:
                            Some(FileUnwind {
                                rows: Rows::Whole(_),
                                ..
                            }),
                        last_used,
                    } if *last_used < self.clock => Some((id, *last_used)),
                    _ => None,
                })
                .min_by_key(|&(_, last_used)| last_used)
                .map(|(id, _)| id.clone());
            let Some(id) = oldest else {
                // Everything held is in use by this stack: go over for now.
                return;
            };
            if let Some(Slot::Ready {
                unwind: Some(u), ..
            }) = self.files.remove(&id)
            {
                self.used -= u.bytes();
                self.stats.evicted += 1;
            }
        }
    }
}

/// A process's code as the unwinder sees it: rows from the cache, bytes from the files.
struct ProcessCode<'a> {
    cache: &'a mut UnwindCache,
    info: &'a ProcessInfo,
    /// Some code's table was still being built.
    waiting: bool,
}

impl CodeMap for ProcessCode<'_> {
    fn code_at(&mut self, addr: u64) -> Code {
        let Some(m) = self.info.mapping_of(addr) else {
            return if self.info.is_anonymous_code(addr) {
                Code::Anonymous
            } else {
                Code::Unmapped
            };
        };
        match self.cache.row_at(m, addr) {
            Row::Found(Some(row)) => Code::Row(row),
            Row::Found(None) => Code::NoRow,
            Row::Building => {
                self.waiting = true;
                Code::NoRow
            }
        }
    }

    fn read_code(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(m) = self.info.mapping_of(addr) else {
            return false;
        };
        // Within the one mapping: the next may come from elsewhere in the file.
        addr.saturating_add(buf.len() as u64) <= m.end
            && m.file.read_at(m.file_offset_of(addr), buf)
    }
}

/// The row for an address, or that its file's table is still being built.
enum Row {
    Found(Option<UnwindRow>),
    Building,
}

/// What the cache has for a file.
enum Lookup<'a> {
    Ready(&'a mut FileUnwind),
    /// No table: no usable CFI, or over the limit.
    None,
    Building,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::fixtures::TempDir;
    use object::ObjectSymbol;

    /// The table of `file`, built now if needed; its size, or None when not kept.
    fn table_now(cache: &mut UnwindCache, file: &MappedFile) -> Option<usize> {
        if let Lookup::Building = cache.table_of(file) {
            cache.receive(true);
        }
        match cache.table_of(file) {
            Lookup::Ready(u) => Some(u.bytes()),
            Lookup::None => None,
            Lookup::Building => panic!("still building after waiting"),
        }
    }

    /// Copies of libc and of this test binary without `.eh_frame_hdr`, so that each gets a
    /// whole table.
    fn whole_table_files(dir: &TempDir) -> Vec<MappedFile> {
        let sources = [
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            std::env::current_exe().unwrap(),
        ];
        sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let copy = dir.without_search_table(source, &format!("no-hdr-{i}"));
                MappedFile::open(copy.to_str().unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn tables_are_built_once_and_evicted_oldest_first() {
        let dir = TempDir::new("evict");
        let files = whole_table_files(&dir);
        let mut probe = UnwindCache::new(usize::MAX);
        let libc = table_now(&mut probe, &files[0]).unwrap();
        let exe = table_now(&mut probe, &files[1]).unwrap();

        let mut cache = UnwindCache::new(libc + exe - 1);
        cache.clock = 1;
        table_now(&mut cache, &files[0]);
        table_now(&mut cache, &files[0]);
        assert_eq!(cache.stats.built, 1, "the second use is cached");
        cache.clock = 2;
        assert!(table_now(&mut cache, &files[1]).is_some());
        assert_eq!(
            cache.stats.evicted, 1,
            "both do not fit: libc, used longest ago, goes"
        );
        assert!(!cache.files.contains_key(&FileId::of(&files[0])));
        assert_eq!((cache.used, cache.stats.peak_bytes), (exe, libc.max(exe)));
    }

    /// libc's mapping as if at its link addresses, so addresses are file addresses.
    fn at_link_addresses(path: &str) -> ExecMapping {
        ExecMapping {
            start: 0,
            end: u64::MAX,
            file_offset: 0,
            file: std::sync::Arc::new(MappedFile::open(path).unwrap()),
        }
    }

    #[test]
    fn indexed_files_forget_functions_to_stay_within_the_limit() {
        let libc = at_link_addresses("/lib/x86_64-linux-gnu/libc.so.6");
        let limit = 16 << 10;
        let mut cache = UnwindCache::new(limit);
        let index_bytes = table_now(&mut cache, &libc.file).expect("libc is kept");
        assert!(
            index_bytes < 1024,
            "an index holds no rows yet: {index_bytes}"
        );
        let data = std::fs::read(&libc.file.open_path).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let functions: Vec<u64> = object::Object::dynamic_symbols(&elf)
            .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
            .map(|s| s.address())
            .collect();
        assert!(functions.len() > 1000, "{} functions", functions.len());
        let mut found = 0;
        for &addr in &functions {
            cache.clock += 1;
            if let Row::Found(Some(_)) = cache.row_at(&libc, addr) {
                found += 1;
            }
            assert!(cache.used <= limit, "{} over {limit}", cache.used);
        }
        assert!(
            found * 10 > functions.len() * 9,
            "{found} of {}",
            functions.len()
        );
        // Aliases share a function, but forgetting makes some read twice.
        assert!(
            cache.stats.functions > found / 2,
            "{} read",
            cache.stats.functions
        );
        assert!(cache.stats.peak_bytes > limit / 2 && cache.stats.peak_bytes <= limit);
        assert_eq!(
            (cache.stats.built, cache.stats.indexed, cache.stats.too_big),
            (1, 1, 0)
        );
    }

    #[test]
    fn a_whole_table_over_the_limit_is_not_kept() {
        // Without .eh_frame_hdr, libc's whole table is built, and it is far over 1 KiB.
        let dir = TempDir::new("whole");
        let file = whole_table_files(&dir).remove(0);
        let mut cache = UnwindCache::new(1024);
        cache.clock = 1;
        assert_eq!(table_now(&mut cache, &file), None);
        assert_eq!(
            (cache.stats.too_big, cache.stats.indexed, cache.used),
            (1, 0, 0)
        );
    }
}
