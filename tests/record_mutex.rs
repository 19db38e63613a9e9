//! `--type mutex` through the real kernel, on the `mutex_contend` workload
//! (tests/workloads/mutex_contend.c): threads contending on a pthread mutex, a pthread
//! rwlock and the program's own futex lock, each in a known function, and threads waiting
//! for events (a condition variable, a semaphore) that are not lock contention. The
//! workload measures its own waits; the profile must agree with it: the total delay, the
//! contentions, where the delay sits (the known function must be the caller of the lock,
//! so libc's frames must have been unwound), the `mechanism` label, what is left out, and
//! `go tool pprof`'s views. Also `--block-rate 0s` (every wait): of the program's own futex
//! lock, and of pthread locks (mutex, rwlock, priority-inheritance mutex) handed over to a
//! thread known to be asleep on them, so that the workload knows exactly how many waits it
//! made; and an attached recording (`-p`) against the workload's own log of its waits. The
//! workload is built as distributions build, without frame pointers: every stack is
//! unwound with CFI.
//!
//! Every test holds [`common::exclusive_cpu`]: how much the threads wait depends on how
//! much CPU they get, so the tests must not compete with each other for the CPUs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const MUTEX_TYPES: &[(&str, &str)] = &[("contentions", "count"), ("delay", "nanoseconds")];

const SOURCE: &str = "mutex_contend.c";
const COMM: &str = "mutex_contend";
/// How distributions build C: optimized, with debug info, and without frame pointers (GCC
/// omits them at -O2), so every stack here is unwound with the binaries' CFI, the
/// workload's as well as libc's.
const DISTRO_FLAGS: &[&str] = &["-O2", "-g", "-pthread"];

/// The total delay must be within this fraction of the workload's own measurement.
const DELAY_TOLERANCE: f64 = 0.30;
/// The FUTEX_WAIT calls the futex group must make, however long it takes (up to 10 times
/// the time asked for), for the futex tests to mean something.
const MIN_FUTEX_WAITS: i64 = 1000;
/// The contended acquisitions the mutex group must make for its test to mean something.
const MIN_CONTENDED: i64 = 20;
/// The FUTEX_WAIT calls the slowfutex group must make for the exact count of
/// `--block-rate 0s` to mean something: it tries for MIN_FUTEX_WAITS, but under a heavy
/// load (a load average of 10 on 2 CPUs) made 874 in the 10 times the time asked.
const MIN_EXACT_FUTEX_WAITS: i64 = 200;
/// The share of the delay that must be under the known function, as the lock's caller.
const WHERE_SHARE: f64 = 0.90;
/// The share of the delay (and of the contentions) whose stack must be complete: down to
/// start_thread (or main) and the outermost frame of the thread.
const ROOTED_SHARE: f64 = 0.90;

const CONTEND_ON_MUTEX: &str = "contend_on_mutex";
const CONTEND_ON_RWLOCK: &str = "contend_on_rwlock";
const CONTEND_ON_RAW_FUTEX: &str = "contend_on_raw_futex";
/// Functions of the workload that wait for events, never for a contended lock.
const EVENT_WAITERS: &[&str] = &["wait_on_condvar", "wait_on_semaphore"];

/// libc functions (base names, see [`base_name`]) that wait for an event, not for a lock:
/// no stack in a mutex profile may hold one.
const EVENT_PRIMITIVES: &[&str] = &[
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "pthread_cond_clockwait",
    "sem_wait",
    "sem_timedwait",
    "sem_clockwait",
    "new_sem_wait_slow",
    "new_sem_wait_slow64",
    "pthread_join",
    "pthread_clockjoin_ex",
    "pthread_timedjoin_ex",
    "pthread_barrier_wait",
];

/// The outermost frame of a complete stack: a thread's (clone3 or clone, or start_thread
/// when the unwinder stops there) or the main thread's.
const ROOT_FRAMES: &[&str] = &[
    "clone3",
    "clone",
    "start_thread",
    "start",
    "libc_start_main",
    "libc_start_main_impl",
    "libc_start_call_main",
    "main",
];

// ---------------------------------------------------------------------------------------
// What the workload says it did
// ---------------------------------------------------------------------------------------

/// One line of the workload's report: a thread's or a group's totals.
#[derive(Clone, Debug, Default)]
struct Counts {
    /// Lock acquisitions (or event waits).
    rounds: i64,
    /// Acquisitions that found the lock taken and had to wait.
    contended: i64,
    /// Time waited in the blocking lock calls (or event waits), in ns.
    wait_ns: i64,
    /// Raw futex only: FUTEX_WAIT system calls, and the time spent in them (by the
    /// workload's clock reads around each call).
    futex_calls: i64,
    futex_ns: i64,
    /// Raw futex only: the part of `futex_ns` that the kernel says was inside the calls
    /// (the time off CPU, less any wait for a CPU after a preemption); -1 when unknown.
    futex_offcpu_ns: i64,
}

#[derive(Clone, Debug)]
struct ThreadReport {
    name: String,
    tid: i64,
    group: String,
    func: String,
    counts: Counts,
}

/// The workload's report (its stdout).
#[derive(Debug, Default)]
struct Truth {
    pid: Option<i64>,
    done: bool,
    /// How long the workload ran, from "ready" until its threads were told to stop.
    ran_ns: Option<i64>,
    threads: Vec<ThreadReport>,
    groups: BTreeMap<String, Counts>,
    /// Handed-over locks: the futex operation (its command, e.g. 6 for FUTEX_LOCK_PI) each
    /// waiter function was last seen asleep in, by the holder.
    futex_ops: BTreeMap<String, i64>,
}

impl Truth {
    fn parse(text: &str) -> Truth {
        let mut t = Truth::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| -> i64 {
                words
                    .get(i)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or_else(|| panic!("bad line from the workload: {line:?}"))
            };
            let counts = |first: usize| Counts {
                rounds: num(first),
                contended: num(first + 1),
                wait_ns: num(first + 2),
                futex_calls: num(first + 3),
                futex_ns: num(first + 4),
                futex_offcpu_ns: num(first + 5),
            };
            match words.first().copied() {
                Some("ready") => t.pid = Some(num(1)),
                Some("done") => t.done = true,
                Some("ran") => t.ran_ns = Some(num(1)),
                Some("thread") => t.threads.push(ThreadReport {
                    name: words[1].to_string(),
                    tid: num(2),
                    group: words[3].to_string(),
                    func: words[4].to_string(),
                    counts: counts(5),
                }),
                Some("group") => {
                    t.groups.insert(words[1].to_string(), counts(2));
                }
                Some("futex_op") => {
                    t.futex_ops.insert(words[1].to_string(), num(2));
                }
                _ => {}
            }
        }
        t
    }

    fn group(&self, name: &str) -> &Counts {
        self.groups
            .get(name)
            .unwrap_or_else(|| panic!("the workload did not report group {name}: {self:?}"))
    }

    fn pid(&self) -> i64 {
        self.pid.expect("the workload's pid")
    }

    fn thread(&self, tid: i64) -> Option<&ThreadReport> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    /// The workload's own numbers, for failure messages.
    fn table(&self) -> String {
        let mut out = String::from(
            "workload: thread (tid) group function: rounds contended wait_ms \
             [futex_calls futex_ms futex_offcpu_ms]\n",
        );
        for t in &self.threads {
            let c = &t.counts;
            let _ = writeln!(
                out,
                "  {:<10} ({}) {:<8} {:<22} {:>8} {:>8} {:>10.1} [{} {:.1} {:.1}]",
                t.name,
                t.tid,
                t.group,
                t.func,
                c.rounds,
                c.contended,
                ms(c.wait_ns),
                c.futex_calls,
                ms(c.futex_ns),
                ms(c.futex_offcpu_ns)
            );
        }
        for (g, c) in &self.groups {
            let _ = writeln!(
                out,
                "  group {g:<8}: rounds {} contended {} wait {:.1} ms, futex calls {} in \
                 {:.1} ms ({:.1} ms of it inside them, by the kernel's count)",
                c.rounds,
                c.contended,
                ms(c.wait_ns),
                c.futex_calls,
                ms(c.futex_ns),
                ms(c.futex_offcpu_ns)
            );
        }
        out
    }
}

/// The running totals of one group at one moment of `mutex_contend ... LOGFILE`.
#[derive(Clone, Copy, Debug)]
struct Tick {
    t_ns: i64,
    wait_ns: i64,
    waits: i64,
}

/// The log of group `group`, in time order.
fn parse_ticks(text: &str, group: &str) -> Vec<Tick> {
    let mut ticks = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"tick") || words.get(2) != Some(&group) {
            continue;
        }
        let num = |i: usize| -> i64 {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("bad log line: {line:?}"))
        };
        ticks.push(Tick {
            t_ns: num(1),
            wait_ns: num(3),
            waits: num(4),
        });
    }
    ticks
}

/// The group's running totals at `t_ns` (Unix ns), interpolated between ticks.
fn totals_at(ticks: &[Tick], t_ns: i64) -> (f64, f64) {
    let i = ticks.partition_point(|k| k.t_ns <= t_ns);
    if i == 0 {
        return (ticks[0].wait_ns as f64, ticks[0].waits as f64);
    }
    if i == ticks.len() {
        let k = ticks[i - 1];
        return (k.wait_ns as f64, k.waits as f64);
    }
    let (a, b) = (ticks[i - 1], ticks[i]);
    let f = (t_ns - a.t_ns) as f64 / (b.t_ns - a.t_ns).max(1) as f64;
    (
        a.wait_ns as f64 + f * (b.wait_ns - a.wait_ns) as f64,
        a.waits as f64 + f * (b.waits - a.waits) as f64,
    )
}

// ---------------------------------------------------------------------------------------
// Reading the profile
// ---------------------------------------------------------------------------------------

fn ms(nanos: i64) -> f64 {
    nanos as f64 / 1e6
}

fn ratio(got: i64, want: i64) -> f64 {
    got as f64 / want.max(1) as f64
}

fn within(got: i64, want: i64, rel: f64) -> bool {
    (got - want).abs() as f64 <= rel * want.abs() as f64
}

fn is_mutex_lock(name: &str) -> bool {
    let n = base_name(name);
    n.starts_with("pthread_mutex_") && n.contains("lock") && !n.contains("unlock")
}

fn is_rwlock_lock(name: &str) -> bool {
    let n = base_name(name);
    n.starts_with("pthread_rwlock_") && n.contains("lock") && !n.contains("unlock")
}

fn is_rdlock(name: &str) -> bool {
    is_rwlock_lock(name) && base_name(name).contains("rdlock")
}

fn is_wrlock(name: &str) -> bool {
    is_rwlock_lock(name) && base_name(name).contains("wrlock")
}

fn is_syscall_wrapper(name: &str) -> bool {
    base_name(name) == "syscall"
}

/// The function that called the lock: the caller of the outermost frame (not counting
/// inlined ones) that `is_lock` accepts.
fn lock_caller(s: &StackSample, is_lock: fn(&str) -> bool) -> Option<&str> {
    let callers = s.user_callers();
    let i = callers.iter().rposition(|n| is_lock(n))?;
    callers.get(i + 1).copied()
}

/// Whether the stack is complete: the thread's start (start_thread, or main for the main
/// thread) is on it, and its outermost frame is a thread's first.
fn is_rooted(s: &StackSample) -> bool {
    let callers = s.user_callers();
    let has_start = callers
        .iter()
        .any(|n| base_name(n) == "start_thread" || *n == "main");
    has_start
        && callers
            .last()
            .is_some_and(|n| ROOT_FRAMES.contains(&base_name(n)))
}

/// The heaviest stacks by `value`, leaf first, with their labels.
fn stacks(p: &Decoded, value: &str, n: usize) -> String {
    let i = p.value_index(value);
    let mut samples: Vec<&StackSample> = p.samples.iter().collect();
    samples.sort_by_key(|s| std::cmp::Reverse(s.values[i]));
    let mut out = format!("heaviest stacks by {value} (leaf first):\n");
    for s in samples.into_iter().take(n) {
        let _ = writeln!(
            out,
            "  {:>12} {:>8} tid={:?} {:?} mechanism={:?}: {}",
            s.values[i],
            s.values[0],
            s.tid(),
            s.str("thread_comm"),
            s.str("mechanism"),
            s.names().join(" <- ")
        );
    }
    out
}

/// The profile's contentions and delay, in total and per tid.
fn summary(p: &Decoded, truth: &Truth) -> String {
    let mut out = format!(
        "profile: {} samples, {} contentions, delay {:.1} ms, window {:.1} ms\n",
        p.samples.len(),
        p.total("contentions"),
        ms(p.total("delay")),
        ms(p.profile.duration_nanos)
    );
    let delay = p.by_num_label("tid", "delay");
    let count = p.by_num_label("tid", "contentions");
    for (tid, d) in &delay {
        let name = truth
            .thread(*tid)
            .map(|t| t.name.as_str())
            .unwrap_or("(not a reported thread)");
        let _ = writeln!(
            out,
            "  tid {tid} {name:<10}: delay {:.1} ms, {} contentions",
            ms(*d),
            count.get(tid).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        out,
        "by mechanism (delay ns): {:?}",
        p.by_str_label("mechanism", "delay")
    );
    out
}

/// The layout, and the labels of every sample: numeric pid and tid, string comm and
/// thread_comm (the thread's own name), and a `mechanism` that is one of `mechanisms`.
/// Values must be positive.
fn check_samples(p: &Decoded, truth: &Truth, mechanisms: &[&str], problems: &mut Vec<String>) {
    p.assert_layout(MUTEX_TYPES, ("contentions", "count"), 1);
    if p.samples.is_empty() {
        problems.push("the profile has no samples".to_string());
    }
    let pid = truth.pid();
    for s in &p.samples {
        let who = format!("{:?} {:?} {:?}", s.names(), s.values, s.str_labels);
        if s.values.iter().any(|v| *v <= 0) {
            problems.push(format!("a sample with a value <= 0: {who}"));
        }
        if s.pid() != Some(pid) {
            problems.push(format!("pid label {:?}, not {pid}: {who}", s.pid()));
        }
        if s.str("comm") != Some(COMM) {
            problems.push(format!(
                "comm label {:?}, not {COMM:?}: {who}",
                s.str("comm")
            ));
        }
        match s.tid() {
            None => problems.push(format!("no numeric tid label: {who}")),
            Some(tid) => {
                let want = match truth.thread(tid) {
                    Some(t) => Some(t.name.as_str()),
                    None if tid == pid => Some(COMM),
                    None => None,
                };
                match want {
                    None => {
                        problems.push(format!("tid {tid} is not a thread of the workload: {who}"))
                    }
                    Some(name) if s.str("thread_comm") != Some(name) => problems.push(format!(
                        "thread_comm label {:?}, but tid {tid} is {name:?}: {who}",
                        s.str("thread_comm")
                    )),
                    Some(_) => {}
                }
            }
        }
        // A futex wake never waits: a stack in one is a wait closed with another call's
        // registers.
        if let Some(f) = s
            .user_callers()
            .iter()
            .find(|n| base_name(n).contains("wake"))
        {
            problems.push(format!(
                "a wait recorded in {f}, which wakes waiters and never waits itself: {who}"
            ));
        }
        match s.str("mechanism") {
            Some(m) if mechanisms.contains(&m) => {}
            m => problems.push(format!(
                "mechanism label {m:?}, expected one of {mechanisms:?}: {who}"
            )),
        }
    }
    // pid and tid must be numeric labels, never strings (pprof's -tagfocus=tid=N).
    for s in &p.samples {
        for key in ["pid", "tid"] {
            if s.str(key).is_some() {
                problems.push(format!("{key} is a string label: {:?}", s.str_labels));
                return;
            }
        }
    }
}

/// The share of value `value` whose lock was called from `func` (and the stack says so
/// through libc's frames).
fn share_called_from(
    p: &Decoded,
    value: &str,
    is_lock: fn(&str) -> bool,
    func: &str,
    within_samples: impl Fn(&StackSample) -> bool,
) -> f64 {
    p.share_within(value, within_samples, |s| {
        lock_caller(s, is_lock) == Some(func)
    })
}

/// Checks that WHERE_SHARE of the delay of `mechanism` is in the lock called from `func`,
/// and that ROOTED_SHARE of the delay and of the contentions have complete stacks.
fn check_where(
    p: &Decoded,
    mechanism: &str,
    is_lock: fn(&str) -> bool,
    func: &str,
    problems: &mut Vec<String>,
) {
    let of_mech = |s: &StackSample| s.str("mechanism") == Some(mechanism);
    let share = share_called_from(p, "delay", is_lock, func, of_mech);
    if share < WHERE_SHARE {
        problems.push(format!(
            "only {:.1}% of the {mechanism} delay is in a lock called from {func}, \
             expected >= {:.0}%",
            100.0 * share,
            100.0 * WHERE_SHARE
        ));
    }
    let under = p.share_within("delay", of_mech, |s| s.contains(func));
    if under < WHERE_SHARE {
        problems.push(format!(
            "only {:.1}% of the {mechanism} delay has {func} on the stack, expected >= {:.0}%",
            100.0 * under,
            100.0 * WHERE_SHARE
        ));
    }
    for value in ["delay", "contentions"] {
        let rooted = p.share_within(value, of_mech, is_rooted);
        if rooted < ROOTED_SHARE {
            problems.push(format!(
                "only {:.1}% of the {mechanism} {value} has a complete stack (down to \
                 start_thread or main, and a thread's first frame), expected >= {:.0}%",
                100.0 * rooted,
                100.0 * ROOTED_SHARE
            ));
        }
    }
}

/// Checks that no stack holds an event waiter of the workload or an event primitive of
/// libc (condition variables, semaphores, joins, barriers).
fn check_no_event_waits(p: &Decoded, problems: &mut Vec<String>) {
    for s in &p.samples {
        let names = s.names();
        // Waking from pthread_cond_wait re-takes its mutex: when another thread holds it,
        // that wait is contention on the mutex, and belongs in the profile (as in Go's,
        // where sync.Cond's Wait re-locks L): under the mutex's label, with the re-lock
        // as the waiting frame.
        if names
            .iter()
            .any(|n| base_name(n) == "pthread_mutex_cond_lock")
        {
            let user = s.user_callers();
            let relock = user
                .iter()
                .position(|n| base_name(n) == "pthread_mutex_cond_lock");
            let cond_wait = user
                .iter()
                .position(|n| base_name(n) == "pthread_cond_wait");
            let ordered = matches!((relock, cond_wait), (Some(r), Some(c)) if r < c);
            if s.str("mechanism") != Some("pthread_mutex") || !ordered {
                problems.push(format!(
                    "a condition variable's re-lock must be contention on its mutex, taken \
                     inside pthread_cond_wait: mechanism {:?}, stack {user:?}",
                    s.str("mechanism")
                ));
            }
            continue;
        }
        if let Some(f) = names.iter().find(|n| EVENT_WAITERS.contains(n)) {
            problems.push(format!(
                "{f} waits for an event, not for a lock, but is in the profile: {:?} {:?}",
                s.values, names
            ));
        }
        if let Some(f) = names
            .iter()
            .find(|n| EVENT_PRIMITIVES.contains(&base_name(n)))
        {
            problems.push(format!(
                "{f} waits for an event, not for a lock, but is in the profile: {:?} {:?}",
                s.values, names
            ));
        }
    }
}

/// Checks the group's total delay against the workload's measurement (its `wait_ns`, or
/// `want` when given), within DELAY_TOLERANCE.
fn check_total_delay(
    p: &Decoded,
    what: &str,
    pred: impl Fn(&StackSample) -> bool,
    want: i64,
    problems: &mut Vec<String>,
) -> i64 {
    let got = p.total_where("delay", pred);
    if !within(got, want, DELAY_TOLERANCE) {
        problems.push(format!(
            "{what}: delay {:.1} ms in the profile, the workload measured {:.1} ms (x{:.3}, \
             limit {:.0}%)",
            ms(got),
            ms(want),
            ratio(got, want),
            100.0 * DELAY_TOLERANCE
        ));
    }
    got
}

/// Each thread of `group` that waited at least a tenth of the group's time: its delay in
/// the profile (by tid label) within DELAY_TOLERANCE of its own measurement.
fn check_per_thread(p: &Decoded, truth: &Truth, group: &str, problems: &mut Vec<String>) {
    let per_tid = p.by_num_label("tid", "delay");
    let group_wait = truth.group(group).wait_ns;
    for t in truth.threads.iter().filter(|t| t.group == group) {
        if t.counts.wait_ns * 10 < group_wait {
            continue;
        }
        let got = per_tid.get(&t.tid).copied().unwrap_or(0);
        if !within(got, t.counts.wait_ns, DELAY_TOLERANCE) {
            problems.push(format!(
                "thread {} (tid {}): delay {:.1} ms in the profile, it measured {:.1} ms \
                 (limit {:.0}%)",
                t.name,
                t.tid,
                ms(got),
                ms(t.counts.wait_ns),
                100.0 * DELAY_TOLERANCE
            ));
        }
    }
}

/// Checks the delay of the raw futex lock's waits (the samples that `pred` accepts) against
/// what the workload's threads measured of their FUTEX_WAIT calls (`c`). The profile times
/// each call from the system call's entry to its exit; the workload's clock reads around
/// the call hold that and more (the way into and out of the kernel, the probes' own work
/// after their exit time, a preemption on the way), and the kernel's count of the time the
/// thread spent off CPU in the call (`futex_offcpu_ns`) holds no more than that. So the
/// delay lies between the two, however fast or busy the machine. Sampled by length
/// (`sample_ns` > 0), the delay is an estimate: it may stray by 4 standard deviations of
/// its sampling error, at most sqrt(sample_ns * total) for a total time `total`.
fn check_futex_delay(
    p: &Decoded,
    what: &str,
    pred: impl Fn(&StackSample) -> bool,
    c: &Counts,
    sample_ns: f64,
    problems: &mut Vec<String>,
) -> i64 {
    let got = p.total_where("delay", pred);
    if c.futex_offcpu_ns < 0 {
        problems.push(format!(
            "{what}: the workload could not read its time waiting for a CPU \
             (/proc/thread-self/schedstat), so the delay cannot be checked"
        ));
        return got;
    }
    let slack = |total: i64| 4.0 * (sample_ns * total.max(0) as f64).sqrt();
    let low = c.futex_offcpu_ns as f64 - slack(c.futex_offcpu_ns);
    let high = c.futex_ns as f64 + slack(c.futex_ns);
    if (got as f64) < low || got as f64 > high {
        problems.push(format!(
            "{what}: delay {:.3} ms in the profile; the {} futex waits took {:.3} ms by the \
             workload's clock, {:.3} ms of it inside them by the kernel's count (expected \
             {:.3} ms .. {:.3} ms)",
            ms(got),
            c.futex_calls,
            ms(c.futex_ns),
            ms(c.futex_offcpu_ns),
            low / 1e6,
            high / 1e6
        ));
    }
    got
}

/// The lock waits the profiler lost (its buffer full), from the counters in the profile's
/// comments (`stack_samples_lost=N`); 0 when no comment has such a counter.
fn lost_waits(p: &Decoded) -> i64 {
    p.comments()
        .iter()
        .flat_map(|c| c.split_whitespace())
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k == "stack_samples_lost")
        .filter_map(|(_, v)| v.trim_end_matches(',').parse::<i64>().ok())
        .sum()
}

/// The waiter of a handed-over lock (see mutex_contend.c): its known function, which
/// calls the lock, the lock's `mechanism` label, and the lock functions it waits in.
struct Handed {
    func: &'static str,
    mechanism: &'static str,
    is_lock: fn(&str) -> bool,
}

/// The waiters of the group "handoff": pthread locks of each kind.
const HANDED_PTHREAD: &[Handed] = &[
    Handed {
        func: "take_handed_mutex",
        mechanism: "pthread_mutex",
        is_lock: is_mutex_lock,
    },
    Handed {
        func: "take_handed_rdlock",
        mechanism: "pthread_rwlock",
        is_lock: is_rdlock,
    },
    Handed {
        func: "take_handed_wrlock",
        mechanism: "pthread_rwlock",
        is_lock: is_wrlock,
    },
    Handed {
        func: "take_handed_wrlock_from_reader",
        mechanism: "pthread_rwlock",
        is_lock: is_wrlock,
    },
];

/// The waiter of the group "pi": a priority-inheritance mutex.
const HANDED_PI: &[Handed] = &[Handed {
    func: "take_handed_pi_mutex",
    mechanism: "pthread_mutex",
    is_lock: is_mutex_lock,
}];

/// The handed-over waits each waiter must have made for the test to mean something (a pair
/// makes hundreds a second on an idle machine).
const MIN_HANDOFFS: i64 = 100;

/// Checks a recording with `--block-rate 0s` of handed-over locks: each waiter's lock calls
/// made exactly one futex wait each (its FUTEX_CALLS), so its contentions are exactly that
/// many, every one labelled with the lock's mechanism and with a complete stack (down to
/// start_thread and clone3) in which the waiter's known function called the lock; its delay
/// lies between the kernel's count of the time inside the waits and the workload's clock
/// around the lock calls; and no other thread (the holders, the main thread) waited for a
/// lock. No wait may be lost.
fn check_handed_waits(p: &Decoded, truth: &Truth, handed: &[Handed], problems: &mut Vec<String>) {
    let lost = lost_waits(p);
    if lost != 0 {
        problems.push(format!("{lost} waits lost"));
    }
    let mut waiters = BTreeSet::new();
    for h in handed {
        let Some(t) = truth.threads.iter().find(|t| t.func == h.func) else {
            problems.push(format!("the workload reported no waiter in {}", h.func));
            continue;
        };
        waiters.insert(t.tid);
        let c = &t.counts;
        if c.futex_calls < MIN_HANDOFFS {
            problems.push(format!(
                "{} waited only {} times: the test means nothing",
                t.name, c.futex_calls
            ));
        }
        let of_thread = |s: &StackSample| s.tid() == Some(t.tid);
        let got = p.total_where("contentions", of_thread);
        let placed = p.total_where("contentions", |s| {
            of_thread(s)
                && s.str("mechanism") == Some(h.mechanism)
                && lock_caller(s, h.is_lock) == Some(h.func)
                && is_rooted(s)
        });
        if got != c.futex_calls || placed != got {
            problems.push(format!(
                "{} (tid {}): {got} contentions in the profile, {placed} of them {} with a \
                 complete stack in which {} called the lock; it waited {} times",
                t.name, t.tid, h.mechanism, h.func, c.futex_calls
            ));
        }
        let what = format!("{} (tid {})", t.name, t.tid);
        let delay = check_futex_delay(p, &what, of_thread, c, 0.0, problems);
        eprintln!(
            "{what}: {got} contentions ({placed} in place) for {} waits; delay {:.3} ms, the \
             workload's clock {:.3} ms, inside the waits by the kernel's count {:.3} ms; futex \
             op {:?}",
            c.futex_calls,
            ms(delay),
            ms(c.futex_ns),
            ms(c.futex_offcpu_ns),
            truth.futex_ops.get(h.func)
        );
    }
    let others = p.total_where("contentions", |s| {
        !s.tid().is_some_and(|tid| waiters.contains(&tid))
    });
    if others != 0 {
        problems.push(format!(
            "{others} contentions of threads that never wait for a lock (the holders, the main \
             thread)"
        ));
    }
}

/// Prints the main numbers of a recording (seen with `--nocapture`): the profile's delay
/// and contentions against the workload's, and where the delay of `mechanism` sits.
fn note(
    p: &Decoded,
    mechanism: &str,
    is_lock: fn(&str) -> bool,
    func: &str,
    (want_ns, want_count): (i64, i64),
) {
    let of_mech = |s: &StackSample| s.str("mechanism") == Some(mechanism);
    eprintln!(
        "{}: delay {:.1} ms vs the workload's {:.1} ms (x{:.3}); {} contentions vs {}; \
         {mechanism} delay in a lock called from {func}: {:.1}%, complete stacks: {:.1}% of \
         delay, {:.1}% of contentions; {} samples in {:.0} ms, {} waits lost",
        p.path.display(),
        ms(p.total("delay")),
        ms(want_ns),
        ratio(p.total("delay"), want_ns),
        p.total("contentions"),
        want_count,
        100.0 * share_called_from(p, "delay", is_lock, func, of_mech),
        100.0 * p.share_within("delay", of_mech, is_rooted),
        100.0 * p.share_within("contentions", of_mech, is_rooted),
        p.samples.len(),
        ms(p.profile.duration_nanos),
        lost_waits(p)
    );
}

/// Fails the test with every problem found, and everything needed to see why.
fn assert_no_problems(problems: &[String], context: &[&str]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}\n\n{}",
        problems.len(),
        problems.join("\n- "),
        context.join("\n")
    );
}

/// [`assert_no_problems`] with what a launched run shows: the workload's table, the
/// profile's summary and heaviest stacks, the profile, and the run.
fn assert_no_problems_in_run(problems: &[String], p: &Decoded, truth: &Truth, run: &RunOutput) {
    assert_no_problems(
        problems,
        &[
            &truth.table(),
            &summary(p, truth),
            &stacks(p, "delay", 10),
            &p.report(),
            &run.describe(),
        ],
    );
}

/// The workload, built as distributions build (see [`DISTRO_FLAGS`]).
fn build_workload(dir: &TempDir) -> PathBuf {
    build_c_exact("gcc", SOURCE, dir.path(), COMM, DISTRO_FLAGS)
}

/// `record --type mutex [EXTRA...] -o OUT -- mutex_contend SECONDS GROUPS`: the profile,
/// the workload's report (its stdout) and the run. With a futex group the workload runs on
/// after SECONDS until its threads have made MIN_FUTEX_WAITS FUTEX_WAIT calls (how many
/// they make in a second depends on the machine's speed and load).
fn record_launched(
    dir: &TempDir,
    seconds: &str,
    groups: &str,
    extra: &[&str],
    out: &Path,
) -> (Decoded, Truth, RunOutput) {
    let bin = build_workload(dir);
    let mut args = vec!["--type", "mutex"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-o",
        out.to_str().unwrap(),
        "--",
        bin.to_str().unwrap(),
        seconds,
        groups,
    ]);
    let mut cmd = record_cmd(&args);
    if groups.split(',').any(|g| g.ends_with("futex")) {
        cmd.env("MIN_FUTEX_WAITS", MIN_FUTEX_WAITS.to_string());
    }
    let run = Running::start(cmd).finish(Duration::from_secs(90));
    run.assert_success();
    let truth = Truth::parse(&run.stdout);
    assert!(
        truth.done && truth.pid.is_some() && truth.ran_ns.is_some(),
        "the workload did not finish\n{}",
        run.describe()
    );
    let p = decode(out);
    // The recording spans the workload's run, and no more than starting and joining its
    // threads and writing the profile.
    let ran = truth.ran_ns.unwrap() as f64;
    assert!(
        (p.profile.duration_nanos as f64) >= ran && (p.profile.duration_nanos as f64) <= ran + 3e9,
        "duration_nanos {} for a workload that ran {:.1} ms ({seconds} s asked)\n{}",
        p.profile.duration_nanos,
        ran / 1e6,
        run.describe()
    );
    (p, truth, run)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// Four threads contending on one pthread mutex: the delay is where they lock it (the
/// caller of pthread_mutex_lock, found through libc's frames), about what they measured
/// themselves (in total and per thread), counted in contentions, labelled
/// `pthread_mutex`, with complete stacks. The default block rate (1ms) samples the short
/// waits.
#[test]
fn mutex_delay_where_and_how_much() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-mutex");
    let out = dir.join("mutex.pb.gz");
    let (p, truth, run) = record_launched(&dir, "3", "mutex", &[], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_mutex"], &mut problems);
    check_where(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        &mut problems,
    );

    // On a busy machine a holder is often preempted under the lock: the others then wait
    // for it a long time, so there are fewer contended acquisitions (85 in 3 s under a load
    // average of 10), but as much delay.
    let g = truth.group("mutex");
    if g.wait_ns < 1_000_000_000 || g.contended < MIN_CONTENDED {
        problems.push(format!(
            "the workload hardly contended ({} contended acquisitions, {:.1} ms waited): \
             the test means nothing",
            g.contended,
            ms(g.wait_ns)
        ));
    }
    check_total_delay(&p, "all samples", |_| true, g.wait_ns, &mut problems);
    check_per_thread(&p, &truth, "mutex", &mut problems);

    // The number of contentions is checked exactly on locks handed over to a thread known
    // to be asleep on them (block_rate_zero_counts_every_handed_over_pthread_lock_wait and
    // priority_inheritance_mutex_waits_are_counted), not here: a contention is one futex
    // wait, and nothing the workload can count in free contention is the number of its
    // futex waits, nor bounds it on both sides.
    // - A contended acquisition (a failed trylock) may take the lock in glibc's slow path
    //   without any wait (__lll_lock_wait's exchange finds it free; the rwlock's slow paths
    //   retry in user space: in one run, 158,000 contended acquisitions of the rwlock made
    //   about 13,000 waits), or wait several times when a woken waiter finds the lock taken
    //   again.
    // - A wait may return at once (EAGAIN: the lock word changed before the kernel read it)
    //   or be woken before it slept, which user space cannot see: the voluntary context
    //   switches (getrusage) count only the waits that slept.
    // - Sampled at the default rate, a wait of d ns shorter than 1 ms counts 1 ms / d with
    //   probability d / 1 ms: a variance of about 1 ms / d per wait, which for the
    //   microsecond waits here nothing the workload measures bounds either.
    if p.total("contentions") <= 0 {
        problems.push("no contentions counted".to_string());
    }

    note(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        (g.wait_ns, g.contended),
    );
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// Writers and readers contending on a writer-preferring pthread rwlock: the delay is
/// labelled `pthread_rwlock`, sits in the rdlock/wrlock called from contend_on_rwlock, and
/// is about what the threads measured; both readers and writers waited.
#[test]
fn rwlock_delay_is_labelled_pthread_rwlock() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-rwlock");
    let out = dir.join("rwlock.pb.gz");
    let (p, truth, run) = record_launched(&dir, "3", "rwlock", &[], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_rwlock"], &mut problems);
    check_where(
        &p,
        "pthread_rwlock",
        is_rwlock_lock,
        CONTEND_ON_RWLOCK,
        &mut problems,
    );
    let g = truth.group("rwlock");
    check_total_delay(&p, "all samples", |_| true, g.wait_ns, &mut problems);

    // Readers wait in rdlock, writers in wrlock; each role's delay against its own
    // measurement.
    for (role, prefix, lock) in [
        ("readers", "rwread", "rdlock"),
        ("writers", "rwwrite", "wrlock"),
    ] {
        let tids: BTreeSet<i64> = truth
            .threads
            .iter()
            .filter(|t| t.name.starts_with(prefix))
            .map(|t| t.tid)
            .collect();
        let measured: i64 = truth
            .threads
            .iter()
            .filter(|t| tids.contains(&t.tid))
            .map(|t| t.counts.wait_ns)
            .sum();
        if measured < 100_000_000 {
            problems.push(format!(
                "the {role} hardly waited ({:.1} ms): the test means nothing",
                ms(measured)
            ));
            continue;
        }
        let in_role = |s: &StackSample| s.tid().is_some_and(|t| tids.contains(&t));
        check_total_delay(&p, role, in_role, measured, &mut problems);
        let share = p.share_within("delay", in_role, |s| {
            s.user_callers()
                .iter()
                .any(|n| is_rwlock_lock(n) && base_name(n).contains(lock))
        });
        if share < WHERE_SHARE {
            problems.push(format!(
                "only {:.1}% of the {role}' delay is in pthread_rwlock_{lock}, expected >= \
                 {:.0}%",
                100.0 * share,
                100.0 * WHERE_SHARE
            ));
        }
    }
    // Counted exactly in block_rate_zero_counts_every_handed_over_pthread_lock_wait, not
    // here: see mutex_delay_where_and_how_much for why.
    if p.total("contentions") <= 0 {
        problems.push("no contentions counted".to_string());
    }

    note(
        &p,
        "pthread_rwlock",
        is_rwlock_lock,
        CONTEND_ON_RWLOCK,
        (g.wait_ns, g.contended),
    );
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// The program's own futex lock (FUTEX_WAIT through syscall(2)): labelled `futex`, in
/// syscall called from contend_on_raw_futex. The workload counts and times every FUTEX_WAIT
/// it makes, which is exactly what the kernel sees: the sampled estimates of both the
/// contentions and the delay must match.
#[test]
fn raw_futex_lock_is_labelled_futex_and_estimates_match() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-futex");
    let out = dir.join("futex.pb.gz");
    let (p, truth, run) = record_launched(&dir, "3", "futex", &[], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["futex"], &mut problems);
    check_where(
        &p,
        "futex",
        is_syscall_wrapper,
        CONTEND_ON_RAW_FUTEX,
        &mut problems,
    );
    let g = truth.group("futex");
    if g.futex_calls < MIN_FUTEX_WAITS {
        problems.push(format!(
            "the workload made only {} FUTEX_WAIT calls: the test means nothing",
            g.futex_calls
        ));
    }
    // The time in the system calls, as the profile times them, in all and per thread (each
    // that waited at least a tenth of the group's time).
    const SAMPLE_NS: f64 = 1e6;
    check_futex_delay(&p, "all samples", |_| true, g, SAMPLE_NS, &mut problems);
    for t in truth.threads.iter().filter(|t| t.group == "futex") {
        if t.counts.futex_ns * 10 >= g.futex_ns {
            let what = format!("thread {} (tid {})", t.name, t.tid);
            let of_thread = |s: &StackSample| s.tid() == Some(t.tid);
            check_futex_delay(&p, &what, of_thread, &t.counts, SAMPLE_NS, &mut problems);
        }
    }
    let contentions = p.total("contentions");
    if !within(contentions, g.futex_calls, DELAY_TOLERANCE) {
        problems.push(format!(
            "{contentions} contentions in the profile, the workload made {} FUTEX_WAIT \
             calls (x{:.3}, limit {:.0}%)",
            g.futex_calls,
            ratio(contentions, g.futex_calls),
            100.0 * DELAY_TOLERANCE
        ));
    }

    note(
        &p,
        "futex",
        is_syscall_wrapper,
        CONTEND_ON_RAW_FUTEX,
        (g.futex_ns, g.futex_calls),
    );
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// `--block-rate 0s` keeps every wait: each FUTEX_WAIT is one contention, and the delay is
/// the time in the calls. The load is up to a few thousand waits a second (`slowfutex`, run
/// until it has made MIN_FUTEX_WAITS), which the profiler must keep up with: none may be
/// lost.
#[test]
fn block_rate_zero_counts_every_futex_wait() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-exact");
    let out = dir.join("exact.pb.gz");
    let (p, truth, run) = record_launched(&dir, "2", "slowfutex", &["--block-rate", "0s"], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["futex"], &mut problems);
    let g = truth.group("futex");
    if g.futex_calls < MIN_EXACT_FUTEX_WAITS {
        problems.push(format!(
            "the workload made only {} FUTEX_WAIT calls: the test means nothing",
            g.futex_calls
        ));
    }
    let under = |s: &StackSample| s.contains(CONTEND_ON_RAW_FUTEX);
    let contentions = p.total_where("contentions", under);
    let lost = lost_waits(&p);
    // Every call of the launched workload is in the recording, counted once.
    if contentions != g.futex_calls || lost != 0 {
        problems.push(format!(
            "{contentions} contentions under {CONTEND_ON_RAW_FUTEX} ({lost} waits lost) in \
             the profile, the workload made {} FUTEX_WAIT calls",
            g.futex_calls
        ));
    }
    // Unsampled, each wait counts with its own length: the delay is the time in the calls
    // from the system call's entry to its exit, between what the kernel says was inside them
    // and what the workload's clock saw around them.
    let delay = check_futex_delay(&p, "the waits", under, g, 0.0, &mut problems);
    eprintln!(
        "delay {:.3} ms: the workload's clock {:.3} ms (x{:.3}), inside the calls by the \
         kernel's count {:.3} ms (x{:.3})",
        ms(delay),
        ms(g.futex_ns),
        ratio(delay, g.futex_ns),
        ms(g.futex_offcpu_ns),
        ratio(delay, g.futex_offcpu_ns)
    );

    note(
        &p,
        "futex",
        is_syscall_wrapper,
        CONTEND_ON_RAW_FUTEX,
        (g.futex_ns, g.futex_calls),
    );
    assert_no_problems(
        &problems,
        &[
            &truth.table(),
            &summary(&p, &truth),
            &format!("comments: {:?}", p.comments()),
            &stacks(&p, "delay", 5),
            &run.describe(),
        ],
    );
}

/// `--block-rate 0s` keeps every wait, and a pthread lock handed over to a thread that the
/// kernel shows asleep on it waits exactly once (see mutex_contend.c): for a default mutex,
/// and for an rwlock's rdlock and wrlock behind a writer and its wrlock behind a reader,
/// the contentions are exactly the waiter's count of its waits, all of them where the
/// waiter called the lock, under complete stacks (the workload is built without frame
/// pointers), and the delay lies within the kernel's and the workload's own figures.
#[test]
fn block_rate_zero_counts_every_handed_over_pthread_lock_wait() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-handoff");
    let out = dir.join("handoff.pb.gz");
    let (p, truth, run) = record_launched(&dir, "2", "handoff", &["--block-rate", "0s"], &out);
    let mut problems = Vec::new();
    check_samples(
        &p,
        &truth,
        &["pthread_mutex", "pthread_rwlock"],
        &mut problems,
    );
    check_handed_waits(&p, &truth, HANDED_PTHREAD, &mut problems);
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// A priority-inheritance mutex (PTHREAD_PRIO_INHERIT) waits in futex(FUTEX_LOCK_PI), or
/// FUTEX_LOCK_PI2, not FUTEX_WAIT: handed over as the pthread locks are, with
/// `--block-rate 0s`, its waits are all in the profile, exactly as many as the waiter made,
/// labelled `pthread_mutex` and where the waiter called pthread_mutex_lock.
#[test]
fn priority_inheritance_mutex_waits_are_counted() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-pi");
    let out = dir.join("pi.pb.gz");
    let (p, truth, run) = record_launched(&dir, "2", "pi", &["--block-rate", "0s"], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_mutex"], &mut problems);
    // The waiter must have slept in a PI operation, or this is not a test of them.
    const FUTEX_LOCK_PI: i64 = 6;
    const FUTEX_LOCK_PI2: i64 = 13;
    let op = truth.futex_ops.get("take_handed_pi_mutex").copied();
    if !matches!(op, Some(FUTEX_LOCK_PI | FUTEX_LOCK_PI2)) {
        problems.push(format!(
            "the PI mutex's waiter was seen asleep in futex operation {op:?}, not \
             FUTEX_LOCK_PI ({FUTEX_LOCK_PI}) or FUTEX_LOCK_PI2 ({FUTEX_LOCK_PI2})"
        ));
    }
    check_handed_waits(&p, &truth, HANDED_PI, &mut problems);
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// Threads waiting in pthread_cond_timedwait (wait_on_condvar) and sem_wait
/// (wait_on_semaphore), and the main thread in pthread_join and the barrier, wait for
/// events, not locks: none of it is in the profile, while the mutex contention next to it
/// is, in full.
#[test]
fn condition_variable_and_semaphore_waits_are_left_out() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-condvar");
    let out = dir.join("condvar.pb.gz");
    let (p, truth, run) = record_launched(&dir, "3", "condvar,mutex", &[], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_mutex"], &mut problems);
    check_no_event_waits(&p, &mut problems);

    // The event waiters did wait, most of the time, woken every 2 ms: had their futex
    // waits been taken for contention, they would be seconds of delay.
    for t in truth
        .threads
        .iter()
        .filter(|t| EVENT_WAITERS.contains(&t.func.as_str()))
    {
        if ms(t.counts.wait_ns) < 0.5 * ms(p.profile.duration_nanos) || t.counts.rounds < 200 {
            problems.push(format!(
                "{} hardly waited ({} waits, {:.1} ms): the test means nothing",
                t.name,
                t.counts.rounds,
                ms(t.counts.wait_ns)
            ));
        }
    }
    let waiter_tids: BTreeSet<i64> = truth
        .threads
        .iter()
        .filter(|t| t.group == "condvar")
        .map(|t| t.tid)
        .collect();
    let waiters_delay = p.total_where("delay", |s| {
        s.tid().is_some_and(|t| waiter_tids.contains(&t))
    });
    if waiters_delay > 1_000_000 {
        problems.push(format!(
            "the event waiters and their signaller have {:.1} ms of delay",
            ms(waiters_delay)
        ));
    }
    // The mutex contention is all there.
    check_where(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        &mut problems,
    );
    check_total_delay(
        &p,
        "mutex threads",
        |s| s.contains(CONTEND_ON_MUTEX),
        truth.group("mutex").wait_ns,
        &mut problems,
    );

    let m = truth.group("mutex");
    note(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        (m.wait_ns, m.contended),
    );
    eprintln!(
        "event waiters: {:.1} ms waited, {:.1} ms of delay in the profile",
        truth
            .threads
            .iter()
            .filter(|t| t.group == "condvar")
            .map(|t| ms(t.counts.wait_ns))
            .sum::<f64>(),
        ms(waiters_delay)
    );
    assert_no_problems_in_run(&problems, &p, &truth, &run);
}

/// `go tool pprof` reads the profile: it opens on delay (the last sample type), and both
/// `-sample_index=delay` and `-sample_index=contentions` put contend_on_mutex at the top
/// by cumulative value, with the total agreeing with ours.
#[test]
fn go_pprof_shows_delay_and_contentions() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-pprof");
    let out = dir.join("pprof.pb.gz");
    let (p, truth, run) = record_launched(&dir, "2", "mutex", &[], &out);
    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_mutex"], &mut problems);
    let mut tables = Vec::new();
    for index in ["delay", "contentions"] {
        let text = go_pprof(
            &[
                &format!("-sample_index={index}"),
                "-top",
                "-nodefraction=0",
                "-symbolize=none",
            ],
            &out,
        );
        let top = parse_top(&text);
        if top.kind != index {
            problems.push(format!(
                "pprof -sample_index={index} shows Type: {}",
                top.kind
            ));
        }
        let ours = p.total(index) as f64;
        // pprof prints 3 significant digits.
        if (top.total - ours).abs() > 0.01 * ours {
            problems.push(format!(
                "pprof -sample_index={index}: total {}, ours {ours}",
                top.total
            ));
        }
        match top.row(CONTEND_ON_MUTEX) {
            Some(row) if row.cum_pct >= 100.0 * WHERE_SHARE => {}
            row => problems.push(format!(
                "pprof -sample_index={index}: {CONTEND_ON_MUTEX} cum {:?}, expected >= {:.0}%",
                row.map(|r| r.cum_pct),
                100.0 * WHERE_SHARE
            )),
        }
        tables.push(format!(
            "--- go tool pprof -sample_index={index} -top ---\n{text}"
        ));
    }
    let default_kind = parse_top(&go_pprof_top(&out)).kind;
    if default_kind != "delay" {
        problems.push(format!("pprof's default view is {default_kind}, not delay"));
    }
    // The mechanism label is a tag pprof can focus on.
    let focused = go_pprof(
        &[
            "-sample_index=delay",
            "-top",
            "-nodefraction=0",
            "-tagfocus=mechanism=pthread_mutex",
        ],
        &out,
    );
    let focused_total = parse_top(&focused).total;
    if (focused_total - p.total("delay") as f64).abs() > 0.01 * p.total("delay") as f64 {
        problems.push(format!(
            "pprof -tagfocus=mechanism=pthread_mutex: total {focused_total}, ours {}",
            p.total("delay")
        ));
    }
    tables.push(focused);

    let mut context: Vec<&str> = tables.iter().map(|t| t.as_str()).collect();
    let table = truth.table();
    let describe = run.describe();
    context.push(&table);
    context.push(&describe);
    let g = truth.group("mutex");
    note(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        (g.wait_ns, g.contended),
    );
    assert_no_problems(&problems, &context);
}

/// `-p` of a process that was contending before the recording and goes on after it: the
/// delay covers the window, against the workload's own log of its waits; where it sits and
/// the labels as for a launched one.
#[test]
fn attached_pid_measures_the_window() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("mutex-attached");
    let bin = build_workload(&dir);
    let out = dir.join("attached.pb.gz");
    let log = dir.join("ticks.log");
    let w = Workload::start(&bin, &["7", "mutex", log.to_str().unwrap()]);
    // Its threads, all named by now ("ready"), read before the recording: on a busy machine
    // the recording may outlast the workload.
    let tids: BTreeMap<u32, String> = w.threads();
    // Contending for a while before the recording starts.
    std::thread::sleep(Duration::from_millis(500));
    let pid = w.pid.to_string();
    let run = record(
        &[
            "--type",
            "mutex",
            "-p",
            &pid,
            "--seconds",
            "2",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    let workload_pid = w.pid as i64;
    let status = w.wait(Duration::from_secs(20));
    assert!(status.success(), "the workload failed: {status}");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    let ticks = parse_ticks(&text, "mutex");
    let p = decode(&out);

    // The threads, as /proc showed them while running (the report went to a pipe nobody
    // reads after the ready line).
    let truth = Truth {
        pid: Some(workload_pid),
        done: true,
        ran_ns: None,
        threads: tids
            .iter()
            .filter(|(tid, _)| **tid as i64 != workload_pid)
            .map(|(tid, name)| ThreadReport {
                name: name.clone(),
                tid: *tid as i64,
                group: "mutex".to_string(),
                func: CONTEND_ON_MUTEX.to_string(),
                counts: Counts::default(),
            })
            .collect(),
        groups: BTreeMap::new(),
        futex_ops: BTreeMap::new(),
    };
    let from = p.profile.time_nanos;
    let to = from + p.profile.duration_nanos;
    let secs = p.profile.duration_nanos as f64 / 1e9;
    assert!(
        (1.8..=5.0).contains(&secs),
        "duration_nanos {} for a 2 s recording\n{}",
        p.profile.duration_nanos,
        run.describe()
    );
    assert!(
        ticks.len() >= 50
            && ticks.first().is_some_and(|k| k.t_ns < from)
            && ticks.last().is_some_and(|k| k.t_ns > to),
        "the workload was not running through the whole window {from}..{to} ({} ticks: \
         {:?} .. {:?})\n{}",
        ticks.len(),
        ticks.first(),
        ticks.last(),
        run.describe()
    );
    let (w0, n0) = totals_at(&ticks, from);
    let (w1, n1) = totals_at(&ticks, to);
    let window_wait = (w1 - w0) as i64;
    let window_waits = (n1 - n0) as i64;
    let context = format!(
        "window {from}..{to} ({:.1} ms): the workload waited {:.1} ms in {window_waits} \
         contended acquisitions",
        ms(to - from),
        ms(window_wait)
    );

    let mut problems = Vec::new();
    check_samples(&p, &truth, &["pthread_mutex"], &mut problems);
    check_where(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        &mut problems,
    );
    if window_wait < 500_000_000 {
        problems.push(format!(
            "the workload hardly waited in the window ({:.1} ms): the test means nothing",
            ms(window_wait)
        ));
    }
    check_total_delay(&p, "the window", |_| true, window_wait, &mut problems);
    if p.total("contentions") < window_waits / 2 {
        problems.push(format!(
            "{} contentions in the profile for {window_waits} contended acquisitions in the \
             window",
            p.total("contentions")
        ));
    }
    note(
        &p,
        "pthread_mutex",
        is_mutex_lock,
        CONTEND_ON_MUTEX,
        (window_wait, window_waits),
    );
    assert_no_problems(
        &problems,
        &[
            &context,
            &summary(&p, &truth),
            &stacks(&p, "delay", 10),
            &p.report(),
            &run.describe(),
        ],
    );
}
