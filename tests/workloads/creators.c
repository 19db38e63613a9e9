// creators makes threads and processes only through libc's own wrappers, each from a
// function of its own, so that every creation's stack must reach that function (and main)
// through glibc's clone3/clone, whose FDEs end before the system call:
//   via_pthread_create  pthread_create, N times
//   via_fork            fork(), N times (the child exits at once)
//   via_posix_spawn     posix_spawn of /bin/true, N times
//   via_system          system("exit 0"), N times (a shell, which itself forks nothing)
//   via_vfork           vfork() + _exit, N times
// Usage: creators N. Built the distribution way (-O2, no frame-pointer flags). Waits 300 ms
// first, so every creation falls inside the recording, then prints "done".
// Usage: creators N SECONDS: prints "ready PID", then makes N of each every 100 ms for
// SECONDS, for a recording that attaches with -p.
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *thread_body(void *arg) { return arg; }

__attribute__((noinline)) void via_pthread_create(int n) {
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_body, NULL) == 0) pthread_join(t, NULL);
    }
}

__attribute__((noinline)) void via_fork(int n) {
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
    }
}

__attribute__((noinline)) void via_posix_spawn(int n) {
    char *argv[] = {"true", NULL};
    for (int i = 0; i < n; i++) {
        pid_t p;
        if (posix_spawn(&p, "/bin/true", NULL, NULL, argv, environ) == 0) waitpid(p, NULL, 0);
    }
}

__attribute__((noinline)) void via_system(int n) {
    for (int i = 0; i < n; i++)
        if (system("exit 0") != 0) exit(1);
}

__attribute__((noinline)) void via_vfork(int n) {
    for (int i = 0; i < n; i++) {
        pid_t p = vfork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
    }
}

static void each_way(int n) {
    via_pthread_create(n);
    via_fork(n);
    via_posix_spawn(n);
    via_system(n);
    via_vfork(n);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2) {
        printf("ready %d\n", getpid());
        fflush(stdout);
        for (int rounds = atof(argv[2]) * 10; rounds > 0; rounds--) {
            each_way(n);
            usleep(100 * 1000);
        }
    } else {
        usleep(300 * 1000);
        each_way(n);
    }
    printf("done\n");
    return 0;
}
