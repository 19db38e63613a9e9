//! What `rprof-bpf report` does with a file's bytes, and everything it can make of them:
//! decode (gzipped or not), check pprof's rules, then every output format for every value
//! column. Shared by the fuzz target (`fuzz_targets/report_decoder.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so both run exactly this.
//!
//! Bad input must come back as an error; any panic here is a bug.

use rprof_bpf::output::folded::folded_lines;
use rprof_bpf::output::{render, top_table, Format, RenderOptions};
use rprof_bpf::pprof::{decode_profile, ProfileView};

/// How far `exercise` got with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a profile (bad gzip, bad protobuf, too large).
    NotDecoded,
    /// A profile that breaks pprof's rules.
    Invalid,
    /// A valid profile, rendered in every format for every sample type.
    Rendered,
}

/// Runs the report code path on `data`.
pub fn exercise(data: &[u8]) -> Outcome {
    let Ok(profile) = decode_profile(data) else {
        return Outcome::NotDecoded;
    };
    let Ok(view) = ProfileView::new(&profile) else {
        return Outcome::Invalid;
    };
    let types = profile.sample_type.len();
    let names: Vec<String> = (0..types).map(|i| view.type_name(i).to_owned()).collect();
    for i in 0..types {
        let _ = view.unit(i);
        let _ = folded_lines(&view.stacks(i));
    }
    // The profile's default column (or its error, when default_sample_type names no
    // column), then each column by name, with and without thread roots.
    let mut choices: Vec<Option<String>> = vec![None];
    choices.extend(names.into_iter().map(Some));
    for (n, sample_index) in choices.into_iter().enumerate() {
        let opts = RenderOptions {
            sample_index,
            thread_roots: n % 2 == 1,
            title: None,
        };
        let _ = top_table(&profile, &opts, 20);
        let _ = top_table(&profile, &opts, 0);
        for format in [Format::Folded, Format::Svg] {
            let mut out = Vec::new();
            let _ = render(&profile, format, &opts, &mut out);
        }
    }
    // Re-encoding a valid profile gives one that decodes to the same thing.
    let mut out = Vec::new();
    render(&profile, Format::Pprof, &RenderOptions::default(), &mut out)
        .expect("a valid profile re-encodes");
    let again = decode_profile(&out).expect("a re-encoded profile decodes");
    assert!(again == profile, "re-encoding changed the profile");
    Outcome::Rendered
}
