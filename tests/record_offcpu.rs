//! `--type off-cpu` and `--type wall` through the real kernel, on the `blocking` workload
//! (named threads that block in known functions, see tests/workloads/blocking.c): each
//! thread's total against the profile's window, where the time sits (known function and
//! system call), `state` labels, `--state`, `--min-block`, several kinds in one
//! recording, and `--thread-roots`.
//!
//! Every test holds [`common::exclusive_cpu`]: the totals are wall-clock times and the
//! spinner needs a CPU, so the tests must not compete with each other for the 2 CPUs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;

/// A blocked thread's total must be within this fraction of the window.
const WINDOW_TOLERANCE: f64 = 0.15;
/// The share of a thread's time that must sit where it blocks.
const WHERE_SHARE: f64 = 0.80;
const HZ: i64 = 99;

const OFF_CPU_TYPES: &[(&str, &str)] = &[("switches", "count"), ("off_cpu", "nanoseconds")];
const WALL_TYPES: &[(&str, &str)] = &[("samples", "count"), ("wall", "nanoseconds")];
const CPU_TYPES: &[(&str, &str)] = &[("samples", "count"), ("cpu", "nanoseconds")];

// Kernel frames of a thread blocked in a system call: the call's path. (The scheduler's own
// frames, __schedule and schedule, are the same for every block, and the profiler may leave
// them out.)
const NANOSLEEP: &[&str] = &[
    "do_nanosleep",
    "hrtimer_nanosleep",
    "__x64_sys_nanosleep",
    "__arm64_sys_nanosleep",
];
/// `pipe_read` was renamed `anon_pipe_read` in Linux 6.15.
const PIPE_READ: &[&str] = &["pipe_read", "anon_pipe_read"];
const READ: &[&str] = &[
    "vfs_read",
    "ksys_read",
    "__x64_sys_read",
    "__arm64_sys_read",
];
const VFORK: &[&str] = &[
    "kernel_clone",
    "__do_sys_vfork",
    "__x64_sys_vfork",
    "__arm64_sys_clone",
    "wait_for_vfork_done",
];

/// A thread of the workload that blocks in a known place.
struct Blocker {
    thread: &'static str,
    /// The function that makes the blocking system call (the leaf user frame)...
    func: &'static str,
    /// ...and its caller.
    caller: &'static str,
    /// Groups of kernel frames; one of each group must be on the stack.
    kernel: &'static [&'static [&'static str]],
    /// The state it blocks in.
    state: &'static str,
}

const BLOCKERS: &[Blocker] = &[
    Blocker {
        thread: "sleeper",
        func: "sleep_loop",
        caller: "sleeper_main",
        kernel: &[NANOSLEEP],
        state: "S",
    },
    Blocker {
        thread: "reader",
        func: "read_loop",
        caller: "reader_main",
        kernel: &[PIPE_READ, READ],
        state: "S",
    },
    Blocker {
        thread: "feeder",
        func: "feed_loop",
        caller: "feeder_main",
        kernel: &[NANOSLEEP],
        state: "S",
    },
    // Asleep since before the recording, and still asleep after it.
    Blocker {
        thread: "napper",
        func: "long_nap",
        caller: "napper_main",
        kernel: &[NANOSLEEP],
        state: "S",
    },
    Blocker {
        thread: "shortnaps",
        func: "short_naps",
        caller: "shortnaps_main",
        kernel: &[NANOSLEEP],
        state: "S",
    },
    Blocker {
        thread: "longnaps",
        func: "long_naps",
        caller: "longnaps_main",
        kernel: &[NANOSLEEP],
        state: "S",
    },
    Blocker {
        thread: "vforker",
        func: "vfork_wait",
        caller: "vforker_main",
        kernel: &[VFORK],
        state: "D",
    },
];

/// The running `blocking` workload and its threads.
struct Blocking {
    w: Workload,
    /// Thread name -> tid. The main thread is under the process name, "blocking".
    tids: BTreeMap<String, i64>,
}

impl Blocking {
    /// Builds and starts `blocking` (with the "vforker" thread if `vfork`), and checks that
    /// all its threads are there and the napper is already asleep.
    fn start(dir: &TempDir, vfork: bool) -> Blocking {
        Blocking::start_built(build_c("blocking.c", dir.path(), "blocking"), vfork)
    }

    /// [`Blocking::start`] built with frame pointers, for stacks read by walking them.
    fn start_with_frame_pointers(dir: &TempDir, vfork: bool) -> Blocking {
        Blocking::start_built(build_c_fp("blocking.c", dir.path(), "blocking"), vfork)
    }

    fn start_built(bin: std::path::PathBuf, vfork: bool) -> Blocking {
        let mut args = vec!["60"];
        if vfork {
            args.push("vfork");
        }
        let w = Workload::start(&bin, &args);
        let threads = w.threads();
        let tids: BTreeMap<String, i64> = threads
            .iter()
            .map(|(tid, name)| (name.clone(), *tid as i64))
            .collect();
        let mut expected = vec![
            "blocking",
            "sleeper",
            "reader",
            "feeder",
            "spinner",
            "napper",
            "shortnaps",
            "longnaps",
        ];
        if vfork {
            expected.push("vforker");
        }
        let mut names: Vec<&str> = tids.keys().map(|s| s.as_str()).collect();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            names, expected,
            "threads of the workload (tid -> name): {threads:?}"
        );
        assert_eq!(threads.len(), expected.len(), "duplicate thread names");
        let b = Blocking { w, tids };
        assert_eq!(
            b.thread_state("napper"),
            'S',
            "the napper should be asleep before the recording starts"
        );
        b
    }

    fn pid(&self) -> String {
        self.w.pid.to_string()
    }

    fn tid(&self, name: &str) -> i64 {
        *self
            .tids
            .get(name)
            .unwrap_or_else(|| panic!("no thread {name}: {:?}", self.tids))
    }

    fn name_of(&self, tid: i64) -> Option<&str> {
        self.tids
            .iter()
            .find(|(_, t)| **t == tid)
            .map(|(n, _)| n.as_str())
    }

    /// The state letter of a thread in /proc (R, S, D, ...).
    fn thread_state(&self, name: &str) -> char {
        let path = format!("/proc/{}/task/{}/stat", self.w.pid, self.tid(name));
        let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
    }

    /// Fails if a thread is gone: the numbers would then be meaningless.
    fn assert_alive(&self) {
        assert_eq!(
            self.w.threads().len(),
            self.tids.len(),
            "the workload lost threads during the recording: {:?} vs {:?}",
            self.w.threads(),
            self.tids
        );
    }

    /// A report of one thread's samples, for assertion messages.
    fn thread_report(&self, p: &Decoded, name: &str) -> String {
        let tid = self.tid(name);
        p.report_where(&format!("thread {name} (tid {tid})"), |s| {
            s.tid() == Some(tid)
        })
    }
}

fn within(actual: i64, expected: i64, tolerance: f64) -> bool {
    (actual - expected).abs() as f64 <= tolerance * expected as f64
}

fn ms(nanos: i64) -> f64 {
    nanos as f64 / 1e6
}

/// Labels on every sample: the target's pid, `comm`, and a tid whose `thread_comm` is the
/// thread's name.
fn assert_labels(p: &Decoded, b: &Blocking) {
    for s in &p.samples {
        assert_eq!(
            s.pid(),
            Some(b.w.pid as i64),
            "sample from outside the target, or no numeric pid label: {s:?}"
        );
        assert_eq!(s.str("comm"), Some("blocking"), "comm label: {s:?}");
        let tid = s
            .tid()
            .unwrap_or_else(|| panic!("sample without a numeric tid label: {s:?}"));
        let name = b
            .name_of(tid)
            .unwrap_or_else(|| panic!("tid {tid} is not a thread of the workload: {s:?}"));
        assert_eq!(s.str("thread_comm"), Some(name), "thread_comm label: {s:?}");
    }
}

/// Asserts each named thread's total of value `value` is within WINDOW_TOLERANCE of the
/// profile's window.
fn assert_totals_fill_window(p: &Decoded, b: &Blocking, value: &str, threads: &[&str]) {
    let window = p.profile.duration_nanos;
    let per_tid = p.by_num_label("tid", value);
    let per_name: BTreeMap<&str, f64> = b
        .tids
        .iter()
        .map(|(n, t)| (n.as_str(), ms(per_tid.get(t).copied().unwrap_or(0))))
        .collect();
    eprintln!(
        "{}: {value} per thread (ms) in a {:.0} ms window: {per_name:?}",
        p.path.display(),
        ms(window)
    );
    for name in threads {
        let total = per_tid.get(&b.tid(name)).copied().unwrap_or(0);
        assert!(
            within(total, window, WINDOW_TOLERANCE),
            "thread {name}: {value} total {:.1} ms, expected the window {:.1} ms +- {:.0}%; \
             per thread (ms): {per_name:?}\n{}",
            ms(total),
            ms(window),
            100.0 * WINDOW_TOLERANCE,
            b.thread_report(p, name)
        );
    }
}

/// Asserts that at least WHERE_SHARE of each blocker's `value` is where it blocks:
/// known function <- its caller in user space, the system call's kernel frames above.
fn assert_blocked_where_expected(p: &Decoded, b: &Blocking, value: &str, blockers: &[&Blocker]) {
    for k in blockers {
        let tid = b.tid(k.thread);
        let share = p.share_within(
            value,
            |s| s.tid() == Some(tid),
            |s| s.blocked_in(k.func, k.caller, k.kernel),
        );
        assert!(
            share >= WHERE_SHARE,
            "thread {}: only {:.1}% of its {value} time is in {} <- {} under kernel frames \
             {:?}, expected >= {:.0}%\n{}",
            k.thread,
            100.0 * share,
            k.func,
            k.caller,
            k.kernel,
            100.0 * WHERE_SHARE,
            b.thread_report(p, k.thread)
        );
    }
}

fn blocker(thread: &str) -> &'static Blocker {
    BLOCKERS.iter().find(|k| k.thread == thread).unwrap()
}

fn off_cpu_record(b: &Blocking, out: &Path, seconds: &str, extra: &[&str]) -> Decoded {
    off_cpu_record_with(b, out, seconds, extra, Stacks::AsTheKernelAllows)
}

/// How the recording reads user stacks: at the return to user space (bpf_task_work) where
/// the kernel has it, or at every switch, as on older kernels (`RPROF_EAGER_STACKS=1`).
#[derive(Clone, Copy, PartialEq)]
enum Stacks {
    AsTheKernelAllows,
    AtEverySwitch,
}

fn off_cpu_record_with(
    b: &Blocking,
    out: &Path,
    seconds: &str,
    extra: &[&str],
    stacks: Stacks,
) -> Decoded {
    let pid = b.pid();
    let mut args = vec![
        "--type",
        "off-cpu",
        "-p",
        &pid,
        "--seconds",
        seconds,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = record_cmd(&args);
    if stacks == Stacks::AtEverySwitch {
        cmd.env("RPROF_EAGER_STACKS", "1");
    }
    let run = Running::start(cmd).finish(Duration::from_secs(30));
    run.assert_success();
    b.assert_alive();
    let p = decode(out);
    p.assert_layout(OFF_CPU_TYPES, ("off_cpu", "nanoseconds"), 1);
    let secs: f64 = seconds.parse().unwrap();
    assert!(
        (p.profile.duration_nanos as f64) >= 0.9e9 * secs
            && (p.profile.duration_nanos as f64) <= 1e9 * secs + 2e9,
        "duration_nanos {} for a {seconds} s recording\n{}",
        p.profile.duration_nanos,
        run.describe()
    );
    assert_labels(&p, b);
    p
}

/// The off-CPU profile of threads blocked in known places: totals against the window,
/// including a thread asleep since before the recording; where the time sits; switch
/// counts; `state` labels; and the spinner, which is only ever preempted.
#[test]
fn off_cpu_blocked_threads_totals_stacks_and_states() {
    blocked_threads_totals_stacks_and_states(Stacks::AsTheKernelAllows);
}

/// The same with the user stacks read at every switch-out, the way kernels without
/// bpf_task_work record them.
#[test]
fn off_cpu_blocked_threads_with_stacks_read_at_every_switch() {
    blocked_threads_totals_stacks_and_states(Stacks::AtEverySwitch);
}

fn blocked_threads_totals_stacks_and_states(stacks: Stacks) {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu");
    // Read at every switch, user stacks are walked by frame pointers.
    let b = match stacks {
        Stacks::AsTheKernelAllows => Blocking::start(&dir, true),
        Stacks::AtEverySwitch => Blocking::start_with_frame_pointers(&dir, true),
    };
    let out = dir.join("off.pb.gz");
    let spinner_cpu = CpuMonitor::start_thread(b.w.pid, b.tid("spinner") as u32);
    let p = off_cpu_record_with(&b, &out, "3", &[], stacks);
    let report = p.report();
    let window = p.profile.duration_nanos;
    let start = p.profile.time_nanos;
    let spinner_cpu = spinner_cpu.cpu_between(start, start + window);

    for s in &p.samples {
        assert!(
            s.values[1] >= 0 && s.values[0] >= 0,
            "negative values: {s:?}"
        );
        assert!(
            s.str("state").is_some_and(|st| !st.is_empty()),
            "off-CPU sample without a state label: {s:?}"
        );
    }

    // Every thread but the spinner is blocked nearly all the time: its total is the window.
    // The napper's one sleep began before the recording and ends after it.
    let mut blocked: Vec<&str> = BLOCKERS.iter().map(|k| k.thread).collect();
    blocked.push("blocking");
    assert_totals_fill_window(&p, &b, "off_cpu", &blocked);

    // Where: the known function, its caller, and the system call's kernel path.
    assert_blocked_where_expected(&p, &b, "off_cpu", &BLOCKERS.iter().collect::<Vec<_>>());

    // States, by time: S for the sleepers and the pipe reader, D for the vfork parent.
    for k in BLOCKERS {
        let tid = b.tid(k.thread);
        let share = p.share_within(
            "off_cpu",
            |s| s.tid() == Some(tid),
            |s| s.str("state") == Some(k.state),
        );
        let min = if k.state == "D" { 0.9 } else { 0.95 };
        assert!(
            share >= min,
            "thread {}: only {:.1}% of its off-CPU time has state={}, expected >= {:.0}%\n{}",
            k.thread,
            100.0 * share,
            k.state,
            100.0 * min,
            b.thread_report(&p, k.thread)
        );
    }

    // The spinner never blocks: it is only preempted (R), for as long as it did not run.
    let spinner = b.tid("spinner");
    for s in p.samples.iter().filter(|s| s.tid() == Some(spinner)) {
        assert_eq!(
            s.str("state"),
            Some("R"),
            "the spinner never sleeps, so its off-CPU samples are preemptions: {s:?}\n{}",
            b.thread_report(&p, "spinner")
        );
    }
    let spinner_total = p.total_where("off_cpu", |s| s.tid() == Some(spinner));
    let not_running = window as f64 - spinner_cpu * 1e9;
    assert!(
        (spinner_total as f64 - not_running).abs() <= 0.1 * window as f64,
        "the spinner was off the CPU {:.1} ms of {:.1} ms, but it ran for {:.1} ms of them \
         (/proc), so it was off the CPU {:.1} ms\n{}",
        ms(spinner_total),
        ms(window),
        spinner_cpu * 1e3,
        not_running / 1e6,
        b.thread_report(&p, "spinner")
    );

    // switches/count: one per block. The sleeper blocks every ~10 ms, the long napper
    // every ~100 ms; the napper once (or not at all: it never switches in the window).
    let switches = p.by_num_label("tid", "switches");
    let count = |name: &str| switches.get(&b.tid(name)).copied().unwrap_or(0);
    let sleeper_expected = window / 10_000_000;
    assert!(
        count("sleeper") as f64 >= 0.6 * sleeper_expected as f64
            && count("sleeper") as f64 <= 1.1 * sleeper_expected as f64,
        "sleeper: {} switches, expected about {sleeper_expected} (one per 10 ms sleep)\n{}",
        count("sleeper"),
        b.thread_report(&p, "sleeper")
    );
    let long_expected = window / 100_000_000;
    assert!(
        count("longnaps") >= long_expected * 2 / 3 && count("longnaps") <= long_expected + 2,
        "longnaps: {} switches, expected about {long_expected} (one per 100 ms sleep)\n{}",
        count("longnaps"),
        b.thread_report(&p, "longnaps")
    );
    assert!(
        count("napper") <= 1,
        "napper: {} switches, but it slept through the window\n{}",
        count("napper"),
        b.thread_report(&p, "napper")
    );
    // The short napper blocks ~10x as often as the sleeper.
    assert!(
        count("shortnaps") >= 4 * count("sleeper"),
        "shortnaps: {} switches vs the sleeper's {}: 1 ms sleeps vs 10 ms sleeps\n{report}",
        count("shortnaps"),
        count("sleeper")
    );

    // go tool pprof reads it, and both sample types.
    let top = go_pprof_top(&out);
    for f in ["sleep_loop", "read_loop", "long_nap"] {
        assert!(top.contains(f), "go tool pprof -top lacks {f}:\n{top}");
    }
    let by_switches = go_pprof(&["-top", "-sample_index=switches", "-symbolize=none"], &out);
    assert!(
        by_switches.contains("short_naps"),
        "go tool pprof -sample_index=switches lacks short_naps:\n{by_switches}"
    );
}

/// `--state D` keeps only the blocks that began uninterruptible, `--state S` only the
/// interruptible ones.
#[test]
fn off_cpu_state_filter() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu-state");
    let b = Blocking::start(&dir, true);

    let d_out = dir.join("d.pb.gz");
    let p = off_cpu_record(&b, &d_out, "2", &["--state", "D"]);
    let report = p.report();
    let states = p.by_str_label("state", "off_cpu");
    assert!(
        states.keys().all(|s| s == "D"),
        "--state D: off-CPU time by state {states:?}\n{report}"
    );
    for name in ["sleeper", "reader", "napper", "shortnaps", "longnaps"] {
        let tid = b.tid(name);
        assert!(
            !p.samples.iter().any(|s| s.tid() == Some(tid)),
            "--state D: the {name} thread only sleeps interruptibly (S), yet has samples\n{report}"
        );
    }
    // The vfork parent waits uninterruptibly, ~20 ms at a time, all the time.
    let window = p.profile.duration_nanos;
    let vforker = b.tid("vforker");
    let d_total = p.total_where("off_cpu", |s| s.tid() == Some(vforker));
    assert!(
        d_total as f64 >= 0.7 * window as f64 && d_total <= window + window / 10,
        "--state D: the vforker was blocked in D {:.1} ms of {:.1} ms, expected most of it\n{}",
        ms(d_total),
        ms(window),
        b.thread_report(&p, "vforker")
    );
    assert_blocked_where_expected(&p, &b, "off_cpu", &[blocker("vforker")]);

    let s_out = dir.join("s.pb.gz");
    let p = off_cpu_record(&b, &s_out, "2", &["--state", "S"]);
    let report = p.report();
    let states = p.by_str_label("state", "off_cpu");
    assert!(
        states.keys().all(|s| s == "S"),
        "--state S: off-CPU time by state {states:?}\n{report}"
    );
    assert_totals_fill_window(&p, &b, "off_cpu", &["sleeper", "reader", "napper"]);
    let window = p.profile.duration_nanos;
    let vforker_s = p.total_where("off_cpu", |s| s.tid() == Some(vforker));
    assert!(
        vforker_s < window / 4,
        "--state S: the vforker, blocked in D nearly all the time, has {:.1} ms of S\n{}",
        ms(vforker_s),
        b.thread_report(&p, "vforker")
    );
}

/// `--min-block 50ms` drops the 1 ms and 10 ms sleeps, and keeps the 100 ms and 200 ms
/// ones and the hour-long one.
#[test]
fn off_cpu_min_block_drops_short_blocks() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu-minblock");
    let b = Blocking::start(&dir, true);
    let out = dir.join("min.pb.gz");
    let p = off_cpu_record(&b, &out, "3", &["--min-block", "50ms"]);
    let window = p.profile.duration_nanos;
    let per_tid = p.by_num_label("tid", "off_cpu");
    let total = |name: &str| per_tid.get(&b.tid(name)).copied().unwrap_or(0);
    // 1 ms, 10 ms and 20 ms blocks, and preemptions: (nearly) nothing left.
    for name in ["shortnaps", "sleeper", "vforker", "spinner"] {
        assert!(
            total(name) <= window / 20,
            "--min-block 50ms: {name}, whose blocks are all far shorter, still has {:.1} ms \
             of {:.1} ms\n{}",
            ms(total(name)),
            ms(window),
            b.thread_report(&p, name)
        );
    }
    // 100 ms, 200 ms and 1 h blocks: all there.
    assert_totals_fill_window(
        &p,
        &b,
        "off_cpu",
        &["longnaps", "reader", "feeder", "napper"],
    );
    assert_blocked_where_expected(&p, &b, "off_cpu", &[blocker("longnaps"), blocker("reader")]);
    // Each sample is a block of >= 50 ms: a 100 ms sleep every ~100 ms.
    let switches = p.by_num_label("tid", "switches");
    let long_switches = switches.get(&b.tid("longnaps")).copied().unwrap_or(0);
    let expected = window / 100_000_000;
    assert!(
        long_switches >= expected * 2 / 3 && long_switches <= expected + 2,
        "--min-block 50ms: longnaps has {long_switches} switches, expected about {expected}\n{}",
        b.thread_report(&p, "longnaps")
    );
}

/// The wall-clock profile: every thread's total is the window, whether it spins, sleeps,
/// or slept through; the spinner's time is in its loop, the sleeper's in its sleep.
#[test]
fn wall_every_thread_fills_the_window() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("wall");
    let b = Blocking::start(&dir, false);
    let out = dir.join("wall.pb.gz");
    let pid = b.pid();
    let spinner_cpu = CpuMonitor::start_thread(b.w.pid, b.tid("spinner") as u32);
    let run = record(
        &[
            "--type",
            "wall",
            "-p",
            &pid,
            "--seconds",
            "3",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    b.assert_alive();
    let p = decode(&out);
    let report = p.report();
    p.assert_layout(WALL_TYPES, ("wall", "nanoseconds"), 1_000_000_000 / HZ);
    assert!(
        (2_700_000_000..=5_000_000_000).contains(&p.profile.duration_nanos),
        "duration_nanos {} for a 3 s recording",
        p.profile.duration_nanos
    );
    assert_labels(&p, &b);

    let all: Vec<&str> = b.tids.keys().map(|s| s.as_str()).collect();
    assert_totals_fill_window(&p, &b, "wall", &all);

    // The spinner: on the CPU in spin_loop, and when preempted, still there.
    let spinner = b.tid("spinner");
    let in_loop = p.share_within(
        "wall",
        |s| s.tid() == Some(spinner),
        |s| s.contains("spin_loop"),
    );
    assert!(
        in_loop >= WHERE_SHARE,
        "only {:.1}% of the spinner's wall time is in spin_loop\n{}",
        100.0 * in_loop,
        b.thread_report(&p, "spinner")
    );
    // Its on-CPU part: samples at HZ for the CPU time it got in the window.
    let start = p.profile.time_nanos;
    let cpu = spinner_cpu.cpu_between(start, start + p.profile.duration_nanos);
    let on_cpu = p.total_where("samples", |s| {
        s.tid() == Some(spinner) && s.leaf() == Some("spin_leaf")
    });
    assert!(
        on_cpu as f64 >= 0.8 * HZ as f64 * cpu,
        "the spinner has {on_cpu} on-CPU samples in spin_leaf, expected >= 80% of {HZ} Hz x \
         the {cpu:.2} CPU seconds it got in the window\n{}",
        b.thread_report(&p, "spinner")
    );
    // The blocked threads' wall time is where they block.
    assert_blocked_where_expected(
        &p,
        &b,
        "wall",
        &[blocker("sleeper"), blocker("reader"), blocker("napper")],
    );

    let top = go_pprof_top(&out);
    for f in ["spin_loop", "sleep_loop"] {
        assert!(
            top.contains(f),
            "go tool pprof -top lacks {f}:\n{top}\n{report}"
        );
    }
}

/// `--type cpu,off-cpu -o X.pb.gz` writes X.cpu.pb.gz and X.off-cpu.pb.gz over one window,
/// both read by go tool pprof; other output names get `.<kind>` appended, and the default
/// name gives profile.<kind>.pb.gz.
#[test]
fn several_kinds_in_one_recording() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("kinds");
    let b = Blocking::start(&dir, false);
    let pid = b.pid();

    let base = dir.join("multi.pb.gz");
    let run = record(
        &[
            "--type",
            "cpu,off-cpu",
            "-p",
            &pid,
            "--seconds",
            "2",
            "-o",
            base.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    let cpu_path = dir.join("multi.cpu.pb.gz");
    let off_path = dir.join("multi.off-cpu.pb.gz");
    assert_eq!(kind_path(&base, "cpu"), cpu_path);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("multi"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec!["multi.cpu.pb.gz", "multi.off-cpu.pb.gz"],
        "files written for --type cpu,off-cpu -o multi.pb.gz\n{}",
        run.describe()
    );

    let cpu = decode(&cpu_path);
    cpu.assert_layout(CPU_TYPES, ("cpu", "nanoseconds"), 1_000_000_000 / HZ);
    assert_labels(&cpu, &b);
    let spin = cpu.cum_share("spin_leaf", "samples");
    assert!(
        spin >= 0.8 && cpu.total("samples") >= 20,
        "the cpu profile should be the spinner's: spin_leaf in {:.1}% of {} samples\n{}",
        100.0 * spin,
        cpu.total("samples"),
        cpu.report()
    );
    let off = decode(&off_path);
    off.assert_layout(OFF_CPU_TYPES, ("off_cpu", "nanoseconds"), 1);
    assert_labels(&off, &b);
    assert_totals_fill_window(&off, &b, "off_cpu", &["sleeper", "reader", "napper"]);
    assert_blocked_where_expected(&off, &b, "off_cpu", &[blocker("sleeper")]);
    // One window for both.
    let gap = |a: i64, b: i64| (a - b).abs();
    assert!(
        gap(cpu.profile.time_nanos, off.profile.time_nanos) <= 100_000_000
            && gap(cpu.profile.duration_nanos, off.profile.duration_nanos) <= 100_000_000,
        "one recording, one window: cpu starts at {} for {} ns, off-cpu at {} for {} ns",
        cpu.profile.time_nanos,
        cpu.profile.duration_nanos,
        off.profile.time_nanos,
        off.profile.duration_nanos
    );

    let top = go_pprof_top(&cpu_path);
    assert!(
        top.contains("spin_leaf"),
        "go tool pprof -top (cpu):\n{top}"
    );
    let top = go_pprof_top(&off_path);
    assert!(
        top.contains("sleep_loop"),
        "go tool pprof -top (off-cpu):\n{top}"
    );
    let top = go_pprof(
        &["-top", "-sample_index=off_cpu", "-symbolize=none"],
        &off_path,
    );
    assert!(
        top.contains("long_nap") && top.contains("read_loop"),
        "go tool pprof -sample_index=off_cpu -top:\n{top}"
    );

    // A name not ending in .pb.gz: NAME.<kind>.
    let base = dir.join("x.out");
    let run = record(
        &[
            "--type",
            "off-cpu,wall",
            "-p",
            &pid,
            "--seconds",
            "1",
            "-o",
            base.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    assert!(
        !base.exists(),
        "{} written\n{}",
        base.display(),
        run.describe()
    );
    let off = decode(&dir.join("x.out.off-cpu"));
    off.assert_layout(OFF_CPU_TYPES, ("off_cpu", "nanoseconds"), 1);
    let wall = decode(&dir.join("x.out.wall"));
    wall.assert_layout(WALL_TYPES, ("wall", "nanoseconds"), 1_000_000_000 / HZ);
    assert!(
        wall.contains_function("spin_loop") && off.contains_function("sleep_loop"),
        "{}\n{}",
        off.report(),
        wall.report()
    );

    // The default name, in the working directory. threadcreate: no thread is created, so
    // its profile is empty, and must still be a valid file.
    let cwd = TempDir::new("kinds-cwd");
    let mut cmd = record_cmd(&["--type", "cpu,threadcreate", "-p", &pid, "--seconds", "1"]);
    cmd.current_dir(cwd.path());
    let run = Running::start(cmd).finish(Duration::from_secs(30));
    run.assert_success();
    let mut files: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec!["profile.cpu.pb.gz", "profile.threadcreate.pb.gz"],
        "files written with the default -o\n{}",
        run.describe()
    );
    let tc = decode(&cwd.join("profile.threadcreate.pb.gz"));
    tc.assert_layout(&[("threadcreate", "count")], ("threadcreate", "count"), 1);
    assert_eq!(
        tc.total("threadcreate"),
        0,
        "nothing was created\n{}",
        tc.report()
    );
    go_pprof_top(&cwd.join("profile.threadcreate.pb.gz"));
    assert!(decode(&cwd.join("profile.cpu.pb.gz")).contains_function("spin_leaf"));
}

/// Whether a frame name looks like a synthetic root, `NAME [ID]`.
fn is_root_frame(name: &str) -> bool {
    name.strip_suffix(']')
        .and_then(|n| n.rsplit_once(" ["))
        .is_some_and(|(_, id)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
}

/// Asserts the `--thread-roots` shape: every stack ends (root end) with `blocking [PID]`,
/// directly under it `THREAD_COMM [TID]` for the sample's own thread, and nothing else
/// synthetic; one root per thread; and the threads in `must_have` all there.
fn assert_thread_roots(p: &Decoded, b: &Blocking, must_have: &[&str]) {
    let report = p.report();
    let process_root = format!("blocking [{}]", b.w.pid);
    let mut tids_of_root: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut roots_of_tid: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for s in &p.samples {
        let n = s.frames.len();
        assert!(
            n >= 3,
            "a stack with the two roots should have real frames too: {:?}\n{report}",
            s.names()
        );
        let tid = s.tid().expect("tid label");
        let thread_comm = s.str("thread_comm").expect("thread_comm label");
        assert_eq!(
            s.frames[n - 1].name,
            process_root,
            "the root-most frame should be the process: {:?}\n{report}",
            s.names()
        );
        let thread_root = format!("{thread_comm} [{tid}]");
        assert_eq!(
            s.frames[n - 2].name,
            thread_root,
            "the frame under the process root should be the sample's thread: {:?} {:?}\n{report}",
            s.names(),
            s.str_labels
        );
        assert_eq!(b.name_of(tid), Some(thread_comm), "{s:?}");
        assert!(
            !s.frames[n - 1].kernel && !s.frames[n - 2].kernel,
            "synthetic roots in the kernel mapping: {s:?}"
        );
        assert!(
            !s.frames[..n - 2].iter().any(|f| is_root_frame(&f.name)),
            "more synthetic frames than the two roots: {:?}",
            s.names()
        );
        tids_of_root
            .entry(thread_root.clone())
            .or_default()
            .insert(tid);
        roots_of_tid.entry(tid).or_default().insert(thread_root);
    }
    for (root, tids) in &tids_of_root {
        assert_eq!(
            tids.len(),
            1,
            "root {root} holds threads {tids:?}\n{report}"
        );
    }
    for (tid, roots) in &roots_of_tid {
        assert_eq!(
            roots.len(),
            1,
            "thread {tid} under roots {roots:?}\n{report}"
        );
    }
    for name in must_have {
        let tid = b.tid(name);
        assert!(
            roots_of_tid.contains_key(&tid),
            "no root for thread {name} (tid {tid}); roots: {:?}\n{report}",
            tids_of_root.keys().collect::<Vec<_>>()
        );
    }
    // go tool pprof shows the process root above everything.
    let top = go_pprof_top(&p.path);
    let (_, cum) = pprof_top_row(&top, &process_root)
        .unwrap_or_else(|| panic!("no {process_root} row in go tool pprof -top:\n{top}"));
    assert!(
        cum >= 99.0,
        "{process_root} has cum {cum}% in go tool pprof -top:\n{top}"
    );
}

/// `--thread-roots` with `--type cpu,off-cpu`: in both files, one root per thread under one
/// root for the process; the real stacks below them are unchanged.
#[test]
fn thread_roots_one_tower_per_thread() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("roots");
    let b = Blocking::start(&dir, false);
    let pid = b.pid();
    let base = dir.join("roots.pb.gz");
    let run = record(
        &[
            "--type",
            "cpu,off-cpu",
            "--thread-roots",
            "-p",
            &pid,
            "--seconds",
            "2",
            "-o",
            base.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    b.assert_alive();

    let cpu = decode(&kind_path(&base, "cpu"));
    cpu.assert_layout(CPU_TYPES, ("cpu", "nanoseconds"), 1_000_000_000 / HZ);
    assert_labels(&cpu, &b);
    assert_thread_roots(&cpu, &b, &["spinner"]);
    let spinner_root = format!("spinner [{}]", b.tid("spinner"));
    let share = cpu.share_within(
        "samples",
        |_| true,
        |s| s.contains(&spinner_root) && s.contains("spin_leaf"),
    );
    assert!(
        share >= 0.8,
        "the spinner's tower should hold the CPU time, in spin_leaf: {:.1}%\n{}",
        100.0 * share,
        cpu.report()
    );

    let off = decode(&kind_path(&base, "off-cpu"));
    off.assert_layout(OFF_CPU_TYPES, ("off_cpu", "nanoseconds"), 1);
    assert_labels(&off, &b);
    assert_thread_roots(
        &off,
        &b,
        &[
            "blocking",
            "sleeper",
            "reader",
            "feeder",
            "napper",
            "shortnaps",
            "longnaps",
        ],
    );
    // Below the roots, the stacks are as without them.
    assert_blocked_where_expected(
        &off,
        &b,
        "off_cpu",
        &[blocker("sleeper"), blocker("reader"), blocker("napper")],
    );
}

/// `-- CMD`: the off-CPU and wall time of a command from its start. Its threads are all
/// created during the recording and gone by the end (the command exits), and keep their
/// names.
#[test]
fn off_cpu_and_wall_of_a_launched_command() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu-launch");
    let bin = build_c("blocking.c", dir.path(), "blocking");
    let base = dir.join("cmd.pb.gz");
    let run = record(
        &[
            "--type",
            "off-cpu,wall",
            "-o",
            base.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "2",
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    let pid: i64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("ready ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("the command did not print its pid\n{}", run.describe()));
    let names = [
        "blocking",
        "sleeper",
        "reader",
        "feeder",
        "spinner",
        "napper",
        "shortnaps",
        "longnaps",
    ];
    for (kind, value) in [("off-cpu", "off_cpu"), ("wall", "wall")] {
        let p = decode(&kind_path(&base, kind));
        let report = p.report();
        for s in &p.samples {
            assert_eq!(s.pid(), Some(pid), "pid label: {s:?}\n{report}");
            assert_eq!(s.str("comm"), Some("blocking"), "comm label: {s:?}");
        }
        let window = p.profile.duration_nanos;
        assert!(
            (2_000_000_000..=3_500_000_000).contains(&window),
            "the command ran ~2.1 s; duration_nanos {window}\n{report}"
        );
        // The threads live for the whole window but its first few milliseconds.
        let per_name = p.by_str_label("thread_comm", value);
        let mut seen: Vec<&str> = per_name.keys().map(|s| s.as_str()).collect();
        seen.sort_unstable();
        let mut expected = names.to_vec();
        expected.sort_unstable();
        if kind == "off-cpu" {
            // The spinner may never have been preempted.
            seen.retain(|n| *n != "spinner");
            expected.retain(|n| *n != "spinner");
        }
        assert_eq!(
            seen, expected,
            "{kind}: thread names (they exited before the profile was written)\n{report}"
        );
        let check: &[&str] = if kind == "wall" {
            &names
        } else {
            &["blocking", "sleeper", "reader", "napper", "longnaps"]
        };
        for name in check {
            let total = per_name.get(*name).copied().unwrap_or(0);
            assert!(
                within(total, window, WINDOW_TOLERANCE),
                "{kind}: thread {name} has {:.1} ms of a {:.1} ms window; per thread: \
                 {per_name:?}\n{}",
                ms(total),
                ms(window),
                p.report_where(name, |s| s.str("thread_comm") == Some(name))
            );
        }
        for k in [blocker("sleeper"), blocker("reader")] {
            let share = p.share_within(
                value,
                |s| s.str("thread_comm") == Some(k.thread),
                |s| s.blocked_in(k.func, k.caller, k.kernel),
            );
            assert!(
                share >= WHERE_SHARE,
                "{kind}: only {:.1}% of the {} thread's time is in {} <- {}\n{}",
                100.0 * share,
                k.thread,
                k.func,
                k.caller,
                p.report_where(k.thread, |s| s.str("thread_comm") == Some(k.thread))
            );
        }
    }
}

/// `-a`: every process's off-CPU time; the workload's threads with their labels, the
/// already-asleep napper included, and their stacks.
#[test]
fn off_cpu_all_processes() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu-all");
    let b = Blocking::start(&dir, false);
    let out = dir.join("all.pb.gz");
    let run = record(
        &[
            "--type",
            "off-cpu",
            "-a",
            "--seconds",
            "1.5",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    b.assert_alive();
    let p = decode(&out);
    p.assert_layout(OFF_CPU_TYPES, ("off_cpu", "nanoseconds"), 1);
    let report = p.report();
    let pids: BTreeSet<i64> = p.samples.iter().filter_map(|s| s.pid()).collect();
    assert!(
        pids.len() >= 3 && pids.contains(&(b.w.pid as i64)),
        "an -a off-CPU profile should hold many processes, the workload's among them; \
         pids: {pids:?}\n{report}"
    );
    for s in p.samples.iter().filter(|s| s.pid() == Some(b.w.pid as i64)) {
        assert_eq!(s.str("comm"), Some("blocking"), "{s:?}");
        let name = s.tid().and_then(|t| b.name_of(t));
        assert!(name.is_some(), "tid not of the workload: {s:?}");
        assert_eq!(s.str("thread_comm"), name, "{s:?}");
    }
    assert_totals_fill_window(&p, &b, "off_cpu", &["sleeper", "reader", "napper"]);
    assert_blocked_where_expected(
        &p,
        &b,
        "off_cpu",
        &[blocker("sleeper"), blocker("reader"), blocker("napper")],
    );
}

/// `--block-rate 5ms`: blocks shorter than 5 ms are sampled by length and weighted back,
/// so totals stay about right: the 1 ms sleeps of the short napper still add up to the
/// window (~2000 blocks, ~20% of them kept, so the estimate's error is ~4%), and the
/// 10 ms sleeps, longer than the rate, are all counted as they are.
#[test]
fn off_cpu_block_rate_keeps_totals() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("offcpu-rate");
    let b = Blocking::start(&dir, false);
    let out = dir.join("rate.pb.gz");
    let p = off_cpu_record(&b, &out, "2", &["--block-rate", "5ms"]);
    assert_totals_fill_window(&p, &b, "off_cpu", &["shortnaps", "sleeper", "napper"]);
    assert_blocked_where_expected(
        &p,
        &b,
        "off_cpu",
        &[blocker("shortnaps"), blocker("sleeper")],
    );
}
