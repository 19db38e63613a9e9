//! Go's pc-line table (`.gopclntab`), read straight from an ELF image.
//!
//! Every Go binary carries this table, stripped or not, because the Go runtime needs it for
//! its own tracebacks and garbage collection. It gives us two things Go code otherwise lacks:
//! - **unwinding**: Go emits no `.eh_frame` for Go code; the table's per-function *pcsp*
//!   values say how far SP sits below its value at function entry at every pc.
//! - **symbolization** without ELF symbols or DWARF: function names, file and line, and the
//!   chain of inlined calls at a pc.
//!
//! # The model
//! A table is a header followed by sub-tables (the `header` module describes the layouts of Go
//! 1.2 through 1.20+). The *function table* is a sorted array of (entry pc, record offset), one
//! per function plus an end-of-text sentinel; a pc belongs to the function with the greatest
//! entry not above it. Each function *record* names its function (an offset into the name
//! table) and points to *pc-value tables* (module `pcvalue`): compact varint runs that give one
//! integer per pc range. Four matter here:
//! - *pcsp*: the SP delta, in bytes below the SP at entry. On amd64 the entry SP points at
//!   the return address the CALL pushed, so the return address is at `SP + sp_delta` and the
//!   caller's SP is `SP + sp_delta + 8`. On arm64 a call pushes nothing: the caller's SP is
//!   `SP + sp_delta`, and the return address is in LR while the delta is 0 (frameless leaves,
//!   or before the prologue) and saved at `0(SP)` once the prologue has allocated the frame.
//! - *pcfile*, *pcln*: a file number (per compilation unit, Go 1.16+) and a line.
//! - *pcdata 2*: the index of the innermost inlined call at each pc, or -1.
//!
//! Inlined calls live in a per-function *inline tree* (module `inline`), reached through the
//! record's funcdata slot 3. Each entry names the inlined function and gives a pc in the
//! physical function positioned at the call site; following entries outward ends at the
//! physical function. Hence [`GoTable::frames`] lists the innermost inlined function first
//! and the physical function last; each frame's line is the pc's line in that frame: the
//! pc's own line for the innermost frame, the call site's line for the ones around it.
//!
//! Records also carry flags (Go 1.17+): TOPFRAME marks where a stack begins (goexit,
//! mstart, rt0_go) and SPWRITE marks functions that set SP arbitrarily (stack switches such
//! as mcall, morestack, systemstack). An unwinder must stop at either. Tables without flags
//! (Go 1.16 and older) get the same answer from the functions' names.
//!
//! # Addresses
//! All addresses are ELF virtual addresses of the file, as in its program headers; callers
//! subtract a mapping's load bias first. A `GoTable` owns copies of the table and of the
//! inline trees, so it outlives the file bytes and is `Send + Sync`.
//!
//! # Damage
//! Every offset is checked, every varint read is bounded, inline walks stop at 64 frames,
//! and what is copied is bounded by the file's own size; a damaged table yields `None`,
//! fewer frames or an error, never a panic or a hang.
//!
//! Not covered: multiple text sections (binaries whose text exceeds one branch range on
//! ppc64/arm64 split it, and entry offsets then go through the module's text section map);
//! inline frames of Go 1.2–1.15 tables (their frames show the physical function only).

mod elf;
mod functab;
mod header;
mod inline;
mod load;
mod pcvalue;
mod raw;
#[cfg(test)]
mod tests;

use functab::{Func, FuncTab, FUNCDATA_INL_TREE, PCDATA_INL_TREE_INDEX};
use header::Header;
use raw::Raw;

/// Record flag: the function is where a stack begins (goexit, mstart, rt0_go).
const FLAG_TOPFRAME: u8 = 1;
/// Record flag: the function writes SP in a way pcsp cannot describe.
const FLAG_SPWRITE: u8 = 2;

/// Why a Go table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GoTableError {
    #[error("not an ELF file we can read: {0}")]
    Elf(#[from] object::Error),
    #[error("not an ELF file")]
    NotElf,
    #[error("unknown pclntab magic {0:#x}")]
    UnknownMagic(u32),
    #[error("malformed pclntab: {0}")]
    Malformed(&'static str),
}

/// What an unwinder needs about the function at a pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoUnwind {
    /// The function's entry pc.
    pub entry: u64,
    /// The next function's entry.
    pub end: u64,
    /// Bytes SP has moved below its value at entry (the return address a CALL pushed on
    /// amd64 not included; on arm64 the whole frame, including the saved LR at 0(SP)).
    pub sp_delta: u32,
    /// A stack ends here: stop unwinding.
    pub outermost: bool,
    /// It ends because the function writes SP arbitrarily (a stack switch, a C call), so
    /// the stack beyond it is unknown rather than complete. Go's own profiler stops here
    /// too; only in the innermost frame, before the write, would the delta still hold.
    pub sp_write: bool,
}

/// One frame at a pc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFrame {
    /// Function name as Go prints it (generic shape arguments shown as `[...]`).
    pub name: String,
    /// Source path as compiled (absolute, or module-relative with `-trimpath`); "?" if
    /// unknown.
    pub file: String,
    /// Line of the pc in this frame; 0 if unknown.
    pub line: u32,
    /// Inlined into the next frame outward.
    pub inlined: bool,
}

/// One function of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFunction {
    pub entry: u64,
    /// The next function's entry (or the end of text).
    pub end: u64,
    /// As in [`GoFrame::name`].
    pub name: String,
}

/// The pc-line table of one Go executable or shared object.
pub struct GoTable {
    tab: Vec<u8>,
    /// Address of `tab[0]`.
    tab_addr: u64,
    big_endian: bool,
    header: Header,
    text: (u64, u64),
    /// Base of funcdata offsets (Go 1.18+), when found.
    gofunc: Option<u64>,
    inline: Option<InlineRegion>,
    /// Stack-ending functions found by name, for tables without flags; sorted by entry.
    stack_end_by_name: Vec<StackEnd>,
}

/// A function that ends stacks, known by its name.
struct StackEnd {
    entry: u64,
    sp_write: bool,
}

/// Copied bytes holding every inline tree.
struct InlineRegion {
    addr: u64,
    data: Vec<u8>,
    layout: inline::Layout,
}

impl GoTable {
    /// The table of an ELF image (the whole file's bytes); `Ok(None)` when the file is not Go.
    pub fn from_elf(data: &[u8]) -> Result<Option<Self>, GoTableError> {
        // Every file a profile touches comes here: decide from the section headers alone
        // before reading a (100 MB, 100k relocations) library's relocations.
        if !elf::looks_like_go(data)? {
            return Ok(None);
        }
        let img = elf::Image::parse(data)?;
        load::from_image(&img)
    }

    /// Text range `[start, end)` the table covers, as ELF virtual addresses.
    pub fn text_range(&self) -> (u64, u64) {
        self.text
    }

    /// Bytes of memory held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.tab.capacity()
            + self.inline.as_ref().map_or(0, |r| r.data.capacity())
            + self.stack_end_by_name.capacity() * std::mem::size_of::<StackEnd>()
    }

    /// Unwind facts at `pc`; `None` outside Go text or where pcsp has no value (or a
    /// negative one). For a caller's frame pass the return address minus one: the call
    /// instruction, which has the same delta and is always inside the caller.
    pub fn unwind_at(&self, pc: u64) -> Option<GoUnwind> {
        let ft = self.functab();
        let f = ft.func(ft.find(pc)?)?;
        let sp_delta = u32::try_from(ft.pcvalue(&f, f.pcsp, pc)?).ok()?;
        let by_name = self
            .stack_end_by_name
            .binary_search_by_key(&f.entry, |s| s.entry)
            .ok()
            .map(|i| self.stack_end_by_name[i].sp_write);
        let sp_write = f.flag & FLAG_SPWRITE != 0 || by_name == Some(true);
        let outermost = f.flag & FLAG_TOPFRAME != 0 || sp_write || by_name.is_some();
        Some(GoUnwind {
            entry: f.entry,
            end: f.end,
            sp_delta,
            outermost,
            sp_write,
        })
    }

    /// Frames at `pc`, innermost (most deeply inlined) first, the physical function last;
    /// empty outside Go text. For a return address pass the address minus one, as Go does,
    /// to get the line of the call.
    pub fn frames(&self, pc: u64) -> Vec<GoFrame> {
        let ft = self.functab();
        let Some(f) = ft.find(pc).and_then(|i| ft.func(i)) else {
            return Vec::new();
        };
        let (mut file, mut line) = ft.file_line(&f, pc);
        let mut out = Vec::new();
        if let Some(tree) = self.tree(&ft, &f) {
            let mut index = self.inline_index(&ft, &f, pc);
            while index >= 0 && out.len() < inline::MAX_DEPTH {
                let Some(call) = tree.get(index) else { break };
                out.push(frame(ft.name(call.name_off), file, line, true));
                match call.parent {
                    // Go 1.12-1.19: the entry itself holds the call site and the caller.
                    Some(parent) => {
                        file = ft.file(f.cu_offset, call.file);
                        line = u32::try_from(call.line).ok();
                        index = i32::from(parent);
                    }
                    // Go 1.20+: the call site is a pc of the physical function.
                    None => {
                        let site = f.entry.saturating_add(u64::from(call.parent_pc));
                        (file, line) = ft.file_line(&f, site);
                        index = self.inline_index(&ft, &f, site);
                    }
                }
            }
        }
        out.push(frame(ft.name(f.name_off), file, line, false));
        out
    }

    /// Every function, in address order.
    pub fn functions(&self) -> impl Iterator<Item = GoFunction> + '_ {
        let ft = self.functab();
        (0..self.header.nfunc).filter_map(move |i| {
            let f = ft.func(i)?;
            Some(GoFunction {
                entry: f.entry,
                end: f.end,
                name: display_name(ft.name(f.name_off)?),
            })
        })
    }

    fn functab(&self) -> FuncTab<'_> {
        FuncTab {
            raw: Raw::new(&self.tab, self.big_endian),
            h: &self.header,
            addr: self.tab_addr,
        }
    }

    /// Inline-tree index at `pc`, -1 when not in inlined code.
    fn inline_index(&self, ft: &FuncTab<'_>, f: &Func, pc: u64) -> i32 {
        ft.pcdata_table(f, PCDATA_INL_TREE_INDEX)
            .and_then(|t| ft.pcvalue(f, t, pc))
            .unwrap_or(-1)
    }

    fn tree(&self, ft: &FuncTab<'_>, f: &Func) -> Option<inline::Tree<'_>> {
        let region = self.inline.as_ref()?;
        let slot = ft.funcdata(f, FUNCDATA_INL_TREE)?;
        let addr = if self.header.funcdata_is_offset() {
            self.gofunc?.checked_add(slot)?
        } else {
            slot
        };
        let off = usize::try_from(addr.checked_sub(region.addr)?).ok()?;
        Some(inline::Tree {
            raw: Raw::new(region.data.get(off..)?, self.big_endian),
            layout: region.layout,
        })
    }
}

fn frame(name: Option<&[u8]>, file: Option<&[u8]>, line: Option<u32>, inlined: bool) -> GoFrame {
    GoFrame {
        name: name.map_or_else(|| "?".to_owned(), display_name),
        file: file.map_or_else(
            || "?".to_owned(),
            |f| String::from_utf8_lossy(f).into_owned(),
        ),
        line: line.unwrap_or(0),
        inlined,
    }
}

/// The name as Go's tracebacks and profiles print it: a generic instantiation's shape
/// arguments, `F[go.shape.int]`, become `F[...]`, so instantiations sharing code share a name.
fn display_name(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match (name.find('['), name.rfind(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}[...]{}", &name[..open], &name[close + 1..])
        }
        _ => name.into_owned(),
    }
}
