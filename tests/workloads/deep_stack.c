/*
 * deep_stack: a thread whose hot loop runs under DEPTH frames of recursion, each with
 * 256 bytes of locals, so its stack from main to the leaf is about DEPTH x 272 bytes:
 * deeper than a 16 KiB stack copy holds at DEPTH 100 (~27 KiB), within 64 KiB.
 *
 *   main -> descend (DEPTH times) -> spin
 *
 * Build: gcc -O2 -g -fomit-frame-pointer
 * Usage: deep_stack SECONDS DEPTH
 *   Prints "ready <pid>", spins for SECONDS, and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static double deadline;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void spin(void)
{
    while (now() < deadline) {
        unsigned long x = sink;
        for (int i = 0; i < 100000; i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            __asm__ volatile("" : "+r"(x));
        }
        sink = x;
    }
}

/* Locals the compiler cannot drop, and work after the call, so no frame is elided. */
__attribute__((noinline)) static unsigned long descend(int depth)
{
    volatile unsigned char pad[256];
    pad[0] = (unsigned char)depth;
    if (depth > 0)
        sink += descend(depth - 1);
    else
        spin();
    return pad[0] + sink;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int depth = argc > 2 ? atoi(argv[2]) : 100;

    deadline = now() + seconds;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    sink = descend(depth);
    return 0;
}
