// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The floor of scripts/bench.sh's off-CPU section: a BPF program on the scheduler's switch
 * tracepoint (tp_btf, as rprof-bpf's off-CPU program) that does nothing at all. What it costs a
 * thread that switches is what any program on that hook costs, before doing any work; the
 * section compares rprof-bpf's cost for threads it does not target with it. No headers needed:
 *
 *   clang -O2 -g -target bpf -c floor.bpf.c -o floor.bpf.o
 */
#define SEC(name) __attribute__((section(name), used))

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_switch")
int floor_switch(void *ctx)
{
	return 0;
}
