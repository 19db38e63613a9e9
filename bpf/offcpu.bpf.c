// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Off-CPU profiler. When a target thread switches out, its stacks, state and
 * the time are remembered in `starts`; when it switches back in, the time it
 * was away is added, in the kernel, to the (pid, tid, stacks, state) entry.
 *
 * Threads already blocked when the recording starts are seeded by a task
 * iterator (`seed_blocked`), which reads their stacks from their saved
 * registers; threads still blocked at the end are left in `starts`, where user
 * space finds them and counts the time up to the stop.
 */
#include "common.bpf.h"

/* Blocks shorter than this are not recorded. */
const volatile u64 min_block_ns = 0;
/* Which states to record (enum block_state_filter bits). */
const volatile u32 state_filter = STATE_FILTER_ALL;

/* Kernel task state bits (include/linux/sched.h). */
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define __TASK_STOPPED 0x0004
#define __TASK_TRACED 0x0008
#define EXIT_DEAD 0x0010
#define EXIT_ZOMBIE 0x0020
#define TASK_DEAD 0x0080
#define TASK_NOLOAD 0x0400

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct block_start);
} starts SEC(".maps");

/* The state letter of a task going off the CPU, or 0 if it is exiting. */
static __always_inline u32 block_state_of(bool preempt, unsigned int state)
{
	if (state & (EXIT_DEAD | EXIT_ZOMBIE | TASK_DEAD))
		return 0;
	if (preempt || state == 0)
		return BLOCK_RUNNABLE;
	if (state & TASK_UNINTERRUPTIBLE)
		return (state & TASK_NOLOAD) ? BLOCK_IDLE : BLOCK_DISK;
	if (state & TASK_INTERRUPTIBLE)
		return BLOCK_SLEEPING;
	if (state & (__TASK_STOPPED | __TASK_TRACED))
		return BLOCK_STOPPED;
	return BLOCK_OTHER;
}

static __always_inline bool state_wanted(u32 state)
{
	u32 bit;

	switch (state) {
	case BLOCK_RUNNABLE:
		bit = STATE_FILTER_RUNNABLE;
		break;
	case BLOCK_SLEEPING:
		bit = STATE_FILTER_SLEEPING;
		break;
	case BLOCK_DISK:
		bit = STATE_FILTER_DISK;
		break;
	default:
		bit = STATE_FILTER_OTHER;
	}
	return state_filter & bit;
}

static __always_inline void switch_out(void *ctx, struct task_struct *prev, bool preempt,
				       unsigned int prev_state, u64 now)
{
	u32 pid = prev->tgid, tid = prev->pid;
	u32 state = block_state_of(preempt, prev_state);
	struct block_start start = { .start_ns = now, .pid = pid, .state = state };

	if (!state || !state_wanted(state))
		return;
	count(RPROF_CNT_SAMPLES);
	/* prev is still `current` here, so the stack helpers read its stacks. */
	if (!current_stacks(ctx, prev, &start.user_stack, &start.kernel_stack))
		return;
	if (bpf_map_update_elem(&starts, &tid, &start, BPF_ANY)) {
		count(RPROF_CNT_START_MAP_FULL);
		return;
	}
	remember_thread(prev, pid, tid);
	note_process(pid);
}

static __always_inline void switch_in(struct task_struct *next, u64 now)
{
	u32 tid = next->pid;
	struct block_start *start = bpf_map_lookup_elem(&starts, &tid);
	struct sample_key key = {};
	u64 delta;

	if (!start)
		return;
	delta = now - start->start_ns;
	key.pid = start->pid;
	key.tid = tid;
	key.user_stack = start->user_stack;
	key.kernel_stack = start->kernel_stack;
	key.extra = start->state;
	bpf_map_delete_elem(&starts, &tid);
	if (delta >= min_block_ns)
		aggregate(&key, 1, delta);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u32 prev_pid = prev->tgid, next_pid = next->tgid;
	u64 now;

	/* The common case, two tasks that are not targets, costs two lookups. */
	bool prev_target = prev_pid && is_target(prev_pid);
	bool next_target = next_pid && is_target(next_pid);

	if (!prev_target && !next_target)
		return 0;
	now = bpf_ktime_get_ns();
	if (prev_target)
		switch_out(ctx, prev, preempt, prev_state, now);
	if (next_target)
		switch_in(next, now);
	return 0;
}

/* A frame record as both x86-64 and arm64 lay it out: saved frame pointer, then return address. */
struct frame_record {
	u64 next_fp;
	u64 ret;
};

/* Walks a blocked task's user stack by frame pointers, from its saved registers. */
static __always_inline void task_user_stack(struct task_struct *task, struct stack_trace *st)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct frame_record frame;
	u64 fp;

	st->nr = 0;
	if (!regs)
		return;
	st->ips[0] = PT_REGS_IP_CORE(regs);
	fp = PT_REGS_FP_CORE(regs);
	st->nr = 1;
	for (u32 i = 1; i < RPROF_MAX_STACK_DEPTH; i++) {
		if (!fp || bpf_copy_from_user_task(&frame, sizeof(frame), (void *)fp, task, 0))
			break;
		if (!frame.ret)
			break;
		st->ips[i] = frame.ret;
		st->nr = i + 1;
		/* Frames grow toward higher addresses; anything else is not a frame chain. */
		if (frame.next_fp <= fp)
			break;
		fp = frame.next_fp;
	}
	if (st->nr >= RPROF_MAX_STACK_DEPTH)
		count(RPROF_CNT_USER_STACK_TRUNCATED);
}

/* Seeds `starts` for target threads that are blocked when the recording begins. */
SEC("iter.s/task")
int seed_blocked(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct stack_trace *ustack, *kstack;
	struct block_start start = {};
	u32 zero = 0, one = 1, pid, tid, state;
	bool dropped = false;
	long n;

	if (!task)
		return 0;
	pid = task->tgid;
	tid = task->pid;
	if (!pid || !is_target(pid))
		return 0;
	state = block_state_of(false, task->__state);
	/* Running and runnable threads are seen when they next switch out. */
	if (!state || state == BLOCK_RUNNABLE || !state_wanted(state))
		return 0;
	ustack = bpf_map_lookup_elem(&scratch, &zero);
	kstack = bpf_map_lookup_elem(&scratch, &one);
	if (!ustack || !kstack) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return 0;
	}
	n = bpf_get_task_stack(task, kstack->ips, sizeof(kstack->ips), 0);
	if (n < 0) {
		count(RPROF_CNT_SEED_STACK_ERROR);
		n = 0;
	}
	kstack->nr = n / sizeof(u64);
	if (task->flags & PF_KTHREAD)
		ustack->nr = 0;
	else
		task_user_stack(task, ustack);

	start.start_ns = bpf_ktime_get_ns();
	start.pid = pid;
	start.state = state;
	start.user_stack = store_stack(ustack, &dropped);
	start.kernel_stack = store_stack(kstack, &dropped);
	if (dropped)
		return 0;
	count(RPROF_CNT_SAMPLES);
	/* A thread that switched out since sampling was attached has a real entry. */
	if (bpf_map_update_elem(&starts, &tid, &start, BPF_NOEXIST) == -ENOMEM)
		count(RPROF_CNT_START_MAP_FULL);
	remember_thread(task, pid, tid);
	note_process(pid);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
