//! The pseudonym key file, read (or made, once) at start-up.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::crypto::Keys;
use crate::store::secret_file::write_new_secret;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("pseudonym key {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold 32 bytes.
    #[error("pseudonym key {0}: must hold exactly 32 bytes")]
    BadLength(String),
    /// The system random source failed.
    #[error("system random source failed")]
    Random,
}

/// Loads the 32-byte pseudonym key at `path`, making it (mode 0600) if it does not exist.
pub fn load_or_create_keys(path: &Path) -> Result<Keys, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let secret = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut fresh = [0u8; 32];
            SystemRandom::new()
                .fill(&mut fresh)
                .map_err(|_| KeyError::Random)?;
            write_new_secret(path, &fresh).map_err(io)?;
            fresh.to_vec()
        }
        Err(e) => return Err(io(e)),
    };
    if secret.len() != 32 {
        return Err(KeyError::BadLength(path.display().to_string()));
    }
    Ok(Keys::from_secret(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/pseudonym.key");
        let k1 = load_or_create_keys(&path).unwrap();
        let k2 = load_or_create_keys(&path).unwrap();
        assert_eq!(k1.staff("a", "b"), k2.staff("a", "b"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            load_or_create_keys(&path),
            Err(KeyError::BadLength(_))
        ));
    }
}
