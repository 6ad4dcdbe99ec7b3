//! The views that say who owes what by when: each agency's outbox, the requests awaiting each
//! agency's answer in the order they should be worked (which is also where the deadline task
//! finds those past their due time), the expiries the task watches, and the links between
//! exchanges. The work and expiry indexes hold only open requests: an entry goes once its
//! request is answered, withdrawn or expired (and an expiry once acknowledged), so reading them
//! costs what is open, not what was ever sent. Each request adds two keys beyond the first
//! views' (its work entry and, until acknowledged, its expiry): these views are written on
//! the log writer's path.
//!
//! ```text
//! xo ‖ agency ‖ 0x00 ‖ index:u64be                     → () (exchanges it opened: a posting
//!                                         list; the exchange is the record's at `index`)
//! w ‖ agency ‖ 0x00 ‖ rank:u8 ‖ due:u64be ‖ index:u64be → request_id (requests awaiting its
//!                                         answer; rank 0 overdue, 1 immediate-safety,
//!                                         2 priority, 3 routine; due u64::MAX when none)
//! c ‖ expires:u64be ‖ index:u64be        → request_id (not yet acknowledged, with an expiry)
//! l ‖ request_id ‖ index:u64be           → linked id (its updates, the requests sent on from it)
//! ```

use super::{KvWrite, RequestMeta};
use crate::domain::{MessageKind, Urgency};
use crate::records::RequestId;

/// Prefix of every agency's work (requests awaiting an answer).
pub const WORK: &[u8] = b"w";
/// Rank of an overdue request in its recipient's work.
pub const OVERDUE_RANK: u8 = 0;
/// Ranks of requests not yet overdue, most urgent first.
pub const OPEN_RANKS: [u8; 3] = [1, 2, 3];
/// Prefix of the expiry index (requests awaiting acknowledgement, by expiry time).
pub const EXPIRY: &[u8] = b"c";

/// Prefix of an agency's outbox. Under `x`, so engines keep it as they keep the audit indexes:
/// a posting list, the entries of a batch (or more) one stored value rather than a key each.
pub fn outbox_prefix(agency: &str) -> Vec<u8> {
    [b"xo".as_slice(), agency.as_bytes(), &[0]].concat()
}

/// Key of an outbox item.
pub fn outbox_key(agency: &str, index: u64) -> Vec<u8> {
    [outbox_prefix(agency).as_slice(), &index.to_be_bytes()].concat()
}

/// Prefix of the requests awaiting `agency`'s answer.
pub fn work_prefix(agency: &str) -> Vec<u8> {
    [WORK, agency.as_bytes(), &[0]].concat()
}

/// Where a request awaiting an answer sorts among its recipient's (the key after the prefix):
/// rank, due time, index.
pub type Position = [u8; 17];

/// Where a request awaiting an answer sorts among its recipient's: overdue first, then by
/// urgency, then by due time, then in the order they came.
pub fn work_position(rank: u8, due_ms: u64, index: u64) -> Position {
    let mut out = [0u8; 17];
    out[0] = rank;
    out[1..9].copy_from_slice(&(if due_ms == 0 { u64::MAX } else { due_ms }).to_be_bytes());
    out[9..].copy_from_slice(&index.to_be_bytes());
    out
}

/// A request's rank in its recipient's work: 0 once overdue, then by urgency.
pub fn rank(meta: &RequestMeta) -> u8 {
    if meta.overdue() {
        return OVERDUE_RANK;
    }
    match meta.urgency {
        Some(Urgency::ImmediateSafety) => OPEN_RANKS[0],
        Some(Urgency::Priority) => OPEN_RANKS[1],
        Some(Urgency::Routine) | None => OPEN_RANKS[2],
    }
}

fn work_key(meta: &RequestMeta) -> Vec<u8> {
    let position = work_position(rank(meta), meta.due_ms, meta.request_idx);
    [work_prefix(&meta.recipient).as_slice(), &position].concat()
}

/// Key of an expiry entry.
pub fn expiry_key(expires_ms: u64, index: u64) -> Vec<u8> {
    [EXPIRY, &expires_ms.to_be_bytes(), &index.to_be_bytes()].concat()
}

/// Prefix of an exchange's links.
pub fn links_prefix(id: &RequestId) -> Vec<u8> {
    [b"l".as_slice(), &id.0].concat()
}

/// Key of a link from `id` made by record `index`.
pub fn link_key(id: &RequestId, index: u64) -> Vec<u8> {
    [links_prefix(id).as_slice(), &index.to_be_bytes()].concat()
}

/// The work and expiry entries a request's meta implies: its place in its recipient's work
/// while it awaits an answer, and its expiry while it also awaits acknowledgement (none for
/// other exchanges). The views hold exactly these ([`follow`]), so an engine may keep them
/// with the meta rather than as keys of their own (PostgreSQL does).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Entries {
    /// Its key in its recipient's work.
    pub work: Option<Vec<u8>>,
    /// Its key in the expiry index.
    pub expiry: Option<Vec<u8>>,
}

/// See [`Entries`].
pub fn entries(meta: &RequestMeta) -> Entries {
    if meta.kind != MessageKind::Request || !meta.status.awaits_answer() {
        return Entries::default();
    }
    Entries {
        work: Some(work_key(meta)),
        expiry: (meta.expires_ms != 0 && meta.request_ack_idx == 0)
            .then(|| expiry_key(meta.expires_ms, meta.request_idx)),
    }
}

/// Moves an exchange's work and expiry entries from what its meta implied (`before`; `None`:
/// it is being opened) to what it implies now (`after`).
pub(super) fn follow(
    kv: &mut impl KvWrite,
    id: &RequestId,
    before: Option<&RequestMeta>,
    after: &RequestMeta,
) {
    let was = before.map(entries).unwrap_or_default();
    let now = entries(after);
    for (was, now) in [(was.work, now.work), (was.expiry, now.expiry)] {
        if was == now {
            continue;
        }
        if let Some(key) = was {
            kv.delete(key);
        }
        match now {
            // An opening's keys end with its own index: new.
            Some(key) if before.is_none() => kv.create(key, id.0.to_vec()),
            Some(key) => kv.put(key, id.0.to_vec()),
            None => {}
        }
    }
}
