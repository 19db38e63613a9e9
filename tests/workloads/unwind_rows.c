/*
 * Functions with varied call frame information, for the unwind table tests: built at -O2
 * with and without frame pointers, their rows are compared with readelf's reading of the
 * same .eh_frame. Each function stands for one shape of prologue and epilogue.
 */
#include <stdio.h>
#include <stdlib.h>

/* Keep each function as written: no inlining, cloning or knowledge of the registers a
 * callee leaves alone (which would let callers skip saving them). */
#if defined(__clang__)
#define NOCLONE __attribute__((noinline))
#else
#define NOCLONE __attribute__((noipa))
#endif

/* Opaque to the optimiser, so the callers keep their frames. */
NOCLONE void sink(volatile char *p, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (char)i;
}

/* A leaf: no frame at all without frame pointers. */
NOCLONE long leaf(long x)
{
	return x * 7 + 3;
}

/* Values live across calls: callee-saved registers pushed and popped, the CFA moving with
 * each push; without frame pointers rbp is one of them. */
NOCLONE long saver(long a, long b, long c, long d)
{
	long w = leaf(a), x = leaf(b), y = leaf(c), z = leaf(d);
	return w * x + y * z + a * b + c * d + leaf(w + x + y + z);
}

/* A run-time sized array: the stack pointer moves by an unknown amount, so even without
 * frame pointers the CFA is rbp-based. */
NOCLONE int vla(int n)
{
	char buf[n + 1];
	sink(buf, n + 1);
	return buf[n / 2] + (int)leaf(n);
}

/* An early return before the frame is built (shrink-wrapping), and an epilogue in the
 * middle of the function (remember/restore state). */
NOCLONE long branchy(long x)
{
	if (x < 0)
		return -1;
	long a = leaf(x), b = leaf(x + 1);
	if (a > 1000)
		return a + b;
	long c = leaf(a + b);
	return a * b + c;
}

/* A large frame: a big stack adjustment. */
NOCLONE int big(int n)
{
	char buf[8192];
	sink(buf, (int)sizeof(buf));
	return buf[n & 8191];
}

int main(int argc, char **argv)
{
	(void)argv;
	long r = saver(argc, argc + 1, argc + 2, argc + 3) + vla(argc + 10) + branchy(argc) +
		 big(argc);
	printf("%ld\n", r);
	return 0;
}
