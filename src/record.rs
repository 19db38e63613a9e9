//! One recording, start to finish: target → collectors (one per kind) → process table →
//! symbols → pprof → files. Every check that can fail before sampling runs before sampling.
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libbpf_rs::OpenObject;

use crate::allocator;
use crate::assemble::{self, RecordingInfo};
use crate::bpf::counters::Counters;
use crate::collect::alloc::AllocCollector;
use crate::collect::cpu::CpuCollector;
use crate::collect::events::EventStream;
use crate::collect::lock::LockCollector;
use crate::collect::offcpu::OffCpuCollector;
use crate::collect::threads::ThreadCreateCollector;
use crate::collect::wall::WallCollector;
use crate::collect::{CollectConfig, CollectError, Collector, ProcEvent};
use crate::kind::{output_path, ProfileKind};
use crate::output::{self, Format, RenderError, RenderOptions};
use crate::output_file::{OutputError, PendingOutput};
use crate::perf_map::PerfMapCounters;
use crate::preflight::{self, PreflightError};
use crate::procs::ProcessTable;
use crate::raw::RawProfile;
use crate::symbolize::Symbolizer;
use crate::target::{ExitStatus, Target, TargetError, TargetSpec};
use crate::unwind::end::StackEnds;
use crate::{bpf::libbpf_log, signals};

/// How often the loop wakes to check the clock, signals and targets.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// BPF objects one recording may load: wall needs two, every other kind one.
const MAX_OBJECTS: usize = 7;

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub target: TargetSpec,
    /// The kinds to record, in order, without repeats.
    pub kinds: Vec<ProfileKind>,
    pub duration: Option<Duration>,
    pub frequency: u64,
    pub output: PathBuf,
    pub max_entries: u32,
    /// off-CPU: blocks shorter than this are ignored.
    pub min_block: Duration,
    /// off-CPU: blocks shorter than this are sampled (Go's block profile rate); zero records
    /// every block.
    pub block_rate: Duration,
    /// off-CPU: which states to record (`enum block_state_filter` bits).
    pub state_filter: u32,
    /// alloc: the mean bytes between sampled allocations.
    pub alloc_sample_bytes: u64,
    /// Bytes of user stack copied per sample for unwinding with CFI; 0 walks frame pointers.
    pub stack_copy_bytes: u32,
    /// Bytes of unwind tables kept at most.
    pub unwind_memory: usize,
    /// Synthetic process and thread root frames on every sample.
    pub thread_roots: bool,
    /// The command line, for the profiles' comments.
    pub command_line: String,
    /// When the process started, for the attach latency.
    pub started: Instant,
    /// Print `timing:` lines (RPROF_TIMINGS=1), for the benchmark.
    pub print_timings: bool,
    /// The file format of each profile.
    pub format: Format,
    /// Also make a top table of this many rows per profile.
    pub top: Option<usize>,
    /// Show a live progress line on stderr.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("writing {path}: {source}")]
    Render { path: String, source: RenderError },
}

/// Why the recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Signal(i32),
    TargetsExited,
}

/// What one kind's profile came to.
#[derive(Debug)]
pub struct KindSummary {
    pub kind: ProfileKind,
    pub output: PathBuf,
    pub counters: Counters,
    /// How the stacks unwound in user space ended.
    pub stack_ends: StackEnds,
    /// The top table, when asked for.
    pub top: Option<String>,
}

#[derive(Debug)]
pub struct RecordSummary {
    pub profiles: Vec<KindSummary>,
    /// What reading the JIT runtimes' perf maps met.
    pub perf_maps: PerfMapCounters,
    /// Kinds that could not run on this kernel, with why; the others still ran.
    pub unavailable: Vec<(ProfileKind, CollectError)>,
    pub duration: Duration,
    pub stop: StopReason,
    /// How the launched command ended, if one was launched.
    pub command_status: Option<ExitStatus>,
}

pub fn record(opts: &RecordOptions) -> Result<RecordSummary, RecordError> {
    preflight::check_frequency(opts.frequency)?;
    preflight::check_privileges()?;
    preflight::check_btf()?;
    let mut target = Target::prepare(&opts.target)?;
    let result = record_target(opts, &mut target);
    // The launched command is ended and reaped however the recording went.
    let status = target.finish();
    result.map(|mut summary| {
        summary.command_status = status;
        summary
    })
}

/// Loads one kind's collector into free storage slots.
fn load_collector<'obj>(
    kind: ProfileKind,
    slots: &mut impl Iterator<Item = &'obj mut MaybeUninit<OpenObject>>,
    cfg: &CollectConfig,
    target: &Target,
    procs: &ProcessTable,
) -> Result<Box<dyn Collector + 'obj>, CollectError> {
    let mut slot = || slots.next().expect("MAX_OBJECTS covers every kind once");
    Ok(match kind {
        ProfileKind::Cpu => Box::new(CpuCollector::load(slot(), cfg)?),
        ProfileKind::OffCpu => Box::new(OffCpuCollector::load(slot(), cfg)?),
        ProfileKind::Wall => Box::new(WallCollector::load(slot(), slot(), cfg)?),
        ProfileKind::ThreadCreate => Box::new(ThreadCreateCollector::load(slot(), cfg)?),
        ProfileKind::Alloc => {
            let sites = allocator::allocators_for(target, procs)?;
            Box::new(AllocCollector::load(slot(), cfg, sites)?)
        }
        ProfileKind::Mutex => Box::new(LockCollector::load(slot(), cfg)?),
    })
}

fn record_target(opts: &RecordOptions, target: &mut Target) -> Result<RecordSummary, RecordError> {
    let several = opts.kinds.len() > 1;
    let mut outputs = opts
        .kinds
        .iter()
        .map(|&k| PendingOutput::create(&output_path(&opts.output, k, several)).map(|o| (k, o)))
        .collect::<Result<Vec<_>, _>>()?;
    libbpf_log::capture();
    let cfg = CollectConfig {
        frequency: opts.frequency,
        pids: (!target.is_all()).then(|| target.pids()),
        follow_forks: target.is_launched(),
        max_entries: opts.max_entries,
        min_block_ns: opts.min_block.as_nanos() as u64,
        block_sample_ns: opts.block_rate.as_nanos() as u64,
        state_filter: opts.state_filter,
        alloc_sample_bytes: opts.alloc_sample_bytes,
        stack_copy_bytes: opts.stack_copy_bytes,
        unwind_memory: opts.unwind_memory,
    };

    let mut procs = ProcessTable::default();
    // Given pids are read now, while they surely live. A launched command is read after
    // its exec, on its first event.
    if !target.is_launched() {
        for pid in target.pids() {
            let _ = procs.snapshot(pid, false);
        }
    }

    // Load and attach every kind. With several kinds, one that cannot run on this kernel
    // is reported and the others go on; alone, it is the error.
    let mut storage: [MaybeUninit<OpenObject>; MAX_OBJECTS] =
        std::array::from_fn(|_| MaybeUninit::uninit());
    let mut slots = storage.iter_mut();
    let mut collectors: Vec<Box<dyn Collector + '_>> = Vec::new();
    let mut unavailable = Vec::new();
    for &kind in &opts.kinds {
        match load_collector(kind, &mut slots, &cfg, target, &procs) {
            Ok(c) => collectors.push(c),
            Err(e) if several => unavailable.push((kind, e)),
            Err(e) => return Err(e.into()),
        }
    }
    signals::install();
    let mut attached = Vec::new();
    for mut c in collectors {
        match c.attach() {
            Ok(()) => attached.push(c),
            Err(e) if several => unavailable.push((c.kind(), e)),
            Err(e) => return Err(e.into()),
        }
    }
    let mut collectors = attached;
    if collectors.is_empty() {
        let (_, first) = unavailable.remove(0);
        return Err(first.into());
    }
    outputs.retain(|(k, _)| unavailable.iter().all(|(u, _)| u != k));
    let events = EventStream::new(
        &collectors
            .iter()
            .flat_map(|c| c.events_maps())
            .collect::<Vec<_>>(),
    )?;

    let start = Instant::now();
    let start_unix = SystemTime::now();
    target.release()?;
    if opts.print_timings {
        eprintln!("timing: attach_ms={}", opts.started.elapsed().as_millis());
    }

    let progress = opts.progress.then(|| Progress::start(&opts.kinds));
    let stop = loop {
        let wait = match opts.duration {
            Some(d) => d.saturating_sub(start.elapsed()).min(POLL_INTERVAL),
            None => POLL_INTERVAL,
        };
        for event in events.poll(wait) {
            apply_event(&mut procs, event);
        }
        for c in &mut collectors {
            c.poll(&mut procs);
        }
        if let Some(p) = &progress {
            p.update(start.elapsed(), opts.duration, &collectors, target);
        }
        if let Some(sig) = signals::stop_requested() {
            break StopReason::Signal(sig);
        }
        if opts.duration.is_some_and(|d| start.elapsed() >= d) {
            break StopReason::Duration;
        }
        if target.all_exited() {
            break StopReason::TargetsExited;
        }
    };
    // The window ends here; detaching (which may wait for the kernel) is not part of it.
    let duration = start.elapsed();
    let stopped = Instant::now();
    if let Some(p) = progress {
        p.finish();
    }
    for c in &mut collectors {
        c.stop();
    }
    for event in events.poll(Duration::ZERO) {
        apply_event(&mut procs, event);
    }
    for c in &mut collectors {
        c.poll(&mut procs);
    }
    drop(events);

    let raws = collectors
        .iter()
        .map(|c| c.drain())
        .collect::<Result<Vec<RawProfile>, _>>()?;
    // Pick up libraries loaded since the first snapshot, processes whose event was lost, and
    // the JIT code named since.
    let mut refreshed = std::collections::HashSet::new();
    for pid in raws.iter().flat_map(RawProfile::pids) {
        if refreshed.insert(pid) {
            let _ = procs.snapshot(pid, false);
            procs.refresh_perf_map(pid);
        }
    }

    let symbolizer = Symbolizer::new();
    let mut profiles = Vec::new();
    for ((kind, output), raw) in outputs.into_iter().zip(raws) {
        let info = RecordingInfo {
            period: kind.period(opts.frequency, opts.alloc_sample_bytes),
            start_unix_nanos: start_unix
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            duration_nanos: duration.as_nanos() as i64,
            comments: [
                comments(opts, kind, &raw.counters),
                raw.notes.clone(),
                procs
                    .perf_maps()
                    .counters()
                    .describe()
                    .into_iter()
                    .collect(),
            ]
            .concat(),
            main_pid: target.pids().first().copied().or_else(|| busiest_pid(&raw)),
            thread_roots: opts.thread_roots,
        };
        let profile = assemble::build_profile(kind, &raw, &procs, &symbolizer, &info);
        let path = output.path().to_path_buf();
        let render = RenderOptions {
            title: Some(flame_title(kind, target, &raw, &procs, duration)),
            // Thread roots, when asked for, are in the profile already.
            ..RenderOptions::default()
        };
        let top = opts
            .top
            .map(|n| output::top_table(&profile, &render, n))
            .transpose()
            .map_err(|e| RecordError::Render {
                path: path.display().to_string(),
                source: e.into(),
            })?;
        output
            .commit(|file| output::render(&profile, opts.format, &render, file))
            .map_err(|source| RecordError::Render {
                path: path.display().to_string(),
                source,
            })?;
        profiles.push(KindSummary {
            kind,
            output: path,
            counters: raw.counters,
            stack_ends: raw.stack_ends,
            top,
        });
    }
    if opts.print_timings {
        eprintln!("timing: write_ms={}", stopped.elapsed().as_millis());
    }
    Ok(RecordSummary {
        perf_maps: procs.perf_maps().counters().clone(),
        profiles,
        unavailable,
        duration,
        stop,
        command_status: None,
    })
}

/// The live progress line on stderr: elapsed and remaining time, events so far (from the
/// BPF counters), and targets still alive.
struct Progress {
    bar: indicatif::ProgressBar,
    kinds: String,
    last: std::cell::Cell<Option<Instant>>,
}

impl Progress {
    /// How often the counters are read for the line.
    const REFRESH: Duration = Duration::from_millis(250);

    fn start(kinds: &[ProfileKind]) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Self {
            bar,
            kinds: kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
            last: std::cell::Cell::new(None),
        }
    }

    fn update(
        &self,
        elapsed: Duration,
        window: Option<Duration>,
        collectors: &[Box<dyn Collector + '_>],
        target: &mut Target,
    ) {
        if self.last.get().is_some_and(|t| t.elapsed() < Self::REFRESH) {
            return;
        }
        self.last.set(Some(Instant::now()));
        let events: u64 = collectors
            .iter()
            .filter_map(|c| c.counters().ok())
            .map(|c| c.samples())
            .sum();
        let time = match window {
            Some(w) => format!(
                "{:.1}s/{:.1}s ({:.1}s left)",
                elapsed.as_secs_f64(),
                w.as_secs_f64(),
                w.saturating_sub(elapsed).as_secs_f64()
            ),
            None => format!("{:.1}s (Ctrl-C stops)", elapsed.as_secs_f64()),
        };
        let alive = if target.is_all() {
            "all processes".to_string()
        } else {
            format!("{} alive", target.alive())
        };
        self.bar
            .set_message(format!("{} {time} | {events} events | {alive}", self.kinds));
        self.bar.tick();
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// "cpu profile of app [1234]: 10.00s, 990 samples"
fn flame_title(
    kind: ProfileKind,
    target: &Target,
    raw: &RawProfile,
    procs: &ProcessTable,
    duration: Duration,
) -> String {
    let who = if target.is_all() {
        "all processes".to_string()
    } else {
        target
            .pids()
            .iter()
            .map(|pid| {
                // Names seen in BPF, else procfs's (a target with no samples has none).
                let comm = raw
                    .threads
                    .values()
                    .find(|t| t.pid == *pid)
                    .map(|t| t.proc_comm.as_str())
                    .or_else(|| procs.get(*pid).map(|p| p.comm.as_str()))
                    .unwrap_or("?");
                format!("{comm} [{pid}]")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} profile of {who}: {:.2}s, {} events",
        kind.name(),
        duration.as_secs_f64(),
        raw.counters.samples()
    )
}

fn apply_event(procs: &mut ProcessTable, event: ProcEvent) {
    // A process can exit before we read it; its samples then stay unsymbolized, which the
    // missing mapping shows.
    let _ = match event {
        ProcEvent::Fork { child: pid } if !procs.contains(pid) => procs.snapshot(pid, false),
        // Once per process image: after an exec, the first sample comes again, once the
        // loader has mapped the libraries.
        ProcEvent::FirstSample(pid) => procs.snapshot(pid, false),
        ProcEvent::Exec(pid) => procs.snapshot(pid, true),
        _ => Ok(()),
    };
}

/// For a whole-machine profile, the process with the most samples stands first.
fn busiest_pid(raw: &RawProfile) -> Option<u32> {
    let mut per_pid = std::collections::HashMap::<u32, i64>::new();
    for s in &raw.samples {
        *per_pid.entry(s.pid).or_default() += s.values.first().copied().unwrap_or(0);
    }
    per_pid.into_iter().max_by_key(|&(_, n)| n).map(|(p, _)| p)
}

fn comments(opts: &RecordOptions, kind: ProfileKind, counters: &Counters) -> Vec<String> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut c = vec![
        format!("command: {}", opts.command_line),
        format!("kernel: {}", kernel.trim()),
    ];
    match kind {
        ProfileKind::Cpu | ProfileKind::Wall => {
            c.push(format!("frequency: {} Hz", opts.frequency));
        }
        ProfileKind::OffCpu => {
            c.push(format!("min block: {:?}", opts.min_block));
            c.push(format!(
                "block rate: {:?} (shorter blocks are sampled and weighted)",
                opts.block_rate
            ));
        }
        ProfileKind::ThreadCreate => {}
        ProfileKind::Mutex => {
            c.push(format!(
                "block rate: {:?} (shorter lock waits are sampled and weighted)",
                opts.block_rate
            ));
            c.push("lock waits: futex waits of the targets, timed from the system call's entry to its exit; uncontended locks never reach the kernel".into());
        }
        ProfileKind::Alloc => {
            c.push(match opts.alloc_sample_bytes {
                0 => "alloc sampling: none, every allocation recorded".to_string(),
                n => format!(
                    "alloc sampling: one allocation per {n} bytes on average, weighted back"
                ),
            });
            c.push(
                "in use: only allocations made during the recording window that were not freed by its end"
                    .into(),
            );
        }
    }
    c.push(format!("dropped samples: {}", counters.dropped_samples()));
    c.push(format!("counters: {}", counters.describe_all()));
    c
}
