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

/// mimalloc (3) returns freed memory to the system a second after it is freed, and memory freed
/// by another thread later still; with a purge delay of 0 it does so at once, so the memory a flood made the server
/// hold is given back when the flood ends (the zero-window hoarding test: 48 → 114 → 47 MiB,
/// against 72 → 158 → 127 MiB with the default). Call before any thread starts.
pub fn return_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc's `mi_option_t` (libmimalloc-sys names no constant
    /// for it); the test below checks that it is the option whose default is 1,000 ms.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only changes allocator tuning.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
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

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    /// The option `return_freed_memory` sets is mimalloc's purge delay: the one whose default
    /// is 1,000 ms, between `eager_commit_delay` (1) and `use_numa_nodes` (0).
    #[test]
    fn the_option_set_is_the_purge_delay() {
        // SAFETY: mi_option_get only reads allocator tuning.
        let get = |option| unsafe { mi_option_get(option) };
        assert_eq!((get(14), get(15), get(16)), (1, 1000, 0));
        super::return_freed_memory();
        assert_eq!(get(15), 0);
    }
}
