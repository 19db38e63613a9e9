/*
 * deep_lock: threads that contend for one pthread mutex at the bottom of DEPTH frames of
 * recursion, each frame with 256 bytes of locals, so that a waiter's stack from its
 * thread's start to the lock is about DEPTH x 272 bytes: ~27 KiB at DEPTH 100, more than
 * the default 16 KiB stack copy holds and well within 64 KiB. For the mutex profile's
 * `--call-graph dwarf,SIZE`.
 *
 *   (libc start_thread) -> locker_main -> descend (DEPTH times) -> lock_rounds
 *     -> pthread_mutex_lock (libc) -> futex wait
 *
 * Each holder spins a few microseconds under the lock and a few outside it, so with four
 * threads on two CPUs the lock is often taken and the waiters sleep in the kernel.
 *
 * Build: clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread
 * Usage: deep_lock SECONDS DEPTH
 *   Prints "ready <pid>" once the four threads "locker0".."locker3" exist and are named,
 *   runs for SECONDS, joins them and exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define HOLD_SPINS 2000
#define GAP_SPINS 2000

static pthread_mutex_t the_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t named;
static volatile unsigned long sink;
static double deadline;
static int depth;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spin(int n)
{
    unsigned long x = sink;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        __asm__ volatile("" : "+r"(x));
    }
    sink = x;
}

/* The function that takes the lock: the caller that a lock wait's stack must show. */
__attribute__((noinline)) void lock_rounds(void)
{
    while (now() < deadline) {
        pthread_mutex_lock(&the_lock);
        spin(HOLD_SPINS);
        pthread_mutex_unlock(&the_lock);
        spin(GAP_SPINS);
    }
    __asm__ volatile("" ::: "memory");
}

/* Locals the compiler cannot drop or shrink (every byte is written, at indexes it cannot
 * know in advance), and work after the call, so no frame is elided. */
__attribute__((noinline)) unsigned long descend(int level)
{
    volatile unsigned char pad[256];
    for (int i = 0; i < (int)sizeof pad; i++)
        pad[(i + level) % (int)sizeof pad] = (unsigned char)i;
    if (level > 0)
        sink += descend(level - 1);
    else
        lock_rounds();
    return pad[level % (int)sizeof pad] + sink;
}

__attribute__((noinline)) static void *locker_main(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "locker%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    pthread_barrier_wait(&named);
    sink += descend(depth);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    pthread_t threads[THREADS];

    depth = argc > 2 ? atoi(argv[2]) : 100;
    deadline = now() + seconds;
    pthread_barrier_init(&named, NULL, THREADS + 1);
    for (long i = 0; i < THREADS; i++) {
        if (pthread_create(&threads[i], NULL, locker_main, (void *)i) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    pthread_barrier_wait(&named);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
