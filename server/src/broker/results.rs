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
    /// The body, unless purged.
    pub body: Option<BodyEntry>,
}

/// A request as its parties see it.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    /// The exchange's id.
    pub request_id: RequestId,
    /// Status and parties.
    pub meta: RequestMeta,
    /// The request body, unless purged.
    pub request: Option<BodyEntry>,
    /// The response body, if answered and not purged.
    pub response: Option<BodyEntry>,
    /// The disclosure body, for a proactive disclosure (unless purged).
    pub disclosure: Option<BodyEntry>,
    /// The timeline records, oldest first.
    pub timeline: Vec<(u64, Record)>,
    /// Whether a legal hold (on the exchange or its subject) keeps its bodies from retention.
    pub legal_hold: bool,
}
