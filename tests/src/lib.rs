//! Shared fixtures for the end-to-end tests: sample requests and responses. The server harness
//! itself is in `tests/common` because it needs the path of the binary under test.

use infoshare_client::api;

/// A well-formed s66C request from the caller to `to`.
pub fn sample_request(to: &str) -> api::InformationRequest {
    api::InformationRequest {
        recipient_agency_id: to.to_string(),
        authority: api::LegalAuthority::OtaS66c as i32,
        protocol_id: "youth-reengagement".into(),
        purpose: "assess-risk".into(),
        subject: Some(api::Subject {
            family_name: "Ngata".into(),
            given_names: "Aroha Mere".into(),
            date_of_birth: "2012-03-04".into(),
            identifiers: vec![api::AgencyIdentifier {
                scheme: "nhi".into(),
                value: "ZZZ0016".into(),
            }],
        }),
        categories: vec!["attendance".into(), "learning-support".into()],
        reason: "Aroha has not attended school for three weeks; the youth re-engagement meeting \
                 needs her attendance and learning support history."
            .into(),
        urgency: api::Urgency::Priority as i32,
        classification: api::Classification::InConfidence as i32,
        consultation: Some(api::ConsultationRecord {
            status: api::ConsultationStatus::NotConsulted as i32,
            reason_not_consulted: "Whānau advised that contact now could escalate risk.".into(),
        }),
        staff_id: "constable-4821".into(),
    }
}

/// A disclosure of the attendance category.
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
        consultation: Some(api::ConsultationRecord {
            status: api::ConsultationStatus::Consulted as i32,
            reason_not_consulted: String::new(),
        }),
    }
}
