/*
 * The call chain of unwind_chain.c, main -> outer -> middle -> leaf with leaf parked in a
 * system call, but with stack frames: each function keeps a local array and values across
 * its call, so at each call the stack pointer is well below the frame pointer (built with
 * frame pointers) and below the CFA. An unwinder that confused the two would go astray.
 */
#include <stdio.h>
#include <unistd.h>

/* Keep each function as written: no inlining, cloning or interprocedural knowledge. */
#if defined(__clang__)
#define NOCLONE __attribute__((noinline))
#else
#define NOCLONE __attribute__((noipa))
#endif

NOCLONE void fill(volatile char *p, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (char)(i + n);
}

NOCLONE int leaf(int x)
{
	volatile char buf[64];
	fill(buf, (int)sizeof(buf));
	printf("parked %d\n", x + buf[3]);
	fflush(stdout);
	for (;;)
		pause();
	return x;
}

NOCLONE int middle(int x)
{
	volatile char buf[200];
	fill(buf, (int)sizeof(buf));
	int a = x * 3 + 1, b = x ^ 5;
	int r = leaf(a + buf[7]);
	return r + a * b + buf[9];
}

NOCLONE int outer(int x)
{
	volatile char buf[1000];
	fill(buf, (int)sizeof(buf));
	int a = x + 2, b = x * x;
	int r = middle(a + buf[11]);
	return r * 2 + a * b + buf[13];
}

int main(int argc, char **argv)
{
	(void)argv;
	/* Not a tail call: main stays on the stack. */
	return outer(argc) & 1;
}
