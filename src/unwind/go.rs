//! Unwind rows for Go code, which has no `.eh_frame`: from the SP delta its pclntab gives at
//! every pc ([`GoTable::unwind_at`]), in the same [`UnwindRow`] form as call frame
//! information, so the replay walks Go frames (leaf functions included, which push no frame
//! pointer) like any other.
use super::table::{Arch, Cfa, Saved, UnwindRow};
use crate::gopclntab::GoTable;

/// The row at `pc` (a file's virtual address) of Go code of `arch`, if the table covers it.
///
/// - x86-64: the CALL pushed the return address, so the CFA is SP + delta + 8 with the
///   return address just below it; a function with a frame saved BP right below that.
/// - arm64: a call pushes nothing, so the CFA is SP + delta; while the delta is 0 the return
///   address is still in the link register, then it is at 0(SP) and the caller's frame
///   pointer at -8(SP).
///
/// Where a stack begins (`goexit`, `mstart`, `rt0_go`) or switches (`mcall`, `systemstack`:
/// the frames beyond are on another stack), the return address is undefined: the walk ends
/// there, complete.
pub fn row(table: &GoTable, arch: Arch, pc: u64) -> Option<UnwindRow> {
    let u = table.unwind_at(pc)?;
    let delta = i32::try_from(u.sp_delta).ok()?;
    let ends = u.outermost || u.sp_write;
    let (cfa, ra, fp) = match arch {
        Arch::X86_64 => (
            Cfa::Sp(delta.checked_add(8)?),
            Saved::AtCfa(-8),
            if delta > 0 {
                Saved::AtCfa(-16)
            } else {
                Saved::Unchanged
            },
        ),
        Arch::Aarch64 if delta == 0 => (Cfa::Sp(0), Saved::Unchanged, Saved::Unchanged),
        Arch::Aarch64 => (
            Cfa::Sp(delta),
            Saved::AtCfa(-delta),
            Saved::AtCfa(delta.checked_neg()?.checked_sub(8)?),
        ),
    };
    Some(UnwindRow {
        pc: u.entry,
        cfa,
        fp,
        ra: if ends { Saved::Undefined } else { ra },
    })
}
