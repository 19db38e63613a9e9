# The unwind section of scripts/bench.sh, which sources this file and calls bench_unwind; it is not a
# script of its own. It uses bench.sh's helpers and variables (rprof, work, RUNS, bench_pids, ...).
# Its own helpers and constants start with uw_ / UW_, so that they clash with no other section's.
#
# Issue 5: `rprof-bpf record --type cpu` unwinds user stacks with the binaries' CFI (`--call-graph
# dwarf`, the default): BPF copies the top 16 KiB of the stack at each sample, user space unwinds it.
# This measures it against `perf record --call-graph dwarf` (8 KiB copies, unwound by `perf report`)
# on code without frame pointers, in the same run:
#
#   workload  scripts/bench/unwind_work.c, built with gcc -O2 -fomit-frame-pointer: 2 threads, each
#             sorting small arrays with libc's qsort and a comparator callback at the bottom of a
#             recursion, one process per depth (UW_DEPTHS): shallow (about 2 KiB of stack from the
#             thread's entry to the comparator) and deep (about 12 KiB: more than perf's 8 KiB
#             copy, less than rprof-bpf's 16 KiB). It prints its rounds every 100 ms.
#   per run   for each Hz of UW_HZ, for each tool in turn: a baseline of UW_SECONDS s with no
#             profiler, then the tool:
#               rprof-bpf  rprof-bpf record -q -F HZ -p PID --seconds UW_SECONDS -o FILE
#               perf       perf record --call-graph dwarf -F HZ -p PID -o FILE -- sleep UW_SECONDS,
#                          then perf report -i FILE --stdio > /dev/null (timed: the peer's cost), then
#                          perf script -i FILE (timed apart, and parsed for complete stacks)
#             measuring CPU time, peak RSS, the workload's throughput during the recording (the
#             slowdown against the baseline) and the share of samples whose stack reaches the
#             thread's entry (main or start_thread): complete stacks. The workload's log lines
#             also carry its CPU time and the machine's (/proc/stat): a baseline or recording in
#             which other processes kept more than UW_MAX_OTHER CPUs busy is taken again, once they
#             have quieted down, at most UW_RETRIES times (clang-14's runs likewise).
#   big file  clang-14 compiling a generated C file (about 5 s), whose libLLVM-14.so.1 is about
#             110 MB. Each run: clang alone, then recorded with -p PID until it exits by each tool
#             (the same numbers as above, its slowdown from its wall time), then
#             `rprof-bpf record -q -F 99 -- clang-14 ...` for the time and memory the unwind tables
#             take (the profile's comments); after the runs, once more with --max-unwind-memory
#             UW_SMALL_LIMIT to show the bound holds.

UW_SECONDS=5               # each recording and each baseline
UW_HZ=(99 999)             # sampling frequencies
UW_DEPTHS=(4 40)           # frames of `descend` (272 bytes each) above the sort: shallow, deep
UW_DEPTH_NAMES=(shallow deep)
UW_SETTLE=0.5              # seconds of rest before each baseline
UW_PERF_DUMP=8192          # perf's default --call-graph dwarf stack copy (documentation only)
UW_STACK_COPY=16384        # rprof-bpf's stack copy (documentation only)
UW_BIG_FUNCS=1000          # functions in the generated C file clang compiles
UW_SMALL_LIMIT=256K        # the small --max-unwind-memory of the last run (below what clang-14 touches)
UW_BIG_FILE_MB=100         # "a 100 MB binary": the issue wants the time to prepare one reported
UW_SMALL_LIMIT_MIB=0.25
UW_DEFAULT_LIMIT_MIB=512   # rprof-bpf's default --max-unwind-memory
UW_MAX_OTHER=0.10          # CPUs other processes may keep busy in a window before it counts as disturbed
UW_RETRIES=3               # a disturbed baseline and recording are taken again, at most this many more times

# uw_now_ns: the wall clock in nanoseconds, the clock the workload's log lines carry (CLOCK_REALTIME).
uw_now_ns() {
    local t="$EPOCHREALTIME"
    echo "${t//[!0-9]/}000"
}

# uw_ns SECONDS: a (fractional) number of seconds in nanoseconds.
uw_ns() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1e9 }'; }

# uw_window LOG FROM_NS TO_NS: from the workload's log lines (unwind_work.c), over the window from
# the first line at or after FROM_NS to the last line at or before TO_NS: "RATE CPUS OTHER", its
# rounds per second, the CPUs it got (its CPU time over the window's length) and how many CPUs the
# rest of the machine kept busy (the machine's busy time from /proc/stat, less the workload's);
# "" when the window holds no interval.
uw_window() {
    awk -v a="$2" -v b="$3" -v hz="$CLK_TCK" '
        $1 + 0 >= a + 0 && !have { t0 = $1; c0 = $2; u0 = $3; m0 = $4; have = 1 }
        $1 + 0 <= b + 0 { t1 = $1; c1 = $2; u1 = $3; m1 = $4 }
        END { if (have && t1 > t0) { s = (t1 - t0) / 1e9; cpus = (u1 - u0) / 1e9 / s
                printf "%.0f %.2f %.2f", (c1 - c0) / s, cpus, (m1 - m0) / hz / s - cpus } }' "$1"
}

# uw_slowdown WITH BASE: 100 x (1 - WITH / BASE), one decimal; negative when WITH was faster.
uw_slowdown() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * (1 - w / b) }'; }


# uw_cpu TIMEFILE...: user + sys summed over GNU time -o files, two decimals.
uw_cpu() {
    local f sum=0
    for f in "$@"; do sum="$(add "$sum" "$(add "$(field 2 "$f")" "$(field 3 "$f")")")"; done
    echo "$sum"
}

# uw_pct PART WHOLE: PART as a percentage of WHOLE, one decimal; n/a when WHOLE is 0.
uw_pct() { awk -v p="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.1f", 100 * p / w; else print "n/a" }'; }

# The frames that mark a complete stack: a thread's entry. main (and glibc's __libc_start_call_main,
# which calls it, for binaries whose main has no symbol) for the main thread, start_thread for the
# others.
UW_ENTRIES='main|start_thread|__libc_start_call_main'

# uw_complete_folded FILE: "COMPLETE TOTAL" samples of folded stacks (`frame;frame;... COUNT`).
uw_complete_folded() {
    awk -v re="^($UW_ENTRIES)\$" '
        { n = $NF; total += n; sub(/ [0-9]+$/, "")
          k = split($0, f, ";"); ok = 0
          for (i = 1; i <= k; i++) if (f[i] ~ re) { ok = 1; break }
          if (ok) complete += n }
        END { printf "%d %d\n", complete, total }' "$1"
}

# uw_complete_perf FILE: "COMPLETE TOTAL" samples of `perf script` output: one block per sample, a
# header line and one line per frame (`ADDR SYMBOL+OFFSET (DSO)`), blocks separated by blank lines.
uw_complete_perf() {
    awk -v re="^[0-9a-f]+ ($UW_ENTRIES)(\\\\+0x[0-9a-f]+)? \\\\(" '
        BEGIN { RS = "" }
        { total++; k = split($0, line, "\n"); ok = 0
          for (i = 2; i <= k; i++) { l = line[i]; sub(/^[ \t]+/, "", l); if (l ~ re) { ok = 1; break } }
          if (ok) complete++ }
        END { printf "%d %d\n", complete, total }' "$1"
}

# uw_file_mb SLOWEST: the file size (MB) in an "unwind tables: slowest FILE (S MB file, ...)" line; 0 if none.
uw_file_mb() { sed -nE 's/.* \(([0-9.]+) MB file,.*/\1/p' <<<"$1" | grep . || echo 0; }

# uw_comments PROFILE: the profile's comments, one per line, without "Comment: ".
uw_comments() { go tool pprof -raw "$1" 2>/dev/null | sed -n 's/^Comment: //p' || true; }

# uw_counter NAME COMMENTS: a counter's value from the "counters: a=1 b=2" comment; "?" if absent.
uw_counter() { grep -oE "(^| )$1=[0-9]+" <<<"$2" | head -n 1 | sed 's/.*=//' | grep . || echo "?"; }

# uw_m ARRAY KEY_PREFIX: the median of the entries of an associative array (named) whose keys are
# "KEY_PREFIX RUN", over the runs.
uw_m() {
    local -n arr="$1"
    local run vals=()
    for run in $(seq "$RUNS"); do
        [[ -n "${arr[$2 $run]:-}" ]] && vals+=("${arr[$2 $run]}")
    done
    median "${vals[@]}"
}

# bench_unwind OUT: runs the section and writes its part of BENCHMARKS.md to OUT.
bench_unwind() {
    local out_md="$1" dir="$work/unwind"
    rm -rf "$dir"
    mkdir -p "$dir"
    command -v clang-14 >/dev/null || die "clang-14 is missing (scripts/setup.sh installs it)"
    command -v gcc >/dev/null || die "gcc is missing (scripts/setup.sh installs it)"
    echo "==> building the unwind workload (gcc -O2 -fomit-frame-pointer)" >&2
    gcc -O2 -g -fomit-frame-pointer -Wall -pthread -o "$dir/unwind_work" scripts/bench/unwind_work.c

    # The C file clang compiles: UW_BIG_FUNCS small functions with loops, each calling the one before.
    awk -v n="$UW_BIG_FUNCS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "int f%d(int *a, int n) { int s = %d; for (int i = 0; i < n; i++) { s += a[i] * %d ^ (s >> 3); if (a[i] > %d) s -= a[i] / (i + 1); } return s + (n > 1 ? f%d(a + 1, n - 1) : 0); }\n", i, i, i + 3, i % 97, (i ? i - 1 : 0)
    }' >"$dir/big.c"
    local libllvm
    libllvm="$(ldd "$(command -v clang-14)" | awk '/libLLVM/ { print $3; exit }')"
    [[ -z "$libllvm" ]] || libllvm="$(readlink -f "$libllvm")"
    [[ -n "$libllvm" ]] || libllvm="(libLLVM not found by ldd)"

    wait_for_quiet

    local load_before load_after
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

    # Every measurement of the workload, keyed "DEPTH HZ TOOL RUN".
    local -A base with slow cpu rss samples complete wl_cpus base_cpus base_other wl_other retakes
    local -A r_attach r_lost r_copy r_tables p_report_wall p_rec_cpu p_rep_cpu p_script_cpu p_rec_rss p_rep_rss p_script_rss p_mb p_lost
    local runs_table=() stack_bytes=() retaken=0 disturbed_kept=0
    local di depth name hz run k w_pid w_log

    # uw_baseline KEY: the workload's throughput over UW_SECONDS with no profiler.
    uw_baseline() {
        local k="$1" from to stats
        kill -0 "$w_pid" 2>/dev/null || die "the unwind workload (pid $w_pid) died; its log ends at $(tail -n 1 "$w_log" | cut -d' ' -f1) ns"
        sleep "$UW_SETTLE"
        from="$(uw_now_ns)"
        sleep "$UW_SECONDS"
        to="$(uw_now_ns)"
        sleep 0.2 # the log line after the window
        stats="$(uw_window "$w_log" "$from" "$to")"
        [[ -n "$stats" ]] || die "no baseline throughput in $w_log"
        read -r "base[$k]" "base_cpus[$k]" "base_other[$k]" <<<"$stats"
        echo "    baseline: ${base[$k]} rounds/s; the workload got ${base_cpus[$k]} CPUs, other processes ${base_other[$k]}" >&2
    }

    # uw_record TOOL KEY HZ: one recording by TOOL (rprof or perf).
    uw_record() {
        case "$1" in
        rprof) uw_rprof "$2" "$3" ;;
        perf) uw_perf "$2" "$3" ;;
        esac
    }

    # uw_wait_others: waits, up to QUIET_WAIT seconds, until other processes keep at most
    # UW_MAX_OTHER CPUs busy beside the workload (over 2 s, from its log).
    uw_wait_others() {
        local waited=0 from stats other=""
        while ((waited < QUIET_WAIT)); do
            from="$(uw_now_ns)"
            sleep 2.2
            stats="$(uw_window "$w_log" "$from" "$(uw_now_ns)")"
            kill -0 "$w_pid" 2>/dev/null || die "the unwind workload (pid $w_pid) died; its log ends at $(tail -n 1 "$w_log" | cut -d' ' -f1) ns"
            other="${stats##* }"
            [[ -z "$other" || "$(verdict "$other > $UW_MAX_OTHER")" == PASS ]] || return 0
            waited=$((waited + 2))
        done
        echo "    warning: other processes still keep ${other:-?} CPUs busy after ${QUIET_WAIT}s; going on" >&2
    }

    # uw_measure KEY TOOL HZ: a baseline, then the tool's recording (uw_record). When
    # other processes kept more than UW_MAX_OTHER CPUs busy in either window (for the recording, on
    # top of the tool's whole CPU time spread over the window), both are taken again once they are
    # quiet (uw_wait_others), at most UW_RETRIES more times; the last try is kept.
    uw_measure() {
        local k="$1" tool="$2" hz="$3" try other
        retakes[$k]=0
        for try in $(seq 0 "$UW_RETRIES"); do
            uw_baseline "$k"
            if [[ "$(verdict "${base_other[$k]} > $UW_MAX_OTHER")" == PASS ]]; then
                other="${base_other[$k]} CPUs busy in the baseline"
            else
                uw_record "$tool" "$k" "$hz"
                if [[ "$tool" == rprof ]]; then
                    other="$(awk -v o="${wl_other[$k]}" -v c="${cpu[$k]}" -v s="$UW_SECONDS" 'BEGIN { printf "%.2f", o - c / s }')"
                else
                    other="$(awk -v o="${wl_other[$k]}" -v c="${p_rec_cpu[$k]}" -v s="$UW_SECONDS" 'BEGIN { printf "%.2f", o - c / s }')"
                fi
                [[ "$(verdict "$other > $UW_MAX_OTHER")" == PASS ]] || return 0
                other="$other CPUs busy while recording"
            fi
            if ((try == UW_RETRIES)); then
                echo "    warning: other processes keep disturbing the measurements; keeping this one" >&2
                disturbed_kept=$((disturbed_kept + 1))
                retakes[$k]="$try, still disturbed"
                # A disturbed baseline was not followed by a recording: take it now.
                [[ "$(verdict "${base_other[$k]} > $UW_MAX_OTHER")" == FAIL ]] || uw_record "$tool" "$k" "$hz"
                return 0
            fi
            echo "    other processes kept $other: taking the baseline and the recording again" >&2
            uw_wait_others
            retaken=$((retaken + 1))
            retakes[$k]=$((try + 1))
        done
    }

    # uw_rprof KEY HZ: one rprof-bpf recording of the workload.
    uw_rprof() {
        local k="$1" hz="$2" f="${1// /.}" t0 counts comments from attach stats
        local out="$dir/$f.pb.gz" err="$dir/$f.stderr" tm="$dir/$f.time"
        echo "==> ${k##* }/$RUNS: rprof-bpf record -q -F $hz -p $w_pid --seconds $UW_SECONDS" >&2
        t0="$(uw_now_ns)"
        if ! RPROF_TIMINGS=1 /usr/bin/time -f '%e %U %S %M' -o "$tm" \
            "$rprof" record -q -F "$hz" -p "$w_pid" --seconds "$UW_SECONDS" -o "$out" 2>"$err"; then
            cat "$err" >&2
            die "rprof-bpf record failed ($k); its stderr is above"
        fi
        grep -v '^timing:' "$err" | sed 's/^/    /' >&2 || true
        attach="$(timing attach_ms "$err")"
        [[ -n "$attach" ]] || die "rprof-bpf printed no timing: attach_ms ($k)"
        r_attach[$k]="$attach"
        # The recording runs UW_SECONDS from attach_ms after t0 (a few ms later, from its start).
        from=$((t0 + attach * 1000000))
        stats="$(uw_window "$w_log" "$from" $((from + $(uw_ns "$UW_SECONDS"))))"
        [[ -n "$stats" ]] || die "no throughput in $w_log while recording ($k)"
        read -r "with[$k]" "wl_cpus[$k]" "wl_other[$k]" <<<"$stats"
        cpu[$k]="$(uw_cpu "$tm")"
        rss[$k]="$(field 4 "$tm")"
        "$rprof" report "$out" --format folded --sample-index samples >"$dir/$f.folded" 2>"$dir/$f.report.stderr" ||
            die "rprof-bpf report --format folded failed on $out ($k)"
        counts="$(uw_complete_folded "$dir/$f.folded")"
        complete[$k]="${counts% *}" samples[$k]="${counts#* }"
        comments="$(uw_comments "$out")"
        [[ -n "$comments" ]] || die "go tool pprof cannot read $out ($k)"
        r_lost[$k]="$(uw_counter stack_samples_lost "$comments")"
        r_copy[$k]="$(uw_counter stack_copy_failed "$comments")"
        r_tables[$k]="$(grep -m 1 -E '^unwind tables: [0-9]+ built' <<<"$comments" | sed 's/^unwind tables: //' || true)"
    }

    # uw_perf KEY HZ: one perf recording of the workload, then perf report and perf script.
    uw_perf() {
        local k="$1" hz="$2" f="${1// /.}" from to stats
        local data="$dir/$f.data" marks="$dir/$f.window"
        echo "==> ${k##* }/$RUNS: perf record --call-graph dwarf -F $hz -p $w_pid -- sleep $UW_SECONDS; perf report; perf script" >&2
        # The command perf runs for the length of the recording is sleep, in a bash that notes the
        # time (CLOCK_REALTIME, in us) before and after it: the window of the throughput.
        # shellcheck disable=SC2016 # expanded by that bash
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.record.time" \
            perf record --call-graph dwarf -F "$hz" -p "$w_pid" -o "$data" -- \
            bash -c 'echo "${EPOCHREALTIME//[!0-9]/}" >"$0"; sleep "$1"; echo "${EPOCHREALTIME//[!0-9]/}" >>"$0"' \
            "$marks" "$UW_SECONDS" 2>"$dir/$f.record.stderr"; then
            cat "$dir/$f.record.stderr" >&2
            die "perf record failed ($k)"
        fi
        [[ "$(wc -l <"$marks")" == 2 ]] || die "perf's sleep did not note its window in $marks ($k)"
        from="$(sed -n 1p "$marks")000" to="$(sed -n 2p "$marks")000"
        stats="$(uw_window "$w_log" "$from" "$to")"
        [[ -n "$stats" ]] || die "no throughput in $w_log while recording ($k)"
        read -r "with[$k]" "wl_cpus[$k]" "wl_other[$k]" <<<"$stats"
        uw_perf_post "$k" "$f"
    }

    # uw_perf_post KEY F: after perf record wrote $dir/F.data (its GNU time in F.record.time),
    # perf report and perf script, timed, and the numbers of that recording.
    uw_perf_post() {
        local k="$1" f="$2" counts
        local data="$dir/$f.data"
        p_lost[$k]="$(grep -ioE '(lost [0-9]+ chunks|[0-9]+ lost samples|lost [0-9]+ samples)' "$dir/$f.record.stderr" | head -n 1 || true)"
        p_mb[$k]="$(awk -v b="$(stat -c %s "$data")" 'BEGIN { printf "%.1f", b / 1048576 }')"
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.report.time" \
            perf report -i "$data" --stdio >/dev/null 2>"$dir/$f.report.stderr"; then
            cat "$dir/$f.report.stderr" >&2
            die "perf report failed ($k)"
        fi
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.script.time" \
            perf script -i "$data" >"$dir/$f.script" 2>"$dir/$f.script.stderr"; then
            cat "$dir/$f.script.stderr" >&2
            die "perf script failed ($k)"
        fi
        counts="$(uw_complete_perf "$dir/$f.script")"
        complete[$k]="${counts% *}" samples[$k]="${counts#* }"
        p_report_wall[$k]="$(field 1 "$dir/$f.report.time")"
        rm -f "$dir/$f.script" # tens of MB at 999 Hz; the data file stays
        p_rec_cpu[$k]="$(uw_cpu "$dir/$f.record.time")"
        p_rep_cpu[$k]="$(uw_cpu "$dir/$f.report.time")"
        p_script_cpu[$k]="$(uw_cpu "$dir/$f.script.time")"
        cpu[$k]="$(add "${p_rec_cpu[$k]}" "${p_rep_cpu[$k]}")"
        p_rec_rss[$k]="$(field 4 "$dir/$f.record.time")"
        p_rep_rss[$k]="$(field 4 "$dir/$f.report.time")"
        p_script_rss[$k]="$(field 4 "$dir/$f.script.time")"
        rss[$k]="$(awk -v a="${p_rec_rss[$k]}" -v b="${p_rep_rss[$k]}" 'BEGIN { print (a + 0 > b + 0) ? a : b }')"
    }

    for di in "${!UW_DEPTHS[@]}"; do
        depth="${UW_DEPTHS[$di]}" name="${UW_DEPTH_NAMES[$di]}"
        w_log="$dir/work.$depth.log"
        "$dir/unwind_work" 0 "$depth" >"$w_log" 2>"$dir/work.$depth.stderr" &
        w_pid=$!
        bench_pids+=("$w_pid")
        sleep 1
        kill -0 "$w_pid" 2>/dev/null || {
            cat "$dir/work.$depth.stderr" >&2
            die "the unwind workload (depth $depth) did not start"
        }
        [[ -s "$w_log" ]] || die "the unwind workload (depth $depth) logs nothing"
        stack_bytes[di]="$(sed -nE 's/.* ([0-9]+) bytes of stack.*/\1/p' "$dir/work.$depth.stderr" | head -n 1)"
        [[ -n "${stack_bytes[$di]}" ]] || die "the unwind workload (depth $depth) did not report its stack use"
        echo "==> $name workload: pid $w_pid, depth $depth, ${stack_bytes[$di]} bytes of stack from thread_main to the comparator" >&2

        for run in $(seq "$RUNS"); do
            for hz in "${UW_HZ[@]}"; do
                kill -0 "$w_pid" 2>/dev/null || die "the unwind workload (pid $w_pid) died"
                k="$depth $hz rprof $run"
                uw_measure "$k" rprof "$hz"
                slow[$k]="$(uw_slowdown "${with[$k]}" "${base[$k]}")"
                echo "    rprof-bpf: ${cpu[$k]} s CPU, $(mb "${rss[$k]}") MB, ${slow[$k]}% slower," \
                    "complete stacks ${complete[$k]}/${samples[$k]}" >&2
                runs_table+=("| $name | $hz | $run | rprof-bpf | ${cpu[$k]} | $(mb "${rss[$k]}") | ${base[$k]} → ${with[$k]} (${slow[$k]}%) | ${base_cpus[$k]} / ${wl_cpus[$k]} | ${base_other[$k]} / ${wl_other[$k]} | ${retakes[$k]} | ${complete[$k]} / ${samples[$k]} ($(uw_pct "${complete[$k]}" "${samples[$k]}")%) | attach ${r_attach[$k]} ms; lost ${r_lost[$k]}, copy failed ${r_copy[$k]}; tables: ${r_tables[$k]:-none} |")

                k="$depth $hz perf $run"
                uw_measure "$k" perf "$hz"
                slow[$k]="$(uw_slowdown "${with[$k]}" "${base[$k]}")"
                echo "    perf: ${cpu[$k]} s CPU (record ${p_rec_cpu[$k]} + report ${p_rep_cpu[$k]}; script ${p_script_cpu[$k]})," \
                    "$(mb "${rss[$k]}") MB, ${slow[$k]}% slower, complete stacks ${complete[$k]}/${samples[$k]}" >&2
                runs_table+=("| $name | $hz | $run | perf | ${cpu[$k]} (record ${p_rec_cpu[$k]} + report ${p_rep_cpu[$k]}; script ${p_script_cpu[$k]}) | $(mb "${rss[$k]}") (record $(mb "${p_rec_rss[$k]}"), report $(mb "${p_rep_rss[$k]}"), script $(mb "${p_script_rss[$k]}")) | ${base[$k]} → ${with[$k]} (${slow[$k]}%) | ${base_cpus[$k]} / ${wl_cpus[$k]} | ${base_other[$k]} / ${wl_other[$k]} | ${retakes[$k]} | ${complete[$k]} / ${samples[$k]} ($(uw_pct "${complete[$k]}" "${samples[$k]}")%) | ${p_mb[$k]} MB of data${p_lost[$k]:+; ${p_lost[$k]}} |")
            done
        done
        stop_pid "$w_pid"
    done

    # --- the 100 MB binary: clang-14 and libLLVM ----------------------------------------------------

    local clang_cmd=(clang-14 -O2 -c "$dir/big.c" -o /dev/null)

    # uw_busy_ticks: the machine's busy time so far, in clock ticks, from /proc/stat.
    uw_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

    # uw_wait_idle: waits, up to QUIET_WAIT seconds, until the CPUs are less than QUIET_PERCENT busy
    # (over 1 s), before a clang-14 measurement: nothing of this section runs then.
    uw_wait_idle() {
        local waited=0 busy
        busy="$(busy_percent 1)"
        while ((busy >= QUIET_PERCENT && waited < QUIET_WAIT)); do
            sleep 1
            waited=$((waited + 2))
            busy="$(busy_percent 1)"
        done
        ((busy < QUIET_PERCENT)) || echo "    warning: the CPUs are still ${busy}% busy after ${QUIET_WAIT}s; going on" >&2
    }

    # uw_clang_measure KEY TOOL: uw_clang, taken again (at most UW_RETRIES more times) when other
    # processes kept more than UW_MAX_OTHER CPUs busy while it ran.
    uw_clang_measure() {
        local k="$1" tool="$2" try
        retakes[$k]=0
        for try in $(seq 0 "$UW_RETRIES"); do
            uw_wait_idle
            uw_clang "$k" "$tool"
            [[ "$(verdict "${c_other[$k]} > $UW_MAX_OTHER")" == PASS ]] || return 0
            if ((try == UW_RETRIES)); then
                echo "    warning: other processes keep disturbing the measurements; keeping this one" >&2
                disturbed_kept=$((disturbed_kept + 1))
                retakes[$k]="$try, still disturbed"
                return 0
            fi
            echo "    other processes kept ${c_other[$k]} CPUs busy while clang-14 ran: taking it again" >&2
            retaken=$((retaken + 1))
            retakes[$k]=$((try + 1))
        done
    }

    # uw_clang KEY TOOL: clang-14 compiling big.c under GNU time, started in the background; once it
    # runs clang (not yet: the fork before exec), TOOL (alone, rprof or perf) records it with -p
    # until it exits. Its wall time against the run's "alone" one is the slowdown. c_other: how many
    # CPUs other processes kept busy meanwhile (the machine's busy time less clang-14's and the
    # tool's whole CPU time, per second of clang-14's wall time).
    uw_clang() {
        local k="$1" tool="$2" f="clang.${1// /.}" tp pid="" exe counts comments p kept=() b0 b1 tool_cpu=0
        echo "==> ${k##* }/$RUNS: clang-14 -O2 -c big.c, $tool" >&2
        b0="$(uw_busy_ticks)"
        /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.clang.time" "${clang_cmd[@]}" 2>"$dir/$f.clang.stderr" &
        tp=$!
        bench_pids+=("$tp")
        for _ in $(seq 1000); do
            pid="$(pgrep -P "$tp" | head -n 1 || true)"
            exe=""
            [[ -z "$pid" ]] || exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
            [[ "$exe" == */clang* ]] && break
            pid=""
            sleep 0.005
        done
        [[ -n "$pid" ]] || die "clang-14 did not start ($k)"
        case "$tool" in
        rprof)
            if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.time" \
                "$rprof" record -q -F 99 -p "$pid" -o "$dir/$f.pb.gz" 2>"$dir/$f.stderr"; then
                cat "$dir/$f.stderr" >&2
                die "rprof-bpf record -p (clang-14) failed ($k)"
            fi
            ;;
        perf)
            if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$f.record.time" \
                perf record --call-graph dwarf -F 99 -p "$pid" -o "$dir/$f.data" 2>"$dir/$f.record.stderr"; then
                cat "$dir/$f.record.stderr" >&2
                die "perf record -p (clang-14) failed ($k)"
            fi
            ;;
        esac
        wait "$tp" || die "clang-14 failed to compile $dir/big.c ($k)"
        b1="$(uw_busy_ticks)"
        for p in "${bench_pids[@]}"; do [[ "$p" == "$tp" ]] || kept+=("$p"); done
        bench_pids=("${kept[@]}")
        c_wall[$k]="$(field 1 "$dir/$f.clang.time")"
        case "$tool" in
        rprof) tool_cpu="$(uw_cpu "$dir/$f.time")" ;;
        perf) tool_cpu="$(uw_cpu "$dir/$f.record.time")" ;;
        esac
        c_other[$k]="$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" -v c="$(uw_cpu "$dir/$f.clang.time")" -v t="$tool_cpu" \
            -v w="${c_wall[$k]}" 'BEGIN { o = (d / hz - c - t) / w; printf "%.2f", o < 0 ? 0 : o }')"
        case "$tool" in
        rprof)
            cpu[$k]="$(uw_cpu "$dir/$f.time")"
            rss[$k]="$(field 4 "$dir/$f.time")"
            "$rprof" report "$dir/$f.pb.gz" --format folded --sample-index samples >"$dir/$f.folded" 2>/dev/null ||
                die "rprof-bpf report --format folded failed on $dir/$f.pb.gz ($k)"
            counts="$(uw_complete_folded "$dir/$f.folded")"
            complete[$k]="${counts% *}" samples[$k]="${counts#* }"
            comments="$(uw_comments "$dir/$f.pb.gz")"
            r_lost[$k]="$(uw_counter stack_samples_lost "$comments")"
            r_copy[$k]="$(uw_counter stack_copy_failed "$comments")"
            r_tables[$k]="$(grep -m 1 -E '^unwind tables: [0-9]+ built' <<<"$comments" | sed 's/^unwind tables: //' || true)"
            ;;
        perf) uw_perf_post "$k" "$f" ;;
        esac
        if [[ "$tool" != alone ]]; then
            slow[$k]="$(uw_slowdown "${c_wall[clang 99 alone ${k##* }]}" "${c_wall[$k]}")"
            echo "    clang-14 took ${c_wall[$k]} s (alone: ${c_wall[clang 99 alone ${k##* }]} s); $tool: ${cpu[$k]} s CPU," \
                "$(mb "${rss[$k]}") MB, complete stacks ${complete[$k]}/${samples[$k]}" >&2
        fi
    }

    local -A c_wall c_other slowest largest total
    local big_rows=() build_ms=() big_ms=() small_comments="" out comments line
    echo "==> clang-14 -O2 -c big.c once, to warm the caches" >&2
    "${clang_cmd[@]}" || die "clang-14 failed to compile $dir/big.c"
    for run in $(seq "$RUNS") small; do
        if [[ "$run" != small ]]; then
            k="clang 99 alone $run"
            uw_clang_measure "$k" alone
            runs_table+=("| clang-14 | 99 | $run | none (clang-14 alone) | – | – | took ${c_wall[$k]} s | – | – / ${c_other[$k]} | ${retakes[$k]} | – | – |")
            k="clang 99 rprof $run"
            uw_clang_measure "$k" rprof
            runs_table+=("| clang-14 | 99 | $run | rprof-bpf | ${cpu[$k]} | $(mb "${rss[$k]}") | took ${c_wall[$k]} s (${slow[$k]}%) | – | – / ${c_other[$k]} | ${retakes[$k]} | ${complete[$k]} / ${samples[$k]} ($(uw_pct "${complete[$k]}" "${samples[$k]}")%) | lost ${r_lost[$k]}, copy failed ${r_copy[$k]}; tables: ${r_tables[$k]:-none} |")
            k="clang 99 perf $run"
            uw_clang_measure "$k" perf
            runs_table+=("| clang-14 | 99 | $run | perf | ${cpu[$k]} (record ${p_rec_cpu[$k]} + report ${p_rep_cpu[$k]}; script ${p_script_cpu[$k]}) | $(mb "${rss[$k]}") (record $(mb "${p_rec_rss[$k]}"), report $(mb "${p_rep_rss[$k]}"), script $(mb "${p_script_rss[$k]}")) | took ${c_wall[$k]} s (${slow[$k]}%) | – | – / ${c_other[$k]} | ${retakes[$k]} | ${complete[$k]} / ${samples[$k]} ($(uw_pct "${complete[$k]}" "${samples[$k]}")%) | ${p_mb[$k]} MB of data; perf report took ${p_report_wall[$k]} s of wall time${p_lost[$k]:+; ${p_lost[$k]}} |")
        fi
        # The unwind tables, with the command rprof-bpf runs itself.
        local limit_args=() label="rprof-bpf record -q -F 99 -- clang-14 ..."
        if [[ "$run" == small ]]; then
            limit_args=(--max-unwind-memory "$UW_SMALL_LIMIT")
            label="rprof-bpf record -q -F 99 --max-unwind-memory $UW_SMALL_LIMIT -- clang-14 ..."
        fi
        out="$dir/clang.$run.pb.gz"
        uw_wait_idle
        echo "==> $run: $label" >&2
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/clang.cmd.$run.time" \
            "$rprof" record -q -F 99 "${limit_args[@]}" -o "$out" -- "${clang_cmd[@]}" 2>"$dir/clang.$run.stderr"; then
            cat "$dir/clang.$run.stderr" >&2
            die "rprof-bpf record -- clang-14 failed ($run)"
        fi
        comments="$(uw_comments "$out")"
        [[ -n "$comments" ]] || die "go tool pprof cannot read $out ($run)"
        [[ "$run" != small ]] || small_comments="$comments"
        grep -E '^unwind tables:' <<<"$comments" | sed 's/^/    /' >&2 || true
        "$rprof" report "$out" --format folded --sample-index samples >"$dir/clang.$run.folded" 2>/dev/null ||
            die "rprof-bpf report --format folded failed on $out ($run)"
        counts="$(uw_complete_folded "$dir/clang.$run.folded")"
        line="$(grep -m 1 -E '^unwind tables: slowest ' <<<"$comments" | sed 's/^unwind tables: slowest //' || true)"
        slowest["$run"]="${line:-not reported}"
        line="$(grep -m 1 -E '^unwind tables: largest ' <<<"$comments" | sed 's/^unwind tables: largest //' || true)"
        largest["$run"]="${line:-not reported}"
        line="$(grep -m 1 -E '^unwind tables: [0-9]+ built' <<<"$comments" | sed 's/^unwind tables: //' || true)"
        total["$run"]="${line:-not reported}"
        if [[ "$run" != small ]]; then
            line="$(sed -nE 's/.* in ([0-9]+) ms$/\1/p' <<<"${slowest[$run]}")"
            [[ -n "$line" ]] && build_ms+=("$line")
            # The largest file, with what it cost: indexing it and reading the functions samples touched.
            line="$(sed -nE 's/.* in ([0-9]+) ms$/\1/p' <<<"${largest[$run]}")"
            if [[ -n "$line" && "$(verdict "$(uw_file_mb "${largest[$run]}") >= $UW_BIG_FILE_MB")" == PASS ]]; then
                big_ms+=("$line")
            fi
        fi
        line="$(grep -E '^unwind tables: .*over --max-unwind-memory' <<<"$comments" | sed 's/^unwind tables: //' || true)"
        big_rows+=("| $run | \`rprof-bpf record -q -F 99${limit_args[*]:+ ${limit_args[*]}} -- clang-14 ...\` | $(field 1 "$dir/clang.cmd.$run.time") | $(uw_cpu "$dir/clang.cmd.$run.time") | $(mb "$(field 4 "$dir/clang.cmd.$run.time")") | ${counts% *} / ${counts#* } ($(uw_pct "${counts% *}" "${counts#* }")%) | ${total[$run]}; slowest ${slowest[$run]}; largest ${largest[$run]}${line:+; $line} |")
    done
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

    # --- results ------------------------------------------------------------------------------------

    local results=() ok_all=yes

    # uw_results KEY WHERE SAMPLES_NOTE: the result rows of one workload and frequency, from the
    # measurements keyed "KEY TOOL RUN".
    uw_results() {
        local key="$1" where="$2" note="$3" run r_share p_share r_cpu_m p_cpu_m limit ratio share_ok cpu_ok
        local -A sh=()
        # shellcheck disable=SC2034 # read by uw_m, through a nameref
        for run in $(seq "$RUNS"); do
            sh["rprof $run"]="$(uw_pct "${complete[$key rprof $run]}" "${samples[$key rprof $run]}")"
            sh["perf $run"]="$(uw_pct "${complete[$key perf $run]}" "${samples[$key perf $run]}")"
        done
        r_share="$(uw_m sh rprof)" p_share="$(uw_m sh perf)"
        share_ok="$(verdict "$r_share >= $p_share")"
        r_cpu_m="$(uw_m cpu "$key rprof")" p_cpu_m="$(uw_m cpu "$key perf")"
        limit="$(awk -v p="$p_cpu_m" 'BEGIN { printf "%.2f", p * 0.5 }')"
        ratio="$(awk -v r="$r_cpu_m" -v p="$p_cpu_m" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "n/a" }')"
        cpu_ok="$(verdict "$r_cpu_m <= $limit")"
        [[ "$share_ok" == PASS && "$cpu_ok" == PASS ]] || ok_all=no
        results+=("| $where | complete stacks (%) | $r_share | $p_share | ≥ perf's | $share_ok |")
        results+=("| $where | CPU time, user + sys (s) | $r_cpu_m | $p_cpu_m (record $(uw_m p_rec_cpu "$key perf") + report $(uw_m p_rep_cpu "$key perf"); perf script alone: $(uw_m p_script_cpu "$key perf")) | ≤ 0.5 × perf = $limit (ratio: $ratio) | $cpu_ok |")
        results+=("| $where | peak RSS (MB) | $(mb "$(uw_m rss "$key rprof")") | $(mb "$(uw_m rss "$key perf")") | none (reported) | – |")
        results+=("| $where | target's slowdown (%) | $(uw_m slow "$key rprof") | $(uw_m slow "$key perf") | none (reported) | – |")
        results+=("| $where | samples | $(uw_m samples "$key rprof") | $(uw_m samples "$key perf") | none (reported$note) | – |")
    }
    for di in "${!UW_DEPTHS[@]}"; do
        for hz in "${UW_HZ[@]}"; do
            uw_results "${UW_DEPTHS[$di]} $hz" \
                "${UW_DEPTH_NAMES[$di]} ($(awk -v b="${stack_bytes[$di]}" 'BEGIN { printf "%.1f", b / 1024 }') KiB), $hz Hz" \
                "; $hz × $UW_SECONDS × 2 = $((hz * UW_SECONDS * 2)) at most"
        done
    done
    uw_results "clang 99" "clang-14 (-p until it exits), 99 Hz" ""

    # The unwind tables of clang-14: the 100 MB file's build time and the memory bound.
    local build_m small_peak small_ok default_peak default_ok report_ok small_over
    build_m="$(median "${build_ms[@]}")"
    default_peak="$(sed -nE 's/.*peak ([0-9.]+) MiB.*/\1/p' <<<"${total[1]}")"
    small_peak="$(sed -nE 's/.*peak ([0-9.]+) MiB.*/\1/p' <<<"${total[small]}")"
    small_over="$(grep -E '^unwind tables: .*over --max-unwind-memory' <<<"$small_comments" | sed 's/^unwind tables: //' || true)"
    if [[ -n "$default_peak" ]]; then default_ok="$(verdict "$default_peak <= $UW_DEFAULT_LIMIT_MIB")"; else default_ok="FAIL (not reported)"; fi
    if [[ -n "$small_peak" ]]; then small_ok="$(verdict "$small_peak <= $UW_SMALL_LIMIT_MIB")"; else small_ok="FAIL (not reported)"; fi
    # A table over the small limit that was built all the same (and then dropped).
    local small_note="" small_table
    small_table="$(sed -nE 's/.*, ([0-9.]+) MiB table\).*/\1/p' <<<"${slowest[small]}")"
    if [[ -n "$small_table" ]] && [[ "$(verdict "$small_table > $UW_SMALL_LIMIT_MIB")" == PASS ]]; then
        small_note=" (with \`--max-unwind-memory $UW_SMALL_LIMIT\`, the slowest table built was still ${slowest[small]%% (*}'s
  $small_table MiB one, over the limit: built in full, then dropped)"
    fi
    local big_cell big_ok
    if ((${#big_ms[@]} > 0)); then
        big_cell="$(median "${big_ms[@]}") ms (median of the ${#big_ms[@]} default runs): ${largest[1]}"
        big_ok="PASS (reported)"
    else
        big_cell="not reported: the largest file was ${largest[1]}"
        big_ok="FAIL (not reported)"
    fi
    if [[ -n "$build_m" ]]; then report_ok="reported"; else report_ok="not reported"; fi

    {
        cat <<EOF
## Unwinding without frame pointers (issue 5)

$(section_header unwind)
- Peer: $(perf version 2>/dev/null), \`perf record --call-graph dwarf -F HZ -p PID -o FILE -- sleep $UW_SECONDS\`
  (copies $UW_PERF_DUMP bytes of stack per sample, its default), then \`perf report -i FILE --stdio > /dev/null\`, which
  unwinds and symbolizes: perf's cost is record + report. \`perf script -i FILE\` is timed apart (it
  unwinds too, and is what the complete stacks are counted from).
- rprof-bpf: \`rprof-bpf record -q -F HZ -p PID --seconds $UW_SECONDS -o FILE\`, its default \`--call-graph dwarf\`
  (copies $UW_STACK_COPY bytes of stack per sample and unwinds them while recording, with the
  binaries' \`.eh_frame\`, read one function at a time through \`.eh_frame_hdr\`, within \`--max-unwind-memory\`,
  default ${UW_DEFAULT_LIMIT_MIB}M).
- Workload: \`scripts/bench/unwind_work.c\` (\`unwind_work 0 DEPTH\`), built with \`gcc -O2 -g
  -fomit-frame-pointer -pthread\`; the distribution's libc has no frame pointers either. 2 threads,
  each looping: DEPTH frames of a recursion (\`descend\`, 272 bytes of stack each, not inlined, not
  tail calls), at the bottom of which it fills 32 ints and sorts them with libc's \`qsort\`, which
  calls back the comparator \`compare_ints\`: most samples land in libc's \`msort_with_tmp\` and in the
  comparator, below qsort's frames in libc. One process per depth, for all its runs:
  - shallow: DEPTH ${UW_DEPTHS[0]}, ${stack_bytes[0]} bytes of stack from \`thread_main\` to the comparator (measured by the workload)
  - deep: DEPTH ${UW_DEPTHS[1]}, ${stack_bytes[1]} bytes: more than perf's $UW_PERF_DUMP-byte copy holds, less than rprof-bpf's $UW_STACK_COPY
- Each run: for each of $(printf '%s and ' "${UW_HZ[@]}" | sed 's/ and $//') Hz, for each tool in turn (rprof-bpf, then perf), $UW_SETTLE s of rest, a baseline of
  $UW_SECONDS s with no profiler, then the $UW_SECONDS s recording. $RUNS runs of each; the medians are below.
- A real program: clang-14 compiling a generated file (\`clang-14 -O2 -c big.c -o /dev/null\`, big.c
  holding $UW_BIG_FUNCS small functions with loops, each calling the one before; about 5 s, one thread), whose
  \`$libllvm\` is $(awk -v b="$(stat -L -c %s "$libllvm" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f", b / 1e6 }') MB. After one compile to warm the caches, each run: clang-14
  alone, then recorded by each tool with \`-p PID\` from just after its exec until it exits (rprof-bpf
  \`record -q -F 99 -p PID\`; \`perf record --call-graph dwarf -F 99 -p PID\`, then \`perf report\`), its
  slowdown from its wall time against the alone run's; then for the unwind tables' numbers
  \`rprof-bpf record -q -F 99 -o FILE -- clang-14 ...\`, and after the runs once more with
  \`--max-unwind-memory $UW_SMALL_LIMIT\`.
- Contention: before the workload started, the CPUs were ${machine_busy}% busy with other work
  (measured over 2 s). Load average: $load_before before the runs, $load_after after them.
  The workload's 2 threads never block, so anything else that runs, the profiler included, takes
  CPU time from them. When other processes kept more than $UW_MAX_OTHER CPUs busy in a baseline, or in a
  recording beyond the profiler's own CPU time, that baseline and recording were taken again once
  the others had quieted down (waiting up to ${QUIET_WAIT} s), up to $UW_RETRIES times; the same for each run of
  clang-14 (taken again: $retaken; kept although still disturbed: $disturbed_kept).

### Results (median of $RUNS runs)

| workload, frequency | metric | rprof-bpf | perf --call-graph dwarf | target | result |
|---|---|---|---|---|---|
$(printf '%s\n' "${results[@]}")

The 100 MB binary: the unwind tables of \`rprof-bpf record -q -F 99 -o FILE -- clang-14 -O2 -c big.c -o /dev/null\`
(the profile's comments), $RUNS runs, then one with \`--max-unwind-memory $UW_SMALL_LIMIT\`:

| metric | value | target | result |
|---|---|---|---|
| time to prepare the slowest file (median of the default runs) | $build_m ms; run 1: ${slowest[1]} | none ($report_ok) | – |
| time to prepare a file of $UW_BIG_FILE_MB MB or more (index it, read the functions samples touched) | $big_cell | reported | $big_ok |
| all unwind tables, default limit (run 1) | ${total[1]} | peak ≤ the limit (${UW_DEFAULT_LIMIT_MIB} MiB) | $default_ok |
| all unwind tables, \`--max-unwind-memory $UW_SMALL_LIMIT\` | ${total[small]}${small_over:+; $small_over} | peak ≤ $UW_SMALL_LIMIT_MIB MiB | $small_ok |
| clang-14's wall time alone / under rprof-bpf -p / under perf -p (median, s) | $(uw_m c_wall "clang 99 alone") / $(uw_m c_wall "clang 99 rprof") / $(uw_m c_wall "clang 99 perf") | none (reported) | – |

### How each number is measured

- **complete stacks**: the share of samples whose stack reaches the thread's entry: \`main\` (or
  glibc's \`__libc_start_call_main\`, which calls it) or \`start_thread\`. For rprof-bpf, from
  \`rprof-bpf report FILE --format folded --sample-index samples\`; for perf, from the blocks of
  \`perf script -i FILE\`, one per sample. A stack that stops early (the copy of the stack ended, or a
  frame could not be unwound) does not reach it.
- **CPU time**: user + sys from GNU \`/usr/bin/time\` over the whole process: for rprof-bpf one
  \`record\` from exec to exit, which includes the preparation of the unwind tables (built while it
  records), the unwinding, symbolization and writing the file. For perf, \`perf record\` plus \`perf
  report\`; \`perf script\` is shown apart. The time the BPF program, or perf's kernel side, spends
  copying stacks in the sampled threads' interrupts is charged to those threads, and shows in the
  slowdown instead. GNU time reports 10 ms steps.
- **peak RSS**: GNU time's \`%M\`. For perf, the larger of \`perf record\`'s and \`perf report\`'s.
- perf's cost varies from run to run at 99 Hz: when any sample has kernel frames, \`perf record\` and
  \`perf report\` read \`/proc/kallsyms\`, about 0.1 s of CPU time and 10 MB more here; the workload
  is almost always in user space, so some runs have none (the last table shows each run). On
  clang-14, \`perf report\` starts an \`addr2line\` per library to find inlined frames and takes about
  30 s of wall time; its CPU time is what GNU time counts for perf and the children it waited for.
- **target's slowdown**: 1 − (the workload's rounds per second during the recording) / (its rounds
  per second in the baseline taken right before), from the lines it prints every 100 ms. rprof-bpf's
  window starts when it says it is attached (\`RPROF_TIMINGS=1\`, \`timing: attach_ms\`) and lasts
  $UW_SECONDS s; perf's is the life of the command it runs (\`sleep $UW_SECONDS\`, inside a \`bash -c\` that notes
  the time before and after it). For clang-14: 1 − (its wall time alone) / (its wall time while
  recorded), from GNU time around it.
- **workload's CPUs** and **other CPUs** (last table): over the same windows, the workload's own CPU
  time (\`CLOCK_PROCESS_CPUTIME_ID\`), and the machine's busy time (\`/proc/stat\`) less the
  workload's, per second of the window, both from the lines the workload prints every 100 ms. While
  recording, the other CPUs include the profiler's own. For clang-14, the other CPUs are the
  machine's busy time while it ran, less its own CPU time and the tool's, per second of its wall
  time. **retaken**: how many times that measurement was taken again because other processes
  disturbed it.
- **samples**: the samples in the file (\`samples\` column of rprof-bpf's profile; perf script's blocks).
- **the 100 MB binary**: the profile's comments (\`go tool pprof -raw FILE | grep Comment\`): \`unwind
  tables: N built in MS ms, peak MIB (limit ...), ...; K of the files read by function through .eh_frame_hdr
  (F functions)\`, \`unwind tables: slowest FILE (SIZE file, ROWS table) in MS ms\` and the same for the
  largest file. A file's time is its preparation (mapping it, finding its \`.eh_frame_hdr\`, or building a
  whole table for a file without one) plus the functions read from it as samples reached them. The
  peak counts the rows held$small_note, not the rest of rprof-bpf's memory (peak RSS, in the
  results table and the last one). In the last table, with
  the command run by rprof-bpf, GNU time's CPU and RSS cover rprof-bpf and clang-14 together (RSS: the
  larger of the two); the \`-p\` runs above measure rprof-bpf alone. The complete stacks of clang-14
  are counted as above; many of its stacks are deeper than the $UW_STACK_COPY bytes copied.

### Every run

| workload | Hz | run | tool | CPU s | peak RSS (MB) | rounds/s: baseline → recording (slowdown) | workload's CPUs: baseline / recording | other CPUs: baseline / recording | retaken | complete stacks | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${runs_table[@]}")

The 100 MB binary's unwind tables (wall, CPU and RSS of rprof-bpf and clang-14 together):

| run | what | wall s | CPU s | peak RSS (MB) | complete stacks | unwind tables (the profile's comments) |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${big_rows[@]}")
EOF
    } >"$out_md"
    [[ "$ok_all" == yes ]] || echo "==> unwind: some targets were missed (see the table)" >&2
}
