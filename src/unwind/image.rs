//! A file mapped read-only, for reading an ELF file's unwind information in place.
use std::path::Path;

/// A whole file mapped read-only: only the pages read (`.eh_frame` and the headers) cost
/// anything, where reading a 100 MB library whole took most of its table's build time.
pub struct MappedImage {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is private, read-only and owned by this value alone; nothing else
// unmaps it, so it may move to and be read from another thread.
unsafe impl Send for MappedImage {}

impl MappedImage {
    pub fn open(path: &Path) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a private read-only mapping of a file we opened; the descriptor can close
        // once it is mapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self { ptr, len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes and lives as long as `self`. A file
        // truncated under us would fault; mapped binaries are not rewritten in place.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedImage {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}
