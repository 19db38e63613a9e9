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
 * The target set is a bitmap over every possible pid (PID_MAX_LIMIT on 64-bit
 * kernels), one bit per tgid in u64 words: an array lookup the verifier inlines,
 * where a hash lookup cost ~50 ns on each of the two tasks of every context switch.
 */
enum rprof_limit {
	RPROF_PID_LIMIT = 4 * 1024 * 1024,
	RPROF_TARGET_WORDS = RPROF_PID_LIMIT / 64,
	/*
	 * The most bytes of user stack a sample can copy for unwinding in user
	 * space; how many it does is set at load (--call-graph dwarf,SIZE, 16 KiB
	 * by default: perf's --call-graph dwarf copies 8 KiB by default, 64 KiB at
	 * most).
	 */
	RPROF_STACK_COPY_MAX = 65536,
};

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
	/* A forked child of a target could not be added to the target set (pid beyond the bitmap). */
	RPROF_CNT_TARGETS_MAP_FULL = 10,
	/* The per-CPU scratch buffer could not be looked up (should never happen). */
	RPROF_CNT_SCRATCH_MISSING = 11,
	/*
	 * Samples dropped because the kernel had no memory at hand for a new stack
	 * entry (the stack map allocates on demand; its per-CPU cache can run dry
	 * in a burst of new stacks).
	 */
	RPROF_CNT_STACK_ALLOC_FAILED = 12,
	/* off-CPU: a block could not be remembered (no task storage); its time is lost. */
	RPROF_CNT_START_MAP_FULL = 13,
	/* off-CPU: a blocked thread's kernel stack could not be read; kept without it. */
	RPROF_CNT_BLOCKED_STACK_ERROR = 14,
	/* alloc: a sampled allocation could not be tracked as live (map full). */
	RPROF_CNT_LIVE_MAP_FULL = 15,
	/* alloc: an allocation's size could not be carried to its return (map full). */
	RPROF_CNT_PENDING_MAP_FULL = 16,
	/*
	 * off-CPU: a recorded block's user stack could not be left for the thread's
	 * return to user space (no room for it, or task_work refused); kept without it.
	 */
	RPROF_CNT_DEFER_FAILED = 17,
	/* A sample with a copied user stack did not fit the ring buffer to user space. */
	RPROF_CNT_STACK_SAMPLES_LOST = 18,
	/* The copy of a user stack failed at sp; the sample keeps only its IP. */
	RPROF_CNT_STACK_COPY_FAILED = 19,
	RPROF_CNT_MAX = 20,
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

/*
 * Key of the in-kernel aggregation: one entry per thread, stack pair and
 * kind-specific detail (`extra`: the task state for off-CPU, thread or process
 * for threadcreate, 0 for CPU samples).
 */
struct sample_key {
	__u32 pid;
	__u32 tid;
	__u64 user_stack;
	__u64 kernel_stack;
	__u32 extra;
	__u32 _pad;
};
_Static_assert(sizeof(struct sample_key) == 32, "sample_key size");

struct sample_value {
	/* Events: samples, blocks, or threads created. */
	__u64 count;
	/* Nanoseconds: CPU time (sum of sample periods) or time off the CPU. */
	__u64 total_ns;
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

/* off-CPU: the state a thread blocked in, as sample_key.extra and the `state` label. */
enum block_state {
	BLOCK_RUNNABLE = 'R', /* preempted while runnable */
	BLOCK_SLEEPING = 'S', /* interruptible sleep */
	BLOCK_DISK = 'D',     /* uninterruptible sleep (usually I/O) */
	BLOCK_IDLE = 'I',     /* uninterruptible, not counted as load */
	BLOCK_STOPPED = 'T',  /* stopped or traced */
	BLOCK_OTHER = '?',
};

/* Bits of the off-CPU `state_filter`: which states to record. */
enum block_state_filter {
	STATE_FILTER_RUNNABLE = 1 << 0,
	STATE_FILTER_SLEEPING = 1 << 1,
	STATE_FILTER_DISK = 1 << 2,
	STATE_FILTER_OTHER = 1 << 3,
	STATE_FILTER_ALL = 0xf,
};

/*
 * A thread that went off the CPU, until it comes back. Only the user stack is
 * taken when it leaves (it can be read only then, from the thread itself); the
 * kernel stack is read when the block ends and is kept.
 */
struct block_start {
	__u64 start_ns;
	__u64 user_stack;
	__u32 pid;
	__u32 state;
};
_Static_assert(sizeof(struct block_start) == 24, "block_start size");

/*
 * alloc: a sampled allocation that is still live, by address. Its weights are
 * what this one sample stands for once sampling is undone.
 */
struct live_alloc {
	__u64 user_stack;
	__u64 size;
	__u64 objects;  /* estimated allocations this sample stands for */
	__u64 bytes;    /* estimated bytes this sample stands for */
	__u32 pid;
	__u32 tid;
};
_Static_assert(sizeof(struct live_alloc) == 40, "live_alloc size");

/* threadcreate: sample_key.extra */
enum created_kind {
	CREATED_THREAD = 0,
	CREATED_PROCESS = 1,
};

/*
 * A sample whose user stack is copied rather than walked in BPF: the
 * thread's user registers and the top of its stack, which user space unwinds
 * with the binaries' CFI (code without frame pointers, such as Debian's libc,
 * cannot be walked by frame pointers). CPU samples, off-CPU blocks and lock
 * waits are summed in user space; an allocation keeps its in-kernel
 * accounting under `user_stack`, an id that stands for the copied stack.
 * stack holds stack_len bytes from sp.
 */
struct stack_sample {
	__u32 pid;
	__u32 tid;
	/* Kind-specific detail, as sample_key.extra. */
	__u32 extra;
	__u32 stack_len;
	/* Id of the kernel stack in the `stacks` map, or RPROF_NO_STACK. */
	__u64 kernel_stack;
	/* alloc: the id standing for this user stack in `counts` and `live`; 0 otherwise. */
	__u64 user_stack;
	/* What this sample stands for: as sample_value. */
	__u64 count;
	__u64 total_ns;
	/* User registers; lr is the register a return address can be held in before it is
	 * saved: arm64's link register, x86-64's rdi (glibc's vfork). */
	__u64 ip;
	__u64 sp;
	__u64 fp;
	__u64 lr;
	/* Records are only as long as the copy size set at load. */
	__u8 stack[RPROF_STACK_COPY_MAX];
};
_Static_assert(sizeof(struct stack_sample) == 80 + RPROF_STACK_COPY_MAX, "stack_sample size");

/*
 * Kernel symbol lookups (kernel_symbols.bpf.c): the kernel names a batch of
 * addresses per run of the program, each as "name+0xoff/0xsize [module]".
 * Longer names are cut short; user space reads those from kallsyms instead.
 */
enum rprof_ksym_limit {
	RPROF_KSYM_BATCH = 256,
	RPROF_KSYM_NAME = 192,
};

struct ksym_batch {
	/* Addresses in addrs; set by user space. */
	__u32 count;
	/* Addresses the kernel could not format; set by the program. */
	__u32 failed;
	__u64 addrs[RPROF_KSYM_BATCH];
	char names[RPROF_KSYM_BATCH][RPROF_KSYM_NAME];
};
_Static_assert(sizeof(struct ksym_batch) == 8 + RPROF_KSYM_BATCH * (8 + RPROF_KSYM_NAME),
	       "ksym_batch size");

#endif /* __RPROF_H__ */
