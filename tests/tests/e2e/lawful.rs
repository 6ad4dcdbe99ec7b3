//! Lawful-sharing correctness, end to end over mTLS: each class of defect a careful privacy
//! officer finds (`../shared/domain.md` §5), tried against a real broker.

use crate::common;

use common::TestEnv;
use infoshare_certs_dev::Role;
use infoshare_client::{Client, ClientError, RpcError, api};
use infoshare_server::protocol::model::EXAMPLES;
use infoshare_tests::{sample_disclosure, sample_request};
use tonic::Code;

fn rpc_error<T: std::fmt::Debug>(r: Result<T, ClientError>) -> RpcError {
    match r {
        Err(ClientError::Rpc(e)) => *e,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

/// Asserts a refusal's code, reason and rule.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>, code: Code, reason: &str, rule: &str) {
    let e = rpc_error(r);
    assert_eq!(
        (e.code, e.reason.as_deref(), e.rule.as_deref()),
        (code, Some(reason), Some(rule)),
        "{e}"
    );
    assert!(e.receipt.is_some(), "a refused attempt is logged: {e}");
}

/// Asserts bad input naming `field`.
fn invalid<T: std::fmt::Debug>(r: Result<T, ClientError>, field: &str) {
    let e = rpc_error(r);
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert_eq!(e.field.as_deref(), Some(field), "{e}");
}

async fn inbox_len(client: &Client) -> usize {
    client.list_inbox(0, 100, false).await.unwrap().items.len()
}

/// Summaries of the records an auditor's filter finds.
async fn query(auditor: &Client, filter: api::AuditFilter) -> Vec<api::RecordSummary> {
    auditor
        .audit_query(filter, 0, 500)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.summary.unwrap())
        .collect()
}

async fn of_event(auditor: &Client, event_type: &str) -> Vec<api::RecordSummary> {
    let filter = api::AuditFilter {
        event_type: event_type.into(),
        ..Default::default()
    };
    query(auditor, filter).await
}

/// A proactive disclosure by Oranga Tamariki of care status under the youth re-engagement
/// protocol.
fn care_status_disclosure(to: &str, label: api::Classification) -> api::ProactiveDisclosure {
    let request = sample_request("oranga-tamariki");
    api::ProactiveDisclosure {
        recipient_agency_id: to.into(),
        authority: api::LegalAuthority::OtaS66c as i32,
        protocol_id: "youth-reengagement".into(),
        purpose: "support-plan".into(),
        subject: request.subject,
        items: vec![api::DisclosedItem {
            category: "care-status".into(),
            classification: label as i32,
            content: "In care under s101; social worker allocated.".into(),
        }],
        reason: "The school needs to know a plan is in place.".into(),
        consultation: request.consultation,
        staff_id: "sw-12".into(),
    }
}

/// Unix ms of a UTC date and hour.
fn utc_ms(y: i32, m: u8, d: u8, h: u8) -> u64 {
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    (date
        .with_hms(h, 0, 0)
        .unwrap()
        .assume_utc()
        .unix_timestamp()
        * 1000) as u64
}

#[tokio::test]
async fn classification_is_the_protocols_not_only_the_senders_label() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ot = server.agency(&env, "oranga-tamariki").await;
    let school = server.agency(&env, "rangitoto-school-board").await;

    // Care status is SENSITIVE in the protocol: a disclosure labelled IN-CONFIDENCE to a school
    // cleared only to IN-CONFIDENCE is refused, and so is one labelled honestly.
    let label_low =
        care_status_disclosure("rangitoto-school-board", api::Classification::InConfidence);
    refused(
        ot.disclose(label_low, "d-1").await,
        Code::PermissionDenied,
        "CLASSIFICATION_BELOW_PROTOCOL",
        "classification.not_below_protocol",
    );
    let honest = care_status_disclosure("rangitoto-school-board", api::Classification::Sensitive);
    refused(
        ot.disclose(honest, "d-2").await,
        Code::PermissionDenied,
        "CLASSIFICATION_ABOVE_CLEARANCE",
        "classification.within_recipient_clearance",
    );
    assert_eq!(inbox_len(&school).await, 0, "nothing reached the school");

    // A request about care status must be labelled at least SENSITIVE.
    let mut low = sample_request("oranga-tamariki");
    low.classification = api::Classification::InConfidence as i32;
    refused(
        police.submit_request(low, "r-1").await,
        Code::PermissionDenied,
        "CLASSIFICATION_BELOW_PROTOCOL",
        "classification.not_below_protocol",
    );
    // An answer labelled below the protocol's classification is refused; labelled at it, it goes.
    let sent = police
        .submit_request(sample_request("oranga-tamariki"), "r-2")
        .await
        .unwrap();
    let mut answer = api::InformationResponse {
        decision: api::Decision::Disclose as i32,
        items: vec![api::DisclosedItem {
            category: "care-status".into(),
            classification: api::Classification::InConfidence as i32,
            content: "In care.".into(),
        }],
        staff_id: "sw-3".into(),
        consultation: sample_disclosure().consultation,
        ..Default::default()
    };
    refused(
        ot.respond(&sent.request_id, answer.clone()).await,
        Code::PermissionDenied,
        "CLASSIFICATION_BELOW_PROTOCOL",
        "classification.not_below_protocol",
    );
    answer.items[0].classification = api::Classification::Sensitive as i32;
    ot.respond(&sent.request_id, answer).await.unwrap();
}

#[tokio::test]
async fn a_request_must_be_answerable_lawfully() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let msd = server.agency(&env, "msd").await;
    // Police may request for assess-risk, but MSD may share only for support-plan.
    let mut request = sample_request("msd");
    request.purpose = "assess-risk".into();
    refused(
        police.submit_request(request, "a-1").await,
        Code::PermissionDenied,
        "PURPOSE_NOT_PERMITTED",
        "purpose.recipient_may_share",
    );
    assert_eq!(
        inbox_len(&msd).await,
        0,
        "the subject's name, date of birth and the reason never reach MSD"
    );
}

#[tokio::test]
async fn reasons_and_names_must_say_something() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    type Blank = fn(&mut api::InformationRequest);
    let cases: [(&str, Blank); 4] = [
        ("request.reason", |r| r.reason = " ".into()),
        ("request.consultation.reason_not_consulted", |r| {
            r.consultation.as_mut().unwrap().reason_not_consulted = "   \u{200B}".into()
        }),
        ("request.subject.family_name", |r| {
            r.subject.as_mut().unwrap().family_name = "\u{3000}\u{200B} ".into()
        }),
        ("request.staff_id", |r| r.staff_id = "   ".into()),
    ];
    for (i, (field, blank)) in cases.iter().enumerate() {
        let mut request = sample_request("rangitoto-school-board");
        blank(&mut request);
        invalid(
            police.submit_request(request, &format!("b-{i}")).await,
            field,
        );
    }
    assert_eq!(inbox_len(&school).await, 0, "nothing was accepted");

    // Withholding explanations, and protocol documents, too.
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "b-ok")
        .await
        .unwrap();
    let mut decline = sample_disclosure();
    decline.decision = api::Decision::Decline as i32;
    decline.items.clear();
    decline.explanation = " \u{FEFF} ".into();
    invalid(
        school.respond(&sent.request_id, decline).await,
        "response.explanation",
    );
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let document = EXAMPLES[0].replace("version = 1", "version = 2").replace(
        "title = \"Youth re-engagement meeting (Police-led)\"",
        "title = \"\u{2060} \"",
    );
    invalid(admin.register_protocol(&document).await, "document.title");
}

#[tokio::test]
async fn the_law_runs_on_new_zealand_dates_in_both_seasons() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let dob = |request: &mut api::InformationRequest, d: &str| {
        request.subject.as_mut().unwrap().date_of_birth = d.into();
    };
    // 06:00 on the 15th in New Zealand is still the 14th in UTC: NZDT (UTC+13) in January,
    // NZST (UTC+12) in July.
    for (season, now, today, eighteen_today, eighteen_tomorrow) in [
        (
            "NZDT",
            utc_ms(2027, 1, 14, 17),
            "2027-01-15",
            "2009-01-15",
            "2009-01-16",
        ),
        (
            "NZST",
            utc_ms(2027, 7, 14, 18),
            "2027-07-15",
            "2009-07-15",
            "2009-07-16",
        ),
    ] {
        env.set_clock_at(now);
        let mut baby = sample_request("rangitoto-school-board");
        dob(&mut baby, today);
        police
            .submit_request(baby, &format!("{season}-baby"))
            .await
            .unwrap_or_else(|e| panic!("{season}: a baby born this morning in NZ: {e}"));
        let mut adult = sample_request("rangitoto-school-board");
        dob(&mut adult, eighteen_today);
        refused(
            police.submit_request(adult, &format!("{season}-18")).await,
            Code::PermissionDenied,
            "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON",
            "subject.child_or_young_person",
        );
        let mut seventeen = sample_request("rangitoto-school-board");
        dob(&mut seventeen, eighteen_tomorrow);
        police
            .submit_request(seventeen, &format!("{season}-17"))
            .await
            .unwrap_or_else(|e| panic!("{season}: 17 until NZ midnight: {e}"));
    }
    // The youth re-engagement protocol is due for review on 2027-11-30: at 23:00 NZDT that day
    // it still authorises sharing; at 06:00 NZDT the next day (still the 30th in UTC) it does not.
    env.set_clock_at(utc_ms(2027, 11, 30, 10));
    police
        .submit_request(sample_request("rangitoto-school-board"), "review-last-day")
        .await
        .unwrap();
    env.set_clock_at(utc_ms(2027, 11, 30, 17));
    refused(
        police
            .submit_request(sample_request("rangitoto-school-board"), "review-past")
            .await,
        Code::FailedPrecondition,
        "PROTOCOL_REVIEW_OVERDUE",
        "protocol.review_current",
    );
}

#[tokio::test]
async fn names_are_compared_as_people_mean_them() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let mut request = sample_request("rangitoto-school-board");
    let subject = request.subject.as_mut().unwrap();
    subject.family_name = "Tūhoe-Ngata".into();
    subject.given_names = "Ārani".into();
    subject.identifiers.clear();
    police.submit_request(request, "n-1").await.unwrap();
    // The auditor types the macrons decomposed, a fullwidth hyphen and a zero-width space.
    let filter = api::AuditFilter {
        subject: Some(api::SubjectQuery {
            family_name: "TU\u{0304}HOE\u{FF0D}Nga\u{200B}ta".into(),
            given_names: "A\u{0304}rani ".into(),
            date_of_birth: "2012-03-04".into(),
            identifier: None,
        }),
        event_type: "request-submitted".into(),
        ..Default::default()
    };
    assert_eq!(query(&auditor, filter).await.len(), 1);
}

#[tokio::test]
async fn disclose_means_everything_asked_for() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "x-1")
        .await
        .unwrap();
    // Asked for attendance and learning support; "disclose" of attendance alone is refused.
    let mut answer = sample_disclosure();
    answer.decision = api::Decision::Disclose as i32;
    answer.decline_ground = 0;
    answer.explanation.clear();
    refused(
        school.respond(&sent.request_id, answer.clone()).await,
        Code::PermissionDenied,
        "DISCLOSURE_INCOMPLETE",
        "response.disclose_covers_request",
    );
    answer.items.push(api::DisclosedItem {
        category: "learning-support".into(),
        classification: api::Classification::InConfidence as i32,
        content: "Teacher aide 10 h a week.".into(),
    });
    school.respond(&sent.request_id, answer).await.unwrap();
}

#[tokio::test]
async fn a_retry_returns_the_original_even_after_the_protocol_changed() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let first = police
        .submit_request(sample_request("rangitoto-school-board"), "i-1")
        .await
        .unwrap();
    admin
        .change_protocol_state("youth-reengagement", api::ProtocolStateChange::Suspend)
        .await
        .unwrap();
    let retry = police
        .submit_request(sample_request("rangitoto-school-board"), "i-1")
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(
        (retry.request_id.as_str(), retry.log_index),
        (first.request_id.as_str(), first.log_index)
    );
    // The same key for other content is a conflict, whatever the protocol's state.
    let mut other = sample_request("rangitoto-school-board");
    other.reason = "Another reason entirely.".into();
    let e = rpc_error(police.submit_request(other, "i-1").await);
    assert_eq!(e.reason.as_deref(), Some("IDEMPOTENCY_KEY_REUSED"), "{e}");
    // The log holds one acceptance and no suspension denial for the one act.
    assert_eq!(inbox_len(&school).await, 1);
    let denials = of_event(&auditor, "denied").await;
    assert!(
        denials
            .iter()
            .all(|d| d.reason_code != "PROTOCOL_SUSPENDED"),
        "{denials:?}"
    );
}

#[tokio::test]
async fn every_refused_attempt_is_audited_reads_included() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let health = server.agency(&env, "health-nz").await;
    let msd = server.agency(&env, "msd").await;
    let corrections = server.agency(&env, "corrections").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "v-1")
        .await
        .unwrap();
    let id = sent.request_id.as_str();
    let not_found = |r: Result<_, ClientError>| {
        let e = rpc_error::<()>(r);
        assert_eq!(
            (e.code, e.reason.as_deref()),
            (Code::NotFound, Some("NOT_FOUND"))
        );
        assert!(e.receipt.is_some(), "logged: {e}");
    };
    not_found(health.get_request(id).await.map(|_| ()));
    not_found(
        msd.acknowledge(id, api::MessageKind::Request)
            .await
            .map(|_| ()),
    );
    not_found(msd.respond(id, sample_disclosure()).await.map(|_| ()));
    not_found(
        corrections
            .get_protocol("youth-reengagement", 0)
            .await
            .map(|_| ()),
    );
    // The requester acknowledging its own request as if it were the recipient.
    let e = rpc_error(police.acknowledge(id, api::MessageKind::Request).await);
    assert_eq!(e.reason.as_deref(), Some("NOT_ADDRESSED_TO_CALLER"));

    let denials = of_event(&auditor, "denied").await;
    let ops: Vec<(&str, &str, &str)> = denials
        .iter()
        .map(|d| {
            (
                d.actor.as_str(),
                d.operation.as_str(),
                d.reason_code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("agency/health-nz", "GetRequest", "NOT_FOUND"),
            ("agency/msd", "Acknowledge", "NOT_FOUND"),
            ("agency/msd", "Respond", "NOT_FOUND"),
            ("agency/corrections", "GetProtocol", "NOT_FOUND"),
            ("agency/police", "Acknowledge", "NOT_ADDRESSED_TO_CALLER"),
        ]
    );
    // The auditor sees what was refused, and nothing that does not apply.
    let request = &of_event(&auditor, "request-submitted").await[0];
    for d in &denials {
        assert_eq!(d.authority, None, "{d:?}");
        assert_eq!(d.classification, None, "{d:?}");
        if d.operation != "GetProtocol" {
            assert_eq!(d.request_id, id);
            assert_eq!(
                d.subject_pseudonyms, request.subject_pseudonyms,
                "an attempt on an exchange names its subject"
            );
        }
    }
    // So the subject's timeline shows the refused attempts about them too.
    let timeline = auditor
        .subject_timeline(api::SubjectQuery {
            identifier: sample_request("x").subject.unwrap().identifiers.pop(),
            ..Default::default()
        })
        .await
        .unwrap();
    let denied_in_timeline = timeline
        .records
        .iter()
        .filter(|r| r.summary.as_ref().unwrap().event_type == "denied")
        .count();
    assert_eq!(denied_in_timeline, 4);
}

#[tokio::test]
async fn the_log_names_the_protocol_version_every_answer_was_judged_under() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let ot = server.agency(&env, "oranga-tamariki").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "p-1")
        .await
        .unwrap();
    // Version 2 is approved before the school answers: the answer is judged under version 2.
    server
        .register_and_approve(&env, &EXAMPLES[0].replace("version = 1", "version = 2"))
        .await;
    school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    ot.disclose(
        care_status_disclosure("police", api::Classification::Sensitive),
        "p-d",
    )
    .await
    .unwrap();
    let answer = &of_event(&auditor, "response-submitted").await[0];
    assert_eq!(
        (
            answer.protocol_id.as_str(),
            answer.protocol_version,
            answer.authority,
            answer.purpose.as_str()
        ),
        (
            "youth-reengagement",
            2,
            Some(api::LegalAuthority::OtaS66c as i32),
            "support-plan"
        )
    );
    assert_eq!(
        of_event(&auditor, "request-submitted").await[0].protocol_version,
        1
    );

    // Breach investigation: filters by protocol, authority, purpose and category find the
    // requests, the answers and the disclosures alike.
    let kinds = |records: Vec<api::RecordSummary>| {
        records
            .into_iter()
            .map(|r| r.event_type)
            .collect::<Vec<_>>()
    };
    let all = [
        "request-submitted",
        "response-submitted",
        "disclosure-submitted",
    ];
    let by_protocol = api::AuditFilter {
        protocol_id: "youth-reengagement".into(),
        decision: String::new(),
        ..Default::default()
    };
    let found = kinds(query(&auditor, by_protocol).await);
    for kind in all {
        assert!(
            found.iter().any(|k| k == kind),
            "{kind} by protocol: {found:?}"
        );
    }
    let by_authority = api::AuditFilter {
        authority: api::LegalAuthority::OtaS66c as i32,
        ..Default::default()
    };
    assert_eq!(kinds(query(&auditor, by_authority).await), all);
    let by_purpose = api::AuditFilter {
        purpose: "support-plan".into(),
        ..Default::default()
    };
    assert_eq!(kinds(query(&auditor, by_purpose).await), all);
    let by_category = api::AuditFilter {
        category: "attendance".into(),
        ..Default::default()
    };
    assert_eq!(
        kinds(query(&auditor, by_category).await),
        ["request-submitted", "response-submitted"]
    );
}

#[tokio::test]
async fn retention_serves_investigations() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    // A version that keeps bodies 30 days, so retention ends before the review date.
    server
        .register_and_approve(
            &env,
            &EXAMPLES[0]
                .replace("version = 1", "version = 2")
                .replace("retention_days = 365", "retention_days = 30"),
        )
        .await;
    let about = |family: &str, nhi: &str| {
        let mut r = sample_request("rangitoto-school-board");
        let s = r.subject.as_mut().unwrap();
        s.family_name = family.into();
        s.identifiers[0].value = nhi.into();
        r
    };
    let plain = police
        .submit_request(about("Tane", "AAA0001"), "h-1")
        .await
        .unwrap();
    let held = police
        .submit_request(about("Rewi", "AAA0002"), "h-2")
        .await
        .unwrap();
    let by_subject = police
        .submit_request(about("Moana", "AAA0003"), "h-3")
        .await
        .unwrap();

    let hold = |request_id: &str| api::LegalHoldRequest {
        request_id: request_id.into(),
        subject: None,
    };
    let placed = auditor
        .place_legal_hold(hold(&held.request_id))
        .await
        .unwrap();
    assert_eq!(placed.holds.len(), 1);
    let again = rpc_error(auditor.place_legal_hold(hold(&held.request_id)).await);
    assert_eq!(
        (again.code, again.reason.as_deref()),
        (Code::FailedPrecondition, Some("LEGAL_HOLD_CONFLICT"))
    );
    let subject_hold = api::LegalHoldRequest {
        request_id: String::new(),
        subject: Some(api::SubjectQuery {
            identifier: Some(api::AgencyIdentifier {
                scheme: "nhi".into(),
                value: "AAA0003".into(),
            }),
            ..Default::default()
        }),
    };
    auditor
        .place_legal_hold(subject_hold.clone())
        .await
        .unwrap();
    assert_eq!(auditor.legal_holds().await.unwrap().holds.len(), 2);
    assert!(
        police
            .get_request(&held.request_id)
            .await
            .unwrap()
            .legal_hold
    );
    assert!(
        police
            .get_request(&by_subject.request_id)
            .await
            .unwrap()
            .legal_hold
    );
    assert!(
        !police
            .get_request(&plain.request_id)
            .await
            .unwrap()
            .legal_hold
    );

    env.advance_clock(31);
    assert_eq!(admin.run_retention().await.unwrap().purged_exchanges, 1);
    // A request whose bodies were erased can no longer be answered.
    let e = rpc_error(school.respond(&plain.request_id, sample_disclosure()).await);
    assert_eq!(
        (e.code, e.reason.as_deref()),
        (Code::FailedPrecondition, Some("REQUEST_PURGED")),
        "{e}"
    );
    let kept = police.get_request(&held.request_id).await.unwrap();
    assert!(kept.request.is_some() && !kept.body_purged);

    // Released, the hold no longer keeps them; the subject's hold still does.
    auditor
        .release_legal_hold(hold(&held.request_id))
        .await
        .unwrap();
    assert_eq!(admin.run_retention().await.unwrap().purged_exchanges, 1);
    let released = police.get_request(&held.request_id).await.unwrap();
    assert!(released.body_purged && !released.legal_hold);
    let events: Vec<i32> = released.timeline.iter().map(|e| e.kind).collect();
    for kind in [
        api::EventKind::LegalHoldPlaced,
        api::EventKind::LegalHoldReleased,
        api::EventKind::BodiesPurged,
    ] {
        assert!(events.contains(&(kind as i32)), "{kind:?} in {events:?}");
    }
    assert!(
        police
            .get_request(&by_subject.request_id)
            .await
            .unwrap()
            .request
            .is_some()
    );
    for event in ["legal-hold-placed", "legal-hold-released"] {
        assert!(!of_event(&auditor, event).await.is_empty(), "{event}");
    }
    let (ok, report) = env.verify_log();
    assert!(ok, "{report}");
}
