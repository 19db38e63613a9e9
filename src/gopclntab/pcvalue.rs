//! Pc-value tables: the varint streams behind pcsp, pcfile, pcln and every pcdata table.
//!
//! A table is a run of (value delta, pc delta) pairs starting from value -1 at the
//! function's entry. The value delta is a zig-zag varint, the pc delta an unsigned varint
//! counted in instruction quanta; each pair says "from the previous pc up to the new pc,
//! the value is the running sum". A zero value delta after the first pair ends the table.

/// One step of a table: `value` holds for pcs in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub start: u64,
    pub end: u64,
    pub value: i32,
}

/// Walks a table's spans in pc order. It only moves forward through the bytes, so a
/// damaged table ends when its bytes do.
pub(super) struct Spans<'a> {
    bytes: &'a [u8],
    pc: u64,
    value: i32,
    quantum: u64,
    first: bool,
}

impl<'a> Spans<'a> {
    /// `bytes` starts at the table; `entry` is the function's first pc.
    pub(super) fn new(bytes: &'a [u8], entry: u64, quantum: u8) -> Self {
        Spans {
            bytes,
            pc: entry,
            value: -1,
            quantum: u64::from(quantum.max(1)),
            first: true,
        }
    }
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let (raw_delta, n) = uvarint(self.bytes)?;
        if raw_delta == 0 && !self.first {
            self.bytes = &[];
            return None;
        }
        let (pc_delta, m) = uvarint(&self.bytes[n..])?;
        self.bytes = &self.bytes[n + m..];
        self.first = false;
        // Zig-zag: the low bit carries the sign.
        let delta = ((raw_delta >> 1) as i32) ^ -((raw_delta & 1) as i32);
        self.value = self.value.wrapping_add(delta);
        let start = self.pc;
        self.pc = self
            .pc
            .checked_add(u64::from(pc_delta).checked_mul(self.quantum)?)?;
        Some(Span {
            start,
            end: self.pc,
            value: self.value,
        })
    }
}

/// The table's value at `target`, or `None` when the table does not cover it.
pub(super) fn value_at(bytes: &[u8], entry: u64, quantum: u8, target: u64) -> Option<i32> {
    if target < entry {
        return None;
    }
    Spans::new(bytes, entry, quantum)
        .find(|s| target < s.end)
        .map(|s| s.value)
}

/// A little-endian base-128 varint of at most 32 bits, and the bytes it took.
fn uvarint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    // Five bytes carry 35 bits; anything longer is not a u32 the linker wrote.
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Encodes (value, pc length in quanta) runs the way the linker does.
#[cfg(test)]
pub(super) fn encode(runs: &[(i32, u32)]) -> Vec<u8> {
    fn push(out: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    let mut prev = -1i32;
    for &(v, len) in runs {
        let d = v.wrapping_sub(prev);
        push(&mut out, ((d << 1) ^ (d >> 31)) as u32);
        push(&mut out, len);
        prev = v;
    }
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_runs() {
        let t = encode(&[(0, 4), (0x28, 300), (0, 2), (0x28, 10)]);
        let at = |pc| value_at(&t, 0x1000, 1, pc);
        assert_eq!(at(0x1000), Some(0));
        assert_eq!(at(0x1003), Some(0));
        assert_eq!(at(0x1004), Some(0x28));
        assert_eq!(at(0x1004 + 299), Some(0x28));
        assert_eq!(at(0x1004 + 300), Some(0));
        assert_eq!(at(0x1004 + 302), Some(0x28));
        assert_eq!(at(0x1004 + 312), None, "past the table's end");
        assert_eq!(at(0xfff), None);
        // Quantum 4 (arm64): pc deltas count instructions.
        assert_eq!(value_at(&t, 0x1000, 4, 0x1010), Some(0x28));
    }

    #[test]
    fn first_pair_may_have_zero_delta() {
        // Value -1 for the first pc range is encoded as delta 0.
        let t = encode(&[(-1, 2), (5, 2)]);
        assert_eq!(value_at(&t, 0, 1, 0), Some(-1));
        assert_eq!(value_at(&t, 0, 1, 3), Some(5));
    }

    #[test]
    fn damaged_tables_end() {
        assert_eq!(value_at(&[], 0, 1, 0), None);
        assert_eq!(value_at(&[0x80; 64], 0, 1, 0), None, "overlong varint");
        assert_eq!(value_at(&[2, 0xff], 0, 1, 0), None, "truncated pc delta");
        let huge = [2, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            value_at(&huge, u64::MAX - 2, 4, u64::MAX),
            None,
            "pc overflow"
        );
    }
}
