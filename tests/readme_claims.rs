//! Claims of README.md that had no test of their own, each checked end to end: a workload of
//! tests/workloads/ recorded through the kernel, and the profile, the summary and the
//! comments decoded and compared with what README says.
//!
//! - `--max-unwind-memory`: a file without an `.eh_frame_hdr` whose whole table is bigger is
//!   unwound by frame pointers, and the comments say so:
//!   `max_unwind_memory_file_over_the_limit_is_unwound_by_frame_pointers`.
//! - `--max-entries N`: samples that find the map of counts full are dropped and counted
//!   (`counts_map_full`), and `samples` counts them before any drop:
//!   `max_entries_full_map_drops_and_counts_samples`.
//! - A kind that cannot run gets `rprof-bpf: warning: no KIND profile: ...` and the other
//!   kinds still run: `kind_that_cannot_run_is_a_warning_and_the_others_still_run`.
//! - Kernel frames are named from /proc/kallsyms when the kernel-symbol program cannot be
//!   used: `kallsyms_names_kernel_frames_when_the_kernel_symbol_program_cannot_run`.
//! - Requirements, root or CAP_BPF and CAP_PERFMON:
//!   `cap_bpf_and_cap_perfmon_record_a_process_of_the_same_user`.
//! - `-p`, a thread id stands for its process: `thread_id_stands_for_its_process`.
//! - `-p` without `--seconds` records until every target has exited:
//!   `pid_without_seconds_ends_when_the_target_exits`.
//! - `--block-rate` applies to wall:
//!   `wall_block_rate_samples_short_blocks_and_keeps_totals`.
//! - mutex copies as much stack as `--call-graph dwarf,SIZE` says (16 KiB by default), and
//!   always uses dwarf: `mutex_stack_copy_follows_call_graph_dwarf_size`.
//!
//! Every recording test holds [`common::exclusive_cpu`]: most compare sample counts or
//! wall-clock totals with what the workload did, which other tests on the 2 CPUs disturb.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The default sampling frequency.
const HZ: f64 = 99.0;
/// fp_paths built by GCC without frame pointers anywhere.
const NO_FP: &[&str] = &["-O2", "-g", "-fomit-frame-pointer", "-pthread"];
/// The counters whose samples are in no profile value (README's counter table: "Samples
/// dropped because ...", and the copies "lost").
const DROPPING: &[&str] = &[
    "counts_map_full",
    "stack_map_full",
    "stack_collision",
    "stack_alloc_failed",
    "stack_samples_lost",
];
/// A sample's thread and its stack (each frame's name and address), leaf first.
type ThreadStack = (Option<i64>, Vec<(String, u64)>);
/// The comment README promises for files over `--max-unwind-memory`.
const OVER_THE_LIMIT: &str = "files over --max-unwind-memory were unwound by frame pointers only";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The summary line of `kind` (`rprof-bpf: cpu: 48 samples in 2.01s, ...; wrote ...`),
/// after its `rprof-bpf: KIND: ` prefix.
fn summary_line<'a>(run: &'a RunOutput, kind: &str) -> &'a str {
    let prefix = format!("rprof-bpf: {kind}: ");
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no `{prefix}` summary line\n{}", run.describe()))
}

/// The number of events a summary line starts with.
fn summary_events(run: &RunOutput, kind: &str) -> i64 {
    let line = summary_line(run, kind);
    line.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {line:?}"))
}

/// The `name=value` counters of a summary line (those that are not zero).
fn summary_counters(run: &RunOutput, kind: &str) -> BTreeMap<String, i64> {
    let line = summary_line(run, kind);
    let head = line.split("; wrote").next().unwrap_or("");
    head.split(", ")
        .filter_map(|field| field.split_once('='))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

/// The `name=value` pairs of the profile's `counters:` comment.
fn comment_counters(p: &Decoded) -> BTreeMap<String, i64> {
    let comments = p.comments();
    let line = comments
        .iter()
        .find_map(|c| c.strip_prefix("counters: "))
        .unwrap_or_else(|| panic!("no `counters:` comment\n{}", p.report()));
    line.split(' ')
        .filter_map(|field| field.split_once('='))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

/// The count of files the `--max-unwind-memory` comment names, if it is there.
fn files_over_the_limit(p: &Decoded) -> Option<u64> {
    p.comments().iter().find_map(|c| {
        let count = c
            .strip_prefix("unwind tables: ")?
            .strip_suffix(OVER_THE_LIMIT)?;
        Some(
            count
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("bad count in the comment {c:?}: {e}")),
        )
    })
}

/// Runs `rprof-bpf record -p PID --seconds SECONDS -o OUT EXTRA...` on a workload that must
/// outlive it, and decodes the profile.
fn record_pid(w: &Workload, out: &Path, seconds: &str, extra: &[&str]) -> (RunOutput, Decoded) {
    let pid = w.pid.to_string();
    let mut args = vec![
        "-p",
        &pid,
        "--seconds",
        seconds,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = record(&args, Duration::from_secs(90));
    run.assert_success();
    assert!(
        !w.has_exited(),
        "{} exited before the recording ended; the numbers would be meaningless\n{}",
        w.name,
        run.describe()
    );
    eprintln!("{}", run.stderr.trim());
    (run, decode(out))
}

/// The worker threads of a running fp_paths (tid -> name).
fn fp_paths_workers(w: &Workload) -> BTreeMap<u32, String> {
    let workers: BTreeMap<u32, String> = w
        .threads()
        .into_iter()
        .filter(|(_, name)| name.starts_with("worker-"))
        .collect();
    assert_eq!(workers.len(), 2, "fp_paths workers: {workers:?}");
    workers
}

fn is_worker(s: &StackSample) -> bool {
    s.str("thread_comm")
        .is_some_and(|t| t.starts_with("worker-"))
}

/// Whether a worker's stack goes all the way from hot_leaf to the thread's start:
/// hot_leaf <- path_a|path_b <- worker_main <- start_thread (libc).
fn reaches_thread_start(s: &StackSample) -> bool {
    let user = s.user_callers();
    let at = |i: usize| user.get(i).copied();
    at(0) == Some("hot_leaf")
        && matches!(at(1), Some("path_a" | "path_b"))
        && at(2) == Some("worker_main")
        && user[3..]
            .iter()
            .any(|n| matches!(base_name(n), "start_thread" | "clone3" | "clone"))
}

/// The heaviest user stacks (by the first value) of the samples matching `within`, for
/// failure messages.
fn heaviest_stacks(p: &Decoded, n: usize, within: impl Fn(&StackSample) -> bool) -> String {
    let mut rows: BTreeMap<String, i64> = BTreeMap::new();
    for s in p.samples.iter().filter(|s| within(s)) {
        *rows.entry(s.user_callers().join(" <- ")).or_insert(0) += s.values[0];
    }
    let mut rows: Vec<(String, i64)> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows.iter()
        .take(n)
        .map(|(stack, v)| format!("  {v:8}  {stack}\n"))
        .collect()
}

/// A sample count against the CPU time it stands for: HZ samples a second. On a shared
/// machine a thread holds the CPU at a tick by chance, so the count varies like a binomial
/// one, by at most about its square root: within 4 of those (and 5 samples for the CPU
/// clock's ticks at the window's ends).
fn assert_samples_match_cpu(count: i64, cpu: f64, what: &str, context: &str) {
    let expected = HZ * cpu;
    let margin = 4.0 * expected.sqrt() + 5.0;
    assert!(
        (count as f64 - expected).abs() <= margin,
        "{what}: {count} samples, expected {expected:.0} = {HZ} Hz x the {cpu:.2} CPU seconds \
         it got in the profile's window, within {margin:.0}\n{context}"
    );
}

/// A copy of `source` without its `.eh_frame_hdr` section (objcopy, as the unwinder's own
/// tests do in src/unwind/fixtures.rs), checked to still hold `.eh_frame`.
fn without_search_table(source: &Path, copy: &Path) -> PathBuf {
    let status = Command::new("objcopy")
        .arg("--remove-section=.eh_frame_hdr")
        .arg(source)
        .arg(copy)
        .status()
        .unwrap_or_else(|e| panic!("cannot run objcopy (binutils): {e}"));
    assert!(status.success(), "objcopy {} failed", source.display());
    let data = std::fs::read(copy).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    use object::Object;
    assert!(
        elf.section_by_name(".eh_frame_hdr").is_none()
            && elf.section_by_name(".eh_frame").is_some(),
        "{} should have .eh_frame and no .eh_frame_hdr",
        copy.display()
    );
    copy.to_path_buf()
}

fn unix_nanos_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A field of /proc/PID/task/TID/status, as a number (the first, for `Uid` and the like).
fn task_status_number(pid: u32, tid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/task/{tid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}

// ---------------------------------------------------------------------------------------
// --max-unwind-memory: a file without .eh_frame_hdr over the limit
// ---------------------------------------------------------------------------------------

/// The share of the workers' samples whose stack reaches the thread's start, their count,
/// and how many files the comments say were over the limit.
fn unwind_numbers(p: &Decoded) -> (f64, i64, Option<u64>) {
    (
        p.share_within("samples", is_worker, reaches_thread_start),
        p.total_where("samples", is_worker),
        files_over_the_limit(p),
    )
}

/// README: "A file without an `.eh_frame_hdr` whose whole table alone is bigger [than
/// --max-unwind-memory] is unwound by frame pointers, and the profile's comments say so."
/// fp_paths without its `.eh_frame_hdr` (so the unwinder must build its whole table) and a
/// limit of 256 bytes, far below that table: with frame pointers in the build the stacks
/// are whole and the comment is there. The same file built without frame pointers shows
/// that this rests on the frame pointers: within the default limit its whole table unwinds
/// it (and no comment), over the limit its stacks stop short of the thread's start.
#[test]
fn max_unwind_memory_file_over_the_limit_is_unwound_by_frame_pointers() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-unwind-memory");
    let limit = ["--max-unwind-memory", "256"];

    // Frame pointers everywhere (clang with C_FP_FLAGS): a frame-pointer walk finds every
    // caller.
    let built = build_c_fp("fp_paths.c", dir.path(), "fp_paths_fp");
    let fp_bin = without_search_table(&built, &dir.join("fp_nohdr"));
    let w = Workload::start(&fp_bin, &["30"]);
    let (_, p) = record_pid(&w, &dir.join("fp-over.pb.gz"), "3", &limit);
    drop(w);
    let (whole, workers, over) = unwind_numbers(&p);
    let context = || {
        format!(
            "{}{}",
            heaviest_stacks(&p, 8, is_worker),
            p.report_where("the workers", is_worker)
        )
    };
    eprintln!(
        "frame pointers, limit 256 B: {workers} worker samples, {:.1}% reach the thread's \
         start; files over the limit: {over:?}",
        100.0 * whole
    );
    assert!(
        over.is_some_and(|n| n >= 1),
        "no comment `unwind tables: N {OVER_THE_LIMIT}` with a 256-byte limit and a file \
         without .eh_frame_hdr\n{}",
        context()
    );
    assert!(
        workers >= 30,
        "only {workers} worker samples\n{}",
        context()
    );
    assert!(
        whole >= 0.95,
        "over the limit, the build with frame pointers should be unwound whole by frame \
         pointers, but only {:.1}% of the workers' samples reach the thread's start\n{}",
        100.0 * whole,
        context()
    );

    // No frame pointers (GCC, -fomit-frame-pointer): only the table finds the callers.
    let built = build_c_exact("gcc", "fp_paths.c", dir.path(), "fp_paths_nofp", NO_FP);
    let nofp_bin = without_search_table(&built, &dir.join("nofp_nohdr"));
    let w = Workload::start(&nofp_bin, &["30"]);
    let (_, within_p) = record_pid(&w, &dir.join("nofp-default.pb.gz"), "3", &[]);
    let (_, over_p) = record_pid(&w, &dir.join("nofp-over.pb.gz"), "3", &limit);
    drop(w);
    let (within_whole, within_workers, within_over) = unwind_numbers(&within_p);
    let (over_whole, over_workers, over_count) = unwind_numbers(&over_p);
    eprintln!(
        "no frame pointers: default limit: {within_workers} worker samples, {:.1}% whole, \
         over the limit: {within_over:?}; limit 256 B: {over_workers} worker samples, \
         {:.1}% whole, over the limit: {over_count:?}",
        100.0 * within_whole,
        100.0 * over_whole
    );
    assert!(
        within_over.is_none() && within_workers >= 30 && within_whole >= 0.95,
        "within the default limit, the file's whole table should unwind it (and no comment \
         say otherwise): {within_workers} worker samples, {:.1}% reach the thread's start, \
         files over the limit {within_over:?}\n{}{}",
        100.0 * within_whole,
        heaviest_stacks(&within_p, 8, is_worker),
        within_p.report()
    );
    assert!(
        over_count.is_some_and(|n| n >= 1) && over_workers >= 30,
        "no comment `unwind tables: N {OVER_THE_LIMIT}`, or too few samples \
         ({over_workers})\n{}",
        over_p.report()
    );
    assert!(
        over_whole < 0.5,
        "over the limit, a build without frame pointers still reaches the thread's start in \
         {:.1}% of the workers' samples: the file was not left to frame pointers\n{}{}",
        100.0 * over_whole,
        heaviest_stacks(&over_p, 8, is_worker),
        over_p.report()
    );
}

// ---------------------------------------------------------------------------------------
// --max-entries N: the in-kernel map of counts full
// ---------------------------------------------------------------------------------------

/// README: `--max-entries N` is "the capacity of the in-kernel map of counts, in distinct
/// (thread, stack) pairs ... Samples that find it full are dropped and counted
/// (`counts_map_full`)", and `samples` counts "samples that hit a target, before any
/// drop". With N = 2 and fp_paths (two threads, each with two hot stacks), the summary
/// shows counts_map_full, the profile is still written with at most 2 (thread, stack)
/// pairs, and its samples plus the dropped ones are the summary's samples; the comments
/// carry the same counters.
///
/// `--call-graph fp`: with the default `dwarf`, a user thread's samples go to user space
/// with a copy of their stack and are summed there, never in the map (bpf/cpu.bpf.c).
#[test]
fn max_entries_full_map_drops_and_counts_samples() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-max-entries");
    // The in-kernel map holds frame-pointer walks (--call-graph fp).
    let bin = build_c_fp("fp_paths.c", dir.path(), "fp_paths");
    let w = Workload::start(&bin, &["30"]);
    fp_paths_workers(&w);
    let out = dir.join("full.pb.gz");
    let (run, p) = record_pid(&w, &out, "3", &["--call-graph", "fp", "--max-entries", "2"]);
    let report = p.report();
    let counters = summary_counters(&run, "cpu");
    let events = summary_events(&run, "cpu");
    let full = counters.get("counts_map_full").copied().unwrap_or(0);
    assert!(
        full > 0,
        "no counts_map_full in the summary with --max-entries 2 and 4 hot (thread, stack) \
         pairs\n{}\n{report}",
        run.describe()
    );

    let pairs: BTreeSet<ThreadStack> = p
        .samples
        .iter()
        .map(|s| {
            let frames = s
                .frames
                .iter()
                .map(|f| (f.name.clone(), f.address))
                .collect();
            (s.tid(), frames)
        })
        .collect();
    assert!(
        !pairs.is_empty() && pairs.len() <= 2,
        "{} distinct (thread, stack) pairs in the profile, expected 1 or 2 (the map's \
         capacity)\n{report}",
        pairs.len()
    );

    let present = p.total("samples");
    let dropped: i64 = DROPPING
        .iter()
        .map(|name| counters.get(*name).copied().unwrap_or(0))
        .sum();
    eprintln!(
        "--max-entries 2: summary {events} samples = {present} in the profile + {dropped} \
         dropped (counts_map_full={full})"
    );
    assert_eq!(
        present + dropped,
        events,
        "the profile's {present} samples plus the {dropped} dropped ({counters:?}) should be \
         the summary's {events} samples, counted before any drop\n{report}"
    );
    let in_comments = comment_counters(&p);
    assert_eq!(
        (
            in_comments.get("samples").copied(),
            in_comments.get("counts_map_full").copied()
        ),
        (Some(events), Some(full)),
        "the comments' counters should be the summary's\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// A kind that cannot run, while the others run
// ---------------------------------------------------------------------------------------

/// README: "A kind that cannot run on this kernel gets a `rprof-bpf: warning: no KIND
/// profile: ...` line that names what is missing, and the other kinds of the same
/// recording still run." Every kind loads on this kernel, so the kind that cannot run is
/// alloc on a target with no allocator: no_malloc, static and without libc, defines no
/// malloc. Recorded with cpu and off-cpu: one warning for alloc naming malloc, the
/// program and the pid; cpu and off-cpu are written (off-cpu with the sleeping thread's
/// whole window), and no alloc file.
#[test]
fn kind_that_cannot_run_is_a_warning_and_the_others_still_run() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-unavailable-kind");
    let bin = build_c_with(
        "no_malloc.c",
        dir.path(),
        "no_malloc",
        &[
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
        ],
    );
    let w = Workload::start(&bin, &["60"]);
    let base = dir.join("prof.pb.gz");
    let pid = w.pid.to_string();
    let run = record(
        &[
            "--type",
            "cpu,off-cpu,alloc",
            "-p",
            &pid,
            "--seconds",
            "2",
            "-o",
            base.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    run.assert_success();
    assert!(!w.has_exited(), "the target must be left running");
    eprintln!("{}", run.stderr.trim());

    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("rprof-bpf: warning: "))
        .collect();
    let program = bin.canonicalize().unwrap();
    assert_eq!(
        warnings.len(),
        1,
        "expected one warning, for alloc\n{}",
        run.describe()
    );
    let warning = warnings[0];
    for want in [
        "rprof-bpf: warning: no alloc profile: ".to_string(),
        "malloc".to_string(),
        program.display().to_string(),
        w.pid.to_string(),
    ] {
        assert!(
            warning.contains(&want),
            "the warning does not say {want:?}: {warning}\n{}",
            run.describe()
        );
    }
    assert!(
        !run.stderr.contains("rprof-bpf: alloc: ") && !kind_path(&base, "alloc").exists(),
        "no alloc profile should be written\n{}",
        run.describe()
    );

    // The other kinds ran over the same window.
    summary_line(&run, "cpu");
    let blocks = summary_events(&run, "off-cpu");
    let cpu = decode(&kind_path(&base, "cpu"));
    cpu.assert_layout(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        (1e9 / HZ) as i64,
    );
    let off = decode(&kind_path(&base, "off-cpu"));
    off.assert_layout(
        &[("switches", "count"), ("off_cpu", "nanoseconds")],
        ("off_cpu", "nanoseconds"),
        1,
    );
    let asleep = off.total_where("off_cpu", |s| s.pid() == Some(w.pid as i64));
    let window = off.profile.duration_nanos;
    eprintln!(
        "off-cpu: {blocks} blocks, {:.0} ms asleep in a {:.0} ms window",
        asleep as f64 / 1e6,
        window as f64 / 1e6
    );
    assert!(
        blocks > 0 && (asleep - window).abs() as f64 <= 0.15 * window as f64,
        "no_malloc sleeps all the time: its off-CPU total {asleep} ns should be the window \
         {window} ns within 15% ({blocks} blocks)\n{}",
        off.report()
    );
}

// ---------------------------------------------------------------------------------------
// Kernel names from /proc/kallsyms
// ---------------------------------------------------------------------------------------

const SECCOMP_HELPER: &str = "kernel_symbol_program_helper";

/// Makes `cmd` run under a seccomp filter that fails `bpf(BPF_PROG_TEST_RUN, ...)` with
/// EPERM and allows everything else: the kernel-symbol program then loads but cannot run,
/// while every collector loads and attaches as usual (they never use that command).
fn deny_bpf_prog_test_run(cmd: &mut Command) {
    const BPF_PROG_TEST_RUN: u32 = 10;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half, little-endian).
    const LD_ABS_W: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_ABS_W, 0, 0, 4),
        op(JEQ_K, 0, 5, AUDIT_ARCH),
        op(LD_ABS_W, 0, 0, 0),
        op(JEQ_K, 0, 3, libc::SYS_bpf as u32),
        op(LD_ABS_W, 0, 0, 16),
        op(JEQ_K, 0, 1, BPF_PROG_TEST_RUN),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: only prctl and seccomp between fork and exec, on memory owned by the closure.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Text symbols of /proc/kallsyms: address -> names there.
fn kallsyms_text() -> BTreeMap<u64, Vec<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if addr != 0 && matches!(kind, "t" | "T") {
            out.entry(addr).or_default().push(name.to_string());
        }
    }
    out
}

/// Not a test of its own: run by the kallsyms test as a child, with and without the
/// seccomp filter, to show what the filter does to the kernel-symbol program.
#[test]
#[ignore = "a helper that kallsyms_names_kernel_frames_when_the_kernel_symbol_program_cannot_run runs"]
fn kernel_symbol_program_helper() {
    let symbols = kallsyms_text();
    let Some(addr) = symbols
        .iter()
        .find(|(_, names)| names.iter().any(|n| n == "vfs_read"))
        .map(|(a, _)| *a)
    else {
        // Not root: /proc/kallsyms hides the addresses.
        println!("no address for vfs_read in /proc/kallsyms");
        return;
    };
    match rprof_bpf::kernel_symbols::name_addresses(&[addr]) {
        Ok(names) => println!("kernel-symbol program answered: {names:?}"),
        Err(e) => println!("kernel-symbol program failed: {e}"),
    }
}

/// Runs [`kernel_symbol_program_helper`] in a child of this test binary, with the seccomp
/// filter or without; returns what it printed.
fn kernel_symbol_program_in_child(filtered: bool) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        SECCOMP_HELPER,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    if filtered {
        deny_bpf_prog_test_run(&mut cmd);
    }
    let out = Running::start(cmd).finish(Duration::from_secs(60));
    out.assert_success();
    out.stdout
}

/// README: kernel frames are named by a small BPF program, and "kallsyms is still read when
/// that program cannot load" (src/symbolize.rs: when it cannot load or run). rprof-bpf has
/// no switch or environment variable for this, so the test takes the program away from
/// outside: rprof-bpf runs under a seccomp filter that fails BPF_PROG_TEST_RUN, the one
/// command that program needs and the collectors do not. A child of this binary shows that
/// the program fails under the filter (and answers without it). The profile of a process
/// busy in read(2) then still has its kernel frames named, each by the /proc/kallsyms
/// symbol that holds its address.
#[test]
fn kallsyms_names_kernel_frames_when_the_kernel_symbol_program_cannot_run() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let free = kernel_symbol_program_in_child(false);
    assert!(
        free.contains("kernel-symbol program answered: [Symbol"),
        "without the filter, the kernel-symbol program should name vfs_read:\n{free}"
    );
    let filtered = kernel_symbol_program_in_child(true);
    assert!(
        filtered.contains("kernel-symbol program failed: cannot run the kernel-symbol BPF program"),
        "under the filter, the kernel-symbol program should fail to run:\n{filtered}"
    );

    let dir = TempDir::new("claims-kallsyms");
    let bin = build_c("syscalls.c", dir.path(), "syscalls");
    let w = Workload::start(&bin, &["30"]);
    let out = dir.join("sys.pb.gz");
    let pid = w.pid.to_string();
    let mut cmd = record_cmd(&["-p", &pid, "--seconds", "2", "-o", out.to_str().unwrap()]);
    deny_bpf_prog_test_run(&mut cmd);
    let run = Running::start(cmd).finish(Duration::from_secs(90));
    run.assert_success();
    eprintln!("{}", run.stderr.trim());
    let p = decode(&out);
    let report = p.report();

    let symbols = kallsyms_text();
    // The symbol holding an address: the last one starting at or below it.
    let holder = |addr: u64| symbols.range(..=addr).next_back().map(|(_, names)| names);
    let mut kernel: BTreeMap<u64, String> = BTreeMap::new();
    for s in &p.samples {
        for f in s.frames.iter().filter(|f| f.kernel) {
            kernel.insert(f.address, f.name.clone());
        }
    }
    let named: Vec<(&u64, &String)> = kernel
        .iter()
        .filter(|(_, n)| !n.starts_with("0x"))
        .collect();
    let wrong: Vec<String> = named
        .iter()
        .filter(|(addr, name)| {
            // A return address is looked up one byte back; either way the symbol is the same
            // but at a function's very end.
            ![**addr, addr.saturating_sub(1)].iter().any(|&a| {
                holder(a).is_some_and(|names| {
                    names
                        .iter()
                        .any(|n| n == *name || n.strip_prefix("__pi_") == Some(name.as_str()))
                })
            })
        })
        .map(|(addr, name)| format!("{addr:#x} {name} (kallsyms: {:?})", holder(**addr)))
        .collect();
    eprintln!(
        "{} kernel addresses, {} named, {} not as kallsyms names them",
        kernel.len(),
        named.len(),
        wrong.len()
    );
    assert!(
        kernel.len() >= 5,
        "only {} kernel addresses in a profile of read(2)\n{report}",
        kernel.len()
    );
    assert!(
        named.len() * 100 >= kernel.len() * 95,
        "only {} of {} kernel addresses are named\n{report}",
        named.len(),
        kernel.len()
    );
    assert!(
        wrong.is_empty(),
        "kernel frames not named as /proc/kallsyms names their address:\n{}\n{report}",
        wrong.join("\n")
    );
    assert!(
        p.samples.iter().any(|s| s.has_kernel_frame(&[
            "vfs_read",
            "ksys_read",
            "__x64_sys_read",
            "__arm64_sys_read"
        ])),
        "the read path is missing from the kernel frames\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// CAP_BPF + CAP_PERFMON, not root
// ---------------------------------------------------------------------------------------

/// uid and gid of the user `nobody`.
fn nobody() -> (u32, u32) {
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: getpwnam with a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user nobody on this machine");
    // SAFETY: checked non-null above.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

/// README, Requirements: "Root, or the capabilities CAP_BPF and CAP_PERFMON (plus
/// CAP_SYS_RESOURCE on kernels that still charge BPF maps to the locked-memory limit)".
/// As the user nobody with exactly CAP_BPF and CAP_PERFMON (setpriv, ambient
/// capabilities), rprof-bpf records a cpu profile of an fp_paths that nobody runs: the
/// samples match the CPU time the workers got, and their stacks are whole and named.
#[test]
fn cap_bpf_and_cap_perfmon_record_a_process_of_the_same_user() {
    if !require_bpf() {
        return;
    }
    assert!(have_program("setpriv"), "setpriv (util-linux) is needed");
    let _cpu = exclusive_cpu();
    let (uid, gid) = nobody();
    let dir = TempDir::new("claims-caps");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Its own copy of rprof-bpf, since the build directory may be closed to other users.
    let rprof = dir.join("rprof-bpf");
    std::fs::copy(rprof_bin(), &rprof).unwrap();
    std::fs::set_permissions(&rprof, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let c_out = std::ffi::CString::new(out_dir.to_str().unwrap()).unwrap();
    // SAFETY: chown on a path we just made.
    assert_eq!(unsafe { libc::chown(c_out.as_ptr(), uid, gid) }, 0);
    let out = out_dir.join("cpu.pb.gz");

    let as_nobody = [
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".to_string(),
    ];
    let mut workload_args: Vec<&str> = as_nobody.iter().map(String::as_str).collect();
    workload_args.extend([bin.to_str().unwrap(), "30"]);
    let w = Workload::start(Path::new("setpriv"), &workload_args);
    let owner = task_status_number(w.pid, w.pid, "Uid");
    assert_eq!(owner, uid as u64, "the workload should run as nobody");
    let workers = fp_paths_workers(&w);

    let monitor = CpuMonitor::start(w.pid);
    let pid = w.pid.to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args(&as_nobody)
        .args(["--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"])
        .arg(&rprof)
        .args(["record", "-p", &pid, "--seconds", "3", "-o"])
        .arg(&out);
    let running = Running::start(cmd);
    // setpriv execs rprof-bpf: the same process, once its name changes.
    let status_path = format!("/proc/{}/status", running.pid());
    let mut status = String::new();
    let execed = wait_until(Duration::from_secs(10), || {
        status = std::fs::read_to_string(&status_path).unwrap_or_default();
        status.contains("Name:\trprof-bpf")
    });
    let run = running.finish(Duration::from_secs(90));
    assert!(execed, "rprof-bpf did not start\n{}", run.describe());
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let cap_eff = u64::from_str_radix(field("CapEff:")[0], 16).unwrap();
    let uids = field("Uid:");
    assert!(
        uids.iter().all(|u| *u == uid.to_string()) && cap_eff == (1 << 38) | (1 << 39),
        "rprof-bpf should run as nobody (uids {uids:?}) with CAP_PERFMON and CAP_BPF alone \
         (CapEff {cap_eff:#x})"
    );
    run.assert_success();
    eprintln!("{}", run.stderr.trim());
    assert!(!w.has_exited(), "the workload ended before the recording");

    let p = decode(&out);
    let report = p.report();
    let start = p.profile.time_nanos;
    let cpu = monitor.cpu_between(start, start + p.profile.duration_nanos);
    let count = p.total("samples");
    assert_samples_match_cpu(count, cpu, "fp_paths run by nobody", &report);
    for s in &p.samples {
        assert_eq!(s.pid(), Some(w.pid as i64), "sample from elsewhere: {s:?}");
    }
    let per_tid = p.by_num_label("tid", "samples");
    assert!(
        workers.keys().all(|t| per_tid.contains_key(&(*t as i64))),
        "both workers should have samples: {per_tid:?}\n{report}"
    );
    let whole = p.share_within("samples", is_worker, reaches_thread_start);
    assert!(
        whole >= 0.95,
        "only {:.1}% of the workers' samples are named and whole, hot_leaf <- path_a|path_b \
         <- worker_main <- start_thread\n{}{report}",
        100.0 * whole,
        heaviest_stacks(&p, 8, is_worker)
    );
}

// ---------------------------------------------------------------------------------------
// -p TID
// ---------------------------------------------------------------------------------------

/// README, `-p`: "A thread id stands for its process." fp_paths recorded with `-p` and the
/// tid of its second worker: the samples are labelled with the process's pid, both
/// workers are there, each with its share of the CPU time, and the count matches the CPU
/// time of the whole process, not of the one thread.
#[test]
fn thread_id_stands_for_its_process() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-tid");
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let w = Workload::start(&bin, &["30"]);
    let workers = fp_paths_workers(&w);
    let (&given, _) = workers
        .iter()
        .find(|(_, name)| *name == "worker-2")
        .expect("worker-2");
    assert_ne!(given, w.pid);
    let monitor = CpuMonitor::start(w.pid);
    let thread_monitors: Vec<(u32, CpuMonitor)> = workers
        .keys()
        .map(|&tid| (tid, CpuMonitor::start_thread(w.pid, tid)))
        .collect();
    let out = dir.join("tid.pb.gz");
    let tid = given.to_string();
    let run = record(
        &["-p", &tid, "--seconds", "3", "-o", out.to_str().unwrap()],
        Duration::from_secs(90),
    );
    run.assert_success();
    assert!(!w.has_exited(), "the workload ended before the recording");
    eprintln!("{}", run.stderr.trim());
    let p = decode(&out);
    let report = p.report();
    for s in &p.samples {
        assert_eq!(
            s.pid(),
            Some(w.pid as i64),
            "a sample not labelled with the process's pid {}: {s:?}",
            w.pid
        );
    }
    let (start, end) = (
        p.profile.time_nanos,
        p.profile.time_nanos + p.profile.duration_nanos,
    );
    let cpu = monitor.cpu_between(start, end);
    let count = p.total("samples");
    assert_samples_match_cpu(count, cpu, "the whole process", &report);
    let per_tid = p.by_num_label("tid", "samples");
    for (tid, m) in thread_monitors {
        let cpu_share = m.cpu_between(start, end) / cpu.max(1e-9);
        let share = per_tid.get(&(tid as i64)).copied().unwrap_or(0) as f64 / count.max(1) as f64;
        eprintln!(
            "{} (tid {tid}{}): {:.1}% of the samples, {:.1}% of the CPU time",
            workers[&tid],
            if tid == given { ", the one given" } else { "" },
            100.0 * share,
            100.0 * cpu_share
        );
        assert!(
            (share - cpu_share).abs() <= 0.08 && share > 0.0,
            "thread {tid} ({}) has {:.1}% of the samples but {:.1}% of the process's CPU time; \
             per tid: {per_tid:?}\n{report}",
            workers[&tid],
            100.0 * share,
            100.0 * cpu_share
        );
    }
}

// ---------------------------------------------------------------------------------------
// -p without --seconds
// ---------------------------------------------------------------------------------------

/// README, `--seconds`: "Without it, `-p` and `-a` record until Ctrl-C (or SIGTERM) or
/// until every target has exited." An fp_paths that exits 4 s after starting, recorded with
/// `-p` and no `--seconds`: rprof-bpf ends by itself, successfully, and the profile's window
/// ends when the workload ended and holds the samples of its CPU time up to then.
#[test]
fn pid_without_seconds_ends_when_the_target_exits() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-until-exit");
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let w = Workload::start(&bin, &["4"]);
    let monitor = CpuMonitor::start(w.pid);
    let out = dir.join("until-exit.pb.gz");
    let pid = w.pid.to_string();
    let running = Running::start(record_cmd(&["-p", &pid, "-o", out.to_str().unwrap()]));
    let exited = wait_until(Duration::from_secs(60), || w.has_exited());
    let (exit_instant, exit_unix) = (Instant::now(), unix_nanos_now());
    let started = running.started;
    let run = running.finish(Duration::from_secs(120));
    assert!(exited, "fp_paths 4 did not exit in 60 s");
    run.assert_success();
    eprintln!("{}", run.stderr.trim());
    let ended_after = (started + run.elapsed).saturating_duration_since(exit_instant);
    let p = decode(&out);
    let report = p.report();
    let window_end = p.profile.time_nanos + p.profile.duration_nanos;
    let lag = (window_end - exit_unix) as f64 / 1e9;
    eprintln!(
        "the window ended {lag:+.3} s after the workload's exit, rprof-bpf {:.2?} after it",
        ended_after
    );
    assert!(
        (-1.0..=2.0).contains(&lag),
        "the window should end when the target exits: it ended {lag:+.3} s after the exit \
         the test saw\n{}",
        run.describe()
    );
    let cpu = monitor.cpu_between(p.profile.time_nanos, window_end);
    assert_samples_match_cpu(p.total("samples"), cpu, "fp_paths until its exit", &report);
    assert!(
        p.total_where("samples", is_worker) > 0,
        "no worker samples\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// --block-rate with --type wall
// ---------------------------------------------------------------------------------------

/// One wall recording of the blocking workload: the summary's events, the events that
/// were blocks (the rest are CPU samples, HZ per CPU second), shortnaps' blocks in the
/// window (from its voluntary context switches), and the profile.
struct WallRun {
    events: i64,
    blocks: f64,
    short_blocks: f64,
    window: f64,
    p: Decoded,
}

fn wall_run(w: &Workload, tids: &BTreeMap<String, u32>, out: &Path, rate: &str) -> WallRun {
    let shortnaps = tids["shortnaps"];
    let switches = || task_status_number(w.pid, shortnaps, "voluntary_ctxt_switches");
    let monitor = CpuMonitor::start(w.pid);
    let before = switches();
    let pid = w.pid.to_string();
    let run = record(
        &[
            "--type",
            "wall",
            "-p",
            &pid,
            "--seconds",
            "3",
            "--block-rate",
            rate,
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(90),
    );
    let after = switches();
    run.assert_success();
    assert!(!w.has_exited(), "the workload ended before the recording");
    eprintln!("{}", run.stderr.trim());
    let p = decode(out);
    let window = p.profile.duration_nanos as f64 / 1e9;
    let start = p.profile.time_nanos;
    let cpu = monitor.cpu_between(start, start + p.profile.duration_nanos);
    let events = summary_events(&run, "wall");
    WallRun {
        events,
        blocks: events as f64 - HZ * cpu,
        short_blocks: (after - before) as f64 * window / run.elapsed.as_secs_f64(),
        window,
        p,
    }
}

/// Each thread's wall total is the window, within 15%.
fn assert_wall_fills_window(r: &WallRun, tids: &BTreeMap<String, u32>, rate: &str) {
    let per_tid = r.p.by_num_label("tid", "wall");
    let window = r.p.profile.duration_nanos;
    for (name, tid) in tids {
        let total = per_tid.get(&(*tid as i64)).copied().unwrap_or(0);
        assert!(
            (total - window).abs() as f64 <= 0.15 * window as f64,
            "--block-rate {rate}: thread {name} has {:.0} ms of wall time in a {:.0} ms \
             window (15% allowed)\n{}",
            total as f64 / 1e6,
            window as f64 / 1e6,
            r.p.report_where(name, |s| s.tid() == Some(*tid as i64))
        );
    }
}

/// README: `--block-rate` "off-cpu, wall and mutex: blocks shorter than DURATION are
/// recorded with probability length / DURATION and weighted back ... so the totals stay
/// right while a program's many short blocks cost little to record ... `0s` records every
/// one", and for wall "`--block-rate` does [apply]". The blocking workload, whose
/// "shortnaps" thread sleeps 1 ms at a time (its voluntary context switches count those
/// blocks), recorded as wall with `--block-rate 0s` and `5ms`: both fill every thread's
/// window, with 0s every short block is recorded, and with 5ms shortnaps costs about one
/// recorded block per 5 ms of its sleep instead of one per block.
#[test]
fn wall_block_rate_samples_short_blocks_and_keeps_totals() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-wall-rate");
    let bin = build_c("blocking.c", dir.path(), "blocking");
    let w = Workload::start(&bin, &["90"]);
    let tids: BTreeMap<String, u32> = w
        .threads()
        .into_iter()
        .map(|(tid, name)| (name, tid))
        .collect();
    assert!(
        tids.contains_key("shortnaps") && tids.len() == 8,
        "threads of blocking: {tids:?}"
    );

    let every = wall_run(&w, &tids, &dir.join("every.pb.gz"), "0s");
    let rated = wall_run(&w, &tids, &dir.join("rated.pb.gz"), "5ms");
    let rate_s = 0.005;
    eprintln!(
        "--block-rate 0s: {} events, ~{:.0} blocks, shortnaps ~{:.0} blocks in {:.2} s; \
         --block-rate 5ms: {} events, ~{:.0} blocks, shortnaps ~{:.0} blocks in {:.2} s",
        every.events,
        every.blocks,
        every.short_blocks,
        every.window,
        rated.events,
        rated.blocks,
        rated.short_blocks,
        rated.window
    );
    assert_wall_fills_window(&every, &tids, "0s");
    assert_wall_fills_window(&rated, &tids, "5ms");

    assert!(
        every.blocks >= 0.8 * every.short_blocks,
        "--block-rate 0s recorded ~{:.0} blocks, fewer than shortnaps alone made (~{:.0})\n{}",
        every.blocks,
        every.short_blocks,
        every.p.report()
    );
    // With 5ms, shortnaps' blocks cost window / 5 ms recorded blocks rather than one each;
    // the other threads cost the same or less than with 0s.
    let expected_saving = rated.short_blocks - rated.window / rate_s;
    assert!(
        expected_saving >= 100.0,
        "shortnaps made only ~{:.0} blocks in {:.2} s: its 1 ms naps were too long for the \
         check to mean anything",
        rated.short_blocks,
        rated.window
    );
    let saving = every.blocks * rated.window / every.window - rated.blocks;
    assert!(
        saving >= 0.5 * expected_saving,
        "--block-rate 5ms recorded ~{:.0} blocks against ~{:.0} with 0s (scaled to the same \
         window): a saving of {saving:.0}, expected at least half of the ~{expected_saving:.0} \
         that sampling shortnaps' ~{:.0} short blocks saves\n{}",
        rated.blocks,
        every.blocks * rated.window / every.window,
        rated.short_blocks,
        rated.p.report()
    );
}

// ---------------------------------------------------------------------------------------
// --call-graph dwarf,SIZE with --type mutex
// ---------------------------------------------------------------------------------------

/// What one mutex recording of deep_lock (depth 100, ~27 KiB of stack) shows: the share of
/// the delay whose stack has lock_rounds, reaches locker_main, and ends in a
/// `[truncated: copy ended]` root; the summary's copy_ended count, and the profile.
struct MutexRun {
    has_locker: f64,
    reaches_main: f64,
    cut: f64,
    copy_ended: i64,
    waits: i64,
    p: Decoded,
}

fn mutex_run(bin: &Path, out: &Path, call_graph: Option<&str>) -> MutexRun {
    let mut args = vec!["--type", "mutex", "-o", out.to_str().unwrap()];
    if let Some(cg) = call_graph {
        args.extend(["--call-graph", cg]);
    }
    args.extend(["--", bin.to_str().unwrap(), "2", "100"]);
    let run = record(&args, Duration::from_secs(90));
    run.assert_success();
    eprintln!("{:?}: {}", call_graph, run.stderr.trim());
    let p = decode(out);
    let in_lock_rounds = |s: &StackSample| s.user_callers().contains(&"lock_rounds");
    let waits = summary_events(&run, "mutex");
    MutexRun {
        has_locker: p.share_within("delay", |_| true, in_lock_rounds),
        reaches_main: p.share_within(
            "delay",
            |_| true,
            |s| s.user_callers().contains(&"locker_main"),
        ),
        cut: p.share_within(
            "delay",
            |_| true,
            |s| s.frames.last().map(|f| f.name.as_str()) == Some("[truncated: copy ended]"),
        ),
        copy_ended: summary_counters(&run, "mutex")
            .get("stack_end_copy_ended")
            .copied()
            .unwrap_or(0),
        waits,
        p,
    }
}

/// README, mutex: "Each recorded wait takes the waiter's registers and the top of its user
/// stack (as much as `--call-graph dwarf,SIZE` says, 16 KiB by default) ... Deeper stacks
/// than the copy holds end where the copy ends", and `--call-graph`: "mutex always uses
/// `dwarf`". deep_lock waits for its lock under ~27 KiB of stack: with `dwarf,64K` the
/// waits' stacks reach the thread's function; by default, and with `fp` (which mutex
/// takes as the default dwarf), they are cut where the 16 KiB copy ends, with the
/// `[truncated: copy ended]` root and stack_end_copy_ended, while the lock's caller below
/// libc's frames is still there.
#[test]
fn mutex_stack_copy_follows_call_graph_dwarf_size() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("claims-mutex-copy");
    let bin = build_c("deep_lock.c", dir.path(), "deep_lock");
    let runs = [
        (
            Some("dwarf,64K"),
            mutex_run(&bin, &dir.join("64k.pb.gz"), Some("dwarf,64K")),
        ),
        (None, mutex_run(&bin, &dir.join("default.pb.gz"), None)),
        (
            Some("fp"),
            mutex_run(&bin, &dir.join("fp.pb.gz"), Some("fp")),
        ),
    ];
    for (cg, r) in &runs {
        eprintln!(
            "--call-graph {}: {} waits; delay with lock_rounds {:.1}%, reaching locker_main \
             {:.1}%, cut where the copy ended {:.1}%; stack_end_copy_ended={}",
            cg.unwrap_or("(default)"),
            r.waits,
            100.0 * r.has_locker,
            100.0 * r.reaches_main,
            100.0 * r.cut,
            r.copy_ended
        );
        let context = || format!("{}{}", heaviest_stacks(&r.p, 6, |_| true), r.p.report());
        assert!(
            r.waits >= 20,
            "--call-graph {cg:?}: only {} lock waits recorded\n{}",
            r.waits,
            context()
        );
        assert!(
            r.has_locker >= 0.95,
            "--call-graph {cg:?}: only {:.1}% of the delay has the lock's caller lock_rounds \
             below libc's frames\n{}",
            100.0 * r.has_locker,
            context()
        );
        if *cg == Some("dwarf,64K") {
            assert!(
                r.reaches_main >= 0.95 && r.copy_ended == 0,
                "with a 64 KiB copy, only {:.1}% of the delay reaches locker_main \
                 (stack_end_copy_ended={})\n{}",
                100.0 * r.reaches_main,
                r.copy_ended,
                context()
            );
        } else {
            assert!(
                r.reaches_main < 0.5 && r.cut >= 0.5 && r.copy_ended > 0,
                "--call-graph {cg:?} should copy 16 KiB and cut the ~27 KiB stacks: {:.1}% \
                 of the delay reaches locker_main, {:.1}% ends in [truncated: copy ended], \
                 stack_end_copy_ended={}\n{}",
                100.0 * r.reaches_main,
                100.0 * r.cut,
                r.copy_ended,
                context()
            );
        }
    }
}
