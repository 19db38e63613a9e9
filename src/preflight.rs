//! Checks made before anything is loaded, so that a recording that cannot work says why
//! before sampling starts.
use std::fs;
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreflightError {
    #[error("rprof-bpf needs root, or the capabilities CAP_BPF and CAP_PERFMON (plus CAP_SYS_RESOURCE on kernels before 5.11); try: sudo rprof-bpf ...")]
    Privileges,
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); rprof-bpf needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("frequency must be at least 1 Hz")]
    ZeroFrequency,
    #[error("frequency {asked} Hz is above the kernel's limit of {max} Hz (/proc/sys/kernel/perf_event_max_sample_rate)")]
    FrequencyTooHigh { asked: u64, max: u64 },
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Root, CAP_SYS_ADMIN, or CAP_BPF together with CAP_PERFMON.
pub fn check_privileges() -> Result<(), PreflightError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = effective_caps(&status);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(PreflightError::Privileges)
    }
}

fn effective_caps(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

pub fn check_btf() -> Result<(), PreflightError> {
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        Ok(())
    } else {
        Err(PreflightError::NoBtf)
    }
}

/// The sampling frequency must be within 1..=perf_event_max_sample_rate.
pub fn check_frequency(hz: u64) -> Result<(), PreflightError> {
    let max = fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    frequency_within(hz, max)
}

fn frequency_within(hz: u64, max: Option<u64>) -> Result<(), PreflightError> {
    match max {
        _ if hz == 0 => Err(PreflightError::ZeroFrequency),
        Some(max) if hz > max => Err(PreflightError::FrequencyTooHigh { asked: hz, max }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_effective_capabilities() {
        let status = "Name:\tx\nCapInh:\t0\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), 0x1ff_ffff_ffff);
        assert_eq!(effective_caps("CapEff:\t0000000000000000\n"), 0);
        assert_eq!(effective_caps(""), 0);
    }

    #[test]
    fn frequency_bounds() {
        assert_eq!(
            frequency_within(0, Some(100)),
            Err(PreflightError::ZeroFrequency)
        );
        assert_eq!(frequency_within(99, Some(100)), Ok(()));
        assert_eq!(
            frequency_within(101, Some(100)),
            Err(PreflightError::FrequencyTooHigh {
                asked: 101,
                max: 100
            })
        );
    }
}
