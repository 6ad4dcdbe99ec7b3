//! Who gets a connection: a global cap (handshakes included), a cap per identity, and the
//! registry's word on the identity, asked once per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::tls::PeerInfo;

/// Whether a verified peer names a registered principal; `Err` is the status to refuse it with.
pub type RegistryCheck = Arc<dyn Fn(&PeerInfo) -> Result<(), tonic::Status> + Send + Sync>;

/// The caps and the registry check.
pub struct Admission {
    max_total: usize,
    max_per_identity: usize,
    total: Arc<AtomicUsize>,
    per_identity: Arc<Mutex<HashMap<String, usize>>>,
    check: RegistryCheck,
}

/// A connection's place under the global cap; released when dropped.
pub struct Slot {
    total: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place under its identity's cap; released when dropped.
pub struct IdentitySlot {
    per_identity: Arc<Mutex<HashMap<String, usize>>>,
    identity: String,
}

impl Drop for IdentitySlot {
    fn drop(&mut self) {
        let mut map = self.per_identity.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.identity);
            }
        }
    }
}

impl Admission {
    /// Caps of `max_total` connections and `max_per_identity` per identity, and `check`.
    pub fn new(max_total: usize, max_per_identity: usize, check: RegistryCheck) -> Self {
        Self {
            max_total: max_total.max(1),
            max_per_identity: max_per_identity.max(1),
            total: Arc::new(AtomicUsize::new(0)),
            per_identity: Arc::new(Mutex::new(HashMap::new())),
            check,
        }
    }

    /// Admits every identity (for the benchmark's echo baseline), under the same caps.
    pub fn open(max_total: usize, max_per_identity: usize) -> Self {
        Self::new(max_total, max_per_identity, Arc::new(|_| Ok(())))
    }

    /// A place for a new TCP connection, unless the server holds its maximum.
    pub fn connection(&self) -> Option<Slot> {
        let mut n = self.total.load(Ordering::Acquire);
        loop {
            if n >= self.max_total {
                return None;
            }
            match self
                .total
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Slot {
                        total: self.total.clone(),
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// A place for a connection of `identity` (the certificate's SPIFFE id, or its hash),
    /// unless the identity holds its maximum.
    pub fn identity(&self, identity: &str) -> Option<IdentitySlot> {
        let mut map = self.per_identity.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(identity.to_string()).or_insert(0);
        if *n >= self.max_per_identity {
            return None;
        }
        *n += 1;
        Some(IdentitySlot {
            per_identity: self.per_identity.clone(),
            identity: identity.to_string(),
        })
    }

    /// The registry's word on a verified peer.
    pub fn check(&self, peer: &PeerInfo) -> Result<(), tonic::Status> {
        (self.check)(peer)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_release() {
        let a = Admission::open(3, 2);
        let s1 = a.connection().unwrap();
        let _s2 = a.connection().unwrap();
        let _s3 = a.connection().unwrap();
        assert!(a.connection().is_none());
        drop(s1);
        assert!(a.connection().is_some());
        let i1 = a.identity("police").unwrap();
        let _i2 = a.identity("police").unwrap();
        assert!(a.identity("police").is_none());
        assert!(
            a.identity("msd").is_some(),
            "one identity never starves another"
        );
        drop(i1);
        assert!(a.identity("police").is_some());
    }
}
