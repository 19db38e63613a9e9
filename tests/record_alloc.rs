//! `--type alloc` through the real kernel, on the `allocs` workload
//! (tests/workloads/allocs.c): two allocation paths of known byte ratio, `path_frees`
//! (64 KiB blocks, all freed) and `path_keeps` (many small blocks through malloc, calloc,
//! realloc, posix_memalign and aligned_alloc, 1 in 10 kept). The workload counts what it
//! asked for and what it kept, per function; the profile must agree with it: the shares of
//! the two paths, what is still in use, the `bytes` label, and `go tool pprof` showing the
//! workload's functions (not the allocator's) as the leaves.
//!
//! Also: an attached recording (in-use covers the window only), a target that exits while
//! recorded, a static binary (its own malloc is probed), an allocator function that relays
//! to another one, and a process with no allocator at all (tests/workloads/no_malloc.c).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const ALLOC_TYPES: &[(&str, &str)] = &[
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

/// The functions the profiler probes; any name of theirs must be dropped by drop_frames.
const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
];

const PATH_FREES: &str = "path_frees";
const PATH_KEEPS: &str = "path_keeps";

/// The functions under path_keeps that call the allocator (one API each).
const KEEP_FNS: &[&str] = &[
    "keep_malloc",
    "keep_calloc",
    "realloc_seed",
    "keep_realloc",
    "keep_posix_memalign",
    "keep_aligned_alloc",
];

/// The sampling rate of the sampled runs: small enough that a few tens of MB of small
/// allocations give thousands of samples (the estimate of N bytes is then within a few
/// percent), big enough that the 64 KiB blocks are recorded exactly.
const RATE: i64 = 4096;

// ---------------------------------------------------------------------------------------
// What the workload says it did
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct FnCounts {
    calls: i64,
    bytes: i64,
    kept_bytes: i64,
    kept_blocks: i64,
}

/// Running totals at the end of one round of `allocs loop`.
#[derive(Clone, Copy, Debug, Default)]
struct Round {
    t_ns: i64,
    frees: i64,
    keeps: i64,
    kept: i64,
}

/// The workload's report (stdout of `run`/`relay`, or the log file of `loop`).
#[derive(Debug, Default)]
struct Truth {
    pid: Option<i64>,
    done: bool,
    fns: BTreeMap<String, FnCounts>,
    paths: BTreeMap<String, i64>,
    kept: i64,
    rounds: Vec<Round>,
}

impl Truth {
    fn parse(text: &str) -> Truth {
        let mut t = Truth::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| -> i64 {
                words
                    .get(i)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or_else(|| panic!("bad line from the workload: {line:?}"))
            };
            match words.first().copied() {
                Some("ready") => t.pid = Some(num(1)),
                Some("done") => t.done = true,
                Some("fn") => {
                    let counts = FnCounts {
                        calls: num(2),
                        bytes: num(3),
                        kept_bytes: num(4),
                        kept_blocks: num(5),
                    };
                    t.fns.insert(words[1].to_string(), counts);
                }
                Some("path") => {
                    t.paths.insert(words[1].to_string(), num(2));
                }
                Some("kept") => t.kept = num(1),
                Some("round") => t.rounds.push(Round {
                    t_ns: num(1),
                    frees: num(2),
                    keeps: num(3),
                    kept: num(4),
                }),
                _ => {}
            }
        }
        t
    }

    fn func(&self, name: &str) -> FnCounts {
        *self
            .fns
            .get(name)
            .unwrap_or_else(|| panic!("the workload did not report {name}: {self:?}"))
    }

    fn path(&self, name: &str) -> i64 {
        *self
            .paths
            .get(name)
            .unwrap_or_else(|| panic!("the workload did not report {name}: {self:?}"))
    }

    /// What the rounds that ended between `from_ns` and `to_ns` did (bytes requested under
    /// each path, bytes kept), and how many rounds that was.
    fn window(&self, from_ns: i64, to_ns: i64) -> (Round, usize) {
        let upto = |t: i64| {
            self.rounds
                .iter()
                .rev()
                .find(|r| r.t_ns <= t)
                .copied()
                .unwrap_or_default()
        };
        let (a, b) = (upto(from_ns), upto(to_ns));
        let n = self
            .rounds
            .iter()
            .filter(|r| r.t_ns > from_ns && r.t_ns <= to_ns)
            .count();
        let diff = Round {
            t_ns: b.t_ns - a.t_ns,
            frees: b.frees - a.frees,
            keeps: b.keeps - a.keeps,
            kept: b.kept - a.kept,
        };
        (diff, n)
    }
}

// ---------------------------------------------------------------------------------------
// Reading the profile
// ---------------------------------------------------------------------------------------

/// The allocator function a symbol stands for, whatever glibc calls it: `malloc`,
/// `__libc_malloc`, `__GI___libc_malloc`, `__malloc` (static glibc), `__posix_memalign`...
fn allocator_base(name: &str) -> Option<&'static str> {
    let mut n = name;
    loop {
        let before = n;
        n = n.trim_start_matches('_');
        for prefix in ["GI_", "libc_"] {
            if let Some(rest) = n.strip_prefix(prefix) {
                n = rest;
            }
        }
        if n == before {
            break;
        }
    }
    ALLOCATOR_FUNCTIONS.iter().copied().find(|f| *f == n)
}

/// The function that called the allocator: the first frame from the leaf that is not an
/// allocator function. This is what pprof shows as the leaf once the allocator's frames
/// are dropped.
fn caller(s: &StackSample) -> Option<&str> {
    s.user_frames()
        .iter()
        .map(|f| f.name.as_str())
        .find(|n| allocator_base(n).is_none())
}

/// The four values of a set of samples: alloc_objects, alloc_space, inuse_objects,
/// inuse_space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Vals {
    alloc_objects: i64,
    alloc_space: i64,
    inuse_objects: i64,
    inuse_space: i64,
}

impl Vals {
    fn of(p: &Decoded, s: &StackSample) -> Vals {
        let v = |name: &str| s.values[p.value_index(name)];
        Vals {
            alloc_objects: v("alloc_objects"),
            alloc_space: v("alloc_space"),
            inuse_objects: v("inuse_objects"),
            inuse_space: v("inuse_space"),
        }
    }

    fn add(&mut self, o: Vals) {
        self.alloc_objects += o.alloc_objects;
        self.alloc_space += o.alloc_space;
        self.inuse_objects += o.inuse_objects;
        self.inuse_space += o.inuse_space;
    }
}

/// Values per function that called the allocator.
fn by_caller(p: &Decoded) -> BTreeMap<String, Vals> {
    let mut out: BTreeMap<String, Vals> = BTreeMap::new();
    for s in &p.samples {
        let key = caller(s).unwrap_or("<no caller>").to_string();
        out.entry(key).or_default().add(Vals::of(p, s));
    }
    out
}

/// Values of the samples whose stack holds `func` anywhere.
fn under(p: &Decoded, func: &str) -> Vals {
    let mut v = Vals::default();
    for s in p.samples.iter().filter(|s| s.contains(func)) {
        v.add(Vals::of(p, s));
    }
    v
}

fn all(p: &Decoded) -> Vals {
    let mut v = Vals::default();
    for s in &p.samples {
        v.add(Vals::of(p, s));
    }
    v
}

/// Whether `got` is within `rel` (a fraction) of `want`.
fn within(got: i64, want: i64, rel: f64) -> bool {
    (got - want).abs() as f64 <= rel * want.abs() as f64
}

/// A bound for an estimate, from allocations sampled by `RATE`, of `bytes` bytes of small
/// blocks: 5 standard deviations (an estimate's relative deviation is about
/// sqrt(rate / bytes)), and never tighter than `floor`.
fn tolerance(bytes: i64, floor: f64) -> f64 {
    floor.max(5.0 * (RATE as f64 / bytes.max(1) as f64).sqrt())
}

fn ratio(got: i64, want: i64) -> f64 {
    got as f64 / want.max(1) as f64
}

/// The request sizes a function of the workload makes (see allocs.c).
fn request_sizes(func: &str) -> BTreeSet<i64> {
    let small = (0..13).map(|k| 64 + 16 * k);
    match func {
        PATH_FREES => [65536].into(),
        "realloc_seed" => small.map(|s| s / 2).collect(),
        "keep_aligned_alloc" => small.map(|s| (s + 63) / 64 * 64).collect(),
        _ => small.collect(),
    }
}

/// Profile against workload, per function and per path, for failure messages.
fn comparison(p: &Decoded, truth: &Truth) -> String {
    let callers = by_caller(p);
    let mut out = String::from(
        "function (by caller)   profile alloc_space / objects  workload bytes / calls   \
         ratio   profile inuse_space / objects  workload kept / blocks\n",
    );
    for (name, t) in &truth.fns {
        if t.calls == 0 {
            continue;
        }
        let v = callers.get(name).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {name:<22} {:>12} / {:<9} {:>12} / {:<9} {:>6.3}  {:>10} / {:<7} {:>10} / {}",
            v.alloc_space,
            v.alloc_objects,
            t.bytes,
            t.calls,
            ratio(v.alloc_space, t.bytes),
            v.inuse_space,
            v.inuse_objects,
            t.kept_bytes,
            t.kept_blocks
        );
    }
    for (name, v) in &callers {
        if truth.fns.get(name).is_none_or(|t| t.calls <= 0) {
            let _ = writeln!(
                out,
                "  {name:<22} {:>12} / {:<9} (not a workload function)   inuse {} / {}",
                v.alloc_space, v.alloc_objects, v.inuse_space, v.inuse_objects
            );
        }
    }
    let total = all(p);
    for path in [PATH_FREES, PATH_KEEPS] {
        let v = under(p, path);
        let _ = writeln!(
            out,
            "stack holds {path}: alloc_space {} ({:.2}% of {}), inuse_space {}",
            v.alloc_space,
            100.0 * ratio(v.alloc_space, total.alloc_space),
            total.alloc_space,
            v.inuse_space
        );
    }
    out
}

/// The heaviest stacks by `value`, leaf first, with their labels.
fn stacks(p: &Decoded, value: &str, n: usize) -> String {
    let i = p.value_index(value);
    let mut samples: Vec<&StackSample> = p.samples.iter().collect();
    samples.sort_by_key(|s| std::cmp::Reverse(s.values[i]));
    let mut out = format!("heaviest stacks by {value} (leaf first):\n");
    for s in samples.into_iter().take(n) {
        let _ = writeln!(
            out,
            "  {:>10} bytes={:?} {}",
            s.values[i],
            s.num("bytes"),
            s.names().join(" <- ")
        );
    }
    out
}

/// Checks the labels of every sample: pid, tid, comm, thread_comm, and `bytes` (numeric,
/// unit bytes, a size the calling function really asks for). With `rate`, also that each
/// sample's space and objects agree with its size: exactly (rate 0, or blocks of at least
/// `rate` bytes) or up to the rounding of rate / size.
fn check_labels(p: &Decoded, pid: i64, comm: &str, rate: i64, problems: &mut Vec<String>) {
    let known: BTreeSet<&str> = KEEP_FNS
        .iter()
        .copied()
        .chain([PATH_FREES, "relay_aligned_alloc"])
        .collect();
    for s in &p.samples {
        let who = format!("{:?} {:?}", s.names(), s.values);
        if s.pid() != Some(pid) {
            problems.push(format!("pid label {:?}, not {pid}: {who}", s.pid()));
        }
        if s.tid().is_none() || s.str("thread_comm").is_none() {
            problems.push(format!("no tid or thread_comm label: {who}"));
        }
        if s.str("comm") != Some(comm) {
            problems.push(format!(
                "comm label {:?}, not {comm:?}: {who}",
                s.str("comm")
            ));
        }
        let Some(size) = s.num("bytes") else {
            problems.push(format!("no numeric `bytes` label: {who}"));
            continue;
        };
        if let Some(func) = caller(s).filter(|f| known.contains(f)) {
            if !request_sizes(func).contains(&size) {
                problems.push(format!(
                    "bytes label {size} is not a size {func} requests ({:?}): {who}",
                    request_sizes(func)
                ));
            }
        }
        let v = Vals::of(p, s);
        for (objects, space, what) in [
            (v.alloc_objects, v.alloc_space, "alloc"),
            (v.inuse_objects, v.inuse_space, "inuse"),
        ] {
            if objects == 0 && space == 0 {
                continue;
            }
            let exact = rate == 0 || size >= rate;
            let ok = if exact {
                space == objects * size
            } else {
                within(space, objects * size, 0.05)
            };
            if !ok {
                problems.push(format!(
                    "{what}_space {space} does not match {what}_objects {objects} x bytes \
                     {size}{}: {who}",
                    if exact { "" } else { " (within 5%)" }
                ));
            }
        }
    }
    for sample in &p.profile.sample {
        for label in &sample.label {
            if p.string(label.key) == "bytes" && p.string(label.num_unit) != "bytes" {
                problems.push(format!(
                    "the bytes label has num_unit {:?}, not \"bytes\"",
                    p.string(label.num_unit)
                ));
            }
        }
    }
}

/// Checks what every alloc profile has: the layout, drop_frames and the comments.
fn check_header(p: &Decoded, rate: i64) {
    p.assert_layout(ALLOC_TYPES, ("space", "bytes"), rate);
    let drop = p.string(p.profile.drop_frames).to_string();
    for f in ALLOCATOR_FUNCTIONS {
        assert!(
            drop.contains(f),
            "drop_frames {drop:?} does not mention {f}\n{}",
            p.report()
        );
    }
    assert!(
        p.comments()
            .iter()
            .any(|c| c.contains("in use") && c.contains("window")),
        "no comment says that in-use covers only the recording window: {:?}",
        p.comments()
    );
}

/// `go tool pprof -sample_index=INDEX -top`: the workload functions in `leaves` are flat
/// leaves, and no allocator function is one (drop_frames did its work). Returns the table.
fn check_pprof_leaves(
    path: &Path,
    index: &str,
    leaves: &[&str],
    problems: &mut Vec<String>,
) -> String {
    let text = go_pprof(
        &[
            &format!("-sample_index={index}"),
            "-top",
            "-nodefraction=0",
            "-symbolize=none",
        ],
        path,
    );
    let top = parse_top(&text);
    if top.kind != index {
        problems.push(format!(
            "pprof -sample_index={index} shows Type: {}",
            top.kind
        ));
    }
    for row in &top.rows {
        if allocator_base(&row.name).is_some() && row.flat > 0.0 {
            problems.push(format!(
                "pprof -sample_index={index}: the allocator's {:?} is a flat leaf ({} bytes, \
                 {:.2}%): drop_frames does not drop it",
                row.name, row.flat, row.flat_pct
            ));
        }
    }
    for leaf in leaves {
        if !top.row(leaf).is_some_and(|r| r.flat > 0.0) {
            problems.push(format!(
                "pprof -sample_index={index}: {leaf} is not a flat leaf ({:?})",
                top.row(leaf)
            ));
        }
    }
    format!("--- go tool pprof -sample_index={index} -top ---\n{text}")
}

/// Fails the test with every problem found, and everything needed to see why.
fn assert_no_problems(problems: &[String], context: &[&str]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}\n\n{}",
        problems.len(),
        problems.join("\n- "),
        context.join("\n")
    );
}

/// `record --type alloc --alloc-sample-bytes RATE -o OUT -- PROGRAM ARGS...`: the profile
/// and the workload's report (its stdout).
fn record_launched(program: &Path, args: &[&str], rate: i64, out: &Path) -> (Decoded, Truth) {
    let rate = rate.to_string();
    let mut cmd = vec![
        "--type",
        "alloc",
        "--alloc-sample-bytes",
        &rate,
        "-o",
        out.to_str().unwrap(),
        "--",
        program.to_str().unwrap(),
    ];
    cmd.extend_from_slice(args);
    let run = record(&cmd, Duration::from_secs(60));
    run.assert_success();
    let truth = Truth::parse(&run.stdout);
    assert!(
        truth.done && truth.pid.is_some(),
        "the workload did not finish\n{}",
        run.describe()
    );
    (decode(out), truth)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// A launched workload, sampled by 4 KiB: every allocation is in the window. The shares of
/// the two paths, per-function bytes (malloc, calloc, realloc, posix_memalign,
/// aligned_alloc), what is still in use, the labels, and pprof's view.
#[test]
fn launched_shares_inuse_labels_and_pprof_leaves() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-launched");
    let bin = build_c("allocs.c", dir.path(), "allocs");
    let out = dir.join("alloc.pb.gz");
    let (p, truth) = record_launched(&bin, &["run", "400"], RATE, &out);
    check_header(&p, RATE);
    let table = comparison(&p, &truth);
    let mut problems = Vec::new();

    // The two paths, by a function anywhere in the stack.
    let total = all(&p);
    let (frees, keeps) = (truth.path(PATH_FREES), truth.path(PATH_KEEPS));
    let want_frees_share = frees as f64 / (frees + keeps) as f64;
    for (path, want) in [
        (PATH_FREES, want_frees_share),
        (PATH_KEEPS, 1.0 - want_frees_share),
    ] {
        let got = ratio(under(&p, path).alloc_space, total.alloc_space);
        if (got - want).abs() > 0.03 {
            problems.push(format!(
                "alloc_space share of {path}: {:.2}%, the workload's {:.2}% (limit 3 points)",
                100.0 * got,
                100.0 * want
            ));
        }
    }

    // In use: nothing of the path that frees everything, about what the other kept.
    let f = under(&p, PATH_FREES);
    if f.inuse_space as f64 > 0.02 * f.alloc_space as f64 {
        problems.push(format!(
            "{PATH_FREES} frees everything, but {} bytes of its {} are in use",
            f.inuse_space, f.alloc_space
        ));
    }
    let k = under(&p, PATH_KEEPS);
    let tol = tolerance(truth.kept, 0.25);
    if !within(k.inuse_space, truth.kept, tol) {
        problems.push(format!(
            "inuse_space of {PATH_KEEPS}: {}, the workload kept {} (x{:.3}, limit {:.0}%)",
            k.inuse_space,
            truth.kept,
            ratio(k.inuse_space, truth.kept),
            100.0 * tol
        ));
    }
    let kept_blocks: i64 = truth.fns.values().map(|c| c.kept_blocks).sum();
    if !within(k.inuse_objects, kept_blocks, tol) {
        problems.push(format!(
            "inuse_objects of {PATH_KEEPS}: {}, the workload kept {kept_blocks} blocks \
             (limit {:.0}%)",
            k.inuse_objects,
            100.0 * tol
        ));
    }

    // Per function that called the allocator (the leaf once its frames are dropped): each
    // API is seen, with about the bytes asked for, and about what was kept.
    let callers = by_caller(&p);
    for func in KEEP_FNS.iter().copied().chain([PATH_FREES]) {
        let t = truth.func(func);
        let v = callers.get(func).copied().unwrap_or_default();
        let tol = tolerance(t.bytes, 0.15);
        if !within(v.alloc_space, t.bytes, tol) {
            problems.push(format!(
                "alloc_space of {func}: {}, the workload asked for {} (x{:.3}, limit {:.0}%)",
                v.alloc_space,
                t.bytes,
                ratio(v.alloc_space, t.bytes),
                100.0 * tol
            ));
        }
        // Counts of small blocks vary a little more than their bytes.
        let tol = tolerance(t.bytes, 0.25);
        if !within(v.alloc_objects, t.calls, tol) {
            problems.push(format!(
                "alloc_objects of {func}: {}, the workload made {} calls (limit {:.0}%)",
                v.alloc_objects,
                t.calls,
                100.0 * tol
            ));
        }
        // A few hundred KB kept per function: a hundred samples or so, a looser bound.
        let tol = tolerance(t.kept_bytes, 0.25);
        if !within(v.inuse_space, t.kept_bytes, tol) {
            problems.push(format!(
                "inuse_space of {func}: {}, the workload kept {} (x{:.3}, limit {:.0}%)",
                v.inuse_space,
                t.kept_bytes,
                ratio(v.inuse_space, t.kept_bytes),
                100.0 * tol
            ));
        }
    }
    // realloc replaces its seed: none of realloc_seed's blocks may stay in use.
    let seed = callers.get("realloc_seed").copied().unwrap_or_default();
    if seed.inuse_space as f64 > 0.02 * seed.alloc_space as f64 {
        problems.push(format!(
            "realloc_seed's blocks were all passed to realloc, but {} bytes are in use",
            seed.inuse_space
        ));
    }

    check_labels(&p, truth.pid.unwrap(), "allocs", RATE, &mut problems);

    // pprof: the workload's functions are the leaves, in both views.
    let alloc_top = check_pprof_leaves(&out, "alloc_space", KEEP_FNS, &mut problems);
    let top = parse_top(&alloc_top);
    match top.row(PATH_FREES) {
        Some(row) if (row.flat_pct - 100.0 * want_frees_share).abs() <= 3.0 => {}
        row => problems.push(format!(
            "pprof -sample_index=alloc_space: {PATH_FREES} flat {:?}, want {:.2}%",
            row.map(|r| r.flat_pct),
            100.0 * want_frees_share
        )),
    }
    let kept_leaves: Vec<&str> = KEEP_FNS
        .iter()
        .copied()
        .filter(|f| *f != "realloc_seed")
        .collect();
    let inuse_top = check_pprof_leaves(&out, "inuse_space", &kept_leaves, &mut problems);
    if let Some(row) = parse_top(&inuse_top).row(PATH_FREES) {
        if row.flat_pct > 2.0 {
            problems.push(format!(
                "pprof -sample_index=inuse_space: {PATH_FREES} flat {:.2}%",
                row.flat_pct
            ));
        }
    }
    // A heap profile opens on inuse_space (the last sample type), as Go's does.
    let default_kind = parse_top(&go_pprof_top(&out)).kind;
    if default_kind != "inuse_space" {
        problems.push(format!(
            "pprof's default view is {default_kind}, not inuse_space"
        ));
    }

    assert_no_problems(
        &problems,
        &[
            &table,
            &alloc_top,
            &inuse_top,
            &stacks(&p, "alloc_space", 12),
            &p.report(),
        ],
    );
}

/// `--alloc-sample-bytes 0` records every allocation: the counts are exact.
#[test]
fn exact_mode_counts_every_allocation() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-exact");
    let bin = build_c("allocs.c", dir.path(), "allocs");
    let out = dir.join("exact.pb.gz");
    let (p, truth) = record_launched(&bin, &["run", "100"], 0, &out);
    assert_eq!(
        p.sample_types(),
        ALLOC_TYPES
            .iter()
            .map(|(t, u)| (t.to_string(), u.to_string()))
            .collect::<Vec<_>>()
    );
    let table = comparison(&p, &truth);
    let mut problems = Vec::new();
    let callers = by_caller(&p);
    for func in KEEP_FNS.iter().copied().chain([PATH_FREES]) {
        let t = truth.func(func);
        let want = Vals {
            alloc_objects: t.calls,
            alloc_space: t.bytes,
            inuse_objects: t.kept_blocks,
            inuse_space: t.kept_bytes,
        };
        let got = callers.get(func).copied().unwrap_or_default();
        if got != want {
            problems.push(format!("{func}: profile {got:?}, workload {want:?}"));
        }
    }
    let want_frees = Vals {
        alloc_objects: truth.func(PATH_FREES).calls,
        alloc_space: truth.path(PATH_FREES),
        inuse_objects: 0,
        inuse_space: 0,
    };
    let got_frees = under(&p, PATH_FREES);
    if got_frees != want_frees {
        problems.push(format!(
            "stacks holding {PATH_FREES}: profile {got_frees:?}, workload {want_frees:?}"
        ));
    }
    let got_keeps = under(&p, PATH_KEEPS);
    if got_keeps.alloc_space != truth.path(PATH_KEEPS) || got_keeps.inuse_space != truth.kept {
        problems.push(format!(
            "stacks holding {PATH_KEEPS}: alloc_space {} (workload {}), inuse_space {} \
             (workload {})",
            got_keeps.alloc_space,
            truth.path(PATH_KEEPS),
            got_keeps.inuse_space,
            truth.kept
        ));
    }
    check_labels(&p, truth.pid.unwrap(), "allocs", 0, &mut problems);
    assert_no_problems(&problems, &[&table, &stacks(&p, "alloc_space", 12)]);
}

/// `-p` of a process that was allocating before the recording: only the window's
/// allocations are counted, and in use is what the window allocated and did not free.
/// Blocks from before the window, freed during it, must not show.
#[test]
fn attached_pid_counts_the_window_only() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-attached");
    let bin = build_c("allocs.c", dir.path(), "allocs");
    let out = dir.join("attached.pb.gz");
    let log = dir.join("rounds.log");
    // Detaching the probes takes a while after the window: the workload outlives the
    // window by far, which its log shows.
    let w = Workload::start(&bin, &["loop", "4", log.to_str().unwrap()]);
    let pid = w.pid.to_string();
    let rate = RATE.to_string();
    let run = record(
        &[
            "--type",
            "alloc",
            "--alloc-sample-bytes",
            &rate,
            "-p",
            &pid,
            "--seconds",
            "2",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    let workload_pid = w.pid as i64;
    let status = w.wait(Duration::from_secs(15));
    assert!(status.success(), "the workload failed: {status}");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    let truth = Truth::parse(&text);
    let p = decode(&out);
    check_header(&p, RATE);

    let from = p.profile.time_nanos;
    let to = from + p.profile.duration_nanos;
    let (win, rounds) = truth.window(from, to);
    let table = comparison(&p, &truth);
    let context = format!(
        "window {from}..{to} ({} ms): {rounds} rounds of {} in the log; in the window the \
         workload asked for {} bytes under {PATH_FREES}, {} under {PATH_KEEPS}, and kept {} \
         (the table's workload columns are for its whole run)",
        (to - from) / 1_000_000,
        truth.rounds.len(),
        win.frees,
        win.keeps,
        win.kept
    );
    let (first, last) = (truth.rounds.first(), truth.rounds.last());
    assert!(
        rounds >= 100 && first.is_some_and(|r| r.t_ns < from) && last.is_some_and(|r| r.t_ns > to),
        "the workload was not running through the whole window, or made too few rounds in \
         it for a meaningful test\n{context}\n{}",
        run.describe()
    );
    let mut problems = Vec::new();
    let total = all(&p);
    let want_frees_share = win.frees as f64 / (win.frees + win.keeps) as f64;
    for (path, want) in [
        (PATH_FREES, want_frees_share),
        (PATH_KEEPS, 1.0 - want_frees_share),
    ] {
        let got = ratio(under(&p, path).alloc_space, total.alloc_space);
        if (got - want).abs() > 0.03 {
            problems.push(format!(
                "alloc_space share of {path}: {:.2}%, the workload's in the window {:.2}% \
                 (limit 3 points)",
                100.0 * got,
                100.0 * want
            ));
        }
    }
    // Window edges (when exactly the probes were attached and detached) count for a round
    // or two out of hundreds.
    let (f, k) = (under(&p, PATH_FREES), under(&p, PATH_KEEPS));
    for (path, got, want) in [
        (PATH_FREES, f.alloc_space, win.frees),
        (PATH_KEEPS, k.alloc_space, win.keeps),
    ] {
        if !within(got, want, 0.10) {
            problems.push(format!(
                "alloc_space of {path}: {got}, the workload asked for {want} in the window \
                 (x{:.3}, limit 10%)",
                ratio(got, want)
            ));
        }
    }
    if f.inuse_space as f64 > 0.02 * f.alloc_space as f64 {
        problems.push(format!(
            "{PATH_FREES} frees everything, but {} bytes of its {} are in use",
            f.inuse_space, f.alloc_space
        ));
    }
    let tol = tolerance(win.kept, 0.25);
    if !within(k.inuse_space, win.kept, tol) {
        problems.push(format!(
            "inuse_space of {PATH_KEEPS}: {}, the workload kept {} in the window (x{:.3}, \
             limit {:.0}%)",
            k.inuse_space,
            win.kept,
            ratio(k.inuse_space, win.kept),
            100.0 * tol
        ));
    }
    for before in ["keep_before", "free_before"] {
        if p.contains_function(before) {
            problems.push(format!(
                "{before} is in the profile, but it allocated before the window"
            ));
        }
    }
    check_labels(&p, workload_pid, "allocs", RATE, &mut problems);
    assert_no_problems(
        &problems,
        &[
            &context,
            &table,
            &stacks(&p, "alloc_space", 12),
            &p.report(),
        ],
    );
}

/// The target exits while recorded (`-p`, a 10 s window, a process that lives 1 s more):
/// the recording ends with it and the profile is written, symbolized.
#[test]
fn target_exits_mid_recording() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-exits");
    let bin = build_c("allocs.c", dir.path(), "allocs");
    let out = dir.join("exits.pb.gz");
    let log = dir.join("rounds.log");
    // It runs 3 s: long enough to be attached to even in a slow debug build, shorter than
    // the 10 s asked for.
    let w = Workload::start(&bin, &["loop", "3", log.to_str().unwrap()]);
    let pid = w.pid.to_string();
    let rate = RATE.to_string();
    let run = record(
        &[
            "--type",
            "alloc",
            "--alloc-sample-bytes",
            &rate,
            "-p",
            &pid,
            "--seconds",
            "10",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    run.assert_success();
    assert!(w.has_exited(), "the workload should have exited");
    let truth = Truth::parse(&std::fs::read_to_string(&log).expect("the workload's log"));
    let p = decode(&out);
    check_header(&p, RATE);
    assert!(
        p.profile.duration_nanos < 4_000_000_000 && run.elapsed < Duration::from_secs(9),
        "the target exited after 3 s, but the window lasted {} ms and the recording {:.2?}\n{}",
        p.profile.duration_nanos / 1_000_000,
        run.elapsed,
        run.describe()
    );
    let (win, rounds) = truth.window(p.profile.time_nanos, i64::MAX);
    let mut problems = Vec::new();
    let total = all(&p);
    let f = under(&p, PATH_FREES);
    let want = win.frees as f64 / (win.frees + win.keeps).max(1) as f64;
    let got = ratio(f.alloc_space, total.alloc_space);
    if rounds < 20 || (got - want).abs() > 0.03 {
        problems.push(format!(
            "alloc_space share of {PATH_FREES}: {:.2}%, the workload's {:.2}% over the \
             {rounds} rounds it made while recorded",
            100.0 * got,
            100.0 * want
        ));
    }
    for func in KEEP_FNS {
        if !p.contains_function(func) {
            problems.push(format!(
                "{func} missing: the exited process was not symbolized"
            ));
        }
    }
    check_labels(&p, w.pid as i64, "allocs", RATE, &mut problems);
    let context = format!(
        "in the window the workload asked for {} bytes under {PATH_FREES} and {} under \
         {PATH_KEEPS} (the table's workload columns are for its whole run)",
        win.frees, win.keeps
    );
    assert_no_problems(
        &problems,
        &[
            &context,
            &comparison(&p, &truth),
            &stacks(&p, "alloc_space", 12),
        ],
    );
}

/// A static binary has its own malloc: that is what must be probed, and its frames
/// (named `__malloc`, `__calloc`... in a static glibc) dropped like libc's.
#[test]
fn static_binary_has_its_own_malloc_probed() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-static");
    let bin = build_c_with("allocs.c", dir.path(), "allocs_static", &["-static"]);
    let out = dir.join("static.pb.gz");
    let (p, truth) = record_launched(&bin, &["run", "50"], 0, &out);
    let table = comparison(&p, &truth);
    let mut problems = Vec::new();
    let callers = by_caller(&p);
    for func in KEEP_FNS.iter().copied().chain([PATH_FREES]) {
        let t = truth.func(func);
        let v = callers.get(func).copied().unwrap_or_default();
        if (v.alloc_objects, v.alloc_space, v.inuse_space) != (t.calls, t.bytes, t.kept_bytes) {
            problems.push(format!(
                "{func}: profile {v:?}; the workload made {} calls of {} bytes and kept {}",
                t.calls, t.bytes, t.kept_bytes
            ));
        }
    }
    check_labels(&p, truth.pid.unwrap(), "allocs_static", 0, &mut problems);
    let alloc_top = check_pprof_leaves(&out, "alloc_space", KEEP_FNS, &mut problems);
    assert_no_problems(
        &problems,
        &[&table, &alloc_top, &stacks(&p, "alloc_space", 12)],
    );
}

/// glibc's aligned_alloc with an alignment of 16 jumps on to malloc: the allocator is
/// entered twice for one block. It is one allocation, of the function that called
/// aligned_alloc, with its real size.
#[test]
fn allocator_relaying_to_malloc_counts_once_for_its_caller() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-relay");
    let bin = build_c("allocs.c", dir.path(), "allocs");
    let out = dir.join("relay.pb.gz");
    let (p, truth) = record_launched(&bin, &["relay", "80"], RATE, &out);
    let t = truth.func("relay_aligned_alloc");
    let callers = by_caller(&p);
    let v = callers
        .get("relay_aligned_alloc")
        .copied()
        .unwrap_or_default();
    let total = all(&p);
    let mut problems = Vec::new();
    if ratio(v.alloc_space, total.alloc_space) < 0.95 {
        problems.push(format!(
            "only {:.2}% of alloc_space is attributed to relay_aligned_alloc, which makes \
             all but a few KiB of the allocations",
            100.0 * ratio(v.alloc_space, total.alloc_space)
        ));
    }
    if !within(total.alloc_space, t.bytes, 0.15) {
        problems.push(format!(
            "alloc_space {} in all, the workload asked for {} (x{:.3}, limit 15%): \
             counted more than once?",
            total.alloc_space,
            t.bytes,
            ratio(total.alloc_space, t.bytes)
        ));
    }
    assert_no_problems(
        &problems,
        &[&comparison(&p, &truth), &stacks(&p, "alloc_space", 12)],
    );
}

/// tests/workloads/no_malloc.c: static, without libc, so with no malloc anywhere.
fn build_no_malloc(dir: &TempDir) -> PathBuf {
    build_c_with(
        "no_malloc.c",
        dir.path(),
        "no_malloc",
        &[
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
        ],
    )
}

/// A one-line error naming what was looked for (malloc, in the program), quickly, and no
/// profile.
fn assert_no_allocator_error(run: &RunOutput, bin: &Path, pid: Option<u32>, out: &Path) {
    run.assert_one_line_error();
    let err = run.stderr.trim();
    let path = bin.canonicalize().unwrap_or_else(|_| bin.to_path_buf());
    for want in [
        "no allocator".to_string(),
        "malloc".to_string(),
        path.display().to_string(),
    ]
    .into_iter()
    .chain(pid.map(|p| p.to_string()))
    {
        assert!(
            err.contains(&want),
            "the error does not say {want:?}\n{}",
            run.describe()
        );
    }
    assert!(
        run.elapsed < Duration::from_secs(10),
        "the error took {:.2?}\n{}",
        run.elapsed,
        run.describe()
    );
    assert!(
        !out.exists(),
        "{} was written although recording failed\n{}",
        out.display(),
        run.describe()
    );
}

/// `-p` of a process with no allocator: the error, and the process left alone.
#[test]
fn attached_process_without_allocator_is_a_clear_error() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-none-pid");
    let bin = build_no_malloc(&dir);
    let w = Workload::start(&bin, &["30"]);
    let out = dir.join("none.pb.gz");
    let pid = w.pid.to_string();
    let run = record(
        &[
            "--type",
            "alloc",
            "-p",
            &pid,
            "--seconds",
            "5",
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert_no_allocator_error(&run, &bin, Some(w.pid), &out);
    assert!(!w.has_exited(), "the target must be left alone");
}

/// The same, for a launched program: a static program loads no libc, so the libc it
/// would load (the system's) must not be probed in its place, which would give an empty
/// profile without a word.
#[test]
fn launched_program_without_allocator_is_a_clear_error() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-none-launch");
    let bin = build_no_malloc(&dir);
    let out = dir.join("none.pb.gz");
    let run = record(
        &[
            "--type",
            "alloc",
            "--seconds",
            "5",
            "-o",
            out.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "1",
        ],
        Duration::from_secs(30),
    );
    assert_no_allocator_error(&run, &bin, None, &out);
}
