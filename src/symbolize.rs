//! Symbolization with one long-lived blazesym `Symbolizer`: user frames from the mapped
//! files (ELF symbols, DWARF lines and inlined frames, debug links; Go code from its
//! pclntab, which stripped Go binaries keep), kernel frames from
//! the kernel itself, or kallsyms. Names are demangled here so both the raw and the
//! readable name are kept.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use blazesym::symbolize::source::{Elf, Kernel, Source};
use blazesym::symbolize::{CodeInfo, Input, Symbolized};
use blazesym::MaybeDefault;

use crate::gopclntab::GoTable;
use crate::kernel_symbols::KernelName;
use crate::pprof::FrameInfo;
use crate::unwind::image::MappedImage;

/// What one address resolved to: its frames, innermost inlined callee first. Empty when
/// the address could not be resolved.
pub type Frames = Vec<FrameInfo>;

pub struct Symbolizer {
    inner: blazesym::symbolize::Symbolizer,
    /// Go code tables by file, read once; `None` for files that are not Go.
    go: Mutex<HashMap<PathBuf, Option<Arc<GoCode>>>>,
}

/// A Go binary's pclntab and the segments that turn file offsets into its addresses.
struct GoCode {
    table: GoTable,
    /// (file offset, file size, virtual address) of each segment.
    segments: Vec<(u64, u64, u64)>,
}

impl GoCode {
    fn read(file: &Path) -> Option<Self> {
        let image = MappedImage::open(file)?;
        let table = GoTable::from_elf(image.bytes()).ok()??;
        let elf = object::File::parse(image.bytes()).ok()?;
        Some(Self {
            table,
            segments: crate::unwind::replay::segments(&elf),
        })
    }

    /// The frames at a file offset, if Go code lies there.
    fn frames_at(&self, offset: u64) -> Option<Frames> {
        let &(seg_off, _, vaddr) = self
            .segments
            .iter()
            .find(|&&(off, size, _)| off <= offset && offset < off.saturating_add(size))?;
        let pc = vaddr.checked_add(offset - seg_off)?;
        let (start, end) = self.table.text_range();
        if !(start..end).contains(&pc) {
            return None;
        }
        let frames: Frames = self
            .table
            .frames(pc)
            .into_iter()
            .map(|f| FrameInfo {
                name: f.name,
                system_name: String::new(),
                file: f.file,
                line: f.line,
                start_line: 0,
            })
            .collect();
        (!frames.is_empty()).then_some(frames)
    }
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        let inner = blazesym::symbolize::Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            // We demangle ourselves, to keep the raw name as pprof's system_name.
            .enable_demangling(false)
            .build();
        Self {
            inner,
            go: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves file offsets within an ELF file. Go code is named from its pclntab, as
    /// Go's own tracebacks name it (inlined calls too), which stripped binaries keep.
    pub fn user(&self, file: &Path, offsets: &[u64]) -> Vec<Frames> {
        let go = self.go_code(file);
        let from_go: Vec<Option<Frames>> = offsets
            .iter()
            .map(|&off| go.as_ref().and_then(|g| g.frames_at(off)))
            .collect();
        let rest: Vec<u64> = offsets
            .iter()
            .zip(&from_go)
            .filter(|(_, f)| f.is_none())
            .map(|(&off, _)| off)
            .collect();
        let mut resolved = if rest.is_empty() {
            Vec::new().into_iter()
        } else {
            let src = Source::from(Elf::new(file));
            self.resolve(&src, Input::FileOffset(&rest), rest.len())
                .into_iter()
        };
        from_go
            .into_iter()
            .map(|f| f.unwrap_or_else(|| resolved.next().unwrap_or_default()))
            .collect()
    }

    fn go_code(&self, file: &Path) -> Option<Arc<GoCode>> {
        let mut go = self.go.lock().unwrap_or_else(|e| e.into_inner());
        go.entry(file.to_path_buf())
            .or_insert_with(|| GoCode::read(file).map(Arc::new))
            .clone()
    }

    /// Resolves kernel addresses: by the kernel itself where the kernel-symbol program
    /// loads (see `kernel_symbols`), through kallsyms for whatever it could not answer.
    pub fn kernel(&self, addrs: &[u64]) -> Vec<Frames> {
        // Reading /proc/kallsyms costs ~50 ms of CPU time: not for nothing.
        if addrs.is_empty() {
            return Vec::new();
        }
        let answers = crate::kernel_symbols::name_addresses(addrs)
            .unwrap_or_else(|_| vec![KernelName::Unanswered; addrs.len()]);
        let unanswered: Vec<u64> = addrs
            .iter()
            .zip(&answers)
            .filter(|(_, a)| **a == KernelName::Unanswered)
            .map(|(&addr, _)| addr)
            .collect();
        let mut from_kallsyms = self.kallsyms(&unanswered).into_iter();
        answers
            .into_iter()
            .map(|answer| match answer {
                KernelName::Symbol { name, .. } => vec![frame(&name, None)],
                KernelName::Unknown => Vec::new(),
                KernelName::Unanswered => from_kallsyms.next().unwrap_or_default(),
            })
            .collect()
    }

    /// Resolves kernel addresses through /proc/kallsyms.
    fn kallsyms(&self, addrs: &[u64]) -> Vec<Frames> {
        if addrs.is_empty() {
            return Vec::new();
        }
        let kernel = Kernel {
            // Searching for a vmlinux image costs time and usually finds nothing.
            vmlinux: MaybeDefault::None,
            debug_syms: false,
            ..Kernel::default()
        };
        let src = Source::from(kernel);
        self.resolve(&src, Input::AbsAddr(addrs), addrs.len())
    }

    fn resolve(&self, src: &Source, input: Input<&[u64]>, n: usize) -> Vec<Frames> {
        match self.inner.symbolize(src, input) {
            Ok(results) => results.into_iter().map(frames_of).collect(),
            // The whole source is unusable (file gone, not ELF): every address stays raw.
            Err(_) => vec![Vec::new(); n],
        }
    }
}

fn frames_of(sym: Symbolized) -> Frames {
    let Some(sym) = sym.into_sym() else {
        return Vec::new();
    };
    let mut frames: Frames = sym
        .inlined
        .iter()
        .rev()
        .map(|f| frame(&f.name, f.code_info.as_ref()))
        .collect();
    frames.push(frame(&sym.name, sym.code_info.as_deref()));
    frames
}

fn frame(raw: &str, code: Option<&CodeInfo>) -> FrameInfo {
    let name = demangle(raw);
    FrameInfo {
        system_name: if name == raw {
            String::new()
        } else {
            raw.to_owned()
        },
        name,
        file: code
            .map(|c| c.to_path().to_string_lossy().into_owned())
            .unwrap_or_default(),
        line: code.and_then(|c| c.line).unwrap_or(0),
        start_line: 0,
    }
}

/// Demangles Rust (legacy and v0) and C++ names; anything else is returned as is.
pub fn demangle(raw: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(raw) {
        // `{:#}` drops the hash suffix, as Rust backtraces show names.
        return format!("{d:#}");
    }
    if raw.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(raw) {
            if let Ok(d) = sym.demangle() {
                return d;
            }
        }
    }
    raw.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_rust_and_cpp_and_leaves_c_alone() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("main.hotA"), "main.hotA");
    }

    #[test]
    fn resolves_a_function_of_this_test_binary() {
        let mut table = crate::procs::ProcessTable::default();
        let pid = std::process::id();
        table.snapshot(pid, false).unwrap();
        let addr = demangle as *const () as u64;
        let m = table.get(pid).unwrap().mapping_of(addr).unwrap();
        let s = Symbolizer::new();
        let frames = s.user(&m.file.open_path, &[m.file_offset_of(addr)]);
        let outer = frames[0].last().expect("resolved");
        assert_eq!(outer.name, "rprof_bpf::symbolize::demangle");
        assert!(outer.file.ends_with("symbolize.rs"), "{outer:?}");
        assert_ne!(outer.system_name, "", "raw mangled name kept");
    }
}
