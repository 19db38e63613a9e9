/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What every rprof-bpf BPF object has: the target filter, the in-kernel
 * aggregation (`counts` keyed by thread and stack ids, `stacks` holding each
 * distinct stack once), thread names, process events for user space, and the
 * named failure counters. Each *.bpf.c includes this once, so each object owns
 * its own copy of these maps; the Rust side reads them the same way for every
 * profile kind.
 */
#ifndef __RPROF_COMMON_BPF_H__
#define __RPROF_COMMON_BPF_H__

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "rprof.h"

#define EEXIST 17
#define ENOMEM 12

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile bool filter_pids = false;
/* Children forked by a target become targets (used for a launched command). */
const volatile bool follow_forks = false;

/* Target processes when filter_pids is set: bit (tgid % 64) of word (tgid / 64). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RPROF_TARGET_WORDS);
	__type(key, u32);
	__type(value, u64);
} targets SEC(".maps");

/* Sizes of these are set by user space from the recording's options. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sample_key);
	__type(value, struct sample_value);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 32768);
	__type(key, u64);
	__type(value, struct stack_trace);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, u32);
	__type(value, struct thread_names);
} threads SEC(".maps");

/* Processes that have produced a sample; the first one triggers an event. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, u32);
	__type(value, u8);
} seen_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Two scratch stacks per CPU: [0] user, [1] kernel. Too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct stack_trace);
} scratch SEC(".maps");

/* Bytes of user stack copied in one read, which frame-pointer walks then index. */
#define FRAME_CHUNK 512
struct frame_chunk {
	u64 words[FRAME_CHUNK / 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct frame_chunk);
} frame_chunks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RPROF_CNT_MAX);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

/* Keep the shared types in BTF so the skeleton exports them to Rust. */
struct proc_event _proc_event_btf = {};
struct block_start _block_start_btf = {};
struct live_alloc _live_alloc_btf = {};
enum rprof_counter _rprof_counter_btf = RPROF_CNT_MAX;
enum rprof_limit _rprof_limit_btf = RPROF_PID_LIMIT;
enum proc_event_kind _proc_event_kind_btf = PROC_EVENT_FIRST_SAMPLE;
enum block_state _block_state_btf = BLOCK_OTHER;
enum block_state_filter _block_state_filter_btf = STATE_FILTER_ALL;
enum created_kind _created_kind_btf = CREATED_THREAD;

static __always_inline void count(u32 counter)
{
	u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The word of the target bitmap that holds pid's bit, or NULL past the bitmap. */
static __always_inline u64 *target_word(u32 pid)
{
	u32 word = pid / 64;

	return bpf_map_lookup_elem(&targets, &word);
}

static __always_inline bool is_target(u32 pid)
{
	u64 *bits;

	if (!filter_pids)
		return true;
	bits = target_word(pid);
	return bits && (*bits & (1ULL << (pid % 64)));
}

static __always_inline void emit(u32 kind, u32 pid, u32 parent_pid)
{
	struct proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(RPROF_CNT_EVENTS_LOST);
		return;
	}
	e->kind = kind;
	e->pid = pid;
	e->parent_pid = parent_pid;
	e->_pad = 0;
	bpf_ringbuf_submit(e, 0);
}

/* FNV-1a over the frames, then a final mix; never returns RPROF_NO_STACK. */
static __always_inline u64 hash_stack(const struct stack_trace *st)
{
	u64 h = 0xcbf29ce484222325ULL ^ st->nr;

	for (u32 i = 0; i < RPROF_MAX_STACK_DEPTH; i++) {
		if (i >= st->nr)
			break;
		h ^= st->ips[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static __always_inline bool same_stack(const struct stack_trace *a, const struct stack_trace *b)
{
	if (a->nr != b->nr)
		return false;
	for (u32 i = 0; i < RPROF_MAX_STACK_DEPTH; i++) {
		if (i >= a->nr)
			break;
		if (a->ips[i] != b->ips[i])
			return false;
	}
	return true;
}

/*
 * Stores a stack and returns its id, or RPROF_NO_STACK for an empty stack.
 * *dropped is set when the stack could not be stored (map full, collision).
 */
static __always_inline u64 store_stack(const struct stack_trace *st, bool *dropped)
{
	struct stack_trace *old;
	u64 id;
	long err;

	if (st->nr == 0)
		return RPROF_NO_STACK;
	id = hash_stack(st);
	old = bpf_map_lookup_elem(&stacks, &id);
	if (!old) {
		err = bpf_map_update_elem(&stacks, &id, st, BPF_NOEXIST);
		if (!err)
			return id;
		if (err != -EEXIST) {
			count(err == -ENOMEM ? RPROF_CNT_STACK_ALLOC_FAILED : RPROF_CNT_STACK_MAP_FULL);
			*dropped = true;
			return RPROF_NO_STACK;
		}
		/* Another CPU stored this id first: compare against its stack. */
		old = bpf_map_lookup_elem(&stacks, &id);
		if (!old) {
			count(RPROF_CNT_STACK_MAP_FULL);
			*dropped = true;
			return RPROF_NO_STACK;
		}
	}
	if (!same_stack(old, st)) {
		count(RPROF_CNT_STACK_COLLISION);
		*dropped = true;
		return RPROF_NO_STACK;
	}
	return id;
}

/* Fills st from bpf_get_stack; flags selects the user or the kernel stack. */
static __always_inline void read_stack(void *ctx, struct stack_trace *st, u64 flags,
				       u32 error_counter, u32 truncated_counter)
{
	long n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), flags);

	if (n < 0) {
		count(error_counter);
		st->nr = 0;
		return;
	}
	st->nr = n / sizeof(u64);
	if (st->nr >= RPROF_MAX_STACK_DEPTH)
		count(truncated_counter);
}

/*
 * Reads and stores the current task's user and kernel stacks. Returns false
 * (counted) when the sample must be dropped.
 */
static __always_inline bool current_stacks(void *ctx, struct task_struct *task, u64 *user_id,
					   u64 *kernel_id)
{
	u32 zero = 0, one = 1;
	struct stack_trace *ustack = bpf_map_lookup_elem(&scratch, &zero);
	struct stack_trace *kstack = bpf_map_lookup_elem(&scratch, &one);
	bool dropped = false;

	if (!ustack || !kstack) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return false;
	}
	/* Kernel threads have no user stack to read. */
	if (task->flags & PF_KTHREAD)
		ustack->nr = 0;
	else
		read_stack(ctx, ustack, BPF_F_USER_STACK, RPROF_CNT_USER_STACK_ERROR,
			   RPROF_CNT_USER_STACK_TRUNCATED);
	read_stack(ctx, kstack, 0, RPROF_CNT_KERNEL_STACK_ERROR, RPROF_CNT_KERNEL_STACK_TRUNCATED);
	*user_id = store_stack(ustack, &dropped);
	*kernel_id = store_stack(kstack, &dropped);
	return !dropped;
}

static __always_inline bool same_comm(const char *a, const char *b)
{
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			break;
	}
	return true;
}

/*
 * Appends to st the return addresses of the frame-pointer chain starting at
 * fp, using chunk as the copy buffer. A frame record, on x86-64 and arm64
 * alike, is the saved frame pointer followed by the return address. `own`
 * says the task is `current` (plain user reads work); otherwise the program
 * is sleepable and reads the task's memory.
 *
 * Callers' frames sit close together above fp, so the stack is copied in
 * chunks of up to FRAME_CHUNK bytes and the chain followed inside each copy:
 * one read for most stacks, where each read costs ~100 ns or more. A chunk
 * never crosses a 4 KiB boundary, so a read cannot fault on the unmapped
 * memory past the top of a stack; a frame record that straddles one is read
 * alone.
 */
static __always_inline void walk_frames_with(struct stack_trace *st, struct frame_chunk *chunk,
					     u64 fp, struct task_struct *task, bool own)
{
	u64 base = 0, len = 0, off, next_fp, ret;
	long err;

	for (u32 i = 1; i < RPROF_MAX_STACK_DEPTH; i++) {
		if (i < st->nr)
			continue;
		/* Frame records are 8-byte aligned; anything else is not a frame chain. */
		if (!fp || (fp & 7))
			break;
		if (fp < base || fp + 16 > base + len) {
			len = 4096 - (fp & 4095);
			if (len > FRAME_CHUNK)
				len = FRAME_CHUNK;
			if (len < 16)
				len = 16;
			if (own)
				err = bpf_probe_read_user(chunk->words, len, (void *)fp);
			else
				err = bpf_copy_from_user_task(chunk->words, len, (void *)fp, task, 0);
			if (err)
				break;
			base = fp;
		}
		off = (fp - base) / 8;
		if (off >= FRAME_CHUNK / 8 - 1)
			break;
		next_fp = chunk->words[off];
		ret = chunk->words[off + 1];
		if (!ret)
			break;
		st->ips[i] = ret;
		st->nr = i + 1;
		/* Frames grow toward higher addresses; anything else is not a frame chain. */
		if (next_fp <= fp)
			break;
		fp = next_fp;
	}
	if (st->nr >= RPROF_MAX_STACK_DEPTH)
		count(RPROF_CNT_USER_STACK_TRUNCATED);
}

/*
 * walk_frames_with a per-CPU chunk: only for programs that cannot be
 * preempted, since another program on the CPU would reuse the chunk.
 */
static __always_inline void walk_frame_pointers(struct stack_trace *st, u64 fp,
						struct task_struct *task, bool own)
{
	u32 zero = 0;
	struct frame_chunk *chunk = bpf_map_lookup_elem(&frame_chunks, &zero);

	if (!chunk) {
		count(RPROF_CNT_SCRATCH_MISSING);
		return;
	}
	walk_frames_with(st, chunk, fp, task, own);
}

/* Records a thread's names; checked every time, so a rename is seen. */
static __always_inline void remember_thread(struct task_struct *task, u32 pid, u32 tid)
{
	struct thread_names names = { .pid = pid }, *known;

	BPF_CORE_READ_STR_INTO(&names.comm, task, comm);
	BPF_CORE_READ_STR_INTO(&names.proc_comm, task, group_leader, comm);
	known = bpf_map_lookup_elem(&threads, &tid);
	/* Most events come from threads already known by these names: no write then. */
	if (known && known->pid == pid && same_comm(known->comm, names.comm) &&
	    same_comm(known->proc_comm, names.proc_comm))
		return;
	if (bpf_map_update_elem(&threads, &tid, &names, BPF_ANY))
		count(RPROF_CNT_THREADS_MAP_FULL);
}

/* The first event from a process asks user space to snapshot it. */
static __always_inline void note_process(u32 pid)
{
	u8 one = 1;

	if (bpf_map_lookup_elem(&seen_pids, &pid))
		return;
	if (bpf_map_update_elem(&seen_pids, &pid, &one, BPF_NOEXIST) == 0)
		emit(PROC_EVENT_FIRST_SAMPLE, pid, 0);
}

/* Adds (count, ns) to the aggregation entry of key; counts a full map. */
static __always_inline void aggregate(struct sample_key *key, u64 n, u64 ns)
{
	struct sample_value *val, init = {};
	long err;

	val = bpf_map_lookup_elem(&counts, key);
	if (!val) {
		err = bpf_map_update_elem(&counts, key, &init, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			count(RPROF_CNT_COUNTS_MAP_FULL);
			return;
		}
		val = bpf_map_lookup_elem(&counts, key);
		if (!val) {
			count(RPROF_CNT_COUNTS_MAP_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&val->count, n);
	__sync_fetch_and_add(&val->total_ns, ns);
}

/*
 * Go's rule for sampling waits by length: a wait of at least `rate` is kept as
 * it was; a shorter one is kept with probability ns/rate and weighted by the
 * inverse, so each kept one stands for `rate` of waiting and totals stay
 * unbiased. Sets the weight (waits, ns) of a kept wait. rate 0 keeps all.
 */
static __always_inline bool length_sampled(u64 ns, u64 rate, u64 *waits, u64 *total_ns)
{
	u64 draw;

	if (!rate || ns >= rate) {
		*waits = 1;
		*total_ns = ns;
		return true;
	}
	/* A uniform draw in [0, rate). */
	draw = ((u64)bpf_get_prandom_u32() * rate) >> 32;
	if (draw >= ns)
		return false;
	*waits = (rate + ns / 2) / ns;
	*total_ns = rate;
	return true;
}

/* From sched_process_fork: a target's forked child becomes a target when following forks. */
static __always_inline void follow_fork(struct task_struct *parent, struct task_struct *child)
{
	u32 parent_pid = parent->tgid;
	u32 child_pid = child->tgid;
	u64 *bits;

	/* New threads share their tgid and are covered already. */
	if (!follow_forks || !filter_pids || child->pid != child->tgid)
		return;
	if (!is_target(parent_pid))
		return;
	bits = target_word(child_pid);
	if (!bits) {
		count(RPROF_CNT_TARGETS_MAP_FULL);
		return;
	}
	__sync_fetch_and_or(bits, 1ULL << (child_pid % 64));
	emit(PROC_EVENT_FORK, child_pid, parent_pid);
}

/* A target replaced its image: its memory maps must be read again. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 pid = p->tgid;

	if (!is_target(pid))
		return 0;
	/*
	 * The new image's libraries are not mapped yet: its next sample is a first
	 * sample again, so user space reads the maps once they are. Any target,
	 * sampled or not: a forked child was read at its fork, with its parent's image.
	 */
	bpf_map_delete_elem(&seen_pids, &pid);
	emit(PROC_EVENT_EXEC, pid, 0);
	return 0;
}

#endif /* __RPROF_COMMON_BPF_H__ */
