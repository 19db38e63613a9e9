//! The thread-creation collector: `bpf/threads.bpf.c` on the fork tracepoint.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::{load_error, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::libbpf_log;
use crate::bpf::threads::{ThreadsSkel, ThreadsSkelBuilder};
use crate::kind::ProfileKind;
use crate::raw::RawProfile;

pub struct ThreadCreateCollector<'obj> {
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
        }
        size_maps(
            &mut open.maps.counts,
            &mut open.maps.stacks,
            cfg.max_entries,
        )
        .map_err(&err)?;
        let skel = open.load().map_err(&err)?;
        common_maps!(skel).prepare(cfg)?;
        Ok(Self { skel })
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

    fn stop(&mut self) {
        detach_process_tracking!(self.skel);
    }

    fn drain(&self) -> Result<RawProfile, CollectError> {
        common_maps!(self.skel).drain(false, true)
    }
}
