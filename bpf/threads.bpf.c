// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Thread-creation profiler: every thread or process a target creates is
 * counted by the stacks of the thread that created it. When copying()
 * (--call-graph dwarf), the user stack is copied for user space to unwind
 * with CFI and the counting is done there.
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"


SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 pid = parent->tgid, tid = parent->pid;
	struct sample_key key = {};

	follow_fork(parent, child);
	if (!is_target(pid))
		return 0;
	count(RPROF_CNT_SAMPLES);
	remember_thread(parent, pid, tid);
	note_process(pid);
	key.extra = child->pid == child->tgid ? CREATED_PROCESS : CREATED_THREAD;
	/* The tracepoint runs in the creating thread, so its stacks are current's. */
	if (copying() && !(parent->flags & PF_KTHREAD)) {
		send_current(ctx, parent, key.extra, 1, 0);
		return 0;
	}
	if (!current_stacks(ctx, parent, &key.user_stack, &key.kernel_stack))
		return 0;
	key.pid = pid;
	key.tid = tid;
	aggregate(&key, 1, 0);
	return 0;
}
