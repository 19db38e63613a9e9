//! `rprof-bpf record --type cpu` through the real kernel, on C workloads with known call
//! chains: shares of each path, per-thread labels, `-- CMD`, `-a`, the pid filter, and
//! kernel stacks. The tests that look at CPU shares hold [`common::exclusive_cpu`], so that
//! they do not compete with each other for the machine's 2 CPUs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

const HZ: f64 = 99.0;

fn approx(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

/// The `flat%` column of `name`'s row in `go tool pprof -top` output.
fn pprof_top_flat_percent(top: &str, name: &str) -> Option<f64> {
    top.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 6 && cols[5..].join(" ") == name {
            cols[1].trim_end_matches('%').parse().ok()
        } else {
            None
        }
    })
}

/// The known call chain, two paths with a 3:1 split, on two named threads; checked through
/// our decoder and through `go tool pprof -top`.
#[test]
fn fp_paths_call_chain_shares_and_threads() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("fp-paths");
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let workload = Workload::start(&bin, &["20"]);
    let threads = workload.threads();
    let workers: BTreeMap<i64, String> = threads
        .iter()
        .filter(|(_, name)| name.starts_with("worker-"))
        .map(|(tid, name)| (*tid as i64, name.clone()))
        .collect();
    assert_eq!(workers.len(), 2, "workload threads: {threads:?}");

    let out = dir.join("fp.pb.gz");
    let pid = workload.pid.to_string();
    let monitor = CpuMonitor::start(workload.pid);
    let thread_monitors: Vec<(i64, CpuMonitor)> = workers
        .keys()
        .map(|&tid| (tid, CpuMonitor::start_thread(workload.pid, tid as u32)))
        .collect();
    let run = record(
        &["-p", &pid, "--seconds", "3", "-o", out.to_str().unwrap()],
        Duration::from_secs(30),
    );
    run.assert_success();
    assert!(
        run.elapsed >= Duration::from_millis(2900) && run.elapsed < Duration::from_secs(10),
        "a 3 s recording took {:.2?}\n{}",
        run.elapsed,
        run.describe()
    );
    assert!(
        workload.threads().len() == 3,
        "the workload ended before the recording did; the numbers below would be meaningless"
    );
    let p = decode(&out);
    let report = p.report();

    // Header: Go's CPU profile layout.
    assert_eq!(
        p.sample_types(),
        vec![
            ("samples".to_string(), "count".to_string()),
            ("cpu".to_string(), "nanoseconds".to_string())
        ],
        "{report}"
    );
    let period_type = p.profile.period_type.expect("period_type is missing");
    assert_eq!(
        (p.string(period_type.r#type), p.string(period_type.unit)),
        ("cpu", "nanoseconds"),
        "{report}"
    );
    let period = (1e9 / HZ) as i64;
    assert!(
        (p.profile.period - period).abs() <= 1,
        "period {} != 1e9/{HZ}\n{report}",
        p.profile.period
    );
    assert!(
        (2_500_000_000..=5_000_000_000).contains(&p.profile.duration_nanos),
        "duration_nanos {} for a 3 s recording",
        p.profile.duration_nanos
    );
    assert!(p.profile.time_nanos > 0, "time_nanos not set");
    let comments = p.comments().join("\n").to_lowercase();
    assert!(
        comments.contains("lost") || comments.contains("drop"),
        "comments should carry the drop/loss counters:\n{report}"
    );

    // Values: every sample has both, and cpu time = count x period.
    for s in &p.samples {
        assert_eq!(s.values.len(), 2, "sample with {:?} values", s.values);
        assert!(s.values[0] > 0, "sample with a zero count: {s:?}");
    }
    let count = p.total("samples");
    let nanos = p.total("cpu");
    assert!(
        approx(
            nanos as f64,
            (count * p.profile.period) as f64,
            0.01 * nanos as f64
        ),
        "cpu/nanoseconds {nanos} != samples {count} x period {}",
        p.profile.period
    );
    // On an idle machine the 2 workers burn 2 CPUs and this is 99 Hz x 3 s x 2 threads;
    // when other jobs compete for the CPUs, what the workers really got in the profile's
    // window is what counts.
    let start = p.profile.time_nanos;
    let cpu = monitor.cpu_between(start, start + p.profile.duration_nanos);
    let expected = HZ * cpu;
    assert!(
        count as f64 >= 0.9 * expected && count as f64 <= 1.1 * expected + 5.0,
        "{count} samples, expected 90%..110% of {expected:.0} = 99 Hz x the {cpu:.2} CPU seconds \
         the workers got in the profile's window\n{report}"
    );
    if cpu < 0.9 * 2.0 * 3.0 {
        eprintln!("note: the machine is busy: the 2 workers got only {cpu:.2} CPU seconds in 3 s");
    }

    // Labels: the pid filter, comm, and one tid/thread_comm per worker.
    for s in &p.samples {
        assert_eq!(
            s.pid(),
            Some(workload.pid as i64),
            "sample from outside the target (pid filter): {s:?}"
        );
        assert_eq!(s.str("comm"), Some("fp_paths"), "comm label: {s:?}");
        assert!(
            s.tid().is_some(),
            "sample without a numeric tid label: {s:?}"
        );
        assert!(
            s.str("thread_comm").is_some(),
            "sample without thread_comm: {s:?}"
        );
        if let Some(name) = workers.get(&s.tid().unwrap()) {
            assert_eq!(
                s.str("thread_comm"),
                Some(name.as_str()),
                "thread_comm: {s:?}"
            );
        }
    }
    // Each worker has ~50% of the samples on an idle machine; precisely, its share of the
    // CPU time the workers got in the window (on a busy machine one may get more).
    let per_tid = p.by_num_label("tid", "samples");
    for (tid, m) in thread_monitors {
        let name = &workers[&tid];
        let thread_cpu = m.cpu_between(start, start + p.profile.duration_nanos);
        let cpu_share = thread_cpu / cpu.max(1e-9);
        let share = per_tid.get(&tid).copied().unwrap_or(0) as f64 / count as f64;
        assert!(
            approx(share, cpu_share, 0.08),
            "thread {tid} ({name}) has {:.1}% of the samples but got {:.1}% of the workers' \
             CPU time; per tid: {per_tid:?}\n{report}",
            100.0 * share,
            100.0 * cpu_share
        );
    }

    // The call chain and its split.
    let hot = p.cum_share("hot_leaf", "samples");
    let hot_flat = p.flat_share("hot_leaf", "samples");
    let a = p.cum_share("path_a", "samples");
    let b = p.cum_share("path_b", "samples");
    eprintln!(
        "fp_paths: {count} samples (expected ~{expected:.0}); hot_leaf {:.1}% (flat {:.1}%), \
         path_a {:.1}%, path_b {:.1}%; per tid {per_tid:?}",
        100.0 * hot,
        100.0 * hot_flat,
        100.0 * a,
        100.0 * b
    );
    assert!(
        hot >= 0.90,
        "hot_leaf in {:.1}% of samples, expected >= 90%\n{report}",
        100.0 * hot
    );
    assert!(
        hot_flat >= 0.85,
        "hot_leaf is the leaf of {:.1}% of samples, expected >= 85%\n{report}",
        100.0 * hot_flat
    );
    assert!(
        approx(a, 0.75, 0.08),
        "path_a {:.1}%, expected 75% +- 8pp\n{report}",
        100.0 * a
    );
    assert!(
        approx(b, 0.25, 0.08),
        "path_b {:.1}%, expected 25% +- 8pp\n{report}",
        100.0 * b
    );

    // hot_leaf <- path_[ab] <- worker_main, frame by frame, and the callers' lines are the
    // call sites (return address - 1), not the line after the call.
    let line_a = source_line_of("fp_paths.c", "CALL_SITE_A");
    let line_b = source_line_of("fp_paths.c", "CALL_SITE_B");
    let chain = p.share_within(
        "samples",
        |s| s.contains("hot_leaf"),
        |s| {
            let n = s.user_names();
            n.len() >= 3
                && n[0] == "hot_leaf"
                && (n[1] == "path_a" || n[1] == "path_b")
                && n[2] == "worker_main"
        },
    );
    assert!(
        chain >= 0.9,
        "only {:.1}% of hot_leaf samples have the chain hot_leaf <- path_a|path_b <- worker_main\n{report}",
        100.0 * chain
    );
    let mut caller_lines = BTreeMap::new();
    for s in &p.samples {
        let user = s.user_frames();
        if user.len() >= 2 && user[0].name == "hot_leaf" {
            let f = &user[1];
            *caller_lines.entry((f.name.clone(), f.line)).or_insert(0) += s.values[0];
        }
    }
    let at_call_site: i64 = caller_lines
        .iter()
        .filter(|((name, line), _)| {
            (name == "path_a" && *line == line_a) || (name == "path_b" && *line == line_b)
        })
        .map(|(_, n)| n)
        .sum();
    let callers: i64 = caller_lines.values().sum();
    assert!(
        at_call_site as f64 >= 0.9 * callers as f64,
        "caller frames should point at the call lines (path_a:{line_a}, path_b:{line_b}); \
         (function, line) -> samples: {caller_lines:?}"
    );

    // Mappings: the main executable first, symbolized, with a build id.
    let m0 = p.profile.mapping.first().expect("no mappings");
    assert!(
        p.string(m0.filename).ends_with("/fp_paths"),
        "mapping[0] should be the main executable, is {:?}",
        p.string(m0.filename)
    );
    assert!(m0.has_functions, "mapping[0] lacks has_functions");
    assert!(
        !p.string(m0.build_id).is_empty()
            && p.string(m0.build_id)
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "mapping[0] build id {:?} should be lowercase hex",
        p.string(m0.build_id)
    );

    // And the same through go tool pprof.
    let top = go_pprof_top(&out);
    for f in ["hot_leaf", "path_a", "path_b", "worker_main"] {
        assert!(top.contains(f), "go tool pprof -top lacks {f}:\n{top}");
    }
    let flat = pprof_top_flat_percent(&top, "hot_leaf")
        .unwrap_or_else(|| panic!("no hot_leaf row in go tool pprof -top:\n{top}"));
    assert!(flat >= 85.0, "go tool pprof: hot_leaf flat {flat}%\n{top}");
    let tags = go_pprof(&["-tags"], &out);
    for name in workers.values() {
        assert!(
            tags.contains(name.as_str()),
            "go tool pprof -tags lacks {name}:\n{tags}"
        );
    }
}

/// `-p` covers threads created after the recording started.
#[test]
fn threads_created_during_recording_are_sampled() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("late-threads");
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    // Prints "ready" at once, starts its workers 1 s later, and runs them for 2 s; the
    // recording starts right after "ready".
    let workload = Workload::start(&bin, &["2", "1000"]);
    assert_eq!(workload.threads().len(), 1, "workers started too early");
    let out = dir.join("late.pb.gz");
    let pid = workload.pid.to_string();
    let run = record(
        &["-p", &pid, "--seconds", "3", "-o", out.to_str().unwrap()],
        Duration::from_secs(30),
    );
    run.assert_success();
    let p = decode(&out);
    let report = p.report();
    let mut tids_by_name: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for s in &p.samples {
        if let (Some(name), Some(tid)) = (s.str("thread_comm"), s.tid()) {
            tids_by_name
                .entry(name.to_string())
                .or_default()
                .insert(tid);
        }
    }
    for name in ["worker-1", "worker-2"] {
        let tids = tids_by_name.get(name).cloned().unwrap_or_default();
        assert_eq!(
            tids.len(),
            1,
            "thread {name}, created during the recording, should be sampled under one tid; \
             thread_comm -> tids: {tids_by_name:?}\n{report}"
        );
        assert_ne!(tids.first().copied(), Some(workload.pid as i64), "{report}");
        let share = p.share_within("samples", |_| true, |s| s.str("thread_comm") == Some(name));
        assert!(
            share >= 0.3,
            "{name} has only {:.1}% of samples\n{report}",
            100.0 * share
        );
    }
    assert!(p.cum_share("hot_leaf", "samples") >= 0.8, "{report}");
}

/// `-- CMD`: the command is profiled from its start, and its exit code is passed on.
#[test]
fn launch_command_passes_exit_code() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("launch");
    let bin = build_c("exit_code.c", dir.path(), "exit_code");
    let out = dir.join("launch.pb.gz");
    let run = record(
        &[
            "-o",
            out.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "1500",
            "7",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        run.status.code(),
        Some(7),
        "rprof-bpf should exit with the command's code 7\n{}",
        run.describe()
    );
    assert!(
        run.elapsed < Duration::from_secs(8),
        "a 1.5 s command took {:.2?} to profile",
        run.elapsed
    );
    let p = decode(&out);
    let report = p.report();
    let child_pid: Option<i64> = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("ready ").and_then(|v| v.trim().parse().ok()));
    let cpu: f64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("cpu ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| {
            panic!(
                "the command did not report its CPU time\n{}",
                run.describe()
            )
        });
    // The command is held until sampling is attached, so all of its CPU time is sampled.
    let count = p.total("samples");
    assert!(
        count as f64 >= 0.9 * HZ * cpu,
        "{count} samples, expected >= 90% of 99 Hz x {cpu:.2} s (the command's CPU time)\n{report}"
    );
    let spin = p.cum_share("spin_leaf", "samples");
    assert!(
        spin >= 0.9,
        "spin_leaf in {:.1}% of samples\n{report}",
        100.0 * spin
    );
    let chain = p.share_within(
        "samples",
        |s| s.user_names().first() == Some(&"spin_leaf"),
        |s| s.user_names().get(1..3) == Some(&["spin_then_exit", "main"][..]),
    );
    assert!(
        chain >= 0.9,
        "spin_leaf <- spin_then_exit <- main in only {:.1}% of spin_leaf samples\n{report}",
        100.0 * chain
    );
    for s in &p.samples {
        assert_eq!(s.str("comm"), Some("exit_code"), "comm label: {s:?}");
        if let Some(pid) = child_pid {
            assert_eq!(
                s.pid(),
                Some(pid),
                "pid label (the command printed its pid): {s:?}"
            );
        }
    }
}

/// `-- CMD` killed by a signal: rprof-bpf exits with 128 + signal, and still writes the profile.
#[test]
fn launch_command_killed_by_signal() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("launch-signal");
    let bin = build_c("exit_code.c", dir.path(), "exit_code");
    let out = dir.join("signal.pb.gz");
    let run = record(
        &[
            "-o",
            out.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "700",
            "-9",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        run.status.code(),
        Some(128 + 9),
        "a command killed by SIGKILL should give exit code 137\n{}",
        run.describe()
    );
    let p = decode(&out);
    assert!(
        p.contains_function("spin_leaf"),
        "profile of the killed command lacks spin_leaf\n{}",
        p.report()
    );
}

/// `-a`: several processes, each labelled with its own pid and comm.
#[test]
fn all_cpus_labels_each_process() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("all-cpus");
    let one = build_c("exit_code.c", dir.path(), "busy_one");
    let two = build_c("exit_code.c", dir.path(), "busy_two");
    let w1 = Workload::start(&one, &["20000", "0"]);
    let w2 = Workload::start(&two, &["20000", "0"]);
    let out = dir.join("all.pb.gz");
    let monitors = [CpuMonitor::start(w1.pid), CpuMonitor::start(w2.pid)];
    let run = record(
        &["-a", "--seconds", "2", "-o", out.to_str().unwrap()],
        Duration::from_secs(30),
    );
    run.assert_success();
    assert!(
        !w1.has_exited() && !w2.has_exited(),
        "workloads ended before the recording"
    );
    let p = decode(&out);
    let report = p.report();
    let (start, end) = (
        p.profile.time_nanos,
        p.profile.time_nanos + p.profile.duration_nanos,
    );
    let [m1, m2] = monitors;
    let cpu_used = [m1.cpu_between(start, end), m2.cpu_between(start, end)];
    let pids: BTreeSet<i64> = p.samples.iter().filter_map(|s| s.pid()).collect();
    assert!(pids.len() >= 2, "pids in an -a profile: {pids:?}\n{report}");
    for (w, cpu) in [(&w1, cpu_used[0]), (&w2, cpu_used[1])] {
        let mine: Vec<&StackSample> = p
            .samples
            .iter()
            .filter(|s| s.pid() == Some(w.pid as i64))
            .collect();
        let count: i64 = mine.iter().map(|s| s.values[0]).sum();
        // 99 Hz x the CPU time the process got in the 2 s window (2 s on an idle machine).
        let expected = HZ * cpu;
        assert!(
            count as f64 >= 0.9 * expected,
            "{} (pid {}) has {count} samples in a 2 s -a recording, expected >= 90% of \
             {expected:.0} (99 Hz x {cpu:.2} CPU seconds); pids seen: {pids:?}\n{report}",
            w.name,
            w.pid
        );
        for s in &mine {
            assert_eq!(
                s.str("comm"),
                Some(w.name.as_str()),
                "comm of pid {}: {s:?}",
                w.pid
            );
            assert_eq!(
                s.tid(),
                Some(w.pid as i64),
                "single-threaded: tid == pid: {s:?}"
            );
        }
        assert!(
            mine.iter().any(|s| s.contains("spin_leaf")),
            "{} samples lack spin_leaf (symbolization of an -a profile)\n{report}",
            w.name
        );
    }
}

/// `-p A,B` and `-p A -p B`: exactly the listed processes, filtered in BPF.
#[test]
fn pid_list_selects_exactly_those_processes() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("pid-list");
    let ws: Vec<Workload> = ["spin_a", "spin_b", "spin_c"]
        .iter()
        .map(|name| {
            let bin = build_c("exit_code.c", dir.path(), name);
            Workload::start(&bin, &["20000", "0"])
        })
        .collect();
    let [p0, p1, p2] = [0, 1, 2].map(|i| ws[i].pid.to_string());
    let comma = dir.join("comma.pb.gz");
    let repeated = dir.join("repeated.pb.gz");
    let joined = format!("{p0},{p1}");
    let runs = [
        (
            vec![
                "-p",
                &joined,
                "--seconds",
                "1",
                "-o",
                comma.to_str().unwrap(),
            ],
            &comma,
            [0usize, 1],
            2usize,
        ),
        (
            vec![
                "-p",
                &p0,
                "-p",
                &p2,
                "--seconds",
                "1",
                "-o",
                repeated.to_str().unwrap(),
            ],
            &repeated,
            [0, 2],
            1,
        ),
    ];
    for (args, out, wanted, unwanted) in runs {
        let run = record(&args, Duration::from_secs(30));
        run.assert_success();
        let p = decode(out);
        let report = p.report();
        let pids: BTreeSet<i64> = p.samples.iter().filter_map(|s| s.pid()).collect();
        let expected: BTreeSet<i64> = wanted.iter().map(|&i| ws[i].pid as i64).collect();
        assert_eq!(
            pids, expected,
            "`record {args:?}` should sample exactly {expected:?} (and not {} = pid {})\n{report}",
            ws[unwanted].name, ws[unwanted].pid
        );
        for s in &p.samples {
            let w = ws.iter().find(|w| Some(w.pid as i64) == s.pid()).unwrap();
            assert_eq!(s.str("comm"), Some(w.name.as_str()), "{s:?}");
        }
    }
}

/// A process busy in read(2): kernel frames, symbolized, sit above (leafward of) its user
/// frames in the same sample.
#[test]
fn syscall_heavy_kernel_frames_above_user_frames() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("syscalls");
    let bin = build_c("syscalls.c", dir.path(), "syscalls");
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("sys.pb.gz");
    let pid = workload.pid.to_string();
    let run = record(
        &["-p", &pid, "--seconds", "2", "-o", out.to_str().unwrap()],
        Duration::from_secs(30),
    );
    run.assert_success();
    let p = decode(&out);
    let report = p.report();

    assert!(
        p.profile
            .mapping
            .iter()
            .any(|m| p.string(m.filename) == KERNEL_MAPPING),
        "no {KERNEL_MAPPING} mapping\n{report}"
    );
    // Kernel frames only ever form the leaf end of a stack.
    for s in &p.samples {
        let first_user = s
            .frames
            .iter()
            .position(|f| !f.kernel)
            .unwrap_or(s.frames.len());
        assert!(
            s.frames[first_user..].iter().all(|f| !f.kernel),
            "kernel frame below a user frame: {:?}",
            s.frames
                .iter()
                .map(|f| format!("{}{}", f.name, if f.kernel { "_[k]" } else { "" }))
                .collect::<Vec<_>>()
        );
    }
    let ours = |s: &StackSample| s.contains("do_syscalls");
    let user_share = p.cum_share("do_syscalls", "samples");
    assert!(
        user_share >= 0.8,
        "do_syscalls in {:.1}% of samples\n{report}",
        100.0 * user_share
    );
    let in_kernel = p.share_within("samples", ours, |s| {
        s.frames.first().is_some_and(|f| f.kernel)
    });
    assert!(
        in_kernel >= 0.7,
        "only {:.1}% of do_syscalls samples have kernel frames; reading /dev/zero in 1 MiB \
         blocks spends nearly all its time in the kernel\n{report}",
        100.0 * in_kernel
    );
    let kernel_samples: Vec<&StackSample> = p
        .samples
        .iter()
        .filter(|s| ours(s) && s.frames.first().is_some_and(|f| f.kernel))
        .collect();
    // The user frame right below the kernel frames is do_syscalls (the syscall instruction
    // is inside it), then main.
    let joined = kernel_samples
        .iter()
        .filter(|s| {
            let u = s.frames.iter().position(|f| !f.kernel).unwrap();
            s.frames[u].name == "do_syscalls"
                && s.frames.get(u + 1).map(|f| f.name.as_str()) == Some("main")
        })
        .count();
    assert!(
        joined as f64 >= 0.9 * kernel_samples.len() as f64,
        "only {joined} of {} kernel samples continue with do_syscalls <- main below the kernel frames\n{report}",
        kernel_samples.len()
    );
    // Kernel frames are symbolized, and the read path is there.
    let kernel_frames: Vec<&Frame> = kernel_samples
        .iter()
        .flat_map(|s| s.frames.iter().filter(|f| f.kernel))
        .collect();
    let symbolized = kernel_frames.iter().filter(|f| f.symbolized()).count();
    assert!(
        symbolized as f64 >= 0.95 * kernel_frames.len() as f64,
        "only {symbolized} of {} kernel frames are symbolized\n{report}",
        kernel_frames.len()
    );
    let read_path = [
        "ksys_read",
        "vfs_read",
        "__x64_sys_read",
        "__arm64_sys_read",
        "read_zero",
    ];
    let with_read_path = kernel_samples
        .iter()
        .filter(|s| {
            s.frames
                .iter()
                .any(|f| f.kernel && read_path.contains(&f.name.as_str()))
        })
        .count();
    assert!(
        with_read_path as f64 >= 0.8 * kernel_samples.len() as f64,
        "only {with_read_path} of {} kernel samples show any of {read_path:?}\n{report}",
        kernel_samples.len()
    );
    let top = go_pprof_top(&out);
    assert!(top.contains("do_syscalls"), "go tool pprof -top:\n{top}");
    assert!(
        read_path.iter().any(|f| top.contains(f)),
        "go tool pprof -top shows no kernel read path:\n{top}"
    );
}
