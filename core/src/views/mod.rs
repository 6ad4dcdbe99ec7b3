//! The derived views (request status, inboxes, timelines, idempotency keys, who owes what by
//! when) as a pure function of the log: [`apply`] folds one record into a key-value store.
//! Replaying the log through `apply` from an empty store rebuilds every view exactly.
//!
//! Keys (all byte strings):
//! ```text
//! r ‖ request_id                       → RequestMeta (requests, disclosures, updates)
//! t ‖ request_id ‖ index:u64be         → () (the exchange's records that its meta does not
//!                                        point to — holds, purges, notices acknowledged before
//!                                        the last — and, for a request, the records that link
//!                                        to it: its updates and the requests sent on from it;
//!                                        see [`timeline_of`])
//! k ‖ agency ‖ 0x00 ‖ idempotency:[32] → request_id ‖ index:u64be
//! p ‖ request_id                       → kinds:u8 (its bodies were purged)
//! q ‖ index:u64be                      → a protocol register record (folded at start-up)
//! h ‖ 1 ‖ request_id | h ‖ 2 ‖ subject → index:u64be of the record placing a legal hold
//!                                        (empty once released)
//! w, c, l                              → work queues, expiries, links ([`work`])
//! xi ‖ agency ‖ 0x00 ‖ index           → () (its inbox, cursor = index: a posting list, as the
//!                                        audit indexes are; an item is read from its record
//!                                        and its exchange's meta, see [`inbox_entry`])
//! xo ‖ agency ‖ 0x00 ‖ index           → () (the exchanges it opened: a posting list, as the
//!                                        audit indexes are; see [`work::outbox_key`])
//! xs ‖ subject pseudonym ‖ index       → audit index by subject (requests, disclosures,
//!                                        updates, refusals that named the subject, holds)
//! xa ‖ agency ‖ 0x00 ‖ index           → audit index by agency (actor or other party)
//! xf ‖ staff pseudonym ‖ index         → audit index by staff member
//! xp ‖ protocol ‖ 0x00 ‖ index         → audit index by protocol (requests, responses,
//!                                        disclosures, updates, register changes)
//! xe ‖ event code ‖ index              → audit index by event type
//! ```
//!
//! Records themselves are read from the log by position (the log is their only store); the
//! views hold only small values and empty-valued index keys.

use crate::codec::{DecodeError, Reader, Writer};
use crate::domain::{DeclineGround, MessageKind, NoticeKind, RequestStatus};
use crate::records::{Event, HoldTarget, Record, RequestId};

mod entries;
pub mod work;
pub use entries::{InboxEntry, RequestMeta};

/// Why a view could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The underlying store failed.
    #[error("view store: {0}")]
    Store(String),
    /// A stored value did not decode.
    #[error("view value: {0}")]
    Decode(#[from] DecodeError),
}

/// Read access to the view store.
pub trait KvRead {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError>;

    /// The values at `keys`, in their order. MUST answer as `get` would for each; a store where
    /// each read is a round trip answers them in one.
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ViewError> {
        keys.iter().map(|k| self.get(k)).collect()
    }
}

/// Write access to the view store.
pub trait KvWrite: KvRead {
    /// Sets `key` to `value`.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Sets `key`, which no earlier record wrote, to `value`: a key that names the folding
    /// record's own index, or the exchange it opens. MUST NOT be called for a key that may
    /// exist; a store MAY refuse one that does (a refusal means the views and the log
    /// disagree). A store that can write a new key more cheaply than it can overwrite one
    /// (PostgreSQL: a plain insert rather than an upsert) does so here.
    fn create(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(key, value);
    }
    /// Removes `key` (a key that is not there is no error).
    fn delete(&mut self, key: Vec<u8>);
    /// Adds the folding record's `index` to the posting list under `prefix` (an audit index,
    /// an inbox, an outbox: keys under `x`). Posting lists only grow, in log order: an entry
    /// is never deleted, every entry is above those of the records folded before it, and a
    /// record posted twice under one prefix is one entry. As a key of its own, an entry is
    /// `prefix ‖ index:u64be` with an empty value; a store MAY keep the entries apart from its
    /// other writes (the embedded engine does: they are half of a record's keys).
    fn post(&mut self, prefix: Vec<u8>, index: u64) {
        self.put(
            [prefix.as_slice(), &index.to_be_bytes()].concat(),
            Vec::new(),
        );
    }
}

/// Prefix of the exchanges' metas.
pub const META: &[u8] = b"r";

/// Key of a request's meta.
pub fn meta_key(id: &RequestId) -> Vec<u8> {
    [META, &id.0].concat()
}

/// Whether `key` is an exchange's meta (see [`meta_key`]).
pub fn is_meta_key(key: &[u8]) -> bool {
    key.len() == META.len() + std::mem::size_of::<RequestId>() && key.starts_with(META)
}

/// Prefix of a request's timeline.
pub fn timeline_prefix(id: &RequestId) -> Vec<u8> {
    [b"t".as_slice(), &id.0].concat()
}

/// Prefix of an agency's inbox. Under `x`, so engines keep it as a posting list: what an item
/// says is its record's, whether it is acknowledged its exchange's meta's ([`inbox_entry`]), so
/// an item costs no value of its own and its acknowledgement no second write.
pub fn inbox_prefix(agency: &str) -> Vec<u8> {
    [b"xi".as_slice(), agency.as_bytes(), &[0]].concat()
}

/// Whether `prefix` is an agency's inbox's ([`inbox_prefix`]).
pub fn is_inbox_prefix(prefix: &[u8]) -> bool {
    prefix.len() > 3 && prefix.starts_with(b"xi") && prefix.ends_with(&[0])
}

/// Key of an inbox item.
pub fn inbox_key(agency: &str, index: u64) -> Vec<u8> {
    [inbox_prefix(agency).as_slice(), &index.to_be_bytes()].concat()
}

/// Key of the marker that an exchange's bodies were purged.
pub fn purged_key(id: &RequestId) -> Vec<u8> {
    [b"p".as_slice(), &id.0].concat()
}

/// Whether the exchange's bodies were purged.
pub fn purged(kv: &(impl KvRead + ?Sized), id: &RequestId) -> Result<bool, ViewError> {
    Ok(kv.get(&purged_key(id))?.is_some())
}

/// Prefix of the idempotency entries. They are only ever created and read by key (never
/// scanned, changed or deleted), so an engine may keep them apart from the other views.
pub const IDEMPOTENCY: &[u8] = b"k";

/// Key of an idempotency entry.
pub fn idempotency_key(agency: &str, hash: &[u8; 32]) -> Vec<u8> {
    [IDEMPOTENCY, agency.as_bytes(), &[0], hash].concat()
}

/// Key of a legal hold.
pub fn hold_key(target: &HoldTarget) -> Vec<u8> {
    match target {
        HoldTarget::Exchange(id) => [b"h\x01".as_slice(), &id.0].concat(),
        HoldTarget::Subject(p) => [b"h\x02".as_slice(), p].concat(),
    }
}

/// The index of the record that placed the hold on `target`, if it is in place.
pub fn hold(kv: &(impl KvRead + ?Sized), target: &HoldTarget) -> Result<Option<u64>, ViewError> {
    match kv.get(&hold_key(target))? {
        Some(v) if v.len() == 8 => Ok(Some(u64::from_be_bytes(v.try_into().expect("8")))),
        _ => Ok(None),
    }
}

/// Whether retention must keep an exchange's bodies: a hold is on the exchange, on one of its
/// subjects, or (for an update) on the request it updates.
pub fn held(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    subjects: &[[u8; 32]],
) -> Result<bool, ViewError> {
    if hold(kv, &HoldTarget::Exchange(*id))?.is_some() {
        return Ok(true);
    }
    if let Some(meta) = request_meta(kv, id)?
        && meta.kind == MessageKind::Update
        && let Some(request) = meta.linked
        && hold(kv, &HoldTarget::Exchange(request))?.is_some()
    {
        return Ok(true);
    }
    for s in subjects {
        if hold(kv, &HoldTarget::Subject(*s))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Audit index prefixes.
pub mod audit_index {
    /// By subject pseudonym.
    pub fn subject(pseudonym: &[u8; 32]) -> Vec<u8> {
        [b"xs".as_slice(), pseudonym].concat()
    }
    /// By agency.
    pub fn agency(agency: &str) -> Vec<u8> {
        [b"xa".as_slice(), agency.as_bytes(), &[0]].concat()
    }
    /// By staff pseudonym.
    pub fn staff(pseudonym: &[u8; 32]) -> Vec<u8> {
        [b"xf".as_slice(), pseudonym].concat()
    }
    /// By protocol.
    pub fn protocol(id: &str) -> Vec<u8> {
        [b"xp".as_slice(), id.as_bytes(), &[0]].concat()
    }
    /// By event type.
    pub fn event(code: u8) -> Vec<u8> {
        [b"xe".as_slice(), &[code]].concat()
    }
}

/// Adds a record to the audit indexes.
fn index_for_audit(kv: &mut impl KvWrite, index: u64, record: &Record) {
    use audit_index as x;
    let mut put = |prefix: Vec<u8>| kv.post(prefix, index);
    put(x::event(record.event.code()));
    put(x::agency(&record.actor.id));
    if let Some(o) = record.event.opening() {
        o.subjects.iter().for_each(|s| put(x::subject(s)));
        put(x::agency(o.recipient));
        put(x::staff(o.staff));
        put(x::protocol(o.protocol_id));
    }
    match &record.event {
        Event::ResponseSubmitted(r) => {
            put(x::agency(&r.requester));
            put(x::staff(&r.staff));
            if !r.protocol_id.is_empty() {
                put(x::protocol(&r.protocol_id));
            }
        }
        Event::Denied(d) => d.subjects.iter().for_each(|s| put(x::subject(s))),
        Event::LegalHoldPlaced(HoldTarget::Subject(s))
        | Event::LegalHoldReleased(HoldTarget::Subject(s)) => put(x::subject(s)),
        Event::Protocol(
            crate::records::ProtocolEvent::Registered { protocol_id, .. }
            | crate::records::ProtocolEvent::Approved { protocol_id, .. }
            | crate::records::ProtocolEvent::StateChanged { protocol_id, .. },
        ) => put(x::protocol(protocol_id)),
        _ => {}
    }
}

/// Prefix of the protocol register records.
pub const PROTOCOL_RECORDS: &[u8] = b"q";

/// Key of a protocol register record.
pub fn protocol_record_key(index: u64) -> Vec<u8> {
    [PROTOCOL_RECORDS, &index.to_be_bytes()].concat()
}

/// The request's meta, if it exists.
pub fn request_meta(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
) -> Result<Option<RequestMeta>, ViewError> {
    kv.get(&meta_key(id))?
        .map(|v| RequestMeta::decode(&v).map_err(ViewError::from))
        .transpose()
}

/// The request an idempotency key already produced, with its record index.
pub fn idempotent_request(
    kv: &(impl KvRead + ?Sized),
    agency: &str,
    hash: &[u8; 32],
) -> Result<Option<(RequestId, u64)>, ViewError> {
    let Some(v) = kv.get(&idempotency_key(agency, hash))? else {
        return Ok(None);
    };
    let mut r = Reader::new(&v);
    let id = RequestId(r.fixed()?);
    let index = r.u64()?;
    r.end()?;
    Ok(Some((id, index)))
}

/// What record `index` (`record`) is in `agency`'s inbox, which lists it, with `meta` its
/// exchange's meta as it is now (the exchange is `record.event.request_id()`): an opening is
/// acknowledged once its exchange is, a response once it is, a notice once `agency` acknowledged
/// its notices after it (an acknowledgement covers the notices before it, not those after).
pub fn inbox_entry(
    agency: &str,
    index: u64,
    record: &Record,
    meta: &RequestMeta,
) -> Result<InboxEntry, ViewError> {
    let not_an_item = || ViewError::Store(format!("record {index} is not an inbox item"));
    let request_id = record.event.request_id().ok_or_else(not_an_item)?;
    let (kind, notice, acknowledged) = match &record.event {
        Event::RequestSubmitted(_) | Event::DisclosureSubmitted(_) | Event::UpdateSubmitted(_) => {
            let kind = record.event.opening().ok_or_else(not_an_item)?.kind;
            (kind, None, meta.request_ack_idx != 0)
        }
        Event::ResponseSubmitted(_) => (MessageKind::Response, None, meta.response_ack_idx != 0),
        Event::RequestOverdue { .. } => (MessageKind::Notice, Some(NoticeKind::Overdue), false),
        Event::RequestWithdrawn(_) => (MessageKind::Notice, Some(NoticeKind::Withdrawn), false),
        Event::RequestExpired { .. } => (MessageKind::Notice, Some(NoticeKind::Expired), false),
        _ => return Err(not_an_item()),
    };
    let acknowledged = match notice {
        Some(_) => meta.notices_acked_by(agency) > index,
        None => acknowledged,
    };
    Ok(InboxEntry {
        kind,
        request_id,
        from: record.actor.id.clone(),
        time_ms: record.time_ms,
        acknowledged,
        notice,
    })
}

/// Folds record `index` (whose encoding is `raw`) into the views.
pub fn apply(
    kv: &mut impl KvWrite,
    index: u64,
    record: &Record,
    raw: &[u8],
) -> Result<(), ViewError> {
    index_for_audit(kv, index, record);
    if let Event::Protocol(_) = record.event {
        kv.create(protocol_record_key(index), raw.to_vec());
        return Ok(());
    }
    if let Event::LegalHoldPlaced(t @ HoldTarget::Subject(_))
    | Event::LegalHoldReleased(t @ HoldTarget::Subject(_)) = &record.event
    {
        fold_hold(kv, index, record, t);
    }
    let Some(id) = record.event.request_id() else {
        return Ok(());
    };
    if matches!(record.event, Event::Denied(_)) {
        // Refusals change no state; only the audit indexes above record them.
        return Ok(());
    }
    if record.event.opening().is_some() {
        opened(kv, index, record);
    } else {
        follow_up(kv, index, record, id)?;
    }
    if let Some(related) = record.event.related() {
        // An update and a request sent on show in the timeline of the request they link to.
        kv.create(timeline_key(&related, index), Vec::new());
        kv.create(work::link_key(&related, index), id.0.to_vec());
    }
    Ok(())
}

fn timeline_key(id: &RequestId, index: u64) -> Vec<u8> {
    [timeline_prefix(id).as_slice(), &index.to_be_bytes()].concat()
}

/// An exchange's timeline, oldest first: the records its meta points to (see
/// [`RequestMeta::record_indexes`]) and those with a key of their own under
/// [`timeline_prefix`] (`keyed`). Most records of an exchange set a field of its meta, which is
/// written anyway, so they cost no key of their own.
pub fn timeline_of(meta: Option<&RequestMeta>, mut keyed: Vec<u64>) -> Vec<u64> {
    if let Some(meta) = meta {
        keyed.extend(meta.record_indexes().into_iter().filter(|i| *i != 0));
    }
    keyed.sort_unstable();
    keyed.dedup();
    keyed
}

/// Folds a record that changes an existing exchange.
fn follow_up(
    kv: &mut impl KvWrite,
    index: u64,
    record: &Record,
    id: RequestId,
) -> Result<(), ViewError> {
    let before = existing(kv, &id)?;
    let mut meta = before.clone();
    // Inbox items are postings: what they say is read from the record, and whether they are
    // acknowledged from the meta written below (`inbox_entry`).
    let item = |to: &str| inbox_prefix(to);
    match &record.event {
        Event::DisclosureAcknowledged { .. } | Event::UpdateAcknowledged { .. } => {
            meta.request_ack_idx = index;
            meta.status = RequestStatus::Completed;
        }
        Event::RequestAcknowledged { .. } => {
            meta.request_ack_idx = index;
            if meta.status == RequestStatus::Submitted {
                meta.status = RequestStatus::Acknowledged;
            }
        }
        Event::ResponseSubmitted(r) => {
            meta.response_idx = index;
            meta.status = RequestStatus::Responded;
            meta.not_held = r.ground == Some(DeclineGround::NotHeld);
            meta.referral = r.referral.clone();
            kv.post(item(&r.requester), index);
        }
        Event::ResponseAcknowledged { .. } => {
            meta.response_ack_idx = index;
            meta.status = RequestStatus::Completed;
        }
        Event::RequestOverdue { .. } => {
            meta.overdue_idx = index;
            kv.post(item(&meta.requester), index);
            if meta.recipient != meta.requester {
                // One item if an agency ever asked itself.
                kv.post(item(&meta.recipient), index);
            }
        }
        Event::RequestWithdrawn(_) | Event::RequestExpired { .. } => {
            let (status, to) = match record.event {
                Event::RequestWithdrawn(_) => (RequestStatus::Withdrawn, &meta.recipient),
                _ => (RequestStatus::Expired, &meta.requester),
            };
            kv.post(item(to), index);
            meta.status = status;
            meta.closed_idx = index;
        }
        Event::NoticesAcknowledged { .. } => {
            let agency = &record.actor.id;
            if *agency == meta.requester {
                meta.requester_notices_acked = index;
            } else {
                meta.recipient_notices_acked = index;
            }
        }
        Event::BodiesPurged { kinds, .. } => {
            kv.put(purged_key(&id), vec![*kinds]);
        }
        Event::LegalHoldPlaced(t) | Event::LegalHoldReleased(t) => {
            // An exchange's hold shows in its timeline.
            fold_hold(kv, index, record, t);
        }
        Event::RequestSubmitted(_)
        | Event::DisclosureSubmitted(_)
        | Event::UpdateSubmitted(_)
        | Event::Denied(_)
        | Event::Protocol(_)
        | Event::AuditQueried(_)
        | Event::LogKeyRotated { .. } => {
            unreachable!("openings and records of no exchange are folded elsewhere")
        }
    }
    // The timeline: a key for this record unless the meta now points to it, and for any record
    // the meta pointed to before and no longer does (an earlier acknowledgement of notices).
    let points_to = meta.record_indexes();
    let dropped = before
        .record_indexes()
        .into_iter()
        .filter(|i| *i != 0 && !points_to.contains(i));
    for at in dropped {
        kv.put(timeline_key(&id, at), Vec::new());
    }
    if !points_to.contains(&index) {
        kv.create(timeline_key(&id, index), Vec::new());
    }
    if meta != before {
        work::follow(kv, &id, Some(&before), &meta);
        kv.put(meta_key(&id), meta.encode());
    }
    Ok(())
}

fn fold_hold(kv: &mut impl KvWrite, index: u64, record: &Record, target: &HoldTarget) {
    let value = match record.event {
        Event::LegalHoldPlaced(_) => index.to_be_bytes().to_vec(),
        _ => Vec::new(),
    };
    kv.put(hold_key(target), value);
}

/// Opens an exchange: its meta, the recipient's inbox item, the sender's idempotency entry and
/// outbox item, and (for a request) its place in the recipient's work and the deadlines.
fn opened(kv: &mut impl KvWrite, index: u64, record: &Record) {
    let Some(o) = record.event.opening() else {
        return;
    };
    let sender = record.actor.id.as_str();
    let mut meta = RequestMeta::opened(o.kind, sender, o.recipient, index);
    meta.linked = record.event.related();
    if let Event::RequestSubmitted(r) = &record.event {
        meta.urgency = Some(r.urgency);
        meta.due_ms = r.due_ms;
        meta.expires_ms = r.expires_ms;
    }
    work::follow(kv, &o.request_id, None, &meta);
    kv.create(meta_key(&o.request_id), meta.encode());
    kv.post(inbox_prefix(o.recipient), index);
    let mut w = Writer::new();
    w.fixed(&o.request_id.0).u64(index);
    // New: an opening is appended only when no exchange holds its key (`exchange::replay_of`).
    kv.create(idempotency_key(sender, o.idempotency), w.finish());
    kv.post(work::outbox_prefix(sender), index);
}

fn existing(kv: &(impl KvRead + ?Sized), id: &RequestId) -> Result<RequestMeta, ViewError> {
    // The sequencer only appends follow-up records for requests that exist, so a missing meta
    // means the log and the views disagree.
    request_meta(kv, id)?
        .ok_or_else(|| ViewError::Store(format!("record refers to unknown request {id}")))
}

#[cfg(test)]
pub(crate) mod tests;
