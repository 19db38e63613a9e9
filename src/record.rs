//! One recording, start to finish: target → collector → process table → symbols → pprof →
//! file. Every check that can fail before sampling runs before sampling.
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::assemble::{self, RecordingInfo};
use crate::bpf::counters::Counters;
use crate::collect::cpu::{CpuCollector, CpuConfig};
use crate::collect::{CollectError, ProcEvent};
use crate::output_file::{OutputError, PendingOutput};
use crate::preflight::{self, PreflightError};
use crate::procs::ProcessTable;
use crate::symbolize::Symbolizer;
use crate::target::{ExitStatus, Target, TargetError, TargetSpec};
use crate::{bpf::libbpf_log, signals};

/// How often the loop wakes to check the clock, signals and targets.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub target: TargetSpec,
    pub duration: Option<Duration>,
    pub frequency: u64,
    pub output: PathBuf,
    pub max_entries: u32,
    /// The command line, for the profile's comments.
    pub command_line: String,
    /// When the process started, for the attach latency.
    pub started: Instant,
    /// Print `timing:` lines (RPROF_TIMINGS=1), for the benchmark.
    pub print_timings: bool,
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
}

/// Why the recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Signal(i32),
    TargetsExited,
}

#[derive(Debug)]
pub struct RecordSummary {
    pub output: PathBuf,
    pub duration: Duration,
    pub counters: Counters,
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

fn record_target(opts: &RecordOptions, target: &mut Target) -> Result<RecordSummary, RecordError> {
    let output = PendingOutput::create(&opts.output)?;
    libbpf_log::capture();
    let cfg = CpuConfig {
        frequency: opts.frequency,
        pids: (!target.is_all()).then(|| target.pids()),
        follow_forks: target.is_launched(),
        max_entries: opts.max_entries,
    };
    let mut storage = MaybeUninit::uninit();
    let mut collector = CpuCollector::load(&mut storage, &cfg)?;
    let mut procs = ProcessTable::default();
    // Given pids are read now, while they surely live. A launched command is read after
    // its exec, on its first sample.
    if !target.is_launched() {
        for pid in target.pids() {
            let _ = procs.snapshot(pid, false);
        }
    }
    signals::install();
    collector.attach(opts.frequency)?;
    let start = Instant::now();
    let start_unix = SystemTime::now();
    target.release()?;
    if opts.print_timings {
        eprintln!("timing: attach_ms={}", opts.started.elapsed().as_millis());
    }

    let stop = loop {
        let wait = match opts.duration {
            Some(d) => d.saturating_sub(start.elapsed()).min(POLL_INTERVAL),
            None => POLL_INTERVAL,
        };
        for event in collector.poll(wait) {
            apply_event(&mut procs, event);
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
    collector.stop();
    let stopped = Instant::now();
    let duration = start.elapsed();
    for event in collector.poll(Duration::ZERO) {
        apply_event(&mut procs, event);
    }
    let raw = collector.drain()?;
    // Pick up libraries loaded since the first snapshot, and processes whose event was lost.
    for pid in raw.pids() {
        let _ = procs.snapshot(pid, false);
    }

    let info = RecordingInfo {
        period: 1_000_000_000 / opts.frequency as i64,
        start_unix_nanos: start_unix
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
        duration_nanos: duration.as_nanos() as i64,
        comments: comments(opts, &raw.counters),
        main_pid: target.pids().first().copied().or_else(|| busiest_pid(&raw)),
    };
    let profile = assemble::build_profile(assemble::CPU, &raw, &procs, &Symbolizer::new(), &info);
    let path = output.path().to_path_buf();
    output.commit(&profile)?;
    if opts.print_timings {
        eprintln!("timing: write_ms={}", stopped.elapsed().as_millis());
    }
    Ok(RecordSummary {
        output: path,
        duration,
        counters: raw.counters,
        stop,
        command_status: None,
    })
}

fn apply_event(procs: &mut ProcessTable, event: ProcEvent) {
    // A process can exit before we read it; its samples then stay unsymbolized, which the
    // missing mapping shows.
    let _ = match event {
        ProcEvent::FirstSample(pid) | ProcEvent::Fork { child: pid } if !procs.contains(pid) => {
            procs.snapshot(pid, false)
        }
        ProcEvent::Exec(pid) => procs.snapshot(pid, true),
        _ => Ok(()),
    };
}

/// For a whole-machine profile, the process with the most samples stands first.
fn busiest_pid(raw: &crate::raw::RawProfile) -> Option<u32> {
    let mut per_pid = std::collections::HashMap::<u32, i64>::new();
    for s in &raw.samples {
        *per_pid.entry(s.pid).or_default() += s.values.first().copied().unwrap_or(0);
    }
    per_pid.into_iter().max_by_key(|&(_, n)| n).map(|(p, _)| p)
}

fn comments(opts: &RecordOptions, counters: &Counters) -> Vec<String> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        format!("command: {}", opts.command_line),
        format!("kernel: {}", kernel.trim()),
        format!("frequency: {} Hz", opts.frequency),
        format!("dropped samples: {}", counters.dropped_samples()),
        format!("counters: {}", counters.describe_all()),
    ]
}
