/*
 * fp_paths: two named worker threads with a known call chain.
 *
 *   worker_main -> path_a -> hot_leaf   (3 units of work per round)
 *   worker_main -> path_b -> hot_leaf   (1 unit of work per round)
 *
 * so hot_leaf holds ~100% of the workers' CPU time, path_a ~75% and path_b ~25%,
 * and each of "worker-1" and "worker-2" gets ~50%.
 *
 * Build: cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread
 * Usage: fp_paths SECONDS [START_DELAY_MS]
 *   Prints "ready <pid>" once the workers exist and are named (or, with a start delay,
 *   right away, before the workers are created), then runs for SECONDS and exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ITERS_PER_UNIT 200000UL

static volatile unsigned long sink;
static double deadline;
static pthread_barrier_t named;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The only function that burns CPU. */
__attribute__((noinline)) void hot_leaf(unsigned long units)
{
    unsigned long x = sink;
    for (unsigned long i = 0; i < units * ITERS_PER_UNIT; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        __asm__ volatile("" : "+r"(x));
    }
    sink = x;
}

/* The empty asm after each call keeps the call out of tail position, so that the
 * caller's frame stays on the stack. */
__attribute__((noinline)) void path_a(void)
{
    hot_leaf(3); /* CALL_SITE_A */
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void path_b(void)
{
    hot_leaf(1); /* CALL_SITE_B */
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void *worker_main(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    pthread_barrier_wait(&named);
    while (now() < deadline) {
        path_a();
        path_b();
    }
    __asm__ volatile("" ::: "memory");
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    long delay_ms = argc > 2 ? atol(argv[2]) : 0;
    pthread_t threads[2];

    if (delay_ms > 0) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        usleep(delay_ms * 1000);
    }
    deadline = now() + seconds;
    pthread_barrier_init(&named, NULL, 3);
    for (long i = 0; i < 2; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, (void *)(i + 1)) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    pthread_barrier_wait(&named);
    if (delay_ms <= 0) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
