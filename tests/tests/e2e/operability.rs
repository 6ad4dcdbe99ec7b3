//! Operability: standard gRPC health and server reflection behind the same mTLS,
//! `--check-config`, registry reload on SIGHUP and graceful shutdown on SIGTERM.

use crate::common;

use common::TestEnv;
use infoshare_certs_dev::Role;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn reflection_lists_the_api_and_health_reports_serving() {
    let env = TestEnv::new();
    let server = env.start().await;
    let channel =
        infoshare_client::connect_channel(&server.url(), &env.identity(Role::Agency, "police"))
            .await
            .unwrap();

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "infoshare.v1.AuditService",
        "infoshare.v1.ExchangeService",
        "infoshare.v1.IdentityService",
        "infoshare.v1.ProtocolService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("bench")),
        "the benchmark echo is not served: {names:?}"
    );

    let mut health = HealthClient::new(channel);
    for service in ["", "infoshare.v1.ExchangeService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

#[tokio::test]
async fn check_config_reports_what_is_wrong() {
    let env = TestEnv::new();
    let config = env.path().join("server.toml");
    let ok = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains("configuration OK: 12 agencies"), "{stdout}");
    // (a warning instead once the shipped list nears its end)
    assert!(
        stdout.contains("public holidays") && stdout.contains("through 2028-12-31"),
        "{stdout}"
    );

    std::fs::remove_file(env.path().join("pki/server/key.pem")).unwrap();
    let bad = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("tls") && stderr.contains("key.pem"),
        "{stderr}"
    );

    // A transport bound of zero would serve no one: refused, naming the section.
    let env = TestEnv::with_config("[transport]\nmax_concurrent_streams = 0\n");
    let config = env.path().join("server.toml");
    let bad = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("transport"));

    // A holiday file of the operator's: a broken entry is named; one running out soon warns.
    let env = TestEnv::with_config("[calendar]\nholidays = \"holidays.toml\"\n");
    let config = env.path().join("server.toml");
    let holidays = env.path().join("holidays.toml");
    std::fs::write(
        &holidays,
        "covers_through = \"2026-12-31\"\n[[holiday]]\ndate = \"2026-12-25\"\nname = \" \"\n",
    )
    .unwrap();
    let bad = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("calendar.holidays") && stderr.contains("holidays.holiday[0].name"),
        "{stderr}"
    );
    std::fs::write(
        &holidays,
        "covers_through = \"2026-12-31\"\n[[holiday]]\ndate = \"2026-12-25\"\nname = \"Christmas Day\"\n",
    )
    .unwrap();
    let short = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    let stdout = String::from_utf8_lossy(&short.stdout);
    assert!(
        short.status.success(),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    assert!(
        stdout.contains("WARNING: public holidays known only through 2026-12-31"),
        "{stdout}"
    );
}

/// On PostgreSQL, `--check-config` says the database answers and at which schema version it
/// is; a storage URL carrying a password is refused, naming the section.
#[tokio::test]
async fn check_config_reports_the_postgres_database_and_its_schema() {
    let Some(env) = TestEnv::on_postgres("").await else {
        return;
    };
    let config = env.path().join("server.toml");
    let check = || {
        let out = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(check().contains("PostgreSQL reachable; empty database"));
    drop(env.start_bare());
    assert!(check().contains(&format!(
        "PostgreSQL reachable; schema version {}",
        infoshare_server::store::postgres::schema::SCHEMA_VERSION
    )));

    let text = std::fs::read_to_string(&config).unwrap();
    let with_password = text.replace("postgresql://infoshare@", "postgresql://infoshare:pw@");
    assert_ne!(text, with_password);
    std::fs::write(&config, with_password).unwrap();
    let bad = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("storage") && stderr.contains("password"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_agency_registry_without_dropping_connections() {
    let env = TestEnv::new();
    let server = env.start().await;
    let registry = env.path().join("registry.toml");
    let original = std::fs::read_to_string(&registry).unwrap();
    let police = server.agency(&env, "police").await;
    let ghost = server.agency(&env, common::UNREGISTERED).await;
    let refused = ghost.who_am_i().await.unwrap_err();
    assert!(
        refused.to_string().contains("not a registered principal"),
        "{refused}"
    );

    // Register the agency (its certificate is from the same CA), and deregister MSD.
    let ghost_entry = format!(
        "\n[[agency]]\nid = \"{}\"\nname = \"Ghost Trust\"\nkinds = [\"social-services-practitioner\"]\nsector = \"non-government\"\nclearance = \"IN-CONFIDENCE\"\n",
        common::UNREGISTERED
    );
    let without_msd = original.replace("id = \"msd\"", "id = \"msd-retired\"");
    assert_ne!(without_msd, original, "the sample registry has msd");
    std::fs::write(&registry, format!("{without_msd}{ghost_entry}")).unwrap();
    let msd = server.agency(&env, "msd").await;
    msd.who_am_i()
        .await
        .expect("msd is registered before the reload");
    server.signal("HUP");
    server.wait_for_log("agency registry reloaded").await;

    // The same connections: the new agency is now known, the removed one refused.
    assert_eq!(ghost.who_am_i().await.unwrap().id, common::UNREGISTERED);
    let gone = msd.who_am_i().await.unwrap_err();
    assert!(
        gone.to_string().contains("not a registered principal"),
        "{gone}"
    );
    police.who_am_i().await.expect("others are untouched");

    // A registry that does not parse is refused; the one in force stays.
    std::fs::write(&registry, "[[agency]]\nid = 7\n").unwrap();
    server.signal("HUP");
    server.wait_for_log("registry reload failed").await;
    ghost
        .who_am_i()
        .await
        .expect("the previous registry stays in force");
}

#[tokio::test]
async fn sigterm_ends_streams_with_a_reconnect_status_and_loses_nothing() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let mut stream = school.subscribe_inbox(0).await.unwrap();
    let sent = police
        .submit_request(
            infoshare_tests::sample_request("rangitoto-school-board"),
            "before-term",
        )
        .await
        .unwrap();
    let item = stream.next().await.unwrap().expect("delivered");
    assert_eq!(item.request_id, sent.request_id);

    server.signal("TERM");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("the stream is ended, not left hanging");
    match ended {
        Err(infoshare_client::ClientError::Rpc(e)) => {
            assert_eq!(e.code, tonic::Code::Unavailable, "{}", e.message);
            assert!(
                e.message.contains("reconnect with your last cursor"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    let log = server.log();
    let status = server.wait_exit(10).await;
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("graceful shutdown"), "{log}");

    // Everything acknowledged before the signal is there after a restart.
    let server = env.start().await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let inbox = school.list_inbox(0, 10, false).await.unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].request_id, sent.request_id);
}
