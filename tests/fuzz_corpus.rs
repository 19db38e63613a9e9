//! Replays the fuzz corpus (tests/fuzz/corpus/report_decoder) through the code path the
//! `report_decoder` fuzz target runs (tests/fuzz/exercise.rs), so that every test run, on
//! a stable toolchain, checks that none of those inputs panics. Needs no privileges.

#[path = "fuzz/exercise.rs"]
mod exercise;

use std::path::{Path, PathBuf};

use exercise::{exercise, Outcome};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/report_decoder")
}

#[test]
fn corpus_inputs_never_panic() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus in {} is empty",
        dir.display()
    );
    let mut counts = [0usize; 3];
    for path in &files {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| exercise(&data))
            .unwrap_or_else(|_| panic!("{} makes the report code panic", path.display()));
        counts[outcome as usize] += 1;
    }
    eprintln!(
        "{} corpus inputs: {} not profiles, {} invalid, {} rendered",
        files.len(),
        counts[Outcome::NotDecoded as usize],
        counts[Outcome::Invalid as usize],
        counts[Outcome::Rendered as usize]
    );
    // The corpus keeps real profiles (the seeds) and inputs of each kind.
    assert!(
        counts.iter().all(|&n| n > 0),
        "expected inputs of every outcome in the corpus, got {counts:?}"
    );
}
