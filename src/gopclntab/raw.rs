//! Bounds-checked integer and string reads from table bytes.
//!
//! Every offset in a pclntab comes from the table itself, so every read here answers `None`
//! past the end instead of indexing: a damaged table then degrades to "unknown", never a panic.

/// Longest name or path we return. Real ones are far shorter (generic instantiations reach a
/// few hundred bytes); the cap keeps a missing NUL from turning a lookup into a huge copy.
pub(super) const MAX_STRING: usize = 16 * 1024;

/// Table bytes and the byte order of the image they came from.
#[derive(Clone, Copy)]
pub(super) struct Raw<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> Raw<'a> {
    pub(super) fn new(data: &'a [u8], big_endian: bool) -> Self {
        Raw { data, big_endian }
    }

    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// The bytes from `off` to the end.
    pub(super) fn tail(&self, off: usize) -> Option<&'a [u8]> {
        self.data.get(off..)
    }

    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        self.data.get(off..end)?.try_into().ok()
    }

    pub(super) fn u8(&self, off: usize) -> Option<u8> {
        self.data.get(off).copied()
    }

    pub(super) fn u32(&self, off: usize) -> Option<u32> {
        let b = self.array::<4>(off)?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(super) fn i32(&self, off: usize) -> Option<i32> {
        self.u32(off).map(|v| v as i32)
    }

    pub(super) fn i16(&self, off: usize) -> Option<i16> {
        let b = self.array::<2>(off)?;
        Some(if self.big_endian {
            i16::from_be_bytes(b)
        } else {
            i16::from_le_bytes(b)
        })
    }

    pub(super) fn u64(&self, off: usize) -> Option<u64> {
        let b = self.array::<8>(off)?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A target-pointer-sized word (4 or 8 bytes).
    pub(super) fn word(&self, off: usize, ptr_size: u8) -> Option<u64> {
        match ptr_size {
            4 => self.u32(off).map(u64::from),
            8 => self.u64(off),
            _ => None,
        }
    }

    /// The NUL-terminated string at `off`, without its NUL; `None` if it runs off the end or
    /// past [`MAX_STRING`].
    pub(super) fn cstr(&self, off: usize) -> Option<&'a [u8]> {
        let rest = self.data.get(off..)?;
        let rest = &rest[..rest.len().min(MAX_STRING + 1)];
        let nul = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..nul])
    }
}

/// Writes a pointer-sized word in place, as a relocation would; false if out of range.
pub(super) fn put_word(
    data: &mut [u8],
    off: usize,
    value: u64,
    ptr_size: u8,
    big_endian: bool,
) -> bool {
    let n = ptr_size as usize;
    let Some(dst) = off.checked_add(n).and_then(|end| data.get_mut(off..end)) else {
        return false;
    };
    match (n, big_endian) {
        (4, false) => dst.copy_from_slice(&(value as u32).to_le_bytes()),
        (4, true) => dst.copy_from_slice(&(value as u32).to_be_bytes()),
        (8, false) => dst.copy_from_slice(&value.to_le_bytes()),
        (8, true) => dst.copy_from_slice(&value.to_be_bytes()),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let raw = Raw::new(&[1, 0, 0, 0, b'a', b'b', 0, b'c'], false);
        assert_eq!(raw.u32(0), Some(1));
        assert_eq!(raw.u32(5), None);
        assert_eq!(raw.u32(usize::MAX - 1), None);
        assert_eq!(raw.cstr(4), Some(&b"ab"[..]));
        assert_eq!(raw.cstr(7), None, "no NUL before the end");
        assert_eq!(Raw::new(&[0, 0, 0, 1], true).u32(0), Some(1));
    }
}
