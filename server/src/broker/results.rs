//! What the broker's operations answer with.

use crate::records::{Record, RequestId};
use crate::store::bodies::BodyEntry;
use crate::store::ledger::Receipt;
use crate::views::{InboxEntry, RequestMeta};

/// A submitted (or replayed) request.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The exchange's id.
    pub request_id: RequestId,
    /// Its record's index.
    pub index: u64,
    /// When it was accepted (Unix ms).
    pub time_ms: u64,
    /// Whether this repeats an earlier submission.
    pub replayed: bool,
    /// Proof that its record is in the log.
    pub receipt: Receipt,
}

/// An acknowledgement, new or earlier.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    /// The acknowledgement's log index.
    pub log_index: u64,
    /// Whether the item was acknowledged before (by the record at `log_index`).
    pub already: bool,
    /// Proof that its record is in the log.
    pub receipt: Receipt,
}

/// An answer taken.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The response record's log index.
    pub log_index: u64,
    /// When it was accepted (Unix ms).
    pub time_ms: u64,
    /// Proof that its record is in the log.
    pub receipt: Receipt,
}

/// One inbox item with its body.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// Its cursor (the log index of its record).
    pub cursor: u64,
    /// Its kind, sender, time and whether it was acknowledged.
    pub entry: InboxEntry,
    /// Where the exchange it belongs to stands now (for a notice: the request's).
    pub meta: RequestMeta,
    /// The body (for a WITHDRAWN notice: the withdrawal's reasons), unless there is none.
    pub body: Option<BodyEntry>,
    /// Whether the item had a body that was purged at the end of its retention.
    pub purged: bool,
}

/// A request as its parties see it.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    /// The exchange's id.
    pub request_id: RequestId,
    /// Status and parties.
    pub meta: RequestMeta,
    /// The body that opened it (request, disclosure or update; its kind is the meta's),
    /// unless purged.
    pub opening: Option<BodyEntry>,
    /// The response body, if answered and not purged.
    pub response: Option<BodyEntry>,
    /// The withdrawal's reasons, if withdrawn and not purged.
    pub withdrawal: Option<BodyEntry>,
    /// The updates the answering agency sent, oldest first.
    pub updates: Vec<LinkedUpdate>,
    /// The requests the requester sent on from this one, oldest first.
    pub resent_as: Vec<RequestId>,
    /// The timeline records, oldest first.
    pub timeline: Vec<(u64, Record)>,
    /// Whether a legal hold (on the exchange or its subject) keeps its bodies from retention.
    pub legal_hold: bool,
}

/// An update as a request's detail lists it.
#[derive(Debug, Clone)]
pub struct LinkedUpdate {
    /// The update's own id.
    pub update_id: RequestId,
    /// When it was accepted (Unix ms).
    pub time_ms: u64,
    /// Its body, unless purged.
    pub body: Option<BodyEntry>,
    /// Whether the requester acknowledged it.
    pub acknowledged: bool,
}

/// What a deadline run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRun {
    /// Requests marked overdue.
    pub overdue: u32,
    /// Requests expired.
    pub expired: u32,
    /// The time it judged deadlines at (Unix ms).
    pub as_of_ms: u64,
    /// Whether more were due than one run takes.
    pub more: bool,
}
