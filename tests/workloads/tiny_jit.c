// tiny_jit plays a JIT runtime: it copies a small busy loop (with a frame-pointer frame, as
// V8 and the JVM keep) into anonymous executable memory, names it in /tmp/perf-PID.map, and
// calls it from call_jit <- main for SECONDS. MODE says what the map looks like:
//   good     the entry "jit_spin" among MALFORMED_LINES (5) malformed lines
//   owner    as good, then chowned to uid 12345: not the process's user nor root
//   rewrite  as good; after a second the map is replaced by one naming it "jit_spin_v2"
//   big      over 100 MB of entries for other addresses, then "jit_spin"
// Usage: tiny_jit MODE SECONDS. Prints "ready PID" once the map is written, runs SECONDS
// from then, and removes the map at exit.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
// push rbp; mov rbp,rsp; mov ecx,100000; 1: dec ecx; jnz 1b; pop rbp; ret
static const unsigned char code[] = {0x55, 0x48, 0x89, 0xe5, 0xb9, 0xa0, 0x86, 0x01,
                                     0x00, 0xff, 0xc9, 0x75, 0xfc, 0x5d, 0xc3};
#elif defined(__aarch64__)
// stp x29,x30,[sp,#-16]!; mov x29,sp; mov w1,#100000; 1: subs w1,w1,#1; b.ne 1b;
// ldp x29,x30,[sp],#16; ret
static const unsigned int code[] = {0xa9bf7bfd, 0x910003fd, 0x5290d401, 0x72a00021,
                                    0x71000421, 0x54ffffe1, 0xa8c17bfd, 0xd65f03c0};
#endif

static char map_path[64];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_map(const char *path, void *jit, const char *name, int big) {
    FILE *f = fopen(path, "w");
    if (!f) exit(1);
    // Malformed: no size, bad hex, zero size, past 2^64, and an empty line.
    fprintf(f, "1234\nzz 10 bad_hex\n1000 0 zero_size\nffffffffffffff00 1000 overflow\n\n");
    if (big) {
        // ~86 bytes a line, far from the real code: 1.25M lines, over 100 MB.
        for (long i = 0; i < 1250000; i++)
            fprintf(f, "%lx 40 LazyCompile:*generatedFunctionNumber%ld /srv/app/lib/module.js:1:1\n",
                    0x100000000000UL + i * 0x40, i);
    }
    fprintf(f, "%lx %zx %s\n", (unsigned long)jit, sizeof code, name);
    fclose(f);
}

__attribute__((noinline)) void call_jit(void (*fn)(void)) {
    fn();
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tiny_jit good|owner|rewrite|big SECONDS\n");
        return 2;
    }
    const char *mode = argv[1];
    void *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (jit == MAP_FAILED) return 1;
    memcpy(jit, code, sizeof code);
    __builtin___clear_cache((char *)jit, (char *)jit + sizeof code);
    snprintf(map_path, sizeof map_path, "/tmp/perf-%d.map", getpid());
    write_map(map_path, jit, "jit_spin", strcmp(mode, "big") == 0);
    if (strcmp(mode, "owner") == 0 && chown(map_path, 12345, 12345) != 0) return 1;
    printf("ready %d\n", getpid());
    fflush(stdout);
    // The time counts from here: writing the big map can take long on a loaded machine.
    double end = now() + atof(argv[2]);
    double rewrite_at = now() + 1.0;
    int rewritten = 0;
    while (now() < end) {
        call_jit((void (*)(void))jit);
        if (!rewritten && strcmp(mode, "rewrite") == 0 && now() >= rewrite_at) {
            // A new file put in place, as a runtime rewriting its map would.
            char tmp[80];
            snprintf(tmp, sizeof tmp, "%s.new", map_path);
            write_map(tmp, jit, "jit_spin_v2", 0);
            if (rename(tmp, map_path) != 0) return 1;
            rewritten = 1;
        }
    }
    unlink(map_path);
    printf("done\n");
    return 0;
}
