//! Command-line parsing: only the shape of the arguments, no work.
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use rprof_bpf::bpf::shared::block_state_filter as F;
use rprof_bpf::collect::stack_samples::DEFAULT_COPY_BYTES;
use rprof_bpf::kind::ProfileKind;
use rprof_bpf::output::Format;
use rprof_bpf::report::ReportFormat;
use rprof_bpf::target::TargetSpec;

#[derive(Debug, Parser)]
#[command(
    name = "rprof-bpf",
    version,
    about = "Profile any Linux process with eBPF and write pprof profiles",
    long_about = "Profile any Linux process from outside, with no code changes, using CO-RE eBPF. \
                  Writes gzipped pprof profiles for `go tool pprof`, pprof, speedscope, Pyroscope and Parca."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a profile of processes, the whole machine, or a command.
    #[command(
        after_help = "Examples:\n  sudo rprof-bpf record -p 1234 --seconds 30\n  sudo rprof-bpf record -a --seconds 10 -o all.pb.gz\n  sudo rprof-bpf record -o app.pb.gz -- ./app --its-args\n  go tool pprof -http=: profile.pb.gz"
    )]
    Record(RecordArgs),
    /// Print a top table of any pprof profile (ours, Go's runtime/pprof, gzipped or not), or
    /// convert it to folded stacks or an SVG flame graph.
    #[command(
        after_help = "Examples:\n  rprof-bpf report profile.pb.gz --top 20\n  rprof-bpf report profile.pb.gz --format svg -o cpu.svg\n  rprof-bpf report heap.pb.gz --sample-index inuse_space"
    )]
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The profile to read.
    pub input: PathBuf,

    /// Rows of the top table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,

    /// What to write: a top table (text), folded stacks, an SVG flame graph, or pprof. When
    /// not given, the extension of -o decides, and text otherwise.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,

    /// Where to write; standard output when not given.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// The value column to show (e.g. cpu, off_cpu, inuse_space); the profile's default
    /// otherwise.
    #[arg(long)]
    pub sample_index: Option<String>,

    /// Add a root frame per process and thread, from the pid/tid labels.
    #[arg(long)]
    pub thread_roots: bool,
}

impl ReportArgs {
    pub fn format(&self) -> ReportFormat {
        self.format.unwrap_or_else(
            || match self.output.as_deref().and_then(Format::from_path) {
                Some(Format::Svg) => ReportFormat::Svg,
                Some(Format::Folded) => ReportFormat::Folded,
                Some(Format::Pprof) => ReportFormat::Pprof,
                None => ReportFormat::Text,
            },
        )
    }
}

/// `--state`: which off-CPU states to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Interruptible sleep (waiting for an event: sleeps, locks, pipes, sockets).
    #[value(name = "S")]
    Sleeping,
    /// Uninterruptible sleep (usually disk I/O).
    #[value(name = "D")]
    Disk,
    /// Every state, including runnable threads waiting for a CPU (R).
    All,
}

impl StateArg {
    /// The BPF filter bits (`enum block_state_filter`).
    pub fn filter(self) -> u32 {
        match self {
            Self::Sleeping => F::STATE_FILTER_SLEEPING.0,
            Self::Disk => F::STATE_FILTER_DISK.0,
            Self::All => F::STATE_FILTER_ALL.0,
        }
    }
}

/// How user stacks are unwound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGraph {
    /// Copy the top this many bytes of the stack and unwind them with the binaries' CFI.
    Dwarf(u32),
    /// Walk frame pointers in the kernel.
    Fp,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Process ids to profile (repeat, or separate with commas). Covers all their threads,
    /// including ones created while recording.
    #[arg(short = 'p', long = "pid", value_delimiter = ',', conflicts_with_all = ["all_cpus", "command"])]
    pub pids: Vec<u32>,

    /// Profile every process on the machine.
    #[arg(short = 'a', long = "all-cpus", conflicts_with = "command")]
    pub all_cpus: bool,

    /// Length of the recording in seconds (fractions allowed). Without it, record until
    /// Ctrl-C or until every target has exited.
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: Option<Duration>,

    /// Sampling frequency in Hz.
    #[arg(short = 'F', long, default_value_t = 99)]
    pub frequency: u64,

    /// Where to write the profile (gzipped pprof).
    #[arg(short = 'o', long, default_value = "profile.pb.gz")]
    pub output: PathBuf,

    /// The kinds of profile, comma-separated. With several, each goes to its own file:
    /// `-o prof.pb.gz` writes prof.cpu.pb.gz, prof.off-cpu.pb.gz, ...
    #[arg(
        long = "type",
        value_enum,
        value_delimiter = ',',
        default_value = "cpu"
    )]
    pub kinds: Vec<ProfileKind>,

    /// off-CPU: ignore blocks shorter than this (e.g. 500us, 1ms, 2s).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub min_block: Duration,

    /// off-CPU, wall and mutex: blocks (and lock waits) shorter than this are recorded with
    /// probability duration/RATE and weighted back, as Go's block profile rate does, so
    /// totals stay unbiased while a busy program's many short blocks cost little. 0 records
    /// every one. At most 4s.
    #[arg(long, value_parser = parse_block_rate, default_value = "1ms")]
    pub block_rate: Duration,

    /// alloc: sample one allocation per this many bytes on average (an allocation of S
    /// bytes is kept with probability S/N and weighted back), as Go's MemProfileRate. In-use
    /// values cover only allocations made during the recording that were not freed by its
    /// end. 0 records every allocation.
    #[arg(long, value_name = "N", default_value_t = 512 * 1024)]
    pub alloc_sample_bytes: u64,

    /// off-CPU: record only blocks that began in this state.
    #[arg(long, value_enum, default_value = "all")]
    pub state: StateArg,

    /// Add a root frame per process (`COMM [PID]`) and below it per thread
    /// (`THREAD [TID]`), so any viewer shows one tower per thread.
    #[arg(long)]
    pub thread_roots: bool,

    /// Output format. When not given, the extension of -o decides (.svg, .folded), and pprof
    /// otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Also print the top N functions to standard output when done.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// No progress line and no summary; errors are still printed.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// How user stacks are unwound. `dwarf` copies the top 16 KiB of the stack
    /// (`dwarf,SIZE`: SIZE bytes, a multiple of 4K up to 64K) and unwinds it with the binaries'
    /// .eh_frame/.debug_frame, so callers show in code without frame
    /// pointers (distro libraries such as libc, -O2 leaf functions, Rust release builds).
    /// `fp` walks frame pointers in the kernel: cheaper, but it loses those callers. mutex
    /// always uses CFI; off-cpu and wall need bpf_task_work (Linux 6.18+) for it, and alloc
    /// sampling (--alloc-sample-bytes above 0).
    #[arg(long, value_name = "dwarf[,SIZE]|fp", value_parser = parse_call_graph, default_value = "dwarf")]
    pub call_graph: CallGraph,

    /// Most memory for unwind rows (e.g. 64M, 1G): past it, the files used longest ago are
    /// evicted, then the functions read so far are forgotten (and read again when needed).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "512M")]
    pub max_unwind_memory: usize,

    /// Capacity of the in-kernel aggregation map, in distinct (thread, stack) pairs. A full
    /// map drops samples and reports them.
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_entries: u32,

    /// The command to launch and profile until it exits (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl RecordArgs {
    /// The output format: as given, or from the extension of -o.
    pub fn format(&self) -> Format {
        self.format
            .or_else(|| Format::from_path(&self.output))
            .unwrap_or(Format::Pprof)
    }

    /// The kinds asked for, in order, each once.
    pub fn kinds(&self) -> Vec<ProfileKind> {
        let mut kinds = Vec::new();
        for &k in &self.kinds {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds
    }

    /// The target, or an error message when none was given.
    pub fn target(&self) -> Result<TargetSpec, &'static str> {
        if !self.command.is_empty() {
            Ok(TargetSpec::Command(self.command.clone()))
        } else if self.all_cpus {
            Ok(TargetSpec::All)
        } else if !self.pids.is_empty() {
            Ok(TargetSpec::Pids(self.pids.clone()))
        } else {
            Err("nothing to profile: give -p PID, -a, or -- CMD ARGS")
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s} is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration with a unit: ns, us, ms or s (`500us`, `1.5ms`, `2s`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 500us, 1ms or 2s");
    // Zero needs no unit.
    if s.parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let nanos_per = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(bad()),
    };
    Ok(Duration::from_nanos((value * nanos_per).round() as u64))
}

/// `fp`, `dwarf` or `dwarf,SIZE` (as perf's --call-graph).
fn parse_call_graph(s: &str) -> Result<CallGraph, String> {
    let (mode, size) = s.split_once(',').map_or((s, None), |(m, z)| (m, Some(z)));
    match (mode, size) {
        ("fp", None) => Ok(CallGraph::Fp),
        ("dwarf", None) => Ok(CallGraph::Dwarf(DEFAULT_COPY_BYTES)),
        ("dwarf", Some(size)) => {
            let bytes = parse_size(size)?;
            if bytes % 4096 != 0 || !(4096..=65536).contains(&bytes) {
                return Err(format!(
                    "the stack copy of {size} must be a multiple of 4K from 4K to 64K"
                ));
            }
            Ok(CallGraph::Dwarf(bytes as u32))
        }
        _ => Err(format!("{s:?} is not fp, dwarf or dwarf,SIZE")),
    }
}

/// A size in bytes, with an optional binary unit: K, M, G (or KiB, MiB, GiB).
fn parse_size(s: &str) -> Result<usize, String> {
    let bad = || format!("{s:?} is not a size like 64M or 1G");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: usize = num.parse().map_err(|_| bad())?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return Err(bad()),
    };
    value
        .checked_mul(1 << shift)
        .filter(|&v| v > 0)
        .ok_or_else(bad)
}

fn parse_block_rate(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    // The BPF side draws a 32-bit random number scaled to the rate.
    if d > Duration::from_secs(4) {
        return Err(format!("{s} is above the limit of 4s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RecordArgs, clap::Error> {
        let mut argv = vec!["rprof-bpf", "record"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| match c.command {
            Command::Record(r) => r,
            Command::Report(_) => unreachable!("parsing record"),
        })
    }

    #[test]
    fn pids_repeat_and_split_on_commas() {
        let r = parse(&["-p", "1,2", "-p", "3"]).unwrap();
        assert_eq!(r.pids, vec![1, 2, 3]);
        assert!(matches!(r.target(), Ok(TargetSpec::Pids(p)) if p == vec![1, 2, 3]));
    }

    #[test]
    fn command_after_double_dash() {
        let r = parse(&["-o", "x.pb.gz", "--", "./app", "--its-args"]).unwrap();
        assert!(matches!(r.target(), Ok(TargetSpec::Command(c)) if c.len() == 2));
        assert_eq!(r.output, PathBuf::from("x.pb.gz"));
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert_eq!(parse_call_graph("dwarf,64K"), Ok(CallGraph::Dwarf(65536)));
        assert_eq!(parse_call_graph("fp"), Ok(CallGraph::Fp));
        assert!(parse_call_graph("dwarf,5000").is_err());
        assert!(parse_call_graph("dwarf,128K").is_err());
        assert!(parse_call_graph("lbr").is_err());
        let r = parse(&["-a"]).unwrap();
        assert_eq!(
            (r.call_graph, r.max_unwind_memory),
            (CallGraph::Dwarf(16384), 512 << 20)
        );
    }

    #[test]
    fn defaults_and_bad_values() {
        let r = parse(&["-a"]).unwrap();
        assert_eq!((r.frequency, r.kinds()), (99, vec![ProfileKind::Cpu]));
        assert_eq!(r.state, StateArg::All);
        assert_eq!(r.min_block, Duration::ZERO);
        assert!(r.seconds.is_none());
        assert!(parse(&["-a", "--seconds", "0"]).is_err());
        assert!(parse(&["-a", "--seconds", "abc"]).is_err());
        assert!(parse(&["-a", "--type", "nope"]).is_err());
        assert!(parse(&["-a", "-p", "1"]).is_err());
        assert!(parse(&[]).unwrap().target().is_err());
        assert_eq!(
            parse(&["-a", "--seconds", "1.5"]).unwrap().seconds,
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn kinds_split_on_commas_once_each() {
        let r = parse(&[
            "-a",
            "--type",
            "cpu,off-cpu",
            "--type",
            "cpu,wall,threadcreate",
        ])
        .unwrap();
        assert_eq!(
            r.kinds(),
            vec![
                ProfileKind::Cpu,
                ProfileKind::OffCpu,
                ProfileKind::Wall,
                ProfileKind::ThreadCreate
            ]
        );
        let err = parse(&["-a", "--type", "heap"]).unwrap_err().to_string();
        assert!(
            err.contains("off-cpu") && err.contains("threadcreate"),
            "{err}"
        );
    }

    #[test]
    fn formats_follow_the_output_name() {
        assert_eq!(parse(&["-a"]).unwrap().format(), Format::Pprof);
        assert_eq!(parse(&["-a", "-o", "x.svg"]).unwrap().format(), Format::Svg);
        assert_eq!(
            parse(&["-a", "-o", "x.svg", "--format", "folded"])
                .unwrap()
                .format(),
            Format::Folded
        );
        let report = |args: &[&str]| {
            let mut argv = vec!["rprof-bpf", "report"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Report(r) => r.format(),
                Command::Record(_) => unreachable!(),
            }
        };
        assert_eq!(report(&["p.pb.gz"]), ReportFormat::Text);
        assert_eq!(report(&["p.pb.gz", "-o", "f.folded"]), ReportFormat::Folded);
    }

    #[test]
    fn durations_and_states() {
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert!(parse_duration("5parsecs").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("10").is_err());
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse(&["-a", "--state", "D"]).unwrap().state,
            StateArg::Disk
        );
        assert!(parse(&["-a", "--state", "X"]).is_err());
        assert!(parse(&["-a", "--min-block", "5parsecs"]).is_err());
    }
}
