//! The values the views keep for an exchange (its meta) and for an inbox item, and their
//! encodings. Fields added after the first layout are appended and optional at the end, so a
//! value written before them still reads (as an exchange that has none of them).

use crate::codec::{DecodeError, Reader, Writer};
use crate::domain::{MessageKind, NoticeKind, RequestStatus, Urgency};
use crate::records::RequestId;

/// Bits of a meta's mask, after the six u64 fields (bits 0 to 5, in their order).
const URGENCY: u16 = 6;
const LINKED: u16 = 7;
const NOT_HELD: u16 = 8;
const REFERRAL: u16 = 9;

/// Where an exchange stands, and where its records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    /// Request (answered by a response), proactive disclosure or update.
    pub kind: MessageKind,
    /// The requesting (or disclosing, or updating) agency.
    pub requester: String,
    /// The agency asked (or disclosed to, or updated).
    pub recipient: String,
    /// Current status.
    pub status: RequestStatus,
    /// Index of the record that opened it.
    pub request_idx: u64,
    /// Index of its acknowledgement by the recipient (0: none).
    pub request_ack_idx: u64,
    /// Index of the ResponseSubmitted record (0: none).
    pub response_idx: u64,
    /// Index of the ResponseAcknowledged record (0: none).
    pub response_ack_idx: u64,
    /// A request's urgency (none for other exchanges).
    pub urgency: Option<Urgency>,
    /// When a request must be answered by (Unix ms; 0: no due time).
    pub due_ms: u64,
    /// When a request expires unacknowledged (Unix ms; 0: never).
    pub expires_ms: u64,
    /// Index of the RequestOverdue record (0: not overdue).
    pub overdue_idx: u64,
    /// Index of the record that withdrew or expired it (0: neither).
    pub closed_idx: u64,
    /// For an update, the request it updates; for a request sent on, the one it follows.
    pub linked: Option<RequestId>,
    /// Index of the requester's last NoticesAcknowledged record (0: none).
    pub requester_notices_acked: u64,
    /// Index of the recipient's last NoticesAcknowledged record (0: none).
    pub recipient_notices_acked: u64,
    /// Whether the answer withheld something as not held (the request may then be sent on).
    pub not_held: bool,
    /// The agency the answer suggested instead (empty: none).
    pub referral: String,
}

impl RequestMeta {
    /// A new exchange of `kind` from `requester` to `recipient`, opened by record `index`.
    pub fn opened(kind: MessageKind, requester: &str, recipient: &str, index: u64) -> Self {
        Self {
            kind,
            requester: requester.to_string(),
            recipient: recipient.to_string(),
            status: RequestStatus::Submitted,
            request_idx: index,
            request_ack_idx: 0,
            response_idx: 0,
            response_ack_idx: 0,
            urgency: None,
            due_ms: 0,
            expires_ms: 0,
            overdue_idx: 0,
            closed_idx: 0,
            linked: None,
            requester_notices_acked: 0,
            recipient_notices_acked: 0,
            not_held: false,
            referral: String::new(),
        }
    }

    /// The bytes [`Self::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.kind.code())
            .str8(&self.requester)
            .str8(&self.recipient)
            .u8(self.status.code())
            .u64(self.request_idx)
            .u64(self.request_ack_idx)
            .u64(self.response_idx)
            .u64(self.response_ack_idx);
        // The later fields follow a mask of those set, so a meta pays only for what it has
        // (the views are written on the log writer's path).
        let words = [
            self.due_ms,
            self.expires_ms,
            self.overdue_idx,
            self.closed_idx,
            self.requester_notices_acked,
            self.recipient_notices_acked,
        ];
        let mut mask: u16 = 0;
        for (bit, v) in words.iter().enumerate() {
            mask |= u16::from(*v != 0) << bit;
        }
        mask |= u16::from(self.urgency.is_some()) << URGENCY;
        mask |= u16::from(self.linked.is_some()) << LINKED;
        mask |= u16::from(self.not_held) << NOT_HELD;
        mask |= u16::from(!self.referral.is_empty()) << REFERRAL;
        if mask == 0 {
            return w.finish();
        }
        w.fixed(&mask.to_be_bytes());
        for v in words.into_iter().filter(|v| *v != 0) {
            w.u64(v);
        }
        if let Some(u) = self.urgency {
            w.u8(u.code());
        }
        if let Some(id) = self.linked {
            w.fixed(&id.0);
        }
        if !self.referral.is_empty() {
            w.str8(&self.referral);
        }
        w.finish()
    }

    /// Decodes a stored meta.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut meta = Self::opened(
            r.code("kind", MessageKind::from_code)?,
            &r.str8()?,
            &r.str8()?,
            0,
        );
        meta.status = r.code("status", RequestStatus::from_code)?;
        meta.request_idx = r.u64()?;
        meta.request_ack_idx = r.u64()?;
        meta.response_idx = r.u64()?;
        meta.response_ack_idx = r.u64()?;
        if r.is_empty() {
            // None of the later fields is set (or it was written before they existed).
            return Ok(meta);
        }
        let mask = u16::from_be_bytes(r.fixed()?);
        if mask >> (REFERRAL + 1) != 0 {
            return Err(DecodeError::UnknownCode {
                field: "meta fields",
                code: (mask >> 8) as u8,
            });
        }
        let mut word = |bit: u16| -> Result<u64, DecodeError> {
            if mask & (1 << bit) != 0 {
                r.u64()
            } else {
                Ok(0)
            }
        };
        meta.due_ms = word(0)?;
        meta.expires_ms = word(1)?;
        meta.overdue_idx = word(2)?;
        meta.closed_idx = word(3)?;
        meta.requester_notices_acked = word(4)?;
        meta.recipient_notices_acked = word(5)?;
        if mask & (1 << URGENCY) != 0 {
            meta.urgency = Some(r.code("urgency", Urgency::from_code)?);
        }
        if mask & (1 << LINKED) != 0 {
            meta.linked = Some(RequestId(r.fixed()?));
        }
        meta.not_held = mask & (1 << NOT_HELD) != 0;
        if mask & (1 << REFERRAL) != 0 {
            meta.referral = r.str8()?;
        }
        r.end()?;
        Ok(meta)
    }

    /// The records this meta points to, 0 where it points to none: the opening, the
    /// acknowledgements, the answer, the overdue notice, the withdrawal or expiry, and each
    /// party's last acknowledgement of its notices. They are the exchange's timeline, but for
    /// the records that have a key of their own there (see [`super::timeline_of`]).
    pub fn record_indexes(&self) -> [u64; 8] {
        [
            self.request_idx,
            self.request_ack_idx,
            self.response_idx,
            self.response_ack_idx,
            self.overdue_idx,
            self.closed_idx,
            self.requester_notices_acked,
            self.recipient_notices_acked,
        ]
    }

    /// Whether `agency` is a party (requester or recipient).
    pub fn is_party(&self, agency: &str) -> bool {
        self.requester == agency || self.recipient == agency
    }

    /// Whether the request passed its due time unanswered.
    pub fn overdue(&self) -> bool {
        self.overdue_idx != 0
    }

    /// The notices `agency` received about this exchange, by the index of the record that made
    /// each: an overdue notice goes to both parties, a withdrawal's to the recipient, an
    /// expiry's to the requester.
    pub fn notices_to(&self, agency: &str) -> Vec<u64> {
        let mut out = Vec::new();
        if !self.is_party(agency) {
            return out;
        }
        if self.overdue_idx != 0 {
            out.push(self.overdue_idx);
        }
        let closed_notice = match self.status {
            RequestStatus::Withdrawn => self.recipient == agency,
            RequestStatus::Expired => self.requester == agency,
            _ => false,
        };
        if closed_notice && self.closed_idx != 0 {
            out.push(self.closed_idx);
        }
        out
    }

    /// The record that commits to this exchange's body of `kind` (see
    /// [`crate::records::Event::body`]), if it has one: its opening for the exchange's own kind,
    /// its answer for a response, its withdrawal for the requester's reasons.
    pub fn body_record(&self, kind: MessageKind) -> Option<u64> {
        let index = match kind {
            MessageKind::Response => self.response_idx,
            MessageKind::Withdrawal if self.status == RequestStatus::Withdrawn => self.closed_idx,
            MessageKind::Request | MessageKind::Disclosure | MessageKind::Update
                if kind == self.kind =>
            {
                self.request_idx
            }
            _ => 0,
        };
        (index != 0).then_some(index)
    }

    /// The index of `agency`'s last acknowledgement of its notices (0: none).
    pub fn notices_acked_by(&self, agency: &str) -> u64 {
        if agency == self.requester {
            self.requester_notices_acked
        } else if agency == self.recipient {
            self.recipient_notices_acked
        } else {
            0
        }
    }
}

/// One item of an agency's inbox, as read from its record and its exchange's meta
/// ([`super::inbox_entry`]); not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// Request, response, disclosure, update or notice.
    pub kind: MessageKind,
    /// The exchange it belongs to (for a notice, the request it is about).
    pub request_id: RequestId,
    /// The sending agency (for a broker's notice, its task's id).
    pub from: String,
    /// When it was accepted (Unix ms).
    pub time_ms: u64,
    /// Whether the owner acknowledged it.
    pub acknowledged: bool,
    /// What a notice says (none for other items).
    pub notice: Option<NoticeKind>,
}
