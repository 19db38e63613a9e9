//! Bad input and faults: a clear one-line error and no output file, or a complete profile.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A live process to point `-p` at in the error cases, which never get to sample it.
fn sleeper() -> Workload {
    Workload::spawn(Path::new("sleep"), &["60"])
}

fn assert_no_file(path: &Path, run: &RunOutput) {
    assert!(
        !path.exists(),
        "{} was created although recording failed\n{}",
        path.display(),
        run.describe()
    );
}

fn assert_quick(run: &RunOutput, limit: Duration) {
    assert!(
        run.elapsed < limit,
        "the error took {:.2?} (limit {limit:?}); it must come before sampling starts\n{}",
        run.elapsed,
        run.describe()
    );
}

/// A pid above pid_max can never exist.
#[test]
fn nonexistent_pid_above_pid_max() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("no-pid");
    let out = dir.join("x.pb.gz");
    let pid = (kernel_sysctl("pid_max") + 1).to_string();
    let run = record(
        &["-p", &pid, "--seconds", "5", "-o", out.to_str().unwrap()],
        Duration::from_secs(15),
    );
    run.assert_one_line_error();
    assert!(
        run.stderr.contains(&pid),
        "the error should name pid {pid}\n{}",
        run.describe()
    );
    assert_quick(&run, Duration::from_secs(1));
    assert_no_file(&out, &run);
}

/// The pid of a child that has exited and been reaped, alone and next to a live pid.
#[test]
fn nonexistent_pid_reaped_child() {
    if !require_bpf() {
        return;
    }
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id().to_string();
    child.wait().expect("wait for true");
    assert!(
        !Path::new(&format!("/proc/{dead}")).exists(),
        "pid {dead} was reused"
    );
    let live = sleeper();
    let dir = TempDir::new("dead-pid");
    for (i, pids) in [dead.clone(), format!("{},{dead}", live.pid)]
        .iter()
        .enumerate()
    {
        let out = dir.join(&format!("x{i}.pb.gz"));
        let run = record(
            &["-p", pids, "--seconds", "5", "-o", out.to_str().unwrap()],
            Duration::from_secs(15),
        );
        run.assert_one_line_error();
        assert!(
            run.stderr.contains(&dead),
            "the error should name pid {dead}\n{}",
            run.describe()
        );
        assert_quick(&run, Duration::from_secs(1));
        assert_no_file(&out, &run);
    }
}

/// An output path in a directory that does not exist, and an output path that is a
/// directory: both fail before sampling starts.
#[test]
fn unwritable_output_path() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("unwritable");
    for out in [
        "/nonexistent-dir/x.pb.gz".to_string(),
        dir.path().to_str().unwrap().to_string(),
    ] {
        let run = record(
            &["-p", &pid, "--seconds", "5", "-o", &out],
            Duration::from_secs(15),
        );
        run.assert_one_line_error();
        assert!(
            run.stderr.contains(out.trim_end_matches('/')),
            "the error should name the output path {out}\n{}",
            run.describe()
        );
        assert_quick(&run, Duration::from_secs(2));
    }
    assert!(
        !Path::new("/nonexistent-dir").exists(),
        "/nonexistent-dir was created"
    );
}

/// -F 0 and -F above kernel.perf_event_max_sample_rate.
#[test]
fn bad_frequency() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("bad-freq");
    let max = kernel_sysctl("perf_event_max_sample_rate");
    for (i, freq) in ["0".to_string(), (max + 1).to_string()].iter().enumerate() {
        let out = dir.join(&format!("f{i}.pb.gz"));
        let run = record(
            &[
                "-F",
                freq,
                "-p",
                &pid,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(15),
        );
        run.assert_one_line_error();
        let msg = run.stderr.to_lowercase();
        assert!(
            msg.contains("freq") || msg.contains("-f") || msg.contains("sample_rate"),
            "the error for -F {freq} should say what is wrong with the frequency\n{}",
            run.describe()
        );
        if freq != "0" {
            assert!(
                run.stderr.contains(&max.to_string()) || msg.contains("perf_event_max_sample_rate"),
                "the error for -F {freq} should give the limit ({max})\n{}",
                run.describe()
            );
        }
        assert_quick(&run, Duration::from_secs(2));
        assert_no_file(&out, &run);
    }
}

/// As an unprivileged user: say that root or CAP_BPF/CAP_PERFMON are needed.
#[test]
fn unprivileged_user_is_told_what_is_needed() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("unpriv");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.join("x.pb.gz");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
        rprof_bin(),
        "record",
        "-a",
        "--seconds",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    let run = Running::start(cmd).finish(Duration::from_secs(15));
    run.assert_one_line_error();
    assert!(
        ["root", "CAP_BPF", "CAP_PERFMON"]
            .iter()
            .any(|w| run.stderr.contains(w)),
        "the error should say that root or CAP_BPF/CAP_PERFMON are needed\n{}",
        run.describe()
    );
    assert_quick(&run, Duration::from_secs(2));
    assert_no_file(&out, &run);
}

/// A BPF map that cannot be created: the error says the BPF load failed.
#[test]
fn bpf_map_too_large_fails_to_load() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("max-entries");
    let out = dir.join("x.pb.gz");
    let run = record(
        &[
            "--max-entries",
            "4000000000",
            "-p",
            &pid,
            "--seconds",
            "5",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(15),
    );
    run.assert_one_line_error();
    let msg = run.stderr.to_lowercase();
    assert!(
        msg.contains("bpf") && msg.contains("load"),
        "the error should say that loading BPF failed\n{}",
        run.describe()
    );
    assert_quick(&run, Duration::from_secs(3));
    assert_no_file(&out, &run);
}

/// A command that cannot be started.
#[test]
fn launch_missing_command() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("no-cmd");
    let out = dir.join("x.pb.gz");
    let run = record(
        &[
            "-o",
            out.to_str().unwrap(),
            "--",
            "/nonexistent-dir/no-such-command",
        ],
        Duration::from_secs(15),
    );
    run.assert_one_line_error();
    assert!(
        run.stderr.contains("no-such-command"),
        "the error should name the command\n{}",
        run.describe()
    );
    assert_quick(&run, Duration::from_secs(2));
    assert_no_file(&out, &run);
}

/// The target exits after ~1 s of a 10 s window: recording ends with it, and the profile is
/// written and symbolized although the process is gone.
#[test]
fn target_exits_mid_recording() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("exits");
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let workload = Workload::start(&bin, &["1"]);
    let out = dir.join("exits.pb.gz");
    let pid = workload.pid.to_string();
    let run = record(
        &["-p", &pid, "--seconds", "10", "-o", out.to_str().unwrap()],
        Duration::from_secs(20),
    );
    run.assert_success();
    assert!(workload.has_exited(), "the workload should have exited");
    assert!(
        run.elapsed < Duration::from_secs(4),
        "the target exited after 1 s but the recording took {:.2?}\n{}",
        run.elapsed,
        run.describe()
    );
    let p = decode(&out);
    let report = p.report();
    assert!(p.total("samples") >= 50, "too few samples\n{report}");
    for f in ["hot_leaf", "worker_main"] {
        assert!(
            p.contains_function(f),
            "{f} missing: the exited process was not symbolized\n{report}"
        );
    }
    assert!(
        p.samples
            .iter()
            .all(|s| s.pid() == Some(workload.pid as i64)),
        "{report}"
    );
}

/// SIGINT (Ctrl-C) and SIGTERM stop the recording at once, and the profile is written.
fn signal_stops_recording(sig: libc::c_int, sig_name: &str, extra: &[&str]) {
    let _cpu = exclusive_cpu();
    let dir = TempDir::new(sig_name);
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("sig.pb.gz");
    let pid = workload.pid.to_string();
    let mut args = vec!["-p", pid.as_str(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let monitor = CpuMonitor::start(workload.pid);
    let running = Running::start(record_cmd(&args));
    std::thread::sleep(Duration::from_secs(2));
    let sent = Instant::now();
    running.signal(sig);
    let run = running.finish(Duration::from_secs(15));
    let stop = sent.elapsed();
    assert!(
        !run.timed_out && run.status.code().is_some(),
        "rprof-bpf should handle {sig_name} and exit by itself\n{}",
        run.describe()
    );
    assert!(
        stop < Duration::from_secs(2),
        "rprof-bpf took {stop:.2?} to stop after {sig_name}\n{}",
        run.describe()
    );
    // A signal is the normal end of an open-ended recording: success, as with perf record.
    assert!(
        run.status.code() == Some(0),
        "after {sig_name}, rprof-bpf should exit with 0\n{}",
        run.describe()
    );
    let p = decode(&out);
    let report = p.report();
    let count = p.total("samples");
    // ~2 s of 2 busy threads at 99 Hz, less start-up time, on an idle machine; precisely,
    // 99 Hz x the CPU time the workers got in the profile's window.
    let start = p.profile.time_nanos;
    let cpu = monitor.cpu_between(start, start + p.profile.duration_nanos);
    assert!(
        count >= 20 && count as f64 >= 0.9 * 99.0 * cpu,
        "{count} samples, expected >= 90% of 99 Hz x {cpu:.2} CPU seconds\n{report}"
    );
    assert!(p.cum_share("hot_leaf", "samples") >= 0.9, "{report}");
}

#[test]
fn sigint_stops_recording_and_writes_profile() {
    if !require_bpf() {
        return;
    }
    signal_stops_recording(libc::SIGINT, "SIGINT", &[]);
}

#[test]
fn sigterm_stops_timed_recording_and_writes_profile() {
    if !require_bpf() {
        return;
    }
    signal_stops_recording(libc::SIGTERM, "SIGTERM", &["--seconds", "30"]);
}

/// Asserts an argument error as clap gives it: a quick non-zero exit, one `error:` line that
/// names the bad `value` (clap may add its `[possible values: ...]` line and its
/// "For more information, try '--help'." hint), no panic, and nothing written.
fn assert_argument_error(run: &RunOutput, value: &str, outputs: &[&Path]) {
    assert!(
        !run.timed_out && run.status.code().is_some_and(|c| c != 0),
        "expected a non-zero exit\n{}",
        run.describe()
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one error line\n{}",
        run.describe()
    );
    let quoted = ["'", "\"", "`"]
        .iter()
        .any(|q| lines[0].contains(&format!("{q}{value}{q}")));
    assert!(
        lines[0].contains("error") && quoted,
        "the first line should be the error, naming {value:?} (quoted)\n{}",
        run.describe()
    );
    assert!(
        lines.len() <= 3 && !run.stderr.contains("panicked"),
        "a short error, no panic\n{}",
        run.describe()
    );
    assert_quick(run, Duration::from_secs(1));
    for out in outputs {
        assert_no_file(out, run);
    }
}

/// Every file a recording of `kinds` with `-o base` could write.
fn outputs_of(base: &Path, kinds: &[&str]) -> Vec<std::path::PathBuf> {
    let mut out = vec![base.to_path_buf()];
    out.extend(kinds.iter().map(|k| kind_path(base, k)));
    out
}

/// An unknown `--type`, alone or in a list: the error lists the valid kinds.
#[test]
fn unknown_profile_type_lists_the_kinds() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("bad-type");
    for (i, kinds) in ["nope", "cpu,nope", "off-cpu,nope,wall"].iter().enumerate() {
        let out = dir.join(&format!("t{i}.pb.gz"));
        let run = record(
            &[
                "--type",
                kinds,
                "-p",
                &pid,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(15),
        );
        let files = outputs_of(&out, &["cpu", "off-cpu", "wall", "threadcreate"]);
        assert_argument_error(
            &run,
            "nope",
            &files.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        );
        for kind in ["cpu", "off-cpu", "wall", "threadcreate"] {
            assert!(
                run.stderr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .any(|w| w == kind),
                "the error for --type {kinds} should list the kind {kind}\n{}",
                run.describe()
            );
        }
    }
}

/// `--min-block` that is not a duration with a unit (ns, us, ms, s).
#[test]
fn bad_min_block_duration() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("bad-min-block");
    for (i, value) in ["5parsecs", "ms", "-3ms"].iter().enumerate() {
        let out = dir.join(&format!("m{i}.pb.gz"));
        let min_block = format!("--min-block={value}");
        let run = record(
            &[
                "--type",
                "off-cpu",
                &min_block,
                "-p",
                &pid,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(15),
        );
        assert_argument_error(&run, value, &[&out, &kind_path(&out, "off-cpu")]);
        let msg = run.stderr.to_lowercase();
        assert!(
            msg.contains("duration") || msg.contains("ms"),
            "the error for --min-block {value} should say what a duration looks like\n{}",
            run.describe()
        );
    }
}

/// `--state` other than S, D or all.
#[test]
fn bad_state() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("bad-state");
    for (i, value) in ["X", "R", "sleeping"].iter().enumerate() {
        let out = dir.join(&format!("s{i}.pb.gz"));
        let run = record(
            &[
                "--type",
                "off-cpu",
                "--state",
                value,
                "-p",
                &pid,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(15),
        );
        assert_argument_error(&run, value, &[&out, &kind_path(&out, "off-cpu")]);
        for valid in ["S", "D", "all"] {
            assert!(
                run.stderr.contains(valid),
                "the error for --state {value} should give the valid states (S, D, all)\n{}",
                run.describe()
            );
        }
    }
}

/// `--block-rate` that is not a duration, or above its 4 s limit.
#[test]
fn bad_block_rate() {
    if !require_bpf() {
        return;
    }
    let live = sleeper();
    let pid = live.pid.to_string();
    let dir = TempDir::new("bad-block-rate");
    for (i, value) in ["5parsecs", "5s"].iter().enumerate() {
        let out = dir.join(&format!("r{i}.pb.gz"));
        let rate = format!("--block-rate={value}");
        let run = record(
            &[
                "--type",
                "off-cpu",
                &rate,
                "-p",
                &pid,
                "--seconds",
                "5",
                "-o",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(15),
        );
        assert_argument_error(&run, value, &[&out, &kind_path(&out, "off-cpu")]);
    }
}

/// Records `tiny_jit MODE` (a made-up JIT runtime with a perf map) with `-p` for 2 s, while
/// it lives, and returns the profile, the share of samples named `name`, and the run.
fn record_tiny_jit(mode: &str, name: &str) -> (Decoded, f64, RunOutput) {
    let dir = TempDir::new(&format!("jit-{mode}"));
    let bin = build_c_exact("gcc", "tiny_jit.c", dir.path(), "tiny_jit", &["-O2", "-g"]);
    // Killed once recorded: long enough for a slow start (a debug build reads a 100 MB map
    // in seconds).
    let w = Workload::start(&bin, &[mode, "60"]);
    let out = dir.join("jit.pb.gz");
    let pid = w.pid.to_string();
    let run = record(
        &["-p", &pid, "--seconds", "2", "-o", out.to_str().unwrap()],
        Duration::from_secs(60),
    );
    w.kill();
    run.assert_success();
    let p = decode(&out);
    let named = p.share_within("samples", |s| s.contains("call_jit"), |s| s.contains(name));
    (p, named, run)
}

/// The line of the profile's comments about perf maps.
fn perf_map_comment(p: &Decoded) -> String {
    p.comments()
        .into_iter()
        .find(|c| c.starts_with("perf maps"))
        .unwrap_or_default()
}

/// Malformed lines of a perf map are skipped and counted, and the good line still names the
/// code; a 100 MB map loads as well.
#[test]
fn malformed_and_huge_perf_maps_are_read() {
    if !require_bpf() {
        return;
    }
    for mode in ["good", "big"] {
        let (p, named, run) = record_tiny_jit(mode, "jit_spin");
        let comment = perf_map_comment(&p);
        let context = format!(
            "{mode}: {:.1}% named; {comment}\n{}",
            100.0 * named,
            run.describe()
        );
        assert!(named >= 0.95, "{context}");
        assert!(comment.contains("malformed_lines=5 "), "{context}");
        assert!(
            run.stderr.contains(
                "warning: perf maps of JIT code partly ignored: perf_map_malformed_lines=5"
            ),
            "{context}"
        );
        if mode == "big" {
            assert!(comment.contains("entries=1250001 "), "{context}");
        }
    }
}

/// A map owned by neither the process's user nor root is ignored and counted: its code
/// stays unnamed rather than named by whoever planted the file.
#[test]
fn perf_map_of_another_owner_is_ignored() {
    if !require_bpf() {
        return;
    }
    let (p, named, run) = record_tiny_jit("owner", "jit_spin");
    let comment = perf_map_comment(&p);
    let context = format!("{:.1}% named; {comment}\n{}", 100.0 * named, run.describe());
    assert_eq!(named, 0.0, "{context}");
    assert!(comment.contains("wrong_owner=1 "), "{context}");
    assert!(run.stderr.contains("perf_map_wrong_owner=1"), "{context}");
    // The stacks still go through the JIT code to main.
    let through = p.share_within(
        "samples",
        |s| s.contains("call_jit"),
        |s| s.contains("main"),
    );
    assert!(through >= 0.95, "{context}");
}

/// A map replaced while recording (a second after the runtime is ready, so normally after
/// its first read) is read again whole, and its newest names win: no sample keeps the old
/// name. (Whether the first read came before the rewrite depends on how fast recording
/// starts; the reading rules themselves are unit-tested in `perf_map`.)
#[test]
fn perf_map_rewritten_while_recording_is_read_again() {
    if !require_bpf() {
        return;
    }
    let (p, named, run) = record_tiny_jit("rewrite", "jit_spin_v2");
    let comment = perf_map_comment(&p);
    let context = format!(
        "{:.1}% named v2; {comment}\n{}",
        100.0 * named,
        run.describe()
    );
    assert!(named >= 0.95, "{context}");
    let old_name = p.total_where("samples", |s| s.contains("jit_spin"));
    assert_eq!(old_name, 0, "{context}");
}
