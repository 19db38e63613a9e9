/*
 * The malloc-heavy workload of scripts/bench.sh's uprobes section: THREADS threads (default 2) that
 * each keep a ring of 256 heap blocks and, step after step, free the oldest block and malloc a new
 * one of a mixed size (mostly small, some of a few KiB, a few of tens of KiB, all below glibc's
 * mmap threshold), writing its first byte. Every malloc and every free counts as one call.
 *
 * RATE throttles each thread to about RATE calls per second with busy work (pure computation)
 * between calls, sized once at start-up: a thread's calls and busy work together take
 * SHARE / RATE seconds of CPU time per call, where SHARE is the part of a CPU each thread gets
 * (the CPUs this process may run on, divided by THREADS, at most 1). The busy work is a fixed
 * amount of computation, not a wait for a deadline, so whatever a profiler adds to each call
 * lowers the throughput instead of being absorbed by the throttle. RATE 0: no busy work at all.
 *
 * It reports its own throughput. Every 100 ms the main thread prints
 *
 *   <CLOCK_REALTIME in ns> <calls so far, all threads>
 *
 * on stdout and flushes it, so a reader can compute the rate over any window from two lines.
 * The sizing goes to stderr first. When SECONDS is given it stops after that long and prints the
 * overall rate on stderr.
 *
 * Build it with
 *
 *   clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread -o allocs allocs.c
 *
 * Usage: allocs RATE [THREADS [SECONDS]]    (SECONDS 0 or absent: run until killed)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAME __attribute__((noinline))
#define RING 256
#define MAX_THREADS 64

/* One counter per thread, each on its own cache line, so counting costs no sharing. */
struct counter {
	_Atomic uint64_t calls;
	char pad[64 - sizeof(uint64_t)];
};

static struct counter counters[MAX_THREADS];
static uint64_t busy_steps; /* busy work per call, in steps of spin() */
static volatile uint64_t sink;

static uint64_t ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The busy work: xorshift steps, pure computation that neither allocates nor touches memory. */
FRAME uint64_t spin(uint64_t x, uint64_t steps)
{
	for (uint64_t i = 0; i < steps; i++)
		x = next_random(&x);
	return x;
}

/* 70% 16-127 bytes, 20% 128-1023, 9% 1-8 KiB, 1% 8-64 KiB: about 1 KiB on average. */
static size_t pick_size(uint64_t r)
{
	unsigned bucket = (unsigned)(r % 100);

	r >>= 8;
	if (bucket < 70)
		return 16 + r % 112;
	if (bucket < 90)
		return 128 + r % 896;
	if (bucket < 99)
		return 1024 + r % (7 * 1024);
	return 8192 + r % (56 * 1024);
}

FRAME void *allocate(size_t size)
{
	char *p = malloc(size);

	if (p == NULL) {
		fprintf(stderr, "allocs: malloc(%zu) failed\n", size);
		exit(1);
	}
	p[0] = (char)size; /* touch it, as a program that uses its memory would */
	return p;
}

FRAME void release(void *p)
{
	free(p);
}

/* One thread's loop: steps of free + malloc with busy work before each call. */
FRAME void alloc_loop(unsigned id, uint64_t steps_per_call)
{
	void *ring[RING] = { 0 };
	uint64_t x = 0x9e3779b97f4a7c15u * (id + 1), calls = 0;

	for (unsigned i = 0;; i = (i + 1) % RING) {
		if (ring[i] != NULL) {
			x = spin(x, steps_per_call);
			release(ring[i]);
			calls++;
		}
		x = spin(x, steps_per_call);
		ring[i] = allocate(pick_size(next_random(&x)));
		calls++;
		atomic_store_explicit(&counters[id].calls, calls, memory_order_relaxed);
	}
}

static void *alloc_thread(void *arg)
{
	alloc_loop((unsigned)(uintptr_t)arg, busy_steps);
	return NULL;
}

/* The CPU time per call of the calls alone: free + malloc steps with no busy work, on this thread. */
static double call_ns(void)
{
	void *ring[RING] = { 0 };
	uint64_t x = 12345, calls = 0, t0, t;

	t0 = ns(CLOCK_THREAD_CPUTIME_ID);
	do {
		for (unsigned i = 0; i < RING * 64; i++) {
			unsigned j = i % RING;

			if (ring[j] != NULL) {
				release(ring[j]);
				calls++;
			}
			ring[j] = allocate(pick_size(next_random(&x)));
			calls++;
		}
		t = ns(CLOCK_THREAD_CPUTIME_ID);
	} while (t - t0 < 50000000u);
	for (unsigned j = 0; j < RING; j++)
		release(ring[j]);
	return (double)(t - t0) / (double)calls;
}

/* The CPU time of one step of spin(). */
static double step_ns(void)
{
	uint64_t steps = 0, t0, t;

	t0 = ns(CLOCK_THREAD_CPUTIME_ID);
	do {
		sink = spin(sink + 1, 1000000);
		steps += 1000000;
		t = ns(CLOCK_THREAD_CPUTIME_ID);
	} while (t - t0 < 50000000u);
	return (double)(t - t0) / (double)steps;
}

int main(int argc, char **argv)
{
	double rate = argc > 1 ? strtod(argv[1], NULL) : -1;
	long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
	double seconds = argc > 3 ? strtod(argv[3], NULL) : 0;
	uint64_t started, deadline, next;
	cpu_set_t cpus;
	double share;
	int ncpus;

	if (argc < 2 || argc > 4 || rate < 0 || threads < 1 || threads > MAX_THREADS || seconds < 0) {
		fprintf(stderr, "usage: allocs RATE [THREADS [SECONDS]]\n");
		return 2;
	}
	if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) {
		fprintf(stderr, "allocs: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	ncpus = CPU_COUNT(&cpus);
	share = (double)ncpus / (double)threads;
	if (share > 1)
		share = 1;

	if (rate > 0) {
		double per_call = share / rate * 1e9, calls = call_ns(), step = step_ns();

		busy_steps = per_call > calls ? (uint64_t)((per_call - calls) / step) : 0;
		fprintf(stderr,
			"allocs: %ld threads on %d CPUs, %.0f calls/s per thread: %.0f ns of CPU per call, "
			"of which %.0f ns the call itself and %llu steps of busy work (%.2f ns each)\n",
			threads, ncpus, rate, per_call, calls, (unsigned long long)busy_steps, step);
	} else {
		fprintf(stderr, "allocs: %ld threads on %d CPUs, as many calls as they can make\n", threads,
			ncpus);
	}

	started = ns(CLOCK_MONOTONIC);
	deadline = seconds > 0 ? started + (uint64_t)(seconds * 1e9) : UINT64_MAX;
	for (long i = 0; i < threads; i++) {
		pthread_t thread;
		char name[16];
		int err = pthread_create(&thread, NULL, alloc_thread, (void *)(uintptr_t)i);

		if (err != 0) {
			fprintf(stderr, "allocs: pthread_create: %s\n", strerror(err));
			return 1;
		}
		snprintf(name, sizeof(name), "alloc-%ld", i + 1);
		pthread_setname_np(thread, name);
	}

	/* The reporter: wakes 10 times a second; only its first line allocates (stdout's buffer). */
	for (next = started;;) {
		struct timespec ts;
		uint64_t total = 0;

		next += 100000000u;
		if (next > deadline)
			next = deadline;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		for (long i = 0; i < threads; i++)
			total += atomic_load_explicit(&counters[i].calls, memory_order_relaxed);
		printf("%llu %llu\n", (unsigned long long)ns(CLOCK_REALTIME), (unsigned long long)total);
		fflush(stdout);
		if (next >= deadline) {
			double elapsed = (double)(ns(CLOCK_MONOTONIC) - started) / 1e9;

			fprintf(stderr, "allocs: %llu calls in %.3f s: %.0f calls/s\n",
				(unsigned long long)total, elapsed, total / elapsed);
			/* exit, not return: ends the looping threads as well. */
			exit(0);
		}
	}
}
