// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Kernel symbols, looked up by the kernel itself. User space fills `batch`
 * with addresses and runs name_addresses through BPF_PROG_TEST_RUN; the %pS
 * format of bpf_snprintf names each one from the kernel's own symbol table
 * ("name+0xoff/0xsize [module]"). That costs microseconds per address, where
 * reading /proc/kallsyms whole costs ~35 ms of system time and its parsing
 * ~15 ms more. find_sched_text does the same for the scheduler's text range.
 *
 * Failures are counted in batch.failed and sched_text_found; user space falls
 * back to /proc/kallsyms for whatever these could not name.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "rprof.h"

char LICENSE[] SEC("license") = "GPL";

struct ksym_batch batch;

__u64 sched_text_start;
__u64 sched_text_end;

SEC("syscall")
int name_addresses(void *ctx)
{
	batch.failed = 0;
	for (__u32 i = 0; i < RPROF_KSYM_BATCH; i++) {
		if (i >= batch.count)
			break;
		if (bpf_snprintf(batch.names[i], RPROF_KSYM_NAME, "%pS", &batch.addrs[i],
				 sizeof(batch.addrs[i])) < 0)
			batch.failed++;
	}
	return 0;
}

SEC("syscall")
int find_sched_text(void *ctx)
{
	const char start[] = "__sched_text_start";
	const char end[] = "__sched_text_end";

	if (bpf_kallsyms_lookup_name(start, sizeof(start), 0, &sched_text_start) < 0)
		sched_text_start = 0;
	if (bpf_kallsyms_lookup_name(end, sizeof(end), 0, &sched_text_end) < 0)
		sched_text_end = 0;
	return 0;
}
