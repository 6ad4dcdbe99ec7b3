//! Log records: every state change of the broker, in a versioned, fixed binary encoding.
//!
//! A record holds coded metadata only — ids, codes, keyed pseudonyms and salted commitments —
//! never names, dates of birth, free text or content. The exact layout (version 2) is below;
//! integers are big-endian, `str8` is a one-byte length then UTF-8, `list8<T>` a one-byte count
//! then the items, `opt<T>` a byte 0 (absent) or 1 then `T`.
//!
//! ```text
//! record   = version:u8 (=2; 1 is still read) event:u8 time_unix_ms:u64 actor body
//! actor    = role:u8 (1 agency, 2 auditor, 3 admin) id:str8 cert_sha256:[32]
//! event 1  RequestSubmitted
//!            request_id:[16] recipient:str8 staff:[32] subjects:list8<[32]>
//!            protocol_id:str8 protocol_version:u32 authority:u8 purpose:str8
//!            categories:list8<str8> classification:u8 urgency:u8 consultation:u8 (0 none)
//!            idempotency:[32] body_commitment:[32]
//! event 2  RequestAcknowledged   request_id:[16]
//! event 3  ResponseSubmitted
//!            request_id:[16] requester:str8 staff:[32] decision:u8 ground:u8 (0 none)
//!            disclosed:list8<category:str8 classification:u8> consultation:u8 (0 none)
//!            body_commitment:[32]
//!            then, from version 2, what the answer was judged under (the version in force
//!            when it was made, not the request's): protocol_id:str8 protocol_version:u32
//!            authority:u8 purpose:str8
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
//!            request_id:[16] kinds:u8 (bits: 1 request, 2 response, 4 disclosure; 0 none
//!            was stored)
//! event 13 LogKeyRotated (the actor is the administrator who rotated it)
//!            public_key:[32] (the Ed25519 key that signs the checkpoints after this
//!            record's; the checkpoint covering this record is signed by both keys)
//! event 14 LegalHoldPlaced, event 15 LegalHoldReleased (version 2; the actor is the auditor)
//!            target:u8 (1 exchange, 2 subject) then request_id:[16] or subject:[32]
//! ```
//!
//! A protocol document (TOML, free text and contacts) is kept in the body store; its record holds
//! the document's SHA-256, so which version authorised each share is provable from the log.
//!
//! The actor of a record is the principal whose certificate made the call; its certificate's
//! SHA-256 ties the record to the exact credential used.

use crate::access::Operation;
use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{Digest32, Pseudonym};
use crate::domain::{Authority, Classification, Consultation, Decision, DeclineGround};
use crate::identity::Role;

/// The record format version this build writes. Version 1 (before responses named their
/// protocol and refusals their subject) is still read, and re-encodes to the same bytes with
/// [`Record::encode_as`]; the log keeps every record's bytes as written and never re-encodes.
pub const RECORD_VERSION: u8 = 2;

/// A broker-assigned request id: 16 random bytes, shown as 32 lowercase hex characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub [u8; 16]);

impl RequestId {
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
        /// The request.
        request_id: RequestId,
    },
    /// The recipient answered a request.
    ResponseSubmitted(ResponseSubmitted),
    /// The requester acknowledged the answer.
    ResponseAcknowledged {
        /// The request.
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
        /// Which bodies were erased: bit 1 request, 2 response, 4 disclosure.
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

/// Stable names of the event types, by code.
pub const EVENT_TYPES: [(u8, &str); 15] = [
    (1, "request-submitted"),
    (2, "request-acknowledged"),
    (3, "response-submitted"),
    (4, "response-acknowledged"),
    (5, "denied"),
    (6, "protocol-registered"),
    (7, "protocol-approved"),
    (8, "protocol-state-changed"),
    (9, "disclosure-submitted"),
    (10, "disclosure-acknowledged"),
    (11, "audit-query"),
    (12, "bodies-purged"),
    (13, "log-key-rotated"),
    (14, "legal-hold-placed"),
    (15, "legal-hold-released"),
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
        /// Its id.
        protocol_id: String,
        /// Its version.
        version: u32,
        /// SHA-256 of the TOML document (kept in the body store).
        document_sha256: Digest32,
    },
    /// A draft was approved (by an administrator other than the one who registered it).
    Approved {
        /// Its id.
        protocol_id: String,
        /// Its version.
        version: u32,
        /// The approver's role.
        approver_role: String,
    },
    /// The version in force was suspended, resumed or revoked.
    StateChanged {
        /// Its id.
        protocol_id: String,
        /// Its version.
        version: u32,
        /// The new state.
        state: crate::protocol::ProtocolState,
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
            Event::RequestSubmitted(_) => 1,
            Event::RequestAcknowledged { .. } => 2,
            Event::ResponseSubmitted(_) => 3,
            Event::ResponseAcknowledged { .. } => 4,
            Event::Denied(_) => 5,
            Event::Protocol(ProtocolEvent::Registered { .. }) => 6,
            Event::Protocol(ProtocolEvent::Approved { .. }) => 7,
            Event::Protocol(ProtocolEvent::StateChanged { .. }) => 8,
            Event::DisclosureSubmitted(_) => 9,
            Event::DisclosureAcknowledged { .. } => 10,
            Event::AuditQueried(_) => 11,
            Event::BodiesPurged { .. } => 12,
            Event::LogKeyRotated { .. } => 13,
            Event::LegalHoldPlaced(_) => 14,
            Event::LegalHoldReleased(_) => 15,
        }
    }

    /// The request the event concerns, if any.
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
        }
    }
}

impl Record {
    /// The encoding this build writes ([`RECORD_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(RECORD_VERSION)
    }

    /// The encoding in format `version` (1 or 2); version 1 has no place for the fields
    /// version 2 added, so it is only for re-encoding what was read as version 1.
    pub fn encode_as(&self, version: u8) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(version)
            .u8(self.event.code())
            .u64(self.time_ms)
            .u8(self.actor.role.code())
            .str8(&self.actor.id)
            .fixed(&self.actor.cert_sha256);
        match &self.event {
            Event::RequestSubmitted(r) => {
                w.fixed(&r.request_id.0)
                    .str8(&r.recipient)
                    .fixed(&r.staff)
                    .count8(r.subjects.len());
                for s in &r.subjects {
                    w.fixed(s);
                }
                w.str8(&r.protocol_id)
                    .u32(r.protocol_version)
                    .u8(r.authority.code())
                    .str8(&r.purpose)
                    .count8(r.categories.len());
                for c in &r.categories {
                    w.str8(c);
                }
                w.u8(r.classification.code())
                    .u8(r.urgency.code())
                    .u8(r.consultation.map_or(0, Consultation::code))
                    .fixed(&r.idempotency)
                    .fixed(&r.body_commitment);
            }
            Event::RequestAcknowledged { request_id }
            | Event::ResponseAcknowledged { request_id }
            | Event::DisclosureAcknowledged { request_id } => {
                w.fixed(&request_id.0);
            }
            Event::BodiesPurged { request_id, kinds } => {
                w.fixed(&request_id.0).u8(*kinds);
            }
            Event::LogKeyRotated { public_key } => {
                w.fixed(public_key);
            }
            Event::LegalHoldPlaced(t) | Event::LegalHoldReleased(t) => match t {
                HoldTarget::Exchange(id) => {
                    w.u8(1).fixed(&id.0);
                }
                HoldTarget::Subject(p) => {
                    w.u8(2).fixed(p);
                }
            },
            Event::DisclosureSubmitted(d) => {
                w.fixed(&d.request_id.0)
                    .str8(&d.recipient)
                    .fixed(&d.staff)
                    .count8(d.subjects.len());
                for s in &d.subjects {
                    w.fixed(s);
                }
                w.str8(&d.protocol_id)
                    .u32(d.protocol_version)
                    .u8(d.authority.code())
                    .str8(&d.purpose);
                disclosed(&mut w, &d.disclosed);
                w.u8(d.consultation.map_or(0, Consultation::code))
                    .fixed(&d.idempotency)
                    .fixed(&d.body_commitment);
            }
            Event::AuditQueried(q) => {
                w.u8(q.query).count8(q.subjects.len());
                for s in &q.subjects {
                    w.fixed(s);
                }
                w.str8(&q.agency);
                match &q.staff {
                    Some(s) => w.u8(1).fixed(s),
                    None => w.u8(0),
                };
                w.str8(&q.protocol_id)
                    .u8(q.authority.map_or(0, Authority::code))
                    .u8(q.event)
                    .str8(&q.decision)
                    .u64(q.since_ms)
                    .u64(q.until_ms)
                    .u32(q.result_count);
                if version >= 2 {
                    w.str8(&q.purpose).str8(&q.category);
                }
            }
            Event::ResponseSubmitted(r) => {
                w.fixed(&r.request_id.0)
                    .str8(&r.requester)
                    .fixed(&r.staff)
                    .u8(r.decision.code())
                    .u8(r.ground.map_or(0, DeclineGround::code));
                disclosed(&mut w, &r.disclosed);
                w.u8(r.consultation.map_or(0, Consultation::code))
                    .fixed(&r.body_commitment);
                if version >= 2 {
                    w.str8(&r.protocol_id)
                        .u32(r.protocol_version)
                        .u8(r.authority.map_or(0, Authority::code))
                        .str8(&r.purpose);
                }
            }
            Event::Denied(d) => {
                w.u8(d.operation.code());
                match d.request_id {
                    Some(id) => w.u8(1).fixed(&id.0),
                    None => w.u8(0),
                };
                w.str8(&d.reason_code).str8(&d.rule);
                if version >= 2 {
                    w.count8(d.subjects.len());
                    for p in &d.subjects {
                        w.fixed(p);
                    }
                }
            }
            Event::Protocol(ProtocolEvent::Registered {
                protocol_id,
                version,
                document_sha256,
            }) => {
                w.str8(protocol_id).u32(*version).fixed(document_sha256);
            }
            Event::Protocol(ProtocolEvent::Approved {
                protocol_id,
                version,
                approver_role,
            }) => {
                w.str8(protocol_id).u32(*version).str8(approver_role);
            }
            Event::Protocol(ProtocolEvent::StateChanged {
                protocol_id,
                version,
                state,
            }) => {
                w.str8(protocol_id).u32(*version).u8(state.code());
            }
        }
        w.finish()
    }

    /// Decodes a record, refusing anything but an exact version-1 or version-2 encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_versioned(bytes).map(|(_, record)| record)
    }

    /// Decodes a record and says which format version it was in.
    pub fn decode_versioned(bytes: &[u8]) -> Result<(u8, Self), DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if !(1..=RECORD_VERSION).contains(&version) {
            return Err(DecodeError::Version(version));
        }
        let event_code = r.u8()?;
        let time_ms = r.u64()?;
        let actor = Actor {
            role: r.code("role", Role::from_code)?,
            id: r.str8()?,
            cert_sha256: r.fixed()?,
        };
        let event = match event_code {
            1 => {
                let request_id = RequestId(r.fixed()?);
                let recipient = r.str8()?;
                let staff = r.fixed()?;
                let n = r.count8()?;
                let subjects = (0..n).map(|_| r.fixed()).collect::<Result<_, _>>()?;
                let protocol_id = r.str8()?;
                let protocol_version = r.u32()?;
                let authority = r.code("authority", Authority::from_code)?;
                let purpose = r.str8()?;
                let n = r.count8()?;
                let categories = (0..n).map(|_| r.str8()).collect::<Result<_, _>>()?;
                Event::RequestSubmitted(RequestSubmitted {
                    request_id,
                    recipient,
                    staff,
                    subjects,
                    protocol_id,
                    protocol_version,
                    authority,
                    purpose,
                    categories,
                    classification: r.code("classification", Classification::from_code)?,
                    urgency: r.code("urgency", crate::domain::Urgency::from_code)?,
                    consultation: opt_consultation(&mut r)?,
                    idempotency: r.fixed()?,
                    body_commitment: r.fixed()?,
                })
            }
            2 => Event::RequestAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            3 => {
                let request_id = RequestId(r.fixed()?);
                let requester = r.str8()?;
                let staff = r.fixed()?;
                let decision = r.code("decision", Decision::from_code)?;
                let ground = match r.u8()? {
                    0 => None,
                    code => Some(DeclineGround::from_code(code).ok_or(
                        DecodeError::UnknownCode {
                            field: "ground",
                            code,
                        },
                    )?),
                };
                let disclosed = read_disclosed(&mut r)?;
                let consultation = opt_consultation(&mut r)?;
                let body_commitment = r.fixed()?;
                let (protocol_id, protocol_version, authority, purpose) = if version >= 2 {
                    (r.str8()?, r.u32()?, opt_authority(&mut r)?, r.str8()?)
                } else {
                    (String::new(), 0, None, String::new())
                };
                Event::ResponseSubmitted(ResponseSubmitted {
                    request_id,
                    requester,
                    staff,
                    decision,
                    ground,
                    disclosed,
                    consultation,
                    body_commitment,
                    protocol_id,
                    protocol_version,
                    authority,
                    purpose,
                })
            }
            4 => Event::ResponseAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            5 => {
                let operation = r.code("operation", Operation::from_code)?;
                let request_id = match r.u8()? {
                    0 => None,
                    1 => Some(RequestId(r.fixed()?)),
                    code => {
                        return Err(DecodeError::UnknownCode {
                            field: "request_id presence",
                            code,
                        });
                    }
                };
                let reason_code = r.str8()?;
                let rule = r.str8()?;
                let subjects = if version >= 2 {
                    let n = r.count8()?;
                    (0..n).map(|_| r.fixed()).collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                Event::Denied(Denied {
                    operation,
                    request_id,
                    reason_code,
                    rule,
                    subjects,
                })
            }
            6 => Event::Protocol(ProtocolEvent::Registered {
                protocol_id: r.str8()?,
                version: r.u32()?,
                document_sha256: r.fixed()?,
            }),
            7 => Event::Protocol(ProtocolEvent::Approved {
                protocol_id: r.str8()?,
                version: r.u32()?,
                approver_role: r.str8()?,
            }),
            8 => Event::Protocol(ProtocolEvent::StateChanged {
                protocol_id: r.str8()?,
                version: r.u32()?,
                state: r.code("protocol state", crate::protocol::ProtocolState::from_code)?,
            }),
            9 => {
                let request_id = RequestId(r.fixed()?);
                let recipient = r.str8()?;
                let staff = r.fixed()?;
                let n = r.count8()?;
                let subjects = (0..n).map(|_| r.fixed()).collect::<Result<_, _>>()?;
                Event::DisclosureSubmitted(DisclosureSubmitted {
                    request_id,
                    recipient,
                    staff,
                    subjects,
                    protocol_id: r.str8()?,
                    protocol_version: r.u32()?,
                    authority: r.code("authority", Authority::from_code)?,
                    purpose: r.str8()?,
                    disclosed: read_disclosed(&mut r)?,
                    consultation: opt_consultation(&mut r)?,
                    idempotency: r.fixed()?,
                    body_commitment: r.fixed()?,
                })
            }
            10 => Event::DisclosureAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            13 => Event::LogKeyRotated {
                public_key: r.fixed()?,
            },
            14 | 15 if version >= 2 => {
                let target = match r.u8()? {
                    1 => HoldTarget::Exchange(RequestId(r.fixed()?)),
                    2 => HoldTarget::Subject(r.fixed()?),
                    code => {
                        return Err(DecodeError::UnknownCode {
                            field: "hold target",
                            code,
                        });
                    }
                };
                if event_code == 14 {
                    Event::LegalHoldPlaced(target)
                } else {
                    Event::LegalHoldReleased(target)
                }
            }
            12 => Event::BodiesPurged {
                request_id: RequestId(r.fixed()?),
                kinds: r.code("purged kinds", |k| (k <= 7).then_some(k))?,
            },
            11 => {
                let query = r.u8()?;
                let n = r.count8()?;
                let subjects = (0..n).map(|_| r.fixed()).collect::<Result<_, _>>()?;
                let agency = r.str8()?;
                let staff = match r.u8()? {
                    0 => None,
                    1 => Some(r.fixed()?),
                    code => {
                        return Err(DecodeError::UnknownCode {
                            field: "staff presence",
                            code,
                        });
                    }
                };
                let protocol_id = r.str8()?;
                let authority = opt_authority(&mut r)?;
                Event::AuditQueried(AuditQueried {
                    query,
                    subjects,
                    agency,
                    staff,
                    protocol_id,
                    authority,
                    event: r.u8()?,
                    decision: r.str8()?,
                    since_ms: r.u64()?,
                    until_ms: r.u64()?,
                    result_count: r.u32()?,
                    purpose: if version >= 2 {
                        r.str8()?
                    } else {
                        String::new()
                    },
                    category: if version >= 2 {
                        r.str8()?
                    } else {
                        String::new()
                    },
                })
            }
            code => {
                return Err(DecodeError::UnknownCode {
                    field: "event",
                    code,
                });
            }
        };
        r.end()?;
        Ok((
            version,
            Record {
                time_ms,
                actor,
                event,
            },
        ))
    }
}

fn disclosed(w: &mut Writer, items: &[(String, Classification)]) {
    w.count8(items.len());
    for (category, class) in items {
        w.str8(category).u8(class.code());
    }
}

fn read_disclosed(r: &mut Reader<'_>) -> Result<Vec<(String, Classification)>, DecodeError> {
    let n = r.count8()?;
    (0..n)
        .map(|_| {
            Ok((
                r.str8()?,
                r.code("classification", Classification::from_code)?,
            ))
        })
        .collect()
}

fn opt_authority(r: &mut Reader<'_>) -> Result<Option<Authority>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        code => Authority::from_code(code)
            .map(Some)
            .ok_or(DecodeError::UnknownCode {
                field: "authority",
                code,
            }),
    }
}

fn opt_consultation(r: &mut Reader<'_>) -> Result<Option<Consultation>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        code => Consultation::from_code(code)
            .map(Some)
            .ok_or(DecodeError::UnknownCode {
                field: "consultation",
                code,
            }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Urgency;

    pub(crate) fn actor() -> Actor {
        Actor {
            role: Role::Agency,
            id: "police".into(),
            cert_sha256: [0xcc; 32],
        }
    }

    pub(crate) fn submitted(id: u8) -> Record {
        Record {
            time_ms: 1_700_000_000_000,
            actor: actor(),
            event: Event::RequestSubmitted(RequestSubmitted {
                request_id: RequestId([id; 16]),
                recipient: "oranga-tamariki".into(),
                staff: [1; 32],
                subjects: vec![[2; 32], [3; 32]],
                protocol_id: "youth-reengagement".into(),
                protocol_version: 0,
                authority: Authority::OtaS66C,
                purpose: "assess-risk".into(),
                categories: vec!["attendance".into(), "care-status".into()],
                classification: Classification::InConfidence,
                urgency: Urgency::Priority,
                consultation: Some(Consultation::Consulted),
                idempotency: [4; 32],
                body_commitment: [5; 32],
            }),
        }
    }

    fn all_kinds() -> Vec<Record> {
        let mut out = vec![submitted(9)];
        let mut r = submitted(9);
        r.event = Event::RequestAcknowledged {
            request_id: RequestId([9; 16]),
        };
        out.push(r.clone());
        r.event = Event::ResponseSubmitted(ResponseSubmitted {
            request_id: RequestId([9; 16]),
            requester: "police".into(),
            staff: [6; 32],
            decision: Decision::PartialDisclose,
            ground: Some(DeclineGround::EndangersSafety),
            disclosed: vec![("attendance".into(), Classification::Sensitive)],
            consultation: None,
            body_commitment: [7; 32],
            protocol_id: "youth-reengagement".into(),
            protocol_version: 2,
            authority: Some(Authority::OtaS66C),
            purpose: "assess-risk".into(),
        });
        out.push(r.clone());
        r.event = Event::ResponseAcknowledged {
            request_id: RequestId([9; 16]),
        };
        out.push(r.clone());
        r.event = Event::Denied(Denied {
            operation: Operation::Respond,
            request_id: None,
            reason_code: "INVALID_ARGUMENT".into(),
            rule: "response.items[0].content".into(),
            subjects: vec![[2; 32]],
        });
        out.push(r.clone());
        r.event = Event::Protocol(ProtocolEvent::Registered {
            protocol_id: "attendance".into(),
            version: 2,
            document_sha256: [6; 32],
        });
        out.push(r.clone());
        r.event = Event::Protocol(ProtocolEvent::Approved {
            protocol_id: "attendance".into(),
            version: 2,
            approver_role: "Chief Privacy Officer".into(),
        });
        out.push(r.clone());
        r.event = Event::Protocol(ProtocolEvent::StateChanged {
            protocol_id: "attendance".into(),
            version: 2,
            state: crate::protocol::ProtocolState::Suspended,
        });
        out.push(r.clone());
        r.event = Event::DisclosureSubmitted(DisclosureSubmitted {
            request_id: RequestId([8; 16]),
            recipient: "msd".into(),
            staff: [1; 32],
            subjects: vec![[2; 32]],
            protocol_id: "family-harm-sam".into(),
            protocol_version: 3,
            authority: Authority::FvaS20,
            purpose: "victim-protection".into(),
            disclosed: vec![("protection-orders".into(), Classification::Sensitive)],
            consultation: Some(Consultation::NotConsulted),
            idempotency: [3; 32],
            body_commitment: [4; 32],
        });
        out.push(r.clone());
        r.event = Event::DisclosureAcknowledged {
            request_id: RequestId([8; 16]),
        };
        out.push(r.clone());
        r.event = Event::AuditQueried(AuditQueried {
            query: 2,
            subjects: vec![[9; 32]],
            agency: "police".into(),
            staff: Some([3; 32]),
            protocol_id: "attendance".into(),
            authority: Some(Authority::FvaS20),
            event: 3,
            decision: "decline".into(),
            since_ms: 1,
            until_ms: 2,
            result_count: 7,
            purpose: "assess-risk".into(),
            category: "attendance".into(),
        });
        out.push(r.clone());
        r.event = Event::LegalHoldPlaced(HoldTarget::Exchange(RequestId([8; 16])));
        out.push(r.clone());
        r.event = Event::LegalHoldReleased(HoldTarget::Subject([2; 32]));
        out.push(r);
        out
    }

    #[test]
    fn every_event_round_trips() {
        for rec in all_kinds() {
            let bytes = rec.encode();
            assert_eq!(Record::decode(&bytes).unwrap(), rec);
        }
    }

    #[test]
    fn known_answer_for_an_acknowledgement() {
        let rec = Record {
            time_ms: 0x0102030405060708,
            actor: Actor {
                role: Role::Agency,
                id: "ab".into(),
                cert_sha256: [0; 32],
            },
            event: Event::RequestAcknowledged {
                request_id: RequestId([0xee; 16]),
            },
        };
        let mut expected = vec![2, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, b'a', b'b'];
        expected.extend([0; 32]);
        expected.extend([0xee; 16]);
        assert_eq!(rec.encode(), expected);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for rec in all_kinds() {
            let bytes = rec.encode();
            for cut in 0..bytes.len() {
                assert!(Record::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Record::decode(&longer), Err(DecodeError::Trailing(1)));
        }
        let mut bad = submitted(1).encode();
        bad[0] = 3;
        assert_eq!(Record::decode(&bad), Err(DecodeError::Version(3)));
        bad[0] = 0;
        assert_eq!(Record::decode(&bad), Err(DecodeError::Version(0)));
    }

    /// Logs written before version 2 stay readable, and their records re-encode to the very
    /// bytes the log holds (the Merkle tree is over those bytes).
    #[test]
    fn version_1_records_are_still_read() {
        for rec in all_kinds() {
            let mut old = rec.clone();
            match &mut old.event {
                Event::ResponseSubmitted(r) => {
                    r.protocol_id.clear();
                    r.protocol_version = 0;
                    r.authority = None;
                    r.purpose.clear();
                }
                Event::Denied(d) => d.subjects.clear(),
                Event::AuditQueried(q) => {
                    q.purpose.clear();
                    q.category.clear();
                }
                _ => {}
            }
            if matches!(
                old.event,
                Event::LegalHoldPlaced(_) | Event::LegalHoldReleased(_)
            ) {
                // Version 2 only.
                assert!(Record::decode(&old.encode_as(1)).is_err());
                continue;
            }
            let v1 = old.encode_as(1);
            assert_eq!(v1[0], 1);
            let (version, decoded) = Record::decode_versioned(&v1).unwrap();
            assert_eq!((version, &decoded), (1, &old));
            assert_eq!(decoded.encode_as(version), v1);
        }
    }

    #[test]
    fn request_ids_parse_only_canonical_hex() {
        let id = RequestId([0xab; 16]);
        assert_eq!(RequestId::parse(&id.to_string()), Some(id));
        assert_eq!(RequestId::parse(&id.to_string().to_uppercase()), None);
        assert_eq!(RequestId::parse("abc"), None);
        assert_eq!(RequestId::parse(&"zz".repeat(16)), None);
    }
}
