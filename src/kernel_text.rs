//! Where the kernel keeps its scheduler functions (`__sched`: `__schedule`, `schedule`,
//! `do_nanosleep`, ...). Every off-CPU stack runs through them, and the kernel's own
//! blocked-task unwinder leaves them out, so off-CPU stacks are trimmed of them to read the
//! same however they were taken.
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::Range;

/// The `[__sched_text_start, __sched_text_end)` range: from the kernel itself, or from
/// `/proc/kallsyms` (~50 ms) when the kernel-symbol program cannot load.
pub fn sched_text() -> Option<Range<u64>> {
    if let Ok(range) = crate::kernel_symbols::sched_text() {
        return range;
    }
    let file = File::open("/proc/kallsyms").ok()?;
    parse_sched_text(BufReader::new(file))
}

fn parse_sched_text(reader: impl BufRead) -> Option<Range<u64>> {
    let (mut start, mut end) = (None, None);
    for line in reader.lines() {
        let line = line.ok()?;
        let mut fields = line.split_whitespace();
        let (Some(addr), Some(_), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        match name {
            "__sched_text_start" => start = u64::from_str_radix(addr, 16).ok(),
            "__sched_text_end" => end = u64::from_str_radix(addr, 16).ok(),
            _ => continue,
        }
        if let (Some(s), Some(e)) = (start, end) {
            // Without privileges kallsyms shows zeros: no usable range.
            return (s < e).then_some(s..e);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_range() {
        let text = "ffffffff81000000 T _stext\nffffffff821fa620 T __sched_text_start\nffffffff821fa700 t __schedule\nffffffff82203137 T __sched_text_end\n";
        assert_eq!(
            parse_sched_text(text.as_bytes()),
            Some(0xffffffff821fa620..0xffffffff82203137)
        );
        let hidden = "0000000000000000 T __sched_text_start\n0000000000000000 T __sched_text_end\n";
        assert_eq!(parse_sched_text(hidden.as_bytes()), None);
        assert_eq!(parse_sched_text("".as_bytes()), None);
    }
}
