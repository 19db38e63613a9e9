// signal_work runs inside signal handlers, on the stacks the kernel builds for them, so that
// a profiler must unwind through the signal frame to reach the code that was interrupted.
//
//   signal_work cpu SECONDS    the main thread spins in interrupted_loop <- spin_outer <- main;
//                              every 20 ms SIGALRM interrupts it, and the handler spins in
//                              handler_spin for about half of the CPU time.
//   signal_work block SECONDS  a "reader" thread blocks in read() on a pipe in blocked_read <-
//                              reader_main; every 50 ms the main thread sends it SIGUSR1, whose
//                              handler sleeps 20 ms in handler_sleep (nanosleep through libc),
//                              and prints "handler_sleep_ns N", the time spent in those calls.
//
// Built the way distributions build (-O2, no frame-pointer flags). Prints "ready" once set
// up and "done" at the end.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile int stop;
static int pipe_fds[2];
static volatile double handler_sleep_s;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void handler_spin(void) {
    // ~10 ms of work per signal, against 20 ms between signals.
    double end = now() + 0.010;
    while (now() < end)
        for (int i = 0; i < 1000; i++) sink += i * 7;
}

__attribute__((noinline)) void handler_sleep(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    double began = now();
    nanosleep(&ts, NULL);
    handler_sleep_s += now() - began;
}

static void on_alarm(int sig) {
    (void)sig;
    handler_spin();
    __asm__ volatile("" ::: "memory");  // keep the handler's own frame (no tail call)
}

static void on_usr1(int sig) {
    (void)sig;
    handler_sleep();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void interrupted_loop(double end) {
    while (!stop && now() < end)
        for (int i = 0; i < 1000; i++) sink ^= i;
}

__attribute__((noinline)) void spin_outer(double end) {
    interrupted_loop(end);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void blocked_read(void) {
    char c;
    while (!stop)
        if (read(pipe_fds[0], &c, 1) == 1) break;
}

static void *reader_main(void *arg) {
    (void)arg;
    blocked_read();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: signal_work cpu|block SECONDS\n");
        return 2;
    }
    double end = now() + atof(argv[2]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    // SA_RESTART: read() goes back to blocking after each handler.
    sa.sa_flags = SA_RESTART;
    if (strcmp(argv[1], "cpu") == 0) {
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 20000}, {0, 20000}};
        setitimer(ITIMER_REAL, &it, NULL);
        printf("ready\n");
        fflush(stdout);
        spin_outer(end);
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
    } else {
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        if (pipe(pipe_fds) != 0) return 1;
        pthread_t reader;
        pthread_create(&reader, NULL, reader_main, NULL);
        printf("ready\n");
        fflush(stdout);
        while (now() < end) {
            pthread_kill(reader, SIGUSR1);
            usleep(50 * 1000);
        }
        stop = 1;
        if (write(pipe_fds[1], "x", 1) != 1) return 1;
        pthread_join(reader, NULL);
        printf("handler_sleep_ns %.0f\n", handler_sleep_s * 1e9);
    }
    printf("done\n");
    return 0;
}
