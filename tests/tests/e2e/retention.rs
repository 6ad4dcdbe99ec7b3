//! Retention: message bodies are erased when their protocol's retention period ends (by an
//! administrator's run or the broker's own task), the erasure is logged, the log and its proofs
//! still verify, protocol documents stay, and a purged request says so. Time is moved with the
//! test server's shifted clock.

use crate::common;

use common::{TestEnv, on_both_engines};
use infoshare_certs_dev::Role;
use infoshare_client::{api, verify};
use infoshare_tests::{sample_disclosure, sample_request};

/// youth-reengagement keeps bodies 365 days.
const RETENTION_DAYS: u64 = 365;

/// A request to the school whose reason carries `marker` (to look for it on disk).
fn marked_request(marker: &str) -> api::InformationRequest {
    let mut request = sample_request("rangitoto-school-board");
    request.reason = format!("Attendance review {marker}.");
    request
}

/// Whether any file the bodies are stored in holds `marker` (bodies are sealed: never).
fn on_disk(env: &TestEnv, marker: &str) -> bool {
    env.body_bytes()
        .windows(marker.len())
        .any(|w| w == marker.as_bytes())
}

/// Zero bytes where bodies are stored: erasure zeroes a sealed frame in place.
fn zeros(env: &TestEnv) -> usize {
    env.body_bytes().iter().filter(|b| **b == 0).count()
}

#[tokio::test]
async fn bodies_are_erased_when_retention_ends_and_the_log_still_verifies() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;

    let old = police
        .submit_request(marked_request("OLD-7f3a"), "r-old")
        .await
        .unwrap();
    school
        .respond(&old.request_id, sample_disclosure())
        .await
        .unwrap();
    env.advance_clock(200);
    let young = police
        .submit_request(marked_request("YOUNG-91c2"), "r-young")
        .await
        .unwrap();

    // Day 200: nothing is due.
    assert_eq!(admin.run_retention().await.unwrap().purged_exchanges, 0);
    assert!(!on_disk(&env, "OLD-7f3a"), "bodies are sealed at rest");
    let zeros_before = zeros(&env);

    // Day 366: the first exchange's bodies (request and response) go; the second's stay.
    env.advance_clock(RETENTION_DAYS + 1 - 200);
    let run = admin.run_retention().await.unwrap();
    assert_eq!(run.purged_exchanges, 1);
    assert_eq!(
        admin.run_retention().await.unwrap().purged_exchanges,
        0,
        "a second run finds nothing more"
    );
    assert!(
        zeros(&env) >= zeros_before + 400,
        "the erased request and response frames are zeroed in place on disk"
    );
    assert!(
        police
            .get_request(&young.request_id)
            .await
            .unwrap()
            .request
            .is_some()
    );

    let purged = police.get_request(&old.request_id).await.unwrap();
    assert!(purged.body_purged);
    assert!(purged.request.is_none() && purged.response.is_none());
    let kinds: Vec<i32> = purged.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.last(),
        Some(&(api::EventKind::BodiesPurged as i32)),
        "the purge is on the exchange's timeline"
    );
    let kept = police.get_request(&young.request_id).await.unwrap();
    assert!(!kept.body_purged);
    assert!(kept.request.unwrap().reason.contains("YOUNG-91c2"));
    let inbox = school.list_inbox(0, 10, false).await.unwrap();
    let item = |id: &str| inbox.items.iter().find(|i| i.request_id == id).unwrap();
    assert!(item(&old.request_id).body_purged);
    assert!(!item(&young.request_id).body_purged);

    // Protocol documents are never purged.
    let protocol = admin.get_protocol("youth-reengagement", 0).await.unwrap();
    assert!(!protocol.document_toml.is_empty());

    // The purge is logged, by the administrator who ran it, and proven like every record.
    let key = verify::verifier(&server.verifier_key).unwrap();
    let logged = infoshare_tests::records_of_event(&auditor, "bodies-purged").await;
    verify::records(&logged.checkpoint, &logged.records, &key).unwrap();
    assert_eq!(logged.records.len(), 1);
    let summary = logged.records[0].summary.clone().unwrap();
    assert_eq!(
        (summary.request_id.as_str(), summary.actor.as_str()),
        (old.request_id.as_str(), "admin/registry-admin")
    );

    // After a restart: still purged, the log verifies from scratch.
    server.kill9();
    let (verified, out) = env.verify_log();
    assert!(verified, "{out}");
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    assert!(
        police
            .get_request(&old.request_id)
            .await
            .unwrap()
            .body_purged
    );
    assert!(
        !police
            .get_request(&young.request_id)
            .await
            .unwrap()
            .body_purged
    );
}

async fn the_brokers_own_retention_task_purges_and_logs_as_itself(env: TestEnv) {
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let sent = police
        .submit_request(marked_request("TASK-55d0"), "r-task")
        .await
        .unwrap();
    env.advance_clock(RETENTION_DAYS);
    server.wait_for_log("retention run: bodies erased").await;
    assert!(
        police
            .get_request(&sent.request_id)
            .await
            .unwrap()
            .body_purged
    );
    assert!(!on_disk(&env, "TASK-55d0"));
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let logged = infoshare_tests::records_of_event(&auditor, "bodies-purged").await;
    assert_eq!(
        logged.records[0].summary.clone().unwrap().actor,
        "admin/infoshare-retention"
    );
}

// Each on the embedded and PostgreSQL engines.
on_both_engines!(
    the_brokers_own_retention_task_purges_and_logs_as_itself,
    "\n[retention]\ninterval_secs = 1\n"
);
