//! Build products the unwinder's unit tests share: a scratch directory, the C fixtures of
//! tests/workloads built at -O2 with or without frame pointers (for this machine, or
//! cross-built for arm64), with their call frame information in `.eh_frame` or only in
//! `.debug_frame` (compressed or not), and copies of a file without its `.eh_frame_hdr`
//! (which leaves it to a whole table).
use std::path::{Path, PathBuf};
use std::process::Command;

/// The machine a fixture is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This one, with `cc`.
    Host,
    /// arm64 (AArch64) Linux, with Debian's cross compiler where this machine is not one.
    Aarch64,
}

impl Target {
    /// The C compiler that builds for this target.
    pub fn compiler(self) -> &'static str {
        match self {
            Self::Aarch64 if !cfg!(target_arch = "aarch64") => "aarch64-linux-gnu-gcc",
            _ => "cc",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Aarch64 => "arm64",
        }
    }
}

/// Where the compiler puts a fixture's call frame information. The C runtime's start files
/// bring `.eh_frame` entries of their own whatever the fixture's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSection {
    /// `.eh_frame`, the default of both compilers (asynchronous unwind tables).
    Eh,
    /// Only `.debug_frame`: no unwind tables, and -g.
    Debug,
    /// Only `.debug_frame`, zlib-compressed (SHF_COMPRESSED) as the other debug sections.
    CompressedDebug,
}

impl FrameSection {
    fn flags(self) -> &'static [&'static str] {
        const NO_UNWIND_TABLES: [&str; 2] =
            ["-fno-asynchronous-unwind-tables", "-fno-unwind-tables"];
        match self {
            Self::Eh => &[],
            Self::Debug => &NO_UNWIND_TABLES,
            Self::CompressedDebug => &[NO_UNWIND_TABLES[0], NO_UNWIND_TABLES[1], "-gz=zlib"],
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Eh => "",
            Self::Debug => "-df",
            Self::CompressedDebug => "-dfz",
        }
    }
}

/// The arm64 build of glibc that comes with the cross compiler (Debian's libc6-arm64-cross).
pub const AARCH64_LIBC: &str = "/usr/aarch64-linux-gnu/lib/libc.so.6";

/// Whether arm64 fixtures can be built here (and the arm64 libc checked): the cross compiler
/// runs and the cross libc is installed. Under `CI=true` their absence fails the calling
/// test, since nothing skips there; elsewhere it is skipped with a banner on stderr.
pub fn aarch64_toolchain() -> bool {
    let compiler = Target::Aarch64.compiler();
    let runs = Command::new(compiler)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !runs {
        missing.push(format!("{compiler} does not run"));
    }
    if !Path::new(AARCH64_LIBC).exists() {
        missing.push(format!("{AARCH64_LIBC} is missing"));
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    let fix = "scripts/setup.sh installs them (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "the arm64 cross toolchain is needed under CI=true, where nothing skips: {why}; {fix}"
        );
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let banner = format!(
        "\n\
         ************************************************************************\n\
         *** SKIPPED: {test}\n\
         *** it needs the arm64 cross toolchain: {why}\n\
         *** {fix}\n\
         *** (with CI=true this is a failure instead of a skip)\n\
         ************************************************************************\n"
    );
    // Straight to the stderr handle: the harness captures the output of passing tests.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    false
}

/// A scratch directory, removed when dropped (a failing test included).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rprof-unwind-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Builds tests/workloads/`name`.c for this machine at -O2 (with -g), with or without
    /// frame pointers.
    pub fn build(&self, name: &str, frame_pointers: bool) -> PathBuf {
        self.build_for(Target::Host, name, frame_pointers, FrameSection::Eh)
    }

    /// Builds tests/workloads/`name`.c for `target` at -O2 (with -g), with or without frame
    /// pointers, its call frame information where `cfi` says.
    pub fn build_for(
        &self,
        target: Target,
        name: &str,
        frame_pointers: bool,
        cfi: FrameSection,
    ) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/workloads")
            .join(format!("{name}.c"));
        let (flag, suffix) = if frame_pointers {
            ("-fno-omit-frame-pointer", "fp")
        } else {
            ("-fomit-frame-pointer", "nofp")
        };
        // The host's .eh_frame builds keep the names they always had.
        let out = match (target, cfi) {
            (Target::Host, FrameSection::Eh) => self.0.join(format!("{name}-{suffix}")),
            _ => self
                .0
                .join(format!("{name}-{}-{suffix}{}", target.tag(), cfi.tag())),
        };
        let compiler = target.compiler();
        let output = Command::new(compiler)
            .args(["-O2", "-g", flag])
            .args(cfi.flags())
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("{compiler} runs: {e}"));
        assert!(
            output.status.success(),
            "building {} with {compiler}: {}",
            src.display(),
            String::from_utf8_lossy(&output.stderr)
        );
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
