//! The CPU collector: `bpf/cpu.bpf.c` on one software CPU-clock perf event per CPU.
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use super::{CollectError, ProcEvent};
use crate::bpf::counters::Counters;
use crate::bpf::cpu::types::{
    proc_event, proc_event_kind, sample_key, sample_value, stack_trace, thread_names,
};
use crate::bpf::cpu::{CpuSkel, CpuSkelBuilder};
use crate::bpf::{from_bytes, libbpf_log};
use crate::perf_event;
use crate::raw::{RawProfile, RawSample, ThreadNames};

/// How the CPU collector samples.
#[derive(Debug, Clone)]
pub struct CpuConfig {
    pub frequency: u64,
    /// Target processes; `None` samples every process on the machine.
    pub pids: Option<Vec<u32>>,
    /// Forked children of targets become targets (a launched command's children).
    pub follow_forks: bool,
    /// Entries of the in-kernel aggregation map (distinct thread/stack pairs).
    pub max_entries: u32,
}

pub struct CpuCollector<'obj> {
    skel: CpuSkel<'obj>,
    perf_links: Vec<Link>,
    events: RingBuffer<'static>,
    pending: Rc<RefCell<Vec<ProcEvent>>>,
}

impl<'obj> CpuCollector<'obj> {
    /// Opens, configures and loads the BPF program. Nothing samples yet.
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CpuConfig,
    ) -> Result<Self, CollectError> {
        let load_err = |source: libbpf_rs::Error| CollectError::Load {
            kind: "cpu",
            reason: libbpf_log::failure_reason(&libbpf_log::take()),
            source,
        };
        libbpf_log::take();
        let mut open = CpuSkelBuilder::default().open(storage).map_err(load_err)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
        }
        open.maps
            .counts
            .set_max_entries(cfg.max_entries)
            .map_err(load_err)?;
        // Stacks are fewer than (thread, stack) pairs, but may not exceed them.
        open.maps
            .stacks
            .set_max_entries(cfg.max_entries.saturating_mul(2).max(1024))
            .map_err(load_err)?;
        let skel = open.load().map_err(load_err)?;
        warm_stack_cache(&skel.maps.stacks);

        for pid in cfg.pids.iter().flatten() {
            skel.maps
                .targets
                .update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
                .map_err(|source| CollectError::Map {
                    map: "targets",
                    source,
                })?;
        }

        let pending = Rc::new(RefCell::new(Vec::new()));
        let sink = pending.clone();
        let mut rb = RingBufferBuilder::new();
        rb.add(&skel.maps.events, move |data: &[u8]| {
            if let Some(e) = decode_event(data) {
                sink.borrow_mut().push(e);
            }
            0
        })
        .map_err(|source| CollectError::Map {
            map: "events",
            source,
        })?;
        let events = rb.build().map_err(|source| CollectError::Map {
            map: "events",
            source,
        })?;

        Ok(Self {
            skel,
            perf_links: Vec::new(),
            events,
            pending,
        })
    }

    /// Starts sampling: the process tracepoints first, so no fork or exec is missed, then one
    /// perf event per CPU.
    pub fn attach(&mut self, frequency: u64) -> Result<(), CollectError> {
        let progs = &self.skel.progs;
        self.skel.links.on_fork =
            Some(
                progs
                    .on_fork
                    .attach()
                    .map_err(|source| CollectError::Attach {
                        what: "tp_btf/sched_process_fork",
                        source,
                    })?,
            );
        self.skel.links.on_exec =
            Some(
                progs
                    .on_exec
                    .attach()
                    .map_err(|source| CollectError::Attach {
                        what: "tp_btf/sched_process_exec",
                        source,
                    })?,
            );
        let fds = perf_event::open_cpu_clock(&perf_event::online_cpus()?, frequency)?;
        for fd in fds {
            let link = progs
                .on_cpu_sample
                .attach_perf_event(fd.as_raw_fd())
                .map_err(|source| CollectError::Attach {
                    what: "the perf_event program",
                    source,
                })?;
            // The link owns the perf event now: destroying it closes the descriptor.
            let _ = fd.into_raw_fd();
            self.perf_links.push(link);
        }
        Ok(())
    }

    /// Waits up to `timeout` for process events and returns them.
    pub fn poll(&self, timeout: Duration) -> Vec<ProcEvent> {
        // An interrupted poll (a signal) is not an error: the caller checks why.
        let _ = self.events.poll(timeout);
        std::mem::take(&mut *self.pending.borrow_mut())
    }

    /// Stops sampling. Events already queued can still be polled.
    pub fn stop(&mut self) {
        self.perf_links.clear();
        self.skel.links.on_fork = None;
        self.skel.links.on_exec = None;
    }

    /// Failure counters so far.
    pub fn counters(&self) -> Result<Counters, CollectError> {
        Counters::read(&self.skel.maps.counters).map_err(|source| CollectError::Map {
            map: "counters",
            source,
        })
    }

    /// Reads everything aggregated in the kernel.
    pub fn drain(&self) -> Result<RawProfile, CollectError> {
        let maps = &self.skel.maps;
        let map_err = |map| move |source| CollectError::Map { map, source };
        let mut stacks: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut stack = |id: u64| -> Result<Vec<u64>, CollectError> {
            if id == 0 {
                return Ok(Vec::new());
            }
            if let Some(s) = stacks.get(&id) {
                return Ok(s.clone());
            }
            let frames = match maps
                .stacks
                .lookup(&id.to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("stacks"))?
            {
                Some(bytes) => {
                    let st: stack_trace = from_bytes(&bytes);
                    st.ips[..(st.nr as usize).min(st.ips.len())].to_vec()
                }
                None => Vec::new(),
            };
            stacks.insert(id, frames.clone());
            Ok(frames)
        };

        let mut samples = Vec::new();
        for key_bytes in maps.counts.keys() {
            let Some(val) = maps
                .counts
                .lookup(&key_bytes, MapFlags::ANY)
                .map_err(map_err("counts"))?
            else {
                continue;
            };
            let key: sample_key = from_bytes(&key_bytes);
            let val: sample_value = from_bytes(&val);
            samples.push(RawSample {
                pid: key.pid,
                tid: key.tid,
                user: stack(key.user_stack)?,
                kernel: stack(key.kernel_stack)?,
                values: vec![val.count as i64, val.period_ns as i64],
            });
        }

        let mut threads = HashMap::new();
        for tid_bytes in maps.threads.keys() {
            if let Some(v) = maps
                .threads
                .lookup(&tid_bytes, MapFlags::ANY)
                .map_err(map_err("threads"))?
            {
                let tid: u32 = from_bytes(&tid_bytes);
                let t: thread_names = from_bytes(&v);
                threads.insert(
                    tid,
                    ThreadNames {
                        pid: t.pid,
                        comm: c_string(&t.comm),
                        proc_comm: c_string(&t.proc_comm),
                    },
                );
            }
        }
        Ok(RawProfile {
            samples,
            threads,
            counters: self.counters()?,
        })
    }
}

/// New entries of the on-demand `stacks` map come from a per-CPU cache that starts with a
/// single element and is refilled only after the handler returns, so the first sample on a
/// CPU that stores both a user and a kernel stack would drop. Inserting and deleting a few
/// entries from each CPU beforehand fills every cache.
fn warm_stack_cache(stacks: &dyn MapCore) {
    const WARM_ENTRIES: u64 = 4;
    let Ok(cpus) = perf_event::online_cpus() else {
        return;
    };
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity read or fill it.
    let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut saved) } != 0 {
        return;
    }
    let empty = vec![0u8; stacks.value_size() as usize];
    for cpu in cpus {
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu as usize, &mut one) };
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            continue;
        }
        // Keys near u64::MAX: real stack ids are hashes, and these are deleted at once.
        for i in 0..WARM_ENTRIES {
            let _ = stacks.update(&(u64::MAX - i).to_ne_bytes(), &empty, MapFlags::ANY);
        }
        for i in 0..WARM_ENTRIES {
            let _ = stacks.delete(&(u64::MAX - i).to_ne_bytes());
        }
    }
    // SAFETY: restoring the mask read above.
    unsafe { libc::sched_setaffinity(0, size, &saved) };
}

fn decode_event(data: &[u8]) -> Option<ProcEvent> {
    if data.len() < std::mem::size_of::<proc_event>() {
        return None;
    }
    let e: proc_event = from_bytes(data);
    match proc_event_kind(e.kind) {
        proc_event_kind::PROC_EVENT_FIRST_SAMPLE => Some(ProcEvent::FirstSample(e.pid)),
        proc_event_kind::PROC_EVENT_EXEC => Some(ProcEvent::Exec(e.pid)),
        proc_event_kind::PROC_EVENT_FORK => Some(ProcEvent::Fork { child: e.pid }),
        _ => None,
    }
}

fn c_string(raw: &[i8]) -> String {
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
    use crate::bpf::as_bytes;

    #[test]
    fn decodes_process_events() {
        let e = proc_event {
            kind: proc_event_kind::PROC_EVENT_EXEC.0,
            pid: 42,
            parent_pid: 0,
            _pad: 0,
        };
        assert_eq!(decode_event(as_bytes(&e)), Some(ProcEvent::Exec(42)));
        assert_eq!(decode_event(&[0u8; 3]), None);
    }

    #[test]
    fn c_strings_stop_at_nul() {
        let mut raw = [0i8; 16];
        for (d, s) in raw.iter_mut().zip(b"worker-1") {
            *d = *s as i8;
        }
        assert_eq!(c_string(&raw), "worker-1");
    }
}
