//! Reading and writing profile files: one gzipped, encoded `Profile` per file.
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use super::proto::Profile;

/// Decompressed profiles larger than this are refused, so a small hostile file cannot
/// exhaust memory.
pub const MAX_PROFILE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("corrupt or truncated gzip data ({0})")]
    Gzip(io::Error),
    #[error("it decompresses to more than {MAX_PROFILE_BYTES} bytes")]
    TooLarge,
    #[error("not a pprof profile ({0})")]
    Proto(prost::DecodeError),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Decode { path: String, source: DecodeError },
}

/// Decodes an encoded profile, gzipped or not.
pub fn decode_profile(raw: &[u8]) -> Result<Profile, DecodeError> {
    decode_within(raw, MAX_PROFILE_BYTES)
}

fn decode_within(raw: &[u8], limit: u64) -> Result<Profile, DecodeError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(raw)
            .take(limit + 1)
            .read_to_end(&mut plain)
            .map_err(DecodeError::Gzip)?;
        if plain.len() as u64 > limit {
            return Err(DecodeError::TooLarge);
        }
        return Profile::decode(&plain[..]).map_err(DecodeError::Proto);
    }
    Profile::decode(raw).map_err(DecodeError::Proto)
}

/// Reads a profile file, gzipped or not.
pub fn read_profile(path: &Path) -> Result<Profile, ReadError> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|source| ReadError::Io {
            path: path.display().to_string(),
            source,
        })?;
    decode_profile(&raw).map_err(|source| ReadError::Decode {
        path: path.display().to_string(),
        source,
    })
}

/// Encodes and gzips `profile` into `out`, checking the encoder's `finish()`.
pub fn write_profile<W: Write>(profile: &Profile, out: W) -> io::Result<W> {
    let mut gz = GzEncoder::new(BufWriter::new(out), Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    let mut buffered = gz.finish()?;
    buffered.flush()?;
    buffered.into_inner().map_err(|e| e.into_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plain_and_gzipped_and_names_what_is_wrong() {
        let p = Profile {
            string_table: vec![String::new(), "x".into()],
            ..Default::default()
        };
        let plain = p.encode_to_vec();
        let gz = write_profile(&p, Vec::new()).unwrap();
        assert_eq!(decode_profile(&plain).unwrap(), p);
        assert_eq!(decode_profile(&gz).unwrap(), p);
        assert!(matches!(
            decode_profile(&gz[..gz.len() / 2]),
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(
            decode_profile(b"\x07garbage"),
            Err(DecodeError::Proto(_))
        ));
    }

    #[test]
    fn refuses_gzip_bombs() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&vec![0u8; 2 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(matches!(
            decode_within(&bomb, 1 << 20),
            Err(DecodeError::TooLarge)
        ));
    }
}
