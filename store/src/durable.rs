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

/// The record of syncs, for the power-loss simulation: kept only under the directories a test
/// watches (each sync there reads the file whole).
#[cfg(test)]
pub(crate) mod record {
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    /// A file's bytes as they were when it was synced.
    pub(crate) type Content = Arc<[u8]>;

    /// What has been synced, by path.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Synced {
        /// Each file's bytes at its last sync: all a power cut leaves of it, but for the write
        /// in flight.
        pub(crate) contents: HashMap<PathBuf, Content>,
        /// Names made durable by a sync of their directory.
        pub(crate) names: HashSet<PathBuf>,
        /// The file syncs not yet taken (`take_events`), in order: the path and its bytes then.
        pub(crate) events: Vec<(PathBuf, Content)>,
    }

    #[derive(Default)]
    struct Recorder {
        watched: Vec<PathBuf>,
        synced: Synced,
    }

    static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);

    fn with<T>(f: impl FnOnce(&mut Recorder) -> T) -> T {
        let mut guard = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.get_or_insert_with(Recorder::default))
    }

    fn canonical(path: &Path) -> PathBuf {
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        }
    }

    fn watched(path: &Path) -> bool {
        with(|r| r.watched.iter().any(|root| path.starts_with(root)))
    }

    /// Records every sync under `root` (an existing directory) from now on.
    pub(crate) fn watch(root: &Path) {
        let root = std::fs::canonicalize(root).expect("a watched root exists");
        with(|r| r.watched.push(root));
    }

    pub(super) fn file_synced(_file: &std::fs::File, path: &Path) {
        let path = canonical(path);
        if !watched(&path) {
            return;
        }
        let content: Content = std::fs::read(&path).unwrap_or_default().into();
        with(|r| {
            r.synced.contents.insert(path.clone(), content.clone());
            r.synced.events.push((path, content));
        });
    }

    pub(super) fn dir_synced(dir: &Path) {
        let Ok(dir) = std::fs::canonicalize(dir) else {
            return;
        };
        if !watched(&dir.join("x")) {
            return;
        }
        let names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| dir.join(e.file_name()))
            .collect();
        with(|r| r.synced.names.extend(names));
    }

    pub(super) fn renamed(from: &Path, to: &Path) {
        let (from, to) = (canonical(from), canonical(to));
        if !watched(&to) {
            return;
        }
        with(|r| {
            let s = &mut r.synced;
            // The bytes synced under the old name are the file's; its new name is not durable
            // until its directory is synced.
            if let Some(content) = s.contents.remove(&from) {
                s.contents.insert(to.clone(), content);
            } else {
                s.contents.remove(&to);
            }
            s.names.remove(&from);
            s.names.remove(&to);
        });
    }

    /// What has been synced under `root` so far, with the syncs made since the last call
    /// (taken: the next call returns only later ones).
    pub(crate) fn take(root: &Path) -> Synced {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        with(|r| {
            let s = &mut r.synced;
            let (mine, others) = std::mem::take(&mut s.events)
                .into_iter()
                .partition(|(p, _)| p.starts_with(&root));
            s.events = others;
            Synced {
                contents: s
                    .contents
                    .iter()
                    .filter(|(p, _)| p.starts_with(&root))
                    .map(|(p, c)| (p.clone(), c.clone()))
                    .collect(),
                names: s
                    .names
                    .iter()
                    .filter(|p| p.starts_with(&root))
                    .cloned()
                    .collect(),
                events: mine,
            }
        })
    }
}
