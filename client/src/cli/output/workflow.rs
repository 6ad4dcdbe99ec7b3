//! What the CLI prints of the workflow beyond asking and answering: due times (in New Zealand
//! time), notices, updates, the outbox, withdrawals, deadline runs.

use serde_json::{Value, json};

use super::json::{consultation_json, items_json};
use super::{Output, table, time};
use crate::api;

/// Pacific/Auckland, from the tz database bundled into the binary (not the host's).
fn auckland() -> jiff::tz::TimeZone {
    jiff::tz::db()
        .get("Pacific/Auckland")
        .expect("the bundled tz database holds Pacific/Auckland")
}

/// A time in New Zealand, e.g. `2027-01-20 00:00 NZDT` (the law's clock); `-` when unset.
pub(super) fn nz_time(ts: &Option<prost_types::Timestamp>) -> String {
    nz_format(ts, "%Y-%m-%d %H:%M %Z")
}

/// A time in New Zealand in RFC 3339 form, e.g. `2027-01-20T00:00:00+13:00`.
pub(super) fn nz_rfc3339(ts: &Option<prost_types::Timestamp>) -> String {
    nz_format(ts, "%Y-%m-%dT%H:%M:%S%:z")
}

fn nz_format(ts: &Option<prost_types::Timestamp>, format: &str) -> String {
    let Some(t) = ts else {
        return "-".into();
    };
    match jiff::Timestamp::new(t.seconds, t.nanos) {
        Ok(at) => at
            .to_zoned_datetime(auckland())
            .strftime(format)
            .to_string(),
        Err(_) => "-".into(),
    }
}

/// A request's due time for a table: NZ time, and OVERDUE once it has passed unanswered.
pub(super) fn due_cell(due_at: &Option<prost_types::Timestamp>, overdue: bool) -> String {
    match (due_at, overdue) {
        (None, _) => "-".into(),
        (Some(_), true) => format!("{} OVERDUE", nz_time(due_at)),
        (Some(_), false) => nz_time(due_at),
    }
}

/// The short name of a coded value: its proto name without the enum's prefix.
pub(super) fn short(name: &'static str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_string()
}

pub(super) fn request_status(status: i32) -> String {
    short(name_of!(api::RequestStatus, status), "REQUEST_STATUS_")
}

/// What a notice says, in a line.
pub(super) fn notice_summary(i: &api::InboxItem) -> String {
    let about = &i.related_request_id;
    match api::NoticeKind::try_from(i.notice).unwrap_or_default() {
        api::NoticeKind::Overdue => format!("OVERDUE: request {about} passed its due time"),
        api::NoticeKind::Withdrawn => format!(
            "WITHDRAWN by the requester: {}",
            i.withdrawal
                .as_ref()
                .map_or("(reasons purged)", |w| w.reason.as_str())
        ),
        api::NoticeKind::Expired => format!(
            "NOT DELIVERED: request {about} expired unacknowledged (infoshare resend {about} --to AGENCY)"
        ),
        api::NoticeKind::Unspecified => "notice".into(),
    }
}

pub(super) fn update_json(u: &api::InformationUpdate) -> Value {
    json!({
        "items": items_json(&u.items),
        "explanation": u.explanation,
        "staff_id": u.staff_id,
        "consultation": u.consultation.as_ref().map(consultation_json),
    })
}

pub(super) fn withdrawal_json(w: &api::Withdrawal) -> Value {
    json!({ "reason": w.reason, "staff_id": w.staff_id })
}

/// The deadline fields every exchange shows.
pub(super) fn deadline_json(
    status: i32,
    urgency: i32,
    due_at: &Option<prost_types::Timestamp>,
    overdue: bool,
) -> Value {
    json!({
        "status": name_of!(api::RequestStatus, status),
        "urgency": name_of!(api::Urgency, urgency),
        "due_at": due_at.as_ref().map(|_| time(due_at)),
        "due_at_nz": due_at.as_ref().map(|_| nz_rfc3339(due_at)),
        "overdue": overdue,
    })
}

/// Merges the fields of `extra` (an object) into `base` (an object).
pub(super) fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub(super) fn event_json(e: &api::TimelineEvent) -> Value {
    json!({
        "log_index": e.log_index,
        "kind": name_of!(api::EventKind, e.kind),
        "at": time(&e.at),
        "agency_id": e.agency_id,
        "related_request_id": e.related_request_id,
    })
}

fn outbox_json(i: &api::OutboxItem) -> Value {
    merged(
        json!({
            "cursor": i.cursor,
            "kind": name_of!(api::MessageKind, i.kind),
            "request_id": i.request_id,
            "recipient_agency_id": i.recipient_agency_id,
            "sent_at": time(&i.sent_at),
            "last_event": i.last_event.as_ref().map(event_json),
            "related_request_id": i.related_request_id,
            "referred_agency_id": i.referred_agency_id,
        }),
        deadline_json(i.status, i.urgency, &i.due_at, i.overdue),
    )
}

impl Output {
    pub(in crate::cli) fn outbox_page(&self, page: &api::ListOutboxResponse) {
        if self.json {
            return self.emit(json!({
                "items": page.items.iter().map(outbox_json).collect::<Vec<_>>(),
                "next_cursor": page.next_cursor,
                "more": page.more,
            }));
        }
        if page.items.is_empty() {
            say!("outbox empty");
        } else {
            let rows: Vec<Vec<String>> = page
                .items
                .iter()
                .map(|i| {
                    let last = i.last_event.as_ref().map_or(String::new(), |e| {
                        format!(
                            "{} {}",
                            short(name_of!(api::EventKind, e.kind), "EVENT_KIND_"),
                            time(&e.at)
                        )
                    });
                    let note = match (&*i.referred_agency_id, &*i.related_request_id) {
                        ("", "") => String::new(),
                        ("", related) => format!("follows {related}"),
                        (agency, _) => format!("suggests {agency}"),
                    };
                    vec![
                        i.cursor.to_string(),
                        short(name_of!(api::MessageKind, i.kind), "MESSAGE_KIND_"),
                        i.request_id.clone(),
                        i.recipient_agency_id.clone(),
                        time(&i.sent_at),
                        request_status(i.status),
                        due_cell(&i.due_at, i.overdue),
                        last,
                        note,
                    ]
                })
                .collect();
            table(
                &[
                    "CURSOR",
                    "KIND",
                    "REQUEST",
                    "TO",
                    "SENT",
                    "STATUS",
                    "DUE",
                    "LAST EVENT",
                    "NOTE",
                ],
                &rows,
            );
        }
        if page.more {
            say!("more: --after {}", page.next_cursor);
        }
    }

    pub(in crate::cli) fn withdrawn(&self, request_id: &str, w: &api::WithdrawRequestResponse) {
        if self.json {
            return self.emit(json!({
                "request_id": request_id,
                "log_index": w.log_index,
                "already_withdrawn": w.already_withdrawn,
            }));
        }
        let note = if w.already_withdrawn {
            "was already withdrawn"
        } else {
            "withdrawn"
        };
        say!("{request_id} {note} (log index {})", w.log_index);
    }

    pub(in crate::cli) fn deadlines(&self, r: &api::RunDeadlinesResponse) {
        if self.json {
            return self.emit(json!({
                "overdue": r.overdue,
                "expired": r.expired,
                "as_of": time(&r.as_of),
                "more": r.more,
            }));
        }
        say!(
            "deadline run as of {}: {} request(s) now overdue, {} expired{}",
            nz_time(&r.as_of),
            r.overdue,
            r.expired,
            if r.more {
                " (more are due: run again)"
            } else {
                ""
            }
        );
    }

    /// The parts of a request's detail this workflow adds: deadlines, links, updates,
    /// withdrawal.
    pub(super) fn detail_workflow(&self, d: &api::GetRequestResponse) {
        if d.due_at.is_some() {
            say!(
                "urgency   {}  due {}",
                short(name_of!(api::Urgency, d.urgency), "URGENCY_"),
                due_cell(&d.due_at, d.overdue)
            );
        }
        if d.expires_at.is_some() {
            say!("expires   {} unless acknowledged", nz_time(&d.expires_at));
        }
        if !d.related_request_id.is_empty() {
            let what = if d.update.is_some() {
                "updates"
            } else {
                "follows"
            };
            say!("{what}   {}", d.related_request_id);
        }
        for id in &d.resent_as {
            say!("sent on as {id}");
        }
        if let Some(w) = &d.withdrawal {
            say!("withdrawn: {}", w.reason);
        }
        if let Some(u) = &d.update {
            say!("update");
            self.items(&u.items);
            if !u.explanation.is_empty() {
                say!("  note: {}", u.explanation);
            }
        }
        for u in &d.updates {
            say!(
                "update {} at {}{}",
                u.update_id,
                time(&u.sent_at),
                if u.acknowledged {
                    " (acknowledged)"
                } else {
                    ""
                }
            );
            if let Some(body) = &u.update {
                self.items(&body.items);
            }
        }
    }

    /// The detail's workflow fields as JSON.
    pub(super) fn detail_workflow_json(d: &api::GetRequestResponse) -> Value {
        merged(
            json!({
                "kind": name_of!(api::MessageKind, d.kind),
                "expires_at": d.expires_at.as_ref().map(|_| time(&d.expires_at)),
                "related_request_id": d.related_request_id,
                "resent_as": d.resent_as,
                "update": d.update.as_ref().map(update_json),
                "withdrawal": d.withdrawal.as_ref().map(withdrawal_json),
                "updates": d.updates.iter().map(|u| json!({
                    "update_id": u.update_id,
                    "sent_at": time(&u.sent_at),
                    "acknowledged": u.acknowledged,
                    "update": u.update.as_ref().map(update_json),
                })).collect::<Vec<_>>(),
            }),
            deadline_json(d.status, d.urgency, &d.due_at, d.overdue),
        )
    }
}
