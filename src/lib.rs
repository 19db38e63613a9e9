//! rprof-bpf: pprof profiles of any Linux process, recorded from outside with CO-RE eBPF.
//!
//! One recording flows: [`target`] (which tasks) → collectors in [`collect`] (BPF programs
//! that aggregate in the kernel) → [`raw::RawProfile`] (addresses only) → [`procs`] (maps
//! snapshotted while processes live, with [`perf_map`]s naming JIT code) → [`symbolize`] →
//! [`assemble`] (the pprof model) →
//! [`output_file`]. [`record`] runs that flow.
pub mod allocator;
pub mod assemble;
pub mod bpf;
pub mod collect;
pub mod gopclntab;
pub mod kernel_symbols;
pub mod kernel_text;
pub mod kind;
pub mod lock_mechanism;
pub mod output;
pub mod output_file;
pub mod perf_event;
pub mod perf_map;
pub mod pprof;
pub mod preflight;
pub mod procs;
pub mod raw;
pub mod record;
pub mod report;
pub mod signals;
pub mod symbolize;
pub mod target;
pub mod unwind;
