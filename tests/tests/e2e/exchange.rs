//! The request → delivery → acknowledgement → response round trip over real mTLS, and the rules
//! around it: idempotency, visibility, resumable delivery, bad input.

use crate::common;

use std::time::Duration;

use common::{TestEnv, on_both_engines};
use infoshare_certs_dev::Role;
use infoshare_client::api::{self, MessageKind, RequestStatus};
use infoshare_client::{ClientError, RpcError};
use infoshare_tests::{sample_disclosure, sample_request};
use tonic::Code;

fn rpc_error<T: std::fmt::Debug>(r: Result<T, ClientError>) -> RpcError {
    match r {
        Err(ClientError::Rpc(e)) => *e,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

async fn next_item(stream: &mut infoshare_client::InboxStream) -> api::InboxItem {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an item within 10 s")
        .expect("stream ok")
        .expect("stream open")
}

async fn full_round_trip_request_delivery_ack_response(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;

    // The school follows its inbox before anything is sent: delivery is a live push.
    let mut school_inbox = school.subscribe_inbox(0).await.unwrap();
    let mut police_inbox = police.subscribe_inbox(0).await.unwrap();

    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "case-77/1")
        .await
        .unwrap();
    assert_eq!(sent.request_id.len(), 32);
    assert!(!sent.replayed);

    let item = next_item(&mut school_inbox).await;
    assert_eq!(item.kind, MessageKind::Request as i32);
    assert_eq!(item.request_id, sent.request_id);
    assert_eq!(item.from_agency_id, "police");
    assert_eq!(item.cursor, sent.log_index);
    assert_eq!(
        item.request.as_ref().unwrap(),
        &sample_request("rangitoto-school-board")
    );
    assert!(!item.acknowledged);

    let listed = school.list_inbox(0, 10, false).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].request_id, sent.request_id);

    let ack = school
        .acknowledge(&sent.request_id, MessageKind::Request)
        .await
        .unwrap();
    assert!(!ack.already_acknowledged);
    let again = school
        .acknowledge(&sent.request_id, MessageKind::Request)
        .await
        .unwrap();
    assert!(again.already_acknowledged);
    assert_eq!(again.log_index, ack.log_index);
    assert!(
        school
            .list_inbox(0, 10, true)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let answered = school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    let reply = next_item(&mut police_inbox).await;
    assert_eq!(reply.kind, MessageKind::Response as i32);
    assert_eq!(reply.request_id, sent.request_id);
    assert_eq!(reply.from_agency_id, "rangitoto-school-board");
    assert_eq!(reply.cursor, answered.log_index);
    assert_eq!(reply.response.as_ref().unwrap(), &sample_disclosure());
    assert_eq!(
        police.list_inbox(0, 10, false).await.unwrap().items.len(),
        1
    );

    // Answering twice is refused.
    let twice = rpc_error(school.respond(&sent.request_id, sample_disclosure()).await);
    assert_eq!(twice.code, Code::FailedPrecondition);
    assert_eq!(twice.reason.as_deref(), Some("ALREADY_ANSWERED"));
    // The requester cannot answer its own request.
    let own = rpc_error(police.respond(&sent.request_id, sample_disclosure()).await);
    assert_eq!(own.reason.as_deref(), Some("NOT_THE_RECIPIENT"));

    police
        .acknowledge(&sent.request_id, MessageKind::Response)
        .await
        .unwrap();
    for reader in [&police, &school] {
        let detail = reader.get_request(&sent.request_id).await.unwrap();
        assert_eq!(detail.status, RequestStatus::Completed as i32);
        assert_eq!(detail.requester_agency_id, "police");
        assert_eq!(detail.recipient_agency_id, "rangitoto-school-board");
        assert_eq!(detail.response.as_ref().unwrap(), &sample_disclosure());
        let kinds: Vec<i32> = detail.timeline.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                api::EventKind::RequestSubmitted as i32,
                api::EventKind::RequestAcknowledged as i32,
                api::EventKind::ResponseSubmitted as i32,
                api::EventKind::ResponseAcknowledged as i32,
            ]
        );
    }
}

async fn resubmission_with_the_same_key_returns_the_first_result(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ot = server.agency(&env, "oranga-tamariki").await;

    let first = police
        .submit_request(sample_request("oranga-tamariki"), "k-1")
        .await
        .unwrap();
    // Concurrent resubmissions too: one request, never a duplicate.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let police = police.clone();
        handles.push(tokio::spawn(async move {
            police
                .submit_request(sample_request("oranga-tamariki"), "k-1")
                .await
                .unwrap()
        }));
    }
    for h in handles {
        let again = h.await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.request_id, first.request_id);
        assert_eq!(again.log_index, first.log_index);
        assert_eq!(again.accepted_at, first.accepted_at);
    }
    let inbox = ot.list_inbox(0, 100, false).await.unwrap();
    assert_eq!(inbox.items.len(), 1);

    // The same key for a different request is refused, not silently mapped to the first.
    let mut different = sample_request("oranga-tamariki");
    different.reason = "Another matter entirely.".into();
    let err = rpc_error(police.submit_request(different, "k-1").await);
    assert_eq!(err.code, Code::AlreadyExists);
    assert_eq!(err.reason.as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));

    // Keys are per agency: another agency's identical key is its own request.
    let msd = server.agency(&env, "msd").await;
    let other = msd
        .submit_request(sample_request("oranga-tamariki"), "k-1")
        .await
        .unwrap();
    assert!(!other.replayed);
    assert_ne!(other.request_id, first.request_id);
}

async fn concurrent_first_submissions_with_one_key_make_one_request(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let police = police.clone();
        handles.push(tokio::spawn(async move {
            police
                .submit_request(sample_request("msd"), "race-1")
                .await
                .unwrap()
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut fresh = 0;
    for h in handles {
        let r = h.await.unwrap();
        ids.insert(r.request_id);
        fresh += usize::from(!r.replayed);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1);
}

async fn subscription_resumes_after_reconnect_without_loss_or_duplicates(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ot = server.agency(&env, "oranga-tamariki").await;

    let mut sent = Vec::new();
    for i in 0..5 {
        let r = police
            .submit_request(sample_request("oranga-tamariki"), &format!("a-{i}"))
            .await
            .unwrap();
        sent.push(r.request_id);
    }
    let mut seen = Vec::new();
    let mut stream = ot.subscribe_inbox(0).await.unwrap();
    let mut cursor = 0;
    for _ in 0..3 {
        let item = next_item(&mut stream).await;
        cursor = item.cursor;
        seen.push(item.request_id);
    }
    drop(stream);
    // While disconnected, more arrive.
    for i in 5..8 {
        let r = police
            .submit_request(sample_request("oranga-tamariki"), &format!("a-{i}"))
            .await
            .unwrap();
        sent.push(r.request_id);
    }
    // A new connection, resuming from the last cursor received.
    let ot2 = server.agency(&env, "oranga-tamariki").await;
    let mut stream = ot2.subscribe_inbox(cursor).await.unwrap();
    for _ in 3..8 {
        seen.push(next_item(&mut stream).await.request_id);
    }
    // And live ones keep coming on the resumed stream.
    let live = police
        .submit_request(sample_request("oranga-tamariki"), "a-live")
        .await
        .unwrap();
    sent.push(live.request_id);
    seen.push(next_item(&mut stream).await.request_id);
    assert_eq!(seen, sent);
    // Nothing more is pending: no duplicate follows.
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(extra.is_err(), "unexpected extra item: {extra:?}");

    // Paging gives the same sequence.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = ot.list_inbox(after, 3, false).await.unwrap();
        paged.extend(page.items.iter().map(|i| i.request_id.clone()));
        after = page.next_cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, sent);
}

async fn only_the_two_parties_can_see_a_request(env: TestEnv) {
    let server = env.start().await;
    let a = server.agency(&env, "police").await;
    let b = server.agency(&env, "health-nz").await;
    let c = server.agency(&env, "oranga-tamariki").await;
    let sent = a
        .submit_request(sample_request("oranga-tamariki"), "vis-1")
        .await
        .unwrap();

    assert!(c.get_request(&sent.request_id).await.is_ok());
    assert!(a.get_request(&sent.request_id).await.is_ok());
    let err = rpc_error(b.get_request(&sent.request_id).await);
    assert_eq!(err.code, Code::NotFound);
    // B's view of a request that exists is the same as of one that does not.
    let missing = rpc_error(b.get_request(&"0".repeat(32)).await);
    assert_eq!(missing.code, Code::NotFound);
    assert!(b.list_inbox(0, 100, false).await.unwrap().items.is_empty());
    let ack = rpc_error(b.acknowledge(&sent.request_id, MessageKind::Request).await);
    assert_eq!(ack.code, Code::NotFound);
    let answer = rpc_error(b.respond(&sent.request_id, sample_disclosure()).await);
    assert_eq!(answer.code, Code::NotFound);
    // Auditors and admins have no access to the exchange.
    for (role, id) in [
        (Role::Auditor, "privacy-audit"),
        (Role::Admin, "registry-admin"),
    ] {
        let client = server.client(&env, role, id).await;
        let err = rpc_error(client.get_request(&sent.request_id).await);
        assert_eq!(err.code, Code::PermissionDenied);
        assert_eq!(err.reason.as_deref(), Some("ROLE_NOT_ALLOWED"));
        let err = rpc_error(client.submit_request(sample_request("police"), "x").await);
        assert_eq!(err.code, Code::PermissionDenied);
        let me = client.who_am_i().await.unwrap();
        assert_eq!(me.id, id);
    }
}

async fn bad_input_is_refused_naming_the_field_and_changes_nothing(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ot = server.agency(&env, "oranga-tamariki").await;

    // An unknown recipient gets the documented code, naming the rule.
    let err = rpc_error(
        police
            .submit_request(sample_request("no-such-agency"), "k1")
            .await,
    );
    assert_eq!(err.code, Code::FailedPrecondition);
    assert_eq!(err.reason.as_deref(), Some("UNKNOWN_AGENCY"));
    assert_eq!(err.rule.as_deref(), Some("party.recipient_registered"));
    let cases: Vec<(&str, api::InformationRequest, &str)> = vec![
        (
            "request.recipient_agency_id",
            sample_request("police"),
            "k2",
        ),
        (
            "request.authority",
            api::InformationRequest {
                authority: 7,
                ..sample_request("oranga-tamariki")
            },
            "k3",
        ),
        (
            "request.purpose",
            api::InformationRequest {
                purpose: String::new(),
                ..sample_request("oranga-tamariki")
            },
            "k4",
        ),
        (
            "request.reason",
            api::InformationRequest {
                reason: "x".repeat(5000),
                ..sample_request("oranga-tamariki")
            },
            "k5",
        ),
        (
            "request.subject",
            api::InformationRequest {
                subject: None,
                ..sample_request("oranga-tamariki")
            },
            "k6",
        ),
        ("idempotency_key", sample_request("oranga-tamariki"), ""),
    ];
    for (field, request, key) in cases {
        let err = rpc_error(police.submit_request(request, key).await);
        assert_eq!(err.code, Code::InvalidArgument, "{field}");
        assert_eq!(err.field.as_deref(), Some(field));
        assert!(err.message.starts_with(field), "{}", err.message);
    }
    // An oversized message is refused before decoding (tonic reports it as OUT_OF_RANGE).
    let huge = api::InformationRequest {
        reason: "x".repeat(2 << 20),
        ..sample_request("oranga-tamariki")
    };
    let err = rpc_error(police.submit_request(huge, "k8").await);
    assert_eq!(err.code, Code::OutOfRange);
    assert!(err.message.contains("limit is: 1048576"), "{}", err.message);

    assert!(ot.list_inbox(0, 100, false).await.unwrap().items.is_empty());
    let err = rpc_error(police.get_request("not-an-id").await);
    assert_eq!(err.field.as_deref(), Some("request_id"));
    let err = rpc_error(police.list_inbox(0, 100_000, false).await);
    assert_eq!(err.field.as_deref(), Some("page_size"));
    let err = rpc_error(
        ot.acknowledge(&"a".repeat(32), MessageKind::Unspecified)
            .await,
    );
    assert_eq!(err.field.as_deref(), Some("kind"));
}

// The cases above that take a `TestEnv`, each on the embedded and PostgreSQL engines.
on_both_engines!(full_round_trip_request_delivery_ack_response);
on_both_engines!(resubmission_with_the_same_key_returns_the_first_result);
on_both_engines!(concurrent_first_submissions_with_one_key_make_one_request);
on_both_engines!(subscription_resumes_after_reconnect_without_loss_or_duplicates);
on_both_engines!(only_the_two_parties_can_see_a_request);
on_both_engines!(bad_input_is_refused_naming_the_field_and_changes_nothing);
