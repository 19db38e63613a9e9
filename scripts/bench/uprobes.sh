# The uprobes section of scripts/bench.sh, which sources this file and calls bench_uprobes; it is not
# a script of its own. It uses bench.sh's helpers and variables (rprof, work, RUNS, bench_pids, ...).
# Its own helpers and constants start with up_ / UP_, so that they clash with no other section's.
#
# Issue 4: uprobes cost a trap per call, so this measures how much rprof-bpf's alloc and mutex
# profiles slow their target down, against bpftrace doing comparable work on the same functions in
# the same run, and how the alloc profile's overhead grows with the target's calls per second.
#
#   malloc   scripts/bench/allocs.c: UP_THREADS threads pinned together to CPU 0, each freeing and
#            allocating blocks of mixed sizes, throttled to each of UP_RATES calls per second per
#            thread (0: unthrottled), one process per rate.
#              rprof-bpf  rprof-bpf record --type alloc -p PID --seconds S
#              bpftrace   uprobes on malloc, calloc, realloc and free of the same libc, uretprobes on
#                         malloc, calloc and realloc, doing what rprof-bpf's BPF side does (below)
#              floor      (unthrottled only) the same probes in bpftrace with empty programs: the
#                         cost of the traps themselves
#   lock     scripts/bench/contend.c: UP_LOCK_THREADS threads on one pthread mutex, on both CPUs.
#              rprof-bpf  rprof-bpf record --type mutex -p PID --seconds S
#              bpftrace   tracepoint:syscalls:sys_{enter,exit}_futex for the pid, timing each wait
#
# Each of RUNS runs measures each workload with both tools, alternating, each recording right
# after a baseline with no profiler; the slowdown is 1 - throughput while recording / baseline.
# The profilers themselves are pinned to CPU 1 (taskset), away from the malloc workload.

UP_WINDOW=3          # seconds of each measured window, baseline and recording alike
UP_LEAD=0.5          # seconds from a tool being attached to the start of its measured window
UP_TAIL=1            # seconds a tool keeps recording after the end of its window
UP_SETTLE=1          # seconds of rest before each baseline
UP_RATES=(10000 100000 1000000 0) # malloc workload: calls per second per thread (0: unthrottled)
UP_HEADLINE_RATE=100000 # the rate whose slowdown is held to the target
UP_THREADS=2         # malloc workload threads, all on CPU 0
UP_LOCK_THREADS=4    # lock workload threads, on both CPUs
UP_LOCK_CS=500       # lock workload: steps of busy work inside the lock (about 0.8 us here)
UP_LOCK_OUT=500      # and outside it
UP_MAX_RATIO=1.2     # target: rprof-bpf's overhead <= this x bpftrace's
UP_NOISE=1           # percentage points: slowdowns this small are within the noise
UP_MIN_SHARE=0.95    # a malloc baseline in which the workload got less of CPU 0 was disturbed:
UP_RETRIES=3         # take it again, at most this many more times
UP_SAMPLE_BYTES=524288 # rprof-bpf's default --alloc-sample-bytes, used by the bpftrace script too
UP_BLOCK_NS=1000000  # rprof-bpf's default --block-rate (1 ms), used by the bpftrace script too
UP_TRACEFS=/sys/kernel/tracing

# up_now_ns: the wall clock in nanoseconds, the clock the workloads' log lines carry (CLOCK_REALTIME).
up_now_ns() {
    local t="$EPOCHREALTIME"
    echo "${t//[!0-9]/}000"
}

# up_ns SECONDS: a (fractional) number of seconds in nanoseconds.
up_ns() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1e9 }'; }

# up_rate LOG FROM_NS TO_NS: calls per second in a workload's log over the window, from the first
# line at or after FROM_NS to the last line at or before TO_NS; "" when the window holds no interval.
up_rate() {
    awk -v a="$2" -v b="$3" '
        $1 + 0 >= a + 0 && !have { t0 = $1; c0 = $2; have = 1 }
        $1 + 0 <= b + 0 { t1 = $1; c1 = $2 }
        END { if (have && t1 > t0) printf "%.0f", (c1 - c0) / ((t1 - t0) / 1e9) }' "$1"
}

# up_slowdown WITH BASE: 100 x (1 - WITH / BASE), one decimal; negative when WITH was faster.
up_slowdown() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * (1 - w / b) }'; }

# up_added_ns WITH BASE: the time each call took on top of the baseline's, in ns. The malloc
# workload keeps exactly one CPU busy, so a call's share of it is 1 / calls per second.
up_added_ns() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.0f", (1 / w - 1 / b) * 1e9 }'; }

# up_ratio R P: R / P, two decimals; n/a when P is not above 0.
up_ratio() { awk -v r="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "n/a" }'; }

# up_ratio_cell R P: up_ratio for the tables, but "≈ 0" when R is within UP_NOISE points of zero
# and P is not, since the ratio of a noise-sized number (maybe negative) says only that.
up_ratio_cell() {
    if awk -v r="$1" -v p="$2" -v n="$UP_NOISE" 'BEGIN { exit !(r < n && r > -n && p >= n) }'; then
        echo "≈ 0"
    else
        up_ratio "$1" "$2"
    fi
}

# up_judge R P: whether rprof-bpf's slowdown R (or cost) is within UP_MAX_RATIO x the peer's P.
# When both are within UP_NOISE points of zero the ratio means nothing, and it passes; when only
# the peer's is, it passes if R is within UP_NOISE points of it.
up_judge() {
    local r="$1" p="$2"
    if awk -v r="$r" -v p="$p" -v n="$UP_NOISE" 'BEGIN { exit !(p < n) }'; then
        if [[ "$(verdict "$r <= $p + $UP_NOISE")" == PASS ]]; then
            echo "PASS (both within the noise: ratio not meaningful)"
        else
            echo "FAIL (the peer's is within the noise, rprof-bpf's is not)"
        fi
    else
        verdict "$r <= $UP_MAX_RATIO * $p"
    fi
}

# up_thousands N: N with spaces between groups of three digits (123456 -> 123 456).
up_thousands() {
    [[ -n "$1" && "$1" != n/a ]] || { echo n/a; return; }
    awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""
        while (length(s) > 3) { o = " " substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
        print s o }'
}

# up_ticks PID: the CPU time (user + sys, in clock ticks) a process has used so far.
up_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# up_cpus TICKS FROM_NS TO_NS: how many CPUs' worth TICKS is over the window.
up_cpus() { awk -v t="$1" -v hz="$CLK_TCK" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", t / hz / ((b - a) / 1e9) }'; }

# up_switches PID: voluntary context switches of all of a process's threads so far; in the lock
# workload, nearly all of them are waits in futex(FUTEX_WAIT) (the reporter adds 10 a second).
up_switches() {
    cat "/proc/$1/task/"*/status 2>/dev/null | awk '/^voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# up_per_second N FROM_NS TO_NS: N over the window, per second.
up_per_second() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }'; }

# up_rate_name RATE: how the tables call a malloc workload rate.
up_rate_name() {
    if [[ "$1" == 0 ]]; then echo "unthrottled"; else echo "$(up_thousands "$1") calls/s per thread"; fi
}

# up_alloc_script PID LIBC: the bpftrace program of the malloc workload. Per allocation
# call, what rprof-bpf's BPF side does: the size kept per thread on entry and read back on return,
# a per-thread count of bytes, and for one allocation per UP_SAMPLE_BYTES bytes (by that count,
# where rprof-bpf draws at random with the same mean) its user stack, counted in a map, and its
# block in a table of live blocks. Per free: a delete from that table. It runs until SIGINT.
up_alloc_script() {
    local pid="$1" libc="$2"
    cat <<EOF
uprobe:$libc:malloc /pid == $pid/ { @size[tid] = arg0; }
uprobe:$libc:calloc /pid == $pid/ { @size[tid] = arg0 * arg1; }
uprobe:$libc:realloc /pid == $pid/ { delete(@live[arg0]); @size[tid] = arg1; }
uretprobe:$libc:malloc, uretprobe:$libc:calloc, uretprobe:$libc:realloc /pid == $pid/ {
    \$size = @size[tid];
    delete(@size[tid]);
    @bytes[tid] = @bytes[tid] + \$size;
    if (@bytes[tid] >= $UP_SAMPLE_BYTES) {
        @bytes[tid] = @bytes[tid] - $UP_SAMPLE_BYTES;
        @live[retval] = \$size;
        @stacks[ustack] = count();
        @sampled = count();
    }
}
uprobe:$libc:free /pid == $pid/ { delete(@live[arg0]); }
END { clear(@size); clear(@bytes); clear(@live); }
EOF
}

# up_floor_script LIBC: the same probes as up_alloc_script, with nothing in them: what the traps
# and a BPF program that does nothing cost, the floor under both tools. For the -p PID given to
# bpftrace only.
up_floor_script() {
    local libc="$1"
    cat <<EOF
uprobe:$libc:malloc, uprobe:$libc:calloc, uprobe:$libc:realloc, uprobe:$libc:free {}
uretprobe:$libc:malloc, uretprobe:$libc:calloc, uretprobe:$libc:realloc {}
EOF
}

# up_tool_name TOOL: how the tables call it.
up_tool_name() {
    case "$1" in
    rprof) echo "rprof-bpf" ;;
    bpftrace) echo "bpftrace" ;;
    floor) echo "empty probes (bpftrace)" ;;
    esac
}

# up_lock_script PID: the bpftrace program of the lock workload. For each futex wait
# (FUTEX_WAIT or FUTEX_WAIT_BITSET, private or not) of the pid: its start kept per thread, its
# length counted and summed, and for one wait per UP_BLOCK_NS of waiting (by a per-thread sum,
# where rprof-bpf draws at random with the same mean) its user stack counted in a map. It runs
# until SIGINT.
up_lock_script() {
    local pid="$1"
    cat <<EOF
tracepoint:syscalls:sys_enter_futex /pid == $pid && ((args->op & 127) == 0 || (args->op & 127) == 9)/ {
    @start[tid] = nsecs;
}
tracepoint:syscalls:sys_exit_futex /pid == $pid && @start[tid]/ {
    \$wait = nsecs - @start[tid];
    delete(@start[tid]);
    @waits = count();
    @wait_ns = sum(\$wait);
    @waited[tid] = @waited[tid] + \$wait;
    if (@waited[tid] >= $UP_BLOCK_NS) {
        @waited[tid] = @waited[tid] - $UP_BLOCK_NS;
        @stacks[ustack] = count();
        @sampled = count();
    }
}
END { clear(@start); clear(@waited); }
EOF
}

# bench_uprobes OUT: runs the section and writes its part of BENCHMARKS.md to OUT.
bench_uprobes() {
    local out_md="$1" dir="$work/uprobes"
    rm -rf "$dir"
    mkdir -p "$dir"
    command -v bpftrace >/dev/null || die "bpftrace is missing (scripts/setup.sh installs it)"
    command -v bpftool >/dev/null || die "bpftool is missing (scripts/setup.sh installs it)"
    echo "==> building the malloc and lock workloads" >&2
    local prog
    for prog in allocs contend; do
        clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wall -pthread \
            -o "$dir/$prog" "scripts/bench/$prog.c"
    done

    # bpftrace's tracepoints need tracefs; rprof-bpf needs none (tp_btf and uprobes).
    local tracefs_note
    if mountpoint -q "$UP_TRACEFS"; then
        tracefs_note="tracefs was already mounted at \`$UP_TRACEFS\`"
    else
        echo "==> mounting tracefs at $UP_TRACEFS for bpftrace's syscall tracepoints" \
            "(it is unmounted again at the end)" >&2
        mount -t tracefs nodev "$UP_TRACEFS" ||
            die "could not mount tracefs at $UP_TRACEFS, which bpftrace needs for its tracepoints"
        mounted_tracefs="$UP_TRACEFS"
        tracefs_note="tracefs was not mounted, so the script mounted it (\`mount -t tracefs nodev $UP_TRACEFS\`) for the whole section and unmounted it at the end; rprof-bpf does not need it"
    fi

    wait_for_quiet

    # Every measurement, keyed "CONFIG TOOL RUN"; CONFIG is a malloc rate or "lock".
    local -A base with slow added share rec_share cpu rss events events_note waits_base waits_with attach stop
    local runs_table=() summaries=() base_shares=() retaken=0
    local load_before load_after
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    local rec_seconds cpu_lock="0-$(($(nproc) - 1))"
    rec_seconds="$(awk -v l="$UP_LEAD" -v w="$UP_WINDOW" -v t="$UP_TAIL" 'BEGIN { print l + w + t }')"

    # The workload being measured: its pid, log, and whether its baselines must use all of CPU 0.
    local w_pid w_log w_cpu_bound

    # up_start_workload NAME CPUS COMMAND...: starts a workload pinned to CPUS, logging to NAME.log.
    up_start_workload() {
        local name="$1" cpus="$2"
        shift 2
        w_log="$dir/$name.log"
        taskset -c "$cpus" "$@" >"$w_log" 2>"$dir/$name.stderr" &
        w_pid=$!
        bench_pids+=("$w_pid")
        sleep 1.5 # it sizes its busy work and gets going
        kill -0 "$w_pid" 2>/dev/null || {
            cat "$dir/$name.stderr" >&2
            die "the workload $name did not start"
        }
        [[ -s "$w_log" ]] || die "the workload $name logs nothing"
        sed 's/^/    /' "$dir/$name.stderr" >&2
    }

    # up_baseline KEY: the workload's throughput over a window with no profiler. A CPU-bound one
    # (the malloc workload) is measured again when other work took some of its CPU.
    up_baseline() {
        local k="$1" from to t v try s
        for try in $(seq 0 "$UP_RETRIES"); do
            sleep "$UP_SETTLE"
            t="$(up_ticks "$w_pid")" v="$(up_switches "$w_pid")"
            from="$(up_now_ns)"
            sleep "$UP_WINDOW"
            to="$(up_now_ns)"
            s="$(up_cpus $(($(up_ticks "$w_pid") - t)) "$from" "$to")"
            waits_base[$k]="$(up_per_second $(($(up_switches "$w_pid") - v)) "$from" "$to")"
            base[$k]="$(up_rate "$w_log" "$from" "$to")"
            [[ -n "${base[$k]}" ]] || die "no baseline throughput in $w_log"
            share[$k]="$s"
            echo "    baseline: $(up_thousands "${base[$k]}")/s; the workload got $s CPUs" >&2
            [[ "$w_cpu_bound" == yes && "$(verdict "$s >= $UP_MIN_SHARE")" == FAIL ]] || break
            ((try < UP_RETRIES)) || {
                echo "    warning: other work keeps disturbing the baselines; keeping this one" >&2
                break
            }
            echo "    other work took CPU time from the workload: taking the baseline again" >&2
            retaken=$((retaken + 1))
        done
        [[ "$w_cpu_bound" != yes ]] || base_shares+=("$s")
    }

    # up_window KEY FROM_NS TICKS0 SWITCHES0 T_START T_END: the throughput in the measured window
    # that starts at FROM_NS (the recording ended at T_END), the slowdown against the baseline,
    # and over the tool's whole run, from T_START (when TICKS0 and SWITCHES0 were read) to its exit
    # (now), the CPUs the workload got and its voluntary context switches per second.
    up_window() {
        local k="$1" from="$2" t0="$3" v0="$4" t_start="$5" t_end="$6" to now
        to=$((from + $(up_ns "$UP_WINDOW")))
        ((t_end >= to)) || die "the recording ended $(((to - t_end) / 1000000)) ms before the end of its measured window"
        with[$k]="$(up_rate "$w_log" "$from" "$to")"
        [[ -n "${with[$k]}" ]] || die "no throughput in $w_log while recording"
        slow[$k]="$(up_slowdown "${with[$k]}" "${base[$k]}")"
        added[$k]="$(up_added_ns "${with[$k]}" "${base[$k]}")"
        echo "    recording: $(up_thousands "${with[$k]}")/s, ${slow[$k]}% slower" >&2
        now="$(up_now_ns)"
        rec_share[$k]="$(up_cpus $(($(up_ticks "$w_pid") - t0)) "$t_start" "$now")"
        waits_with[$k]="$(up_per_second $(($(up_switches "$w_pid") - v0)) "$t_start" "$now")"
    }

    # up_rprof KEY TYPE: one rprof-bpf recording of the workload, pinned to CPU 1.
    up_rprof() {
        local k="$1" type="$2" f="${1// /.}" t0 ticks v0 summary n
        local out="$dir/$f.pb.gz" err="$dir/$f.stderr" tm="$dir/$f.time"
        echo "==> ${k##* }/$RUNS: rprof-bpf record --type $type -p $w_pid --seconds $rec_seconds" >&2
        ticks="$(up_ticks "$w_pid")" v0="$(up_switches "$w_pid")"
        t0="$(up_now_ns)"
        if ! RPROF_TIMINGS=1 taskset -c 1 /usr/bin/time -f '%e %U %S %M' -o "$tm" \
            "$rprof" record --type "$type" -p "$w_pid" --seconds "$rec_seconds" -o "$out" 2>"$err"; then
            cat "$err" >&2
            die "rprof-bpf record --type $type failed ($k); its stderr is above"
        fi
        grep -v '^timing:' "$err" | sed 's/^/    /' >&2 || true
        attach[$k]="$(timing attach_ms "$err")"
        [[ -n "${attach[$k]}" ]] || die "rprof-bpf printed no timing: attach_ms ($k)"
        stop[$k]="$(timing write_ms "$err")"
        [[ -n "${stop[$k]}" ]] || stop[$k]="?"
        # The recording runs rec_seconds from attach_ms after t0 (a few ms later, from its start).
        up_window "$k" $((t0 + attach[$k] * 1000000 + $(up_ns "$UP_LEAD"))) "$ticks" "$v0" \
            "$t0" $((t0 + attach[$k] * 1000000 + $(up_ns "$rec_seconds")))
        summary="$(grep -E "^rprof-bpf: $type:" "$err" | head -n 1 || true)"
        [[ -n "$summary" ]] || die "rprof-bpf printed no $type summary line ($k)"
        summaries+=("$summary")
        # "rprof-bpf: alloc: N sampled allocations in 4.50s, ..." / "rprof-bpf: mutex: N lock waits in ..."
        n="$(sed -nE "s/^rprof-bpf: $type: ([0-9,]+) .*/\1/p" <<<"$summary" | tr -d ,)"
        events[$k]="${n:-?}"
        events_note[$k]="$(sed -nE 's/.* in [0-9.]+s, ([^;]*);.*/\1/p' <<<"$summary")"
        [[ -n "${events_note[$k]}" ]] || events_note[$k]="–"
        [[ "${events[$k]}" != 0 ]] || echo "    warning: rprof-bpf recorded nothing ($k)" >&2
        cpu[$k]="$(add "$(field 2 "$tm")" "$(field 3 "$tm")")"
        rss[$k]="$(field 4 "$tm")"
    }

    # up_bpftrace KEY SCRIPT [OPTION...]: one bpftrace run against the workload, pinned to CPU 1.
    # Its window starts UP_LEAD after every probe is seen attached (bpftool perf), and it gets
    # SIGINT rec_seconds after that.
    up_bpftrace() {
        local k="$1" script="$2" f="${1// /.}" t0 t_att t_end tpid bpid="" want have n ticks v0 ok=""
        shift 2
        local out="$dir/$f.out" err="$dir/$f.stderr" tm="$dir/$f.time"
        # One line may name several probes ("uretprobe:LIBC:malloc, uretprobe:LIBC:calloc").
        want="$(grep -oE '(uprobe|uretprobe|tracepoint):[^ ,{]+' "$script" | wc -l || true)"
        ((want > 0)) || die "no probes found in $script"
        echo "==> ${k##* }/$RUNS: bpftrace $* $script ($want probes)" >&2
        ticks="$(up_ticks "$w_pid")" v0="$(up_switches "$w_pid")"
        t0="$(up_now_ns)"
        taskset -c 1 /usr/bin/time -f '%e %U %S %M' -o "$tm" bpftrace "$@" "$script" >"$out" 2>"$err" &
        tpid=$!
        bench_pids+=("$tpid")
        # "Attaching N probes..." comes before the attaching itself: count the attached probes.
        for _ in $(seq 600); do
            [[ -n "$bpid" ]] || bpid="$(pgrep -P "$tpid" -x bpftrace || true)"
            if [[ -n "$bpid" ]] && grep -q '^Attaching' "$out"; then
                have="$(bpftool perf show 2>/dev/null | grep -E "^pid $bpid " |
                    grep -cE 'uprobe|uretprobe|tracepoint' || true)"
                if ((have >= want)); then ok=yes; break; fi
            fi
            kill -0 "$tpid" 2>/dev/null || break
            sleep 0.05
        done
        t_att="$(up_now_ns)"
        if [[ -z "$ok" ]]; then
            stop_pid "$tpid"
            cat "$out" "$err" >&2
            die "bpftrace did not attach its $want probes within 30 s ($k); its output is above"
        fi
        attach[$k]="$(((t_att - t0) / 1000000))"
        sleep "$rec_seconds"
        t_end="$(up_now_ns)"
        # On SIGINT it detaches its probes and prints its maps, symbolizing the stacks, and exits.
        # bpftrace 0.17 can miss a SIGINT and go on waiting for events that never come (these
        # scripts print nothing until the end), so when it has printed nothing 5 s later it gets
        # another one. Not sooner: a second SIGINT while it detaches or prints kills it.
        local i size
        size="$(stat -c %s "$out")"
        kill -INT "$bpid"
        for i in $(seq 600); do
            sleep 0.1
            kill -0 "$bpid" 2>/dev/null || break
            ((i % 50)) && continue
            [[ "$(stat -c %s "$out")" == "$size" ]] || continue
            sigints=$((sigints + 1))
            kill -INT "$bpid" 2>/dev/null || true
        done
        ! kill -0 "$bpid" 2>/dev/null || die "bpftrace did not exit within 60 s of SIGINT ($k)"
        if ! wait "$tpid"; then
            cat "$out" "$err" >&2
            die "bpftrace failed ($k); its output is above"
        fi
        stop[$k]="$((($(up_now_ns) - t_end) / 1000000))"
        local p kept=()
        for p in "${bench_pids[@]}"; do [[ "$p" == "$tpid" ]] || kept+=("$p"); done
        bench_pids=("${kept[@]}")
        up_window "$k" $((t_att + $(up_ns "$UP_LEAD"))) "$ticks" "$v0" "$t0" "$t_end"
        n="$(sed -nE 's/^@sampled: ([0-9]+).*/\1/p' "$out")"
        events[$k]="${n:-0}"
        n="$(sed -nE 's/^@waits: ([0-9]+).*/\1/p' "$out")"
        if [[ -n "$n" ]]; then events_note[$k]="futex waits: $(up_thousands "$n")"; else events_note[$k]="–"; fi
        # bpftrace 0.17 always says it "couldn't set RLIMIT_MEMLOCK", which this kernel no longer
        # uses for BPF memory; anything else it says goes into the table.
        n="$(grep -v "couldn't set RLIMIT_MEMLOCK" "$err" | head -c 200 | tr '\n|' '  ' || true)"
        [[ -z "$n" ]] || events_note[$k]+="; stderr: $n"
        cpu[$k]="$(add "$(field 2 "$tm")" "$(field 3 "$tm")")"
        rss[$k]="$(field 4 "$tm")"
    }

    local rate run tool tools k libc sigints=0
    for rate in "${UP_RATES[@]}"; do
        echo "==> malloc workload: $UP_THREADS threads on CPU 0, $(up_rate_name "$rate")" >&2
        up_start_workload "allocs.$rate" 0 "$dir/allocs" "$rate" "$UP_THREADS"
        w_cpu_bound=yes
        libc="$(awk '$6 ~ /\/libc\.so\.6$/ { print $6; exit }' "/proc/$w_pid/maps")"
        [[ -n "$libc" ]] || die "cannot find the malloc workload's libc in /proc/$w_pid/maps"
        up_alloc_script "$w_pid" "$libc" >"$dir/allocs.$rate.bt"
        up_floor_script "$libc" >"$dir/floor.bt"
        tools=(rprof bpftrace)
        [[ "$rate" != 0 ]] || tools+=(floor)
        for run in $(seq "$RUNS"); do
            for tool in "${tools[@]}"; do
                kill -0 "$w_pid" 2>/dev/null || die "the malloc workload ($w_pid) died"
                k="$rate $tool $run"
                echo "==> $(up_rate_name "$rate"), run $run/$RUNS, $tool: baseline" >&2
                up_baseline "$k"
                case "$tool" in
                rprof) up_rprof "$k" alloc ;;
                bpftrace) up_bpftrace "$k" "$dir/allocs.$rate.bt" -p "$w_pid" ;;
                floor) up_bpftrace "$k" "$dir/floor.bt" -p "$w_pid" ;;
                esac
                runs_table+=("| $(up_rate_name "$rate") | $run | $(up_tool_name "$tool") | $(up_thousands "${base[$k]}") | $(up_thousands "${with[$k]}") | ${slow[$k]}% | ${added[$k]} | ${share[$k]} / ${rec_share[$k]} | ${attach[$k]} / ${stop[$k]} | ${cpu[$k]} | $(mb "${rss[$k]}") | $(up_thousands "${events[$k]}") | ${events_note[$k]} |")
            done
        done
        stop_pid "$w_pid"
    done

    echo "==> lock workload: $UP_LOCK_THREADS threads on one mutex, CPUs $cpu_lock" >&2
    up_start_workload contend "$cpu_lock" "$dir/contend" "$UP_LOCK_THREADS" "$UP_LOCK_CS" "$UP_LOCK_OUT"
    w_cpu_bound=no
    up_lock_script "$w_pid" >"$dir/contend.bt"
    for run in $(seq "$RUNS"); do
        for tool in rprof bpftrace; do
            kill -0 "$w_pid" 2>/dev/null || die "the lock workload ($w_pid) died"
            k="lock $tool $run"
            echo "==> lock workload, run $run/$RUNS, $tool: baseline" >&2
            up_baseline "$k"
            case "$tool" in
            rprof) up_rprof "$k" mutex ;;
            bpftrace) up_bpftrace "$k" "$dir/contend.bt" ;;
            esac
            runs_table+=("| lock | $run | $(up_tool_name "$tool") | $(up_thousands "${base[$k]}") | $(up_thousands "${with[$k]}") | ${slow[$k]}% | – | ${share[$k]} / ${rec_share[$k]} | ${attach[$k]} / ${stop[$k]} | ${cpu[$k]} | $(mb "${rss[$k]}") | $(up_thousands "${events[$k]}") | ${events_note[$k]}; waits/s $(up_thousands "${waits_base[$k]}") → $(up_thousands "${waits_with[$k]}") |")
        done
    done
    stop_pid "$w_pid"
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ -n "$mounted_tracefs" ]]; then
        umount "$mounted_tracefs" ||
            echo "    warning: could not unmount $mounted_tracefs, which this section mounted" >&2
        mounted_tracefs=""
    fi

    # --- results ----------------------------------------------------------------------------------

    # up_m ARRAY CONFIG TOOL: the median over the runs of one value.
    up_m() {
        local -n values="$1"
        local r vs=()
        for r in $(seq "$RUNS"); do vs+=("${values["$2 $3 $r"]}"); done
        median "${vs[@]}"
    }
    # up_pct V: V with a % sign, one decimal.
    up_pct() { awk -v v="$1" 'BEGIN { printf "%.1f%%", v }'; }

    local h_r h_p h_ok l_r l_p l_ok c_r c_p c_ok
    h_r="$(up_m slow "$UP_HEADLINE_RATE" rprof)" h_p="$(up_m slow "$UP_HEADLINE_RATE" bpftrace)"
    h_ok="$(up_judge "$h_r" "$h_p")"
    l_r="$(up_m slow lock rprof)" l_p="$(up_m slow lock bpftrace)"
    l_ok="$(up_judge "$l_r" "$l_p")"
    # The cost per call, from the unthrottled runs (the most calls, so the least noise).
    c_r="$(up_m added 0 rprof)" c_p="$(up_m added 0 bpftrace)"
    c_ok="$(verdict "$c_r <= $UP_MAX_RATIO * $c_p")"

    local f_slow f_added r_beyond p_beyond
    f_slow="$(up_m slow 0 floor)" f_added="$(up_m added 0 floor)"
    r_beyond="$(awk -v a="$c_r" -v f="$f_added" 'BEGIN { printf "%.0f", a - f }')"
    p_beyond="$(awk -v a="$c_p" -v f="$f_added" 'BEGIN { printf "%.0f", a - f }')"

    local rate_rows=() name
    for rate in "${UP_RATES[@]}"; do
        name="$(up_rate_name "$rate")"
        rate_rows+=("| $name | $(up_thousands "$(up_m base "$rate" rprof)") | $(up_pct "$(up_m slow "$rate" rprof)") | $(up_pct "$(up_m slow "$rate" bpftrace)") | $(up_ratio_cell "$(up_m slow "$rate" rprof)" "$(up_m slow "$rate" bpftrace)") | $(up_m added "$rate" rprof) | $(up_m added "$rate" bpftrace) | $(up_ratio "$(up_m added "$rate" rprof)" "$(up_m added "$rate" bpftrace)") |")
    done

    local libc_version bpftrace_version
    libc_version="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $NF }')"
    bpftrace_version="$(bpftrace --version 2>/dev/null)"

    {
        cat <<EOF
## Uprobe and lock recording overhead (issue 4)

$(section_header uprobes)
- Peer: $bpftrace_version, in the same run, with the scripts below. $tracefs_note.
- malloc workload: \`scripts/bench/allocs.c\` (\`allocs RATE $UP_THREADS\`), built with \`clang -O2 -g
  -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer\`: $UP_THREADS threads, pinned together to CPU 0
  (\`taskset -c 0\`), each freeing the oldest of a ring of 256 blocks and allocating a new one of a
  mixed size (70% 16–127 bytes, 20% 128–1023, 9% 1–8 KiB, 1% 8–64 KiB) with glibc $libc_version's
  malloc, step after step. Each malloc and each free is a call. Between calls it does busy work (pure
  computation), sized once at its start so that each thread makes RATE calls per second with its
  half of CPU 0; it is a fixed amount of work, not a wait, so the time a profiler adds to a call is
  lost throughput. RATE 0: no busy work. One process per rate: $(for r in "${UP_RATES[@]}"; do printf '%s, ' "$(up_rate_name "$r")"; done | sed 's/, $//').
- lock workload: \`scripts/bench/contend.c\` (\`contend $UP_LOCK_THREADS $UP_LOCK_CS $UP_LOCK_OUT\`), same build: $UP_LOCK_THREADS threads, each pinned
  to one of CPUs $cpu_lock in turn, each taking one default pthread mutex, holding it for $UP_LOCK_CS steps
  of busy work (under a microsecond), releasing it and working $UP_LOCK_OUT steps on its own. A thread that
  finds the mutex taken sleeps in \`futex(FUTEX_WAIT)\` (when the lock is still taken by then), and
  while there are waiters every unlock calls \`futex(FUTEX_WAKE)\`: many futex calls per second,
  few of which really sleep.
- rprof-bpf: \`taskset -c 1 rprof-bpf record --type alloc -p PID --seconds $rec_seconds -o FILE\`, and
  \`--type mutex\` for the lock workload, with the default \`--alloc-sample-bytes\` ($UP_SAMPLE_BYTES) and
  \`--block-rate\` (1 ms). alloc: uprobes on malloc, calloc, realloc, reallocarray, free,
  posix_memalign, aligned_alloc, memalign and valloc of the target's libc and uretprobes on those
  whose result it needs, so every malloc takes two traps and every free one. mutex: no uprobes; it
  times futex waits on the raw syscall tracepoints (every syscall of the machine passes a pid check).
- bpftrace, malloc workload: \`taskset -c 1 bpftrace -p PID FILE\` with this script (the PID and the
  libc path filled in), which does per call what rprof-bpf's BPF side does: the size
  kept per thread from entry to return, a per-thread byte count, and for one allocation per
  $UP_SAMPLE_BYTES bytes its user stack (\`ustack\`, frame pointers) counted in a map and the block
  put in a table of live blocks, which every free deletes from. Where rprof-bpf draws its samples
  at random with a mean of one per $UP_SAMPLE_BYTES bytes, the script takes one every $UP_SAMPLE_BYTES bytes. The
  probes on calloc and realloc never fire here; free and malloc take the same traps as with rprof-bpf.

\`\`\`
$(cat "$dir/allocs.$UP_HEADLINE_RATE.bt")
\`\`\`

- bpftrace, lock workload: \`taskset -c 1 bpftrace FILE\` with this script, which times every futex
  wait of the pid and takes the user stack of one per 1 ms of waiting (per thread), as rprof-bpf
  samples waits by length with a mean of one per 1 ms:

\`\`\`
$(cat "$dir/contend.bt")
\`\`\`

- Each run: for each workload, for each tool in turn (rprof-bpf, bpftrace, and on the unthrottled
  malloc workload the empty probes), $UP_SETTLE s of rest, a
  baseline of $UP_WINDOW s with no profiler, then the recording, of which $UP_WINDOW s are measured. $RUNS runs;
  the medians are below.
- Contention: before the workloads started, the CPUs were ${machine_busy}% busy with other work
  (measured over 2 s). Load average: $load_before before the runs, $load_after after them.
  A malloc baseline in which the workload got less than $UP_MIN_SHARE of CPU 0 (user + sys from
  \`/proc/PID/stat\`) was disturbed by other work and was taken again, up to $UP_RETRIES times
  (baselines taken again: $retaken). In the malloc baselines kept, the workload got between
  $(printf '%s\n' "${base_shares[@]}" | awk 'NR == 1 || $1 < m { m = $1 } END { print m }') and $(printf '%s\n' "${base_shares[@]}" | awk 'NR == 1 || $1 > m { m = $1 } END { print m }') of CPU 0.

### Results (median of $RUNS runs)

| metric | rprof-bpf | bpftrace | ratio | target | result |
|---|---|---|---|---|---|
| malloc workload at $(up_rate_name "$UP_HEADLINE_RATE") ($(up_thousands "$(up_m base "$UP_HEADLINE_RATE" rprof)") calls/s in all): slowdown | $(up_pct "$h_r") | $(up_pct "$h_p") | $(up_ratio_cell "$h_r" "$h_p") | ≤ $UP_MAX_RATIO × bpftrace's | $h_ok |
| malloc workload, unthrottled: time added to each call (ns) | $c_r | $c_p | $(up_ratio "$c_r" "$c_p") | ≤ $UP_MAX_RATIO × bpftrace's | $c_ok |
| lock workload: slowdown (lock acquisitions/s) | $(up_pct "$l_r") | $(up_pct "$l_p") | $(up_ratio_cell "$l_r" "$l_p") | ≤ $UP_MAX_RATIO × bpftrace's | $l_ok |

### Overhead against calls per second (malloc workload, median of $RUNS runs)

| rate | calls/s in the baseline (both threads) | rprof-bpf slowdown | bpftrace slowdown | ratio | rprof-bpf ns added per call | bpftrace ns added per call | ratio |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rate_rows[@]}")

Floor: the same uprobes and uretprobes with empty programs (bpftrace, \`floor.bt\` below), on the
unthrottled workload: $(up_pct "$f_slow") slowdown and $f_added ns added per call, the cost of the traps themselves
on this machine. Beyond that floor, rprof-bpf's BPF programs add $r_beyond ns per call and bpftrace's $p_beyond ns.

\`\`\`
$(cat "$dir/floor.bt")
\`\`\`

The lock workload made a median of $(up_thousands "$(up_m base lock rprof)") lock acquisitions and $(up_thousands "$(up_m waits_base lock rprof)") voluntary
context switches (nearly all futex waits) per second in its baselines; $(up_thousands "$(up_m waits_with lock rprof)") per second while rprof-bpf
recorded and $(up_thousands "$(up_m waits_with lock bpftrace)") while bpftrace did. The two tools do not hook the same place: bpftrace's
\`tracepoint:syscalls:sys_{enter,exit}_futex\` are perf-event tracepoints that run its programs on
the futex calls only but build a perf trace record for each first, while rprof-bpf's
\`tp_btf/sys_enter\` and \`sys_exit\` run on every syscall of every process and return at a
pid-bitmap check for the untargeted ones. bpftrace 0.17 has no BTF raw tracepoints to do the same.

rprof-bpf's summary lines (stderr):

\`\`\`
$(printf '%s\n' "${summaries[@]}")
\`\`\`

### How each number is measured

- **throughput**: each workload logs \`<time> <calls so far>\` (lock acquisitions for the lock
  workload) every 100 ms. The rate over a window is the difference between its first and last log
  lines inside the window, divided by their time difference.
- **measured window**: $UP_WINDOW s, starting $UP_LEAD s after the tool is attached and ending at least $UP_TAIL s before it
  stops. rprof-bpf: attached at its \`timing: attach_ms\` (printed with \`RPROF_TIMINGS=1\`, from
  its start until its probes are attached), and it records for $rec_seconds s from then. bpftrace prints
  "Attaching N probes..." before it attaches them, so the script polls \`bpftool perf show\` until
  all of bpftrace's uprobes, uretprobes or tracepoints are there, and sends it SIGINT $rec_seconds s
  after that. "Attached after" in the last table is that time from the start of the tool; "stop
  to exit" is rprof-bpf's \`timing: write_ms\` (from the end of its recording until its file is
  written) and, for bpftrace, the time from the first SIGINT until it exited, its maps printed.
  bpftrace 0.17 sometimes misses a SIGINT and waits on; the script sends another one when it has
  printed nothing 5 s later (extra ones needed in this run: $sigints), so a missed one shows as a
  stop time above 5000 ms and a longer recording, outside the measured window. The baseline is a
  window of the same length, with no profiler, right before each recording.
- **slowdown**: 1 − throughput while recording / throughput in the baseline just before, per run;
  the median of the $RUNS runs. Negative values are noise. Slowdowns cannot pass 100%, so at the
  high rates, where both tools take most of the CPU, their ratio tends to 1 whatever the costs;
  the time added per call shows the costs themselves.
- **time added to each call**: 1 / throughput while recording − 1 / throughput in the baseline.
  The malloc workload always keeps CPU 0 busy (its two threads never block), so a call's share of
  that CPU is 1 / calls per second, and the difference is what the profiler's traps and BPF programs
  cost per call: a malloc (two traps) and a free (one) averaged. The lock workload blocks, so
  there is no such number for it.
- **target**: rprof-bpf's value ≤ $UP_MAX_RATIO × bpftrace's. Where bpftrace's slowdown is under $UP_NOISE
  point, the ratio of two numbers within the noise means nothing: it passes when rprof-bpf's is within
  $UP_NOISE point of bpftrace's.
- **CPU s** and **peak RSS**: GNU \`/usr/bin/time -f '%U %S %M'\` around each tool, from start to
  exit: for bpftrace that includes compiling its script and printing its maps with symbolized
  stacks; for rprof-bpf, unwinding, symbolization and writing the file. The time their probes take
  inside the workload's threads is charged to the workload, and is what the slowdown measures.
- **samples**: rprof-bpf's count from its summary line (sampled allocations, or lock waits
  recorded with their stacks); bpftrace's \`@sampled\`, the stacks its script took.

### Every run

"CPUs got" is how many CPUs' worth of time the workload got in the baseline / over the tool's
whole recording, from \`/proc/PID/stat\` (the malloc workload: at most 1.00, CPU 0). Throughputs
are calls (lock acquisitions) per second. Counters are the non-zero drop and loss counters from
rprof-bpf's summary; for bpftrace, the futex waits it timed. For the lock workload, "waits/s" are
the workload's voluntary context switches per second in the baseline → over the recording.

| workload | run | tool | baseline/s | recording/s | slowdown | ns added per call | CPUs got | attached after / stop to exit (ms) | CPU s | peak RSS (MB) | samples | counters |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
        printf '%s\n' "${runs_table[@]}"
    } >"$out_md"
}
