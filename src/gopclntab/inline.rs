//! Inline trees: which inlined calls a pc sits in.
//!
//! A function with inlined calls has a tree (funcdata slot 3) of one entry per inlined call,
//! and a pcdata table (slot 2) giving, per pc, the index of the innermost inlined call or -1.
//! Walking outward from that entry reaches the physical function.
//!
//! Entries changed in Go 1.20:
//! - Go 1.12–1.19, 20 bytes: `parent: i16, funcID: u8, _: u8, file: i32, line: i32,
//!   nameOff: i32, parentPc: i32`. The caller is entry `parent`, and the call site is
//!   `file` (a per-CU file number) and `line`.
//! - Go 1.20+, 16 bytes: `funcID: u8, _: [3]u8, nameOff: i32, parentPc: i32,
//!   startLine: i32`. There is no parent link: the caller is whatever inline index the
//!   pcdata table gives at `entry + parentPc`, and the call site is that pc's file and line.

use super::raw::Raw;

/// Deepest chain of inlined calls we follow; deeper means a damaged (cyclic) tree.
pub(super) const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Go 1.12–1.19.
    WithParent,
    /// Go 1.20+.
    ByParentPc,
}

impl Layout {
    pub(super) fn entry_size(self) -> usize {
        match self {
            Layout::WithParent => 20,
            Layout::ByParentPc => 16,
        }
    }
}

/// One inlined call.
#[derive(Clone, Copy, Debug)]
pub(super) struct InlinedCall {
    /// Name offset of the inlined (called) function.
    pub name_off: u32,
    /// Offset from the physical function's entry of an instruction positioned at the call.
    pub parent_pc: u32,
    /// Go 1.12–1.19 only: index of the caller entry (negative: the physical function),
    /// and the call site's per-CU file number and line.
    pub parent: Option<i16>,
    pub file: i32,
    pub line: i32,
}

/// A function's tree: `raw` starts at its first entry.
pub(super) struct Tree<'a> {
    pub raw: Raw<'a>,
    pub layout: Layout,
}

impl Tree<'_> {
    pub(super) fn get(&self, index: i32) -> Option<InlinedCall> {
        let at = usize::try_from(index)
            .ok()?
            .checked_mul(self.layout.entry_size())?;
        let r = &self.raw;
        Some(match self.layout {
            Layout::WithParent => InlinedCall {
                parent: Some(r.i16(at)?),
                file: r.i32(at + 4)?,
                line: r.i32(at + 8)?,
                name_off: r.u32(at + 12)?,
                parent_pc: r.u32(at + 16)?,
            },
            Layout::ByParentPc => InlinedCall {
                parent: None,
                file: -1,
                line: -1,
                name_off: r.u32(at + 4)?,
                parent_pc: r.u32(at + 8)?,
            },
        })
    }
}
