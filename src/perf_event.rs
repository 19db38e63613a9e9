//! Opens one software CPU-clock perf event per online CPU, in frequency mode, for a BPF
//! program to attach to.
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_FREQ: u64 = 1 << 10;

/// `struct perf_event_attr` as of PERF_ATTR_SIZE_VER8 (linux/perf_event.h).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved2: u16,
    aux_sample_size: u32,
    reserved3: u32,
    sig_data: u64,
    config3: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 136);

#[derive(Debug, thiserror::Error)]
pub enum PerfEventError {
    #[error("cannot list online CPUs: {0}")]
    Cpus(io::Error),
    #[error("perf_event_open on CPU {cpu} failed: {source}")]
    Open { cpu: u32, source: io::Error },
}

/// The online CPUs, from `/sys/devices/system/cpu/online` ("0-3,5").
pub fn online_cpus() -> Result<Vec<u32>, PerfEventError> {
    let text =
        fs::read_to_string("/sys/devices/system/cpu/online").map_err(PerfEventError::Cpus)?;
    parse_cpu_list(&text).ok_or_else(|| {
        PerfEventError::Cpus(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected CPU list {text:?}"),
        ))
    })
}

fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Opens a disabled CPU-clock event sampling at `frequency` Hz on each CPU, for all tasks.
/// Attaching a BPF program enables it.
pub fn open_cpu_clock(cpus: &[u32], frequency: u64) -> Result<Vec<OwnedFd>, PerfEventError> {
    cpus.iter()
        .map(|&cpu| {
            let attr = PerfEventAttr {
                kind: PERF_TYPE_SOFTWARE,
                size: std::mem::size_of::<PerfEventAttr>() as u32,
                config: PERF_COUNT_SW_CPU_CLOCK,
                sample_period_or_freq: frequency,
                flags: ATTR_DISABLED | ATTR_FREQ,
                ..Default::default()
            };
            // SAFETY: attr is a valid, fully initialized perf_event_attr of the size it
            // declares; the kernel only reads it.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    &attr as *const PerfEventAttr,
                    -1 as libc::pid_t,
                    cpu as libc::c_int,
                    -1 as libc::c_int,
                    PERF_FLAG_FD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(PerfEventError::Open {
                    cpu,
                    source: io::Error::last_os_error(),
                });
            }
            // SAFETY: the syscall returned a new file descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
