//! Kernel symbols named by the kernel itself (`bpf/kernel_symbols.bpf.c`): one tiny BPF
//! program run through `BPF_PROG_TEST_RUN` formats a batch of addresses with `%pS`, which
//! the kernel resolves in its own symbol table. Reading `/proc/kallsyms` instead costs
//! ~50 ms of CPU time (the kernel formats 120k lines, and each is parsed), most of a short
//! recording's cost; callers fall back to it when this cannot load.
use std::mem::MaybeUninit;
use std::ops::Range;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{OpenObject, ProgramInput, ProgramMut};

use crate::bpf::kernel_symbols::{types, KernelSymbolsSkel, KernelSymbolsSkelBuilder};

/// What the kernel said about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelName {
    /// A symbol: its name and start address, and its module for module code.
    Symbol {
        name: String,
        start: u64,
        module: Option<String>,
    },
    /// No symbol covers the address.
    Unknown,
    /// The kernel's answer did not fit, or formatting failed: ask kallsyms.
    Unanswered,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelSymbolsError {
    #[error("cannot load the kernel-symbol BPF program: {0}")]
    Load(#[source] libbpf_rs::Error),
    #[error("cannot run the kernel-symbol BPF program: {0}")]
    Run(#[source] libbpf_rs::Error),
}

/// Loads the object with only `program` to be loaded.
fn load<'obj>(
    storage: &'obj mut MaybeUninit<OpenObject>,
    program: &str,
) -> Result<KernelSymbolsSkel<'obj>, KernelSymbolsError> {
    crate::bpf::libbpf_log::take();
    let mut open = KernelSymbolsSkelBuilder::default()
        .open(storage)
        .map_err(KernelSymbolsError::Load)?;
    open.progs
        .name_addresses
        .set_autoload(program == "name_addresses");
    open.progs
        .find_sched_text
        .set_autoload(program == "find_sched_text");
    open.load().map_err(KernelSymbolsError::Load)
}

/// The program's global variables.
fn globals<'a>(skel: &'a KernelSymbolsSkel<'_>) -> &'a types::bss {
    skel.maps
        .bss_data
        .as_deref()
        .expect("the object has a .bss")
}

/// Runs a program once (`BPF_PROG_TEST_RUN`).
fn run(program: &ProgramMut<'_>) -> Result<(), KernelSymbolsError> {
    program
        .test_run(ProgramInput::default())
        .map(drop)
        .map_err(KernelSymbolsError::Run)
}

/// Names kernel addresses, one answer per address.
pub fn name_addresses(addrs: &[u64]) -> Result<Vec<KernelName>, KernelSymbolsError> {
    let mut storage = MaybeUninit::uninit();
    let mut skel = load(&mut storage, "name_addresses")?;
    let mut names = Vec::with_capacity(addrs.len());
    // RPROF_KSYM_BATCH addresses per run.
    let batch = globals(&skel).batch.addrs.len();
    for chunk in addrs.chunks(batch) {
        let bss = skel
            .maps
            .bss_data
            .as_deref_mut()
            .expect("the object has a .bss");
        bss.batch.count = chunk.len() as u32;
        bss.batch.addrs[..chunk.len()].copy_from_slice(chunk);
        run(&skel.progs.name_addresses)?;
        for (&addr, raw) in chunk.iter().zip(&globals(&skel).batch.names) {
            // The kernel writes C chars; the bytes are what matter.
            let bytes: Vec<u8> = raw.iter().map(|&c| c as u8).collect();
            names.push(parse(addr, &bytes));
        }
    }
    Ok(names)
}

/// The scheduler's text range, `[__sched_text_start, __sched_text_end)`.
pub fn sched_text() -> Result<Option<Range<u64>>, KernelSymbolsError> {
    let mut storage = MaybeUninit::uninit();
    let skel = load(&mut storage, "find_sched_text")?;
    run(&skel.progs.find_sched_text)?;
    let bss = globals(&skel);
    let (start, end) = (bss.sched_text_start, bss.sched_text_end);
    Ok((start != 0 && start < end).then_some(start..end))
}

/// Reads `%pS`'s "name+0xoff/0xsize [module]" for `addr` (NUL-terminated in `raw`). An
/// address with no symbol prints as itself, "0x...".
fn parse(addr: u64, raw: &[u8]) -> KernelName {
    let Some(len) = raw.iter().position(|&b| b == 0) else {
        return KernelName::Unanswered;
    };
    let Ok(text) = std::str::from_utf8(&raw[..len]) else {
        return KernelName::Unanswered;
    };
    if text.is_empty() {
        return KernelName::Unanswered;
    }
    if text.starts_with("0x") {
        return KernelName::Unknown;
    }
    let (symbol, module) = match text.split_once(" [") {
        Some((symbol, rest)) => match rest.strip_suffix(']') {
            Some(module) => (symbol, Some(module.to_owned())),
            // Cut short inside the module name.
            None => return KernelName::Unanswered,
        },
        None => (text, None),
    };
    let parsed = symbol.rsplit_once('+').and_then(|(name, place)| {
        let (offset, _size) = place.split_once('/')?;
        let offset = u64::from_str_radix(offset.strip_prefix("0x")?, 16).ok()?;
        Some((name, offset))
    });
    match parsed {
        Some((name, offset)) if !name.is_empty() => KernelName::Symbol {
            // x86 aliases its early-boot code with a __pi_ prefix (__pi___x86_indirect_thunk_rax
            // at the address of __x86_indirect_thunk_rax), and the kernel may name either.
            name: name.strip_prefix("__pi_").unwrap_or(name).to_owned(),
            start: addr.wrapping_sub(offset),
            module,
        },
        // A name so long the offset was cut off.
        _ => KernelName::Unanswered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    #[test]
    fn parses_the_kernel_formats() {
        assert_eq!(
            parse(0xffff_ffff_8100_0010, &raw("do_syscall_64+0x10/0x120")),
            KernelName::Symbol {
                name: "do_syscall_64".into(),
                start: 0xffff_ffff_8100_0000,
                module: None
            }
        );
        assert_eq!(
            parse(0x1005, &raw("e1000_xmit_frame+0x5/0x200 [e1000]")),
            KernelName::Symbol {
                name: "e1000_xmit_frame".into(),
                start: 0x1000,
                module: Some("e1000".into())
            }
        );
        assert_eq!(
            parse(0x20, &raw("__pi___x86_indirect_thunk_rax+0x0/0x20")),
            KernelName::Symbol {
                name: "__x86_indirect_thunk_rax".into(),
                start: 0x20,
                module: None
            }
        );
        assert_eq!(parse(1, &raw("0xffffffffc0000001")), KernelName::Unknown);
        assert_eq!(
            parse(1, &raw("a_very_long_name_cut_sho")),
            KernelName::Unanswered
        );
        assert_eq!(
            parse(1, &raw("name+0x10/0x20 [modu")),
            KernelName::Unanswered
        );
        assert_eq!(parse(1, b"no terminator"), KernelName::Unanswered);
        assert_eq!(parse(1, &raw("")), KernelName::Unanswered);
    }
}
