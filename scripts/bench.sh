#!/usr/bin/env bash
# The performance benchmark of rprof-bpf (a benchmark, not a test). In one run, against one busy
# 2-thread process (scripts/bench/busy.c), it records 5 s at 99 Hz with `rprof-bpf record -p PID`
# and, as the peer, with `perf record -g -F 99 -p PID -- sleep 5` followed by `perf script`. Each
# is measured 3 times, alternating, and the medians go into BENCHMARKS.md with the targets:
#   - rprof-bpf's CPU time (user + sys, symbolization and writing included) <= 0.5 x perf's
#   - samples >= 95% of 99 Hz x 5 s x 2 threads
#   - start to sampling <= 300 ms, stop to file written <= 300 ms
#   - peak RSS <= 64 MB
#
#   sudo scripts/bench.sh
#
# It exits 0 when the measurements were taken, whether or not every target was met; the table
# says which were. It exits non-zero when something could not be measured at all.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_PER_RUN=5
HZ=99
THREADS=2
RUNS=3
EXPECTED=$((HZ * SECONDS_PER_RUN * THREADS))
MIN_SAMPLES=$(((EXPECTED * 95 + 99) / 100)) # 95%, rounded up
MAX_LATENCY_MS=300
MAX_RSS_KB=$((64 * 1024))

need_root
scripts/setup.sh
find_cargo

echo "==> cargo build --release" >&2
cargo build --release
rprof=target/release/rprof-bpf

work=target/bench
rm -rf "$work"
mkdir -p "$work"
echo "==> building the busy workload" >&2
clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wall -pthread \
    -o "$work/busy" scripts/bench/busy.c

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

# Other work on the machine takes CPU from the workload and skews every number: say how much.
machine_busy="$(busy_percent 2)"
echo "==> before the workload starts, the CPUs are ${machine_busy}% busy" >&2
((machine_busy < 10)) || echo "    warning: other processes are using the CPUs; the results will suffer" >&2

busy_pid=
cleanup() {
    if [[ -n "$busy_pid" ]]; then
        kill "$busy_pid" 2>/dev/null || true
        wait "$busy_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

"$work/busy" &
busy_pid=$!
# Wait until both busy threads exist (main thread + 2).
for _ in $(seq 100); do
    [[ "$(ls "/proc/$busy_pid/task" 2>/dev/null | wc -l)" -ge $((THREADS + 1)) ]] && break
    sleep 0.05
done
[[ "$(ls "/proc/$busy_pid/task" 2>/dev/null | wc -l)" -ge $((THREADS + 1)) ]] ||
    die "the busy workload did not start its $THREADS threads"
echo "==> busy workload: pid $busy_pid, $THREADS threads" >&2

# --- helpers ------------------------------------------------------------------------------------

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

# samples_from_summary FILE: the sample count from rprof-bpf's stderr summary, "" if none. Accepts
# "990 samples", "samples: 990" and "samples=990" (thousands separators allowed).
samples_from_summary() {
    grep -iv '^timing:' "$1" | grep -ioE '[0-9][0-9,]*[[:space:]]+samples\b|\bsamples[[:space:]]*[:=][[:space:]]*[0-9][0-9,]*' |
        head -n 1 | grep -oE '[0-9][0-9,]*' | tr -d , || true
}

# samples_in_profile FILE: the sum of samples/count over every sample in a pprof file, decoded by
# `go tool pprof -raw`; "" if pprof cannot read it.
samples_in_profile() {
    local raw
    raw="$(go tool pprof -raw "$1" 2>/dev/null)" || { echo ""; return; }
    awk '
        /^Samples:/ { in_samples = 1; next }
        /^Locations/ { in_samples = 0 }
        # The first column is the first sample type; rprof-bpf puts samples/count first.
        in_samples && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+:$/ { sum += $1; n++ }
        END { if (n) print sum; else print 0 }' <<<"$raw"
}

# busy_ticks: CPU time (user + sys, in clock ticks) the busy workload has used so far.
busy_ticks() { awk '{ print $14 + $15 }' "/proc/$busy_pid/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# cpus_used TICKS SECONDS: how many CPUs' worth the workload got over SECONDS of wall time.
cpus_used() { awk -v t="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", t / hz / s; else print "n/a" }'; }

# timing KEY FILE: N from a "timing: KEY=N" line, "" if absent.
timing() {
    grep -oE "timing:.*\b$1=[0-9]+(\.[0-9]+)?" "$2" | head -n 1 | sed -E "s/.*$1=//" || true
}

# --- the runs -----------------------------------------------------------------------------------

r_cpu=() r_rss=() r_samples=() r_file_samples=() r_attach=() r_write=()
p_cpu=() p_rss=() p_samples=() p_script_rss=()
r_busy=() p_busy=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
runs_table=()

for run in $(seq "$RUNS"); do
    kill -0 "$busy_pid" 2>/dev/null || die "the busy workload (pid $busy_pid) died"

    # rprof-bpf: its whole life, from exec to exit, under GNU time.
    out="$work/rprof.$run.pb.gz"
    echo "==> run $run/$RUNS: rprof-bpf record -p $busy_pid --seconds $SECONDS_PER_RUN -F $HZ" >&2
    ticks="$(busy_ticks)"
    if ! RPROF_TIMINGS=1 /usr/bin/time -f '%e %U %S %M' -o "$work/rprof.$run.time" \
        "$rprof" record -p "$busy_pid" --seconds "$SECONDS_PER_RUN" -F "$HZ" -o "$out" \
        2>"$work/rprof.$run.stderr"; then
        cat "$work/rprof.$run.stderr" >&2
        die "rprof-bpf record failed (run $run); its stderr is above"
    fi
    sed 's/^/    /' "$work/rprof.$run.stderr" >&2
    busy="$(cpus_used $(($(busy_ticks) - ticks)) "$(field 1 "$work/rprof.$run.time")")"
    cpu="$(add "$(field 2 "$work/rprof.$run.time")" "$(field 3 "$work/rprof.$run.time")")"
    rss="$(field 4 "$work/rprof.$run.time")"
    file_samples="$(samples_in_profile "$out")"
    [[ -n "$file_samples" ]] || die "go tool pprof cannot read $out (run $run)"
    samples="$(samples_from_summary "$work/rprof.$run.stderr")"
    if [[ -z "$samples" ]]; then
        echo "    (no sample count in the summary; counting the profile's samples instead)" >&2
        samples="$file_samples"
    elif [[ "$samples" != "$file_samples" ]]; then
        echo "    warning: the summary says $samples samples, the profile holds $file_samples" >&2
    fi
    attach="$(timing attach_ms "$work/rprof.$run.stderr")"
    write="$(timing write_ms "$work/rprof.$run.stderr")"
    r_cpu+=("$cpu") r_rss+=("$rss") r_samples+=("$samples") r_file_samples+=("$file_samples") r_busy+=("$busy")
    [[ -n "$attach" ]] && r_attach+=("$attach")
    [[ -n "$write" ]] && r_write+=("$write")
    runs_table+=("| $run | rprof-bpf | $cpu | $(mb "$rss") | $samples ($file_samples in the file) | ${attach:-n/a} | ${write:-n/a} | $busy |")

    # perf: record for the same window, then perf script to symbolize, as a user reading it would.
    data="$work/perf.$run.data"
    echo "==> run $run/$RUNS: perf record -g -F $HZ -p $busy_pid -- sleep $SECONDS_PER_RUN; perf script" >&2
    ticks="$(busy_ticks)"
    if ! /usr/bin/time -f '%e %U %S %M' -o "$work/perf-record.$run.time" \
        perf record -g -F "$HZ" -p "$busy_pid" -o "$data" -- sleep "$SECONDS_PER_RUN" \
        2>"$work/perf-record.$run.stderr"; then
        cat "$work/perf-record.$run.stderr" >&2
        die "perf record failed (run $run)"
    fi
    busy="$(cpus_used $(($(busy_ticks) - ticks)) "$(field 1 "$work/perf-record.$run.time")")"
    if ! /usr/bin/time -f '%e %U %S %M' -o "$work/perf-script.$run.time" \
        perf script -i "$data" >/dev/null 2>"$work/perf-script.$run.stderr"; then
        cat "$work/perf-script.$run.stderr" >&2
        die "perf script failed (run $run)"
    fi
    cpu="$(add "$(add "$(field 2 "$work/perf-record.$run.time")" "$(field 3 "$work/perf-record.$run.time")")" \
        "$(add "$(field 2 "$work/perf-script.$run.time")" "$(field 3 "$work/perf-script.$run.time")")")"
    rss="$(field 4 "$work/perf-record.$run.time")"
    script_rss="$(field 4 "$work/perf-script.$run.time")"
    # Not timed: one line per sample.
    samples="$(perf script -i "$data" -F tid 2>/dev/null | wc -l)"
    p_cpu+=("$cpu") p_rss+=("$rss") p_samples+=("$samples") p_script_rss+=("$script_rss") p_busy+=("$busy")
    runs_table+=("| $run | perf | $cpu | $(mb "$rss") (perf script: $(mb "$script_rss")) | $samples | n/a | n/a | $busy |")
done

# --- results ------------------------------------------------------------------------------------

r_cpu_m="$(median "${r_cpu[@]}")"
p_cpu_m="$(median "${p_cpu[@]}")"
r_rss_m="$(median "${r_rss[@]}")"
p_rss_m="$(median "${p_rss[@]}")"
r_samples_m="$(median "${r_samples[@]}")"
p_samples_m="$(median "${p_samples[@]}")"
r_attach_m="$(median "${r_attach[@]}")"
r_write_m="$(median "${r_write[@]}")"
r_busy_m="$(median "${r_busy[@]}")"
p_busy_m="$(median "${p_busy[@]}")"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
cpu_limit="$(awk -v p="$p_cpu_m" 'BEGIN { printf "%.2f", p * 0.5 }')"
cpu_ratio="$(awk -v r="$r_cpu_m" -v p="$p_cpu_m" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "n/a" }')"
cpu_ok="$(verdict "$r_cpu_m <= $cpu_limit")"
samples_ok="$(verdict "$r_samples_m >= $MIN_SAMPLES")"
if [[ -n "$r_attach_m" ]]; then attach_ok="$(verdict "$r_attach_m <= $MAX_LATENCY_MS")"; else attach_ok="FAIL (not reported)"; fi
if [[ -n "$r_write_m" ]]; then write_ok="$(verdict "$r_write_m <= $MAX_LATENCY_MS")"; else write_ok="FAIL (not reported)"; fi
rss_ok="$(verdict "$r_rss_m <= $MAX_RSS_KB")"

if [[ -n "${SUDO_USER:-}" ]]; then command_line="sudo scripts/bench.sh"; else command_line="scripts/bench.sh"; fi
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo "no commit yet")"
if [[ -n "$(git status --porcelain -- src bpf build.rs Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    commit="$commit, with uncommitted changes"
fi

{
    cat <<EOF
# Benchmarks

Written by \`scripts/bench.sh\`; do not edit by hand. Re-run it with \`sudo scripts/bench.sh\`.

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Command: \`$command_line\`$([[ -n "${SUDO_USER:-}" ]] || echo " (run as root, so without sudo)")
- Kernel: $(uname -r) ($(uname -m)), $(nproc) CPUs ($cpu_model)
- rprof-bpf: $commit, release build
- Peer: $(perf version 2>/dev/null), \`perf record -g -F $HZ -p PID -o FILE -- sleep $SECONDS_PER_RUN\`, then \`perf script -i FILE > /dev/null\`
- Workload: \`scripts/bench/busy.c\`, $THREADS threads that never block, one process for all runs
- Each recording: $SECONDS_PER_RUN s at $HZ Hz of that process (\`rprof-bpf record -p PID --seconds $SECONDS_PER_RUN -F $HZ -o FILE\`); $RUNS runs of each tool, alternating; the medians are below
- Contention: before the workload started, the CPUs were ${machine_busy}% busy with other work
  (measured over 2 s). Load average: $load_before before the runs, $load_after after them.
  During the recordings the workload got a median of $r_busy_m (rprof-bpf runs) and $p_busy_m
  (perf runs) of the $THREADS CPUs it could use. Samples are only taken while its threads run, so
  less than $THREADS means that other processes, the profiler among them, took CPU time from it.

## Results (median of $RUNS runs)

| metric | rprof-bpf | perf | target | result |
|---|---|---|---|---|
| CPU time, user + sys (s) | $r_cpu_m | $p_cpu_m | ≤ 0.5 × perf = $cpu_limit (ratio: $cpu_ratio) | $cpu_ok |
| samples | $r_samples_m | $p_samples_m | ≥ 95% of $HZ × $SECONDS_PER_RUN × $THREADS = $EXPECTED, so ≥ $MIN_SAMPLES | $samples_ok |
| start to sampling (ms) | ${r_attach_m:-not reported} | n/a | ≤ $MAX_LATENCY_MS | $attach_ok |
| stop to file written (ms) | ${r_write_m:-not reported} | n/a | ≤ $MAX_LATENCY_MS | $write_ok |
| peak RSS (MB) | $(mb "$r_rss_m") | $(mb "$p_rss_m") | ≤ 64 | $rss_ok |

## How each number is measured

- **CPU time**: user + sys from GNU \`/usr/bin/time -f '%U %S %M'\` over the whole process. For
  rprof-bpf that is one \`record\` from exec to exit: loading and attaching BPF, the recording, reading
  the maps, symbolization and writing the gzipped profile. For perf it is \`perf record\` plus \`perf
  script\`, which symbolizes. The time the BPF program or perf's kernel side spends in the sampled
  threads' interrupts is charged to those threads, for both tools alike. GNU time reports 10 ms steps.
- **samples**: rprof-bpf's count from the summary it prints to stderr, checked against the sum of
  \`samples/count\` in the written file, decoded by \`go tool pprof -raw\`. perf's is the number of
  samples \`perf script\` prints.
- **start to sampling** and **stop to file written**: rprof-bpf's own clock, printed with
  \`RPROF_TIMINGS=1\` as \`timing: attach_ms=N\` (from process start until the perf events and BPF
  program are attached) and \`timing: write_ms=N\` (from the end of the window until the file is
  written). perf reports nothing comparable.
- **peak RSS**: GNU time's \`%M\`, the maximum resident set size. For perf, that of \`perf record\`.
- **workload's CPUs** (in the last table): the busy process's user + sys time during the profiler's
  run, from \`/proc/PID/stat\`, divided by the run's wall-clock time.

## Every run

| run | tool | CPU s | peak RSS (MB) | samples | attach ms | write ms | workload's CPUs |
|---|---|---|---|---|---|---|---|
EOF
    printf '%s\n' "${runs_table[@]}"
} >BENCHMARKS.md

echo >&2
sed -n '/^## Results/,/^## How/p' BENCHMARKS.md | sed '$d' >&2
echo "==> wrote BENCHMARKS.md" >&2
