//! Which tasks a recording covers: a set of processes, the whole machine, or a command that
//! rprof-bpf launches and holds until sampling is attached.
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum TargetSpec {
    Pids(Vec<u32>),
    All,
    Command(Vec<OsString>),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with pid {0}")]
    NoSuchPid(u32),
    #[error("cannot watch pid {pid}: {source}")]
    Watch { pid: u32, source: io::Error },
    #[error("command not found: {0}")]
    CommandNotFound(String),
    #[error("cannot run {cmd}: {source}")]
    Launch { cmd: String, source: io::Error },
}

/// How the launched command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The exit code a shell would report.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// A process we watch for exit through a pidfd (a zombie counts as exited).
#[derive(Debug)]
struct Watched {
    pid: u32,
    pidfd: OwnedFd,
    exited: bool,
}

impl Watched {
    fn open(pid: u32) -> Result<Self, TargetError> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ESRCH) => TargetError::NoSuchPid(pid),
                _ => TargetError::Watch { pid, source: err },
            });
        }
        // SAFETY: a fresh fd owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self {
            pid,
            pidfd,
            exited: false,
        })
    }

    fn has_exited(&mut self) -> bool {
        if !self.exited {
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
            self.exited = n > 0 && pfd.revents != 0;
        }
        self.exited
    }
}

/// A launched command, stopped before exec until `release`.
#[derive(Debug)]
pub struct Launched {
    pid: u32,
    program: PathBuf,
    go: Option<OwnedFd>,
    exec_error: OwnedFd,
    status: Option<ExitStatus>,
    display: String,
}

/// The resolved target of a recording.
#[derive(Debug)]
pub struct Target {
    watched: Vec<Watched>,
    launched: Option<Launched>,
    all: bool,
}

impl Target {
    /// Checks pids or starts the command (held before exec). Fails before anything is
    /// sampled.
    pub fn prepare(spec: &TargetSpec) -> Result<Self, TargetError> {
        match spec {
            TargetSpec::Pids(pids) => Ok(Self {
                watched: process_ids(pids)
                    .into_iter()
                    .map(Watched::open)
                    .collect::<Result<_, _>>()?,
                launched: None,
                all: false,
            }),
            TargetSpec::All => Ok(Self {
                watched: Vec::new(),
                launched: None,
                all: true,
            }),
            TargetSpec::Command(argv) => Ok(Self {
                watched: Vec::new(),
                launched: Some(Launched::spawn_held(argv)?),
                all: false,
            }),
        }
    }

    /// Whether every task on the machine is a target.
    pub fn is_all(&self) -> bool {
        self.all
    }

    pub fn is_launched(&self) -> bool {
        self.launched.is_some()
    }

    /// The process ids given (or launched), in order; empty for the whole machine.
    pub fn pids(&self) -> Vec<u32> {
        match &self.launched {
            Some(l) => vec![l.pid],
            None => self.watched.iter().map(|w| w.pid).collect(),
        }
    }

    /// The launched command's program, resolved on PATH.
    pub fn program(&self) -> Option<&Path> {
        self.launched.as_ref().map(|l| l.program.as_path())
    }

    /// Lets the launched command exec; call once sampling is attached.
    pub fn release(&mut self) -> Result<(), TargetError> {
        match &mut self.launched {
            Some(l) => l.release(),
            None => Ok(()),
        }
    }

    /// Whether the recording has nothing left to watch.
    pub fn all_exited(&mut self) -> bool {
        if let Some(l) = &mut self.launched {
            return l.poll_exit().is_some();
        }
        !self.all && self.watched.iter_mut().all(Watched::has_exited)
    }

    /// Targets still running (the whole machine counts as one).
    pub fn alive(&mut self) -> usize {
        if self.all {
            return 1;
        }
        if let Some(l) = &mut self.launched {
            return usize::from(l.poll_exit().is_none());
        }
        self.watched
            .iter_mut()
            .map(|w| usize::from(!w.has_exited()))
            .sum()
    }

    /// Ends the launched command if it still runs (as perf does when interrupted), and
    /// returns how it ended. `None` when nothing was launched.
    pub fn finish(&mut self) -> Option<ExitStatus> {
        let l = self.launched.as_mut()?;
        if l.go.is_some() {
            // Never released: it must not exec now.
            l.go = None;
        }
        if l.poll_exit().is_none() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(l.pid as libc::pid_t, libc::SIGTERM) };
        }
        Some(l.wait())
    }
}

impl Launched {
    fn spawn_held(argv: &[OsString]) -> Result<Self, TargetError> {
        let display = argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let program = argv
            .first()
            .ok_or_else(|| TargetError::CommandNotFound(String::new()))?;
        let path = find_program(Path::new(program))
            .ok_or_else(|| TargetError::CommandNotFound(program.to_string_lossy().into()))?;
        let launch_err = |source| TargetError::Launch {
            cmd: display.clone(),
            source,
        };
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| launch_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let c_args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| launch_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        c_argv.push(std::ptr::null());

        let (go_read, go_write) = pipe().map_err(launch_err)?;
        let (err_read, err_write) = pipe().map_err(launch_err)?;

        // SAFETY: fork in a process that has not started threads of its own yet (the
        // recording has not begun); the child only calls async-signal-safe functions.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(launch_err(io::Error::last_os_error()));
        }
        if pid == 0 {
            // Child: wait for the go byte, then exec; report exec failure through the
            // close-on-exec pipe. Only raw syscalls here.
            unsafe {
                let mut byte = 0u8;
                let n = libc::read(go_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                if n != 1 {
                    libc::_exit(127);
                }
                libc::execv(c_path.as_ptr(), c_argv.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(
                    err_write.as_raw_fd(),
                    (&errno as *const i32).cast(),
                    std::mem::size_of::<i32>(),
                );
                libc::_exit(127);
            }
        }
        drop(go_read);
        drop(err_write);
        Ok(Self {
            pid: pid as u32,
            program: path,
            go: Some(go_write),
            exec_error: err_read,
            status: None,
            display,
        })
    }

    fn release(&mut self) -> Result<(), TargetError> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer to our pipe.
        let n = unsafe { libc::write(go.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        if n != 1 {
            return Err(TargetError::Launch {
                cmd: self.display.clone(),
                source: io::Error::last_os_error(),
            });
        }
        drop(go);
        // The error pipe closes on a successful exec, or carries exec's errno.
        let mut errno = 0i32;
        // SAFETY: reading at most 4 bytes into an i32.
        let n = unsafe {
            libc::read(
                self.exec_error.as_raw_fd(),
                (&mut errno as *mut i32).cast(),
                std::mem::size_of::<i32>(),
            )
        };
        if n == std::mem::size_of::<i32>() as isize {
            self.wait();
            return Err(TargetError::Launch {
                cmd: self.display.clone(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        Ok(())
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = waitpid(self.pid, libc::WNOHANG);
        }
        self.status
    }

    fn wait(&mut self) -> ExitStatus {
        while self.status.is_none() {
            self.status = waitpid(self.pid, 0);
        }
        self.status.unwrap_or(ExitStatus::Code(0))
    }
}

/// The processes behind the ids given: a thread id stands for its whole process, since
/// targets are filtered by process in BPF. Order is kept and repeats are dropped.
fn process_ids(ids: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    for &id in ids {
        let tgid = std::fs::read_to_string(format!("/proc/{id}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Tgid:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(id);
        if !out.contains(&tgid) {
            out.push(tgid);
        }
    }
    out
}

fn waitpid(pid: u32, flags: i32) -> Option<ExitStatus> {
    let mut status = 0;
    // SAFETY: waiting on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
    if r <= 0 {
        return if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            Some(ExitStatus::Code(0))
        } else {
            None
        };
    }
    if libc::WIFEXITED(status) {
        Some(ExitStatus::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitStatus::Signal(libc::WTERMSIG(status)))
    } else {
        None
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Resolves a program the way execvp would, so "not found" is reported before sampling.
fn find_program(program: &Path) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        let c = CString::new(p.as_os_str().as_bytes()).ok()?;
        // SAFETY: access() reads a valid C string.
        (p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
            .then(|| p.to_path_buf())
    };
    if program.as_os_str().as_bytes().contains(&b'/') {
        return is_exec(program);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).find_map(|dir| is_exec(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_rejects_missing_ones() {
        assert!(find_program(Path::new("sh")).is_some());
        assert!(find_program(Path::new("/definitely/not/here")).is_none());
        assert!(find_program(Path::new("no-such-program-rprof")).is_none());
    }

    #[test]
    fn launched_command_is_held_until_released_and_reports_its_code() {
        let argv = vec!["sh".into(), "-c".into(), "exit 7".into()];
        let mut t = Target::prepare(&TargetSpec::Command(argv)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.all_exited(), "held before release");
        t.release().unwrap();
        while !t.all_exited() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(t.finish(), Some(ExitStatus::Code(7)));
    }

    #[test]
    fn thread_ids_stand_for_their_process() {
        let me = std::process::id();
        // Test functions run on a thread of their own, not the main thread.
        // SAFETY: gettid has no preconditions.
        let own_tid = unsafe { libc::gettid() } as u32;
        assert_ne!(own_tid, me);
        assert_eq!(process_ids(&[own_tid, me, me]), vec![me]);
    }

    #[test]
    fn missing_pid_is_named() {
        let err = Target::prepare(&TargetSpec::Pids(vec![i32::MAX as u32])).unwrap_err();
        assert_eq!(err.to_string(), format!("no process with pid {}", i32::MAX));
    }
}
