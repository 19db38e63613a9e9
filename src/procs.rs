//! The process table: names, threads and executable mappings of every process that
//! produced a sample, snapshotted from procfs while the process lives.
//!
//! Each mapped file is opened once (through `/proc/PID/map_files`, which also works for
//! deleted files and other mount namespaces) and the descriptor is kept, so a process that
//! exits mid-recording can still be symbolized at the end through `/proc/self/fd/N`.
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::Arc;

use procfs::process::{MMPermissions, MMapPath, Process};

use crate::perf_map::{JitSymbol, PerfMaps};

/// A binary some process maps executable, opened for symbolization.
#[derive(Debug)]
pub struct MappedFile {
    /// The path as the process saw it (or `[vdso]`).
    pub path: String,
    /// Where this process (rprof-bpf) can read it, for as long as the table lives.
    pub open_path: PathBuf,
    /// GNU build id, lowercase hex; empty if the file has none.
    pub build_id: String,
    handle: File,
}

/// An executable mapping of one process.
#[derive(Debug, Clone)]
pub struct ExecMapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub file: Arc<MappedFile>,
}

impl ExecMapping {
    /// The file offset an address in this mapping comes from.
    pub fn file_offset_of(&self, addr: u64) -> u64 {
        addr - self.start + self.file_offset
    }
}

/// What we know of one process.
#[derive(Debug, Default)]
pub struct ProcessInfo {
    pub comm: String,
    /// Thread names by tid, as procfs showed them when snapshotted.
    pub threads: HashMap<u32, String>,
    /// Sorted by start address, not overlapping.
    mappings: Vec<ExecMapping>,
    /// Executable memory no file backs (JIT code), as (start, end), sorted.
    anonymous: Vec<(u64, u64)>,
}

impl ProcessInfo {
    /// The mapping that holds `addr`, if any.
    pub fn mapping_of(&self, addr: u64) -> Option<&ExecMapping> {
        let i = self.mappings.partition_point(|m| m.start <= addr);
        let m = self.mappings.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }

    /// Whether `addr` is in executable memory that no file backs (JIT code).
    pub fn is_anonymous_code(&self, addr: u64) -> bool {
        self.anonymous_code(addr).is_some()
    }

    /// What changes when code is mapped or unmapped: the number of code ranges and the
    /// bytes of anonymous code (a JIT's code space grows in place).
    pub fn code_layout(&self) -> (usize, u64) {
        let anonymous: u64 = self.anonymous.iter().map(|(start, end)| end - start).sum();
        (self.mappings.len() + self.anonymous.len(), anonymous)
    }

    /// Whether the process has executable memory that no file backs (JIT code).
    pub fn has_anonymous_code(&self) -> bool {
        !self.anonymous.is_empty()
    }

    /// The range of executable memory no file backs that holds `addr`, if any.
    pub fn anonymous_code(&self, addr: u64) -> Option<(u64, u64)> {
        let i = self.anonymous.partition_point(|&(start, _)| start <= addr);
        let range = *self.anonymous.get(i.checked_sub(1)?)?;
        (addr < range.1).then_some(range)
    }

    /// Every executable mapping, sorted by address.
    pub fn mappings(&self) -> &[ExecMapping] {
        &self.mappings
    }

    /// The main executable's first mapping, if known.
    pub fn main_mapping(&self, exe: Option<&str>) -> Option<&ExecMapping> {
        let exe = exe?;
        self.mappings.iter().find(|m| m.file.path == exe)
    }

    /// The files mapped executable, in address order, each once.
    pub fn mapped_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for m in &self.mappings {
            if !paths.contains(&m.file.path) {
                paths.push(m.file.path.clone());
            }
        }
        paths
    }

    /// Adds newer mappings, replacing any older ones they overlap, of files and anonymous.
    fn merge(&mut self, newer: Vec<ExecMapping>, anonymous: Vec<(u64, u64)>) {
        let overlaps = |start: u64, end: u64| {
            newer.iter().any(|n| n.start < end && start < n.end)
                || anonymous.iter().any(|&(s, e)| s < end && start < e)
        };
        self.mappings.retain(|old| !overlaps(old.start, old.end));
        self.anonymous.retain(|&(s, e)| !overlaps(s, e));
        self.mappings.extend(newer);
        self.mappings.sort_by_key(|m| m.start);
        self.anonymous.extend(anonymous);
        self.anonymous.sort_unstable();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read /proc/{pid}: {source}")]
pub struct SnapshotError {
    pub pid: u32,
    source: procfs::ProcError,
}

#[derive(Hash, PartialEq, Eq)]
enum FileKey {
    Inode { dev: (i32, i32), inode: u64 },
    Vdso,
}

/// Every process seen so far, with the files they map and the perf maps of their JIT code.
#[derive(Default)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcessInfo>,
    exes: HashMap<u32, String>,
    files: HashMap<FileKey, Arc<MappedFile>>,
    perf_maps: PerfMaps,
}

impl ProcessTable {
    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.procs.get(&pid)
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.procs.contains_key(&pid)
    }

    /// The perf maps read so far, and what reading them met.
    pub fn perf_maps(&self) -> &PerfMaps {
        &self.perf_maps
    }

    /// The JIT symbol at `addr` in process `pid`, from its perf map as last read.
    pub fn jit_symbol(&self, pid: u32, addr: u64) -> Option<JitSymbol<'_>> {
        self.perf_maps.map(pid)?.lookup(addr)
    }

    /// Called for a sample in anonymous code while its process lives: reads the process's
    /// perf map (again, at most every so often) when no entry covers `addr` yet, since JIT
    /// code appears while recording. Maps are read only for processes with JIT samples, and
    /// not before the recording starts (a map can be 100 MB).
    pub fn saw_jit_code(&mut self, pid: u32, addr: u64) {
        let _ = self.perf_maps.lookup(pid, addr);
    }

    /// Reads the perf map of `pid` now, if it has anonymous code: for the stacks walked in
    /// the kernel, which reach user space only at the end, while the process still lives.
    pub fn refresh_perf_map(&mut self, pid: u32) {
        if self.get(pid).is_some_and(ProcessInfo::has_anonymous_code) {
            self.perf_maps.refresh(pid);
        }
    }

    /// The executable path of a process, as it was at its last snapshot.
    pub fn exe(&self, pid: u32) -> Option<&str> {
        self.exes.get(&pid).map(String::as_str)
    }

    /// Reads (or re-reads) a process. After an exec, pass `fresh_image` so the old image's
    /// mappings are dropped; otherwise new mappings (dlopen) are merged in.
    pub fn snapshot(&mut self, pid: u32, fresh_image: bool) -> Result<(), SnapshotError> {
        let err = |source| SnapshotError { pid, source };
        let proc = Process::new(pid as i32).map_err(err)?;
        let maps = proc.maps().map_err(err)?;
        let comm = proc.stat().map_err(err)?.comm;
        if let Ok(exe) = proc.exe() {
            self.exes.insert(pid, exe.to_string_lossy().into_owned());
        }
        let mut mappings = Vec::new();
        let mut anonymous = Vec::new();
        for m in maps {
            if !m.perms.contains(MMPermissions::EXECUTE) {
                continue;
            }
            let (start, end) = m.address;
            let file = match &m.pathname {
                MMapPath::Path(path) => self.open_file(
                    pid,
                    FileKey::Inode {
                        dev: m.dev,
                        inode: m.inode,
                    },
                    path.to_string_lossy().into_owned(),
                    (start, end),
                ),
                MMapPath::Vdso => self.vdso(),
                MMapPath::Anonymous | MMapPath::Other(_) => {
                    anonymous.push((start, end));
                    None
                }
                _ => None,
            };
            if let Some(file) = file {
                mappings.push(ExecMapping {
                    start,
                    end,
                    file_offset: m.offset,
                    file,
                });
            }
        }
        let threads = proc
            .tasks()
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| Some((t.tid as u32, t.stat().ok()?.comm)))
                    .collect()
            })
            .unwrap_or_default();

        if fresh_image {
            self.perf_maps.forget(pid);
        }
        let info = self.procs.entry(pid).or_default();
        info.comm = comm;
        info.threads.extend::<HashMap<u32, String>>(threads);
        if fresh_image {
            info.mappings.clear();
            info.anonymous.clear();
        }
        info.merge(mappings, anonymous);
        Ok(())
    }

    fn open_file(
        &mut self,
        pid: u32,
        key: FileKey,
        path: String,
        (start, end): (u64, u64),
    ) -> Option<Arc<MappedFile>> {
        if let Some(f) = self.files.get(&key) {
            return Some(f.clone());
        }
        let via_map_files = format!("/proc/{pid}/map_files/{start:x}-{end:x}");
        let via_root = format!("/proc/{pid}/root{path}");
        let handle = File::open(&via_map_files)
            .or_else(|_| File::open(&via_root))
            .or_else(|_| File::open(&path))
            .ok()?;
        let file = Arc::new(MappedFile::new(path, handle));
        self.files.insert(key, file.clone());
        Some(file)
    }

    /// The vDSO is the same image in every process of this kernel: symbolize it from a copy
    /// of our own.
    fn vdso(&mut self) -> Option<Arc<MappedFile>> {
        if let Some(f) = self.files.get(&FileKey::Vdso) {
            return Some(f.clone());
        }
        let file = Arc::new(MappedFile::new("[vdso]".into(), copy_own_vdso()?));
        self.files.insert(FileKey::Vdso, file.clone());
        Some(file)
    }
}

impl MappedFile {
    /// A file opened by path, outside any process's mappings.
    #[cfg(test)]
    pub(crate) fn open(path: &str) -> Option<Self> {
        Some(Self::new(path.to_string(), File::open(path).ok()?))
    }

    /// Reads bytes at a file offset; false when they are not all there.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        std::os::unix::fs::FileExt::read_exact_at(&self.handle, buf, offset).is_ok()
    }

    fn new(path: String, handle: File) -> Self {
        let open_path = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
        let build_id = blazesym::helper::read_elf_build_id(&open_path)
            .ok()
            .flatten()
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        Self {
            path,
            open_path,
            build_id,
            handle,
        }
    }
}

/// Copies this process's vDSO image into a memfd.
fn copy_own_vdso() -> Option<File> {
    let me = Process::myself().ok()?;
    let vdso = me
        .maps()
        .ok()?
        .into_iter()
        .find(|m| m.pathname == MMapPath::Vdso)?;
    let (start, end) = vdso.address;
    // SAFETY: the range is our own live, readable vDSO mapping, which is never unmapped.
    let image = unsafe { std::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
    // SAFETY: memfd_create with a valid C string name.
    let fd = unsafe { libc::memfd_create(c"rprof-vdso".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(image).ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_our_own_process() {
        let mut table = ProcessTable::default();
        let pid = std::process::id();
        table.snapshot(pid, false).unwrap();
        let info = table.get(pid).unwrap();
        assert!(!info.comm.is_empty());
        assert!(info.threads.contains_key(&pid));
        // This very function's code is in an executable mapping of our own binary.
        let here = snapshots_our_own_process as *const () as u64;
        let m = info.mapping_of(here).expect("our code is mapped");
        assert_eq!(m.file.path, table.exe(pid).unwrap());
        assert!(m.file.open_path.exists());
        assert!(info.mapping_of(0x10).is_none());
    }

    #[test]
    fn vdso_copy_is_an_elf_image() {
        let f = copy_own_vdso().expect("vdso");
        let bytes = std::fs::read(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
    }
}
