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
 *
 * A lock round first tries the lock (trylock); only if it is taken does it measure the
 * wait: CLOCK_MONOTONIC before and after the blocking lock call, summed per thread. That
 * lock call is made from the known function itself, so the waiter's stack is
 *   (futex syscall in libc) <- pthread_mutex_lock etc. <- KNOWN FUNCTION <- GROUP_thread
 *   <- start_thread <- clone3
 * The raw futex lock times each FUTEX_WAIT system call itself, and counts them: exactly
 * the waits the kernel sees.
 *
 * Build: clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread
 * Usage: mutex_contend SECONDS GROUPS [LOGFILE]
 *   GROUPS is a comma-separated list of the groups above. Prints "ready <pid>" once every
 *   thread exists and is named, runs for SECONDS, stops and joins the threads, prints the
 *   report (see print_report) and "done", and exits 0.
 *   With LOGFILE, the main thread also notes every 20 ms the CLOCK_REALTIME time and each
 *   group's running totals, and writes them to LOGFILE at the end, one line per note:
 *     "tick T_NS GROUP WAIT_NS WAITS"   (one line per running group)
 *   so that a test can tell what was waited inside a recording window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16
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
    G_COUNT
};

static const char *const group_names[G_COUNT] = {"mutex", "rwlock", "futex", "condvar"};

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

__attribute__((noinline)) void contend_on_mutex(struct thread_stats *me)
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

__attribute__((noinline)) void contend_on_rwlock(struct thread_stats *me, int writer)
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
    if (c != 2)
        c = atomic_exchange(&the_futex, 2);
    while (c != 0) {
        long long s0 = mono_ns();
        syscall(SYS_futex, &the_futex, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        long long s1 = mono_ns();
        add(&me->futex_calls, 1);
        add(&me->futex_ns, s1 - s0);
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

__attribute__((noinline)) void contend_on_raw_futex(struct thread_stats *me)
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
__attribute__((noinline)) void wait_on_condvar(struct thread_stats *me, struct event *ev)
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

__attribute__((noinline)) void wait_on_semaphore(struct thread_stats *me)
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
__attribute__((noinline)) void signal_loop(struct thread_stats *me)
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

/* ---- threads ---- */

static void enter(struct thread_stats *me)
{
    atomic_store(&me->tid, (int)syscall(SYS_gettid));
    pthread_setname_np(pthread_self(), me->name);
    pthread_barrier_wait(&started);
}

__attribute__((noinline)) static void *mutex_thread(void *arg)
{
    enter(arg);
    contend_on_mutex(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *rwlock_writer(void *arg)
{
    enter(arg);
    contend_on_rwlock(arg, 1);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *rwlock_reader(void *arg)
{
    enter(arg);
    contend_on_rwlock(arg, 0);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *futex_thread(void *arg)
{
    enter(arg);
    contend_on_raw_futex(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *condvar_thread(void *arg)
{
    struct thread_stats *me = arg;
    enter(me);
    wait_on_condvar(me, &events[me->name[7] - '0']);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *semaphore_thread(void *arg)
{
    enter(arg);
    wait_on_semaphore(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *signaller_thread(void *arg)
{
    enter(arg);
    signal_loop(arg);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

struct thread_def {
    const char *name;
    enum group group;
    const char *func;
    void *(*main)(void *);
};

static const struct thread_def defs[] = {
    {"mutex0", G_MUTEX, "contend_on_mutex", mutex_thread},
    {"mutex1", G_MUTEX, "contend_on_mutex", mutex_thread},
    {"mutex2", G_MUTEX, "contend_on_mutex", mutex_thread},
    {"mutex3", G_MUTEX, "contend_on_mutex", mutex_thread},
    {"rwwrite0", G_RWLOCK, "contend_on_rwlock", rwlock_writer},
    {"rwwrite1", G_RWLOCK, "contend_on_rwlock", rwlock_writer},
    {"rwread0", G_RWLOCK, "contend_on_rwlock", rwlock_reader},
    {"rwread1", G_RWLOCK, "contend_on_rwlock", rwlock_reader},
    {"futex0", G_FUTEX, "contend_on_raw_futex", futex_thread},
    {"futex1", G_FUTEX, "contend_on_raw_futex", futex_thread},
    {"futex2", G_FUTEX, "contend_on_raw_futex", futex_thread},
    {"futex3", G_FUTEX, "contend_on_raw_futex", futex_thread},
    {"condvar0", G_CONDVAR, "wait_on_condvar", condvar_thread},
    {"condvar1", G_CONDVAR, "wait_on_condvar", condvar_thread},
    {"semwait", G_CONDVAR, "wait_on_semaphore", semaphore_thread},
    {"signaller", G_CONDVAR, "signal_loop", signaller_thread},
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
 * The report, one line per thread, then per group, then "done":
 *   thread NAME TID GROUP FUNC ROUNDS CONTENDED WAIT_NS FUTEX_CALLS FUTEX_NS
 *   group GROUP ROUNDS CONTENDED WAIT_NS FUTEX_CALLS FUTEX_NS
 */
static void print_report(const int *enabled)
{
    long long sums[G_COUNT][5];
    memset(sums, 0, sizeof sums);
    for (int i = 0; i < n_threads; i++) {
        struct thread_stats *s = &stats[i];
        long long v[5] = {atomic_load(&s->rounds), atomic_load(&s->contended),
                          atomic_load(&s->wait_ns), atomic_load(&s->futex_calls),
                          atomic_load(&s->futex_ns)};
        printf("thread %s %d %s %s %lld %lld %lld %lld %lld\n", s->name, atomic_load(&s->tid),
               group_names[s->group], s->func, v[0], v[1], v[2], v[3], v[4]);
        for (int k = 0; k < 5; k++)
            sums[s->group][k] += v[k];
    }
    for (int g = 0; g < G_COUNT; g++) {
        if (enabled[g])
            printf("group %s %lld %lld %lld %lld %lld\n", group_names[g], sums[g][0],
                   sums[g][1], sums[g][2], sums[g][3], sums[g][4]);
    }
    printf("done\n");
    fflush(stdout);
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

    long long end = mono_ns() + (long long)(seconds * 1e9);
    take_tick();
    for (;;) {
        long long left = end - mono_ns();
        if (left <= 0)
            break;
        long long nap = left < TICK_NS ? left : TICK_NS;
        struct timespec ts = {nap / 1000000000LL, nap % 1000000000LL};
        nanosleep(&ts, NULL);
        if (log_path)
            take_tick();
    }
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
    print_report(enabled);
    free(groups);
    return 0;
}
