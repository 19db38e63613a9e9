//! Collectors: one per profile kind. Each owns its BPF skeleton, attaches it, reports
//! process events while recording, and drains its maps into a [`RawProfile`].
//!
//! [`RawProfile`]: crate::raw::RawProfile
pub mod cpu;

use crate::perf_event::PerfEventError;

/// A process event from BPF: user space snapshots `/proc/PID` in response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// The process produced its first sample.
    FirstSample(u32),
    /// The process exec'd a new image.
    Exec(u32),
    /// A target forked a child that is now a target too.
    Fork { child: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot load the {kind} BPF program: {}", reason.clone().unwrap_or_else(|| source.to_string()))]
    Load {
        kind: &'static str,
        source: libbpf_rs::Error,
        reason: Option<String>,
    },
    #[error("cannot attach {what}: {source}")]
    Attach {
        what: &'static str,
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    PerfEvent(#[from] PerfEventError),
    #[error("reading BPF map {map}: {source}")]
    Map {
        map: &'static str,
        source: libbpf_rs::Error,
    },
}
