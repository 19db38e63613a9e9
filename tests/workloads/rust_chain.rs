//! rust_chain: a known call chain in an optimised Rust program without frame pointers, for
//! the unwinding tests.
//!
//!   main -> outer -> middle -> leaf
//!
//! leaf burns the CPU; the others only call down. Each call's result goes through
//! black_box before it is used, so that no call is in tail position and every frame stays
//! on the stack.
//!
//! Build: rustc -C opt-level=3 -C force-frame-pointers=no -g -o rust_chain rust_chain.rs
//! Usage: rust_chain SECONDS
//!   Prints "ready <pid>", then runs for SECONDS and exits 0.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

const ITERS: u64 = 200_000;

#[inline(never)]
fn leaf(seed: u64) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..ITERS {
        x = black_box(
            x.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
    x
}

#[inline(never)]
fn middle(seed: u64) -> u64 {
    let r = leaf(black_box(seed ^ 0x5555));
    black_box(r).wrapping_add(1)
}

#[inline(never)]
fn outer(seed: u64) -> u64 {
    let r = middle(black_box(seed.rotate_left(7)));
    black_box(r).wrapping_mul(3)
}

#[inline(never)]
fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {}", std::process::id()).unwrap();
        out.flush().unwrap();
    }
    let mut acc = 0u64;
    while Instant::now() < deadline {
        acc = acc.wrapping_add(outer(black_box(acc)));
    }
    black_box(acc);
}
