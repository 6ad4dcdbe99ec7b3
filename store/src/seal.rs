//! Bodies sealed at rest: each body frame is encrypted with AES-256-GCM under a body key kept in
//! `keys/body/` (mode 0600), so a copied data directory reveals no name, date of birth, reason
//! or answer.
//!
//! A sealed frame is `kind|0x40 request_id:[16] key_id:u32 nonce:[12] AES-256-GCM(salt:[32]
//! body) tag:[16]`, the first 21 bytes (kind, request id, key id) bound as associated data. The
//! kind and request id stay in the clear because the views are rebuilt from them and retention
//! erases by them; they reveal only that an exchange had a body. Frames written before sealing
//! (no 0x40 flag) are still read. Erasure zeroes everything after the request id, whatever the
//! frame's form.
//!
//! Keys: `keys/body/<id>.key`, 32 random bytes each, id a decimal number; new bodies are sealed
//! with the highest id, and every key present opens what it sealed. Back the directory up with
//! the log signing key (a body whose key is lost cannot be read again); to rotate, stop the
//! broker, run `infoshare-server --new-body-key DATA_DIR`, and start it: new bodies use the new
//! key, old ones keep theirs. A frame under a key id not loaded sends the keys to be read again
//! from their directory: brokers sharing one (on one PostgreSQL log) open what a broker restarted
//! with a newer key sealed, without a restart of their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::bodies::BodyEntry;
use crate::codec::DecodeError;

pub use crate::bodies::SEALED;
const HEADER: usize = 1 + 16 + 4;
const TAG: usize = 16;

type KeyMap = BTreeMap<u32, Arc<LessSafeKey>>;

/// The body keys of a data directory.
pub struct BodyKeys {
    /// Where they are read from (`None`: given, as in tests), read again for a missing id.
    dir: Option<PathBuf>,
    keys: RwLock<KeyMap>,
    rng: SystemRandom,
}

impl std::fmt::Debug for BodyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyKeys({:?})", self.read().keys().collect::<Vec<_>>())
    }
}

/// Why a body frame could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The frame is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// No key of that id is in `keys/body/`.
    #[error("sealed under body key {0}, which is not in keys/body")]
    MissingKey(u32),
    /// The frame was changed, or sealed under another key of that id.
    #[error("body frame fails authentication (changed, or the wrong key)")]
    Tampered,
}

fn key_of(bytes: &[u8]) -> Result<LessSafeKey, String> {
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| "not a 32-byte key")?;
    Ok(LessSafeKey::new(unbound))
}

impl BodyKeys {
    /// The keys in `dir` (`keys/body`), making the first one (mode 0600) if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        let keys = Self::load(dir)?;
        if keys.read().is_empty() {
            return Self::add_key(dir);
        }
        Ok(keys)
    }

    /// Writes a new key with the next id into `dir`; the keys then in it.
    pub fn add_key(dir: &Path) -> Result<Self, String> {
        let existing = read_keys(dir)?;
        let id = existing.keys().next_back().map_or(1, |id| id + 1);
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| "system random source failed".to_string())?;
        let path = dir.join(format!("{id}.key"));
        crate::secret_file::write_new_secret(&path, &secret)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<Self, String> {
        Ok(Self {
            dir: Some(dir.to_path_buf()),
            keys: RwLock::new(read_keys(dir)?),
            rng: SystemRandom::new(),
        })
    }

    /// Keys from given secrets (tests).
    pub fn from_secrets(secrets: &[(u32, [u8; 32])]) -> Self {
        Self {
            dir: None,
            keys: RwLock::new(
                secrets
                    .iter()
                    .map(|(id, s)| (*id, Arc::new(key_of(s).expect("32 bytes"))))
                    .collect(),
            ),
            rng: SystemRandom::new(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyMap> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of `id`, the directory read again if it is not loaded (another broker of a
    /// shared log may have been started with a newer key).
    fn key(&self, id: u32) -> Result<Arc<LessSafeKey>, SealError> {
        if let Some(key) = self.read().get(&id) {
            return Ok(key.clone());
        }
        let dir = self.dir.as_ref().ok_or(SealError::MissingKey(id))?;
        let fresh = read_keys(dir).map_err(|e| {
            tracing::warn!(error = %e, "could not read the body keys again");
            SealError::MissingKey(id)
        })?;
        let key = fresh.get(&id).cloned().ok_or(SealError::MissingKey(id))?;
        // Only ever added to: a key loaded once stays (its bodies may still be read).
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for (id, key) in fresh {
            keys.entry(id).or_insert(key);
        }
        Ok(key)
    }

    /// The sealed frame of `entry`, under the newest key.
    pub fn seal(&self, entry: &BodyEntry) -> Vec<u8> {
        self.seal_all(std::slice::from_ref(entry))
            .pop()
            .expect("one frame for one body")
    }

    /// [`seal`](Self::seal) for each of `entries`, in their order: one read of the key ring and
    /// one draw from the system's random source for all of their nonces. A batch's bodies are
    /// sealed on the log writer's path, where a draw (a system call) a body was half of their
    /// sealing: 35 bodies of 400 bytes, 1.05–1.34 µs a body one by one, 0.45–0.48 at once.
    pub fn seal_all(&self, entries: &[BodyEntry]) -> Vec<Vec<u8>> {
        let (id, key) = {
            let keys = self.read();
            let (&id, key) = keys.iter().next_back().expect("at least one body key");
            (id, key.clone())
        };
        // Random 96-bit nonces: safe for far more bodies than one key will ever seal.
        let mut nonces = vec![0u8; NONCE_LEN * entries.len()];
        self.rng
            .fill(&mut nonces)
            .expect("the system random source failed");
        entries
            .iter()
            .zip(nonces.chunks_exact(NONCE_LEN))
            .map(|(entry, nonce)| {
                let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("NONCE_LEN bytes");
                let plain = entry.encode();
                let mut out = Vec::with_capacity(HEADER + NONCE_LEN + plain.len() - 17 + TAG);
                out.push(plain[0] | SEALED);
                out.extend_from_slice(&plain[1..17]);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&nonce);
                let mut sealed = plain[17..].to_vec();
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&out[..HEADER]),
                    &mut sealed,
                )
                .expect("AES-GCM seals any body the broker accepts");
                out.extend_from_slice(&sealed);
                out
            })
            .collect()
    }

    /// Opens a stored frame (sealed, or plain from before sealing).
    pub fn open(&self, stored: &[u8]) -> Result<BodyEntry, SealError> {
        if stored.first().is_none_or(|k| k & SEALED == 0) {
            return Ok(BodyEntry::decode(stored)?);
        }
        if stored.len() < HEADER + NONCE_LEN + TAG {
            return Err(DecodeError::Truncated(stored.len()).into());
        }
        let id = u32::from_be_bytes(stored[17..21].try_into().expect("4 bytes"));
        let key = self.key(id)?;
        let nonce: [u8; NONCE_LEN] = stored[HEADER..HEADER + NONCE_LEN]
            .try_into()
            .expect("12 bytes");
        let mut sealed = stored[HEADER + NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&stored[..HEADER]),
                &mut sealed,
            )
            .map_err(|_| SealError::Tampered)?;
        let mut frame = Vec::with_capacity(17 + plain.len());
        frame.push(stored[0] & !SEALED);
        frame.extend_from_slice(&stored[1..17]);
        frame.extend_from_slice(plain);
        Ok(BodyEntry::decode(&frame)?)
    }
}

/// The keys in `dir` by id (none if it does not exist).
fn read_keys(dir: &Path) -> Result<KeyMap, String> {
    let mut keys = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".key"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = key_of(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        keys.insert(id, Arc::new(key));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageKind;
    use crate::records::RequestId;

    fn entry() -> BodyEntry {
        BodyEntry {
            kind: MessageKind::Request,
            request_id: RequestId([7; 16]),
            salt: [9; 32],
            body: b"Aroha Ngata 2012-03-04 NHI ZZZ0016".to_vec(),
        }
    }

    #[test]
    fn sealed_frames_hide_the_body_and_open_with_their_key() {
        let old = BodyKeys::from_secrets(&[(1, [1; 32])]);
        let both = BodyKeys::from_secrets(&[(1, [1; 32]), (2, [2; 32])]);
        let sealed = old.seal(&entry());
        assert!(!sealed.windows(5).any(|w| w == b"Ngata"), "no plaintext");
        assert_eq!(
            BodyEntry::decode_key(&sealed).unwrap(),
            (MessageKind::Request, RequestId([7; 16]))
        );
        assert_eq!(
            both.open(&sealed).unwrap(),
            entry(),
            "an older key still opens its bodies"
        );
        let newer = both.seal(&entry());
        assert_eq!(
            u32::from_be_bytes(newer[17..21].try_into().unwrap()),
            2,
            "the newest key seals"
        );
        assert!(matches!(old.open(&newer), Err(SealError::MissingKey(2))));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(both.open(&flipped), Err(SealError::Tampered)));
        let mut moved = sealed.clone();
        moved[5] ^= 1; // another request id: the header is authenticated
        assert!(matches!(both.open(&moved), Err(SealError::Tampered)));
        // Frames from before sealing are read as they are.
        assert_eq!(both.open(&entry().encode()).unwrap(), entry());
        // Erasure keeps the key of a sealed frame readable.
        let erased = BodyEntry::erased(&sealed);
        assert!(BodyEntry::is_erased(&erased));
        assert_eq!(
            BodyEntry::decode_key(&erased).unwrap().1,
            RequestId([7; 16])
        );
    }

    /// A batch's bodies sealed at once: each frame opens to its own body, in order, under a
    /// nonce of its own (one draw of random bytes, cut into one nonce a body).
    #[test]
    fn bodies_sealed_at_once_open_in_order_each_with_its_own_nonce() {
        let keys = BodyKeys::from_secrets(&[(1, [1; 32])]);
        let entries: Vec<BodyEntry> = (0..5u8)
            .map(|i| BodyEntry {
                request_id: RequestId([i; 16]),
                body: vec![i; 40],
                ..entry()
            })
            .collect();
        let sealed = keys.seal_all(&entries);
        let opened: Vec<BodyEntry> = sealed.iter().map(|s| keys.open(s).unwrap()).collect();
        assert_eq!(opened, entries);
        let nonce = |frame: &Vec<u8>| frame[HEADER..HEADER + NONCE_LEN].to_vec();
        let nonces: std::collections::BTreeSet<Vec<u8>> = sealed.iter().map(nonce).collect();
        assert_eq!(nonces.len(), entries.len(), "a nonce was used twice");
        assert!(keys.seal_all(&[]).is_empty());
    }

    #[test]
    fn keys_are_made_once_with_mode_0600_and_rotated_by_adding() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let body_dir = dir.path().join("keys/body");
        let first = BodyKeys::load_or_create(&body_dir).unwrap();
        let sealed = first.seal(&entry());
        let again = BodyKeys::load_or_create(&body_dir).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), entry());
        let mode = std::fs::metadata(body_dir.join("1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let rotated = BodyKeys::add_key(&body_dir).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), entry());
        assert_eq!(
            u32::from_be_bytes(rotated.seal(&entry())[17..21].try_into().unwrap()),
            2
        );
        // A broker loaded before the new key (another broker's, on a shared directory) opens
        // what the new key sealed: the missing id sends it back to the directory.
        assert_eq!(again.open(&rotated.seal(&entry())).unwrap(), entry());
        assert!(matches!(
            again.open(&BodyKeys::from_secrets(&[(9, [9; 32])]).seal(&entry())),
            Err(SealError::MissingKey(9))
        ));
    }
}
