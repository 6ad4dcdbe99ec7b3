//! Fixtures for the tests of the whole broker:
//! - sample requests and responses (this file), shared by both kinds of test;
//! - [`in_process`]: a broker in this process on the in-memory engine (`tests/in_process.rs`);
//! - [`pg_cluster`]: a throwaway PostgreSQL cluster, for the tests that run on that engine;
//! - the end-to-end harness, `tests/e2e/common`, which starts real servers as processes (it needs
//!   the path of the binary under test, so it lives beside the tests, in the one `e2e` binary).

use infoshare_client::api;

pub mod in_process;
pub mod pg_cluster;

/// What `agency` shares under the youth re-engagement example protocol.
pub fn categories_of(agency: &str) -> Vec<String> {
    let c: &[&str] = match agency {
        "education" | "rangitoto-school-board" => &["attendance", "learning-support"],
        "oranga-tamariki" => &["care-status"],
        "msd" => &["youth-service-enrolment"],
        "police" => &["youth-offending-history"],
        "te-whare-awhina" => &["mentoring-engagement"],
        // Not a party: ask for something anyway (the broker refuses it).
        _ => &["attendance"],
    };
    c.iter().map(|s| s.to_string()).collect()
}

/// The classification the youth re-engagement protocol sets for the highest category `agency`
/// shares there (a request is labelled at least that).
pub fn classification_of(agency: &str) -> api::Classification {
    match agency {
        "oranga-tamariki" | "police" => api::Classification::Sensitive,
        _ => api::Classification::InConfidence,
    }
}

/// A lawful s66C request to `to` under the youth re-engagement example protocol (purpose
/// `support-plan`, which every party may request for), asking for what `to` shares.
pub fn sample_request(to: &str) -> api::InformationRequest {
    api::InformationRequest {
        recipient_agency_id: to.to_string(),
        authority: api::LegalAuthority::OtaS66c as i32,
        protocol_id: "youth-reengagement".into(),
        purpose: "support-plan".into(),
        subject: Some(api::Subject {
            family_name: "Ngata".into(),
            given_names: "Aroha Mere".into(),
            date_of_birth: "2012-03-04".into(),
            identifiers: vec![api::AgencyIdentifier {
                scheme: "nhi".into(),
                value: "ZZZ0016".into(),
            }],
        }),
        categories: categories_of(to),
        reason: "Aroha has not attended school for three weeks; the youth re-engagement meeting \
                 needs her attendance and learning support history."
            .into(),
        urgency: api::Urgency::Priority as i32,
        classification: classification_of(to) as i32,
        consultation: Some(api::ConsultationRecord {
            status: api::ConsultationStatus::NotConsulted as i32,
            reason_not_consulted: "Whānau advised that contact now could escalate risk.".into(),
        }),
        staff_id: "constable-4821".into(),
    }
}

/// The record of a young person consulted before their information was shared.
pub fn consulted() -> api::ConsultationRecord {
    api::ConsultationRecord {
        status: api::ConsultationStatus::Consulted as i32,
        reason_not_consulted: String::new(),
    }
}

/// A school's partial disclosure: attendance disclosed, learning support withheld.
pub fn sample_disclosure() -> api::InformationResponse {
    api::InformationResponse {
        decision: api::Decision::PartialDisclose as i32,
        items: vec![api::DisclosedItem {
            category: "attendance".into(),
            classification: api::Classification::InConfidence as i32,
            content: "Attendance 41% this term; 9 unjustified absences.".into(),
        }],
        decline_ground: api::DeclineGround::NotHeld as i32,
        explanation: "We hold no learning support records for Aroha.".into(),
        staff_id: "attendance-officer-7".into(),
        consultation: Some(consulted()),
        referred_agency_id: String::new(),
    }
}

/// The first records of one event type (`bodies-purged`, `log-key-rotated`…), as an auditor
/// queries them.
pub async fn records_of_event(
    auditor: &infoshare_client::Client,
    event_type: &str,
) -> api::AuditRecordsResponse {
    let filter = api::AuditFilter {
        event_type: event_type.into(),
        ..Default::default()
    };
    auditor.audit_query(filter, 0, 10).await.unwrap()
}

/// Oranga Tamariki's lawful proactive disclosure to Police of Aroha's care status, under the
/// youth re-engagement example protocol (purpose `assess-risk`).
pub fn sample_proactive_disclosure() -> api::ProactiveDisclosure {
    api::ProactiveDisclosure {
        recipient_agency_id: "police".into(),
        authority: api::LegalAuthority::OtaS66c as i32,
        protocol_id: "youth-reengagement".into(),
        purpose: "assess-risk".into(),
        subject: sample_request("police").subject,
        items: vec![api::DisclosedItem {
            category: "care-status".into(),
            classification: api::Classification::Sensitive as i32,
            content: "In care since March.".into(),
        }],
        reason: "Risk assessment ahead of the meeting.".into(),
        consultation: Some(consulted()),
        staff_id: "sw-88".into(),
    }
}
