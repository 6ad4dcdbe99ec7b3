//! Wakes an agency's inbox streams when a durable batch adds to its inbox, and no one else's.
//! Woken by every batch instead (the applied index), each of N open streams read its inbox
//! after each batch to find, nearly always, nothing: N reads and N task wake-ups a batch where
//! the batch's one or two recipients would do, and more of both the more agencies are
//! connected.
//!
//! A stream marks its receiver seen, reads its inbox, and waits for a change: a batch made
//! durable after the read rings it, one made durable before is in the read. The bell is rung
//! where the applied index is published, so what woke a stream is readable by then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::views;

/// The bells, by inbox prefix ([`views::inbox_prefix`]). Held by the writer's publisher; the
/// ledger's handles hold it weakly, so the bells close (every stream's wait ends) when the
/// writer is gone, as the applied index does.
#[derive(Default)]
pub(crate) struct InboxWakes {
    bells: Mutex<HashMap<Vec<u8>, watch::Sender<u64>>>,
}

impl InboxWakes {
    fn bells(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, watch::Sender<u64>>> {
        self.bells.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rings the bells of the inboxes `prefixes` ([`inboxes_of`] a batch) with the log's size
    /// after that batch.
    pub(crate) fn ring(&self, prefixes: &[Vec<u8>], size: u64) {
        let bells = self.bells();
        for prefix in prefixes {
            if let Some(bell) = bells.get(prefix) {
                bell.send_replace(size);
            }
        }
    }

    /// Rings every bell: records were folded in whose recipients were not worked out (another
    /// broker's, on a shared log).
    pub(crate) fn ring_all(&self, size: u64) {
        for bell in self.bells().values() {
            bell.send_replace(size);
        }
    }
}

/// The inbox prefixes among a batch's posting list entries, each once.
pub(crate) fn inboxes_of(posted: &crate::backend::Posted) -> Vec<Vec<u8>> {
    let mut inboxes: Vec<Vec<u8>> = Vec::new();
    for (prefix, _) in posted {
        if views::is_inbox_prefix(prefix) && !inboxes.contains(prefix) {
            inboxes.push(prefix.clone());
        }
    }
    inboxes
}

/// What a ledger handle subscribes through.
#[derive(Clone)]
pub(crate) struct InboxBells(Weak<InboxWakes>);

impl InboxBells {
    /// A receiver that changes (to the log's size) after each durable batch that adds to
    /// `agency`'s inbox, and ends when the writer is gone. `size` is its first value.
    pub(crate) fn subscribe(&self, agency: &str, size: u64) -> watch::Receiver<u64> {
        let Some(wakes) = self.0.upgrade() else {
            // Gone: a receiver whose sender is dropped, so the stream's wait ends at once.
            return watch::channel(size).1;
        };
        let mut bells = wakes.bells();
        // The bells of agencies whose streams all ended go here, not at every ring.
        bells.retain(|_, bell| bell.receiver_count() > 0);
        bells
            .entry(views::inbox_prefix(agency))
            .or_insert_with(|| watch::channel(size).0)
            .subscribe()
    }
}

/// The writer's half and the handles' half of one set of bells.
pub(crate) fn pair() -> (Arc<InboxWakes>, InboxBells) {
    let wakes = Arc::new(InboxWakes::default());
    let bells = InboxBells(Arc::downgrade(&wakes));
    (wakes, bells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bell_rings_for_its_own_inbox_only_and_closes_with_the_writer() {
        let (wakes, bells) = pair();
        let mut police = bells.subscribe("police", 4);
        let mut school = bells.subscribe("school", 4);
        assert_eq!(*police.borrow_and_update(), 4);

        // A batch posting to the school's inbox and to audit indexes.
        let posted = vec![
            (views::inbox_prefix("school"), 5),
            (b"xa police\0".to_vec(), 5),
            (views::inbox_prefix("school"), 6),
        ];
        let inboxes = inboxes_of(&posted);
        assert_eq!(inboxes, vec![views::inbox_prefix("school")]);
        wakes.ring(&inboxes, 6);
        assert!(!police.has_changed().unwrap(), "woken for another's inbox");
        assert!(school.has_changed().unwrap());
        assert_eq!(*school.borrow_and_update(), 6);

        wakes.ring_all(9);
        assert_eq!(*police.borrow_and_update(), 9);
        assert_eq!(*school.borrow_and_update(), 9);

        // A second stream of the police shares the bell.
        let again = bells.subscribe("police", 9);
        wakes.ring(&[views::inbox_prefix("police")], 10);
        assert!(again.has_changed().unwrap() && police.has_changed().unwrap());

        // Bells nobody listens to are let go.
        drop((school, again));
        let _other = bells.subscribe("other", 10);
        assert_eq!(wakes.bells().len(), 2, "the school's bell kept");

        drop(wakes);
        assert!(
            police.has_changed().is_err(),
            "the wait outlives the writer"
        );
        assert!(bells.subscribe("police", 10).has_changed().is_err());
    }
}
