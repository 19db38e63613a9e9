/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Types and limits shared by the BPF programs and rprof-bpf's Rust side.
 *
 * This is the one definition of every struct that crosses the boundary. The
 * Rust side never redeclares them: libbpf-cargo turns the BTF of these types
 * into the skeleton's `types` module. Sizes are pinned with _Static_assert so
 * a change that would shift a field fails the build, not a recording.
 */
#ifndef __RPROF_H__
#define __RPROF_H__

/* Frames kept per stack, the kernel's default perf_event_max_stack. */
#define RPROF_MAX_STACK_DEPTH 127

/*
 * Named failure and drop counters. Every path in BPF that loses or degrades
 * a sample increments one; user space prints the non-zero ones and writes
 * them into the profile's comments. Keep RPROF_CNT_MAX last.
 */
enum rprof_counter {
	/* Samples that hit a target (before any drop). */
	RPROF_CNT_SAMPLES = 0,
	/* Samples dropped because the counts map was full. */
	RPROF_CNT_COUNTS_MAP_FULL = 1,
	/* Samples dropped because their stack could not be stored: map full. */
	RPROF_CNT_STACK_MAP_FULL = 2,
	/* Samples dropped because a different stack had the same hash. */
	RPROF_CNT_STACK_COLLISION = 3,
	/* bpf_get_stack failed for the user stack; sample kept without it. */
	RPROF_CNT_USER_STACK_ERROR = 4,
	/* bpf_get_stack failed for the kernel stack; sample kept without it. */
	RPROF_CNT_KERNEL_STACK_ERROR = 5,
	/* The user stack filled RPROF_MAX_STACK_DEPTH frames: callers cut off. */
	RPROF_CNT_USER_STACK_TRUNCATED = 6,
	/* The kernel stack filled RPROF_MAX_STACK_DEPTH frames. */
	RPROF_CNT_KERNEL_STACK_TRUNCATED = 7,
	/* The thread-name map was full; the thread's names come from procfs. */
	RPROF_CNT_THREADS_MAP_FULL = 8,
	/* A process event (first sample, exec, fork) did not fit the ring buffer. */
	RPROF_CNT_EVENTS_LOST = 9,
	/* A forked child of a target could not be added to the target set. */
	RPROF_CNT_TARGETS_MAP_FULL = 10,
	/* The per-CPU scratch buffer could not be looked up (should never happen). */
	RPROF_CNT_SCRATCH_MISSING = 11,
	/*
	 * Samples dropped because the kernel had no memory at hand for a new stack
	 * entry (the stack map allocates on demand; its per-CPU cache can run dry
	 * in a burst of new stacks).
	 */
	RPROF_CNT_STACK_ALLOC_FAILED = 12,
	RPROF_CNT_MAX = 13,
};

/* A stack as bpf_get_stack returns it: nr frames, innermost first, zero-padded. */
struct stack_trace {
	__u32 nr;
	__u32 _pad;
	__u64 ips[RPROF_MAX_STACK_DEPTH];
};
_Static_assert(sizeof(struct stack_trace) == 8 + 8 * RPROF_MAX_STACK_DEPTH, "stack_trace size");

/* Stack ids are 64-bit hashes of a stack_trace; 0 means "no stack". */
#define RPROF_NO_STACK 0

/* Key of the in-kernel aggregation: one entry per thread and stack pair. */
struct sample_key {
	__u32 pid;
	__u32 tid;
	__u64 user_stack;
	__u64 kernel_stack;
};
_Static_assert(sizeof(struct sample_key) == 24, "sample_key size");

struct sample_value {
	__u64 count;
	/* Sum of the samples' periods: CPU time in nanoseconds for cpu-clock. */
	__u64 period_ns;
};
_Static_assert(sizeof(struct sample_value) == 16, "sample_value size");

/* Names of a thread, captured in BPF while the thread runs. */
struct thread_names {
	__u32 pid;
	__u32 _pad;
	char comm[16];      /* the thread's own name */
	char proc_comm[16]; /* the name of its thread-group leader */
};
_Static_assert(sizeof(struct thread_names) == 40, "thread_names size");

/* Process lifecycle events, sent so user space snapshots /proc while it can. */
enum proc_event_kind {
	/* First sample from this process: snapshot its maps now. */
	PROC_EVENT_FIRST_SAMPLE = 1,
	/* The process replaced its image: snapshot again. */
	PROC_EVENT_EXEC = 2,
	/* A target forked a child that is now a target too. */
	PROC_EVENT_FORK = 3,
};

struct proc_event {
	__u32 kind;
	__u32 pid;
	__u32 parent_pid;
	__u32 _pad;
};
_Static_assert(sizeof(struct proc_event) == 16, "proc_event size");

#endif /* __RPROF_H__ */
