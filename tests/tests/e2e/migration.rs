//! Moving a deployment from the embedded engine to PostgreSQL: `--copy-log` copies the data
//! directory and proves the copy, and a broker on the database then serves the same log (the
//! auditor's pinned checkpoint is consistent with the new one) with the same bodies.

use std::process::Command;

use infoshare_client::api::{self, MessageKind};
use infoshare_tests::{sample_disclosure, sample_request};

use crate::common::{TestEnv, auditor_verifies};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_is_copied_into_postgres_proved_and_served_from_there() {
    let Some(cluster) = infoshare_tests::pg_cluster::PgCluster::start() else {
        return;
    };
    let settings = cluster.database().await;
    let password = std::fs::read_to_string(cluster.password_file()).unwrap();
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let s = police
            .submit_request(sample_request("rangitoto-school-board"), &format!("m-{i}"))
            .await
            .unwrap();
        sent.push(s.request_id);
    }
    school
        .acknowledge(&sent[0], MessageKind::Request)
        .await
        .unwrap();
    school.respond(&sent[0], sample_disclosure()).await.unwrap();
    // Every kind of body a record commits to: an update and a withdrawal's reasons too.
    let update = api::InformationUpdate {
        items: vec![api::DisclosedItem {
            category: "attendance".into(),
            classification: api::Classification::InConfidence as i32,
            content: "back at school on Monday".into(),
        }],
        staff_id: "attendance-officer-7".into(),
        consultation: Some(infoshare_tests::consulted()),
        ..Default::default()
    };
    school
        .send_update(&sent[0], update.clone(), "m-update")
        .await
        .unwrap();
    let reason = "no longer needed: the whanau moved";
    police
        .withdraw(&sent[1], reason, "constable-4821")
        .await
        .unwrap();
    let audit = tempfile::tempdir().unwrap();
    auditor_verifies(&env, &server, audit.path());
    server.signal("TERM");
    assert!(server.wait_exit(10).await.success());

    let copy = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
            .args(["--copy-log", env.data_dir().to_str().unwrap(), "--to", url])
            .env("PGPASSWORD", &password)
            .output()
            .unwrap()
    };
    let copied = copy(&settings.url);
    let said = String::from_utf8_lossy(&copied.stdout);
    assert!(
        copied.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert!(said.contains("log copied and proved"), "{said}");
    // A database that holds a log is never copied over.
    let again = copy(&settings.url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));

    // The same configuration, on the database.
    let config = env.path().join("server.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[storage]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
        settings.url,
        cluster.password_file().display()
    ));
    std::fs::write(&config, text).unwrap();
    let server = env.start().await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let inbox = school.list_inbox(0, 50, false).await.unwrap();
    let requests: Vec<_> = inbox
        .items
        .iter()
        .filter(|i| i.kind == MessageKind::Request as i32)
        .collect();
    let ids: Vec<&str> = requests.iter().map(|i| i.request_id.as_str()).collect();
    assert_eq!(ids, sent.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        requests.iter().all(|i| i.request.is_some()),
        "bodies copied"
    );
    let police = server.agency(&env, "police").await;
    let answered = police.get_request(&sent[0]).await.unwrap();
    assert_eq!(answered.response.unwrap(), sample_disclosure());
    assert_eq!(answered.updates.len(), 1);
    assert_eq!(
        answered.updates[0].update.as_ref(),
        Some(&update),
        "the update's body copied"
    );
    let withdrawn = police.get_request(&sent[1]).await.unwrap();
    assert_eq!(
        withdrawn.withdrawal.map(|w| w.reason).as_deref(),
        Some(reason),
        "the withdrawal's reasons copied"
    );
    // The auditor's checkpoint from the embedded log is consistent with the database's.
    auditor_verifies(&env, &server, audit.path());
    police
        .submit_request(sample_request("rangitoto-school-board"), "after-copy")
        .await
        .unwrap();
    let (ok, said) = env.verify_log_at(&settings.url, &password);
    assert!(ok, "{said}");
}
