/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Samples whose user stack is copied for user space to unwind (struct
 * stack_sample), for the objects that include this after common.bpf.h.
 *
 * Why copy instead of walking frame pointers here: most native code has none
 * (distro libraries such as libc, -O2 leaf functions, Rust release builds).
 * User space unwinds the copy with the binaries' .eh_frame, so every caller
 * shows. The copy is a few page-bounded reads (about 120 ns each on the
 * reference VM), where an unwinder running here would need a user read and a
 * table search for every frame.
 */
#ifndef __RPROF_STACK_COPY_BPF_H__
#define __RPROF_STACK_COPY_BPF_H__

/* Sized by user space for the sampling rate and the number of CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} stack_samples SEC(".maps");

struct stack_sample _stack_sample_btf = {};

/*
 * Bytes of stack a sample copies: a multiple of 4096, at most
 * RPROF_STACK_COPY_MAX; 0 when the object walks frame pointers instead.
 */
const volatile u32 stack_copy_bytes = 0;

/* Whether user stacks are copied for user space to unwind (copying()). */
static __always_inline bool copying(void)
{
	return stack_copy_bytes > 0;
}

/* Reads user memory of the current task (own) or, in a sleepable program, of task. */
static __always_inline long read_user(void *dst, u32 size, u64 addr, struct task_struct *task,
				      bool own)
{
	if (own)
		return bpf_probe_read_user(dst, size, (void *)addr);
	return bpf_copy_from_user_task(dst, size, (void *)addr, task, 0);
}

/*
 * Copies the user stack from e->sp: the rest of sp's page, then whole pages
 * while they are mapped and fit in stack_copy_bytes. No read crosses a page, so none fails
 * half-way on the unmapped memory past the top of a stack. Returns the bytes
 * copied.
 */
static __always_inline u32 copy_user_stack(struct stack_sample *e, struct task_struct *task,
					   bool own)
{
	u32 len = 4096 - (e->sp & 4095);

	if (read_user(e->stack, len, e->sp, task, own)) {
		count(RPROF_CNT_STACK_COPY_FAILED);
		return 0;
	}
#pragma unroll
	for (int i = 0; i < RPROF_STACK_COPY_MAX / 4096 - 1; i++) {
		/* Hide len's known range from clang, so the verifier sees the check. */
		barrier_var(len);
		if (len > stack_copy_bytes - 4096)
			break;
		if (read_user(e->stack + len, 4096, e->sp + len, task, own))
			break;
		len += 4096;
	}
	return len;
}

/*
 * Reserves a sample of task (user registers regs) and fills in the thread,
 * the registers and the stack copy; the caller sets the rest and submits it.
 * NULL (counted) when the ring buffer is full.
 */
static __always_inline struct stack_sample *reserve_stack_sample(struct task_struct *task,
								 struct pt_regs *regs, bool own)
{
	struct stack_sample *e = bpf_ringbuf_reserve(
		&stack_samples, __builtin_offsetof(struct stack_sample, stack) + stack_copy_bytes, 0);

	if (!e) {
		count(RPROF_CNT_STACK_SAMPLES_LOST);
		return NULL;
	}
	e->pid = task->tgid;
	e->tid = task->pid;
	e->ip = PT_REGS_IP(regs);
	e->sp = PT_REGS_SP(regs);
	e->fp = PT_REGS_FP(regs);
#if defined(__TARGET_ARCH_arm64)
	e->lr = PT_REGS_RET(regs);
#else
	/* glibc's vfork pops its return address into rdi for the system call (its CFI says
	 * so): the one x86-64 return address held in a register. */
	e->lr = PT_REGS_PARM1(regs);
#endif
	e->stack_len = copy_user_stack(e, task, own);
	e->extra = 0;
	e->kernel_stack = RPROF_NO_STACK;
	e->user_stack = RPROF_NO_STACK;
	e->count = 0;
	e->total_ns = 0;
	return e;
}

/*
 * Sends a sample of the current task: a copy of its user stack, and its kernel
 * stack stored in `stacks`. Lost samples are counted.
 */
static __always_inline void send_current(void *ctx, struct task_struct *task, u32 extra, u64 n,
					 u64 ns)
{
	u32 one = 1;
	struct stack_trace *kstack = bpf_map_lookup_elem(&scratch, &one);
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
	e = reserve_stack_sample(task, (struct pt_regs *)bpf_task_pt_regs(task), true);
	if (!e)
		return;
	e->kernel_stack = kernel_id;
	e->extra = extra;
	e->count = n;
	e->total_ns = ns;
	bpf_ringbuf_submit(e, 0);
}

#endif /* __RPROF_STACK_COPY_BPF_H__ */
