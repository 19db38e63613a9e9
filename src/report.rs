//! `rprof-bpf report`: reads any pprof profile (ours, Go's runtime/pprof, one fetched from
//! `/debug/pprof`; gzipped or not) and prints a top table or converts it.
use std::io::{self, Write};
use std::path::PathBuf;

use crate::output::{self, Format, RenderError, RenderOptions};
use crate::output_file::{OutputError, PendingOutput};
use crate::pprof::{read_profile, ReadError};

/// What `report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A top table, like `go tool pprof -top`.
    Text,
    Folded,
    Svg,
    /// Re-encoded gzipped pprof.
    Pprof,
}

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub input: PathBuf,
    pub format: ReportFormat,
    pub output: Option<PathBuf>,
    pub top: usize,
    pub render: RenderOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {source}")]
    Render { path: String, source: RenderError },
    #[error("cannot write {path}: {source}")]
    Output { path: String, source: io::Error },
    #[error(transparent)]
    OutputFile(#[from] OutputError),
}

pub fn report(opts: &ReportOptions) -> Result<(), ReportError> {
    let profile = read_profile(&opts.input)?;
    let render_err = |source| ReportError::Render {
        path: opts.input.display().to_string(),
        source,
    };
    // Everything is made in memory first, so a profile that cannot be shown leaves no
    // output file behind (and an existing one untouched).
    let mut made = Vec::new();
    match opts.format {
        ReportFormat::Text => {
            made = output::top_table(&profile, &opts.render, opts.top)
                .map_err(|e| render_err(e.into()))?
                .into_bytes()
        }
        format => {
            let format = match format {
                ReportFormat::Folded => Format::Folded,
                ReportFormat::Svg => Format::Svg,
                _ => Format::Pprof,
            };
            output::render(&profile, format, &opts.render, &mut made).map_err(render_err)?;
        }
    }
    match &opts.output {
        Some(path) => {
            let out_err = |source| ReportError::Output {
                path: path.display().to_string(),
                source,
            };
            PendingOutput::create(path)?
                .commit(|f| f.write_all(&made))
                .map_err(out_err)
        }
        None => {
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(&made)
                .and_then(|()| stdout.flush())
                .map_err(|source| ReportError::Output {
                    path: "standard output".into(),
                    source,
                })
        }
    }
}
