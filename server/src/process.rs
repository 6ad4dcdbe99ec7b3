//! The process-wide settings the broker makes at start, each one libc call. The only `unsafe` in
//! the workspace is here (every other crate forbids it): each call below only changes a setting
//! of this process and reads or writes nothing but the values passed to it.
#![allow(unsafe_code)]

/// The allocator of the broker's binaries (each declares it `#[global_allocator]`). mimalloc
/// against glibc's malloc, same benchmark on one machine: the ledger's append rate 22% higher
/// on an empty log and 38% higher at 2 M records (0.85 of the empty rate against 0.76); the
/// log writer and the views' follower allocate a small key or value for every view write.
pub use mimalloc::MiMalloc as Allocator;

/// Everything the broker creates — segments, views, keys, checkpoints — is its own alone:
/// directories 0700, files 0600, whatever the caller's umask.
pub fn restrict_file_modes() {
    // SAFETY: umask only sets this process's file-mode creation mask.
    unsafe { libc::umask(0o077) };
}

/// mimalloc (3) gives freed memory back to the system a second after it is freed (its purge
/// delay), but only when an allocation or free on some thread comes to look: a server gone
/// quiet after a flood kept it (the zero-window hoarding test: 76 → 166 → 139 MiB). A thread
/// here looks every half second, so the memory a flood made the server hold is given back
/// within about 1.5 s of the flood's end (76 → 133 → 64 MiB). Purging at once instead (a delay
/// of 0, as before) cost every free a system call: the benchmark's raw echo ran at 55–58 k
/// calls/s with it against 78–81 k with this, the broker at 12.5–14.2 k against 14.6–15.0 k.
/// Call once, at start.
pub fn return_freed_memory() {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(500);
    let started = std::thread::Builder::new()
        .name("mem-purge".into())
        .spawn(|| {
            loop {
                std::thread::sleep(EVERY);
                // SAFETY: mi_collect(false) collects this thread's heap and purges the memory
                // whose delay has passed, process-wide; it changes no live allocation.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    if let Err(e) = started {
        eprintln!("warning: freed memory is not given back while the server is idle: {e}");
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
