// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Allocation profiler on uprobes of the allocator a target uses (malloc,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc and free).
 *
 * Allocations are sampled by bytes: one of `size` bytes is kept with
 * probability min(1, size/sample_bytes) and weighted by the inverse, so the
 * totals estimate every allocation while a program's many small ones cost
 * little. Kept ones are aggregated by (pid, tid, user stack, size) and, once
 * the allocator returns their address, tracked in `live` until freed: what is
 * left in `live` at the end is the memory in use that was allocated during
 * the window.
 *
 * The stack is taken at the allocator's first instruction, before its
 * prologue, where the return address is still at the stack pointer (x86) or
 * in the link register (arm64): so the caller of malloc is never skipped,
 * even when the allocator has no frame pointer.
 *
 * When copying() (--call-graph dwarf, while sampling), a kept allocation's
 * stack is not walked here: it goes to user space as a copy, to be unwound
 * with the binaries' CFI, under an id of its own that stands for it in
 * `counts` and `live`, so the accounting stays in the kernel.
 */
#include "common.bpf.h"
#include "stack_copy.bpf.h"

const volatile u64 sample_bytes = 512 * 1024;
/* Set by user space when the window ends: detaching uprobes takes a while, and nothing
 * after the window may count. */
volatile bool stopped = false;

/*
 * An allocation call in progress on a thread. Every outermost call has one, kept or not,
 * so that an allocator calling another (aligned_alloc relaying to malloc) is one
 * allocation, sampled once, with the outer caller's stack.
 */
struct pending_alloc {
	u64 user_stack;
	u64 size;
	u64 objects;
	u64 bytes;
	/* posix_memalign: where the address will be written. */
	u64 out_ptr;
	/* Allocator calls nested inside this one. */
	u32 depth;
	bool kept;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct pending_alloc);
} pending SEC(".maps");

/* Size set by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct live_alloc);
} live SEC(".maps");

/* Stack at function entry: IP, the caller's return address, then the caller's frames. */
static __always_inline void entry_stack(struct pt_regs *ctx, struct stack_trace *st)
{
	u64 ret = 0;

#if defined(__TARGET_ARCH_x86)
	bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
#else
	ret = PT_REGS_RET(ctx);
#endif
	st->ips[0] = PT_REGS_IP(ctx);
	st->nr = 1;
	if (!ret)
		return;
	st->ips[1] = ret;
	st->nr = 2;
	walk_frame_pointers(st, PT_REGS_FP(ctx), bpf_get_current_task_btf(), true);
}

/*
 * Sends a copy of the caller's stack to user space; returns the id that stands
 * for it (unique: the CPU and the time), or RPROF_NO_STACK when it was lost.
 */
static __always_inline u64 copied_stack(struct pt_regs *ctx)
{
	struct stack_sample *e = reserve_stack_sample(bpf_get_current_task_btf(), ctx, true);
	u64 id;

	if (!e)
		return RPROF_NO_STACK;
	id = 1ULL << 63 | (u64)bpf_get_smp_processor_id() << 48 |
	     (bpf_ktime_get_ns() & ((1ULL << 48) - 1));
	e->user_stack = id;
	bpf_ringbuf_submit(e, 0);
	return id;
}

/* Decides whether an allocation of size bytes is kept, and with what weights. */
static __always_inline bool keep(u64 size, u64 *objects, u64 *bytes)
{
	u64 draw;

	if (!size)
		return false;
	if (!sample_bytes || size >= sample_bytes) {
		*objects = 1;
		*bytes = size;
		return true;
	}
	draw = ((u64)bpf_get_prandom_u32() * sample_bytes) >> 32;
	if (draw >= size)
		return false;
	/* Kept with probability size/sample_bytes: it stands for sample_bytes of allocations. */
	*objects = (sample_bytes + size / 2) / size;
	*bytes = sample_bytes;
	return true;
}

/* On entry to an allocation of size bytes: sample, and carry the decision to the return. */
static __always_inline int alloc_enter(struct pt_regs *ctx, u64 size, u64 out_ptr)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (u32)bpf_get_current_pid_tgid();
	u32 zero = 0;
	struct pending_alloc p = { .size = size, .out_ptr = out_ptr }, *outer;
	struct stack_trace *st;
	bool dropped = false;

	if (stopped || !is_target(pid))
		return 0;
	outer = bpf_map_lookup_elem(&pending, &tid);
	if (outer) {
		outer->depth++;
		return 0;
	}
	p.kept = keep(size, &p.objects, &p.bytes);
	if (p.kept && copying()) {
		count(RPROF_CNT_SAMPLES);
		p.user_stack = copied_stack(ctx);
		p.kept = p.user_stack != RPROF_NO_STACK;
	} else if (p.kept) {
		count(RPROF_CNT_SAMPLES);
		st = bpf_map_lookup_elem(&scratch, &zero);
		if (!st) {
			count(RPROF_CNT_SCRATCH_MISSING);
			p.kept = false;
		} else {
			entry_stack(ctx, st);
			p.user_stack = store_stack(st, &dropped);
			p.kept = !dropped;
		}
	}
	if (bpf_map_update_elem(&pending, &tid, &p, BPF_ANY))
		count(RPROF_CNT_PENDING_MAP_FULL);
	return 0;
}

/* On return: account the kept allocation and track its address. */
static __always_inline int alloc_exit(u64 addr, bool via_out_ptr, bool failed)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 pid = pid_tgid >> 32, tid = (u32)pid_tgid;
	struct pending_alloc *p = bpf_map_lookup_elem(&pending, &tid);
	struct sample_key key = {};
	struct live_alloc l = {};

	if (!p)
		return 0;
	if (p->depth) {
		/* A nested allocator call returning inside the outer one. */
		p->depth--;
		return 0;
	}
	if (via_out_ptr && p->out_ptr && !failed)
		bpf_probe_read_user(&addr, sizeof(addr), (void *)p->out_ptr);
	if (p->kept && addr && !failed && !stopped) {
		key.pid = pid;
		key.tid = tid;
		key.user_stack = p->user_stack;
		key.extra = p->size > 0xffffffff ? 0xffffffff : p->size;
		aggregate(&key, p->objects, p->bytes);
		l.user_stack = p->user_stack;
		l.size = p->size;
		l.objects = p->objects;
		l.bytes = p->bytes;
		l.pid = pid;
		l.tid = tid;
		if (bpf_map_update_elem(&live, &addr, &l, BPF_ANY))
			count(RPROF_CNT_LIVE_MAP_FULL);
		remember_thread(bpf_get_current_task_btf(), pid, tid);
		note_process(pid);
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

static __always_inline void release(u64 addr)
{
	if (addr && !stopped)
		bpf_map_delete_elem(&live, &addr);
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, size_t size)
{
	return alloc_enter(ctx, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, size_t n, size_t size)
{
	return alloc_enter(ctx, n * size, 0);
}

/* realloc frees the old block, unless it is nested inside another allocator call. */
static __always_inline int realloc_enter_common(struct pt_regs *ctx, u64 ptr, u64 size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&pending, &tid))
		release(ptr);
	return alloc_enter(ctx, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, void *ptr, size_t size)
{
	return realloc_enter_common(ctx, (u64)ptr, size);
}

SEC("uprobe")
int BPF_KPROBE(reallocarray_enter, void *ptr, size_t n, size_t size)
{
	return realloc_enter_common(ctx, (u64)ptr, n * size);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, void **memptr, size_t align, size_t size)
{
	return alloc_enter(ctx, size, (u64)memptr);
}

/* aligned_alloc and memalign: (alignment, size). */
SEC("uprobe")
int BPF_KPROBE(aligned_enter, size_t align, size_t size)
{
	return alloc_enter(ctx, size, 0);
}

/* valloc and pvalloc: (size). */
SEC("uprobe")
int BPF_KPROBE(valloc_enter, size_t size)
{
	return alloc_enter(ctx, size, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, void *ret)
{
	return alloc_exit((u64)ret, false, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_return, int err)
{
	return alloc_exit(0, true, err != 0);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, void *ptr)
{
	release((u64)ptr);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	follow_fork(parent, child);
	return 0;
}
