//! The rprof-bpf command: parses arguments, runs the library, and turns errors into one
//! line on stderr and a non-zero exit.
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Parser;

use std::io::IsTerminal;

use rprof_bpf::kind::ProfileKind;
use rprof_bpf::output::{Format, RenderOptions};
use rprof_bpf::record::{self, RecordOptions, RecordSummary};
use rprof_bpf::report::{self, ReportOptions};

mod cli;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = cli::Cli::parse();
    match run(cli, started) {
        Ok(code) => code,
        Err(e) => {
            // Our error types carry their cause in their message already.
            eprintln!("rprof-bpf: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli, started: Instant) -> Result<ExitCode> {
    match cli.command {
        cli::Command::Report(args) => {
            report::report(&ReportOptions {
                format: args.format(),
                input: args.input,
                output: args.output,
                top: args.top,
                render: RenderOptions {
                    sample_index: args.sample_index,
                    thread_roots: args.thread_roots,
                    title: None,
                },
            })?;
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Record(args) => {
            let target = args.target().map_err(|e| anyhow!(e))?;
            let opts = RecordOptions {
                target,
                kinds: args.kinds(),
                min_block: args.min_block,
                block_rate: args.block_rate,
                state_filter: args.state.filter(),
                thread_roots: args.thread_roots,
                alloc_sample_bytes: args.alloc_sample_bytes,
                stack_copy_bytes: match args.call_graph {
                    cli::CallGraph::Dwarf(bytes) => bytes,
                    cli::CallGraph::Fp => 0,
                },
                unwind_memory: args.max_unwind_memory,
                format: args.format(),
                top: args.top,
                progress: !args.quiet && std::io::stderr().is_terminal(),
                duration: args.seconds,
                frequency: args.frequency,
                output: args.output.clone(),
                max_entries: args.max_entries,
                command_line: std::env::args().collect::<Vec<_>>().join(" "),
                started,
                print_timings: std::env::var_os("RPROF_TIMINGS").is_some_and(|v| v == "1"),
            };
            let summary = record::record(&opts)?;
            if !args.quiet {
                print_summary(&summary, opts.format);
            }
            for table in summary.profiles.iter().filter_map(|p| p.top.as_ref()) {
                print!("{table}");
            }
            // Ctrl-C is the normal end of an open-ended recording, so it is a success, as
            // with perf record; a launched command's own exit code is passed on.
            Ok(match summary.command_status {
                Some(status) => ExitCode::from(status.shell_code().clamp(0, 255) as u8),
                None => ExitCode::SUCCESS,
            })
        }
    }
}

/// One line per kind that could not run, then one per profile written.
fn print_summary(s: &RecordSummary, format: Format) {
    for (kind, why) in &s.unavailable {
        eprintln!("rprof-bpf: warning: no {} profile: {why}", kind.name());
    }
    let perf_map_failures = s.perf_maps.nonzero_failures();
    if !perf_map_failures.is_empty() {
        let counts: Vec<String> = perf_map_failures
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        eprintln!(
            "rprof-bpf: warning: perf maps of JIT code partly ignored: {}",
            counts.join(", ")
        );
    }
    for p in &s.profiles {
        let events = match p.kind {
            ProfileKind::Cpu | ProfileKind::Wall => "samples",
            ProfileKind::OffCpu => "blocks",
            ProfileKind::ThreadCreate => "creations",
            ProfileKind::Alloc => "sampled allocations",
            ProfileKind::Mutex => "lock waits",
        };
        let mut line = format!(
            "rprof-bpf: {}: {} {events} in {:.2}s",
            p.kind.name(),
            p.counters.samples(),
            s.duration.as_secs_f64()
        );
        for (name, value) in p.counters.nonzero_failures() {
            line.push_str(&format!(", {name}={value}"));
        }
        if let Some(share) = p.stack_ends.complete_share() {
            line.push_str(&format!(", {:.1}% of user stacks complete", share * 100.0));
            for (name, value) in p.stack_ends.nonzero() {
                if name != "outermost" {
                    line.push_str(&format!(", stack_end_{name}={value}"));
                }
            }
        }
        let path = p.output.display();
        let open = match format {
            Format::Pprof => format!("open with: go tool pprof -http=: {path}"),
            Format::Svg => "open it in a browser".to_string(),
            Format::Folded => "feed it to flamegraph.pl, inferno or speedscope".to_string(),
        };
        line.push_str(&format!("; wrote {path}; {open}"));
        eprintln!("{line}");
    }
}
