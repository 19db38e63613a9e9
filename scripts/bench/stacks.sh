# The stacks section of scripts/bench.sh, which sources this file and calls bench_stacks; it is not a
# script of its own. It uses bench.sh's helpers and variables (rprof, work, RUNS, bench_pids, ...).
# Its own helpers and constants start with st_ / ST_, so that they clash with no other section's.
#
# How complete the user stacks of real programs are: the rooted share, the share of samples (cpu),
# of blocked time (off-cpu) or of creations (threadcreate) whose user stack reaches the program's or
# the thread's entry, for rprof-bpf and, as the peer, `perf record --call-graph dwarf`, both
# recording the same run of the workload at the same time. It reports shares only, no CPU time (the
# other sections measure costs), so other work on the machine matters little here.
#
#   programs  (C built the way distributions build: gcc -O2 -g -pthread, no frame-pointer flags)
#     sigcpu    tests/workloads/signal_work.c `cpu 9`: CPU time inside a SIGALRM handler
#     sigblock  signal_work `block 9`: a thread blocked in read() whose SIGUSR1 handler sleeps
#     creators  tests/workloads/creators.c `6`: threads and processes made through libc's wrappers
#     pg        PostgreSQL 15 under `pgbench -c 4`: the postmaster and its children, cpu and off-cpu
#               in one window (two rows: pgcpu and pgoff)
#     node      Node 20 `node --perf-basic-prof jit_fib.js 9`, in a directory of its own
#     java      Java 17 `java -XX:+PreserveFramePointer JitSpin 9`, its perf map written by
#               `jcmd PID Compiler.perfmap` after its warm-up
#     python    CPython 3.12 `python3 -X perf py_fib.py 9`
#     go        tests/workloads/gocpu `OUT.pprof 5 250 leaf` (`go build`), which writes its own
#               runtime/pprof profile
#     gostrip   the same built with `go build -ldflags='-s -w'` (no symbol table, no DWARF)
#   attach    Most programs are started, and once ready (signal_work prints "ready"; Node and
#             CPython get ST_WARMUP s; Java is warmed up and its map written; pgbench's backends are
#             forked) both tools attach with -p at the same time for the same ST_SECONDS
#             (rprof-bpf --seconds, perf `-- sleep`). The two whose whole run matters, creators (its
#             creations come 300 ms after its start) and gocpu (compared with its own profile of its
#             run), are stopped (SIGSTOP) right after their exec, once libc is mapped; both tools
#             attach with -p, then it continues and both record until it exits. (Attached before
#             the exec, both tools start from the launching shell's maps: perf's stacks then stopped
#             in libc, and rprof-bpf counted the stopped shell's time as off-CPU.)
#   tools     rprof-bpf record -F 99 [--type KIND] -p PID -o FILE (its default --call-graph dwarf)
#             perf record --call-graph dwarf -p PID -o FILE, with -F 99 (cpu), -e sched:sched_switch
#             (off-cpu: perf has no blocked time, so its switches are counted) or
#             -e sched:sched_process_fork (threadcreate: the parent's stack, in fork, vfork, clone
#             and clone3 alike)
#   rooted    scripts/bench/stacks_share.py, from `rprof-bpf report --format folded` and from
#             `perf script`: the outermost user frame is _start, clone3, clone, __clone3, __clone,
#             runtime.goexit or runtime.mstart (Go), and no frame is `[truncated: ...]`.

ST_HZ=99            # both tools' sampling frequency (cpu)
ST_SECONDS=5        # the window both tools record (-p), and gocpu's run
ST_EXTRA=4          # a program recorded in a window runs this much longer than the window
ST_ATTEMPTS=3       # a window recording in which a tool failed (the program ended first) is taken again
ST_WARMUP=1         # seconds Node and CPython run before the window (start-up, JIT code compiled)
ST_CREATIONS=6      # creators' creations per way of creating
ST_PG_CLIENTS=4     # pgbench -c
ST_PG_ATTEMPTS=5    # a recording refused because a short-lived process exited is tried again
ST_ATTACH_WAIT=30   # seconds both tools get to attach
ST_RECORDINGS=(sigcpu sigblock creators pg node java python go gostrip)
ST_ROWS=(sigcpu sigblock creators pgcpu pgoff node java python go gostrip)

# Per row: what it shows, the kind of profile, what is counted, the hot function's name in frames
# (JIT rows: the runtimes decorate names: `JS:*fib /path:3:13`, `long JitSpin.fib(int)`,
# `py::fib:/path`), and the two callers whose shares are compared (Go).
declare -A ST_PROGRAM=(
    [sigcpu]="signal_work.c \`cpu $((ST_SECONDS + ST_EXTRA))\` (CPU in a SIGALRM handler)"
    [sigblock]="signal_work.c \`block $((ST_SECONDS + ST_EXTRA))\` (a SIGUSR1 handler sleeping in a thread blocked in read)"
    [creators]="creators.c \`$ST_CREATIONS\` (pthread_create, fork, posix_spawn, system, vfork)"
    [pgcpu]="PostgreSQL 15 under \`pgbench -c $ST_PG_CLIENTS\`"
    [pgoff]="PostgreSQL 15 under \`pgbench -c $ST_PG_CLIENTS\`"
    [node]="Node 20 \`--perf-basic-prof jit_fib.js $((ST_SECONDS + ST_EXTRA))\`"
    [java]="Java 17 \`JitSpin $((ST_SECONDS + ST_EXTRA))\`, \`-XX:+PreserveFramePointer\`, jcmd Compiler.perfmap"
    [python]="CPython 3.12 \`-X perf py_fib.py $((ST_SECONDS + ST_EXTRA))\`"
    [go]="Go gocpu \`leaf\` (go build)"
    [gostrip]="Go gocpu \`leaf\` (-ldflags='-s -w')"
)
declare -A ST_KIND=(
    [sigcpu]=cpu [sigblock]=off-cpu [creators]=threadcreate [pgcpu]=cpu [pgoff]=off-cpu
    [node]=cpu [java]=cpu [python]=cpu [go]=cpu [gostrip]=cpu
)
declare -A ST_NAMED=(
    [node]='^JS:[*~^+]?fib( |$)'
    [java]='JitSpin\.fib\('
    [python]='^py::fib:'
)
declare -A ST_NAMED_SHOWN=([node]='fib' [java]='JitSpin.fib' [python]='fib')
declare -A ST_VIA=([go]="main.viaA main.viaB" [gostrip]="main.viaA main.viaB")

# st_pct PART WHOLE: PART as a percentage of WHOLE, one decimal; "" when WHOLE is 0.
st_pct() { awk -v p="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.1f", 100 * p / w }'; }

# st_or_na PCT: "PCT%", or "n/a" when it is empty.
st_or_na() { if [[ -n "$1" ]]; then echo "$1%"; else echo "n/a"; fi; }

# st_forget PID: drop a process that has been waited for from bench_pids (without killing anything).
st_forget() {
    local p kept=()
    for p in "${bench_pids[@]}"; do
        [[ "$p" == "$1" ]] || kept+=("$p")
    done
    bench_pids=("${kept[@]}")
}

# st_comments PROFILE: the profile's comments, one per line, without "Comment: ".
st_comments() { go tool pprof -raw "$1" 2>/dev/null | sed -n 's/^Comment: //p' || true; }

# st_weight KIND W: a weight of stacks for the tables: nanoseconds blocked as ms, else as it is.
st_weight() {
    if [[ "$1" == off-cpu ]]; then awk -v w="$2" 'BEGIN { printf "%.0f ms", w / 1e6 }'; else echo "$2"; fi
}

# st_why KIND FILE: the heaviest outermost frames of the stacks that are not rooted (stacks_share.py
# --why), at most 3, as "W frame, W frame"; "none" when all are rooted.
st_why() {
    local w frame out="" n=0
    while read -r w frame && ((n < 3)); do
        out+="${out:+, }$(st_weight "$1" "$w") \`$frame\`"
        n=$((n + 1))
    done <"$2"
    echo "${out:-none}"
}

# st_m ARRAY ROW: the median of the entries of an associative array (named) keyed "ROW RUN", over
# the runs that have one.
st_m() {
    local -n arr="$1"
    local run vals=()
    for run in $(seq "$RUNS"); do
        [[ -n "${arr[$2 $run]:-}" ]] && vals+=("${arr[$2 $run]}")
    done
    median "${vals[@]}"
}

# bench_stacks OUT: runs the section and writes its part of BENCHMARKS.md to OUT.
bench_stacks() {
    local out_md="$1" dir="$work/stacks"
    rm -rf "$dir"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)" # absolute: the programs run in directories of their own
    local root="$PWD" tracefs=/sys/kernel/tracing tracefs_note

    local tool
    for tool in gcc node java javac jcmd go perf python3 runuser; do
        command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
    done
    local pg_bin=/usr/lib/postgresql/15/bin
    [[ -x "$pg_bin/postgres" && -x "$pg_bin/pgbench" ]] ||
        die "PostgreSQL 15 is missing from $pg_bin (scripts/setup.sh installs Debian's postgresql)"
    local python
    python="$(find /root/.pyenv/versions -maxdepth 3 -path '*/3.12.*/bin/python3' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$python" ]] || die "no CPython 3.12 under /root/.pyenv/versions (the python row needs its -X perf)"

    # A copy of the binary, taken now: a build during the run (others may be working in this tree)
    # must not change it half way.
    local st_bin="$dir/rprof-bpf" bin_date
    cp "$rprof" "$st_bin" || die "cannot copy $rprof"
    bin_date="$(date -u -r "$rprof" '+%Y-%m-%d %H:%M UTC')"

    # perf's sched:sched_switch and sched:sched_process_fork are tracefs events.
    if mountpoint -q "$tracefs"; then
        tracefs_note="tracefs was mounted at \`$tracefs\`"
    else
        echo "==> mounting tracefs at $tracefs for perf's sched events (it is unmounted again at the end)" >&2
        mount -t tracefs nodev "$tracefs" || die "could not mount tracefs at $tracefs, which perf needs"
        mounted_tracefs="$tracefs"
        tracefs_note="tracefs was not mounted, so the script mounted it for perf (and unmounted it at the end)"
    fi

    # --- the programs -------------------------------------------------------------------------------

    echo "==> building the C workloads (gcc -O2 -g -pthread), gocpu (go build, and with -ldflags='-s -w'), JitSpin (javac)" >&2
    gcc -O2 -g -pthread -o "$dir/signal_work" tests/workloads/signal_work.c
    gcc -O2 -g -pthread -o "$dir/creators" tests/workloads/creators.c
    (cd tests/workloads/gocpu && CGO_ENABLED=0 GOFLAGS='' GOTOOLCHAIN=local go build -o "$dir/gocpu" .) ||
        die "go build of tests/workloads/gocpu failed"
    (cd tests/workloads/gocpu && CGO_ENABLED=0 GOFLAGS='' GOTOOLCHAIN=local go build -ldflags='-s -w' -o "$dir/gocpu-stripped" .) ||
        die "go build -ldflags='-s -w' of tests/workloads/gocpu failed"
    mkdir -p "$dir/java"
    javac -d "$dir/java" tests/workloads/JitSpin.java || die "javac JitSpin.java failed"

    # A throw-away PostgreSQL cluster, as the postgres user, on a Unix socket only (as the test
    # postgres_under_pgbench_has_complete_stacks starts one); stopped on exit.
    local pg_tmp pg_port=$((20000 + $$ % 20000))
    pg_tmp="$(mktemp -d /tmp/rprof-bench-pg.XXXXXX)"
    chown -R postgres: "$pg_tmp"
    st_pg_stop() {
        runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_tmp/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_tmp"
    }
    bench_on_exit+=(st_pg_stop)
    echo "==> starting PostgreSQL 15 in $pg_tmp (port $pg_port, Unix socket only) and pgbench -i" >&2
    runuser -u postgres -- "$pg_bin/initdb" -D "$pg_tmp/data" -A trust --no-sync >"$dir/pg.initdb.log" 2>&1 ||
        { cat "$dir/pg.initdb.log" >&2; die "initdb failed"; }
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_tmp/data" \
        -o "-k $pg_tmp -c listen_addresses= -p $pg_port -c fsync=off" -l "$pg_tmp/log" -w start \
        >"$dir/pg.start.log" 2>&1 || { cat "$dir/pg.start.log" "$pg_tmp/log" >&2; die "pg_ctl start failed"; }
    runuser -u postgres -- "$pg_bin/pgbench" -h "$pg_tmp" -p "$pg_port" -i -s 1 -q postgres \
        >"$dir/pg.init.log" 2>&1 || { cat "$dir/pg.init.log" >&2; die "pgbench -i failed"; }

    # The perf maps the JIT runtimes write (/tmp/perf-PID.map) of the programs it started: removed
    # once counted, and on exit.
    local st_map_pids=()
    st_remove_maps() {
        local p
        for p in "${st_map_pids[@]}"; do rm -f "/tmp/perf-$p.map"; done
    }
    bench_on_exit+=(st_remove_maps)

    wait_for_quiet
    local load_before load_after
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

    # Every measurement, keyed "ROW RUN".
    local -A r_total r_rooted r_named r_via_a r_via_b r_summary r_ended r_why r_attach
    local -A p_total p_rooted p_named p_via_a p_via_b p_why p_mb p_lost
    local -A go_via note
    local run rec

    # The tools of one recording: rprof-bpf's pid, perf's pids and files.
    local st_rprof_pid st_rprof_err st_rprof_out
    local -a st_perf_pids st_perf_data

    # st_tools_start F PIDS SECONDS KIND...: starts rprof-bpf (one process, all KINDs) and one perf
    # per KIND on PIDS (comma-separated), for SECONDS, or until the targets exit when SECONDS is "".
    # rprof-bpf writes F.pb.gz (F.KIND.pb.gz with several KINDs), perf F.KIND.perf.data.
    st_tools_start() {
        local f="$1" pids="$2" seconds="$3" kind types
        shift 3
        types="$(IFS=,; echo "$*")"
        local r_window=() p_window=() event=()
        if [[ -n "$seconds" ]]; then r_window=(--seconds "$seconds") p_window=(-- sleep "$seconds"); fi
        st_rprof_out="$f.pb.gz" st_rprof_err="$f.rprof.stderr"
        RPROF_TIMINGS=1 "$st_bin" record -F "$ST_HZ" --type "$types" -p "$pids" "${r_window[@]}" \
            -o "$st_rprof_out" >"$f.rprof.stdout" 2>"$st_rprof_err" &
        st_rprof_pid=$!
        bench_pids+=("$st_rprof_pid")
        st_perf_pids=() st_perf_data=()
        for kind in "$@"; do
            case "$kind" in
            cpu) event=(-F "$ST_HZ") ;;
            off-cpu) event=(-e sched:sched_switch) ;;
            threadcreate) event=(-e sched:sched_process_fork) ;;
            esac
            perf record "${event[@]}" --call-graph dwarf -p "$pids" -o "$f.$kind.perf.data" "${p_window[@]}" \
                >"$f.$kind.perf.stdout" 2>"$f.$kind.perf.stderr" &
            st_perf_pids+=($!)
            st_perf_data+=("$f.$kind.perf.data")
            bench_pids+=($!)
        done
    }

    # st_tools_attached: waits until rprof-bpf says it is attached (RPROF_TIMINGS' attach_ms line)
    # and every perf has written the records it synthesizes once its events are open; fails when a
    # tool exited first or after ST_ATTACH_WAIT seconds.
    st_tools_attached() {
        local waited=0 p d ready
        while ((waited < ST_ATTACH_WAIT * 10)); do
            ready=yes
            grep -q '^timing: attach_ms=' "$st_rprof_err" 2>/dev/null || ready=no
            for d in "${st_perf_data[@]}"; do
                [[ "$(stat -c %s "$d" 2>/dev/null || echo 0)" -ge 1024 ]] || ready=no
            done
            if [[ "$ready" == yes ]]; then
                sleep 0.3
                return 0
            fi
            for p in "$st_rprof_pid" "${st_perf_pids[@]}"; do
                kill -0 "$p" 2>/dev/null || return 1
            done
            sleep 0.1
            waited=$((waited + 1))
        done
        return 1
    }

    # st_tools_wait: waits for the tools; fails when any of them failed.
    st_tools_wait() {
        local p ok=0 status
        for p in "$st_rprof_pid" "${st_perf_pids[@]}"; do
            status=0
            wait "$p" || status=$?
            st_forget "$p"
            if ((status != 0)); then
                echo "    $([[ "$p" == "$st_rprof_pid" ]] && echo rprof-bpf || echo perf) (pid $p) exited with status $status" >&2
                ok=1
            fi
        done
        return "$ok"
    }

    # st_tools_stop: stops the tools (after a failure), by their pids.
    st_tools_stop() {
        local p
        for p in "$st_rprof_pid" "${st_perf_pids[@]}"; do stop_pid "$p"; done
    }

    # st_tools_died WHAT: the tools' stderr, then dies.
    st_tools_died() {
        local f
        for f in "$st_rprof_err" "${st_perf_data[@]/%.perf.data/.perf.stderr}"; do
            echo "--- $f" >&2
            tail -n 20 "$f" >&2 || true
        done
        die "$1"
    }

    # st_launched F CWD COMMAND...: runs COMMAND in CWD and stops it (SIGSTOP) as soon as it has
    # exec'd and, unless it is static, the dynamic loader has mapped libc; both tools attach to it
    # with -p, then it continues, and they record until it exits (st_tools_start's KINDs from
    # st_kinds). Its pid in st_launched_pid. (Attaching before the exec would leave the tools with
    # the launching shell's maps.)
    local st_kinds=() st_launched_pid=""
    st_launched() {
        local f="$1" cwd="$2" exe dynamic=no pid state="" i
        shift 2
        exe="$(readlink -f "$(command -v "$1")")"
        readelf -l "$exe" 2>/dev/null | grep -q 'INTERP' && dynamic=yes
        (cd "$cwd" && exec "$@") >"$f.out" 2>&1 &
        pid=$!
        st_launched_pid="$pid"
        bench_pids+=("$pid")
        for i in $(seq 1000); do
            if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$exe" ]] &&
                { [[ "$dynamic" == no ]] || grep -q 'libc\.so' "/proc/$pid/maps" 2>/dev/null; }; then
                kill -STOP "$pid"
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.002
        done
        for i in $(seq 100); do
            state="$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)"
            [[ "$state" == T ]] && break
            sleep 0.01
        done
        [[ "$state" == T ]] || die "could not stop $* right after its exec (state ${state:-gone})"
        st_tools_start "$f" "$pid" "" "${st_kinds[@]}"
        if ! st_tools_attached; then
            st_tools_stop
            stop_pid "$pid"
            st_tools_died "the tools did not attach to $* (pid $pid)"
        fi
        kill -CONT "$pid"
        if ! wait "$pid"; then
            st_forget "$pid"
            cat "$f.out" >&2
            st_tools_stop
            die "$* failed; its output is above"
        fi
        st_forget "$pid"
        st_tools_wait || st_tools_died "a tool failed while recording $*"
    }

    # st_windowed F CWD WAIT COMMAND...: starts COMMAND in CWD and, once it is ready (WAIT "ready":
    # it prints a line starting with "ready"; else WAIT seconds after its start), both tools attach
    # to it with -p for ST_SECONDS; then waits for it to end. Its pid in st_launched_pid. Fails
    # when a tool did.
    st_windowed() {
        local f="$1" cwd="$2" ready="$3" pid i
        shift 3
        (cd "$cwd" && exec "$@") >"$f.out" 2>&1 &
        pid=$!
        st_launched_pid="$pid"
        st_map_pids+=("$pid")
        bench_pids+=("$pid")
        if [[ "$ready" == ready ]]; then
            for i in $(seq 600); do
                grep -q '^ready' "$f.out" && break
                kill -0 "$pid" 2>/dev/null || die "$* exited before it was ready: $(head -c 500 "$f.out")"
                sleep 0.1
            done
            grep -q '^ready' "$f.out" || die "$* did not say it was ready within 60 s"
        else
            sleep "$ready"
        fi
        st_tools_start "$f" "$pid" "$ST_SECONDS" "${st_kinds[@]}"
        local tools=0
        st_tools_wait || tools=1
        if ! wait "$pid"; then
            st_forget "$pid"
            cat "$f.out" >&2
            st_tools_stop
            die "$* failed; its output is above"
        fi
        st_forget "$pid"
        return "$tools"
    }

    # st_window_again WHAT...: st_windowed, taken again when a tool failed (on a busy machine the
    # program can end before a tool's window does), at most ST_ATTEMPTS times in all.
    st_window_again() {
        local attempt
        for attempt in $(seq "$ST_ATTEMPTS"); do
            st_windowed "$@" && return 0
            rm -f "/tmp/perf-$st_launched_pid.map"
            ((attempt < ST_ATTEMPTS)) || st_tools_died "a tool failed $ST_ATTEMPTS times while recording ${*:4}"
            echo "    a tool failed (see above): taking this recording again" >&2
        done
    }

    # st_analyze ROW RUN KIND RPROF_FILE PERF_DATA: the shares of one recording of one kind.
    st_analyze() {
        local row="$1" k="$1 $2" kind="$3" rfile="$4" pdata="$5" base="$dir/$1.$2" idx out comments
        local args=()
        case "$kind" in
        cpu) idx=samples ;;
        off-cpu) idx=off_cpu ;;
        threadcreate) idx=threadcreate ;;
        esac
        [[ -z "${ST_NAMED[$row]:-}" ]] || args+=(--named "${ST_NAMED[$row]}")
        # shellcheck disable=SC2206 # two words
        [[ -z "${ST_VIA[$row]:-}" ]] || args+=(--via ${ST_VIA[$row]})
        "$st_bin" report --format folded --sample-index "$idx" -o "$base.folded" "$rfile" 2>"$base.report.stderr" ||
            { cat "$base.report.stderr" >&2; die "rprof-bpf report --format folded failed on $rfile"; }
        out="$(python3 scripts/bench/stacks_share.py folded "$base.folded" "${args[@]}" --why "$base.rprof.why")" ||
            die "stacks_share.py failed on $base.folded"
        read -r "r_total[$k]" "r_rooted[$k]" "r_named[$k]" "r_via_a[$k]" "r_via_b[$k]" <<<"$out"
        r_why[$k]="$(st_why "$kind" "$base.rprof.why")"
        # rprof-bpf's own summary line, and the comment with how its user stacks ended.
        r_summary[$k]="$(grep -E "^rprof-bpf: $kind: " "$st_rprof_err" | sed -nE 's/.* ([0-9.]+)% of user stacks complete.*/\1/p' | head -n 1)"
        comments="$(st_comments "$rfile")"
        [[ -n "$comments" ]] || die "go tool pprof cannot read $rfile"
        r_ended[$k]="$(grep -m 1 '^user stacks unwound in user space, by how they ended' <<<"$comments" | sed 's/^[^:]*: //' || true)"
        r_attach[$k]="$(timing attach_ms "$st_rprof_err")"

        perf script -i "$pdata" >"$base.perf.txt" 2>"$base.perf-script.stderr" ||
            { tail -n 20 "$base.perf-script.stderr" >&2; die "perf script failed on $pdata"; }
        out="$(python3 scripts/bench/stacks_share.py perf "$base.perf.txt" "${args[@]}" --why "$base.perf.why")" ||
            die "stacks_share.py failed on $base.perf.txt"
        read -r "p_total[$k]" "p_rooted[$k]" "p_named[$k]" "p_via_a[$k]" "p_via_b[$k]" <<<"$out"
        p_why[$k]="$(st_why perf "$base.perf.why")"
        p_mb[$k]="$(awk -v b="$(stat -c %s "$pdata")" 'BEGIN { printf "%.1f", b / 1048576 }')"
        p_lost[$k]="$(grep -ihoE '(lost [0-9]+ chunks|[0-9]+ lost samples|lost [0-9]+ samples)' "${pdata%.data}.stderr" | head -n 1 || true)"
        # perf's data is large (PostgreSQL's switches: hundreds of MB); the shares are taken.
        rm -f "$pdata" "$base.perf.txt"
        echo "    $row run $2: rprof-bpf rooted $(st_pct "${r_rooted[$k]}" "${r_total[$k]}")% of $(st_weight "$kind" "${r_total[$k]}")," \
            "perf $(st_pct "${p_rooted[$k]}" "${p_total[$k]}")% of ${p_total[$k]}" >&2
    }

    # st_record_launched REC RUN: one recording of any program but PostgreSQL and Java.
    st_record_launched() {
        local rec="$1" run="$2" f="$dir/$1.$2" cwd="$dir" bin
        case "$rec" in
        # Attached once it says it is ready (its signals and threads are set up), for ST_SECONDS.
        sigcpu) st_kinds=(cpu) && st_window_again "$f" "$cwd" ready "$dir/signal_work" cpu $((ST_SECONDS + ST_EXTRA)) ;;
        sigblock) st_kinds=(off-cpu) && st_window_again "$f" "$cwd" ready "$dir/signal_work" block $((ST_SECONDS + ST_EXTRA)) ;;
        creators) st_kinds=(threadcreate) && st_launched "$f" "$cwd" "$dir/creators" "$ST_CREATIONS" ;;
        node)
            # With --perf-basic-prof V8 also writes a log into its working directory.
            cwd="$dir/node.$run"
            mkdir -p "$cwd"
            st_kinds=(cpu) && st_window_again "$f" "$cwd" "$ST_WARMUP" node --perf-basic-prof "$root/tests/workloads/jit_fib.js" $((ST_SECONDS + ST_EXTRA))
            ;;
        python) st_kinds=(cpu) && st_window_again "$f" "$cwd" "$ST_WARMUP" "$python" -X perf "$root/tests/workloads/py_fib.py" $((ST_SECONDS + ST_EXTRA)) ;;
        go | gostrip)
            bin="$dir/gocpu"
            [[ "$rec" == go ]] || bin="$dir/gocpu-stripped"
            st_kinds=(cpu) && st_launched "$f" "$cwd" "$bin" "$f.go.pprof" "$ST_SECONDS" 250 leaf
            ;;
        esac
        grep -q done "$f.out" || die "$rec did not print done; its output: $(head -c 500 "$f.out")"
        st_analyze "$rec" "$run" "${ST_KIND[$rec]}" "$st_rprof_out" "${st_perf_data[0]}"
        if [[ "$rec" == go || "$rec" == gostrip ]]; then
            # Go's own profile: main.viaA's cumulative time among viaA's and viaB's.
            local top a b
            top="$(go tool pprof -top -cum -unit=ms "$f.go.pprof" 2>/dev/null)" || die "go tool pprof cannot read $f.go.pprof"
            a="$(awk '$NF == "main.viaA" { print $4 + 0; exit }' <<<"$top")"
            b="$(awk '$NF == "main.viaB" { print $4 + 0; exit }' <<<"$top")"
            go_via["$rec $run"]="$(st_pct "${a:-0}" "$((${a:-0} + ${b:-0}))")"
            note["$rec $run"]="Go's own profile (\`go tool pprof -top -cum\`): viaA ${a:-0} ms, viaB ${b:-0} ms cumulative"
        fi
        # The map a runtime wrote for its JIT code (the program has the pid of the subshell that exec'd it).
        rm -f "/tmp/perf-$st_launched_pid.map"
    }

    # st_record_java RUN: JitSpin, its map written by jcmd after the warm-up, both tools with -p
    # for ST_SECONDS; taken again when a tool failed, as st_window_again does.
    st_record_java() {
        local run="$1" f="$dir/java.$1" jpid pid i attempt tools
        for attempt in $(seq "$ST_ATTEMPTS"); do
            java -XX:+PreserveFramePointer -cp "$dir/java" JitSpin $((ST_SECONDS + ST_EXTRA)) >"$f.out" 2>&1 &
            jpid=$!
            bench_pids+=("$jpid")
            for i in $(seq 600); do
                grep -q '^ready ' "$f.out" && break
                kill -0 "$jpid" 2>/dev/null || die "JitSpin exited before it was ready: $(head -c 500 "$f.out")"
                sleep 0.1
            done
            pid="$(awk '/^ready / { print $2; exit }' "$f.out")"
            [[ -n "$pid" ]] || die "JitSpin did not say it was ready within 60 s"
            st_map_pids+=("$pid")
            jcmd "$pid" Compiler.perfmap >"$f.jcmd.log" 2>&1 || { cat "$f.jcmd.log" >&2; die "jcmd $pid Compiler.perfmap failed"; }
            st_tools_start "$f" "$pid" "$ST_SECONDS" cpu
            tools=0
            st_tools_wait || tools=1
            stop_pid "$jpid"
            ((tools == 0)) && break
            rm -f "/tmp/perf-$pid.map"
            ((attempt < ST_ATTEMPTS)) || st_tools_died "a tool failed $ST_ATTEMPTS times while recording JitSpin"
            echo "    a tool failed (see above): taking this recording again" >&2
        done
        st_analyze java "$run" cpu "$st_rprof_out" "${st_perf_data[0]}"
        rm -f "/tmp/perf-$pid.map"
    }

    # st_pg_pids: the postmaster and every process it has forked, comma-separated.
    st_pg_pids() {
        local pm
        pm="$(head -n 1 "$pg_tmp/data/postmaster.pid" 2>/dev/null)" || return 0
        echo "$pm $(cat "/proc/$pm/task/$pm/children" 2>/dev/null)" | xargs | tr ' ' ,
    }

    # st_record_pg RUN: pgbench -c ST_PG_CLIENTS against the cluster; once its backends are
    # forked, rprof-bpf (cpu and off-cpu) and two perfs (-F 99; sched:sched_switch) on every
    # PostgreSQL process for ST_SECONDS. Short-lived processes (autovacuum workers) can exit between
    # the listing and the start of a tool, which then refuses their pid: that recording is tried
    # again, with a new pgbench.
    st_record_pg() {
        local run="$1" f="$dir/pg.$1" attempt pb_pid pids="" i ok tps
        for attempt in $(seq "$ST_PG_ATTEMPTS"); do
            runuser -u postgres -- "$pg_bin/pgbench" -h "$pg_tmp" -p "$pg_port" -c "$ST_PG_CLIENTS" \
                -T $((ST_SECONDS + ST_EXTRA)) postgres >"$f.pgbench.log" 2>&1 &
            pb_pid=$!
            bench_pids+=("$pb_pid")
            # The postmaster, its 5 auxiliary processes (PostgreSQL 15) and a backend per client.
            for i in $(seq 100); do
                pids="$(st_pg_pids)"
                (($(tr , '\n' <<<"$pids" | grep -c .) >= 6 + ST_PG_CLIENTS)) && break
                sleep 0.1
            done
            st_tools_start "$f" "$pids" "$ST_SECONDS" cpu off-cpu
            ok=yes
            st_tools_wait || ok=no
            wait "$pb_pid" || true
            st_forget "$pb_pid"
            [[ "$ok" == no ]] || break
            ((attempt < ST_PG_ATTEMPTS)) || st_tools_died "recording PostgreSQL failed $ST_PG_ATTEMPTS times"
            echo "    a tool refused the pids $pids (one exited?): again" >&2
        done
        tps="$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$f.pgbench.log" | head -n 1)"
        [[ -n "$tps" ]] || { cat "$f.pgbench.log" >&2; die "pgbench did not run"; }
        local n
        n="$(tr , '\n' <<<"$pids" | grep -c .)"
        note["pgcpu $run"]="$n processes, pgbench $(printf '%.0f' "$tps") tps; attempt $attempt"
        note["pgoff $run"]="${note["pgcpu $run"]}"
        st_analyze pgcpu "$run" cpu "$f.cpu.pb.gz" "$f.cpu.perf.data"
        st_analyze pgoff "$run" off-cpu "$f.off-cpu.pb.gz" "$f.off-cpu.perf.data"
    }

    for run in $(seq "$RUNS"); do
        for rec in "${ST_RECORDINGS[@]}"; do
            echo "==> run $run/$RUNS: $rec" >&2
            case "$rec" in
            pg) st_record_pg "$run" ;;
            java) st_record_java "$run" ;;
            *) st_record_launched "$rec" "$run" ;;
            esac
        done
    done
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
    st_pg_stop
    st_remove_maps
    local kept=() c
    for c in "${bench_on_exit[@]}"; do [[ "$c" == st_pg_stop || "$c" == st_remove_maps ]] || kept+=("$c"); done
    bench_on_exit=("${kept[@]}")

    # --- results ------------------------------------------------------------------------------------

    local -A r_pct p_pct r_npct p_npct r_vpct p_vpct
    local row k results=() runs_table=() counted named via r_m p_m
    for row in "${ST_ROWS[@]}"; do
        for run in $(seq "$RUNS"); do
            k="$row $run"
            r_pct[$k]="$(st_pct "${r_rooted[$k]}" "${r_total[$k]}")"
            p_pct[$k]="$(st_pct "${p_rooted[$k]}" "${p_total[$k]}")"
            if [[ -n "${ST_NAMED[$row]:-}" ]]; then
                r_npct[$k]="$(st_pct "${r_named[$k]}" "${r_total[$k]}")"
                p_npct[$k]="$(st_pct "${p_named[$k]}" "${p_total[$k]}")"
            fi
            if [[ -n "${ST_VIA[$row]:-}" ]]; then
                r_vpct[$k]="$(st_pct "${r_via_a[$k]}" "$((r_via_a[$k] + r_via_b[$k]))")"
                p_vpct[$k]="$(st_pct "${p_via_a[$k]}" "$((p_via_a[$k] + p_via_b[$k]))")"
            fi
        done
        r_m="$(st_m r_total "$row")" p_m="$(st_m p_total "$row")"
        case "${ST_KIND[$row]}" in
        cpu) counted="samples ($(printf '%.0f' "$r_m") / $(printf '%.0f' "$p_m"))" ;;
        off-cpu) counted="rprof-bpf: blocked time ($(st_weight off-cpu "$r_m")); perf: switches ($(printf '%.0f' "$p_m"))" ;;
        threadcreate) counted="creations ($(printf '%.0f' "$r_m") / $(printf '%.0f' "$p_m"))" ;;
        esac
        named="–" via="–"
        if [[ -n "${ST_NAMED[$row]:-}" ]]; then
            named="\`${ST_NAMED_SHOWN[$row]}\`: $(st_m r_npct "$row") / $(st_m p_npct "$row")"
        fi
        if [[ -n "${ST_VIA[$row]:-}" ]]; then
            via="$(st_m r_vpct "$row") / $(st_m p_vpct "$row" | grep . || echo "n/a") / $(st_m go_via "$row")"
        fi
        results+=("| ${ST_PROGRAM[$row]} | ${ST_KIND[$row]}: $counted | $(st_m r_pct "$row") | $(st_m p_pct "$row") | $(st_m r_summary "$row") | $named | $via |")
        for run in $(seq "$RUNS"); do
            k="$row $run"
            local extra="" kind="${ST_KIND[$row]}"
            [[ -z "${ST_NAMED[$row]:-}" ]] || extra="named \`${ST_NAMED_SHOWN[$row]}\`: $(st_or_na "${r_npct[$k]}") / $(st_or_na "${p_npct[$k]}")"
            [[ -z "${ST_VIA[$row]:-}" ]] || extra="viaA of viaA+viaB: $(st_or_na "${r_vpct[$k]}") / $(st_or_na "${p_vpct[$k]}") / $(st_or_na "${go_via[$k]}")"
            runs_table+=("| $row | $run | $(st_weight "$kind" "${r_rooted[$k]}") / $(st_weight "$kind" "${r_total[$k]}") ($(st_or_na "${r_pct[$k]}")) | ${p_rooted[$k]} / ${p_total[$k]} ($(st_or_na "${p_pct[$k]}")) | ${r_summary[$k]:-?}%; ${r_ended[$k]:-not reported} | ${r_why[$k]}; ${p_why[$k]} | ${extra:-–} | rprof-bpf attached in ${r_attach[$k]:-?} ms; perf data ${p_mb[$k]} MB${p_lost[$k]:+, $(sed 's/|/\\|/g' <<<"${p_lost[$k]}")}${note[$k]:+; ${note[$k]}} |")
        done
    done

    # What stands out, from the medians: each line only when its numbers say so.
    local notes=() m_r m_p list="" low=""
    # st_gap ROW: rprof-bpf's median rooted share less perf's.
    st_gap() { awk -v r="$(st_m r_pct "$1")" -v p="$(st_m p_pct "$1")" 'BEGIN { printf "%.1f", r - p }'; }
    # st_run_of ROW: the first run of ROW whose rprof-bpf share is below 98%.
    st_low_run() {
        local run
        for run in $(seq "$RUNS"); do
            if [[ "$(verdict "${r_pct[$1 $run]:-0} < 98")" == PASS ]]; then echo "$run"; return; fi
        done
    }
    if [[ "$(verdict "$(st_gap node) > 5 || $(st_gap java) > 5 || $(st_gap python) > 5")" == PASS ]]; then
        notes+=("JIT code has no CFI: perf's DWARF unwinding stops at the first JIT frame, $(st_m p_pct node)% / $(st_m p_pct java)% / $(st_m p_pct python)% rooted (Node / Java / CPython) against rprof-bpf's $(st_m r_pct node)% / $(st_m r_pct java)% / $(st_m r_pct python)%; both name the hot function from the same perf maps.")
    fi
    if [[ "$(verdict "$(st_gap go) > 5 || $(st_gap gostrip) > 5")" == PASS ]]; then
        notes+=("Go has no \`.eh_frame\`: perf stops at the frameless leaf \`main.spin\` ($(st_m p_pct go)% / $(st_m p_pct gostrip)% rooted, normal / stripped) and cannot split viaA from viaB; rprof-bpf, from the pclntab, roots $(st_m r_pct go)% / $(st_m r_pct gostrip)% and gives viaA $(st_m r_vpct go)% / $(st_m r_vpct gostrip)% (Go's own: $(st_m go_via go)% / $(st_m go_via gostrip)%).")
    fi
    if [[ "$(verdict "$(st_gap creators) > 5")" == PASS ]]; then
        notes+=("glibc's \`clone3\` has no CFI at the system call: perf's pthread_create, posix_spawn and system creations stop there ($(st_m p_pct creators)% rooted against $(st_m r_pct creators)%; perf's unrooted, run 1: ${p_why[creators 1]}).")
    fi
    for row in sigcpu sigblock pgcpu pgoff; do
        [[ "$(verdict "$(st_gap "$row") <= 5")" == PASS ]] && list+="${list:+, }$row $(st_m r_pct "$row")% / $(st_m p_pct "$row")%"
    done
    for row in "${ST_ROWS[@]}"; do
        run="$(st_low_run "$row")"
        [[ -z "$run" ]] || low+="${low:+; }$row run $run: ${r_pct[$row $run]}% (${r_ended[$row $run]:-not reported}; not rooted: ${r_why[$row $run]})"
    done
    if [[ -n "$list" || -n "$low" ]]; then
        notes+=("${list:+With CFI, signal frames included, both are close (rprof-bpf / perf rooted): $list.}${list:+${low:+ }}${low:+rprof-bpf below 98%: $low.}")
    fi
    ((${#notes[@]})) || notes+=("Nothing: rprof-bpf and perf are within 5 points of each other on every row.")

    {
        cat <<EOF
## Rooted stacks of real programs

$(section_header stacks)
- Peer: $(perf version 2>/dev/null), \`perf record --call-graph dwarf\` (8192 bytes of stack per sample, its
  default) with \`-F $ST_HZ\` (cpu), \`-e sched:sched_switch\` (off-cpu: perf has no blocked time, so its
  switches are counted, one sample each) or \`-e sched:sched_process_fork\` (threadcreate: fired in the
  parent, so its stack is the creating thread's, for fork, vfork, clone and clone3 alike), then
  \`perf script\`; $tracefs_note.
- rprof-bpf: \`rprof-bpf record -F $ST_HZ [--type off-cpu|threadcreate|cpu,off-cpu] -p PIDS -o FILE\`
  (default \`--call-graph dwarf\`: 16384 bytes of stack), then \`rprof-bpf report --format folded
  --sample-index samples|off_cpu|threadcreate\`; run from a copy of \`target/release/rprof-bpf\` of $bin_date.
- Both record the same run at the same time, at $ST_HZ Hz, attached with \`-p\`. Most programs are
  started first and, once ready, both tools attach at the same moment for the same $ST_SECONDS s
  (\`--seconds $ST_SECONDS\`; \`-- sleep $ST_SECONDS\`): signal_work once it prints \`ready\`, Node and CPython
  after ${ST_WARMUP} s, Java after its warm-up and \`jcmd PID Compiler.perfmap\`, PostgreSQL (the postmaster and
  every process it has forked) once pgbench's $ST_PG_CLIENTS backends are there (rprof-bpf's $ST_SECONDS s start once it is
  attached, perf's once its events are open: a few hundred ms apart at most). creators and gocpu,
  whose whole run matters, are stopped (SIGSTOP) right after their exec, once libc is mapped; both
  tools attach, then it continues and both record it until it exits.
- Programs, from \`tests/workloads/\`, C built the way distributions build (\`gcc -O2 -g -pthread\`, no
  frame-pointer flags): \`signal_work cpu|block $((ST_SECONDS + ST_EXTRA))\`, \`creators $ST_CREATIONS\`; PostgreSQL 15 (\`$pg_bin\`,
  a throw-away cluster on a Unix socket, \`pgbench -i -s 1\`, then \`pgbench -c $ST_PG_CLIENTS -T $((ST_SECONDS + ST_EXTRA))\` per run);
  \`node --perf-basic-prof jit_fib.js $((ST_SECONDS + ST_EXTRA))\` ($(node --version)); \`java -XX:+PreserveFramePointer JitSpin $((ST_SECONDS + ST_EXTRA))\`
  ($(java -version 2>&1 | head -n 1 | sed 's/"//g')); \`$python -X perf py_fib.py $((ST_SECONDS + ST_EXTRA))\`;
  \`gocpu OUT.pprof $ST_SECONDS 250 leaf\` ($(go version | awk '{ print $3 }'), \`CGO_ENABLED=0 go build\`, and with
  \`-ldflags='-s -w'\`), which writes its own runtime/pprof profile of the same run at 250 Hz.
- $RUNS runs, each recording every program in turn; the medians are below. Shares only: the
  machine is shared with other work (the CPUs were ${machine_busy}% busy before the runs; load average
  $load_before before, $load_after after), which changes how many samples there are, not where they are.

### Results (median of $RUNS runs)

| program | kind: what is counted (rprof-bpf / perf) | rprof-bpf rooted (%) | perf rooted (%) | rprof-bpf's summary: user stacks complete (%) | samples naming the hot function, rprof-bpf / perf (%) | main.viaA of viaA+viaB, rprof-bpf / perf / Go's runtime/pprof (%) |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${results[@]}")

### What stands out

$(printf -- '- %s\n' "${notes[@]}")

### How each number is measured

- **rooted**: the share of samples (cpu), of blocked time (rprof-bpf off-cpu; perf: of switches),
  or of creations (threadcreate) whose user stack reaches the program's or the thread's entry: its
  outermost user frame is \`_start\`, \`clone3\`, \`clone\`, \`__clone3\` or \`__clone\` (the child side of
  glibc's thread creation), or for Go \`runtime.goexit\` (goroutines) or \`runtime.mstart\` (the
  runtime's own threads; with \`.abi0\`, as perf names them), and no frame is a \`[truncated: ...]\`
  one. \`clone3\` or \`clone\` alone is not a root: a thread's entry calls the thread's function, and a
  stack whose only user frame is \`clone3\` is one that was not unwound past it. Counted by
  \`scripts/bench/stacks_share.py\`: for rprof-bpf from its folded stacks (root first; \`_[k]\`
  kernel frames left out), for perf from \`perf script\` (the last frame of a sample not in
  \`[kernel.kallsyms]\`).
- **rprof-bpf's summary**: the \`N% of user stacks complete\` of its summary line, and in the last
  table the profile's comment \`user stacks unwound in user space, by how they ended\`, the
  per-reason counts (\`outermost\`: the unwinder reached the outermost frame).
- **naming the hot function** (JIT rows): the share of all samples with a frame naming it, as the
  runtime's perf map does: \`JS:*fib ...\` (V8; \`~\`, \`^\`, \`+\` tiers too), \`long JitSpin.fib(int)\`,
  \`py::fib:...\`. Both tools read the same \`/tmp/perf-PID.map\`.
- **main.viaA of viaA+viaB** (Go): \`main.viaA\` and \`main.viaB\` both spend their time in one
  frameless leaf, \`main.spin\`, about 70/30: the share of the samples with either on the stack that
  have viaA. Go's own: their cumulative times from \`go tool pprof -top -cum\` of the profile gocpu
  wrote. n/a: no sample named either (perf stops at the leaf; stripped, it has no names at all).
- **notes** (last table): rprof-bpf's attach time (\`RPROF_TIMINGS=1\`), the size of perf's data
  and, when \`perf record\` says it lost chunks of it (PostgreSQL's switches), how many: perf's
  shares are of the samples it kept. perf's data is deleted once counted.

### Every run

| row | run | rprof-bpf: rooted / all | perf: rooted / all | rprof-bpf's summary (complete); how its user stacks ended | not rooted, by outermost user frame: rprof-bpf; perf | JIT or Go rows: rprof-bpf / perf (/ Go) | notes |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${runs_table[@]}")
EOF
    } >"$out_md"
}
