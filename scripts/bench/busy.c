/*
 * The workload scripts/bench.sh profiles: two threads that never block, each on its own CPU
 * when it can have one, so a 99 Hz recording of N seconds should see 99 * N * 2 samples.
 * The main thread only waits. Build it with
 *
 *   clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread -o busy busy.c
 *
 * Usage: busy [SECONDS]    (default: run until killed)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FRAME __attribute__((noinline))

static volatile uint64_t sink;
static double seconds; /* 0: forever */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift steps: pure computation, no memory traffic, no calls. */
FRAME uint64_t spin(uint64_t x, int steps)
{
	for (int i = 0; i < steps; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

FRAME uint64_t work(uint64_t x)
{
	/* Not a tail call, so that work keeps its own frame in the stacks. */
	return spin(x, 100000) + 1;
}

static void *busy_thread(void *arg)
{
	uint64_t x = (uintptr_t)arg + 1;
	uint64_t end = seconds > 0 ? now_ns() + (uint64_t)(seconds * 1e9) : UINT64_MAX;

	while (now_ns() < end)
		x = work(x);
	sink = x;
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[2];

	seconds = argc > 1 ? strtod(argv[1], NULL) : 0;
	for (uintptr_t i = 0; i < 2; i++) {
		char name[16];

		if (pthread_create(&threads[i], NULL, busy_thread, (void *)i) != 0) {
			perror("pthread_create");
			return 1;
		}
		snprintf(name, sizeof(name), "busy-%u", (unsigned)i + 1);
		pthread_setname_np(threads[i], name);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
