//! Fuzzes what `rprof-bpf report` does with a file: arbitrary bytes go through the pprof
//! decoder, the rule checks and every output; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    let _ = exercise::exercise(data);
});
