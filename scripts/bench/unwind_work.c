/*
 * The workload of the unwind section of scripts/bench.sh (scripts/bench/unwind.sh): code without
 * frame pointers whose hot spot sits under libc, so that only a DWARF (CFI) unwinder finds the
 * callers of a sample.
 *
 * Two threads loop. Each round, a thread goes DEPTH frames deep into `descend`, each frame with
 * FRAME_BYTES bytes of locals of its own (not inlined, not a tail call: it writes to its locals
 * after the call returns), and at the bottom fills an array of ELEMS ints and sorts it with libc's
 * `qsort` and the comparator `compare_ints`, which qsort calls back. A sample in the comparator
 * unwinds through qsort's frames in libc (no frame pointers there either), `sort_round`, the DEPTH
 * frames of `descend`, `thread_main` and libc's `start_thread`. The stack between the comparator
 * and `thread_main` is about DEPTH x (FRAME_BYTES + 16) bytes plus qsort's own; the workload prints
 * the measured amount once on stderr:
 *
 *   unwind_work: depth 40: 12345 bytes of stack from thread_main to compare_ints
 *
 * It reports its throughput as pingpong.c does: every INTERVAL milliseconds (default 100) the main
 * thread prints
 *
 *   <CLOCK_REALTIME in ns> <rounds of both threads so far> <its CPU time in ns> <BUSY> <IDLE>
 *
 * on stdout and flushes it, so a reader can compute the rate over any window from two lines, and
 * how much CPU time the workload got in it. BUSY and IDLE are the whole machine's busy and idle
 * times so far from the first line of /proc/stat, in clock ticks (USER_HZ): with the workload's own
 * CPU time they say how much other processes ran in the window. With SECONDS above 0 it stops
 * after that long and prints the overall rate on stderr.
 *
 * Build it with (no frame pointers anywhere; the distribution's libc has none either)
 *
 *   gcc -O2 -g -fomit-frame-pointer -pthread -o unwind_work unwind_work.c
 *
 * Usage: unwind_work [SECONDS [DEPTH [INTERVAL_MS]]]
 *
 *   SECONDS      how long to run; 0 or absent: until killed
 *   DEPTH        frames of `descend` above each sort (default 4)
 *   INTERVAL_MS  how often to print a progress line (default 100)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define FRAME __attribute__((noipa)) /* not inlined, cloned or otherwise merged with its callers */
#define THREADS 2
#define FRAME_BYTES 256 /* locals of each `descend` frame */
#define ELEMS 32	/* ints per sort: 128 bytes, which glibc's qsort sorts in a buffer on the stack */
#define MAX_DEPTH 1000

/* Per-thread counters, each on its own cache line. */
static struct {
	_Atomic uint64_t rounds;
	char pad[64 - sizeof(uint64_t)];
} counters[THREADS] __attribute__((aligned(64)));

static int depth;
static _Atomic long stack_bytes;   /* measured by the first thread to finish a round */
static __thread uintptr_t lowest_sp; /* the lowest stack pointer seen in compare_ints */

static uint64_t ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uintptr_t stack_pointer(void)
{
	uintptr_t sp;

#if defined(__x86_64__)
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
	__asm__ volatile("mov %0, sp" : "=r"(sp));
#else
	volatile char here;

	sp = (uintptr_t)&here;
#endif
	return sp;
}

/* The callback qsort calls: where most samples land, below qsort's frames in libc. */
FRAME int compare_ints(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	uintptr_t sp = stack_pointer();

	if (lowest_sp == 0 || sp < lowest_sp)
		lowest_sp = sp;
	return (x > y) - (x < y);
}

/* One sort of ELEMS pseudo-random ints. */
FRAME int sort_round(uint32_t seed)
{
	int values[ELEMS];

	for (int i = 0; i < ELEMS; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		values[i] = (int)(seed & 0xffff);
	}
	qsort(values, ELEMS, sizeof(values[0]), compare_ints);
	return values[0] + values[ELEMS - 1];
}

/* DEPTH frames, each with FRAME_BYTES bytes of its own locals, above sort_round. */
FRAME int descend(int level, uint32_t seed)
{
	volatile char locals[FRAME_BYTES];
	int r;

	locals[0] = (char)seed;
	locals[FRAME_BYTES - 1] = (char)level;
	if (level > 0)
		r = descend(level - 1, seed * 2654435761u + 1);
	else
		r = sort_round(seed | 1);
	/* Written after the call returns: the call cannot be a tail call, the frame stays. */
	locals[1] = (char)r;
	return r + locals[0] + locals[1] + locals[FRAME_BYTES - 1];
}

static void *thread_main(void *arg)
{
	unsigned index = (unsigned)(uintptr_t)arg;
	uintptr_t top = stack_pointer();
	uint32_t seed = 0x9e3779b9u * (index + 1);
	volatile int sink = 0;

	for (;;) {
		sink += descend(depth, seed);
		seed = seed * 1664525u + 1013904223u;
		if (atomic_load_explicit(&stack_bytes, memory_order_relaxed) == 0 && lowest_sp != 0)
			atomic_store(&stack_bytes, (long)(top - lowest_sp));
		atomic_fetch_add_explicit(&counters[index].rounds, 1, memory_order_relaxed);
	}
	return NULL;
}

/* The machine's busy and idle clock ticks so far, from the first line of /proc/stat; 0 0 if unreadable. */
static void machine_ticks(unsigned long long *busy, unsigned long long *idle)
{
	char buf[512];
	unsigned long long user, nice, system, idle_t, iowait, irq, softirq, steal;
	int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	*busy = *idle = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle_t,
		   &iowait, &irq, &softirq, &steal) == 8) {
		*busy = user + nice + system + irq + softirq + steal;
		*idle = idle_t + iowait;
	}
}

static uint64_t total_rounds(void)
{
	uint64_t n = 0;

	for (int i = 0; i < THREADS; i++)
		n += atomic_load_explicit(&counters[i].rounds, memory_order_relaxed);
	return n;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? strtod(argv[1], NULL) : 0;
	long interval_ms = argc > 3 ? strtol(argv[3], NULL, 10) : 100;
	uint64_t started, deadline, next;
	int printed_stack = 0;

	depth = argc > 2 ? atoi(argv[2]) : 4;
	if (argc > 4 || seconds < 0 || depth < 0 || depth > MAX_DEPTH || interval_ms <= 0) {
		fprintf(stderr, "usage: unwind_work [SECONDS [DEPTH [INTERVAL_MS]]]\n");
		return 2;
	}

	started = ns(CLOCK_MONOTONIC);
	deadline = seconds > 0 ? started + (uint64_t)(seconds * 1e9) : UINT64_MAX;
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_t thread;
		char name[16];

		if (pthread_create(&thread, NULL, thread_main, (void *)(uintptr_t)i) != 0) {
			perror("pthread_create");
			return 1;
		}
		snprintf(name, sizeof(name), "unwind-%u", i + 1);
		pthread_setname_np(thread, name);
	}

	/* The reporter: wakes INTERVAL_MS times a second and otherwise sleeps. */
	for (next = started;;) {
		struct timespec ts;
		unsigned long long busy, idle;

		next += (uint64_t)interval_ms * 1000000u;
		if (next > deadline)
			next = deadline;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		machine_ticks(&busy, &idle);
		printf("%llu %llu %llu %llu %llu\n", (unsigned long long)ns(CLOCK_REALTIME),
		       (unsigned long long)total_rounds(),
		       (unsigned long long)ns(CLOCK_PROCESS_CPUTIME_ID), busy, idle);
		fflush(stdout);
		if (!printed_stack && atomic_load(&stack_bytes) != 0) {
			fprintf(stderr, "unwind_work: depth %d: %ld bytes of stack from thread_main to compare_ints\n",
				depth, atomic_load(&stack_bytes));
			printed_stack = 1;
		}
		if (next >= deadline)
			break;
	}

	{
		uint64_t n = total_rounds();
		double elapsed = (double)(ns(CLOCK_MONOTONIC) - started) / 1e9;

		fprintf(stderr, "unwind_work: %llu rounds in %.3f s: %.0f rounds/s\n",
			(unsigned long long)n, elapsed, n / elapsed);
	}
	/* exit, not return: ends the looping threads as well. */
	exit(0);
}
