//! Stacks of real programs, built the way distributions build them (`-O2`, no frame-pointer
//! flags), through the real kernel: code running and blocking inside signal handlers (whose
//! stacks go through the kernel's signal frame), threads and processes made through libc's
//! own wrappers (whose `clone3`, `clone` and `vfork` have no usable CFI at the system call),
//! in C, C++ and Rust, and PostgreSQL under pgbench, whose auxiliary processes live their
//! whole life under a signal handler.
//!
//! A stack is *rooted* when its outermost user frame is a program's or a thread's entry
//! (`_start`, or the child side of `clone3`/`clone`), so that no `[truncated: ...]` frame
//! stands for a stack the unwinder gave up on.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// The outermost user frames of complete stacks.
const ROOTS: &[&str] = &["_start", "clone3", "clone", "__clone3", "__clone"];

fn is_rooted(s: &StackSample) -> bool {
    s.user_frames()
        .last()
        .is_some_and(|f| ROOTS.contains(&f.name.as_str()))
}

/// Whether `chain` (callee first) appears in order, each right below the one before, among
/// the frames really called (inlined ones left out).
fn has_chain(s: &StackSample, chain: &[&str]) -> bool {
    let user = s.user_callers();
    user.windows(chain.len()).any(|w| w == chain)
}

/// Whether `functions` (callee first) are all on the stack, in that order, with any frames
/// between them.
fn in_order(s: &StackSample, functions: &[&str]) -> bool {
    let user = s.user_callers();
    let mut from = 0;
    functions
        .iter()
        .all(|f| match user[from..].iter().position(|n| n == f) {
            Some(i) => {
                from += i + 1;
                true
            }
            None => false,
        })
}

/// The heaviest stacks, for failure messages.
fn heaviest(p: &Decoded, value: &str, n: usize) -> String {
    let i = p.value_index(value);
    let mut samples: Vec<&StackSample> = p.samples.iter().collect();
    samples.sort_by_key(|s| -s.values[i]);
    samples
        .iter()
        .take(n)
        .map(|s| format!("{:>12} {}", s.values[i], s.user_names().join(" <- ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `rprof-bpf record EXTRA... -p PID --seconds SECONDS -o OUT`, which must succeed.
fn record_pid(pid: u32, seconds: &str, out: &Path, extra: &[&str]) -> RunOutput {
    let pid = pid.to_string();
    let mut args = extra.to_vec();
    args.extend_from_slice(&[
        "-p",
        &pid,
        "--seconds",
        seconds,
        "-o",
        out.to_str().unwrap(),
    ]);
    let run = record(&args, Duration::from_secs(60));
    run.assert_success();
    run
}

fn record_launched(out: &Path, extra: &[&str], command: &[&str]) -> RunOutput {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["-o", out.to_str().unwrap(), "--"]);
    args.extend_from_slice(command);
    let run = record(&args, Duration::from_secs(60));
    run.assert_success();
    assert!(
        run.stdout.lines().any(|l| l == "done"),
        "the workload did not finish\n{}",
        run.describe()
    );
    run
}

// ---------------------------------------------------------------------------------------
// Signal frames
// ---------------------------------------------------------------------------------------

/// The SIGALRM handler's CPU time continues, through `__restore_rt`, into the loop it
/// interrupted and on to `main`.
#[test]
fn cpu_in_a_signal_handler_reaches_the_interrupted_code() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("signal-cpu");
    let bin = build_c("signal_work.c", dir.path(), "signal_work");
    let out = dir.join("cpu.pb.gz");
    let run = record_launched(&out, &["-F", "299"], &[bin.to_str().unwrap(), "cpu", "3"]);
    let p = decode(&out);
    let in_handler = |s: &StackSample| s.contains("handler_spin");
    let handler = p.total_where("samples", in_handler);
    // The signal can also arrive in the clock_gettime the loop calls (in the vDSO).
    let through = p.share_within("samples", in_handler, |s| {
        has_chain(s, &["handler_spin", "on_alarm", "__restore_rt"])
            && in_order(
                s,
                &["__restore_rt", "interrupted_loop", "spin_outer", "main"],
            )
            && is_rooted(s)
    });
    let rooted = p.share_within("samples", |_| true, is_rooted);
    let context = format!(
        "{handler} samples in the handler, {:.1}% through the signal frame to main; {:.1}% of \
         all rooted\n{}\n{}",
        100.0 * through,
        100.0 * rooted,
        heaviest(&p, "samples", 8),
        run.describe()
    );
    eprintln!("{context}");
    // The handler runs ~10 ms of every 20: about half of 3 s at 299 Hz.
    assert!(handler >= 100, "too few samples: {context}");
    assert!(through >= 0.98, "{context}");
    assert!(rooted >= 0.98, "{context}");
}

/// A thread blocked in read() takes a signal whose handler sleeps: that off-CPU time goes
/// handler <- `__restore_rt` <- read <- blocked_read <- reader_main <- start_thread, and adds
/// up to what the handler itself measured.
#[test]
fn blocking_in_a_signal_handler_reaches_the_interrupted_code() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("signal-block");
    let bin = build_c("signal_work.c", dir.path(), "signal_work");
    let out = dir.join("block.pb.gz");
    let run = record_launched(
        &out,
        &["--type", "off-cpu"],
        &[bin.to_str().unwrap(), "block", "3"],
    );
    let truth: i64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("handler_sleep_ns ")?.parse().ok())
        .unwrap_or_else(|| panic!("no handler_sleep_ns line\n{}", run.describe()));
    let p = decode(&out);
    let in_handler = |s: &StackSample| s.contains("handler_sleep");
    let handler_ns = p.total_where("off_cpu", in_handler);
    // The reader's first signal can come before it reaches blocked_read: the whole reader
    // thread counts, and most of the time must be in the read.
    let through = p.share_within("off_cpu", in_handler, |s| {
        has_chain(s, &["handler_sleep", "on_usr1", "__restore_rt"])
            && in_order(s, &["__restore_rt", "start_thread"])
            && is_rooted(s)
    });
    let in_read = p.share_within("off_cpu", in_handler, |s| {
        // Between the trampoline and blocked_read lie libc's read wrappers.
        in_order(
            s,
            &[
                "__restore_rt",
                "blocked_read",
                "reader_main",
                "start_thread",
            ],
        )
    });
    let reader_rooted = p.share_within("off_cpu", |s| s.contains("reader_main"), is_rooted);
    let context = format!(
        "{:.1} ms in the handler in the profile, {:.1} ms by the handler's own clock; \
         {:.1}% of it through the signal frame to start_thread, {:.1}% from the read; the \
         reader's time rooted {:.1}%\n{}\n{}",
        handler_ns as f64 / 1e6,
        truth as f64 / 1e6,
        100.0 * through,
        100.0 * in_read,
        100.0 * reader_rooted,
        heaviest(&p, "off_cpu", 8),
        run.describe()
    );
    eprintln!("{context}");
    assert!(
        truth > 500_000_000,
        "the workload slept too little: {context}"
    );
    // The same sleeps, timed by the kernel's switches and by the handler's clock reads.
    let ratio = handler_ns as f64 / truth as f64;
    assert!((0.9..=1.1).contains(&ratio), "x{ratio:.3}: {context}");
    assert!(through >= 0.98, "{context}");
    assert!(in_read >= 0.9, "{context}");
    assert!(reader_rooted >= 0.98, "{context}");
}

// ---------------------------------------------------------------------------------------
// Blocking through libc's wrappers
// ---------------------------------------------------------------------------------------

/// Each thread of libc_blocking, its blocking function and its thread function.
const LIBC_WAITS: [(&str, &str, &str); 4] = [
    ("sleeper", "wait_in_nanosleep", "sleeper_main"),
    ("reader", "wait_in_read", "reader_main"),
    ("waiter", "wait_in_cond", "cond_main"),
    ("poller", "wait_in_epoll", "epoll_main"),
];

/// Records libc_blocking with `--type KIND EXTRA...` and checks that each thread's time is
/// under its own chain, through libc's wrapper, rooted, for at least 95% of it.
fn libc_blocking_stacks(kind: &str, value: &str, extra: &[&str]) {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new(&format!("libc-blocking-{kind}"));
    let bin = build_c("libc_blocking.c", dir.path(), "libc_blocking");
    let w = Workload::start(&bin, &["6"]);
    let out = dir.join("blocking.pb.gz");
    let mut args = vec!["--type", kind];
    args.extend_from_slice(extra);
    let run = record_pid(w.pid, "2", &out, &args);
    w.kill();
    let p = decode(&out);
    let mut shares = Vec::new();
    for (thread, wait, main) in LIBC_WAITS {
        let mine = |s: &StackSample| s.str("thread_comm") == Some(thread);
        let share = p.share_within(value, mine, |s| {
            has_chain(s, &[wait, main, "start_thread"]) && is_rooted(s)
        });
        shares.push((thread, share, p.total_where(value, mine)));
    }
    let context = format!(
        "{kind} {extra:?}: (thread, share under its chain, total {value}): {shares:?}\n{}\n{}",
        heaviest(&p, value, 10),
        run.describe()
    );
    eprintln!("{context}");
    for (thread, share, total) in &shares {
        assert!(*total > 0, "{thread}: {context}");
        assert!(*share >= 0.95, "{thread}: {context}");
    }
}

/// Deferred copies (the default), where few blocks are recorded.
#[test]
fn off_cpu_through_libc_wrappers_is_complete() {
    libc_blocking_stacks("off-cpu", "off_cpu", &[]);
}

/// Every block recorded: the copies are deferred too, rather than a frame-pointer walk that
/// would stop in libc.
#[test]
fn off_cpu_every_block_through_libc_wrappers_is_complete() {
    libc_blocking_stacks("off-cpu", "off_cpu", &["--block-rate", "0s"]);
}

#[test]
fn wall_through_libc_wrappers_is_complete() {
    libc_blocking_stacks("wall", "wall", &[]);
}

// ---------------------------------------------------------------------------------------
// Threads and processes made through libc
// ---------------------------------------------------------------------------------------

/// Creations per creating function, each of which must also reach `main` and be rooted.
fn creations(p: &Decoded, creators: &[&str]) -> Vec<(String, i64, i64)> {
    creators
        .iter()
        .map(|c| {
            let by = |s: &StackSample| s.contains(c);
            let complete = |s: &StackSample| by(s) && s.contains("main") && is_rooted(s);
            (
                c.to_string(),
                p.total_where("threadcreate", by),
                p.total_where("threadcreate", complete),
            )
        })
        .collect()
}

fn check_creations(p: &Decoded, creators: &[&str], n: i64, run: &RunOutput) {
    let found = creations(p, creators);
    let context = format!(
        "(function, creations, complete to main): {found:?}; expected {n} each\n{}\n{}",
        heaviest(p, "threadcreate", 10),
        run.describe()
    );
    eprintln!("{context}");
    for (creator, total, complete) in &found {
        assert_eq!((*total, *complete), (n, n), "{creator}: {context}");
    }
    // Nothing else created anything, and nothing was lost on the way.
    assert_eq!(
        p.total("threadcreate"),
        n * creators.len() as i64,
        "{context}"
    );
}

const N: i64 = 6;

#[test]
fn c_threads_and_processes_name_their_creator() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("creators-c");
    let bin = build_c("creators.c", dir.path(), "creators");
    let out = dir.join("c.pb.gz");
    let n = N.to_string();
    let run = record_launched(
        &out,
        &["--type", "threadcreate"],
        &[bin.to_str().unwrap(), &n],
    );
    check_creations(
        &decode(&out),
        &[
            "via_pthread_create",
            "via_fork",
            "via_posix_spawn",
            "via_system",
            "via_vfork",
        ],
        N,
        &run,
    );
}

/// Attached with -p to a process that keeps creating: every creation recorded, whichever way
/// it was made, names its creator and reaches main.
#[test]
fn attached_creations_name_their_creator() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("creators-attached");
    let bin = build_c("creators.c", dir.path(), "creators");
    let w = Workload::start(&bin, &["1", "6"]);
    let out = dir.join("attached.pb.gz");
    let run = record_pid(w.pid, "2", &out, &["--type", "threadcreate"]);
    w.kill();
    let p = decode(&out);
    let creators = [
        "via_pthread_create",
        "via_fork",
        "via_posix_spawn",
        "via_system",
        "via_vfork",
    ];
    let found = creations(&p, &creators);
    let context = format!(
        "(function, creations, complete to main): {found:?}\n{}\n{}",
        heaviest(&p, "threadcreate", 10),
        run.describe()
    );
    eprintln!("{context}");
    // A round every 100 ms for 2 s, one of each way: about 20 of each.
    for (creator, total, complete) in &found {
        assert!(*total >= 5, "{creator}: {context}");
        assert_eq!(total, complete, "{creator}: {context}");
    }
    let by_creators: i64 = found.iter().map(|(_, total, _)| total).sum();
    assert_eq!(p.total("threadcreate"), by_creators, "{context}");
}

#[test]
fn cpp_std_thread_names_its_creator() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("creators-cpp");
    let bin = build_c_exact(
        "g++",
        "creators_cpp.cpp",
        dir.path(),
        "creators_cpp",
        C_FLAGS,
    );
    let out = dir.join("cpp.pb.gz");
    let n = N.to_string();
    let run = record_launched(
        &out,
        &["--type", "threadcreate"],
        &[bin.to_str().unwrap(), &n],
    );
    check_creations(&decode(&out), &["via_std_thread(int)"], N, &run);
}

#[test]
fn rust_spawn_and_command_name_their_creator() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("creators-rs");
    // A release build as cargo makes one: optimised, no frame pointers.
    let bin = build_rust(
        "creators_rs.rs",
        dir.path(),
        "creators_rs",
        &["-O", "-g", "-C", "force-frame-pointers=no"],
    );
    let out = dir.join("rs.pb.gz");
    let n = N.to_string();
    let run = record_launched(
        &out,
        &["--type", "threadcreate"],
        &[bin.to_str().unwrap(), &n],
    );
    check_creations(
        &decode(&out),
        &["creators_rs::via_thread_spawn", "creators_rs::via_command"],
        N,
        &run,
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL under pgbench
// ---------------------------------------------------------------------------------------

/// A throw-away PostgreSQL cluster of Debian's `postgresql` package, on a Unix socket only,
/// run by the `postgres` user; stopped on drop.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: String,
}

impl Postgres {
    /// The newest installed major version's binaries.
    fn bin_dir() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("postgres").exists() && p.join("pgbench").exists())
            .collect();
        versions.sort();
        versions.pop()
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    fn check(&self, what: &str, out: std::process::Output) {
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(tmp: &TempDir) -> Postgres {
        let bin = Postgres::bin_dir()
            .expect("PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)");
        let dir = tmp.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown")
            .args(["-R", "postgres:", tmp.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(chown.success(), "chown to postgres failed");
        // A port from the test's pid: tests of several runs do not meet.
        let port = (20000 + std::process::id() % 20000).to_string();
        let pg = Postgres { bin, dir, port };
        let data = pg.dir.join("data");
        pg.check(
            "initdb",
            pg.as_postgres(
                "initdb",
                &["-D", data.to_str().unwrap(), "-A", "trust", "--no-sync"],
            ),
        );
        let options = format!(
            "-k {} -c listen_addresses= -p {} -c fsync=off",
            pg.dir.display(),
            pg.port
        );
        pg.check(
            "pg_ctl start",
            pg.as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    pg.dir.join("log").to_str().unwrap(),
                    "-w",
                    "start",
                ],
            ),
        );
        pg
    }

    fn pgbench(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join("pgbench"))
            .args(["-h", self.dir.to_str().unwrap(), "-p", &self.port])
            .args(args)
            .arg("postgres");
        cmd
    }

    /// The postmaster and every process it has forked.
    fn pids(&self) -> Vec<u32> {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let children =
            std::fs::read_to_string(format!("/proc/{postmaster}/task/{postmaster}/children"))
                .unwrap_or_default();
        std::iter::once(postmaster)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.as_postgres(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// PostgreSQL's processes under pgbench: their CPU and off-CPU stacks are complete, and the
/// auxiliary processes, started from the postmaster's signal handler, reach `main` through
/// the signal frame.
#[test]
fn postgres_under_pgbench_has_complete_stacks() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let tmp = TempDir::new("postgres");
    let pg = Postgres::start(&tmp);
    let init = pg.pgbench(&["-i", "-s", "1", "-q"]).output().unwrap();
    pg.check("pgbench -i", init);
    let mut bench = pg
        .pgbench(&["-c", "4", "-T", "12"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The backends are forked once pgbench connects.
    assert!(
        wait_until(Duration::from_secs(10), || pg.pids().len() >= 9),
        "pgbench's backends did not start: {:?}",
        pg.pids()
    );
    let out = tmp.join("pg.pb.gz");
    // Short-lived processes (autovacuum workers) can exit between the listing and the
    // start of the recording, which then refuses their pid: list again.
    let mut attempts = 0;
    let run = loop {
        let pids = pg
            .pids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let run = record(
            &[
                "--type",
                "cpu,off-cpu",
                "-p",
                &pids,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(60),
        );
        attempts += 1;
        if attempts == 5 || !run.stderr.contains("no process with pid") {
            break run;
        }
    };
    let _ = bench.kill();
    let _ = bench.wait();
    run.assert_success();

    let cpu = decode(&kind_path(&out, "cpu"));
    let off = decode(&kind_path(&out, "off-cpu"));
    let cpu_samples = cpu.total("samples");
    let cpu_rooted = cpu.share_within("samples", |_| true, is_rooted);
    let off_rooted = off.share_within("off_cpu", |_| true, is_rooted);
    // The WAL writer is an auxiliary process: forked from the postmaster's SIGCHLD handler.
    let walwriter = |s: &StackSample| s.contains("WalWriterMain");
    let walwriter_ns = off.total_where("off_cpu", walwriter);
    let through_signal = off.share_within("off_cpu", walwriter, |s| {
        let user = s.user_callers();
        let pos = |f: &str| user.iter().position(|n| *n == f);
        matches!(
            (pos("WalWriterMain"), pos("__restore_rt"), pos("PostmasterMain"), pos("main")),
            (Some(a), Some(b), Some(c), Some(d)) if a < b && b < c && c < d
        ) && is_rooted(s)
    });
    let context = format!(
        "cpu: {cpu_samples} samples, {:.2}% rooted; off-cpu: {:.2}% of the time rooted; WAL \
         writer {:.1} ms off-CPU, {:.1}% of it through the signal frame to main\n\
         cpu:\n{}\noff-cpu:\n{}\n{}",
        100.0 * cpu_rooted,
        100.0 * off_rooted,
        walwriter_ns as f64 / 1e6,
        100.0 * through_signal,
        heaviest(&cpu, "samples", 6),
        heaviest(&off, "off_cpu", 10),
        run.describe()
    );
    eprintln!("{context}");
    assert!(cpu_samples >= 100, "{context}");
    assert!(cpu_rooted >= 0.98, "{context}");
    assert!(off_rooted >= 0.98, "{context}");
    assert!(walwriter_ns > 0, "{context}");
    assert!(through_signal >= 0.98, "{context}");
}

// ---------------------------------------------------------------------------------------
// JIT code, named by perf maps
// ---------------------------------------------------------------------------------------

/// Share of the samples whose stack has a JIT frame that names `function` (the runtimes
/// decorate names: `JS:*fib /path:1:13`, `long JitSpin.fib(int)`, `py::fib:/path`), and the
/// share of those that are rooted.
fn jit_shares(p: &Decoded, function: &str) -> (f64, f64, i64) {
    let named = |s: &StackSample| {
        s.user_frames()
            .iter()
            .any(|f| f.mapping.starts_with("perf-") && f.name.contains(function))
    };
    (
        p.share_within("samples", |_| true, named),
        p.share_within("samples", named, is_rooted),
        p.total_where("samples", named),
    )
}

fn check_jit(p: &Decoded, function: &str, min_named: f64, min_rooted: f64, run: &RunOutput) {
    let (named, rooted, n) = jit_shares(p, function);
    let context = format!(
        "{:.1}% of samples in JIT code named {function:?} ({n}), {:.1}% of those rooted\n\
         comments: {:?}\n{}\n{}",
        100.0 * named,
        100.0 * rooted,
        p.comments(),
        heaviest(p, "samples", 6),
        run.describe()
    );
    eprintln!("{context}");
    assert!(n >= 100, "{context}");
    assert!(named >= min_named, "{context}");
    assert!(rooted >= min_rooted, "{context}");
}

/// Node with `--perf-basic-prof`: the JavaScript function is named, and its stacks go on
/// through V8's frames (which keep frame pointers) to `main`.
#[test]
fn node_jit_frames_are_named_and_complete() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("jit-node");
    let out = dir.join("node.pb.gz");
    let script = workloads_dir().join("jit_fib.js");
    // With --perf-basic-prof V8 also writes a log into its working directory.
    let command = format!(
        "cd {} && exec node --perf-basic-prof {} 3",
        dir.path().display(),
        script.display()
    );
    let run = record_launched(&out, &["-F", "299"], &["sh", "-c", &command]);
    // perf report names 91% of a similar run's samples (the rest is start-up and compiling).
    // V8 maps new code pages as it compiles: a return address in one mapped since the maps
    // were last read (at most 200 ms before) ends a stack early. 97-100% here.
    check_jit(&decode(&out), "fib", 0.8, 0.9, &run);
}

/// Java 17 with `-XX:+PreserveFramePointer`, its map written by `jcmd PID Compiler.perfmap`
/// once the code is compiled, recorded with `-p`.
#[test]
fn java_jit_frames_are_named_and_complete() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("jit-java");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .arg(workloads_dir().join("JitSpin.java"))
        .output()
        .expect("javac (scripts/setup.sh installs openjdk-17-jdk-headless)");
    assert!(javac.status.success(), "{javac:?}");
    let class_path = dir.path().to_str().unwrap().to_string();
    let java = Workload::start(
        Path::new("java"),
        &[
            "-XX:+PreserveFramePointer",
            "-cp",
            &class_path,
            "JitSpin",
            "8",
        ],
    );
    let jcmd = Command::new("jcmd")
        .args([&java.pid.to_string(), "Compiler.perfmap"])
        .output()
        .expect("jcmd");
    assert!(jcmd.status.success(), "{jcmd:?}");
    let out = dir.join("java.pb.gz");
    let run = record_pid(java.pid, "3", &out, &[]);
    java.kill();
    check_jit(&decode(&out), "JitSpin.fib", 0.8, 0.95, &run);
}

/// CPython 3.12's `-X perf`: Python functions named by their trampolines, which have no
/// frame pointer of their own.
#[test]
fn python_perf_trampolines_are_named_and_complete() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let python = ["3.13", "3.12"]
        .iter()
        .find_map(|v| {
            let versions = std::fs::read_dir("/root/.pyenv/versions").ok()?;
            versions
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{v}.")))
                })
                .map(|p| p.join("bin/python3"))
                .find(|p| p.exists())
        })
        .expect("no CPython 3.12 or 3.13 under /root/.pyenv/versions");
    let dir = TempDir::new("jit-python");
    let out = dir.join("py.pb.gz");
    let script = workloads_dir().join("py_fib.py");
    let run = record_launched(
        &out,
        &["-F", "299"],
        &[
            python.to_str().unwrap(),
            "-X",
            "perf",
            script.to_str().unwrap(),
            "3",
        ],
    );
    check_jit(&decode(&out), "py::fib:", 0.9, 0.95, &run);
}
