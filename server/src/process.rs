//! The process-wide settings the broker makes at start, each one libc call. The only `unsafe` in
//! the workspace is here (every other crate forbids it): each call below only changes a setting
//! of this process and reads or writes nothing but the values passed to it.
#![allow(unsafe_code)]

/// Everything the broker creates — segments, views, keys, checkpoints — is its own alone:
/// directories 0700, files 0600, whatever the caller's umask.
pub fn restrict_file_modes() {
    // SAFETY: umask only sets this process's file-mode creation mask.
    unsafe { libc::umask(0o077) };
}

/// glibc raises its mmap threshold after freeing a large block, after which answer pages and
/// large bodies land in arenas it keeps; a fixed threshold keeps them mmapped, so the memory a
/// flood made the server hold is returned when the flood ends. Call before any thread starts.
pub fn return_freed_memory() {
    // SAFETY: mallopt only changes allocator tuning.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

/// Raises the soft open-file limit to the hard limit where it can; returns the soft limit now
/// (`None` if it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Some(limit.rlim_cur)
}
