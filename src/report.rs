//! `rprof-bpf report`: reads any pprof profile (ours, Go's runtime/pprof, one fetched from
//! `/debug/pprof`; gzipped or not) and prints a top table or converts it.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::output::{self, Format, RenderError, RenderOptions};
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
}

pub fn report(opts: &ReportOptions) -> Result<(), ReportError> {
    let profile = read_profile(&opts.input)?;
    let input = opts.input.display().to_string();
    let render_err = |source| ReportError::Render {
        path: input.clone(),
        source,
    };
    let out: Box<dyn Write> = match &opts.output {
        Some(path) => Box::new(BufWriter::new(File::create(path).map_err(|source| {
            ReportError::Output {
                path: path.display().to_string(),
                source,
            }
        })?)),
        None => Box::new(io::stdout().lock()),
    };
    let format = match opts.format {
        ReportFormat::Text => {
            let table = output::top_table(&profile, &opts.render, opts.top)
                .map_err(|e| render_err(e.into()))?;
            let mut out = out;
            return out
                .write_all(table.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| render_err(e.into()));
        }
        ReportFormat::Folded => Format::Folded,
        ReportFormat::Svg => Format::Svg,
        ReportFormat::Pprof => Format::Pprof,
    };
    output::render(&profile, format, &opts.render, out).map_err(render_err)
}
