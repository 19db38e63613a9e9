# The off-CPU section of scripts/bench.sh, which sources this file and calls bench_offcpu; it is not
# a script of its own. It uses bench.sh's helpers and variables (rprof, work, RUNS, bench_pids, ...).
#
# Two ping-pong pairs (scripts/bench/pingpong.c) run side by side: pair A pinned to CPU 0, pair B
# pinned to CPU 1. Each pair is one process whose two threads bounce a byte over two pipes, so it
# blocks and wakes up once per message, and it logs its round-trip count every 100 ms.
#
# The main measurement is at the issue's workload, about 100k context switches per second per pair.
# Pinned and with nothing to do between messages a pair makes several times that, so each thread
# also busy-works WORK_NS ns per message received. The section calibrates WORK_NS at its start
# from 1 s runs of both pairs: first with no work, then with the WORK_NS that the no-work rate
# implies, corrected once from that run's rate, and checked once more.
#
# Each of RUNS runs records pair A with every tool below, each time right after a baseline with no
# profiler, and compares the throughput of both pairs during the recording with that baseline:
#   rprof        rprof-bpf record --type off-cpu -p A --seconds 5              (the target's command)
#   eager        the same with RPROF_EAGER_STACKS=1: user stacks read at every switch-out, the path
#                of kernels without bpf_task_work (before 6.18)
#   every        rprof-bpf record --type off-cpu --block-rate 0s -p A --seconds 5  (no sampling)
#   perf         perf record -e sched:sched_switch -g -p A -o FILE -- sleep 5
#   empty        scripts/bench/floor.c: a BPF program on the same hook as rprof-bpf's that does
#                nothing, the floor of what any program there costs
# The slowdown of A is the cost for the threads that are profiled; that of B, which no tool targets,
# is the cost for the rest of the machine (rprof-bpf's BPF program runs on every context switch of
# every thread and has to return early for B's).
#
# Then a stress measurement, harsher than the issue's workload: the pairs are restarted with no work
# (several times the rate) and the same runs are made with rprof (as rprof-max) and perf (perf-max).

OFF_SECONDS=5           # the length of each recording
OFF_FROM=1              # the measured window, in seconds after the profiler is started: every tool
OFF_TO=5                # is attached well before OFF_FROM and still recording at OFF_TO
OFF_SETTLE=1            # seconds of rest before each baseline
OFF_MIN_SHARE=0.95      # a baseline in which a pair got less of its CPU was disturbed: take it again
OFF_MIN_SPEED=0.90      # so was one in which a pair ran slower than this share of its best rate
OFF_RETRIES=3           # at most this many more times
OFF_MAX_SLOWDOWN=5      # percent: pair A, with rprof-bpf
OFF_MAX_UNTARGETED=1    # percent: pair B, with rprof-bpf
OFF_SWITCH_RATE=100000  # the issue's workload: context switches per second of a pair
OFF_CALIBRATE_SECONDS=1 # the length of each calibration run
OFF_CALIBRATE_CLOSE=3   # percent: calibration stops once a pair is this close to OFF_SWITCH_RATE
OFF_TRACEFS=/sys/kernel/tracing

# tool_name TOOL: how the tables call it.
tool_name() {
    case "$1" in
    rprof) echo "rprof-bpf" ;;
    eager) echo "rprof-bpf, stacks at every switch (kernels before 6.18)" ;;
    every) echo "rprof-bpf, every block" ;;
    perf) echo "perf" ;;
    empty) echo "empty BPF program" ;;
    rprof-max) echo "rprof-bpf, stress (no work)" ;;
    perf-max) echo "perf, stress (no work)" ;;
    esac
}

# now_ns: the wall clock in nanoseconds, the clock pingpong's log lines carry (CLOCK_REALTIME).
now_ns() {
    local t="$EPOCHREALTIME"
    echo "${t//[!0-9]/}000"
}

# rate LOG FROM_NS TO_NS: round trips per second in a pingpong log over the window, from the first
# line at or after FROM_NS to the last line at or before TO_NS; "" when the window holds no interval.
rate() {
    awk -v a="$2" -v b="$3" '
        $1 + 0 >= a + 0 && !have { t0 = $1; c0 = $2; have = 1 }
        $1 + 0 <= b + 0 { t1 = $1; c1 = $2 }
        END { if (have && t1 > t0) printf "%.0f", (c1 - c0) / ((t1 - t0) / 1e9) }' "$1"
}

# slowdown WITH BASE: 100 × (1 − WITH / BASE), one decimal; negative when WITH was faster.
slowdown() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * (1 - w / b) }'; }

# added_ns WITH BASE: the time each context switch took on top of the baseline's, in ns. A pair
# pinned to one CPU is always running one of its threads, so the time of a round trip is its CPU
# time, and a round trip is two context switches (each thread blocks once in read).
added_ns() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.0f", (1 / w - 1 / b) * 1e9 / 2 }'; }

# share_at_100k NS: the share of one CPU, in percent, that NS per switch costs at 100k switches/s.
share_at_100k() { awk -v n="$1" 'BEGIN { printf "%.1f", n * 100000 / 1e9 * 100 }'; }

# thousands N: N with spaces between groups of three digits for the tables (123456 -> 123 456).
thousands() {
    [[ "$1" != n/a ]] || { echo n/a; return; }
    awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""
        while (length(s) > 3) { o = " " substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
        print s o }'
}

# next_work_ns WORK_NS RATE: the work per message that brings a pair which made RATE context
# switches per second with WORK_NS to OFF_SWITCH_RATE: each switch is one thread's turn, whose
# length is the work plus a fixed cost, so the turn has to grow by 1/OFF_SWITCH_RATE − 1/RATE.
# Rounded to 10 ns, and never below 0.
next_work_ns() {
    awk -v w="$1" -v r="$2" -v target="$OFF_SWITCH_RATE" 'BEGIN {
        x = w + 1e9 / target - 1e9 / r
        if (x < 0) x = 0
        printf "%.0f", int(x / 10 + 0.5) * 10 }'
}

# kernel_has_task_work: whether the kernel has bpf_task_work, with which rprof-bpf reads user
# stacks only for recorded blocks (the name is in the kernel's BTF when it does).
kernel_has_task_work() {
    [[ -r /sys/kernel/btf/vmlinux ]] && grep -qaF bpf_task_work_schedule_resume_impl /sys/kernel/btf/vmlinux
}

# bench_offcpu OUT: runs the section and writes its part of BENCHMARKS.md to OUT.
bench_offcpu() {
    local out_md="$1" dir="$work/offcpu"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "==> building the ping-pong workload" >&2
    clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wall -pthread \
        -o "$dir/pingpong" scripts/bench/pingpong.c

    # The empty program and its loader, against the libbpf that cargo built for libbpf-sys.
    local tools=(rprof eager every perf) stress_tools=(rprof-max perf-max) libbpf floor_note=""
    libbpf="$(ls -td target/release/build/libbpf-sys-*/out 2>/dev/null | head -n 1 || true)"
    echo "==> building the empty BPF program and its loader" >&2
    if [[ -n "$libbpf" && -f "$libbpf/libbpf.a" ]] &&
        clang -O2 -g -target bpf -c scripts/bench/floor.bpf.c -o "$dir/floor.bpf.o" &&
        cc -O2 -Wall -I "$libbpf/include" scripts/bench/floor.c "$libbpf/libbpf.a" -lelf -lz \
            -o "$dir/floor" &&
        "$dir/floor" "$dir/floor.bpf.o" 0; then
        tools+=(empty)
    else
        echo "    warning: could not build or load the empty BPF program; its row is left out" >&2
        floor_note=" (not measured: the empty program could not be built or loaded)"
    fi

    # perf's sched:sched_switch is a tracefs event; rprof-bpf needs no tracefs (tp_btf).
    local tracefs_note
    if mountpoint -q "$OFF_TRACEFS"; then
        tracefs_note="tracefs was already mounted at \`$OFF_TRACEFS\`"
    else
        echo "==> mounting tracefs at $OFF_TRACEFS for perf's sched:sched_switch event" \
            "(it is unmounted again at the end)" >&2
        mount -t tracefs nodev "$OFF_TRACEFS" ||
            die "could not mount tracefs at $OFF_TRACEFS, which perf needs for sched:sched_switch"
        mounted_tracefs="$OFF_TRACEFS"
        tracefs_note="tracefs was not mounted, so the script mounted it (\`mount -t tracefs nodev $OFF_TRACEFS\`) for perf's runs and unmounted it at the end; rprof-bpf does not need it"
    fi

    # Which way rprof-bpf reads user stacks here, for the text.
    local stacks_note
    if kernel_has_task_work; then
        stacks_note="This kernel has \`bpf_task_work\`, so rprof-bpf reads user stacks only for the blocks it records, when the thread returns to user space."
    else
        stacks_note="This kernel has no \`bpf_task_work\`, so rprof-bpf reads user stacks at every switch-out here too: its default column and the \"stacks at every switch\" column measure the same path."
    fi

    wait_for_quiet

    # One CPU per pair when there are two; both on CPU 0 otherwise.
    local cpu_a=0 cpu_b=1
    (($(nproc) >= 2)) || cpu_b=0

    # --- calibration: the WORK_NS for about OFF_SWITCH_RATE context switches per second -----------

    # calibration_rate WORK_NS: runs both pairs side by side for OFF_CALIBRATE_SECONDS, pinned as in
    # the measurement, each thread working WORK_NS per message; prints the faster pair's context
    # switches per second. Other work (here, or on the host under this machine) can only slow a pair
    # down, so when the two pairs differ by more than 5% the run is made again, up to twice, and the
    # fastest pair of all the tries counts.
    calibration_rate() {
        local w="$1" pa pb ra rb try best=0
        for try in 1 2 3; do
            taskset -c "$cpu_a" "$dir/pingpong" "$OFF_CALIBRATE_SECONDS" 1000 "$w" \
                >/dev/null 2>"$dir/calibrate.a.stderr" &
            pa=$!
            taskset -c "$cpu_b" "$dir/pingpong" "$OFF_CALIBRATE_SECONDS" 1000 "$w" \
                >/dev/null 2>"$dir/calibrate.b.stderr" &
            pb=$!
            if ! wait "$pa" || ! wait "$pb"; then
                cat "$dir/calibrate.a.stderr" "$dir/calibrate.b.stderr" >&2
                die "a calibration run of the ping-pong pairs failed (WORK_NS $w)"
            fi
            # "pingpong: N round trips in S s: R round trips/s (C context switches/s)"
            ra="$(sed -nE 's/.*\(([0-9]+) context switches\/s\).*/\1/p' "$dir/calibrate.a.stderr")"
            rb="$(sed -nE 's/.*\(([0-9]+) context switches\/s\).*/\1/p' "$dir/calibrate.b.stderr")"
            [[ -n "$ra" && -n "$rb" ]] || die "a calibration run printed no rate (WORK_NS $w)"
            echo "    WORK_NS $w: A $ra, B $rb context switches/s" >&2
            best="$(printf '%s\n' "$best" "$ra" "$rb" | sort -n | tail -n 1)"
            [[ "$(verdict "$ra >= 0.95 * $rb && $rb >= 0.95 * $ra")" == FAIL ]] || break
        done
        echo "$best"
    }
    # close_to_target RATE: whether RATE is within OFF_CALIBRATE_CLOSE% of OFF_SWITCH_RATE.
    close_to_target() {
        awk -v r="$1" -v t="$OFF_SWITCH_RATE" -v c="$OFF_CALIBRATE_CLOSE" \
            'BEGIN { d = r - t; if (d < 0) d = -d; exit !(d <= t * c / 100) }'
    }
    # With no work first; then WORK_NS from the last rate, until the rate is close enough (at most
    # 4 steps).
    echo "==> calibrating the work per message for about $OFF_SWITCH_RATE context switches/s per pair" >&2
    local cal_none cal_rate work_ns=0 cal_steps=() step
    cal_none="$(calibration_rate 0)"
    cal_rate="$cal_none"
    for step in 1 2 3 4; do
        work_ns="$(next_work_ns "$work_ns" "$cal_rate")"
        cal_rate="$(calibration_rate "$work_ns")"
        cal_steps+=("$work_ns ns: $(thousands "$cal_rate")")
        ! close_to_target "$cal_rate" || break
        ((step < 4)) || echo "    warning: the rate is still not within $OFF_CALIBRATE_CLOSE% of $OFF_SWITCH_RATE; going on" >&2
    done
    echo "    chosen: WORK_NS $work_ns ($cal_rate context switches/s in the last calibration run)" >&2

    # --- the pairs --------------------------------------------------------------------------------

    # start_pairs PHASE WORK_NS SWITCHES: starts pairs A and B with WORK_NS, logging to
    # $dir/{a,b}.PHASE.log; SWITCHES, the rate calibration saw with WORK_NS, is their best rate so far.
    local a_pid b_pid a_log b_log best_a best_b
    start_pairs() {
        local phase="$1" w="$2" pid
        a_log="$dir/a.$phase.log" b_log="$dir/b.$phase.log"
        best_a=$(($3 / 2)) best_b=$(($3 / 2))
        taskset -c "$cpu_a" "$dir/pingpong" 0 100 "$w" >"$a_log" 2>"$dir/a.$phase.stderr" &
        a_pid=$!
        bench_pids+=("$a_pid")
        taskset -c "$cpu_b" "$dir/pingpong" 0 100 "$w" >"$b_log" 2>"$dir/b.$phase.stderr" &
        b_pid=$!
        bench_pids+=("$b_pid")
        sleep 2 # both pairs get going and settle
        for pid in "$a_pid" "$b_pid"; do
            kill -0 "$pid" 2>/dev/null || {
                cat "$dir/a.$phase.stderr" "$dir/b.$phase.stderr" >&2
                die "a ping-pong pair (pid $pid) did not start"
            }
            [[ "$(ls "/proc/$pid/task" | wc -l)" -eq 3 ]] || die "ping-pong pair $pid does not have its 3 threads"
        done
        [[ -s "$a_log" && -s "$b_log" ]] || die "the ping-pong pairs log nothing"
        echo "==> ping-pong pairs ($phase, WORK_NS $w): A = pid $a_pid on CPU $cpu_a (targeted)," \
            "B = pid $b_pid on CPU $cpu_b (not targeted)" >&2
    }

    # Every measurement, keyed "TOOL RUN" (for the medians) and the table of every run.
    local -A base_a base_b with_a with_b sa sb life added cpu rss recorded estimated per_trip extra rec_share attach_ms
    local runs_table=() summaries=() script_cpus=()
    local load_before load_after
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

    # pair_ticks PID: the CPU time (user + sys, in clock ticks) a pair has used so far.
    pair_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
    # cpus_of TICKS FROM_NS TO_NS: how many CPUs' worth TICKS is over the window.
    cpus_of() { awk -v t="$1" -v hz="$CLK_TCK" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", t / hz / ((b - a) / 1e9) }'; }
    # How much of its CPU each pair got in each baseline that was kept (1.00 unless other work
    # took some), and how many baselines were taken again because other work had disturbed them.
    local share_a=() share_b=() retaken=0 slowed=0

    # measure_baseline TOOL RUN: pair A's and B's throughput over a window with no profiler. It is
    # taken again when a pair did not get OFF_MIN_SHARE of its CPU, or ran below OFF_MIN_SPEED of its
    # best rate so far: on this virtual machine a pair sometimes runs at half speed for seconds
    # while it gets all of its CPU's time, which only work outside the machine can explain.
    measure_baseline() {
        local from to k="$1 $2" ta tb sa_ sb_ try slow
        for try in $(seq 0 "$OFF_RETRIES"); do
            sleep "$OFF_SETTLE"
            ta="$(pair_ticks "$a_pid")" tb="$(pair_ticks "$b_pid")"
            from="$(now_ns)"
            sleep $((OFF_TO - OFF_FROM))
            to="$(now_ns)"
            sa_="$(cpus_of $(($(pair_ticks "$a_pid") - ta)) "$from" "$to")"
            sb_="$(cpus_of $(($(pair_ticks "$b_pid") - tb)) "$from" "$to")"
            base_a[$k]="$(rate "$a_log" "$from" "$to")"
            base_b[$k]="$(rate "$b_log" "$from" "$to")"
            [[ -n "${base_a[$k]}" && -n "${base_b[$k]}" ]] || die "no baseline throughput in the ping-pong logs"
            echo "    baseline: A ${base_a[$k]}, B ${base_b[$k]} round trips/s;" \
                "they got $sa_ and $sb_ of their CPUs" >&2
            slow="$(verdict "${base_a[$k]} < $OFF_MIN_SPEED * $best_a || ${base_b[$k]} < $OFF_MIN_SPEED * $best_b")"
            best_a="$(printf '%s\n' "$best_a" "${base_a[$k]}" | sort -n | tail -n 1)"
            best_b="$(printf '%s\n' "$best_b" "${base_b[$k]}" | sort -n | tail -n 1)"
            [[ "$(verdict "$sa_ >= $OFF_MIN_SHARE && $sb_ >= $OFF_MIN_SHARE")" == FAIL || "$slow" == PASS ]] || break
            ((try < OFF_RETRIES)) || {
                echo "    warning: other work keeps disturbing the baselines; keeping this one" >&2
                break
            }
            if [[ "$slow" == PASS ]]; then
                echo "    a pair ran below $OFF_MIN_SPEED of its best rate ($best_a, $best_b): taking the baseline again" >&2
                slowed=$((slowed + 1))
            else
                echo "    other work took CPU time from a pair: taking the baseline again" >&2
            fi
            retaken=$((retaken + 1))
        done
        share_a+=("$sa_") share_b+=("$sb_")
    }

    # record_start: notes the pairs' CPU time when a recording starts (see measure_recording).
    local rec_ta rec_tb
    record_start() { rec_ta="$(pair_ticks "$a_pid")" rec_tb="$(pair_ticks "$b_pid")"; }

    # measure_recording TOOL RUN T0 T1: both pairs' throughput during a recording started at T0
    # that ended at T1, the slowdowns against the baseline before it, and how much of their CPUs
    # the pairs got over the whole recording (less than 1.00 when another process, the profiler's
    # own included, took some).
    measure_recording() {
        local k="$1 $2" t0="$3" t1="$4"
        local from=$((t0 + OFF_FROM * 1000000000)) to=$((t0 + OFF_TO * 1000000000)) life_a
        ((t1 >= to)) || die "the recording ended $(((to - t1) / 1000000)) ms before the end of the measured window"
        with_a[$k]="$(rate "$a_log" "$from" "$to")"
        with_b[$k]="$(rate "$b_log" "$from" "$to")"
        life_a="$(rate "$a_log" "$t0" "$t1")"
        [[ -n "${with_a[$k]}" && -n "${with_b[$k]}" && -n "$life_a" ]] || die "no throughput in the ping-pong logs"
        echo "    recording: A ${with_a[$k]}, B ${with_b[$k]} round trips/s" >&2
        sa[$k]="$(slowdown "${with_a[$k]}" "${base_a[$k]}")"
        sb[$k]="$(slowdown "${with_b[$k]}" "${base_b[$k]}")"
        life[$k]="$(slowdown "$life_a" "${base_a[$k]}")"
        added[$k]="$(added_ns "${with_a[$k]}" "${base_a[$k]}")"
        rec_share[$k]="$(cpus_of $(($(pair_ticks "$a_pid") - rec_ta)) "$t0" "$t1") / $(cpus_of $(($(pair_ticks "$b_pid") - rec_tb)) "$t0" "$t1")"
    }

    # record_rprof TOOL RUN [NAME=VALUE...] [OPTION...]: one rprof-bpf recording of pair A, with
    # those variables in its environment and those options.
    record_rprof() {
        local tool="$1" run="$2" k="$1 $2" t0 t1 summary n file_n counters env_vars=(RPROF_TIMINGS=1)
        shift 2
        while (($# > 0)) && [[ "$1" == [A-Z]*=* ]]; do
            env_vars+=("$1")
            shift
        done
        local out="$dir/$tool.$run.pb.gz" err="$dir/$tool.$run.stderr" tm="$dir/$tool.$run.time"
        local shown="${env_vars[*]:1}${env_vars[1]:+ }rprof-bpf record --type off-cpu${*:+ $*} -p $a_pid"
        echo "==> run $run/$RUNS: $shown --seconds $OFF_SECONDS" >&2
        record_start
        t0="$(now_ns)"
        if ! env "${env_vars[@]}" /usr/bin/time -f '%e %U %S %M' -o "$tm" \
            "$rprof" record --type off-cpu "$@" -p "$a_pid" --seconds "$OFF_SECONDS" -o "$out" 2>"$err"; then
            cat "$err" >&2
            die "$shown failed (run $run); its stderr is above"
        fi
        t1="$(now_ns)"
        sed 's/^/    /' "$err" >&2
        measure_recording "$tool" "$run" "$t0" "$t1"
        attach_ms[$k]="$(timing attach_ms "$err")"
        if [[ -n "${attach_ms[$k]}" ]] && ((${attach_ms[$k]} >= OFF_FROM * 1000)); then
            echo "    warning: rprof-bpf attached after ${attach_ms[$k]} ms, inside the measured window" >&2
        fi
        [[ -s "$out" ]] || die "rprof-bpf wrote no $out (run $run)"
        summary="$(grep -E '^rprof-bpf: off-cpu:' "$err" | head -n 1 || true)"
        [[ -n "$summary" ]] || die "rprof-bpf printed no off-cpu summary line (run $run)"
        # "rprof-bpf: off-cpu: N blocks in 5.00s, counter=N, ...; wrote ..."
        n="$(sed -nE 's/^rprof-bpf: off-cpu: ([0-9,]+) .*/\1/p' <<<"$summary" | tr -d ,)"
        counters="$(sed -nE 's/.* in [0-9.]+s, ([^;]*);.*/\1/p' <<<"$summary")"
        # switches/count in the file: every block, or with sampling, an estimate of them.
        file_n="$(first_column_sum "$out")"
        [[ -n "$file_n" ]] || die "go tool pprof cannot read $out (run $run)"
        cpu[$k]="$(add "$(field 2 "$tm")" "$(field 3 "$tm")")"
        rss[$k]="$(field 4 "$tm")"
        recorded[$k]="${n:-?}"
        estimated[$k]="$file_n"
        extra[$k]="${counters:-none}"
        summaries+=("$summary")
    }

    # record_empty RUN: the empty program on sched_switch for as long as a recording.
    record_empty() {
        local run="$1" k="empty $1" t0 t1 tm="$dir/empty.$1.time"
        echo "==> run $run/$RUNS: an empty BPF program on sched_switch for $OFF_SECONDS s" >&2
        record_start
        t0="$(now_ns)"
        /usr/bin/time -f '%e %U %S %M' -o "$tm" "$dir/floor" "$dir/floor.bpf.o" "$OFF_SECONDS" ||
            die "the empty BPF program failed (run $run)"
        t1="$(now_ns)"
        measure_recording empty "$run" "$t0" "$t1"
        cpu[$k]="$(add "$(field 2 "$tm")" "$(field 3 "$tm")")"
        rss[$k]="$(field 4 "$tm")"
        recorded[$k]=n/a estimated[$k]=n/a extra[$k]=–
    }

    # record_perf TOOL RUN: one perf recording of pair A, then perf script (outside the windows).
    record_perf() {
        local tool="$1" run="$2" k="$1 $2" t0 t1 samples lost stats script_cpu
        local data="$dir/$tool.$run.data" err="$dir/$tool-record.$run.stderr" tm="$dir/$tool-record.$run.time"
        echo "==> run $run/$RUNS: perf record -e sched:sched_switch -g -p $a_pid -- sleep $OFF_SECONDS" >&2
        record_start
        t0="$(now_ns)"
        if ! /usr/bin/time -f '%e %U %S %M' -o "$tm" \
            perf record -e sched:sched_switch -g -p "$a_pid" -o "$data" -- sleep "$OFF_SECONDS" 2>"$err"; then
            cat "$err" >&2
            die "perf record -e sched:sched_switch failed (run $run); its stderr is above"
        fi
        t1="$(now_ns)"
        measure_recording "$tool" "$run" "$t0" "$t1"
        # "[ perf record: Captured and wrote 132.391 MB FILE (618899 samples) ]"
        samples="$(grep -oE '\(([0-9]+) samples\)' "$err" | tr -dc '0-9' || true)"
        [[ -n "$samples" ]] || samples="$(perf script -i "$data" -F tid 2>/dev/null | wc -l)"
        # LOST records, each of which stands for one or more samples perf could not write in time.
        stats="$(perf report -i "$data" --stats 2>/dev/null || true)"
        lost="$(awk '/^ *LOST(_SAMPLES)? events:/ { n += $3 } END { print n + 0 }' <<<"$stats")"
        # perf script symbolizes, as rprof-bpf does before it writes.
        if ! /usr/bin/time -f '%e %U %S %M' -o "$dir/$tool-script.$run.time" \
            perf script -i "$data" >/dev/null 2>"$dir/$tool-script.$run.stderr"; then
            cat "$dir/$tool-script.$run.stderr" >&2
            die "perf script failed (run $run)"
        fi
        script_cpu="$(add "$(field 2 "$dir/$tool-script.$run.time")" "$(field 3 "$dir/$tool-script.$run.time")")"
        cpu[$k]="$(add "$(field 2 "$tm")" "$(field 3 "$tm")")"
        echo "    perf: $samples samples, $lost LOST records, $(du -m "$data" | cut -f1) MB of perf.data;" \
            "perf record ${cpu[$k]} s CPU, perf script $script_cpu s CPU" >&2
        rm -f "$data"
        [[ "$tool" != perf ]] || script_cpus+=("$script_cpu")
        rss[$k]="$(field 4 "$tm")"
        recorded[$k]="$samples"
        estimated[$k]="$samples"
        extra[$k]="LOST records: $lost"
    }

    # run_tools TOOL...: RUNS runs of a baseline and a recording with each tool in turn, against
    # the pairs running now.
    run_tools() {
        local run tool k trips pid
        for run in $(seq "$RUNS"); do
            for tool in "$@"; do
                for pid in "$a_pid" "$b_pid"; do
                    kill -0 "$pid" 2>/dev/null || die "ping-pong pair $pid died"
                done
                echo "==> run $run/$RUNS: baseline" >&2
                measure_baseline "$tool" "$run"
                case "$tool" in
                rprof | rprof-max) record_rprof "$tool" "$run" ;;
                eager) record_rprof eager "$run" RPROF_EAGER_STACKS=1 ;;
                every) record_rprof every "$run" --block-rate 0s ;;
                perf | perf-max) record_perf "$tool" "$run" ;;
                empty) record_empty "$run" ;;
                esac
                k="$tool $run"
                # Switches per round trip: A's round trips during the recording are its rate × the length.
                trips="$(awk -v r="${with_a[$k]}" -v s="$OFF_SECONDS" 'BEGIN { printf "%.0f", r * s }')"
                if [[ "${estimated[$k]}" == n/a ]]; then
                    per_trip[$k]=n/a
                else
                    per_trip[$k]="$(awk -v n="${estimated[$k]}" -v t="$trips" 'BEGIN { printf "%.2f", n / t }')"
                fi
                runs_table+=("| $run | $(tool_name "$tool") | $(thousands "${base_a[$k]}") | $(thousands "${with_a[$k]}") | ${sa[$k]}% | $(thousands "${base_b[$k]}") | $(thousands "${with_b[$k]}") | ${sb[$k]}% | ${life[$k]}% | ${rec_share[$k]} | ${cpu[$k]} | $(mb "${rss[$k]}") | $(thousands "${recorded[$k]}") | $(thousands "${estimated[$k]}") | ${extra[$k]} |")
            done
        done
    }

    # The issue's workload, then the stress at the maximum rate.
    start_pairs main "$work_ns" "$cal_rate"
    run_tools "${tools[@]}"
    stop_pid "$a_pid"
    stop_pid "$b_pid"
    echo "==> stress: the same without work, at the maximum rate" >&2
    start_pairs stress 0 "$cal_none"
    run_tools "${stress_tools[@]}"
    stop_pid "$a_pid"
    stop_pid "$b_pid"
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ -n "$mounted_tracefs" ]]; then
        umount "$mounted_tracefs" ||
            echo "    warning: could not unmount $mounted_tracefs, which this section mounted" >&2
        mounted_tracefs=""
    fi

    # --- results ----------------------------------------------------------------------------------

    # m ARRAY TOOL: the median over the runs of one tool's values in an associative array, or
    # n/a for a value the tool does not have.
    m() {
        local -n values="$1"
        local r vs=()
        for r in $(seq "$RUNS"); do
            [[ "${values["$2 $r"]}" != n/a ]] || { echo n/a; return; }
            vs+=("${values["$2 $r"]}")
        done
        median "${vs[@]}"
    }

    # verdict_vs_target TOOL: pair A's verdict with TOOL against the targets (≤ OFF_MAX_SLOWDOWN and
    # ≤ perf's), with the reasons when it fails.
    verdict_vs_target() {
        local s why=()
        s="$(m sa "$1")"
        [[ "$(verdict "$s <= $OFF_MAX_SLOWDOWN")" == PASS ]] || why+=("above $OFF_MAX_SLOWDOWN%")
        [[ "$(verdict "$s <= $(m sa perf)")" == PASS ]] || why+=("above perf's")
        if ((${#why[@]} == 0)); then
            echo PASS
        else
            echo "FAIL ($(IFS=,; echo "${why[*]}" | sed 's/,/, /g'))"
        fi
    }

    local a_ok eager_ok b_ok
    a_ok="$(verdict_vs_target rprof)"
    eager_ok="$(verdict_vs_target eager)"
    b_ok="$(verdict "$(m sb rprof) <= $OFF_MAX_UNTARGETED")"
    # Pair B again, less what the hook itself costs (the empty program's slowdown of pair B).
    local e_sb="n/a" r_sb_beyond="n/a" beyond_ok="n/a (not measured)"
    if [[ " ${tools[*]} " == *" empty "* ]]; then
        e_sb="$(m sb empty)"
        r_sb_beyond="$(awk -v r="$(m sb rprof)" -v e="$e_sb" 'BEGIN { printf "%.1f", r - e }')"
        beyond_ok="$(verdict "$r_sb_beyond <= $OFF_MAX_UNTARGETED")"
    fi

    # row LABEL ARRAY FORMAT [TOOL...]: a details row with each tool's median (all of the main
    # measurement's tools when none are given).
    row() {
        local label="$1" arr="$2" fmt="$3" tool v cells=""
        shift 3
        local columns=("$@")
        ((${#columns[@]} > 0)) || columns=("${tools[@]}")
        for tool in "${columns[@]}"; do
            v="$(m "$arr" "$tool")"
            [[ "$v" != n/a ]] || { cells+=" n/a |"; continue; }
            case "$fmt" in
            pct) v="$v%" ;;
            thousands) v="$(thousands "$v")" ;;
            switches) v="$(thousands "$(awk -v r="$v" 'BEGIN { print 2 * r }')")" ;;
            mb) v="$(mb "$v")" ;;
            share) v="$(share_at_100k "$v")%" ;;
            esac
            cells+=" $v |"
        done
        echo "| $label |$cells"
    }
    local max_attach
    max_attach="$(printf '%s\n' "${attach_ms[@]}" | grep -E '^[0-9]+$' | sort -n | tail -n 1 || true)"

    # switches_of TOOL...: pair A's context switches per second, the median of its baselines
    # before those tools' recordings.
    switches_of() {
        local t r vs=()
        for t in "$@"; do
            for r in $(seq "$RUNS"); do vs+=("${base_a["$t $r"]}"); done
        done
        awk -v r="$(median "${vs[@]}")" 'BEGIN { printf "%.0f", 2 * r }'
    }
    local main_switches stress_switches stress_times spin_share none_times
    none_times="$(awk -v s="$cal_none" -v t="$OFF_SWITCH_RATE" 'BEGIN { printf "%.1f", s / t }')"
    main_switches="$(switches_of "${tools[@]}")"
    stress_switches="$(switches_of "${stress_tools[@]}")"
    stress_times="$(awk -v s="$stress_switches" -v m="$main_switches" 'BEGIN { printf "%.1f", s / m }')"
    # The share of a pair's time its threads spend in the work: one WORK_NS per switch.
    spin_share="$(awk -v w="$work_ns" -v s="$main_switches" 'BEGIN { printf "%.0f", 100 * w * s / 1e9 }')"

    {
        cat <<EOF
## Off-CPU recording overhead (issue 3)

$(section_header offcpu)
- Workload: \`scripts/bench/pingpong.c\`, built with \`clang -O2 -g -fno-omit-frame-pointer
  -mno-omit-leaf-frame-pointer\`. Two copies run side by side. Each is a process whose two threads,
  \`ping\` and \`pong\`, pass one byte back and forth over two pipes; every round trip blocks each
  thread once in \`read\`. Pair **A** is pinned to CPU $cpu_a (\`taskset -c $cpu_a\`) and is the target;
  pair **B** is pinned to CPU $cpu_b and no tool targets it. Pinned, a pair's two threads hand the CPU
  to each other without waiting for an idle CPU to wake up, so its rate is steady. Unpinned, a lone
  pair's rate depends on where the scheduler puts its threads; when tried on this machine it varied
  several-fold from run to run, which would drown any overhead.
- The issue's workload, about $(thousands "$OFF_SWITCH_RATE") context switches per second: with nothing to do between messages a pinned
  pair makes about $none_times times that, so each thread also works \`WORK_NS\` ns on every byte it receives
  before it sends it back (pingpong's third argument: a spin on \`clock_gettime(CLOCK_MONOTONIC)\`).
  The section chooses \`WORK_NS\` at its start, from runs of $OFF_CALIBRATE_SECONDS s of both pairs side by side (counting
  the faster pair, since other work can only slow one down): with no work, $(thousands "$cal_none") context
  switches/s; then, each \`WORK_NS\` computed from the rate before it (a switch is one thread's
  turn, the work plus a fixed cost), $(IFS=';'; echo "${cal_steps[*]}" | sed 's/;/; /g'). So **\`WORK_NS\` = $work_ns ns**. In
  the measurement's baselines, pair A made a median of **$(thousands "$main_switches") context switches per second**.
- The spin follows the wall clock, so CPU time that another process takes from a pair while one
  of its threads spins does not slow the pair down, as it would slow real work: the spin is about
  $spin_share% of a pair's time, and about that share of what the profilers' own processes (loading,
  draining buffers, writing files) take from the pairs goes unseen here. What a profiler costs
  inside the switching threads (its BPF program, perf's tracepoint handler, the reading of user
  stacks on the way back to user space) is all outside the spin and is measured in full. The
  [stress measurement](#stress-the-maximum-rate-harsher-than-the-issues-workload) has no spin and
  charges everything.
- rprof-bpf: \`rprof-bpf record --type off-cpu -p A --seconds $OFF_SECONDS -o FILE\`, the command the
  targets are about. By default blocks shorter than \`--block-rate\` (1 ms) are sampled in proportion
  to their length and weighted back, so most of this workload's microsecond blocks are timed but
  not unwound. $stacks_note
  "Stacks at every switch (kernels before 6.18)" is the same command with \`RPROF_EAGER_STACKS=1\`,
  which makes rprof-bpf read the user stack at every switch-out of a targeted thread, as it does on
  kernels without \`bpf_task_work\`. "Every block" is the default with \`--block-rate 0s\`, which
  records every block with its stacks, as perf does.
- Peer: $(perf version 2>/dev/null), \`perf record -e sched:sched_switch -g -p A -o FILE -- sleep $OFF_SECONDS\`
  (then \`perf script -i FILE > /dev/null\`, outside the measured windows). $tracefs_note.
- Floor: "empty BPF program" is \`scripts/bench/floor.bpf.c\`, a program on the same hook as
  rprof-bpf's (\`tp_btf/sched_switch\`) that returns at once, attached for $OFF_SECONDS s by
  \`scripts/bench/floor.c\`$floor_note. Every thread on the machine pays its cost on every switch;
  rprof-bpf's cost for the threads it does not target can only come close to it, not below.
- Each run: for each tool in turn, $OFF_SETTLE s of rest, a baseline of $((OFF_TO - OFF_FROM)) s with no profiler, then the
  recording. $RUNS runs; the medians are below. Then the pairs are restarted without work and the
  same is done with rprof-bpf and perf for the stress measurement.
- This machine has $(nproc) CPUs and the two pairs keep both of them busy, so the profilers' own
  processes can only run by taking turns with a pair. That time shows up as slowdown of whichever
  pair shared its CPU, pair B included (less of it at the issue's workload, see the spin above).
- Contention: before the pairs started, the CPUs were ${machine_busy}% busy with other work
  (measured over 2 s). Load average: $load_before before the runs, $load_after after them.
  A baseline in which a pair got less than $OFF_MIN_SHARE of its CPU (user + sys from
  \`/proc/PID/stat\`) was disturbed by other work and was taken again, up to $OFF_RETRIES times; so was
  one in which a pair ran below $OFF_MIN_SPEED of its best rate so far (from the calibration or an
  earlier baseline), since on this virtual machine a pair now and then runs at about half speed for
  seconds while it gets all of its CPU's time, which only work outside the machine can explain
  (baselines taken again: $retaken, $slowed of them for speed). In the baselines kept, in order, pair A got
  $(printf '%s ' "${share_a[@]}")of its CPU and pair B $(printf '%s ' "${share_b[@]}" | sed 's/ $//').

### Results (median of $RUNS runs, at about $(thousands "$main_switches") context switches/s)

| metric | rprof-bpf | perf | target | result |
|---|---|---|---|---|
| pair A (targeted): slowdown while recording | $(m sa rprof)% | $(m sa perf)% | ≤ $OFF_MAX_SLOWDOWN% and ≤ perf's | $a_ok |
| pair A, with stacks read at every switch (kernels before 6.18) | $(m sa eager)% | $(m sa perf)% | ≤ $OFF_MAX_SLOWDOWN% and ≤ perf's | $eager_ok |
| pair B (not targeted): slowdown while recording | $(m sb rprof)% | $(m sb perf)% | about 0 (≤ $OFF_MAX_UNTARGETED%) | $b_ok |
| pair B: the same, less the empty program's $e_sb% (the hook's own cost) | $r_sb_beyond points | – | ≤ $OFF_MAX_UNTARGETED point | $beyond_ok |

### Details (median of $RUNS runs)

| metric |$(for t in "${tools[@]}"; do printf ' %s |' "$(tool_name "$t")"; done)
|---|$(for t in "${tools[@]}"; do printf -- '---|'; done)
$(row "pair A (targeted): slowdown while recording" sa pct)
$(row "pair B (not targeted): slowdown while recording" sb pct)
$(row "pair A: round trips/s in the baseline" base_a thousands)
$(row "pair A: round trips/s while recording" with_a thousands)
$(row "pair A: time added to each context switch (ns)" added plain)
$(row "the same, as a share of one CPU at 100k switches/s" added share)
$(row "pair A: slowdown over the profiler's whole run, start to exit" life pct)
$(row "profiler's CPU time, user + sys (s)" cpu plain)
$(row "peak RSS (MB)" rss mb)
$(row "blocks recorded with their stacks" recorded thousands)
$(row "switches in the profile" estimated thousands)
$(row "switches in the profile per round trip of pair A" per_trip plain)

\`perf script\` took a median of $(median "${script_cpus[@]}") s of CPU time more to read perf's file; rprof-bpf's
CPU time above already includes symbolization and writing.

### Stress: the maximum rate, harsher than the issue's workload

The same runs with the pairs restarted without work (\`WORK_NS\` 0): each pair makes about
$(thousands "$stress_switches") context switches per second (pair A's median baseline), $stress_times times the issue's workload, so
each switch's cost weighs $stress_times times as much, and with no spin nothing the profilers do goes unseen.
Only rprof-bpf (its default) and perf; the targets are about the workload above, not this one.
Median of $RUNS runs:

| metric | rprof-bpf | perf |
|---|---|---|
$(row "pair A: context switches/s in the baseline" base_a switches "${stress_tools[@]}")
$(row "pair A (targeted): slowdown while recording" sa pct "${stress_tools[@]}")
$(row "pair B (not targeted): slowdown while recording" sb pct "${stress_tools[@]}")
$(row "pair A: time added to each context switch (ns)" added plain "${stress_tools[@]}")
$(row "pair A: slowdown over the profiler's whole run, start to exit" life pct "${stress_tools[@]}")
$(row "profiler's CPU time, user + sys (s)" cpu plain "${stress_tools[@]}")
$(row "switches in the profile per round trip of pair A" per_trip plain "${stress_tools[@]}")

rprof-bpf's summary lines (stderr), in the order of the runs:

\`\`\`
$(printf '%s\n' "${summaries[@]}")
\`\`\`

### How each number is measured

- **throughput**: each pair logs \`<time> <round trips so far>\` every 100 ms. The rate over a window
  is the difference between its first and last log lines inside the window, divided by their
  time difference. A recording's window runs from $OFF_FROM s to $OFF_TO s after the profiler is started, when
  every tool is attached (rprof-bpf reported attaching after at most ${max_attach:-n/a} ms) and still recording.
  The baseline is a window of the same length, with no profiler, right before each recording.
- **slowdown**: 1 − throughput while recording / throughput in the baseline just before, per run;
  the median of the $RUNS runs. Negative values are noise: the pair ran faster than in its baseline.
- **slowdown over the profiler's whole run**: the same, over the window from starting the profiler
  to its exit, so it also charges loading and attaching, and after the recording the reading,
  symbolization and writing (rprof-bpf) or the flush and build-id pass of \`perf record\`.
- **time added to each context switch**: (1 / throughput while recording − 1 / baseline) / 2. A pinned pair
  always has one thread running, so a round trip takes exactly two context switches' worth of
  CPU time (with the work, if any), and the extra time is what the profiler costs per switch. At
  the issue's workload of about 100k switches per second, that cost is the share of a CPU in the
  next row.
- **profiler's CPU time** and **peak RSS**: GNU \`/usr/bin/time -f '%U %S %M'\` around
  \`rprof-bpf record\` and around \`perf record\`. The time the BPF program or perf's tracepoint
  handler spends inside the switching threads is not in these numbers: it is charged to pair A
  (or B), and it is what the slowdown measures.
- **blocks recorded with their stacks**: rprof-bpf's count from its summary line; perf's sample
  count from \`perf record\`'s last line. **switches in the profile**: the sum of \`switches/count\` in
  rprof-bpf's file, decoded by \`go tool pprof -raw\` (with sampling, the sampled blocks weighted
  back to an estimate of all of them); perf's samples again, whose LOST records, from \`perf report
  --stats\`, are in the last table. Per round trip, it divides by pair A's round trips during the
  recording (its rate × $OFF_SECONDS s), and is about 2 when every switch-out of \`ping\` and \`pong\` is
  counted.

### Every run

Throughputs are round trips per second. "CPUs A / B got" is how much of its CPU each pair got over
the whole recording, from \`/proc/PID/stat\`: less than 1.00 when another process took some, the
profiler's own process included. Counters are the non-zero drop and loss counters from
rprof-bpf's summary. The stress runs (no work) come last.

| run | tool | A baseline | A recording | A slowdown | B baseline | B recording | B slowdown | A slowdown, whole run | CPUs A / B got | CPU s | peak RSS (MB) | blocks recorded | switches in the profile | counters |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
        printf '%s\n' "${runs_table[@]}"
    } >"$out_md"
}
