/*
 * syscalls: a single thread that spends its time in the kernel, reading /dev/zero
 * into a large buffer from a known user function:
 *
 *   main -> do_syscalls -> [syscall read] -> kernel frames (read_zero, vfs_read, ...)
 *
 * The read is issued with an inline `syscall` instruction in do_syscalls itself rather
 * than through libc, whose wrappers have no frame pointer: that way the user-space part
 * of each stack is do_syscalls -> main for certain.
 *
 * Build: cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer
 * Usage: syscalls SECONDS     prints "ready <pid>", loops for SECONDS, exits 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (1 << 20)

static char buf[BUF_SIZE];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline __attribute__((always_inline)) long raw_read(long fd, void *dst, unsigned long n)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(0L /* __NR_read */), "D"(fd), "S"(dst), "d"(n)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = 63; /* __NR_read */
    register long x0 __asm__("x0") = fd;
    register long x1 __asm__("x1") = (long)dst;
    register long x2 __asm__("x2") = (long)n;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#else
#error "unsupported architecture"
#endif
}

__attribute__((noinline)) long do_syscalls(int fd, double deadline)
{
    long total = 0;
    do {
        for (int i = 0; i < 16; i++) {
            long n = raw_read(fd, buf, BUF_SIZE);
            if (n <= 0)
                return -1;
            total += n;
        }
    } while (now() < deadline);
    __asm__ volatile("" ::: "memory");
    return total;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0) {
        perror("/dev/zero");
        return 2;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    long total = do_syscalls(fd, now() + seconds);
    if (total < 0) {
        perror("read");
        return 3;
    }
    return 0;
}
