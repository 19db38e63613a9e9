//! The output file: claimed before sampling starts (so an unwritable path fails early),
//! written to a temporary file beside it and renamed into place, so a failed run never
//! leaves a truncated profile behind.
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("cannot write {0}: it is a directory")]
    IsDirectory(String),
}

/// An output path that has been checked and reserved.
#[derive(Debug)]
pub struct PendingOutput {
    path: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl PendingOutput {
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let shown = path.display().to_string();
        if path.is_dir() {
            return Err(OutputError::IsDirectory(shown));
        }
        let name = path
            .file_name()
            .ok_or_else(|| OutputError::IsDirectory(shown.clone()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".rprof-{}.tmp", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|source| OutputError::Io {
                path: shown,
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            file: Some(file),
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file with `write` and moves it into place; on failure nothing is left.
    pub fn commit<E: From<io::Error>>(
        mut self,
        write: impl FnOnce(&mut File) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut file = self.file.take().expect("commit is called once");
        write(&mut file)?;
        file.sync_all()?;
        fs::rename(&self.temp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingOutput {
    fn drop(&mut self) {
        // Not renamed into place: a failed or abandoned write leaves nothing behind.
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rprof-out-{name}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn unwritable_paths_fail_up_front() {
        let err = PendingOutput::create(Path::new("/nonexistent-dir/p.pb.gz")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot write /nonexistent-dir/p.pb.gz"));
        let dir = scratch_dir("isdir");
        assert!(matches!(
            PendingOutput::create(&dir),
            Err(OutputError::IsDirectory(_))
        ));
    }

    #[test]
    fn commit_writes_in_place_and_abandoning_leaves_nothing() {
        let dir = scratch_dir("commit");
        let path = dir.join("p.pb.gz");
        let pending = PendingOutput::create(&path).unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "temp file removed");
        let pending = PendingOutput::create(&path).unwrap();
        pending
            .commit(|f| crate::pprof::write_profile(&Default::default(), f).map(drop))
            .unwrap();
        assert!(crate::pprof::read_profile(&path).is_ok());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
