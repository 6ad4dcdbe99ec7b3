//! The `infoshare` CLI against a real server: the README walk-through, in JSON and in tables.

use crate::common;

use std::process::{Command, Output};

use common::{TestEnv, TestServer, cli, json, run_cli, text};
use infoshare_certs_dev::Role;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_works() {
    let env = TestEnv::new();
    let server = env.start().await;
    let send = [
        "--json",
        "send",
        "--to",
        "rangitoto-school-board",
        "--authority",
        "s66c",
        "--protocol",
        "youth-reengagement",
        "--purpose",
        "assess-risk",
        "--family-name",
        "Ngata",
        "--given-names",
        "Aroha Mere",
        "--dob",
        "2012-03-04",
        "--id",
        "nhi=ZZZ0016",
        "--category",
        "attendance",
        "--category",
        "learning-support",
        "--reason",
        "Three weeks' absence.",
        "--urgency",
        "priority",
        "--not-consulted",
        "Contact could escalate risk",
        "--staff-id",
        "constable-4821",
        "--idempotency-key",
        "case-77-1",
    ];
    let sent = json(&cli(&env, &server, "police", &send));
    let id = sent["request_id"].as_str().unwrap().to_string();
    assert_eq!(sent["replayed"], false);
    // Sending again with the same key is a replay, not a second request.
    let again = json(&cli(&env, &server, "police", &send));
    assert_eq!(again["request_id"], id.as_str());
    assert_eq!(again["replayed"], true);

    let inbox = json(&cli(
        &env,
        &server,
        "rangitoto-school-board",
        &["--json", "inbox"],
    ));
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["request_id"], id.as_str());
    assert_eq!(items[0]["request"]["subject"]["family_name"], "Ngata");
    assert_eq!(items[0]["request"]["authority"], "LEGAL_AUTHORITY_OTA_S66C");
    let table = text(&cli(&env, &server, "rangitoto-school-board", &["inbox"]));
    assert!(table.starts_with("CURSOR"), "{table}");
    assert!(table.contains(&id), "{table}");

    let ack = json(&cli(
        &env,
        &server,
        "rangitoto-school-board",
        &["--json", "ack", &id],
    ));
    assert_eq!(ack["already_acknowledged"], false);
    let respond = [
        "--json",
        "respond",
        id.as_str(),
        "--decision",
        "partial",
        "--item",
        "attendance:in-confidence:Attendance 41%: 9 unjustified absences.",
        "--ground",
        "not-held",
        "--explanation",
        "No learning support records held.",
        "--consulted",
        "--staff-id",
        "attendance-officer-7",
    ];
    json(&cli(&env, &server, "rangitoto-school-board", &respond));

    let shown = json(&cli(&env, &server, "police", &["--json", "show", &id]));
    assert_eq!(shown["status"], "REQUEST_STATUS_RESPONDED");
    assert_eq!(shown["response"]["decision"], "DECISION_PARTIAL_DISCLOSE");
    assert_eq!(
        shown["response"]["items"][0]["content"],
        "Attendance 41%: 9 unjustified absences."
    );
    assert_eq!(shown["timeline"].as_array().unwrap().len(), 3);
    let human = text(&cli(&env, &server, "police", &["show", &id]));
    assert!(human.contains("status    RESPONDED"), "{human}");
    assert!(human.contains("RESPONSE_SUBMITTED"), "{human}");
    json(&cli(
        &env,
        &server,
        "police",
        &["--json", "ack", &id, "--response"],
    ));

    // Errors: one line naming the code and the reason, non-zero exit.
    let denied = cli(&env, &server, "health-nz", &["show", &id]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: NOT_FOUND"), "{stderr}");
    // A policy denial names the reason and the rule.
    let mut adult = send.to_vec();
    let dob = adult.iter().position(|a| *a == "--dob").unwrap();
    adult[dob + 1] = "1990-01-01";
    adult.retain(|a| *a != "--json");
    let key = adult
        .iter()
        .position(|a| *a == "--idempotency-key")
        .unwrap();
    adult[key + 1] = "case-77-adult";
    let denied = cli(&env, &server, "police", &adult);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.starts_with(
            "error: PERMISSION_DENIED (SUBJECT_NOT_CHILD_OR_YOUNG_PERSON, rule subject.child_or_young_person)"
        ),
        "{stderr}"
    );
    let listed = text(&cli(&env, &server, "police", &["protocol", "list"]));
    assert!(listed.contains("youth-reengagement  1"), "{listed}");
    let bad = cli(&env, &server, "police", &["--json", "show", "nope"]);
    assert!(!bad.status.success());
    // With --json an error is structured: code, reason, rule, field, message, receipt (the
    // attempt to read was logged, and its receipt proves it).
    let err: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT", "{err}");
    assert_eq!(err["error"]["reason"], "INVALID_ARGUMENT", "{err}");
    assert_eq!(err["error"]["field"], "request_id", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("request_id"),
        "{err}"
    );
    assert!(
        err["error"]["receipt"]["log_index"].as_u64().unwrap() > 0,
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).lines().count(),
        1,
        "one human line on stderr"
    );
    let mut adult_json = vec!["--json"];
    adult_json.extend_from_slice(&adult);
    adult_json[key + 2] = "case-77-adult-json";
    let denied = cli(&env, &server, "police", &adult_json);
    let err: Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(err["error"]["code"], "PERMISSION_DENIED", "{err}");
    assert_eq!(err["error"]["reason"], "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON");
    assert_eq!(err["error"]["rule"], "subject.child_or_young_person");
    assert!(err["error"]["field"].is_null());
    assert!(err["error"]["receipt"]["record"].as_str().unwrap().len() > 64);
}

fn auditor_cli(env: &TestEnv, server: &TestServer, dir: &std::path::Path, args: &[&str]) -> Output {
    let state = [("INFOSHARE_AUDIT_STATE", dir.join("audit.state"))];
    run_cli(env, server, (Role::Auditor, "privacy-audit"), &state, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_cli_queries_verifies_and_exports() {
    let env = TestEnv::new();
    let server = env.start().await;
    let work = tempfile::tempdir().unwrap();
    let police = server.agency(&env, "police").await;
    police
        .submit_request(
            infoshare_tests::sample_request("rangitoto-school-board"),
            "cli-audit-1",
        )
        .await
        .unwrap();

    let query = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &[
            "--json",
            "audit",
            "query",
            "--family-name",
            "Ngata",
            "--given-names",
            "Aroha Mere",
            "--dob",
            "2012-03-04",
        ],
    ));
    assert_eq!(query["verified"], true);
    assert_eq!(query["records"].as_array().unwrap().len(), 1);
    assert_eq!(query["records"][0]["event_type"], "request-submitted");
    let table = text(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["audit", "timeline", "--id", "nhi=ZZZ0016"],
    ));
    assert!(table.contains("every inclusion proof verified"), "{table}");

    // First verify pins the key; the second proves consistency with the first.
    let first = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));
    assert!(first["previous_size"].is_null());
    police
        .submit_request(
            infoshare_tests::sample_request("rangitoto-school-board"),
            "cli-audit-2",
        )
        .await
        .unwrap();
    let second = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));
    assert_eq!(second["previous_size"], first["size"]);
    assert!(second["size"].as_u64() > first["size"].as_u64());
    // A different pinned key is refused.
    let other = TestEnv::new();
    let other_server = other.start().await;
    let wrong = auditor_cli(
        &env,
        &server,
        work.path(),
        &["audit", "verify", "--key", &other_server.verifier_key],
    );
    assert!(!wrong.status.success());

    // Export, then verify offline against the published key; a tampered bundle fails.
    let bundle = work.path().join("evidence.bin");
    json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &[
            "--json",
            "audit",
            "export",
            "--agency",
            "police",
            "--out",
            bundle.to_str().unwrap(),
        ],
    ));
    let offline = Command::new(env!("CARGO_BIN_EXE_infoshare-cli-under-test"))
        .args([
            "--json",
            "audit",
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--key",
            &server.verifier_key,
        ])
        .output()
        .unwrap();
    let verified = json(&offline);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["key_pinned"], true);
    assert!(verified["records"].as_u64().unwrap() >= 2);
    // Alter one byte of one record, as a forger editing the evidence would.
    use prost::Message;
    let mut decoded =
        infoshare_client::api::EvidenceBundle::decode(std::fs::read(&bundle).unwrap().as_slice())
            .unwrap();
    decoded.records[0].record[12] ^= 0x01;
    std::fs::write(&bundle, decoded.encode_to_vec()).unwrap();
    let tampered = Command::new(env!("CARGO_BIN_EXE_infoshare-cli-under-test"))
        .args([
            "audit",
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--key",
            &server.verifier_key,
        ])
        .output()
        .unwrap();
    assert!(
        !tampered.status.success(),
        "{} / {} / records {}",
        String::from_utf8_lossy(&tampered.stdout),
        String::from_utf8_lossy(&tampered.stderr),
        decoded.records.len()
    );
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(
        stderr.contains("does not verify against the checkpoint"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_key_rotates_online_and_auditors_follow_the_cosigned_handover() {
    use infoshare_client::verify;
    let env = TestEnv::new();
    let server = env.start().await;
    let work = tempfile::tempdir().unwrap();
    let police = server.agency(&env, "police").await;
    let school = "rangitoto-school-board";
    let before = police
        .submit_request(infoshare_tests::sample_request(school), "rot-1")
        .await
        .unwrap();
    let old_key = verify::verifier(&server.verifier_key).unwrap();
    verify::receipt(before.receipt.as_ref().unwrap(), &old_key).unwrap();
    // The auditor pins the key in use.
    let first = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));

    let rotated = json(&run_cli(
        &env,
        &server,
        (Role::Admin, "registry-admin"),
        &[],
        &["--json", "admin", "rotate-log-key"],
    ));
    let new_key_text = rotated["verifier_key"].as_str().unwrap().to_string();
    assert_ne!(new_key_text, server.verifier_key);
    let (rotation, handover) = verify::rotation(rotated["statement"].as_str().unwrap()).unwrap();
    assert_eq!(
        (rotation.old_key.as_str(), rotation.new_key.as_str()),
        (server.verifier_key.as_str(), new_key_text.as_str())
    );

    // The same connection goes on; what is signed now is signed by the new key only.
    let after = police
        .submit_request(infoshare_tests::sample_request(school), "rot-2")
        .await
        .unwrap();
    let new_key = verify::verifier(&new_key_text).unwrap();
    let receipt = after.receipt.as_ref().unwrap();
    let latest = verify::receipt(receipt, &new_key).unwrap();
    assert!(verify::receipt(receipt, &old_key).is_err());
    assert!(latest.size > handover.size);
    // What the old key signed stays verifiable with it; the tree is one tree throughout.
    verify::receipt(before.receipt.as_ref().unwrap(), &old_key).unwrap();
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let info = auditor.log_info().await.unwrap();
    assert_eq!(info.verifier_key, new_key_text);
    assert_eq!(
        info.key_rotations,
        vec![rotated["statement"].as_str().unwrap().to_string()]
    );

    // The auditor, still pinned to the old key, follows the handover and proves consistency
    // across it; the next run trusts the new key directly.
    let second = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));
    let followed = &second["key_rotations_followed"][0];
    assert_eq!(followed["new"], new_key_text.as_str());
    // Proven in steps: the pinned checkpoint to the handover, the handover to the latest.
    assert!(followed["at_size"].as_u64() > first["size"].as_u64());
    assert_eq!(second["previous_size"], followed["at_size"]);
    let third = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));
    assert_eq!(third["key_rotations_followed"], serde_json::json!([]));

    // The rotation is a record of the log, by the administrator who made it.
    let logged = infoshare_tests::records_of_event(&auditor, "log-key-rotated").await;
    verify::records(&logged.checkpoint, &logged.records, &new_key).unwrap();
    assert_eq!(logged.records.len(), 1);
    assert_eq!(
        logged.records[0].summary.as_ref().unwrap().actor,
        "admin/registry-admin"
    );

    // After a restart the new key signs, and the log verifies from scratch.
    server.kill9();
    let (verified, out) = env.verify_log();
    assert!(verified, "{out}");
    let server = env.start().await;
    assert_eq!(server.verifier_key, new_key_text);
    let again = json(&auditor_cli(
        &env,
        &server,
        work.path(),
        &["--json", "audit", "verify"],
    ));
    assert_eq!(again["verified"], true);
}
