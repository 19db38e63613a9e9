//! Unwinding stacks recorded from live processes: an unwind table per mapped file, built
//! the first time one of its processes needs it and kept for the others, and each
//! process's executable mappings as [`Module`]s for [`replay::unwind`].
use std::collections::HashMap;

use super::replay::{self, Module, Regs, StackMemory};
use super::table::UnwindTable;
use crate::procs::{ExecMapping, ProcessInfo};

/// A file's table and its loadable segments, which give each mapping's bias.
struct FileUnwind {
    table: UnwindTable,
    /// (file offset, file size, virtual address) of each segment.
    segments: Vec<(u64, u64, u64)>,
}

impl FileUnwind {
    fn read(path: &std::path::Path) -> Option<Self> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        Some(Self {
            table: UnwindTable::from_elf(&data).ok()?,
            segments: replay::segments(&file),
        })
    }

    /// What to subtract from a process address in mapping `m` to get a table address.
    fn bias(&self, m: &ExecMapping) -> Option<u64> {
        replay::segment_bias(&self.segments, m.start, m.file_offset)
    }
}

/// Unwind tables by the file they came from; `None` for a file without usable CFI.
#[derive(Default)]
pub struct UnwindCache {
    files: HashMap<std::path::PathBuf, Option<FileUnwind>>,
}

impl UnwindCache {
    /// Unwinds up to `max` frames of a stack of the process `info` describes.
    pub fn unwind(
        &mut self,
        info: &ProcessInfo,
        regs: Regs,
        mem: &impl StackMemory,
        max: usize,
    ) -> Vec<u64> {
        for m in info.mappings() {
            self.files
                .entry(m.file.open_path.clone())
                .or_insert_with(|| FileUnwind::read(&m.file.open_path));
        }
        let modules: Vec<Module> = info
            .mappings()
            .iter()
            .filter_map(|m| {
                let f = self.files.get(&m.file.open_path)?.as_ref()?;
                Some(Module {
                    start: m.start,
                    end: m.end,
                    bias: f.bias(m)?,
                    table: &f.table,
                })
            })
            .collect();
        replay::unwind(&modules, regs, mem, max)
    }
}
