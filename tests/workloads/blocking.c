/*
 * blocking: named threads that block (or spin) in known functions, for off-CPU and
 * wall-clock profiles. Every blocking system call is issued inline from the known function
 * (see raw_syscall.h for why not through libc), so the user stack at the block is
 *   KNOWN_FUNCTION <- THREAD_main <- (libc start_thread)
 *
 *   thread       known function   what it does                                 blocked as
 *   "sleeper"    sleep_loop       nanosleep(10 ms) in a loop                   S
 *   "reader"     read_loop        read(2) on a pipe that "feeder" feeds        S
 *   "feeder"     feed_loop        nanosleep(200 ms), then write one byte       S
 *   "spinner"    spin_loop        burns CPU in spin_leaf, never blocks         R (preempted)
 *   "napper"     long_nap         one nanosleep of an hour: already asleep     S
 *                                 when a profiler attaches, still asleep
 *                                 when it stops
 *   "shortnaps"  short_naps       nanosleep(1 ms) in a loop                    S
 *   "longnaps"   long_naps        nanosleep(100 ms) in a loop                  S
 *   "vforker"    vfork_wait       (option `vfork` only) vfork()s a child that  D
 *                                 sleeps 20 ms and exits; the parent waits
 *                                 uninterruptibly
 *   main thread  -                sleeps (libc nanosleep) until the end        S
 *
 * So the reader is blocked nearly all the time (one byte every 200 ms), and every thread
 * but the spinner is off the CPU nearly all the time.
 *
 * Build: clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread
 * Usage: blocking SECONDS [vfork]
 *   Prints "ready <pid>" once every thread exists, is named and is in its loop (the napper
 *   asleep), runs for SECONDS, and exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_syscall.h"

static volatile int running = 1;
static volatile unsigned long sink;
static int pipe_fds[2];
static pthread_barrier_t named;

static const struct timespec ms1 = {0, 1000000L};
static const struct timespec ms10 = {0, 10000000L};
static const struct timespec ms20 = {0, 20000000L};
static const struct timespec ms100 = {0, 100000000L};
static const struct timespec ms200 = {0, 200000000L};
static const struct timespec hour = {3600, 0};

/* ---- the known functions; each issues its system call itself ---- */

__attribute__((noinline)) void sleep_loop(void)
{
    while (running)
        raw_nanosleep(&ms10);
}

__attribute__((noinline)) void read_loop(void)
{
    char buf[64];
    while (running) {
        if (raw_read(pipe_fds[0], buf, sizeof buf) <= 0)
            break;
    }
}

__attribute__((noinline)) void feed_loop(void)
{
    while (running) {
        raw_nanosleep(&ms200);
        raw_write(pipe_fds[1], "x", 1);
    }
}

__attribute__((noinline)) void spin_leaf(void)
{
    unsigned long x = sink;
    for (int i = 0; i < 100000; i++) {
        x = x * 2862933555777941757UL + 3037000493UL;
        __asm__ volatile("" : "+r"(x));
    }
    sink = x;
}

__attribute__((noinline)) void spin_loop(void)
{
    while (running)
        spin_leaf();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void long_nap(void)
{
    raw_nanosleep(&hour);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void short_naps(void)
{
    while (running)
        raw_nanosleep(&ms1);
}

__attribute__((noinline)) void long_naps(void)
{
    while (running)
        raw_nanosleep(&ms100);
}

__attribute__((noinline)) void vfork_wait(void)
{
    while (running) {
        long pid = raw_vfork_child_sleeps(&ms20);
        if (pid < 0) {
            fprintf(stderr, "vfork: %s\n", strerror((int)-pid));
            exit(3);
        }
        waitpid((pid_t)pid, NULL, 0);
    }
}

/* ---- threads ---- */

struct thread_def {
    const char *name;
    void (*body)(void);
};

static const struct thread_def defs[] = {
    {"sleeper", sleep_loop},
    {"reader", read_loop},
    {"feeder", feed_loop},
    {"spinner", spin_loop},
    {"napper", long_nap},
    {"shortnaps", short_naps},
    {"longnaps", long_naps},
    {"vforker", vfork_wait},
};
#define NDEFS (sizeof defs / sizeof defs[0])

/* One start routine per thread, so that each stack names its thread; the empty asm keeps
 * the call out of tail position, so that the *_main frame stays on the stack. */
#define THREAD_MAIN(fn, index)                                                               \
    __attribute__((noinline)) static void *fn(void *arg)                                     \
    {                                                                                        \
        (void)arg;                                                                           \
        pthread_setname_np(pthread_self(), defs[index].name);                                \
        pthread_barrier_wait(&named);                                                        \
        defs[index].body();                                                                  \
        __asm__ volatile("" ::: "memory");                                                   \
        return NULL;                                                                         \
    }

THREAD_MAIN(sleeper_main, 0)
THREAD_MAIN(reader_main, 1)
THREAD_MAIN(feeder_main, 2)
THREAD_MAIN(spinner_main, 3)
THREAD_MAIN(napper_main, 4)
THREAD_MAIN(shortnaps_main, 5)
THREAD_MAIN(longnaps_main, 6)
THREAD_MAIN(vforker_main, 7)

static void *(*const mains[NDEFS])(void *) = {
    sleeper_main, reader_main,    feeder_main,   spinner_main,
    napper_main,  shortnaps_main, longnaps_main, vforker_main,
};

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 30.0;
    int with_vfork = argc > 2 && strcmp(argv[2], "vfork") == 0;
    size_t n = with_vfork ? NDEFS : NDEFS - 1;
    pthread_t threads[NDEFS];

    if (pipe(pipe_fds) != 0) {
        perror("pipe");
        return 2;
    }
    pthread_barrier_init(&named, NULL, (unsigned)n + 1);
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&threads[i], NULL, mains[i], NULL) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    pthread_barrier_wait(&named);
    /* Let every thread get from the barrier into its loop (the napper into its sleep). */
    usleep(100 * 1000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);

    /* The main thread waits, blocked, for the end. */
    struct timespec end = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&end, NULL);
    running = 0;
    raw_exit_group(0); /* the napper would sleep on for an hour */
}
