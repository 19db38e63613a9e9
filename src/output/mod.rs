//! What people look at: folded stacks, SVG flame graphs and a top table, all made from a
//! decoded profile (ours or anyone's), so `record` and `report` share them.
pub mod flamegraph;
pub mod folded;
pub mod top;

use std::io::{self, Write};
use std::path::Path;

use clap::ValueEnum;

use crate::pprof::proto::Profile;
use crate::pprof::{write_profile, Frame, ProfileError, ProfileView, Stack};

/// The file formats `record` and `report` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Gzipped pprof profile.proto.
    Pprof,
    /// Folded stacks (`root;...;leaf COUNT`), for flamegraph.pl, inferno and speedscope.
    Folded,
    /// An SVG flame graph.
    Svg,
}

impl Format {
    /// The format an output path implies by its extension, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".svg") {
            Some(Self::Svg)
        } else if name.ends_with(".folded") {
            Some(Self::Folded)
        } else if name.ends_with(".pb.gz") || name.ends_with(".pprof") || name.ends_with(".pb") {
            Some(Self::Pprof)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("writing the output: {0}")]
    Io(#[from] io::Error),
}

/// How a profile is drawn or listed.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// The value column by name; the profile's default when `None`.
    pub sample_index: Option<String>,
    /// Add process and thread roots from the labels (for profiles without them).
    pub thread_roots: bool,
    /// The flame graph's title; derived from the profile when `None`.
    pub title: Option<String>,
}

/// The chosen column's stacks, with thread roots added if asked.
fn stacks_of<'p>(
    profile: &'p Profile,
    opts: &RenderOptions,
) -> Result<(ProfileView<'p>, usize, Vec<Stack>), ProfileError> {
    let view = ProfileView::new(profile)?;
    let index = view.sample_index(opts.sample_index.as_deref())?;
    let mut stacks = view.stacks(index);
    if opts.thread_roots {
        add_thread_roots(&mut stacks);
    }
    Ok((view, index, stacks))
}

/// Writes `profile` in `format`.
pub fn render<W: Write>(
    profile: &Profile,
    format: Format,
    opts: &RenderOptions,
    mut out: W,
) -> Result<(), RenderError> {
    if format == Format::Pprof {
        // Check it as any reader would before writing it on.
        ProfileView::new(profile)?;
        write_profile(profile, out)?;
        return Ok(());
    }
    let (view, index, stacks) = stacks_of(profile, opts)?;
    let lines = folded::folded_lines(&stacks);
    match format {
        Format::Folded => {
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        Format::Svg => {
            let kind = view.type_name(index);
            let total = stacks
                .iter()
                .fold(0i64, |acc, s| acc.saturating_add(s.value));
            let title = opts
                .title
                .clone()
                .unwrap_or_else(|| format!("{kind} profile"));
            let subtitle = format!(
                "{} {} in {:.2}s of recording, {} distinct stacks",
                total,
                view.unit(index),
                profile.duration_nanos as f64 / 1e9,
                lines.len()
            );
            flamegraph::write_svg(
                &lines,
                &title,
                &subtitle,
                flamegraph::palette_for(kind),
                view.unit(index),
                out,
            )?;
        }
        Format::Pprof => unreachable!("handled above"),
    }
    Ok(())
}

/// The top `limit` functions of the chosen column, as a table.
pub fn top_table(
    profile: &Profile,
    opts: &RenderOptions,
    limit: usize,
) -> Result<String, ProfileError> {
    let (view, index, stacks) = stacks_of(profile, opts)?;
    let (rows, total) = top::top_rows(&stacks);
    Ok(format!(
        "Type: {}\n{}",
        view.type_name(index),
        top::format_top(&rows, total, view.unit(index), limit)
    ))
}

/// Adds synthetic process and thread roots from the `comm`/`pid` and `thread_comm`/`tid`
/// labels, for profiles recorded without `--thread-roots`.
pub fn add_thread_roots(stacks: &mut [Stack]) {
    for s in stacks {
        let label = |k: &str| {
            s.labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let (Some(pid), Some(tid)) = (label("pid"), label("tid")) else {
            continue;
        };
        let process = format!("{} [{pid}]", label("comm").unwrap_or("?"));
        let thread = format!("{} [{tid}]", label("thread_comm").unwrap_or("?"));
        let roots = [process, thread].map(|name| Frame {
            name,
            kernel: false,
            inlined: false,
        });
        s.frames.splice(0..0, roots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("x/cpu.svg")), Some(Format::Svg));
        assert_eq!(
            Format::from_path(Path::new("cpu.folded")),
            Some(Format::Folded)
        );
        assert_eq!(Format::from_path(Path::new("p.pb.gz")), Some(Format::Pprof));
        assert_eq!(Format::from_path(Path::new("out")), None);
    }

    #[test]
    fn thread_roots_come_from_labels() {
        let mut stacks = vec![Stack {
            frames: vec![Frame {
                name: "main".into(),
                kernel: false,
                inlined: false,
            }],
            value: 1,
            labels: vec![
                ("pid".into(), "7".into()),
                ("tid".into(), "8".into()),
                ("comm".into(), "app".into()),
                ("thread_comm".into(), "worker".into()),
            ],
        }];
        add_thread_roots(&mut stacks);
        let names: Vec<&str> = stacks[0].frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["app [7]", "worker [8]", "main"]);
    }
}
