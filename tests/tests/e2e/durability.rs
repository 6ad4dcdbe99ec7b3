//! What is acknowledged survives SIGKILL; the views are rebuilt from the log.

use crate::common;

use common::TestEnv;
use infoshare_client::api::{MessageKind, RequestStatus};
use infoshare_tests::{sample_disclosure, sample_request};

#[tokio::test]
async fn acknowledged_submits_survive_kill_9() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    // Concurrent submits share group commits; every acknowledged one must survive.
    let mut handles = Vec::new();
    for i in 0..40 {
        let police = police.clone();
        handles.push(tokio::spawn(async move {
            police
                .submit_request(
                    sample_request("rangitoto-school-board"),
                    &format!("kill-{i}"),
                )
                .await
                .unwrap()
                .request_id
        }));
    }
    let mut acked = Vec::new();
    for h in handles {
        acked.push(h.await.unwrap());
    }
    school
        .acknowledge(&acked[0], MessageKind::Request)
        .await
        .unwrap();
    school
        .respond(&acked[0], sample_disclosure())
        .await
        .unwrap();
    server.kill9();

    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let inbox = school.list_inbox(0, 500, false).await.unwrap();
    let mut delivered: Vec<String> = inbox.items.iter().map(|i| i.request_id.clone()).collect();
    delivered.sort();
    let mut expected = acked.clone();
    expected.sort();
    assert_eq!(delivered, expected);
    // Bodies survive too.
    assert!(
        inbox
            .items
            .iter()
            .all(|i| i.request.is_some() && !i.body_purged)
    );
    let detail = police.get_request(&acked[0]).await.unwrap();
    assert_eq!(detail.status, RequestStatus::Responded as i32);
    assert_eq!(detail.response.unwrap(), sample_disclosure());
    // Idempotency state survives: a retry after the crash is a replay.
    let retry = police
        .submit_request(sample_request("rangitoto-school-board"), "kill-3")
        .await
        .unwrap();
    assert!(retry.replayed);
}

#[tokio::test]
async fn deleted_views_are_rebuilt_from_the_log_with_the_same_answers() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            police
                .submit_request(sample_request("rangitoto-school-board"), &format!("v-{i}"))
                .await
                .unwrap()
                .request_id,
        );
    }
    school
        .acknowledge(&ids[1], MessageKind::Request)
        .await
        .unwrap();
    school.respond(&ids[2], sample_disclosure()).await.unwrap();
    police
        .acknowledge(&ids[2], MessageKind::Response)
        .await
        .unwrap();

    let before_inbox = school.list_inbox(0, 100, false).await.unwrap();
    let before_police = police.list_inbox(0, 100, false).await.unwrap();
    let mut before_details = Vec::new();
    for id in &ids {
        before_details.push(police.get_request(id).await.unwrap());
    }
    server.kill9();

    std::fs::remove_dir_all(env.data_dir().join("views")).unwrap();
    let server = env.start().await;
    assert!(
        server.log().contains("rebuilt_views=true"),
        "{}",
        server.log()
    );
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    assert_eq!(
        school.list_inbox(0, 100, false).await.unwrap(),
        before_inbox
    );
    assert_eq!(
        police.list_inbox(0, 100, false).await.unwrap(),
        before_police
    );
    for (id, before) in ids.iter().zip(before_details) {
        assert_eq!(police.get_request(id).await.unwrap(), before);
    }
    let retry = police
        .submit_request(sample_request("rangitoto-school-board"), "v-0")
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.request_id, ids[0]);

    // Garbage in place of the views is treated the same way.
    server.kill9();
    let views = env.data_dir().join("views");
    std::fs::remove_dir_all(&views).unwrap();
    std::fs::create_dir_all(&views).unwrap();
    std::fs::write(views.join("views.redb"), vec![0x5a; 8192]).unwrap();
    let server = env.start().await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    assert_eq!(
        school.list_inbox(0, 100, false).await.unwrap(),
        before_inbox
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_data_refuses_to_start() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    police
        .submit_request(sample_request("msd"), "lock-1")
        .await
        .unwrap();
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
        .arg("--config")
        .arg(env.path().join("server.toml"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another infoshare-server"),
        "{stderr}"
    );
    // The first is unharmed.
    let msd = server.agency(&env, "msd").await;
    assert_eq!(msd.list_inbox(0, 10, false).await.unwrap().items.len(), 1);
}
