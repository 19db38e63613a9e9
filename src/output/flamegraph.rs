//! SVG flame graphs through inferno: a palette per kind of value (CPU warm, waiting blue,
//! memory green), kernel frames orange and inlined frames aqua whatever the palette, and
//! inferno's built-in search.
use std::io::{self, Write};

use inferno::flamegraph::color::{BasicPalette, Color, PaletteMap};
use inferno::flamegraph::{self, Options, Palette};

const KERNEL: Color = Color {
    r: 240,
    g: 140,
    b: 40,
};
const INLINED: Color = Color {
    r: 80,
    g: 200,
    b: 200,
};

/// The palette for a value column, by its sample type.
pub fn palette_for(sample_type: &str) -> BasicPalette {
    match sample_type {
        "cpu" | "samples" => BasicPalette::Hot,
        t if t.contains("space") || t.contains("objects") || t.contains("bytes") => {
            BasicPalette::Mem
        }
        _ => BasicPalette::Io,
    }
}

/// Writes folded `lines` as an SVG flame graph.
pub fn write_svg<W: Write>(
    lines: &[String],
    title: &str,
    subtitle: &str,
    palette: BasicPalette,
    count_name: &str,
    out: W,
) -> io::Result<()> {
    let mut colors = PaletteMap::default();
    for line in lines {
        let stack = line.rsplit_once(' ').map_or(line.as_str(), |(s, _)| s);
        for frame in stack.split(';') {
            if frame.ends_with("_[k]") {
                colors.insert(frame, KERNEL);
            } else if frame.ends_with("_[i]") {
                colors.insert(frame, INLINED);
            }
        }
    }
    let mut opts = Options::default();
    opts.title = title.to_owned();
    opts.subtitle = Some(subtitle.to_owned());
    opts.colors = Palette::Basic(palette);
    opts.count_name = count_name.to_owned();
    opts.deterministic = true;
    opts.palette_map = Some(&mut colors);
    if lines.is_empty() {
        // inferno refuses a graph of nothing; an empty profile still gets a (blank) image.
        return write_empty_svg(title, subtitle, out);
    }
    flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out)
}

/// A blank flame graph: the title, and a line saying there is nothing to draw.
fn write_empty_svg<W: Write>(title: &str, subtitle: &str, mut out: W) -> io::Result<()> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    write!(
        out,
        concat!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n",
            "<svg version=\"1.1\" width=\"1200\" height=\"120\" xmlns=\"http://www.w3.org/2000/svg\">\n",
            "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n",
            "<text x=\"600\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">{}</text>\n",
            "<text x=\"600\" y=\"48\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
            "<text x=\"600\" y=\"84\" text-anchor=\"middle\" font-size=\"14\">no samples to draw</text>\n",
            "</svg>\n"
        ),
        escape(title),
        escape(subtitle)
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_searchable_svg_with_kernel_frames_apart() {
        let lines = vec![
            "main;work 30".to_string(),
            "main;read;vfs_read_[k] 10".to_string(),
        ];
        let mut svg = Vec::new();
        write_svg(
            &lines,
            "cpu profile",
            "sub",
            BasicPalette::Hot,
            "samples",
            &mut svg,
        )
        .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("cpu profile") && svg.contains("work") && svg.contains("vfs_read"));
        assert!(
            svg.contains("rgb(240,140,40)"),
            "kernel frame coloured apart"
        );
        assert!(svg.contains("search"), "has inferno's search");
    }

    #[test]
    fn an_empty_profile_is_a_blank_image() {
        let mut svg = Vec::new();
        write_svg(
            &[],
            "cpu <profile>",
            "",
            BasicPalette::Hot,
            "samples",
            &mut svg,
        )
        .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("cpu &lt;profile&gt;") && svg.contains("no samples"));
    }

    #[test]
    fn palettes_by_kind() {
        assert!(matches!(palette_for("cpu"), BasicPalette::Hot));
        assert!(matches!(palette_for("off_cpu"), BasicPalette::Io));
        assert!(matches!(palette_for("inuse_space"), BasicPalette::Mem));
    }
}
