//! Collectors: one per profile kind. Each owns its BPF skeleton(s), attaches them, and
//! drains their maps into a [`RawProfile`]; what they share lives in [`bpf_maps`] and
//! `bpf/common.bpf.h`.
pub mod alloc;
pub mod bpf_maps;
pub mod cpu;
pub mod events;
pub mod lock;
pub mod offcpu;
pub mod stack_samples;
pub mod task_iter;
pub mod threads;
pub mod wall;

use libbpf_rs::MapCore;

use crate::bpf::counters::Counters;
use crate::kind::ProfileKind;
use crate::perf_event::PerfEventError;
use crate::raw::RawProfile;

/// A process event from BPF: user space snapshots `/proc/PID` in response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// The process produced its first event.
    FirstSample(u32),
    /// The process exec'd a new image.
    Exec(u32),
    /// A target forked a child that is now a target too.
    Fork { child: u32 },
}

/// Options every collector takes; each uses the ones that apply to it.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub frequency: u64,
    /// Target processes; `None` records every process on the machine.
    pub pids: Option<Vec<u32>>,
    /// Forked children of targets become targets (a launched command's children).
    pub follow_forks: bool,
    /// Entries of the in-kernel aggregation map (distinct thread/stack pairs).
    pub max_entries: u32,
    /// off-CPU: blocks shorter than this are ignored.
    pub min_block_ns: u64,
    /// off-CPU and mutex: blocks (lock waits) shorter than this are sampled in proportion to
    /// their length and weighted back; 0 records every one.
    pub block_sample_ns: u64,
    /// off-CPU: which states to record (`enum block_state_filter` bits).
    pub state_filter: u32,
    /// alloc: the mean bytes between sampled allocations.
    pub alloc_sample_bytes: u64,
    /// Bytes of user stack to copy per sample, for unwinding with CFI in user space; 0 walks
    /// frame pointers in BPF instead (mutex always copies: 0 means the default size there).
    pub stack_copy_bytes: u32,
    /// Bytes of unwind tables kept for stacks unwound in user space.
    pub unwind_memory: usize,
}

/// A loaded collector of one profile kind.
pub trait Collector {
    fn kind(&self) -> ProfileKind;
    /// Starts recording.
    fn attach(&mut self) -> Result<(), CollectError>;
    /// The ring buffers carrying process events.
    fn events_maps(&self) -> Vec<&dyn MapCore>;
    /// Takes in what arrived through ring buffers, with what is known of the processes (kinds
    /// whose samples user space finishes, such as unwinding); called while recording and
    /// once after [`Collector::stop`].
    fn poll(&mut self, _procs: &mut crate::procs::ProcessTable) {}
    /// Stops recording; what was collected stays readable.
    fn stop(&mut self);
    /// Reads what was collected.
    fn drain(&self) -> Result<RawProfile, CollectError>;
    /// The failure counters so far (their `samples` is the progress to show).
    fn counters(&self) -> Result<Counters, CollectError>;
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
    #[error(transparent)]
    NoAllocator(#[from] crate::allocator::NoAllocator),
    #[error("pid {0} is beyond the largest pid a kernel can have")]
    PidBeyondLimit(u32),
    #[error("reading BPF map {map}: {source}")]
    Map {
        map: &'static str,
        source: libbpf_rs::Error,
    },
}

/// Maps a libbpf error during open or load to a [`CollectError::Load`] that quotes libbpf.
pub(crate) fn load_error(kind: &'static str) -> impl Fn(libbpf_rs::Error) -> CollectError {
    move |source| CollectError::Load {
        kind,
        reason: crate::bpf::libbpf_log::failure_reason(&crate::bpf::libbpf_log::take()),
        source,
    }
}

/// Maps an attach failure to a [`CollectError::Attach`] naming what failed.
pub(crate) fn attach_error(what: &'static str) -> impl Fn(libbpf_rs::Error) -> CollectError {
    move |source| CollectError::Attach { what, source }
}
