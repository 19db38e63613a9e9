//! `rprof-bpf record --type cpu` with the default call graph (`--call-graph dwarf`: the top
//! of each sampled user stack is copied in BPF and unwound in user space with the binaries'
//! call frame information), through the real kernel, on code that a frame-pointer walk
//! cannot follow: a GCC build whose leaf function has no frame, a build without frame
//! pointers at all, a callback called from inside libc's qsort, and an optimised Rust
//! program without frame pointers. A contrast test records the build without frame
//! pointers with `--call-graph fp` and shows that the frame-pointer walk loses the frames
//! the other tests look for, so that they do discriminate.
//!
//! Every test burns CPU and looks at shares of samples, so each holds
//! [`common::exclusive_cpu`].

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Length of each recording, in seconds.
const SECONDS: &str = "3";
/// The fewest samples a share may rest on: 3 s at 99 Hz gives ~300 per busy thread.
const MIN_SAMPLES: i64 = 100;

/// fp_paths with frame pointers, but GCC leaves the small leaf `hot_leaf` frameless.
const FP_FRAMELESS_LEAF: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"];
/// fp_paths with no frame pointers at all.
const NO_FP: &[&str] = &["-O2", "-g", "-fomit-frame-pointer", "-pthread"];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Records a running workload: `rprof-bpf record -p PID --seconds 3 -o OUT EXTRA...`.
fn record_workload(w: &Workload, out: &Path, extra: &[&str]) -> Decoded {
    let pid = w.pid.to_string();
    let mut args = vec![
        "-p",
        &pid,
        "--seconds",
        SECONDS,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = record(&args, Duration::from_secs(60));
    run.assert_success();
    assert!(
        !w.has_exited(),
        "{} exited before the recording ended; the numbers would be meaningless\n{}",
        w.name,
        run.describe()
    );
    let p = decode(out);
    eprintln!("{}: {}", w.name, run.stderr.trim());
    p
}

/// Whether `name` is the function `short`: the same name, or a Rust path ending in
/// `::short` (`rust_chain::leaf`).
fn is_fn(name: &str, short: &str) -> bool {
    name == short
        || name
            .strip_suffix(short)
            .is_some_and(|head| head.ends_with("::"))
}

/// Whether the mapping is the C library.
fn is_libc(mapping: &str) -> bool {
    let file = mapping.rsplit('/').next().unwrap_or(mapping);
    file.starts_with("libc.so") || file.starts_with("libc-")
}

/// The user-space frames really called (inlined frames left out), leaf first.
fn called_frames(s: &StackSample) -> Vec<&Frame> {
    s.user_frames().iter().filter(|f| !f.inlined).collect()
}

/// A frame's name for failure messages: unsymbolized frames get their mapping's file name.
fn show(f: &Frame) -> String {
    if f.symbolized() {
        f.name.clone()
    } else {
        let file = f.mapping.rsplit('/').next().unwrap_or("");
        format!("{}@{file}", f.name)
    }
}

/// The `n` heaviest values of `key` (by the sample type `value`) over the samples matching
/// `within`, one per line, with their share of those samples: for failure messages.
fn histogram(
    p: &Decoded,
    value: &str,
    n: usize,
    within: impl Fn(&StackSample) -> bool,
    key: impl Fn(&StackSample) -> String,
) -> String {
    let i = p.value_index(value);
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for s in p.samples.iter().filter(|s| within(s)) {
        *counts.entry(key(s)).or_insert(0) += s.values[i];
    }
    let total: i64 = counts.values().sum();
    let mut rows: Vec<(String, i64)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out = String::new();
    for (k, v) in rows.iter().take(n) {
        out.push_str(&format!(
            "  {v:5} ({:5.1}%)  {k}\n",
            100.0 * *v as f64 / total.max(1) as f64
        ));
    }
    if rows.len() > n {
        out.push_str(&format!("  ... {} more\n", rows.len() - n));
    }
    out
}

/// The user stack, leaf first, from the frame `from` on (at most `depth` frames), as text.
fn stack_text(s: &StackSample, from: usize, depth: usize) -> String {
    let frames = called_frames(s);
    let shown: Vec<String> = frames
        .iter()
        .skip(from)
        .take(depth)
        .map(|f| show(f))
        .collect();
    let more = frames.len().saturating_sub(from + depth);
    if more > 0 {
        format!("{} <- ... ({more} more)", shown.join(" <- "))
    } else {
        shown.join(" <- ")
    }
}

// ---------------------------------------------------------------------------------------
// fp_paths: worker_main -> path_a (3 units) | path_b (1 unit) -> hot_leaf
// ---------------------------------------------------------------------------------------

/// What the fp_paths checks measure.
#[derive(Debug)]
struct FpPaths {
    /// Samples whose leaf-most user function is hot_leaf.
    hot: i64,
    /// Among those: share with path_a, with path_b, anywhere below hot_leaf.
    a: f64,
    b: f64,
    /// Among those: share whose frame directly below hot_leaf (its caller) is path_a or
    /// path_b.
    direct: f64,
    /// Samples of the worker threads (thread_comm worker-N).
    worker: i64,
    /// Among those: share with start_thread or main on the stack.
    rooted: f64,
}

fn is_hot_leaf_sample(s: &StackSample) -> bool {
    s.user_callers().first() == Some(&"hot_leaf")
}

fn hot_leaf_caller(s: &StackSample) -> Option<&str> {
    s.user_callers().get(1).copied()
}

fn is_worker(s: &StackSample) -> bool {
    s.str("thread_comm")
        .is_some_and(|t| t.starts_with("worker-"))
}

fn is_rooted(s: &StackSample) -> bool {
    s.user_callers()
        .iter()
        .any(|n| base_name(n) == "start_thread" || *n == "main")
}

fn fp_paths_numbers(p: &Decoded) -> FpPaths {
    let direct_caller =
        |s: &StackSample| hot_leaf_caller(s).is_some_and(|c| c == "path_a" || c == "path_b");
    FpPaths {
        hot: p.total_where("samples", is_hot_leaf_sample),
        a: p.share_within("samples", is_hot_leaf_sample, |s| s.contains("path_a")),
        b: p.share_within("samples", is_hot_leaf_sample, |s| s.contains("path_b")),
        direct: p.share_within("samples", is_hot_leaf_sample, direct_caller),
        worker: p.total_where("samples", is_worker),
        rooted: p.share_within("samples", is_worker, is_rooted),
    }
}

/// What a failure message needs: the callers of hot_leaf, the outermost frames of the
/// workers' stacks, and the profile's summary.
fn fp_paths_context(p: &Decoded) -> String {
    format!(
        "callers of hot_leaf (samples):\n{}outermost frame of the workers' stacks:\n{}\
         heaviest worker stacks:\n{}{}",
        histogram(p, "samples", 10, is_hot_leaf_sample, |s| hot_leaf_caller(s)
            .unwrap_or("<none>")
            .to_string()),
        histogram(p, "samples", 10, is_worker, |s| called_frames(s)
            .last()
            .map(|f| show(f))
            .unwrap_or_else(|| "<no user frames>".to_string())),
        histogram(p, "samples", 8, is_worker, |s| stack_text(s, 0, 8)),
        p.report()
    )
}

/// Builds fp_paths with GCC and `flags`, records its 2 workers for 3 s with the default call
/// graph, and checks the whole chain hot_leaf <- path_a|path_b <- worker_main <- start_thread.
fn fp_paths_dwarf(tag: &str, flags: &[&str]) {
    let _cpu = exclusive_cpu();
    let dir = TempDir::new(tag);
    let bin = build_c_exact("gcc", "fp_paths.c", dir.path(), "fp_paths", flags);
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("cpu.pb.gz");
    let p = record_workload(&workload, &out, &[]);
    let n = fp_paths_numbers(&p);
    eprintln!(
        "fp_paths {flags:?}, default call graph: {} hot_leaf samples: path_a {:.1}%, \
         path_b {:.1}%, caller path_a|path_b {:.1}%; {} worker samples, rooted {:.1}%",
        n.hot,
        100.0 * n.a,
        100.0 * n.b,
        100.0 * n.direct,
        n.worker,
        100.0 * n.rooted
    );
    let context = || format!("build {flags:?}: {n:?}\n{}", fp_paths_context(&p));
    assert!(
        n.hot >= MIN_SAMPLES,
        "only {} samples have hot_leaf as their leaf, expected >= {MIN_SAMPLES}\n{}",
        n.hot,
        context()
    );
    assert!(
        (n.a - 0.75).abs() <= 0.10,
        "path_a is below hot_leaf in {:.1}% of the hot_leaf samples, expected 75% +- 10pp\n{}",
        100.0 * n.a,
        context()
    );
    assert!(
        (n.b - 0.25).abs() <= 0.10,
        "path_b is below hot_leaf in {:.1}% of the hot_leaf samples, expected 25% +- 10pp\n{}",
        100.0 * n.b,
        context()
    );
    assert!(
        n.direct >= 0.95,
        "the caller of hot_leaf is path_a or path_b in only {:.1}% of the hot_leaf samples, \
         expected >= 95%\n{}",
        100.0 * n.direct,
        context()
    );
    assert!(
        n.worker >= MIN_SAMPLES,
        "only {} samples of the worker threads\n{}",
        n.worker,
        context()
    );
    assert!(
        n.rooted >= 0.95,
        "only {:.1}% of the workers' samples reach start_thread or main, expected >= 95%\n{}",
        100.0 * n.rooted,
        context()
    );

    let top = go_pprof_top(&out);
    for f in ["hot_leaf", "path_a", "path_b", "worker_main"] {
        assert!(top.contains(f), "go tool pprof -top lacks {f}:\n{top}");
    }
}

/// GCC at -O2 keeps the frame pointers but leaves the leaf hot_leaf frameless, so a
/// frame-pointer walk from it skips its caller; call frame information does not.
#[test]
fn frameless_leaf_keeps_its_caller() {
    if !require_bpf() {
        return;
    }
    fp_paths_dwarf("unwind-frameless-leaf", FP_FRAMELESS_LEAF);
}

/// With no frame pointers anywhere, the whole chain comes from call frame information.
#[test]
fn no_frame_pointers_full_chain() {
    if !require_bpf() {
        return;
    }
    fp_paths_dwarf("unwind-no-fp", NO_FP);
}

/// The contrast: the same build without frame pointers, recorded with the frame-pointer
/// walk, loses the caller of hot_leaf in most samples. This shows that the checks above
/// can fail.
#[test]
fn frame_pointer_walk_loses_callers_without_frame_pointers() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("unwind-fp-contrast");
    let bin = build_c_exact("gcc", "fp_paths.c", dir.path(), "fp_paths", NO_FP);
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("cpu.pb.gz");
    let p = record_workload(&workload, &out, &["--call-graph", "fp"]);
    let n = fp_paths_numbers(&p);
    eprintln!(
        "fp_paths {NO_FP:?}, --call-graph fp: {} hot_leaf samples: path_a {:.1}%, \
         path_b {:.1}%, caller path_a|path_b {:.1}%; {} worker samples, rooted {:.1}%",
        n.hot,
        100.0 * n.a,
        100.0 * n.b,
        100.0 * n.direct,
        n.worker,
        100.0 * n.rooted
    );
    assert!(
        n.hot >= MIN_SAMPLES,
        "only {} samples have hot_leaf as their leaf, expected >= {MIN_SAMPLES}\n{n:?}\n{}",
        n.hot,
        fp_paths_context(&p)
    );
    assert!(
        n.direct < 0.50,
        "with --call-graph fp and no frame pointers, the caller of hot_leaf was still found \
         in {:.1}% of the hot_leaf samples (expected < 50%): the frame-pointer walk does \
         not lose it, so the checks of the default call graph do not show that it unwinds \
         what the frame-pointer walk cannot\n{n:?}\n{}",
        100.0 * n.direct,
        fp_paths_context(&p)
    );
}

// ---------------------------------------------------------------------------------------
// qsort_callback: main -> sort_round -> qsort (libc) -> compare_records
// ---------------------------------------------------------------------------------------

/// Whether the stack below compare_records is libc's sorting code (one frame or more, all
/// in libc, at least one of them named for qsort or msort), then sort_round, then main.
fn qsort_chain_complete(s: &StackSample) -> bool {
    let frames = called_frames(s);
    let Some(i) = frames.iter().position(|f| f.name == "compare_records") else {
        return false;
    };
    let Some(j) = frames[i + 1..]
        .iter()
        .position(|f| f.name == "sort_round")
        .map(|j| j + i + 1)
    else {
        return false;
    };
    let between = &frames[i + 1..j];
    !between.is_empty()
        && between.iter().all(|f| is_libc(&f.mapping))
        && between
            .iter()
            .any(|f| f.name.contains("qsort") || f.name.contains("msort"))
        && frames.get(j + 1).is_some_and(|f| f.name == "main")
}

/// A hot callback called from inside libc (no frame pointers in libc, none in the program):
/// the unwinder must go through libc's frames to sort_round and main.
#[test]
fn qsort_callback_unwinds_through_libc() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("unwind-qsort");
    let bin = build_c_exact(
        "gcc",
        "qsort_callback.c",
        dir.path(),
        "qsort_callback",
        &["-O2", "-g"],
    );
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("cpu.pb.gz");
    let p = record_workload(&workload, &out, &[]);

    let has_compare = |s: &StackSample| s.contains("compare_records");
    let total = p.total("samples");
    let compare = p.total_where("samples", has_compare);
    let complete = p.share_within("samples", has_compare, qsort_chain_complete);
    let from_compare = |s: &StackSample| {
        let frames = called_frames(s);
        let i = frames
            .iter()
            .position(|f| f.name == "compare_records")
            .unwrap_or(0);
        stack_text(s, i, 8)
    };
    let context = || {
        format!(
            "stacks from compare_records down (samples):\n{}\n{}",
            histogram(&p, "samples", 12, has_compare, from_compare),
            p.report()
        )
    };
    eprintln!(
        "qsort_callback: {total} samples, {compare} with compare_records ({:.1}%), complete \
         chain compare_records <- libc <- sort_round <- main in {:.1}% of them",
        100.0 * compare as f64 / total.max(1) as f64,
        100.0 * complete
    );
    assert!(
        compare >= MIN_SAMPLES && compare as f64 >= 0.6 * total as f64,
        "compare_records is in {compare} of {total} samples, expected >= {MIN_SAMPLES} and \
         >= 60%\n{}",
        context()
    );
    assert!(
        complete >= 0.90,
        "only {:.1}% of the compare_records samples have compare_records <- libc qsort/msort \
         frames <- sort_round <- main, expected >= 90%\n{}",
        100.0 * complete,
        context()
    );
    let top = go_pprof_top(&out);
    for f in ["compare_records", "sort_round", "main"] {
        assert!(top.contains(f), "go tool pprof -top lacks {f}:\n{top}");
    }
}

// ---------------------------------------------------------------------------------------
// rust_chain: main -> outer -> middle -> leaf, optimised Rust without frame pointers
// ---------------------------------------------------------------------------------------

/// Whether the stack is leaf <- middle <- outer <- (Rust) main, frame by frame.
fn rust_chain_complete(s: &StackSample) -> bool {
    let c = s.user_callers();
    let Some(i) = c.iter().position(|n| is_fn(n, "leaf")) else {
        return false;
    };
    c.len() > i + 3
        && is_fn(c[i + 1], "middle")
        && is_fn(c[i + 2], "outer")
        && c[i + 3].ends_with("::main")
}

/// An optimised Rust program without frame pointers, launched by `record -- CMD`: the chain
/// main -> outer -> middle -> leaf, and below it the C `main` (through the standard
/// library's start-up code).
#[test]
fn rust_without_frame_pointers_full_chain() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("unwind-rust");
    let bin = build_rust(
        "rust_chain.rs",
        dir.path(),
        "rust_chain",
        &["-C", "opt-level=3", "-C", "force-frame-pointers=no", "-g"],
    );
    let out = dir.join("cpu.pb.gz");
    let run = record(
        &[
            "-o",
            out.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            SECONDS,
        ],
        Duration::from_secs(60),
    );
    run.assert_success();
    eprintln!("rust_chain: {}", run.stderr.trim());
    let p = decode(&out);

    let has_leaf = |s: &StackSample| s.user_callers().iter().any(|n| is_fn(n, "leaf"));
    let total = p.total("samples");
    let leaf = p.total_where("samples", has_leaf);
    let complete = p.share_within("samples", has_leaf, rust_chain_complete);
    let rooted = p.share_within("samples", has_leaf, |s| s.user_callers().contains(&"main"));
    let context = || {
        format!(
            "stacks with leaf (samples):\n{}\n{}",
            histogram(&p, "samples", 12, has_leaf, |s| stack_text(s, 0, 12)),
            p.report()
        )
    };
    eprintln!(
        "rust_chain: {total} samples, {leaf} with leaf; leaf <- middle <- outer <- main in \
         {:.1}% of them, C main below in {:.1}%",
        100.0 * complete,
        100.0 * rooted
    );
    assert!(
        leaf >= MIN_SAMPLES && leaf as f64 >= 0.8 * total as f64,
        "leaf is in {leaf} of {total} samples, expected >= {MIN_SAMPLES} and >= 80%\n{}",
        context()
    );
    assert!(
        complete >= 0.95,
        "only {:.1}% of the samples with leaf have leaf <- middle <- outer <- rust_chain::main, \
         expected >= 95%\n{}",
        100.0 * complete,
        context()
    );
    assert!(
        rooted >= 0.95,
        "only {:.1}% of the samples with leaf reach the C main (below the standard library's \
         start-up code), expected >= 95%\n{}",
        100.0 * rooted,
        context()
    );
    let top = go_pprof_top(&out);
    for f in ["leaf", "middle", "outer"] {
        assert!(
            top.contains(&format!("::{f}")),
            "go tool pprof -top lacks ::{f}:\n{top}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// off-cpu: blocking inside libc, in a program without frame pointers
// ---------------------------------------------------------------------------------------

/// The main thread's share of off-CPU time whose stack reaches `main` (below libc's
/// nanosleep), from an off-cpu recording of blocking.c built without frame pointers.
fn main_thread_reaching_main(call_graph: &str) -> (f64, i64, String) {
    let dir = TempDir::new(&format!("unwind-offcpu-{call_graph}"));
    let bin = build_c_exact("gcc", "blocking.c", dir.path(), "blocking", NO_FP);
    let workload = Workload::start(&bin, &["20"]);
    let out = dir.join("off.pb.gz");
    let p = record_workload(
        &workload,
        &out,
        &["--type", "off-cpu", "--call-graph", call_graph],
    );
    let pid = i64::from(workload.pid);
    let is_main_thread = |s: &StackSample| s.tid() == Some(pid);
    let ns = p.total_where("off_cpu", is_main_thread);
    let share = p.share_within("off_cpu", is_main_thread, |s| {
        s.user_callers().contains(&"main")
    });
    let context = format!(
        "main thread's stacks (off-CPU ns):\n{}{}",
        histogram(&p, "off_cpu", 8, is_main_thread, |s| stack_text(s, 0, 8)),
        p.report()
    );
    (share, ns, context)
}

/// Off-CPU stacks are copied and unwound like CPU samples: the main thread sleeps in
/// libc's nanosleep, and its caller `main` shows below libc. With `--call-graph fp` the
/// frame-pointer walk from libc loses it, which shows the check can fail.
#[test]
fn off_cpu_stacks_reach_main_through_libc() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let (share, ns, context) = main_thread_reaching_main("dwarf");
    eprintln!(
        "blocking {NO_FP:?}, off-cpu: main thread {:.2} s off-CPU, {:.1}% reaching main",
        ns as f64 / 1e9,
        100.0 * share
    );
    assert!(
        ns >= 1_000_000_000,
        "the main thread was off the CPU for only {ns} ns of 3 s\n{context}"
    );
    assert!(
        share >= 0.95,
        "only {:.1}% of the main thread's off-CPU time reaches main through libc, expected \
         >= 95%\n{context}",
        100.0 * share
    );
    let (fp_share, _, fp_context) = main_thread_reaching_main("fp");
    eprintln!(
        "blocking {NO_FP:?}, off-cpu --call-graph fp: {:.1}% reaching main",
        100.0 * fp_share
    );
    assert!(
        fp_share < 0.5,
        "the frame-pointer walk reached main in {:.1}% of the time: the check above would \
         not tell the unwinders apart\n{fp_context}",
        100.0 * fp_share
    );
}

// ---------------------------------------------------------------------------------------
// alloc: allocations made by a program without frame pointers
// ---------------------------------------------------------------------------------------

/// The share of sampled alloc_space whose stack reaches `main`, from an alloc recording of
/// allocs.c built without frame pointers and launched under rprof-bpf.
fn alloc_space_reaching_main(call_graph: &str) -> (f64, i64, String) {
    let dir = TempDir::new(&format!("unwind-alloc-{call_graph}"));
    let bin = build_c_exact("gcc", "allocs.c", dir.path(), "allocs", NO_FP);
    let out = dir.join("alloc.pb.gz");
    let run = record(
        &[
            "--type",
            "alloc",
            "--alloc-sample-bytes",
            "4096",
            "--call-graph",
            call_graph,
            "-o",
            out.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "run",
            "400",
        ],
        Duration::from_secs(60),
    );
    run.assert_success();
    let p = decode(&out);
    let any = |_: &StackSample| true;
    let bytes = p.total_where("alloc_space", any);
    let share = p.share_within("alloc_space", any, |s| s.user_callers().contains(&"main"));
    let context = format!(
        "heaviest stacks (alloc_space):\n{}{}",
        histogram(&p, "alloc_space", 8, any, |s| stack_text(s, 0, 8)),
        p.report()
    );
    (share, bytes, context)
}

/// A kept allocation's stack is copied at the allocator's entry and unwound with CFI, so
/// every allocation of a program without frame pointers reaches main; the frame-pointer
/// walk stops at the allocator's caller.
#[test]
fn alloc_stacks_reach_main_without_frame_pointers() {
    if !require_bpf() {
        return;
    }
    let (share, bytes, context) = alloc_space_reaching_main("dwarf");
    eprintln!(
        "allocs {NO_FP:?}, alloc: {bytes} bytes sampled, {:.1}% reaching main",
        100.0 * share
    );
    assert!(bytes > 0, "no allocations in the profile\n{context}");
    assert!(
        share >= 0.95,
        "only {:.1}% of alloc_space reaches main, expected >= 95%\n{context}",
        100.0 * share
    );
    let (fp_share, _, fp_context) = alloc_space_reaching_main("fp");
    eprintln!(
        "allocs {NO_FP:?}, alloc --call-graph fp: {:.1}% reaching main",
        100.0 * fp_share
    );
    assert!(
        fp_share < 0.5,
        "the frame-pointer walk reached main for {:.1}% of alloc_space: the check above would \
         not tell the unwinders apart\n{fp_context}",
        100.0 * fp_share
    );
}

// ---------------------------------------------------------------------------------------
// the size of the stack copy: --call-graph dwarf,SIZE
// ---------------------------------------------------------------------------------------

/// The share of deep_stack's samples that reach `main`, recorded with `call_graph`.
fn deep_stack_reaching_main(call_graph: &str) -> (f64, i64, String) {
    let dir = TempDir::new("unwind-deep");
    let bin = build_c_exact("gcc", "deep_stack.c", dir.path(), "deep_stack", NO_FP);
    let workload = Workload::start(&bin, &["20", "100"]);
    let out = dir.join("cpu.pb.gz");
    let p = record_workload(&workload, &out, &["--call-graph", call_graph]);
    let spinning = |s: &StackSample| s.contains("spin");
    let samples = p.total_where("samples", spinning);
    let share = p.share_within("samples", spinning, |s| s.user_callers().contains(&"main"));
    let context = format!(
        "outermost frames (samples):\n{}{}",
        histogram(&p, "samples", 6, spinning, |s| called_frames(s)
            .last()
            .map(|f| show(f))
            .unwrap_or_default()),
        p.report()
    );
    (share, samples, context)
}

/// A stack of ~27 KiB is complete with a 64 KiB copy and cut off with the default 16 KiB.
#[test]
fn stack_copy_size_reaches_deep_stacks() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let (share, samples, context) = deep_stack_reaching_main("dwarf,64K");
    eprintln!(
        "deep_stack, --call-graph dwarf,64K: {samples} samples, {:.1}% reaching main",
        100.0 * share
    );
    assert!(samples >= MIN_SAMPLES, "only {samples} samples\n{context}");
    assert!(
        share >= 0.95,
        "only {:.1}% of the samples reach main with a 64 KiB copy\n{context}",
        100.0 * share
    );
    let (short, _, short_context) = deep_stack_reaching_main("dwarf");
    eprintln!(
        "deep_stack, --call-graph dwarf (16 KiB): {:.1}% reaching main",
        100.0 * short
    );
    assert!(
        short < 0.5,
        "{:.1}% of the samples reach main with a 16 KiB copy of a ~27 KiB stack: the \
         workload is not as deep as it should be\n{short_context}",
        100.0 * short
    );
}

// ---------------------------------------------------------------------------------------
// a process that replaces its image
// ---------------------------------------------------------------------------------------

/// A child the launched command forks and that then runs another program (here bash
/// running fp_paths) is unwound and symbolized with the new program's files: its maps are
/// read again after the exec, once the loader has mapped its libraries.
#[test]
fn exec_in_a_forked_child_is_unwound_and_symbolized() {
    if !require_bpf() {
        return;
    }
    let _cpu = exclusive_cpu();
    let dir = TempDir::new("unwind-exec");
    let bin = build_c_exact("gcc", "fp_paths.c", dir.path(), "fp_paths", NO_FP);
    let out = dir.join("cpu.pb.gz");
    // The redirection keeps bash from exec'ing fp_paths in its own process: it forks.
    let script = format!("{} 2 > /dev/null; true", bin.display());
    let run = record(
        &["-o", out.to_str().unwrap(), "--", "bash", "-c", &script],
        Duration::from_secs(60),
    );
    run.assert_success();
    let p = decode(&out);
    let n = fp_paths_numbers(&p);
    eprintln!("fp_paths under bash: {n:?}");
    let context = || format!("{n:?}\n{}", fp_paths_context(&p));
    assert!(
        n.hot >= MIN_SAMPLES,
        "only {} samples have hot_leaf as their leaf: the exec'd child is not symbolized\n{}",
        n.hot,
        context()
    );
    assert!(
        n.direct >= 0.95 && n.rooted >= 0.95,
        "caller of hot_leaf {:.1}%, rooted {:.1}%: expected >= 95% each\n{}",
        100.0 * n.direct,
        100.0 * n.rooted,
        context()
    );
}
