/*
 * mutex_contend: threads that contend on locks in known functions, and threads that wait
 * for events (not locks) in other known functions, for lock-contention (mutex) profiles.
 * Every thread measures its own waits, so a test can compare the profile with them.
 *
 *   group    threads                    known function        what it does
 *   mutex    "mutex0".."mutex3"         contend_on_mutex      one pthread mutex, held for a
 *                                                             few µs of spinning per round
 *   rwlock   "rwwrite0", "rwwrite1",    contend_on_rwlock     one writer-preferring pthread
 *            "rwread0", "rwread1"                             rwlock, each holder spins a
 *                                                             few µs under it
 *   futex    "futex0".."futex3"         contend_on_raw_futex  the program's own futex lock,
 *                                                             FUTEX_WAIT through syscall(2)
 *   (slowfutex: the futex group, but each thread naps 10 µs, plus timer slack, between
 *   rounds: a few thousand waits a second instead of tens of thousands; reported as group
 *   "futex")
 *   condvar  "condvar0", "condvar1"     wait_on_condvar       pthread_cond_timedwait on a
 *                                                             condition variable (each its
 *                                                             own mutex) that "signaller"
 *                                                             signals every 2 ms
 *            "semwait"                  wait_on_semaphore     sem_wait on a semaphore that
 *                                                             "signaller" posts every 2 ms
 *            "signaller"                signal_loop           the signals and posts
 *   handoff  "hmutex_hold"/"_wait"      take_handed_mutex     pairs of threads: the holder
 *            "hrdlock_hold"/"_wait"     take_handed_rdlock    (hand_over_lock) hands its
 *            "hwrlock_hold"/"_wait"     take_handed_wrlock    lock over to the waiter once
 *            "hwrlockr_hold"/"_wait"    take_handed_wrlock_   the kernel shows the waiter
 *                                       from_reader           asleep on it: one futex wait
 *                                                             per round (see "locks handed
 *                                                             over" below); a default mutex,
 *                                                             an rwlock's rdlock and wrlock
 *                                                             behind a writer, its wrlock
 *                                                             behind a reader
 *   pi       "pimutex_hold"/"_wait"     take_handed_pi_mutex  the same with a priority-
 *                                                             inheritance mutex, which waits
 *                                                             in FUTEX_LOCK_PI
 *
 * A lock round first tries the lock (trylock); only if it is taken does it measure the
 * wait: CLOCK_MONOTONIC before and after the blocking lock call, summed per thread. That
 * lock call is made from the known function itself, so the waiter's stack is
 *   (futex syscall in libc) <- pthread_mutex_lock etc. <- KNOWN FUNCTION <- GROUP_thread
 *   <- start_thread <- clone3
 * The raw futex lock times each FUTEX_WAIT system call itself, and counts them: exactly
 * the waits the kernel sees.
 *
 * Its clock reads around a call take in more than the system call: the way into and out of
 * the kernel, whatever a profiler's probes do there (a profiler that times the call from its
 * entry to its exit does its own work, such as copying the stack, after its exit time), and
 * any time the thread is preempted or its CPU taken by the host on the way. So the raw
 * futex lock also asks the kernel, around each call, what the thread did meanwhile: its CPU
 * time (CLOCK_THREAD_CPUTIME_ID), its time waiting for a CPU (run_delay, the second field
 * of /proc/thread-self/schedstat) and its context switches (getrusage). The clock's time
 * less the CPU time is time off CPU: asleep in the futex, or woken and waiting for a CPU
 * (still inside the call). When the thread was preempted during the call (an involuntary
 * switch, or a sleep the futex wait does not account for), its wait for a CPU may have been
 * outside the call, and that call's run_delay is taken off too. What is left
 * (FUTEX_OFFCPU_NS) is time inside the system calls, whatever the probes cost: a profile
 * that times the calls from entry to exit must lie between it and FUTEX_NS. (The reads are
 * taken before the clock reads and after them, so that they cover at least the call. One
 * thing neither count sees: time the host takes the CPU from a running thread, which the
 * kernel leaves out of its CPU time; on the way into or out of a call it would count as
 * inside. It is small beside the CPU time the calls themselves take, which FUTEX_OFFCPU_NS
 * leaves out.)
 *
 * Build: gcc -O2 -g -pthread (as distributions build: no frame pointers; clang works too)
 * Usage: mutex_contend SECONDS GROUPS [LOGFILE]
 *   GROUPS is a comma-separated list of the groups above. Prints "ready <pid>" once every
 *   thread exists and is named, runs for SECONDS, stops and joins the threads, prints the
 *   report (see print_report) and "done", and exits 0.
 *   With MIN_FUTEX_WAITS=N in the environment and the futex group, it runs on after SECONDS
 *   until that group has made N FUTEX_WAIT calls, up to 10 times SECONDS in all: how many
 *   it makes in a second depends on how fast the machine is and how busy.
 *   With LOGFILE, the main thread also notes every 20 ms the CLOCK_REALTIME time and each
 *   group's running totals, and writes them to LOGFILE at the end, one line per note:
 *     "tick T_NS GROUP WAIT_NS WAITS"   (one line per running group)
 *   so that a test can tell what was waited inside a recording window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * The functions a test looks for on the stacks keep their names and frames: never inlined,
 * and (GCC) never cloned, merged with an identical one or otherwise changed by
 * interprocedural optimization, which would rename them (contend_on_rwlock.constprop.0).
 */
#if defined(__clang__)
#define KNOWN __attribute__((noinline))
#else
#define KNOWN __attribute__((noipa))
#endif

#define MAX_THREADS 32
#define MAX_TICKS 20000
#define TICK_NS 20000000LL

/* Spin iterations under a lock (a few µs) and between two rounds (about a µs). */
#define HOLD_SPINS 3000
#define GAP_SPINS 800
/* The nap of the group "slowfutex" between two rounds, for fewer (but still many) waits. */
#define SLOW_FUTEX_NAP_NS 10000L

enum group {
    G_MUTEX,
    G_RWLOCK,
    G_FUTEX,
    G_CONDVAR,
    G_HANDOFF,
    G_PI,
    G_COUNT
};

static const char *const group_names[G_COUNT] = {"mutex",   "rwlock",  "futex",
                                                 "condvar", "handoff", "pi"};

struct handoff;

/* What one thread did. Written by the thread, read (relaxed) by the main thread. */
struct thread_stats {
    char name[16];
    enum group group;
    /* What the thread runs, for the report: the known function. */
    const char *func;
    _Atomic int tid;
    /* Rounds (lock acquisitions, or waits for an event). */
    _Atomic long long rounds;
    /* Rounds that found the lock taken (trylock failed), and had to wait. */
    _Atomic long long contended;
    /* Time waited in the blocking lock calls (or event waits), in ns. */
    _Atomic long long wait_ns;
    /* Raw futex only: FUTEX_WAIT system calls made, and the time spent in them. */
    _Atomic long long futex_calls;
    _Atomic long long futex_ns;
    /* The part of futex_ns the kernel says was inside the calls (see the top): off CPU. */
    _Atomic long long futex_offcpu_ns;
    /* Set when the kernel could not say (no run delay). */
    _Atomic int offcpu_unknown;
    /* /proc/thread-self/schedstat, opened by the thread itself; -1 when it cannot be. */
    int schedstat_fd;
    /* Handed-over locks only: the thread's pair. */
    struct handoff *pair;
};

static struct thread_stats stats[MAX_THREADS];
static int n_threads;
static atomic_int running = 1;
static pthread_barrier_t started;
static volatile unsigned long sink;

static pthread_mutex_t the_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t the_rwlock;
/* The raw futex lock: 0 free, 1 taken, 2 taken and maybe waited for. */
static atomic_int the_futex;
/* With the group "slowfutex": a nap between two rounds of the raw futex lock. */
static long futex_nap_ns;

struct event {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned long generation;
};
static struct event events[2] = {
    {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0},
    {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0},
};
static sem_t the_semaphore;

struct tick {
    long long t_ns;
    long long wait_ns[G_COUNT];
    long long waits[G_COUNT];
};
static struct tick ticks[MAX_TICKS];
static int n_ticks;

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the kernel says a thread did, up to now. */
struct kernel_times {
    long long cpu_ns;
    long long run_delay_ns;
    long voluntary, involuntary;
};

static long long thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The thread's time waiting for a CPU (schedstat's run_delay), or -1 if unknown. */
static long long run_delay_ns(struct thread_stats *me)
{
    char buf[96];
    long long on_cpu, waiting;
    if (me->schedstat_fd == 0)
        me->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (me->schedstat_fd < 0)
        return -1;
    ssize_t n = pread(me->schedstat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (sscanf(buf, "%lld %lld", &on_cpu, &waiting) != 2)
        return -1;
    return waiting;
}

static void switches(long *voluntary, long *involuntary)
{
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    *voluntary = u.ru_nvcsw;
    *involuntary = u.ru_nivcsw;
}

/* Read before a call: the switches, the run delay, then the CPU time, just before the
 * clock read. */
static void kernel_times_before(struct thread_stats *me, struct kernel_times *k)
{
    switches(&k->voluntary, &k->involuntary);
    k->run_delay_ns = run_delay_ns(me);
    k->cpu_ns = thread_cpu_ns();
}

/* Read after a call, in the opposite order, so that both cover at least the call. */
static void kernel_times_after(struct thread_stats *me, struct kernel_times *k)
{
    k->cpu_ns = thread_cpu_ns();
    k->run_delay_ns = run_delay_ns(me);
    switches(&k->voluntary, &k->involuntary);
}

/*
 * The time of a call (clock_ns, from the clock reads around it) that the kernel says was
 * inside it, between the readings a (before) and b (after): the clock's time less the CPU
 * time, and less the time waiting for a CPU unless the thread's only switch was the
 * futex's own sleep (woken = it returned 0), after which that wait is inside the call.
 * It can be below 0: the readings cover more than the call. The run delay must be known.
 */
static long long inside_call_ns(long long clock_ns, const struct kernel_times *a,
                                const struct kernel_times *b, int woken)
{
    long long ns = clock_ns - (b->cpu_ns - a->cpu_ns);
    int preempted = b->involuntary != a->involuntary ||
                    b->voluntary - a->voluntary > (woken ? 1 : 0);
    if (preempted)
        ns -= b->run_delay_ns - a->run_delay_ns;
    return ns;
}

static inline __attribute__((always_inline)) void spin(int n)
{
    unsigned long x = sink;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        __asm__ volatile("" : "+r"(x));
    }
    sink = x;
}

static inline __attribute__((always_inline)) void add(_Atomic long long *counter, long long v)
{
    atomic_fetch_add_explicit(counter, v, memory_order_relaxed);
}

static int is_running(void)
{
    return atomic_load_explicit(&running, memory_order_relaxed);
}

/* ---- the known functions ---- */

KNOWN void contend_on_mutex(struct thread_stats *me)
{
    while (is_running()) {
        if (pthread_mutex_trylock(&the_mutex) != 0) {
            long long t0 = mono_ns();
            pthread_mutex_lock(&the_mutex);
            long long t1 = mono_ns();
            add(&me->wait_ns, t1 - t0);
            add(&me->contended, 1);
        }
        add(&me->rounds, 1);
        spin(HOLD_SPINS);
        pthread_mutex_unlock(&the_mutex);
        spin(GAP_SPINS);
    }
    __asm__ volatile("" ::: "memory");
}

KNOWN void contend_on_rwlock(struct thread_stats *me, int writer)
{
    while (is_running()) {
        int busy = writer ? pthread_rwlock_trywrlock(&the_rwlock)
                          : pthread_rwlock_tryrdlock(&the_rwlock);
        if (busy != 0) {
            long long t0 = mono_ns();
            if (writer)
                pthread_rwlock_wrlock(&the_rwlock);
            else
                pthread_rwlock_rdlock(&the_rwlock);
            long long t1 = mono_ns();
            add(&me->wait_ns, t1 - t0);
            add(&me->contended, 1);
        }
        add(&me->rounds, 1);
        spin(HOLD_SPINS);
        pthread_rwlock_unlock(&the_rwlock);
        spin(GAP_SPINS);
    }
    __asm__ volatile("" ::: "memory");
}

/* Ulrich Drepper's futex mutex ("Futexes Are Tricky", mutex 3), inlined into its caller so
 * that the caller of syscall(2) is contend_on_raw_futex. */
static inline __attribute__((always_inline)) void raw_futex_lock(struct thread_stats *me)
{
    int c = 0;
    if (atomic_compare_exchange_strong(&the_futex, &c, 1))
        return;
    long long t0 = mono_ns();
    /* The readings after one call are those before the next. */
    struct kernel_times k[2];
    int i = 0;
    kernel_times_before(me, &k[0]);
    if (c != 2)
        c = atomic_exchange(&the_futex, 2);
    while (c != 0) {
        long long s0 = mono_ns();
        long ret = syscall(SYS_futex, &the_futex, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        long long s1 = mono_ns();
        kernel_times_after(me, &k[!i]);
        add(&me->futex_calls, 1);
        add(&me->futex_ns, s1 - s0);
        if (k[i].run_delay_ns < 0 || k[!i].run_delay_ns < 0)
            atomic_store(&me->offcpu_unknown, 1);
        else
            add(&me->futex_offcpu_ns, inside_call_ns(s1 - s0, &k[i], &k[!i], ret == 0));
        i = !i;
        c = atomic_exchange(&the_futex, 2);
    }
    add(&me->wait_ns, mono_ns() - t0);
    add(&me->contended, 1);
}

static inline __attribute__((always_inline)) void raw_futex_unlock(void)
{
    if (atomic_exchange(&the_futex, 0) == 2)
        syscall(SYS_futex, &the_futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

KNOWN void contend_on_raw_futex(struct thread_stats *me)
{
    const struct timespec nap = {0, futex_nap_ns};
    while (is_running()) {
        raw_futex_lock(me);
        add(&me->rounds, 1);
        spin(HOLD_SPINS);
        raw_futex_unlock();
        spin(GAP_SPINS);
        if (futex_nap_ns)
            nanosleep(&nap, NULL);
    }
    __asm__ volatile("" ::: "memory");
}

/* Waits for the signaller's next signal (or 20 ms) on its own event. */
KNOWN void wait_on_condvar(struct thread_stats *me, struct event *ev)
{
    while (is_running()) {
        pthread_mutex_lock(&ev->lock);
        unsigned long seen = ev->generation;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 20 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        long long t0 = mono_ns();
        while (ev->generation == seen && is_running()) {
            if (pthread_cond_timedwait(&ev->cond, &ev->lock, &deadline) == ETIMEDOUT)
                break;
        }
        long long t1 = mono_ns();
        pthread_mutex_unlock(&ev->lock);
        add(&me->wait_ns, t1 - t0);
        add(&me->rounds, 1);
    }
    __asm__ volatile("" ::: "memory");
}

KNOWN void wait_on_semaphore(struct thread_stats *me)
{
    while (is_running()) {
        long long t0 = mono_ns();
        while (sem_wait(&the_semaphore) != 0 && errno == EINTR)
            ;
        add(&me->wait_ns, mono_ns() - t0);
        add(&me->rounds, 1);
    }
    __asm__ volatile("" ::: "memory");
}

/* Every 2 ms: a new generation of each event, signalled after the unlock (so that a woken
 * waiter never finds its mutex taken), and a post of the semaphore. */
KNOWN void signal_loop(struct thread_stats *me)
{
    const struct timespec ms2 = {0, 2000000L};
    while (is_running()) {
        nanosleep(&ms2, NULL);
        for (int i = 0; i < 2; i++) {
            pthread_mutex_lock(&events[i].lock);
            events[i].generation++;
            pthread_mutex_unlock(&events[i].lock);
            pthread_cond_signal(&events[i].cond);
        }
        sem_post(&the_semaphore);
        add(&me->rounds, 1);
    }
    __asm__ volatile("" ::: "memory");
}

/* ---- locks handed over to a thread known to be asleep in the kernel ---- */

/*
 * A pair of threads and its lock. Each round the holder takes the lock (it is free: the
 * waiter gave it back), lets the waiter ask for it, and lets it go only once the kernel
 * shows the waiter asleep in futex(2) (/proc/self/task/TID/syscall names the system call of
 * a thread that is off CPU, and says "running" otherwise). The waiter wakes with the lock:
 * nobody else wants it. So each of the waiter's lock calls makes exactly one futex wait,
 * which the waiter counts (FUTEX_CALLS) and times as the raw futex lock does its calls: a
 * count that does not depend on how glibc spins or retries, nor on the machine's load.
 * The holder never waits: it takes the lock with a trylock, and fails loudly otherwise.
 */
enum handoff_kind {
    H_MUTEX,             /* pthread_mutex_lock on a default mutex */
    H_RDLOCK,            /* pthread_rwlock_rdlock while a writer holds the rwlock */
    H_WRLOCK,            /* pthread_rwlock_wrlock while a writer holds it */
    H_WRLOCK_FROM_READER, /* pthread_rwlock_wrlock while a reader holds it */
    H_PI_MUTEX,          /* pthread_mutex_lock on a PTHREAD_PRIO_INHERIT mutex */
    H_COUNT
};

struct handoff {
    enum handoff_kind kind;
    pthread_mutex_t mutex;
    pthread_rwlock_t rwlock;
    /* The last round the holder let the waiter ask in, and the last round it finished. */
    _Atomic long long go, done;
    /* Set by the holder once it has handed over its last round. */
    atomic_int quit;
    /* Noted by the holder: the futex operation the waiter was last seen asleep in. */
    atomic_int op;
    struct thread_stats *holder, *waiter;
};
static struct handoff handoffs[H_COUNT];

/* The holder's nap while it waits for the waiter, and between two rounds (fewer, but still
 * hundreds of, waits a second per pair, which a profiler keeping every wait can keep up
 * with). */
#define POLL_NS 20000L
#define HANDOFF_GAP_NS 1000000L

static void nap(long ns)
{
    const struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static void fail(const char *what)
{
    fprintf(stderr, "mutex_contend: %s\n", what);
    exit(3);
}

/* The futex operation (its command: FUTEX_WAIT, FUTEX_LOCK_PI...) the thread whose
 * /proc/self/task/TID/syscall is open at fd is asleep in, on a futex word within
 * [lock, lock + size), or -1 when it is not asleep in futex(2) on that lock. The address
 * matters: the waiter can still be asleep in another futex (the start barrier's) when the
 * holder first looks, and a lock given back then would be taken without a wait. */
static int asleep_in_futex(int fd, const void *lock, size_t size)
{
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        fail("cannot read the waiter's /proc/self/task/TID/syscall");
    buf[n] = 0;
    long nr;
    unsigned long uaddr, op;
    if (sscanf(buf, "%ld 0x%lx 0x%lx", &nr, &uaddr, &op) != 3 || nr != SYS_futex)
        return -1;
    if (uaddr < (unsigned long)lock || uaddr >= (unsigned long)lock + size)
        return -1;
    return (int)(op & FUTEX_CMD_MASK);
}

/* Waits for the holder to let the waiter of p ask for its lock: the round, or 0 when the
 * holder has quit. */
static long long next_round(struct handoff *p)
{
    for (;;) {
        long long go = atomic_load(&p->go);
        if (go != atomic_load(&p->done))
            return go;
        if (atomic_load(&p->quit))
            return 0;
        nap(POLL_NS);
    }
}

/* One round of the waiter, inlined into the known function, so that the lock call is made
 * from it: the lock, timed as the raw futex lock times its calls, and given back. */
static inline __attribute__((always_inline)) void take_handed_lock(struct thread_stats *me,
                                                                   struct handoff *p,
                                                                   enum handoff_kind kind,
                                                                   long long round)
{
    struct kernel_times k0, k1;
    kernel_times_before(me, &k0);
    long long t0 = mono_ns();
    int rc;
    switch (kind) {
    case H_RDLOCK:
        rc = pthread_rwlock_rdlock(&p->rwlock);
        break;
    case H_WRLOCK:
    case H_WRLOCK_FROM_READER:
        rc = pthread_rwlock_wrlock(&p->rwlock);
        break;
    default:
        rc = pthread_mutex_lock(&p->mutex);
        break;
    }
    long long t1 = mono_ns();
    kernel_times_after(me, &k1);
    if (rc != 0)
        fail("a handed-over lock could not be taken");
    add(&me->rounds, 1);
    add(&me->contended, 1);
    add(&me->wait_ns, t1 - t0);
    add(&me->futex_calls, 1);
    add(&me->futex_ns, t1 - t0);
    if (k0.run_delay_ns < 0 || k1.run_delay_ns < 0)
        atomic_store(&me->offcpu_unknown, 1);
    else
        add(&me->futex_offcpu_ns, inside_call_ns(t1 - t0, &k0, &k1, 1));
    if (kind == H_MUTEX || kind == H_PI_MUTEX)
        pthread_mutex_unlock(&p->mutex);
    else
        pthread_rwlock_unlock(&p->rwlock);
    atomic_store(&p->done, round);
}

KNOWN void take_handed_mutex(struct thread_stats *me, struct handoff *p)
{
    for (long long r; (r = next_round(p));)
        take_handed_lock(me, p, H_MUTEX, r);
    __asm__ volatile("" ::: "memory");
}

KNOWN void take_handed_rdlock(struct thread_stats *me, struct handoff *p)
{
    for (long long r; (r = next_round(p));)
        take_handed_lock(me, p, H_RDLOCK, r);
    __asm__ volatile("" ::: "memory");
}

KNOWN void take_handed_wrlock(struct thread_stats *me, struct handoff *p)
{
    for (long long r; (r = next_round(p));)
        take_handed_lock(me, p, H_WRLOCK, r);
    __asm__ volatile("" ::: "memory");
}

KNOWN void take_handed_wrlock_from_reader(struct thread_stats *me, struct handoff *p)
{
    for (long long r; (r = next_round(p));)
        take_handed_lock(me, p, H_WRLOCK_FROM_READER, r);
    __asm__ volatile("" ::: "memory");
}

KNOWN void take_handed_pi_mutex(struct thread_stats *me, struct handoff *p)
{
    for (long long r; (r = next_round(p));)
        take_handed_lock(me, p, H_PI_MUTEX, r);
    __asm__ volatile("" ::: "memory");
}

/* The holder's rounds, while the workload runs; then it tells the waiter to quit. */
KNOWN void hand_over_lock(struct thread_stats *me, struct handoff *p)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", atomic_load(&p->waiter->tid));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open the waiter's /proc/self/task/TID/syscall");
    for (long long round = 1; is_running(); round++) {
        int rc;
        switch (p->kind) {
        case H_RDLOCK:
        case H_WRLOCK:
            rc = pthread_rwlock_trywrlock(&p->rwlock);
            break;
        case H_WRLOCK_FROM_READER:
            rc = pthread_rwlock_tryrdlock(&p->rwlock);
            break;
        default:
            rc = pthread_mutex_trylock(&p->mutex);
            break;
        }
        if (rc != 0)
            fail("the holder found its lock taken");
        atomic_store(&p->go, round);
        int op;
        const void *lock = &p->mutex;
        size_t size = sizeof p->mutex;
        if (p->kind != H_MUTEX && p->kind != H_PI_MUTEX) {
            lock = &p->rwlock;
            size = sizeof p->rwlock;
        }
        while ((op = asleep_in_futex(fd, lock, size)) < 0)
            nap(POLL_NS);
        atomic_store(&p->op, op);
        if (p->kind == H_MUTEX || p->kind == H_PI_MUTEX)
            pthread_mutex_unlock(&p->mutex);
        else
            pthread_rwlock_unlock(&p->rwlock);
        while (atomic_load(&p->done) != round)
            nap(POLL_NS);
        add(&me->rounds, 1);
        nap(HANDOFF_GAP_NS);
    }
    atomic_store(&p->quit, 1);
    close(fd);
    __asm__ volatile("" ::: "memory");
}

/* ---- threads ---- */

static void enter(struct thread_stats *me)
{
    atomic_store(&me->tid, (int)syscall(SYS_gettid));
    pthread_setname_np(pthread_self(), me->name);
    pthread_barrier_wait(&started);
}

KNOWN static void *mutex_thread(void *arg)
{
    enter(arg);
    contend_on_mutex(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *rwlock_writer(void *arg)
{
    enter(arg);
    contend_on_rwlock(arg, 1);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *rwlock_reader(void *arg)
{
    enter(arg);
    contend_on_rwlock(arg, 0);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *futex_thread(void *arg)
{
    enter(arg);
    contend_on_raw_futex(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *condvar_thread(void *arg)
{
    struct thread_stats *me = arg;
    enter(me);
    wait_on_condvar(me, &events[me->name[7] - '0']);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *semaphore_thread(void *arg)
{
    enter(arg);
    wait_on_semaphore(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *signaller_thread(void *arg)
{
    enter(arg);
    signal_loop(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *handoff_holder(void *arg)
{
    struct thread_stats *me = arg;
    enter(me);
    hand_over_lock(me, me->pair);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

KNOWN static void *handoff_waiter(void *arg)
{
    struct thread_stats *me = arg;
    enter(me);
    switch (me->pair->kind) {
    case H_MUTEX:
        take_handed_mutex(me, me->pair);
        break;
    case H_RDLOCK:
        take_handed_rdlock(me, me->pair);
        break;
    case H_WRLOCK:
        take_handed_wrlock(me, me->pair);
        break;
    case H_WRLOCK_FROM_READER:
        take_handed_wrlock_from_reader(me, me->pair);
        break;
    default:
        take_handed_pi_mutex(me, me->pair);
        break;
    }
    __asm__ volatile("" ::: "memory");
    return NULL;
}

struct thread_def {
    const char *name;
    enum group group;
    const char *func;
    void *(*main)(void *);
    /* Handed-over locks: 1 + the pair's kind (its index in handoffs); 0 for the others. */
    int pair;
};

static const struct thread_def defs[] = {
    {"mutex0", G_MUTEX, "contend_on_mutex", mutex_thread, 0},
    {"mutex1", G_MUTEX, "contend_on_mutex", mutex_thread, 0},
    {"mutex2", G_MUTEX, "contend_on_mutex", mutex_thread, 0},
    {"mutex3", G_MUTEX, "contend_on_mutex", mutex_thread, 0},
    {"rwwrite0", G_RWLOCK, "contend_on_rwlock", rwlock_writer, 0},
    {"rwwrite1", G_RWLOCK, "contend_on_rwlock", rwlock_writer, 0},
    {"rwread0", G_RWLOCK, "contend_on_rwlock", rwlock_reader, 0},
    {"rwread1", G_RWLOCK, "contend_on_rwlock", rwlock_reader, 0},
    {"futex0", G_FUTEX, "contend_on_raw_futex", futex_thread, 0},
    {"futex1", G_FUTEX, "contend_on_raw_futex", futex_thread, 0},
    {"futex2", G_FUTEX, "contend_on_raw_futex", futex_thread, 0},
    {"futex3", G_FUTEX, "contend_on_raw_futex", futex_thread, 0},
    {"condvar0", G_CONDVAR, "wait_on_condvar", condvar_thread, 0},
    {"condvar1", G_CONDVAR, "wait_on_condvar", condvar_thread, 0},
    {"semwait", G_CONDVAR, "wait_on_semaphore", semaphore_thread, 0},
    {"signaller", G_CONDVAR, "signal_loop", signaller_thread, 0},
    {"hmutex_hold", G_HANDOFF, "hand_over_lock", handoff_holder, 1 + H_MUTEX},
    {"hmutex_wait", G_HANDOFF, "take_handed_mutex", handoff_waiter, 1 + H_MUTEX},
    {"hrdlock_hold", G_HANDOFF, "hand_over_lock", handoff_holder, 1 + H_RDLOCK},
    {"hrdlock_wait", G_HANDOFF, "take_handed_rdlock", handoff_waiter, 1 + H_RDLOCK},
    {"hwrlock_hold", G_HANDOFF, "hand_over_lock", handoff_holder, 1 + H_WRLOCK},
    {"hwrlock_wait", G_HANDOFF, "take_handed_wrlock", handoff_waiter, 1 + H_WRLOCK},
    {"hwrlockr_hold", G_HANDOFF, "hand_over_lock", handoff_holder, 1 + H_WRLOCK_FROM_READER},
    {"hwrlockr_wait", G_HANDOFF, "take_handed_wrlock_from_reader", handoff_waiter,
     1 + H_WRLOCK_FROM_READER},
    {"pimutex_hold", G_PI, "hand_over_lock", handoff_holder, 1 + H_PI_MUTEX},
    {"pimutex_wait", G_PI, "take_handed_pi_mutex", handoff_waiter, 1 + H_PI_MUTEX},
};
#define NDEFS (int)(sizeof defs / sizeof defs[0])

/* Notes each group's running totals (waits: contended rounds, or rounds for events). */
static void take_tick(void)
{
    if (n_ticks >= MAX_TICKS)
        return;
    struct tick *t = &ticks[n_ticks++];
    memset(t, 0, sizeof *t);
    t->t_ns = real_ns();
    for (int i = 0; i < n_threads; i++) {
        struct thread_stats *s = &stats[i];
        long long waits = s->group == G_CONDVAR ? atomic_load(&s->rounds)
                                                : atomic_load(&s->contended);
        t->wait_ns[s->group] += atomic_load(&s->wait_ns);
        t->waits[s->group] += waits;
    }
}

/*
 * The report: how long the threads ran, one line per thread, then per group, then the
 * handed-over locks' futex operations, then "done":
 *   ran RAN_NS
 *   thread NAME TID GROUP FUNC ROUNDS CONTENDED WAIT_NS FUTEX_CALLS FUTEX_NS FUTEX_OFFCPU_NS
 *   group GROUP ROUNDS CONTENDED WAIT_NS FUTEX_CALLS FUTEX_NS FUTEX_OFFCPU_NS
 *   futex_op FUNC OP
 * RAN_NS is the time from "ready" until the threads were told to stop; FUTEX_OFFCPU_NS is
 * -1 (for a group, when it is for any of its threads) when the kernel could not say. For the
 * waiter of a handed-over lock, FUTEX_CALLS, FUTEX_NS and FUTEX_OFFCPU_NS are of its lock
 * calls, each of which made exactly one futex wait; OP is the futex command (0 FUTEX_WAIT,
 * 6 FUTEX_LOCK_PI...) the waiter in FUNC was last seen asleep in.
 */
static void print_report(const int *enabled, long long ran_ns)
{
    long long sums[G_COUNT][6];
    memset(sums, 0, sizeof sums);
    printf("ran %lld\n", ran_ns);
    for (int i = 0; i < n_threads; i++) {
        struct thread_stats *s = &stats[i];
        long long v[6] = {atomic_load(&s->rounds),      atomic_load(&s->contended),
                          atomic_load(&s->wait_ns),     atomic_load(&s->futex_calls),
                          atomic_load(&s->futex_ns),
                          atomic_load(&s->offcpu_unknown) ? -1 : atomic_load(&s->futex_offcpu_ns)};
        printf("thread %s %d %s %s %lld %lld %lld %lld %lld %lld\n", s->name,
               atomic_load(&s->tid), group_names[s->group], s->func, v[0], v[1], v[2], v[3],
               v[4], v[5]);
        for (int k = 0; k < 6; k++) {
            if (k == 5 && (v[k] < 0 || sums[s->group][k] < 0))
                sums[s->group][k] = -1;
            else
                sums[s->group][k] += v[k];
        }
    }
    for (int g = 0; g < G_COUNT; g++) {
        if (enabled[g])
            printf("group %s %lld %lld %lld %lld %lld %lld\n", group_names[g], sums[g][0],
                   sums[g][1], sums[g][2], sums[g][3], sums[g][4], sums[g][5]);
    }
    for (int k = 0; k < H_COUNT; k++) {
        if (handoffs[k].waiter)
            printf("futex_op %s %d\n", handoffs[k].waiter->func, atomic_load(&handoffs[k].op));
    }
    printf("done\n");
    fflush(stdout);
}

/* FUTEX_WAIT calls made so far by all threads. */
static long long futex_calls_so_far(void)
{
    long long n = 0;
    for (int i = 0; i < n_threads; i++)
        n += atomic_load_explicit(&stats[i].futex_calls, memory_order_relaxed);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SECONDS GROUPS [LOGFILE]\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[1]);
    const char *log_path = argc > 3 ? argv[3] : NULL;
    int enabled[G_COUNT] = {0};
    char *groups = strdup(argv[2]);
    for (char *save = NULL, *g = strtok_r(groups, ",", &save); g;
         g = strtok_r(NULL, ",", &save)) {
        int found = 0;
        if (strcmp(g, "slowfutex") == 0) {
            futex_nap_ns = SLOW_FUTEX_NAP_NS;
            g = "futex";
        }
        for (int k = 0; k < G_COUNT; k++) {
            if (strcmp(g, group_names[k]) == 0)
                enabled[k] = found = 1;
        }
        if (!found) {
            fprintf(stderr, "unknown group %s\n", g);
            return 2;
        }
    }

    const char *min_waits_env = getenv("MIN_FUTEX_WAITS");
    long long min_futex_waits = min_waits_env && enabled[G_FUTEX] ? atoll(min_waits_env) : 0;

    pthread_rwlockattr_t rwattr;
    pthread_rwlockattr_init(&rwattr);
    pthread_rwlockattr_setkind_np(&rwattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&the_rwlock, &rwattr);
    sem_init(&the_semaphore, 0, 0);

    pthread_t threads[MAX_THREADS];
    for (int i = 0; i < NDEFS; i++) {
        if (!enabled[defs[i].group])
            continue;
        struct thread_stats *s = &stats[n_threads++];
        snprintf(s->name, sizeof s->name, "%s", defs[i].name);
        s->group = defs[i].group;
        s->func = defs[i].func;
        if (defs[i].pair) {
            struct handoff *p = &handoffs[defs[i].pair - 1];
            s->pair = p;
            if (defs[i].main == handoff_holder)
                p->holder = s;
            else
                p->waiter = s;
        }
    }
    for (int k = 0; k < H_COUNT; k++) {
        struct handoff *p = &handoffs[k];
        if (!p->holder)
            continue;
        pthread_mutexattr_t mattr;
        pthread_mutexattr_init(&mattr);
        if (k == H_PI_MUTEX && pthread_mutexattr_setprotocol(&mattr, PTHREAD_PRIO_INHERIT) != 0)
            fail("no priority-inheritance mutexes");
        p->kind = k;
        pthread_mutex_init(&p->mutex, &mattr);
        pthread_rwlock_init(&p->rwlock, NULL);
    }
    pthread_barrier_init(&started, NULL, (unsigned)n_threads + 1);
    for (int i = 0, t = 0; i < NDEFS; i++) {
        if (!enabled[defs[i].group])
            continue;
        if (pthread_create(&threads[t], NULL, defs[i].main, &stats[t]) != 0) {
            perror("pthread_create");
            return 2;
        }
        t++;
    }
    pthread_barrier_wait(&started);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);

    long long start = mono_ns();
    long long end = start + (long long)(seconds * 1e9);
    long long last_end = start + (long long)(10 * seconds * 1e9);
    take_tick();
    for (;;) {
        long long now = mono_ns();
        if (now >= end && now < last_end && futex_calls_so_far() < min_futex_waits)
            end = now + TICK_NS;
        long long left = end - now;
        if (left <= 0)
            break;
        long long nap = left < TICK_NS ? left : TICK_NS;
        struct timespec ts = {nap / 1000000000LL, nap % 1000000000LL};
        nanosleep(&ts, NULL);
        if (log_path)
            take_tick();
    }
    long long ran_ns = mono_ns() - start;
    atomic_store(&running, 0);
    sem_post(&the_semaphore);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&events[i].lock);
        pthread_cond_broadcast(&events[i].cond);
        pthread_mutex_unlock(&events[i].lock);
    }
    for (int t = 0; t < n_threads; t++)
        pthread_join(threads[t], NULL);
    take_tick();

    if (log_path) {
        FILE *f = fopen(log_path, "w");
        if (!f) {
            perror(log_path);
            return 2;
        }
        for (int i = 0; i < n_ticks; i++) {
            for (int g = 0; g < G_COUNT; g++) {
                if (enabled[g])
                    fprintf(f, "tick %lld %s %lld %lld\n", ticks[i].t_ns, group_names[g],
                            ticks[i].wait_ns[g], ticks[i].waits[g]);
            }
        }
        fclose(f);
    }
    print_report(enabled, ran_ns);
    free(groups);
    return 0;
}
