//! The tamper-evident audit log over real mTLS: receipts, auditor queries with offline-verifiable
//! proofs, the breach-investigation timeline, consistency across restarts, and detection of
//! tampering and truncation.

use crate::common;

use common::{TestEnv, on_both_engines};
use infoshare_certs_dev::Role;
use infoshare_client::api::{self, MessageKind};
use infoshare_client::{ClientError, verify};
use infoshare_tests::{sample_disclosure, sample_request};
use tonic::Code;

fn subject_query() -> api::SubjectQuery {
    let s = sample_request("police").subject.unwrap();
    api::SubjectQuery {
        family_name: s.family_name,
        given_names: s.given_names,
        date_of_birth: s.date_of_birth,
        identifier: None,
    }
}

fn filter() -> api::AuditFilter {
    api::AuditFilter::default()
}

/// police → school request answered; OT discloses care status to police; a denied request.
async fn some_history(server: &common::TestServer, env: &TestEnv) -> String {
    let police = server.agency(env, "police").await;
    let school = server.agency(env, "rangitoto-school-board").await;
    let ot = server.agency(env, "oranga-tamariki").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "h-1")
        .await
        .unwrap();
    school
        .acknowledge(&sent.request_id, MessageKind::Request)
        .await
        .unwrap();
    school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    let disclosure = infoshare_tests::sample_proactive_disclosure();
    ot.disclose(disclosure, "h-2").await.unwrap();
    let mut adult = sample_request("rangitoto-school-board");
    adult.subject.as_mut().unwrap().date_of_birth = "1980-01-01".into();
    assert!(police.submit_request(adult, "h-3").await.is_err());
    sent.request_id
}

async fn every_acknowledged_write_and_refusal_carries_a_receipt_that_verifies_offline(
    env: TestEnv,
) {
    let server = env.start().await;
    let key = verify::verifier(&server.verifier_key).unwrap();
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;

    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "r-1")
        .await
        .unwrap();
    let receipt = sent.receipt.unwrap();
    assert_eq!(receipt.log_index, sent.log_index);
    let cp = verify::receipt(&receipt, &key).unwrap();
    assert!(cp.size >= sent.log_index);
    // A replay returns a receipt for the first record.
    let again = police
        .submit_request(sample_request("rangitoto-school-board"), "r-1")
        .await
        .unwrap();
    assert_eq!(again.receipt.as_ref().unwrap().record, receipt.record);
    verify::receipt(&again.receipt.unwrap(), &key).unwrap();

    let ack = school
        .acknowledge(&sent.request_id, MessageKind::Request)
        .await
        .unwrap();
    verify::receipt(&ack.receipt.unwrap(), &key).unwrap();
    let answered = school
        .respond(&sent.request_id, sample_disclosure())
        .await
        .unwrap();
    verify::receipt(&answered.receipt.unwrap(), &key).unwrap();

    // A refusal is logged too, and its receipt comes back in the error.
    let mut adult = sample_request("rangitoto-school-board");
    adult.subject.as_mut().unwrap().date_of_birth = "1980-01-01".into();
    let Err(ClientError::Rpc(e)) = police.submit_request(adult, "r-2").await else {
        panic!("expected a denial");
    };
    let denial = e.receipt.expect("a refusal's receipt");
    verify::receipt(&denial, &key).unwrap();

    // A receipt whose record was altered does not verify.
    let mut forged = receipt.clone();
    forged.record[20] ^= 1;
    assert!(verify::receipt(&forged, &key).is_err());
    // Nor does one checked against another log's key.
    let other = TestEnv::new();
    let other_server = other.start().await;
    let other_key = verify::verifier(&other_server.verifier_key).unwrap();
    assert!(verify::receipt(&receipt, &other_key).is_err());
}

async fn auditor_queries_return_proven_records_and_are_themselves_logged(env: TestEnv) {
    let server = env.start().await;
    let request_id = some_history(&server, &env).await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let key = verify::verifier(&server.verifier_key).unwrap();

    let check = |r: &api::AuditRecordsResponse| {
        verify::records(&r.checkpoint, &r.records, &key).unwrap();
        r.records
            .iter()
            .map(|x| x.summary.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let by_subject = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    subject: Some(subject_query()),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    let kinds: Vec<&str> = by_subject.iter().map(|s| s.event_type.as_str()).collect();
    assert_eq!(kinds, vec!["request-submitted", "disclosure-submitted"]);

    let by_identifier = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    subject: Some(api::SubjectQuery {
                        identifier: Some(api::AgencyIdentifier {
                            scheme: "NHI".into(),
                            value: "zzz 0016".into(),
                        }),
                        ..Default::default()
                    }),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    // Identifiers are normalised before pseudonymising; the refused request about the same
    // identifier (an adult, under s66C) carries its pseudonyms too.
    let kinds: Vec<&str> = by_identifier
        .iter()
        .map(|s| s.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        vec!["request-submitted", "disclosure-submitted", "denied"]
    );

    let by_staff = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    staff: Some(api::StaffQuery {
                        agency_id: "rangitoto-school-board".into(),
                        staff_id: "attendance-officer-7".into(),
                    }),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    assert_eq!(by_staff.len(), 1);
    assert_eq!(by_staff[0].event_type, "response-submitted");
    assert_eq!(by_staff[0].request_id, request_id);
    assert_eq!(by_staff[0].decision, "partial-disclose");
    assert_eq!(by_staff[0].disclosed[0].category, "attendance");

    let denied = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    decision: "denied".into(),
                    agency_id: "police".into(),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].reason_code, "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON");

    let s66c = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    authority: api::LegalAuthority::OtaS66c as i32,
                    protocol_id: "youth-reengagement".into(),
                    event_type: "disclosure-submitted".into(),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    assert_eq!(s66c.len(), 1);
    assert_eq!(s66c[0].actor, "agency/oranga-tamariki");
    assert_eq!(s66c[0].counterpart, "police");

    let future = prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let none = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    since: Some(future),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    assert!(none.is_empty());

    // Paging covers everything once.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = auditor
            .audit_query(
                api::AuditFilter {
                    agency_id: "police".into(),
                    ..filter()
                },
                after,
                2,
            )
            .await
            .unwrap();
        check(&page);
        seen.extend(page.records.iter().map(|r| r.log_index));
        after = page.next_after_index;
        if !page.more {
            break;
        }
    }
    // Police's request, the school's answer to it, OT's disclosure to it, and its denied request:
    // each once, in order.
    assert_eq!(seen, vec![7, 9, 10, 11]);

    // Each query above is in the log: who asked, and how many records it returned.
    let queries = check(
        &auditor
            .audit_query(
                api::AuditFilter {
                    event_type: "audit-query".into(),
                    ..filter()
                },
                0,
                100,
            )
            .await
            .unwrap(),
    );
    assert!(queries.len() >= 8, "{}", queries.len());
    assert!(queries.iter().all(|q| q.actor == "auditor/privacy-audit"));
    assert_eq!(queries[0].result_count, 2);
    assert_eq!(
        queries[0].subject_pseudonyms.len(),
        1,
        "the subject is logged as a pseudonym only"
    );

    // Records by index range.
    let range = auditor.audit_records(1, 3).await.unwrap();
    assert_eq!(
        range
            .records
            .iter()
            .map(|r| r.log_index)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    verify::records(&range.checkpoint, &range.records, &key).unwrap();
}

async fn the_breach_investigation_timeline_shows_who_shared_what_with_whom(env: TestEnv) {
    let server = env.start().await;
    let request_id = some_history(&server, &env).await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let t = auditor.subject_timeline(subject_query()).await.unwrap();
    verify::records(
        &t.checkpoint,
        &t.records,
        &verify::verifier(&server.verifier_key).unwrap(),
    )
    .unwrap();
    let rows: Vec<(String, String, String)> = t
        .records
        .iter()
        .map(|r| {
            let s = r.summary.clone().unwrap();
            (s.event_type, s.actor, s.counterpart)
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "request-submitted".into(),
                "agency/police".into(),
                "rangitoto-school-board".into()
            ),
            (
                "request-acknowledged".into(),
                "agency/rangitoto-school-board".into(),
                String::new()
            ),
            (
                "response-submitted".into(),
                "agency/rangitoto-school-board".into(),
                "police".into()
            ),
            (
                "disclosure-submitted".into(),
                "agency/oranga-tamariki".into(),
                "police".into()
            ),
        ]
    );
    let response = t.records[2].summary.clone().unwrap();
    assert_eq!(response.request_id, request_id);
    assert_eq!(
        response.disclosed[0].classification,
        api::Classification::InConfidence as i32
    );
    let request = t.records[0].summary.clone().unwrap();
    assert_eq!(
        (request.protocol_id.as_str(), request.authority),
        (
            "youth-reengagement",
            Some(api::LegalAuthority::OtaS66c as i32)
        )
    );
}

async fn only_auditors_may_use_the_audit_service(env: TestEnv) {
    let server = env.start().await;
    for (role, id) in [(Role::Agency, "police"), (Role::Admin, "registry-admin")] {
        let client = server.client(&env, role, id).await;
        for result in [
            client.log_info().await.map(|_| ()),
            client.audit_query(filter(), 0, 10).await.map(|_| ()),
            client.subject_timeline(subject_query()).await.map(|_| ()),
            client.export_bundle(filter()).await.map(|_| ()),
            client.consistency_proof(1, 2).await.map(|_| ()),
            client.audit_records(1, 1).await.map(|_| ()),
            client.tile("tile/0/000.p/1").await.map(|_| ()),
        ] {
            match result {
                Err(ClientError::Rpc(e)) => assert_eq!(e.code, Code::PermissionDenied),
                other => panic!("{id}: expected PERMISSION_DENIED, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn checkpoints_stay_consistent_across_restarts_and_indexes_rebuild_the_same() {
    let env = TestEnv::new();
    let server = env.start().await;
    some_history(&server, &env).await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let key = verify::verifier(&server.verifier_key).unwrap();
    let before = verify::checkpoint(&auditor.log_info().await.unwrap().checkpoint, &key).unwrap();
    let subject = api::AuditFilter {
        subject: Some(subject_query()),
        ..filter()
    };
    let first = auditor.audit_query(subject.clone(), 0, 100).await.unwrap();
    let key_before = server.verifier_key.clone();
    server.kill9();

    // Delete every derived index: the same queries give the same records.
    std::fs::remove_dir_all(env.data_dir().join("views")).unwrap();
    let server = env.start().await;
    assert_eq!(
        server.verifier_key, key_before,
        "the log key survives restarts"
    );
    let police = server.agency(&env, "police").await;
    police
        .submit_request(sample_request("rangitoto-school-board"), "after-restart")
        .await
        .unwrap();
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let after = verify::checkpoint(&auditor.log_info().await.unwrap().checkpoint, &key).unwrap();
    assert!(after.size > before.size);
    let proof = auditor
        .consistency_proof(before.size, after.size)
        .await
        .unwrap();
    verify::consistency(&before, &after, &proof.proof).unwrap();
    // A forged "before" is caught.
    let mut forged = before.clone();
    forged.root[0] ^= 1;
    assert!(verify::consistency(&forged, &after, &proof.proof).is_err());

    let second = auditor.audit_query(subject, 0, 100).await.unwrap();
    let records = |r: &api::AuditRecordsResponse| {
        r.records
            .iter()
            .map(|x| (x.log_index, x.record.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        records(&second)[..records(&first).len()],
        records(&first)[..]
    );
    verify::records(&second.checkpoint, &second.records, &key).unwrap();
}

/// The record frames of a segment (payload offset, length); the mark frames between batches
/// (length's top bit set: the batch's signed checkpoint) and the attachments (the next bit: the
/// batch's sealed bodies) are skipped, and the zeros the engine writes ahead of its last frame
/// end the list.
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos + 8 <= data.len() && data[pos..pos + 8] != [0; 8] {
        let flagged = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        let len = (flagged & !(3 << 30)) as usize;
        if flagged & (3 << 30) == 0 {
            out.push((pos + 8, len));
        }
        pos += 8 + len;
    }
    out
}

fn segment(env: &TestEnv) -> std::path::PathBuf {
    env.data_dir().join("log/00000000000000000001.seg")
}

#[tokio::test]
async fn a_flipped_byte_is_found_and_named() {
    let env = TestEnv::new();
    let server = env.start().await;
    some_history(&server, &env).await;
    server.kill9();
    let (ok, out) = env.verify_log();
    assert!(ok, "{out}");
    assert!(out.contains("log verified"), "{out}");

    let path = segment(&env);
    let pristine = std::fs::read(&path).unwrap();
    let (offset, _) = frames(&pristine)[7]; // record 8
    let mut data = pristine.clone();
    data[offset + 12] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    let (ok, out) = env.verify_log();
    assert!(!ok);
    assert!(out.contains("record 8 is corrupt"), "{out}");
    let refused = env.run_server(&["--config", env.path().join("server.toml").to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("entry 8"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A careful forger also fixes the frame checksum: the Merkle root gives it away.
    let len = u32::from_le_bytes(data[offset - 8..offset - 4].try_into().unwrap());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&len.to_le_bytes()),
        &data[offset..offset + len as usize],
    );
    data[offset - 4..offset].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &data).unwrap();
    let (ok, out) = env.verify_log();
    assert!(!ok);
    assert!(out.contains("no longer hash to the signed root"), "{out}");
    let refused = env.run_server(&["--config", env.path().join("server.toml").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a record was changed"));
}

#[tokio::test]
async fn a_truncated_log_is_refused() {
    let env = TestEnv::new();
    let server = env.start().await;
    some_history(&server, &env).await;
    server.kill9();
    let path = segment(&env);
    let data = std::fs::read(&path).unwrap();
    let all = frames(&data);
    let (last, _) = all[all.len() - 2]; // cut the last two records at a frame boundary
    std::fs::write(&path, &data[..last - 8]).unwrap();
    let (ok, out) = env.verify_log();
    assert!(!ok);
    assert!(out.contains("were removed"), "{out}");
    let refused = env.run_server(&["--config", env.path().join("server.toml").to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("records were removed"));
}

/// The tree's tiles, as C2SP tlog-tiles lays them out: an auditor checks the leaves against the
/// records and the root against the signed checkpoint with its own code.
async fn an_auditor_reads_the_trees_tiles_and_checks_them_itself(env: TestEnv) {
    let server = env.start().await;
    some_history(&server, &env).await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let key = verify::verifier(&server.verifier_key).unwrap();
    let info = auditor.log_info().await.unwrap();
    let cp = key.verify(&info.checkpoint).unwrap();
    assert!(cp.size > 1 && cp.size < 256, "{}", cp.size);

    let tile = auditor
        .tile(&format!("tile/0/000.p/{}", cp.size))
        .await
        .unwrap();
    let records = auditor.audit_records(1, cp.size as u32).await.unwrap();
    assert_eq!(tile.data.len() as u64, 32 * cp.size);
    assert_eq!(records.records.len() as u64, cp.size);
    let mut frontier = infoshare_tlog::Frontier::default();
    for (hash, record) in tile.data.chunks(32).zip(&records.records) {
        assert_eq!(
            hash,
            infoshare_tlog::leaf_hash(&record.record),
            "leaf {}",
            record.log_index
        );
        frontier.push(hash.try_into().unwrap());
    }
    assert_eq!(
        frontier.root(),
        cp.root,
        "the tile's leaves give the signed root"
    );
    // A narrower partial tile is the same hashes, cut; a wider one than the log holds (its
    // audit queries are records too: it grew by one), or the full tile, is not there yet; a
    // malformed path says which field.
    let first = auditor.tile("tile/0/000.p/1").await.unwrap();
    assert_eq!(first.data, tile.data[..32]);
    for (path, code) in [
        ("tile/0/000.p/255".to_string(), Code::NotFound),
        ("tile/0/000".to_string(), Code::NotFound),
        ("tile/1/000.p/1".to_string(), Code::NotFound),
        ("tile/0/0".to_string(), Code::InvalidArgument),
        ("tile/0/x000/001".to_string(), Code::InvalidArgument),
    ] {
        match auditor.tile(&path).await {
            Err(ClientError::Rpc(e)) => assert_eq!(e.code, code, "{path}"),
            other => panic!(
                "{path}: expected {code:?}, got {:?}",
                other.map(|t| t.data.len())
            ),
        }
    }
}

/// Start-up no longer rehashes the whole log (it opens the tree from its tiles); the check that
/// follows it does. A record changed under a full tile, its checksum fixed, stops the server
/// that started on it, with the finding, as start-up used to refuse it.
#[tokio::test]
async fn a_record_changed_under_a_full_tile_stops_the_server_soon_after_start() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    // Enough refusals (each a record) for a full tile of 256.
    for i in 0..300 {
        let mut adult = sample_request("rangitoto-school-board");
        adult.subject.as_mut().unwrap().date_of_birth = "1980-01-01".into();
        assert!(
            police
                .submit_request(adult, &format!("t-{i}"))
                .await
                .is_err()
        );
    }
    server.kill9();
    let path = segment(&env);
    let mut data = std::fs::read(&path).unwrap();
    let (offset, len) = frames(&data)[9]; // record 10
    data[offset + len - 1] ^= 0x01;
    let flagged = u32::from_le_bytes(data[offset - 8..offset - 4].try_into().unwrap());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&flagged.to_le_bytes()),
        &data[offset..offset + len],
    );
    data[offset - 4..offset].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &data).unwrap();

    let config = env.path().join("server.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
        .args(["--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server went on serving a changed log");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(!status.success());
    assert!(
        stdout.contains("listening on"),
        "it did start (fast, from its tiles): {stdout}"
    );
    assert!(stderr.contains("a record was changed"), "{stderr}");
}

// The cases above that take a `TestEnv`, each on the embedded and PostgreSQL engines.
on_both_engines!(every_acknowledged_write_and_refusal_carries_a_receipt_that_verifies_offline);
on_both_engines!(auditor_queries_return_proven_records_and_are_themselves_logged);
on_both_engines!(the_breach_investigation_timeline_shows_who_shared_what_with_whom);
on_both_engines!(only_auditors_may_use_the_audit_service);
on_both_engines!(an_auditor_reads_the_trees_tiles_and_checks_them_itself);
