//! The thread-creation collector: `bpf/threads.bpf.c` on the fork tracepoint.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::stack_samples::{ring_bytes, StackSamples};
use super::{load_error, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::libbpf_log;
use crate::bpf::threads::{ThreadsSkel, ThreadsSkelBuilder};
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

/// Copied stacks the ring buffer holds: a burst of creations between two polls.
const RING_RECORDS: f64 = 512.0;

pub struct ThreadCreateCollector<'obj> {
    /// Creations with copied stacks; declared first so it is dropped before the object it
    /// reads.
    copied: Option<StackSamples>,
    skel: ThreadsSkel<'obj>,
}

impl<'obj> ThreadCreateCollector<'obj> {
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let err = load_error("threadcreate");
        libbpf_log::take();
        let mut open = ThreadsSkelBuilder::default().open(storage).map_err(&err)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.stack_copy_bytes = cfg.stack_copy_bytes;
        }
        open.maps
            .stack_samples
            .set_max_entries(ring_bytes(RING_RECORDS, cfg.stack_copy_bytes))
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
        Ok(Self { copied, skel })
    }
}

impl Collector for ThreadCreateCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::ThreadCreate
    }

    fn attach(&mut self) -> Result<(), CollectError> {
        attach_process_tracking!(self.skel);
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
        detach_process_tracking!(self.skel);
    }

    /// Kernel threads' creations are counted in the kernel even with copied stacks.
    fn drain(&self) -> Result<RawProfile, CollectError> {
        let maps = common_maps!(self.skel);
        let mut raw = maps.drain(false, true)?;
        if let Some(c) = &self.copied {
            for mut s in c.samples(&maps, true)? {
                // Creations have a count and no time.
                s.values.truncate(1);
                raw.samples.push(s);
            }
            c.report(&mut raw);
        }
        Ok(raw)
    }
}
