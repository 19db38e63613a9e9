//! Walks a recorded user stack with [`UnwindTable`]s: from the registers of the innermost
//! frame, each step finds the row for the current address, computes the caller's stack
//! pointer (CFA), return address and frame pointer, and continues from the caller. Where no
//! table covers an address, it falls back to one frame-pointer step.
use object::{Object, ObjectSegment};

use super::table::{Cfa, Saved, UnwindRow, UnwindTable};

/// The registers an unwind starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    pub ip: u64,
    pub sp: u64,
    pub fp: u64,
    /// The link register (arm64), for a return address not yet saved; 0 on x86-64.
    pub lr: u64,
}

/// Memory of the stack being unwound.
pub trait StackMemory {
    fn read_u64(&self, addr: u64) -> Option<u64>;
}

/// A copy of stack memory starting at `base`, owned or borrowed.
pub struct StackCopy<B = Vec<u8>> {
    pub base: u64,
    pub bytes: B,
}

impl<B: AsRef<[u8]>> StackMemory for StackCopy<B> {
    fn read_u64(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        let word = self.bytes.as_ref().get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    }
}

/// A mapped code region and its table: a process address `a` in `[start, end)` is table
/// address `a - bias`.
pub struct Module<'t> {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
    pub table: &'t UnwindTable,
}

/// The bias of a mapping of `elf` at `start` from file offset `offset`: the segment that
/// holds that offset says which virtual address the mapping's first byte has.
pub fn mapping_bias(elf: &[u8], start: u64, offset: u64) -> Option<u64> {
    let file = object::File::parse(elf).ok()?;
    segment_bias(&segments(&file), start, offset)
}

/// (file offset, file size, virtual address) of each segment of an ELF file.
pub fn segments(file: &object::File) -> Vec<(u64, u64, u64)> {
    file.segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, size, s.address())
        })
        .collect()
}

/// [`mapping_bias`] from a file's [`segments`].
///
/// A segment is mapped from its offset rounded down to a page. Linkers such as LLD pack
/// segments without page alignment, so the page a mapping starts at can hold the end of the
/// segment before too: the segment that starts in that page is the one mapped.
pub fn segment_bias(segments: &[(u64, u64, u64)], start: u64, offset: u64) -> Option<u64> {
    const PAGE: u64 = 4096;
    let &(seg_off, _, seg_vaddr) = segments
        .iter()
        .find(|&&(off, size, _)| size > 0 && off & !(PAGE - 1) == offset)
        .or_else(|| {
            segments
                .iter()
                .find(|&&(off, size, _)| off <= offset && offset < off + size.max(1))
        })?;
    // vaddr(start) = seg_vaddr + (offset - seg_off), where offset may be below seg_off.
    Some(start.wrapping_sub(seg_vaddr.wrapping_sub(seg_off).wrapping_add(offset)))
}

/// Unwinds up to `max` frames; returns the instruction pointer of each, innermost first
/// (callers as return addresses, as the kernel reports them).
pub fn unwind(modules: &[Module], regs: Regs, mem: &impl StackMemory, max: usize) -> Vec<u64> {
    unwind_with(
        |addr| {
            let m = modules.iter().find(|m| m.start <= addr && addr < m.end)?;
            m.table.lookup(addr.wrapping_sub(m.bias)).copied()
        },
        regs,
        mem,
        max,
    )
}

/// [`unwind`] with the rows found by `row_at` (a process address in, the row covering it
/// out), so tables can be found, or built, only for the code a stack passes through.
pub fn unwind_with(
    mut row_at: impl FnMut(u64) -> Option<UnwindRow>,
    regs: Regs,
    mem: &impl StackMemory,
    max: usize,
) -> Vec<u64> {
    let mut frames = Vec::new();
    let mut r = regs;
    while frames.len() < max && r.ip != 0 {
        frames.push(r.ip);
        // Callers' addresses are return addresses: look up the call instruction before them.
        let lookup = if frames.len() == 1 { r.ip } else { r.ip - 1 };
        let row = row_at(lookup);
        let next = match row {
            Some(row) if row.cfa != Cfa::Unsupported => {
                let cfa = match row.cfa {
                    Cfa::Sp(o) => r.sp.wrapping_add_signed(i64::from(o)),
                    Cfa::Fp(o) => r.fp.wrapping_add_signed(i64::from(o)),
                    Cfa::Plt { threshold } => {
                        // Stubs are 16-byte aligned, in the file as in memory.
                        let pushed = if r.ip & 15 >= u64::from(threshold) {
                            8
                        } else {
                            0
                        };
                        r.sp.wrapping_add(8 + pushed)
                    }
                    Cfa::Unsupported | Cfa::None => unreachable!("filtered above"),
                };
                let read_at = |o: i32| mem.read_u64(cfa.wrapping_add_signed(i64::from(o)));
                let ra = match row.ra {
                    Saved::AtCfa(o) => read_at(o),
                    // Only the innermost frame can still have it in the link register.
                    Saved::Unchanged if frames.len() == 1 => Some(r.lr),
                    _ => None,
                };
                // A saved FP can lie below the stack pointer (an epilogue has popped it), out
                // of the copy. Callers that need it fail on their own; most do not.
                let fp = match row.fp {
                    Saved::AtCfa(o) => read_at(o).unwrap_or(0),
                    Saved::Unchanged => r.fp,
                    _ => 0,
                };
                match ra {
                    Some(ip) => Regs {
                        ip,
                        sp: cfa,
                        fp,
                        lr: 0,
                    },
                    None => break,
                }
            }
            // No usable rule: one frame-pointer step.
            _ => match (mem.read_u64(r.fp), mem.read_u64(r.fp.wrapping_add(8))) {
                (Some(fp), Some(ip)) => Regs {
                    ip,
                    sp: r.fp.wrapping_add(16),
                    fp,
                    lr: 0,
                },
                _ => break,
            },
        };
        // The stack grows down, so callers' frames are higher; anything else is a loop.
        if next.sp <= r.sp {
            break;
        }
        r = next;
    }
    frames
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::unwind::fixtures::TempDir;
    use crate::unwind::table::UnwindRow;
    use std::collections::HashMap;
    use std::process::Command;

    /// Stops the child with ptrace and copies its registers and stack.
    fn snapshot(pid: i32) -> (Regs, StackCopy) {
        // SAFETY: ptrace calls on our own child with valid pointers.
        unsafe {
            assert_eq!(libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0), 0);
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
            let mut status = 0;
            libc::waitpid(pid, &mut status, libc::__WALL);
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            assert_eq!(libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs), 0);
            let mut bytes = vec![0u8; 64 * 1024];
            let f = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
            let n = std::os::unix::fs::FileExt::read_at(&f, &mut bytes, regs.rsp).unwrap();
            bytes.truncate(n);
            libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
            (
                Regs {
                    ip: regs.rip,
                    sp: regs.rsp,
                    fp: regs.rbp,
                    lr: 0,
                },
                StackCopy {
                    base: regs.rsp,
                    bytes,
                },
            )
        }
    }

    /// One frame of an unwound snapshot.
    #[derive(Debug)]
    struct Frame {
        /// Its function, or its address where it has no symbol.
        name: String,
        /// The row that unwound it to its caller; `None` where the walk used frame pointers.
        row: Option<UnwindRow>,
    }

    /// Builds the fixture `name`, runs it until it parks in its leaf, snapshots its
    /// registers and stack with ptrace, and unwinds the snapshot in user space with the
    /// tables of the files it maps. The unwinding runs after the process is gone, from the
    /// copies alone.
    fn unwind_parked_fixture(name: &str, frame_pointers: bool) -> Vec<Frame> {
        // One directory per build: the tests with and without frame pointers run at once.
        let dir = TempDir::new(&format!("replay-{name}-{frame_pointers}"));
        let exe = dir.build(name, frame_pointers);
        let mut child = Command::new(&exe)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The fixture prints once it is parked in its leaf.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid = child.id() as i32;
        let (regs, stack) = snapshot(pid);

        let mut procs = crate::procs::ProcessTable::default();
        procs.snapshot(pid as u32, false).unwrap();
        let info = procs.get(pid as u32).unwrap();
        // A table per mapped file, and a module per mapping.
        let mut tables: HashMap<String, (Vec<u8>, UnwindTable)> = HashMap::new();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let mut modules_spec = Vec::new();
        for line in maps.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || !f[1].contains('x') || !f[5].starts_with('/') {
                continue;
            }
            let (s, e) = f[0].split_once('-').unwrap();
            let (start, end) = (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
            );
            let offset = u64::from_str_radix(f[2], 16).unwrap();
            let path = f[5].to_string();
            tables.entry(path.clone()).or_insert_with(|| {
                let data = std::fs::read(&path).unwrap();
                let t = UnwindTable::from_elf(&data).unwrap();
                (data, t)
            });
            modules_spec.push((start, end, offset, path));
        }
        let _ = child.kill();
        let _ = child.wait();

        let modules: Vec<Module> = modules_spec
            .iter()
            .map(|(start, end, offset, path)| {
                let (data, table) = &tables[path];
                Module {
                    start: *start,
                    end: *end,
                    bias: mapping_bias(data, *start, *offset).unwrap(),
                    table,
                }
            })
            .collect();
        let frames = unwind(&modules, regs, &stack, 64);
        assert_eq!(
            frames,
            unwind(&modules, regs, &stack, 64),
            "the same snapshot unwinds the same way"
        );

        let sym = crate::symbolize::Symbolizer::new();
        let frames = frames
            .iter()
            .enumerate()
            .map(|(i, &ip)| {
                // Callers' addresses are return addresses: the call is just before.
                let a = if i == 0 { ip } else { ip - 1 };
                let name = info
                    .mapping_of(a)
                    .and_then(|m| {
                        sym.user(&m.file.open_path, &[m.file_offset_of(a)])
                            .remove(0)
                            .last()
                            .map(|f| f.name.clone())
                    })
                    .unwrap_or_else(|| format!("{a:#x}"));
                let row = modules
                    .iter()
                    .find(|m| m.start <= a && a < m.end)
                    .and_then(|m| m.table.lookup(a - m.bias))
                    .copied();
                Frame { name, row }
            })
            .collect();
        frames
    }

    /// The fixtures with the chain main -> outer -> middle -> leaf: without stack frames of
    /// their own, and with (the stack pointer far from the frame pointer and the CFA).
    const CHAIN_FIXTURES: [&str; 2] = ["unwind_chain", "unwind_frames"];

    /// The fixture's chain is there in order, each of its frames unwound by a row for which
    /// `expected_cfa` holds, and the walk reached the C runtime's entry through libc.
    fn check_chain(fixture: &str, frames: &[Frame], expected_cfa: impl Fn(Cfa) -> bool) {
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        let chain = ["leaf", "middle", "outer", "main"];
        let pos: Vec<Option<usize>> = chain
            .iter()
            .map(|c| names.iter().position(|n| n == c))
            .collect();
        assert!(
            pos.iter().all(Option::is_some) && pos.windows(2).all(|w| w[0] < w[1]),
            "{fixture}: expected {chain:?} in order, got {names:?}"
        );
        for f in frames.iter().filter(|f| chain.contains(&f.name.as_str())) {
            assert!(
                f.row.is_some_and(|r| expected_cfa(r.cfa)),
                "{fixture}: {} unwound by {:?}: {frames:?}",
                f.name,
                f.row
            );
        }
        assert!(
            names.iter().any(|n| n.contains("libc_start")),
            "{fixture}: stack stops early: {names:?}"
        );
    }

    #[test]
    fn unwinds_a_program_without_frame_pointers_through_libc() {
        for fixture in CHAIN_FIXTURES {
            let frames = unwind_parked_fixture(fixture, false);
            // Only the call frame information knows these frames' sizes.
            check_chain(fixture, &frames, |cfa| matches!(cfa, Cfa::Sp(_)));
        }
    }

    #[test]
    fn unwinds_a_program_with_frame_pointers_through_libc() {
        for fixture in CHAIN_FIXTURES {
            let frames = unwind_parked_fixture(fixture, true);
            // The rows of code with frame pointers find the CFA from rbp.
            check_chain(fixture, &frames, |cfa| cfa == Cfa::Fp(16));
        }
    }

    #[test]
    fn bias_of_segments_packed_without_page_alignment() {
        // LLD's layout: R at 0, R E from 0x171b0 at vaddr 0x181b0; the executable mapping
        // starts at offset 0x17000 and address 0x564247b47000 (vaddr 0x18000).
        let segments = [(0, 0x171ac, 0), (0x171b0, 0x3fa40, 0x181b0)];
        let start = 0x5642_47b4_7000;
        assert_eq!(
            segment_bias(&segments, start, 0x17000),
            Some(start - 0x18000)
        );
        // GNU ld's page-aligned layout.
        let segments = [(0, 0x1000, 0), (0x1000, 0x2000, 0x1000)];
        assert_eq!(segment_bias(&segments, 0x40_1000, 0x1000), Some(0x40_0000));
    }

    #[test]
    fn stack_copy_reads_only_what_it_holds() {
        let s = StackCopy {
            base: 0x1000,
            bytes: (0u8..16).collect::<Vec<u8>>(),
        };
        assert_eq!(s.read_u64(0x1000), Some(0x0706050403020100));
        assert_eq!(s.read_u64(0x1009), None);
        assert_eq!(s.read_u64(0xfff), None);
    }
}
