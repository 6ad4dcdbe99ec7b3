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
        println!("{}", $crate::cli::terminal::line(&format!($($arg)*)))
    };
}

macro_rules! name_of {
    ($enum:ty, $v:expr) => {
        <$enum>::try_from($v)
            .map(|e| e.as_str_name())
            .unwrap_or("UNKNOWN")
    };
}

mod audit;
mod json;
mod workflow;
use json::*;
use workflow::{due_cell, notice_summary, request_status, short};

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
        _ if i.kind == api::MessageKind::Notice as i32 => notice_summary(i),
        _ => match &i.update {
            Some(u) => format!(
                "update to {} ({} items)",
                i.related_request_id,
                u.items.len()
            ),
            None => String::new(),
        },
    };
    let summary = match &i.response {
        Some(r) if !r.referred_agency_id.is_empty() => {
            format!("{summary}; suggests {}", r.referred_agency_id)
        }
        _ => summary,
    };
    vec![
        i.cursor.to_string(),
        short(name_of!(api::MessageKind, i.kind), "MESSAGE_KIND_"),
        i.request_id.clone(),
        i.from_agency_id.clone(),
        time(&i.sent_at),
        if i.acknowledged { "yes" } else { "no" }.into(),
        request_status(i.status),
        due_cell(&i.due_at, i.overdue),
        summary,
    ]
}

const INBOX_HEADERS: [&str; 9] = [
    "CURSOR", "KIND", "REQUEST", "FROM", "SENT", "ACK", "STATUS", "DUE", "SUMMARY",
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
                "next_page_token": page.next_page_token,
                "more": page.more,
            }));
        }
        if page.items.is_empty() {
            say!("inbox empty");
            return;
        }
        let rows: Vec<Vec<String>> = page.items.iter().map(item_row).collect();
        table(&INBOX_HEADERS, &rows);
        match (page.more, page.next_page_token.is_empty()) {
            (false, _) => {}
            (true, true) => say!("more: --after {}", page.next_cursor),
            (true, false) => say!("more: --page {}", page.next_page_token),
        }
    }

    /// Disclosed items, one a line.
    fn items(&self, items: &[api::DisclosedItem]) {
        for i in items {
            say!(
                "  [{}] {}: {}",
                name_of!(api::Classification, i.classification)
                    .trim_start_matches("CLASSIFICATION_"),
                i.category,
                i.content
            );
        }
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
                    e.related_request_id.clone(),
                ]
            })
            .collect();
        if self.json {
            return self.emit(workflow::merged(
                json!({
                    "request_id": d.request_id,
                    "requester_agency_id": d.requester_agency_id,
                    "recipient_agency_id": d.recipient_agency_id,
                    "status": name_of!(api::RequestStatus, d.status),
                    "request": d.request.as_ref().map(request_json),
                    "response": d.response.as_ref().map(response_json),
                    "disclosure": d.disclosure.as_ref().map(disclosure_json),
                    "timeline": d.timeline.iter().map(workflow::event_json).collect::<Vec<_>>(),
                    "body_purged": d.body_purged,
                    "legal_hold": d.legal_hold,
                }),
                Self::detail_workflow_json(d),
            ));
        }
        say!("request   {}", d.request_id);
        say!("from      {}", d.requester_agency_id);
        say!("to        {}", d.recipient_agency_id);
        say!("status    {}", request_status(d.status));
        self.detail_workflow(d);
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
            self.items(&x.items);
            say!("reason    {}", x.reason);
        }
        if let Some(r) = &d.response {
            say!(
                "answer    {}",
                name_of!(api::Decision, r.decision).trim_start_matches("DECISION_")
            );
            self.items(&r.items);
            if !r.explanation.is_empty() {
                say!(
                    "  withheld ({}): {}",
                    name_of!(api::DeclineGround, r.decline_ground)
                        .trim_start_matches("DECLINE_GROUND_"),
                    r.explanation
                );
            }
            if !r.referred_agency_id.is_empty() {
                say!(
                    "  suggests asking {} (infoshare resend {} --to {})",
                    r.referred_agency_id,
                    d.request_id,
                    r.referred_agency_id
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
        table(&["INDEX", "AT", "EVENT", "AGENCY", "RELATED"], &timeline);
    }
}
