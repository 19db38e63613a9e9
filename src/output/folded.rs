//! Folded stacks: one line per distinct stack, `root;...;leaf COUNT`, as flamegraph.pl,
//! inferno and speedscope read them. Kernel frames end in `_[k]` and inlined ones in
//! `_[i]`, the annotations those tools colour by.
use std::collections::BTreeMap;

use crate::pprof::{Frame, Stack};

/// A frame's name as a folded line shows it: `;` separates frames and a line ends the
/// stack, so neither may appear inside a name.
pub fn frame_label(f: &Frame) -> String {
    let mut name: String = f
        .name
        .chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if f.kernel {
        name.push_str("_[k]");
    } else if f.inlined {
        name.push_str("_[i]");
    }
    name
}

/// The folded lines of these stacks, equal stacks summed, in a stable order. Samples with
/// no positive value are left out.
pub fn folded_lines(stacks: &[Stack]) -> Vec<String> {
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for s in stacks.iter().filter(|s| s.value > 0) {
        let key = s
            .frames
            .iter()
            .map(frame_label)
            .collect::<Vec<_>>()
            .join(";");
        let total = totals.entry(key).or_default();
        *total = total.saturating_add(s.value);
    }
    totals
        .into_iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, kernel: bool, inlined: bool) -> Frame {
        Frame {
            name: name.into(),
            kernel,
            inlined,
        }
    }

    #[test]
    fn folds_and_sums_root_first() {
        let stack = |value| Stack {
            frames: vec![
                f("main", false, false),
                f("a;b", false, true),
                f("sys_read", true, false),
            ],
            value,
            labels: vec![],
        };
        let lines = folded_lines(&[stack(2), stack(3), stack(0)]);
        assert_eq!(lines, ["main;a:b_[i];sys_read_[k] 5"]);
    }
}
