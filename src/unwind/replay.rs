//! Walks a recorded user stack with [`UnwindTable`]s: from the registers of the innermost
//! frame, each step finds the row for the current address, computes the caller's stack
//! pointer (CFA), return address and frame pointer, and continues from the caller.
//!
//! Where no row applies, the walk still goes on where it safely can:
//! - a signal trampoline (found by its FDE's `S` augmentation, or by its code) restores the
//!   interrupted registers from the `ucontext` the kernel saved on the stack;
//! - the innermost frame in code no FDE covers (glibc's `clone3` and `clone` end their FDE
//!   before the `syscall`) takes its return address from the top of the stack (x86-64) or the
//!   link register (arm64), when that address follows a call instruction;
//! - anything else takes one frame-pointer step (JIT code keeps frame pointers); in JIT code
//!   where that fails, the return address is searched for a few words above the stack
//!   pointer (a stub with no frame of its own, as CPython's perf trampolines).
//!
//! Frames come out innermost first, callers as return addresses, as the kernel reports them,
//! so that looking up `frame - 1` finds the call. A frame whose address is exact instead (the
//! one a signal interrupted, or the trampoline itself) is given as `address + 1`, so the same
//! rule finds the address itself. Every walk says why it ended ([`StackEnd`]).
use object::{Object, ObjectSegment};

use super::end::StackEnd;
use super::table::{Arch, Cfa, Saved, UnwindRow, UnwindTable};

/// The registers an unwind starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    pub ip: u64,
    pub sp: u64,
    pub fp: u64,
    /// The register a return address is held in until saved: arm64's link register,
    /// x86-64's rdi (glibc's `vfork`; see [`Arch::link_register`]).
    pub lr: u64,
}

/// Memory of the stack being unwound.
pub trait StackMemory {
    fn read_u64(&self, addr: u64) -> Option<u64>;

    /// Whether `addr` lies just past the memory held (the stack goes on there, uncopied).
    fn past_end(&self, _addr: u64) -> bool {
        false
    }
}

/// A copy of stack memory starting at `base`, owned or borrowed.
pub struct StackCopy<B = Vec<u8>> {
    pub base: u64,
    pub bytes: B,
}

/// How far above a copy's end an address still counts as the uncopied rest of the stack
/// (the usual stack size limit); further is a bad address.
const STACK_REST: u64 = 8 << 20;

impl<B: AsRef<[u8]>> StackMemory for StackCopy<B> {
    fn read_u64(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        let word = self.bytes.as_ref().get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    }

    fn past_end(&self, addr: u64) -> bool {
        let end = self.base.saturating_add(self.bytes.as_ref().len() as u64);
        addr.saturating_add(8) > end && addr < end.saturating_add(STACK_REST)
    }
}

/// What the unwinder finds at a code address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Call frame information covers it.
    Row(UnwindRow),
    /// A file's code that no row covers (or whose rows are not at hand).
    NoRow,
    /// Executable memory that no file backs (JIT code).
    Anonymous,
    /// Not code of this process.
    Unmapped,
}

/// The code of the process whose stack is walked.
pub trait CodeMap {
    /// What covers `addr`.
    fn code_at(&mut self, addr: u64) -> Code;
    /// Fills `buf` with the code bytes at `addr`; false when they cannot be read.
    fn read_code(&mut self, addr: u64, buf: &mut [u8]) -> bool;
}

/// A mapped code region and its table: a process address `a` in `[start, end)` is table
/// address `a - bias`.
pub struct Module<'t> {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
    pub table: &'t UnwindTable,
}

/// Modules are a [`CodeMap`] whose code bytes are unknown.
impl CodeMap for &[Module<'_>] {
    fn code_at(&mut self, addr: u64) -> Code {
        match self.iter().find(|m| m.start <= addr && addr < m.end) {
            Some(m) => m
                .table
                .lookup(addr.wrapping_sub(m.bias))
                .map_or(Code::NoRow, |r| Code::Row(*r)),
            None => Code::Unmapped,
        }
    }

    fn read_code(&mut self, _addr: u64, _buf: &mut [u8]) -> bool {
        false
    }
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

/// A walked stack: its frames, innermost first, and why it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwound {
    pub frames: Vec<u64>,
    pub end: StackEnd,
}

/// Unwinds up to `max` frames with the tables of `modules`.
pub fn unwind(
    modules: &[Module],
    arch: Arch,
    regs: Regs,
    mem: &impl StackMemory,
    max: usize,
) -> Unwound {
    unwind_with(&mut &*modules, arch, regs, mem, max)
}

/// One step from a frame to its caller.
struct Step {
    regs: Regs,
    /// The caller's address is exact (interrupted by a signal), not a return address.
    exact: bool,
}

/// Unwinds up to `max` frames of a stack of `arch` code, finding rows through `code`, so
/// tables can be found, or built, only for the code a stack passes through.
pub fn unwind_with(
    code: &mut impl CodeMap,
    arch: Arch,
    regs: Regs,
    mem: &impl StackMemory,
    max: usize,
) -> Unwound {
    let mut frames = Vec::new();
    let mut r = regs;
    // The current frame's address is exact: the sampled one, or one a signal interrupted.
    let mut exact = true;
    let end = loop {
        if r.ip == 0 {
            // A zero return address is how frame-pointer chains (and some CFI) end.
            break if frames.is_empty() {
                StackEnd::BadReturnAddress
            } else {
                StackEnd::Outermost
            };
        }
        if frames.len() >= max {
            break StackEnd::DepthLimit;
        }
        let at = if exact { r.ip } else { r.ip - 1 };
        let found = code.code_at(at);
        if found == Code::Unmapped && !frames.is_empty() {
            break StackEnd::BadReturnAddress;
        }
        frames.push(if exact && !frames.is_empty() {
            r.ip + 1
        } else {
            r.ip
        });
        let step = match found {
            Code::Row(UnwindRow {
                cfa: Cfa::SigReturn(a),
                ..
            }) => signal_step(a, r, mem),
            Code::Row(row) if !matches!(row.cfa, Cfa::Unsupported | Cfa::None) => {
                cfi_step(row, r, exact, mem)
            }
            Code::NoRow if is_sigreturn(code, arch, r.ip) => signal_step(arch, r, mem),
            Code::NoRow if exact => {
                top_of_stack_step(code, arch, r, mem).or_else(|_| fp_step(r, mem))
            }
            Code::Anonymous => fp_step(r, mem).or_else(|end| scan_step(code, arch, r, mem, end)),
            _ => fp_step(r, mem),
        };
        let step = match step {
            Ok(step) => step,
            Err(end) => break end,
        };
        if step.exact {
            // The trampoline was entered by a return, not called: name it by its own address.
            if frames.len() > 1 {
                *frames.last_mut().expect("pushed above") = r.ip + 1;
            }
        } else if step.regs.sp < r.sp || (step.regs.sp == r.sp && !exact) {
            // The stack grows down, so callers' frames are higher. Only a frame whose return
            // address is still in a register (an arm64 leaf) shares its caller's SP; after a
            // signal, the interrupted frame can be anywhere (sigaltstack).
            break StackEnd::Loop;
        }
        r = step.regs;
        exact = step.exact;
    };
    Unwound { frames, end }
}

/// Why a read of stack memory at `addr` failed.
fn read_failed(mem: &impl StackMemory, addr: u64) -> StackEnd {
    if mem.past_end(addr) {
        StackEnd::CopyEnded
    } else {
        StackEnd::BadReturnAddress
    }
}

fn read(mem: &impl StackMemory, addr: u64) -> Result<u64, StackEnd> {
    mem.read_u64(addr).ok_or_else(|| read_failed(mem, addr))
}

/// A step by the call frame information's rules.
fn cfi_step(
    row: UnwindRow,
    r: Regs,
    exact: bool,
    mem: &impl StackMemory,
) -> Result<Step, StackEnd> {
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
        Cfa::SigReturn(_) | Cfa::Unsupported | Cfa::None => return Err(StackEnd::NoUnwindInfo),
    };
    let at = |o: i32| cfa.wrapping_add_signed(i64::from(o));
    let ip = match row.ra {
        Saved::AtCfa(o) => read(mem, at(o))?,
        // Only an exact frame (innermost, or interrupted) can still have it in the link
        // register.
        Saved::Unchanged | Saved::LinkRegister if exact && r.lr != 0 => r.lr,
        Saved::Undefined => return Err(StackEnd::Outermost),
        _ => return Err(StackEnd::NoUnwindInfo),
    };
    // A saved FP can lie below the stack pointer (an epilogue has popped it), out of the
    // copy. Callers that need it fail on their own; most do not.
    let fp = match row.fp {
        Saved::AtCfa(o) => mem.read_u64(at(o)).unwrap_or(0),
        Saved::Unchanged => r.fp,
        _ => 0,
    };
    Ok(Step {
        regs: Regs {
            ip,
            sp: cfa,
            fp,
            lr: 0,
        },
        exact: false,
    })
}

/// One frame-pointer step: the saved FP and return address sit at FP and FP + 8.
fn fp_step(r: Regs, mem: &impl StackMemory) -> Result<Step, StackEnd> {
    if r.fp == 0 {
        // Entry points clear the frame pointer, but so does code built without frame
        // pointers, which never sets it: without CFI saying so, this is no known root.
        return Err(StackEnd::NoUnwindInfo);
    }
    let (fp, ip) = match (mem.read_u64(r.fp), mem.read_u64(r.fp.wrapping_add(8))) {
        (Some(fp), Some(ip)) => (fp, ip),
        _ if mem.past_end(r.fp) => return Err(StackEnd::CopyEnded),
        _ => return Err(StackEnd::NoUnwindInfo),
    };
    Ok(Step {
        regs: Regs {
            ip,
            sp: r.fp.wrapping_add(16),
            fp,
            lr: 0,
        },
        exact: false,
    })
}

/// The innermost frame in code without rows, such as the `syscall` of glibc's `clone3`:
/// nothing pushed yet, so the return address is at the top of the stack (x86-64) or in the
/// link register (arm64). Taken only if it follows a call instruction.
fn top_of_stack_step(
    code: &mut impl CodeMap,
    arch: Arch,
    r: Regs,
    mem: &impl StackMemory,
) -> Result<Step, StackEnd> {
    let (ip, sp) = match arch {
        Arch::X86_64 => (read(mem, r.sp)?, r.sp.wrapping_add(8)),
        Arch::Aarch64 => (r.lr, r.sp),
    };
    if !follows_call(code, arch, ip) {
        return Err(StackEnd::NoUnwindInfo);
    }
    Ok(Step {
        regs: Regs {
            ip,
            sp,
            fp: r.fp,
            lr: 0,
        },
        exact: false,
    })
}

/// Words above the stack pointer a JIT frame without frame pointer is searched for its
/// return address.
const SCAN_WORDS: u64 = 8;

/// JIT code whose frame-pointer step failed: a small stub without a frame of its own (as
/// CPython 3.12's perf trampolines, `sub $8, %rsp; call *%rcx`) keeps its return address a
/// few words above the stack pointer. The first word there that returns after a call in a
/// file's code is taken (x86-64 only); `failed` is the end otherwise.
fn scan_step(
    code: &mut impl CodeMap,
    arch: Arch,
    r: Regs,
    mem: &impl StackMemory,
    failed: StackEnd,
) -> Result<Step, StackEnd> {
    if arch != Arch::X86_64 {
        return Err(failed);
    }
    (0..SCAN_WORDS)
        .map(|i| r.sp.wrapping_add(8 * i))
        .find_map(|at| {
            let ip = mem.read_u64(at)?;
            let in_file = matches!(code.code_at(ip.wrapping_sub(1)), Code::Row(_) | Code::NoRow);
            (in_file && follows_call(code, arch, ip)).then_some(Step {
                regs: Regs {
                    ip,
                    sp: at.wrapping_add(8),
                    fp: r.fp,
                    lr: 0,
                },
                exact: false,
            })
        })
        .ok_or(failed)
}

/// Whether the instruction before `ra` is a call.
fn follows_call(code: &mut impl CodeMap, arch: Arch, ra: u64) -> bool {
    if matches!(code.code_at(ra.wrapping_sub(1)), Code::Unmapped) {
        return false;
    }
    match arch {
        Arch::X86_64 => {
            let mut before = [0u8; 8];
            ra >= 8 && code.read_code(ra - 8, &mut before) && x86_call_before(&before)
        }
        Arch::Aarch64 => {
            let mut insn = [0u8; 4];
            ra >= 4 && code.read_code(ra - 4, &mut insn) && {
                let i = u32::from_le_bytes(insn);
                // BL imm26, or BLR / BLRAA-style register calls.
                i & 0xfc00_0000 == 0x9400_0000
                    || i & 0xfeff_f800 == 0xd63f_0800
                    || i & 0xfffffc1f == 0xd63f_0000
            }
        }
    }
}

/// Whether the 8 bytes before a return address end with a call: `E8 rel32`, or `FF /2` with
/// any addressing form (and an optional REX prefix).
fn x86_call_before(b: &[u8; 8]) -> bool {
    if b[3] == 0xe8 {
        return true;
    }
    // Try every length an `FF /2` could have, from 2 to 7 bytes (without prefix).
    (2..=7).any(|len| {
        let at = 8 - len;
        b[at] == 0xff && ff2_length(&b[at + 1..]) == Some(len)
    })
}

/// The length of an `FF /2` instruction whose ModRM (and what follows) is `rest`, if its reg
/// field is 2.
fn ff2_length(rest: &[u8]) -> Option<usize> {
    let modrm = *rest.first()?;
    if (modrm >> 3) & 7 != 2 {
        return None;
    }
    let (md, rm) = (modrm >> 6, modrm & 7);
    let sib = md != 3 && rm == 4;
    let disp = match md {
        0 if rm == 5 => 4,
        0 if sib => {
            if rest.get(1)? & 7 == 5 {
                4
            } else {
                0
            }
        }
        0 | 3 => 0,
        1 => 1,
        _ => 4,
    };
    Some(2 + usize::from(sib) + disp)
}

/// Whether the code at `ip` is the kernel's sigreturn trampoline: `mov $15, %rax; syscall`
/// on x86-64, `mov x8, #139; svc #0` on arm64.
fn is_sigreturn(code: &mut impl CodeMap, arch: Arch, ip: u64) -> bool {
    const X86: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
    const ARM64: [u8; 8] = [0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];
    let mut buf = [0u8; 9];
    match arch {
        Arch::X86_64 => code.read_code(ip, &mut buf) && buf == X86,
        Arch::Aarch64 => code.read_code(ip, &mut buf[..8]) && buf[..8] == ARM64,
    }
}

/// Offsets in the signal frame at the trampoline's stack pointer.
mod sigframe {
    /// x86-64: the SP points at the `ucontext` (the handler's return popped `pretcode`);
    /// its `uc_mcontext` is at 40, and there rbp, rsp and rip are registers 10, 15 and 16.
    pub const X86_RBP: u64 = 40 + 10 * 8;
    pub const X86_RSP: u64 = 40 + 15 * 8;
    pub const X86_RIP: u64 = 40 + 16 * 8;
    /// arm64: the SP points at `rt_sigframe`, a 128-byte `siginfo` and then the `ucontext`,
    /// whose `uc_mcontext` is at 176; there `regs[31]` start at 8, then sp and pc.
    const ARM64_MCONTEXT: u64 = 128 + 176;
    pub const ARM64_X29: u64 = ARM64_MCONTEXT + 8 + 29 * 8;
    pub const ARM64_X30: u64 = ARM64_MCONTEXT + 8 + 30 * 8;
    pub const ARM64_SP: u64 = ARM64_MCONTEXT + 8 + 31 * 8;
    pub const ARM64_PC: u64 = ARM64_MCONTEXT + 8 + 32 * 8;
}

/// Restores the registers a signal interrupted, from the frame the kernel saved.
fn signal_step(arch: Arch, r: Regs, mem: &impl StackMemory) -> Result<Step, StackEnd> {
    let at = |o: u64| read(mem, r.sp.wrapping_add(o));
    let regs = match arch {
        Arch::X86_64 => Regs {
            ip: at(sigframe::X86_RIP)?,
            sp: at(sigframe::X86_RSP)?,
            fp: at(sigframe::X86_RBP)?,
            lr: 0,
        },
        Arch::Aarch64 => Regs {
            ip: at(sigframe::ARM64_PC)?,
            sp: at(sigframe::ARM64_SP)?,
            fp: at(sigframe::ARM64_X29)?,
            lr: at(sigframe::ARM64_X30)?,
        },
    };
    Ok(Step { regs, exact: true })
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
        let unwound = unwind(&modules, Arch::X86_64, regs, &stack, 64);
        assert_eq!(unwound.end, StackEnd::Outermost, "{unwound:?}");
        let frames = unwound.frames;
        assert_eq!(
            frames,
            unwind(&modules, Arch::X86_64, regs, &stack, 64).frames,
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

/// Walks over made-up code and stacks, for both architectures: signal frames (by CFI and by
/// code bytes), code outside any FDE, and each way a walk ends.
#[cfg(test)]
mod synthetic {
    use super::*;
    use std::collections::HashMap;

    const HANDLER: u64 = 0x1100;
    /// The trampoline; its FDE starts a byte early, as glibc's does.
    const TRAMPOLINE: u64 = 0x1300;
    /// The interrupted function starts right after a gap no FDE covers, so looking it up at
    /// the address before the interrupted one would find nothing.
    const INTERRUPTED: u64 = 0x1400;
    const CALLER: u64 = 0x1500;
    const ROOT: u64 = 0x1600;
    /// Code without FDE (a `syscall` after glibc's `clone3` ends its FDE).
    const NO_FDE: u64 = 0x1800;
    const STACK: u64 = 0x10000;
    const OUTER_STACK: u64 = 0x20000;

    fn row(pc: u64, cfa: Cfa, ra: Saved) -> UnwindRow {
        UnwindRow {
            pc,
            cfa,
            fp: Saved::Unchanged,
            ra,
        }
    }

    /// Code at 0x1000..0x2000: rows, and code bytes where given.
    struct Fake {
        table: UnwindTable,
        bytes: HashMap<u64, u8>,
    }

    impl CodeMap for Fake {
        fn code_at(&mut self, addr: u64) -> Code {
            if !(0x1000..0x2000).contains(&addr) {
                return Code::Unmapped;
            }
            self.table
                .lookup(addr)
                .map_or(Code::NoRow, |r| Code::Row(*r))
        }

        fn read_code(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            for (i, b) in buf.iter_mut().enumerate() {
                match self.bytes.get(&(addr + i as u64)) {
                    Some(v) => *b = *v,
                    None => return false,
                }
            }
            true
        }
    }

    /// The code of both tests; `trampoline_cfi` says whether the trampoline has its FDE.
    fn code(arch: Arch, trampoline_cfi: bool) -> Fake {
        // arm64 leaves keep the return address in the link register; x86-64 calls push it.
        let (leaf_cfa, leaf_ra) = match arch {
            Arch::X86_64 => (Cfa::Sp(8), Saved::AtCfa(-8)),
            Arch::Aarch64 => (Cfa::Sp(0), Saved::Unchanged),
        };
        let mut rows = vec![
            row(HANDLER, leaf_cfa, leaf_ra),
            row(HANDLER + 0x100, Cfa::None, Saved::Unsupported),
            row(INTERRUPTED, leaf_cfa, leaf_ra),
            row(CALLER, Cfa::Sp(16), Saved::AtCfa(-8)),
            row(ROOT, Cfa::Sp(8), Saved::Undefined),
            row(ROOT + 0x100, Cfa::None, Saved::Unsupported),
        ];
        if trampoline_cfi {
            rows.push(row(
                TRAMPOLINE - 1,
                Cfa::SigReturn(arch),
                Saved::Unsupported,
            ));
            rows.push(row(TRAMPOLINE + 0x10, Cfa::None, Saved::Unsupported));
        }
        rows.sort_by_key(|r| r.pc);
        let sigreturn: &[u8] = match arch {
            Arch::X86_64 => &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
            Arch::Aarch64 => &[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4],
        };
        let mut bytes: HashMap<u64, u8> = (0x1000..0x2000).map(|a| (a, 0x90)).collect();
        for (i, b) in sigreturn.iter().enumerate() {
            bytes.insert(TRAMPOLINE + i as u64, *b);
        }
        Fake {
            table: UnwindTable { arch, rows },
            bytes,
        }
    }

    /// A stack copy from STACK to past OUTER_STACK with the given words.
    fn stack(words: &[(u64, u64)]) -> StackCopy {
        let mut bytes = vec![0u8; (OUTER_STACK - STACK + 0x100) as usize];
        for &(addr, value) in words {
            let at = (addr - STACK) as usize;
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        StackCopy { base: STACK, bytes }
    }

    /// A handler, a leaf, interrupted at the first instruction of INTERRUPTED, itself a leaf
    /// called from CALLER, called from ROOT.
    fn signal_stack(arch: Arch) -> (Regs, StackCopy) {
        match arch {
            Arch::X86_64 => (
                Regs {
                    ip: HANDLER + 0x50,
                    sp: STACK,
                    fp: 0,
                    lr: 0,
                },
                stack(&[
                    // pretcode, then the ucontext.
                    (STACK, TRAMPOLINE),
                    (STACK + 8 + sigframe::X86_RIP, INTERRUPTED),
                    (STACK + 8 + sigframe::X86_RSP, OUTER_STACK),
                    (STACK + 8 + sigframe::X86_RBP, 0),
                    (OUTER_STACK, CALLER + 0x50),
                    (OUTER_STACK + 16, ROOT + 0x50),
                ]),
            ),
            Arch::Aarch64 => (
                Regs {
                    ip: HANDLER + 0x50,
                    sp: STACK,
                    fp: 0,
                    lr: TRAMPOLINE,
                },
                stack(&[
                    (STACK + sigframe::ARM64_PC, INTERRUPTED),
                    (STACK + sigframe::ARM64_SP, OUTER_STACK),
                    (STACK + sigframe::ARM64_X29, 0),
                    (STACK + sigframe::ARM64_X30, CALLER + 0x50),
                    (OUTER_STACK + 8, ROOT + 0x50),
                ]),
            ),
        }
    }

    #[test]
    fn signal_frames_restore_the_interrupted_registers() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for cfi in [true, false] {
                let (regs, mem) = signal_stack(arch);
                let u = unwind_with(&mut code(arch, cfi), arch, regs, &mem, 64);
                assert_eq!(
                    u,
                    Unwound {
                        // The trampoline and the interrupted frame are exact: given as +1.
                        frames: vec![
                            HANDLER + 0x50,
                            TRAMPOLINE + 1,
                            INTERRUPTED + 1,
                            CALLER + 0x50,
                            ROOT + 0x50
                        ],
                        end: StackEnd::Outermost,
                    },
                    "{arch:?}, trampoline with CFI: {cfi}"
                );
            }
        }
    }

    #[test]
    fn code_outside_any_fde_returns_to_a_call() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let mut code = code(arch, true);
            let ret = CALLER + 0x50;
            let (regs, mem) = match arch {
                // `call rel32` before the return address; nothing pushed since.
                Arch::X86_64 => {
                    code.bytes.insert(ret - 5, 0xe8);
                    let regs = Regs {
                        ip: NO_FDE,
                        sp: OUTER_STACK - 8,
                        fp: 0,
                        lr: 0,
                    };
                    (
                        regs,
                        stack(&[(OUTER_STACK - 8, ret), (OUTER_STACK + 8, ROOT + 0x50)]),
                    )
                }
                // `bl` before the return address in the link register.
                Arch::Aarch64 => {
                    for (i, b) in 0x9400_0010u32.to_le_bytes().iter().enumerate() {
                        code.bytes.insert(ret - 4 + i as u64, *b);
                    }
                    let regs = Regs {
                        ip: NO_FDE,
                        sp: OUTER_STACK,
                        fp: 0,
                        lr: ret,
                    };
                    (regs, stack(&[(OUTER_STACK + 8, ROOT + 0x50)]))
                }
            };
            let u = unwind_with(&mut code, arch, regs, &mem, 64);
            assert_eq!(u.frames, vec![NO_FDE, ret, ROOT + 0x50], "{arch:?}");
            assert_eq!(u.end, StackEnd::Outermost, "{arch:?}");

            // Not after a call: not taken, and the frame-pointer step finds nothing.
            let mut code = self::code(arch, true);
            let regs = Regs { fp: 0x5000, ..regs };
            let u = unwind_with(&mut code, arch, regs, &mem, 64);
            assert_eq!(u.frames, vec![NO_FDE], "{arch:?}");
            assert_eq!(u.end, StackEnd::NoUnwindInfo, "{arch:?}");
        }
    }

    #[test]
    fn each_way_a_walk_ends_is_told() {
        let arch = Arch::X86_64;
        let caller = Regs {
            ip: CALLER + 0x10,
            sp: OUTER_STACK,
            fp: 0,
            lr: 0,
        };
        let walk = |regs: Regs, mem: &StackCopy, max: usize| {
            unwind_with(&mut code(arch, true), arch, regs, mem, max)
        };
        let mem = stack(&[(OUTER_STACK + 8, ROOT + 0x50)]);
        assert_eq!(walk(caller, &mem, 64).end, StackEnd::Outermost);
        assert_eq!(walk(caller, &mem, 1).end, StackEnd::DepthLimit);
        // The caller's frame is past the copy.
        let short = StackCopy {
            base: OUTER_STACK,
            bytes: vec![0u8; 8],
        };
        assert_eq!(walk(caller, &short, 64).end, StackEnd::CopyEnded);
        // A return address outside the code.
        let wild = stack(&[(OUTER_STACK + 8, 0xdead_0000)]);
        let u = walk(caller, &wild, 64);
        assert_eq!((u.frames.len(), u.end), (1, StackEnd::BadReturnAddress));
        // A frame pointer chain that points back at itself.
        let looping = stack(&[(STACK, STACK), (STACK + 8, NO_FDE + 0x20)]);
        let regs = Regs {
            ip: 0x1900,
            sp: STACK + 0x40,
            fp: STACK,
            lr: 0,
        };
        assert_eq!(walk(regs, &looping, 64).end, StackEnd::Loop);
    }
}

/// arm64 stacks unwound with the rows of a real table. A cross-built fixture's chain
/// (main -> outer -> middle -> leaf, on to `fill` where there is one; main -> vla -> sink)
/// is run from `main`'s first instruction by a small emulation of what prologues do (the
/// stack pointer, x29, x30 and the stores to the stack), and every instruction on the way
/// is a sample, unwound from its registers and a copy of the stack from its stack pointer
/// up. The stack is built from the machine code alone; only the walk reads the call frame
/// information.
#[cfg(test)]
mod arm64_chain {
    use super::*;
    use crate::unwind::fixtures::{aarch64_toolchain, FrameSection, Target, TempDir};
    use object::{ObjectSection, ObjectSymbol};
    use std::collections::{BTreeMap, HashSet};

    /// The top of `main`'s stack: its caller's stack pointer.
    const STACK_TOP: u64 = 0x7fff_f000_0000;
    /// Made-up code of the C runtime that calls `main`, whose row ends the stack as
    /// `_start`'s does (return address undefined).
    const RUNTIME: u64 = 0x10_0000;
    const RUNTIME_RETURN: u64 = RUNTIME + 0x40;
    /// What a register the emulation does not follow holds.
    const UNKNOWN: u64 = 0x5eed_5eed_0000;
    /// The size the emulation gives a run-time sized array.
    const VLA_BYTES: u64 = 0x60;

    /// What an instruction does to the flow of the emulation.
    enum Flow {
        Next,
        Call(u64),
        /// `b`, `br` or `ret`: the end of the straight path.
        Leave,
    }

    /// The state a walk depends on, and the stack written so far (by address).
    struct Machine {
        pc: u64,
        sp: u64,
        x29: u64,
        x30: u64,
        stack: BTreeMap<u64, u64>,
    }

    fn signed(value: u32, bits: u32) -> i64 {
        let shift = 64 - bits;
        (i64::from(value) << shift) >> shift
    }

    impl Machine {
        fn reg(&self, r: u32) -> u64 {
            match r {
                29 => self.x29,
                30 => self.x30,
                // xzr, in a store's source.
                31 => 0,
                r => UNKNOWN + u64::from(r),
            }
        }

        /// Stores `values` from `sp + offset` on, the stack pointer moved by `writeback`
        /// before (pre-index) or after (post-index) when there is one.
        fn store(&mut self, values: &[u64], offset: i64, index: Option<bool>) {
            let base = match index {
                Some(true) => self.sp.wrapping_add_signed(offset),
                Some(false) | None => self.sp,
            };
            let at = if index.is_some() {
                base
            } else {
                base.wrapping_add_signed(offset)
            };
            for (i, v) in values.iter().enumerate() {
                self.stack.insert(at + 8 * i as u64, *v);
            }
            match index {
                Some(true) => self.sp = base,
                Some(false) => self.sp = self.sp.wrapping_add_signed(offset),
                None => {}
            }
        }

        /// Runs one instruction (A64) as far as sp, x29, x30 and the stack go.
        fn execute(&mut self, insn: u32) -> Flow {
            let rt = insn & 31;
            let rn = (insn >> 5) & 31;
            let rt2 = (insn >> 10) & 31;
            // Pre- and post-index forms are pre: Some(true), post: Some(false).
            let stp_index = match insn & 0xffc0_0000 {
                0xa980_0000 => Some(Some(true)),
                0xa880_0000 => Some(Some(false)),
                0xa900_0000 => Some(None),
                _ => None,
            };
            if let Some(index) = stp_index {
                // STP Xt, Xt2, [Xn|SP, #imm7 * 8]: only stores to the stack matter.
                if rn == 31 {
                    let values = [self.reg(rt), self.reg(rt2)];
                    self.store(&values, signed((insn >> 15) & 0x7f, 7) * 8, index);
                }
                return Flow::Next;
            }
            if insn & 0xffc0_0000 == 0xf900_0000 {
                // STR Xt, [Xn|SP, #imm12 * 8].
                if rn == 31 {
                    let offset = i64::from((insn >> 10) & 0xfff) * 8;
                    self.store(&[self.reg(rt)], offset, None);
                }
                return Flow::Next;
            }
            let str_index = match insn & 0xffe0_0c00 {
                0xf800_0c00 => Some(true),
                0xf800_0400 => Some(false),
                _ => None,
            };
            if let Some(pre) = str_index {
                // STR Xt, [Xn|SP, #imm9]! or [Xn|SP], #imm9.
                if rn == 31 {
                    let offset = signed((insn >> 12) & 0x1ff, 9);
                    self.store(&[self.reg(rt)], offset, Some(pre));
                }
                return Flow::Next;
            }
            if insn & 0xfc00_0000 == 0x9400_0000 {
                // BL imm26.
                let offset = signed(insn & 0x03ff_ffff, 26) * 4;
                return Flow::Call(self.pc.wrapping_add_signed(offset));
            }
            if insn & 0xfc00_0000 == 0x1400_0000 || insn & 0xff9f_fc1f == 0xd61f_0000 {
                // B imm26, or BR / RET Xn.
                return Flow::Leave;
            }
            // ADD or SUB (immediate, flags untouched), the one form whose destination 31
            // is SP rather than the zero register (with ADD/SUB extended register).
            let add_sub_imm = insn & 0x3f80_0000 == 0x1100_0000;
            let add_sub_ext = insn & 0x3fe0_0000 == 0x0b20_0000;
            if (add_sub_imm || add_sub_ext) && rt == 31 || matches!(rt, 29 | 30) {
                // Only a 64-bit ADD or SUB of an immediate to SP or x29 from SP or x29:
                // the only writes to them a prologue makes.
                let source = match rn {
                    31 => Some(self.sp),
                    29 => Some(self.x29),
                    _ => None,
                };
                let wide = insn >> 31 == 1;
                if add_sub_ext && wide && rt == 31 && rn == 31 && insn & 0x4000_0000 != 0 {
                    // SUB SP, SP, Xm: a run-time sized array (`vla`), of a made-up size.
                    self.sp -= VLA_BYTES;
                    return Flow::Next;
                }
                let (Some(source), true, true, true) = (source, add_sub_imm, wide, rt != 30) else {
                    panic!(
                        "{:#x}: {insn:#010x} may write sp, x29 or x30, which this emulation \
                         does not follow",
                        self.pc
                    );
                };
                let imm = u64::from((insn >> 10) & 0xfff) << (((insn >> 22) & 1) * 12);
                let value = if insn & 0x4000_0000 == 0 {
                    source.wrapping_add(imm)
                } else {
                    source.wrapping_sub(imm)
                };
                if rt == 31 {
                    self.sp = value;
                } else {
                    self.x29 = value;
                }
                return Flow::Next;
            }
            // Anything else (conditional branches fall through) leaves them alone.
            Flow::Next
        }

        /// The stack from the stack pointer up, as a sample copies it.
        fn copy(&self) -> StackCopy {
            let mut bytes = vec![0xa5u8; (STACK_TOP + 16 - self.sp) as usize];
            for (&addr, value) in self.stack.range(self.sp..STACK_TOP) {
                let at = (addr - self.sp) as usize;
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            StackCopy {
                base: self.sp,
                bytes,
            }
        }
    }

    /// One sample: the registers, the stack, and the frames a walk must give.
    struct Sample {
        regs: Regs,
        stack: StackCopy,
        frames: Vec<u64>,
    }

    /// Address and size of the function `name`, or of a compiler clone of it
    /// (`name.isra.0`).
    fn function(file: &object::File, name: &str) -> (u64, u64) {
        file.symbols()
            .find(|s| {
                s.kind() == object::SymbolKind::Text
                    && s.name().is_ok_and(|n| {
                        n.strip_prefix(name)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                    })
            })
            .map(|s| (s.address(), s.size()))
            .unwrap_or_else(|| panic!("no function {name}"))
    }

    /// Runs `chain` from the first function's entry: each function up to its call of the
    /// next (stepping over other calls, which return at once with x30 clobbered), the last
    /// one up to where its straight path leaves it. A sample before every instruction.
    fn run(file: &object::File, chain: &[&str]) -> Vec<Sample> {
        let functions: Vec<(u64, u64)> = chain.iter().map(|f| function(file, f)).collect();
        let mut m = Machine {
            pc: functions[0].0,
            sp: STACK_TOP,
            x29: 0,
            x30: RUNTIME_RETURN,
            stack: BTreeMap::new(),
        };
        // Return addresses of the calls made so far, outermost first.
        let mut returns = vec![RUNTIME_RETURN];
        let mut samples = Vec::new();
        for (i, (&(start, size), name)) in functions.iter().zip(chain).enumerate() {
            let next = functions.get(i + 1).map(|f| f.0);
            loop {
                assert!(
                    (start..start + size).contains(&m.pc),
                    "{name}: ran out of it at {:#x}",
                    m.pc
                );
                samples.push(Sample {
                    regs: Regs {
                        ip: m.pc,
                        sp: m.sp,
                        fp: m.x29,
                        lr: m.x30,
                    },
                    stack: m.copy(),
                    frames: std::iter::once(m.pc)
                        .chain(returns.iter().rev().copied())
                        .collect(),
                });
                let code = file
                    .sections()
                    .find_map(|s| s.data_range(m.pc, 4).ok().flatten())
                    .unwrap_or_else(|| panic!("no code at {:#x}", m.pc));
                match m.execute(u32::from_le_bytes(code.try_into().unwrap())) {
                    Flow::Next => m.pc += 4,
                    Flow::Call(target) => {
                        assert_eq!(m.sp % 16, 0, "{name}: SP misaligned at {:#x}", m.pc);
                        m.x30 = m.pc + 4;
                        if Some(target) == next {
                            returns.push(m.pc + 4);
                            m.pc = target;
                            break;
                        }
                        m.pc += 4;
                    }
                    Flow::Leave => {
                        assert!(next.is_none(), "{name} left before calling on");
                        break;
                    }
                }
            }
        }
        samples
    }

    /// Builds `fixture` for arm64, runs `chain` in it, and unwinds every sample with the
    /// fixture's table; gives the distinct rules of the rows the innermost frames used.
    fn check(fixture: &str, chain: &[&str], frame_pointers: bool) -> HashSet<(Cfa, Saved, Saved)> {
        let dir = TempDir::new(&format!("arm64-chain-{fixture}-{frame_pointers}"));
        let path = dir.build_for(Target::Aarch64, fixture, frame_pointers, FrameSection::Eh);
        let data = std::fs::read(&path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let table = UnwindTable::from_elf(&data).unwrap();
        assert_eq!(table.arch, Arch::Aarch64);
        let runtime = UnwindTable {
            arch: Arch::Aarch64,
            rows: vec![
                UnwindRow {
                    pc: RUNTIME,
                    cfa: Cfa::Sp(0),
                    fp: Saved::Unchanged,
                    ra: Saved::Undefined,
                },
                UnwindRow {
                    pc: RUNTIME + 0x100,
                    cfa: Cfa::None,
                    fp: Saved::Unsupported,
                    ra: Saved::Unsupported,
                },
            ],
        };
        let text = file.section_by_name(".text").unwrap();
        let modules = [
            Module {
                start: text.address(),
                end: text.address() + text.size(),
                bias: 0,
                table: &table,
            },
            Module {
                start: RUNTIME,
                end: RUNTIME + 0x100,
                bias: 0,
                table: &runtime,
            },
        ];
        let samples = run(&file, chain);
        let mut used = HashSet::new();
        for s in &samples {
            let row = table.lookup(s.regs.ip).expect("the chain's code has rows");
            used.insert((row.cfa, row.fp, row.ra));
            assert_eq!(
                unwind(&modules, Arch::Aarch64, s.regs, &s.stack, 64),
                Unwound {
                    frames: s.frames.clone(),
                    end: StackEnd::Outermost,
                },
                "{fixture} (frame pointers: {frame_pointers}) sampled at {:#x} under {row:?}, \
                 registers {:x?}",
                s.regs.ip,
                s.regs
            );
        }
        assert!(samples.len() >= 15, "{fixture}: {} samples", samples.len());
        used
    }

    #[test]
    fn arm64_chains_unwind_through_real_rows() {
        if !aarch64_toolchain() {
            return;
        }
        let in_lr = |r: &(Cfa, Saved, Saved)| r.2 == Saved::Unchanged;
        let on_stack = |r: &(Cfa, Saved, Saved)| matches!(r.2, Saved::AtCfa(_));
        for frame_pointers in [false, true] {
            let chain = ["main", "outer", "middle", "leaf"];
            let used = check("unwind_chain", &chain, frame_pointers);
            assert!(
                used.iter().any(in_lr) && used.iter().any(on_stack),
                "{used:?}"
            );

            // With frames: a leaf without one (fill), and frames allocated while the
            // return address is still in the link register (outer's `sub sp` first).
            let chain = ["main", "outer", "middle", "leaf", "fill"];
            let used = check("unwind_frames", &chain, frame_pointers);
            assert!(
                used.iter()
                    .any(|r| in_lr(r) && matches!(r.0, Cfa::Sp(o) if o > 0)),
                "{used:?}"
            );
            assert!(used.iter().any(on_stack), "{used:?}");
            assert_eq!(
                used.iter().any(|r| matches!(r.1, Saved::AtCfa(_))),
                frame_pointers,
                "x29 saved: {used:?}"
            );

            // A run-time sized frame: the CFA is x29-based, with or without frame pointers.
            let used = check("unwind_rows", &["main", "vla", "sink"], frame_pointers);
            assert!(used.iter().any(|r| matches!(r.0, Cfa::Fp(_))), "{used:?}");
        }
    }
}
