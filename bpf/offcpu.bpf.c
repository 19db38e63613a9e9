// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Off-CPU profiler on the scheduler's switch tracepoint.
 *
 * When a target thread leaves the CPU, the time and its state go into its
 * task storage (`starts`). When it comes back, the time away is added in the
 * kernel to the entry of (pid, tid, user stack, kernel stack, state); the
 * kernel stack is read then, from the blocked task, for the blocks that are
 * recorded.
 *
 * Blocks shorter than `sample_ns` are recorded with probability
 * duration/sample_ns and weighted by the inverse, as Go's block profile does:
 * totals stay unbiased, every block of at least `sample_ns` is recorded as it
 * was, and most of the microsecond blocks of a busy program cost only the
 * two timestamps.
 *
 * The user stack does not change while a thread is off the CPU, and reading
 * it costs more than all the rest (each user-memory read ~100 ns), so where
 * the kernel has bpf_task_work (6.18+) it is read only for recorded blocks:
 * the switch-in leaves the sample in `deferred`, and a task_work callback
 * walks the stack in the thread's own context just before it returns to user
 * space. Older kernels walk it at every switch-out instead (see
 * deferring()).
 *
 * When copying() as well (--call-graph dwarf), the callback does not walk
 * frame pointers: it copies the top of the user stack with the registers for
 * user space to unwind with the binaries' CFI, as the CPU profiler does.
 *
 * Threads already blocked when the recording starts are seeded by a task
 * iterator (`seed_blocked`); those still blocked at the stop are closed by
 * another (`close_blocked`), so one long sleep is not lost at either end.
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"

/* Blocks shorter than this are not recorded at all. */
const volatile u64 min_block_ns = 0;
/* Blocks shorter than this are sampled in proportion to their length; 0 records all. */
const volatile u64 sample_ns = 1000000;
/* Which states to record (enum block_state_filter bits). */
const volatile u32 state_filter = STATE_FILTER_ALL;
/* Read user stacks at the return to user space, for recorded blocks only, where the kernel can. */
const volatile bool defer_stacks = false;

extern int bpf_task_work_schedule_resume_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map, bpf_task_work_callback_t callback,
					      void *aux__prog) __ksym __weak;

/*
 * Whether user stacks wait for the return to user space: asked for, and the
 * kernel has bpf_task_work (libbpf resolves the weak kfunc to 0 where it does
 * not, and the verifier drops the branch that is never taken).
 */
static __always_inline bool deferring(void)
{
	return defer_stacks && bpf_ksym_exists(bpf_task_work_schedule_resume_impl);
}

/* Kernel task state bits (include/linux/sched.h). */
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define __TASK_STOPPED 0x0004
#define __TASK_TRACED 0x0008
#define EXIT_DEAD 0x0010
#define EXIT_ZOMBIE 0x0020
#define TASK_DEAD 0x0080
#define TASK_NOLOAD 0x0400

/*
 * Each thread's open block, in task-local storage: cheaper than a hash map on
 * both switches, and freed with the task. start_ns == 0 means none is open.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct block_start);
} starts SEC(".maps");

/* Recorded blocks of one thread that wait for its user stack; a thread blocks
 * more than once inside one system call at most a few times. */
#define DEFERRED_SLOTS 4

/*
 * Per thread: the recorded blocks that wait for its return to user space,
 * the task_work that will read its user stack then, and the buffers the read
 * uses. Sleepable code (the callback, the iterators) can be preempted, so it
 * must not use the per-CPU scratch buffers the switch program uses.
 */
struct deferred_blocks {
	struct sample_key keys[DEFERRED_SLOTS];
	u64 blocks[DEFERRED_SLOTS];
	u64 ns[DEFERRED_SLOTS];
	u64 n;
	struct bpf_task_work tw;
	struct stack_trace ustack;
	struct frame_chunk chunk;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct deferred_blocks);
} deferred SEC(".maps");

/* All zeroes, to create entries of `deferred` (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u8[sizeof(struct deferred_blocks)]);
} deferred_zero SEC(".maps");

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
 * program is sleepable and reads the task's memory. chunk is the copy buffer,
 * or NULL for the per-CPU one.
 */
static __always_inline void user_stack_of(struct task_struct *task, struct stack_trace *st,
					  struct frame_chunk *chunk, bool own)
{
	struct pt_regs *regs;

	st->nr = 0;
	if (task->flags & PF_KTHREAD)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return;
	st->ips[0] = PT_REGS_IP(regs);
	st->nr = 1;
	if (chunk)
		walk_frames_with(st, chunk, PT_REGS_FP(regs), task, own);
	else
		walk_frame_pointers(st, PT_REGS_FP(regs), task, own);
}

/* The thread's entry of `deferred`, created if it has none; NULL (counted) if full. */
static __always_inline struct deferred_blocks *deferred_of(u32 tid)
{
	struct deferred_blocks *d = bpf_map_lookup_elem(&deferred, &tid);
	u32 zero = 0;
	void *empty;

	if (d)
		return d;
	empty = bpf_map_lookup_elem(&deferred_zero, &zero);
	if (!empty)
		return NULL;
	bpf_map_update_elem(&deferred, &tid, empty, BPF_NOEXIST);
	d = bpf_map_lookup_elem(&deferred, &tid);
	if (!d)
		count(RPROF_CNT_DEFER_FAILED);
	return d;
}

/* Reads and stores a task's user stack with the thread's own buffers; false if dropped. */
static __always_inline bool own_buffers_user_stack(struct task_struct *task, struct deferred_blocks *d,
						   bool own, u64 *id)
{
	bool dropped = false;

	user_stack_of(task, &d->ustack, &d->chunk, own);
	*id = store_stack(&d->ustack, &dropped);
	return !dropped;
}

/*
 * Remembers that a thread went off the CPU (counted when it cannot be).
 * `reopen` false leaves a block that is already open alone. `own` says the
 * task is `current`: the switch program, which cannot be preempted and may
 * use the per-CPU buffers; otherwise this is the sleepable seeding iterator.
 */
static __always_inline void begin_block(struct task_struct *task, u32 state, bool own, bool reopen)
{
	u32 zero = 0, tid = task->pid;
	struct block_start *start;
	struct stack_trace *ustack;
	struct deferred_blocks *d;
	bool dropped = false;
	u64 user_stack = RPROF_NO_STACK;

	start = bpf_task_storage_get(&starts, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!start) {
		count(RPROF_CNT_START_MAP_FULL);
		return;
	}
	if (!reopen && start->start_ns)
		return;
	if (deferring()) {
		/* Read when the thread returns to user space, if the block is recorded. */
	} else if (own) {
		ustack = bpf_map_lookup_elem(&scratch, &zero);
		if (!ustack) {
			count(RPROF_CNT_SCRATCH_MISSING);
			start->start_ns = 0;
			return;
		}
		user_stack_of(task, ustack, NULL, true);
		user_stack = store_stack(ustack, &dropped);
	} else {
		d = deferred_of(tid);
		dropped = !d || !own_buffers_user_stack(task, d, false, &user_stack);
	}
	if (dropped) {
		start->start_ns = 0;
		return;
	}
	start->pid = task->tgid;
	start->state = state;
	start->user_stack = user_stack;
	start->start_ns = bpf_ktime_get_ns();
}

/* Decides whether a block of `ns` is recorded; sets its weight: (blocks, ns). */
static __always_inline bool sampled(u64 ns, u64 *blocks, u64 *total_ns)
{
	if (ns < min_block_ns)
		return false;
	return length_sampled(ns, sample_ns, blocks, total_ns);
}

/* Adds a thread's deferred blocks, claimed at once so no other path adds them too. */
static __always_inline void flush_deferred(struct deferred_blocks *d, u64 user_stack)
{
	u64 n = __sync_lock_test_and_set(&d->n, 0);

	for (u32 i = 0; i < DEFERRED_SLOTS; i++) {
		if (i >= n)
			break;
		d->keys[i].user_stack = user_stack;
		aggregate(&d->keys[i], d->blocks[i], d->ns[i]);
	}
}

/* Sends a recorded block of task with a copy of its user stack. */
static __always_inline void send_copied(struct task_struct *task, struct sample_key *key,
					u64 blocks, u64 ns, bool own)
{
	struct stack_sample *e;

	e = reserve_stack_sample(task, (struct pt_regs *)bpf_task_pt_regs(task), own);
	if (!e)
		return;
	e->kernel_stack = key->kernel_stack;
	e->extra = key->extra;
	e->count = blocks;
	e->total_ns = ns;
	bpf_ringbuf_submit(e, 0);
}

/* flush_deferred when copying(): each block goes to user space with a copy of the stack. */
static __always_inline void send_deferred(struct deferred_blocks *d, struct task_struct *task,
					  bool own)
{
	u64 n = __sync_lock_test_and_set(&d->n, 0);

	for (u32 i = 0; i < DEFERRED_SLOTS; i++) {
		if (i >= n)
			break;
		send_copied(task, &d->keys[i], d->blocks[i], d->ns[i], own);
	}
}

/* task_work: the thread is about to return to user space, its stack as it blocked. */
static int finish_deferred(struct bpf_map *map, void *key, void *value)
{
	struct deferred_blocks *d = value;
	u64 user_stack;

	if (copying()) {
		send_deferred(d, bpf_get_current_task_btf(), true);
		return 0;
	}
	if (!own_buffers_user_stack(bpf_get_current_task_btf(), d, true, &user_stack)) {
		/* Dropped and counted like any sample whose stack cannot be stored. */
		__sync_lock_test_and_set(&d->n, 0);
		return 0;
	}
	flush_deferred(d, user_stack);
	return 0;
}

/*
 * Leaves a recorded block for the thread's return to user space, when its
 * task_work reads the user stack; without room or task_work, the block is
 * added now without a user stack (counted).
 */
static __always_inline void defer_block(struct task_struct *task, struct sample_key *key, u64 blocks,
					u64 ns)
{
	struct deferred_blocks *d = deferred_of(key->tid);
	u64 n;

	if (!d)
		goto now;
	n = d->n;
	if (n >= DEFERRED_SLOTS) {
		count(RPROF_CNT_DEFER_FAILED);
		goto now;
	}
	d->keys[n] = *key;
	d->blocks[n] = blocks;
	d->ns[n] = ns;
	__sync_fetch_and_add(&d->n, 1);
	/* One task_work serves every block until it runs. */
	if (n > 0)
		return;
	if (!bpf_task_work_schedule_resume_impl(task, &d->tw, &deferred, finish_deferred, NULL))
		return;
	count(RPROF_CNT_DEFER_FAILED);
	flush_deferred(d, RPROF_NO_STACK);
	return;
now:
	aggregate(key, blocks, ns);
}

/*
 * Ends a thread's block (if one is open) and records it, kernel stack and all.
 * `stop` is the stop's sleepable iterator: the thread may never return to user
 * space while the recording lasts, so its user stack is read here and now,
 * for this block and for any left waiting.
 */
static __always_inline void end_block(struct task_struct *task, u64 now, bool stop)
{
	u32 one = 1, tid = task->pid;
	struct block_start *start = bpf_task_storage_get(&starts, task, 0, 0);
	struct deferred_blocks *d = NULL;
	struct sample_key key = {};
	struct stack_trace *kstack;
	u64 blocks, ns, began;
	bool dropped = false;
	long n;

	if (stop && deferring()) {
		d = bpf_map_lookup_elem(&deferred, &tid);
		if (d && d->n && copying()) {
			send_deferred(d, task, false);
		} else if (d && d->n) {
			if (own_buffers_user_stack(task, d, false, &key.user_stack))
				flush_deferred(d, key.user_stack);
			else
				__sync_lock_test_and_set(&d->n, 0);
		}
	}
	if (!start || !start->start_ns)
		return;
	key.pid = start->pid;
	key.tid = tid;
	if (!deferring())
		key.user_stack = start->user_stack;
	key.extra = start->state;
	/* Closed once: the stop's iterator and a switch-in on another CPU can race here. */
	began = __sync_lock_test_and_set(&start->start_ns, 0);
	if (!began)
		return;
	ns = now - began;
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
	if (deferring() && !stop) {
		defer_block(task, &key, blocks, ns);
		return;
	}
	if (deferring() && copying()) {
		send_copied(task, &key, blocks, ns, false);
		return;
	}
	if (deferring()) {
		d = deferred_of(tid);
		if (!d || !own_buffers_user_stack(task, d, false, &key.user_stack))
			return;
	}
	aggregate(&key, blocks, ns);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u32 prev_pid = prev->tgid, next_pid = next->tgid, state;

	/* The common case, two tasks that are not targets, costs two bitmap tests. */
	if (prev_pid && is_target(prev_pid)) {
		state = block_state_of(preempt, prev_state);
		if (state && state_wanted(state))
			begin_block(prev, state, true, true);
	}
	if (next_pid && is_target(next_pid))
		end_block(next, bpf_ktime_get_ns(), false);
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
	begin_block(task, state, false, false);
	return 0;
}

/* Closes the blocks of threads still blocked when the recording stops. */
SEC("iter.s/task")
int close_blocked(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task || !task->tgid || !is_target(task->tgid))
		return 0;
	end_block(task, bpf_ktime_get_ns(), true);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
