//! Who may connect: a client certificate from the configured CA naming a registered principal.

use crate::common;

use common::{TestEnv, UNREGISTERED};
use infoshare_certs_dev::Role;
use infoshare_client::{Client, ClientError, Identity};
use tonic::Code;

/// A client without a valid certificate may complete the TLS handshake from its side (TLS 1.3
/// checks the client's certificate after the client finishes), so the refusal shows either as a
/// failed connect or as a failed first call: either way nothing gets through. Asked on a
/// connection that reads first, the broker's refusal is named by its TLS alert, in one line, not
/// as `UNKNOWN: transport error`.
async fn refused(url: &str, identity: &Identity, alert: &str) {
    let err = match Client::connect(url, identity).await {
        Ok(client) => client.who_am_i().await.expect_err("call must fail"),
        Err(e) => e,
    };
    match &err {
        ClientError::Rpc(e) if e.tls_alert.is_some() => assert_eq!(e.tls_alert, Some(alert)),
        ClientError::Rpc(e) => assert_ne!(e.code, Code::Ok),
        ClientError::Connect(..) => {}
        other => panic!("unexpected error {other}"),
    }
    let refusal = infoshare_client::handshake_refusal(url, identity)
        .await
        .expect("the broker's alert");
    assert_eq!(refusal.code, Code::Unauthenticated);
    assert_eq!(refusal.tls_alert, Some(alert), "{refusal}");
    let line = refusal.to_string();
    assert!(line.contains(&format!("(TLS alert {alert})")), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let env = TestEnv::new();
    let server = env.start().await;
    let ca = std::fs::read(env.identity_dir(Role::Agency, "police").join("ca.pem")).unwrap();
    refused(
        &server.url(),
        &Identity::anonymous(ca),
        "certificate_required",
    )
    .await;
    server.wait_for_log("TLS handshake refused").await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let env = TestEnv::new();
    let server = env.start().await;
    let other = TestEnv::new();
    // Trust the real server, but present a "police" certificate signed by another CA.
    let dir = tempfile::tempdir().unwrap();
    let real = env.identity_dir(Role::Agency, "police");
    let forged = other.identity_dir(Role::Agency, "police");
    std::fs::copy(real.join("ca.pem"), dir.path().join("ca.pem")).unwrap();
    std::fs::copy(forged.join("cert.pem"), dir.path().join("cert.pem")).unwrap();
    std::fs::copy(forged.join("key.pem"), dir.path().join("key.pem")).unwrap();
    // The test CAs share one name, so the broker finds the issuer but not its signature.
    refused(
        &server.url(),
        &Identity::from_dir(dir.path()).unwrap(),
        "decrypt_error",
    )
    .await;
    // The caseworker's CLI says so in one line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infoshare-cli-under-test"))
        .args(["--server", &server.url(), "--identity"])
        .arg(dir.path())
        .arg("whoami")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: UNAUTHENTICATED: the broker could not verify this client certificate"
        ) && stderr.contains("(TLS alert decrypt_error)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_certificate_without_the_client_auth_usage_is_refused() {
    let env = TestEnv::new();
    let server = env.start().await;
    let dir = tempfile::tempdir().unwrap();
    infoshare_certs_dev::issue_client_without_eku(
        &env.path().join("pki"),
        &infoshare_certs_dev::Principal::new(Role::Agency, "police"),
        dir.path(),
    )
    .unwrap();
    refused(
        &server.url(),
        &Identity::from_dir(dir.path()).unwrap(),
        "unsupported_certificate",
    )
    .await;
}

#[tokio::test]
async fn an_unregistered_identity_is_unauthenticated() {
    let env = TestEnv::new();
    let server = env.start().await;
    let ghost = server.agency(&env, UNREGISTERED).await;
    match ghost.who_am_i().await {
        Err(ClientError::Rpc(e)) => {
            assert_eq!(e.code, Code::Unauthenticated);
            assert_eq!(e.reason.as_deref(), Some("UNREGISTERED_IDENTITY"));
            assert!(e.message.contains(UNREGISTERED), "{}", e.message);
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    let police = server.agency(&env, "police").await;
    let me = police.who_am_i().await.unwrap();
    assert_eq!(me.spiffe_id, "spiffe://infoshare.dev/agency/police");
    assert_eq!(me.display_name, "New Zealand Police");
    assert_eq!(me.certificate_sha256.len(), 64);
}

#[tokio::test]
async fn the_server_speaks_only_tls_1_3() {
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let env = TestEnv::new();
    let server = env.start().await;
    let dir = env.identity_dir(Role::Agency, "police");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let result = connector.connect(name, tcp).await;
    assert!(result.is_err(), "a TLS 1.2 handshake must fail");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let env = TestEnv::new();
    let server = env.start().await;
    let dir = tempfile::tempdir().unwrap();
    infoshare_certs_dev::issue_client(
        &env.path().join("pki"),
        &infoshare_certs_dev::Principal::new(Role::Agency, "police"),
        infoshare_certs_dev::Validity {
            not_before: common::time_days(-30),
            not_after: common::time_days(-1),
        },
        dir.path(),
    )
    .unwrap();
    refused(
        &server.url(),
        &Identity::from_dir(dir.path()).unwrap(),
        "certificate_expired",
    )
    .await;
    server.wait_for_log("TLS handshake refused").await;
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_after_a_crl_reload_without_restart() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police_dir = env.identity_dir(Role::Agency, "police");
    // Before: police connects.
    let before = server.agency(&env, "police").await;
    before.who_am_i().await.unwrap();

    infoshare_certs_dev::write_crl(
        &env.path().join("pki"),
        &[police_dir.join("cert.pem")],
        &env.path().join("crl.pem"),
        common::time_days(30),
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("TLS configuration reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload: {}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // After: a new connection with the revoked certificate is refused; others still work, and
    // the server never restarted.
    refused(
        &server.url(),
        &Identity::from_dir(&police_dir).unwrap(),
        "certificate_revoked",
    )
    .await;
    let msd = server.agency(&env, "msd").await;
    msd.who_am_i().await.unwrap();
    assert!(
        !server
            .log()
            .contains("ledger open records=0 bodies=0 replayed=0 rebuilt_views=false")
    );
}
