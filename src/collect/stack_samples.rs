//! Samples whose user stack BPF copied instead of walking (`bpf/stack_copy.bpf.h`): they
//! arrive through a ring buffer with the thread's registers and the top of its stack, are
//! unwound here while recording with the CFI of the files the process maps, and summed by
//! thread and stack, as the kernel sums the samples it walks itself; or, for a kind whose
//! accounting stays in the kernel (alloc), kept under the id that stands for them there.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use super::bpf_maps::{CommonMaps, StackCache};
use super::CollectError;
use crate::bpf::shared::stack_sample;
use crate::procs::ProcessTable;
use crate::raw::{RawProfile, RawSample};
use crate::unwind::end::{StackEnd, StackEnds};
use crate::unwind::process::{UnwindCache, UnwindStats};
use crate::unwind::replay::{Regs, StackCopy, Unwound};

/// Frames kept per stack, as for the stacks BPF walks.
const MAX_FRAMES: usize = 127;

/// How often a process's maps may be read again for samples outside every known mapping,
/// or whose return addresses are: often enough that a JIT's new code spaces are soon known,
/// seldom enough that a program with a corrupt stack costs little.
const REREAD_EVERY: Duration = Duration::from_millis(200);

/// The longest a process whose maps showed no new code when read again for a bad stack
/// waits before they are read again for it (the wait doubles from [`REREAD_EVERY`]).
const REREAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Bytes before the stack copy in a `stack_sample`.
const HEADER: usize = std::mem::offset_of!(stack_sample, stack);

/// The stack bytes a sample copies unless told otherwise: enough for most C and Rust
/// programs; deep C++ stacks (a compiler's) want 64 KiB.
pub const DEFAULT_COPY_BYTES: u32 = 16384;

/// The size of a `stack_samples` ring buffer that holds `records` samples of `copy` stack
/// bytes: a power of two (as the kernel requires), from 1 MiB to 1 GiB; one page when
/// nothing is copied.
pub fn ring_bytes(records: f64, copy: u32) -> u32 {
    if copy == 0 {
        return 4096;
    }
    // Each record has the ring buffer's 8-byte header too.
    let record = (HEADER + copy as usize + 8) as f64;
    ((record * records) as u64)
        .clamp(1 << 20, 1 << 30)
        .next_power_of_two() as u32
}

/// What samples are summed by: thread, user frames, kernel stack id, kind's detail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    pid: u32,
    tid: u32,
    user: Vec<u64>,
    kernel_stack: u64,
    extra: u32,
}

pub struct StackSamples {
    /// Declared first so it is dropped before anything its callback touches.
    ring: RingBuffer<'static>,
    received: Rc<RefCell<Vec<Vec<u8>>>>,
    /// Samples waiting for a table being built.
    waiting: Vec<Vec<u8>>,
    unwinder: UnwindCache,
    /// (count, total ns) by key.
    totals: HashMap<Key, (i64, i64)>,
    /// Stacks that stand under an id in the kernel's own aggregation (alloc).
    by_id: HashMap<u64, Vec<u64>>,
    /// When each process's maps were last read again for a sample outside them.
    reread: HashMap<u32, Instant>,
    /// How long each process waits between such reads, when longer than [`REREAD_EVERY`].
    backoff: HashMap<u32, Duration>,
    /// The recording stopped: the next poll is the last, and waits for every table.
    stopped: bool,
    /// Samples by how their stacks ended.
    ends: StackEnds,
}

impl StackSamples {
    /// Reads the `stack_samples` ring buffer `map`, keeping at most `table_limit` bytes of
    /// unwind tables.
    pub fn new(map: &dyn MapCore, table_limit: usize) -> Result<Self, CollectError> {
        const _: () = assert!(HEADER == 80, "stack_sample's header as bpf/rprof.h has it");
        let received = Rc::new(RefCell::new(Vec::new()));
        let sink = received.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(map, move |data: &[u8]| {
                // Only the bytes of the stack that were copied.
                let at = std::mem::offset_of!(stack_sample, stack_len);
                let used = data.get(at..at + 4).map_or(0, |b| {
                    u32::from_ne_bytes(b.try_into().unwrap_or_default()) as usize
                });
                let end = HEADER.saturating_add(used).min(data.len());
                sink.borrow_mut().push(data[..end].to_vec());
                0
            })
            .map_err(ring_error)?;
        Ok(Self {
            ring: builder.build().map_err(ring_error)?,
            received,
            waiting: Vec::new(),
            unwinder: UnwindCache::new(table_limit),
            totals: HashMap::new(),
            by_id: HashMap::new(),
            reread: HashMap::new(),
            backoff: HashMap::new(),
            stopped: false,
            ends: StackEnds::default(),
        })
    }

    /// [`StackSamples::new`] for a kind that copies `copy` bytes of stack per sample; `None`
    /// when it copies none (it walks frame pointers).
    pub fn when_copying(
        copy: u32,
        map: &dyn MapCore,
        table_limit: usize,
    ) -> Result<Option<Self>, CollectError> {
        (copy > 0).then(|| Self::new(map, table_limit)).transpose()
    }

    /// The recording stopped: the next [`StackSamples::poll`] unwinds everything left.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Unwinds and sums what has arrived. Samples that need a table still being built wait
    /// for a later call; after [`StackSamples::stop`], this waits for the tables and unwinds
    /// everything.
    pub fn poll(&mut self, procs: &mut ProcessTable) {
        // Errors here are interrupted reads; what is left is read on the next call.
        let _ = self.ring.consume();
        self.unwinder.receive(false);
        self.unwind_queued(procs, true);
        if !self.stopped {
            return;
        }
        // Stacks unwound further ask for more tables: a few rounds, then what is left (only
        // when one stack's files do not fit the memory limit together) without them.
        for _ in 0..8 {
            if self.waiting.is_empty() {
                return;
            }
            self.unwinder.receive(true);
            self.unwind_queued(procs, true);
        }
        self.unwind_queued(procs, false);
    }

    fn unwind_queued(&mut self, procs: &mut ProcessTable, wait: bool) {
        let mut todo = std::mem::take(&mut self.waiting);
        todo.append(&mut self.received.borrow_mut());
        for data in todo {
            if !self.add(&data, procs, wait) {
                self.waiting.push(data);
            }
        }
    }

    /// Unwinds one sample and adds it; false when it waits for a table being built.
    fn add(&mut self, data: &[u8], procs: &mut ProcessTable, wait: bool) -> bool {
        if data.len() < HEADER {
            return true;
        }
        let s = Head::read(data);
        // Normally read on the process's first event already. This covers a lost event, a
        // sample that overtook it, and code mapped since (a library the loader or dlopen
        // has just mapped, a JIT's new code space).
        let unknown = procs
            .get(s.pid)
            .is_none_or(|info| info.mapping_of(s.ip).is_none() && !info.is_anonymous_code(s.ip));
        if unknown {
            self.reread_maps(procs, s.pid);
        }
        let regs = Regs {
            ip: s.ip,
            sp: s.sp,
            fp: s.fp,
            lr: s.lr,
        };
        let stack = StackCopy {
            base: s.sp,
            bytes: &data[HEADER..],
        };
        let unwind = |unwinder: &mut UnwindCache, procs: &ProcessTable| match procs.get(s.pid) {
            Some(info) => unwinder.unwind(info, regs, &stack, MAX_FRAMES, wait),
            None => Some(Unwound {
                frames: vec![s.ip],
                end: StackEnd::UnknownProcess,
            }),
        };
        let Some(mut unwound) = unwind(&mut self.unwinder, procs) else {
            return false;
        };
        // A return address in code mapped since the maps were read (a JIT's new code, which
        // CPython's trampolines are too): read them, try again. When reading them found no
        // new code, the stack is corrupt (or caught in a prologue), and the process waits
        // longer before its maps are read for it again.
        let layout = |procs: &ProcessTable| procs.get(s.pid).map(|info| info.code_layout());
        let before = (unwound.end == StackEnd::BadReturnAddress).then(|| layout(procs));
        if let Some(before) = before.filter(|_| self.reread_maps(procs, s.pid)) {
            match unwind(&mut self.unwinder, procs) {
                Some(again) => unwound = again,
                None => return false,
            }
            let backoff = self.backoff.entry(s.pid).or_insert(REREAD_EVERY);
            *backoff = if layout(procs) == before {
                (*backoff * 2).min(REREAD_AT_MOST_EVERY)
            } else {
                REREAD_EVERY
            };
        }
        let Unwound { mut frames, end } = unwound;
        // JIT frames anywhere in the stack (CPython's trampolines are seldom the leaf): their
        // perf map is read now, while the process lives.
        let jit: Vec<u64> = procs.get(s.pid).map_or_else(Vec::new, |info| {
            if !info.has_anonymous_code() {
                return Vec::new();
            }
            frames
                .iter()
                .enumerate()
                .map(|(i, &f)| if i == 0 { f } else { f.wrapping_sub(1) })
                .filter(|&a| info.is_anonymous_code(a))
                .collect()
        });
        for addr in jit {
            procs.saw_jit_code(s.pid, addr);
        }
        // A kept allocation counts once; other samples as many times as they were summed.
        self.ends.add(end, s.count.max(1));
        end.mark(&mut frames);
        let user = frames;
        if s.user_stack != 0 {
            self.by_id.insert(s.user_stack, user);
            return true;
        }
        let key = Key {
            pid: s.pid,
            tid: s.tid,
            user,
            kernel_stack: s.kernel_stack,
            extra: s.extra,
        };
        let entry = self.totals.entry(key).or_default();
        entry.0 = entry.0.saturating_add(s.count as i64);
        entry.1 = entry.1.saturating_add(s.total_ns as i64);
        true
    }

    /// Reads the maps of `pid` again, unless they were read again lately; whether it did.
    fn reread_maps(&mut self, procs: &mut ProcessTable, pid: u32) -> bool {
        let every = self.backoff.get(&pid).copied().unwrap_or(REREAD_EVERY);
        let due = self.reread.get(&pid).is_none_or(|t| t.elapsed() >= every);
        if due {
            self.reread.insert(pid, Instant::now());
            let _ = procs.snapshot(pid, false);
        }
        due
    }

    /// The summed samples, values `[count, total ns]`, kernel stacks read from `maps`;
    /// `from_tracepoint` as in [`RawSample`].
    pub fn samples(
        &self,
        maps: &CommonMaps,
        from_tracepoint: bool,
    ) -> Result<Vec<RawSample>, CollectError> {
        let mut cache = StackCache::default();
        self.totals
            .iter()
            .map(|(k, &(count, ns))| {
                Ok(RawSample {
                    pid: k.pid,
                    tid: k.tid,
                    user: k.user.clone(),
                    kernel: cache.get(maps.stacks, k.kernel_stack)?,
                    extra: k.extra,
                    values: vec![count, ns],
                    from_tracepoint,
                })
            })
            .collect()
    }

    /// Puts the stacks that stand under an id into `cache`, so the kernel's entries that use
    /// those ids find them.
    pub fn fill(&self, cache: &mut StackCache) {
        for (&id, frames) in &self.by_id {
            cache.insert(id, frames.clone());
        }
    }

    /// Puts what unwinding did into `raw`: the notes for its comments, and how stacks ended.
    pub fn report(&self, raw: &mut RawProfile) {
        raw.notes = self.notes();
        raw.stack_ends = self.ends.clone();
    }

    /// What the unwinder's table cache did, and how stacks ended, as lines for the
    /// profile's comments.
    pub fn notes(&self) -> Vec<String> {
        let UnwindStats {
            built,
            indexed,
            functions,
            build_time,
            peak_bytes,
            evicted,
            too_big,
            forgotten,
            slowest,
            largest,
        } = self.unwinder.stats();
        let mut notes = vec![self.ends.describe(), format!(
            "unwind tables: {built} built in {:.0} ms, peak {:.2} MiB (limit {}), {evicted} evicted; \
             {indexed} of the files read by function through .eh_frame_hdr ({functions} functions, \
             forgotten {forgotten} times)",
            build_time.as_secs_f64() * 1e3,
            *peak_bytes as f64 / (1 << 20) as f64,
            size_text(self.unwinder.limit()),
        )];
        for (which, file) in [("slowest", slowest), ("largest", largest)] {
            if let Some(f) = file {
                notes.push(format!(
                    "unwind tables: {which} {} ({:.1} MB file, {:.1} MiB table) in {:.0} ms",
                    f.path,
                    f.file_bytes as f64 / 1e6,
                    f.table_bytes as f64 / (1 << 20) as f64,
                    f.took.as_secs_f64() * 1e3
                ));
            }
        }
        if *too_big > 0 {
            notes.push(format!(
                "unwind tables: {too_big} files over --max-unwind-memory were unwound by frame pointers only"
            ));
        }
        notes
    }
}

/// A size as `--max-unwind-memory` takes it: "512 MiB", "256 KiB".
fn size_text(bytes: usize) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// The fields of a `stack_sample` before its stack, read from a record (which is only as
/// long as its copy, so not a whole `stack_sample`).
struct Head {
    pid: u32,
    tid: u32,
    extra: u32,
    kernel_stack: u64,
    user_stack: u64,
    count: u64,
    total_ns: u64,
    ip: u64,
    sp: u64,
    fp: u64,
    lr: u64,
}

impl Head {
    /// `data` holds at least [`HEADER`] bytes.
    fn read(data: &[u8]) -> Self {
        use std::mem::offset_of;
        let u32_at = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_ne_bytes(data[at..at + 8].try_into().unwrap());
        Self {
            pid: u32_at(offset_of!(stack_sample, pid)),
            tid: u32_at(offset_of!(stack_sample, tid)),
            extra: u32_at(offset_of!(stack_sample, extra)),
            kernel_stack: u64_at(offset_of!(stack_sample, kernel_stack)),
            user_stack: u64_at(offset_of!(stack_sample, user_stack)),
            count: u64_at(offset_of!(stack_sample, count)),
            total_ns: u64_at(offset_of!(stack_sample, total_ns)),
            ip: u64_at(offset_of!(stack_sample, ip)),
            sp: u64_at(offset_of!(stack_sample, sp)),
            fp: u64_at(offset_of!(stack_sample, fp)),
            lr: u64_at(offset_of!(stack_sample, lr)),
        }
    }
}

fn ring_error(source: libbpf_rs::Error) -> CollectError {
    CollectError::Map {
        map: "stack_samples",
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes() {
        assert_eq!(ring_bytes(1000.0, 0), 4096);
        assert_eq!(ring_bytes(1.0, 4096), 1 << 20);
        // 999 Hz on 2 CPUs for a quarter second, 16 KiB each: ~8.2 MB.
        assert_eq!(ring_bytes(999.0 * 2.0 * 0.25, 16384), 8 << 20);
        assert_eq!(ring_bytes(1e9, 65536), 1 << 30);
    }

    #[test]
    fn header_fields_by_offset() {
        let mut data = vec![0u8; HEADER + 16];
        let put = |d: &mut Vec<u8>, at: usize, v: &[u8]| d[at..at + v.len()].copy_from_slice(v);
        put(
            &mut data,
            std::mem::offset_of!(stack_sample, pid),
            &7u32.to_ne_bytes(),
        );
        put(
            &mut data,
            std::mem::offset_of!(stack_sample, sp),
            &0x1000u64.to_ne_bytes(),
        );
        put(
            &mut data,
            std::mem::offset_of!(stack_sample, lr),
            &9u64.to_ne_bytes(),
        );
        let h = Head::read(&data);
        assert_eq!((h.pid, h.sp, h.lr, h.ip), (7, 0x1000, 9, 0));
    }
}
