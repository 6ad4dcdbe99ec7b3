//! The caseworker's workflow through the CLI against real servers: an urgent request that goes
//! overdue (notices to both parties, first in the recipient's inbox), the outbox, withdrawal,
//! an update after an answer, a referral sent on, expiry and sending again; and the refused
//! transitions (answering a withdrawn request, updating an unanswered one, a referral to an
//! agency outside the protocol). The server's clock is set and moved with the test clock.

use crate::common;

use common::{TestEnv, TestServer, auditor_verifies, cli, failure, json, on_both_engines, text};
use infoshare_certs_dev::Role;
use serde_json::Value;

/// Friday 15 January 2027, 06:00 NZDT: the servers' clock when each test starts.
const START: u64 = 1_799_946_000_000;
const HOUR: u64 = 3_600_000;

fn send(
    env: &TestEnv,
    server: &TestServer,
    to: &str,
    urgency: &str,
    key: &str,
    categories: &[&str],
) -> String {
    let mut args = vec![
        "--json",
        "send",
        "--to",
        to,
        "--authority",
        "s66c",
        "--protocol",
        "youth-reengagement",
        "--purpose",
        "support-plan",
        "--family-name",
        "Ngata",
        "--given-names",
        "Aroha Mere",
        "--dob",
        "2012-03-04",
        "--reason",
        "She has not been at school for three weeks.",
        "--urgency",
        urgency,
        "--not-consulted",
        "Contact could escalate risk",
        "--staff-id",
        "constable-4821",
        "--idempotency-key",
        key,
    ];
    for c in categories {
        args.extend(["--category", c]);
    }
    let sent = json(&cli(env, server, "police", &args));
    sent["request_id"].as_str().unwrap().to_string()
}

fn inbox(env: &TestEnv, server: &TestServer, agency: &str) -> Vec<Value> {
    json(&cli(env, server, agency, &["--json", "inbox"]))["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn show(env: &TestEnv, server: &TestServer, agency: &str, id: &str) -> Value {
    json(&cli(env, server, agency, &["--json", "show", id]))
}

fn deadlines(env: &TestEnv, server: &TestServer) -> Value {
    json(&common::run_cli(
        env,
        server,
        (Role::Admin, "registry-admin"),
        &[],
        &["--json", "admin", "deadlines"],
    ))
}

const BOTH: [&str; 2] = ["attendance", "learning-support"];

/// An immediate-safety request goes overdue after 4 hours: a notice to both parties, first in
/// the school's inbox, OVERDUE in `show`; the school declines part as not held and suggests the
/// Ministry, sends an update, and Police sends the request on to the Ministry in one command.
/// Police withdraws its other request, which the school then cannot answer. Updating before
/// answering, and suggesting an agency outside the protocol, are refused and logged.
async fn an_overdue_urgent_request_an_update_and_a_referral(env: TestEnv) {
    env.set_clock_at(START);
    let server = env.start().await;
    let school = "rangitoto-school-board";
    let routine = send(&env, &server, school, "routine", "w-routine", &BOTH);
    let urgent = send(&env, &server, school, "immediate-safety", "w-urgent", &BOTH);

    // The urgent one comes first, due in 4 hours, in New Zealand time.
    let items = inbox(&env, &server, school);
    assert_eq!(items[0]["request_id"], urgent.as_str());
    assert_eq!(items[0]["urgency"], "URGENCY_IMMEDIATE_SAFETY");
    assert!(
        items[0]["due_at_nz"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-15T10:0"),
        "{}",
        items[0]
    );
    assert_eq!(items[1]["request_id"], routine.as_str());
    let outbox = json(&cli(&env, &server, "police", &["--json", "outbox"]));
    assert_eq!(outbox["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        outbox["items"][0]["due_at_nz"], "2027-01-30T00:00:00+13:00",
        "routine: 10 working days, to the end of Friday 29 January"
    );

    // Five hours on, the deadline run marks it overdue: once, with a notice to each party.
    env.set_clock_at(START + 5 * HOUR);
    assert_eq!(deadlines(&env, &server)["overdue"], 1);
    assert_eq!(deadlines(&env, &server)["overdue"], 0);
    let police_notice = inbox(&env, &server, "police");
    let notice = police_notice
        .iter()
        .find(|i| i["kind"] == "MESSAGE_KIND_NOTICE")
        .unwrap();
    assert_eq!(notice["notice"], "NOTICE_KIND_OVERDUE");
    assert_eq!(notice["related_request_id"], urgent.as_str());
    let school_items = inbox(&env, &server, school);
    assert_eq!(school_items[0]["request_id"], urgent.as_str());
    assert_eq!(school_items[0]["overdue"], true);
    let table = text(&cli(&env, &server, school, &["inbox"]));
    assert!(table.contains("OVERDUE"), "{table}");
    let human = text(&cli(&env, &server, "police", &["show", &urgent]));
    assert!(human.contains("OVERDUE"), "{human}");
    assert!(human.contains("REQUEST_OVERDUE"), "{human}");
    json(&cli(
        &env,
        &server,
        "police",
        &["--json", "ack", &urgent, "--notice"],
    ));

    // Updating an unanswered request is refused; so is a referral outside the protocol.
    let update = [
        "--json",
        "update",
        urgent.as_str(),
        "--item",
        "attendance:in-confidence:Attended every day this week.",
        "--consulted",
        "--staff-id",
        "attendance-officer-7",
    ];
    assert!(failure(&cli(&env, &server, school, &update)).contains("NOT_ANSWERED_YET"));
    let answer = |refer_to: &str| {
        cli(
            &env,
            &server,
            school,
            &[
                "respond",
                &urgent,
                "--decision",
                "partial",
                "--item",
                "attendance:in-confidence:Attendance 41% this term.",
                "--ground",
                "not-held",
                "--explanation",
                "No learning support records held here.",
                "--refer-to",
                refer_to,
                "--consulted",
                "--staff-id",
                "attendance-officer-7",
            ],
        )
    };
    let refused = failure(&answer("health-nz"));
    assert!(refused.contains("REFERRAL_NOT_PARTY"), "{refused}");
    text(&answer("education"));

    // The update reaches Police, linked to the request; Police acknowledges it.
    let sent = json(&cli(&env, &server, school, &update));
    let update_id = sent["request_id"].as_str().unwrap().to_string();
    let police_items = inbox(&env, &server, "police");
    let item = police_items
        .iter()
        .find(|i| i["kind"] == "MESSAGE_KIND_UPDATE")
        .unwrap();
    assert_eq!(item["request_id"], update_id.as_str());
    assert_eq!(item["related_request_id"], urgent.as_str());
    let detail = show(&env, &server, "police", &urgent);
    assert_eq!(detail["updates"][0]["update_id"], update_id.as_str());
    assert_eq!(
        detail["response"]["referred_agency_id"], "education",
        "{detail}"
    );
    json(&cli(
        &env,
        &server,
        "police",
        &["--json", "ack", &update_id, "--update"],
    ));
    assert_eq!(
        show(&env, &server, "police", &urgent)["updates"][0]["acknowledged"],
        true
    );

    // Sent on to the agency the answer suggested, in one command.
    let onward = json(&cli(
        &env,
        &server,
        "police",
        &["--json", "resend", &urgent],
    ));
    let onward_id = onward["request_id"].as_str().unwrap();
    let education = inbox(&env, &server, "education");
    assert_eq!(education[0]["request_id"], onward_id);
    assert_eq!(education[0]["related_request_id"], urgent.as_str());
    assert_eq!(
        show(&env, &server, "police", &urgent)["resent_as"][0],
        onward_id
    );

    // Police withdraws the routine request; the school sees it withdrawn and cannot answer it.
    let withdrawn = json(&cli(
        &env,
        &server,
        "police",
        &[
            "--json",
            "withdraw",
            &routine,
            "--reason",
            "Aroha is back at school.",
            "--staff-id",
            "constable-4821",
        ],
    ));
    assert_eq!(withdrawn["already_withdrawn"], false);
    let seen = show(&env, &server, school, &routine);
    assert_eq!(seen["status"], "REQUEST_STATUS_WITHDRAWN");
    assert_eq!(seen["withdrawal"]["reason"], "Aroha is back at school.");
    let notice = inbox(&env, &server, school)
        .into_iter()
        .find(|i| i["notice"] == "NOTICE_KIND_WITHDRAWN")
        .unwrap();
    assert_eq!(notice["withdrawal"]["reason"], "Aroha is back at school.");
    let late = cli(
        &env,
        &server,
        school,
        &[
            "respond",
            &routine,
            "--decision",
            "decline",
            "--ground",
            "not-held",
            "--explanation",
            "Nothing held.",
            "--staff-id",
            "attendance-officer-7",
        ],
    );
    assert!(failure(&late).contains("REQUEST_WITHDRAWN"));
    let submitted = json(&cli(
        &env,
        &server,
        "police",
        &["--json", "outbox", "--status", "withdrawn"],
    ));
    assert_eq!(submitted["items"][0]["request_id"], routine.as_str());

    // Every new record verifies, and the refusals are in the log.
    let audit = tempfile::tempdir().unwrap();
    auditor_verifies(&env, &server, audit.path());
    let auditor = server.client(&env, Role::Auditor, "privacy-audit").await;
    let denied = infoshare_tests::records_of_event(&auditor, "denied").await;
    let reasons: Vec<String> = denied
        .records
        .iter()
        .map(|r| r.summary.as_ref().unwrap().reason_code.clone())
        .collect();
    for reason in [
        "NOT_ANSWERED_YET",
        "REFERRAL_NOT_PARTY",
        "REQUEST_WITHDRAWN",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "{reasons:?}");
    }
}
on_both_engines!(an_overdue_urgent_request_an_update_and_a_referral);

/// A request the school does not acknowledge within the collection window (5 NZ working days
/// by default) expires: Police gets a non-delivery notice and sends it again; the school can no
/// longer acknowledge it. An acknowledged request does not expire.
#[tokio::test]
async fn an_uncollected_request_expires_and_is_sent_again() {
    let env = TestEnv::with_config("[deadlines]\ninterval_secs = 3600\n");
    env.set_clock_at(START);
    let server = env.start().await;
    let school = "rangitoto-school-board";
    let lapsing = send(&env, &server, school, "routine", "x-1", &BOTH);
    let collected = send(&env, &server, "education", "routine", "x-2", &BOTH);
    json(&cli(
        &env,
        &server,
        "education",
        &["--json", "ack", &collected],
    ));
    let detail = show(&env, &server, "police", &lapsing);
    assert_eq!(detail["expires_at"], "2027-01-22T11:00:00Z", "{detail}");

    env.set_clock_at(START + 8 * 24 * HOUR);
    assert_eq!(deadlines(&env, &server)["expired"], 1);
    let notice = inbox(&env, &server, "police")
        .into_iter()
        .find(|i| i["notice"] == "NOTICE_KIND_EXPIRED")
        .unwrap();
    assert_eq!(notice["related_request_id"], lapsing.as_str());
    let table = text(&cli(&env, &server, "police", &["inbox"]));
    assert!(table.contains("NOT DELIVERED"), "{table}");
    assert_eq!(
        show(&env, &server, "police", &lapsing)["status"],
        "REQUEST_STATUS_EXPIRED"
    );
    assert_ne!(
        show(&env, &server, "police", &collected)["status"],
        "REQUEST_STATUS_EXPIRED"
    );
    assert!(failure(&cli(&env, &server, school, &["ack", &lapsing])).contains("REQUEST_EXPIRED"));
    let again = json(&cli(
        &env,
        &server,
        "police",
        &["--json", "resend", &lapsing, "--to", school],
    ));
    assert_eq!(again["replayed"], false);
    let twice = json(&cli(
        &env,
        &server,
        "police",
        &["--json", "resend", &lapsing, "--to", school],
    ));
    assert_eq!(
        (twice["replayed"].clone(), twice["request_id"].clone()),
        (Value::Bool(true), again["request_id"].clone()),
        "sending again twice sends once"
    );
}

/// What a refused call answered over the wire: its gRPC code, reason, and the field or the
/// policy rule (a state refusal names neither).
fn refusal<T: std::fmt::Debug>(
    r: Result<T, infoshare_client::ClientError>,
) -> (tonic::Code, String, String) {
    match r {
        Err(infoshare_client::ClientError::Rpc(e)) => {
            if e.code != tonic::Code::InvalidArgument {
                // A refused attempt on an exchange is logged: its receipt proves it.
                assert!(e.receipt.is_some(), "{e}");
            }
            (
                e.code,
                e.reason.unwrap_or_default(),
                e.field.or(e.rule).unwrap_or_default(),
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every refused transition of the workflow, over the wire: the status code, the reason code
/// and the field or rule a client in any language reads; each attempt on an exchange logged.
#[tokio::test]
async fn every_refused_transition_names_its_reason() {
    use infoshare_client::api;
    use tonic::Code;
    let env = TestEnv::with_config("[deadlines]\ninterval_secs = 3600\n");
    env.set_clock_at(START);
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let admin = server.client(&env, Role::Admin, "registry-admin").await;
    let sample = || infoshare_tests::sample_request("rangitoto-school-board");
    let open = police
        .submit_request(sample(), "t-open")
        .await
        .unwrap()
        .request_id;
    let answered = police
        .submit_request(sample(), "t-ans")
        .await
        .unwrap()
        .request_id;
    let lapsing = police
        .submit_request(sample(), "t-lapse")
        .await
        .unwrap()
        .request_id;
    school
        .acknowledge(&open, api::MessageKind::Request)
        .await
        .unwrap();
    school
        .acknowledge(&answered, api::MessageKind::Request)
        .await
        .unwrap();
    let mut full = infoshare_tests::sample_disclosure();
    full.decision = api::Decision::Disclose as i32;
    full.decline_ground = 0;
    full.explanation.clear();
    full.items.push(api::DisclosedItem {
        category: "learning-support".into(),
        classification: api::Classification::InConfidence as i32,
        content: "Reading support twice a week.".into(),
    });
    school.respond(&answered, full).await.unwrap();
    let update = |category: &str| api::InformationUpdate {
        items: vec![api::DisclosedItem {
            category: category.into(),
            classification: api::Classification::InConfidence as i32,
            content: "Attendance 70% since.".into(),
        }],
        staff_id: "attendance-officer-7".into(),
        consultation: Some(infoshare_tests::consulted()),
        ..Default::default()
    };
    let update_id = school
        .send_update(&answered, update("attendance"), "t-u")
        .await
        .unwrap()
        .update_id;
    env.set_clock_at(START + 8 * 24 * HOUR);
    assert_eq!(admin.run_deadlines().await.unwrap().expired, 1);

    let mut referral_on_wrong_ground = infoshare_tests::sample_disclosure();
    referral_on_wrong_ground.decline_ground = api::DeclineGround::EndangersSafety as i32;
    referral_on_wrong_ground.referred_agency_id = "education".into();
    let mut resend = api::InformationRequest {
        recipient_agency_id: "education".into(),
        ..sample()
    };
    resend.categories = vec!["attendance".into()];
    let cases = vec![
        (
            "withdraw by the recipient",
            refusal(school.withdraw(&open, "Not ours.", "x").await),
            (Code::PermissionDenied, "NOT_THE_REQUESTER", ""),
        ),
        (
            "withdraw an answered request",
            refusal(police.withdraw(&answered, "Too late.", "x").await),
            (Code::FailedPrecondition, "ALREADY_ANSWERED", ""),
        ),
        (
            "withdraw with reasons that say nothing",
            refusal(police.withdraw(&open, "\u{200B} ", "x").await),
            (
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "withdrawal.reason",
            ),
        ),
        (
            "update an unanswered request",
            refusal(
                school
                    .send_update(&open, update("attendance"), "t-u2")
                    .await,
            ),
            (Code::FailedPrecondition, "NOT_ANSWERED_YET", ""),
        ),
        (
            "update by the requester",
            refusal(
                police
                    .send_update(&answered, update("attendance"), "t-u3")
                    .await,
            ),
            (
                Code::PermissionDenied,
                "NOT_THE_RECIPIENT",
                "response.from_recipient",
            ),
        ),
        (
            "update with a category not requested",
            refusal(
                school
                    .send_update(&answered, update("care-status"), "t-u4")
                    .await,
            ),
            (
                Code::PermissionDenied,
                "DISCLOSURE_NOT_REQUESTED",
                "response.only_requested",
            ),
        ),
        (
            "a referral without the not-held ground",
            refusal(school.respond(&open, referral_on_wrong_ground).await),
            (
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "response.referred_agency_id",
            ),
        ),
        (
            "send on a request answered in full",
            refusal(police.send_on(resend.clone(), "t-r1", &answered).await),
            (Code::FailedPrecondition, "NOT_RESENDABLE", ""),
        ),
        (
            "acknowledge an update as a request",
            refusal(
                police
                    .acknowledge(&update_id, api::MessageKind::Request)
                    .await,
            ),
            (Code::FailedPrecondition, "WRONG_MESSAGE_KIND", ""),
        ),
        (
            "acknowledge notices where there are none",
            refusal(
                police
                    .acknowledge(&answered, api::MessageKind::Notice)
                    .await,
            ),
            (Code::FailedPrecondition, "NO_NOTICE", ""),
        ),
        (
            "acknowledge an expired request",
            refusal(
                school
                    .acknowledge(&lapsing, api::MessageKind::Request)
                    .await,
            ),
            (Code::FailedPrecondition, "REQUEST_EXPIRED", ""),
        ),
        (
            "answer an expired request",
            refusal(
                school
                    .respond(&lapsing, infoshare_tests::sample_disclosure())
                    .await,
            ),
            (Code::FailedPrecondition, "REQUEST_EXPIRED", ""),
        ),
        (
            "a page token the broker never gave",
            refusal(police.list_inbox_by_priority("w00", 10, false).await),
            (Code::InvalidArgument, "INVALID_ARGUMENT", "page_token"),
        ),
    ];
    for (what, got, (code, reason, field)) in cases {
        assert_eq!(
            (got.0, got.1.as_str(), got.2.as_str()),
            (code, reason, field),
            "{what}"
        );
    }
    // The lapsed request can still be sent on, by its requester.
    police.send_on(sample(), "t-r2", &lapsing).await.unwrap();
}
