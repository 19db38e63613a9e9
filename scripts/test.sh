#!/usr/bin/env bash
# Installs what is needed, then runs every check and test of rprof-bpf:
#   cargo fmt --check, cargo clippy --all-targets -D warnings, cargo test (unit and integration).
# The integration tests load BPF programs, so this runs as root. Under CI=true they fail, never
# skip, when BPF is unavailable. Extra arguments go to `cargo test`, e.g.
#   sudo scripts/test.sh --test record -- --nocapture
# Any failure makes the script exit non-zero.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
scripts/setup.sh
find_cargo

step() { echo "==> $*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# build.rs compiles every bpf/*.bpf.c for both x86 (-D__TARGET_ARCH_x86) and arm64
# (-D__TARGET_ARCH_arm64) on every build, so the builds above and below already are the arm64
# compile check: a portability slip in the BPF code fails them. The check after the tests only
# confirms that the arm64 objects were really produced.
step "cargo test $*"
cargo test "$@"

step "arm64 BPF objects"
found=0
for src in bpf/*.bpf.c; do
    stem="$(basename "$src" .bpf.c)"
    # Only objects at least as new as their source count: target/ may hold stale build dirs.
    obj="$(find target -name "$stem.arm64.bpf.o" -newer "$src" -print -quit 2>/dev/null || true)"
    [[ -n "$obj" ]] || die "no arm64 BPF object for $src under target/ (build.rs should have built it)"
    # e_machine of a BPF object is EM_BPF (247); readelf calls it "Linux BPF".
    readelf -h "$obj" | grep -q 'Linux BPF' || die "$obj is not a BPF object"
    echo "arm64 BPF object built: $obj" >&2
    found=$((found + 1))
done
((found > 0)) || die "no bpf/*.bpf.c sources found"

step "all checks and tests passed"
