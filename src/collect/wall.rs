//! The wall-clock collector: CPU samples weighted by their period plus off-CPU time, per
//! thread, so each thread's total is the time it existed in the window (as fgprof shows it
//! for Go). It runs its own CPU and off-CPU programs, the latter unfiltered.
use std::mem::MaybeUninit;

use libbpf_rs::{MapCore, OpenObject};

use super::cpu::CpuCollector;
use super::offcpu::OffCpuCollector;
use super::{CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

pub struct WallCollector<'obj> {
    cpu: CpuCollector<'obj>,
    off: OffCpuCollector<'obj>,
    period_ns: i64,
}

impl<'obj> WallCollector<'obj> {
    pub fn load(
        cpu_storage: &'obj mut MaybeUninit<OpenObject>,
        off_storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
    ) -> Result<Self, CollectError> {
        let every_block = CollectConfig {
            min_block_ns: 0,
            block_sample_ns: cfg.block_sample_ns,
            state_filter: crate::bpf::shared::block_state_filter::STATE_FILTER_ALL.0,
            ..cfg.clone()
        };
        Ok(Self {
            cpu: CpuCollector::load(cpu_storage, cfg)?,
            off: OffCpuCollector::load(off_storage, &every_block)?,
            period_ns: ProfileKind::Wall.period(cfg.frequency, 0),
        })
    }
}

impl Collector for WallCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Wall
    }

    fn attach(&mut self) -> Result<(), CollectError> {
        self.off.attach()?;
        self.cpu.attach()
    }

    fn counters(&self) -> Result<Counters, CollectError> {
        let mut c = self.cpu.counters()?;
        c.add(&self.off.counters()?);
        Ok(c)
    }

    fn events_maps(&self) -> Vec<&dyn MapCore> {
        let mut maps = self.cpu.events_maps();
        maps.extend(self.off.events_maps());
        maps
    }

    fn poll(&mut self, procs: &mut ProcessTable) {
        self.cpu.poll(procs);
        self.off.poll(procs);
    }

    fn stop(&mut self) {
        self.cpu.stop();
        self.off.stop();
    }

    /// CPU samples keep (samples, period sum); off-CPU time counts as the samples it would
    /// have taken at the sampling period, so both columns add up across the two sources.
    fn drain(&self) -> Result<RawProfile, CollectError> {
        let mut raw = self.cpu.drain()?;
        let off = self.off.drain()?;
        for mut s in off.samples {
            let ns = s.values[1];
            s.values[0] = (ns + self.period_ns / 2) / self.period_ns;
            s.extra = 0;
            raw.samples.push(s);
        }
        for (tid, names) in off.threads {
            raw.threads.entry(tid).or_insert(names);
        }
        raw.counters.add(&off.counters);
        raw.notes.extend(off.notes);
        Ok(raw)
    }
}
