//! Audit queries as values: the conditions an auditor sets ([`Filter`]), whether a record meets
//! them, which audit indexes hold the candidates, and what the log records of the query itself
//! (identifiers only as pseudonyms). The shell runs them over the views and proves each result.

use crate::crypto::Pseudonym;
use crate::domain::{Authority, Decision};
use crate::records::{AuditQueried, Event, HoldTarget, ProtocolEvent, Record};
use crate::views::audit_index;

/// Conditions on records; all that are set must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these subject pseudonyms.
    pub subjects: Vec<Pseudonym>,
    /// The agency acted or was the other party.
    pub agency: Option<String>,
    /// The staff member (pseudonym).
    pub staff: Option<Pseudonym>,
    /// The protocol id an exchange was made under.
    pub protocol: Option<String>,
    /// The legal authority relied on.
    pub authority: Option<Authority>,
    /// The purpose code.
    pub purpose: Option<String>,
    /// A category requested or disclosed.
    pub category: Option<String>,
    /// The event type code.
    pub event: Option<u8>,
    /// disclose, partial-disclose, decline or denied.
    pub decision: Option<String>,
    /// At or after (Unix ms).
    pub since_ms: Option<u64>,
    /// Before (Unix ms).
    pub until_ms: Option<u64>,
}

/// Which kind of audit query (the code logged in AuditQueried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// QueryRecords.
    Query = 1,
    /// SubjectTimeline.
    Timeline = 2,
    /// ExportBundle.
    Export = 3,
    /// GetRecords.
    Range = 4,
    /// ListLegalHolds.
    Holds = 5,
}

/// What a record is about, as the filters see it: requests, answers and disclosures alike name
/// their protocol, authority, purpose and categories.
struct About<'a> {
    subjects: &'a [Pseudonym],
    staff: Option<&'a Pseudonym>,
    protocol: Option<&'a str>,
    authority: Option<Authority>,
    purpose: Option<&'a str>,
    categories: Box<dyn Iterator<Item = &'a str> + 'a>,
}

impl<'a> About<'a> {
    fn of(r: &'a Record) -> Self {
        let none = || -> Box<dyn Iterator<Item = &'a str> + 'a> { Box::new(std::iter::empty()) };
        let nonempty = |s: &'a String| (!s.is_empty()).then_some(s.as_str());
        match &r.event {
            Event::RequestSubmitted(x) => About {
                subjects: &x.subjects,
                staff: Some(&x.staff),
                protocol: Some(&x.protocol_id),
                authority: Some(x.authority),
                purpose: Some(&x.purpose),
                categories: Box::new(x.categories.iter().map(String::as_str)),
            },
            Event::DisclosureSubmitted(x) => About {
                subjects: &x.subjects,
                staff: Some(&x.staff),
                protocol: Some(&x.protocol_id),
                authority: Some(x.authority),
                purpose: Some(&x.purpose),
                categories: Box::new(x.disclosed.iter().map(|(c, _)| c.as_str())),
            },
            Event::UpdateSubmitted(x) => About {
                subjects: &x.subjects,
                staff: Some(&x.staff),
                protocol: Some(&x.protocol_id),
                authority: Some(x.authority),
                purpose: Some(&x.purpose),
                categories: Box::new(x.disclosed.iter().map(|(c, _)| c.as_str())),
            },
            Event::RequestWithdrawn(x) => About {
                subjects: &[],
                staff: Some(&x.staff),
                protocol: None,
                authority: None,
                purpose: None,
                categories: none(),
            },
            Event::ResponseSubmitted(x) => About {
                subjects: &[],
                staff: Some(&x.staff),
                protocol: nonempty(&x.protocol_id),
                authority: x.authority,
                purpose: nonempty(&x.purpose),
                categories: Box::new(x.disclosed.iter().map(|(c, _)| c.as_str())),
            },
            Event::Denied(d) => About {
                subjects: &d.subjects,
                staff: None,
                protocol: None,
                authority: None,
                purpose: None,
                categories: none(),
            },
            Event::Protocol(
                ProtocolEvent::Registered { protocol_id, .. }
                | ProtocolEvent::Approved { protocol_id, .. }
                | ProtocolEvent::StateChanged { protocol_id, .. },
            ) => About {
                subjects: &[],
                staff: None,
                protocol: Some(protocol_id),
                authority: None,
                purpose: None,
                categories: none(),
            },
            Event::LegalHoldPlaced(HoldTarget::Subject(s))
            | Event::LegalHoldReleased(HoldTarget::Subject(s)) => About {
                subjects: std::slice::from_ref(s),
                staff: None,
                protocol: None,
                authority: None,
                purpose: None,
                categories: none(),
            },
            _ => About {
                subjects: &[],
                staff: None,
                protocol: None,
                authority: None,
                purpose: None,
                categories: none(),
            },
        }
    }
}

fn counterpart(r: &Record) -> Option<&str> {
    match &r.event {
        Event::RequestSubmitted(x) => Some(&x.recipient),
        Event::DisclosureSubmitted(x) => Some(&x.recipient),
        Event::UpdateSubmitted(x) => Some(&x.recipient),
        Event::ResponseSubmitted(x) => Some(&x.requester),
        _ => None,
    }
}

/// The decision a record states, if any.
pub fn decision_of(r: &Record) -> Option<&'static str> {
    match &r.event {
        Event::ResponseSubmitted(x) => Some(x.decision.as_str()),
        Event::DisclosureSubmitted(_) => Some(Decision::Disclose.as_str()),
        Event::Denied(_) => Some("denied"),
        _ => None,
    }
}

impl Filter {
    /// Whether `r` meets every condition.
    pub fn matches(&self, r: &Record) -> bool {
        let mut about = About::of(r);
        (self.subjects.is_empty() || about.subjects.iter().any(|s| self.subjects.contains(s)))
            && self
                .agency
                .as_deref()
                .is_none_or(|a| r.actor.id == a || counterpart(r) == Some(a))
            && self.staff.is_none_or(|s| about.staff == Some(&s))
            && self
                .protocol
                .as_deref()
                .is_none_or(|p| about.protocol == Some(p))
            && self.authority.is_none_or(|a| about.authority == Some(a))
            && self
                .purpose
                .as_deref()
                .is_none_or(|p| about.purpose == Some(p))
            && self
                .category
                .as_deref()
                .is_none_or(|c| about.categories.any(|x| x == c))
            && self.event.is_none_or(|e| r.event.code() == e)
            && self
                .decision
                .as_deref()
                .is_none_or(|d| decision_of(r) == Some(d))
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
            && self.until_ms.is_none_or(|t| r.time_ms < t)
    }

    /// The audit index prefixes whose union holds every match (the most selective condition's;
    /// every condition is still checked on each candidate); `None` when only a scan of every
    /// record will do.
    pub fn index_prefixes(&self) -> Option<Vec<Vec<u8>>> {
        Some(if !self.subjects.is_empty() {
            self.subjects.iter().map(audit_index::subject).collect()
        } else if let Some(s) = &self.staff {
            vec![audit_index::staff(s)]
        } else if let Some(a) = &self.agency {
            vec![audit_index::agency(a)]
        } else if let Some(p) = &self.protocol {
            vec![audit_index::protocol(p)]
        } else if let Some(e) = self.event {
            vec![audit_index::event(e)]
        } else {
            return None;
        })
    }

    /// The AuditQueried event that logs this query of `kind`, which returned `result_count`.
    pub fn logged(&self, kind: QueryKind, result_count: usize) -> AuditQueried {
        AuditQueried {
            query: kind as u8,
            subjects: self.subjects.clone(),
            agency: self.agency.clone().unwrap_or_default(),
            staff: self.staff,
            protocol_id: self.protocol.clone().unwrap_or_default(),
            authority: self.authority,
            event: self.event.unwrap_or(0),
            decision: self.decision.clone().unwrap_or_default(),
            since_ms: self.since_ms.unwrap_or(0),
            until_ms: self.until_ms.unwrap_or(0),
            result_count: result_count.min(u32::MAX as usize) as u32,
            purpose: self.purpose.clone().unwrap_or_default(),
            category: self.category.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{all_kinds, submitted};

    fn only(filter: Filter) -> Vec<&'static str> {
        all_kinds()
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| crate::records::event_name(r.event.code()))
            .collect()
    }

    #[test]
    fn requests_answers_and_disclosures_are_matched_alike() {
        // The subject is named by the opening record (and a subject's holds and refusals).
        let by_subject = only(Filter {
            subjects: vec![[3; 32]],
            ..Filter::default()
        });
        assert!(by_subject.contains(&"request-submitted"), "{by_subject:?}");
        assert!(
            !by_subject.contains(&"response-submitted"),
            "{by_subject:?}"
        );
        // A category: asked for in the request, disclosed in the answer.
        let attendance = only(Filter {
            category: Some("attendance".into()),
            ..Filter::default()
        });
        assert!(attendance.contains(&"request-submitted"), "{attendance:?}");
        assert!(attendance.contains(&"response-submitted"), "{attendance:?}");
        assert!(
            only(Filter {
                category: Some("no-such-category".into()),
                ..Filter::default()
            })
            .is_empty()
        );
        // The agency acted, or was the counterpart.
        let counterpart = only(Filter {
            agency: Some("oranga-tamariki".into()),
            ..Filter::default()
        });
        // (Two requests to Oranga Tamariki: the second sends the first on.)
        assert_eq!(counterpart, ["request-submitted", "request-submitted"]);
        let decision = only(Filter {
            decision: Some("partial-disclose".into()),
            ..Filter::default()
        });
        assert_eq!(decision, ["response-submitted"]);
    }

    #[test]
    fn every_condition_set_must_hold_and_times_are_half_open() {
        let r = submitted(1);
        let at = r.time_ms;
        let window = |since, until| Filter {
            since_ms: Some(since),
            until_ms: Some(until),
            ..Filter::default()
        };
        assert!(window(at, at + 1).matches(&r));
        assert!(!window(at + 1, at + 2).matches(&r));
        assert!(!window(at - 1, at).matches(&r));
        let both = Filter {
            subjects: vec![[2; 32]],
            purpose: Some("support-plan".into()),
            ..Filter::default()
        };
        assert!(
            !both.matches(&r),
            "the subject matches but the purpose does not"
        );
    }

    #[test]
    fn the_most_selective_index_is_scanned() {
        let f = Filter {
            subjects: vec![[2; 32], [3; 32]],
            agency: Some("police".into()),
            ..Filter::default()
        };
        assert_eq!(
            f.index_prefixes(),
            Some(vec![
                audit_index::subject(&[2; 32]),
                audit_index::subject(&[3; 32])
            ])
        );
        let f = Filter {
            agency: Some("police".into()),
            ..Filter::default()
        };
        assert_eq!(
            f.index_prefixes(),
            Some(vec![audit_index::agency("police")])
        );
        assert_eq!(Filter::default().index_prefixes(), None);
        let logged = f.logged(QueryKind::Query, 7);
        assert_eq!((logged.agency.as_str(), logged.result_count), ("police", 7));
    }
}
