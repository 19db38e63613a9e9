//! Reading and writing profile files: one gzipped, encoded `Profile` per file.
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use super::proto::Profile;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is corrupt or truncated gzip data: {source}")]
    Gzip { path: String, source: io::Error },
    #[error("{path} is not a pprof profile: {source}")]
    Decode {
        path: String,
        source: prost::DecodeError,
    },
}

/// Reads a profile, gzipped or not.
pub fn read_profile(path: &Path) -> Result<Profile, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io_err)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut plain)
            .map_err(|source| ReadError::Gzip {
                path: path.display().to_string(),
                source,
            })?;
        raw = plain;
    }
    Profile::decode(&raw[..]).map_err(|source| ReadError::Decode {
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
