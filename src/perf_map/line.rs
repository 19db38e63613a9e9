//! One line of a perf map: `START SIZE NAME`.
//!
//! START and SIZE are hexadecimal, with or without `0x` (perf reads them with `strtoull`
//! in base 16, which takes both). Fields are separated by spaces or tabs; NAME is the rest
//! of the line, spaces included (V8 writes `JS:*fib /app/fib.js:1:15`, the JVM writes
//! whole Java signatures). A line is refused, and the caller counts it, when a field is
//! missing or not hex, when SIZE is zero (it would cover nothing, and perf has no use for
//! it either), when START + SIZE does not fit in 64 bits, or when NAME is not UTF-8.

/// One accepted line: its code covers `start..start + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Line<'a> {
    pub start: u64,
    pub size: u64,
    pub name: &'a str,
}

/// Parses one line, without its `\n`. `None` for a malformed line.
pub(super) fn parse(line: &[u8]) -> Option<Line<'_>> {
    // A map written on Windows, or through a tool that adds `\r`, is still readable.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = skip_blanks(line);
    let (start, rest) = hex_field(rest)?;
    let (size, rest) = hex_field(skip_blanks(rest))?;
    let name = skip_blanks(rest);
    // `hex_field` stops at a blank, so a non-empty name was separated from SIZE.
    if size == 0 || name.is_empty() {
        return None;
    }
    start.checked_add(size)?;
    let name = std::str::from_utf8(name).ok()?;
    Some(Line { start, size, name })
}

fn skip_blanks(bytes: &[u8]) -> &[u8] {
    let blanks = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[blanks..]
}

/// A hex number ending at a blank (or at the end of the line), and what follows it.
fn hex_field(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = match bytes {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => bytes,
    };
    let len = digits
        .iter()
        .take_while(|&&b| b != b' ' && b != b'\t')
        .count();
    if len == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in &digits[..len] {
        let digit = (b as char).to_digit(16)?;
        // Leading zeros are fine (the JVM pads to 16 digits); a 17th significant digit is not.
        if value >> 60 != 0 {
            return None;
        }
        value = value << 4 | u64::from(digit);
    }
    Some((value, &digits[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (u64, u64, &str) {
        let line = parse(text.as_bytes()).unwrap_or_else(|| panic!("refused {text:?}"));
        (line.start, line.size, line.name)
    }

    #[test]
    fn accepts_both_hex_styles_and_names_with_spaces() {
        assert_eq!(ok("7f00 10 foo"), (0x7f00, 0x10, "foo"));
        assert_eq!(
            ok("0x00007F00 0x0000000000000010 long Spin.fib(int)"),
            (0x7f00, 0x10, "long Spin.fib(int)")
        );
        assert_eq!(
            ok("7f00\t2a\tJS:*fib /app/fib.js:1:15"),
            (0x7f00, 0x2a, "JS:*fib /app/fib.js:1:15")
        );
        assert_eq!(ok("10 1 name \r"), (0x10, 1, "name "));
        assert_eq!(ok("  0X1f 1 x"), (0x1f, 1, "x"));
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in [
            "",
            "   ",
            "7f00",
            "7f00 10",
            "7f00 10 ",
            "7f00 10\t",
            "7g00 10 foo",
            "7f00 1z foo",
            "0x 10 foo",
            "7f00 0 foo",
            "7f00 0x0 foo",
            "10000000000000000 1 foo",
            "ffffffffffffffff 1 foo",
            "fffffffffffffff0 11 foo",
            "7f00 10foo bar",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "accepted {bad:?}");
        }
        assert_eq!(parse(b"7f00 10 caf\xe9"), None, "not UTF-8");
        // The last representable byte is fine.
        assert_eq!(ok("fffffffffffffff0 f top").1, 0xf);
    }
}
