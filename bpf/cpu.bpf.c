// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CPU profiler: a perf_event program on the software CPU clock, one event per
 * CPU.
 *
 * With `copy_stacks` (--call-graph dwarf, the default) each sample of a
 * target thread goes to user space with its user registers and the top of
 * its user stack, which user space unwinds with the binaries' CFI; the kernel
 * stack is stored here as usual. Without it, samples are aggregated in the
 * kernel by (pid, tid, user stack, kernel stack), the user stack walked by
 * frame pointers; the value is (samples, sum of periods).
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"

const volatile bool copy_stacks = false;

/* Sends one sample with a copy of its user stack; a lost one is counted. */
static __always_inline void send_copied(struct bpf_perf_event_data *ctx, struct task_struct *task)
{
	u32 one = 1;
	struct stack_trace *kstack = bpf_map_lookup_elem(&scratch, &one);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct stack_sample *e;
	bool dropped = false;
	u64 kernel_id;

	if (!kstack) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return;
	}
	read_stack(ctx, kstack, 0, RPROF_CNT_KERNEL_STACK_ERROR, RPROF_CNT_KERNEL_STACK_TRUNCATED);
	kernel_id = store_stack(kstack, &dropped);
	if (dropped)
		return;
	/* The registers of user mode, where the thread was or will return to. */
	e = reserve_stack_sample(task, regs, true);
	if (!e)
		return;
	e->kernel_stack = kernel_id;
	e->count = 1;
	e->total_ns = ctx->sample_period;
	bpf_ringbuf_submit(e, 0);
}

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
	if (copy_stacks && !(task->flags & PF_KTHREAD)) {
		send_copied(ctx, task);
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
