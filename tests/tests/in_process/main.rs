//! The exchange lifecycle, policy refusals, idempotency, audit queries and retention, tested on a
//! broker in this process (`infoshare_tests::in_process`): no sockets, no TLS, milliseconds each.
//! The lifecycle runs on every engine, most cases on the memory and PostgreSQL engines; the
//! end-to-end tests cover what crosses the wire.

use infoshare_client::api;
use infoshare_proto::v1;
use infoshare_server::access::Operation;
use infoshare_server::audit::Filter;
use infoshare_server::domain::{MessageKind, RequestStatus};
use infoshare_server::identity::Role;
use infoshare_server::records::{Event, Record, event_name};
use infoshare_server::store::ledger::{Ledger, LedgerOptions};
use infoshare_tests::in_process::{World, code_of};
use infoshare_tests::{sample_disclosure, sample_request};
use prost::Message;

/// The case `$case(world)` as two tests, `$case::on_memory` and `$case::on_postgres` (skipped,
/// loudly, where PostgreSQL is not installed).
macro_rules! on_memory_and_postgres {
    ($case:ident) => {
        mod $case {
            use super::*;
            #[tokio::test]
            async fn on_memory() {
                super::$case(World::in_memory().await).await
            }
            #[tokio::test]
            async fn on_postgres() {
                if let Some(world) = World::postgres().await {
                    super::$case(world).await
                }
            }
        }
    };
}

mod gauges;
mod workflow;

fn submit(request: api::InformationRequest, key: &str) -> v1::SubmitRequestRequest {
    v1::SubmitRequestRequest {
        request: Some(request),
        idempotency_key: key.into(),
        follows_request_id: String::new(),
    }
}

fn respond(request_id: &str, response: api::InformationResponse) -> v1::RespondRequest {
    v1::RespondRequest {
        request_id: request_id.into(),
        response: Some(response),
    }
}

fn ack(request_id: &str, kind: MessageKind) -> v1::AcknowledgeRequest {
    v1::AcknowledgeRequest {
        request_id: request_id.into(),
        kind: i32::from(kind.code()),
    }
}

/// Every receipt a call returns proves its record under the log's key.
fn verify(world: &World, receipt: &infoshare_server::store::ledger::Receipt) {
    let verifier =
        infoshare_tlog::NoteVerifier::parse(&world.broker.ledger().verifier_key()).unwrap();
    let cp = verifier.verify(&receipt.checkpoint).unwrap();
    infoshare_tlog::merkle::verify_inclusion(
        receipt.log_index - 1,
        cp.size,
        &infoshare_tlog::leaf_hash(&receipt.record),
        &receipt.proof,
        &cp.root,
    )
    .unwrap();
}

async fn lifecycle(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let request = sample_request("rangitoto-school-board");
    let sent = world
        .broker
        .submit_request(&police, &submit(request.clone(), "case-1"))
        .await
        .unwrap();
    verify(&world, &sent.receipt);
    let id = sent.request_id.to_string();

    let (items, more) = world.broker.inbox_page(&school, 0, 10, false).unwrap();
    assert!(!more);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].entry.from, "police");
    assert_eq!(items[0].cursor, sent.index);
    let body = items[0].body.as_ref().unwrap();
    assert_eq!(
        api::InformationRequest::decode(&body.body[..]).unwrap(),
        request
    );
    // Nothing for the sender, nor for a bystander.
    assert!(
        world
            .broker
            .inbox_page(&police, 0, 10, false)
            .unwrap()
            .0
            .is_empty()
    );

    let first = world
        .broker
        .acknowledge(&school, &ack(&id, MessageKind::Request))
        .await;
    let first = first.unwrap();
    assert!(!first.already);
    let again = world
        .broker
        .acknowledge(&school, &ack(&id, MessageKind::Request))
        .await;
    let again = again.unwrap();
    assert!(again.already);
    assert_eq!(again.log_index, first.log_index);

    let answered = world
        .broker
        .respond(&school, &respond(&id, sample_disclosure()))
        .await
        .unwrap();
    verify(&world, &answered.receipt);
    let (items, _) = world.broker.inbox_page(&police, 0, 10, true).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].entry.kind, MessageKind::Response);
    world
        .broker
        .acknowledge(&police, &ack(&id, MessageKind::Response))
        .await
        .unwrap();

    let detail = world.broker.get_request(&police, &id).await.unwrap();
    assert_eq!(detail.meta.status, RequestStatus::Completed);
    let events: Vec<&str> = detail
        .timeline
        .iter()
        .map(|(_, r)| event_name(r.event.code()))
        .collect();
    assert_eq!(
        events,
        [
            "request-submitted",
            "request-acknowledged",
            "response-submitted",
            "response-acknowledged"
        ]
    );
    let response = detail.response.unwrap();
    assert_eq!(
        api::InformationResponse::decode(&response.body[..]).unwrap(),
        sample_disclosure()
    );
}

#[tokio::test]
async fn the_lifecycle_on_the_memory_engine() {
    lifecycle(World::in_memory().await).await;
}

#[tokio::test]
async fn the_lifecycle_on_the_embedded_engine() {
    lifecycle(World::embedded().await).await;
}

#[tokio::test]
async fn the_lifecycle_on_the_postgres_engine() {
    if let Some(world) = World::postgres().await {
        lifecycle(world).await;
    }
}

/// Two brokers on one PostgreSQL log: what is submitted through one reaches the other's inbox
/// at once, either acts on what the other took, writes through both at once fall into one total
/// order, and both sign the same checkpoint for the same size.
#[tokio::test]
async fn two_brokers_on_one_postgres_log_keep_one_order() {
    let Some(a) = World::postgres().await else {
        return;
    };
    let b = a.replica().await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    assert_eq!(
        b.log_size(),
        a.log_size(),
        "the replica starts on the whole log"
    );
    let police = a.agency("police");
    let school = b.agency("rangitoto-school-board");

    let mut applied = b.broker.ledger().applied();
    let started = std::time::Instant::now();
    let sent = a.submit_sample(&police, "through-a").await;
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        applied.wait_for(|&n| n >= sent.index),
    )
    .await
    .expect("the replica hears the batch")
    .unwrap();
    let heard = started.elapsed();
    let (items, _) = b.broker.inbox_page(&school, 0, 10, false).unwrap();
    assert_eq!(items.len(), 1, "delivered through the other broker");
    let id = sent.request_id.to_string();
    // Decided on B against A's record; refused on A as a repeat of B's.
    b.broker
        .acknowledge(&school, &ack(&id, MessageKind::Request))
        .await
        .unwrap();
    let again = a
        .broker
        .acknowledge(&school, &ack(&id, MessageKind::Request))
        .await
        .unwrap();
    assert!(again.already, "A sees B's acknowledgement");

    let mut writes = tokio::task::JoinSet::new();
    for i in 0..40 {
        let world = if i % 2 == 0 { a.clone() } else { b.clone() };
        let police = police.clone();
        writes.spawn(async move {
            world
                .submit_sample(&police, &format!("both-{i}"))
                .await
                .index
        });
    }
    let mut indexes = writes.join_all().await;
    indexes.sort_unstable();
    let first = indexes[0];
    assert_eq!(
        indexes,
        (first..first + 40).collect::<Vec<_>>(),
        "one total order"
    );

    one_checkpoint_for_one_size(&a, &b, a.log_size().max(b.log_size())).await;
    eprintln!("a batch through A reached B in {heard:?}");
    assert!(heard < std::time::Duration::from_millis(500), "{heard:?}");
}

/// A key rotation through one broker of a shared log: the other takes up the new key from the
/// shared keys directory at its next batch (no restart), signs with it, and both brokers sign
/// one checkpoint for one size.
#[tokio::test]
async fn a_key_rotated_through_one_broker_is_taken_up_by_the_other() {
    let Some(a) = World::postgres().await else {
        return;
    };
    let b = a.replica().await;
    let police = a.agency("police");
    a.submit_sample(&police, "before").await;
    let old = b.broker.ledger().verifier_key();
    let admin = infoshare_server::records::Actor {
        role: Role::Admin,
        id: "registry-admin".into(),
        cert_sha256: [0; 32],
    };
    let statement = a.broker.rotate_log_key(admin).await.unwrap();
    let new = a.broker.ledger().verifier_key();
    assert_ne!(new, old);

    let sent = b.submit_sample(&police, "through-b").await;
    assert_eq!(
        b.broker.ledger().verifier_key(),
        new,
        "B signs with the new key"
    );
    assert_eq!(
        b.broker.ledger().head().key.rotations,
        vec![std::sync::Arc::<str>::from(statement.as_str())],
        "and knows the statement that hands over to it"
    );
    verify(&b, &sent.receipt);
    let then = a.submit_sample(&police, "through-a").await;
    verify(&a, &then.receipt);
    one_checkpoint_for_one_size(&a, &b, then.index).await;
}

/// Once both brokers have folded in the log up to `size`, they hold one signed checkpoint.
async fn one_checkpoint_for_one_size(a: &World, b: &World, size: u64) {
    for world in [a, b] {
        let mut applied = world.broker.ledger().applied();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            applied.wait_for(|&n| n >= size),
        )
        .await
        .unwrap()
        .unwrap();
    }
    assert_eq!(
        a.broker.ledger().head().note,
        b.broker.ledger().head().note,
        "one signed checkpoint for one size"
    );
}

/// A broker given other keys than the log's is refused at start: it could only sign
/// checkpoints no auditor of the log would accept, and read no body.
#[tokio::test]
async fn a_broker_with_other_keys_is_refused_on_a_shared_log() {
    let Some(world) = World::postgres().await else {
        return;
    };
    world.submit_sample(&world.agency("police"), "before").await;
    let settings = world.database().unwrap();
    let other_keys = tempfile::tempdir().unwrap();
    let keys = other_keys.path().to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        Ledger::open_postgres(
            &settings,
            &keys,
            &LedgerOptions::new("in-process.invalid/log"),
        )
        .map(drop)
    })
    .await
    .unwrap();
    let refused = opened.unwrap_err().to_string();
    assert!(refused.contains("checkpoint"), "{refused}");
    // The log's own broker goes on.
    world.submit_sample(&world.agency("police"), "after").await;
}

/// Retries racing their first submission: on PostgreSQL a batch is decided while the one before
/// it is still being written, so a retry is often decided against a first submission not yet
/// durable. Each key appends once, every retry replays its index, and no answer comes before
/// its record is durable and readable.
async fn racing_retries_append_once_and_answer_once_durable(world: World) {
    let world = std::sync::Arc::new(world);
    let police = world.agency("police");
    let before = world.log_size();
    let mut sends = tokio::task::JoinSet::new();
    for round in 0..6 {
        for key in 0..12 {
            let (world, police) = (world.clone(), police.clone());
            sends.spawn(async move {
                let request = sample_request("rangitoto-school-board");
                let sent = world
                    .broker
                    .submit_request(&police, &submit(request, &format!("race-{key}")))
                    .await
                    .unwrap();
                let ledger = world.broker.ledger();
                assert!(
                    ledger.views().records() >= sent.index && world.log_size() >= sent.index,
                    "answered before record {} was durable and readable",
                    sent.index
                );
                ledger.decoded(sent.index).unwrap();
                (key, round, sent.request_id, sent.index, sent.replayed)
            });
        }
        // A batch takes a millisecond or two on PostgreSQL: the next round meets it in flight.
        tokio::time::sleep(std::time::Duration::from_micros(700)).await;
    }
    let sent = sends.join_all().await;
    for key in 0..12 {
        let mine: Vec<_> = sent.iter().filter(|s| s.0 == key).collect();
        assert_eq!(mine.len(), 6);
        assert_eq!(mine.iter().filter(|s| !s.4).count(), 1, "key {key}");
        assert!(
            mine.iter().all(|s| (s.2, s.3) == (mine[0].2, mine[0].3)),
            "key {key}: {mine:?}"
        );
    }
    assert_eq!(world.log_size(), before + 12, "each key appended once");
}

async fn a_retry_replays_and_a_changed_retry_conflicts(world: World) {
    let police = world.agency("police");
    let request = sample_request("rangitoto-school-board");
    let first = world
        .broker
        .submit_request(&police, &submit(request.clone(), "k-1"))
        .await
        .unwrap();
    let size = world.log_size();
    let retry = world
        .broker
        .submit_request(&police, &submit(request.clone(), "k-1"))
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(
        (retry.request_id, retry.index),
        (first.request_id, first.index)
    );
    assert_eq!(world.log_size(), size, "a replay appends nothing");

    let mut changed = request.clone();
    changed.reason.push_str(" And more.");
    let conflict = world
        .broker
        .submit_request(&police, &submit(changed, "k-1"))
        .await;
    assert_eq!(code_of(conflict), "IDEMPOTENCY_KEY_REUSED");

    // The same key from another agency is another submission.
    let ot = world.agency("oranga-tamariki");
    let other = world.submit_sample(&ot, "k-1").await;
    assert!(!other.replayed);
    assert_ne!(other.request_id, first.request_id);
}

/// Each refusal is a precise reason, logged as a Denied record naming its rule, and changes
/// nothing else.
async fn refusals_name_their_rule_and_are_logged(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");

    let denied = |world: &World| -> (String, String) {
        let record = world.broker.ledger().decoded(world.log_size()).unwrap();
        match record.event {
            Event::Denied(d) => (d.reason_code, d.rule),
            other => panic!("last record is {}", event_name(other.code())),
        }
    };

    // Not a party to the protocol.
    let justice = world.agency("justice");
    let r = world
        .broker
        .submit_request(
            &justice,
            &submit(sample_request("rangitoto-school-board"), "j"),
        )
        .await;
    assert_eq!(code_of(r), "NOT_A_PARTY");
    assert_eq!(denied(&world).0, "NOT_A_PARTY");

    // An adult under s66C.
    let mut adult = sample_request("rangitoto-school-board");
    adult.subject.as_mut().unwrap().date_of_birth = "1980-01-01".into();
    let r = world
        .broker
        .submit_request(&police, &submit(adult, "a"))
        .await;
    let code = code_of(r);
    assert_eq!(denied(&world).0, code);

    // A reason that says nothing names the field.
    let mut blank = sample_request("rangitoto-school-board");
    blank.reason = " \u{200B} ".into();
    match world
        .broker
        .submit_request(&police, &submit(blank, "b"))
        .await
    {
        Err(e) => {
            assert_eq!(e.reason_code(), "INVALID_ARGUMENT");
            assert!(e.to_string().contains("request.reason"), "{e}");
        }
        Ok(_) => panic!("a blank reason was accepted"),
    }

    // Answered by one it was not sent to; answered twice.
    let sent = world.submit_sample(&police, "ok").await;
    let id = sent.request_id.to_string();
    let education = world.agency("education");
    let r = world
        .broker
        .respond(&education, &respond(&id, sample_disclosure()))
        .await;
    assert_eq!(
        code_of(r),
        "NOT_FOUND",
        "a third agency does not see the exchange"
    );
    assert_eq!(denied(&world).1, "visibility.party");
    world
        .broker
        .respond(&school, &respond(&id, sample_disclosure()))
        .await
        .unwrap();
    let r = world
        .broker
        .respond(&school, &respond(&id, sample_disclosure()))
        .await;
    assert_eq!(code_of(r), "ALREADY_ANSWERED");
    assert_eq!(denied(&world).0, "ALREADY_ANSWERED");

    // An agency may not query the audit trail; the refusal is logged too.
    let r = world
        .broker
        .authorize(&police, Operation::QueryRecords)
        .await;
    assert_eq!(code_of(r), "ROLE_NOT_ALLOWED");
    assert_eq!(denied(&world).0, "ROLE_NOT_ALLOWED");
}

async fn an_auditor_finds_a_subjects_exchanges_and_refusals_and_the_query_is_logged(world: World) {
    let police = world.agency("police");
    let sent = world.submit_sample(&police, "q").await;
    let mut adult = sample_request("rangitoto-school-board");
    adult.subject.as_mut().unwrap().given_names = "Someone Else".into();
    adult.subject.as_mut().unwrap().date_of_birth = "1980-01-01".into();
    assert!(
        world
            .broker
            .submit_request(&police, &submit(adult, "q2"))
            .await
            .is_err()
    );

    let auditor = world.caller(Role::Auditor, "privacy-audit");
    world
        .broker
        .authorize(&auditor, Operation::QueryRecords)
        .await
        .unwrap();
    let subjects = world
        .broker
        .subject_pseudonyms_for_audit(Some(("Ngata", "Aroha Mere", "2012-03-04")), None);
    let before = world.log_size();
    let found = world
        .broker
        .audit_query(
            &auditor,
            &Filter {
                subjects,
                ..Filter::default()
            },
            0,
            50,
        )
        .await
        .unwrap();
    let indexes: Vec<u64> = found.records.iter().map(|r| r.index).collect();
    assert_eq!(
        indexes,
        [sent.index],
        "only Aroha's exchange, not the other refusal"
    );
    let logged: Record = world.broker.ledger().decoded(before + 1).unwrap();
    assert_eq!(event_name(logged.event.code()), "audit-query");

    // Refusals are found by decision.
    let denied = world
        .broker
        .audit_query(
            &auditor,
            &Filter {
                decision: Some("denied".into()),
                ..Filter::default()
            },
            0,
            50,
        )
        .await
        .unwrap();
    assert_eq!(denied.records.len(), 1);
}

/// `count` sample requests submitted by `from` at once (keys `prefix0`, `prefix1`, …); their log
/// indexes, in the order they were sent.
async fn submit_at_once(
    world: &std::sync::Arc<World>,
    from: &infoshare_server::broker::Caller,
    prefix: &str,
    count: usize,
) -> Vec<u64> {
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..count {
        let (world, from, key) = (world.clone(), from.clone(), format!("{prefix}{i}"));
        sends.spawn(async move { world.submit_sample(&from, &key).await.index });
    }
    sends.join_all().await
}

/// The audit index of an agency paged through a few records at a time gives every record once,
/// in order, as one large page does: on PostgreSQL the entries are stored as posting chunks (a
/// batch's entries one row), here of many sizes, and pages start inside them.
async fn audit_pages_read_an_agencys_records_once_in_order(world: World) {
    let world = std::sync::Arc::new(world);
    let police = world.agency("police");
    let mut submitted = submit_at_once(&world, &police, "a", 60).await;
    for i in 0..8 {
        submitted.push(world.submit_sample(&police, &format!("s{i}")).await.index);
    }
    submitted.sort_unstable();
    let auditor = world.caller(Role::Auditor, "privacy-audit");
    let by_police = Filter {
        agency: Some("police".into()),
        ..Filter::default()
    };
    let query = |after, page| {
        let (world, auditor, filter) = (world.clone(), auditor.clone(), by_police.clone());
        async move {
            world
                .broker
                .audit_query(&auditor, &filter, after, page)
                .await
                .unwrap()
        }
    };
    let whole: Vec<u64> = query(0, 500)
        .await
        .records
        .iter()
        .map(|r| r.index)
        .collect();
    assert!(
        submitted.iter().all(|i| whole.contains(i)),
        "every submission is in the police's index"
    );
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = query(after, 7).await;
        paged.extend(page.records.iter().map(|r| r.index));
        if !page.more {
            break;
        }
        after = page.next_after;
    }
    assert_eq!(paged, whole);

    // The index itself, read from inside every chunk: a short read from any point is the next
    // entries, never fewer while more are stored.
    let prefix = infoshare_server::views::audit_index::agency("police");
    let views = world.broker.ledger().views();
    let all = views.indexed(&prefix, 0, 10_000).unwrap();
    assert!(submitted.iter().all(|i| all.contains(i)));
    for (at, after) in all.iter().enumerate() {
        let want: Vec<u64> = all.iter().skip(at + 1).take(3).copied().collect();
        assert_eq!(
            views.indexed(&prefix, *after, 3).unwrap(),
            want,
            "after {after}"
        );
    }
}

/// An export larger than one answer stops at a whole record, says there is more, and a query
/// from where it stopped goes on with the next records: the records are read a chunk at a time,
/// and the answer is cut inside a chunk.
async fn an_export_larger_than_an_answer_is_cut_and_goes_on(world: World) {
    let world = std::sync::Arc::new(world);
    let police = world.agency("police");
    let mut submitted = submit_at_once(&world, &police, "e", 6_000).await;
    submitted.sort_unstable();
    let auditor = world.caller(Role::Auditor, "privacy-audit");
    let by_police = Filter {
        agency: Some("police".into()),
        ..Filter::default()
    };
    let export = world
        .broker
        .audit_export(&auditor, &by_police)
        .await
        .unwrap();
    let exported: Vec<u64> = export.records.iter().map(|r| r.index).collect();
    assert!(export.more, "{} records fit in one answer", exported.len());
    assert!(exported.len() > 256, "cut before the first chunk's end");
    assert!(exported.len() < submitted.len());
    assert!(exported.windows(2).all(|w| w[0] < w[1]), "in log order");
    let bytes: usize = export
        .records
        .iter()
        .map(|r| r.bytes.len() + r.proof.len() * 34)
        .sum();
    assert!(bytes <= infoshare_server::broker::PAGE_BYTES);
    // Every submission up to the cut is in it, each record whole and as the log holds it.
    let last = *exported.last().unwrap();
    let through: Vec<u64> = submitted.iter().copied().filter(|&i| i <= last).collect();
    assert!(through.iter().all(|i| exported.binary_search(i).is_ok()));
    for r in export.records.iter().step_by(97) {
        assert_eq!(r.bytes, world.broker.ledger().record(r.index).unwrap());
    }
    let next = world
        .broker
        .audit_query(&auditor, &by_police, last, 500)
        .await
        .unwrap();
    let after = submitted.iter().copied().find(|&i| i > last).unwrap();
    assert_eq!(next.records.first().map(|r| r.index), Some(after));
}

async fn retention_erases_bodies_on_the_new_zealand_day_it_ends(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let sent = world.submit_sample(&police, "r").await;
    let id = sent.request_id.to_string();
    // The youth re-engagement protocol keeps bodies 365 days from the NZ date it was opened.
    world.advance_days(364);
    assert_eq!(world.run_retention().await, 0);
    world.advance_days(1);
    assert_eq!(world.run_retention().await, 1);
    let purged = world.broker.ledger().decoded(world.log_size()).unwrap();
    assert_eq!(event_name(purged.event.code()), "bodies-purged");
    // The one body stored, the request's, and no other kind, is logged as erased.
    match purged.event {
        Event::BodiesPurged { request_id, kinds } => {
            assert_eq!(request_id.to_string(), id);
            assert_eq!(
                kinds,
                infoshare_server::records::purged_bit(MessageKind::Request)
            );
        }
        other => panic!("{other:?}"),
    }
    let detail = world.broker.get_request(&police, &id).await.unwrap();
    assert!(detail.opening.is_none());
    assert!(
        world.broker.inbox_page(&school, 0, 10, false).unwrap().0[0]
            .body
            .is_none()
    );
    // Once is enough: a second run finds nothing due.
    assert_eq!(world.run_retention().await, 0);
}

/// Bodies a broker before schema 6 wrote, in the bodies table with their records' rows keeping
/// none, are still read there, and erased there when their retention ends.
#[tokio::test]
async fn bodies_written_before_they_moved_into_their_records_are_read_and_erased() {
    let Some(world) = World::postgres().await else {
        return;
    };
    let police = world.agency("police");
    let sent = world.submit_sample(&police, "older").await;
    let id = sent.request_id.to_string();
    let (client, _) =
        infoshare_tests::pg_cluster::PgCluster::client(&world.database().unwrap()).await;
    // As a database migrated from schema 5 holds them (a sealed frame begins with its kind,
    // flagged, and its exchange's id).
    let moved = client
        .execute(
            "INSERT INTO bodies (kind, request_id, sealed) \
             SELECT (get_byte(body, 0) & 63)::smallint, substring(body from 2 for 16), body \
             FROM log_records WHERE octet_length(body) > 0",
            &[],
        )
        .await
        .unwrap();
    assert!(moved >= 1, "no body in a record's row");
    client
        .execute("UPDATE log_records SET body = NULL", &[])
        .await
        .unwrap();
    let detail = world.broker.get_request(&police, &id).await.unwrap();
    assert!(detail.opening.is_some(), "the older body is read");
    world.advance_days(365);
    assert_eq!(world.run_retention().await, 1);
    let detail = world.broker.get_request(&police, &id).await.unwrap();
    assert!(detail.opening.is_none(), "the older body is erased");
    let erased: i64 = client
        .query_one(
            "SELECT count(*) FROM bodies WHERE sealed IS NULL AND request_id = $1",
            &[&sent.request_id.0.to_vec()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(erased, 1, "erased where it is, its row kept");
    assert_eq!(world.run_retention().await, 0);
}

/// More exchanges due than a retention run reads at a time (512): every one is purged, in
/// more than one purge, and a second run finds nothing.
async fn retention_reads_and_purges_a_page_at_a_time(world: World) {
    const N: usize = 600;
    let world = std::sync::Arc::new(world);
    let police = world.agency("police");
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..N {
        let (world, police) = (world.clone(), police.clone());
        sends.spawn(async move { world.submit_sample(&police, &format!("p{i}")).await });
    }
    assert_eq!(sends.join_all().await.len(), N);
    world.advance_days(365);
    let before = world.broker.ledger().batches_committed();
    assert_eq!(world.run_retention().await, N);
    assert!(
        world.broker.ledger().batches_committed() - before >= 2,
        "purged in more than one batch"
    );
    assert_eq!(world.run_retention().await, 0);
}

async fn ages_are_reckoned_on_new_zealand_dates(world: World) {
    let police = world.agency("police");
    // 06:00 on 15 January 2027 in New Zealand is still the 14th in UTC.
    let mut turns_18_today = sample_request("rangitoto-school-board");
    turns_18_today.subject.as_mut().unwrap().date_of_birth = "2009-01-15".into();
    let r = world
        .broker
        .submit_request(&police, &submit(turns_18_today, "b1"))
        .await;
    assert_eq!(code_of(r), "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON");
    let mut turns_18_tomorrow = sample_request("rangitoto-school-board");
    turns_18_tomorrow.subject.as_mut().unwrap().date_of_birth = "2009-01-16".into();
    world
        .broker
        .submit_request(&police, &submit(turns_18_tomorrow, "b2"))
        .await
        .unwrap();
}

async fn a_proactive_disclosure_reaches_its_recipient_and_cannot_be_answered(world: World) {
    let ot = world.agency("oranga-tamariki");
    let police = world.agency("police");
    let disclosure = infoshare_tests::sample_proactive_disclosure();
    let input = v1::DiscloseRequest {
        disclosure: Some(disclosure.clone()),
        idempotency_key: "d-1".into(),
    };
    let sent = world.broker.disclose(&ot, &input).await.unwrap();
    assert!(world.broker.disclose(&ot, &input).await.unwrap().replayed);
    let (items, _) = world.broker.inbox_page(&police, 0, 10, false).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].entry.kind, MessageKind::Disclosure);
    let body = items[0].body.as_ref().unwrap();
    assert_eq!(
        api::ProactiveDisclosure::decode(&body.body[..]).unwrap(),
        disclosure
    );
    let id = sent.request_id.to_string();
    // Acknowledged as what it is; a disclosure is not a request to answer.
    let wrong = world
        .broker
        .acknowledge(&police, &ack(&id, MessageKind::Request))
        .await;
    assert_eq!(code_of(wrong), "WRONG_MESSAGE_KIND");
    world
        .broker
        .acknowledge(&police, &ack(&id, MessageKind::Disclosure))
        .await
        .unwrap();
    let r = world
        .broker
        .respond(&police, &respond(&id, sample_disclosure()))
        .await;
    assert!(r.is_err());
    // Only its recipient acknowledges it.
    let r = world
        .broker
        .acknowledge(&ot, &ack(&id, MessageKind::Disclosure))
        .await;
    assert_eq!(code_of(r), "NOT_ADDRESSED_TO_CALLER");
}

async fn a_legal_hold_keeps_bodies_past_retention_until_released(world: World) {
    use infoshare_server::records::HoldTarget;
    let police = world.agency("police");
    let auditor = world.caller(Role::Auditor, "privacy-audit");
    let sent = world.submit_sample(&police, "h").await;
    let held = HoldTarget::Exchange(sent.request_id);
    let placed = world
        .broker
        .change_legal_holds(&auditor, true, vec![held])
        .await
        .unwrap();
    assert_eq!(placed.len(), 1);
    let twice = world
        .broker
        .change_legal_holds(&auditor, true, vec![held])
        .await;
    assert_eq!(code_of(twice), "LEGAL_HOLD_CONFLICT");

    world.advance_days(400);
    assert_eq!(world.run_retention().await, 0);
    let id = sent.request_id.to_string();
    let detail = world.broker.get_request(&police, &id).await.unwrap();
    assert!(detail.legal_hold);
    assert!(detail.opening.is_some(), "held bodies are kept");

    world
        .broker
        .change_legal_holds(&auditor, false, vec![held])
        .await
        .unwrap();
    assert_eq!(world.run_retention().await, 1);
    assert!(
        world
            .broker
            .get_request(&police, &id)
            .await
            .unwrap()
            .opening
            .is_none()
    );
}

// The cases above that take a `World`, each on the memory and PostgreSQL engines.
on_memory_and_postgres!(a_retry_replays_and_a_changed_retry_conflicts);
on_memory_and_postgres!(racing_retries_append_once_and_answer_once_durable);
on_memory_and_postgres!(refusals_name_their_rule_and_are_logged);
on_memory_and_postgres!(an_auditor_finds_a_subjects_exchanges_and_refusals_and_the_query_is_logged);
on_memory_and_postgres!(retention_erases_bodies_on_the_new_zealand_day_it_ends);
on_memory_and_postgres!(retention_reads_and_purges_a_page_at_a_time);
on_memory_and_postgres!(audit_pages_read_an_agencys_records_once_in_order);
on_memory_and_postgres!(an_export_larger_than_an_answer_is_cut_and_goes_on);
on_memory_and_postgres!(ages_are_reckoned_on_new_zealand_dates);
on_memory_and_postgres!(a_proactive_disclosure_reaches_its_recipient_and_cannot_be_answered);
on_memory_and_postgres!(a_legal_hold_keeps_bodies_past_retention_until_released);

/// The checkpoint guard: a batch from a writer whose idea of the log is stale (as if two
/// brokers ever held the sequencer lease at once) is refused whole, and names why; nothing of
/// it stays, and the log stays where the other writer left it.
#[tokio::test]
async fn a_batch_from_a_stale_writer_is_refused_whole() {
    use infoshare_server::store::backend::{Backend, Batch, Created, ViewWrites};
    use infoshare_server::store::postgres::PostgresEngine;
    let Some(cluster) = infoshare_tests::pg_cluster::PgCluster::start() else {
        return;
    };
    let settings = cluster.database().await;
    let (client, _) = infoshare_tests::pg_cluster::PgCluster::client(&settings).await;
    let keys = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().to_path_buf();
    let mut engine = tokio::task::spawn_blocking(move || {
        let mut engine = PostgresEngine::open(&settings, &keys_dir).unwrap();
        // The lease, and the log's head as this writer will hold it: empty.
        engine.begin_batch().unwrap();
        engine
    })
    .await
    .unwrap();
    // Another writer moves the log meanwhile.
    client
        .execute("UPDATE checkpoint SET size = 1, note = 'another'", &[])
        .await
        .unwrap();
    let refused = tokio::task::spawn_blocking(move || {
        let key = b"zz".to_vec();
        engine.commit(Batch {
            first_index: 1,
            records: &[b"a record".to_vec()],
            bodies: &[],
            views: ViewWrites::from([(key.clone(), Some(b"v".to_vec()))]),
            postings: Vec::new(),
            created: Created::from([key]),
            checkpoint: "this writer's note",
        })
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        refused.0.contains("not at 0 records") && refused.0.contains("refused the batch"),
        "{refused}"
    );
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM log_records").await, 0);
    assert_eq!(count("SELECT count(*) FROM views").await, 0);
    assert_eq!(count("SELECT size FROM checkpoint").await, 1);
}
