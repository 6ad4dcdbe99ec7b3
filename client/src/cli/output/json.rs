//! The JSON forms of the API's messages, for `--json` output.

use serde_json::{Value, json};

use super::time;
use crate::api;

pub(super) fn request_json(r: &api::InformationRequest) -> Value {
    json!({
        "recipient_agency_id": r.recipient_agency_id,
        "authority": name_of!(api::LegalAuthority, r.authority),
        "protocol_id": r.protocol_id,
        "purpose": r.purpose,
        "subject": subject_json(&r.subject),
        "categories": r.categories,
        "reason": r.reason,
        "urgency": name_of!(api::Urgency, r.urgency),
        "classification": name_of!(api::Classification, r.classification),
        "consultation": r.consultation.as_ref().map(consultation_json),
        "staff_id": r.staff_id,
    })
}

pub(super) fn subject_json(s: &Option<api::Subject>) -> Value {
    let s = s.clone().unwrap_or_default();
    json!({
        "family_name": s.family_name,
        "given_names": s.given_names,
        "date_of_birth": s.date_of_birth,
        "identifiers": s.identifiers.iter().map(|i| json!({"scheme": i.scheme, "value": i.value})).collect::<Vec<_>>(),
    })
}

pub(super) fn items_json(items: &[api::DisclosedItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| {
            json!({
                "category": i.category,
                "classification": name_of!(api::Classification, i.classification),
                "content": i.content,
            })
        })
        .collect()
}

pub(super) fn consultation_json(c: &api::ConsultationRecord) -> Value {
    json!({
        "status": name_of!(api::ConsultationStatus, c.status),
        "reason_not_consulted": c.reason_not_consulted,
    })
}

pub(super) fn response_json(r: &api::InformationResponse) -> Value {
    json!({
        "decision": name_of!(api::Decision, r.decision),
        "items": items_json(&r.items),
        "decline_ground": name_of!(api::DeclineGround, r.decline_ground),
        "explanation": r.explanation,
        "staff_id": r.staff_id,
        "consultation": r.consultation.as_ref().map(consultation_json),
        "referred_agency_id": r.referred_agency_id,
    })
}

pub(super) fn disclosure_json(d: &api::ProactiveDisclosure) -> Value {
    json!({
        "recipient_agency_id": d.recipient_agency_id,
        "authority": name_of!(api::LegalAuthority, d.authority),
        "protocol_id": d.protocol_id,
        "purpose": d.purpose,
        "subject": subject_json(&d.subject),
        "items": items_json(&d.items),
        "reason": d.reason,
        "consultation": d.consultation.as_ref().map(consultation_json),
        "staff_id": d.staff_id,
    })
}

pub(super) fn protocol_json(p: &api::ProtocolSummary) -> Value {
    json!({
        "protocol_id": p.protocol_id,
        "version": p.version,
        "title": p.title,
        "lead_agency": p.lead_agency,
        "parties": p.parties,
        "status": name_of!(api::ProtocolStatus, p.status),
        "review_date": p.review_date,
        "registered_by": p.registered_by,
        "registered_at": time(&p.registered_at),
        "approved_by": p.approved_by,
        "approver_role": p.approver_role,
        "approved_at": time(&p.approved_at),
    })
}

pub(super) fn status_word(p: &api::ProtocolSummary) -> String {
    name_of!(api::ProtocolStatus, p.status)
        .trim_start_matches("PROTOCOL_STATUS_")
        .to_string()
}

pub(super) fn item_json(i: &api::InboxItem) -> Value {
    use super::workflow::{deadline_json, merged, update_json, withdrawal_json};
    let extra = merged(
        json!({
            "notice": name_of!(api::NoticeKind, i.notice),
            "related_request_id": i.related_request_id,
            "update": i.update.as_ref().map(update_json),
            "withdrawal": i.withdrawal.as_ref().map(withdrawal_json),
        }),
        deadline_json(i.status, i.urgency, &i.due_at, i.overdue),
    );
    merged(
        json!({
            "cursor": i.cursor,
            "kind": name_of!(api::MessageKind, i.kind),
            "request_id": i.request_id,
            "from_agency_id": i.from_agency_id,
            "sent_at": time(&i.sent_at),
            "acknowledged": i.acknowledged,
            "body_purged": i.body_purged,
            "request": i.request.as_ref().map(request_json),
            "response": i.response.as_ref().map(response_json),
            "disclosure": i.disclosure.as_ref().map(disclosure_json),
        }),
        extra,
    )
}
