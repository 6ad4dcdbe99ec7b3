//! The exchange lifecycle: what a change may do next, decided against the state the log's writer
//! sees (the views plus its batch so far). The writer calls [`decide`] for every change and
//! appends what it says; nothing here touches storage (a stored body, needed to compare a
//! resubmission, is read through the function passed in).

use crate::bodies::BodyEntry;
use crate::domain::{MessageKind, RequestStatus};
use crate::error::BrokerError;
use crate::protocol::ProtocolStore;
use crate::reason::Reason;
use crate::records::{Actor, Event, ProtocolEvent, Record, RequestId};
use crate::views::{self, KvRead};

/// A change to an exchange or to the register, as the broker asks for it.
#[derive(Debug, Clone)]
pub enum Change {
    /// Open an exchange: a request (RequestSubmitted, perhaps sending on an earlier one), a
    /// proactive disclosure (DisclosureSubmitted) or an update of an answered request
    /// (UpdateSubmitted), with its body. Idempotent on the record's idempotency hash within the
    /// sending agency.
    Open {
        /// Its record (the event says which change).
        record: Record,
        /// The body the record commits to.
        body: BodyEntry,
    },
    /// Acknowledge an inbox item (only its addressee may, once).
    Acknowledge {
        /// Who acknowledges.
        actor: Actor,
        /// When.
        time_ms: u64,
        /// The exchange.
        request_id: RequestId,
        /// Which of its messages.
        kind: MessageKind,
    },
    /// Answer a request: a ResponseSubmitted record and its body (only the recipient may, once,
    /// while the bodies are kept).
    Respond {
        /// The record (event ResponseSubmitted).
        record: Record,
        /// The body the record commits to.
        body: BodyEntry,
    },
    /// Withdraw an unanswered request (a RequestWithdrawn record and the body of its reasons):
    /// only its requester may; withdrawing again answers with the first withdrawal.
    Withdraw {
        /// The record (event RequestWithdrawn).
        record: Record,
        /// The reasons, as a body.
        body: BodyEntry,
    },
    /// Mark a request overdue or expire it, as the broker's deadline task sees it due at
    /// `time_ms`: nothing is appended if it no longer is (answered, withdrawn, already marked).
    Deadline {
        /// The task's actor.
        actor: Actor,
        /// When the task runs.
        time_ms: u64,
        /// The request.
        request_id: RequestId,
        /// Which deadline.
        deadline: Deadline,
    },
    /// Append a record that needs no state check (a refusal, an audit query).
    Append {
        /// Its record (the event says which change).
        record: Record,
    },
    /// Place or release a legal hold (event LegalHoldPlaced or LegalHoldReleased): an exchange
    /// held must exist; placing a hold in place, or releasing one that is not, is refused.
    Hold {
        /// Its record (the event says which change).
        record: Record,
    },
    /// Change the protocol register (a protocol event), checked against its lifecycle.
    Protocol {
        /// Its record (the event says which change).
        record: Record,
        /// The document, for a registration.
        document: Option<BodyEntry>,
    },
}

/// A request's two deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Its due time: past it unanswered, it is overdue.
    Due,
    /// Its collection window: past it unacknowledged, it expires.
    Expiry,
}

/// What a change comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Append this record (and store this body before it).
    Append(Box<Record>, Option<BodyEntry>),
    /// Nothing to append: an earlier submission with the same idempotency key opened this
    /// exchange, by the record at `index`.
    Replayed {
        /// The exchange.
        request_id: RequestId,
        /// Its opening record's index.
        index: u64,
    },
    /// Nothing to append: the change was made before (an acknowledgement, a withdrawal), by
    /// the record at `index`.
    AlreadyDone {
        /// The earlier record's index.
        index: u64,
    },
    /// Nothing to append: a deadline that is no longer due.
    NotDue,
}

/// The view keys `decide` reads first for `command` (the idempotency entry of an opening, the
/// exchange an acknowledgement or a response is for), so that a batch's can be fetched at once.
pub fn first_reads(command: &Change) -> Vec<Vec<u8>> {
    match command {
        Change::Open { record, .. } => record
            .event
            .opening()
            .map(|o| views::idempotency_key(&record.actor.id, o.idempotency))
            .into_iter()
            .collect(),
        Change::Acknowledge { request_id, .. } | Change::Deadline { request_id, .. } => {
            vec![views::meta_key(request_id)]
        }
        // Both check whether the exchange's bodies were purged: a read that finds nothing,
        // as often as not, but a read all the same.
        Change::Respond { record, .. } | Change::Withdraw { record, .. } => record
            .event
            .request_id()
            .map(|id| [views::meta_key(&id), views::purged_key(&id)])
            .into_iter()
            .flatten()
            .collect(),
        _ => Vec::new(),
    }
}

/// Decides a change against the current state: what to append, or why nothing is. Pure but for
/// `body` (reading a stored body to compare a resubmission). Takes the change, so that the record
/// and body it appends are moved, not copied, on the log writer's path.
pub fn decide(
    command: Change,
    kv: &(impl KvRead + ?Sized),
    register: &ProtocolStore,
    body: impl Fn(MessageKind, &RequestId) -> Result<Option<BodyEntry>, BrokerError>,
) -> Result<Step, BrokerError> {
    match command {
        Change::Open {
            mut record,
            body: new,
        } => {
            let Some(opening) = record.event.opening() else {
                return Err(BrokerError::Internal("Open without its record".into()));
            };
            let idempotency = opening.idempotency;
            if let Some((request_id, index)) =
                replay_of(kv, &record.actor.id, idempotency, new.kind, &new.body, body)?
            {
                return Ok(Step::Replayed { request_id, index });
            }
            match &mut record.event {
                Event::UpdateSubmitted(u) => {
                    // The update goes to whoever asked; the log says so from the views.
                    u.recipient = may_update(kv, &u.request_id, &record.actor.id)?;
                }
                Event::RequestSubmitted(r) => {
                    if let Some(earlier) = r.follows {
                        may_send_on(kv, &earlier, &record.actor.id)?;
                    }
                }
                _ => {}
            }
            Ok(Step::Append(Box::new(record), Some(new)))
        }
        Change::Acknowledge {
            actor,
            time_ms,
            request_id,
            kind,
        } => {
            let meta = visible_meta(kv, &request_id, &actor.id)?;
            let Some((is_owner, done, event)) =
                acknowledgement(&meta, request_id, kind, &actor.id)?
            else {
                return Ok(Step::AlreadyDone {
                    index: meta.notices_acked_by(&actor.id),
                });
            };
            if !is_owner {
                return Err(BrokerError::Refused {
                    reason: Reason::NotAddressedToCaller,
                    message: format!(
                        "the {kind} of request {request_id} was not addressed to you, so you cannot acknowledge it"
                    ),
                });
            }
            if done != 0 {
                return Ok(Step::AlreadyDone { index: done });
            }
            Ok(Step::Append(
                Box::new(Record {
                    time_ms,
                    actor,
                    event,
                }),
                None,
            ))
        }
        Change::Respond { mut record, body } => {
            let Event::ResponseSubmitted(r) = &record.event else {
                return Err(BrokerError::Internal("Respond without its record".into()));
            };
            let meta = visible_meta(kv, &r.request_id, &record.actor.id)?;
            if meta.kind != MessageKind::Request {
                return Err(BrokerError::Refused {
                    reason: Reason::NotARequest,
                    message: format!(
                        "{} is a proactive disclosure; there is nothing to answer",
                        r.request_id
                    ),
                });
            }
            if meta.recipient != record.actor.id {
                return Err(BrokerError::Refused {
                    reason: Reason::NotTheRecipient,
                    message: format!(
                        "only {}, the agency request {} was sent to, can answer it",
                        meta.recipient, r.request_id
                    ),
                });
            }
            if views::purged(kv, &r.request_id)? {
                return Err(BrokerError::refused(
                    Reason::RequestPurged,
                    format!(
                        "the bodies of request {} were erased when its retention ended: it can no longer be answered",
                        r.request_id
                    ),
                ));
            }
            closed(&meta, &r.request_id, "answered")?;
            if meta.response_idx != 0 {
                return Err(BrokerError::Refused {
                    reason: Reason::AlreadyAnswered,
                    message: format!(
                        "request {} was already answered (log index {})",
                        r.request_id, meta.response_idx
                    ),
                });
            }
            if let Event::ResponseSubmitted(r) = &mut record.event {
                // The answer goes to whoever asked; the log says so from the views, not the caller.
                r.requester = meta.requester;
            }
            Ok(Step::Append(Box::new(record), Some(body)))
        }
        Change::Withdraw { record, body } => {
            let Event::RequestWithdrawn(w) = &record.event else {
                return Err(BrokerError::Internal("Withdraw without its record".into()));
            };
            let id = &w.request_id;
            let meta = requested_by(kv, id, &record.actor.id, "withdraw")?;
            if meta.status == RequestStatus::Withdrawn {
                return Ok(Step::AlreadyDone {
                    index: meta.closed_idx,
                });
            }
            if views::purged(kv, id)? {
                return Err(BrokerError::refused(
                    Reason::RequestPurged,
                    format!("the bodies of request {id} were erased when its retention ended"),
                ));
            }
            closed(&meta, id, "withdrawn")?;
            if meta.response_idx != 0 {
                return Err(BrokerError::refused(
                    Reason::AlreadyAnswered,
                    format!(
                        "request {id} was already answered (log index {}): it cannot be withdrawn",
                        meta.response_idx
                    ),
                ));
            }
            Ok(Step::Append(Box::new(record), Some(body)))
        }
        Change::Deadline {
            actor,
            time_ms,
            request_id,
            deadline,
        } => {
            let Some(meta) = views::request_meta(kv, &request_id)? else {
                return Ok(Step::NotDue);
            };
            let due = meta.kind == MessageKind::Request
                && meta.status.awaits_answer()
                && match deadline {
                    Deadline::Due => !meta.overdue() && meta.due_ms != 0 && meta.due_ms <= time_ms,
                    Deadline::Expiry => {
                        meta.request_ack_idx == 0
                            && meta.expires_ms != 0
                            && meta.expires_ms <= time_ms
                    }
                };
            if !due {
                return Ok(Step::NotDue);
            }
            let event = match deadline {
                Deadline::Due => Event::RequestOverdue { request_id },
                Deadline::Expiry => Event::RequestExpired { request_id },
            };
            Ok(Step::Append(
                Box::new(Record {
                    time_ms,
                    actor,
                    event,
                }),
                None,
            ))
        }
        Change::Append { record } => Ok(Step::Append(Box::new(record), None)),
        Change::Hold { record } => {
            let (target, placing) = match &record.event {
                Event::LegalHoldPlaced(t) => (t, true),
                Event::LegalHoldReleased(t) => (t, false),
                _ => return Err(BrokerError::Internal("Hold without its record".into())),
            };
            if let crate::records::HoldTarget::Exchange(id) = target
                && views::request_meta(kv, id)?.is_none()
            {
                return Err(BrokerError::NotFound(format!("no exchange {id}")));
            }
            if views::hold(kv, target)?.is_some() == placing {
                return Err(BrokerError::refused(
                    Reason::LegalHoldConflict,
                    if placing {
                        "that legal hold is already in place"
                    } else {
                        "there is no such legal hold in place"
                    },
                ));
            }
            Ok(Step::Append(Box::new(record), None))
        }
        Change::Protocol {
            mut record,
            document,
        } => {
            let approver = &record.actor.id;
            match &mut record.event {
                Event::Protocol(ProtocolEvent::Registered { .. }) => {
                    let text = document
                        .as_ref()
                        .map(|d| String::from_utf8_lossy(&d.body).into_owned())
                        .ok_or_else(|| {
                            BrokerError::Internal("registration without its document".into())
                        })?;
                    register.may_register(&crate::protocol::Protocol::from_toml(&text)?)?;
                }
                Event::Protocol(ProtocolEvent::Approved {
                    protocol_id,
                    version,
                    ..
                }) => register.may_approve(protocol_id, *version, approver)?,
                Event::Protocol(ProtocolEvent::StateChanged {
                    protocol_id,
                    version,
                    state,
                }) => {
                    // The change applies to whichever version is in force now.
                    *version = register.may_change(protocol_id, *state)?;
                }
                _ => return Err(BrokerError::Internal("Protocol without its record".into())),
            }
            Ok(Step::Append(Box::new(record), document))
        }
    }
}

/// The exchange an earlier submission by `agency` with the same idempotency key opened, if
/// any: with its record index when its content (`kind`, `body`) is the same (or its body was
/// purged and cannot be compared), a conflict when it differs.
pub fn replay_of(
    kv: &(impl KvRead + ?Sized),
    agency: &str,
    idempotency: &[u8; 32],
    kind: MessageKind,
    body: &[u8],
    stored: impl Fn(MessageKind, &RequestId) -> Result<Option<BodyEntry>, BrokerError>,
) -> Result<Option<(RequestId, u64)>, BrokerError> {
    let Some((request_id, index)) = views::idempotent_request(kv, agency, idempotency)? else {
        return Ok(None);
    };
    let meta = views::request_meta(kv, &request_id)?.ok_or_else(|| {
        BrokerError::Internal(format!("idempotency entry for unknown {request_id}"))
    })?;
    match stored(meta.kind, &request_id)? {
        Some(old) if old.kind != kind || old.body != body => Err(BrokerError::Conflict(format!(
            "idempotency key already used for {} {request_id}, which differs from this one",
            meta.kind
        ))),
        _ => Ok(Some((request_id, index))),
    }
}

/// What acknowledging `kind` of exchange `id` comes to for `agency`: whether it is the
/// addressee, the index of an earlier acknowledgement (0: none) and the record to append; `None`
/// when `agency`'s notices are all acknowledged already.
fn acknowledgement(
    meta: &views::RequestMeta,
    id: RequestId,
    kind: MessageKind,
    agency: &str,
) -> Result<Option<(bool, u64, Event)>, BrokerError> {
    let wrong_kind = || BrokerError::Refused {
        reason: Reason::WrongMessageKind,
        message: format!("{id} is a {}, not a {kind}", meta.kind),
    };
    let request_id = id;
    Ok(Some(match kind {
        MessageKind::Protocol | MessageKind::Withdrawal => {
            return Err(BrokerError::invalid("kind", "is not a message kind"));
        }
        MessageKind::Disclosure | MessageKind::Update if meta.kind != kind => {
            return Err(wrong_kind());
        }
        MessageKind::Request | MessageKind::Response | MessageKind::Notice
            if meta.kind != MessageKind::Request =>
        {
            return Err(wrong_kind());
        }
        MessageKind::Disclosure => (
            meta.recipient == agency,
            meta.request_ack_idx,
            Event::DisclosureAcknowledged { request_id },
        ),
        MessageKind::Update => (
            meta.recipient == agency,
            meta.request_ack_idx,
            Event::UpdateAcknowledged { request_id },
        ),
        MessageKind::Request => {
            if meta.status == RequestStatus::Expired {
                closed(meta, &id, "acknowledged")?;
            }
            (
                meta.recipient == agency,
                meta.request_ack_idx,
                Event::RequestAcknowledged { request_id },
            )
        }
        MessageKind::Response => {
            if meta.requester == agency && meta.response_idx == 0 {
                return Err(BrokerError::Refused {
                    reason: Reason::NoResponseYet,
                    message: format!("request {id} has not been answered yet"),
                });
            }
            (
                meta.requester == agency,
                meta.response_ack_idx,
                Event::ResponseAcknowledged { request_id },
            )
        }
        MessageKind::Notice => {
            let notices = meta.notices_to(agency);
            let Some(last) = notices.iter().max() else {
                return Err(BrokerError::refused(
                    Reason::NoNotice,
                    format!("you have received no notice about {id}"),
                ));
            };
            if *last <= meta.notices_acked_by(agency) {
                return Ok(None);
            }
            (true, 0, Event::NoticesAcknowledged { request_id })
        }
    }))
}

/// Refuses to `what` a request that was withdrawn or has expired.
fn closed(meta: &views::RequestMeta, id: &RequestId, what: &str) -> Result<(), BrokerError> {
    match meta.status {
        RequestStatus::Withdrawn => Err(BrokerError::refused(
            Reason::RequestWithdrawn,
            format!("request {id} was withdrawn by its requester: it can no longer be {what}"),
        )),
        RequestStatus::Expired => Err(BrokerError::refused(
            Reason::RequestExpired,
            format!(
                "request {id} expired unacknowledged: it can no longer be {what} (its requester may send it again)"
            ),
        )),
        _ => Ok(()),
    }
}

/// The meta of request `id`, visible to `agency` (to `what` it: a disclosure or an update has
/// nothing to `what`).
fn visible_request(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    agency: &str,
    what: &str,
) -> Result<views::RequestMeta, BrokerError> {
    let meta = visible_meta(kv, id, agency)?;
    if meta.kind != MessageKind::Request {
        return Err(BrokerError::refused(
            Reason::WrongMessageKind,
            format!(
                "{id} is a {}, not a request: there is nothing to {what}",
                meta.kind
            ),
        ));
    }
    Ok(meta)
}

/// The meta of request `id` if `agency` made it (to `what` it).
fn requested_by(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    agency: &str,
    what: &str,
) -> Result<views::RequestMeta, BrokerError> {
    let meta = visible_request(kv, id, agency, what)?;
    if meta.requester != agency {
        return Err(BrokerError::refused(
            Reason::NotTheRequester,
            format!(
                "only {}, the agency that made request {id}, can {what} it",
                meta.requester
            ),
        ));
    }
    Ok(meta)
}

/// Whether `agency` may update request `id` (it answered it, and it was neither withdrawn nor
/// purged); the agency the update goes to (the requester).
fn may_update(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    agency: &str,
) -> Result<String, BrokerError> {
    let meta = visible_request(kv, id, agency, "update")?;
    if meta.recipient != agency {
        return Err(BrokerError::refused(
            Reason::NotTheRecipient,
            format!(
                "only {}, the agency request {id} was sent to, can update it",
                meta.recipient
            ),
        ));
    }
    closed(&meta, id, "updated")?;
    if meta.response_idx == 0 {
        return Err(BrokerError::refused(
            Reason::NotAnsweredYet,
            format!("request {id} has not been answered: answer it first"),
        ));
    }
    if views::purged(kv, id)? {
        return Err(BrokerError::refused(
            Reason::RequestPurged,
            format!("the bodies of request {id} were erased when its retention ended"),
        ));
    }
    Ok(meta.requester)
}

/// Whether `agency` may send request `earlier` on: it made it, and it expired or its answer
/// withheld information as not held.
fn may_send_on(
    kv: &(impl KvRead + ?Sized),
    earlier: &RequestId,
    agency: &str,
) -> Result<(), BrokerError> {
    let meta = requested_by(kv, earlier, agency, "send on")?;
    if meta.status == RequestStatus::Expired || meta.not_held {
        return Ok(());
    }
    Err(BrokerError::refused(
        Reason::NotResendable,
        format!(
            "request {earlier} is {}: only a request that expired, or whose answer withheld information as not held, can be sent on",
            meta.status
        ),
    ))
}

/// The request's meta if `agency` is a party to it; otherwise it does not exist for them.
pub fn visible_meta(
    kv: &(impl KvRead + ?Sized),
    id: &RequestId,
    agency: &str,
) -> Result<views::RequestMeta, BrokerError> {
    match views::request_meta(kv, id)? {
        Some(meta) if meta.is_party(agency) => Ok(meta),
        _ => Err(BrokerError::NotFound(format!(
            "no request {id} is visible to you"
        ))),
    }
}
