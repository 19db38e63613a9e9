/*
 * The demo workload that scripts/demo.sh profiles. It has a known hot call chain:
 *
 *   main -> parse_requests -> hash_key      70% of its CPU time
 *   main -> render_page    -> format_row    30%
 *
 * main runs the two paths in chunks of random length (a fraction of a millisecond each) and
 * always picks the one that is behind its share of the thread's CPU time so far. So the split
 * holds on a busy machine too, and no sampling frequency can fall into step with the chunks
 * (a fixed 7 ms + 3 ms cycle would, at 99 Hz). Almost all the time is spent in the two leaves,
 * which call nothing, not even libc. Build it with
 *
 *   clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o demo demo.c
 *
 * clang, because GCC 12 ignores -mno-omit-leaf-frame-pointer: its hash_key would set up no
 * frame, and a frame-pointer unwind from inside it would skip its caller, parse_requests. With
 * clang every function has a frame and the chains are whole.
 *
 * Usage: demo [SECONDS]    (default 5)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Never inlined, never cloned (no hash_key.constprop.0), so the profile shows these names. */
#ifdef __clang__
#define FRAME __attribute__((noinline))
#else
#define FRAME __attribute__((noipa))
#endif

#define KEY_LEN 64
#define ROW_LEN 256
/* CPU share of parse_requests, in percent; render_page gets the rest. */
#define PARSE_SHARE 70

static volatile uint64_t sink;

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* FNV-1a, several rounds over the key: a chain of dependent multiplies (about 1 us). */
FRAME uint64_t hash_key(const unsigned char *key, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (int round = 0; round < 16; round++)
		for (size_t i = 0; i < len; i++) {
			h ^= key[i];
			h *= 1099511628211ull;
		}
	return h;
}

/* Hashes n request keys. */
FRAME uint64_t parse_requests(uint64_t n)
{
	static unsigned char key[KEY_LEN] = { 'k' };
	uint64_t acc = 0;

	for (uint64_t i = 0; i < n; i++) {
		key[i % KEY_LEN] = (unsigned char)('a' + i % 26);
		acc += hash_key(key, sizeof(key));
	}
	sink = acc;
	return n;
}

/* Writes `count` numbers derived from `seed` as decimal, comma-separated, into out. */
FRAME size_t format_row(char *out, uint64_t seed, int count)
{
	size_t len = 0;

	for (int k = 0; k < count; k++) {
		char digits[24];
		int nd = 0;
		uint64_t v = seed * 2654435761u + (uint64_t)k * 40503u;

		do {
			digits[nd++] = (char)('0' + v % 10);
			v /= 10;
		} while (v && nd < (int)sizeof(digits));
		while (nd > 0 && len < ROW_LEN - 2)
			out[len++] = digits[--nd];
		if (len < ROW_LEN - 2)
			out[len++] = ',';
	}
	out[len] = '\0';
	return len;
}

/* Renders n rows. */
FRAME uint64_t render_page(uint64_t n)
{
	char row[ROW_LEN];
	uint64_t bytes = 0;

	for (uint64_t i = 0; i < n; i++)
		bytes += format_row(row, i, 12);
	sink = bytes + (unsigned char)row[0];
	return n;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? strtod(argv[1], NULL) : 5.0;
	uint64_t end, requests = 0, rows = 0;
	uint64_t parse_ns = 0, render_ns = 0; /* CPU time spent in each path so far */
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	if (!(seconds > 0)) {
		fprintf(stderr, "usage: %s [SECONDS]\n", argv[0]);
		return 2;
	}
	end = clock_ns(CLOCK_MONOTONIC) + (uint64_t)(seconds * 1e9);
	while (clock_ns(CLOCK_MONOTONIC) < end) {
		uint64_t chunk, start;

		/* xorshift64: chunk lengths of 100 to 499 calls. */
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		chunk = 100 + rng % 400;

		start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (parse_ns * (100 - PARSE_SHARE) <= render_ns * PARSE_SHARE) {
			requests += parse_requests(chunk);
			parse_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
		} else {
			rows += render_page(chunk);
			render_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
		}
	}
	printf("demo: hashed %llu request keys, rendered %llu rows in %.1f s\n",
	       (unsigned long long)requests, (unsigned long long)rows, seconds);
	return 0;
}
