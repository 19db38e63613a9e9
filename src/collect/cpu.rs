//! The CPU collector: `bpf/cpu.bpf.c` on one software CPU-clock perf event per CPU.
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, IntoRawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, OpenObject};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::stack_samples::{ring_bytes, StackSamples};
use super::{attach_error, load_error, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::cpu::{CpuSkel, CpuSkelBuilder};
use crate::bpf::libbpf_log;
use crate::kind::ProfileKind;
use crate::perf_event;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

/// Seconds of samples the ring buffer holds if user space falls behind (it reads every
/// 50 ms).
const RING_SECONDS: f64 = 0.25;

pub struct CpuCollector<'obj> {
    /// With copied stacks; declared first so it is dropped before the object it reads.
    copied: Option<StackSamples>,
    skel: CpuSkel<'obj>,
    frequency: u64,
    perf_links: Vec<Link>,
}

impl<'obj> CpuCollector<'obj> {
    /// Opens, configures and loads the BPF program. Nothing samples yet.
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let err = load_error("cpu");
        libbpf_log::take();
        let mut open = CpuSkelBuilder::default().open(storage).map_err(&err)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.stack_copy_bytes = cfg.stack_copy_bytes;
        }
        let cpus = perf_event::online_cpus()?.len();
        open.maps
            .stack_samples
            .set_max_entries(ring_bytes(
                cfg.frequency as f64 * cpus as f64 * RING_SECONDS,
                cfg.stack_copy_bytes,
            ))
            .map_err(&err)?;
        size_maps(
            &mut open.maps.counts,
            &mut open.maps.stacks,
            cfg.max_entries,
        )
        .map_err(&err)?;
        let skel = open.load().map_err(&err)?;
        common_maps!(skel).prepare(cfg)?;
        let copied = StackSamples::when_copying(
            cfg.stack_copy_bytes,
            &skel.maps.stack_samples,
            cfg.unwind_memory,
        )?;
        Ok(Self {
            copied,
            skel,
            frequency: cfg.frequency,
            perf_links: Vec::new(),
        })
    }
}

impl Collector for CpuCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Cpu
    }

    /// The process tracepoints first, so no fork or exec is missed, then one perf event per
    /// CPU.
    fn attach(&mut self) -> Result<(), CollectError> {
        attach_process_tracking!(self.skel);
        let progs = &self.skel.progs;
        let fds = perf_event::open_cpu_clock(&perf_event::online_cpus()?, self.frequency)?;
        for fd in fds {
            let link = progs
                .on_cpu_sample
                .attach_perf_event(fd.as_raw_fd())
                .map_err(attach_error("the perf_event program"))?;
            // The link owns the perf event now: destroying it closes the descriptor.
            let _ = fd.into_raw_fd();
            self.perf_links.push(link);
        }
        Ok(())
    }

    fn counters(&self) -> Result<Counters, CollectError> {
        common_maps!(self.skel).counters()
    }

    fn events_maps(&self) -> Vec<&dyn MapCore> {
        vec![&self.skel.maps.events]
    }

    fn poll(&mut self, procs: &mut ProcessTable) {
        if let Some(c) = &mut self.copied {
            c.poll(procs);
        }
    }

    fn stop(&mut self) {
        if let Some(c) = &mut self.copied {
            c.stop();
        }
        self.perf_links.clear();
        detach_process_tracking!(self.skel);
    }

    /// Kernel threads' samples are aggregated in the kernel even with copied stacks.
    fn drain(&self) -> Result<RawProfile, CollectError> {
        let maps = common_maps!(self.skel);
        let mut raw = maps.drain(true, false)?;
        if let Some(c) = &self.copied {
            raw.samples.extend(c.samples(&maps, false)?);
            c.report(&mut raw);
        }
        Ok(raw)
    }
}
