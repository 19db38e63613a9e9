//! Build products the unwinder's unit tests share: a scratch directory, the C fixtures of
//! tests/workloads built at -O2 with or without frame pointers, and copies of a file
//! without its `.eh_frame_hdr` (which leaves it to a whole table).
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory, removed when dropped (a failing test included).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rprof-unwind-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Builds tests/workloads/`name`.c at -O2 (with -g), with or without frame pointers.
    pub fn build(&self, name: &str, frame_pointers: bool) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/workloads")
            .join(format!("{name}.c"));
        let (flag, suffix) = if frame_pointers {
            ("-fno-omit-frame-pointer", "fp")
        } else {
            ("-fomit-frame-pointer", "nofp")
        };
        let out = self.0.join(format!("{name}-{suffix}"));
        let status = Command::new("cc")
            .args(["-O2", "-g", flag, "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("cc runs");
        assert!(status.success(), "building {}", src.display());
        out
    }

    /// A copy of `source` without `.eh_frame_hdr`, named `name`.
    pub fn without_search_table(&self, source: &Path, name: &str) -> PathBuf {
        let copy = self.0.join(name);
        let ok = Command::new("objcopy")
            .arg("--remove-section=.eh_frame_hdr")
            .arg(source)
            .arg(&copy)
            .status()
            .expect("objcopy runs")
            .success();
        assert!(ok, "objcopy {}", source.display());
        copy
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
