//! A hostile counterpart, and a hostile holder of any certificate the CA issued, against a real
//! broker over mTLS: each attack bounded in count and time, each bound asserted.

use crate::common;

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

/// A raw TLS connection to `server` with `role`/`id`'s certificate (ALPN h2).
async fn raw_tls(
    env: &TestEnv,
    server: &common::TestServer,
    role: Role,
    id: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = env.identity_dir(role, id);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A gRPC request for `path` carrying `message`, framed.
fn grpc(path: &str) -> tonic::codegen::http::Request<()> {
    tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

fn framed(message: &impl prost::Message) -> bytes::Bytes {
    let body = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// The server's resident memory, in MiB.
fn rss_mib(server: &common::TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// A normal round trip, timed.
/// A normal round trip by `agency`, timed.
async fn round_trip_as(
    env: &TestEnv,
    server: &common::TestServer,
    agency: &str,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    server.agency(env, agency).await.who_am_i().await.unwrap();
    started.elapsed()
}

/// A normal round trip by an agency no test floods from, timed.
async fn round_trip(env: &TestEnv, server: &common::TestServer) -> std::time::Duration {
    round_trip_as(env, server, "msd").await
}

#[tokio::test]
async fn an_unregistered_identity_gets_one_refused_stream_and_no_memory() {
    let env = TestEnv::new();
    let server = env.start().await;
    let before = rss_mib(&server);
    // One connection: its first stream is refused UNAUTHENTICATED, then it is told to go away.
    let tls = raw_tls(&env, &server, Role::Agency, common::UNREGISTERED).await;
    let (mut client, connection) = h2::client::handshake(tls).await.unwrap();
    let driver = tokio::spawn(connection);
    let (response, _) = client
        .send_request(grpc("/infoshare.v1.IdentityService/WhoAmI"), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "16", "{response:?}");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), driver).await;
    assert!(closed.is_ok(), "the connection is closed after the refusal");

    // A flood: 4 connections trying 20,000 half-open streams each, for at most 3 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut floods = Vec::new();
    for _ in 0..4 {
        let tls = raw_tls(&env, &server, Role::Agency, common::UNREGISTERED).await;
        floods.push(tokio::spawn(async move {
            let Ok((mut client, connection)) = h2::client::handshake(tls).await else {
                return (0, true);
            };
            let driver = tokio::spawn(connection);
            let mut opened = 0u32;
            let mut streams = Vec::new();
            while opened < 20_000 && std::time::Instant::now() < deadline && !driver.is_finished() {
                match client
                    .send_request(grpc("/infoshare.v1.ExchangeService/SubmitRequest"), false)
                {
                    Ok(stream) => {
                        streams.push(stream);
                        opened += 1;
                    }
                    Err(_) => break,
                }
                if opened.is_multiple_of(100) {
                    tokio::task::yield_now().await;
                }
            }
            let closed = tokio::time::timeout(std::time::Duration::from_secs(6), driver)
                .await
                .is_ok();
            (opened, closed)
        }));
    }
    let mut opened = 0;
    for f in floods {
        let (n, closed) = f.await.unwrap();
        assert!(
            closed,
            "the broker closes an unregistered identity's connection"
        );
        opened += n;
    }
    let after = rss_mib(&server);
    let trip = round_trip(&env, &server).await;
    println!(
        "unregistered flood: {opened} streams tried on 4 connections; RSS {before} -> {after} MiB; round trip {trip:?}"
    );
    assert!(after <= before + 32, "RSS {before} -> {after} MiB");
    assert!(trip < std::time::Duration::from_secs(2), "{trip:?}");
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_only_its_budget() {
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let ot = server.agency(&env, "oranga-tamariki").await;
    // About 4.5 MiB of disclosures in Police's inbox.
    for i in 0..72 {
        let mut d = sample_request("oranga-tamariki");
        d.reason.clear();
        let disclosure = infoshare_client::api::ProactiveDisclosure {
            recipient_agency_id: "police".into(),
            authority: infoshare_client::api::LegalAuthority::OtaS66c as i32,
            protocol_id: "youth-reengagement".into(),
            purpose: "support-plan".into(),
            subject: d.subject,
            items: vec![infoshare_client::api::DisclosedItem {
                category: "care-status".into(),
                classification: infoshare_client::api::Classification::Sensitive as i32,
                content: "x".repeat(64 * 1024),
            }],
            reason: "Safety plan in place.".into(),
            consultation: d.consultation,
            staff_id: "sw-1".into(),
        };
        ot.disclose(disclosure, &format!("big-{i}")).await.unwrap();
    }
    // A page is bounded in bytes, and says there is more.
    let page = police.list_inbox(0, 500, false).await.unwrap();
    assert!(
        page.more && page.items.len() < 72,
        "{} items",
        page.items.len()
    );

    let before = rss_mib(&server);
    let tls = raw_tls(&env, &server, Role::Agency, "police").await;
    let (client, mut connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tls)
        .await
        .unwrap();
    // Drive the connection, reporting the stream limit once the broker's SETTINGS arrive.
    let (limit_tx, limit_rx) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut limit_tx = Some(limit_tx);
        std::future::poll_fn(|cx| {
            let polled = std::pin::Pin::new(&mut connection).poll(cx);
            let limit = connection.max_concurrent_send_streams();
            if limit != usize::MAX
                && let Some(tx) = limit_tx.take()
            {
                let _ = tx.send(limit);
            }
            polled
        })
        .await
    });
    let mut client = client.ready().await.unwrap();
    // The broker advertises its stream limit.
    assert_eq!(limit_rx.await.unwrap(), 128);
    let page = framed(&infoshare_client::api::ListInboxRequest {
        after_cursor: 0,
        page_size: 500,
        unacknowledged_only: false,
        ..Default::default()
    });
    let mut pending = Vec::new();
    for _ in 0..100 {
        client = client.ready().await.unwrap();
        let (response, mut body) = client
            .send_request(grpc("/infoshare.v1.ExchangeService/ListInbox"), false)
            .unwrap();
        body.send_data(page.clone(), true).unwrap();
        pending.push(response);
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let held = rss_mib(&server);
    let trip = round_trip(&env, &server).await;
    drop(pending);
    drop(client);
    driver.abort();
    // Once the hoarding connection is gone, its memory is given back.
    let mut released = held;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        released = rss_mib(&server);
        if released <= before + 24 {
            break;
        }
    }
    println!(
        "zero-window hoard: 100 pages of ~4 MiB asked; RSS {before} -> {held} MiB held -> {released} MiB after; round trip {trip:?}"
    );
    assert!(
        held <= before + 160,
        "RSS {before} -> {held} MiB: more than the budget held"
    );
    assert!(trip < std::time::Duration::from_secs(2), "{trip:?}");
    assert!(
        released <= before + 24,
        "RSS {before} -> {released} MiB after the flood"
    );
}

#[tokio::test]
async fn connections_are_capped_per_identity_and_idle_ones_closed() {
    use tokio::io::AsyncReadExt;
    let env = TestEnv::with_config(
        "[transport]\nmax_connections_per_identity = 8\nidle_timeout_secs = 3\n",
    );
    let server = env.start().await;
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(raw_tls(&env, &server, Role::Agency, "msd").await);
    }
    // Past the cap the server closes at once; another agency is served meanwhile.
    let trip_police = round_trip_as(&env, &server, "police").await;
    assert!(trip_police < std::time::Duration::from_secs(2));
    let mut closed_at_once = 0;
    let mut kept = Vec::new();
    for mut tls in open {
        // A kept connection hears the server's SETTINGS at once; one past the cap, its end.
        let mut byte = [0u8; 64];
        match tokio::time::timeout(std::time::Duration::from_secs(2), tls.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed_at_once += 1,
            _ => kept.push(tls),
        }
    }
    assert_eq!(closed_at_once, 12, "20 connections, a cap of 8");
    // With no stream for the idle timeout (3 s here), the rest are closed too.
    for mut tls in kept {
        let mut buf = vec![0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(6), tls.read(&mut buf)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue, // the server's SETTINGS, then nothing
                Err(_) => break false,
            }
        };
        assert!(closed, "an idle connection is closed");
    }
}

#[tokio::test]
async fn a_stream_whose_request_never_arrives_ends_at_the_deadline() {
    let env = TestEnv::with_config("[transport]\nrequest_timeout_secs = 1\n");
    let server = env.start().await;
    let tls = raw_tls(&env, &server, Role::Agency, "police").await;
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    // Headers, and then nothing: no message, no end of stream.
    let (response, _body) = client
        .send_request(grpc("/infoshare.v1.ExchangeService/SubmitRequest"), false)
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), response)
        .await
        .expect("the broker ends the stream")
        .unwrap();
    let status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    // tonic ends a call past its deadline as CANCELLED, "Timeout expired".
    assert_eq!(status.as_deref(), Some("1"), "{response:?}");
    assert_eq!(response.headers()["grpc-message"], "Timeout%20expired");
}

#[tokio::test]
async fn a_copied_data_directory_reveals_no_body_and_is_the_brokers_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let mut request = sample_request("rangitoto-school-board");
    request.reason = "Marker reason ZEBRA-REASON-77 for the review.".into();
    let subject = request.subject.as_mut().unwrap();
    subject.family_name = "Quixotemarker".into();
    subject.date_of_birth = "2013-07-19".into();
    subject.identifiers[0].value = "QQQ7777".into();
    let sent = police.submit_request(request, "seal-1").await.unwrap();
    let mut answer = sample_disclosure();
    answer.items[0].content = "Marker answer WALRUS-ANSWER-99.".into();
    school.respond(&sent.request_id, answer).await.unwrap();
    // Still readable through the broker.
    let detail = police.get_request(&sent.request_id).await.unwrap();
    assert!(detail.request.unwrap().reason.contains("ZEBRA-REASON-77"));

    let markers = [
        "ZEBRA-REASON-77",
        "Quixotemarker",
        "2013-07-19",
        "QQQ7777",
        "WALRUS-ANSWER-99",
    ];
    let mut files = 0;
    let mut stack = vec![env.data_dir()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            let data = std::fs::read(&path).unwrap();
            for marker in markers {
                assert!(
                    !data.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{marker} in {}",
                    path.display()
                );
            }
        }
    }
    assert!(
        files > 5,
        "the log, bodies, views and keys were all looked at"
    );
    let (ok, report) = env.verify_log();
    assert!(ok, "{report}");
}

/// HPACK for one header, as a literal without indexing and a new name (RFC 7541 §6.2.2).
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    for s in [name, value] {
        assert!(s.len() < 127);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn streams_past_the_advertised_limit_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new();
    let server = env.start().await;
    let before = rss_mib(&server);
    // A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS: 300 half-open streams, by hand.
    let mut tls = raw_tls(&env, &server, Role::Agency, "police").await;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[]));
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/infoshare.v1.ExchangeService/SubmitRequest"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        hpack_literal(&mut block, name, value);
    }
    for i in 0..300u32 {
        // HEADERS with END_HEADERS, no END_STREAM: the request never arrives.
        out.extend(h2_frame(0x1, 0x4, 2 * i + 1, &block));
    }
    tls.write_all(&out).await.unwrap();
    tls.flush().await.unwrap();

    let (mut advertised, mut refused) = (None, 0);
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let mut chunk = [0u8; 16384];
        let read = tokio::time::timeout_at(deadline, tls.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, payload) = (buf[3], buf[9..9 + len].to_vec());
            if kind == 0x4 {
                for setting in payload.chunks(6) {
                    if setting[..2] == [0, 3] {
                        advertised = Some(u32::from_be_bytes(setting[2..6].try_into().unwrap()));
                    }
                }
            }
            if kind == 0x3 && payload == [0, 0, 0, 7] {
                refused += 1; // RST_STREAM(REFUSED_STREAM)
            }
            buf.drain(..9 + len);
        }
        if refused >= 300 - 128 {
            break;
        }
    }
    let after = rss_mib(&server);
    println!(
        "300 streams opened by hand: {refused} refused, limit {advertised:?}; RSS {before} -> {after} MiB"
    );
    assert_eq!(advertised, Some(128));
    assert!(
        refused >= 300 - 128,
        "{refused} streams refused past the limit"
    );
    assert!(after <= before + 32, "RSS {before} -> {after} MiB");
    assert!(round_trip(&env, &server).await < std::time::Duration::from_secs(2));
}
