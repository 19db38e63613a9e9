//! What `record` shows people, through the real kernel: folded stacks and SVG flame graphs
//! of the fp_paths workload (known chain `worker_main -> path_a|path_b -> hot_leaf`),
//! checked against a pprof profile of the same run; kernel frames coloured apart in an
//! off-CPU graph of the blocking workload; `--top N` tables; `--thread-roots` in the text
//! formats; and the live progress line, read from a real terminal (`script`, tmux).
//!
//! The tests that compare shares hold [`common::exclusive_cpu`].

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const KERNEL_FILL: (u8, u8, u8) = (240, 140, 40);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The sample count of a kind in the exit summary (`rprof-bpf: cpu: 407 samples in ...`),
/// and whether the summary lists failure counters after it.
fn summary_count(stderr: &str, kind: &str) -> (i64, bool) {
    let prefix = format!("rprof-bpf: {kind}: ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` summary line in:\n{stderr}"));
    let n = line
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in the summary {line:?}"));
    let head = line.split("; wrote").next().unwrap_or("");
    (n, head.contains('='))
}

/// The counters whose samples are in no profile value (see README's counter table).
const DROPPING: &[&str] = &[
    "counts_map_full",
    "stack_map_full",
    "stack_collision",
    "stack_alloc_failed",
    "stack_samples_lost",
];

/// The sum of the `names` counters in a kind's summary line (`, name=value`).
fn summary_counter_sum(stderr: &str, kind: &str, names: &[&str]) -> i64 {
    let prefix = format!("rprof-bpf: {kind}: ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` summary line in:\n{stderr}"));
    let head = line.split("; wrote").next().unwrap_or("");
    head.split(", ")
        .filter_map(|field| field.split_once('='))
        .filter(|(name, _)| names.contains(name))
        .filter_map(|(_, value)| value.parse::<i64>().ok())
        .sum()
}

/// Starts fp_paths for `seconds` and returns it with its worker threads (tid -> name).
fn start_fp_paths(dir: &TempDir, seconds: &str) -> (Workload, BTreeMap<u32, String>) {
    let bin = build_c("fp_paths.c", dir.path(), "fp_paths");
    let w = Workload::start(&bin, &[seconds]);
    let workers: BTreeMap<u32, String> = w
        .threads()
        .into_iter()
        .filter(|(_, name)| name.starts_with("worker-"))
        .collect();
    assert_eq!(workers.len(), 2, "fp_paths workers: {workers:?}");
    (w, workers)
}

/// Runs several `record` commands at once (on the same workload, so that their outputs
/// describe the same stretch of it), and checks that each succeeded.
fn record_together(runs: &[Vec<String>]) -> Vec<RunOutput> {
    let started: Vec<Running> = runs
        .iter()
        .map(|args| Running::start(record_cmd(args)))
        .collect();
    let outs: Vec<RunOutput> = started
        .into_iter()
        .map(|r| r.finish(Duration::from_secs(60)))
        .collect();
    for o in &outs {
        o.assert_success();
        assert!(
            !o.stderr.contains("panicked"),
            "record panicked\n{}",
            o.describe()
        );
    }
    outs
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Share of the total count held by the lines whose frames include `func`.
fn folded_share(lines: &[FoldedLine], func: &str) -> f64 {
    let total: i64 = lines.iter().map(|l| l.count).sum();
    let with: i64 = lines
        .iter()
        .filter(|l| l.plain_frames().contains(&func))
        .map(|l| l.count)
        .sum();
    with as f64 / total.max(1) as f64
}

/// Width (percent) of all the SVG frames named `name`, summed.
fn svg_width(frames: &[SvgFrame], name: &str) -> f64 {
    frames
        .iter()
        .filter(|f| f.name == name)
        .map(|f| f.width_pct)
        .sum()
}

// ---------------------------------------------------------------------------------------
// Folded stacks
// ---------------------------------------------------------------------------------------

/// Folded stacks of a real recording: `report --format folded` of a pprof profile sums to
/// its total (both columns) and is exactly the profile's stacks, root first; `record -o
/// x.folded` of the same run holds the known chain root first, counts in whole periods that
/// add up to the samples its summary reports, and the same shares as the profile.
#[test]
fn folded_counts_sum_to_the_total_and_the_chain_is_root_first() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("out-folded");
    let (w, _) = start_fp_paths(&dir, "8");
    let pid = w.pid.to_string();
    let pb = dir.join("x.pb.gz");
    let folded_path = dir.join("y.folded");
    let runs = record_together(&[
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2.5",
            "-F",
            "499",
            "--type",
            "cpu",
            "-o",
            path_str(&pb),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2.5",
            "-F",
            "499",
            "-o",
            path_str(&folded_path),
        ]),
    ]);
    let p = decode(&pb);
    let total_cpu = p.total("cpu");
    let total_samples = p.total("samples");
    assert!(
        total_samples >= 500,
        "too few samples to judge ({total_samples})\n{}",
        p.report()
    );

    // report --format folded: exactly the profile's stacks, for each column.
    for (column, total, extra) in [
        ("cpu", total_cpu, &[][..]),
        ("samples", total_samples, &["--sample-index", "samples"][..]),
    ] {
        let mut a = vec![path_str(&pb), "--format", "folded"];
        a.extend(extra);
        let text = report_ok(&a);
        let lines = parse_folded(&text);
        let sum: i64 = lines.iter().map(|l| l.count).sum();
        assert_eq!(
            sum,
            total,
            "folded {column} counts do not sum to the profile's total\n{text}\n{}",
            p.report()
        );
        assert_eq!(
            folded_map(&lines),
            expected_folded(&p, column),
            "folded {column} lines differ from the profile's stacks\n{}",
            p.report()
        );
        assert!(lines.iter().all(|l| l.count > 0), "a line without a count");
    }
    // ... and the top table's total says the same.
    let table = parse_top(&report_ok(&[path_str(&pb)]));
    assert!(
        (table.total - total_cpu as f64).abs() <= 0.005 * total_cpu as f64,
        "top table total {} vs profile total {total_cpu}",
        table.total
    );

    // The known chain, root first, in the profile's folded stacks.
    let text = report_ok(&[path_str(&pb), "--format", "folded"]);
    let lines = parse_folded(&text);
    let chain = ["worker_main", "path_a", "hot_leaf"];
    assert_chain_root_first(&lines, &chain, &text);
    assert_chain_root_first(&lines, &["worker_main", "path_b", "hot_leaf"], &text);

    // record -o y.folded, same run.
    let direct_text = std::fs::read_to_string(&folded_path).expect("read y.folded");
    let direct = parse_folded(&direct_text);
    assert_chain_root_first(&direct, &chain, &direct_text);
    let period = p.profile.period;
    assert!(period > 0, "no period in {}", pb.display());
    for l in &direct {
        assert!(
            l.count > 0 && l.count % period == 0,
            "count {} of {:?} is not a whole number of periods ({period} ns)",
            l.count,
            l.frames.join(";")
        );
    }
    let direct_sum: i64 = direct.iter().map(|l| l.count).sum();
    let (reported, _) = summary_count(&runs[1].stderr, "cpu");
    // The summary counts samples before any drop; the counters that drop one say so.
    let dropped = summary_counter_sum(&runs[1].stderr, "cpu", DROPPING);
    assert_eq!(
        direct_sum / period,
        reported - dropped,
        "y.folded holds {} samples' worth, the summary says {reported}, {dropped} of them \
         dropped\n{}",
        direct_sum / period,
        runs[1].describe()
    );
    for func in ["path_a", "path_b", "hot_leaf"] {
        let ours = folded_share(&direct, func);
        let profile = p.cum_share(func, "cpu");
        assert!(
            (ours - profile).abs() <= 0.06,
            "{func}: {:.1}% of y.folded, {:.1}% of the pprof profile of the same run\n{}",
            100.0 * ours,
            100.0 * profile,
            p.report()
        );
    }
}

/// Every line holding all of `chain` holds it in that order (root first), with nothing but
/// kernel frames after its last element; and such lines exist, holding most of the total
/// when the chain ends in the leaf.
fn assert_chain_root_first(lines: &[FoldedLine], chain: &[&str], text: &str) {
    let mut with_chain = 0;
    for l in lines {
        let user = l.user_frames();
        // Kernel frames come only at the leaf end.
        if let Some(first_k) = l.frames.iter().position(|f| f.ends_with("_[k]")) {
            assert!(
                l.frames[first_k..].iter().all(|f| f.ends_with("_[k]")),
                "a user frame above a kernel frame: {:?}",
                l.frames.join(";")
            );
        }
        let positions: Vec<Option<usize>> = chain
            .iter()
            .map(|c| user.iter().position(|f| f == c))
            .collect();
        if positions.iter().all(Option::is_some) {
            let pos: Vec<usize> = positions.into_iter().flatten().collect();
            assert!(
                pos.windows(2).all(|w| w[1] == w[0] + 1),
                "{chain:?} not root first and adjacent in {:?}",
                l.frames.join(";")
            );
            assert_eq!(
                pos[pos.len() - 1],
                user.len() - 1,
                "{} is not the last user frame in {:?}",
                chain[chain.len() - 1],
                l.frames.join(";")
            );
            with_chain += l.count;
        } else {
            assert!(
                !user.ends_with(&chain[chain.len() - 2..]),
                "a line ends in {:?} without the rest of {chain:?}: {:?}",
                &chain[chain.len() - 2..],
                l.frames.join(";")
            );
        }
    }
    let total: i64 = lines.iter().map(|l| l.count).sum();
    assert!(
        with_chain as f64 >= 0.1 * total as f64,
        "{} is in only {with_chain} of {total}\n{text}",
        chain.join(";")
    );
}

// ---------------------------------------------------------------------------------------
// SVG flame graphs
// ---------------------------------------------------------------------------------------

/// The flame graph of a real recording: well-formed XML, the known functions present with
/// widths (and tooltip counts) in proportion to their shares in the pprof profile, inferno's
/// search, kernel frames orange, user frames in the warm CPU palette; `record --format svg`
/// of the same run has the title naming the kind, the target, the duration and the event
/// count, and the same shares.
#[test]
fn svg_widths_follow_the_profile_shares() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("out-svg");
    let (w, _) = start_fp_paths(&dir, "8");
    let pid = w.pid.to_string();
    let pb = dir.join("x.pb.gz");
    let direct_path = dir.join("direct.out");
    let runs = record_together(&[
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2.5",
            "-F",
            "499",
            "-o",
            path_str(&pb),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2.5",
            "-F",
            "499",
            "--format",
            "svg",
            "-o",
            path_str(&direct_path),
        ]),
    ]);
    let p = decode(&pb);
    let total = p.total("cpu");

    // report x.pb.gz -o r.svg: widths exactly the profile's shares.
    let svg_path = dir.join("r.svg");
    report_ok(&[path_str(&pb), "-o", path_str(&svg_path)]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(assert_well_formed_xml(&svg), "svg");
    assert!(
        svg.contains("function search(") && svg.contains("id=\"search\""),
        "no search in the SVG"
    );
    assert!(svg.contains(">cpu profile<"), "title of the report SVG");
    let frames = svg_frames(&svg);
    let all = frames
        .iter()
        .find(|f| f.name == "all")
        .expect("an `all` frame");
    assert_eq!(all.count, total, "the root frame holds the profile's total");
    for func in ["worker_main", "path_a", "path_b", "hot_leaf"] {
        let share = 100.0 * p.cum_share(func, "cpu");
        let width = svg_width(&frames, func);
        assert!(
            (width - share).abs() <= 0.5,
            "{func} is {width:.2}% wide, {share:.2}% of the profile\n{}",
            p.report()
        );
        let count: i64 = frames
            .iter()
            .filter(|f| f.name == func)
            .map(|f| f.count)
            .sum();
        let in_profile = p.total_where("cpu", |s| s.contains(func));
        assert!(
            (count - in_profile).abs() as f64 <= 0.005 * total as f64,
            "{func}: tooltips hold {count}, the profile {in_profile}"
        );
    }
    // Colours: user frames warm, kernel frames (if any were sampled) orange.
    let kernel_names: Vec<String> = kernel_only_names(&p);
    for f in &frames {
        if kernel_names.contains(&f.name) {
            assert_eq!(f.fill, KERNEL_FILL, "kernel frame {} colour", f.name);
        }
    }
    for func in ["worker_main", "path_a", "path_b", "hot_leaf"] {
        for f in frames.iter().filter(|f| f.name == func) {
            let (r, g, b) = f.fill;
            assert!(
                r >= 205 && g <= 230 && b <= 55 && f.fill != KERNEL_FILL,
                "{func} has colour {:?}, not the hot palette",
                f.fill
            );
        }
    }

    // record --format svg of the same run.
    let direct = std::fs::read_to_string(&direct_path).unwrap();
    assert_eq!(assert_well_formed_xml(&direct), "svg");
    let (events, _) = summary_count(&runs[1].stderr, "cpu");
    let title_start = format!("cpu profile of fp_paths [{pid}]: ");
    let title = direct
        .split("<text id=\"title\"")
        .nth(1)
        .and_then(|t| t.split_once('>'))
        .and_then(|(_, t)| t.split_once("</text>"))
        .map(|(t, _)| xml_unescape(t))
        .unwrap_or_else(|| panic!("no title in {}", direct_path.display()));
    assert!(
        title.starts_with(&title_start) && title.ends_with(&format!("s, {events} events")),
        "title {title:?}, expected `{title_start}2.50s, {events} events`"
    );
    let secs: f64 = title[title_start.len()..]
        .split('s')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {title:?}"));
    assert!(
        (2.4..3.5).contains(&secs),
        "duration in the title {title:?}"
    );
    let direct_frames = svg_frames(&direct);
    for func in ["path_a", "path_b", "hot_leaf"] {
        let share = 100.0 * p.cum_share(func, "cpu");
        let width = svg_width(&direct_frames, func);
        assert!(
            (width - share).abs() <= 6.0,
            "{func}: {width:.1}% wide in record's SVG, {share:.1}% of the pprof profile of \
             the same run"
        );
    }
}

/// Names that only appear as kernel frames in a profile.
fn kernel_only_names(p: &Decoded) -> Vec<String> {
    let mut kernel = std::collections::BTreeSet::new();
    let mut user = std::collections::BTreeSet::new();
    for f in p.samples.iter().flat_map(|s| &s.frames) {
        if f.kernel {
            kernel.insert(f.name.clone());
        } else {
            user.insert(f.name.clone());
        }
    }
    kernel.difference(&user).cloned().collect()
}

/// An off-CPU flame graph of the blocking workload: kernel frames (the scheduler, the
/// system calls) orange, user frames in the blue palette; several kinds at once write
/// x.cpu.svg and x.off-cpu.svg, each titled with its kind.
#[test]
fn off_cpu_flame_graph_colours_kernel_frames_apart() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("out-offcpu-svg");
    let bin = build_c("blocking.c", dir.path(), "blocking");
    let w = Workload::start(&bin, &["8"]);
    let pid = w.pid.to_string();
    let pb = dir.join("b.pb.gz");
    let base = dir.join("m.svg");
    record_together(&[
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2",
            "--type",
            "off-cpu",
            "-o",
            path_str(&pb),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2",
            "--type",
            "cpu,off-cpu",
            "-o",
            path_str(&base),
        ]),
    ]);
    let p = decode(&pb);
    let svg_path = dir.join("r.svg");
    report_ok(&[path_str(&pb), "-o", path_str(&svg_path)]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(assert_well_formed_xml(&svg), "svg");
    assert!(svg.contains(">off_cpu profile<"), "title of the report SVG");
    let frames = svg_frames(&svg);
    let kernel = kernel_only_names(&p);
    // The scheduler's own frames are trimmed from off-CPU stacks; the system calls that
    // blocked stay.
    assert!(
        kernel
            .iter()
            .any(|k| k.contains("nanosleep") || k.contains("pipe_read")),
        "no system-call frames in the off-CPU profile's kernel stacks: {kernel:?}\n{}",
        p.report()
    );
    let mut kernel_frames = 0;
    for f in &frames {
        if kernel.contains(&f.name) {
            kernel_frames += 1;
            assert_eq!(f.fill, KERNEL_FILL, "kernel frame {} colour", f.name);
        }
    }
    assert!(kernel_frames > 0, "no kernel frames in the SVG: {frames:?}");
    for func in ["sleep_loop", "read_loop", "long_nap"] {
        let mine: Vec<&SvgFrame> = frames.iter().filter(|f| f.name == func).collect();
        assert!(!mine.is_empty(), "{func} is not in the off-CPU graph");
        for f in mine {
            let (r, g, b) = f.fill;
            assert!(
                r == g && (80..=140).contains(&r) && b >= 190,
                "{func} has colour {:?}, not the blue palette",
                f.fill
            );
        }
    }

    // Several kinds: one graph per kind, named and titled after it.
    for (kind, title) in [
        ("cpu", "cpu profile of blocking"),
        ("off-cpu", "off-cpu profile of blocking"),
    ] {
        let path = kind_path(&base, kind);
        let svg = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert_eq!(assert_well_formed_xml(&svg), "svg", "{}", path.display());
        assert!(
            svg.contains(&format!("{title} [{pid}]: ")),
            "{} should be titled `{title} [{pid}]: ...`",
            path.display()
        );
    }
    assert!(!base.exists(), "{} should not exist", base.display());
}

/// `--thread-roots` applies to the text formats: folded lines start with `COMM [PID]` and
/// `THREAD [TID]`, and the flame graph has one tower per thread.
#[test]
fn thread_roots_in_folded_and_svg() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("out-roots");
    let (w, workers) = start_fp_paths(&dir, "6");
    let pid = w.pid.to_string();
    let folded = dir.join("t.folded");
    let svg = dir.join("t.svg");
    record_together(&[
        args(&[
            "-p",
            &pid,
            "--seconds",
            "1.5",
            "--thread-roots",
            "-o",
            path_str(&folded),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "1.5",
            "--thread-roots",
            "-o",
            path_str(&svg),
        ]),
    ]);
    let text = std::fs::read_to_string(&folded).unwrap();
    let lines = parse_folded(&text);
    assert!(!lines.is_empty(), "no stacks in {}", folded.display());
    let process = format!("fp_paths [{pid}]");
    let roots: Vec<String> = workers
        .iter()
        .map(|(tid, name)| format!("{name} [{tid}]"))
        .collect();
    let mut per_root = BTreeMap::new();
    for l in &lines {
        assert_eq!(
            l.frames[0],
            process,
            "first frame of {:?}",
            l.frames.join(";")
        );
        *per_root.entry(l.frames[1].clone()).or_insert(0) += l.count;
    }
    for root in &roots {
        assert!(
            per_root.get(root).is_some_and(|&n| n > 0),
            "no stacks under {root}: {per_root:?}\n{text}"
        );
    }
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(assert_well_formed_xml(&svg_text), "svg");
    let frames = svg_frames(&svg_text);
    let proc_width = svg_width(&frames, &process);
    assert!(
        (proc_width - 100.0).abs() < 0.01,
        "{process} should span the graph, it is {proc_width}% wide"
    );
    for root in &roots {
        let width = svg_width(&frames, root);
        assert!(
            (20.0..=80.0).contains(&width),
            "{root} is {width}% wide; the two workers each take about half"
        );
    }
}

/// A target that never runs gives an empty folded file and a blank, well-formed flame
/// graph, not an error.
#[test]
fn idle_target_gives_empty_outputs() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("out-idle");
    let sleeper = Workload::spawn(Path::new("sleep"), &["30"]);
    let pid = sleeper.pid.to_string();
    let folded = dir.join("idle.folded");
    let svg = dir.join("idle.svg");
    let runs: Vec<RunOutput> = [&folded, &svg]
        .iter()
        .map(|out| {
            Running::start(record_cmd(&[
                "-p",
                &pid,
                "--seconds",
                "1",
                "-o",
                path_str(out),
            ]))
            .finish(Duration::from_secs(30))
        })
        .collect();
    for run in &runs {
        run.assert_success();
    }
    assert_eq!(std::fs::read_to_string(&folded).unwrap(), "");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(assert_well_formed_xml(&text), "svg");
    assert!(text.contains(&format!("cpu profile of sleep [{pid}]")));
}

// ---------------------------------------------------------------------------------------
// --top
// ---------------------------------------------------------------------------------------

/// Splits stdout holding one or more top tables into the tables' texts.
fn split_tables(stdout: &str) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("Type: ") || tables.is_empty() {
            tables.push(String::new());
        }
        let t = tables.last_mut().unwrap();
        t.push_str(line);
        t.push('\n');
    }
    tables
}

/// `record --top N` prints a table of N rows on stdout, the same table `report --top N`
/// prints for the written profile; also with --quiet, with another output format, and one
/// table per kind.
#[test]
fn record_top_prints_n_rows() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("out-top");
    let (w, _) = start_fp_paths(&dir, "8");
    let pid = w.pid.to_string();
    let pb = dir.join("x.pb.gz");
    let quiet_pb = dir.join("q.pb.gz");
    let folded = dir.join("f.folded");
    let runs = record_together(&[
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2",
            "--top",
            "3",
            "-o",
            path_str(&pb),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2",
            "--top",
            "4",
            "--quiet",
            "-o",
            path_str(&quiet_pb),
        ]),
        args(&[
            "-p",
            &pid,
            "--seconds",
            "2",
            "--top",
            "2",
            "-o",
            path_str(&folded),
        ]),
    ]);
    for (run, n, profile) in [
        (&runs[0], 3, Some(&pb)),
        (&runs[1], 4, Some(&quiet_pb)),
        (&runs[2], 2, None),
    ] {
        let tables = split_tables(&run.stdout);
        assert_eq!(tables.len(), 1, "one table on stdout\n{}", run.describe());
        let t = parse_top(&tables[0]);
        assert_eq!(t.kind, "cpu", "{}", run.describe());
        assert_eq!(t.rows.len(), n, "{n} rows\n{}", run.describe());
        let (shown, out_of) = t
            .nodes_out_of
            .unwrap_or_else(|| panic!("no `Showing top` line\n{}", run.describe()));
        assert!(shown == n && out_of >= 5, "{}", run.describe());
        assert_eq!(t.rows[0].name, "hot_leaf", "{}", run.describe());
        assert!(
            t.rows.windows(2).all(|w| w[0].flat >= w[1].flat),
            "rows not sorted by flat\n{}",
            run.describe()
        );
        assert!(
            run.stdout.lines().count() == n + 3,
            "Type, Showing, header and {n} rows, nothing else\n{}",
            run.describe()
        );
        if let Some(profile) = profile {
            let again = report_ok(&[path_str(profile), "--top", &n.to_string()]);
            assert_eq!(
                run.stdout,
                again,
                "record --top and report --top differ for {}",
                profile.display()
            );
        }
    }
    assert!(
        runs[1].stderr.is_empty(),
        "--quiet: nothing on stderr\n{}",
        runs[1].describe()
    );
    assert!(
        runs[0].stderr.contains("rprof-bpf: cpu: "),
        "the summary still goes to stderr\n{}",
        runs[0].describe()
    );
}

/// With several kinds, `--top N` prints one table per kind, each matching its file.
#[test]
fn record_top_per_kind() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("out-top-kinds");
    let bin = build_c("blocking.c", dir.path(), "blocking");
    let w = Workload::start(&bin, &["6"]);
    let base = dir.join("m.pb.gz");
    let run = record(
        &[
            "-p",
            &w.pid.to_string(),
            "--seconds",
            "1.5",
            "--type",
            "cpu,off-cpu",
            "--top",
            "2",
            "-o",
            path_str(&base),
        ],
        Duration::from_secs(60),
    );
    run.assert_success();
    let tables = split_tables(&run.stdout);
    assert_eq!(tables.len(), 2, "two tables\n{}", run.describe());
    for (table, (kind, column)) in tables.iter().zip([("cpu", "cpu"), ("off-cpu", "off_cpu")]) {
        let t = parse_top(table);
        assert_eq!(t.kind, column, "{}", run.describe());
        assert_eq!(t.rows.len(), 2, "{}", run.describe());
        let again = report_ok(&[path_str(&kind_path(&base, kind)), "--top", "2"]);
        assert_eq!(table, &again, "the {kind} table differs from report's");
    }
}

// ---------------------------------------------------------------------------------------
// Progress line
// ---------------------------------------------------------------------------------------

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn shell_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `shell_command` under `script`, on a pseudo-terminal, and returns the typescript
/// (everything written to the terminal).
fn under_script(shell_command: &str, timeout: Duration) -> RunOutput {
    assert!(
        have_program("script"),
        "`script` (util-linux) is needed to run rprof-bpf on a terminal"
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-f", "-e", "-c", shell_command, "/dev/null"]);
    let run = Running::start(cmd).finish(timeout);
    assert!(
        run.status.success() && !run.timed_out,
        "the command under script failed\n{}",
        run.describe()
    );
    run
}

/// What a terminal shows after `raw` is written to it, line by line: carriage returns,
/// clearing the line (`ESC[2K`, `ESC[K`) and moving up (`ESC[nA`) are applied; other
/// escape sequences are dropped.
fn screen_lines(raw: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
                if row == lines.len() {
                    lines.push(Vec::new());
                }
            }
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for p in chars.by_ref() {
                    if ('@'..='~').contains(&p) {
                        fin = Some(p);
                        break;
                    }
                    params.push(p);
                }
                let n = params.parse::<usize>().unwrap_or(0);
                match fin {
                    Some('K') if n == 2 => lines[row].clear(),
                    Some('K') => lines[row].truncate(col),
                    Some('A') => row = row.saturating_sub(n.max(1)),
                    Some('G') => col = n.saturating_sub(1),
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// One drawing of the progress line: `cpu 0.8s/3.0s (2.2s left) | 104 events | 1 alive`.
#[derive(Debug)]
struct ProgressFrame {
    elapsed: f64,
    window: f64,
    left: f64,
    events: u64,
    alive: u64,
}

/// Every drawing of the progress line in a typescript (split at carriage returns, line
/// ends and escape sequences).
fn progress_frames(raw: &str, kinds: &str) -> Vec<ProgressFrame> {
    let mut out = Vec::new();
    for piece in raw.split(['\r', '\n', '\x1b']) {
        let Some(start) = piece.find(&format!("{kinds} ")) else {
            continue;
        };
        let text = &piece[start + kinds.len() + 1..];
        if !text.contains(" events | ") {
            continue;
        }
        // "0.8s/3.0s (2.2s left) | 104 events | 1 alive"
        let parse = || -> Option<ProgressFrame> {
            let (time, rest) = text.split_once(" | ")?;
            let (events, alive) = rest.split_once(" events | ")?;
            let (span, left) = time.split_once(" (")?;
            let (elapsed, window) = span.split_once('/')?;
            Some(ProgressFrame {
                elapsed: elapsed.strip_suffix('s')?.parse().ok()?,
                window: window.strip_suffix('s')?.parse().ok()?,
                left: left.strip_suffix("s left)")?.parse().ok()?,
                events: events.trim().parse().ok()?,
                alive: alive.trim().strip_suffix(" alive")?.parse().ok()?,
            })
        };
        out.push(parse().unwrap_or_else(|| panic!("unexpected progress line {piece:?}")));
    }
    out
}

/// On a terminal (`script`), the progress line is drawn and redrawn on stderr: elapsed and
/// remaining time, events so far (rising), targets alive (2, then 1 once the short-lived
/// one exits); then it is cleared and the one-line summary stays.
#[test]
fn progress_line_on_a_terminal() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("out-progress");
    let (busy, _) = start_fp_paths(&dir, "10");
    let short = Workload::spawn(Path::new("sleep"), &["2"]);
    let out = dir.join("p.pb.gz");
    let pids = format!("{},{}", busy.pid, short.pid);
    let line = shell_line(
        rprof_bin(),
        &[
            "record",
            "-p",
            &pids,
            "--seconds",
            "4",
            "-o",
            path_str(&out),
        ],
    );
    let run = under_script(&line, Duration::from_secs(60));
    let raw = run.stdout.clone();
    let frames = progress_frames(&raw, "cpu");
    let context = format!("typescript: {raw:?}");
    assert!(
        frames.len() >= 4,
        "expected the progress line redrawn every 250 ms, got {} drawings\n{context}",
        frames.len()
    );
    for f in &frames {
        assert_eq!(f.window, 4.0, "window in {f:?}\n{context}");
        assert!(
            (f.elapsed + f.left - 4.0).abs() <= 0.11 && f.elapsed <= 4.0 + 0.05,
            "elapsed + left should be the window: {f:?}\n{context}"
        );
    }
    assert!(
        frames
            .windows(2)
            .all(|w| w[0].elapsed <= w[1].elapsed && w[0].events <= w[1].events),
        "time and events never go back\n{context}"
    );
    assert!(
        frames.last().unwrap().events > 50,
        "the busy workload's events should show: {:?}\n{context}",
        frames.last()
    );
    assert_eq!(frames[0].alive, 2, "both targets alive at first\n{context}");
    assert_eq!(
        frames.last().unwrap().alive,
        1,
        "the short-lived target has exited by the end\n{context}"
    );
    // The screen at the end: the progress line is gone, the summary stays.
    let screen = screen_lines(&raw);
    assert!(
        screen.iter().all(|l| !l.contains(" events | ")),
        "the progress line is still on the screen: {screen:#?}"
    );
    assert_eq!(
        screen.len(),
        1,
        "only the summary line should be left on the screen: {screen:#?}"
    );
    assert!(
        screen[0].starts_with("rprof-bpf: cpu: "),
        "summary: {screen:#?}"
    );
    decode(&out);
}

/// No progress line with --quiet on a terminal, when stderr alone is redirected to a file,
/// or when stderr is a pipe.
#[test]
fn no_progress_line_off_a_terminal_or_when_quiet() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("out-no-progress");
    let (busy, _) = start_fp_paths(&dir, "10");
    let pid = busy.pid.to_string();

    // --quiet on a terminal: nothing at all.
    let quiet_out = dir.join("q.pb.gz");
    let line = shell_line(
        rprof_bin(),
        &[
            "record",
            "-p",
            &pid,
            "--seconds",
            "1",
            "--quiet",
            "-o",
            path_str(&quiet_out),
        ],
    );
    let run = under_script(&line, Duration::from_secs(60));
    assert!(
        run.stdout.trim().is_empty(),
        "--quiet should print nothing: {:?}",
        run.stdout
    );
    decode(&quiet_out);

    // stdout on the terminal, stderr to a file: no progress anywhere, the summary in the
    // file.
    let err_file = dir.join("stderr.txt");
    let file_out = dir.join("f.pb.gz");
    let line = format!(
        "{} 2>{}",
        shell_line(
            rprof_bin(),
            &[
                "record",
                "-p",
                &pid,
                "--seconds",
                "1",
                "-o",
                path_str(&file_out)
            ],
        ),
        sh_quote(path_str(&err_file))
    );
    let run = under_script(&line, Duration::from_secs(60));
    assert!(
        !run.stdout.contains("events") && !run.stdout.contains("alive"),
        "progress on the terminal although stderr is a file: {:?}",
        run.stdout
    );
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert_one_plain_summary(&err);
    decode(&file_out);

    // stderr a pipe.
    let pipe_out = dir.join("p.pb.gz");
    let run = record(
        &["-p", &pid, "--seconds", "1", "-o", path_str(&pipe_out)],
        Duration::from_secs(60),
    );
    run.assert_success();
    assert_one_plain_summary(&run.stderr);
}

fn assert_one_plain_summary(stderr: &str) {
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "terminal control characters in {stderr:?}"
    );
    assert!(
        !stderr.contains(" events | ") && !stderr.contains("alive"),
        "progress text in {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line: {stderr:?}");
    assert!(lines[0].starts_with("rprof-bpf: cpu: "), "{stderr:?}");
}

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    fn start(socket: PathBuf, shell_command: &str) -> Tmux {
        let t = Tmux { socket };
        let status = t
            .cmd()
            .args(["new-session", "-d", "-x", "150", "-y", "20", shell_command])
            .env_remove("TMUX")
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        t
    }

    /// The visible screen, one string per line (lines wrapped by the terminal joined).
    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The screen of a real terminal (tmux) shows the progress line during the recording, and
/// only the summary once it is done.
#[test]
fn progress_line_on_the_tmux_screen() {
    if !require_bpf() {
        return;
    }
    if !have_program("tmux") {
        // scripts/setup.sh installs it: under CI its absence is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is not installed (scripts/setup.sh installs it)"
        );
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"\n*** SKIPPED: progress_line_on_the_tmux_screen: tmux is not installed\n",
        );
        return;
    }
    let dir = TempDir::new("out-tmux");
    let (busy, _) = start_fp_paths(&dir, "12");
    let out = dir.join("t.pb.gz");
    let line = format!(
        "{}; echo rprof-exit=$?; sleep 60",
        shell_line(
            rprof_bin(),
            &[
                "record",
                "-p",
                &busy.pid.to_string(),
                "--seconds",
                "3",
                "-o",
                path_str(&out)
            ],
        )
    );
    let tmux = Tmux::start(dir.join("tmux.sock"), &line);
    let started = Instant::now();
    let mut during = None;
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        last = tmux.screen();
        if last.contains("rprof-exit=") {
            break;
        }
        if during.is_none() {
            let frames = progress_frames(&last, "cpu");
            if frames.last().is_some_and(|f| f.events > 0) {
                during = Some(last.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let during = during.unwrap_or_else(|| {
        panic!("the progress line with events never showed on the screen; last screen:\n{last}")
    });
    let frames = progress_frames(&during, "cpu");
    assert_eq!(
        frames.len(),
        1,
        "one progress line on the screen:\n{during}"
    );
    assert_eq!(frames[0].alive, 1, "{during}");
    assert!(
        during.contains("s left) | ") && during.contains(" alive"),
        "{during}"
    );
    // At the end: the summary and the exit code, no progress line.
    let wait_end = Instant::now();
    while !last.contains("rprof-exit=") && wait_end.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        last = tmux.screen();
    }
    assert!(
        last.contains("rprof-exit=0"),
        "recording did not finish well:\n{last}"
    );
    assert!(
        !last.contains(" events | "),
        "the progress line stayed on the screen:\n{last}"
    );
    let text: Vec<&str> = last.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(text.len(), 2, "summary and exit code only:\n{last}");
    assert!(text[0].starts_with("rprof-bpf: cpu: "), "{last}");
}
