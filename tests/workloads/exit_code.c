/*
 * exit_code: burns CPU in a known function for a while, then ends in a chosen way.
 *
 *   main -> spin_then_exit -> spin_leaf
 *
 * Usage: exit_code MILLISECONDS CODE
 *   CODE >= 0: exit(CODE).   CODE < 0: kill itself with signal -CODE.
 * Prints "ready <pid>" first and, before a normal exit, "cpu <seconds>": the CPU time it
 * used, which tells a test how many samples to expect. Built under several names, so that the process name (comm)
 * tells the copies apart.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
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

__attribute__((noinline)) void spin_then_exit(double seconds, int code)
{
    double deadline = now() + seconds;
    while (now() < deadline)
        spin_leaf();
    if (code < 0) {
        signal(-code, SIG_DFL);
        raise(-code);
    }
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("cpu %.3f\n", cpu.tv_sec + cpu.tv_nsec / 1e9);
    exit(code);
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 1000;
    int code = argc > 2 ? atoi(argv[2]) : 0;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    spin_then_exit(ms / 1000.0, code);
    return 99; /* not reached */
}
