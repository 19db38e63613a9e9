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

/// A copy of stack memory starting at `base`.
pub struct StackCopy {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl StackMemory for StackCopy {
    fn read_u64(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        let word = self.bytes.get(off..off.checked_add(8)?)?;
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
pub fn segment_bias(segments: &[(u64, u64, u64)], start: u64, offset: u64) -> Option<u64> {
    let &(seg_off, _, seg_vaddr) = segments
        .iter()
        .find(|&&(off, size, _)| off <= offset && offset < off + size.max(1))?;
    // vaddr(start) = seg_vaddr + (offset - seg_off)
    Some(start.wrapping_sub(seg_vaddr.wrapping_add(offset - seg_off)))
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
                    Cfa::Unsupported | Cfa::None => unreachable!("filtered above"),
                };
                let read_at = |o: i32| mem.read_u64(cfa.wrapping_add_signed(i64::from(o)));
                let ra = match row.ra {
                    Saved::AtCfa(o) => read_at(o),
                    // Only the innermost frame can still have it in the link register.
                    Saved::Unchanged if frames.len() == 1 => Some(r.lr),
                    _ => None,
                };
                let fp = match row.fp {
                    Saved::AtCfa(o) => read_at(o),
                    Saved::Unchanged => Some(r.fp),
                    _ => None,
                };
                match (ra, fp) {
                    (Some(ip), Some(fp)) => Regs {
                        ip,
                        sp: cfa,
                        fp,
                        lr: 0,
                    },
                    _ => break,
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
    use std::collections::HashMap;
    use std::process::Command;

    /// Builds the fixture without frame pointers and returns its path.
    fn build_fixture(dir: &std::path::Path) -> std::path::PathBuf {
        let src = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/workloads/unwind_chain.c"
        );
        let out = dir.join("unwind_chain");
        let status = Command::new("cc")
            .args(["-O2", "-g", "-fomit-frame-pointer", "-o"])
            .arg(&out)
            .arg(src)
            .status()
            .expect("cc runs");
        assert!(status.success());
        out
    }

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

    #[test]
    fn unwinds_a_program_without_frame_pointers_through_libc() {
        let dir = std::env::temp_dir().join(format!("rprof-unwind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = build_fixture(&dir);
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
        let _ = child.kill();
        let _ = child.wait();

        let sym = crate::symbolize::Symbolizer::new();
        let names: Vec<String> = frames
            .iter()
            .enumerate()
            .map(|(i, &ip)| {
                let a = if i == 0 { ip } else { ip - 1 };
                info.mapping_of(a)
                    .and_then(|m| {
                        sym.user(&m.file.open_path, &[m.file_offset_of(a)])
                            .remove(0)
                            .last()
                            .map(|f| f.name.clone())
                    })
                    .unwrap_or_else(|| format!("{a:#x}"))
            })
            .collect();
        std::fs::remove_dir_all(&dir).ok();
        let chain = ["leaf", "middle", "outer", "main"];
        let pos: Vec<Option<usize>> = chain
            .iter()
            .map(|c| names.iter().position(|n| n == c))
            .collect();
        assert!(
            pos.iter().all(Option::is_some) && pos.windows(2).all(|w| w[0] < w[1]),
            "expected {chain:?} in order, got {names:?}"
        );
        // It reached the C runtime's entry, through libc and the FP-less binary.
        assert!(
            names.iter().any(|n| n.contains("libc_start")),
            "stack stops early: {names:?}"
        );
    }

    #[test]
    fn stack_copy_reads_only_what_it_holds() {
        let s = StackCopy {
            base: 0x1000,
            bytes: (0u8..16).collect(),
        };
        assert_eq!(s.read_u64(0x1000), Some(0x0706050403020100));
        assert_eq!(s.read_u64(0x1009), None);
        assert_eq!(s.read_u64(0xfff), None);
    }
}
