//! Kernel symbols named by the kernel through `bpf/kernel_symbols.bpf.c`, checked against
//! `/proc/kallsyms`, which the kernel prints from the same table: every text symbol at its
//! own address and a few bytes in, module symbols included, and the scheduler's text
//! range.

mod common;

use std::collections::HashMap;

use rprof_bpf::kernel_symbols::{self, KernelName};

/// Text symbols of /proc/kallsyms: (address, name, module).
fn kallsyms() -> Vec<(u64, String, Option<String>)> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            let module = f.next().map(|m| m.trim_matches(['[', ']']).to_owned());
            let addr = u64::from_str_radix(addr, 16).ok()?;
            (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.to_owned(), module))
        })
        .collect()
}

#[test]
fn kernel_names_match_kallsyms() {
    if !common::require_bpf() {
        return;
    }
    let symbols = kallsyms();
    assert!(symbols.len() > 10_000, "{} text symbols", symbols.len());
    // Several names can share an address: any of them is right.
    let mut names_at: HashMap<u64, Vec<&str>> = HashMap::new();
    for (addr, name, _) in &symbols {
        // The __pi_ aliases are named without their prefix.
        names_at
            .entry(*addr)
            .or_default()
            .push(name.strip_prefix("__pi_").unwrap_or(name));
    }
    // Every 20th symbol, at its start and 3 bytes in (inside it unless it is tiny).
    let picked: Vec<&(u64, String, Option<String>)> = symbols.iter().step_by(20).collect();
    let addrs: Vec<u64> = picked.iter().flat_map(|s| [s.0, s.0 + 3]).collect();
    let answers = kernel_symbols::name_addresses(&addrs).expect("the program loads and runs");
    assert_eq!(answers.len(), addrs.len());

    let (mut right, mut wrong) = (0, Vec::new());
    for (addr, answer) in addrs.iter().zip(&answers) {
        match answer {
            KernelName::Symbol { name, start, .. }
                if *start <= *addr
                    && names_at
                        .get(start)
                        .is_some_and(|names| names.contains(&name.as_str())) =>
            {
                right += 1
            }
            other => wrong.push(format!("{addr:#x}: {other:?}")),
        }
    }
    // Symbols at the same address as the picked one's + 3 (tiny functions) move the answer
    // to a neighbour, which is still a kallsyms symbol at its own start: counted right.
    assert!(
        wrong.len() * 200 <= addrs.len(),
        "{right} right, {} wrong of {}:\n{}",
        wrong.len(),
        addrs.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
    // Each picked symbol's own address gives one of the names at that address.
    for (s, answer) in picked.iter().zip(answers.iter().step_by(2)) {
        if let KernelName::Symbol { start, module, .. } = answer {
            assert_eq!(*start, s.0);
            assert_eq!(module, &s.2, "module of {}", s.1);
        }
    }
}

#[test]
fn sched_text_matches_kallsyms() {
    if !common::require_bpf() {
        return;
    }
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let find = |wanted: &str| {
        text.lines().find_map(|line| {
            let mut f = line.split_whitespace();
            let (addr, _, name) = (f.next()?, f.next()?, f.next()?);
            (name == wanted).then(|| u64::from_str_radix(addr, 16).unwrap())
        })
    };
    let expected = find("__sched_text_start").unwrap()..find("__sched_text_end").unwrap();
    assert_eq!(
        kernel_symbols::sched_text().expect("the program loads and runs"),
        Some(expected)
    );
}

#[test]
fn an_address_outside_the_kernel_is_unknown() {
    if !common::require_bpf() {
        return;
    }
    let answers = kernel_symbols::name_addresses(&[0x1000, 0xdead_0000]).unwrap();
    assert_eq!(answers, vec![KernelName::Unknown, KernelName::Unknown]);
}
