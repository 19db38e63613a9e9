// libc_blocking has four threads that block only through libc's own wrappers, each in a
// function of its own, woken by the main thread every 5 ms:
//   sleeper   nanosleep(5 ms)       in wait_in_nanosleep <- sleeper_main
//   reader    read() on a pipe      in wait_in_read      <- reader_main
//   waiter    pthread_cond_wait     in wait_in_cond      <- cond_main
//   poller    epoll_wait on eventfd in wait_in_epoll     <- epoll_main
// Built the way distributions build (-O2, no frame-pointer flags), so the callers above
// libc's wrappers are found only through call frame information.
// Usage: libc_blocking SECONDS. Prints "ready PID" once the threads run and "done" at the end.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static int pipe_fds[2];
static int event_fd, epoll_fd;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned long generation;

__attribute__((noinline)) void wait_in_nanosleep(void) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) void wait_in_read(void) {
    char c;
    if (read(pipe_fds[0], &c, 1) < 0) stop = 1;
}

__attribute__((noinline)) void wait_in_cond(void) {
    pthread_mutex_lock(&lock);
    unsigned long seen = generation;
    while (generation == seen && !stop) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) void wait_in_epoll(void) {
    struct epoll_event ev;
    if (epoll_wait(epoll_fd, &ev, 1, -1) == 1) {
        uint64_t n;
        if (read(event_fd, &n, sizeof n) < 0) stop = 1;
    }
}

static void *sleeper_main(void *arg) {
    while (!stop) wait_in_nanosleep();
    return arg;
}

static void *reader_main(void *arg) {
    while (!stop) wait_in_read();
    return arg;
}

static void *cond_main(void *arg) {
    while (!stop) wait_in_cond();
    return arg;
}

static void *epoll_main(void *arg) {
    while (!stop) wait_in_epoll();
    return arg;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wake_all(void) {
    if (write(pipe_fds[1], "x", 1) != 1) exit(1);
    pthread_mutex_lock(&lock);
    generation++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    uint64_t one = 1;
    if (write(event_fd, &one, sizeof one) != sizeof one) exit(1);
}

int main(int argc, char **argv) {
    double end = now() + (argc > 1 ? atof(argv[1]) : 3);
    if (pipe(pipe_fds) != 0) return 1;
    event_fd = eventfd(0, 0);
    epoll_fd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (event_fd < 0 || epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &ev) != 0)
        return 1;
    void *(*mains[])(void *) = {sleeper_main, reader_main, cond_main, epoll_main};
    const char *names[] = {"sleeper", "reader", "waiter", "poller"};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, mains[i], NULL);
        pthread_setname_np(threads[i], names[i]);
    }
    printf("ready %d\n", getpid());
    fflush(stdout);
    while (now() < end) {
        usleep(5000);
        wake_all();
    }
    stop = 1;
    wake_all();
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    printf("done\n");
    return 0;
}
