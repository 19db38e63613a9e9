//! The off-CPU collector: `bpf/offcpu.bpf.c` on the scheduler's switch tracepoint, with two
//! task iterators that open the blocks already in progress at the start and close the ones
//! still in progress at the stop.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::stack_samples::{ring_bytes, StackSamples};
use super::{attach_error, load_error, task_iter, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::libbpf_log;
use crate::bpf::offcpu::{OffcpuSkel, OffcpuSkelBuilder};
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

/// Copied stacks the ring buffer holds: recorded blocks between two polls.
const RING_RECORDS: f64 = 512.0;

pub struct OffCpuCollector<'obj> {
    /// Blocks whose user stacks are copied; declared first so it is dropped before the
    /// object it reads.
    copied: Option<StackSamples>,
    skel: OffcpuSkel<'obj>,
    /// Why the blocks open at the stop could not be closed, if they could not.
    close_error: Option<CollectError>,
}

impl<'obj> OffCpuCollector<'obj> {
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let err = load_error("off-cpu");
        libbpf_log::take();
        let mut open = OffcpuSkelBuilder::default().open(storage).map_err(&err)?;
        // Deferring pays off when few blocks are recorded. With every block recorded, a
        // frame-pointer walk at the switch (~0.3 µs) costs less than a task_work per block
        // (~10 µs), but loses the callers of code without frame pointers (libc's wrappers):
        // it is kept for `--call-graph fp` only, and a copy is deferred otherwise.
        let defer = defer_user_stacks() && (cfg.block_sample_ns > 0 || cfg.stack_copy_bytes > 0);
        // Only the deferred read can copy: a copy at every switch would cost too much.
        let copy = if defer { cfg.stack_copy_bytes } else { 0 };
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.min_block_ns = cfg.min_block_ns;
            ro.sample_ns = cfg.block_sample_ns;
            ro.state_filter = cfg.state_filter;
            ro.defer_stacks = defer;
            ro.stack_copy_bytes = copy;
        }
        open.maps
            .stack_samples
            .set_max_entries(ring_bytes(RING_RECORDS, copy))
            .map_err(&err)?;
        size_maps(
            &mut open.maps.counts,
            &mut open.maps.stacks,
            cfg.max_entries,
        )
        .map_err(&err)?;
        let skel = open.load().map_err(&err)?;
        common_maps!(skel).prepare(cfg)?;
        // Without bpf_task_work the kernel side walks frame pointers; its ring stays empty.
        let copied = StackSamples::when_copying(copy, &skel.maps.stack_samples, cfg.unwind_memory)?;
        Ok(Self {
            copied,
            skel,
            close_error: None,
        })
    }
}

/// Whether to ask for user stacks to be read only for recorded blocks, at the thread's return
/// to user space; the BPF side does so where the kernel has bpf_task_work (Linux 6.18).
/// `RPROF_EAGER_STACKS=1` reads them at every switch instead, as older kernels do (tests
/// cover both ways).
fn defer_user_stacks() -> bool {
    std::env::var_os("RPROF_EAGER_STACKS").is_none_or(|v| v != "1")
}

impl Collector for OffCpuCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::OffCpu
    }

    /// Attaches to the scheduler, then opens the blocks of threads that are blocked
    /// already, so a thread asleep for the whole window is not missed.
    fn attach(&mut self) -> Result<(), CollectError> {
        attach_process_tracking!(self.skel);
        let progs = &self.skel.progs;
        self.skel.links.on_switch = Some(
            progs
                .on_switch
                .attach()
                .map_err(attach_error("tp_btf/sched_switch"))?,
        );
        task_iter::run(
            &self.skel.progs.seed_blocked,
            "some of their blocks count only from when they next run",
        )
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

    /// Detaches, then counts the threads still blocked up to now.
    fn stop(&mut self) {
        if let Some(c) = &mut self.copied {
            c.stop();
        }
        self.skel.links.on_switch = None;
        self.close_error = task_iter::run(
            &self.skel.progs.close_blocked,
            "some of the blocks still open at the stop are not counted",
        )
        .err();
        detach_process_tracking!(self.skel);
    }

    fn drain(&self) -> Result<RawProfile, CollectError> {
        if let Some(e) = &self.close_error {
            // The profile is still worth writing; the blocks left open are just not in it.
            eprintln!("rprof-bpf: warning: threads still blocked at the stop are not counted: {e}");
        }
        let maps = common_maps!(self.skel);
        let mut raw = maps.drain(true, true)?;
        if let Some(c) = &self.copied {
            raw.samples.extend(c.samples(&maps, true)?);
            c.report(&mut raw);
        }
        Ok(raw)
    }
}
