//! What the auditor's commands print: log information, records with their proofs, verification
//! results, evidence bundles, key rotations and legal holds.

use serde_json::json;

use super::*;
use crate::api;

impl Output {
    pub(in crate::cli) fn log_info(
        &self,
        info: &api::GetLogInfoResponse,
        cp: &infoshare_tlog::Checkpoint,
    ) {
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

    pub(in crate::cli) fn audit_records(
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
                        "related_request_id": s.related_request_id,
                        "due_at": s.due_at.as_ref().map(|_| time(&s.due_at)),
                        "expires_at": s.expires_at.as_ref().map(|_| time(&s.expires_at)),
                        "referred_agency_id": s.referred_agency_id,
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
                } else if !s.related_request_id.is_empty() {
                    format!("linked to {}", s.related_request_id)
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
    pub(in crate::cli) fn log_verified(
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

    pub(in crate::cli) fn exported(
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

    pub(in crate::cli) fn bundle_verified(
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

    pub(in crate::cli) fn log_key_rotation(&self, r: &api::RotateLogKeyResponse) {
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

    /// Legal holds placed, released or in place.
    pub(in crate::cli) fn holds(&self, verb: &str, holds: &[api::LegalHold]) {
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
}
