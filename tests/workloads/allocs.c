/*
 * allocs: two allocation paths of known byte ratio, for allocation (heap) profiles.
 *
 *   path_frees   malloc(64 KiB) twice per round; every block is freed at once
 *   path_keeps   400 small allocations per round (64..256 bytes), 80 through each of
 *                  keep_malloc          malloc(size)
 *                  keep_calloc          calloc(size / 16, 16)
 *                  keep_realloc         realloc(realloc_seed(size / 2), size)
 *                  keep_posix_memalign  posix_memalign(&p, 64, size)
 *                  keep_aligned_alloc   aligned_alloc(64, size rounded up to 64)
 *                and keeps 1 in 10 of each function's results (never freed); the rest
 *                are freed at once. realloc_seed makes keep_realloc's first block with
 *                malloc(size / 2); realloc replaces it, so realloc_seed never keeps any.
 *
 * Every function named above calls the allocator itself, and does work after the call
 * (no tail call), so the caller of malloc is certain: it is the leaf once the allocator's
 * own frames are dropped, under path_frees or path_keeps.
 * The program counts, per function, the calls, the bytes requested, and the bytes and
 * blocks it kept. Only the allocations of these functions are counted; the rest of the
 * program (stdio) allocates a few KiB at most.
 *
 * Build: clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread, or as
 * distributions build (gcc -O2 -g -pthread, no frame pointers) for the CFI tests.
 * Usage:
 *   allocs run ROUNDS
 *     Prints "ready <pid>", runs ROUNDS rounds back to back, prints the counts (see
 *     print_counts) and "done", and exits 0.
 *   allocs loop SECONDS LOGFILE
 *     First keeps 2000 blocks of 1 KiB (keep_before, before anything else), prints
 *     "ready <pid>", then runs a round every millisecond or so for SECONDS, freeing 20 of
 *     the early blocks per round (free_before) until they are gone. At the end it writes
 *     LOGFILE: the counts (as for run), then one line per round,
 *       "round T_NS FREES_BYTES KEEPS_BYTES KEPT_BYTES"
 *     with the CLOCK_REALTIME time at the round's end and the running totals of bytes
 *     requested under path_frees and path_keeps and bytes kept, so that a test can tell
 *     what happened inside a recording window. Exits 0.
 *   allocs relay ROUNDS
 *     Like run, but each round is 400 calls of relay_aligned_alloc (aligned_alloc(16,
 *     size), freed at once; see there) instead of path_frees and path_keeps.
 *   allocs signal ROUNDS LOGFILE
 *     Prints "ready <pid>", waits for SIGUSR1 (so that a profiler can be attached first),
 *     runs ROUNDS rounds back to back, writes the counts and "done" to LOGFILE, and exits 0.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LARGE_SIZE (64 * 1024)
#define LARGE_PER_ROUND 2
#define SMALL_PER_ROUND 400
#define KEEP_ONE_IN 10
#define BEFORE_BLOCKS 2000
#define BEFORE_SIZE 1024
#define BEFORE_FREED_PER_ROUND 20
#define MAX_KEPT (1 << 20)
#define MAX_ROUNDS 100000

enum fn_id {
    FN_PATH_FREES,
    FN_KEEP_MALLOC,
    FN_KEEP_CALLOC,
    FN_REALLOC_SEED,
    FN_KEEP_REALLOC,
    FN_KEEP_POSIX_MEMALIGN,
    FN_KEEP_ALIGNED_ALLOC,
    FN_RELAY_ALIGNED_ALLOC,
    FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
    "path_frees",   "keep_malloc",         "keep_calloc",        "realloc_seed",
    "keep_realloc", "keep_posix_memalign", "keep_aligned_alloc", "relay_aligned_alloc",
};

struct fn_counts {
    unsigned long calls;
    unsigned long bytes;
    unsigned long kept_bytes;
    unsigned long kept_blocks;
};

static struct fn_counts counts[FN_COUNT];

/* Blocks kept for good (never freed), so that the compiler cannot drop them either. */
static void *kept[MAX_KEPT];
static unsigned long n_kept;

/* Per function, the decision to keep: one call in KEEP_ONE_IN. */
static unsigned long keep_counter[FN_COUNT];

static void *before[BEFORE_BLOCKS];
static unsigned long before_freed;

struct round_log {
    long long t_ns;
    unsigned long frees_bytes, keeps_bytes, kept_bytes;
};
static struct round_log rounds_log[MAX_ROUNDS];
static unsigned long n_rounds;

/* Makes the block visible to the outside, so that the allocation cannot be optimised away. */
static inline void touch(void *p, size_t size)
{
    if (!p) {
        fprintf(stderr, "allocation of %zu bytes failed\n", size);
        exit(1);
    }
    ((volatile char *)p)[0] = 1;
    ((volatile char *)p)[size - 1] = 1;
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void account(enum fn_id fn, size_t size)
{
    counts[fn].calls++;
    counts[fn].bytes += size;
}

/* Keeps p if it is this function's turn; frees it otherwise. */
static void keep_or_free(enum fn_id fn, void *p, size_t size)
{
    if (keep_counter[fn]++ % KEEP_ONE_IN == 0 && n_kept < MAX_KEPT) {
        kept[n_kept++] = p;
        counts[fn].kept_bytes += size;
        counts[fn].kept_blocks++;
    } else {
        free(p);
    }
}

/* ---- path A: large blocks, all freed ---- */

__attribute__((noinline)) void path_frees(void)
{
    for (int i = 0; i < LARGE_PER_ROUND; i++) {
        char *p = malloc(LARGE_SIZE);
        touch(p, LARGE_SIZE);
        account(FN_PATH_FREES, LARGE_SIZE);
        free(p);
    }
}

/* ---- path B: small blocks, 1 in 10 kept ---- */

__attribute__((noinline)) void keep_malloc(size_t size)
{
    void *p = malloc(size);
    touch(p, size);
    account(FN_KEEP_MALLOC, size);
    keep_or_free(FN_KEEP_MALLOC, p, size);
}

__attribute__((noinline)) void keep_calloc(size_t size)
{
    void *p = calloc(size / 16, 16);
    touch(p, size);
    account(FN_KEEP_CALLOC, size);
    keep_or_free(FN_KEEP_CALLOC, p, size);
}

__attribute__((noinline)) void *realloc_seed(size_t size)
{
    void *p = malloc(size);
    touch(p, size);
    account(FN_REALLOC_SEED, size);
    return p;
}

__attribute__((noinline)) void keep_realloc(size_t size)
{
    void *p = realloc_seed(size / 2);
    p = realloc(p, size);
    touch(p, size);
    account(FN_KEEP_REALLOC, size);
    keep_or_free(FN_KEEP_REALLOC, p, size);
}

__attribute__((noinline)) void keep_posix_memalign(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0)
        p = NULL;
    touch(p, size);
    account(FN_KEEP_POSIX_MEMALIGN, size);
    keep_or_free(FN_KEEP_POSIX_MEMALIGN, p, size);
}

__attribute__((noinline)) void keep_aligned_alloc(size_t size)
{
    size = (size + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, size);
    touch(p, size);
    account(FN_KEEP_ALIGNED_ALLOC, size);
    keep_or_free(FN_KEEP_ALIGNED_ALLOC, p, size);
}

/* The request size of the i-th small allocation of a round: 64..256, in steps of 16. */
static size_t small_size(int i)
{
    return 64 + 16 * (size_t)((i * 7) % 13);
}

__attribute__((noinline)) void path_keeps(void)
{
    for (int i = 0; i < SMALL_PER_ROUND; i++) {
        size_t size = small_size(i);
        switch (i % 5) {
        case 0:
            keep_malloc(size);
            break;
        case 1:
            keep_calloc(size);
            break;
        case 2:
            keep_realloc(size);
            break;
        case 3:
            keep_posix_memalign(size);
            break;
        default:
            keep_aligned_alloc(size);
            break;
        }
    }
}

/* ---- relay mode: an allocator function that calls another one inside ---- */

/*
 * glibc's aligned_alloc (an alias of memalign) hands a request for no more alignment
 * than malloc gives anyway (16 bytes) on to malloc, by a jump: so a profiler sees malloc
 * entered while aligned_alloc is still running, and should count the block once, for
 * this function.
 */
__attribute__((noinline)) void relay_aligned_alloc(size_t size)
{
    void *p = aligned_alloc(16, size);
    touch(p, size);
    account(FN_RELAY_ALIGNED_ALLOC, size);
    free(p);
}

/* ---- blocks from before the recording (loop mode) ---- */

__attribute__((noinline)) void keep_before(void)
{
    for (int i = 0; i < BEFORE_BLOCKS; i++) {
        before[i] = malloc(BEFORE_SIZE);
        touch(before[i], BEFORE_SIZE);
    }
}

__attribute__((noinline)) void free_before(void)
{
    for (int i = 0; i < BEFORE_FREED_PER_ROUND && before_freed < BEFORE_BLOCKS; i++)
        free(before[before_freed++]);
}

/* ---- driver ---- */

static unsigned long bytes_of(int first, int last)
{
    unsigned long total = 0;
    for (int f = first; f <= last; f++)
        total += counts[f].bytes;
    return total;
}

static unsigned long kept_bytes_total(void)
{
    unsigned long total = 0;
    for (int f = 0; f < FN_COUNT; f++)
        total += counts[f].kept_bytes;
    return total;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) void one_round(void)
{
    path_frees();
    path_keeps();
}

/*
 * "fn NAME CALLS BYTES KEPT_BYTES KEPT_BLOCKS" per function, then
 * "path path_frees BYTES" and "path path_keeps BYTES" and "kept BYTES".
 */
static void print_counts(FILE *out)
{
    for (int f = 0; f < FN_COUNT; f++)
        fprintf(out, "fn %s %lu %lu %lu %lu\n", fn_names[f], counts[f].calls, counts[f].bytes,
                counts[f].kept_bytes, counts[f].kept_blocks);
    fprintf(out, "path path_frees %lu\n", bytes_of(FN_PATH_FREES, FN_PATH_FREES));
    fprintf(out, "path path_keeps %lu\n", bytes_of(FN_KEEP_MALLOC, FN_KEEP_ALIGNED_ALLOC));
    fprintf(out, "kept %lu\n", kept_bytes_total());
}

static int usage(void)
{
    fprintf(stderr, "usage: allocs run ROUNDS | allocs loop SECONDS LOGFILE |"
                    " allocs relay ROUNDS | allocs signal ROUNDS LOGFILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "run") == 0) {
        long rounds = atol(argv[2]);
        printf("ready %d\n", getpid());
        fflush(stdout);
        for (long r = 0; r < rounds; r++)
            one_round();
        print_counts(stdout);
        printf("done\n");
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "loop") == 0) {
        double seconds = atof(argv[2]);
        const char *log_path = argv[3];
        const struct timespec pause = {0, 1000000L};
        keep_before();
        printf("ready %d\n", getpid());
        fflush(stdout);
        long long end = now_ns() + (long long)(seconds * 1e9);
        while (now_ns() < end && n_rounds < MAX_ROUNDS) {
            free_before();
            one_round();
            struct round_log *l = &rounds_log[n_rounds++];
            l->t_ns = now_ns();
            l->frees_bytes = bytes_of(FN_PATH_FREES, FN_PATH_FREES);
            l->keeps_bytes = bytes_of(FN_KEEP_MALLOC, FN_KEEP_ALIGNED_ALLOC);
            l->kept_bytes = kept_bytes_total();
            nanosleep(&pause, NULL);
        }
        FILE *log = fopen(log_path, "w");
        if (!log) {
            perror(log_path);
            return 1;
        }
        print_counts(log);
        for (unsigned long i = 0; i < n_rounds; i++)
            fprintf(log, "round %lld %lu %lu %lu\n", rounds_log[i].t_ns, rounds_log[i].frees_bytes,
                    rounds_log[i].keeps_bytes, rounds_log[i].kept_bytes);
        fclose(log);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "signal") == 0) {
        long rounds = atol(argv[2]);
        sigset_t go;
        int sig;
        sigemptyset(&go);
        sigaddset(&go, SIGUSR1);
        /* Blocked before "ready", so that a signal sent as soon as it is read waits here. */
        sigprocmask(SIG_BLOCK, &go, NULL);
        printf("ready %d\n", getpid());
        fflush(stdout);
        if (sigwait(&go, &sig) != 0)
            return 1;
        for (long r = 0; r < rounds; r++)
            one_round();
        FILE *log = fopen(argv[3], "w");
        if (!log) {
            perror(argv[3]);
            return 1;
        }
        print_counts(log);
        fprintf(log, "done\n");
        fclose(log);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "relay") == 0) {
        long rounds = atol(argv[2]);
        printf("ready %d\n", getpid());
        fflush(stdout);
        for (long r = 0; r < rounds; r++)
            for (int i = 0; i < SMALL_PER_ROUND; i++)
                relay_aligned_alloc(small_size(i));
        print_counts(stdout);
        printf("done\n");
        return 0;
    }
    return usage();
}
