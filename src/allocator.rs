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
            // It inherits this environment: the libraries LD_PRELOAD names are loaded
            // first, then those it links (DT_NEEDED); a replacement allocator among them
            // (jemalloc...) is the one it will use, not libc's.
            let libc = own_libc();
            let var = |name| std::env::var(name).unwrap_or_default();
            let system = system_library_dirs(&libc);
            let library_path = var("LD_LIBRARY_PATH");
            paths.extend(preloaded(&var("LD_PRELOAD"), &library_path, &system));
            paths.extend(needed_libraries(&program, &library_path, &system));
            paths.extend(libc);
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

/// The libraries the dynamic loader preloads into a program started with `LD_PRELOAD` set
/// to `ld_preload`, in its order: entries separated by spaces or colons; one with a slash is
/// a path (a relative one from the working directory, which a launched command shares), a
/// bare name is looked for in `ld_library_path`'s directories, then in `system_dirs`.
/// Entries that name no file are left out, as the loader leaves them out.
fn preloaded(ld_preload: &str, ld_library_path: &str, system_dirs: &[PathBuf]) -> Vec<String> {
    let search: Vec<PathBuf> = ld_library_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .chain(system_dirs.iter().cloned())
        .collect();
    ld_preload
        .split([' ', ':'])
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let found = if entry.contains('/') {
                Some(PathBuf::from(entry))
            } else {
                search.iter().map(|d| d.join(entry)).find(|p| p.is_file())
            }?;
            let path = found.canonicalize().ok()?;
            path.is_file().then(|| path.to_string_lossy().into_owned())
        })
        .collect()
}

/// At most this many libraries are read for a launched program's DT_NEEDED.
const MAX_NEEDED: usize = 256;

/// The libraries a dynamically linked program loads, breadth first from its own DT_NEEDED
/// entries as the loader loads them, each looked for in the DT_RPATH of the object that
/// needs it (when it has no DT_RUNPATH), `ld_library_path`'s directories, its DT_RUNPATH,
/// then `system_dirs`. Names not found are left out, and so are their own needs.
fn needed_libraries(program: &Path, ld_library_path: &str, system_dirs: &[PathBuf]) -> Vec<String> {
    let env_dirs: Vec<PathBuf> = ld_library_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    let mut found: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::from([program.to_path_buf()]);
    while let Some(object) = queue.pop_front() {
        let Some(needs) = dynamic_needs(&object) else {
            continue;
        };
        for name in needs.needed {
            if found.len() >= MAX_NEEDED || !seen.insert(name.clone()) {
                continue;
            }
            let lib = if name.contains('/') {
                Some(PathBuf::from(&name))
            } else {
                let mut dirs = needs
                    .rpath
                    .iter()
                    .chain(&env_dirs)
                    .chain(&needs.runpath)
                    .chain(system_dirs);
                dirs.find_map(|d| Some(d.join(&name)).filter(|p| p.is_file()))
            };
            if let Some(lib) = lib.and_then(|l| l.canonicalize().ok()) {
                found.push(lib.to_string_lossy().into_owned());
                queue.push_back(lib);
            }
        }
    }
    found
}

/// What a dynamic object's `.dynamic` section says about loading its libraries.
#[derive(Debug, Default, PartialEq, Eq)]
struct DynamicNeeds {
    /// DT_NEEDED, in order.
    needed: Vec<String>,
    /// DT_RPATH's directories, when there is no DT_RUNPATH (the loader ignores it then).
    rpath: Vec<PathBuf>,
    /// DT_RUNPATH's directories.
    runpath: Vec<PathBuf>,
}

/// The [`DynamicNeeds`] of an ELF file, read in place (a library can be large); None when
/// it is not ELF or has no dynamic section.
fn dynamic_needs(path: &Path) -> Option<DynamicNeeds> {
    use object::elf::{FileHeader32, FileHeader64};
    let file = std::fs::File::open(path).ok()?;
    let data = object::ReadCache::new(file);
    let origin = path.parent().unwrap_or(Path::new("/"));
    match object::FileKind::parse(&data).ok()? {
        object::FileKind::Elf64 => needs_of::<FileHeader64<object::Endianness>>(&data, origin),
        object::FileKind::Elf32 => needs_of::<FileHeader32<object::Endianness>>(&data, origin),
        _ => None,
    }
}

fn needs_of<Elf: object::read::elf::FileHeader<Endian = object::Endianness>>(
    data: &object::ReadCache<std::fs::File>,
    origin: &Path,
) -> Option<DynamicNeeds> {
    use object::read::elf::Dyn;
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let (entries, link) = sections.dynamic(endian, data).ok()??;
    let strings = sections.strings(endian, data, link).ok()?;
    let text = |d: &Elf::Dyn| {
        let offset = u32::try_from(d.d_val(endian).into()).ok()?;
        let bytes = strings.get(offset).ok()?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    };
    // "$ORIGIN" is the directory of the object that names the path.
    let dirs = |list: String| -> Vec<PathBuf> {
        let origin = origin.to_string_lossy();
        list.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)))
            .collect()
    };
    let mut needs = DynamicNeeds::default();
    let mut rpath = Vec::new();
    let mut has_runpath = false;
    for d in entries {
        let tag: u64 = d.d_tag(endian).into();
        if tag == u64::from(object::elf::DT_NULL) {
            break;
        }
        if tag == u64::from(object::elf::DT_NEEDED) {
            needs.needed.extend(text(d));
        } else if tag == u64::from(object::elf::DT_RPATH) {
            rpath.extend(text(d).map(dirs).unwrap_or_default());
        } else if tag == u64::from(object::elf::DT_RUNPATH) {
            has_runpath = true;
            needs.runpath.extend(text(d).map(dirs).unwrap_or_default());
        }
    }
    if !has_runpath {
        needs.rpath = rpath;
    }
    Some(needs)
}

/// Where the loader finds libraries by default, near enough: the directory of the system's
/// libc (the multiarch one on Debian, which its cache lists first), then `/lib` and
/// `/usr/lib`.
fn system_library_dirs(libc: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = libc
        .iter()
        .filter_map(|p| Path::new(p).parent().map(Path::to_path_buf))
        .collect();
    for d in ["/lib", "/usr/lib"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    dirs
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

    /// LD_PRELOAD's entries, by path or by name, in order; missing ones left out.
    #[test]
    fn preloaded_libraries_are_found_like_the_loader_finds_them() {
        let base = std::env::temp_dir().join(format!("rprof-preload-{}", std::process::id()));
        let (lib_path, system) = (base.join("lp"), base.join("sys"));
        for d in [&lib_path, &system] {
            std::fs::create_dir_all(d).unwrap();
        }
        let file = |dir: &Path, name: &str| {
            let p = dir.join(name);
            std::fs::write(&p, b"").unwrap();
            p.canonicalize().unwrap().to_string_lossy().into_owned()
        };
        let by_path = file(&base, "libbypath.so");
        let in_lib_path = file(&lib_path, "libboth.so");
        file(&system, "libboth.so");
        let in_system = file(&system, "libsys.so");
        let value = format!("libboth.so {by_path}:libmissing.so::libsys.so  /no/such.so");
        let got = preloaded(
            &value,
            &format!(":{}", lib_path.display()),
            std::slice::from_ref(&system),
        );
        // A bare name in both directories: LD_LIBRARY_PATH's comes first.
        assert_eq!(got, vec![in_lib_path, by_path, in_system]);
        assert!(preloaded("", "", std::slice::from_ref(&system)).is_empty());
        let dirs = system_library_dirs(&["/usr/lib/x86_64-linux-gnu/libc.so.6".to_string()]);
        assert_eq!(
            dirs,
            ["/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"].map(PathBuf::from)
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// The libraries this test program loads by DT_NEEDED, libc among them, are found as
    /// the loader found them; a file that is not ELF needs nothing.
    #[test]
    fn needed_libraries_are_found_like_the_loader_finds_them() {
        let libc: Vec<String> = own_mapped_paths()
            .into_iter()
            .filter(|p| is_libc(p))
            .collect();
        assert_eq!(libc.len(), 1, "{libc:?}");
        let exe = std::env::current_exe().unwrap();
        let needs = dynamic_needs(&exe).unwrap();
        assert!(
            needs.needed.iter().any(|n| n.starts_with("libc.so")),
            "{needs:?}"
        );
        let found = needed_libraries(&exe, "", &system_library_dirs(&libc));
        let mapped_libc = Path::new(&libc[0]).canonicalize().unwrap();
        assert!(
            found.contains(&mapped_libc.to_string_lossy().into_owned()),
            "{found:?} lacks {}",
            mapped_libc.display()
        );
        let unique: std::collections::HashSet<&String> = found.iter().collect();
        assert_eq!(unique.len(), found.len(), "{found:?}");
        assert!(dynamic_needs(Path::new("/proc/self/status")).is_none());
        assert!(needed_libraries(Path::new("/no/such/file"), "", &[]).is_empty());
    }
}
