//! The BPF side as Rust sees it: the generated skeletons, the named failure counters, and
//! libbpf's log, kept so that a load failure can quote the verifier.
pub mod counters;
pub mod libbpf_log;

/// Skeleton of `bpf/cpu.bpf.c`: the perf_event CPU sampler.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod cpu {
    include!(concat!(env!("OUT_DIR"), "/cpu.skel.rs"));
}

/// Skeleton of `bpf/offcpu.bpf.c`: the sched_switch off-CPU recorder.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod offcpu {
    include!(concat!(env!("OUT_DIR"), "/offcpu.skel.rs"));
}

/// Skeleton of `bpf/threads.bpf.c`: thread and process creation.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod threads {
    include!(concat!(env!("OUT_DIR"), "/threads.skel.rs"));
}

/// Skeleton of `bpf/alloc.bpf.c`: allocator uprobes.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod alloc {
    include!(concat!(env!("OUT_DIR"), "/alloc.skel.rs"));
}

/// Skeleton of `bpf/lock.bpf.c`: futex waits (lock contention).
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod lock {
    include!(concat!(env!("OUT_DIR"), "/lock.skel.rs"));
}

/// Skeleton of `bpf/kernel_symbols.bpf.c`: kernel symbol names from the kernel itself.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod kernel_symbols {
    include!(concat!(env!("OUT_DIR"), "/kernel_symbols.skel.rs"));
}

/// The structs of `bpf/rprof.h`. Every skeleton generates identical copies from BTF; these
/// are the CPU skeleton's, used to read any object's shared maps.
pub mod shared {
    pub use super::cpu::types::{
        block_start, block_state, block_state_filter, created_kind, live_alloc, proc_event,
        proc_event_kind, rprof_counter, rprof_limit, sample_key, sample_value, stack_sample,
        stack_trace, thread_names,
    };
}

/// Reads a plain-old-data value of a shared type out of bytes from a map.
///
/// # Panics
/// If `bytes` is shorter than `T`: the map's value size disagrees with `bpf/rprof.h`.
pub(crate) fn from_bytes<T: Copy>(bytes: &[u8]) -> T {
    assert!(
        bytes.len() >= std::mem::size_of::<T>(),
        "map value of {} bytes is smaller than {}",
        bytes.len(),
        std::any::type_name::<T>()
    );
    // SAFETY: the types are #[repr(C)] plain data generated from bpf/rprof.h, valid for any
    // bit pattern, and the length was checked above; read_unaligned needs no alignment.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

/// The bytes of a plain-old-data value, to use as a map key.
#[cfg(test)]
pub(crate) fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a #[repr(C)] plain data type; any initialized value is readable as bytes.
    unsafe {
        std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
    }
}
