/*
 * no_malloc: a static program without libc, so without any allocator, for the alloc
 * profile's "no allocator to probe" error. Everything is done with raw system calls.
 *
 * Build: clang -O2 -static -nostdlib -ffreestanding -fno-stack-protector
 * Usage: no_malloc SECONDS
 *   Prints "ready <pid>", sleeps for SECONDS (in 10 ms naps), and exits 0.
 */
#define _GNU_SOURCE
#include "raw_syscall.h"

static unsigned long format_ulong(char *buf, unsigned long v)
{
    char digits[24];
    unsigned long n = 0, len = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[len++] = digits[--n];
    return len;
}

static unsigned long parse_ulong(const char *s)
{
    unsigned long v = 0;
    while (s && *s >= '0' && *s <= '9')
        v = v * 10 + (unsigned long)(*s++ - '0');
    return v;
}

/* Called from _start with the initial stack pointer: argc, argv[0], argv[1], ... */
__attribute__((noreturn, used)) void start_c(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    unsigned long seconds = argc > 1 ? parse_ulong(argv[1]) : 1;
    char line[40] = "ready ";
    unsigned long len = 6;
    static const struct timespec nap = {0, 10000000L};

    len += format_ulong(line + len, (unsigned long)raw_syscall3(SYS_getpid, 0, 0, 0));
    line[len++] = '\n';
    raw_write(1, line, len);
    for (unsigned long i = 0; i < seconds * 100; i++)
        raw_nanosleep(&nap);
    raw_exit_group(0);
}

/* The entry point: pass the initial stack pointer on, with the stack aligned for C. */
#if defined(__x86_64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  ud2\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x0, sp\n"
        "  bl start_c\n"
        "  brk #0\n");
#else
#error "unsupported architecture"
#endif
