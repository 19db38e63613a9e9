/*
 * A known call chain for the unwinding tests: main -> outer -> middle -> leaf, where leaf
 * parks in a system call (through libc, which has no frame pointers either). Built with
 * -fomit-frame-pointer, so only call frame information can recover the chain.
 */
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) static int leaf(int x)
{
	printf("parked %d\n", x);
	fflush(stdout);
	for (;;)
		pause();
	return x;
}

__attribute__((noinline)) static int middle(int x)
{
	int r = leaf(x * 3 + 1);
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

__attribute__((noinline)) static int outer(int x)
{
	int r = middle(x + 2);
	__asm__ volatile("" ::: "memory");
	return r * 2;
}

int main(int argc, char **argv)
{
	(void)argv;
	return outer(argc);
}
