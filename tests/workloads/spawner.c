/*
 * spawner: creates known numbers of threads and processes from known functions, for the
 * threadcreate profile.
 *
 *   main -> spawn_threads_a    N threads   (raw clone, CLONE_THREAD)
 *   main -> spawn_threads_b    M threads   (raw clone, CLONE_THREAD)
 *   main -> fork_children      K processes (raw fork; each child exits at once)
 *   main -> make_pthreads      P threads   (pthread_create, through libc)
 *     thread "maker" (the first of those P) -> spawn_from_maker   R threads (raw clone)
 *
 * Every raw-clone thread and forked child exits at once, without running any C code of
 * its own. The clone/fork system calls are issued inline from the known functions (see
 * raw_syscall.h), so the creating thread's user stack is KNOWN_FUNCTION <- main (or
 * <- maker_main). The pthread_create path goes through libc, which has no frame
 * pointers: only its count is meaningful, not its stack.
 *
 * Build: clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread
 * Usage: spawner DELAY_MS N M K P R
 *   Prints "ready <pid>", sleeps DELAY_MS, creates everything, waits for all of it to be
 *   gone, prints "maker <tid>" (the maker thread's id) and "done", and exits 0.
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

#define MAX_THREADS 64
#define STACK_SIZE 16384

/* Stacks the exiting threads never use (see raw_clone_exiting_thread). */
static char stacks[MAX_THREADS][STACK_SIZE] __attribute__((aligned(16)));
static int next_stack;
static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;
static int maker_tid;
static long count_r;

static void die(const char *what, long err)
{
    fprintf(stderr, "spawner: %s: %s\n", what, strerror((int)-err));
    exit(2);
}

static char *stack_top(void)
{
    pthread_mutex_lock(&stack_lock);
    int i = next_stack++;
    pthread_mutex_unlock(&stack_lock);
    if (i >= MAX_THREADS) {
        fprintf(stderr, "spawner: more than %d raw threads\n", MAX_THREADS);
        exit(2);
    }
    return stacks[i] + STACK_SIZE;
}

/* Waits until the kernel has cleared *ctid: the thread is gone. */
static void wait_gone(volatile int *ctid)
{
    while (__atomic_load_n(ctid, __ATOMIC_ACQUIRE) != 0)
        usleep(1000);
}

/* ---- the known creating functions; each issues clone/fork itself ---- */

__attribute__((noinline)) void spawn_threads_a(long n)
{
    for (long i = 0; i < n; i++) {
        int ctid = -1;
        long tid = raw_clone_exiting_thread(stack_top(), &ctid);
        if (tid < 0)
            die("clone in spawn_threads_a", tid);
        wait_gone(&ctid);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void spawn_threads_b(long n)
{
    for (long i = 0; i < n; i++) {
        int ctid = -1;
        long tid = raw_clone_exiting_thread(stack_top(), &ctid);
        if (tid < 0)
            die("clone in spawn_threads_b", tid);
        wait_gone(&ctid);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void fork_children(long n)
{
    for (long i = 0; i < n; i++) {
        long pid = raw_fork();
        if (pid == 0)
            raw_exit_group(0);
        if (pid < 0)
            die("fork in fork_children", pid);
        waitpid((pid_t)pid, NULL, 0);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void spawn_from_maker(long n)
{
    for (long i = 0; i < n; i++) {
        int ctid = -1;
        long tid = raw_clone_exiting_thread(stack_top(), &ctid);
        if (tid < 0)
            die("clone in spawn_from_maker", tid);
        wait_gone(&ctid);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void *maker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "maker");
    maker_tid = gettid();
    spawn_from_maker(count_r);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

__attribute__((noinline)) static void *idle_main(void *arg)
{
    (void)arg;
    return NULL;
}

__attribute__((noinline)) void make_pthreads(long n)
{
    pthread_t threads[MAX_THREADS];
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    for (long i = 0; i < n; i++) {
        int err = pthread_create(&threads[i], NULL, i == 0 ? maker_main : idle_main, NULL);
        if (err != 0)
            die("pthread_create", -err);
        /* One at a time, so that the maker is done before the others start. */
        pthread_join(threads[i], NULL);
    }
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: spawner DELAY_MS N M K P R\n");
        return 2;
    }
    long delay_ms = atol(argv[1]);
    long n = atol(argv[2]), m = atol(argv[3]), k = atol(argv[4]), p = atol(argv[5]);
    count_r = atol(argv[6]);

    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (delay_ms > 0)
        usleep(delay_ms * 1000);

    spawn_threads_a(n);
    spawn_threads_b(m);
    fork_children(k);
    make_pthreads(p);

    printf("maker %d\ndone\n", maker_tid);
    fflush(stdout);
    return 0;
}
