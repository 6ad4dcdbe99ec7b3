//! The byte layout of a record (see the table in the parent module): encoding and decoding.

use super::*;
use crate::codec::{DecodeError, Reader, Writer};

impl Record {
    /// The event type code of an encoded record, without decoding it.
    pub fn event_code_of(raw: &[u8]) -> Option<u8> {
        raw.get(1).copied()
    }

    /// The encoding this build writes ([`RECORD_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(RECORD_VERSION)
    }

    /// The encoding in format `version` (1 to 3); an older version has no place for the
    /// fields later ones added, so it is only for re-encoding what was read in it.
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
                if version >= 3 {
                    w.u64(r.due_ms).u64(r.expires_ms);
                    opt_id(&mut w, r.follows);
                }
            }
            Event::RequestOverdue { request_id }
            | Event::RequestExpired { request_id }
            | Event::UpdateAcknowledged { request_id }
            | Event::NoticesAcknowledged { request_id } => {
                w.fixed(&request_id.0);
            }
            Event::RequestWithdrawn(x) => {
                w.fixed(&x.request_id.0)
                    .fixed(&x.staff)
                    .fixed(&x.body_commitment);
            }
            Event::UpdateSubmitted(u) => {
                w.fixed(&u.update_id.0)
                    .fixed(&u.request_id.0)
                    .str8(&u.recipient)
                    .fixed(&u.staff)
                    .count8(u.subjects.len());
                for s in &u.subjects {
                    w.fixed(s);
                }
                w.str8(&u.protocol_id)
                    .u32(u.protocol_version)
                    .u8(u.authority.code())
                    .str8(&u.purpose);
                disclosed(&mut w, &u.disclosed);
                w.u8(u.consultation.map_or(0, Consultation::code))
                    .fixed(&u.idempotency)
                    .fixed(&u.body_commitment);
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
                if version >= 3 {
                    w.str8(&r.referral);
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

    /// Decodes a record, refusing anything but an exact encoding in one of versions 1 to 3.
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
            code::REQUEST_SUBMITTED => {
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
                let classification = r.code("classification", Classification::from_code)?;
                let urgency = r.code("urgency", crate::domain::Urgency::from_code)?;
                let consultation = opt_consultation(&mut r)?;
                let idempotency = r.fixed()?;
                let body_commitment = r.fixed()?;
                let (due_ms, expires_ms, follows) = if version >= 3 {
                    (r.u64()?, r.u64()?, read_opt_id(&mut r, "follows presence")?)
                } else {
                    (0, 0, None)
                };
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
                    classification,
                    urgency,
                    consultation,
                    idempotency,
                    body_commitment,
                    due_ms,
                    expires_ms,
                    follows,
                })
            }
            code::REQUEST_OVERDUE if version >= 3 => Event::RequestOverdue {
                request_id: RequestId(r.fixed()?),
            },
            code::REQUEST_EXPIRED if version >= 3 => Event::RequestExpired {
                request_id: RequestId(r.fixed()?),
            },
            code::UPDATE_ACKNOWLEDGED if version >= 3 => Event::UpdateAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            code::NOTICES_ACKNOWLEDGED if version >= 3 => Event::NoticesAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            code::REQUEST_WITHDRAWN if version >= 3 => Event::RequestWithdrawn(RequestWithdrawn {
                request_id: RequestId(r.fixed()?),
                staff: r.fixed()?,
                body_commitment: r.fixed()?,
            }),
            code::UPDATE_SUBMITTED if version >= 3 => {
                let update_id = RequestId(r.fixed()?);
                let request_id = RequestId(r.fixed()?);
                let recipient = r.str8()?;
                let staff = r.fixed()?;
                let n = r.count8()?;
                let subjects = (0..n).map(|_| r.fixed()).collect::<Result<_, _>>()?;
                Event::UpdateSubmitted(UpdateSubmitted {
                    update_id,
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
            code::REQUEST_ACKNOWLEDGED => Event::RequestAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            code::RESPONSE_SUBMITTED => {
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
                let referral = if version >= 3 {
                    r.str8()?
                } else {
                    String::new()
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
                    referral,
                })
            }
            code::RESPONSE_ACKNOWLEDGED => Event::ResponseAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            code::DENIED => {
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
            code::PROTOCOL_REGISTERED => Event::Protocol(ProtocolEvent::Registered {
                protocol_id: r.str8()?,
                version: r.u32()?,
                document_sha256: r.fixed()?,
            }),
            code::PROTOCOL_APPROVED => Event::Protocol(ProtocolEvent::Approved {
                protocol_id: r.str8()?,
                version: r.u32()?,
                approver_role: r.str8()?,
            }),
            code::PROTOCOL_STATE_CHANGED => Event::Protocol(ProtocolEvent::StateChanged {
                protocol_id: r.str8()?,
                version: r.u32()?,
                state: r.code("protocol state", crate::domain::ProtocolState::from_code)?,
            }),
            code::DISCLOSURE_SUBMITTED => {
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
            code::DISCLOSURE_ACKNOWLEDGED => Event::DisclosureAcknowledged {
                request_id: RequestId(r.fixed()?),
            },
            code::LOG_KEY_ROTATED => Event::LogKeyRotated {
                public_key: r.fixed()?,
            },
            code::LEGAL_HOLD_PLACED | code::LEGAL_HOLD_RELEASED if version >= 2 => {
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
                if event_code == code::LEGAL_HOLD_PLACED {
                    Event::LegalHoldPlaced(target)
                } else {
                    Event::LegalHoldReleased(target)
                }
            }
            code::BODIES_PURGED => Event::BodiesPurged {
                request_id: RequestId(r.fixed()?),
                kinds: r.code("purged kinds", |k| (k <= PURGED_KINDS_MAX).then_some(k))?,
            },
            code::AUDIT_QUERIED => {
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

/// The highest `kinds` of a BodiesPurged record (every bit set: see `purged_bit`).
const PURGED_KINDS_MAX: u8 = 31;

fn opt_id(w: &mut Writer, id: Option<RequestId>) {
    match id {
        Some(id) => w.u8(1).fixed(&id.0),
        None => w.u8(0),
    };
}

fn read_opt_id(r: &mut Reader<'_>, field: &'static str) -> Result<Option<RequestId>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(RequestId(r.fixed()?))),
        code => Err(DecodeError::UnknownCode { field, code }),
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
