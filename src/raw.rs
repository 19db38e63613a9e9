//! What a collector hands over: samples with raw addresses, thread names captured in BPF,
//! and the failure counters. No symbols yet.
use std::collections::HashMap;

use crate::bpf::counters::Counters;
use crate::unwind::end::StackEnds;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSample {
    pub pid: u32,
    pub tid: u32,
    /// User frames, innermost first; [0] is the sampled IP, the rest are return addresses
    /// (see `unwind::replay` for exact ones), and the last may be a marker of why the stack
    /// ended early (`unwind::end`).
    pub user: Vec<u64>,
    /// Kernel frames, innermost first, in the same convention.
    pub kernel: Vec<u64>,
    /// Kind-specific detail from the BPF key: the task state for off-CPU, thread or process
    /// for threadcreate, 0 otherwise.
    pub extra: u32,
    /// One value per sample type of the profile kind.
    pub values: Vec<i64>,
    /// The kernel stack was taken inside a tracepoint, so its innermost frames are the
    /// tracing machinery (to be trimmed), not what the thread was doing.
    pub from_tracepoint: bool,
}

/// Names of a thread as BPF saw them while it ran.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadNames {
    pub pid: u32,
    pub comm: String,
    pub proc_comm: String,
}

#[derive(Debug, Default)]
pub struct RawProfile {
    pub samples: Vec<RawSample>,
    pub threads: HashMap<u32, ThreadNames>,
    pub counters: Counters,
    /// Lines for the profile's comments about how it was collected.
    pub notes: Vec<String>,
    /// How the stacks unwound in user space ended, by samples.
    pub stack_ends: StackEnds,
}

impl RawProfile {
    /// Distinct process ids among the samples, in first-seen order.
    pub fn pids(&self) -> Vec<u32> {
        let mut seen = std::collections::HashSet::new();
        self.samples
            .iter()
            .map(|s| s.pid)
            .filter(|p| seen.insert(*p))
            .collect()
    }
}
