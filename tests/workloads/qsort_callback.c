/*
 * qsort_callback: a hot callback called from inside libc, for the unwinding tests.
 *
 *   main -> sort_round -> qsort (libc: qsort_r, msort_with_tmp ...) -> compare_records
 *
 * compare_records does extra arithmetic on each key, so that it holds most of the CPU
 * time; its callers are libc's sorting functions, which have no frame pointers, and below
 * them sort_round and main. Built with plain -O2 (GCC keeps no frame pointers), only call
 * frame information recovers the chain.
 *
 * Build: cc -O2 -g
 * Usage: qsort_callback SECONDS
 *   Prints "ready <pid>", then sorts for SECONDS and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RECORDS 4096
#define MIX_ROUNDS 48

struct record {
	unsigned long key;
	unsigned long payload[3];
};

static struct record records[RECORDS];
static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The hot function: a comparison that first runs each key through a few rounds of mixing.
 * The mixing is a bijection per round, so the order is a total order on the keys. */
__attribute__((noinline)) int compare_records(const void *pa, const void *pb)
{
	unsigned long a = ((const struct record *)pa)->key;
	unsigned long b = ((const struct record *)pb)->key;
	for (int i = 0; i < MIX_ROUNDS; i++) {
		a = (a ^ (a >> 29)) * 0xbf58476d1ce4e5b9UL;
		b = (b ^ (b >> 29)) * 0xbf58476d1ce4e5b9UL;
		__asm__ volatile("" : "+r"(a), "+r"(b));
	}
	return (a > b) - (a < b);
}

/* Shuffles the keys (cheaply) and sorts them. The code after qsort keeps the call out of
 * tail position, so that this frame stays on the stack. */
__attribute__((noinline)) void sort_round(unsigned long seed)
{
	for (int i = 0; i < RECORDS; i++) {
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		records[i].key = seed >> 16;
	}
	qsort(records, RECORDS, sizeof records[0], compare_records);
	sink += records[0].key;
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5.0;
	double deadline = now() + seconds;
	unsigned long seed = 1;

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (now() < deadline)
		sort_round(seed++);
	__asm__ volatile("" ::: "memory");
	return 0;
}
