//! The function table and function records (`runtime._func`).
//!
//! The function table is sorted by entry pc, so a pc's function is found by binary search;
//! its pair gives the offset of the function's record, which holds the name offset, the
//! offsets of the pcsp/pcfile/pcln tables, `npcdata` pcdata table offsets and `nfuncdata`
//! funcdata slots.

use super::header::{Header, Version};
use super::pcvalue;
use super::raw::Raw;

/// pcdata slot of the inline-tree index table.
pub(super) const PCDATA_INL_TREE_INDEX: u32 = 2;
/// funcdata slot of the inline tree.
pub(super) const FUNCDATA_INL_TREE: u8 = 3;

/// The decoded fixed part of one function record.
#[derive(Clone, Copy, Debug)]
pub(super) struct Func {
    pub entry: u64,
    /// The next function's entry.
    pub end: u64,
    pub name_off: u32,
    pub pcsp: u32,
    pub pcfile: u32,
    pub pcln: u32,
    pub npcdata: u32,
    pub cu_offset: u32,
    pub flag: u8,
    pub nfuncdata: u8,
    /// Table offset of the `pcdata` array that follows the fixed part.
    pcdata_at: usize,
}

/// Read access to the functions of one table.
#[derive(Clone, Copy)]
pub(super) struct FuncTab<'a> {
    pub raw: Raw<'a>,
    pub h: &'a Header,
    /// Address of the table's first byte; pre-1.18 funcdata slots are aligned by address.
    pub addr: u64,
}

impl<'a> FuncTab<'a> {
    /// Entry pc of function `i`; `i == nfunc` gives the end of text.
    pub(super) fn entry(&self, i: usize) -> Option<u64> {
        let at = self
            .h
            .functab
            .checked_add(i.checked_mul(self.h.ftab_pair_size())?)?;
        match self.h.version {
            Version::Go12 | Version::Go116 => self.raw.word(at, self.h.ptr_size),
            Version::Go118 | Version::Go120 => {
                self.h.text_start.checked_add(u64::from(self.raw.u32(at)?))
            }
        }
    }

    /// Table offset of function `i`'s record.
    pub(super) fn record_offset(&self, i: usize) -> Option<usize> {
        let at = self
            .h
            .functab
            .checked_add(i.checked_mul(self.h.ftab_pair_size())?)?;
        let off = match self.h.version {
            Version::Go12 | Version::Go116 => self
                .raw
                .word(at.checked_add(self.h.ptr_size as usize)?, self.h.ptr_size)?,
            Version::Go118 | Version::Go120 => u64::from(self.raw.u32(at.checked_add(4)?)?),
        };
        self.h.funcs.checked_add(usize::try_from(off).ok()?)
    }

    /// Index of the function whose [entry, next entry) holds `pc`.
    pub(super) fn find(&self, pc: u64) -> Option<usize> {
        let n = self.h.nfunc;
        if pc < self.entry(0)? || pc >= self.entry(n)? {
            return None;
        }
        // Largest i with entry(i) <= pc. A damaged, unsorted table gives a wrong answer
        // (checked below), never a loop: the range halves each round.
        let (mut lo, mut hi) = (0usize, n);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)? <= pc {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (self.entry(lo)? <= pc && pc < self.entry(lo + 1)?).then_some(lo)
    }

    /// Fixed fields before the tail (funcID, flag, pad, nfuncdata), after the entry field.
    fn fixed_words(&self) -> usize {
        match self.h.version {
            Version::Go12 => 7,
            Version::Go116 | Version::Go118 => 8,
            Version::Go120 => 9,
        }
    }

    fn entry_field_size(&self) -> usize {
        match self.h.version {
            Version::Go12 | Version::Go116 => self.h.ptr_size as usize,
            Version::Go118 | Version::Go120 => 4,
        }
    }

    /// The record of function `i`, checked against the function table's entry.
    pub(super) fn func(&self, i: usize) -> Option<Func> {
        if i >= self.h.nfunc {
            return None;
        }
        let entry = self.entry(i)?;
        let end = self.entry(i + 1)?;
        let at = self.record_offset(i)?;
        // Inside the table, so the small field offsets added below cannot overflow.
        if at >= self.raw.len() {
            return None;
        }
        let base = at + self.entry_field_size();
        let word = |k: usize| self.raw.u32(base + 4 * k);
        let record_entry = match self.h.version {
            Version::Go12 | Version::Go116 => self.raw.word(at, self.h.ptr_size)?,
            Version::Go118 | Version::Go120 => self
                .h
                .text_start
                .checked_add(u64::from(self.raw.u32(at)?))?,
        };
        // A record that disagrees with the table is damage: refuse it rather than guess.
        if record_entry != entry || end < entry {
            return None;
        }
        let tail = base + 4 * self.fixed_words();
        let legacy = self.h.version == Version::Go12;
        Some(Func {
            entry,
            end,
            name_off: word(0)?,
            pcsp: word(3)?,
            pcfile: word(4)?,
            pcln: word(5)?,
            npcdata: word(6)?,
            cu_offset: if legacy { 0 } else { word(7)? },
            // Go 1.2-1.15 records have no flags; Go 1.16 has padding here, which reads 0.
            flag: if legacy { 0 } else { self.raw.u8(tail + 1)? },
            // Older 1.2-era records kept nfuncdata as an int32 elsewhere; inline trees are
            // only read for 1.16+, so the legacy count is not needed.
            nfuncdata: if legacy { 0 } else { self.raw.u8(tail + 3)? },
            pcdata_at: tail + 4,
        })
    }

    /// The function's name bytes, as stored.
    pub(super) fn name(&self, name_off: u32) -> Option<&'a [u8]> {
        self.raw
            .cstr(self.h.funcnames.checked_add(name_off as usize)?)
    }

    /// Value of one of the function's pc-value tables (`off` relative to the pc-value area).
    pub(super) fn pcvalue(&self, f: &Func, off: u32, pc: u64) -> Option<i32> {
        // Offset 0 means "no table".
        if off == 0 {
            return None;
        }
        let bytes = self.raw.tail(self.h.pctab.checked_add(off as usize)?)?;
        pcvalue::value_at(bytes, f.entry, self.h.quantum, pc)
    }

    /// Table offset of pcdata table `slot`, if the function has one.
    pub(super) fn pcdata_table(&self, f: &Func, slot: u32) -> Option<u32> {
        if slot >= f.npcdata {
            return None;
        }
        self.raw.u32(f.pcdata_at.checked_add(4 * slot as usize)?)
    }

    /// Raw funcdata slot `slot`: an offset from `go:func.*` (Go 1.18+) or an address.
    /// `None` when absent.
    pub(super) fn funcdata(&self, f: &Func, slot: u8) -> Option<u64> {
        if slot >= f.nfuncdata || self.h.version == Version::Go12 {
            return None;
        }
        let start = f.pcdata_at.checked_add(4 * f.npcdata as usize)?;
        if self.h.funcdata_is_offset() {
            let v = self.raw.u32(start + 4 * slot as usize)?;
            (v != u32::MAX).then_some(u64::from(v))
        } else {
            let ps = self.h.ptr_size as usize;
            // The runtime aligns the pointer array by address, not by table offset.
            let pad = if ps == 8 && (self.addr.wrapping_add(start as u64) & 4) != 0 {
                4
            } else {
                0
            };
            let v = self
                .raw
                .word(start + pad + ps * slot as usize, self.h.ptr_size)?;
            (v != 0).then_some(v)
        }
    }

    /// End of the record of `f` (with room for pointer alignment), for sizing a table found
    /// without its length.
    pub(super) fn record_end(&self, f: &Func) -> usize {
        let slots = if self.h.funcdata_is_offset() {
            4
        } else {
            self.h.ptr_size as usize
        };
        let arrays = 4 * f.npcdata as usize + slots * f.nfuncdata as usize + 4;
        f.pcdata_at.saturating_add(arrays)
    }

    /// Name bytes of file number `fileno` in compilation unit `cu` (Go 1.16+), or in the
    /// single file table (Go 1.2).
    pub(super) fn file(&self, cu: u32, fileno: i32) -> Option<&'a [u8]> {
        let fileno = u32::try_from(fileno).ok()?;
        let name_at = if self.h.version == Version::Go12 {
            // Entry 0 holds the count; file numbers start at 1.
            let nfiles = self.raw.u32(self.h.filetab)?;
            if fileno == 0 || fileno >= nfiles {
                return None;
            }
            self.raw
                .u32(self.h.filetab.checked_add(4 * fileno as usize)?)? as usize
        } else {
            let idx = (cu as usize).checked_add(fileno as usize)?;
            let off = self
                .raw
                .u32(self.h.cutab.checked_add(idx.checked_mul(4)?)?)?;
            if off == u32::MAX {
                return None;
            }
            self.h.filetab.checked_add(off as usize)?
        };
        self.raw.cstr(name_at)
    }

    /// File and line of `pc` in `f`, from its pcfile and pcln tables.
    pub(super) fn file_line(&self, f: &Func, pc: u64) -> (Option<&'a [u8]>, Option<u32>) {
        let file = self
            .pcvalue(f, f.pcfile, pc)
            .and_then(|n| self.file(f.cu_offset, n));
        let line = self
            .pcvalue(f, f.pcln, pc)
            .and_then(|l| u32::try_from(l).ok());
        (file, line)
    }
}
