// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CPU profiler: a perf_event program on the software CPU clock, one event per
 * CPU. Each sample of a target thread is aggregated in the kernel by
 * (pid, tid, user stack, kernel stack); the value is (samples, sum of periods).
 */
#include "common.bpf.h"

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
	if (!current_stacks(ctx, task, &key.user_stack, &key.kernel_stack))
		return 0;
	key.pid = pid;
	key.tid = tid;
	remember_thread(task, pid, tid);
	note_process(pid);
	aggregate(&key, 1, ctx->sample_period);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
