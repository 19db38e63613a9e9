//! `--type threadcreate` through the real kernel, on the `spawner` workload
//! (tests/workloads/spawner.c), which creates known numbers of threads and processes from
//! known functions once the recording runs: exact counts per creating function, the
//! creator's labels (including a thread that has exited by the end), the `created`
//! label, and `--thread-roots`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// Threads from spawn_threads_a, spawn_threads_b; processes from fork_children; threads
/// from make_pthreads (pthread_create); threads from the "maker" thread's spawn_from_maker.
/// All different, so that a mix-up shows.
const N_A: i64 = 5;
const N_B: i64 = 3;
const N_FORK: i64 = 2;
const N_PTHREAD: i64 = 2;
const N_MAKER: i64 = 4;

/// Kernel frames of thread and process creation.
const CREATE_PATH: &[&str] = &[
    "kernel_clone",
    "copy_process",
    "__do_sys_clone",
    "__do_sys_clone3",
    "__do_sys_fork",
    "__x64_sys_clone",
    "__x64_sys_clone3",
    "__x64_sys_fork",
    "__arm64_sys_clone",
    "__arm64_sys_clone3",
];

/// What the spawner printed: its pid and the maker thread's tid.
struct Spawned {
    pid: i64,
    maker_tid: i64,
}

/// Runs `rprof-bpf record --type threadcreate EXTRA... -o OUT -- spawner ...` and reads the
/// spawner's output. The spawner waits 300 ms before creating anything, so all of it
/// happens while recording (a launched command is held until recording has started anyway).
fn record_spawner(dir: &TempDir, out: &std::path::Path, extra: &[&str]) -> (Decoded, Spawned) {
    let bin = build_c("spawner.c", dir.path(), "spawner");
    let counts = [N_A, N_B, N_FORK, N_PTHREAD, N_MAKER].map(|n| n.to_string());
    let mut args = vec!["--type", "threadcreate"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-o",
        out.to_str().unwrap(),
        "--",
        bin.to_str().unwrap(),
        "300",
    ]);
    args.extend(counts.iter().map(|s| s.as_str()));
    let run = record(&args, Duration::from_secs(30));
    run.assert_success();
    let value = |key: &str| -> i64 {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("the spawner did not print {key:?}\n{}", run.describe()))
    };
    assert!(
        run.stdout.lines().any(|l| l == "done"),
        "the spawner did not finish\n{}",
        run.describe()
    );
    let spawned = Spawned {
        pid: value("ready "),
        maker_tid: value("maker "),
    };
    assert_ne!(spawned.pid, spawned.maker_tid);
    let p = decode(out);
    p.assert_layout(&[("threadcreate", "count")], ("threadcreate", "count"), 1);
    (p, spawned)
}

/// Creations per (creating function, `created` label): the creating function is the
/// leaf user function really called (the system call is made in it).
fn by_creator(p: &Decoded) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for s in &p.samples {
        let func = s.user_callers().first().map(|f| f.to_string());
        let created = s.str("created").unwrap_or("<none>").to_string();
        *out.entry((func.unwrap_or_default(), created)).or_insert(0) += s.values[0];
    }
    out
}

#[test]
fn threadcreate_exact_counts_by_creating_function() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("threadcreate");
    let out = dir.join("tc.pb.gz");
    let (p, spawned) = record_spawner(&dir, &out, &[]);
    let report = p.report();
    let counts = by_creator(&p);

    // Labels: the creator's, and what was created.
    for s in &p.samples {
        assert!(s.values[0] > 0, "a sample with count 0: {s:?}");
        assert_eq!(s.pid(), Some(spawned.pid), "creator's pid: {s:?}\n{report}");
        assert_eq!(s.str("comm"), Some("spawner"), "creator's comm: {s:?}");
        let created = s.str("created");
        assert!(
            created == Some("thread") || created == Some("process"),
            "created label {created:?}: {s:?}"
        );
        let tid = s.tid().expect("tid label");
        let expected_name = if tid == spawned.maker_tid {
            "maker"
        } else {
            "spawner"
        };
        assert!(
            tid == spawned.pid || tid == spawned.maker_tid,
            "only the main thread and the maker create anything; tid {tid}: {s:?}\n{report}"
        );
        assert_eq!(
            s.str("thread_comm"),
            Some(expected_name),
            "creator's thread_comm (the maker has exited by the end, and keeps its name): \
             {s:?}\n{report}"
        );
        assert!(
            s.has_kernel_frame(CREATE_PATH),
            "no kernel frame of thread/process creation ({CREATE_PATH:?}) in {:?}\n{report}",
            s.names()
        );
    }

    // Totals, whatever the stacks.
    let by_kind = p.by_str_label("created", "threadcreate");
    assert_eq!(
        by_kind.get("thread").copied().unwrap_or(0),
        N_A + N_B + N_PTHREAD + N_MAKER,
        "threads created (raw clone and pthread_create); per creating function {counts:?}\n{report}"
    );
    assert_eq!(
        by_kind.get("process").copied().unwrap_or(0),
        N_FORK,
        "processes created; per creating function {counts:?}\n{report}"
    );

    // Exact counts per creating function.
    for (func, created, n) in [
        ("spawn_threads_a", "thread", N_A),
        ("spawn_threads_b", "thread", N_B),
        ("spawn_from_maker", "thread", N_MAKER),
        ("fork_children", "process", N_FORK),
    ] {
        let got = counts
            .get(&(func.to_string(), created.to_string()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            got, n,
            "{func} created {n} {created}(es) but the profile counts {got}; \
             per (function, created): {counts:?}\n{report}"
        );
    }
    // ... with the creator's stack below it, and the creating thread's labels.
    for s in &p.samples {
        let user = s.user_callers();
        let (caller, tid, name) = match user.first().copied() {
            Some("spawn_from_maker") => ("maker_main", spawned.maker_tid, "maker"),
            Some("spawn_threads_a" | "spawn_threads_b" | "fork_children") => {
                ("main", spawned.pid, "spawner")
            }
            _ => continue,
        };
        assert_eq!(
            user.get(1).copied(),
            Some(caller),
            "{} should be called from {caller}: {:?}",
            user[0],
            s.names()
        );
        assert_eq!(
            (s.tid(), s.str("thread_comm")),
            (Some(tid), Some(name)),
            "creator of {}: {s:?}",
            user[0]
        );
    }

    let top = go_pprof_top(&out);
    for f in ["spawn_threads_a", "spawn_threads_b", "fork_children"] {
        assert!(top.contains(f), "go tool pprof -top lacks {f}:\n{top}");
    }
    let tags = go_pprof(&["-tags"], &out);
    for t in ["thread", "process", "maker"] {
        assert!(tags.contains(t), "go tool pprof -tags lacks {t}:\n{tags}");
    }
}

/// `--thread-roots` on a threadcreate profile: `spawner [PID]` at the root of every stack,
/// and under it the creating thread, including the maker, which exited long before the
/// profile was written.
#[test]
fn threadcreate_thread_roots() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("threadcreate-roots");
    let out = dir.join("tc.pb.gz");
    let (p, spawned) = record_spawner(&dir, &out, &["--thread-roots"]);
    let report = p.report();
    let process_root = format!("spawner [{}]", spawned.pid);
    let mut per_root: BTreeMap<String, i64> = BTreeMap::new();
    for s in &p.samples {
        let n = s.frames.len();
        assert!(n >= 3, "stack too short: {:?}\n{report}", s.names());
        assert_eq!(
            s.frames[n - 1].name,
            process_root,
            "root-most frame: {:?}\n{report}",
            s.names()
        );
        let thread_root = format!(
            "{} [{}]",
            s.str("thread_comm").unwrap_or("?"),
            s.tid().unwrap_or(0)
        );
        assert_eq!(
            s.frames[n - 2].name,
            thread_root,
            "thread root: {:?}\n{report}",
            s.names()
        );
        *per_root.entry(thread_root).or_insert(0) += s.values[0];
    }
    let expected: BTreeMap<String, i64> = [
        (
            format!("spawner [{}]", spawned.pid),
            N_A + N_B + N_FORK + N_PTHREAD,
        ),
        (format!("maker [{}]", spawned.maker_tid), N_MAKER),
    ]
    .into_iter()
    .collect();
    assert_eq!(per_root, expected, "creations per thread root\n{report}");
    let top = go_pprof_top(&out);
    let (_, cum) = pprof_top_row(&top, &process_root)
        .unwrap_or_else(|| panic!("no {process_root} row in go tool pprof -top:\n{top}"));
    assert!(cum >= 99.0, "{process_root} cum {cum}%:\n{top}");
}
