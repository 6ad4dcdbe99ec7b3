//! What the CLI prints: readable tables by default, one JSON object per line with `--json`.
//! Errors are one line on stderr (and a JSON object on stdout with `--json`).

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use crate::api;
use serde_json::{Value, json};

pub(super) struct Output {
    json: bool,
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn time(ts: &Option<prost_types::Timestamp>) -> String {
    match ts {
        Some(t) if t.seconds >= 0 => {
            let at = UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.max(0) as u32);
            humantime::format_rfc3339_seconds(at).to_string()
        }
        _ => "-".into(),
    }
}

/// Prints one line of human output, with whatever the broker sent made harmless
/// ([`super::terminal`]).
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", super::terminal::line(&format!($($arg)*)))
    };
}

macro_rules! name_of {
    ($enum:ty, $v:expr) => {
        <$enum>::try_from($v)
            .map(|e| e.as_str_name())
            .unwrap_or("UNKNOWN")
    };
}

/// Prints rows under headers, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| super::terminal::cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in &rows {
        line(row.clone());
    }
}

fn request_json(r: &api::InformationRequest) -> Value {
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

fn subject_json(s: &Option<api::Subject>) -> Value {
    let s = s.clone().unwrap_or_default();
    json!({
        "family_name": s.family_name,
        "given_names": s.given_names,
        "date_of_birth": s.date_of_birth,
        "identifiers": s.identifiers.iter().map(|i| json!({"scheme": i.scheme, "value": i.value})).collect::<Vec<_>>(),
    })
}

fn items_json(items: &[api::DisclosedItem]) -> Vec<Value> {
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

fn consultation_json(c: &api::ConsultationRecord) -> Value {
    json!({
        "status": name_of!(api::ConsultationStatus, c.status),
        "reason_not_consulted": c.reason_not_consulted,
    })
}

fn response_json(r: &api::InformationResponse) -> Value {
    json!({
        "decision": name_of!(api::Decision, r.decision),
        "items": items_json(&r.items),
        "decline_ground": name_of!(api::DeclineGround, r.decline_ground),
        "explanation": r.explanation,
        "staff_id": r.staff_id,
        "consultation": r.consultation.as_ref().map(consultation_json),
    })
}

fn disclosure_json(d: &api::ProactiveDisclosure) -> Value {
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

fn protocol_json(p: &api::ProtocolSummary) -> Value {
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

fn status_word(p: &api::ProtocolSummary) -> String {
    name_of!(api::ProtocolStatus, p.status)
        .trim_start_matches("PROTOCOL_STATUS_")
        .to_string()
}

fn item_json(i: &api::InboxItem) -> Value {
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
    })
}

fn item_row(i: &api::InboxItem) -> Vec<String> {
    let summary = match (&i.request, &i.response) {
        (Some(r), _) => format!(
            "{} {}/{} [{}] {}",
            name_of!(api::LegalAuthority, r.authority).trim_start_matches("LEGAL_AUTHORITY_"),
            r.protocol_id,
            r.purpose,
            r.categories.join(","),
            name_of!(api::Urgency, r.urgency).trim_start_matches("URGENCY_"),
        ),
        (_, Some(r)) => format!(
            "{} ({} items)",
            name_of!(api::Decision, r.decision).trim_start_matches("DECISION_"),
            r.items.len()
        ),
        _ if i.disclosure.is_some() => {
            let d = i.disclosure.as_ref().expect("checked");
            format!(
                "{} {}/{} ({} items)",
                name_of!(api::LegalAuthority, d.authority).trim_start_matches("LEGAL_AUTHORITY_"),
                d.protocol_id,
                d.purpose,
                d.items.len()
            )
        }
        _ if i.body_purged => "(body purged)".into(),
        _ => String::new(),
    };
    vec![
        i.cursor.to_string(),
        name_of!(api::MessageKind, i.kind)
            .trim_start_matches("MESSAGE_KIND_")
            .to_string(),
        i.request_id.clone(),
        i.from_agency_id.clone(),
        time(&i.sent_at),
        if i.acknowledged { "yes" } else { "no" }.into(),
        summary,
    ]
}

const INBOX_HEADERS: [&str; 7] = [
    "CURSOR", "KIND", "REQUEST", "FROM", "SENT", "ACK", "SUMMARY",
];

impl Output {
    pub(super) fn new(json: bool) -> Self {
        Self { json }
    }

    fn emit(&self, v: Value) {
        // JSON escapes every control character itself.
        println!("{v}");
    }

    /// Prints an error (one line on stderr; with `--json`, also the structured error on
    /// stdout) and gives the failing exit code.
    pub(super) fn fail(&self, failure: &super::failure::Failure) -> ExitCode {
        if self.json {
            self.emit(failure.json());
        }
        eprintln!("error: {}", super::terminal::line(&failure.to_string()));
        ExitCode::FAILURE
    }

    pub(super) fn whoami(&self, me: &api::WhoAmIResponse) {
        if self.json {
            return self.emit(json!({
                "role": name_of!(api::Role, me.role),
                "id": me.id,
                "display_name": me.display_name,
                "spiffe_id": me.spiffe_id,
                "certificate_sha256": me.certificate_sha256,
            }));
        }
        say!("{} ({})", me.display_name, me.spiffe_id);
        say!("certificate sha256 {}", me.certificate_sha256);
    }

    /// A request or proactive disclosure the broker accepted (`what` names which).
    pub(super) fn accepted(
        &self,
        what: &str,
        request_id: &str,
        log_index: u64,
        accepted_at: &Option<prost_types::Timestamp>,
        replayed: bool,
        key: &str,
    ) {
        if self.json {
            return self.emit(json!({
                "request_id": request_id,
                "log_index": log_index,
                "accepted_at": time(accepted_at),
                "replayed": replayed,
                "idempotency_key": key,
            }));
        }
        let note = if replayed {
            " (already sent with this key)"
        } else {
            ""
        };
        say!(
            "{what} {request_id} accepted at {}{note}",
            time(accepted_at)
        );
        say!("log index {log_index}; idempotency key {key}");
    }

    pub(super) fn protocols(&self, list: &[api::ProtocolSummary]) {
        if self.json {
            return self
                .emit(json!({ "protocols": list.iter().map(protocol_json).collect::<Vec<_>>() }));
        }
        if list.is_empty() {
            say!("no protocols");
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|p| {
                vec![
                    p.protocol_id.clone(),
                    p.version.to_string(),
                    status_word(p),
                    p.lead_agency.clone(),
                    p.review_date.clone(),
                    p.title.clone(),
                ]
            })
            .collect();
        table(
            &[
                "PROTOCOL",
                "VERSION",
                "STATUS",
                "LEAD",
                "REVIEW BY",
                "TITLE",
            ],
            &rows,
        );
    }

    pub(super) fn protocol_changed(&self, p: &api::ProtocolSummary, log_index: u64) {
        if self.json {
            let mut v = protocol_json(p);
            v["log_index"] = json!(log_index);
            return self.emit(v);
        }
        say!(
            "protocol {} version {} is {} (log index {log_index})",
            p.protocol_id,
            p.version,
            status_word(p).to_lowercase()
        );
    }

    pub(super) fn protocol_detail(&self, r: &api::GetProtocolResponse) {
        let p = r.protocol.clone().unwrap_or_default();
        if self.json {
            let mut v = protocol_json(&p);
            v["document_toml"] = json!(r.document_toml);
            return self.emit(v);
        }
        say!(
            "protocol  {} version {} ({})",
            p.protocol_id,
            p.version,
            status_word(&p).to_lowercase()
        );
        say!("title     {}", p.title);
        say!("parties   {}", p.parties.join(", "));
        say!("review by {}", p.review_date);
        say!(
            "registered by {} at {}",
            p.registered_by,
            time(&p.registered_at)
        );
        if !p.approved_by.is_empty() {
            say!(
                "approved by {} ({}) at {}",
                p.approved_by,
                p.approver_role,
                time(&p.approved_at)
            );
        }
        println!();
        print!("{}", r.document_toml);
    }

    pub(super) fn log_info(&self, info: &api::GetLogInfoResponse, cp: &infoshare_tlog::Checkpoint) {
        if self.json {
            return self.emit(json!({
                "origin": info.origin,
                "verifier_key": info.verifier_key,
                "size": cp.size,
                "root": hex_str(&cp.root),
                "checkpoint": info.checkpoint,
            }));
        }
        say!("origin       {}", info.origin);
        say!("verifier key {}", info.verifier_key);
        say!("size         {}", cp.size);
        say!("root         {}", hex_str(&cp.root));
    }

    pub(super) fn audit_records(
        &self,
        r: &api::AuditRecordsResponse,
        cp: &infoshare_tlog::Checkpoint,
    ) {
        if self.json {
            return self.emit(json!({
                "checkpoint_size": cp.size,
                "verified": true,
                "records": r.records.iter().map(|x| {
                    let s = x.summary.clone().unwrap_or_default();
                    json!({
                        "log_index": x.log_index,
                        "event_type": s.event_type,
                        "at": time(&s.at),
                        "actor": s.actor,
                        "actor_certificate_sha256": s.actor_certificate_sha256,
                        "request_id": s.request_id,
                        "counterpart": s.counterpart,
                        "protocol_id": s.protocol_id,
                        "protocol_version": s.protocol_version,
                        "authority": s.authority.map(|a| name_of!(api::LegalAuthority, a)),
                        "classification": s.classification.map(|c| name_of!(api::Classification, c)),
                        "operation": (!s.operation.is_empty()).then_some(&s.operation),
                        "purpose": s.purpose,
                        "categories": s.categories,
                        "disclosed": s.disclosed.iter().map(|d| json!({
                            "category": d.category,
                            "classification": name_of!(api::Classification, d.classification),
                        })).collect::<Vec<_>>(),
                        "decision": s.decision,
                        "reason_code": s.reason_code,
                        "rule": s.rule,
                        "subject_pseudonyms": s.subject_pseudonyms,
                        "staff_pseudonym": s.staff_pseudonym,
                        "result_count": s.result_count,
                    })
                }).collect::<Vec<_>>(),
                "next_after_index": r.next_after_index,
                "more": r.more,
            }));
        }
        let rows: Vec<Vec<String>> = r
            .records
            .iter()
            .map(|x| {
                let s = x.summary.clone().unwrap_or_default();
                let what = if !s.disclosed.is_empty() {
                    s.disclosed
                        .iter()
                        .map(|d| {
                            format!(
                                "{}[{}]",
                                d.category,
                                name_of!(api::Classification, d.classification)
                                    .trim_start_matches("CLASSIFICATION_")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                } else if !s.categories.is_empty() {
                    s.categories.join(",")
                } else if !s.operation.is_empty() {
                    format!("{} {}", s.operation, s.rule)
                } else {
                    s.rule.clone()
                };
                vec![
                    x.log_index.to_string(),
                    time(&s.at),
                    s.event_type,
                    s.actor,
                    s.counterpart,
                    s.protocol_id,
                    [s.decision, s.reason_code]
                        .iter()
                        .filter(|x| !x.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" "),
                    what,
                ]
            })
            .collect();
        table(
            &[
                "INDEX",
                "AT",
                "EVENT",
                "ACTOR",
                "OTHER PARTY",
                "PROTOCOL",
                "DECISION",
                "WHAT",
            ],
            &rows,
        );
        say!(
            "{} records; every inclusion proof verified against the signed checkpoint of size {}",
            r.records.len(),
            cp.size
        );
        if r.more {
            say!("more: --after {}", r.next_after_index);
        }
    }

    /// `followed`: the key rotations moved through, as (old key, new key, at size).
    pub(super) fn log_verified(
        &self,
        new: &infoshare_tlog::Checkpoint,
        old: Option<&infoshare_tlog::Checkpoint>,
        followed: &[(String, String, u64)],
    ) {
        if self.json {
            return self.emit(json!({
                "verified": true,
                "size": new.size,
                "root": hex_str(&new.root),
                "previous_size": old.map(|o| o.size),
                "key_rotations_followed": followed
                    .iter()
                    .map(|(old, new, size)| json!({"old": old, "new": new, "at_size": size}))
                    .collect::<Vec<_>>(),
            }));
        }
        for (old_key, new_key, size) in followed {
            say!(
                "log key rotated at size {size}: {old_key} -> {new_key} (both signed it; now trusting the new key)"
            );
        }
        match old {
            Some(o) => say!(
                "log verified: size {} is consistent with the checkpoint of size {} seen before",
                new.size,
                o.size
            ),
            None => say!(
                "log key pinned; checkpoint of size {} stored for the next verify",
                new.size
            ),
        }
    }

    pub(super) fn exported(
        &self,
        path: &std::path::Path,
        cp: &infoshare_tlog::Checkpoint,
        n: usize,
        more: bool,
    ) {
        if self.json {
            return self.emit(json!({ "file": path.display().to_string(), "records": n, "checkpoint_size": cp.size, "more": more }));
        }
        say!(
            "{n} records exported to {} (checkpoint size {})",
            path.display(),
            cp.size
        );
        if more {
            say!(
                "note: more records match than one bundle holds; narrow the filter (e.g. --since/--until)"
            );
        }
    }

    pub(super) fn bundle_verified(
        &self,
        b: &api::EvidenceBundle,
        cp: &infoshare_tlog::Checkpoint,
        n: usize,
        pinned: bool,
    ) {
        if self.json {
            return self.emit(json!({
                "verified": true,
                "origin": b.origin,
                "records": n,
                "checkpoint_size": cp.size,
                "key_pinned": pinned,
            }));
        }
        say!(
            "bundle verified: {n} records of {} in the signed checkpoint of size {}",
            b.origin,
            cp.size
        );
        if !pinned {
            say!(
                "note: verified with the bundle's own key; pass --key with the log's published verifier key to pin it"
            );
        }
    }

    pub(super) fn inbox_header(&self) {
        if !self.json {
            let header: Vec<String> = INBOX_HEADERS.iter().map(|h| h.to_string()).collect();
            say!("{}", header.join("  "));
        }
    }

    pub(super) fn inbox_item(&self, i: &api::InboxItem) {
        if self.json {
            return self.emit(item_json(i));
        }
        let row: Vec<String> = item_row(i)
            .iter()
            .map(|c| super::terminal::cell(c))
            .collect();
        say!("{}", row.join("  "));
    }

    pub(super) fn inbox_page(&self, page: &api::ListInboxResponse) {
        if self.json {
            return self.emit(json!({
                "items": page.items.iter().map(item_json).collect::<Vec<_>>(),
                "next_cursor": page.next_cursor,
                "more": page.more,
            }));
        }
        if page.items.is_empty() {
            say!("inbox empty");
            return;
        }
        let rows: Vec<Vec<String>> = page.items.iter().map(item_row).collect();
        table(&INBOX_HEADERS, &rows);
        if page.more {
            say!("more: --after {}", page.next_cursor);
        }
    }

    pub(super) fn log_key_rotation(&self, r: &api::RotateLogKeyResponse) {
        if self.json {
            return self.emit(json!({
                "verifier_key": r.verifier_key,
                "statement": r.statement,
            }));
        }
        say!(
            "log signing key rotated; the new verifier key is {}",
            r.verifier_key
        );
        say!(
            "rotation statement (publish it beside the key):\n{}",
            r.statement
        );
    }

    pub(super) fn retention(&self, r: &api::RunRetentionResponse) {
        if self.json {
            return self.emit(json!({
                "purged_exchanges": r.purged_exchanges,
                "as_of": time(&r.as_of),
            }));
        }
        say!(
            "retention run as of {}: bodies of {} exchange(s) erased",
            time(&r.as_of),
            r.purged_exchanges
        );
    }

    pub(super) fn acked(&self, request_id: &str, a: &api::AcknowledgeResponse) {
        if self.json {
            return self.emit(json!({
                "request_id": request_id,
                "log_index": a.log_index,
                "already_acknowledged": a.already_acknowledged,
            }));
        }
        let note = if a.already_acknowledged {
            "already acknowledged"
        } else {
            "acknowledged"
        };
        say!("{request_id} {note} (log index {})", a.log_index);
    }

    pub(super) fn responded(&self, request_id: &str, r: &api::RespondResponse) {
        if self.json {
            return self.emit(json!({
                "request_id": request_id,
                "log_index": r.log_index,
                "accepted_at": time(&r.accepted_at),
            }));
        }
        say!(
            "response to {request_id} accepted at {} (log index {})",
            time(&r.accepted_at),
            r.log_index
        );
    }

    /// Legal holds placed, released or in place.
    pub(super) fn holds(&self, verb: &str, holds: &[api::LegalHold]) {
        if self.json {
            return self.emit(json!({
                "holds": holds.iter().map(|h| json!({
                    "request_id": (!h.request_id.is_empty()).then_some(&h.request_id),
                    "subject_pseudonym": (!h.subject_pseudonym.is_empty()).then_some(&h.subject_pseudonym),
                    "log_index": h.log_index,
                    "at": time(&h.at),
                    "actor": h.actor,
                })).collect::<Vec<_>>(),
            }));
        }
        if !verb.is_empty() {
            say!("{verb} {} legal hold(s)", holds.len());
        }
        let rows: Vec<Vec<String>> = holds
            .iter()
            .map(|h| {
                let (kind, target) = if h.request_id.is_empty() {
                    ("subject", h.subject_pseudonym.clone())
                } else {
                    ("exchange", h.request_id.clone())
                };
                vec![
                    h.log_index.to_string(),
                    time(&h.at),
                    kind.to_string(),
                    target,
                    h.actor.clone(),
                ]
            })
            .collect();
        table(&["INDEX", "AT", "ON", "TARGET", "BY"], &rows);
    }

    pub(super) fn detail(&self, d: &api::GetRequestResponse) {
        let timeline: Vec<Vec<String>> = d
            .timeline
            .iter()
            .map(|e| {
                vec![
                    e.log_index.to_string(),
                    time(&e.at),
                    name_of!(api::EventKind, e.kind)
                        .trim_start_matches("EVENT_KIND_")
                        .to_string(),
                    e.agency_id.clone(),
                ]
            })
            .collect();
        if self.json {
            return self.emit(json!({
                "request_id": d.request_id,
                "requester_agency_id": d.requester_agency_id,
                "recipient_agency_id": d.recipient_agency_id,
                "status": name_of!(api::RequestStatus, d.status),
                "request": d.request.as_ref().map(request_json),
                "response": d.response.as_ref().map(response_json),
                "disclosure": d.disclosure.as_ref().map(disclosure_json),
                "timeline": d.timeline.iter().map(|e| json!({
                    "log_index": e.log_index,
                    "kind": name_of!(api::EventKind, e.kind),
                    "at": time(&e.at),
                    "agency_id": e.agency_id,
                })).collect::<Vec<_>>(),
                "body_purged": d.body_purged,
                "legal_hold": d.legal_hold,
            }));
        }
        say!("request   {}", d.request_id);
        say!("from      {}", d.requester_agency_id);
        say!("to        {}", d.recipient_agency_id);
        say!(
            "status    {}",
            name_of!(api::RequestStatus, d.status).trim_start_matches("REQUEST_STATUS_")
        );
        if let Some(r) = &d.request {
            let s = r.subject.clone().unwrap_or_default();
            say!(
                "authority {}  protocol {}  purpose {}",
                name_of!(api::LegalAuthority, r.authority).trim_start_matches("LEGAL_AUTHORITY_"),
                r.protocol_id,
                r.purpose
            );
            say!(
                "subject   {}, {} (born {})",
                s.family_name,
                s.given_names,
                s.date_of_birth
            );
            for i in &s.identifiers {
                say!("          {} {}", i.scheme, i.value);
            }
            say!("asks for  {}", r.categories.join(", "));
            say!("reason    {}", r.reason);
        }
        if let Some(x) = &d.disclosure {
            say!(
                "disclosed {} under {}/{}",
                name_of!(api::LegalAuthority, x.authority).trim_start_matches("LEGAL_AUTHORITY_"),
                x.protocol_id,
                x.purpose
            );
            let s = x.subject.clone().unwrap_or_default();
            say!(
                "subject   {}, {} (born {})",
                s.family_name,
                s.given_names,
                s.date_of_birth
            );
            for i in &x.items {
                say!(
                    "  [{}] {}: {}",
                    name_of!(api::Classification, i.classification)
                        .trim_start_matches("CLASSIFICATION_"),
                    i.category,
                    i.content
                );
            }
            say!("reason    {}", x.reason);
        }
        if let Some(r) = &d.response {
            say!(
                "answer    {}",
                name_of!(api::Decision, r.decision).trim_start_matches("DECISION_")
            );
            for i in &r.items {
                say!(
                    "  [{}] {}: {}",
                    name_of!(api::Classification, i.classification)
                        .trim_start_matches("CLASSIFICATION_"),
                    i.category,
                    i.content
                );
            }
            if !r.explanation.is_empty() {
                say!(
                    "  withheld ({}): {}",
                    name_of!(api::DeclineGround, r.decline_ground)
                        .trim_start_matches("DECLINE_GROUND_"),
                    r.explanation
                );
            }
        }
        if d.body_purged {
            say!("(a body was purged at the end of its retention period)");
        }
        if d.legal_hold {
            say!("(under a legal hold: kept past retention until an auditor releases it)");
        }
        println!();
        table(&["INDEX", "AT", "EVENT", "AGENCY"], &timeline);
    }
}
