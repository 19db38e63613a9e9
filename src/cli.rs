//! Command-line parsing: only the shape of the arguments, no work.
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileType {
    /// On-CPU time, sampled on the CPU clock.
    Cpu,
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

    /// The kind of profile.
    #[arg(long = "type", value_enum, default_value_t = ProfileType::Cpu)]
    pub kind: ProfileType,

    /// Capacity of the in-kernel aggregation map, in distinct (thread, stack) pairs. A full
    /// map drops samples and reports them.
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_entries: u32,

    /// The command to launch and profile until it exits (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl RecordArgs {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RecordArgs, clap::Error> {
        let mut argv = vec!["rprof-bpf", "record"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| match c.command {
            Command::Record(r) => r,
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
    fn defaults_and_bad_values() {
        let r = parse(&["-a"]).unwrap();
        assert_eq!((r.frequency, r.kind), (99, ProfileType::Cpu));
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
}
