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

use super::replay::{self, Regs, StackMemory};
use super::table::{UnwindRow, UnwindTable};
use crate::procs::{MappedFile, ProcessInfo};

/// A file's table and its loadable segments, which give each mapping's bias.
struct FileUnwind {
    table: UnwindTable,
    /// (file offset, file size, virtual address) of each segment.
    segments: Vec<(u64, u64, u64)>,
}

impl FileUnwind {
    fn read(path: &Path) -> Option<Self> {
        let data = MappedImage::open(path)?;
        let file = object::File::parse(data.bytes()).ok()?;
        Some(Self {
            table: UnwindTable::from_elf(data.bytes()).ok()?,
            segments: replay::segments(&file),
        })
    }

    /// Memory the table holds.
    fn bytes(&self) -> usize {
        self.table.rows.len() * std::mem::size_of::<UnwindRow>()
            + self.segments.len() * std::mem::size_of::<(u64, u64, u64)>()
    }
}

/// A file mapped read-only: only the pages the table is built from (`.eh_frame` and the
/// headers) are read, where reading a 100 MB library whole took most of the build time.
struct MappedImage {
    ptr: *mut libc::c_void,
    len: usize,
}

impl MappedImage {
    fn open(path: &Path) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a private read-only mapping of a file we opened; the descriptor can close
        // once it is mapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes and lives as long as `self`. A file
        // truncated under us would fault; mapped binaries are not rewritten in place.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedImage {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
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
    /// Tables built (a table evicted and built again counts twice).
    pub built: usize,
    /// Time spent building them.
    pub build_time: Duration,
    /// The most table memory held at once, in bytes.
    pub peak_bytes: usize,
    /// Tables evicted to stay under the limit.
    pub evicted: usize,
    /// Files whose table alone exceeds the limit (frame pointers only there).
    pub too_big: usize,
    /// The table that took longest to build.
    pub slowest: Option<BuildTime>,
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
/// A built table as the builder thread returns it, with the file's size and the time taken.
type Built = (FileId, String, Option<FileUnwind>, u64, Duration);

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
                    let began = Instant::now();
                    let unwind = FileUnwind::read(&path);
                    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                    if done
                        .send((id, name, unwind, size, began.elapsed()))
                        .is_err()
                    {
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
    ) -> Option<Vec<u64>> {
        self.clock += 1;
        let mut waiting = false;
        let frames = replay::unwind_with(
            |addr| {
                let m = info.mapping_of(addr)?;
                let unwind = match self.table_of(&m.file) {
                    Lookup::Ready(u) => u,
                    Lookup::None => return None,
                    Lookup::Building => {
                        waiting = true;
                        return None;
                    }
                };
                let bias = replay::segment_bias(&unwind.segments, m.start, m.file_offset)?;
                unwind.table.lookup(addr.wrapping_sub(bias)).copied()
            },
            regs,
            mem,
            max,
        );
        (!(wait && waiting)).then_some(frames)
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
            let Some((id, path, unwind, file_bytes, took)) = next else {
                return;
            };
            builder.pending -= 1;
            self.stats.build_time += took;
            if let Some(u) = &unwind {
                if self.stats.slowest.as_ref().is_none_or(|s| took > s.took) {
                    self.stats.slowest = Some(BuildTime {
                        path,
                        file_bytes,
                        table_bytes: u.bytes(),
                        took,
                    });
                }
            }
            self.insert(id, unwind);
        }
    }

    /// Keeps a built table, within the limit.
    fn insert(&mut self, id: FileId, mut unwind: Option<FileUnwind>) {
        if let Some(u) = &unwind {
            self.stats.built += 1;
            let bytes = u.bytes();
            if bytes > self.limit {
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
                unwind.as_ref().map_or(Lookup::None, Lookup::Ready)
            }
            _ => Lookup::Building,
        }
    }

    /// Evicts the tables used longest ago until `bytes` more fit, sparing those the current
    /// stack uses.
    fn make_room(&mut self, bytes: usize) {
        while self.used + bytes > self.limit {
            let oldest = self
                .files
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Ready {
                        unwind: Some(_),
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

/// What the cache has for a file.
enum Lookup<'a> {
    Ready(&'a FileUnwind),
    /// No table: no usable CFI, or over the limit.
    None,
    Building,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<MappedFile> {
        let files: Vec<MappedFile> = ["/lib/x86_64-linux-gnu/libc.so.6", "/proc/self/exe"]
            .iter()
            .filter_map(|p| MappedFile::open(p))
            .collect();
        assert_eq!(files.len(), 2, "test binaries present");
        files
    }

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

    #[test]
    fn tables_are_built_once_and_evicted_oldest_first() {
        let files = files();
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

    #[test]
    fn a_table_over_the_limit_is_not_kept() {
        let files = files();
        let mut cache = UnwindCache::new(1024);
        cache.clock = 1;
        assert_eq!(table_now(&mut cache, &files[0]), None);
        assert_eq!((cache.stats.too_big, cache.used), (1, 0));
    }
}
