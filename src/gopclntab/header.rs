//! The table header: which layout generation wrote it and where its sub-tables start.
//!
//! Layouts, by the magic in the first four bytes:
//! - `0xfffffffb`, Go 1.2–1.15: one flat table; function, file and pc-value offsets are all
//!   from the table start, and the function table follows the header directly.
//! - `0xfffffffa`, Go 1.16–1.17: the header lists offsets of separate name, compilation-unit,
//!   file, pc-value and function tables; function entries are still absolute addresses.
//! - `0xfffffff0`, Go 1.18–1.19: the header gains `textStart` and entries become 32-bit
//!   offsets from it; funcdata become offsets from the module's `go:func.*` symbol.
//! - `0xfffffff1`, Go 1.20+: the same header; each function record gains `startLine` and
//!   inline-tree entries shrink to 16 bytes.

use super::raw::Raw;
use super::GoTableError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Version {
    Go12,
    Go116,
    Go118,
    Go120,
}

impl Version {
    pub(super) fn from_magic(magic: u32) -> Option<Version> {
        match magic {
            0xfffffffb => Some(Version::Go12),
            0xfffffffa => Some(Version::Go116),
            0xfffffff0 => Some(Version::Go118),
            0xfffffff1 => Some(Version::Go120),
            _ => None,
        }
    }
}

/// Where everything is, as byte offsets into the table.
#[derive(Clone, Debug)]
pub(super) struct Header {
    pub version: Version,
    /// Instruction size unit of pc deltas (1 on x86, 4 on arm64).
    pub quantum: u8,
    pub ptr_size: u8,
    pub nfunc: usize,
    /// Base that function entry offsets are added to (Go 1.18+); 0 before.
    pub text_start: u64,
    /// Base of function name offsets.
    pub funcnames: usize,
    /// The compilation-unit table: per-CU file numbers to file-name offsets (Go 1.16+).
    pub cutab: usize,
    /// Base of file-name offsets (Go 1.16+), or the file-number table itself (Go 1.2).
    pub filetab: usize,
    /// Base of pc-value table offsets.
    pub pctab: usize,
    /// Base that function-record offsets in the function table are added to.
    pub funcs: usize,
    /// The function table: `nfunc + 1` (entry, record offset) pairs, the last entry being
    /// the end of text.
    pub functab: usize,
}

impl Header {
    pub(super) fn parse(raw: Raw<'_>) -> Result<Header, GoTableError> {
        let bad = GoTableError::Malformed;
        let magic = raw.u32(0).ok_or(bad("truncated header"))?;
        let version = Version::from_magic(magic).ok_or(GoTableError::UnknownMagic(magic))?;
        let (pad1, pad2) = (raw.u8(4), raw.u8(5));
        let quantum = raw.u8(6).ok_or(bad("truncated header"))?;
        let ptr_size = raw.u8(7).ok_or(bad("truncated header"))?;
        if pad1 != Some(0) || pad2 != Some(0) {
            return Err(bad("nonzero header padding"));
        }
        if !matches!(quantum, 1 | 2 | 4) || !matches!(ptr_size, 4 | 8) {
            return Err(bad("implausible instruction or pointer size"));
        }
        let word = |i: usize| {
            raw.word(8 + i * ptr_size as usize, ptr_size)
                .ok_or(bad("truncated header"))
        };
        let offset = |i: usize| -> Result<usize, GoTableError> {
            let v = word(i)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v <= raw.len())
                .ok_or(bad("header offset out of range"))
        };
        let nfunc = word(0)?;
        // Each function needs at least a function-table pair; this bounds nfunc by the bytes.
        let nfunc = usize::try_from(nfunc)
            .ok()
            .filter(|&n| n > 0 && n <= raw.len() / 8)
            .ok_or(bad("implausible function count"))?;
        let ps = ptr_size as usize;
        let h = match version {
            Version::Go12 => {
                let functab = 8 + ps;
                let pairs_end = functab + (2 * nfunc + 1) * ps;
                let filetab = raw.u32(pairs_end).ok_or(bad("truncated function table"))? as usize;
                Header {
                    version,
                    quantum,
                    ptr_size,
                    nfunc,
                    text_start: 0,
                    funcnames: 0,
                    cutab: 0,
                    filetab,
                    pctab: 0,
                    funcs: 0,
                    functab,
                }
            }
            Version::Go116 => Header {
                version,
                quantum,
                ptr_size,
                nfunc,
                text_start: 0,
                funcnames: offset(2)?,
                cutab: offset(3)?,
                filetab: offset(4)?,
                pctab: offset(5)?,
                funcs: offset(6)?,
                functab: offset(6)?,
            },
            Version::Go118 | Version::Go120 => Header {
                version,
                quantum,
                ptr_size,
                nfunc,
                text_start: word(2)?,
                funcnames: offset(3)?,
                cutab: offset(4)?,
                filetab: offset(5)?,
                pctab: offset(6)?,
                funcs: offset(7)?,
                functab: offset(7)?,
            },
        };
        let pairs_bytes = (nfunc + 1)
            .checked_mul(h.ftab_pair_size())
            .ok_or(bad("function count"))?;
        if h.functab
            .checked_add(pairs_bytes)
            .is_none_or(|end| end > raw.len())
        {
            return Err(bad("function table out of range"));
        }
        Ok(h)
    }

    /// Bytes of one function-table pair.
    pub(super) fn ftab_pair_size(&self) -> usize {
        match self.version {
            Version::Go12 | Version::Go116 => 2 * self.ptr_size as usize,
            Version::Go118 | Version::Go120 => 8,
        }
    }

    /// Funcdata slots are 32-bit offsets from `go:func.*` (Go 1.18+), not addresses.
    pub(super) fn funcdata_is_offset(&self) -> bool {
        self.version >= Version::Go118
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_headers() {
        let mut h = vec![0u8; 128];
        h[..8].copy_from_slice(&[0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8]);
        // nfunc 0
        assert!(Header::parse(Raw::new(&h, false)).is_err());
        h[8] = 1;
        // offsets all 0: function table at 0 with 2 pairs fits, so this parses
        assert!(Header::parse(Raw::new(&h, false)).is_ok());
        h[8 + 7 * 8] = 125; // function table runs off the end
        assert!(Header::parse(Raw::new(&h, false)).is_err());
        h[6] = 3;
        assert!(Header::parse(Raw::new(&h, false)).is_err());
        assert!(matches!(
            Header::parse(Raw::new(&[1, 2, 3, 4, 0, 0, 1, 8], false)),
            Err(GoTableError::UnknownMagic(0x04030201))
        ));
        assert!(Header::parse(Raw::new(&[0xf1, 0xff], false)).is_err());
    }
}
