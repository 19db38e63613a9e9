/*
 * The off-CPU workload scripts/bench.sh profiles: two threads, "ping" and "pong", pass one byte back
 * and forth over two pipes. Every round trip blocks each thread once, so the pair makes about two
 * context switches per round trip, all of them in pipe reads.
 *
 * With WORK_NS above 0, each thread works that long after it receives the byte and before it sends
 * it back: it spins on clock_gettime(CLOCK_MONOTONIC) in busy_work_between_messages, a stand-in for
 * a program that does something with each message. That sets the pace: pinned to one CPU, a round
 * trip takes 2 x (WORK_NS + the cost of one pass through write, read and a context switch), so
 * WORK_NS can be chosen for a given number of context switches per second. With WORK_NS 0 (the
 * default) the threads pass the byte as fast as they can and the function is never called.
 *
 * It reports its own throughput. Every INTERVAL milliseconds (default 100) the main thread prints
 *
 *   <CLOCK_REALTIME in ns> <round trips so far>
 *
 * on stdout and flushes it, so a reader can compute the rate over any window from two lines.
 * When SECONDS is given it stops after that long and prints the overall rate on stderr:
 *
 *   pingpong: 612345 round trips in 5.000 s: 122469 round trips/s (244938 context switches/s)
 *
 * Build it with
 *
 *   clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -pthread -o pingpong pingpong.c
 *
 * Usage: pingpong [SECONDS [INTERVAL_MS [WORK_NS]]]
 *
 *   SECONDS      how long to run; 0 or absent: until killed
 *   INTERVAL_MS  how often to print a progress line (default 100)
 *   WORK_NS      busy work per thread per message received (default 0: none)
 *
 * The spin follows the wall clock: when another task takes the CPU from a thread while it spins,
 * the spin does not last longer, as real work would; only time taken outside the spin slows the
 * pair down (the off-CPU section of scripts/bench.sh says how much of a pair's time that covers).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FRAME __attribute__((noinline))

static int ping_to_pong[2]; /* ping writes [1], pong reads [0] */
static int pong_to_ping[2]; /* pong writes [1], ping reads [0] */
static _Atomic uint64_t round_trips;
static uint64_t work_ns; /* WORK_NS: set before the threads start, read-only after */

static void fail(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One byte out; a full pipe cannot happen, since at most one byte is ever in flight. */
FRAME void send_byte(int fd)
{
	char byte = 'x';

	while (write(fd, &byte, 1) != 1)
		if (errno != EINTR)
			fail("write");
}

/* One byte in: this is where both threads block, and so where their off-CPU time goes. */
FRAME void receive_byte(int fd)
{
	char byte;
	ssize_t n;

	while ((n = read(fd, &byte, 1)) != 1) {
		if (n == 0) {
			fprintf(stderr, "pingpong: unexpected end of pipe\n");
			exit(1);
		}
		if (errno != EINTR)
			fail("read");
	}
}

/* WORK_NS of CPU work on a received message: spins until the monotonic clock has moved that far. */
FRAME void busy_work_between_messages(uint64_t work)
{
	uint64_t until = ns(CLOCK_MONOTONIC) + work;

	while (ns(CLOCK_MONOTONIC) < until)
		;
}

/* Ping serves first; after that each thread works on the byte it got, then passes it on. */
FRAME void ping_loop(void)
{
	uint64_t n = 0;

	send_byte(ping_to_pong[1]);
	for (;;) {
		receive_byte(pong_to_ping[0]);
		atomic_store_explicit(&round_trips, ++n, memory_order_relaxed);
		if (work_ns)
			busy_work_between_messages(work_ns);
		send_byte(ping_to_pong[1]);
	}
}

FRAME void pong_loop(void)
{
	for (;;) {
		receive_byte(ping_to_pong[0]);
		if (work_ns)
			busy_work_between_messages(work_ns);
		send_byte(pong_to_ping[1]);
	}
}

static void *ping_thread(void *arg)
{
	(void)arg;
	ping_loop();
	return NULL;
}

static void *pong_thread(void *arg)
{
	(void)arg;
	pong_loop();
	return NULL;
}

static void start(void *(*fn)(void *), const char *name)
{
	pthread_t thread;
	int err = pthread_create(&thread, NULL, fn, NULL);

	if (err != 0) {
		errno = err;
		fail("pthread_create");
	}
	pthread_setname_np(thread, name);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? strtod(argv[1], NULL) : 0;
	long interval_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
	long long work = argc > 3 ? strtoll(argv[3], NULL, 10) : 0;
	uint64_t started, deadline, next;

	/* WORK_NS up to 1 s: more is surely a mistake. */
	if (argc > 4 || seconds < 0 || interval_ms <= 0 || work < 0 || work > 1000000000) {
		fprintf(stderr, "usage: pingpong [SECONDS [INTERVAL_MS [WORK_NS]]]\n");
		return 2;
	}
	work_ns = (uint64_t)work;
	if (pipe(ping_to_pong) != 0 || pipe(pong_to_ping) != 0)
		fail("pipe");

	started = ns(CLOCK_MONOTONIC);
	deadline = seconds > 0 ? started + (uint64_t)(seconds * 1e9) : UINT64_MAX;
	start(pong_thread, "pong");
	start(ping_thread, "ping");

	/* The reporter: wakes INTERVAL_MS times a second, a negligible share of the pair's switches. */
	for (next = started;;) {
		struct timespec ts;

		next += (uint64_t)interval_ms * 1000000u;
		if (next > deadline)
			next = deadline;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		printf("%llu %llu\n", (unsigned long long)ns(CLOCK_REALTIME),
		       (unsigned long long)atomic_load_explicit(&round_trips, memory_order_relaxed));
		fflush(stdout);
		if (next >= deadline)
			break;
	}

	{
		uint64_t n = atomic_load_explicit(&round_trips, memory_order_relaxed);
		double elapsed = (double)(ns(CLOCK_MONOTONIC) - started) / 1e9;

		fprintf(stderr,
			"pingpong: %llu round trips in %.3f s: %.0f round trips/s (%.0f context switches/s)\n",
			(unsigned long long)n, elapsed, n / elapsed, 2 * n / elapsed);
	}
	/* exit, not return: ends the two looping threads as well. */
	exit(0);
}
