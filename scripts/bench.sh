#!/usr/bin/env bash
# The performance benchmark of rprof-bpf (a benchmark, not a test). It has five sections, and writes
# their results, with the targets and whether each was met (the stacks section has none), to
# BENCHMARKS.md:
#
#   cpu     (scripts/bench/cpu.sh) Against one busy 2-thread process (scripts/bench/busy.c), it
#           records 5 s at 99 Hz with `rprof-bpf record -p PID` and, as the peer, with
#           `perf record -g -F 99 -p PID -- sleep 5` followed by `perf script`, 3 times each,
#           alternating. Targets:
#             - rprof-bpf's CPU time (user + sys, symbolization and writing included) <= 0.5 x perf's
#             - samples >= 95% of 99 Hz x 5 s x 2 threads
#             - start to sampling <= 300 ms, stop to file written <= 300 ms
#             - peak RSS <= 64 MB
#   offcpu  (scripts/bench/offcpu.sh) Two ping-pong pairs (scripts/bench/pingpong.c), each a process
#           of two threads bouncing a byte over pipes, each pinned to its own CPU, at the issue's
#           workload of about 100k context switches per second per pair: each thread busy-works
#           WORK_NS ns per message, calibrated at the start of the section. It measures how much
#           `rprof-bpf record --type off-cpu -p A --seconds 5` slows the targeted pair A and the
#           untargeted pair B, against a baseline taken right before, and the same for
#           `perf record -e sched:sched_switch -g -p A -- sleep 5`, 3 times each, alternating; also
#           rprof-bpf with RPROF_EAGER_STACKS=1 (user stacks read at every switch, as on kernels
#           without bpf_task_work), with --block-rate 0s (every block recorded) and, as the floor,
#           an empty BPF program on the same hook (scripts/bench/floor.bpf.c, loaded by
#           scripts/bench/floor.c). Targets: pair A's slowdown <= 5% and <= perf's; pair B's
#           slowdown about 0 (<= 1%). Then a stress test, harsher than the issue's workload and
#           without targets: rprof-bpf and perf the same way with no work, at the maximum rate
#           (about 4 times as many switches). perf needs tracefs for that event: the section mounts
#           /sys/kernel/tracing when it is not mounted, and unmounts it again at the end.
#   uprobes (scripts/bench/uprobes.sh) How much `rprof-bpf record --type alloc` slows a malloc-heavy
#           program (scripts/bench/allocs.c, at several calls per second) and `--type mutex` a
#           lock-contention program (scripts/bench/contend.c), against a baseline taken right before,
#           and the same for bpftrace on the same functions (uprobes on libc's malloc and free;
#           futex syscall tracepoints), 3 times each, alternating. Target: rprof-bpf's slowdown
#           <= 1.2 x bpftrace's. It mounts /sys/kernel/tracing for bpftrace like offcpu does for perf.
#   unwind  (scripts/bench/unwind.sh) Issue 5: user stacks without frame pointers. Against a 2-thread
#           process built with gcc -O2 -fomit-frame-pointer whose hot code is libc's qsort calling
#           back a comparator at the bottom of a recursion (scripts/bench/unwind_work.c), shallow
#           (about 2 KiB of stack) and deep (about 12 KiB), at 99 and 999 Hz: rprof-bpf record
#           (--call-graph dwarf, its default) and, as the peer, `perf record --call-graph dwarf`
#           followed by `perf report`, 3 times each, alternating, each after a baseline with no
#           profiler. It measures CPU time, peak RSS, the target's slowdown and the share of
#           complete stacks (reaching main or start_thread). The same for clang-14 compiling a
#           generated file, whose libLLVM is about 110 MB, with the unwind tables' numbers: how long
#           that file's table takes to build, and that --max-unwind-memory bounds their memory.
#           Targets: complete stacks >= perf's; rprof-bpf's CPU time <= 0.5 x perf's record +
#           report; unwind-table memory within the limit; the 100 MB file's build time reported.
#   stacks  (scripts/bench/stacks.sh) The rooted share of real programs' stacks: of samples (cpu),
#           blocked time (off-cpu) or creations (threadcreate), the share whose user stack reaches
#           the program's or thread's entry, for rprof-bpf and `perf record --call-graph dwarf`
#           recording the same run at the same time, at 99 Hz, 3 times: CPU in and blocking under
#           signal handlers (tests/workloads/signal_work.c), threads and processes made through
#           libc (creators.c), PostgreSQL 15 under pgbench (cpu and off-cpu), Node 20, Java 17 and
#           CPython 3.12 JIT code named by perf maps (with the share of samples naming the hot
#           function) and a Go program's frameless leaf, normal and stripped (with main.viaA's share
#           beside that of Go's own runtime/pprof profile). Shares only, no targets; the counting is
#           scripts/bench/stacks_share.py.
#
#   sudo scripts/bench.sh [all|cpu|offcpu|uprobes|unwind|stacks]      (default: all)
#
# `all` rewrites BENCHMARKS.md from scratch. A single section replaces only its own part of it and
# keeps the other section's last results as they were.
#
# Before each section it waits up to BENCH_QUIET_WAIT seconds (default 120) for the CPUs to be
# less than 10% busy, since other work on this small machine skews every number; it then goes on
# anyway and records how busy the machine was. BENCH_RUNS (default 3) sets the number of runs of
# each tool, for a quick check of the script itself. BENCH_NO_BUILD=1 skips `cargo build --release`
# and benchmarks target/release/rprof-bpf as it is (the sections say when it was built); the commands
# in BENCHMARKS.md show the BENCH_* variables that were set.
#
# It exits 0 when the measurements were taken, whether or not every target was met; the tables
# say which were. It exits non-zero when something could not be measured at all.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECTIONS=(cpu offcpu uprobes unwind stacks)
RUNS="${BENCH_RUNS:-3}"
QUIET_PERCENT=10
QUIET_WAIT="${BENCH_QUIET_WAIT:-120}"

usage() { die "usage: $0 [all|cpu|offcpu|uprobes|unwind|stacks]"; }
(($# <= 1)) || usage
case "${1:-all}" in
all) selected=("${SECTIONS[@]}") ;;
cpu | offcpu | uprobes | unwind | stacks) selected=("$1") ;;
*) usage ;;
esac
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "BENCH_QUIET_WAIT must be a whole number of seconds"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a whole number above 0"

need_root
scripts/setup.sh
find_cargo

rprof=target/release/rprof-bpf
if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
    [[ -x "$rprof" ]] || die "BENCH_NO_BUILD=1, but there is no $rprof to benchmark"
    echo "==> BENCH_NO_BUILD=1: benchmarking $rprof as it is, built $(date -u -r "$rprof" '+%Y-%m-%d %H:%M UTC')" >&2
else
    echo "==> cargo build --release" >&2
    cargo build --release
fi

work=target/bench
mkdir -p "$work"

# --- cleanup: whatever a section started is stopped, whatever it mounted is unmounted ------------

bench_pids=()      # background processes to kill on exit
bench_on_exit=()   # commands a section runs on exit (e.g. to stop a server it started)
mounted_tracefs="" # set when a section mounted /sys/kernel/tracing
cleanup() {
    local pid cmd
    for pid in "${bench_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true # a stopped process only dies once continued
        wait "$pid" 2>/dev/null || true
    done
    for cmd in "${bench_on_exit[@]}"; do
        "$cmd" || true
    done
    if [[ -n "$mounted_tracefs" ]]; then
        umount "$mounted_tracefs" 2>/dev/null ||
            echo "bench.sh: warning: could not unmount $mounted_tracefs, which it mounted" >&2
    fi
}
trap cleanup EXIT

# stop_pid PID: kill a process started by a section, and forget it.
stop_pid() {
    local pid="$1" p kept=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${bench_pids[@]}"; do
        [[ "$p" == "$pid" ]] || kept+=("$p")
    done
    bench_pids=("${kept[@]}")
}

# --- helpers shared by the sections ---------------------------------------------------------------

# busy_percent SECONDS: how busy all CPUs were over SECONDS, from /proc/stat, in percent.
busy_percent() {
    local a b
    a="$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
    sleep "$1"
    b="$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        total = y[1] - x[1]; idle = y[2] - x[2]
        if (total > 0) printf "%.0f", 100 * (total - idle) / total; else print 0 }'
}

# wait_for_quiet: sets machine_busy to how busy the CPUs are (over 2 s), after waiting up to
# QUIET_WAIT seconds for that to drop below QUIET_PERCENT. Other work takes CPU time from the
# workloads and skews every number, so the sections say how much there was.
wait_for_quiet() {
    local waited=0
    machine_busy="$(busy_percent 2)"
    while ((machine_busy >= QUIET_PERCENT && waited < QUIET_WAIT)); do
        echo "==> the CPUs are ${machine_busy}% busy with other work; waiting for them to quiet down" \
            "(${waited}s of at most ${QUIET_WAIT}s)" >&2
        sleep 8
        waited=$((waited + 10))
        machine_busy="$(busy_percent 2)"
    done
    echo "==> before the workload starts, the CPUs are ${machine_busy}% busy" >&2
    ((machine_busy < QUIET_PERCENT)) ||
        echo "    warning: other processes are using the CPUs; the results will suffer" >&2
}

# median V1 V2 ...: the middle value (mean of the two middle ones for an even count); "" for none.
median() {
    (($# > 0)) || { echo ""; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# field N FILE: the Nth whitespace-separated field of the last line of a GNU time -o file
# (time puts "Command exited with non-zero status" lines before it when that happens).
field() { tail -n 1 "$2" | awk -v n="$1" '{ print $n }'; }

# mb KB: kilobytes as megabytes, one decimal.
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# add A B: A + B with decimals.
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a + b }'; }

# verdict CONDITION: PASS when the awk expression CONDITION holds, FAIL otherwise.
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

# samples_from_summary FILE: the sample count from rprof-bpf's stderr summary, "" if none. Accepts
# "990 samples", "samples: 990" and "samples=990" (thousands separators allowed).
samples_from_summary() {
    grep -iv '^timing:' "$1" | grep -ioE '[0-9][0-9,]*[[:space:]]+samples\b|\bsamples[[:space:]]*[:=][[:space:]]*[0-9][0-9,]*' |
        head -n 1 | grep -oE '[0-9][0-9,]*' | tr -d , || true
}

# first_column_sum FILE: the sum of the first sample type's values over every sample of a pprof
# file, decoded by `go tool pprof -raw`; "" if pprof cannot read it.
first_column_sum() {
    local raw
    raw="$(go tool pprof -raw "$1" 2>/dev/null)" || { echo ""; return; }
    awk '
        /^Samples:/ { in_samples = 1; next }
        /^Locations/ { in_samples = 0 }
        in_samples && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+:$/ { sum += $1; n++ }
        END { if (n) print sum; else print 0 }' <<<"$raw"
}

# timing KEY FILE: N from a "timing: KEY=N" line, "" if absent.
timing() {
    grep -oE "timing:.*\b$1=[0-9]+(\.[0-9]+)?" "$2" | head -n 1 | sed -E "s/.*$1=//" || true
}

CLK_TCK="$(getconf CLK_TCK)"

# The lines every section puts at its top: when, by what, on which build.
bench_env="" # the BENCH_* variables that were set, as they go before the command
for var in BENCH_RUNS BENCH_QUIET_WAIT BENCH_NO_BUILD; do
    [[ -z "${!var:-}" ]] || bench_env+="$var=${!var} "
done
if [[ -n "${SUDO_USER:-}" ]]; then command_line="sudo ${bench_env}scripts/bench.sh"; else command_line="${bench_env}scripts/bench.sh"; fi
commit="$(git rev-parse --short HEAD 2>/dev/null || echo "no commit yet")"
if [[ -n "$(git status --porcelain -- src bpf build.rs Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    commit="$commit, with uncommitted changes"
fi
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
machine="Linux $(uname -r) ($(uname -m)), $(nproc) CPUs ($cpu_model)"
build_note="release build"
if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
    build_note="release build, not rebuilt by the script (BENCH_NO_BUILD=1): $rprof of $(date -u -r "$rprof" '+%Y-%m-%d %H:%M UTC')"
    if [[ -n "$(find src bpf build.rs Cargo.toml Cargo.lock -newer "$rprof" -print -quit 2>/dev/null)" ]]; then
        build_note+=", older than some of the sources it is built from"
    fi
fi
# section_header SECTION: the common bullet points of a section.
section_header() {
    local how="$command_line"
    [[ "${#selected[@]}" -gt 1 ]] || how="$command_line $1"
    cat <<EOF
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Command: \`$how\`$([[ -n "${SUDO_USER:-}" ]] || echo " (run as root, so without sudo)")
- rprof-bpf: $commit, $build_note
- Machine: $machine
EOF
}

# --- the sections ---------------------------------------------------------------------------------

# shellcheck source=scripts/bench/cpu.sh
source scripts/bench/cpu.sh
# shellcheck source=scripts/bench/offcpu.sh
source scripts/bench/offcpu.sh
# shellcheck source=scripts/bench/uprobes.sh
source scripts/bench/uprobes.sh
# shellcheck source=scripts/bench/unwind.sh
source scripts/bench/unwind.sh
# shellcheck source=scripts/bench/stacks.sh
source scripts/bench/stacks.sh

for section in "${selected[@]}"; do
    echo "==> section: $section" >&2
    "bench_$section" "$work/$section.md"
done

# --- BENCHMARKS.md ----------------------------------------------------------------------------------

# Each section sits between two markers, so that a run of one section can replace it alone.
begin_marker() { echo "<!-- bench.sh section $1: begin -->"; }
end_marker() { echo "<!-- bench.sh section $1: end -->"; }

old=""
[[ -f BENCHMARKS.md ]] && old="$(cat BENCHMARKS.md)"
{
    cat <<EOF
# Benchmarks

Written by \`scripts/bench.sh\`; do not edit by hand. Re-run it with \`sudo scripts/bench.sh\`, or
one section with \`sudo scripts/bench.sh cpu\`, \`sudo scripts/bench.sh offcpu\`, \`sudo scripts/bench.sh uprobes\`,
\`sudo scripts/bench.sh unwind\` or \`sudo scripts/bench.sh stacks\`.

- Machine of the last run: $machine
- Sections: [CPU recording cost](#cpu-recording-cost),
  [Off-CPU recording overhead (issue 3)](#off-cpu-recording-overhead-issue-3),
  [Uprobe and lock recording overhead (issue 4)](#uprobe-and-lock-recording-overhead-issue-4),
  [Unwinding without frame pointers (issue 5)](#unwinding-without-frame-pointers-issue-5) and
  [Rooted stacks of real programs](#rooted-stacks-of-real-programs)
EOF
    for section in "${SECTIONS[@]}"; do
        echo
        if [[ -f "$work/$section.md" && " ${selected[*]} " == *" $section "* ]]; then
            begin_marker "$section"
            cat "$work/$section.md"
            end_marker "$section"
        elif grep -qF "$(begin_marker "$section")" <<<"$old"; then
            # Not run this time: keep the last results, markers included.
            awk -v b="$(begin_marker "$section")" -v e="$(end_marker "$section")" '
                $0 == b { keep = 1 } keep { print } $0 == e { keep = 0 }' <<<"$old"
        else
            begin_marker "$section"
            echo "## Section $section"
            echo
            echo "Not run yet: \`sudo scripts/bench.sh $section\`."
            end_marker "$section"
        fi
    done
} >"$work/BENCHMARKS.md"
mv "$work/BENCHMARKS.md" BENCHMARKS.md

echo >&2
for section in "${selected[@]}"; do
    # The results tables, for the terminal.
    sed -n '/^### Results/,/^### How/p' "$work/$section.md" | sed '$d' >&2
done
echo "==> wrote BENCHMARKS.md" >&2
