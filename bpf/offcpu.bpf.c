// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Off-CPU profiler on the scheduler's switch tracepoint.
 *
 * When a target thread leaves the CPU, the time, its state and its user stack
 * (walked by frame pointers while it is still `current`) go into `starts`.
 * When it comes back, the time away is added in the kernel to the entry of
 * (pid, tid, user stack, kernel stack, state); the kernel stack is read then,
 * from the blocked task, for the blocks that are recorded.
 *
 * Unwinding every switch would cost more than a short block itself (a pipe
 * ping-pong switches ~200k times a second), so blocks shorter than
 * `sample_ns` are recorded with probability duration/sample_ns and weighted
 * by the inverse, as Go's block profile does: totals stay unbiased and every
 * block of at least `sample_ns` is recorded as it was.
 *
 * Threads already blocked when the recording starts are seeded by a task
 * iterator (`seed_blocked`); those still blocked at the stop are closed by
 * another (`close_blocked`), so one long sleep is not lost at either end.
 */
#include "common.bpf.h"

/* Blocks shorter than this are not recorded at all. */
const volatile u64 min_block_ns = 0;
/* Blocks shorter than this are sampled in proportion to their length; 0 records all. */
const volatile u64 sample_ns = 1000000;
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

/*
 * Walks a task's user stack by frame pointers from its saved user registers:
 * the same walk the kernel's perf callchain does, at a fraction of the cost.
 * `own` says the task is `current` (plain user reads work); otherwise the
 * program is sleepable and reads the task's memory.
 */
static __always_inline void user_stack_of(struct task_struct *task, struct stack_trace *st, bool own)
{
	struct pt_regs *regs;

	st->nr = 0;
	if (task->flags & PF_KTHREAD)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return;
	st->ips[0] = PT_REGS_IP_CORE(regs);
	st->nr = 1;
	walk_frame_pointers(st, PT_REGS_FP_CORE(regs), task, own);
}

/* Remembers that a thread went off the CPU; false if it could not be (counted). */
static __always_inline void begin_block(struct task_struct *task, u32 state, bool own, u64 flags)
{
	u32 zero = 0, tid = task->pid;
	struct block_start start = { .pid = task->tgid, .state = state };
	struct stack_trace *ustack = bpf_map_lookup_elem(&scratch, &zero);
	bool dropped = false;

	if (!ustack) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return;
	}
	user_stack_of(task, ustack, own);
	start.user_stack = store_stack(ustack, &dropped);
	if (dropped)
		return;
	start.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&starts, &tid, &start, flags) == -ENOMEM)
		count(RPROF_CNT_START_MAP_FULL);
}

/*
 * Decides whether a block of `ns` is recorded; sets its weight: (blocks, ns).
 * Short blocks are kept with probability ns/sample_ns and weighted by the
 * inverse, so each kept one stands for sample_ns of blocked time.
 */
static __always_inline bool sampled(u64 ns, u64 *blocks, u64 *total_ns)
{
	u64 draw;

	if (ns < min_block_ns)
		return false;
	if (!sample_ns || ns >= sample_ns) {
		*blocks = 1;
		*total_ns = ns;
		return true;
	}
	/* A uniform draw in [0, sample_ns). */
	draw = ((u64)bpf_get_prandom_u32() * sample_ns) >> 32;
	if (draw >= ns)
		return false;
	*blocks = (sample_ns + ns / 2) / ns;
	*total_ns = sample_ns;
	return true;
}

/* Ends a thread's block (if one is open) and records it, kernel stack and all. */
static __always_inline void end_block(struct task_struct *task, u64 now)
{
	u32 one = 1, tid = task->pid;
	struct block_start *start = bpf_map_lookup_elem(&starts, &tid);
	struct sample_key key = {};
	struct stack_trace *kstack;
	bool dropped = false;
	u64 blocks, ns;
	long n;

	if (!start)
		return;
	key.pid = start->pid;
	key.tid = tid;
	key.user_stack = start->user_stack;
	key.extra = start->state;
	ns = now - start->start_ns;
	bpf_map_delete_elem(&starts, &tid);
	if (!sampled(ns, &blocks, &ns))
		return;
	count(RPROF_CNT_SAMPLES);

	kstack = bpf_map_lookup_elem(&scratch, &one);
	if (!kstack) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return;
	}
	/* The task is not running, so this is where it blocked (scheduler frames excluded). */
	n = bpf_get_task_stack(task, kstack->ips, sizeof(kstack->ips), 0);
	if (n < 0) {
		count(RPROF_CNT_BLOCKED_STACK_ERROR);
		n = 0;
	}
	kstack->nr = n / sizeof(u64);
	if (kstack->nr >= RPROF_MAX_STACK_DEPTH)
		count(RPROF_CNT_KERNEL_STACK_TRUNCATED);
	key.kernel_stack = store_stack(kstack, &dropped);
	if (dropped)
		return;
	remember_thread(task, key.pid, tid);
	note_process(key.pid);
	aggregate(&key, blocks, ns);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u32 prev_pid = prev->tgid, next_pid = next->tgid, state;

	/* The common case, two tasks that are not targets, costs two lookups. */
	if (prev_pid && is_target(prev_pid)) {
		state = block_state_of(preempt, prev_state);
		if (state && state_wanted(state))
			begin_block(prev, state, true, BPF_ANY);
	}
	if (next_pid && is_target(next_pid))
		end_block(next, bpf_ktime_get_ns());
	return 0;
}

/* Opens a block for every target thread that is blocked when the recording begins. */
SEC("iter.s/task")
int seed_blocked(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	u32 state;

	if (!task || !task->tgid || !is_target(task->tgid))
		return 0;
	state = block_state_of(false, task->__state);
	/* Running and runnable threads are seen when they next switch out. */
	if (!state || state == BLOCK_RUNNABLE || !state_wanted(state))
		return 0;
	/* A thread that switched out since attaching already has its block open. */
	begin_block(task, state, false, BPF_NOEXIST);
	return 0;
}

/* Closes the blocks of threads still blocked when the recording stops. */
SEC("iter/task")
int close_blocked(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task || !task->tgid || !is_target(task->tgid))
		return 0;
	end_block(task, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
