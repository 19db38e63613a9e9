//! Finding the allocator a process really uses, for the alloc profile's uprobes: the
//! malloc-family functions defined by its main binary (a static binary, or one with its own
//! allocator), else by a library that replaces libc's (jemalloc, tcmalloc, mimalloc), else
//! by its libc.
use std::path::{Path, PathBuf};

use blazesym::inspect::source::{Elf, Source};
use blazesym::inspect::Inspector;

/// The functions probed, in the allocator that defines `malloc`.
pub const ALLOC_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
];

/// An allocator in one binary: where to attach, and each function's file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocator {
    /// The binary as the process maps it.
    pub path: String,
    /// The same binary, reachable from rprof-bpf (through `/proc/PID/root` for a process in
    /// another mount namespace).
    pub attach_path: PathBuf,
    pub functions: Vec<(&'static str, u64)>,
}

#[derive(Debug, thiserror::Error)]
#[error("pid {pid}: no allocator to probe: none of {} defines malloc", looked.join(", "))]
pub struct NoAllocator {
    pub pid: u32,
    pub looked: Vec<String>,
}

/// The file offsets of the allocator functions a binary defines (not merely imports).
pub fn defined_functions(binary: &Path) -> Vec<(&'static str, u64)> {
    let mut elf = Elf::new(binary);
    // The binary's own symbol tables: a separate debug file would give no file offsets.
    elf.debug_syms = false;
    let src = Source::Elf(elf);
    let inspector = Inspector::new();
    let Ok(found) = inspector.lookup(&src, ALLOC_FUNCTIONS) else {
        return Vec::new();
    };
    ALLOC_FUNCTIONS
        .iter()
        .zip(found)
        .filter_map(|(name, syms)| {
            let sym = syms.into_iter().find(|s| s.addr != 0)?;
            Some((*name, sym.file_offset?))
        })
        .collect()
}

/// Whether a program is dynamically linked (it names an interpreter, the dynamic loader).
fn is_dynamic(program: &Path) -> bool {
    use object::Object;
    std::fs::read(program)
        .ok()
        .and_then(|data| {
            object::File::parse(&*data)
                .ok()
                .map(|f| f.section_by_name(".interp").is_some())
        })
        .unwrap_or(true)
}

fn is_libc(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libc.so") || name.starts_with("libc-")
}

/// The allocator of a running process, from its executable mappings (`paths`, main binary
/// first).
pub fn find_allocator(pid: u32, paths: &[String]) -> Result<Allocator, NoAllocator> {
    // Main binary first, then libraries that are not libc, then libc.
    let mut order: Vec<&String> = paths.iter().take(1).collect();
    order.extend(paths.iter().skip(1).filter(|p| !is_libc(p)));
    order.extend(paths.iter().skip(1).filter(|p| is_libc(p)));
    for path in &order {
        let attach_path = PathBuf::from(format!("/proc/{pid}/root{path}"));
        let functions = defined_functions(&attach_path);
        if functions.iter().any(|(name, _)| *name == "malloc") {
            return Ok(Allocator {
                path: (*path).clone(),
                attach_path,
                functions,
            });
        }
    }
    Err(NoAllocator {
        pid,
        looked: order.into_iter().cloned().collect(),
    })
}

/// Where the alloc profile's uprobes go for this target: (pid filter, allocator), with -1
/// standing for every process.
pub fn allocators_for(
    target: &crate::target::Target,
    procs: &crate::procs::ProcessTable,
) -> Result<Vec<(i32, Allocator)>, NoAllocator> {
    let me = std::process::id();
    let own_libc = || {
        own_mapped_paths()
            .into_iter()
            .find(|p| is_libc(p))
            .into_iter()
            .collect::<Vec<_>>()
    };
    if target.is_all() {
        // Every process: the system's libc, as this process maps it.
        return Ok(vec![(-1, find_allocator(me, &own_libc())?)]);
    }
    if let Some(program) = target.program() {
        // Not exec'd yet: its own binary, else (if it is dynamically linked) the libc it will
        // load, the system's.
        let program = program
            .canonicalize()
            .unwrap_or_else(|_| program.to_path_buf());
        let mut paths = vec![program.to_string_lossy().into_owned()];
        if is_dynamic(&program) {
            paths.extend(own_libc());
        }
        let pid = target.pids()[0];
        let mut a = find_allocator(me, &paths).map_err(|e| NoAllocator { pid, ..e })?;
        a.attach_path = PathBuf::from(&a.path);
        return Ok(vec![(pid as i32, a)]);
    }
    target
        .pids()
        .into_iter()
        .map(|pid| {
            let mut paths: Vec<String> = procs.exe(pid).map(str::to_owned).into_iter().collect();
            if let Some(info) = procs.get(pid) {
                // Files only: the vDSO has no allocator.
                for p in info
                    .mapped_paths()
                    .into_iter()
                    .filter(|p| p.starts_with('/'))
                {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            find_allocator(pid, &paths).map(|a| (pid as i32, a))
        })
        .collect()
}

/// The files this process maps executable, in address order.
fn own_mapped_paths() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<String> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let perms = fields.nth(1).unwrap_or("");
        if let Some(p) = fields
            .nth(3)
            .filter(|p| p.starts_with('/') && perms.contains('x'))
        {
            if !paths.iter().any(|q| q == p) {
                paths.push(p.to_owned());
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libcs_malloc_family() {
        let me = std::process::id();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mut paths: Vec<String> = Vec::new();
        for line in maps
            .lines()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')))
        {
            if let Some(p) = line
                .split_whitespace()
                .nth(5)
                .filter(|p| p.starts_with('/'))
            {
                if !paths.iter().any(|q| q == p) {
                    paths.push(p.to_string());
                }
            }
        }
        let a = find_allocator(me, &paths).unwrap();
        assert!(is_libc(&a.path), "{a:?}");
        let names: Vec<&str> = a.functions.iter().map(|(n, _)| *n).collect();
        for f in ["malloc", "free", "calloc", "realloc", "posix_memalign"] {
            assert!(names.contains(&f), "{f} missing from {names:?}");
        }
        let err = find_allocator(me, &["/bin/true".to_string()]).unwrap_err();
        assert!(err.to_string().contains("/bin/true"));
    }
}
