//! Log records: every state change of the broker, in a versioned, fixed binary encoding.
//!
//! A record holds coded metadata only — ids, codes, keyed pseudonyms and salted commitments —
//! never names, dates of birth, free text or content. The exact layout (version 3) is below;
//! integers are big-endian, `str8` is a one-byte length then UTF-8, `list8<T>` a one-byte count
//! then the items, `opt<T>` a byte 0 (absent) or 1 then `T`.
//!
//! ```text
//! record   = version:u8 (=3; 1 and 2 are still read) event:u8 time_unix_ms:u64 actor body
//! actor    = role:u8 (1 agency, 2 auditor, 3 admin) id:str8 cert_sha256:[32]
//! event 1  RequestSubmitted
//!            request_id:[16] recipient:str8 staff:[32] subjects:list8<[32]>
//!            protocol_id:str8 protocol_version:u32 authority:u8 purpose:str8
//!            categories:list8<str8> classification:u8 urgency:u8 consultation:u8 (0 none)
//!            idempotency:[32] body_commitment:[32]
//!            then, from version 3, its deadlines and the request it sends on (after an
//!            expiry or a referral): due_ms:u64 (0 none) expires_ms:u64 (0 never)
//!            follows:opt<[16]>
//! event 2  RequestAcknowledged   request_id:[16]
//! event 3  ResponseSubmitted
//!            request_id:[16] requester:str8 staff:[32] decision:u8 ground:u8 (0 none)
//!            disclosed:list8<category:str8 classification:u8> consultation:u8 (0 none)
//!            body_commitment:[32]
//!            then, from version 2, what the answer was judged under (the version in force
//!            when it was made, not the request's): protocol_id:str8 protocol_version:u32
//!            authority:u8 purpose:str8
//!            then, from version 3, the agency suggested when declining as not held:
//!            referral:str8 (empty: none)
//! event 4  ResponseAcknowledged  request_id:[16]
//! event 5  Denied
//!            operation:u8 request_id:opt<[16]> reason_code:str8 rule:str8
//!            then, from version 2, the subject the attempt named (or, for an attempt on an
//!            exchange, the exchange's subject): subjects:list8<[32]>
//! event 6  ProtocolRegistered    protocol_id:str8 version:u32 document_sha256:[32]
//! event 7  ProtocolApproved      protocol_id:str8 version:u32 approver_role:str8
//! event 8  ProtocolStateChanged  protocol_id:str8 version:u32 state:u8
//!            (2 active, 3 suspended, 4 revoked)
//! event 9  DisclosureSubmitted (proactive; the actor is the discloser)
//!            request_id:[16] recipient:str8 staff:[32] subjects:list8<[32]>
//!            protocol_id:str8 protocol_version:u32 authority:u8 purpose:str8
//!            disclosed:list8<category:str8 classification:u8> consultation:u8 (0 none)
//!            idempotency:[32] body_commitment:[32]
//! event 10 DisclosureAcknowledged request_id:[16]
//! event 11 AuditQueried (the actor is the auditor)
//!            query:u8 (1 query, 2 subject timeline, 3 export, 4 records by index,
//!            5 legal holds)
//!            subjects:list8<[32]> agency:str8 staff:opt<[32]> protocol_id:str8
//!            authority:u8 (0 any) event:u8 (0 any) decision:str8 since_ms:u64 until_ms:u64
//!            result_count:u32, then from version 2 purpose:str8 category:str8 (empty: any)
//! event 12 BodiesPurged (the actor is the admin who ran retention, or the broker's own
//!            retention task: role admin, id "infoshare-retention", certificate hash zero)
//!            request_id:[16] kinds:u8 (bits: 1 request, 2 response, 4 disclosure, and from
//!            version 3 8 update, 16 withdrawal; 0 none was stored)
//! event 13 LogKeyRotated (the actor is the administrator who rotated it)
//!            public_key:[32] (the Ed25519 key that signs the checkpoints after this
//!            record's; the checkpoint covering this record is signed by both keys)
//! event 14 LegalHoldPlaced, event 15 LegalHoldReleased (version 2; the actor is the auditor)
//!            target:u8 (1 exchange, 2 subject) then request_id:[16] or subject:[32]
//! events 16 to 21 are from version 3:
//! event 16 RequestOverdue (the actor is the broker's deadline task: role admin, id
//!            "infoshare-deadlines", certificate hash zero)  request_id:[16]
//! event 17 RequestWithdrawn (the actor is the requester)
//!            request_id:[16] staff:[32] body_commitment:[32] (the reasons are a body)
//! event 18 UpdateSubmitted (the actor answered the request; the update is an exchange of
//!            its own, `update_id`, sent to the requester)
//!            update_id:[16] request_id:[16] recipient:str8 staff:[32] subjects:list8<[32]>
//!            protocol_id:str8 protocol_version:u32 authority:u8 purpose:str8
//!            disclosed:list8<category:str8 classification:u8> consultation:u8 (0 none)
//!            idempotency:[32] body_commitment:[32]
//! event 19 RequestExpired (the actor is the deadline task)  request_id:[16]
//! event 20 UpdateAcknowledged   update_id:[16]
//! event 21 NoticesAcknowledged (the actor is the party whose notices they were)
//!            request_id:[16]
//! ```
//!
//! A protocol document (TOML, free text and contacts) is kept in the body store; its record holds
//! the document's SHA-256, so which version authorised each share is provable from the log.
//!
//! The actor of a record is the principal whose certificate made the call; its certificate's
//! SHA-256 ties the record to the exact credential used.

use crate::access::Operation;

use crate::crypto::{Digest32, Pseudonym};
use crate::domain::{
    Authority, Classification, Consultation, Decision, DeclineGround, MessageKind,
};
use crate::identity::Role;

/// The record format version this build writes. Versions 1 (before responses named their
/// protocol and refusals their subject) and 2 (before deadlines, withdrawals, updates and
/// referrals) are still read, and re-encode to the same bytes with [`Record::encode_as`]; the
/// log keeps every record's bytes as written and never re-encodes.
pub const RECORD_VERSION: u8 = 3;

/// A broker-assigned request id: 16 bytes, shown as 32 lowercase hex characters. The broker makes
/// them time-ordered (see [`RequestId::time_ordered`]); any 16 bytes parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub [u8; 16]);

impl RequestId {
    /// An id that sorts by the time it was made: the Unix time in ms (48 bits, big-endian, as
    /// in RFC 9562's UUIDv7), then 80 random bits. The views key an exchange's meta, timeline
    /// and bodies by its id, so ids that arrive in order are written near each other in the
    /// view store instead of on a random page each. The time it shows is in the request's
    /// records anyway; 80 random bits keep ids unguessable (nothing is granted by knowing one).
    pub fn time_ordered(time_ms: u64, random: [u8; 10]) -> Self {
        let mut out = [0u8; 16];
        out[..6].copy_from_slice(&time_ms.to_be_bytes()[2..]);
        out[6..].copy_from_slice(&random);
        Self(out)
    }

    /// Parses 32 lowercase hex characters.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Who made the call a record describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The principal's role.
    pub role: Role,
    /// The principal's registered id.
    pub id: String,
    /// SHA-256 of the client certificate (DER) used.
    pub cert_sha256: Digest32,
}

/// One log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When the broker accepted it (Unix milliseconds).
    pub time_ms: u64,
    /// Who acted.
    pub actor: Actor,
    /// What happened.
    pub event: Event,
}

/// What a record says happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An agency submitted a request (the actor is the requester).
    RequestSubmitted(RequestSubmitted),
    /// The recipient acknowledged a request.
    RequestAcknowledged {
        /// The exchange.
        request_id: RequestId,
    },
    /// The recipient answered a request.
    ResponseSubmitted(ResponseSubmitted),
    /// The requester acknowledged the answer.
    ResponseAcknowledged {
        /// The exchange.
        request_id: RequestId,
    },
    /// An attempt was refused (the actor is who tried).
    Denied(Denied),
    /// A change to the protocol register (the actor is the administrator).
    Protocol(ProtocolEvent),
    /// An agency disclosed information on its own initiative (the actor is the discloser).
    DisclosureSubmitted(DisclosureSubmitted),
    /// The recipient acknowledged a proactive disclosure.
    DisclosureAcknowledged {
        /// The exchange.
        request_id: RequestId,
    },
    /// An auditor queried the log.
    AuditQueried(AuditQueried),
    /// An exchange's bodies were erased at the end of its protocol's retention period (its
    /// records and their commitments stay).
    BodiesPurged {
        /// The exchange.
        request_id: RequestId,
        /// Which bodies were erased (see [`purged_bit`]).
        kinds: u8,
    },
    /// The log's signing key was rotated to this Ed25519 public key.
    LogKeyRotated {
        /// The new key.
        public_key: [u8; 32],
    },
    /// An auditor placed a legal hold: retention erases none of the target's bodies until it
    /// is released.
    LegalHoldPlaced(HoldTarget),
    /// An auditor released a legal hold.
    LegalHoldReleased(HoldTarget),
    /// A request passed its due time unanswered (the broker's deadline task).
    RequestOverdue {
        /// The request.
        request_id: RequestId,
    },
    /// The requester withdrew a request it had not had answered.
    RequestWithdrawn(RequestWithdrawn),
    /// The agency that answered a request sent new information about it.
    UpdateSubmitted(UpdateSubmitted),
    /// A request was not acknowledged within its collection window (the deadline task).
    RequestExpired {
        /// The request.
        request_id: RequestId,
    },
    /// The requester acknowledged an update.
    UpdateAcknowledged {
        /// The update's own id.
        request_id: RequestId,
    },
    /// A party acknowledged its notices about an exchange.
    NoticesAcknowledged {
        /// The exchange.
        request_id: RequestId,
    },
}

/// The metadata of a withdrawal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestWithdrawn {
    /// The request withdrawn.
    pub request_id: RequestId,
    /// The withdrawing staff member's pseudonym.
    pub staff: Pseudonym,
    /// Salted commitment to the withdrawal body (its reasons).
    pub body_commitment: Digest32,
}

/// The metadata of an update: an exchange of its own (`update_id`), linked to the request it
/// updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateSubmitted {
    /// The update's own id.
    pub update_id: RequestId,
    /// The request it updates.
    pub request_id: RequestId,
    /// The agency it goes to (the request's requester).
    pub recipient: String,
    /// The sending staff member's pseudonym.
    pub staff: Pseudonym,
    /// The request's subject pseudonyms.
    pub subjects: Vec<Pseudonym>,
    /// The protocol it was judged under.
    pub protocol_id: String,
    /// Its version in force when the update was made.
    pub protocol_version: u32,
    /// The request's legal authority.
    pub authority: Authority,
    /// The request's purpose.
    pub purpose: String,
    /// The categories disclosed, each with its classification.
    pub disclosed: Vec<(String, Classification)>,
    /// Whether the subject was consulted, if recorded.
    pub consultation: Option<Consultation>,
    /// Keyed hash of the client's idempotency key.
    pub idempotency: Digest32,
    /// Salted commitment to the update body.
    pub body_commitment: Digest32,
}

/// What a legal hold covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldTarget {
    /// One exchange.
    Exchange(RequestId),
    /// Every exchange about a subject (by pseudonym).
    Subject(Pseudonym),
}

/// What an auditor asked (identifiers only as pseudonyms) and how many records it got.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuditQueried {
    /// 1 query, 2 subject timeline, 3 export, 4 records by index, 5 legal holds.
    pub query: u8,
    /// Subject pseudonyms asked about.
    pub subjects: Vec<Pseudonym>,
    /// Agency asked about (empty: any).
    pub agency: String,
    /// Staff pseudonym asked about.
    pub staff: Option<Pseudonym>,
    /// Protocol asked about (empty: any).
    pub protocol_id: String,
    /// Authority asked about.
    pub authority: Option<Authority>,
    /// Event type code asked about (0: any).
    pub event: u8,
    /// Decision asked about (empty: any).
    pub decision: String,
    /// Time range asked about (0: open).
    pub since_ms: u64,
    /// Time range asked about (0: open).
    pub until_ms: u64,
    /// Records returned.
    pub result_count: u32,
    /// Purpose asked about (empty: any; always in version-1 records).
    pub purpose: String,
    /// Category asked about (empty: any; always in version-1 records).
    pub category: String,
}

/// The bit a body of `kind` sets in a BodiesPurged record's `kinds`: 1 request, 2 response,
/// 4 disclosure, 8 update, 16 withdrawal (protocol documents and notices are never purged).
pub fn purged_bit(kind: MessageKind) -> u8 {
    match kind {
        MessageKind::Request => 1,
        MessageKind::Response => 2,
        MessageKind::Disclosure => 4,
        MessageKind::Update => 8,
        MessageKind::Withdrawal => 16,
        MessageKind::Protocol | MessageKind::Notice => 0,
    }
}

/// The event type codes: the one table of them (the byte after the version in a record).
pub mod code {
    /// An agency asked another for information (`request-submitted`).
    pub const REQUEST_SUBMITTED: u8 = 1;
    /// The recipient acknowledged a request (`request-acknowledged`).
    pub const REQUEST_ACKNOWLEDGED: u8 = 2;
    /// The recipient answered (`response-submitted`).
    pub const RESPONSE_SUBMITTED: u8 = 3;
    /// The requester acknowledged the answer (`response-acknowledged`).
    pub const RESPONSE_ACKNOWLEDGED: u8 = 4;
    /// An attempt was refused (`denied`).
    pub const DENIED: u8 = 5;
    /// A protocol version was registered as a draft (`protocol-registered`).
    pub const PROTOCOL_REGISTERED: u8 = 6;
    /// A draft was approved (`protocol-approved`).
    pub const PROTOCOL_APPROVED: u8 = 7;
    /// The version in force was suspended, resumed or revoked (`protocol-state-changed`).
    pub const PROTOCOL_STATE_CHANGED: u8 = 8;
    /// An agency disclosed information without being asked (`disclosure-submitted`).
    pub const DISCLOSURE_SUBMITTED: u8 = 9;
    /// The recipient acknowledged a proactive disclosure (`disclosure-acknowledged`).
    pub const DISCLOSURE_ACKNOWLEDGED: u8 = 10;
    /// An auditor queried the log (`audit-query`).
    pub const AUDIT_QUERIED: u8 = 11;
    /// An exchange's bodies were erased at the end of its retention (`bodies-purged`).
    pub const BODIES_PURGED: u8 = 12;
    /// The log's signing key was rotated (`log-key-rotated`).
    pub const LOG_KEY_ROTATED: u8 = 13;
    /// A legal hold was placed (`legal-hold-placed`).
    pub const LEGAL_HOLD_PLACED: u8 = 14;
    /// A legal hold was released (`legal-hold-released`).
    pub const LEGAL_HOLD_RELEASED: u8 = 15;
    /// A request passed its due time unanswered (`request-overdue`).
    pub const REQUEST_OVERDUE: u8 = 16;
    /// The requester withdrew a request (`request-withdrawn`).
    pub const REQUEST_WITHDRAWN: u8 = 17;
    /// The answering agency sent an update (`update-submitted`).
    pub const UPDATE_SUBMITTED: u8 = 18;
    /// A request expired unacknowledged (`request-expired`).
    pub const REQUEST_EXPIRED: u8 = 19;
    /// The requester acknowledged an update (`update-acknowledged`).
    pub const UPDATE_ACKNOWLEDGED: u8 = 20;
    /// A party acknowledged its notices (`notices-acknowledged`).
    pub const NOTICES_ACKNOWLEDGED: u8 = 21;
}

/// Stable names of the event types, by code.
pub const EVENT_TYPES: [(u8, &str); 21] = [
    (code::REQUEST_SUBMITTED, "request-submitted"),
    (code::REQUEST_ACKNOWLEDGED, "request-acknowledged"),
    (code::RESPONSE_SUBMITTED, "response-submitted"),
    (code::RESPONSE_ACKNOWLEDGED, "response-acknowledged"),
    (code::DENIED, "denied"),
    (code::PROTOCOL_REGISTERED, "protocol-registered"),
    (code::PROTOCOL_APPROVED, "protocol-approved"),
    (code::PROTOCOL_STATE_CHANGED, "protocol-state-changed"),
    (code::DISCLOSURE_SUBMITTED, "disclosure-submitted"),
    (code::DISCLOSURE_ACKNOWLEDGED, "disclosure-acknowledged"),
    (code::AUDIT_QUERIED, "audit-query"),
    (code::BODIES_PURGED, "bodies-purged"),
    (code::LOG_KEY_ROTATED, "log-key-rotated"),
    (code::LEGAL_HOLD_PLACED, "legal-hold-placed"),
    (code::LEGAL_HOLD_RELEASED, "legal-hold-released"),
    (code::REQUEST_OVERDUE, "request-overdue"),
    (code::REQUEST_WITHDRAWN, "request-withdrawn"),
    (code::UPDATE_SUBMITTED, "update-submitted"),
    (code::REQUEST_EXPIRED, "request-expired"),
    (code::UPDATE_ACKNOWLEDGED, "update-acknowledged"),
    (code::NOTICES_ACKNOWLEDGED, "notices-acknowledged"),
];

/// The event type code with this name.
pub fn event_code(name: &str) -> Option<u8> {
    EVENT_TYPES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
}

/// The name of an event type code.
pub fn event_name(code: u8) -> &'static str {
    EVENT_TYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("unknown", |(_, n)| n)
}

/// A change to the protocol register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolEvent {
    /// A protocol version was registered as a draft.
    Registered {
        /// The protocol's id in the register.
        protocol_id: String,
        /// The version concerned (versions are numbered from 1).
        version: u32,
        /// SHA-256 of the TOML document (kept in the body store).
        document_sha256: Digest32,
    },
    /// A draft was approved (by an administrator other than the one who registered it).
    Approved {
        /// The protocol's id in the register.
        protocol_id: String,
        /// The version concerned (versions are numbered from 1).
        version: u32,
        /// The role the approver approved in (e.g. "Chief Privacy Officer").
        approver_role: String,
    },
    /// The version in force was suspended, resumed or revoked.
    StateChanged {
        /// The protocol's id in the register.
        protocol_id: String,
        /// The version concerned (versions are numbered from 1).
        version: u32,
        /// The new state.
        state: crate::domain::ProtocolState,
    },
}

/// The metadata of a submitted request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSubmitted {
    /// The new request's id.
    pub request_id: RequestId,
    /// The agency asked.
    pub recipient: String,
    /// The requesting staff member's pseudonym.
    pub staff: Pseudonym,
    /// Pseudonyms of the subject: by name and date of birth, then one per agency identifier.
    pub subjects: Vec<Pseudonym>,
    /// The protocol relied on.
    pub protocol_id: String,
    /// The protocol version in force (0 until the protocol register exists).
    pub protocol_version: u32,
    /// The legal authority relied on.
    pub authority: Authority,
    /// The protocol purpose code.
    pub purpose: String,
    /// The requested category codes.
    pub categories: Vec<String>,
    /// The classification the requester assigned.
    pub classification: Classification,
    /// How urgent.
    pub urgency: crate::domain::Urgency,
    /// Whether the subject was consulted, if recorded.
    pub consultation: Option<Consultation>,
    /// Keyed hash of the client's idempotency key.
    pub idempotency: Digest32,
    /// Salted commitment to the request body.
    pub body_commitment: Digest32,
    /// When it must be answered by (Unix ms; 0 in records before version 3).
    pub due_ms: u64,
    /// When it expires if not acknowledged (Unix ms; 0: never, as in records before version 3).
    pub expires_ms: u64,
    /// The request of the same requester it sends on, if any.
    pub follows: Option<RequestId>,
}

/// The metadata of a proactive disclosure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureSubmitted {
    /// The id of the new exchange.
    pub request_id: RequestId,
    /// The agency disclosed to.
    pub recipient: String,
    /// The disclosing staff member's pseudonym.
    pub staff: Pseudonym,
    /// Pseudonyms of the subject.
    pub subjects: Vec<Pseudonym>,
    /// The protocol relied on.
    pub protocol_id: String,
    /// The protocol version in force.
    pub protocol_version: u32,
    /// The legal authority relied on.
    pub authority: Authority,
    /// The protocol purpose code.
    pub purpose: String,
    /// The categories disclosed, each with its classification.
    pub disclosed: Vec<(String, Classification)>,
    /// Whether the subject was consulted, if recorded.
    pub consultation: Option<Consultation>,
    /// Keyed hash of the client's idempotency key.
    pub idempotency: Digest32,
    /// Salted commitment to the disclosure body.
    pub body_commitment: Digest32,
}

/// The metadata of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseSubmitted {
    /// The request answered.
    pub request_id: RequestId,
    /// The agency the answer goes to (the requester).
    pub requester: String,
    /// The answering staff member's pseudonym.
    pub staff: Pseudonym,
    /// Disclose, partly disclose or decline.
    pub decision: Decision,
    /// Why information was withheld, if it was.
    pub ground: Option<DeclineGround>,
    /// The categories disclosed, each with its classification.
    pub disclosed: Vec<(String, Classification)>,
    /// Whether the subject was consulted, if recorded.
    pub consultation: Option<Consultation>,
    /// Salted commitment to the response body.
    pub body_commitment: Digest32,
    /// The protocol the answer was judged under (empty in version-1 records).
    pub protocol_id: String,
    /// Its version in force when the answer was made (0 in version-1 records).
    pub protocol_version: u32,
    /// The legal authority relied on (the request's; none in version-1 records).
    pub authority: Option<Authority>,
    /// The purpose it serves (the request's; empty in version-1 records).
    pub purpose: String,
    /// The agency suggested when declining as not held (empty: none, as in records before
    /// version 3).
    pub referral: String,
}

/// A refused attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The operation attempted.
    pub operation: Operation,
    /// The request concerned, when there was one.
    pub request_id: Option<RequestId>,
    /// The stable machine-readable reason code.
    pub reason_code: String,
    /// The rule (or input field) that refused it.
    pub rule: String,
    /// Pseudonyms of the subject the attempt named, or of the exchange's subject for an
    /// attempt on an exchange (empty when neither is known; always in version-1 records).
    pub subjects: Vec<Pseudonym>,
}

impl Event {
    /// The event type code.
    pub fn code(&self) -> u8 {
        match self {
            Event::RequestSubmitted(_) => code::REQUEST_SUBMITTED,
            Event::RequestAcknowledged { .. } => code::REQUEST_ACKNOWLEDGED,
            Event::ResponseSubmitted(_) => code::RESPONSE_SUBMITTED,
            Event::ResponseAcknowledged { .. } => code::RESPONSE_ACKNOWLEDGED,
            Event::Denied(_) => code::DENIED,
            Event::Protocol(ProtocolEvent::Registered { .. }) => code::PROTOCOL_REGISTERED,
            Event::Protocol(ProtocolEvent::Approved { .. }) => code::PROTOCOL_APPROVED,
            Event::Protocol(ProtocolEvent::StateChanged { .. }) => code::PROTOCOL_STATE_CHANGED,
            Event::DisclosureSubmitted(_) => code::DISCLOSURE_SUBMITTED,
            Event::DisclosureAcknowledged { .. } => code::DISCLOSURE_ACKNOWLEDGED,
            Event::AuditQueried(_) => code::AUDIT_QUERIED,
            Event::BodiesPurged { .. } => code::BODIES_PURGED,
            Event::LogKeyRotated { .. } => code::LOG_KEY_ROTATED,
            Event::LegalHoldPlaced(_) => code::LEGAL_HOLD_PLACED,
            Event::LegalHoldReleased(_) => code::LEGAL_HOLD_RELEASED,
            Event::RequestOverdue { .. } => code::REQUEST_OVERDUE,
            Event::RequestWithdrawn(_) => code::REQUEST_WITHDRAWN,
            Event::UpdateSubmitted(_) => code::UPDATE_SUBMITTED,
            Event::RequestExpired { .. } => code::REQUEST_EXPIRED,
            Event::UpdateAcknowledged { .. } => code::UPDATE_ACKNOWLEDGED,
            Event::NoticesAcknowledged { .. } => code::NOTICES_ACKNOWLEDGED,
        }
    }

    /// The body this record commits to, if it carries one: as it is stored, by kind and id
    /// (for an update, the update's own id; for a registration, the protocol version's).
    pub fn body(&self) -> Option<(MessageKind, RequestId)> {
        match self {
            Event::RequestSubmitted(r) => Some((MessageKind::Request, r.request_id)),
            Event::ResponseSubmitted(r) => Some((MessageKind::Response, r.request_id)),
            Event::DisclosureSubmitted(d) => Some((MessageKind::Disclosure, d.request_id)),
            Event::UpdateSubmitted(u) => Some((MessageKind::Update, u.update_id)),
            Event::RequestWithdrawn(w) => Some((MessageKind::Withdrawal, w.request_id)),
            Event::Protocol(ProtocolEvent::Registered {
                protocol_id,
                version,
                ..
            }) => Some((
                MessageKind::Protocol,
                crate::bodies::protocol_body_id(protocol_id, *version),
            )),
            Event::Protocol(_)
            | Event::RequestAcknowledged { .. }
            | Event::ResponseAcknowledged { .. }
            | Event::Denied(_)
            | Event::DisclosureAcknowledged { .. }
            | Event::AuditQueried(_)
            | Event::BodiesPurged { .. }
            | Event::LogKeyRotated { .. }
            | Event::LegalHoldPlaced(_)
            | Event::LegalHoldReleased(_)
            | Event::RequestOverdue { .. }
            | Event::RequestExpired { .. }
            | Event::UpdateAcknowledged { .. }
            | Event::NoticesAcknowledged { .. } => None,
        }
    }

    /// The exchange the event concerns, if any (for an update, the update's own id).
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Event::RequestSubmitted(r) => Some(r.request_id),
            Event::ResponseSubmitted(r) => Some(r.request_id),
            Event::RequestAcknowledged { request_id }
            | Event::ResponseAcknowledged { request_id } => Some(*request_id),
            Event::Denied(d) => d.request_id,
            Event::Protocol(_) => None,
            Event::DisclosureSubmitted(d) => Some(d.request_id),
            Event::DisclosureAcknowledged { request_id } => Some(*request_id),
            Event::AuditQueried(_) => None,
            Event::BodiesPurged { request_id, .. } => Some(*request_id),
            Event::LogKeyRotated { .. } => None,
            Event::LegalHoldPlaced(t) | Event::LegalHoldReleased(t) => match t {
                HoldTarget::Exchange(id) => Some(*id),
                HoldTarget::Subject(_) => None,
            },
            Event::RequestOverdue { request_id }
            | Event::RequestExpired { request_id }
            | Event::UpdateAcknowledged { request_id }
            | Event::NoticesAcknowledged { request_id } => Some(*request_id),
            Event::RequestWithdrawn(w) => Some(w.request_id),
            Event::UpdateSubmitted(u) => Some(u.update_id),
        }
    }

    /// The other exchange the event links to: the request an update updates, the request a
    /// request sends on.
    pub fn related(&self) -> Option<RequestId> {
        match self {
            Event::UpdateSubmitted(u) => Some(u.request_id),
            Event::RequestSubmitted(r) => r.follows,
            _ => None,
        }
    }

    /// What the three events that open an exchange (a request, a proactive disclosure, an
    /// update) have in common; `None` for every other event.
    pub fn opening(&self) -> Option<Opening<'_>> {
        Some(match self {
            Event::RequestSubmitted(r) => Opening {
                kind: MessageKind::Request,
                request_id: r.request_id,
                recipient: &r.recipient,
                staff: &r.staff,
                subjects: &r.subjects,
                protocol_id: &r.protocol_id,
                protocol_version: r.protocol_version,
                idempotency: &r.idempotency,
            },
            Event::DisclosureSubmitted(d) => Opening {
                kind: MessageKind::Disclosure,
                request_id: d.request_id,
                recipient: &d.recipient,
                staff: &d.staff,
                subjects: &d.subjects,
                protocol_id: &d.protocol_id,
                protocol_version: d.protocol_version,
                idempotency: &d.idempotency,
            },
            Event::UpdateSubmitted(u) => Opening {
                kind: MessageKind::Update,
                request_id: u.update_id,
                recipient: &u.recipient,
                staff: &u.staff,
                subjects: &u.subjects,
                protocol_id: &u.protocol_id,
                protocol_version: u.protocol_version,
                idempotency: &u.idempotency,
            },
            _ => return None,
        })
    }
}

/// The fields every exchange's opening record has, whether a request, a proactive disclosure
/// or an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opening<'a> {
    /// Request, disclosure or update.
    pub kind: MessageKind,
    /// The exchange it opens.
    pub request_id: RequestId,
    /// The agency it went to.
    pub recipient: &'a str,
    /// The sending staff member's pseudonym.
    pub staff: &'a Pseudonym,
    /// Its subjects' pseudonyms.
    pub subjects: &'a [Pseudonym],
    /// The protocol it was made under.
    pub protocol_id: &'a str,
    /// That protocol's version.
    pub protocol_version: u32,
    /// Its idempotency hash within the sending agency.
    pub idempotency: &'a Digest32,
}

mod layout;
#[cfg(test)]
pub(crate) mod tests;
