//! Building a [`GoTable`] from an image: copy and check the table, size it, copy the inline
//! trees it refers to, and note the functions where stacks end.

use super::elf::{Candidate, Image};
use super::functab::{FuncTab, FUNCDATA_INL_TREE, PCDATA_INL_TREE_INDEX};
use super::header::{Header, Version};
use super::inline;
use super::pcvalue::Spans;
use super::raw::Raw;
use super::{GoTable, GoTableError, InlineRegion, StackEnd};

/// Largest inline-tree region we copy; the trees of the largest Go binaries take a few MiB.
const MAX_INLINE_REGION: u64 = 256 << 20;

/// Where goroutine and thread stacks begin: what Go 1.17+ flags TOPFRAME. Names stand in
/// for the flag in tables that have none (Go 1.16 and older).
const TOPFRAME_NAMES: &[&str] = &["runtime.goexit", "runtime.mstart", "runtime.rt0_go"];
/// Stack switches and other SP writes that pcsp cannot describe: what Go 1.17+ flags
/// SPWRITE, for the same older tables.
const SPWRITE_NAMES: &[&str] = &[
    "runtime.mcall",
    "runtime.morestack",
    "runtime.systemstack_switch",
    "runtime.systemstack",
    "runtime.asmcgocall",
    "runtime.gogo",
    "runtime.sigreturn",
];

pub(super) fn from_image(img: &Image<'_>) -> Result<Option<GoTable>, GoTableError> {
    for cand in img.candidates() {
        let Some(tab) = img.copy(cand.addr, cand.len) else {
            continue;
        };
        match build(img, tab, &cand) {
            Ok(t) => return Ok(Some(t)),
            Err(e) if cand.named => return Err(e),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// A table from its bytes (relocations applied), which start at `cand.addr` in `img`.
pub(super) fn build(
    img: &Image<'_>,
    mut tab: Vec<u8>,
    cand: &Candidate,
) -> Result<GoTable, GoTableError> {
    let raw = Raw::new(&tab, img.big_endian);
    let header = Header::parse(raw)?;
    if header.ptr_size != img.ptr_size {
        return Err(GoTableError::Malformed(
            "pointer size differs from the ELF class",
        ));
    }
    let ft = FuncTab {
        raw,
        h: &header,
        addr: cand.addr,
    };
    // A real table's first and last records agree with the function table; a chance match of
    // the magic does not.
    if ft.func(0).is_none() || ft.func(header.nfunc - 1).is_none() {
        return Err(GoTableError::Malformed(
            "function records disagree with the function table",
        ));
    }

    let gofunc = if header.version >= Version::Go118 {
        img.gofunc(
            header.version,
            cand.addr,
            header.funcnames as u64,
            header.text_start,
        )
    } else {
        None
    };
    let tree_layout = match header.version {
        Version::Go12 => None,
        Version::Go116 | Version::Go118 => Some(inline::Layout::WithParent),
        Version::Go120 => Some(inline::Layout::ByParentPc),
    };

    // One pass over every record: the table's true end (for a table found by scanning),
    // the span of inline trees, and stack-ending functions.
    let mut end = 0usize;
    let mut trees: Option<(u64, u64, usize)> = None; // lowest, highest, function of highest
    let mut flagged = false;
    let mut by_name = Vec::new();
    for i in 0..header.nfunc {
        let Some(f) = ft.func(i) else { continue };
        end = end.max(ft.record_end(&f));
        flagged |= f.flag != 0;
        if let Some(name) = ft.name(f.name_off) {
            let is = |names: &[&str]| names.iter().any(|s| s.as_bytes() == name);
            if is(TOPFRAME_NAMES) {
                by_name.push(StackEnd {
                    entry: f.entry,
                    sp_write: false,
                });
            } else if is(SPWRITE_NAMES) {
                by_name.push(StackEnd {
                    entry: f.entry,
                    sp_write: true,
                });
            }
        }
        if tree_layout.is_none() {
            continue;
        }
        let addr = match ft.funcdata(&f, FUNCDATA_INL_TREE) {
            Some(off) if header.funcdata_is_offset() => gofunc.and_then(|g| g.checked_add(off)),
            other => other,
        };
        if let Some(a) = addr {
            trees = Some(match trees {
                None => (a, a, i),
                Some((lo, hi, hi_func)) => (lo.min(a), a.max(hi), if a > hi { i } else { hi_func }),
            });
        }
    }
    let inline = match (trees, tree_layout) {
        (Some((lo, hi, hi_func)), Some(layout)) => copy_trees(img, &ft, lo, hi, hi_func, layout)
            .map(|data| InlineRegion {
                addr: lo,
                data,
                layout,
            }),
        _ => None,
    };
    // Tables with flags say exactly which functions end stacks; names only stand in where
    // no function carries a flag (Go 1.16 and older).
    if flagged {
        by_name.clear();
    }
    by_name.sort_unstable_by_key(|s| s.entry);
    by_name.shrink_to_fit();

    // A scanned table ends with its last record (Go 1.16+ keep records last), but the copy
    // ran to the end of the segment.
    if cand.len.is_none() && header.version >= Version::Go116 && end <= tab.len() {
        tab.truncate(end);
        tab.shrink_to_fit();
    }
    let ft = FuncTab {
        raw: Raw::new(&tab, img.big_endian),
        h: &header,
        addr: cand.addr,
    };
    let text = (
        ft.entry(0).unwrap_or(0),
        ft.entry(header.nfunc).unwrap_or(0),
    );
    Ok(GoTable {
        tab_addr: cand.addr,
        big_endian: img.big_endian,
        text,
        gofunc,
        inline,
        stack_end_by_name: by_name,
        header,
        tab,
    })
}

/// Copies the bytes from the lowest inline tree to the end of the highest one. The highest
/// tree's length is not stored: it is one past the largest index its function's pcdata uses
/// (every entry is some pc's index, or before Go 1.20 the parent of one, and parents come
/// before their children).
fn copy_trees(
    img: &Image<'_>,
    ft: &FuncTab<'_>,
    lo: u64,
    hi: u64,
    hi_func: usize,
    layout: inline::Layout,
) -> Option<Vec<u8>> {
    let f = ft.func(hi_func)?;
    let table = ft.pcdata_table(&f, PCDATA_INL_TREE_INDEX)?;
    let bytes = ft.raw.tail(ft.h.pctab.checked_add(table as usize)?)?;
    let max_index = Spans::new(bytes, f.entry, ft.h.quantum)
        .map(|s| s.value)
        .max()?
        .max(0);
    let entries = u64::try_from(max_index).ok()? + 1;
    let end = hi.checked_add(entries.checked_mul(layout.entry_size() as u64)?)?;
    let len = end.checked_sub(lo)?;
    if len > MAX_INLINE_REGION {
        return None;
    }
    img.copy(lo, Some(len as usize))
}
