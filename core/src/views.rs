//! The derived views (request status, inboxes, timelines, idempotency keys) as a pure function
//! of the log: [`apply`] folds one record into a key-value store. Replaying the log through
//! `apply` from an empty store rebuilds every view exactly.
//!
//! Keys (all byte strings):
//! ```text
//! r ‖ request_id                       → RequestMeta
//! t ‖ request_id ‖ index:u64be         → () (the request's records, oldest first)
//! i ‖ agency ‖ 0x00 ‖ index:u64be      → InboxEntry (cursor = index)
//! k ‖ agency ‖ 0x00 ‖ idempotency:[32] → request_id ‖ index:u64be
//! p ‖ request_id                       → kinds:u8 (its bodies were purged)
//! q ‖ index:u64be                      → a protocol register record (folded at start-up)
//! h ‖ 1 ‖ request_id | h ‖ 2 ‖ subject → index:u64be of the record placing a legal hold
//!                                        (empty once released)
//! xs ‖ subject pseudonym ‖ index       → audit index by subject (requests, disclosures,
//!                                        refusals that named the subject, subject holds)
//! xa ‖ agency ‖ 0x00 ‖ index           → audit index by agency (actor or other party)
//! xf ‖ staff pseudonym ‖ index         → audit index by staff member
//! xp ‖ protocol ‖ 0x00 ‖ index         → audit index by protocol (requests, responses,
//!                                        disclosures, register changes)
//! xe ‖ event code ‖ index              → audit index by event type
//! ```
//!
//! Records themselves are read from the log by position (the log is their only store); the
//! views hold only small values and empty-valued index keys.

use crate::codec::{DecodeError, Reader, Writer};
use crate::domain::{MessageKind, RequestStatus};
use crate::records::{Event, HoldTarget, Record, RequestId};

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
}

/// Where a request stands, and where its records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    /// Request (answered by a response) or proactive disclosure.
    pub kind: MessageKind,
    /// The requesting (or disclosing) agency.
    pub requester: String,
    /// The agency asked.
    pub recipient: String,
    /// Current status.
    pub status: RequestStatus,
    /// Index of the RequestSubmitted record.
    pub request_idx: u64,
    /// Index of the RequestAcknowledged record (0: none).
    pub request_ack_idx: u64,
    /// Index of the ResponseSubmitted record (0: none).
    pub response_idx: u64,
    /// Index of the ResponseAcknowledged record (0: none).
    pub response_ack_idx: u64,
}

impl RequestMeta {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.kind.code())
            .str8(&self.requester)
            .str8(&self.recipient)
            .u8(self.status.code())
            .u64(self.request_idx)
            .u64(self.request_ack_idx)
            .u64(self.response_idx)
            .u64(self.response_ack_idx);
        w.finish()
    }

    /// Decodes a stored meta.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let meta = Self {
            kind: r.code("kind", MessageKind::from_code)?,
            requester: r.str8()?,
            recipient: r.str8()?,
            status: r.code("status", RequestStatus::from_code)?,
            request_idx: r.u64()?,
            request_ack_idx: r.u64()?,
            response_idx: r.u64()?,
            response_ack_idx: r.u64()?,
        };
        r.end()?;
        Ok(meta)
    }

    /// Whether `agency` is a party (requester or recipient).
    pub fn is_party(&self, agency: &str) -> bool {
        self.requester == agency || self.recipient == agency
    }
}

/// One item of an agency's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// Request or response.
    pub kind: MessageKind,
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The sending agency.
    pub from: String,
    /// When it was accepted (Unix ms).
    pub time_ms: u64,
    /// Whether the owner acknowledged it.
    pub acknowledged: bool,
}

impl InboxEntry {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.kind.code())
            .fixed(&self.request_id.0)
            .str8(&self.from)
            .u64(self.time_ms)
            .u8(self.acknowledged as u8);
        w.finish()
    }

    /// Decodes a stored entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let entry = Self {
            kind: r.code("kind", MessageKind::from_code)?,
            request_id: RequestId(r.fixed()?),
            from: r.str8()?,
            time_ms: r.u64()?,
            acknowledged: r.code("acknowledged", |c| (c <= 1).then_some(c == 1))?,
        };
        r.end()?;
        Ok(entry)
    }
}

/// Key of a request's meta.
pub fn meta_key(id: &RequestId) -> Vec<u8> {
    [b"r".as_slice(), &id.0].concat()
}

/// Prefix of a request's timeline.
pub fn timeline_prefix(id: &RequestId) -> Vec<u8> {
    [b"t".as_slice(), &id.0].concat()
}

/// Prefix of an agency's inbox.
pub fn inbox_prefix(agency: &str) -> Vec<u8> {
    [b"i".as_slice(), agency.as_bytes(), &[0]].concat()
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

/// Key of an idempotency entry.
pub fn idempotency_key(agency: &str, hash: &[u8; 32]) -> Vec<u8> {
    [b"k".as_slice(), agency.as_bytes(), &[0], hash].concat()
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

/// Whether retention must keep an exchange's bodies: a hold is on the exchange or on one of
/// its subjects.
pub fn held(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    subjects: &[[u8; 32]],
) -> Result<bool, ViewError> {
    if hold(kv, &HoldTarget::Exchange(*id))?.is_some() {
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
    let at = index.to_be_bytes();
    let mut put = |prefix: Vec<u8>| kv.put([prefix.as_slice(), &at].concat(), Vec::new());
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

fn set_acknowledged(kv: &mut impl KvWrite, agency: &str, index: u64) -> Result<(), ViewError> {
    let key = inbox_key(agency, index);
    if let Some(v) = kv.get(&key)? {
        let mut entry = InboxEntry::decode(&v)?;
        entry.acknowledged = true;
        kv.put(key, entry.encode());
    }
    Ok(())
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
        kv.put(protocol_record_key(index), raw.to_vec());
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
    let mut timeline_key = timeline_prefix(&id);
    timeline_key.extend_from_slice(&index.to_be_bytes());
    match &record.event {
        Event::RequestSubmitted(_) | Event::DisclosureSubmitted(_) => {
            if let Some(o) = record.event.opening() {
                opened(kv, o.kind, id, index, record, o.recipient, o.idempotency);
            }
        }
        Event::DisclosureAcknowledged { .. } => {
            let mut meta = existing(kv, &id)?;
            meta.request_ack_idx = index;
            meta.status = RequestStatus::Completed;
            set_acknowledged(kv, &meta.recipient, meta.request_idx)?;
            kv.put(meta_key(&id), meta.encode());
        }
        Event::RequestAcknowledged { .. } => {
            let mut meta = existing(kv, &id)?;
            meta.request_ack_idx = index;
            if meta.status == RequestStatus::Submitted {
                meta.status = RequestStatus::Acknowledged;
            }
            set_acknowledged(kv, &meta.recipient, meta.request_idx)?;
            kv.put(meta_key(&id), meta.encode());
        }
        Event::ResponseSubmitted(r) => {
            let mut meta = existing(kv, &id)?;
            meta.response_idx = index;
            meta.status = RequestStatus::Responded;
            let entry = InboxEntry {
                kind: MessageKind::Response,
                request_id: id,
                from: record.actor.id.clone(),
                time_ms: record.time_ms,
                acknowledged: false,
            };
            kv.put(inbox_key(&r.requester, index), entry.encode());
            kv.put(meta_key(&id), meta.encode());
        }
        Event::ResponseAcknowledged { .. } => {
            let mut meta = existing(kv, &id)?;
            meta.response_ack_idx = index;
            meta.status = RequestStatus::Completed;
            set_acknowledged(kv, &meta.requester, meta.response_idx)?;
            kv.put(meta_key(&id), meta.encode());
        }
        Event::BodiesPurged { kinds, .. } => {
            existing(kv, &id)?;
            kv.put(purged_key(&id), vec![*kinds]);
        }
        Event::LegalHoldPlaced(t) | Event::LegalHoldReleased(t) => {
            // An exchange's hold shows in its timeline.
            existing(kv, &id)?;
            fold_hold(kv, index, record, t);
        }
        Event::Denied(_)
        | Event::Protocol(_)
        | Event::AuditQueried(_)
        | Event::LogKeyRotated { .. } => {
            unreachable!("handled above: no request id")
        }
    }
    kv.put(timeline_key, Vec::new());
    Ok(())
}

fn fold_hold(kv: &mut impl KvWrite, index: u64, record: &Record, target: &HoldTarget) {
    let value = match record.event {
        Event::LegalHoldPlaced(_) => index.to_be_bytes().to_vec(),
        _ => Vec::new(),
    };
    kv.put(hold_key(target), value);
}

/// Opens an exchange: its meta, the recipient's inbox item and the sender's idempotency entry.
fn opened(
    kv: &mut impl KvWrite,
    kind: MessageKind,
    id: RequestId,
    index: u64,
    record: &Record,
    recipient: &str,
    idempotency: &[u8; 32],
) {
    let sender = record.actor.id.clone();
    let meta = RequestMeta {
        kind,
        requester: sender.clone(),
        recipient: recipient.to_string(),
        status: RequestStatus::Submitted,
        request_idx: index,
        request_ack_idx: 0,
        response_idx: 0,
        response_ack_idx: 0,
    };
    kv.put(meta_key(&id), meta.encode());
    let entry = InboxEntry {
        kind,
        request_id: id,
        from: sender.clone(),
        time_ms: record.time_ms,
        acknowledged: false,
    };
    kv.put(inbox_key(recipient, index), entry.encode());
    let mut w = Writer::new();
    w.fixed(&id.0).u64(index);
    kv.put(idempotency_key(&sender, idempotency), w.finish());
}

fn existing(kv: &(impl KvRead + ?Sized), id: &RequestId) -> Result<RequestMeta, ViewError> {
    // The sequencer only appends follow-up records for requests that exist, so a missing meta
    // means the log and the views disagree.
    request_meta(kv, id)?
        .ok_or_else(|| ViewError::Store(format!("record refers to unknown request {id}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::records::tests::submitted;
    use std::collections::BTreeMap;

    /// An in-memory view store for tests of the pure view functions.
    #[derive(Default, Clone, PartialEq, Debug)]
    pub(crate) struct Mem(pub(crate) BTreeMap<Vec<u8>, Vec<u8>>);
    impl KvRead for Mem {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
            Ok(self.0.get(key).cloned())
        }
    }
    impl KvWrite for Mem {
        fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
            self.0.insert(key, value);
        }
    }

    #[test]
    fn a_request_flows_through_its_states() {
        let mut kv = Mem::default();
        let rec = submitted(1);
        let id = RequestId([1; 16]);
        apply(&mut kv, 1, &rec, &rec.encode()).unwrap();
        let meta = request_meta(&kv, &id).unwrap().unwrap();
        assert_eq!(meta.status, RequestStatus::Submitted);
        assert_eq!(
            (meta.requester.as_str(), meta.recipient.as_str()),
            ("police", "oranga-tamariki")
        );
        assert_eq!(
            idempotent_request(&kv, "police", &[4; 32]).unwrap(),
            Some((id, 1))
        );
        assert_eq!(
            idempotent_request(&kv, "oranga-tamariki", &[4; 32]).unwrap(),
            None
        );

        let mut ack = rec.clone();
        ack.actor.id = "oranga-tamariki".into();
        ack.event = Event::RequestAcknowledged { request_id: id };
        apply(&mut kv, 2, &ack, &ack.encode()).unwrap();
        let entry = InboxEntry::decode(&kv.get(&inbox_key("oranga-tamariki", 1)).unwrap().unwrap())
            .unwrap();
        assert!(entry.acknowledged);
        assert_eq!(
            request_meta(&kv, &id).unwrap().unwrap().status,
            RequestStatus::Acknowledged
        );

        let timeline: Vec<_> =
            kv.0.keys()
                .filter(|k| k.starts_with(&timeline_prefix(&id)))
                .collect();
        assert_eq!(timeline.len(), 2);
    }

    #[test]
    fn a_follow_up_for_an_unknown_request_is_an_error() {
        let mut kv = Mem::default();
        let mut ack = submitted(1);
        ack.event = Event::RequestAcknowledged {
            request_id: RequestId([9; 16]),
        };
        assert!(apply(&mut kv, 1, &ack, &ack.encode()).is_err());
    }
}
