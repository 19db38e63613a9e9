//! The allocation collector: `bpf/alloc.bpf.c` on uprobes of the target's allocator.
//! Allocations sampled during the window give alloc_objects/alloc_space; those still live
//! at the end give inuse_objects/inuse_space.
use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, ProgramMut, UprobeOpts};

use super::bpf_maps::{
    attach_process_tracking, common_maps, detach_process_tracking, size_maps, StackCache,
};
use super::stack_samples::{ring_bytes, StackSamples};
use super::{attach_error, load_error, CollectConfig, CollectError, Collector};
use crate::allocator::Allocator;
use crate::bpf::alloc::{AllocSkel, AllocSkelBuilder};
use crate::bpf::counters::Counters;
use crate::bpf::from_bytes;
use crate::bpf::libbpf_log;
use crate::bpf::shared::{live_alloc, sample_key};
use crate::kind::ProfileKind;
use crate::procs::ProcessTable;
use crate::raw::RawProfile;

/// Copied stacks the ring buffer holds: kept allocations between two polls.
const RING_RECORDS: f64 = 512.0;

pub struct AllocCollector<'obj> {
    /// Kept allocations' copied stacks; declared first so it is dropped before the object
    /// it reads.
    copied: Option<StackSamples>,
    skel: AllocSkel<'obj>,
    /// Where to attach: (pid filter, allocator); -1 is every process.
    sites: Vec<(i32, Allocator)>,
    links: Vec<Link>,
}

impl<'obj> AllocCollector<'obj> {
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &CollectConfig,
        sites: Vec<(i32, Allocator)>,
    ) -> Result<Self, CollectError> {
        let err = load_error("alloc");
        libbpf_log::take();
        let mut open = AllocSkelBuilder::default().open(storage).map_err(&err)?;
        // Recording every allocation, a stack copy each would cost too much.
        let copy = if cfg.alloc_sample_bytes > 0 {
            cfg.stack_copy_bytes
        } else {
            0
        };
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_pids = cfg.pids.is_some();
            ro.follow_forks = cfg.follow_forks;
            ro.sample_bytes = cfg.alloc_sample_bytes;
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
        open.maps
            .live
            .set_max_entries(cfg.max_entries)
            .map_err(&err)?;
        let skel = open.load().map_err(&err)?;
        common_maps!(skel).prepare(cfg)?;
        let copied = StackSamples::when_copying(copy, &skel.maps.stack_samples, cfg.unwind_memory)?;
        Ok(Self {
            copied,
            skel,
            sites,
            links: Vec::new(),
        })
    }
}

/// The entry and (if the result matters) return programs for an allocator function.
fn programs_for<'a>(
    progs: &'a crate::bpf::alloc::AllocProgs<'_>,
    function: &str,
) -> (&'a ProgramMut<'a>, Option<&'a ProgramMut<'a>>) {
    match function {
        "malloc" => (&progs.malloc_enter, Some(&progs.alloc_return)),
        "calloc" => (&progs.calloc_enter, Some(&progs.alloc_return)),
        "realloc" => (&progs.realloc_enter, Some(&progs.alloc_return)),
        "reallocarray" => (&progs.reallocarray_enter, Some(&progs.alloc_return)),
        "posix_memalign" => (
            &progs.posix_memalign_enter,
            Some(&progs.posix_memalign_return),
        ),
        "aligned_alloc" | "memalign" => (&progs.aligned_enter, Some(&progs.alloc_return)),
        "valloc" | "pvalloc" => (&progs.valloc_enter, Some(&progs.alloc_return)),
        _ => (&progs.free_enter, None),
    }
}

/// Whether a process still runs: it is in procfs and not a zombie (whose parent has not
/// reaped it yet).
fn process_exists(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(!matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(false)
}

/// Detaches uprobes all at once: each detach waits for the kernel's grace period (~0.1 s
/// here), one after the other they took seconds, side by side the waits overlap.
fn detach_all(links: Vec<Link>) {
    std::thread::scope(|scope| {
        for link in links {
            scope.spawn(move || drop(link));
        }
    });
}

impl Collector for AllocCollector<'_> {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Alloc
    }

    fn attach(&mut self) -> Result<(), CollectError> {
        attach_process_tracking!(self.skel);
        let progs = &self.skel.progs;
        // Return probes first: an entry seen without its return would leave the thread
        // "inside an allocator call" for good, and every later call would look nested.
        for retprobe in [true, false] {
            for (pid, allocator) in &self.sites {
                // Aliases (aligned_alloc and memalign are one function in glibc) get one
                // probe, or each call would be counted twice.
                let mut probed = std::collections::HashSet::new();
                for &(function, offset) in &allocator.functions {
                    if !probed.insert(offset) {
                        continue;
                    }
                    let prog = match programs_for(progs, function) {
                        (enter, _) if !retprobe => enter,
                        (_, Some(exit)) => exit,
                        (_, None) => continue,
                    };
                    let attached = prog.attach_uprobe_with_opts(
                        *pid,
                        &allocator.attach_path,
                        offset as usize,
                        UprobeOpts {
                            retprobe,
                            ..Default::default()
                        },
                    );
                    match attached {
                        Ok(link) => self.links.push(link),
                        // A target that exited while we attached is not an error: the
                        // recording ends as for any target that exits, with what it has.
                        Err(_) if *pid > 0 && !process_exists(*pid) => {}
                        Err(e) => return Err(attach_error("an allocator uprobe")(e)),
                    }
                }
            }
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
        // First stop counting: detaching the uprobes one by one takes a while.
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            bss.stopped = true;
        }
        detach_all(std::mem::take(&mut self.links));
        detach_process_tracking!(self.skel);
    }

    /// Allocations of the window, `[alloc_objects, alloc_space, 0, 0]`, and those still
    /// live, `[0, 0, inuse_objects, inuse_space]`; the builder merges equal stacks.
    fn drain(&self) -> Result<RawProfile, CollectError> {
        let maps = common_maps!(self.skel);
        let mut cache = StackCache::default();
        if let Some(c) = &self.copied {
            c.fill(&mut cache);
        }
        let mut samples = Vec::new();
        for (k, v) in maps.entries()? {
            let values = vec![v.count as i64, v.total_ns as i64, 0, 0];
            samples.push(maps.sample(&mut cache, &k, values, false)?);
        }
        let live = &self.skel.maps.live;
        for addr in live.keys() {
            let Some(bytes) =
                live.lookup(&addr, MapFlags::ANY)
                    .map_err(|source| CollectError::Map {
                        map: "live",
                        source,
                    })?
            else {
                continue;
            };
            let l: live_alloc = from_bytes(&bytes);
            let key = sample_key {
                pid: l.pid,
                tid: l.tid,
                user_stack: l.user_stack,
                kernel_stack: 0,
                extra: l.size.min(u64::from(u32::MAX)) as u32,
                _pad: 0,
            };
            let values = vec![0, 0, l.objects as i64, l.bytes as i64];
            samples.push(maps.sample(&mut cache, &key, values, false)?);
        }
        let mut raw = RawProfile {
            samples,
            threads: maps.threads()?,
            counters: maps.counters()?,
            ..RawProfile::default()
        };
        if let Some(c) = &self.copied {
            c.report(&mut raw);
        }
        Ok(raw)
    }
}
