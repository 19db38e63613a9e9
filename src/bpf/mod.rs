//! The BPF side as Rust sees it: the generated skeletons, the named failure counters, and
//! libbpf's log, kept so that a load failure can quote the verifier.
pub mod counters;
pub mod libbpf_log;

/// Skeleton of `bpf/cpu.bpf.c`. The shared structs in its `types` module come from
/// `bpf/rprof.h` through BTF, so Rust never redeclares them.
#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types, unused)]
pub mod cpu {
    include!(concat!(env!("OUT_DIR"), "/cpu.skel.rs"));
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
