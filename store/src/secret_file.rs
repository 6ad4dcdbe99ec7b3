//! The one way every secret file is written: created new, mode 0600, synced, its name synced
//! into its directory (a key lost to a power cut would leave the log unverifiable).

use std::path::Path;

/// Writes a new secret file with mode 0600 (fails if it exists).
pub fn write_new_secret(path: &Path, secret: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        crate::durable::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret)?;
    crate::durable::sync_all(&f, path)?;
    crate::durable::sync_dir(parent.unwrap_or(Path::new(".")))
}
