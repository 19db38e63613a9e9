//! `rprof-bpf report` on profiles it did not record: Go's own runtime/pprof output (checked
//! against `go tool pprof -top`), profiles built here with known contents (every format,
//! format by extension, palettes, kernel and inlined frames, names that need escaping), and
//! bad input (not a profile, broken gzip, profiles that break pprof's rules, unknown
//! columns, missing files): one clear line on stderr, never a panic.
//!
//! None of these needs root: they only read files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use rprof_bpf::pprof::proto::Profile;
use rprof_bpf::pprof::{
    read_profile, write_profile, FrameInfo, LabelValue, MappingInfo, ProfileBuilder, SampleType,
};

use common::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs the gocpu workload (no profiler involved) so that it writes its own runtime/pprof
/// CPU profile to `dir/go.pprof`, and returns that path.
fn go_own_profile(dir: &TempDir, seconds: &str) -> PathBuf {
    let bin = build_go("gocpu", dir.path());
    let path = dir.join("go.pprof");
    let out = Command::new(&bin)
        .arg(&path)
        .arg(seconds)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "gocpu failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn write_gz(profile: &Profile, path: &Path) {
    let file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    write_profile(profile, file).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn write_plain(profile: &Profile, path: &Path) {
    std::fs::write(path, profile.encode_to_vec())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn frame(name: &str) -> FrameInfo {
    FrameInfo {
        name: name.to_string(),
        file: "app.c".to_string(),
        line: 10,
        ..Default::default()
    }
}

const CPU_TYPES: &[SampleType] = &[
    SampleType {
        kind: "samples",
        unit: "count",
    },
    SampleType {
        kind: "cpu",
        unit: "nanoseconds",
    },
];

const HEAP_TYPES: &[SampleType] = &[
    SampleType {
        kind: "alloc_objects",
        unit: "count",
    },
    SampleType {
        kind: "alloc_space",
        unit: "bytes",
    },
    SampleType {
        kind: "inuse_objects",
        unit: "count",
    },
    SampleType {
        kind: "inuse_space",
        unit: "bytes",
    },
];

const OFF_CPU_TYPES: &[SampleType] = &[
    SampleType {
        kind: "switches",
        unit: "count",
    },
    SampleType {
        kind: "off_cpu",
        unit: "nanoseconds",
    },
];

/// A small profile with known stacks (leaf first):
///
/// - `read_[k] <- do_read (inlined into) <- worker <- main`, value `a` per column,
///   pid 7 / tid 8, comm `app`, thread `w1`;
/// - `compute <- worker <- main`, value `b`, same thread;
/// - `0x4000 (no symbols) <- main`, value `c`, pid 7 / tid 9, thread `w2`.
///
/// The last column (the default) holds `(a, b, c)`; column i of n holds them times `n - i`
/// (so the `samples` column of a CPU profile holds twice the values).
fn known_profile(types: &[SampleType], (a, b, c): (i64, i64, i64)) -> Profile {
    let mut p = ProfileBuilder::new(types, types[types.len() - 1], 1);
    let exe = p.mapping(&MappingInfo {
        start: 0x1000,
        limit: 0x9000,
        path: "/usr/bin/app".to_string(),
        has_functions: true,
        has_inline_frames: true,
        ..Default::default()
    });
    let kernel = p.mapping(&MappingInfo {
        start: 0xffff_ffff_8100_0000,
        limit: 0xffff_ffff_8200_0000,
        path: KERNEL_MAPPING.to_string(),
        has_functions: true,
        ..Default::default()
    });
    let sys = p.location(kernel, 0xffff_ffff_8100_1000, &[frame("read")]);
    let read = p.location(exe, 0x1100, &[frame("do_read"), frame("worker")]);
    let compute = p.location(exe, 0x1200, &[frame("compute")]);
    let worker = p.location(exe, 0x1300, &[frame("worker")]);
    let main = p.location(exe, 0x1400, &[frame("main")]);
    let raw = p.location(exe, 0x4000, &[]);
    let labels = |tid: i64, thread: &str| {
        vec![
            ("pid", LabelValue::num(7)),
            ("tid", LabelValue::num(tid)),
            ("comm", LabelValue::Str("app".to_string())),
            ("thread_comm", LabelValue::Str(thread.to_string())),
        ]
    };
    let n = types.len() as i64;
    let values = |v: i64| (0..n).map(|i| v * (n - i)).collect::<Vec<_>>();
    p.sample(vec![sys, read, main], &values(a), &labels(8, "w1"));
    p.sample(vec![compute, worker, main], &values(b), &labels(8, "w1"));
    p.sample(vec![raw, main], &values(c), &labels(9, "w2"));
    p.time(1_700_000_000_000_000_000, 2_000_000_000);
    p.build()
}

/// The rows of our top table for `args`, as parsed.
fn our_top(args: &[&str]) -> TopTable {
    parse_top(&report_ok(args))
}

/// Asserts a failed `report`: exit code non-zero, exactly one line on stderr starting
/// `rprof-bpf: error:` that contains each of `needles`, nothing on stdout, no panic.
fn assert_report_error(run: &RunOutput, needles: &[&str]) {
    run.assert_one_line_error();
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "report panicked\n{}",
        run.describe()
    );
    let line = run.stderr.trim();
    assert!(
        line.starts_with("rprof-bpf: error: "),
        "the error line should start with `rprof-bpf: error: `\n{}",
        run.describe()
    );
    for needle in needles {
        assert!(
            line.contains(needle),
            "the error should mention {needle:?}\n{}",
            run.describe()
        );
    }
    assert!(
        run.stdout.is_empty(),
        "nothing should go to stdout on an error\n{}",
        run.describe()
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

// ---------------------------------------------------------------------------------------
// Go's own profiles
// ---------------------------------------------------------------------------------------

/// Compares our top table with `go tool pprof -top`'s for the same file and sample index:
/// the same type and total, and row by row the same flat values (within `tolerance` of the
/// total, for the rounding of each table) and the same names, except where a tie makes the
/// order arbitrary; then the same cum values for each name.
fn assert_tables_agree(ours: &TopTable, go: &TopTable, context: &str) {
    assert_eq!(ours.kind, go.kind, "Type differs\n{context}");
    let tolerance = 0.005 * go.total;
    assert!(
        (ours.total - go.total).abs() <= tolerance,
        "totals differ: ours {} go {}\n{context}",
        ours.total,
        go.total
    );
    assert_eq!(
        ours.rows.len(),
        go.rows.len(),
        "different numbers of rows\n{context}"
    );
    if let Some(go_nodes) = go.nodes_out_of {
        assert_eq!(
            ours.nodes_out_of,
            Some(go_nodes),
            "`Showing top N nodes out of M` differs\n{context}"
        );
    }
    for (i, (o, g)) in ours.rows.iter().zip(&go.rows).enumerate() {
        assert!(
            (o.flat - g.flat).abs() <= tolerance,
            "row {i}: flat {} ({}) vs go's {} ({})\n{context}",
            o.flat,
            o.name,
            g.flat,
            g.name
        );
        let tied = go
            .rows
            .iter()
            .filter(|r| (r.flat - g.flat).abs() <= tolerance)
            .count()
            > 1;
        if !tied {
            assert_eq!(o.name, g.name, "row {i}: name differs\n{context}");
        }
        let same = ours
            .row(&g.name)
            .or_else(|| tied.then_some(o))
            .filter(|r| r.name == g.name);
        if let Some(r) = same {
            assert!(
                (r.cum - g.cum).abs() <= tolerance,
                "{}: cum {} vs go's {}\n{context}",
                g.name,
                r.cum,
                g.cum
            );
            assert!(
                (r.flat_pct - g.flat_pct).abs() <= 0.5 && (r.cum_pct - g.cum_pct).abs() <= 0.5,
                "{}: percentages {}%/{}% vs go's {}%/{}%\n{context}",
                g.name,
                r.flat_pct,
                r.cum_pct,
                g.flat_pct,
                g.cum_pct
            );
        }
    }
}

/// `report` on a profile written by a Go program's own runtime/pprof gives the top
/// functions and flat values that `go tool pprof -top` gives, for the default column and
/// for `--sample-index samples`, gzipped as Go writes it and decompressed.
#[test]
fn go_runtime_pprof_profile_matches_go_tool_pprof_top() {
    let dir = TempDir::new("report-go");
    let gz = go_own_profile(&dir, "2");
    // The same profile, not gzipped.
    let plain = dir.join("go-plain.pb");
    write_plain(&read_profile(&gz).expect("Go's profile decodes"), &plain);

    for (index, go_index) in [
        (None, None),
        (Some("samples"), Some("-sample_index=samples")),
        (Some("cpu"), Some("-sample_index=cpu")),
    ] {
        for n in [5, 100] {
            let nodecount = format!("-nodecount={n}");
            let mut go_args = vec!["-top", "-nodefraction=0", &nodecount, "-symbolize=none"];
            go_args.extend(go_index);
            let go_text = go_pprof(&go_args, &gz);
            let go = parse_top(&go_text);
            let top = n.to_string();
            for input in [&gz, &plain] {
                let mut args = vec![path_str(input), "--top", &top];
                if let Some(i) = index {
                    args.extend(["--sample-index", i]);
                }
                let ours_text = report_ok(&args);
                let ours = parse_top(&ours_text);
                let context = format!(
                    "rprof-bpf report {}:\n{ours_text}\ngo tool pprof {}:\n{go_text}",
                    args.join(" "),
                    go_args.join(" ")
                );
                assert!(
                    ours.rows.len() >= 2 && ours.total > 0.0,
                    "Go's profile should have the workers' functions\n{context}"
                );
                assert!(
                    ours.row("main.hotA").is_some() && ours.row("main.hotB").is_some(),
                    "main.hotA and main.hotB should be in the top rows\n{context}"
                );
                assert_tables_agree(&ours, &go, &context);
                // Our table is sorted by flat, largest first.
                assert!(
                    ours.rows.windows(2).all(|w| w[0].flat >= w[1].flat),
                    "rows are not sorted by flat\n{context}"
                );
            }
        }
    }
}

/// Go's profile converts to folded stacks whose counts sum to the total that `go tool
/// pprof` shows, and to a flame graph whose root frame holds that total.
#[test]
fn go_runtime_pprof_profile_converts_to_folded_and_svg() {
    let dir = TempDir::new("report-go-convert");
    let gz = go_own_profile(&dir, "1");
    for index in ["samples", "cpu"] {
        let go = parse_top(&go_pprof(
            &[
                "-top",
                "-nodefraction=0",
                "-symbolize=none",
                &format!("-sample_index={index}"),
            ],
            &gz,
        ));
        let folded = report_ok(&[path_str(&gz), "--format", "folded", "--sample-index", index]);
        let lines = parse_folded(&folded);
        let sum: i64 = lines.iter().map(|l| l.count).sum();
        assert!(
            (sum as f64 - go.total).abs() <= 0.005 * go.total,
            "folded {index} counts sum to {sum}, go tool pprof says {}\n{folded}",
            go.total
        );
        assert!(
            lines.iter().any(|l| l
                .frames
                .ends_with(&["main.worker".to_string(), "main.hotA".to_string()])),
            "no main.worker;main.hotA stack in\n{folded}"
        );
        let svg_path = dir.join(&format!("go-{index}.svg"));
        report_ok(&[
            path_str(&gz),
            "--sample-index",
            index,
            "-o",
            path_str(&svg_path),
        ]);
        let svg = std::fs::read_to_string(&svg_path).expect("read the SVG");
        assert_eq!(assert_well_formed_xml(&svg), "svg");
        let frames = svg_frames(&svg);
        let all = frames
            .iter()
            .find(|f| f.name == "all")
            .unwrap_or_else(|| panic!("no `all` frame in {}", svg_path.display()));
        assert_eq!(all.count, sum, "root frame of {}", svg_path.display());
        assert!(
            svg.contains(&format!("{index} profile")),
            "title should name the type {index}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Profiles with known contents
// ---------------------------------------------------------------------------------------

/// Text, folded, SVG and pprof from one known profile, by `--format` and by the extension
/// of `-o`; gzipped and plain input give the same; `--thread-roots` adds the process and
/// thread from the labels.
#[test]
fn known_profile_in_every_format() {
    let dir = TempDir::new("report-known");
    let profile = known_profile(CPU_TYPES, (30, 60, 10));
    let gz = dir.join("known.pb.gz");
    let plain = dir.join("known.pb");
    write_gz(&profile, &gz);
    write_plain(&profile, &plain);

    // Folded: root first, kernel frames _[k], inlined ones _[i]; default column: cpu.
    let want_folded = "main;0x4000 10\n\
                       main;worker;compute 60\n\
                       main;worker;do_read_[i];read_[k] 30\n";
    let sort = |s: &str| {
        let mut l: Vec<&str> = s.lines().collect();
        l.sort_unstable();
        l.join("\n")
    };
    for input in [&gz, &plain] {
        let folded = report_ok(&[path_str(input), "--format", "folded"]);
        assert_eq!(
            sort(&folded),
            sort(want_folded),
            "folded output of {input:?}"
        );
        // Column 0 (samples) has twice the values.
        let samples = report_ok(&[
            path_str(input),
            "--format",
            "folded",
            "--sample-index",
            "samples",
        ]);
        assert_eq!(
            sort(&samples),
            sort(
                "main;0x4000 20\n\
                 main;worker;compute 120\n\
                 main;worker;do_read_[i];read_[k] 60\n"
            ),
            "folded samples column of {input:?}"
        );
    }
    let by_extension = dir.join("out.folded");
    report_ok(&[path_str(&gz), "-o", path_str(&by_extension)]);
    assert_eq!(
        sort(&std::fs::read_to_string(&by_extension).unwrap()),
        sort(want_folded),
        "-o out.folded should write folded stacks"
    );

    // Thread roots from the pid/tid/comm/thread_comm labels.
    let roots = report_ok(&[path_str(&gz), "--format", "folded", "--thread-roots"]);
    assert_eq!(
        sort(&roots),
        sort(
            "app [7];w2 [9];main;0x4000 10\n\
             app [7];w1 [8];main;worker;compute 60\n\
             app [7];w1 [8];main;worker;do_read_[i];read_[k] 30\n"
        ),
        "--thread-roots"
    );

    // Text: flat is the leaf, cum counts a function once per sample; inlined do_read is a
    // function of its own, as in pprof.
    let text = report_ok(&[path_str(&plain)]);
    let table = parse_top(&text);
    assert_eq!(table.kind, "cpu", "{text}");
    assert_eq!(table.total, 100.0, "{text}");
    assert_eq!(table.nodes_out_of, Some((6, 6)), "{text}");
    let expect = [
        ("compute", 60.0, 60.0),
        ("read", 30.0, 30.0),
        ("0x4000", 10.0, 10.0),
        ("main", 0.0, 100.0),
        ("worker", 0.0, 90.0),
        ("do_read", 0.0, 30.0),
    ];
    assert_eq!(
        table
            .rows
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        expect.iter().map(|e| e.0).collect::<Vec<_>>(),
        "row order (flat, then cum)\n{text}"
    );
    for (name, flat, cum) in expect {
        let r = table.row(name).unwrap();
        assert_eq!((r.flat, r.cum), (flat, cum), "{name}\n{text}");
        assert_eq!((r.flat_pct, r.cum_pct), (flat, cum), "{name} %\n{text}");
    }
    let top2 = our_top(&[path_str(&gz), "--top", "2"]);
    assert_eq!(top2.rows.len(), 2);
    assert_eq!(top2.nodes_out_of, Some((2, 6)));
    // ns values are shown in one unit chosen from the total: 100 ns stays ns.
    assert!(text.contains("60ns"), "{text}");

    // pprof out: re-encoded, the same profile.
    for (out, args) in [
        ("copy.pb.gz", vec![]),
        ("copy.bin", vec!["--format", "pprof"]),
    ] {
        let out = dir.join(out);
        let mut all = vec![path_str(&plain), "-o", path_str(&out)];
        all.extend(args);
        report_ok(&all);
        let again = read_profile(&out).expect("the re-encoded profile decodes");
        assert_eq!(
            again, profile,
            "pprof written by report differs from its input"
        );
    }

    // SVG by extension and by --format; the same bytes for gzipped and plain input.
    let svg_a = dir.join("a.svg");
    let svg_b = dir.join("b.out");
    report_ok(&[path_str(&gz), "-o", path_str(&svg_a)]);
    report_ok(&[path_str(&plain), "--format", "svg", "-o", path_str(&svg_b)]);
    let a = std::fs::read_to_string(&svg_a).unwrap();
    let b = std::fs::read_to_string(&svg_b).unwrap();
    assert_eq!(a, b, "SVG of gzipped and plain input differ");
    assert_eq!(assert_well_formed_xml(&a), "svg");
    assert!(a.contains("cpu profile"), "title names the type");
    let svg_stdout = report_ok(&[path_str(&gz), "--format", "svg"]);
    assert_eq!(svg_stdout, a, "SVG on stdout differs from -o");
}

/// The flame graph's widths follow the profile's shares, kernel frames are orange and
/// inlined ones aqua whatever the palette, and the palette follows the kind of value:
/// warm for CPU, blue for off-CPU, green for memory.
#[test]
fn flame_graph_colours_and_widths() {
    let dir = TempDir::new("report-colours");
    const KERNEL: (u8, u8, u8) = (240, 140, 40);
    const INLINED: (u8, u8, u8) = (80, 200, 200);
    // (types, sample index, palette check for user frames)
    type PaletteCheck = fn((u8, u8, u8)) -> bool;
    let cases: [(&[SampleType], &str, &str, PaletteCheck); 4] = [
        (CPU_TYPES, "cpu", "hot", |(r, g, b)| {
            r >= 205 && g <= 230 && b <= 55
        }),
        (OFF_CPU_TYPES, "off_cpu", "io (blue)", |(r, g, b)| {
            r == g && (80..=140).contains(&r) && b >= 190
        }),
        (HEAP_TYPES, "inuse_space", "mem (green)", |(r, g, _)| {
            r == 0 && g >= 190
        }),
        (HEAP_TYPES, "alloc_objects", "mem (green)", |(r, g, _)| {
            r == 0 && g >= 190
        }),
    ];
    for (i, (types, index, palette, in_palette)) in cases.into_iter().enumerate() {
        let path = dir.join(&format!("p{i}.pb.gz"));
        write_gz(&known_profile(types, (30, 60, 10)), &path);
        let svg_path = dir.join(&format!("p{i}.svg"));
        report_ok(&[
            path_str(&path),
            "--sample-index",
            index,
            "-o",
            path_str(&svg_path),
        ]);
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert_well_formed_xml(&svg);
        assert!(
            svg.contains(&format!("{index} profile")),
            "title of {index}"
        );
        let frames = svg_frames(&svg);
        let get = |name: &str| {
            frames
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("no frame {name} in the {index} graph: {frames:?}"))
        };
        assert_eq!(
            get("read").fill,
            KERNEL,
            "kernel frame in the {index} graph"
        );
        assert_eq!(
            get("do_read").fill,
            INLINED,
            "inlined frame in the {index} graph"
        );
        for user in ["main", "worker", "compute", "0x4000"] {
            let f = get(user);
            assert!(
                in_palette(f.fill),
                "{user} is {:?}, not in the {palette} palette of the {index} graph",
                f.fill
            );
        }
        // Widths in proportion to the shares: main 100%, worker 90%, compute 60%, read
        // 30%, 0x4000 10%.
        for (name, pct) in [
            ("main", 100.0),
            ("worker", 90.0),
            ("compute", 60.0),
            ("do_read", 30.0),
            ("read", 30.0),
            ("0x4000", 10.0),
        ] {
            let f = get(name);
            assert!(
                (f.width_pct - pct).abs() < 0.01,
                "{name} is {}% wide in the {index} graph, expected {pct}%",
                f.width_pct
            );
        }
        // The same names through the search of inferno's script.
        assert!(svg.contains("function search("), "the graph is searchable");
    }
}

/// Names that XML or the folded format cannot hold as they are (C++ templates, `&`,
/// quotes, `;`, newlines) come out escaped: the SVG is well-formed and shows the names;
/// folded lines keep one frame per `;`-separated field.
#[test]
fn names_that_need_escaping() {
    let dir = TempDir::new("report-escape");
    let names = [
        "std::vector<int>::operator[]",
        "a & b",
        "say \"hi\" 'there'",
        "x;y",
        "line\nbreak",
        "ünïcødé→λ",
    ];
    let mut p = ProfileBuilder::new(CPU_TYPES, CPU_TYPES[1], 1);
    let exe = p.mapping(&MappingInfo {
        start: 0x1000,
        limit: 0x9000,
        path: "/bin/app".to_string(),
        ..Default::default()
    });
    let locs: Vec<u64> = names
        .iter()
        .enumerate()
        .map(|(i, n)| p.location(exe, 0x1000 + i as u64 * 16, &[frame(n)]))
        .collect();
    // One stack: names[0] is the leaf, the last name the root.
    p.sample(locs, &[1, 1_000_000], &[]);
    let path = dir.join("escape.pb.gz");
    write_gz(&p.build(), &path);

    let folded = report_ok(&[path_str(&path), "--format", "folded"]);
    let lines = parse_folded(&folded);
    assert_eq!(lines.len(), 1, "one stack:\n{folded}");
    let want: Vec<String> = names
        .iter()
        .rev()
        .map(|n| n.replace(';', ":").replace('\n', " "))
        .collect();
    assert_eq!(lines[0].frames, want, "folded frames:\n{folded}");
    assert_eq!(lines[0].count, 1_000_000);

    let svg = report_ok(&[path_str(&path), "--format", "svg"]);
    assert_eq!(assert_well_formed_xml(&svg), "svg");
    let shown: Vec<String> = svg_frames(&svg).into_iter().map(|f| f.name).collect();
    for name in &want {
        assert!(
            shown.contains(name),
            "frame {name:?} is not in the SVG; frames: {shown:?}"
        );
    }

    let text = report_ok(&[path_str(&path)]);
    assert!(text.contains("std::vector<int>::operator[]"), "{text}");
}

/// A profile with no samples still makes every output: an empty folded file, a blank
/// (well-formed) flame graph, and a table of nothing.
#[test]
fn empty_profile_makes_empty_outputs() {
    let dir = TempDir::new("report-empty");
    let path = dir.join("empty.pb.gz");
    let profile = ProfileBuilder::new(CPU_TYPES, CPU_TYPES[1], 10_000_000).build();
    write_gz(&profile, &path);
    assert_eq!(report_ok(&[path_str(&path), "--format", "folded"]), "");
    let svg = report_ok(&[path_str(&path), "--format", "svg"]);
    assert_eq!(assert_well_formed_xml(&svg), "svg");
    let table = parse_top(&report_ok(&[path_str(&path)]));
    assert_eq!((table.kind.as_str(), table.total), ("cpu", 0.0));
    assert!(table.rows.is_empty());
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

/// Files that are not profiles: text, random bytes, gzipped text, an empty file.
#[test]
fn not_a_profile() {
    let dir = TempDir::new("report-not-profile");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "This is not a profile.\nJust some text.\n").unwrap();
    let source = workloads_dir().join("fp_paths.c");

    // Random bytes from a fixed xorshift stream (not starting like gzip).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let random_path = dir.join("random.bin");
    std::fs::write(&random_path, &random).unwrap();

    let gz_text = dir.join("text.gz");
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"#include <stdio.h>\nint main(void) { return 0; }\n")
            .unwrap();
        std::fs::write(&gz_text, enc.finish().unwrap()).unwrap();
    }

    for path in [&text, &source, &random_path, &gz_text] {
        for format in [
            &[][..],
            &["--format", "svg"][..],
            &["--format", "folded"][..],
        ] {
            let mut args = vec![path_str(path)];
            args.extend(format);
            let run = report(&args);
            assert_report_error(&run, &[path_str(path), "not a pprof profile"]);
        }
    }

    // An empty file decodes as an empty Profile, which has no sample types.
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_report_error(&report(&[path_str(&empty)]), &["no sample types"]);
}

/// A real profile (Go's) cut short at several points, and one whose gzip trailer is
/// damaged: named as corrupt or truncated gzip data.
#[test]
fn truncated_or_corrupt_gzip() {
    let dir = TempDir::new("report-gzip");
    let real = go_own_profile(&dir, "0.5");
    let bytes = std::fs::read(&real).unwrap();
    assert!(
        bytes.starts_with(&[0x1f, 0x8b]),
        "Go writes gzipped profiles"
    );
    let n = bytes.len();
    for cut in [2, 10, 20, n / 2, n - 8, n - 1] {
        let path = dir.join(&format!("cut-{cut}.pb.gz"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let run = report(&[path_str(&path)]);
        assert_report_error(&run, &[path_str(&path), "corrupt or truncated gzip data"]);
    }
    // The CRC in the trailer no longer matches.
    let mut bad_crc = bytes.clone();
    bad_crc[n - 8] ^= 0xff;
    let path = dir.join("bad-crc.pb.gz");
    std::fs::write(&path, &bad_crc).unwrap();
    assert_report_error(
        &report(&[path_str(&path)]),
        &[path_str(&path), "corrupt or truncated gzip data"],
    );
    // A damaged deflate stream.
    let mut damaged = bytes;
    for b in &mut damaged[12..n - 8] {
        *b = !*b;
    }
    let path = dir.join("damaged.pb.gz");
    std::fs::write(&path, &damaged).unwrap();
    let run = report(&[path_str(&path)]);
    assert_report_error(&run, &[path_str(&path)]);
    assert!(
        run.stderr.contains("gzip") || run.stderr.contains("not a pprof profile"),
        "the error should say what is wrong\n{}",
        run.describe()
    );
}

/// Profiles that decode but break one of pprof's rules, each named in the error, in every
/// output format, gzipped or not.
#[test]
fn profiles_that_break_pprof_rules() {
    let dir = TempDir::new("report-rules");
    let good = || known_profile(CPU_TYPES, (3, 6, 1));
    type Break = fn(&mut Profile);
    let cases: &[(&str, Break, &str)] = &[
        (
            "missing-location",
            |p| p.sample[0].location_id.push(99),
            "sample 0 refers to location 99, which does not exist",
        ),
        (
            "value-count",
            |p| {
                p.sample[1].value.pop();
            },
            "sample 1 has 1 values for 2 sample types",
        ),
        (
            "too-many-values",
            |p| p.sample[2].value.push(5),
            "sample 2 has 3 values for 2 sample types",
        ),
        (
            "bad-function-name",
            |p| p.function[0].name = 1000,
            "string index 1000 is out of range",
        ),
        (
            "bad-label-key",
            |p| p.sample[0].label[0].key = -1,
            "string index -1 is out of range",
        ),
        (
            "bad-sample-type",
            |p| p.sample_type[0].r#type = 500,
            "string index 500 is out of range",
        ),
        (
            "first-string",
            |p| p.string_table[0] = "x".to_string(),
            "the string table does not start with \"\"",
        ),
        (
            "no-string-table",
            |p| p.string_table.clear(),
            "the string table does not start with \"\"",
        ),
        (
            "duplicate-location",
            |p| {
                let id = p.location[0].id;
                p.location[1].id = id;
            },
            "location id 0 or a repeated id",
        ),
        (
            "zero-function-id",
            |p| p.function[0].id = 0,
            "function id 0",
        ),
        (
            "missing-function",
            |p| p.location[0].line[0].function_id = 77,
            "refers to function 77, which does not exist",
        ),
        (
            "missing-mapping",
            |p| p.location[0].mapping_id = 55,
            "refers to mapping 55, which does not exist",
        ),
        (
            "no-sample-types",
            |p| {
                p.sample_type.clear();
                for s in &mut p.sample {
                    s.value.clear();
                }
            },
            "the profile has no sample types",
        ),
    ];
    for (name, break_it, message) in cases {
        let mut p = good();
        break_it(&mut p);
        let gz = dir.join(&format!("{name}.pb.gz"));
        let plain = dir.join(&format!("{name}.pb"));
        write_gz(&p, &gz);
        write_plain(&p, &plain);
        for input in [&gz, &plain] {
            for format in ["text", "folded", "svg", "pprof"] {
                let out = dir.join(&format!("{name}.out.{format}"));
                let run = report(&[path_str(input), "--format", format, "-o", path_str(&out)]);
                assert_report_error(&run, &[path_str(input), message]);
            }
        }
    }
}

/// An unknown `--sample-index` lists the types the profile has.
#[test]
fn unknown_sample_index() {
    let dir = TempDir::new("report-index");
    let path = dir.join("p.pb.gz");
    write_gz(&known_profile(HEAP_TYPES, (1, 2, 3)), &path);
    for format in ["text", "folded", "svg"] {
        let run = report(&[path_str(&path), "--sample-index", "cpu", "--format", format]);
        assert_report_error(
            &run,
            &[
                path_str(&path),
                "no sample type cpu",
                "alloc_objects, alloc_space, inuse_objects, inuse_space",
            ],
        );
    }
    // A default_sample_type that names no column is an error too, not a panic.
    let mut p = known_profile(HEAP_TYPES, (1, 2, 3));
    p.string_table.push("nope".to_string());
    p.default_sample_type = p.string_table.len() as i64 - 1;
    write_gz(&p, &path);
    assert_report_error(&report(&[path_str(&path)]), &["no sample type nope"]);
    // And a good default_sample_type picks its column.
    let mut p = known_profile(HEAP_TYPES, (1, 2, 3));
    p.default_sample_type = p.sample_type[1].r#type;
    write_gz(&p, &path);
    assert_eq!(our_top(&[path_str(&path)]).kind, "alloc_space");
}

/// A missing input, a directory as input, an output in a missing directory.
#[test]
fn missing_files() {
    let dir = TempDir::new("report-missing");
    let missing = dir.join("nope.pb.gz");
    assert_report_error(
        &report(&[path_str(&missing)]),
        &["cannot read", path_str(&missing), "No such file"],
    );
    assert_report_error(
        &report(&[path_str(dir.path())]),
        &["cannot read", path_str(dir.path())],
    );
    let good = dir.join("good.pb.gz");
    write_gz(&known_profile(CPU_TYPES, (1, 2, 3)), &good);
    let out = dir.join("no-such-dir/out.svg");
    assert_report_error(
        &report(&[path_str(&good), "-o", path_str(&out)]),
        &["cannot write", path_str(&out)],
    );
}

/// A report that fails leaves no output file behind (as `record` does), and does not
/// clobber a file that was there.
#[test]
fn failed_report_leaves_no_output_file() {
    let dir = TempDir::new("report-no-output");
    let mut broken = known_profile(CPU_TYPES, (1, 2, 3));
    broken.sample[0].location_id.push(99);
    let broken_path = dir.join("broken.pb.gz");
    write_gz(&broken, &broken_path);
    let good = dir.join("good.pb.gz");
    write_gz(&known_profile(CPU_TYPES, (1, 2, 3)), &good);
    let garbage = dir.join("garbage.pb.gz");
    std::fs::write(&garbage, b"not a profile").unwrap();

    let cases: [(&Path, &[&str]); 4] = [
        (&garbage, &[]),
        (&broken_path, &[]),
        (&good, &["--sample-index", "nope"]),
        (&broken_path, &["--format", "pprof"]),
    ];
    for (i, (input, extra)) in cases.iter().enumerate() {
        let out = dir.join(&format!("out{i}.svg"));
        let mut args = vec![path_str(input), "-o", path_str(&out)];
        args.extend(*extra);
        let run = report(&args);
        assert_report_error(&run, &[path_str(input)]);
        assert!(
            !out.exists(),
            "{} was left behind by a failed report\n{}",
            out.display(),
            run.describe()
        );
        // An existing file survives a failed report.
        std::fs::write(&out, "precious").unwrap();
        let run = report(&args);
        assert_report_error(&run, &[path_str(input)]);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "precious",
            "a failed report overwrote {}\n{}",
            out.display(),
            run.describe()
        );
    }
}

/// Values near the limit of i64 (two samples of i64::MAX): the sums must not wrap around
/// into a negative total (nor panic, as they do with overflow checks, e.g. under the
/// fuzzer): either a table with sane percentages, or a one-line error.
#[test]
fn huge_values_do_not_wrap_around() {
    let dir = TempDir::new("report-huge");
    let mut p = ProfileBuilder::new(CPU_TYPES, CPU_TYPES[1], 1);
    let exe = p.mapping(&MappingInfo {
        start: 0x1000,
        limit: 0x9000,
        path: "/bin/app".to_string(),
        ..Default::default()
    });
    let a = p.location(exe, 0x1010, &[frame("a")]);
    let b = p.location(exe, 0x1020, &[frame("b")]);
    p.sample(vec![a], &[1, i64::MAX], &[]);
    p.sample(vec![b], &[1, i64::MAX], &[]);
    let path = dir.join("huge.pb.gz");
    write_gz(&p.build(), &path);
    for format in ["text", "folded", "svg"] {
        let run = report(&[path_str(&path), "--format", format]);
        assert!(
            !run.stderr.contains("panicked"),
            "report panicked\n{}",
            run.describe()
        );
        if !run.status.success() {
            assert_report_error(&run, &[path_str(&path)]);
            continue;
        }
        if format == "text" {
            let t = parse_top(&run.stdout);
            assert!(t.total > 0.0, "negative total\n{}", run.stdout);
            for r in &t.rows {
                assert!(
                    (0.0..=100.0).contains(&r.flat_pct) && (0.0..=100.0).contains(&r.cum_pct),
                    "percentages out of range\n{}",
                    run.stdout
                );
            }
        }
    }
}
