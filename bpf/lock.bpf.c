// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Lock contention from the futex system call, for pthread mutexes and
 * rwlocks and any runtime's own futex locks alike.
 *
 * A lock that is free is taken in user space with one atomic instruction and
 * never reaches the kernel, so it costs nothing here. A contended one waits in
 * futex(FUTEX_WAIT...) or futex(FUTEX_LOCK_PI...): its entry is timed on the
 * raw syscall tracepoints, and its exit, in the waiter's own context, records
 * the wait. Waits shorter than `sample_ns` are sampled by length as off-CPU
 * blocks are (Go's rule), so totals stay unbiased. Task iterators open the
 * waits already in progress at the start (`seed_waits`) and close those still
 * in progress at the stop (`close_waits`), so a thread stuck on a lock for the
 * whole window shows.
 *
 * A recorded wait goes to user space with the waiter's registers and the top
 * of its stack: the call into the lock sits below libc's frames, which have no
 * frame pointers, so user space unwinds it with the binaries' CFI. Which lock
 * it was (pthread mutex, rwlock, a raw futex; condition variables are not
 * locks) is decided there too, from the functions on the stack.
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"

/* Waits shorter than this are sampled in proportion to their length; 0 records all. */
const volatile u64 sample_ns = 1000000;

#if defined(__TARGET_ARCH_x86)
#define NR_FUTEX 202
#elif defined(__TARGET_ARCH_arm64)
#define NR_FUTEX 98
#endif

/* Futex operations that wait (include/uapi/linux/futex.h). */
#define FUTEX_CMD_MASK 0x7f
#define FUTEX_WAIT 0
#define FUTEX_LOCK_PI 6
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAIT_REQUEUE_PI 11
#define FUTEX_LOCK_PI2 13

/* A futex wait in progress, per thread; start_ns == 0 means none. */
struct futex_wait {
	u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct futex_wait);
} waits SEC(".maps");

/* The system call a task is in, from its saved user registers. */
static __always_inline long syscall_of(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#else
	return regs->syscallno;
#endif
}

static __always_inline bool is_wait_op(u32 op)
{
	switch (op & FUTEX_CMD_MASK) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2:
	case FUTEX_WAIT_REQUEUE_PI:
		return true;
	default:
		return false;
	}
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct futex_wait *w;
	u32 op;

	if (id != NR_FUTEX || !is_target(bpf_get_current_pid_tgid() >> 32))
		return 0;
	op = PT_REGS_PARM2(regs);
	task = bpf_get_current_task_btf();
	if (!is_wait_op(op)) {
		/* Not a wait (a wake): its exit must not close a wait left open. */
		w = bpf_task_storage_get(&waits, task, 0, 0);
		if (w)
			w->start_ns = 0;
		return 0;
	}
	w = bpf_task_storage_get(&waits, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w) {
		count(RPROF_CNT_START_MAP_FULL);
		return 0;
	}
	w->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * Ends task's wait, if one is open, and sends it to user space when it is
 * recorded. regs are the task's user registers; `own` says task is current.
 */
static __always_inline void end_wait(struct task_struct *task, struct pt_regs *regs, bool own)
{
	u32 pid = task->tgid, tid = task->pid;
	struct futex_wait *w = bpf_task_storage_get(&waits, task, 0, 0);
	struct stack_sample *e;
	u64 began, n, ns;

	if (!w)
		return;
	/* Closed once: the stop's iterator and the exit on another CPU can race here. */
	began = __sync_lock_test_and_set(&w->start_ns, 0);
	if (!began)
		return;
	if (!length_sampled(bpf_ktime_get_ns() - began, sample_ns, &n, &ns))
		return;
	count(RPROF_CNT_SAMPLES);
	e = reserve_stack_sample(task, regs, own);
	if (!e)
		return;
	e->count = n;
	e->total_ns = ns;
	remember_thread(task, pid, tid);
	note_process(pid);
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	if (syscall_of(regs) != NR_FUTEX || !is_target(bpf_get_current_pid_tgid() >> 32))
		return 0;
	end_wait(bpf_get_current_task_btf(), regs, true);
	return 0;
}

/* The saved user registers of a target task, or NULL. */
static __always_inline struct pt_regs *target_user_regs(struct task_struct *task)
{
	if (!task || !task->tgid || (task->flags & PF_KTHREAD) || !is_target(task->tgid))
		return NULL;
	return (struct pt_regs *)bpf_task_pt_regs(task);
}

/* Opens a wait for every target thread already waiting on a futex when the recording begins. */
SEC("iter.s/task")
int seed_waits(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct pt_regs *regs = target_user_regs(task);
	struct futex_wait *w;
	u32 op;

	/* A thread that is running is not waiting; a blocked one in futex is. */
	if (!regs || !task->__state || syscall_of(regs) != NR_FUTEX)
		return 0;
#if defined(__TARGET_ARCH_x86)
	op = regs->si;
#else
	op = regs->regs[1];
#endif
	if (!is_wait_op(op))
		return 0;
	w = bpf_task_storage_get(&waits, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w) {
		count(RPROF_CNT_START_MAP_FULL);
		return 0;
	}
	/* A wait that began since attaching is open already, with its real start. */
	if (w->start_ns)
		return 0;
	w->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * Closes the waits still in progress when the recording stops, up to now. It
 * runs while the syscall tracepoints are still attached, so a wait that ends
 * meanwhile is closed by its exit (once: end_wait claims it), and only a task
 * still inside futex can have one open.
 */
SEC("iter.s/task")
int close_waits(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct pt_regs *regs = target_user_regs(task);

	if (regs && syscall_of(regs) == NR_FUTEX)
		end_wait(task, regs, false);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
