//! The lock-contention collector: `bpf/lock.bpf.c` times futex waits on the raw syscall
//! tracepoints and sends each recorded one with the waiter's registers and the top of its
//! stack. Those are unwound here, while recording, with the CFI of the files the process
//! maps (the lock's caller sits below libc's frames, which have no frame pointers), and
//! aggregated by thread and stack.
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::rc::Rc;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject, RingBuffer, RingBufferBuilder};

use super::bpf_maps::{attach_process_tracking, common_maps, detach_process_tracking, size_maps};
use super::{attach_error, load_error, task_iter, CollectConfig, CollectError, Collector};
use crate::bpf::counters::Counters;
use crate::bpf::libbpf_log;
use crate::bpf::lock::types::lock_wait;
use crate::bpf::lock::{LockSkel, LockSkelBuilder};
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::{RawProfile, RawSample};
use crate::unwind::process::UnwindCache;
use crate::unwind::replay::{Regs, StackCopy};

/// Frames kept per stack, as for the stacks BPF walks.
const MAX_FRAMES: usize = 127;

/// (pid, tid, user frames): what recorded waits are summed by.
type WaitKey = (u32, u32, Vec<u64>);

pub struct LockCollector<'obj> {
    /// Declared first so it is dropped before the object whose map it reads.
    ring: RingBuffer<'static>,
    received: Rc<RefCell<Vec<Vec<u8>>>>,
    skel: LockSkel<'obj>,
    unwinder: UnwindCache,
    /// (contentions, delay in ns) by thread and stack.
    waits: HashMap<WaitKey, (i64, i64)>,
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
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.sample_ns = cfg.block_sample_ns;
        }
        size_maps(
            &mut open.maps.counts,
            &mut open.maps.stacks,
            cfg.max_entries,
        )
        .map_err(&err)?;
        let skel = open.load().map_err(&err)?;
        common_maps!(skel).prepare(cfg)?;

        let received = Rc::new(RefCell::new(Vec::new()));
        let sink = received.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skel.maps.lock_waits, move |data: &[u8]| {
                sink.borrow_mut().push(data.to_vec());
                0
            })
            .map_err(map_error)?;
        let ring = builder.build().map_err(map_error)?;
        Ok(Self {
            ring,
            received,
            skel,
            unwinder: UnwindCache::default(),
            waits: HashMap::new(),
            close_error: None,
        })
    }

    /// Unwinds one recorded wait and adds it to its thread and stack.
    fn add(&mut self, data: &[u8], procs: &mut ProcessTable) {
        if data.len() < std::mem::size_of::<lock_wait>() {
            return;
        }
        let w: lock_wait = crate::bpf::from_bytes(data);
        // Normally read on the process's first event already; this covers a lost event.
        if !procs.contains(w.pid) {
            let _ = procs.snapshot(w.pid, false);
        }
        let regs = Regs {
            ip: w.ip,
            sp: w.sp,
            fp: w.fp,
            lr: w.lr,
        };
        let len = (w.stack_len as usize).min(w.stack.len());
        let stack = StackCopy {
            base: w.sp,
            bytes: w.stack[..len].to_vec(),
        };
        let frames = match procs.get(w.pid) {
            Some(info) => self.unwinder.unwind(info, regs, &stack, MAX_FRAMES),
            None => vec![w.ip],
        };
        let entry = self.waits.entry((w.pid, w.tid, frames)).or_default();
        entry.0 = entry.0.saturating_add(w.waits as i64);
        entry.1 = entry.1.saturating_add(w.delay_ns as i64);
    }
}

fn map_error(source: libbpf_rs::Error) -> CollectError {
    CollectError::Map {
        map: "lock_waits",
        source,
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
        // Errors here are interrupted reads; what is left is read on the next call.
        let _ = self.ring.consume();
        let received = std::mem::take(&mut *self.received.borrow_mut());
        for data in received {
            self.add(&data, procs);
        }
    }

    /// Sends the waits still in progress, up to now (the next poll takes them in), then
    /// detaches. Closing them while the exits are still watched means a wait that ends in
    /// between is counted once, by whichever comes first, and never left open.
    fn stop(&mut self) {
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
        let mut raw = common_maps!(self.skel).drain(true, false)?;
        raw.samples = self
            .waits
            .iter()
            .map(|((pid, tid, frames), &(count, ns))| RawSample {
                pid: *pid,
                tid: *tid,
                user: frames.clone(),
                kernel: Vec::new(),
                extra: 0,
                values: vec![count, ns],
                from_tracepoint: false,
            })
            .collect();
        Ok(raw)
    }
}
