//! The profile kinds and their fixed pprof columns (PPROF.md's table).
use clap::ValueEnum;

use crate::pprof::SampleType;

/// A kind of profile, as `--type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum ProfileKind {
    /// On-CPU time, sampled on the CPU clock.
    Cpu,
    /// Time threads spend blocked or waiting, by where they blocked.
    #[value(name = "off-cpu")]
    OffCpu,
    /// On-CPU samples plus off-CPU time: where each thread's wall-clock time goes.
    Wall,
    /// Threads and processes created, by the stack that created them.
    #[value(name = "threadcreate")]
    ThreadCreate,
    /// Heap allocations (sampled by bytes) and what is still in use at the end, through
    /// uprobes on the allocator.
    Alloc,
    /// Lock contention: time spent waiting for contended pthread mutexes, rwlocks and
    /// futex locks, by the waiter's stack.
    Mutex,
}

/// A kind's value columns and period type.
#[derive(Debug, Clone, Copy)]
pub struct KindColumns {
    pub sample_types: &'static [SampleType],
    pub period_type: SampleType,
}

const fn st(kind: &'static str, unit: &'static str) -> SampleType {
    SampleType { kind, unit }
}

const CPU: &[SampleType] = &[st("samples", "count"), st("cpu", "nanoseconds")];
const OFF_CPU: &[SampleType] = &[st("switches", "count"), st("off_cpu", "nanoseconds")];
const WALL: &[SampleType] = &[st("samples", "count"), st("wall", "nanoseconds")];
const THREADCREATE: &[SampleType] = &[st("threadcreate", "count")];
const MUTEX: &[SampleType] = &[st("contentions", "count"), st("delay", "nanoseconds")];
const ALLOC: &[SampleType] = &[
    st("alloc_objects", "count"),
    st("alloc_space", "bytes"),
    st("inuse_objects", "count"),
    st("inuse_space", "bytes"),
];

impl ProfileKind {
    /// The name used by `--type` and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::OffCpu => "off-cpu",
            Self::Wall => "wall",
            Self::ThreadCreate => "threadcreate",
            Self::Alloc => "alloc",
            Self::Mutex => "mutex",
        }
    }

    pub fn columns(self) -> KindColumns {
        match self {
            Self::Cpu => KindColumns {
                sample_types: CPU,
                period_type: st("cpu", "nanoseconds"),
            },
            Self::OffCpu => KindColumns {
                sample_types: OFF_CPU,
                period_type: st("off_cpu", "nanoseconds"),
            },
            Self::Wall => KindColumns {
                sample_types: WALL,
                period_type: st("wall", "nanoseconds"),
            },
            Self::ThreadCreate => KindColumns {
                sample_types: THREADCREATE,
                period_type: st("threadcreate", "count"),
            },
            Self::Alloc => KindColumns {
                sample_types: ALLOC,
                period_type: st("space", "bytes"),
            },
            Self::Mutex => KindColumns {
                sample_types: MUTEX,
                period_type: st("contentions", "count"),
            },
        }
    }

    /// The profile's period: one sampling interval for sampled kinds (the clock's, or the
    /// allocation sampling rate in bytes), 1 for event kinds.
    pub fn period(self, frequency: u64, alloc_sample_bytes: u64) -> i64 {
        match self {
            Self::Cpu | Self::Wall => 1_000_000_000 / frequency.max(1) as i64,
            Self::OffCpu | Self::ThreadCreate | Self::Mutex => 1,
            Self::Alloc => alloc_sample_bytes as i64,
        }
    }
}

/// Where each kind's profile goes: `path` itself for one kind; for several, the kind's name
/// goes before a known extension (`prof.pb.gz` → `prof.cpu.pb.gz`, `x.svg` → `x.cpu.svg`),
/// or after the path otherwise.
pub fn output_path(path: &std::path::Path, kind: ProfileKind, several: bool) -> std::path::PathBuf {
    if !several {
        return path.to_path_buf();
    }
    let s = path.as_os_str().to_string_lossy();
    for ext in [".pb.gz", ".svg", ".folded"] {
        if let Some(stem) = s.strip_suffix(ext) {
            return format!("{stem}.{}{ext}", kind.name()).into();
        }
    }
    format!("{s}.{}", kind.name()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn several_kinds_get_one_file_each() {
        let p = Path::new("dir/prof.pb.gz");
        assert_eq!(output_path(p, ProfileKind::Cpu, false), p);
        assert_eq!(
            output_path(p, ProfileKind::OffCpu, true),
            Path::new("dir/prof.off-cpu.pb.gz")
        );
        assert_eq!(
            output_path(Path::new("x.out"), ProfileKind::Wall, true),
            Path::new("x.out.wall")
        );
        assert_eq!(
            output_path(Path::new("f.svg"), ProfileKind::Cpu, true),
            Path::new("f.cpu.svg")
        );
    }

    #[test]
    fn every_kind_has_one_value_per_column() {
        for kind in ProfileKind::value_variants() {
            let c = kind.columns();
            assert!(!c.sample_types.is_empty());
            assert_eq!(
                ProfileKind::from_str(kind.name(), false).unwrap(),
                *kind,
                "--type name round-trips"
            );
        }
        assert_eq!(ProfileKind::Cpu.period(99, 0), 10_101_010);
        assert_eq!(ProfileKind::OffCpu.period(99, 0), 1);
        assert_eq!(ProfileKind::Alloc.period(99, 4096), 4096);
    }
}
