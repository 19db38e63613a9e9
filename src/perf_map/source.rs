//! Opening a map file safely, and reading its lines from where the last read stopped.
//!
//! Runtimes only ever append, so a [`Cursor`] remembers which file it read (device and
//! inode), how far (the end of the last complete line) and the bytes just before that
//! point. The next read goes on from there when the file is the same one, no shorter, and
//! still holds those bytes; otherwise the file was replaced, truncated or rewritten in
//! place (`jcmd PID Compiler.perfmap` rewrites in place) and is read whole again.
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::PerfMapError;

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;
/// Bytes kept from before the cursor to recognise a rewritten file.
const TAIL: usize = 64;

/// Where the last read of a file stopped.
#[derive(Debug, Clone, Default)]
pub(super) struct Cursor {
    dev: u64,
    ino: u64,
    /// The end of the last complete line read (or of an over-long line skipped).
    consumed: u64,
    /// Up to [`TAIL`] bytes ending at `consumed`.
    tail: Vec<u8>,
    /// Inside a line longer than [`CHUNK`], whose rest is skipped.
    in_long_line: bool,
    /// An unfinished last line at `consumed` was already counted (it is re-read until the
    /// runtime finishes writing it, and counted once).
    partial_counted: bool,
}

/// How a read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// The file is new to the cursor, or was replaced or rewritten: read whole.
    Whole,
    /// Only what was appended was read (maybe nothing).
    Appended,
}

/// Opens `path` if it is a regular file (not followed through a symbolic link) owned by
/// root or by `owner_uid`. `O_NONBLOCK` keeps a FIFO planted there from blocking the open.
pub(super) fn open(
    path: &Path,
    owner_uid: Option<u32>,
) -> Result<(File, std::fs::Metadata), PerfMapError> {
    let io_err = |source| PerfMapError::Io {
        path: path.to_owned(),
        source,
    };
    // Check the type before opening, so that nothing but a regular file is ever opened.
    let before = std::fs::symlink_metadata(path).map_err(io_err)?;
    if !before.file_type().is_file() {
        return Err(PerfMapError::NotRegular {
            path: path.to_owned(),
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // Replaced by a symbolic link since the check.
            Some(libc::ELOOP) => PerfMapError::NotRegular {
                path: path.to_owned(),
            },
            _ => io_err(e),
        })?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(PerfMapError::NotRegular {
            path: path.to_owned(),
        });
    }
    if let Some(expected) = owner_uid {
        if meta.uid() != 0 && meta.uid() != expected {
            return Err(PerfMapError::WrongOwner {
                path: path.to_owned(),
                owner: meta.uid(),
                expected,
            });
        }
    }
    Ok((file, meta))
}

/// What one read found, beyond the lines handed over.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ReadEnd {
    /// Lines too long to keep, and an unfinished last line (once): both malformed.
    pub malformed: u64,
}

impl Cursor {
    /// Decides whether `file` (with metadata `meta`) can be read on from this cursor.
    pub(super) fn reading(&self, file: &File, meta: &std::fs::Metadata) -> io::Result<Reading> {
        if (meta.dev(), meta.ino()) != (self.dev, self.ino) || meta.len() < self.consumed {
            return Ok(Reading::Whole);
        }
        let mut seen = vec![0; self.tail.len()];
        match file.read_exact_at(&mut seen, self.consumed - self.tail.len() as u64) {
            Ok(()) if seen == self.tail => Ok(Reading::Appended),
            // Shrunk between the fstat and the read.
            Ok(()) => Ok(Reading::Whole),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Reading::Whole),
            Err(e) => Err(e),
        }
    }

    /// Reads the complete lines of `file` after the cursor (all of it for
    /// [`Reading::Whole`]), handing each to `each` without its `\n`.
    pub(super) fn read(
        &mut self,
        file: &File,
        meta: &std::fs::Metadata,
        how: Reading,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<ReadEnd> {
        if how == Reading::Whole {
            *self = Cursor {
                dev: meta.dev(),
                ino: meta.ino(),
                ..Cursor::default()
            };
        }
        let mut end = ReadEnd::default();
        // Sized for what there is to read (most reads find a few lines, or none), grown
        // if the file grows meanwhile.
        let new_bytes = meta.len().saturating_sub(self.consumed) as usize;
        let mut buf = vec![0; new_bytes.clamp(TAIL, CHUNK)];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                if buf.len() < CHUNK {
                    buf.resize((buf.len() * 2).min(CHUNK), 0);
                } else {
                    // A whole chunk without a newline: drop it and skip to the line's end.
                    self.advance(&buf);
                    if !self.in_long_line {
                        end.malformed += 1;
                        self.in_long_line = true;
                    }
                    filled = 0;
                }
            }
            let n = match file.read_at(&mut buf[filled..], self.consumed + filled as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            filled += n;
            let Some(last_newline) = buf[..filled].iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let complete = &buf[..=last_newline];
            let mut lines = complete[..last_newline].split(|&b| b == b'\n');
            if self.in_long_line {
                // The end of the over-long line.
                lines.next();
                self.in_long_line = false;
            }
            lines.for_each(&mut each);
            self.advance(complete);
            buf.copy_within(last_newline + 1..filled, 0);
            filled -= last_newline + 1;
        }
        if filled > 0 && !self.in_long_line && !self.partial_counted {
            end.malformed += 1;
            self.partial_counted = true;
        }
        Ok(end)
    }

    /// Moves the cursor past `bytes`, which follow it in the file.
    fn advance(&mut self, bytes: &[u8]) {
        self.consumed += bytes.len() as u64;
        self.partial_counted = false;
        let keep = bytes.len().min(TAIL);
        let drop = (self.tail.len() + keep).saturating_sub(TAIL);
        self.tail.drain(..drop);
        self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
    }

    /// The offset up to which lines were read.
    #[cfg(test)]
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("perf_map_source_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Reads on from `cursor`, returning how, the lines and the malformed count.
    fn read_on(cursor: &mut Cursor, path: &Path) -> (Reading, Vec<String>, u64) {
        let (file, meta) = open(path, None).unwrap();
        let how = cursor.reading(&file, &meta).unwrap();
        let mut lines = Vec::new();
        let end = cursor
            .read(&file, &meta, how, |l| {
                lines.push(String::from_utf8_lossy(l).into_owned())
            })
            .unwrap();
        (how, lines, end.malformed)
    }

    #[test]
    fn reads_on_after_appends_and_whole_after_rewrites() {
        let dir = scratch("append");
        let path = dir.join("map");
        std::fs::write(&path, "a\nb\npart").unwrap();
        let mut cursor = Cursor::default();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Whole, vec!["a".into(), "b".into()], 1)
        );
        assert_eq!(cursor.consumed(), 4);
        // The unfinished line is not counted twice, and is read once finished.
        assert_eq!(read_on(&mut cursor, &path), (Reading::Appended, vec![], 0));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"ial\nc\n").unwrap();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Appended, vec!["partial".into(), "c".into()], 0)
        );
        // Rewritten in place, longer: the bytes before the cursor differ.
        std::fs::write(&path, "x\ny\nz\nwww\n").unwrap();
        let (how, lines, _) = read_on(&mut cursor, &path);
        assert_eq!((how, lines.len()), (Reading::Whole, 4));
        // Same size, different content (how `jcmd Compiler.perfmap` rewrites).
        std::fs::write(&path, "x\ny\nz\nvvv\n").unwrap();
        assert_eq!(read_on(&mut cursor, &path).0, Reading::Whole);
        // Truncated.
        std::fs::write(&path, "q\n").unwrap();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Whole, vec!["q".into()], 0)
        );
        // Replaced by another file.
        let other = dir.join("other");
        std::fs::write(&other, "q\nr\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(read_on(&mut cursor, &path).0, Reading::Whole);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_longer_than_a_chunk_are_skipped() {
        let dir = scratch("long");
        let path = dir.join("map");
        let mut text = b"a\n".to_vec();
        text.extend(vec![b'x'; CHUNK * 2 + 5]);
        text.extend(b"\nb\n");
        std::fs::write(&path, &text).unwrap();
        let mut cursor = Cursor::default();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Whole, vec!["a".into(), "b".into()], 1)
        );
        // Unfinished at the end of the file: the rest is skipped when it comes.
        std::fs::write(&path, &text[..CHUNK + 10]).unwrap();
        let mut cursor = Cursor::default();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Whole, vec!["a".into()], 1)
        );
        std::fs::write(&path, &text).unwrap();
        assert_eq!(
            read_on(&mut cursor, &path),
            (Reading::Appended, vec!["b".into()], 0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = scratch("kinds");
        let not_regular = |p: &Path| matches!(open(p, None), Err(PerfMapError::NotRegular { .. }));
        assert!(not_regular(&dir));
        let target = dir.join("target");
        std::fs::write(&target, "1 1 a\n").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(not_regular(&link));
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(not_regular(&fifo));
        assert!(matches!(
            open(&dir.join("missing"), None),
            Err(PerfMapError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
