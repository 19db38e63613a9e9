//! Unwinding code built without frame pointers, from the binaries' own call frame
//! information: [`table`] turns `.eh_frame`/`.debug_frame` into compact rows, and [`replay`]
//! walks a recorded stack with them (the same walk a BPF unwinder makes in the kernel);
//! [`process`] keeps the tables of the files live processes map. Go code, which has no
//! call frame information, gets its rows from its pclntab ([`go`]).
pub mod end;
#[cfg(test)]
mod fixtures;
pub mod go;
pub mod image;
pub mod indexed;
pub mod process;
pub mod replay;
pub mod table;
