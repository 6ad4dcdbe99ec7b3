//! The log holds coded metadata only: pseudonyms and commitments, never names, dates of birth,
//! free text or content; refusals are logged like any other event.

use crate::common;

use common::TestEnv;
use infoshare_client::api;
use infoshare_server::access::Operation;
use infoshare_server::records::{Event, Record};
use infoshare_server::store::embedded::segment::{SegmentError, SegmentLog};
use infoshare_server::store::ledger::LOG_MAGIC;
use infoshare_tests::{sample_disclosure, sample_request};

fn read_dir_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        all.extend(std::fs::read(e.path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn log_holds_no_personal_information_and_records_refusals() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "pi-1")
        .await
        .unwrap();
    school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    let bad = api::InformationRequest {
        purpose: "Not A Code".into(),
        ..sample_request("rangitoto-school-board")
    };
    assert!(police.submit_request(bad, "pi-2").await.is_err());
    let auditor = server
        .client(&env, infoshare_certs_dev::Role::Auditor, "privacy-audit")
        .await;
    assert!(auditor.list_inbox(0, 10, false).await.is_err());
    server.kill9();

    let log = read_dir_bytes(&env.data_dir().join("log"));
    // The bodies are attachments in the log's segments, sealed.
    let bodies = &log;
    let request = sample_request("rangitoto-school-board");
    let subject = request.subject.clone().unwrap();
    let disclosed = &sample_disclosure().items[0].content;
    let explanation = sample_disclosure().explanation;
    let secrets = [
        subject.family_name.as_str(),
        subject.given_names.as_str(),
        subject.date_of_birth.as_str(),
        subject.identifiers[0].value.as_str(),
        request.reason.as_str(),
        request.staff_id.as_str(),
        request
            .consultation
            .as_ref()
            .unwrap()
            .reason_not_consulted
            .as_str(),
        disclosed.as_str(),
        explanation.as_str(),
        "pi-1",
    ];
    for secret in secrets {
        assert!(!contains(&log, secret), "the log contains {secret:?}");
    }
    // Protocol documents (free text, contacts) are in the body store too; the log holds hashes.
    assert!(!contains(&log, "relationship_manager"));
    // The bodies are where they belong, sealed: nothing of them is readable on disk, and opened
    // with the body keys they hold the request, the answer and the documents (this guards the
    // checks above against a vacuous pass).
    for secret in [
        subject.family_name.as_str(),
        disclosed.as_str(),
        "relationship_manager",
    ] {
        assert!(
            !contains(bodies, secret),
            "a body file holds {secret:?} in the clear"
        );
    }
    let keys =
        infoshare_server::store::seal::BodyKeys::load_or_create(&env.data_dir().join("keys/body"))
            .unwrap();
    let mut opened = Vec::new();
    infoshare_server::store::embedded::segment::scan_attachments(
        &env.data_dir().join("log"),
        LOG_MAGIC,
        |_, frame| opened.extend(keys.open(frame).unwrap().body),
    )
    .unwrap();
    assert!(contains(&opened, &subject.family_name));
    assert!(contains(&opened, disclosed));
    assert!(contains(&opened, "relationship_manager"));

    let (segments, _) = SegmentLog::open(&env.data_dir().join("log"), LOG_MAGIC).unwrap();
    let mut records = Vec::new();
    let mut register_changes = 0;
    segments
        .for_each_from(1, |_, _, raw| {
            let record = Record::decode(raw).unwrap();
            // The example protocols' register records come first; this test is about the rest.
            if matches!(record.event, Event::Protocol(_)) {
                register_changes += 1;
            } else {
                records.push(record);
            }
            Ok::<_, SegmentError>(())
        })
        .unwrap();
    // Three example protocols, each registered and approved: six register records.
    assert_eq!(register_changes, 6);
    let events: Vec<&Event> = records.iter().map(|r| &r.event).collect();
    assert!(matches!(events[0], Event::RequestSubmitted(r) if r.subjects.len() == 2));
    assert!(matches!(events[1], Event::ResponseSubmitted(r) if r.requester == "police"));
    match events[2] {
        Event::Denied(d) => {
            assert_eq!(d.operation, Operation::SubmitRequest);
            assert_eq!(d.reason_code, "INVALID_ARGUMENT");
            assert_eq!(d.rule, "request.purpose");
            assert_eq!(records[2].actor.id, "police");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    match events[3] {
        Event::Denied(d) => {
            assert_eq!(d.operation, Operation::ListInbox);
            assert_eq!(d.reason_code, "ROLE_NOT_ALLOWED");
            assert_eq!(records[3].actor.id, "privacy-audit");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(records.len(), 4);
}

/// A withdrawal's reasons and an update's contents are bodies like the rest: sealed in the body
/// store, never in the log, whose records hold their commitments only.
#[tokio::test]
async fn withdrawal_reasons_and_updates_are_sealed_bodies_not_log_content() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let answered = police
        .submit_request(sample_request("rangitoto-school-board"), "wu-1")
        .await
        .unwrap()
        .request_id;
    let withdrawn = police
        .submit_request(sample_request("rangitoto-school-board"), "wu-2")
        .await
        .unwrap()
        .request_id;
    school
        .respond(&answered, sample_disclosure())
        .await
        .unwrap();
    let (reason, content) = (
        "Withdrawn-5e1f: Aroha is safe",
        "Update-77ac: back at school",
    );
    let update = api::InformationUpdate {
        items: vec![api::DisclosedItem {
            category: "attendance".into(),
            classification: api::Classification::InConfidence as i32,
            content: content.into(),
        }],
        staff_id: "attendance-officer-7".into(),
        consultation: Some(infoshare_tests::consulted()),
        ..Default::default()
    };
    school.send_update(&answered, update, "wu-u").await.unwrap();
    police
        .withdraw(&withdrawn, reason, "constable-4821")
        .await
        .unwrap();
    server.kill9();

    let log = read_dir_bytes(&env.data_dir().join("log"));
    // The bodies are attachments in the log's segments, sealed.
    let bodies = &log;
    for secret in [reason, content] {
        assert!(!contains(&log, secret), "the log contains {secret:?}");
        assert!(
            !contains(bodies, secret),
            "a body holds {secret:?} in the clear"
        );
    }
    let keys =
        infoshare_server::store::seal::BodyKeys::load_or_create(&env.data_dir().join("keys/body"))
            .unwrap();
    let mut opened = Vec::new();
    infoshare_server::store::embedded::segment::scan_attachments(
        &env.data_dir().join("log"),
        LOG_MAGIC,
        |_, frame| opened.extend(keys.open(frame).unwrap().body),
    )
    .unwrap();
    assert!(contains(&opened, reason) && contains(&opened, content));
}
