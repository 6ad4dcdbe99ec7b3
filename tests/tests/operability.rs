//! Operability: standard gRPC health and server reflection behind the same mTLS, and
//! `--check-config`.

mod common;

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
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK: 12 agencies"));

    std::fs::remove_file(env.path().join("pki/server/key.pem")).unwrap();
    let bad = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("tls") && stderr.contains("key.pem"),
        "{stderr}"
    );
}
