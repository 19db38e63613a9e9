// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CPU profiler: a perf_event program on the software CPU clock, one event per
 * CPU.
 *
 * When copying() (--call-graph dwarf, the default) each sample of a
 * target thread goes to user space with its user registers and the top of
 * its user stack, which user space unwinds with the binaries' CFI; the kernel
 * stack is stored here as usual. Without it, samples are aggregated in the
 * kernel by (pid, tid, user stack, kernel stack), the user stack walked by
 * frame pointers; the value is (samples, sum of periods).
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"


SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 pid = pid_tgid >> 32;
	u32 tid = (u32)pid_tgid;
	struct task_struct *task;
	struct sample_key key = {};

	/* The idle task is not a process; its time is not anyone's CPU. */
	if (pid == 0 || !is_target(pid))
		return 0;
	count(RPROF_CNT_SAMPLES);

	task = bpf_get_current_task_btf();
	/* First, so user space snapshots the process before its first copied stack arrives. */
	remember_thread(task, pid, tid);
	note_process(pid);
	/* Kernel threads have no user stack to copy: they are aggregated here. */
	if (copying() && !(task->flags & PF_KTHREAD)) {
		send_current(ctx, task, 0, 1, ctx->sample_period);
		return 0;
	}
	if (!current_stacks(ctx, task, &key.user_stack, &key.kernel_stack))
		return 0;
	key.pid = pid;
	key.tid = tid;
	aggregate(&key, 1, ctx->sample_period);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
