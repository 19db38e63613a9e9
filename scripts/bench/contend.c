/*
 * The lock-contention workload of scripts/bench.sh's uprobes section: THREADS threads (default 4)
 * take turns on one pthread mutex (a default, non-adaptive one, so a thread that finds it taken
 * sleeps in futex(FUTEX_WAIT) at once). Each holds it for a short critical section of CS steps of
 * busy work (default 500, well under a microsecond), then works OUT steps (default 500) on its own
 * before taking it again. Thread i is pinned to the i-th of the CPUs the process may use, round
 * robin, so that how the threads share the CPUs does not change from one second to the next.
 *
 * It reports its own throughput. Every 100 ms the main thread prints
 *
 *   <CLOCK_REALTIME in ns> <lock acquisitions so far, all threads>
 *
 * on stdout and flushes it, so a reader can compute the rate over any window from two lines.
 * When SECONDS is given it stops after that long and prints the overall rate on stderr.
 *
 * Build it with
 *
 *   clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread -o contend contend.c
 *
 * Usage: contend [THREADS [CS [OUT [SECONDS]]]]    (SECONDS 0 or absent: run until killed)
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
#define MAX_THREADS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t shared; /* what the lock protects */
static uint64_t cs_steps = 500, out_steps = 500;

/* One counter per thread, each on its own cache line, so counting adds no contention of its own. */
struct counter {
	_Atomic uint64_t acquisitions;
	char pad[64 - sizeof(uint64_t)];
};

static struct counter counters[MAX_THREADS];

static uint64_t ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Busy work: xorshift steps, pure computation. */
FRAME uint64_t spin(uint64_t x, uint64_t steps)
{
	for (uint64_t i = 0; i < steps; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

/* Where the waits happen: pthread_mutex_lock on a taken lock ends in futex(FUTEX_WAIT). */
FRAME void take_lock(void)
{
	int err = pthread_mutex_lock(&lock);

	if (err != 0) {
		fprintf(stderr, "contend: pthread_mutex_lock: %s\n", strerror(err));
		exit(1);
	}
}

FRAME uint64_t critical_section(uint64_t x)
{
	x = spin(x ^ shared, cs_steps);
	shared = x;
	return x;
}

FRAME void contend_loop(unsigned id)
{
	uint64_t x = 0x9e3779b97f4a7c15u * (id + 1), n = 0;

	for (;;) {
		take_lock();
		x = critical_section(x);
		pthread_mutex_unlock(&lock);
		atomic_store_explicit(&counters[id].acquisitions, ++n, memory_order_relaxed);
		x = spin(x, out_steps);
	}
}

static void *contend_thread(void *arg)
{
	contend_loop((unsigned)(uintptr_t)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 1 ? strtol(argv[1], NULL, 10) : 4;
	double seconds = argc > 4 ? strtod(argv[4], NULL) : 0;
	uint64_t started, deadline, next;
	cpu_set_t allowed;
	int cpus[CPU_SETSIZE], ncpus = 0;

	if (argc > 2)
		cs_steps = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		out_steps = strtoull(argv[3], NULL, 10);
	if (argc > 5 || threads < 1 || threads > MAX_THREADS || seconds < 0) {
		fprintf(stderr, "usage: contend [THREADS [CS [OUT [SECONDS]]]]\n");
		return 2;
	}

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		fprintf(stderr, "contend: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[ncpus++] = c;

	started = ns(CLOCK_MONOTONIC);
	deadline = seconds > 0 ? started + (uint64_t)(seconds * 1e9) : UINT64_MAX;
	for (long i = 0; i < threads; i++) {
		pthread_t thread;
		pthread_attr_t attr;
		cpu_set_t one;
		char name[16];
		int err;

		CPU_ZERO(&one);
		CPU_SET(cpus[i % ncpus], &one);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		err = pthread_create(&thread, &attr, contend_thread, (void *)(uintptr_t)i);
		pthread_attr_destroy(&attr);
		if (err != 0) {
			fprintf(stderr, "contend: pthread_create: %s\n", strerror(err));
			return 1;
		}
		snprintf(name, sizeof(name), "contend-%ld", i + 1);
		pthread_setname_np(thread, name);
	}

	/* The reporter: wakes 10 times a second. */
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
			total += atomic_load_explicit(&counters[i].acquisitions, memory_order_relaxed);
		printf("%llu %llu\n", (unsigned long long)ns(CLOCK_REALTIME), (unsigned long long)total);
		fflush(stdout);
		if (next >= deadline) {
			double elapsed = (double)(ns(CLOCK_MONOTONIC) - started) / 1e9;

			fprintf(stderr, "contend: %llu lock acquisitions in %.3f s: %.0f/s\n",
				(unsigned long long)total, elapsed, total / elapsed);
			/* exit, not return: ends the looping threads as well. */
			exit(0);
		}
	}
}
