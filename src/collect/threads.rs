//! The thread-creation collector: `bpf/threads.bpf.c` on the fork tracepoint.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};

use super::bpf_maps::{common_maps, size_maps};
use super::{attach_error, load_error, CollectConfig, CollectError, Collector};
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
        let maps = common_maps!(skel);
        maps.warm_stack_cache();
        maps.add_targets(cfg.pids.as_deref().unwrap_or_default())?;
        Ok(Self { skel })
    }
}

impl Collector for ThreadCreateCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::ThreadCreate
    }

    fn attach(&mut self) -> Result<(), CollectError> {
        let progs = &self.skel.progs;
        self.skel.links.on_exec = Some(
            progs
                .on_exec
                .attach()
                .map_err(attach_error("tp_btf/sched_process_exec"))?,
        );
        self.skel.links.on_fork = Some(
            progs
                .on_fork
                .attach()
                .map_err(attach_error("tp_btf/sched_process_fork"))?,
        );
        Ok(())
    }

    fn counters(&self) -> Result<Counters, CollectError> {
        common_maps!(self.skel).counters()
    }

    fn events_maps(&self) -> Vec<&dyn MapCore> {
        vec![&self.skel.maps.events]
    }

    fn stop(&mut self) {
        self.skel.links.on_fork = None;
        self.skel.links.on_exec = None;
    }

    fn drain(&self) -> Result<RawProfile, CollectError> {
        common_maps!(self.skel).drain(false, true)
    }
}
