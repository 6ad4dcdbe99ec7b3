//! The lawful-sharing policy and the protocol register over real mTLS: representative allows and
//! denials per authority, the protocol lifecycle, over-disclosure, proactive disclosure.

use crate::common;

use common::{TestEnv, on_both_engines};
use infoshare_certs_dev::Role;
use infoshare_client::api::{
    self, MessageKind, ProtocolStateChange, ProtocolStatus, RequestStatus,
};
use infoshare_client::{ClientError, RpcError};
use infoshare_tests::{sample_disclosure, sample_request};
use tonic::Code;

fn rpc_error<T: std::fmt::Debug>(r: Result<T, ClientError>) -> RpcError {
    match r {
        Err(ClientError::Rpc(e)) => *e,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

fn assert_denied(e: &RpcError, code: Code, reason: &str, rule: &str) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.reason.as_deref(), Some(reason), "{e}");
    assert_eq!(e.rule.as_deref(), Some(rule), "{e}");
    assert!(!e.message.is_empty());
}

fn s20_request(to: &str, category: &str) -> api::InformationRequest {
    api::InformationRequest {
        recipient_agency_id: to.into(),
        authority: api::LegalAuthority::FvaS20 as i32,
        protocol_id: "family-harm-sam".into(),
        purpose: "fv-safety-plan".into(),
        subject: Some(api::Subject {
            family_name: "Walker".into(),
            given_names: "Hine".into(),
            date_of_birth: "1991-07-09".into(),
            identifiers: vec![],
        }),
        categories: vec![category.into()],
        reason: "SAM table tomorrow: current safety plan needed.".into(),
        urgency: api::Urgency::ImmediateSafety as i32,
        classification: api::Classification::InConfidence as i32,
        consultation: None,
        staff_id: "fhc-12".into(),
    }
}

async fn s66c_allows_a_lawful_request_and_denies_by_rule(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;

    police
        .submit_request(sample_request("rangitoto-school-board"), "ok-1")
        .await
        .unwrap();

    let mut adult = sample_request("rangitoto-school-board");
    adult.subject.as_mut().unwrap().date_of_birth = "1990-02-03".into();
    let e = rpc_error(police.submit_request(adult, "adult-1").await);
    assert_denied(
        &e,
        Code::PermissionDenied,
        "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON",
        "subject.child_or_young_person",
    );

    let unconsulted = api::InformationRequest {
        consultation: None,
        ..sample_request("rangitoto-school-board")
    };
    let e = rpc_error(police.submit_request(unconsulted, "nc-1").await);
    assert_denied(
        &e,
        Code::FailedPrecondition,
        "CONSULTATION_RECORD_MISSING",
        "consultation.recorded",
    );

    // Health NZ is not a party to the youth re-engagement protocol.
    let health = server.agency(&env, "health-nz").await;
    let e = rpc_error(
        health
            .submit_request(sample_request("rangitoto-school-board"), "hp-1")
            .await,
    );
    assert_denied(&e, Code::PermissionDenied, "NOT_A_PARTY", "party.requester");

    // Denials change nothing: the school received only the lawful request.
    assert_eq!(
        school.list_inbox(0, 100, false).await.unwrap().items.len(),
        1
    );
}

async fn s20_allows_family_harm_sharing_with_an_ngo_and_denies_what_it_does_not_share(
    env: TestEnv,
) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ngo = server.agency(&env, "safe-homes-trust").await;

    let sent = police
        .submit_request(s20_request("safe-homes-trust", "safety-plan"), "s20-1")
        .await
        .unwrap();
    let plan = api::InformationResponse {
        decision: api::Decision::Disclose as i32,
        items: vec![api::DisclosedItem {
            category: "safety-plan".into(),
            classification: api::Classification::InConfidence as i32,
            content: "Safety plan reviewed today; advocate assigned.".into(),
        }],
        staff_id: "advocate-3".into(),
        ..Default::default()
    };
    ngo.respond(&sent.request_id, plan).await.unwrap();
    let detail = police.get_request(&sent.request_id).await.unwrap();
    assert_eq!(detail.status, RequestStatus::Responded as i32);

    let e = rpc_error(
        police
            .submit_request(
                s20_request("safe-homes-trust", "family-harm-history"),
                "s20-2",
            )
            .await,
    );
    assert_denied(
        &e,
        Code::PermissionDenied,
        "CATEGORY_NOT_SHAREABLE",
        "category.shareable",
    );

    // The NGO is a family violence agency, not a child welfare and protection agency: it is no
    // party to the s66C protocols.
    let e = rpc_error(
        ngo.submit_request(sample_request("rangitoto-school-board"), "s66c-ngo")
            .await,
    );
    assert_denied(&e, Code::PermissionDenied, "NOT_A_PARTY", "party.requester");
}

async fn a_response_that_over_discloses_is_refused(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let request = api::InformationRequest {
        categories: vec!["attendance".into()],
        ..sample_request("rangitoto-school-board")
    };
    let sent = police.submit_request(request, "od-1").await.unwrap();

    let mut over = sample_disclosure();
    over.items.push(api::DisclosedItem {
        category: "learning-support".into(),
        classification: api::Classification::InConfidence as i32,
        content: "Receives teacher-aide support 5 hours a week.".into(),
    });
    let e = rpc_error(school.respond(&sent.request_id, over).await);
    assert_denied(
        &e,
        Code::PermissionDenied,
        "DISCLOSURE_NOT_REQUESTED",
        "response.only_requested",
    );

    let mut above = sample_disclosure();
    above.items[0].classification = api::Classification::Sensitive as i32;
    let e = rpc_error(school.respond(&sent.request_id, above).await);
    assert_denied(
        &e,
        Code::PermissionDenied,
        "CLASSIFICATION_ABOVE_PROTOCOL",
        "classification.within_protocol",
    );

    let mut unreasoned = sample_disclosure();
    unreasoned.explanation.clear();
    let e = rpc_error(school.respond(&sent.request_id, unreasoned).await);
    assert_denied(
        &e,
        Code::FailedPrecondition,
        "DECLINE_REASON_MISSING",
        "response.decline_reasoned",
    );

    // Nothing was answered by the refusals; a lawful answer still goes through, once.
    assert_eq!(
        police.get_request(&sent.request_id).await.unwrap().status,
        RequestStatus::Submitted as i32
    );
    school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    assert!(police.list_inbox(0, 10, false).await.unwrap().items.len() == 1);
}

async fn protocol_lifecycle_controls_what_may_be_shared(env: TestEnv) {
    let server = env.start().await;
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let officer = server.client(&env, Role::Admin, "privacy-officer").await;
    let police = server.agency(&env, "police").await;

    // Suspended: no new requests. Resumed: sharing again. Revoked: never again.
    let suspended = admin
        .change_protocol_state("youth-reengagement", ProtocolStateChange::Suspend)
        .await
        .unwrap();
    assert_eq!(
        suspended.protocol.unwrap().status,
        ProtocolStatus::Suspended as i32
    );
    let e = rpc_error(
        police
            .submit_request(sample_request("rangitoto-school-board"), "l-1")
            .await,
    );
    assert_denied(
        &e,
        Code::FailedPrecondition,
        "PROTOCOL_SUSPENDED",
        "protocol.in_force",
    );
    admin
        .change_protocol_state("youth-reengagement", ProtocolStateChange::Resume)
        .await
        .unwrap();
    police
        .submit_request(sample_request("rangitoto-school-board"), "l-2")
        .await
        .unwrap();
    admin
        .change_protocol_state("youth-reengagement", ProtocolStateChange::Revoke)
        .await
        .unwrap();
    let e = rpc_error(
        police
            .submit_request(sample_request("rangitoto-school-board"), "l-3")
            .await,
    );
    assert_denied(
        &e,
        Code::FailedPrecondition,
        "PROTOCOL_REVOKED",
        "protocol.in_force",
    );
    let e = rpc_error(
        admin
            .change_protocol_state("youth-reengagement", ProtocolStateChange::Resume)
            .await,
    );
    assert_eq!(e.reason.as_deref(), Some("PROTOCOL_STATE_CONFLICT"));

    // A new version: the admin who registered it cannot approve it; another can. The approved
    // version supersedes the old one and is immutable.
    let v2 = infoshare_server::protocol::model::EXAMPLES[1]
        .replace("version = 1", "version = 2")
        .replace("retention_days = 730", "retention_days = 365");
    let draft = admin
        .register_protocol(&v2)
        .await
        .unwrap()
        .protocol
        .unwrap();
    assert_eq!(
        (draft.version, draft.status),
        (2, ProtocolStatus::Draft as i32)
    );
    let e = rpc_error(
        admin
            .approve_protocol("attendance", 2, "Chief Privacy Officer")
            .await,
    );
    assert_eq!(
        (e.code, e.reason.as_deref()),
        (Code::FailedPrecondition, Some("APPROVER_IS_REGISTRANT"))
    );
    let approved = officer
        .approve_protocol("attendance", 2, "Chief Privacy Officer")
        .await
        .unwrap();
    assert_eq!(
        approved.protocol.unwrap().status,
        ProtocolStatus::Active as i32
    );
    let v1 = officer
        .get_protocol("attendance", 1)
        .await
        .unwrap()
        .protocol
        .unwrap();
    assert_eq!(v1.status, ProtocolStatus::Superseded as i32);
    let e = rpc_error(admin.register_protocol(&v2).await);
    assert_eq!(e.reason.as_deref(), Some("PROTOCOL_VERSION_CONFLICT"));

    // Past its review date a protocol authorises nothing.
    let overdue = infoshare_server::protocol::model::EXAMPLES[1]
        .replace("id = \"attendance\"", "id = \"attendance-2019\"")
        .replace(
            "review_date = \"2027-06-30\"",
            "review_date = \"2020-06-30\"",
        );
    admin.register_protocol(&overdue).await.unwrap();
    let listed = officer
        .approve_protocol("attendance-2019", 1, "Chief Privacy Officer")
        .await
        .unwrap();
    assert_eq!(
        listed.protocol.unwrap().status,
        ProtocolStatus::ReviewOverdue as i32
    );
    let education = server.agency(&env, "education").await;
    let request = api::InformationRequest {
        protocol_id: "attendance-2019".into(),
        purpose: "identify-supports".into(),
        categories: vec!["attendance".into()],
        ..sample_request("rangitoto-school-board")
    };
    let e = rpc_error(education.submit_request(request.clone(), "ov-1").await);
    assert_denied(
        &e,
        Code::FailedPrecondition,
        "PROTOCOL_REVIEW_OVERDUE",
        "protocol.review_current",
    );
    // The same request under the current attendance protocol is lawful.
    let current = api::InformationRequest {
        protocol_id: "attendance".into(),
        ..request
    };
    education.submit_request(current, "ov-2").await.unwrap();

    // Bad documents are refused naming the field; agencies cannot change the register.
    let bad = infoshare_server::protocol::model::EXAMPLES[2]
        .replace("agency = \"corrections\"", "agency = \"nobody\"");
    let e = rpc_error(admin.register_protocol(&bad).await);
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.field.as_deref().unwrap().starts_with("document.party["),
        "{e}"
    );
    let e = rpc_error(police.register_protocol(&v2).await);
    assert_eq!(
        (e.code, e.reason.as_deref()),
        (Code::PermissionDenied, Some("ROLE_NOT_ALLOWED"))
    );
}

async fn agencies_see_the_protocols_they_are_party_to(env: TestEnv) {
    let server = env.start().await;
    let ngo = server.agency(&env, "safe-homes-trust").await;
    let ids: Vec<String> = ngo
        .list_protocols()
        .await
        .unwrap()
        .protocols
        .into_iter()
        .map(|p| p.protocol_id)
        .collect();
    assert_eq!(ids, vec!["family-harm-sam"]);
    let sam = ngo.get_protocol("family-harm-sam", 0).await.unwrap();
    assert!(sam.document_toml.contains("SAM table"));
    assert_eq!(sam.protocol.unwrap().approved_by, "privacy-officer");
    let e = rpc_error(ngo.get_protocol("youth-reengagement", 0).await);
    assert_eq!(e.code, Code::NotFound);
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    assert_eq!(auditor.list_protocols().await.unwrap().protocols.len(), 3);
}

async fn proactive_disclosure_is_checked_delivered_and_acknowledged(env: TestEnv) {
    let server = env.start().await;
    let ot = server.agency(&env, "oranga-tamariki").await;
    let police = server.agency(&env, "police").await;
    let disclosure = infoshare_tests::sample_proactive_disclosure();
    let sent = ot.disclose(disclosure.clone(), "d-1").await.unwrap();
    assert!(
        ot.disclose(disclosure.clone(), "d-1")
            .await
            .unwrap()
            .replayed
    );

    let inbox = police.list_inbox(0, 10, false).await.unwrap();
    assert_eq!(inbox.items.len(), 1);
    let item = &inbox.items[0];
    assert_eq!(item.kind, MessageKind::Disclosure as i32);
    assert_eq!(item.disclosure.as_ref().unwrap(), &disclosure);
    let e = rpc_error(police.respond(&sent.request_id, sample_disclosure()).await);
    assert_eq!(
        (e.code, e.reason.as_deref()),
        (Code::FailedPrecondition, Some("NOT_A_REQUEST"))
    );
    police
        .acknowledge(&sent.request_id, MessageKind::Disclosure)
        .await
        .unwrap();
    let detail = ot.get_request(&sent.request_id).await.unwrap();
    assert_eq!(detail.status, RequestStatus::Completed as i32);
    assert_eq!(detail.disclosure.unwrap(), disclosure);

    // Above the school's clearance (SENSITIVE > IN-CONFIDENCE): refused.
    let to_school = api::ProactiveDisclosure {
        recipient_agency_id: "rangitoto-school-board".into(),
        ..disclosure
    };
    let e = rpc_error(ot.disclose(to_school, "d-2").await);
    assert_denied(
        &e,
        Code::PermissionDenied,
        "CLASSIFICATION_ABOVE_CLEARANCE",
        "classification.within_recipient_clearance",
    );
}

// The cases above that take a `TestEnv`, each on the embedded and PostgreSQL engines.
on_both_engines!(s66c_allows_a_lawful_request_and_denies_by_rule);
on_both_engines!(s20_allows_family_harm_sharing_with_an_ngo_and_denies_what_it_does_not_share);
on_both_engines!(a_response_that_over_discloses_is_refused);
on_both_engines!(protocol_lifecycle_controls_what_may_be_shared);
on_both_engines!(agencies_see_the_protocols_they_are_party_to);
on_both_engines!(proactive_disclosure_is_checked_delivered_and_acknowledged);
