//! The lock-contention collector: `bpf/lock.bpf.c` times futex waits on the raw syscall
//! tracepoints and sends each recorded one with the waiter's registers and the top of its
//! stack ([`StackSamples`]): the lock's caller sits below libc's frames, which have no
//! frame pointers.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::stack_samples::{ring_bytes, StackSamples, DEFAULT_COPY_BYTES};
use super::{attach_error, load_error, task_iter, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::libbpf_log;
use crate::bpf::lock::{LockSkel, LockSkelBuilder};
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

/// Recorded waits the ring buffer holds between two polls.
const RING_RECORDS: f64 = 2048.0;

pub struct LockCollector<'obj> {
    /// Declared first so it is dropped before the object whose map it reads.
    waits: StackSamples,
    skel: LockSkel<'obj>,
    /// Why the waits open at the stop could not be closed, if they could not.
    close_error: Option<CollectError>,
}

impl<'obj> LockCollector<'obj> {
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let err = load_error("mutex");
        libbpf_log::take();
        let mut open = LockSkelBuilder::default().open(storage).map_err(&err)?;
        // The lock's caller sits below libc's frames: waits always copy their stacks.
        let copy = match cfg.stack_copy_bytes {
            0 => DEFAULT_COPY_BYTES,
            bytes => bytes,
        };
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.sample_ns = cfg.block_sample_ns;
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

        Ok(Self {
            waits: StackSamples::new(&skel.maps.stack_samples, cfg.unwind_memory)?,
            skel,
            close_error: None,
        })
    }
}

impl Collector for LockCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Mutex
    }

    fn attach(&mut self) -> Result<(), CollectError> {
        attach_process_tracking!(self.skel);
        let progs = &self.skel.progs;
        // Exits first: a wait seen entering is then always seen leaving.
        self.skel.links.on_sys_exit = Some(
            progs
                .on_sys_exit
                .attach()
                .map_err(attach_error("tp_btf/sys_exit"))?,
        );
        self.skel.links.on_sys_enter = Some(
            progs
                .on_sys_enter
                .attach()
                .map_err(attach_error("tp_btf/sys_enter"))?,
        );
        // Threads already waiting count from now, so a lock held all along still shows.
        task_iter::run(
            &self.skel.progs.seed_waits,
            "some waits in progress count only from when they next wait",
        )
    }

    fn counters(&self) -> Result<Counters, CollectError> {
        common_maps!(self.skel).counters()
    }

    fn events_maps(&self) -> Vec<&dyn MapCore> {
        vec![&self.skel.maps.events]
    }

    fn poll(&mut self, procs: &mut ProcessTable) {
        self.waits.poll(procs);
    }

    /// Sends the waits still in progress, up to now (the next poll takes them in), then
    /// detaches. Closing them while the exits are still watched means a wait that ends in
    /// between is counted once, by whichever comes first, and never left open.
    fn stop(&mut self) {
        self.waits.stop();
        self.close_error = task_iter::run(
            &self.skel.progs.close_waits,
            "some waits still in progress at the stop are not counted",
        )
        .err();
        self.skel.links.on_sys_enter = None;
        self.skel.links.on_sys_exit = None;
        detach_process_tracking!(self.skel);
    }

    fn drain(&self) -> Result<RawProfile, CollectError> {
        if let Some(e) = &self.close_error {
            // The profile is still worth writing; the waits left open are just not in it.
            eprintln!(
                "rprof-bpf: warning: lock waits still in progress at the stop are not counted: {e}"
            );
        }
        let maps = common_maps!(self.skel);
        let mut raw = maps.drain(true, false)?;
        raw.samples = self.waits.samples(&maps, false)?;
        self.waits.report(&mut raw);
        Ok(raw)
    }
}
