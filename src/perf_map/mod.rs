//! Names for JIT code, from the perf map files that JIT runtimes write.
//!
//! A runtime that compiles code at run time (V8 with `--perf-basic-prof`, the JVM through
//! `jcmd PID Compiler.perfmap`, CPython 3.12 with `-X perf`) writes `/tmp/perf-PID.map`,
//! one line per piece of code: `START SIZE NAME`, hex numbers, the name being the rest of
//! the line. This module reads those files the way `perf report` does, so that samples in
//! anonymous executable memory get the runtime's names.
//!
//! The model:
//! - **Which file.** For a process seen as PID from the root pid namespace, the file is
//!   `/proc/PID/root/tmp/perf-NSPID.map`: NSPID is the pid the process knows itself by (the
//!   last number of `NStgid:` in `/proc/PID/status`), and going through `/proc/PID/root`
//!   finds a container's `/tmp`. That path is gone once the process exits, so a map must be
//!   read while its process lives ([`PerfMaps::refresh`]); what was read is kept after.
//! - **Whose file.** `/tmp` is writable by everyone, so anyone could plant a map for
//!   someone else's process. perf ignores a map owned neither by root nor by the user
//!   running perf (its effective uid); a profiler running as root for every process uses
//!   the user the map was written as instead: the process's effective uid (`Uid:`'s second
//!   field; files are created with the filesystem uid, which follows the effective uid).
//!   Anything but a regular file (a symbolic link, a FIFO, a directory) is ignored too.
//! - **Later lines win.** Runtimes free code and place new code at the same addresses,
//!   appending a line for it; the newest line covering an address names it. After each
//!   read, the entries are folded into a sorted, non-overlapping index where newer entries
//!   cut older ones; lookups are a binary search.
//! - **Re-reading.** Runtimes append while the process runs. A re-read goes on from the end
//!   of the last complete line when the file is the same (inode), no shorter, and still
//!   holds the bytes read last before that point; otherwise it reads the file whole.
//!   [`PerfMaps::lookup`] re-reads by itself when an address falls outside every entry (the
//!   code may be newer than the last read), at most once per [`PerfMaps::reread_interval`]
//!   per process.
//!
//! Cost: names are kept back to back in one `String` per map, each entry takes 24 bytes
//! and its index segment 24 more (more segments only where entries overlap). A 100 MB map
//! of V8-like lines (1.2M entries of ~84 bytes) holds 135 MiB of heap
//! ([`PerfMap::heap_bytes`]) and loads in 0.3 s in a release build (3 to 6 s unoptimised).
mod index;
mod line;
mod process;
mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use index::Segment;
use source::{Cursor, Reading};

/// Why a map could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PerfMapError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file: ignored")]
    NotRegular { path: PathBuf },
    #[error(
        "{path} belongs to uid {owner}, neither root nor the process's uid {expected}: ignored"
    )]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error("{path} has no readable Uid line")]
    Status { path: PathBuf },
}

/// The symbol covering a looked-up address, as its map line gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitSymbol<'a> {
    pub name: &'a str,
    pub start: u64,
    pub size: u64,
}

/// What reading maps has met, over all processes since [`PerfMaps::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerfMapCounters {
    /// Maps read whole: first reads, and re-reads of a replaced or rewritten file.
    pub files_read: u64,
    /// Reads of an already-read map that found something new: appended lines
    /// (`rereads - reloads` of them, reading only the new part) or a replaced file.
    pub rereads: u64,
    /// The re-reads that had to read the file whole: it shrank, was replaced or rewritten.
    pub reloads: u64,
    /// Lines accepted.
    pub entries: u64,
    /// Lines skipped: missing fields, bad hex, zero size, START + SIZE past 2^64, a name
    /// not in UTF-8, empty or over-long lines, and a last line not yet ended by a newline
    /// (counted once; it is read when the runtime finishes it).
    pub malformed_lines: u64,
    /// Maps ignored for their owner (once per process until that changes).
    pub wrong_owner: u64,
    /// Map paths ignored for not being regular files (once per process, likewise).
    pub not_regular: u64,
    /// Lookups that found no entry, even after any re-read.
    pub lookup_misses: u64,
}

impl PerfMapCounters {
    /// A line for the profile's comments, when any map was looked for and found or refused.
    pub fn describe(&self) -> Option<String> {
        let any = self.files_read + self.wrong_owner + self.not_regular > 0;
        any.then(|| {
            format!(
                "perf maps (JIT code names): files_read={} rereads={} reloads={} entries={} \
                 malformed_lines={} wrong_owner={} not_regular={} lookup_misses={}",
                self.files_read,
                self.rereads,
                self.reloads,
                self.entries,
                self.malformed_lines,
                self.wrong_owner,
                self.not_regular,
                self.lookup_misses
            )
        })
    }

    /// The failures worth a warning, by name, where not zero.
    pub fn nonzero_failures(&self) -> Vec<(&'static str, u64)> {
        [
            ("perf_map_malformed_lines", self.malformed_lines),
            ("perf_map_wrong_owner", self.wrong_owner),
            ("perf_map_not_regular", self.not_regular),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .collect()
    }
}

/// One entry: `start..start + size` is named `names[name_at..name_at + name_len]`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    size: u64,
    name_at: u32,
    name_len: u32,
}

/// The parsed content of one map file.
#[derive(Debug, Default)]
pub struct PerfMap {
    /// Every accepted name, back to back.
    names: String,
    /// In file order: a later entry is newer.
    entries: Vec<Entry>,
    index: Vec<Segment>,
    malformed: u64,
    cursor: Cursor,
}

/// What one read of a map did.
#[derive(Debug, Clone, Copy, Default)]
struct ReadStats {
    whole: bool,
    entries: u64,
    malformed: u64,
}

impl PerfMap {
    /// Reads the map at `path`. With `owner_uid`, a file owned neither by root nor by that
    /// uid is refused ([`PerfMapError::WrongOwner`]); anything but a regular file always is.
    pub fn load_path(path: &Path, owner_uid: Option<u32>) -> Result<PerfMap, PerfMapError> {
        let mut map = PerfMap::default();
        map.read(path, owner_uid)?;
        Ok(map)
    }

    /// Parses map text held in memory (a last line without `\n` counts as complete here).
    pub fn parse(text: &[u8]) -> PerfMap {
        let mut map = PerfMap::default();
        if !text.is_empty() {
            let body = text.strip_suffix(b"\n").unwrap_or(text);
            for line in body.split(|&b| b == b'\n') {
                map.add_line(line);
            }
        }
        map.index_from(0);
        map
    }

    /// The newest entry covering `addr`.
    pub fn lookup(&self, addr: u64) -> Option<JitSymbol<'_>> {
        let seg = index::find(&self.index, addr)?;
        Some(self.symbol(&self.entries[seg.entry as usize]))
    }

    /// Every entry, in file order (older ones overridden by newer lines included).
    pub fn iter(&self) -> impl Iterator<Item = JitSymbol<'_>> + '_ {
        self.entries.iter().map(|e| self.symbol(e))
    }

    fn symbol(&self, entry: &Entry) -> JitSymbol<'_> {
        let at = entry.name_at as usize;
        JitSymbol {
            name: &self.names[at..at + entry.name_len as usize],
            start: entry.start,
            size: entry.size,
        }
    }

    /// Entries read (older ones overridden by newer lines included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lines skipped since the file was last read whole.
    pub fn malformed_lines(&self) -> u64 {
        self.malformed
    }

    /// The heap this map holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * std::mem::size_of::<Segment>()
    }

    /// Reads `path` on from the last read, or whole if it is not the file read last.
    fn read(&mut self, path: &Path, owner_uid: Option<u32>) -> Result<ReadStats, PerfMapError> {
        let (file, meta) = source::open(path, owner_uid)?;
        let io_err = |source| PerfMapError::Io {
            path: path.to_owned(),
            source,
        };
        let how = self.cursor.reading(&file, &meta).map_err(io_err)?;
        let mut cursor = std::mem::take(&mut self.cursor);
        if how == Reading::Whole {
            *self = PerfMap::default();
        }
        let (first, malformed_before) = (self.entries.len(), self.malformed);
        let end = cursor.read(&file, &meta, how, |line| self.add_line(line));
        self.cursor = cursor;
        // Keep what was read even if the read failed part-way.
        self.index_from(first);
        // Growth doubles capacity; give the slack back (large blocks shrink in place).
        self.names.shrink_to_fit();
        self.entries.shrink_to_fit();
        let end = end.map_err(io_err)?;
        self.malformed += end.malformed;
        Ok(ReadStats {
            whole: how == Reading::Whole,
            entries: (self.entries.len() - first) as u64,
            malformed: self.malformed - malformed_before,
        })
    }

    fn add_line(&mut self, text: &[u8]) {
        let Some(line) = line::parse(text) else {
            self.malformed += 1;
            return;
        };
        // u32 offsets keep entries at 24 bytes; a map with 4 GiB of names is not a map.
        let (Ok(name_at), Ok(name_len)) = (
            u32::try_from(self.names.len()),
            u32::try_from(line.name.len()),
        ) else {
            self.malformed += 1;
            return;
        };
        if name_at.checked_add(name_len).is_none() {
            self.malformed += 1;
            return;
        }
        self.names.push_str(line.name);
        self.entries.push(Entry {
            start: line.start,
            size: line.size,
            name_at,
            name_len,
        });
    }

    /// Brings the index up to date with the entries from `first` on.
    fn index_from(&mut self, first: usize) {
        let added = &self.entries[first..];
        if added.is_empty() {
            return;
        }
        let span = |i: usize| (added[i].start, added[i].start + added[i].size);
        let new = index::build(added.len(), first as u32, span);
        self.index = if first == 0 {
            new
        } else {
            index::overlay(&self.index, &new)
        };
        self.index.shrink_to_fit();
    }
}

/// How the last read of a process's map ended, so that refusals are counted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Read,
    Missing,
    WrongOwner,
    NotRegular,
}

#[derive(Debug)]
struct Process {
    /// `None` until a map was read.
    map: Option<PerfMap>,
    last_attempt: Instant,
    outcome: Outcome,
}

/// The perf maps of every process met, by pid (as the root pid namespace sees it).
#[derive(Debug)]
pub struct PerfMaps {
    processes: HashMap<u32, Process>,
    counters: PerfMapCounters,
    reread_interval: Duration,
}

impl Default for PerfMaps {
    fn default() -> Self {
        PerfMaps::new()
    }
}

impl PerfMaps {
    /// Re-reads triggered by lookups, at most once per this long per process.
    pub const DEFAULT_REREAD_INTERVAL: Duration = Duration::from_millis(100);

    pub fn new() -> Self {
        PerfMaps::with_reread_interval(Self::DEFAULT_REREAD_INTERVAL)
    }

    pub fn with_reread_interval(reread_interval: Duration) -> Self {
        PerfMaps {
            processes: HashMap::new(),
            counters: PerfMapCounters::default(),
            reread_interval,
        }
    }

    pub fn reread_interval(&self) -> Duration {
        self.reread_interval
    }

    /// Loads or refreshes the map of `pid` now. Call it while the process lives: after it
    /// exits `/proc/PID/root` is gone, and what was read before is what remains.
    pub fn refresh(&mut self, pid: u32) {
        let now = Instant::now();
        let process = self.processes.entry(pid).or_insert(Process {
            map: None,
            last_attempt: now,
            outcome: Outcome::Missing,
        });
        process.last_attempt = now;
        let had_map = process.map.is_some();
        let result = process::identity(pid).and_then(|id| {
            let path = process::map_path(pid, id.ns_pid);
            let map = process.map.get_or_insert_with(PerfMap::default);
            map.read(&path, Some(id.euid))
        });
        let c = &mut self.counters;
        process.outcome = match result {
            Ok(stats) => {
                c.files_read += u64::from(stats.whole);
                let news = stats.whole || stats.entries + stats.malformed > 0;
                c.rereads += u64::from(had_map && news);
                c.reloads += u64::from(had_map && stats.whole);
                c.entries += stats.entries;
                c.malformed_lines += stats.malformed;
                Outcome::Read
            }
            Err(PerfMapError::WrongOwner { .. }) => {
                c.wrong_owner += u64::from(process.outcome != Outcome::WrongOwner);
                process.map = None;
                Outcome::WrongOwner
            }
            Err(PerfMapError::NotRegular { .. }) => {
                c.not_regular += u64::from(process.outcome != Outcome::NotRegular);
                process.map = None;
                Outcome::NotRegular
            }
            // No map (yet), or the process exited: keep what was read before, if anything.
            Err(PerfMapError::Io { .. } | PerfMapError::Status { .. }) if had_map => {
                process.outcome
            }
            Err(PerfMapError::Io { .. } | PerfMapError::Status { .. }) => {
                process.map = None;
                Outcome::Missing
            }
        };
    }

    /// The newest entry covering `addr` in process `pid`. When none does, the map is
    /// re-read (or read for the first time) if the last attempt is older than
    /// [`Self::reread_interval`], and looked up again. Ask only for addresses in anonymous
    /// executable memory: a miss in a process without a map costs a look at its `/proc`.
    pub fn lookup(&mut self, pid: u32, addr: u64) -> Option<JitSymbol<'_>> {
        let found = |maps: &Self| maps.map(pid).is_some_and(|map| map.lookup(addr).is_some());
        let mut hit = found(self);
        if !hit {
            let due = self
                .processes
                .get(&pid)
                .is_none_or(|p| p.last_attempt.elapsed() >= self.reread_interval);
            if due {
                self.refresh(pid);
                hit = found(self);
            }
        }
        if !hit {
            self.counters.lookup_misses += 1;
            return None;
        }
        self.map(pid)?.lookup(addr)
    }

    /// Whether a map of `pid` was read (so its anonymous executable memory is JIT code).
    pub fn has_map(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.map.is_some())
    }

    /// The map read for `pid`.
    pub fn map(&self, pid: u32) -> Option<&PerfMap> {
        self.processes.get(&pid)?.map.as_ref()
    }

    /// Drops what is known of `pid` (it exited and the pid may be reused).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    pub fn counters(&self) -> &PerfMapCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests;
