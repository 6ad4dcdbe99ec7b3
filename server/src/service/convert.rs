//! Conversions from the broker's values to API messages.

use infoshare_proto::v1;
use prost::Message;

use crate::broker::{InboxItem, OutboxItem, RequestDetail};
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::protocol::{Entry, ProtocolState};
use crate::records::{Event, Record, RequestId};
use crate::store::bodies::BodyEntry;
use crate::views::RequestMeta;

/// A receipt as the API carries it.
pub fn receipt(r: &crate::store::ledger::Receipt) -> v1::Receipt {
    v1::Receipt {
        log_index: r.log_index,
        checkpoint: r.checkpoint.to_string(),
        inclusion_proof: r.proof.iter().map(|h| h.to_vec()).collect(),
        record: r.record.clone(),
    }
}

/// A Unix-milliseconds time as a protobuf Timestamp.
pub fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn decode<M: Message + Default>(body: &BodyEntry) -> Result<M, BrokerError> {
    M::decode(body.body.as_slice()).map_err(|e| {
        BrokerError::Internal(format!(
            "stored body of {} does not decode: {e}",
            body.request_id
        ))
    })
}

/// An inbox item as the API carries it (its body decoded).
pub fn inbox_item(item: &InboxItem) -> Result<v1::InboxItem, BrokerError> {
    let mut out = v1::InboxItem {
        cursor: item.cursor,
        kind: kind(item.entry.kind) as i32,
        request_id: item.entry.request_id.to_string(),
        from_agency_id: item.entry.from.clone(),
        sent_at: Some(timestamp(item.entry.time_ms)),
        acknowledged: item.entry.acknowledged,
        body_purged: item.purged,
        notice: item.entry.notice.map_or(0, |n| i32::from(n.code())),
        related_request_id: item
            .meta
            .linked
            .map(|id| id.to_string())
            .unwrap_or_default(),
        ..Default::default()
    };
    deadlines(
        &item.meta,
        &mut out.status,
        &mut out.urgency,
        &mut out.due_at,
        &mut out.overdue,
    );
    if item.entry.kind == MessageKind::Notice {
        // A notice is about the request it names.
        out.related_request_id = item.entry.request_id.to_string();
    }
    if let Some(body) = &item.body {
        match body.kind {
            MessageKind::Request => out.request = Some(decode(body)?),
            MessageKind::Response => out.response = Some(decode(body)?),
            MessageKind::Disclosure => out.disclosure = Some(decode(body)?),
            MessageKind::Update => out.update = Some(decode(body)?),
            MessageKind::Withdrawal => out.withdrawal = Some(decode(body)?),
            MessageKind::Protocol | MessageKind::Notice => {
                return Err(BrokerError::Internal(format!(
                    "a {} body in an inbox",
                    body.kind
                )));
            }
        }
    }
    Ok(out)
}

/// An exchange's status, and a request's urgency and due time, as the API carries them.
fn deadlines(
    meta: &RequestMeta,
    status: &mut i32,
    urgency: &mut i32,
    due_at: &mut Option<prost_types::Timestamp>,
    overdue: &mut bool,
) {
    *status = i32::from(meta.status.code());
    *urgency = meta.urgency.map_or(0, |u| i32::from(u.code()));
    *due_at = (meta.due_ms != 0).then(|| timestamp(meta.due_ms));
    *overdue = meta.overdue();
}

/// The API's kind of an inbox item or exchange (the codes are the same; the broker's own kinds
/// have none).
fn kind(k: MessageKind) -> v1::MessageKind {
    match k {
        MessageKind::Protocol | MessageKind::Withdrawal => v1::MessageKind::Unspecified,
        k => v1::MessageKind::try_from(i32::from(k.code())).unwrap_or_default(),
    }
}

/// A timeline event as the API carries it, in the timeline of exchange `this` (a record of
/// another exchange there is one that links to it: an update, a request sent on).
fn event(this: &RequestId, index: u64, r: &Record) -> Option<v1::TimelineEvent> {
    use v1::EventKind as K;
    let own = r.event.request_id() == Some(*this);
    let kind = match r.event {
        Event::RequestSubmitted(_) if own => K::RequestSubmitted,
        Event::RequestSubmitted(_) => K::RequestResent,
        Event::RequestAcknowledged { .. } => K::RequestAcknowledged,
        Event::ResponseSubmitted(_) => K::ResponseSubmitted,
        Event::ResponseAcknowledged { .. } => K::ResponseAcknowledged,
        Event::DisclosureSubmitted(_) => K::DisclosureSubmitted,
        Event::DisclosureAcknowledged { .. } => K::DisclosureAcknowledged,
        Event::BodiesPurged { .. } => K::BodiesPurged,
        Event::LegalHoldPlaced(_) => K::LegalHoldPlaced,
        Event::LegalHoldReleased(_) => K::LegalHoldReleased,
        Event::RequestOverdue { .. } => K::RequestOverdue,
        Event::RequestWithdrawn(_) => K::RequestWithdrawn,
        Event::RequestExpired { .. } => K::RequestExpired,
        Event::UpdateSubmitted(_) => K::UpdateSubmitted,
        Event::UpdateAcknowledged { .. } => K::UpdateAcknowledged,
        Event::NoticesAcknowledged { .. } => K::NoticeAcknowledged,
        Event::Denied(_)
        | Event::Protocol(_)
        | Event::AuditQueried(_)
        | Event::LogKeyRotated { .. } => return None,
    };
    // The other end of a link: from the request, the update or the request sent on; from
    // those, the request.
    let related = match (own, r.event.request_id(), r.event.related()) {
        (false, Some(other), _) => Some(other),
        (true, _, Some(other)) => Some(other),
        _ => None,
    };
    Some(v1::TimelineEvent {
        log_index: index,
        kind: kind as i32,
        at: Some(timestamp(r.time_ms)),
        agency_id: r.actor.id.clone(),
        related_request_id: related.map(|id| id.to_string()).unwrap_or_default(),
    })
}

/// A request's detail as the API carries it (bodies decoded).
pub fn request_detail(d: &RequestDetail) -> Result<v1::GetRequestResponse, BrokerError> {
    let opening = d.opening.as_ref();
    let of_kind = |k: MessageKind| opening.filter(|b| b.kind == k);
    let request = of_kind(MessageKind::Request).map(decode).transpose()?;
    let disclosure = of_kind(MessageKind::Disclosure).map(decode).transpose()?;
    let update = of_kind(MessageKind::Update).map(decode).transpose()?;
    let response = d.response.as_ref().map(decode).transpose()?;
    let purged = opening.is_none() || (d.meta.response_idx != 0 && d.response.is_none());
    let mut out = v1::GetRequestResponse {
        request_id: d.request_id.to_string(),
        requester_agency_id: d.meta.requester.clone(),
        recipient_agency_id: d.meta.recipient.clone(),
        request,
        response,
        disclosure,
        update,
        timeline: d
            .timeline
            .iter()
            .filter_map(|(i, r)| event(&d.request_id, *i, r))
            .collect(),
        body_purged: purged,
        legal_hold: d.legal_hold,
        kind: kind(d.meta.kind) as i32,
        expires_at: (d.meta.expires_ms != 0 && d.meta.request_ack_idx == 0)
            .then(|| timestamp(d.meta.expires_ms)),
        related_request_id: d.meta.linked.map(|id| id.to_string()).unwrap_or_default(),
        withdrawal: d.withdrawal.as_ref().map(decode).transpose()?,
        resent_as: d.resent_as.iter().map(|id| id.to_string()).collect(),
        ..Default::default()
    };
    deadlines(
        &d.meta,
        &mut out.status,
        &mut out.urgency,
        &mut out.due_at,
        &mut out.overdue,
    );
    for u in &d.updates {
        out.updates.push(v1::LinkedUpdate {
            update_id: u.update_id.to_string(),
            sent_at: Some(timestamp(u.time_ms)),
            update: u.body.as_ref().map(decode).transpose()?,
            acknowledged: u.acknowledged,
        });
    }
    Ok(out)
}

/// An outbox item as the API carries it.
pub fn outbox_item(o: &OutboxItem) -> v1::OutboxItem {
    let (index, last) = &o.last_event;
    let mut out = v1::OutboxItem {
        cursor: o.cursor,
        kind: kind(o.meta.kind) as i32,
        request_id: o.request_id.to_string(),
        recipient_agency_id: o.meta.recipient.clone(),
        sent_at: Some(timestamp(o.sent_ms)),
        last_event: event(&o.request_id, *index, last),
        related_request_id: o.meta.linked.map(|id| id.to_string()).unwrap_or_default(),
        referred_agency_id: o.meta.referral.clone(),
        ..Default::default()
    };
    deadlines(
        &o.meta,
        &mut out.status,
        &mut out.urgency,
        &mut out.due_at,
        &mut out.overdue,
    );
    out
}

/// A protocol version's summary, with its status as of `today`.
pub fn protocol_summary(e: &Entry, today: time::Date) -> v1::ProtocolSummary {
    let status = match e.status(today) {
        "review-overdue" => v1::ProtocolStatus::ReviewOverdue,
        _ => match e.state {
            ProtocolState::Draft => v1::ProtocolStatus::Draft,
            ProtocolState::Active => v1::ProtocolStatus::Active,
            ProtocolState::Suspended => v1::ProtocolStatus::Suspended,
            ProtocolState::Revoked => v1::ProtocolStatus::Revoked,
            ProtocolState::Superseded => v1::ProtocolStatus::Superseded,
        },
    };
    let p = &e.protocol;
    v1::ProtocolSummary {
        protocol_id: p.id.clone(),
        version: p.version,
        title: p.title.clone(),
        lead_agency: p.lead_agency.clone(),
        parties: p.parties.iter().map(|x| x.agency.clone()).collect(),
        status: status as i32,
        review_date: p.review_date.clone(),
        registered_by: e.registered_by.clone(),
        registered_at: Some(timestamp(e.registered_at_ms)),
        approved_by: e
            .approval
            .as_ref()
            .map(|a| a.by.clone())
            .unwrap_or_default(),
        approver_role: e
            .approval
            .as_ref()
            .map(|a| a.role.clone())
            .unwrap_or_default(),
        approved_at: e.approval.as_ref().map(|a| timestamp(a.at_ms)),
    }
}
