//! Shared helpers for the integration tests: the BPF availability gate, building the
//! workloads in `tests/workloads/`, running them and `rprof-bpf`, and reading profiles back
//! into forms that are easy to assert on.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rprof_bpf::pprof::proto::Profile;

/// Mapping name that the profiler gives kernel frames.
pub const KERNEL_MAPPING: &str = "[kernel.kallsyms]";

// ---------------------------------------------------------------------------------------
// Gate
// ---------------------------------------------------------------------------------------

/// True when BPF tests can run here: root, and kernel BTF at `/sys/kernel/btf/vmlinux`.
///
/// Under `CI=true` a missing prerequisite is a failure, never a skip. Elsewhere the test
/// prints a banner nobody can miss and returns early.
pub fn require_bpf() -> bool {
    let euid = unsafe { libc::geteuid() };
    let mut missing = Vec::new();
    if euid != 0 {
        missing.push(format!("not running as root (euid {euid})"));
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        missing.push("/sys/kernel/btf/vmlinux is missing (kernel without BTF)".to_string());
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "BPF unavailable under CI: {why}. These tests must run as root on a kernel with BTF."
        );
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let banner = format!(
        "\n\
         ************************************************************************\n\
         *** SKIPPED: {test}\n\
         *** this test needs root + BPF: {why}\n\
         *** run the integration tests as root (sudo -E cargo test) to run it.\n\
         *** (with CI=true this is a failure instead of a skip)\n\
         ************************************************************************\n"
    );
    // Straight to the stderr handle: the test harness captures eprintln! output of passing
    // tests, and a skip must not go unnoticed.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    false
}

/// Serialises the tests of one binary that need the CPUs to themselves (CPU shares and
/// sample counts are only meaningful if other tests are not competing for the 2 CPUs).
pub fn exclusive_cpu() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop unless the test failed
/// (then it is kept, and its path printed, for a look at the profile).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "rprof-test-{tag}-{}-{n}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: keeping {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Building workloads
// ---------------------------------------------------------------------------------------

pub fn workloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads")
}

/// Flags for C workloads, the way distributions build: optimised, no frame-pointer flags
/// (GCC's default omits them), with DWARF for file and line numbers. User stacks through
/// such code are complete only through call frame information.
pub const C_FLAGS: &[&str] = &["-O2", "-g", "-pthread"];

/// Frame pointers everywhere, leaf functions too, for the tests whose point is a
/// frame-pointer walk (`--call-graph fp`, off-CPU stacks read at every switch, every
/// allocation recorded). GCC 12 drops the frame of small leaf functions at -O2 even with
/// `-mno-omit-leaf-frame-pointer`; clang keeps it.
pub const C_FP_FLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-fno-omit-frame-pointer",
    "-mno-omit-leaf-frame-pointer",
    "-pthread",
];

/// Compiles `tests/workloads/<source>` with [`C_FLAGS`] into `dir/<out_name>`, with `$CC`
/// (default `gcc`, the distributions' compiler).
pub fn build_c(source: &str, dir: &Path, out_name: &str) -> PathBuf {
    build_c_with(source, dir, out_name, &[])
}

/// [`build_c`] with extra compiler flags (e.g. `-static`).
pub fn build_c_with(source: &str, dir: &Path, out_name: &str, extra: &[&str]) -> PathBuf {
    let mut flags: Vec<&str> = C_FLAGS.to_vec();
    flags.extend_from_slice(extra);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    build_c_exact(&compiler, source, dir, out_name, &flags)
}

/// Compiles `tests/workloads/<source>` with frame pointers everywhere ([`C_FP_FLAGS`]), with
/// clang, for the tests of frame-pointer walks.
pub fn build_c_fp(source: &str, dir: &Path, out_name: &str) -> PathBuf {
    let mut flags: Vec<&str> = C_FP_FLAGS.to_vec();
    if !cfg!(target_arch = "x86_64") {
        flags.retain(|f| *f != "-mno-omit-leaf-frame-pointer");
    }
    build_c_exact("clang", source, dir, out_name, &flags)
}

/// Builds the Go module `tests/workloads/<module_dir>` into `dir/<module_dir>`.
///
/// GOCACHE, GOPATH and HOME get temp-dir defaults when they are unset, so that this also
/// works for root under CI with no home directory.
pub fn build_go(module_dir: &str, dir: &Path) -> PathBuf {
    build_go_with(module_dir, dir, module_dir, &[])
}

/// [`build_go`] into `dir/<out_name>`, with extra `go build` flags (e.g. `-ldflags=-s -w`).
pub fn build_go_with(module_dir: &str, dir: &Path, out_name: &str, flags: &[&str]) -> PathBuf {
    let src = workloads_dir().join(module_dir);
    let out = dir.join(out_name);
    let mut cmd = Command::new("go");
    cmd.arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local");
    let shared = std::env::temp_dir().join("rprof-test-go");
    for (var, sub) in [("GOCACHE", "cache"), ("GOPATH", "gopath"), ("HOME", "home")] {
        if std::env::var_os(var).is_none() {
            let path = shared.join(sub);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            cmd.env(var, path);
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go build` (is golang-go installed?): {e}"));
    assert!(
        output.status.success(),
        "go build in {} failed ({}):\n{}",
        src.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Returns the 1-based line number of the first line of `tests/workloads/<source>` that
/// contains `marker`.
pub fn source_line_of(source: &str, marker: &str) -> i64 {
    let path = workloads_dir().join(source);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let index = text
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not found in {}", path.display()));
    index as i64 + 1
}

// ---------------------------------------------------------------------------------------
// Workload processes
// ---------------------------------------------------------------------------------------

/// A running workload. A background thread waits for it, so that it is reaped as soon as
/// it exits (a zombie would still look alive in /proc). Killed on drop if still running.
pub struct Workload {
    pub pid: u32,
    pub name: String,
    stdout: Option<BufReader<ChildStdout>>,
    exited: Arc<AtomicBool>,
    waiter: Option<JoinHandle<ExitStatus>>,
}

impl Workload {
    /// Starts `program args...` and waits (up to 10 s) for its `ready <pid>` line.
    pub fn start(program: &Path, args: &[&str]) -> Workload {
        let mut w = Workload::spawn(program, args);
        w.wait_ready();
        w
    }

    /// Starts `program args...` without waiting for it to be ready.
    pub fn spawn(program: &Path, args: &[&str]) -> Workload {
        let mut child: Child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let pid = child.id();
        let stdout = child.stdout.take().map(BufReader::new);
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().expect("wait for workload");
            flag.store(true, Ordering::SeqCst);
            status
        });
        Workload {
            pid,
            name: program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stdout,
            exited,
            waiter: Some(waiter),
        }
    }

    /// Reads the workload's `ready <pid>` line.
    pub fn wait_ready(&mut self) {
        let mut reader = self.stdout.take().expect("stdout already consumed");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
            // Drain the rest so the workload never blocks on a full pipe.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!("{} (pid {}) did not get ready in 10 s", self.name, self.pid)
            })
            .unwrap_or_else(|e| panic!("reading {} stdout: {e}", self.name));
        assert_eq!(
            line.trim(),
            format!("ready {}", self.pid),
            "unexpected first line from {}",
            self.name
        );
    }

    /// Thread ids of the workload (from /proc/PID/task), with their names.
    pub fn threads(&self) -> BTreeMap<u32, String> {
        let mut out = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) {
            for e in entries.flatten() {
                if let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() {
                    let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                    out.insert(tid, comm.trim().to_string());
                }
            }
        }
        out
    }

    /// CPU time (user + system) the workload has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.pid)
            .unwrap_or_else(|| panic!("cannot read the CPU time of pid {}", self.pid))
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }

    /// Waits for the workload to exit, killing it after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !self.has_exited() {
            self.kill();
        }
        self.waiter
            .take()
            .expect("waiter")
            .join()
            .expect("waiter thread")
    }

    pub fn kill(&self) {
        if !self.has_exited() {
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.kill();
        if let Some(w) = self.waiter.take() {
            let _ = w.join();
        }
    }
}

/// Records a process's CPU time (user + system) against the wall clock every 20 ms, so that
/// a test can tell how much CPU time the process got during the profile's own window
/// (`time_nanos` .. `time_nanos + duration_nanos`), however busy the machine is.
pub struct CpuMonitor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<(i64, f64)>>>,
}

/// CPU seconds used so far by `pid` (all its threads), or None once it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// utime + stime, in seconds, from a /proc/.../stat file.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / hz)
}

fn unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos() as i64
}

impl CpuMonitor {
    /// Monitors a whole process (all its threads).
    pub fn start(pid: u32) -> CpuMonitor {
        CpuMonitor::watch(format!("/proc/{pid}/stat"))
    }

    /// Monitors one thread.
    pub fn start_thread(pid: u32, tid: u32) -> CpuMonitor {
        CpuMonitor::watch(format!("/proc/{pid}/task/{tid}/stat"))
    }

    fn watch(stat_path: String) -> CpuMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut readings = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match stat_cpu_seconds(&stat_path) {
                    Some(cpu) => readings.push((unix_nanos(), cpu)),
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            readings
        });
        CpuMonitor {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops monitoring; returns the CPU seconds used between the two wall-clock times
    /// (Unix nanoseconds), interpolated between readings.
    pub fn cpu_between(mut self, from_ns: i64, to_ns: i64) -> f64 {
        self.stop.store(true, Ordering::SeqCst);
        let readings = self.handle.take().unwrap().join().unwrap();
        assert!(readings.len() >= 2, "too few CPU readings: {readings:?}");
        let at = |t: i64| -> f64 {
            let i = readings.partition_point(|r| r.0 <= t);
            if i == 0 {
                return readings[0].1;
            }
            if i == readings.len() {
                return readings[i - 1].1;
            }
            let (t0, c0) = readings[i - 1];
            let (t1, c1) = readings[i];
            c0 + (c1 - c0) * (t - t0) as f64 / (t1 - t0).max(1) as f64
        };
        at(to_ns) - at(from_ns)
    }
}

impl Drop for CpuMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running rprof-bpf
// ---------------------------------------------------------------------------------------

pub fn rprof_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rprof-bpf")
}

/// What a finished command did.
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
    pub command: String,
}

impl RunOutput {
    /// A short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}{}\nelapsed: {:.2?}\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.status,
            if self.timed_out {
                " (KILLED: timed out)"
            } else {
                ""
            },
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }

    pub fn assert_success(&self) {
        assert!(
            self.status.success() && !self.timed_out,
            "rprof-bpf failed\n{}",
            self.describe()
        );
    }

    /// Asserts a clean failure: non-zero exit, not killed, exactly one line on stderr.
    pub fn assert_one_line_error(&self) {
        assert!(
            !self.timed_out,
            "expected a quick error, it timed out\n{}",
            self.describe()
        );
        assert!(
            self.status.code().is_some_and(|c| c != 0),
            "expected a non-zero exit code\n{}",
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr\n{}",
            self.describe()
        );
    }
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A started command whose output is collected in the background.
pub struct Running {
    pub child: Child,
    pub started: Instant,
    command: String,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

fn collect<R: Read + Send + 'static>(reader: Option<R>) -> Option<JoinHandle<String>> {
    reader.map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let command = describe_command(&cmd);
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let out = collect(child.stdout.take());
        let err = collect(child.stderr.take());
        Running {
            child,
            started,
            command,
            out,
            err,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: libc::c_int) {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    /// Waits up to `timeout`; kills the command with SIGKILL if it is still running then.
    pub fn finish(mut self, timeout: Duration) -> RunOutput {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().expect("wait after kill");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.started.elapsed();
        let stdout = self
            .out
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let stderr = self
            .err
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        RunOutput {
            status,
            stdout,
            stderr,
            elapsed,
            timed_out,
            command: self.command,
        }
    }
}

/// `rprof-bpf record ARGS...`, as a Command.
pub fn record_cmd<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(rprof_bin());
    cmd.arg("record").args(args);
    cmd
}

/// Where a recording of several kinds writes kind `kind` for `-o base`: `prof.pb.gz` gives
/// `prof.<kind>.pb.gz` (and likewise for `.svg` and `.folded`); any other name gets
/// `.<kind>` appended.
pub fn kind_path(base: &Path, kind: &str) -> PathBuf {
    let name = base
        .file_name()
        .expect("output path has a file name")
        .to_string_lossy();
    let file = [".pb.gz", ".svg", ".folded"]
        .iter()
        .find_map(|ext| {
            name.strip_suffix(ext)
                .map(|stem| format!("{stem}.{kind}{ext}"))
        })
        .unwrap_or_else(|| format!("{name}.{kind}"));
    base.with_file_name(file)
}

/// Runs `rprof-bpf record ARGS...` to completion (killed after `timeout`).
pub fn record<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> RunOutput {
    Running::start(record_cmd(args)).finish(timeout)
}

/// Waits until `pred` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `/proc/sys/kernel/<name>` as a number.
pub fn kernel_sysctl(name: &str) -> u64 {
    let path = format!("/proc/sys/kernel/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// go tool pprof
// ---------------------------------------------------------------------------------------

/// `go tool pprof -top -nodefraction=0 -symbolize=none FILE`: returns stdout, and fails the
/// test if pprof fails or complains about the file.
pub fn go_pprof_top(profile: &Path) -> String {
    go_pprof(&["-top", "-nodefraction=0", "-symbolize=none"], profile)
}

/// `go tool pprof ARGS... FILE`; see [`go_pprof_top`].
pub fn go_pprof(args: &[&str], profile: &Path) -> String {
    let mut cmd = Command::new("go");
    cmd.arg("tool").arg("pprof").args(args).arg(profile);
    if std::env::var_os("HOME").is_none() {
        let home = std::env::temp_dir().join("rprof-test-go/home");
        let _ = std::fs::create_dir_all(&home);
        cmd.env("HOME", home);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go tool pprof` (is golang-go installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "go tool pprof {args:?} {} failed ({}):\n{stderr}\n{stdout}",
        profile.display(),
        output.status
    );
    for bad in ["unrecognized", "malformed", "parsing profile", "failed to"] {
        assert!(
            !stderr.to_lowercase().contains(bad),
            "go tool pprof {args:?} complained about {}:\n{stderr}",
            profile.display()
        );
    }
    stdout
}

/// The (flat%, cum%) columns of `name`'s row in `go tool pprof -top` output.
pub fn pprof_top_row(top: &str, name: &str) -> Option<(f64, f64)> {
    top.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 6 && cols[5..].join(" ") == name {
            let pct = |c: &str| c.trim_end_matches('%').parse::<f64>().ok();
            Some((pct(cols[1])?, pct(cols[4])?))
        } else {
            None
        }
    })
}

// ---------------------------------------------------------------------------------------
// Decoding profiles
// ---------------------------------------------------------------------------------------

/// One frame of a sample's stack. Inlined frames are separate `Frame`s.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Function name, or `0x...` (the location's address) when unsymbolized.
    pub name: String,
    /// Source line (0 if unknown).
    pub line: i64,
    /// The location's address.
    pub address: u64,
    /// Filename of the location's mapping ("" without a mapping).
    pub mapping: String,
    /// Whether this is a kernel frame (mapping `[kernel.kallsyms]`).
    pub kernel: bool,
    /// Whether this frame came from an inlined Line (not the last Line of its Location).
    pub inlined: bool,
}

impl Frame {
    pub fn symbolized(&self) -> bool {
        !self.name.is_empty() && !self.name.starts_with("0x")
    }
}

/// A sample, made easy to look at.
#[derive(Clone, Debug)]
pub struct StackSample {
    /// Leaf first; inlined frames expanded (innermost first).
    pub frames: Vec<Frame>,
    pub values: Vec<i64>,
    pub num_labels: HashMap<String, i64>,
    pub str_labels: HashMap<String, String>,
}

impl StackSample {
    pub fn names(&self) -> Vec<&str> {
        self.frames.iter().map(|f| f.name.as_str()).collect()
    }

    /// The user-space frames, leaf first (kernel frames, which come first, skipped).
    pub fn user_frames(&self) -> &[Frame] {
        let first_user = self
            .frames
            .iter()
            .position(|f| !f.kernel)
            .unwrap_or(self.frames.len());
        &self.frames[first_user..]
    }

    pub fn user_names(&self) -> Vec<&str> {
        self.user_frames().iter().map(|f| f.name.as_str()).collect()
    }

    pub fn leaf(&self) -> Option<&str> {
        self.frames.first().map(|f| f.name.as_str())
    }

    /// Whether any kernel frame is one of `names`.
    pub fn has_kernel_frame(&self, names: &[&str]) -> bool {
        self.frames
            .iter()
            .any(|f| f.kernel && names.contains(&f.name.as_str()))
    }

    /// The user-space functions really called, leaf first: inlined frames (such as an
    /// always_inline system call helper) left out.
    pub fn user_callers(&self) -> Vec<&str> {
        self.user_frames()
            .iter()
            .filter(|f| !f.inlined)
            .map(|f| f.name.as_str())
            .collect()
    }

    /// Whether the stack is `leaf_user <- caller` in user space (not counting inlined
    /// frames), under kernel frames that include one of each of `kernel_groups` (e.g. the
    /// frames of a system call): how a thread looks that blocked in a system call made in
    /// `leaf_user`.
    pub fn blocked_in(&self, leaf_user: &str, caller: &str, kernel_groups: &[&[&str]]) -> bool {
        let user = self.user_callers();
        self.frames.first().is_some_and(|f| f.kernel)
            && user.first() == Some(&leaf_user)
            && user.get(1) == Some(&caller)
            && kernel_groups.iter().all(|g| self.has_kernel_frame(g))
    }

    pub fn contains(&self, func: &str) -> bool {
        self.frames.iter().any(|f| f.name == func)
    }

    pub fn num(&self, key: &str) -> Option<i64> {
        self.num_labels.get(key).copied()
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.str_labels.get(key).map(|s| s.as_str())
    }

    pub fn pid(&self) -> Option<i64> {
        self.num("pid")
    }

    pub fn tid(&self) -> Option<i64> {
        self.num("tid")
    }
}

/// A decoded profile plus its samples in [`StackSample`] form.
pub struct Decoded {
    pub profile: Profile,
    pub samples: Vec<StackSample>,
    pub path: PathBuf,
}

/// Reads a (gzipped) pprof file with the crate's own reader, and resolves every sample.
/// Fails the test on any dangling id or string index.
pub fn decode(path: &Path) -> Decoded {
    let profile = rprof_bpf::pprof::read_profile(path)
        .unwrap_or_else(|e| panic!("cannot read profile {}: {e}", path.display()));
    from_profile(profile, path)
}

pub fn from_profile(profile: Profile, path: &Path) -> Decoded {
    let strings = &profile.string_table;
    let s = |idx: i64| -> String {
        strings
            .get(idx as usize)
            .unwrap_or_else(|| panic!("string index {idx} out of range in {}", path.display()))
            .clone()
    };
    let functions: HashMap<u64, String> =
        profile.function.iter().map(|f| (f.id, s(f.name))).collect();
    let mappings: HashMap<u64, String> = profile
        .mapping
        .iter()
        .map(|m| (m.id, s(m.filename)))
        .collect();
    let mut locations: HashMap<u64, Vec<Frame>> = HashMap::new();
    for loc in &profile.location {
        let mapping = if loc.mapping_id == 0 {
            String::new()
        } else {
            mappings
                .get(&loc.mapping_id)
                .unwrap_or_else(|| {
                    panic!("location {} has unknown mapping {}", loc.id, loc.mapping_id)
                })
                .clone()
        };
        let kernel = mapping == KERNEL_MAPPING;
        let frames = if loc.line.is_empty() {
            vec![Frame {
                name: format!("0x{:x}", loc.address),
                line: 0,
                address: loc.address,
                mapping: mapping.clone(),
                kernel,
                inlined: false,
            }]
        } else {
            let n = loc.line.len();
            loc.line
                .iter()
                .enumerate()
                .map(|(i, line)| Frame {
                    name: functions
                        .get(&line.function_id)
                        .unwrap_or_else(|| {
                            panic!(
                                "location {} has a line with unknown function {}",
                                loc.id, line.function_id
                            )
                        })
                        .clone(),
                    line: line.line,
                    address: loc.address,
                    mapping: mapping.clone(),
                    kernel,
                    inlined: i + 1 < n,
                })
                .collect()
        };
        assert!(
            locations.insert(loc.id, frames).is_none(),
            "duplicate location id {}",
            loc.id
        );
    }
    let samples = profile
        .sample
        .iter()
        .map(|sample| {
            let mut frames = Vec::new();
            for id in &sample.location_id {
                frames.extend(
                    locations
                        .get(id)
                        .unwrap_or_else(|| panic!("sample refers to unknown location {id}"))
                        .iter()
                        .cloned(),
                );
            }
            let mut num_labels = HashMap::new();
            let mut str_labels = HashMap::new();
            for label in &sample.label {
                let key = s(label.key);
                if label.str != 0 {
                    str_labels.insert(key, s(label.str));
                } else {
                    num_labels.insert(key, label.num);
                }
            }
            StackSample {
                frames,
                values: sample.value.clone(),
                num_labels,
                str_labels,
            }
        })
        .collect();
    Decoded {
        profile,
        samples,
        path: path.to_path_buf(),
    }
}

impl Decoded {
    pub fn string(&self, idx: i64) -> &str {
        &self.profile.string_table[idx as usize]
    }

    /// (type, unit) of each sample value.
    pub fn sample_types(&self) -> Vec<(String, String)> {
        self.profile
            .sample_type
            .iter()
            .map(|vt| {
                (
                    self.string(vt.r#type).to_string(),
                    self.string(vt.unit).to_string(),
                )
            })
            .collect()
    }

    /// Index of the value whose sample type is `name` (e.g. "samples", "cpu").
    pub fn value_index(&self, name: &str) -> usize {
        self.sample_types()
            .iter()
            .position(|(t, _)| t == name)
            .unwrap_or_else(|| {
                panic!(
                    "no sample type {name:?} in {:?} ({})",
                    self.sample_types(),
                    self.path.display()
                )
            })
    }

    pub fn comments(&self) -> Vec<String> {
        self.profile
            .comment
            .iter()
            .map(|&i| self.string(i).to_string())
            .collect()
    }

    /// Sum of value `name` over the samples matching `pred`.
    pub fn total_where(&self, name: &str, pred: impl Fn(&StackSample) -> bool) -> i64 {
        let i = self.value_index(name);
        self.samples
            .iter()
            .filter(|s| pred(s))
            .map(|s| s.values[i])
            .sum()
    }

    pub fn total(&self, name: &str) -> i64 {
        self.total_where(name, |_| true)
    }

    /// Share of value `name` (over samples matching `within`) taken by samples matching `pred`.
    pub fn share_within(
        &self,
        name: &str,
        within: impl Fn(&StackSample) -> bool,
        pred: impl Fn(&StackSample) -> bool,
    ) -> f64 {
        let all = self.total_where(name, &within);
        if all == 0 {
            return 0.0;
        }
        self.total_where(name, |s| within(s) && pred(s)) as f64 / all as f64
    }

    /// Cumulative share: fraction of value `name` whose stack contains `func`.
    pub fn cum_share(&self, func: &str, name: &str) -> f64 {
        self.share_within(name, |_| true, |s| s.contains(func))
    }

    /// Flat share: fraction of value `name` whose leaf frame is `func`.
    pub fn flat_share(&self, func: &str, name: &str) -> f64 {
        self.share_within(name, |_| true, |s| s.leaf() == Some(func))
    }

    pub fn contains_function(&self, func: &str) -> bool {
        self.samples.iter().any(|s| s.contains(func))
    }

    /// (type, unit) of the period.
    pub fn period_type(&self) -> (String, String) {
        let pt = self
            .profile
            .period_type
            .as_ref()
            .unwrap_or_else(|| panic!("no period_type in {}", self.path.display()));
        (
            self.string(pt.r#type).to_string(),
            self.string(pt.unit).to_string(),
        )
    }

    /// Asserts the profile's layout: sample types in order, period type and period (within
    /// 1, for periods computed as 1e9 / frequency), and a set `duration_nanos` and
    /// `time_nanos`.
    pub fn assert_layout(
        &self,
        sample_types: &[(&str, &str)],
        period_type: (&str, &str),
        period: i64,
    ) {
        let want: Vec<(String, String)> = sample_types
            .iter()
            .map(|(t, u)| (t.to_string(), u.to_string()))
            .collect();
        assert_eq!(
            self.sample_types(),
            want,
            "sample types of {}\n{}",
            self.path.display(),
            self.report()
        );
        assert_eq!(
            self.period_type(),
            (period_type.0.to_string(), period_type.1.to_string()),
            "period type of {}",
            self.path.display()
        );
        assert!(
            (self.profile.period - period).abs() <= 1,
            "period {} of {}, expected {period}",
            self.profile.period,
            self.path.display()
        );
        assert!(
            self.profile.duration_nanos > 0 && self.profile.time_nanos > 0,
            "duration_nanos {} / time_nanos {} not set in {}",
            self.profile.duration_nanos,
            self.profile.time_nanos,
            self.path.display()
        );
        for s in &self.samples {
            assert_eq!(
                s.values.len(),
                sample_types.len(),
                "sample with {:?} values in {}: {s:?}",
                s.values,
                self.path.display()
            );
        }
    }

    /// Value `name` per string label value (e.g. per `state`).
    pub fn by_str_label(&self, key: &str, name: &str) -> BTreeMap<String, i64> {
        let i = self.value_index(name);
        let mut out = BTreeMap::new();
        for s in &self.samples {
            if let Some(v) = s.str(key) {
                *out.entry(v.to_string()).or_insert(0) += s.values[i];
            }
        }
        out
    }

    /// Value `name` per numeric label value (e.g. per tid).
    pub fn by_num_label(&self, key: &str, name: &str) -> BTreeMap<i64, i64> {
        let i = self.value_index(name);
        let mut out = BTreeMap::new();
        for s in &self.samples {
            if let Some(v) = s.num(key) {
                *out.entry(v).or_insert(0) += s.values[i];
            }
        }
        out
    }

    /// A readable summary for assertion messages: header, labels, top functions and stacks.
    pub fn report(&self) -> String {
        self.summarize("", self.samples.iter().collect())
    }

    /// Like [`Decoded::report`], but the functions and stacks are those of the samples
    /// matching `pred` only (`what` says which), e.g. one thread's.
    pub fn report_where(&self, what: &str, pred: impl Fn(&StackSample) -> bool) -> String {
        self.summarize(what, self.samples.iter().filter(|s| pred(s)).collect())
    }

    fn summarize(&self, what: &str, samples: Vec<&StackSample>) -> String {
        let mut out = String::new();
        let types = self.sample_types();
        let _ = writeln!(
            out,
            "--- profile {} ---\nsample types {:?}, {} samples, {} locations, {} functions, {} mappings",
            self.path.display(),
            types,
            self.samples.len(),
            self.profile.location.len(),
            self.profile.function.len(),
            self.profile.mapping.len()
        );
        if !what.is_empty() {
            let _ = writeln!(out, "below: only {} ({} samples)", what, samples.len());
        }
        for c in self.comments() {
            let _ = writeln!(out, "comment: {c}");
        }
        if types.is_empty() {
            return out;
        }
        let vi = types.len() - 1;
        let total: i64 = samples.iter().map(|s| s.values[vi]).sum();
        let pct = |v: i64| 100.0 * v as f64 / total.max(1) as f64;
        let mut flat: HashMap<&str, i64> = HashMap::new();
        let mut cum: HashMap<&str, i64> = HashMap::new();
        for s in &samples {
            if let Some(leaf) = s.leaf() {
                *flat.entry(leaf).or_insert(0) += s.values[vi];
            }
            let mut seen: Vec<&str> = s.names();
            seen.sort_unstable();
            seen.dedup();
            for f in seen {
                *cum.entry(f).or_insert(0) += s.values[vi];
            }
        }
        let mut rows: Vec<(&str, i64)> = cum.iter().map(|(k, v)| (*k, *v)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(out, "top functions by {} (flat% cum%):", types[vi].0);
        for (name, c) in rows.iter().take(25) {
            let f = flat.get(name).copied().unwrap_or(0);
            let _ = writeln!(out, "  {:6.2}% {:6.2}%  {name}", pct(f), pct(*c));
        }
        let mut stacks = samples.clone();
        stacks.sort_by(|a, b| b.values[vi].cmp(&a.values[vi]));
        let _ = writeln!(out, "top stacks (leaf first):");
        for s in stacks.iter().take(8) {
            let mut labels: Vec<String> = s
                .num_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .chain(s.str_labels.iter().map(|(k, v)| format!("{k}={v:?}")))
                .collect();
            labels.sort();
            let _ = writeln!(
                out,
                "  {:6.2}% [{}] {}",
                pct(s.values[vi]),
                labels.join(" "),
                s.frames
                    .iter()
                    .map(|f| if f.kernel {
                        format!("{}_[k]", f.name)
                    } else {
                        f.name.clone()
                    })
                    .collect::<Vec<_>>()
                    .join(" <- ")
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Outputs: report runs, folded stacks, top tables, SVG flame graphs
// ---------------------------------------------------------------------------------------

/// Runs `rprof-bpf report ARGS...` to completion (killed after 60 s). Needs no privileges.
pub fn report<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> RunOutput {
    let mut cmd = Command::new(rprof_bin());
    cmd.arg("report").args(args);
    Running::start(cmd).finish(Duration::from_secs(60))
}

/// Like [`report`], but fails the test unless it succeeds, and returns its stdout.
pub fn report_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let run = report(args);
    run.assert_success();
    assert!(
        !run.stderr.contains("panicked"),
        "report panicked\n{}",
        run.describe()
    );
    run.stdout
}

/// One line of folded output: frames root first, and the count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedLine {
    pub frames: Vec<String>,
    pub count: i64,
}

impl FoldedLine {
    /// Frame names without the `_[k]` / `_[i]` annotations.
    pub fn plain_frames(&self) -> Vec<&str> {
        self.frames
            .iter()
            .map(|f| {
                f.strip_suffix("_[k]")
                    .or_else(|| f.strip_suffix("_[i]"))
                    .unwrap_or(f)
            })
            .collect()
    }

    /// The frames that are not kernel frames (no `_[k]`), root first.
    pub fn user_frames(&self) -> Vec<&str> {
        self.frames
            .iter()
            .filter(|f| !f.ends_with("_[k]"))
            .map(|f| f.strip_suffix("_[i]").unwrap_or(f))
            .collect()
    }
}

/// Parses folded stacks (`root;...;leaf COUNT` per line); fails the test on a malformed
/// line.
pub fn parse_folded(text: &str) -> Vec<FoldedLine> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (stack, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("folded line without a count: {line:?}"));
            let count = count
                .parse::<i64>()
                .unwrap_or_else(|e| panic!("bad count in folded line {line:?}: {e}"));
            let frames: Vec<String> = stack.split(';').map(str::to_string).collect();
            assert!(
                frames.iter().all(|f| !f.is_empty()),
                "empty frame in folded line {line:?}"
            );
            FoldedLine { frames, count }
        })
        .collect()
}

/// The folded lines a profile should give for value column `name`: every sample's frames
/// root first (inlined frames caller first, as [`decode`] expands them innermost first),
/// kernel frames suffixed `_[k]` and inlined ones `_[i]`, `;` in names replaced, equal
/// stacks summed, samples without a positive value left out.
pub fn expected_folded(p: &Decoded, name: &str) -> BTreeMap<String, i64> {
    let i = p.value_index(name);
    let mut out = BTreeMap::new();
    for s in p.samples.iter().filter(|s| s.values[i] > 0) {
        let stack = s
            .frames
            .iter()
            .rev()
            .map(|f| {
                let base = f.name.replace(';', ":");
                if f.kernel {
                    format!("{base}_[k]")
                } else if f.inlined {
                    format!("{base}_[i]")
                } else {
                    base
                }
            })
            .collect::<Vec<_>>()
            .join(";");
        *out.entry(stack).or_insert(0) += s.values[i];
    }
    out
}

/// Folded lines as a map from the `;`-joined stack to its count.
pub fn folded_map(lines: &[FoldedLine]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for l in lines {
        assert!(
            out.insert(l.frames.join(";"), l.count).is_none(),
            "stack {:?} appears twice in the folded output",
            l.frames.join(";")
        );
    }
    out
}

/// A quantity from a top table (`1.48s`, `1200ms`, `2.01kB`, `224`, `0`) in base units
/// (nanoseconds, bytes, counts).
pub fn parse_quantity(text: &str) -> f64 {
    const UNITS: &[(&str, f64)] = &[
        ("hrs", 3600e9),
        ("mins", 60e9),
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("kB", 1024.0),
        ("MB", 1024.0 * 1024.0),
        ("GB", 1024.0 * 1024.0 * 1024.0),
        ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("B", 1.0),
    ];
    let (number, scale) = UNITS
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((text, 1.0));
    let value: f64 = number
        .parse()
        .unwrap_or_else(|e| panic!("cannot parse the quantity {text:?}: {e}"));
    value * scale
}

/// One row of a top table: values in base units.
#[derive(Clone, Debug)]
pub struct TopRow {
    pub name: String,
    pub flat: f64,
    pub flat_pct: f64,
    pub cum: f64,
    pub cum_pct: f64,
}

/// A top table, ours (`rprof-bpf report`, `record --top`) or `go tool pprof -top`'s.
#[derive(Clone, Debug)]
pub struct TopTable {
    /// From the `Type:` line.
    pub kind: String,
    /// From `... of TOTAL total`.
    pub total: f64,
    /// From `Showing top N nodes out of M` (ours always; pprof when it drops nodes).
    pub nodes_out_of: Option<(usize, usize)>,
    pub rows: Vec<TopRow>,
}

impl TopTable {
    pub fn row(&self, name: &str) -> Option<&TopRow> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// Parses the first top table in `text` (lines before it, such as pprof's `File:`, are
/// skipped; the table ends at the first line that is not a row).
pub fn parse_top(text: &str) -> TopTable {
    let mut kind = None;
    let mut total = None;
    let mut nodes_out_of = None;
    let mut rows = Vec::new();
    let mut in_rows = false;
    for line in text.lines() {
        if in_rows {
            match parse_top_row(line) {
                Some(row) => {
                    rows.push(row);
                    continue;
                }
                None => break,
            }
        }
        if let Some(k) = line.strip_prefix("Type: ") {
            if kind.is_some() {
                break;
            }
            kind = Some(k.trim().to_string());
        } else if line.starts_with("Showing ") {
            if let Some(rest) = line.strip_prefix("Showing top ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                // "N nodes out of M, ..."
                if let (Some(n), Some(m)) = (words.first(), words.get(4)) {
                    let m = m.trim_end_matches(',');
                    if let (Ok(n), Ok(m)) = (n.parse(), m.parse()) {
                        nodes_out_of = Some((n, m));
                    }
                }
            }
            // Ours: "..., accounting for X, P% of TOTAL total"; pprof puts the same ending
            // on its own "Showing nodes accounting for" line.
            if let Some(head) = line.strip_suffix(" total") {
                let t = head
                    .rsplit(' ')
                    .next()
                    .unwrap_or_else(|| panic!("no total in {line:?}"));
                total = Some(parse_quantity(t));
            }
        } else if line.trim_start().starts_with("flat") && line.contains("cum%") {
            in_rows = true;
        }
    }
    TopTable {
        kind: kind.unwrap_or_else(|| panic!("no `Type:` line in:\n{text}")),
        total: total.unwrap_or_else(|| panic!("no `... total` line in:\n{text}")),
        nodes_out_of,
        rows,
    }
}

fn parse_top_row(line: &str) -> Option<TopRow> {
    // Five columns, then the name (which may contain spaces).
    let mut rest = line.trim_start();
    let mut cols = Vec::new();
    for _ in 0..5 {
        let end = rest.find(char::is_whitespace)?;
        cols.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    let pct = |c: &str| c.strip_suffix('%')?.parse::<f64>().ok();
    let name = rest.trim_end();
    if name.is_empty() {
        return None;
    }
    Some(TopRow {
        name: name.to_string(),
        flat: parse_quantity(cols[0]),
        flat_pct: pct(cols[1])?,
        cum: parse_quantity(cols[3]),
        cum_pct: pct(cols[4])?,
    })
    .filter(|_| pct(cols[2]).is_some())
}

/// One frame (`<g>`) of an inferno flame graph.
#[derive(Clone, Debug)]
pub struct SvgFrame {
    /// The function name, as the tooltip shows it (annotations such as `_[k]` removed,
    /// XML entities decoded).
    pub name: String,
    /// The count in the tooltip (`1,234 nanoseconds` → 1234).
    pub count: i64,
    /// The width, in percent of the graph.
    pub width_pct: f64,
    /// The fill: (r, g, b).
    pub fill: (u8, u8, u8),
    /// The vertical position (inferno's `y`); frames of one depth share it.
    pub y: f64,
}

/// Decodes the five predefined XML entities and numeric character references.
pub fn xml_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .unwrap_or_else(|| panic!("unterminated entity in {text:?}"));
        let entity = &after[..semi];
        let decoded = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    entity.strip_prefix('#').and_then(|d| d.parse().ok())
                };
                code.and_then(char::from_u32)
                    .unwrap_or_else(|| panic!("unknown entity &{entity}; in {text:?}"))
            }
        };
        out.push(decoded);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    out
}

fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// The frames of an inferno SVG: each `<g><title>NAME (COUNT UNIT, P%)</title><rect .../>`.
pub fn svg_frames(svg: &str) -> Vec<SvgFrame> {
    let mut frames = Vec::new();
    for chunk in svg.split("<g><title>").skip(1) {
        let Some((title, rest)) = chunk.split_once("</title>") else {
            panic!("<title> without </title> in the SVG near {chunk:.80}");
        };
        let title = xml_unescape(title);
        let rect_start = rest
            .find("<rect ")
            .unwrap_or_else(|| panic!("frame {title:?} has no <rect>"));
        let rect = &rest[rect_start..rest[rect_start..].find('>').unwrap() + rect_start];
        // "NAME (1,234 nanoseconds, 56.78%)"; the name itself may hold parentheses.
        let open = title
            .rfind(" (")
            .unwrap_or_else(|| panic!("unexpected frame title {title:?}"));
        let name = title[..open].to_string();
        let count: String = title[open + 2..]
            .split(' ')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ',')
            .collect();
        let count = count
            .parse::<i64>()
            .unwrap_or_else(|e| panic!("bad count in frame title {title:?}: {e}"));
        let width_pct = xml_attr(rect, "width")
            .and_then(|w| w.strip_suffix('%'))
            .and_then(|w| w.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no percentage width in {rect}"));
        let y = xml_attr(rect, "y")
            .and_then(|y| y.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no y in {rect}"));
        let fill = xml_attr(rect, "fill").unwrap_or_else(|| panic!("no fill in {rect}"));
        let rgb: Vec<u8> = fill
            .strip_prefix("rgb(")
            .and_then(|f| f.strip_suffix(')'))
            .map(|f| f.split(',').filter_map(|c| c.trim().parse().ok()).collect())
            .unwrap_or_default();
        assert_eq!(rgb.len(), 3, "fill {fill:?} is not rgb(r,g,b) in {rect}");
        frames.push(SvgFrame {
            name,
            count,
            width_pct,
            fill: (rgb[0], rgb[1], rgb[2]),
            y,
        });
    }
    frames
}

/// Checks that `text` is well-formed XML: one root element, every tag closed in order,
/// quoted attributes, comments, CDATA, processing instructions and a DOCTYPE allowed.
/// Returns the root element's name. When python3 is installed, its XML parser must accept
/// the document too.
pub fn assert_well_formed_xml(text: &str) -> String {
    let root = check_xml(text).unwrap_or_else(|e| panic!("not well-formed XML: {e}"));
    if let Ok(mut child) = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET; print(ET.fromstring(sys.stdin.buffer.read()).tag)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        let mut stdin = child.stdin.take().expect("python3 stdin");
        let bytes = text.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &bytes);
        });
        let out = child.wait_with_output().expect("wait for python3");
        let _ = writer.join();
        assert!(
            out.status.success(),
            "python3's XML parser rejects the document: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tag = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            tag.ends_with(&format!("}}{root}")) || tag == root,
            "python3 sees root element {tag:?}, the checker {root:?}"
        );
    }
    root
}

fn check_xml(text: &str) -> Result<String, String> {
    let at = |pos: usize| {
        let line = text[..pos].matches('\n').count() + 1;
        format!("line {line} (byte {pos})")
    };
    let mut stack: Vec<&str> = Vec::new();
    let mut root: Option<String> = None;
    let mut pos = 0;
    while let Some(lt) = text[pos..].find('<').map(|i| i + pos) {
        let between = &text[pos..lt];
        if stack.is_empty() && !between.trim().is_empty() {
            return Err(format!("text outside the root element at {}", at(pos)));
        }
        check_entities(between).map_err(|e| format!("{e} at {}", at(pos)))?;
        let rest = &text[lt..];
        let end_of = |close: &str| {
            rest.find(close)
                .map(|i| lt + i + close.len())
                .ok_or_else(|| format!("unterminated {close:?} construct at {}", at(lt)))
        };
        if rest.starts_with("<!--") {
            pos = end_of("-->")?;
        } else if rest.starts_with("<![CDATA[") {
            if stack.is_empty() {
                return Err(format!("CDATA outside the root element at {}", at(lt)));
            }
            pos = end_of("]]>")?;
        } else if rest.starts_with("<?") {
            pos = end_of("?>")?;
        } else if rest.starts_with("<!DOCTYPE") {
            if root.is_some() {
                return Err(format!("DOCTYPE after the root element at {}", at(lt)));
            }
            pos = end_of(">")?;
        } else if let Some(close) = rest.strip_prefix("</") {
            let end = close
                .find('>')
                .ok_or_else(|| format!("unterminated end tag at {}", at(lt)))?;
            let name = close[..end].trim_end();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => {
                    return Err(format!("</{name}> closes <{open}> at {}", at(lt)));
                }
                None => return Err(format!("</{name}> without a start tag at {}", at(lt))),
            }
            pos = lt + 2 + end + 1;
        } else {
            let body = &rest[1..];
            let name_len = body
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .ok_or_else(|| format!("unterminated start tag at {}", at(lt)))?;
            let name = &body[..name_len];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || ":_-.".contains(c))
            {
                return Err(format!("bad element name {name:?} at {}", at(lt)));
            }
            // Attributes: name="value" or name='value', with no '<' in values.
            let mut i = name_len;
            let bytes = body.as_bytes();
            let self_closing;
            loop {
                while i < body.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                if body[i..].starts_with("/>") {
                    self_closing = true;
                    i += 2;
                    break;
                }
                if body[i..].starts_with('>') {
                    self_closing = false;
                    i += 1;
                    break;
                }
                let eq = body[i..].find('=').ok_or_else(|| {
                    format!("attribute without a value in <{name}> at {}", at(lt))
                })?;
                let attr = body[i..i + eq].trim();
                if attr.is_empty() || attr.contains(char::is_whitespace) {
                    return Err(format!("bad attribute {attr:?} in <{name}> at {}", at(lt)));
                }
                i += eq + 1;
                let quote = body[i..]
                    .chars()
                    .next()
                    .filter(|c| *c == '"' || *c == '\'')
                    .ok_or_else(|| {
                        format!("unquoted attribute {attr} in <{name}> at {}", at(lt))
                    })?;
                let value_len = body[i + 1..]
                    .find(quote)
                    .ok_or_else(|| format!("unterminated attribute {attr} at {}", at(lt)))?;
                let value = &body[i + 1..i + 1 + value_len];
                if value.contains('<') {
                    return Err(format!("'<' in attribute {attr} at {}", at(lt)));
                }
                check_entities(value)
                    .map_err(|e| format!("{e} in attribute {attr} at {}", at(lt)))?;
                i += 1 + value_len + 1;
            }
            if stack.is_empty() {
                if root.is_some() {
                    return Err(format!("a second root element <{name}> at {}", at(lt)));
                }
                root = Some(name.to_string());
            }
            if !self_closing {
                stack.push(name);
            }
            pos = lt + 1 + i;
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{open}> is never closed"));
    }
    if !text[pos..].trim().is_empty() {
        return Err(format!("text after the root element at {}", at(pos)));
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// Every `&` in character data starts a known entity or character reference.
fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or_else(|| "a bare '&'".to_string())?;
        let entity = &after[..semi];
        let ok = matches!(entity, "lt" | "gt" | "amp" | "quot" | "apos")
            || entity
                .strip_prefix("#x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || entity
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &after[semi + 1..];
    }
    Ok(())
}

/// Whether `program` can be run (found on PATH).
pub fn have_program(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// ---------------------------------------------------------------------------------------
// Building workloads with exact flags (unwinding tests)
// ---------------------------------------------------------------------------------------

/// Compiles `tests/workloads/<source>` with `compiler` and exactly `flags` (not
/// [`C_FLAGS`]) into `dir/<out_name>`: for workloads whose point is how they are built,
/// such as code without frame pointers.
pub fn build_c_exact(
    compiler: &str,
    source: &str,
    dir: &Path,
    out_name: &str,
    flags: &[&str],
) -> PathBuf {
    let src = workloads_dir().join(source);
    let out = dir.join(out_name);
    let output = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {flags:?} {} failed ({}):\n{}",
        src.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The Rust compiler: `$RUSTC`, else the `rustc` next to the cargo that runs the tests
/// (`$CARGO`, which under rustup may not be on root's PATH), else `rustc` from PATH.
pub fn rustc_path() -> PathBuf {
    if let Some(rustc) = std::env::var_os("RUSTC") {
        return PathBuf::from(rustc);
    }
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO").map(PathBuf::from));
    if let Some(sibling) = cargo.and_then(|c| c.parent().map(|d| d.join("rustc"))) {
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("rustc")
}

/// Compiles the one-file Rust program `tests/workloads/<source>` with [`rustc_path`] and
/// `flags` (edition 2021) into `dir/<out_name>`.
pub fn build_rust(source: &str, dir: &Path, out_name: &str, flags: &[&str]) -> PathBuf {
    let src = workloads_dir().join(source);
    let out = dir.join(out_name);
    let rustc = rustc_path();
    let output = Command::new(&rustc)
        .args(["--edition", "2021"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rustc.display()));
    assert!(
        output.status.success(),
        "{} {flags:?} {} failed ({}):\n{}",
        rustc.display(),
        src.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A libc symbol without glibc's decorations: `___pthread_mutex_lock`,
/// `__GI___pthread_mutex_lock` and `pthread_mutex_lock` are all `pthread_mutex_lock`;
/// `__GI___clone3` is `clone3`; `__libc_start_main_impl` is `libc_start_main_impl`.
pub fn base_name(name: &str) -> &str {
    let mut n = name;
    loop {
        let before = n;
        n = n.trim_start_matches('_');
        if let Some(rest) = n.strip_prefix("GI_") {
            n = rest;
        }
        if n == before {
            return n;
        }
    }
}
