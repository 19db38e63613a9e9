# The CPU section of scripts/bench.sh, which sources this file and calls bench_cpu; it is not a
# script of its own. Against one busy 2-thread process (scripts/bench/busy.c) it records 5 s at
# 99 Hz with `rprof-bpf record -p PID` and, as the peer, with `perf record -g -F 99 -p PID -- sleep 5`
# followed by `perf script`, RUNS times each, alternating, and writes the medians with the targets.
# It uses bench.sh's helpers and variables (rprof, work, RUNS, bench_pids, ...).

CPU_SECONDS=5
CPU_HZ=99
CPU_THREADS=2
CPU_EXPECTED=$((CPU_HZ * CPU_SECONDS * CPU_THREADS))
CPU_MIN_SAMPLES=$(((CPU_EXPECTED * 95 + 99) / 100)) # 95%, rounded up
CPU_MAX_LATENCY_MS=300
CPU_MAX_RSS_KB=$((64 * 1024))

# bench_cpu OUT: runs the section and writes its part of BENCHMARKS.md to OUT.
bench_cpu() {
    local out_md="$1" dir="$work/cpu"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "==> building the busy workload" >&2
    clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wall -pthread \
        -o "$dir/busy" scripts/bench/busy.c

    wait_for_quiet

    local busy_pid
    "$dir/busy" &
    busy_pid=$!
    bench_pids+=("$busy_pid")
    # Wait until both busy threads exist (main thread + 2).
    for _ in $(seq 100); do
        [[ "$(ls "/proc/$busy_pid/task" 2>/dev/null | wc -l)" -ge $((CPU_THREADS + 1)) ]] && break
        sleep 0.05
    done
    [[ "$(ls "/proc/$busy_pid/task" 2>/dev/null | wc -l)" -ge $((CPU_THREADS + 1)) ]] ||
        die "the busy workload did not start its $CPU_THREADS threads"
    echo "==> busy workload: pid $busy_pid, $CPU_THREADS threads" >&2

    # busy_ticks: CPU time (user + sys, in clock ticks) the busy workload has used so far.
    busy_ticks() { awk '{ print $14 + $15 }' "/proc/$busy_pid/stat"; }
    # cpus_used TICKS SECONDS: how many CPUs' worth the workload got over SECONDS of wall time.
    cpus_used() { awk -v t="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", t / hz / s; else print "n/a" }'; }

    local r_cpu=() r_rss=() r_samples=() r_file_samples=() r_attach=() r_write=()
    local p_cpu=() p_rss=() p_samples=() p_script_rss=()
    local r_busy=() p_busy=()
    local load_before runs_table=()
    local run out data ticks busy cpu rss file_samples samples attach write script_rss
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

    for run in $(seq "$RUNS"); do
        kill -0 "$busy_pid" 2>/dev/null || die "the busy workload (pid $busy_pid) died"

        # rprof-bpf: its whole life, from exec to exit, under GNU time.
        out="$dir/rprof.$run.pb.gz"
        echo "==> run $run/$RUNS: rprof-bpf record -p $busy_pid --seconds $CPU_SECONDS -F $CPU_HZ" >&2
        ticks="$(busy_ticks)"
        if ! RPROF_TIMINGS=1 /usr/bin/time -f '%e %U %S %M' -o "$dir/rprof.$run.time" \
            "$rprof" record -p "$busy_pid" --seconds "$CPU_SECONDS" -F "$CPU_HZ" -o "$out" \
            2>"$dir/rprof.$run.stderr"; then
            cat "$dir/rprof.$run.stderr" >&2
            die "rprof-bpf record failed (run $run); its stderr is above"
        fi
        sed 's/^/    /' "$dir/rprof.$run.stderr" >&2
        busy="$(cpus_used $(($(busy_ticks) - ticks)) "$(field 1 "$dir/rprof.$run.time")")"
        cpu="$(add "$(field 2 "$dir/rprof.$run.time")" "$(field 3 "$dir/rprof.$run.time")")"
        rss="$(field 4 "$dir/rprof.$run.time")"
        # rprof-bpf puts samples/count first.
        file_samples="$(first_column_sum "$out")"
        [[ -n "$file_samples" ]] || die "go tool pprof cannot read $out (run $run)"
        samples="$(samples_from_summary "$dir/rprof.$run.stderr")"
        if [[ -z "$samples" ]]; then
            echo "    (no sample count in the summary; counting the profile's samples instead)" >&2
            samples="$file_samples"
        elif [[ "$samples" != "$file_samples" ]]; then
            echo "    warning: the summary says $samples samples, the profile holds $file_samples" >&2
        fi
        attach="$(timing attach_ms "$dir/rprof.$run.stderr")"
        write="$(timing write_ms "$dir/rprof.$run.stderr")"
        r_cpu+=("$cpu") r_rss+=("$rss") r_samples+=("$samples") r_file_samples+=("$file_samples") r_busy+=("$busy")
        [[ -n "$attach" ]] && r_attach+=("$attach")
        [[ -n "$write" ]] && r_write+=("$write")
        runs_table+=("| $run | rprof-bpf | $cpu | $(mb "$rss") | $samples ($file_samples in the file) | ${attach:-n/a} | ${write:-n/a} | $busy |")

        # perf: record for the same window, then perf script to symbolize, as a user reading it would.
        data="$dir/perf.$run.data"
        echo "==> run $run/$RUNS: perf record -g -F $CPU_HZ -p $busy_pid -- sleep $CPU_SECONDS; perf script" >&2
        ticks="$(busy_ticks)"
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/perf-record.$run.time" \
            perf record -g -F "$CPU_HZ" -p "$busy_pid" -o "$data" -- sleep "$CPU_SECONDS" \
            2>"$dir/perf-record.$run.stderr"; then
            cat "$dir/perf-record.$run.stderr" >&2
            die "perf record failed (run $run)"
        fi
        busy="$(cpus_used $(($(busy_ticks) - ticks)) "$(field 1 "$dir/perf-record.$run.time")")"
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/perf-script.$run.time" \
            perf script -i "$data" >/dev/null 2>"$dir/perf-script.$run.stderr"; then
            cat "$dir/perf-script.$run.stderr" >&2
            die "perf script failed (run $run)"
        fi
        cpu="$(add "$(add "$(field 2 "$dir/perf-record.$run.time")" "$(field 3 "$dir/perf-record.$run.time")")" \
            "$(add "$(field 2 "$dir/perf-script.$run.time")" "$(field 3 "$dir/perf-script.$run.time")")")"
        rss="$(field 4 "$dir/perf-record.$run.time")"
        script_rss="$(field 4 "$dir/perf-script.$run.time")"
        # Not timed: one line per sample.
        samples="$(perf script -i "$data" -F tid 2>/dev/null | wc -l)"
        p_cpu+=("$cpu") p_rss+=("$rss") p_samples+=("$samples") p_script_rss+=("$script_rss") p_busy+=("$busy")
        runs_table+=("| $run | perf | $cpu | $(mb "$rss") (perf script: $(mb "$script_rss")) | $samples | n/a | n/a | $busy |")
    done
    stop_pid "$busy_pid"

    # --- results ----------------------------------------------------------------------------------

    local r_cpu_m p_cpu_m r_rss_m p_rss_m r_samples_m p_samples_m r_attach_m r_write_m r_busy_m p_busy_m
    local load_after cpu_limit cpu_ratio cpu_ok samples_ok attach_ok write_ok rss_ok
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

    cpu_limit="$(awk -v p="$p_cpu_m" 'BEGIN { printf "%.2f", p * 0.5 }')"
    cpu_ratio="$(awk -v r="$r_cpu_m" -v p="$p_cpu_m" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "n/a" }')"
    cpu_ok="$(verdict "$r_cpu_m <= $cpu_limit")"
    samples_ok="$(verdict "$r_samples_m >= $CPU_MIN_SAMPLES")"
    if [[ -n "$r_attach_m" ]]; then attach_ok="$(verdict "$r_attach_m <= $CPU_MAX_LATENCY_MS")"; else attach_ok="FAIL (not reported)"; fi
    if [[ -n "$r_write_m" ]]; then write_ok="$(verdict "$r_write_m <= $CPU_MAX_LATENCY_MS")"; else write_ok="FAIL (not reported)"; fi
    rss_ok="$(verdict "$r_rss_m <= $CPU_MAX_RSS_KB")"

    {
        cat <<EOF
## CPU recording cost

$(section_header cpu)
- Peer: $(perf version 2>/dev/null), \`perf record -g -F $CPU_HZ -p PID -o FILE -- sleep $CPU_SECONDS\`, then \`perf script -i FILE > /dev/null\`
- Workload: \`scripts/bench/busy.c\`, $CPU_THREADS threads that never block, one process for all runs
- Each recording: $CPU_SECONDS s at $CPU_HZ Hz of that process (\`rprof-bpf record -p PID --seconds $CPU_SECONDS -F $CPU_HZ -o FILE\`); $RUNS runs of each tool, alternating; the medians are below
- Contention: before the workload started, the CPUs were ${machine_busy}% busy with other work
  (measured over 2 s). Load average: $load_before before the runs, $load_after after them.
  During the recordings the workload got a median of $r_busy_m (rprof-bpf runs) and $p_busy_m
  (perf runs) of the $CPU_THREADS CPUs it could use. Samples are only taken while its threads run, so
  less than $CPU_THREADS means that other processes, the profiler among them, took CPU time from it.

### Results (median of $RUNS runs)

| metric | rprof-bpf | perf | target | result |
|---|---|---|---|---|
| CPU time, user + sys (s) | $r_cpu_m | $p_cpu_m | ≤ 0.5 × perf = $cpu_limit (ratio: $cpu_ratio) | $cpu_ok |
| samples | $r_samples_m | $p_samples_m | ≥ 95% of $CPU_HZ × $CPU_SECONDS × $CPU_THREADS = $CPU_EXPECTED, so ≥ $CPU_MIN_SAMPLES | $samples_ok |
| start to sampling (ms) | ${r_attach_m:-not reported} | n/a | ≤ $CPU_MAX_LATENCY_MS | $attach_ok |
| stop to file written (ms) | ${r_write_m:-not reported} | n/a | ≤ $CPU_MAX_LATENCY_MS | $write_ok |
| peak RSS (MB) | $(mb "$r_rss_m") | $(mb "$p_rss_m") | ≤ 64 | $rss_ok |

### How each number is measured

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

### Every run

| run | tool | CPU s | peak RSS (MB) | samples | attach ms | write ms | workload's CPUs |
|---|---|---|---|---|---|---|---|
EOF
        printf '%s\n' "${runs_table[@]}"
    } >"$out_md"
}
