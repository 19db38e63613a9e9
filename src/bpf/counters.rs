//! The named per-CPU failure counters every BPF program keeps (`enum rprof_counter` in
//! `bpf/rprof.h`), summed over CPUs.
use libbpf_rs::{MapCore, MapFlags};

use super::shared::rprof_counter as C;

/// Counter names in `enum rprof_counter` order, as printed to users and written into the
/// profile's comments.
const NAMES: [(C, &str); C::RPROF_CNT_MAX.0 as usize] = [
    (C::RPROF_CNT_SAMPLES, "samples"),
    (C::RPROF_CNT_COUNTS_MAP_FULL, "counts_map_full"),
    (C::RPROF_CNT_STACK_MAP_FULL, "stack_map_full"),
    (C::RPROF_CNT_STACK_COLLISION, "stack_collision"),
    (C::RPROF_CNT_USER_STACK_ERROR, "user_stack_error"),
    (C::RPROF_CNT_KERNEL_STACK_ERROR, "kernel_stack_error"),
    (C::RPROF_CNT_USER_STACK_TRUNCATED, "user_stack_truncated"),
    (
        C::RPROF_CNT_KERNEL_STACK_TRUNCATED,
        "kernel_stack_truncated",
    ),
    (C::RPROF_CNT_THREADS_MAP_FULL, "threads_map_full"),
    (C::RPROF_CNT_EVENTS_LOST, "events_lost"),
    (C::RPROF_CNT_TARGETS_MAP_FULL, "targets_map_full"),
    (C::RPROF_CNT_SCRATCH_MISSING, "scratch_missing"),
    (C::RPROF_CNT_STACK_ALLOC_FAILED, "stack_alloc_failed"),
    (C::RPROF_CNT_START_MAP_FULL, "start_map_full"),
    (C::RPROF_CNT_BLOCKED_STACK_ERROR, "blocked_stack_error"),
    (C::RPROF_CNT_LIVE_MAP_FULL, "live_map_full"),
    (C::RPROF_CNT_PENDING_MAP_FULL, "pending_map_full"),
    (C::RPROF_CNT_DEFER_FAILED, "deferred_stack_failed"),
    (C::RPROF_CNT_STACK_SAMPLES_LOST, "stack_samples_lost"),
    (C::RPROF_CNT_STACK_COPY_FAILED, "stack_copy_failed"),
];

/// Counter values, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    values: [u64; NAMES.len()],
}

impl Counters {
    /// Reads the `counters` per-CPU array of a loaded program.
    pub fn read(map: &dyn MapCore) -> libbpf_rs::Result<Self> {
        let mut counters = Self::default();
        for (i, slot) in counters.values.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            if let Some(per_cpu) = map.lookup_percpu(&key, MapFlags::ANY)? {
                *slot = per_cpu.iter().map(|v| super::from_bytes::<u64>(v)).sum();
            }
        }
        Ok(counters)
    }

    /// Adds another object's counters (a kind built from several BPF objects).
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.values.iter_mut().zip(other.values) {
            *a += b;
        }
    }

    pub fn get(&self, counter: C) -> u64 {
        self.values[counter.0 as usize]
    }

    /// Samples that reached a target, before drops.
    pub fn samples(&self) -> u64 {
        self.get(C::RPROF_CNT_SAMPLES)
    }

    /// Every drop or failure counter that is not zero, by name.
    pub fn nonzero_failures(&self) -> Vec<(&'static str, u64)> {
        NAMES
            .iter()
            .filter(|(c, _)| *c != C::RPROF_CNT_SAMPLES)
            .map(|&(c, name)| (name, self.get(c)))
            .filter(|&(_, v)| v != 0)
            .collect()
    }

    /// Samples lost for good (not merely degraded): they are in no profile value.
    pub fn dropped_samples(&self) -> u64 {
        [
            C::RPROF_CNT_COUNTS_MAP_FULL,
            C::RPROF_CNT_STACK_MAP_FULL,
            C::RPROF_CNT_STACK_COLLISION,
            C::RPROF_CNT_SCRATCH_MISSING,
            C::RPROF_CNT_STACK_ALLOC_FAILED,
            C::RPROF_CNT_START_MAP_FULL,
        ]
        .iter()
        .map(|&c| self.get(c))
        .sum()
    }

    /// `name=value` for every counter, for the profile's comments.
    pub fn describe_all(&self) -> String {
        NAMES
            .iter()
            .map(|&(c, name)| format!("{name}={}", self.get(c)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[cfg(test)]
    fn with(counter: C, value: u64) -> Self {
        let mut c = Self::default();
        c.values[counter.0 as usize] = value;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_c_enum_order() {
        for (i, (c, _)) in NAMES.iter().enumerate() {
            assert_eq!(c.0 as usize, i, "NAMES[{i}] is out of order");
        }
    }

    #[test]
    fn failures_exclude_the_sample_count() {
        let c = Counters::with(C::RPROF_CNT_SAMPLES, 10);
        assert!(c.nonzero_failures().is_empty());
        let c = Counters::with(C::RPROF_CNT_STACK_COLLISION, 2);
        assert_eq!(c.nonzero_failures(), vec![("stack_collision", 2)]);
        assert_eq!(c.dropped_samples(), 2);
    }
}
