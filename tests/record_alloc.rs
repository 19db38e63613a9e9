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
//!
//! Then, on workloads built as distributions build them (no frame pointers), with every
//! allocation recorded so that the counts are exact: jemalloc, tcmalloc and mimalloc
//! replacing glibc's malloc through LD_PRELOAD (and jemalloc linked in), blocks freed by
//! another thread than the one that allocated them (tests/workloads/alloc_handoff.c), and a
//! process attached to in its own mount namespace, where the allocator's path is not the
//! host's.

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
    /// alloc_handoff: "thread NAME TID".
    threads: BTreeMap<String, i64>,
    /// alloc_handoff: "freed BYTES BLOCKS", what the consumer freed of the producer's.
    freed: Option<(i64, i64)>,
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
                Some("thread") => {
                    t.threads.insert(words[1].to_string(), num(2));
                }
                Some("freed") => t.freed = Some((num(1), num(2))),
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
/// `__libc_malloc`, `__GI___libc_malloc`, `__malloc` (static glibc), `__posix_memalign`...,
/// or a replacement allocator: `tc_malloc` (tcmalloc), `mi_realloc` (mimalloc), `je_malloc`.
fn allocator_base(name: &str) -> Option<&'static str> {
    let mut n = name;
    loop {
        let before = n;
        n = n.trim_start_matches('_');
        for prefix in ["GI_", "libc_", "tc_", "mi_", "je_"] {
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
    // Every allocation recorded walks frame pointers (README): the paths above the
    // allocator's caller need them.
    let bin = build_c_fp("allocs.c", dir.path(), "allocs");
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

// ---------------------------------------------------------------------------------------
// Distribution builds: replacement allocators, frees on another thread, mount namespaces
// ---------------------------------------------------------------------------------------

/// How distributions build C: optimised, with DWARF, and without frame pointers (GCC's
/// default at -O2), so that the callers above the allocator's caller are found only
/// through CFI.
const DISTRO_FLAGS: &[&str] = &["-O2", "-g", "-pthread"];

/// `--alloc-sample-bytes 0`: every allocation recorded, its stack walked by frame pointers
/// from the allocator's entry. The allocator's caller is exact (its return address is at
/// the stack pointer there); the callers above it are lost in code without frame pointers,
/// as the README says.
const EVERY: i64 = 0;

/// `--alloc-sample-bytes 1`: every allocation (of at least one byte) is at least the rate,
/// so every one is kept, weighted by its own size: the counts are as exact as with 0, and
/// each stack is copied and unwound with CFI. The copies go through a ring buffer that
/// holds [`CFI_RUN_MAX`] of them at the least (src/collect/alloc.rs), emptied every 50 ms:
/// a run that makes fewer allocations than that in all cannot lose one, however late the
/// emptying comes on a loaded machine.
const EVERY_WITH_CFI: i64 = 1;

/// The most allocations a run at [`EVERY_WITH_CFI`] may make.
const CFI_RUN_MAX: i64 = 512;

/// The functions of allocs.c that call the allocator.
const ALLOCS_FNS: &[&str] = &[
    PATH_FREES,
    "keep_malloc",
    "keep_calloc",
    "realloc_seed",
    "keep_realloc",
    "keep_posix_memalign",
    "keep_aligned_alloc",
];

fn build_distro(source: &str, dir: &Path, out_name: &str) -> PathBuf {
    build_c_exact("gcc", source, dir, out_name, DISTRO_FLAGS)
}

/// The functions of allocs.c from the allocator's caller `func` up to main, leaf first
/// (each is noinline). one_round calls path_keeps last, and GCC makes that a tail call (a
/// jump): path_keeps returns straight to main, so one_round is not on its stacks.
fn allocs_chain(func: &'static str) -> Vec<&'static str> {
    match func {
        PATH_FREES => vec![PATH_FREES, "one_round", "main"],
        "realloc_seed" => vec![func, "keep_realloc", PATH_KEEPS, "main"],
        _ => vec![func, PATH_KEEPS, "main"],
    }
}

/// Each of `funcs`, as the allocator's caller, has exactly the workload's counts: every
/// call, every byte asked for, and every block and byte it kept (the only ones in use).
fn check_exact(p: &Decoded, truth: &Truth, funcs: &[&str], problems: &mut Vec<String>) {
    let callers = by_caller(p);
    for func in funcs {
        let t = truth.func(func);
        let want = Vals {
            alloc_objects: t.calls,
            alloc_space: t.bytes,
            inuse_objects: t.kept_blocks,
            inuse_space: t.kept_bytes,
        };
        let got = callers.get(*func).copied().unwrap_or_default();
        if got != want {
            problems.push(format!("{func}: profile {got:?}, workload {want:?}"));
        }
    }
}

/// Every sample whose allocator caller begins one of `chains` has the whole chain on its
/// stack, in that order from the leaf (with nothing, or other callers, between them), and
/// every chain has samples.
fn check_chains(p: &Decoded, chains: &[Vec<&str>], problems: &mut Vec<String>) {
    for chain in chains {
        let samples: Vec<&StackSample> = p
            .samples
            .iter()
            .filter(|s| caller(s) == Some(chain[0]))
            .collect();
        if samples.is_empty() {
            problems.push(format!("no sample allocated by {}", chain[0]));
        }
        let broken: Vec<&&StackSample> = samples
            .iter()
            .filter(|s| {
                let mut names = s.user_names().into_iter();
                !chain.iter().all(|want| names.any(|n| n == *want))
            })
            .collect();
        if let Some(first) = broken.first() {
            problems.push(format!(
                "{} of {} stacks allocated by {} lack {} (in this order from the leaf), \
                 such as {}",
                broken.len(),
                samples.len(),
                chain[0],
                chain.join(" <- "),
                first.names().join(" <- ")
            ));
        }
    }
}

/// Every sample allocated by one of `funcs` has the allocator's entry as its leaf, in
/// `library` (the path the process maps it by): that is the allocator that was probed.
fn check_allocator_file(p: &Decoded, funcs: &[&str], library: &str, problems: &mut Vec<String>) {
    for s in &p.samples {
        if !caller(s).is_some_and(|c| funcs.contains(&c)) {
            continue;
        }
        let leaf = s.user_frames().first();
        if !leaf.is_some_and(|f| allocator_base(&f.name).is_some() && f.mapping == library) {
            problems.push(format!(
                "the leaf of {:?} is {:?} in {:?}, not an allocator function in {library}",
                s.names(),
                leaf.map(|f| &f.name),
                leaf.map(|f| &f.mapping)
            ));
            return;
        }
    }
}

/// A run at [`EVERY_WITH_CFI`] made few enough allocations that none could be lost.
fn assert_cfi_run_small(p: &Decoded) {
    let made = all(p).alloc_objects;
    assert!(
        made < CFI_RUN_MAX,
        "the run made {made} allocations; at --alloc-sample-bytes 1 more than \
         {CFI_RUN_MAX} could overrun the stack copies' ring buffer"
    );
}

/// A replacement allocator's library as Debian installs it (scripts/setup.sh installs
/// `package`), or None when it is missing: a failure under CI, a skip elsewhere.
fn replacement_library(file: &str, package: &str) -> Option<PathBuf> {
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    let found = [
        format!("/usr/lib/{triple}/{file}"),
        format!("/lib/{triple}/{file}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{file} is missing (scripts/setup.sh installs {package})"
        );
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n*** SKIPPED: {file} is missing; install {package}\n").as_bytes(),
        );
    }
    found
}

/// `LD_PRELOAD=LIBRARY rprof-bpf record --type alloc --alloc-sample-bytes RATE -o OUT --
/// PROGRAM ARGS...`: the launched program inherits rprof-bpf's environment, so the library
/// replaces glibc's allocator in it. The profile and the workload's report (its stdout).
fn record_preloaded(
    library: &Path,
    program: &Path,
    args: &[&str],
    rate: i64,
    out: &Path,
) -> (Decoded, Truth) {
    let rate = rate.to_string();
    let mut cmd = record_cmd(&[
        "--type",
        "alloc",
        "--alloc-sample-bytes",
        &rate,
        "-o",
        out.to_str().unwrap(),
        "--",
        program.to_str().unwrap(),
    ]);
    cmd.args(args).env("LD_PRELOAD", library);
    let run = Running::start(cmd).finish(Duration::from_secs(60));
    run.assert_success();
    let truth = Truth::parse(&run.stdout);
    assert!(
        truth.done && truth.pid.is_some(),
        "the workload did not finish\n{}",
        run.describe()
    );
    (decode(out), truth)
}

/// allocs.c under a replacement allocator preloaded into the launched command: the
/// replacement's functions are the ones probed (the allocator frame is in its file), and
/// every allocating function has exactly the workload's counts, with every allocation
/// recorded by frame pointers (20 rounds) and again with CFI (1 round, whose stacks must
/// reach main through the workload's frameless functions). No allocator frame is a leaf
/// in pprof: drop_frames knows the replacement's names for its functions too.
///
/// The three replacements give the same exact counts as glibc, so nothing here needs a
/// looser bound: a replacement's function that went through another probed one on its way
/// (calloc through malloc) would still be one allocation, for the outer call, as
/// allocator_relaying_to_malloc_counts_once_for_its_caller shows for glibc.
fn check_replacement(file: &str, package: &str, tag: &str) {
    if !require_bpf() {
        return;
    }
    let Some(library) = replacement_library(file, package) else {
        return;
    };
    // The process maps the file itself (tcmalloc's name is a symbolic link).
    let mapped = library.canonicalize().unwrap().display().to_string();
    let dir = TempDir::new(&format!("alloc-{tag}"));
    let bin = build_distro("allocs.c", dir.path(), "allocs");

    let out = dir.join("every.pb.gz");
    let (p, truth) = record_preloaded(&library, &bin, &["run", "20"], EVERY, &out);
    let mut problems = Vec::new();
    check_exact(&p, &truth, ALLOCS_FNS, &mut problems);
    check_allocator_file(&p, ALLOCS_FNS, &mapped, &mut problems);
    check_labels(&p, truth.pid.unwrap(), "allocs", EVERY, &mut problems);
    let top = check_pprof_leaves(&out, "alloc_space", ALLOCS_FNS, &mut problems);
    let context = [comparison(&p, &truth), top, stacks(&p, "alloc_space", 12)];

    let out = dir.join("cfi.pb.gz");
    let (q, truth_cfi) = record_preloaded(&library, &bin, &["run", "1"], EVERY_WITH_CFI, &out);
    assert_cfi_run_small(&q);
    let mut cfi_problems = Vec::new();
    check_exact(&q, &truth_cfi, ALLOCS_FNS, &mut cfi_problems);
    check_allocator_file(&q, ALLOCS_FNS, &mapped, &mut cfi_problems);
    let chains: Vec<Vec<&str>> = ALLOCS_FNS.iter().map(|f| allocs_chain(f)).collect();
    check_chains(&q, &chains, &mut cfi_problems);
    check_labels(
        &q,
        truth_cfi.pid.unwrap(),
        "allocs",
        EVERY_WITH_CFI,
        &mut cfi_problems,
    );
    problems.extend(cfi_problems.into_iter().map(|m| format!("with CFI: {m}")));
    assert_no_problems(
        &problems,
        &[
            &format!("{file} ({mapped}), every allocation by frame pointers, 20 rounds:"),
            &context.join("\n"),
            "every allocation with CFI, 1 round:",
            &comparison(&q, &truth_cfi),
            &stacks(&q, "alloc_space", 12),
        ],
    );
}

#[test]
fn jemalloc_preloaded_counts_exactly_per_function() {
    check_replacement("libjemalloc.so.2", "libjemalloc2", "jemalloc");
}

/// allocs.c linked against jemalloc (DT_NEEDED, as Debian links redis-server) and launched
/// without LD_PRELOAD: jemalloc is the allocator it uses, and the one probed; every
/// function's counts are exact. The program finds its own copy of jemalloc through its
/// run path, `$ORIGIN/lib`, as the loader does.
#[test]
fn jemalloc_linked_counts_exactly_per_function() {
    if !require_bpf() {
        return;
    }
    let file = "libjemalloc.so.2";
    let Some(library) = replacement_library(file, "libjemalloc2") else {
        return;
    };
    let dir = TempDir::new("alloc-jemalloc-linked");
    let lib_dir = dir.join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    let own_copy = lib_dir.join(file);
    std::fs::copy(&library, &own_copy).unwrap();
    let mapped = own_copy.canonicalize().unwrap().display().to_string();
    let mut flags = DISTRO_FLAGS.to_vec();
    let (search, link) = (format!("-L{}", lib_dir.display()), format!("-l:{file}"));
    // The library comes before the source on the command line: without --no-as-needed the
    // linker would drop it as unused there.
    flags.extend([
        "-Wl,--no-as-needed",
        search.as_str(),
        link.as_str(),
        "-Wl,-rpath,$ORIGIN/lib",
    ]);
    let bin = build_c_exact("gcc", "allocs.c", dir.path(), "allocs", &flags);
    let out = dir.join("linked.pb.gz");
    let (p, truth) = record_launched(&bin, &["run", "20"], EVERY, &out);
    let mut problems = Vec::new();
    check_exact(&p, &truth, ALLOCS_FNS, &mut problems);
    check_allocator_file(&p, ALLOCS_FNS, &mapped, &mut problems);
    check_labels(&p, truth.pid.unwrap(), "allocs", EVERY, &mut problems);
    assert_no_problems(
        &problems,
        &[&comparison(&p, &truth), &stacks(&p, "alloc_space", 12)],
    );
}

#[test]
fn tcmalloc_preloaded_counts_exactly_per_function() {
    check_replacement(
        "libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
        "tcmalloc",
    );
}

#[test]
fn mimalloc_preloaded_counts_exactly_per_function() {
    check_replacement("libmimalloc.so.2", "libmimalloc2.0", "mimalloc");
}

/// Producer/consumer (tests/workloads/alloc_handoff.c): the producer thread allocates
/// every item, the consumer thread frees 3 in 4 and keeps the rest. In use must be exactly
/// what the consumer kept, on the producer's stacks and thread (the frees on the other
/// thread take the blocks out), and the consumer's own kept notes on its thread; all with
/// every allocation recorded, by frame pointers over 5000 items, then with CFI over 300
/// items, whose stacks must reach each thread's function (main is not on a thread's
/// stack: its function is the root of its code).
#[test]
fn frees_on_another_thread_leave_in_use_exactly_what_was_kept() {
    if !require_bpf() {
        return;
    }
    let dir = TempDir::new("alloc-handoff");
    let bin = build_distro("alloc_handoff.c", dir.path(), "alloc_handoff");
    let funcs = ["produce_item", "consumer_note"];
    let mut problems = Vec::new();
    let mut context = Vec::new();
    for (rate, items) in [(EVERY, "5000"), (EVERY_WITH_CFI, "300")] {
        let out = dir.join(&format!("handoff-{rate}.pb.gz"));
        let (p, truth) = record_launched(&bin, &[items], rate, &out);
        if rate == EVERY_WITH_CFI {
            assert_cfi_run_small(&p);
        }
        let mut found = Vec::new();
        check_exact(&p, &truth, &funcs, &mut found);
        // The producer's blocks in use are what it made less what the consumer freed.
        let made = truth.func("produce_item");
        let (freed_bytes, freed_blocks) = truth.freed.expect("the workload's freed line");
        let produced = by_caller(&p)
            .get("produce_item")
            .copied()
            .unwrap_or_default();
        if (produced.inuse_space, produced.inuse_objects)
            != (made.bytes - freed_bytes, made.calls - freed_blocks)
        {
            found.push(format!(
                "produce_item in use: {} bytes in {} blocks; it made {} in {}, and the \
                 consumer freed {freed_bytes} in {freed_blocks}",
                produced.inuse_space, produced.inuse_objects, made.bytes, made.calls
            ));
        }
        // Each function's samples are its thread's.
        for (func, thread) in [("produce_item", "producer"), ("consumer_note", "consumer")] {
            let tid = truth.threads.get(thread).copied();
            let other = p.samples.iter().find(|s| {
                caller(s) == Some(func) && (s.tid() != tid || s.str("thread_comm") != Some(thread))
            });
            if let Some(s) = other {
                found.push(format!(
                    "a sample of {func} has tid {:?} and thread_comm {:?}, not the \
                     {thread}'s {tid:?}",
                    s.tid(),
                    s.str("thread_comm")
                ));
            }
        }
        if rate == EVERY_WITH_CFI {
            let chains = vec![
                vec!["produce_item", "producer_main"],
                vec!["consumer_note", "consumer_main"],
            ];
            check_chains(&p, &chains, &mut found);
        }
        problems.extend(
            found
                .into_iter()
                .map(|m| format!("--alloc-sample-bytes {rate}, {items} items: {m}")),
        );
        context.push(format!(
            "--alloc-sample-bytes {rate}, {items} items:\n{}{}",
            comparison(&p, &truth),
            stacks(&p, "inuse_space", 8)
        ));
    }
    assert_no_problems(&problems, &[&context.join("\n")]);
}

/// `rprof-bpf record --type alloc --alloc-sample-bytes RATE -p PID -o OUT` on a workload
/// waiting for SIGUSR1 (`allocs signal`): the signal goes once rprof-bpf says that it is
/// attached (`timing: attach_ms=N` on stderr under `RPROF_TIMINGS=1`), so that all the
/// workload's rounds fall in the window; the recording ends when the workload exits.
fn record_attached_then_signal(w: &Workload, rate: i64, out: &Path) -> RunOutput {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let (pid, rate) = (w.pid.to_string(), rate.to_string());
    let args = [
        "--type",
        "alloc",
        "--alloc-sample-bytes",
        &rate,
        "-p",
        &pid,
        "--seconds",
        "30",
        "-o",
        out.to_str().unwrap(),
    ];
    let command = format!("RPROF_TIMINGS=1 rprof-bpf record {}", args.join(" "));
    let started = std::time::Instant::now();
    let mut child = record_cmd(&args)
        .env("RPROF_TIMINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rprof-bpf");
    let mut stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line.starts_with("timing: attach_ms="));
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // Gives up when rprof-bpf's stderr ends (it failed) or after 30 s.
    let mut attached = false;
    while let Some(left) = Duration::from_secs(30).checked_sub(started.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(true) => {
                attached = true;
                break;
            }
            Ok(false) => {}
            Err(_) => break,
        }
    }
    if attached {
        unsafe {
            libc::kill(w.pid as libc::pid_t, libc::SIGUSR1);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = RunOutput {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        elapsed: started.elapsed(),
        timed_out,
        command,
    };
    assert!(
        attached,
        "rprof-bpf did not say that it was attached\n{}",
        run.describe()
    );
    run
}

/// `-p` into a process in its own mount namespace (`unshare -m`), run from a tmpfs mounted
/// over a directory there: the program and its preloaded jemalloc are at paths that the
/// host does not have (the same directory is empty on the host). The allocator must be
/// found and probed through `/proc/PID/root`, and the profile exact: every function's
/// counts with every allocation recorded by frame pointers (20 rounds), then with CFI (1
/// round), the stacks reaching main, and the allocator frame in the file the process maps.
#[test]
fn attached_in_another_mount_namespace_finds_the_allocator_there() {
    if !require_bpf() {
        return;
    }
    let lib_file = "libjemalloc.so.2";
    let Some(library) = replacement_library(lib_file, "libjemalloc2") else {
        return;
    };
    let dir = TempDir::new("alloc-mntns");
    let (stage, app) = (dir.join("stage"), dir.join("app"));
    for d in [&stage, &app] {
        std::fs::create_dir_all(d).unwrap();
    }
    build_distro("allocs.c", &stage, "allocs");
    std::fs::copy(&library, stage.join(lib_file)).unwrap();
    let script = "mount -t tmpfs rprof-test \"$1\" && cp \"$2/allocs\" \"$2/$3\" \"$1/\" && \
                  LD_PRELOAD=\"$1/$3\" exec \"$1/allocs\" signal \"$4\" \"$5\"";
    let mut problems = Vec::new();
    let mut context = Vec::new();
    for (rate, rounds) in [(EVERY, "20"), (EVERY_WITH_CFI, "1")] {
        let log = dir.join(&format!("counts-{rate}.log"));
        let out = dir.join(&format!("mntns-{rate}.pb.gz"));
        let w = Workload::start(
            Path::new("unshare"),
            &[
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                app.to_str().unwrap(),
                stage.to_str().unwrap(),
                lib_file,
                rounds,
                log.to_str().unwrap(),
            ],
        );
        // The premise: the process maps files under app/ that the host does not see.
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", w.pid)).unwrap();
        let (in_app_bin, in_app_lib) = (app.join("allocs"), app.join(lib_file));
        for f in [&in_app_bin, &in_app_lib] {
            assert!(
                maps.contains(&f.display().to_string()) && !f.exists(),
                "{} should be mapped by the process and missing on the host\n{maps}",
                f.display()
            );
        }
        let run = record_attached_then_signal(&w, rate, &out);
        run.assert_success();
        let workload_pid = w.pid as i64;
        let status = w.wait(Duration::from_secs(15));
        assert!(status.success(), "the workload failed: {status}");
        let truth = Truth::parse(&std::fs::read_to_string(&log).expect("the workload's log"));
        assert!(truth.done, "the workload did not finish");
        let p = decode(&out);
        if rate == EVERY_WITH_CFI {
            assert_cfi_run_small(&p);
        }
        let mut found = Vec::new();
        check_exact(&p, &truth, ALLOCS_FNS, &mut found);
        let lib_seen = in_app_lib.display().to_string();
        check_allocator_file(&p, ALLOCS_FNS, &lib_seen, &mut found);
        check_labels(&p, workload_pid, "allocs", rate, &mut found);
        if rate == EVERY_WITH_CFI {
            let chains: Vec<Vec<&str>> = ALLOCS_FNS.iter().map(|f| allocs_chain(f)).collect();
            check_chains(&p, &chains, &mut found);
        }
        problems.extend(
            found
                .into_iter()
                .map(|m| format!("--alloc-sample-bytes {rate}, {rounds} rounds: {m}")),
        );
        context.push(format!(
            "--alloc-sample-bytes {rate}, {rounds} rounds:\n{}{}\n{}",
            comparison(&p, &truth),
            stacks(&p, "alloc_space", 8),
            run.describe()
        ));
    }
    assert_no_problems(&problems, &[&context.join("\n")]);
}
