//! Every sync the store makes goes through here, so that what start-up relies on can be checked
//! against what was really synced. Under `cfg(test)` each sync is also recorded (see
//! `power_cut`): the power-loss simulation rebuilds a data directory from the synced state only.
//!
//! What a sync makes durable (Linux, any journalling file system):
//! - `sync_data` / `sync_all` of a file: its bytes as they are, not its name in a new directory;
//! - `sync_dir`: the names in a directory as they are (created, renamed, removed files).

use std::fs::File;
use std::io;
use std::path::Path;

/// `fdatasync`: the file's bytes so far survive a power cut.
pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    file.sync_data()?;
    #[cfg(test)]
    record::file_synced(file, path);
    #[cfg(not(test))]
    let _ = path;
    Ok(())
}

/// `fsync`: the file's bytes and metadata so far survive a power cut.
pub(crate) fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    file.sync_all()?;
    #[cfg(test)]
    record::file_synced(file, path);
    #[cfg(not(test))]
    let _ = path;
    Ok(())
}

/// Syncs a directory: its entries (new files, renames, removals) survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    #[cfg(test)]
    record::dir_synced(dir);
    Ok(())
}

/// Renames `from` to `to` (the new name is durable once the directory is synced).
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    #[cfg(test)]
    record::renamed(from, to);
    Ok(())
}

/// Creates the directory `dir` and any missing parents, each made durable in its parent.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d);
        at = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The record of syncs, for the power-loss simulation.
#[cfg(test)]
pub(crate) mod record {
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// What has been synced, by path.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Synced {
        /// Length of each file at its last data sync.
        pub(crate) lengths: HashMap<PathBuf, u64>,
        /// Names made durable by a sync of their directory.
        pub(crate) names: HashSet<PathBuf>,
        /// Every file sync in order: the path and its length then.
        pub(crate) events: Vec<(PathBuf, u64)>,
    }

    static SYNCED: Mutex<Option<Synced>> = Mutex::new(None);

    fn with(f: impl FnOnce(&mut Synced)) {
        let mut guard = SYNCED.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.get_or_insert_with(Synced::default));
    }

    fn canonical(path: &Path) -> PathBuf {
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        }
    }

    pub(super) fn file_synced(file: &std::fs::File, path: &Path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let path = canonical(path);
        with(|s| {
            s.lengths.insert(path.clone(), len);
            s.events.push((path, len));
        });
    }

    pub(super) fn dir_synced(dir: &Path) {
        let Ok(dir) = std::fs::canonicalize(dir) else {
            return;
        };
        let names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| dir.join(e.file_name()))
            .collect();
        with(|s| s.names.extend(names));
    }

    pub(super) fn renamed(from: &Path, to: &Path) {
        let (from, to) = (canonical(from), canonical(to));
        with(|s| {
            // The bytes synced under the old name are the file's; its new name is not durable
            // until its directory is synced.
            if let Some(len) = s.lengths.remove(&from) {
                s.lengths.insert(to.clone(), len);
            } else {
                s.lengths.remove(&to);
            }
            s.names.remove(&from);
            s.names.remove(&to);
        });
    }

    /// What has been synced under `root` so far.
    pub(crate) fn under(root: &Path) -> Synced {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut out = Synced::default();
        with(|s| {
            out.lengths = s
                .lengths
                .iter()
                .filter(|(p, _)| p.starts_with(&root))
                .map(|(p, l)| (p.clone(), *l))
                .collect();
            out.names = s
                .names
                .iter()
                .filter(|p| p.starts_with(&root))
                .cloned()
                .collect();
            out.events = s
                .events
                .iter()
                .filter(|(p, _)| p.starts_with(&root))
                .cloned()
                .collect();
        });
        out
    }
}
