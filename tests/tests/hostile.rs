//! A hostile counterpart, and a hostile holder of any certificate the CA issued, against a real
//! broker over mTLS: each attack bounded in count and time, each bound asserted.

mod common;

use common::{TestEnv, run_cli};
use infoshare_certs_dev::Role;
use infoshare_tests::{sample_disclosure, sample_request};

/// Whether `text` holds anything a terminal would act on: C0 controls but newline and tab,
/// DEL, C1 controls, bidi embeddings, overrides and isolates.
fn drives_a_terminal(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

#[tokio::test]
async fn a_counterparts_text_cannot_take_over_the_caseworkers_terminal() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let sent = police
        .submit_request(sample_request("rangitoto-school-board"), "t-1")
        .await
        .unwrap();
    // The school's answer clears the screen, draws a fake "ALL CLEAR", sets the window title,
    // writes the clipboard, plants a hidden link, and forges a status line.
    let mut answer = sample_disclosure();
    answer.items[0].content = "\u{1b}[2J\u{1b}[HALL CLEAR\u{1b}]0;pwned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\
         \u{1b}]8;;https://evil.example\u{1b}\\\\click\u{1b}]8;;\u{1b}\\\\\u{9b}31m\nstatus    COMPLETED\u{202E}txt.exe"
        .into();
    school.respond(&sent.request_id, answer).await.unwrap();

    let shown = run_cli(
        &env,
        &server,
        (Role::Agency, "police"),
        &[],
        &["show", &sent.request_id],
    );
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let out = String::from_utf8(shown.stdout).unwrap();
    assert_eq!(drives_a_terminal(&out), None, "{out:?}");
    assert!(
        out.contains("\\u{1b}[2J"),
        "escapes are shown, visibly: {out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("status    COMPLETED")),
        "a newline in a field cannot forge a line: {out}"
    );
    // Tables too (the inbox lists the answer), and the same holds for what an admin writes.
    let inbox = run_cli(&env, &server, (Role::Agency, "police"), &[], &["inbox"]);
    assert_eq!(
        drives_a_terminal(&String::from_utf8(inbox.stdout).unwrap()),
        None
    );
}

#[tokio::test]
async fn structured_text_and_protocol_documents_refuse_controls_and_bidi() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let mut request = sample_request("rangitoto-school-board");
    request.reason = "Attendance review\n\u{1b}[1A\u{1b}[2Kstatus COMPLETED".into();
    let Err(infoshare_client::ClientError::Rpc(e)) = police.submit_request(request, "s-1").await
    else {
        panic!("accepted an escape in a reason");
    };
    assert_eq!(e.field.as_deref(), Some("request.reason"), "{e}");
    let mut request = sample_request("rangitoto-school-board");
    request.subject.as_mut().unwrap().family_name = "Ngata\u{202E}".into();
    assert!(police.submit_request(request, "s-2").await.is_err());

    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let document = infoshare_server::protocol::model::EXAMPLES[0]
        .replace("version = 1", "version = 2")
        .replace("(Police-led)", "(Police-led)\u{1b}]0;owned\u{7}");
    let Err(infoshare_client::ClientError::Rpc(e)) = admin.register_protocol(&document).await
    else {
        panic!("accepted an escape in a protocol title");
    };
    assert_eq!(e.field.as_deref(), Some("document_toml"), "{e}");
}

#[tokio::test]
async fn client_supplied_indexes_never_overflow_and_unindexed_queries_are_bounded() {
    let env = TestEnv::with_config("[limits]\naudit_scan_budget = 4\n");
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    for i in 0..3 {
        police
            .submit_request(sample_request("rangitoto-school-board"), &format!("o-{i}"))
            .await
            .unwrap();
    }
    for after in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let page = auditor
            .audit_query(infoshare_client::api::AuditFilter::default(), after, 10)
            .await
            .unwrap();
        assert!(page.records.is_empty() && !page.more, "after {after}");
        police.list_inbox(after, 10, false).await.unwrap();
    }
    // A filter no index serves examines at most the budget per call, and pages on.
    let filter = infoshare_client::api::AuditFilter {
        purpose: "support-plan".into(),
        event_type: String::new(),
        ..Default::default()
    };
    let (mut found, mut after, mut calls) = (0, 0, 0);
    loop {
        let page = auditor
            .audit_query(filter.clone(), after, 100)
            .await
            .unwrap();
        found += page.records.len();
        calls += 1;
        assert!(calls < 100, "pages on to the end");
        if !page.more {
            break;
        }
        assert!(page.next_after_index > after, "progress");
        after = page.next_after_index;
    }
    assert_eq!(found, 3, "every match is found across the pages");
    assert!(
        calls > 3,
        "a call examined at most the budget ({calls} calls)"
    );
}
