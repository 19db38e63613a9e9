/*
 * raw_syscall.h: system calls issued with an inline `syscall` (x86_64) / `svc #0` (aarch64)
 * instruction, for workloads whose tests look at where a thread blocks or creates threads.
 *
 * Why not libc: Debian's libc is built without frame pointers, and its wrappers use the
 * frame-pointer register as a general register (clock_nanosleep does `mov %rdi,%rbp`,
 * pthread_create keeps an error code in %ebp). A frame-pointer unwinder that starts in such
 * a wrapper reads garbage as the frame chain, or at best skips the wrapper's caller. With the
 * system call instruction inlined into the known function itself, the user-space part of
 * the stack seen at the system call is certain: the known function is the leaf, and its
 * callers follow by frame pointers.
 *
 * Every helper is always_inline, so that the instruction lands in the calling function.
 */
#ifndef RAW_SYSCALL_H
#define RAW_SYSCALL_H

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#define RAW_INLINE static inline __attribute__((always_inline))

RAW_INLINE long raw_syscall3(long nr, long a, long b, long c)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#else
#error "unsupported architecture"
#endif
}

/* nanosleep(ts, NULL); an interrupted sleep just returns early. */
RAW_INLINE long raw_nanosleep(const struct timespec *ts)
{
    return raw_syscall3(SYS_nanosleep, (long)ts, 0, 0);
}

RAW_INLINE long raw_read(int fd, void *buf, unsigned long n)
{
    return raw_syscall3(SYS_read, fd, (long)buf, (long)n);
}

RAW_INLINE long raw_write(int fd, const void *buf, unsigned long n)
{
    return raw_syscall3(SYS_write, fd, (long)buf, (long)n);
}

RAW_INLINE __attribute__((noreturn)) void raw_exit_group(int code)
{
    raw_syscall3(SYS_exit_group, code, 0, 0);
    __builtin_unreachable();
}

/*
 * fork(): returns the child's pid in the parent and 0 in the child. The child is a full
 * copy of the calling process (one thread), so it may run C code; it should only
 * raw_exit_group() though, as libc's own fork bookkeeping was skipped.
 */
RAW_INLINE long raw_fork(void)
{
#if defined(__x86_64__)
    return raw_syscall3(SYS_fork, 0, 0, 0);
#elif defined(__aarch64__)
    /* No fork system call on arm64: clone(SIGCHLD, 0, NULL, 0, NULL). */
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = SIGCHLD;
    register long x1 __asm__("x1") = 0;
    register long x2 __asm__("x2") = 0;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = 0;
    __asm__ volatile("svc #0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
                     : "memory");
    return x0;
#endif
}

/*
 * Starts a thread (CLONE_THREAD, sharing everything) that exits at once, without ever
 * running C code: the child's whole path is inside the asm block. *ctid is cleared by the
 * kernel (CLONE_CHILD_CLEARTID) when the thread is gone; the caller sets it non-zero first
 * and waits for the 0. `stack_top` is a stack the thread never uses, but must have in case
 * a signal is delivered to it.
 * Returns the new thread's id, or -errno.
 */
RAW_INLINE long raw_clone_exiting_thread(void *stack_top, int *ctid)
{
    const long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                       CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
#if defined(__x86_64__)
    /* clone(flags, newsp, parent_tid, child_tid, tls) */
    long ret;
    register long r10 __asm__("r10") = (long)ctid;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %[exit_nr], %%eax\n\t" /* the child: exit(0) */
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "ud2\n"
                     "1:"
                     : "=a"(ret)
                     : "0"((long)SYS_clone), "D"(flags), "S"(stack_top), "d"(0L), "r"(r10),
                       "r"(r8), [exit_nr] "i"(SYS_exit)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    /* clone(flags, newsp, parent_tid, tls, child_tid) */
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = flags;
    register long x1 __asm__("x1") = (long)stack_top;
    register long x2 __asm__("x2") = 0;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = (long)ctid;
    __asm__ volatile("svc #0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x8, %[exit_nr]\n\t" /* the child: exit(0) */
                     "mov x0, #0\n\t"
                     "svc #0\n\t"
                     "brk #0\n"
                     "1:"
                     : "+r"(x0), "+r"(x8)
                     : "r"(x1), "r"(x2), "r"(x3), "r"(x4), [exit_nr] "i"(SYS_exit)
                     : "memory");
    return x0;
#endif
}

/*
 * vfork(), with the child's whole life inside the asm block: the child sleeps for *ts and
 * exits, while the parent waits in the kernel, uninterruptibly (state D), until it has.
 * The child shares the parent's memory and stack, so it must not run compiled code.
 * Returns the child's pid (to be reaped), or -errno.
 */
RAW_INLINE long raw_vfork_child_sleeps(const struct timespec *ts)
{
#if defined(__x86_64__)
    long ret;
    /* %rdi (ts) is not an argument of vfork, and survives the system call. */
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %[sleep_nr], %%eax\n\t" /* the child: nanosleep(ts, NULL) */
                     "xor %%esi, %%esi\n\t"
                     "syscall\n\t"
                     "mov %[exit_nr], %%eax\n\t" /* exit(0) */
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "ud2\n"
                     "1:"
                     : "=a"(ret)
                     : "0"((long)SYS_vfork), "D"(ts), [sleep_nr] "i"(SYS_nanosleep),
                       [exit_nr] "i"(SYS_exit)
                     : "rcx", "r11", "rsi", "memory");
    return ret;
#elif defined(__aarch64__)
    /* No vfork system call on arm64: clone(CLONE_VM | CLONE_VFORK | SIGCHLD, 0, ...). */
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = CLONE_VM | CLONE_VFORK | SIGCHLD;
    register long x1 __asm__("x1") = 0;
    register long x2 __asm__("x2") = 0;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = 0;
    register long x9 __asm__("x9") = (long)ts;
    __asm__ volatile("svc #0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x8, %[sleep_nr]\n\t" /* the child: nanosleep(ts, NULL) */
                     "mov x0, x9\n\t"
                     "mov x1, #0\n\t"
                     "svc #0\n\t"
                     "mov x8, %[exit_nr]\n\t" /* exit(0) */
                     "mov x0, #0\n\t"
                     "svc #0\n\t"
                     "brk #0\n"
                     "1:"
                     : "+r"(x0), "+r"(x8), "+r"(x1)
                     : "r"(x2), "r"(x3), "r"(x4), "r"(x9), [sleep_nr] "i"(SYS_nanosleep),
                       [exit_nr] "i"(SYS_exit)
                     : "memory");
    return x0;
#endif
}

#endif /* RAW_SYSCALL_H */
