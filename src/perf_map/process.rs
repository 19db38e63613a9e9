//! Which file is a process's map, and whom it must belong to, from `/proc/PID/status`.
use std::path::PathBuf;

use super::PerfMapError;

/// What the map's path and owner check need to know about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    /// The process's pid in its own pid namespace: runtimes name the file after
    /// `getpid()`, so a containerised process writes `/tmp/perf-1.map`.
    pub ns_pid: u32,
    /// The effective uid, as seen from our user namespace: the file is created with the
    /// process's filesystem uid, which is the effective uid unless `setfsuid` was called.
    pub euid: u32,
}

/// Reads the identity of `pid`.
pub(super) fn identity(pid: u32) -> Result<Identity, PerfMapError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = std::fs::read_to_string(&path).map_err(|source| PerfMapError::Io {
        path: path.clone(),
        source,
    })?;
    parse_status(&text, pid).ok_or(PerfMapError::Status { path })
}

/// The map of `pid`, seen through its root directory so that containers work.
pub(super) fn map_path(pid: u32, ns_pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{ns_pid}.map"))
}

/// Parses a status text: `NStgid:` lists the pid from the outermost namespace inwards, so
/// the last number is the innermost; kernels before 4.1 have no such line, and there
/// the pid is `pid`. `Uid:` is real, effective, saved and filesystem uid.
pub(super) fn parse_status(text: &str, pid: u32) -> Option<Identity> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::split_whitespace)
    };
    let ns_pid = match field("NStgid") {
        Some(pids) => pids.last()?.parse().ok()?,
        None => pid,
    };
    let euid = field("Uid")?.nth(1)?.parse().ok()?;
    Some(Identity { ns_pid, euid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_pid_and_effective_uid() {
        let text = "Name:\tnode\nTgid:\t1234\nNgid:\t0\nPid:\t1234\nPPid:\t1\n\
                    Uid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\n\
                    NStgid:\t1234\t7\nNSpid:\t1234\t7\n";
        assert_eq!(
            parse_status(text, 1234),
            Some(Identity {
                ns_pid: 7,
                euid: 1001
            })
        );
        let old_kernel = "Name:\tx\nUid:\t0\t0\t0\t0\n";
        assert_eq!(
            parse_status(old_kernel, 99),
            Some(Identity {
                ns_pid: 99,
                euid: 0
            })
        );
        assert_eq!(parse_status("NStgid:\t5\n", 5), None, "no Uid line");
        assert_eq!(
            parse_status("NStgid:\nUid:\t0\t0\t0\t0\n", 5),
            None,
            "empty NStgid"
        );
    }

    #[test]
    fn our_own_status() {
        let me = std::process::id();
        let id = identity(me).unwrap();
        // The tests run in the namespace they were started in, as seen from itself.
        assert_eq!(id.ns_pid, me);
        assert_eq!(id.euid, unsafe { libc::geteuid() });
        assert_eq!(
            map_path(me, id.ns_pid),
            PathBuf::from(format!("/proc/{me}/root/tmp/perf-{me}.map"))
        );
    }
}
