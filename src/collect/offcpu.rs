//! The off-CPU collector: `bpf/offcpu.bpf.c` on the scheduler's switch tracepoint.
use std::io;
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Iter, MapCore, MapFlags, OpenObject};

use super::bpf_maps::{common_maps, size_maps, StackCache};
use super::{attach_error, load_error, monotonic_ns, CollectConfig, CollectError, Collector};
use crate::bpf::from_bytes;
use crate::bpf::libbpf_log;
use crate::bpf::offcpu::{OffcpuSkel, OffcpuSkelBuilder};
use crate::bpf::shared::{block_start, sample_key};
use crate::kind::ProfileKind;
use crate::raw::RawProfile;

pub struct OffCpuCollector<'obj> {
    skel: OffcpuSkel<'obj>,
    min_block_ns: u64,
    /// When recording stopped (CLOCK_MONOTONIC): threads still blocked count up to here.
    stopped_ns: Option<u64>,
}

impl<'obj> OffCpuCollector<'obj> {
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let err = load_error("off-cpu");
        libbpf_log::take();
        let mut open = OffcpuSkelBuilder::default().open(storage).map_err(&err)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.min_block_ns = cfg.min_block_ns;
            ro.state_filter = cfg.state_filter;
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
        Ok(Self {
            skel,
            min_block_ns: cfg.min_block_ns,
            stopped_ns: None,
        })
    }

    /// Blocks still open when recording stopped, counted up to the stop.
    fn open_blocks(
        &self,
        cache: &mut StackCache,
    ) -> Result<Vec<crate::raw::RawSample>, CollectError> {
        let Some(stopped) = self.stopped_ns else {
            return Ok(Vec::new());
        };
        let maps = common_maps!(self.skel);
        let starts = &self.skel.maps.starts;
        let mut out = Vec::new();
        for key in starts.keys() {
            let Some(v) =
                starts
                    .lookup(&key, MapFlags::ANY)
                    .map_err(|source| CollectError::Map {
                        map: "starts",
                        source,
                    })?
            else {
                continue;
            };
            let start: block_start = from_bytes(&v);
            let blocked = stopped.saturating_sub(start.start_ns);
            if blocked == 0 || blocked < self.min_block_ns {
                continue;
            }
            let key = sample_key {
                pid: start.pid,
                tid: from_bytes(&key),
                user_stack: start.user_stack,
                kernel_stack: start.kernel_stack,
                extra: start.state,
                _pad: 0,
            };
            out.push(maps.sample(cache, &key, vec![1, blocked as i64], true)?);
        }
        Ok(out)
    }
}

impl Collector for OffCpuCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::OffCpu
    }

    /// Attaches to the scheduler, then seeds the threads that are blocked already, so that
    /// a thread asleep for the whole window is not missed.
    fn attach(&mut self) -> Result<(), CollectError> {
        let progs = &self.skel.progs;
        self.skel.links.on_fork = Some(
            progs
                .on_fork
                .attach()
                .map_err(attach_error("tp_btf/sched_process_fork"))?,
        );
        self.skel.links.on_exec = Some(
            progs
                .on_exec
                .attach()
                .map_err(attach_error("tp_btf/sched_process_exec"))?,
        );
        self.skel.links.on_switch = Some(
            progs
                .on_switch
                .attach()
                .map_err(attach_error("tp_btf/sched_switch"))?,
        );
        let seed = progs
            .seed_blocked
            .attach()
            .map_err(attach_error("the iter/task program"))?;
        let mut iter = Iter::new(&seed).map_err(attach_error("the iter/task program"))?;
        io::copy(&mut iter, &mut io::sink()).map_err(|e| CollectError::Attach {
            what: "the iter/task program",
            source: e.into(),
        })?;
        Ok(())
    }

    fn events_maps(&self) -> Vec<&dyn MapCore> {
        vec![&self.skel.maps.events]
    }

    fn stop(&mut self) {
        self.skel.links.on_switch = None;
        self.stopped_ns = Some(monotonic_ns());
        self.skel.links.on_fork = None;
        self.skel.links.on_exec = None;
    }

    fn drain(&self) -> Result<RawProfile, CollectError> {
        let mut raw = common_maps!(self.skel).drain(true, true)?;
        raw.samples
            .extend(self.open_blocks(&mut StackCache::default())?);
        Ok(raw)
    }
}
