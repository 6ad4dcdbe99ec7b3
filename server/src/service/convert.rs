//! Conversions from the broker's values to API messages.

use infoshare_proto::v1;
use prost::Message;

use crate::broker::{InboxItem, RequestDetail};
use crate::domain::{MessageKind, RequestStatus};
use crate::error::BrokerError;
use crate::protocol::{Entry, ProtocolState};
use crate::records::{Event, Record};
use crate::store::bodies::BodyEntry;

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
    let (mut request, mut response, mut disclosure) = (None, None, None);
    if let Some(body) = &item.body {
        match item.entry.kind {
            MessageKind::Request => request = Some(decode(body)?),
            MessageKind::Response => response = Some(decode(body)?),
            MessageKind::Disclosure => disclosure = Some(decode(body)?),
            MessageKind::Protocol => {
                return Err(BrokerError::Internal(
                    "a protocol document in an inbox".into(),
                ));
            }
        }
    }
    Ok(v1::InboxItem {
        cursor: item.cursor,
        kind: kind(item.entry.kind) as i32,
        request_id: item.entry.request_id.to_string(),
        from_agency_id: item.entry.from.clone(),
        sent_at: Some(timestamp(item.entry.time_ms)),
        acknowledged: item.entry.acknowledged,
        request,
        response,
        disclosure,
        body_purged: item.body.is_none(),
    })
}

fn kind(k: MessageKind) -> v1::MessageKind {
    match k {
        MessageKind::Request => v1::MessageKind::Request,
        MessageKind::Response => v1::MessageKind::Response,
        MessageKind::Disclosure => v1::MessageKind::Disclosure,
        MessageKind::Protocol => v1::MessageKind::Unspecified,
    }
}

fn status(s: RequestStatus) -> v1::RequestStatus {
    match s {
        RequestStatus::Submitted => v1::RequestStatus::Submitted,
        RequestStatus::Acknowledged => v1::RequestStatus::Acknowledged,
        RequestStatus::Responded => v1::RequestStatus::Responded,
        RequestStatus::Completed => v1::RequestStatus::Completed,
    }
}

fn event(index: u64, r: &Record) -> Option<v1::TimelineEvent> {
    let kind = match r.event {
        Event::RequestSubmitted(_) => v1::EventKind::RequestSubmitted,
        Event::RequestAcknowledged { .. } => v1::EventKind::RequestAcknowledged,
        Event::ResponseSubmitted(_) => v1::EventKind::ResponseSubmitted,
        Event::ResponseAcknowledged { .. } => v1::EventKind::ResponseAcknowledged,
        Event::DisclosureSubmitted(_) => v1::EventKind::DisclosureSubmitted,
        Event::DisclosureAcknowledged { .. } => v1::EventKind::DisclosureAcknowledged,
        Event::BodiesPurged { .. } => v1::EventKind::BodiesPurged,
        Event::LegalHoldPlaced(_) => v1::EventKind::LegalHoldPlaced,
        Event::LegalHoldReleased(_) => v1::EventKind::LegalHoldReleased,
        Event::Denied(_)
        | Event::Protocol(_)
        | Event::AuditQueried(_)
        | Event::LogKeyRotated { .. } => return None,
    };
    Some(v1::TimelineEvent {
        log_index: index,
        kind: kind as i32,
        at: Some(timestamp(r.time_ms)),
        agency_id: r.actor.id.clone(),
    })
}

/// A request's detail as the API carries it (bodies decoded).
pub fn request_detail(d: &RequestDetail) -> Result<v1::GetRequestResponse, BrokerError> {
    let request = d.request.as_ref().map(decode).transpose()?;
    let response = d.response.as_ref().map(decode).transpose()?;
    let disclosure = d.disclosure.as_ref().map(decode).transpose()?;
    let purged = (request.is_none() && disclosure.is_none())
        || (d.meta.response_idx != 0 && d.response.is_none());
    Ok(v1::GetRequestResponse {
        request_id: d.request_id.to_string(),
        requester_agency_id: d.meta.requester.clone(),
        recipient_agency_id: d.meta.recipient.clone(),
        status: status(d.meta.status) as i32,
        request,
        response,
        timeline: d
            .timeline
            .iter()
            .filter_map(|(i, r)| event(*i, r))
            .collect(),
        body_purged: purged,
        disclosure,
        legal_hold: d.legal_hold,
    })
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
