#!/usr/bin/env bash
# The quickest way to see rprof-bpf work: installs what is needed, builds it, records the bundled
# demo workload (scripts/demo/demo.c) for a few seconds, and prints its top functions.
#
#   sudo scripts/demo.sh [SECONDS]      (default 5)
#
# The demo's known call chains: main -> parse_requests -> hash_key takes about 70% of its CPU,
# main -> render_page -> format_row about 30%.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds="${1:-5}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "usage: $0 [SECONDS], SECONDS a whole number > 0"

need_root
scripts/setup.sh
find_cargo

echo "==> cargo build --release" >&2
cargo build --release

echo "==> building the demo workload" >&2
mkdir -p target/demo
# clang, not gcc: GCC 12 ignores -mno-omit-leaf-frame-pointer (see demo.c).
clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wall \
    -o target/demo/demo scripts/demo/demo.c

profile=target/demo/demo.pb.gz
echo "==> target/release/rprof-bpf record -F 99 -o $profile -- target/demo/demo $seconds" >&2
target/release/rprof-bpf record -F 99 -o "$profile" -- target/demo/demo "$seconds"

# The profile's comments (command line, counters) come first; print from "Duration:" on. The
# output is captured first, so that awk closing the pipe early cannot fail the script (pipefail).
table() { awk -v rows="$1" '/^Duration:/ { on = 1 } on && n++ < rows + 3'; }

echo
echo "==> go tool pprof -top -nodefraction=0 $profile"
echo "    (expected: hash_key about 70%, format_row about 30%)"
top="$(go tool pprof -top -nodefraction=0 "$profile")"
table 10 <<<"$top"

echo
echo "==> go tool pprof -top -cum -nodefraction=0 $profile"
echo "    (expected: main 100%; parse_requests and hash_key about 70%; render_page and format_row about 30%)"
top="$(go tool pprof -top -cum -nodefraction=0 "$profile")"
table 8 <<<"$top"

echo
echo "Open the flame graph (View > Flame Graph) with:"
echo "    go tool pprof -http=: $PWD/$profile"
echo "On a machine without a browser: go tool pprof -no_browser -http=0.0.0.0:8080 $PWD/$profile"
