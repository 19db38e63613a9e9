//! The maps every BPF object shares (`bpf/common.bpf.h`): seeding the target set, sizing and
//! warming the aggregation maps, and reading them back into a [`RawProfile`]. Each skeleton
//! generates its own copy of the shared types; the layouts are the same C structs, so one
//! reader serves every collector.
use std::collections::{BTreeMap, HashMap};

use libbpf_rs::{MapCore, MapFlags, OpenMapMut};

use super::CollectError;
use crate::bpf::counters::Counters;
use crate::bpf::from_bytes;
use crate::bpf::shared::{rprof_limit, sample_key, sample_value, stack_trace, thread_names};
use crate::perf_event;
use crate::raw::{RawProfile, RawSample, ThreadNames};

/// The shared maps of one loaded BPF object.
pub struct CommonMaps<'a> {
    pub targets: &'a dyn MapCore,
    pub counts: &'a dyn MapCore,
    pub stacks: &'a dyn MapCore,
    pub threads: &'a dyn MapCore,
    pub counters: &'a dyn MapCore,
}

/// Borrows the shared maps of a loaded skeleton.
macro_rules! common_maps {
    ($skel:expr) => {
        $crate::collect::bpf_maps::CommonMaps {
            targets: &$skel.maps.targets,
            counts: &$skel.maps.counts,
            stacks: &$skel.maps.stacks,
            threads: &$skel.maps.threads,
            counters: &$skel.maps.counters,
        }
    };
}
pub(crate) use common_maps;

/// Attaches the fork and exec tracepoints every object has (`bpf/common.bpf.h`), first, so
/// that no fork or exec of a target is missed once its events start.
macro_rules! attach_process_tracking {
    ($skel:expr) => {
        $skel.links.on_fork = Some(
            $skel
                .progs
                .on_fork
                .attach()
                .map_err($crate::collect::attach_error("tp_btf/sched_process_fork"))?,
        );
        $skel.links.on_exec = Some(
            $skel
                .progs
                .on_exec
                .attach()
                .map_err($crate::collect::attach_error("tp_btf/sched_process_exec"))?,
        );
    };
}
pub(crate) use attach_process_tracking;

/// Detaches what [`attach_process_tracking`] attached.
macro_rules! detach_process_tracking {
    ($skel:expr) => {
        $skel.links.on_fork = None;
        $skel.links.on_exec = None;
    };
}
pub(crate) use detach_process_tracking;

/// Sizes the aggregation maps before load: `max_entries` (thread, stack) pairs, and up to
/// twice as many distinct stacks (a user and a kernel one each).
pub fn size_maps(
    counts: &mut OpenMapMut,
    stacks: &mut OpenMapMut,
    max_entries: u32,
) -> libbpf_rs::Result<()> {
    counts.set_max_entries(max_entries)?;
    stacks.set_max_entries(max_entries.saturating_mul(2).max(1024))
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> CollectError {
    move |source| CollectError::Map { map, source }
}

impl CommonMaps<'_> {
    /// Readies a freshly loaded object: warm stack caches and the target set.
    pub fn prepare(&self, cfg: &super::CollectConfig) -> Result<(), CollectError> {
        self.warm_stack_cache();
        self.add_targets(cfg.pids.as_deref().unwrap_or_default())
    }

    /// Sets the pids' bits in the target bitmap (bit `pid % 64` of word `pid / 64`).
    pub fn add_targets(&self, pids: &[u32]) -> Result<(), CollectError> {
        let mut words: BTreeMap<u32, u64> = BTreeMap::new();
        for &pid in pids {
            if pid >= rprof_limit::RPROF_PID_LIMIT.0 {
                return Err(CollectError::PidBeyondLimit(pid));
            }
            *words.entry(pid / 64).or_default() |= 1u64 << (pid % 64);
        }
        for (word, bits) in words {
            let key = word.to_ne_bytes();
            let old = self
                .targets
                .lookup(&key, MapFlags::ANY)
                .map_err(map_err("targets"))?
                .and_then(|v| v.try_into().ok().map(u64::from_ne_bytes))
                .unwrap_or(0);
            self.targets
                .update(&key, &(old | bits).to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("targets"))?;
        }
        Ok(())
    }

    /// New entries of the on-demand `stacks` map come from a per-CPU cache that starts with
    /// a single element and is refilled only after the BPF program returns, so the first
    /// event on a CPU that stores both a user and a kernel stack would be dropped. Inserting
    /// and deleting a few entries from each CPU beforehand fills every cache.
    pub fn warm_stack_cache(&self) {
        const WARM_ENTRIES: u64 = 4;
        let Ok(cpus) = perf_event::online_cpus() else {
            return;
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is plain data that sched_getaffinity fills.
        let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        if unsafe { libc::sched_getaffinity(0, size, &mut saved) } != 0 {
            return;
        }
        let empty = vec![0u8; self.stacks.value_size() as usize];
        for cpu in cpus {
            // SAFETY: a zeroed cpu_set_t with one CPU set, read by sched_setaffinity.
            let pinned = unsafe {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu as usize, &mut one);
                libc::sched_setaffinity(0, size, &one) == 0
            };
            if !pinned {
                continue;
            }
            // Keys near u64::MAX: real stack ids are hashes, and these are deleted at once.
            for i in 0..WARM_ENTRIES {
                let key = (u64::MAX - i).to_ne_bytes();
                let _ = self.stacks.update(&key, &empty, MapFlags::ANY);
            }
            for i in 0..WARM_ENTRIES {
                let _ = self.stacks.delete(&(u64::MAX - i).to_ne_bytes());
            }
        }
        // SAFETY: restoring the mask read above.
        unsafe { libc::sched_setaffinity(0, size, &saved) };
    }

    pub fn counters(&self) -> Result<Counters, CollectError> {
        Counters::read(self.counters).map_err(map_err("counters"))
    }

    /// Every aggregated entry.
    pub fn entries(&self) -> Result<Vec<(sample_key, sample_value)>, CollectError> {
        let mut out = Vec::new();
        for key in self.counts.keys() {
            if let Some(val) = self
                .counts
                .lookup(&key, MapFlags::ANY)
                .map_err(map_err("counts"))?
            {
                out.push((from_bytes(&key), from_bytes(&val)));
            }
        }
        Ok(out)
    }

    /// Thread names captured in BPF, by tid.
    pub fn threads(&self) -> Result<HashMap<u32, ThreadNames>, CollectError> {
        let mut threads = HashMap::new();
        for key in self.threads.keys() {
            if let Some(v) = self
                .threads
                .lookup(&key, MapFlags::ANY)
                .map_err(map_err("threads"))?
            {
                let t: thread_names = from_bytes(&v);
                threads.insert(
                    from_bytes::<u32>(&key),
                    ThreadNames {
                        pid: t.pid,
                        comm: c_string(&t.comm),
                        proc_comm: c_string(&t.proc_comm),
                    },
                );
            }
        }
        Ok(threads)
    }

    /// A sample for an aggregation key, with its stacks looked up (through `cache`).
    pub fn sample(
        &self,
        cache: &mut StackCache,
        key: &sample_key,
        values: Vec<i64>,
        from_tracepoint: bool,
    ) -> Result<RawSample, CollectError> {
        Ok(RawSample {
            pid: key.pid,
            tid: key.tid,
            user: cache.get(self.stacks, key.user_stack)?,
            kernel: cache.get(self.stacks, key.kernel_stack)?,
            extra: key.extra,
            values,
            from_tracepoint,
        })
    }

    /// Reads everything with values `[count, total_ns]` (or just `[count]`).
    pub fn drain(&self, with_ns: bool, from_tracepoint: bool) -> Result<RawProfile, CollectError> {
        let mut cache = StackCache::default();
        let samples = self
            .entries()?
            .iter()
            .map(|(k, v)| {
                let mut values = vec![v.count as i64];
                if with_ns {
                    values.push(v.total_ns as i64);
                }
                self.sample(&mut cache, k, values, from_tracepoint)
            })
            .collect::<Result<_, _>>()?;
        Ok(RawProfile {
            samples,
            threads: self.threads()?,
            counters: self.counters()?,
            ..RawProfile::default()
        })
    }
}

/// Stacks by id, each read from the map once.
#[derive(Default)]
pub struct StackCache {
    stacks: HashMap<u64, Vec<u64>>,
}

impl StackCache {
    /// Adds a stack that is not in any map (unwound in user space).
    pub fn insert(&mut self, id: u64, frames: Vec<u64>) {
        self.stacks.insert(id, frames);
    }

    pub fn get(&mut self, map: &dyn MapCore, id: u64) -> Result<Vec<u64>, CollectError> {
        if id == 0 {
            return Ok(Vec::new());
        }
        if let Some(s) = self.stacks.get(&id) {
            return Ok(s.clone());
        }
        let frames = match map
            .lookup(&id.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("stacks"))?
        {
            Some(bytes) => {
                let st: stack_trace = from_bytes(&bytes);
                st.ips[..(st.nr as usize).min(st.ips.len())].to_vec()
            }
            None => Vec::new(),
        };
        self.stacks.insert(id, frames.clone());
        Ok(frames)
    }
}

pub fn c_string(raw: &[i8]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_nul() {
        let mut raw = [0i8; 16];
        for (d, s) in raw.iter_mut().zip(b"worker-1") {
            *d = *s as i8;
        }
        assert_eq!(c_string(&raw), "worker-1");
    }
}
