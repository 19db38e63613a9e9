//! Turns a [`RawProfile`] into a pprof `Profile`: resolves each address to its mapping
//! and symbols (once per distinct address), and labels every sample with its process and
//! thread.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::bpf::shared::created_kind;
use crate::kind::ProfileKind;
use crate::lock_mechanism;
use crate::pprof::proto::Profile;
use crate::pprof::{FrameInfo, LabelValue, MappingInfo, ProfileBuilder};
use crate::procs::{MappedFile, ProcessTable};
use crate::raw::{RawProfile, RawSample};
use crate::symbolize::{Frames, Symbolizer};
use crate::unwind::end::StackEnd;

/// Facts about the recording that go into the profile as metadata.
#[derive(Debug, Clone, Default)]
pub struct RecordingInfo {
    pub period: i64,
    pub start_unix_nanos: i64,
    pub duration_nanos: i64,
    /// Comments, in order: command line, kernel, counters.
    pub comments: Vec<String>,
    /// The process whose main executable becomes mapping[0], if any.
    pub main_pid: Option<u32>,
    /// Add synthetic root frames `COMM [PID]` → `THREAD [TID]` to every sample.
    pub thread_roots: bool,
}

const KERNEL_MAPPING: &str = "[kernel.kallsyms]";

/// The allocator entry points, under the names glibc's symbols give them too, and the
/// replacements' own names of the same functions, which their symbols may give instead
/// (`tc_malloc` and `tc_realloc` in tcmalloc, `mi_realloc` in mimalloc, `je_` in jemalloc).
const ALLOCATOR_FRAMES: &str = "^(__GI_|__libc_|__GI___libc_|__|tc_|mi_|je_)?(malloc|calloc|realloc|reallocarray|free|posix_memalign|aligned_alloc|memalign|valloc|pvalloc)$";

/// Identity of a file across processes (the same `Arc` is shared by all of them).
fn file_id(f: &Arc<MappedFile>) -> usize {
    Arc::as_ptr(f) as usize
}

/// Return addresses point after the call; step back into the call instruction so lines
/// land on the call. The leaf keeps its exact IP.
fn lookup_addr(index: usize, addr: u64) -> u64 {
    if index == 0 {
        addr
    } else {
        addr.saturating_sub(1)
    }
}

/// Symbols for every distinct address of a raw profile.
struct Resolved {
    user: HashMap<(usize, u64), Frames>,
    kernel: HashMap<u64, Frames>,
    files: HashMap<usize, FileFlags>,
    /// The scheduler's text, known when some kernel stack came from a tracepoint.
    sched_text: Option<std::ops::Range<u64>>,
}

#[derive(Default, Clone, Copy)]
struct FileFlags {
    functions: bool,
    filenames: bool,
    lines: bool,
    inlines: bool,
}

impl FileFlags {
    fn note(&mut self, frames: &Frames) {
        self.functions |= !frames.is_empty();
        self.filenames |= frames.iter().any(|f| !f.file.is_empty());
        self.lines |= frames.iter().any(|f| f.line != 0);
        self.inlines |= frames.len() > 1;
    }
}

fn resolve(raw: &RawProfile, procs: &ProcessTable, sym: &Symbolizer) -> Resolved {
    let mut by_file: HashMap<usize, (Arc<MappedFile>, HashSet<u64>)> = HashMap::new();
    let mut kernel_addrs = HashSet::new();
    for s in &raw.samples {
        let info = procs.get(s.pid);
        for (i, &addr) in s.user.iter().enumerate() {
            let a = lookup_addr(i, addr);
            if let Some(m) = info.and_then(|p| p.mapping_of(a)) {
                by_file
                    .entry(file_id(&m.file))
                    .or_insert_with(|| (m.file.clone(), HashSet::new()))
                    .1
                    .insert(m.file_offset_of(a));
            }
        }
        for (i, &addr) in s.kernel.iter().enumerate() {
            kernel_addrs.insert(lookup_addr(i, addr));
        }
    }

    let mut user = HashMap::new();
    let mut files = HashMap::new();
    for (id, (file, offsets)) in by_file {
        let offsets: Vec<u64> = offsets.into_iter().collect();
        let flags: &mut FileFlags = files.entry(id).or_default();
        for (off, frames) in offsets.iter().zip(sym.user(&file.open_path, &offsets)) {
            flags.note(&frames);
            user.insert((id, *off), frames);
        }
    }
    let kernel_addrs: Vec<u64> = kernel_addrs.into_iter().collect();
    let kernel = kernel_addrs
        .iter()
        .copied()
        .zip(sym.kernel(&kernel_addrs))
        .collect();
    let sched_text = raw
        .samples
        .iter()
        .any(|s| s.from_tracepoint)
        .then(crate::kernel_text::sched_text)
        .flatten();
    Resolved {
        user,
        kernel,
        files,
        sched_text,
    }
}

/// Builds the profile of one kind from raw samples.
pub fn build_profile(
    kind: ProfileKind,
    raw: &RawProfile,
    procs: &ProcessTable,
    sym: &Symbolizer,
    info: &RecordingInfo,
) -> Profile {
    let resolved = resolve(raw, procs, sym);
    let columns = kind.columns();
    let mut b = ProfileBuilder::new(columns.sample_types, columns.period_type, info.period);

    // mapping[0] is the main executable of the first target, so pprof finds the binary.
    if let Some(pid) = info.main_pid {
        let main = procs.get(pid).and_then(|p| p.main_mapping(procs.exe(pid)));
        if let Some(m) = main {
            let flags = resolved
                .files
                .get(&file_id(&m.file))
                .copied()
                .unwrap_or_default();
            b.mapping(&user_mapping(m, flags));
        }
    }

    let kernel_mapping = kernel_mapping(raw).map(|m| b.mapping(&m));
    let mut not_locks = (0i64, 0i64);
    for s in &raw.samples {
        let mut labels = sample_labels(kind, raw, procs, s);
        if kind == ProfileKind::Mutex {
            let mechanism = lock_mechanism::classify(user_function_names(s, procs, &resolved));
            match mechanism.label() {
                Some(label) => labels.push(label),
                None => {
                    not_locks.0 += s.values.first().copied().unwrap_or(0);
                    not_locks.1 += s.values.get(1).copied().unwrap_or(0);
                    continue;
                }
            }
        }
        let mut locations = sample_locations(&mut b, s, procs, &resolved, kernel_mapping);
        if info.thread_roots {
            locations.extend(thread_roots(&mut b, s, &labels));
        }
        b.sample(locations, &s.values, &labels);
    }
    if kind == ProfileKind::Alloc {
        // The allocator's own frames: pprof drops them so the leaf is malloc's caller.
        b.drop_frames(ALLOCATOR_FRAMES);
    }
    for c in &info.comments {
        b.comment(c);
    }
    if kind == ProfileKind::Mutex && not_locks.0 > 0 {
        b.comment(&format!(
            "left out: {} futex waits ({} ns) under condition variables, semaphores, joins or barriers, which wait for an event, not a lock",
            not_locks.0, not_locks.1
        ));
    }
    b.time(info.start_unix_nanos, info.duration_nanos);
    b.build()
}

fn user_mapping(m: &crate::procs::ExecMapping, flags: FileFlags) -> MappingInfo {
    MappingInfo {
        start: m.start,
        limit: m.end,
        file_offset: m.file_offset,
        path: m.file.path.clone(),
        build_id: m.file.build_id.clone(),
        has_functions: flags.functions,
        has_filenames: flags.filenames,
        has_line_numbers: flags.lines,
        has_inline_frames: flags.inlines,
    }
}

/// One mapping spanning every kernel address in the profile.
fn kernel_mapping(raw: &RawProfile) -> Option<MappingInfo> {
    let addrs = raw.samples.iter().flat_map(|s| s.kernel.iter().copied());
    let (lo, hi) = addrs.fold(None, |acc: Option<(u64, u64)>, a| match acc {
        None => Some((a, a)),
        Some((lo, hi)) => Some((lo.min(a), hi.max(a))),
    })?;
    Some(MappingInfo {
        start: lo.saturating_sub(1),
        limit: hi.saturating_add(1),
        path: KERNEL_MAPPING.into(),
        has_functions: true,
        ..Default::default()
    })
}

/// Location ids for a sample, leaf first: kernel frames, then user frames.
fn sample_locations(
    b: &mut ProfileBuilder,
    s: &RawSample,
    procs: &ProcessTable,
    resolved: &Resolved,
    kernel_mapping: Option<u64>,
) -> Vec<u64> {
    let mut ids = Vec::with_capacity(s.kernel.len() + s.user.len());
    if let Some(km) = kernel_mapping {
        let skip = if s.from_tracepoint {
            tracing_prefix_len(&s.kernel, resolved)
        } else {
            0
        };
        for (i, &addr) in s.kernel.iter().enumerate().skip(skip) {
            let a = lookup_addr(i, addr);
            let id = match b.location_id(km, a) {
                Some(id) => id,
                None => {
                    let frames = resolved.kernel.get(&a).map(Vec::as_slice).unwrap_or(&[]);
                    b.location(km, a, frames)
                }
            };
            ids.push(id);
        }
    }
    // A user stack below a kernel stack continues from the user IP, which is a leaf-like
    // exact address only when there is no kernel part; in both cases [0] is the IP.
    let info = procs.get(s.pid);
    for (i, &addr) in s.user.iter().enumerate() {
        if let Some(end) = StackEnd::from_marker(addr) {
            // The unwinder stopped early: say so where the stack's root would be.
            ids.extend(end.root_frame().map(|name| b.synthetic_location(name)));
            break;
        }
        let a = lookup_addr(i, addr);
        let id = match info.and_then(|p| p.mapping_of(a)) {
            Some(m) => {
                let fid = file_id(&m.file);
                let flags = resolved.files.get(&fid).copied().unwrap_or_default();
                let mapping_id = b.mapping(&user_mapping(m, flags));
                match b.location_id(mapping_id, a) {
                    Some(id) => id,
                    None => {
                        let frames = resolved
                            .user
                            .get(&(fid, m.file_offset_of(a)))
                            .map(Vec::as_slice)
                            .unwrap_or(&[]);
                        b.location(mapping_id, a, frames)
                    }
                }
            }
            // JIT code, named by the process's perf map where it has one.
            None if info.is_some_and(|p| p.is_anonymous_code(a)) => {
                jit_location(b, procs, s.pid, a)
            }
            // A frame-pointer walk through code built without frame pointers reads data
            // as return addresses; the first one outside every executable mapping ends the
            // chain, and the rest is noise.
            None if i > 0 && info.is_some() => break,
            // An IP in JIT code, or a process we never saw: the address alone.
            None => b.location(0, a, &[]),
        };
        ids.push(id);
    }
    ids
}

/// The location of an address in anonymous executable memory: under a mapping named after
/// the process's perf map, with the map's name for it, or the address alone.
fn jit_location(b: &mut ProfileBuilder, procs: &ProcessTable, pid: u32, addr: u64) -> u64 {
    let (Some((start, limit)), Some(symbol)) = (
        procs.get(pid).and_then(|p| p.anonymous_code(addr)),
        procs.jit_symbol(pid, addr),
    ) else {
        return b.location(0, addr, &[]);
    };
    let mapping = b.mapping(&MappingInfo {
        start,
        limit,
        path: format!("perf-{pid}.map"),
        has_functions: true,
        ..Default::default()
    });
    match b.location_id(mapping, addr) {
        Some(id) => id,
        None => {
            let frame = FrameInfo {
                name: symbol.name.to_string(),
                ..Default::default()
            };
            b.location(mapping, addr, &[frame])
        }
    }
}

/// The function names of a sample's user frames, innermost first, inlined callees before
/// the functions they were inlined into.
fn user_function_names<'r>(
    s: &RawSample,
    procs: &ProcessTable,
    resolved: &'r Resolved,
) -> Vec<&'r str> {
    let info = procs.get(s.pid);
    let mut names = Vec::new();
    for (i, &addr) in s.user.iter().enumerate() {
        let a = lookup_addr(i, addr);
        let Some(m) = info.and_then(|p| p.mapping_of(a)) else {
            continue;
        };
        if let Some(frames) = resolved.user.get(&(file_id(&m.file), m.file_offset_of(a))) {
            names.extend(frames.iter().map(|f| f.name.as_str()));
        }
    }
    names
}

/// How many innermost kernel frames of a tracepoint's stack are the tracing machinery (the
/// BPF program, the tracepoint's iterator) or the scheduler's own functions, which say
/// nothing about why the thread left the CPU.
fn tracing_prefix_len(kernel: &[u64], resolved: &Resolved) -> usize {
    kernel
        .iter()
        .enumerate()
        .take_while(|&(i, &addr)| {
            let a = lookup_addr(i, addr);
            resolved.sched_text.as_ref().is_some_and(|r| r.contains(&a))
                || resolved
                    .kernel
                    .get(&a)
                    .and_then(|frames| frames.last())
                    .is_some_and(|f| is_tracing_machinery(&f.name))
        })
        .count()
}

fn is_tracing_machinery(name: &str) -> bool {
    [
        "bpf_",
        "__bpf_",
        "__traceiter_",
        "trace_call_bpf",
        "__probestub_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The synthetic roots of `--thread-roots`: the thread, then (outermost) its process.
fn thread_roots(b: &mut ProfileBuilder, s: &RawSample, labels: &[(&str, LabelValue)]) -> [u64; 2] {
    let name = |key: &str| {
        labels.iter().find_map(|(k, v)| match v {
            LabelValue::Str(s) if *k == key => Some(s.as_str()),
            _ => None,
        })
    };
    let thread = format!("{} [{}]", name("thread_comm").unwrap_or("?"), s.tid);
    let process = format!("{} [{}]", name("comm").unwrap_or("?"), s.pid);
    [
        b.synthetic_location(&thread),
        b.synthetic_location(&process),
    ]
}

/// The label a kind adds from the BPF key's `extra`.
fn kind_label(kind: ProfileKind, extra: u32) -> Option<(&'static str, LabelValue)> {
    match kind {
        ProfileKind::OffCpu => char::from_u32(extra)
            .filter(char::is_ascii_graphic)
            .map(|c| ("state", LabelValue::Str(c.to_string()))),
        ProfileKind::ThreadCreate => {
            let created = if extra == created_kind::CREATED_PROCESS.0 {
                "process"
            } else {
                "thread"
            };
            Some(("created", LabelValue::Str(created.into())))
        }
        ProfileKind::Alloc => Some((
            "bytes",
            LabelValue::Num {
                value: i64::from(extra),
                unit: Some("bytes"),
            },
        )),
        // mutex's label comes from the symbols (see lock_mechanism).
        ProfileKind::Cpu | ProfileKind::Wall | ProfileKind::Mutex => None,
    }
}

fn sample_labels(
    kind: ProfileKind,
    raw: &RawProfile,
    procs: &ProcessTable,
    s: &RawSample,
) -> Vec<(&'static str, LabelValue)> {
    let names = raw.threads.get(&s.tid);
    let proc_info = procs.get(s.pid);
    let comm = names
        .map(|n| n.proc_comm.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| proc_info.map(|p| p.comm.clone()))
        .unwrap_or_default();
    let thread_comm = names
        .map(|n| n.comm.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| proc_info.and_then(|p| p.threads.get(&s.tid).cloned()))
        .unwrap_or_default();
    let mut labels = vec![
        ("pid", LabelValue::num(i64::from(s.pid))),
        ("tid", LabelValue::num(i64::from(s.tid))),
    ];
    if !comm.is_empty() {
        labels.push(("comm", LabelValue::Str(comm)));
    }
    if !thread_comm.is_empty() {
        labels.push(("thread_comm", LabelValue::Str(thread_comm)));
    }
    labels.extend(kind_label(kind, s.extra));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_step_back_into_the_call() {
        assert_eq!(lookup_addr(0, 0x1000), 0x1000);
        assert_eq!(lookup_addr(1, 0x1000), 0xfff);
    }

    #[test]
    fn kernel_mapping_spans_kernel_addresses() {
        let raw = RawProfile {
            samples: vec![RawSample {
                pid: 1,
                tid: 1,
                user: vec![],
                kernel: vec![0xffff_ffff_8100_0010, 0xffff_ffff_8100_0000],
                extra: 0,
                values: vec![1, 1],
                from_tracepoint: false,
            }],
            ..Default::default()
        };
        let m = kernel_mapping(&raw).unwrap();
        assert_eq!(m.path, "[kernel.kallsyms]");
        assert!(m.start < 0xffff_ffff_8100_0000 && m.limit > 0xffff_ffff_8100_0010);
        assert!(kernel_mapping(&RawProfile::default()).is_none());
    }

    #[test]
    fn samples_are_labelled_with_process_and_thread() {
        let mut raw = RawProfile::default();
        raw.threads.insert(
            8,
            crate::raw::ThreadNames {
                pid: 7,
                comm: "worker".into(),
                proc_comm: "app".into(),
            },
        );
        raw.samples.push(RawSample {
            pid: 7,
            tid: 8,
            user: vec![0x10],
            kernel: vec![],
            extra: u32::from(b'S'),
            values: vec![1, 10],
            from_tracepoint: true,
        });
        let p = build_profile(
            ProfileKind::OffCpu,
            &raw,
            &ProcessTable::default(),
            &Symbolizer::new(),
            &RecordingInfo::default(),
        );
        let s = |i: i64| p.string_table[i as usize].as_str();
        let labels: Vec<(String, String)> = p.sample[0]
            .label
            .iter()
            .map(|l| {
                let v = if l.str != 0 {
                    s(l.str).to_string()
                } else {
                    l.num.to_string()
                };
                (s(l.key).to_string(), v)
            })
            .collect();
        let want = [
            ("pid", "7"),
            ("tid", "8"),
            ("comm", "app"),
            ("thread_comm", "worker"),
            ("state", "S"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels, want);
        assert_eq!(p.sample[0].value, vec![1, 10]);
    }

    #[test]
    fn thread_roots_are_the_outermost_frames() {
        let mut b = ProfileBuilder::new(
            ProfileKind::Cpu.columns().sample_types,
            ProfileKind::Cpu.columns().period_type,
            1,
        );
        let s = RawSample {
            pid: 7,
            tid: 8,
            user: vec![],
            kernel: vec![],
            extra: 0,
            values: vec![1, 1],
            from_tracepoint: false,
        };
        let labels = [
            ("comm", LabelValue::Str("app".into())),
            ("thread_comm", LabelValue::Str("worker".into())),
        ];
        let [thread, process] = thread_roots(&mut b, &s, &labels);
        assert_eq!(
            thread_roots(&mut b, &s, &labels),
            [thread, process],
            "deduplicated"
        );
        let p = b.build();
        let name = |loc: u64| {
            let l = &p.location[loc as usize - 1];
            let f = &p.function[l.line[0].function_id as usize - 1];
            p.string_table[f.name as usize].clone()
        };
        assert_eq!(name(thread), "worker [8]");
        assert_eq!(name(process), "app [7]");
    }

    #[test]
    fn tracing_machinery_is_recognised() {
        assert!(is_tracing_machinery("bpf_trace_run4"));
        assert!(is_tracing_machinery("__traceiter_sched_switch"));
        assert!(!is_tracing_machinery("__schedule"));
        assert!(!is_tracing_machinery("schedule"));
    }
}
