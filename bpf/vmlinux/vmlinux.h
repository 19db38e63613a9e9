/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel types rprof-bpf's BPF programs use, and nothing else.
 *
 * No crate we can fetch ships a vmlinux.h, and a generated one is ~2.8 MB per
 * architecture. Kernel structs here are marked preserve_access_index, so every
 * field access is a CO-RE relocation that libbpf fixes up against the running
 * kernel's BTF: only the fields we touch must exist, not the layout. The
 * program-context structs (bpf_perf_event_data, pt_regs) are UAPI with fixed
 * per-architecture layouts, so those are spelled out exactly per arch.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef int pid_t;
typedef unsigned long size_t;

/* UAPI constants from linux/bpf.h (stable numbering). */
enum bpf_map_type {
	BPF_MAP_TYPE_UNSPEC = 0,
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_STACK_TRACE = 7,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_F_NO_PREALLOC = 1U << 0,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1ULL << 0,
};

enum {
	BPF_F_SKIP_FIELD_MASK = 0xffULL,
	BPF_F_USER_STACK = 1ULL << 8,
};

/*
 * Opaque in the kernel's BTF; a map value holding one can schedule a task_work
 * (6.18+). bpf_map is a struct here, not a declaration, so that libbpf finds
 * the kfunc's prototype compatible with the kernel's.
 */
struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));
struct bpf_task_work {
	__u64 __opaque;
};
typedef int (*bpf_task_work_callback_t)(struct bpf_map *, void *, void *);

/* Task flag: the task is a kernel thread (include/linux/sched.h). */
#define PF_KTHREAD 0x00200000

#define TASK_COMM_LEN 16

/* ---- Architecture-specific UAPI register layouts ---- */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15;
	unsigned long r14;
	unsigned long r13;
	unsigned long r12;
	unsigned long bp;
	unsigned long bx;
	unsigned long r11;
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long ax;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
	unsigned long ip;
	unsigned long cs;
	unsigned long flags;
	unsigned long sp;
	unsigned long ss;
};
typedef struct pt_regs bpf_user_pt_regs_t;
_Static_assert(sizeof(struct pt_regs) == 21 * 8, "x86 pt_regs layout");
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			u64 regs[31];
			u64 sp;
			u64 pc;
			u64 pstate;
		};
	};
	u64 orig_x0;
	/* The system call a task is in (little-endian layout). */
	int syscallno;
} __attribute__((preserve_access_index));
typedef struct user_pt_regs bpf_user_pt_regs_t;
_Static_assert(sizeof(struct user_pt_regs) == 34 * 8, "arm64 user_pt_regs layout");
#else
#error "rprof-bpf: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/* The perf_event program context (linux/bpf_perf_event.h). */
struct bpf_perf_event_data {
	bpf_user_pt_regs_t regs;
	__u64 sample_period;
	__u64 addr;
};

/* ---- Kernel structs, relocated by CO-RE ---- */
struct mm_struct;
struct linux_binprm;

struct task_struct {
	unsigned int __state;
	unsigned int flags;
	struct mm_struct *mm;
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/* Context of iter/task programs. */
struct bpf_iter_meta;
struct bpf_iter__task {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
} __attribute__((preserve_access_index));

#endif /* __VMLINUX_H__ */
