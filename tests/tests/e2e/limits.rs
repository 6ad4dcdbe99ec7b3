//! Limits that protect the shared service: a misbehaving agency degrades only itself.

use crate::common;

use common::TestEnv;
use infoshare_client::ClientError;
use tonic::Code;

const LIMITS: &str = "\n[limits]\ncalls_per_second = 2.0\nburst = 20.0\nstreams_per_principal = 1\nstream_send_timeout_secs = 1\n";

fn reason<T>(r: Result<T, ClientError>) -> Option<(Code, String)> {
    match r {
        Ok(_) => None,
        Err(ClientError::Rpc(e)) => Some((e.code, e.reason.unwrap_or_default())),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_agency_over_its_call_rate_is_slowed_and_no_one_else_is() {
    let env = TestEnv::with_config(LIMITS);
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let mut limited = 0;
    for _ in 0..40 {
        if let Some((code, why)) = reason(police.who_am_i().await) {
            assert_eq!(
                (code, why.as_str()),
                (Code::ResourceExhausted, "RATE_LIMITED")
            );
            limited += 1;
        }
    }
    assert!(limited >= 15, "{limited} of 40 calls limited");
    let msd = server.agency(&env, "msd").await;
    msd.who_am_i().await.expect("another agency is unaffected");
    // Tokens come back with time.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    police.who_am_i().await.expect("the bucket refills");
}

#[tokio::test]
async fn concurrent_streams_are_capped_per_agency() {
    let env = TestEnv::with_config(LIMITS);
    let server = env.start().await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let first = school.subscribe_inbox(0).await.unwrap();
    let second = school.subscribe_inbox(0).await;
    assert_eq!(
        reason(second),
        Some((Code::ResourceExhausted, "TOO_MANY_STREAMS".into()))
    );
    // Another agency has its own allowance.
    let ot = server.agency(&env, "oranga-tamariki").await;
    let _other = ot.subscribe_inbox(0).await.unwrap();
    // Closing the stream frees the slot.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match school.subscribe_inbox(0).await {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(600)).await
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    }
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_and_blocks_no_one() {
    let env = TestEnv::with_config(
        "\n[limits]\ncalls_per_second = 1000.0\nburst = 1000.0\n[transport]\nhandshake_timeout_secs = 1\n",
    );
    let server = env.start().await;
    // A TCP connection that never starts TLS.
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Meanwhile everyone else is served.
    server
        .agency(&env, "police")
        .await
        .who_am_i()
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await
    .expect("the server closes a stalled handshake within its timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    server.wait_for_log("TLS handshake timed out").await;
}

#[tokio::test]
async fn a_stream_client_that_stops_reading_loses_only_its_stream_and_resumes_from_its_cursor() {
    const SENT: u64 = 300;
    let env = TestEnv::with_config(
        "\n[limits]\ncalls_per_second = 1000.0\nburst = 1000.0\nstream_send_timeout_secs = 1\n",
    );
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    for i in 0..SENT {
        let mut request = infoshare_tests::sample_request("rangitoto-school-board");
        // ~4 KB per delivery, so the unread stream backs up within a few hundred items.
        request.reason = format!("{i} {}", "r".repeat(3990));
        police
            .submit_request(request, &format!("slow-{i}"))
            .await
            .unwrap();
    }
    // The school's stream client, on its own connection with the standard 64 KiB HTTP/2
    // windows, subscribes and then reads nothing.
    let identity = env.identity(infoshare_certs_dev::Role::Agency, "rangitoto-school-board");
    let channel = infoshare_client::endpoint(&server.url(), &identity)
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let stuck = infoshare_client::Client::from_channel(channel);
    let mut stream = stuck.subscribe_inbox(0).await.unwrap();
    server.wait_for_log("slow stream client; closing").await;

    // Everyone else, the same agency's other connections included, goes on.
    let school = server.agency(&env, "rangitoto-school-board").await;
    let page = school.list_inbox(0, 10, false).await.unwrap();
    assert_eq!(page.items.len(), 10);
    server.agency(&env, "msd").await.who_am_i().await.unwrap();

    // The stuck client gets what was queued for it, then a status telling it to reconnect.
    let mut cursor = 0;
    let mut received = 0u64;
    let ended = loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next());
        match next.await.expect("the stream neither delivers nor ends") {
            Ok(Some(item)) => {
                assert!(item.cursor > cursor, "in order, no repeats");
                cursor = item.cursor;
                received += 1;
            }
            Ok(None) => panic!("the stream ended without saying why"),
            Err(e) => break e,
        }
    };
    match ended {
        ClientError::Rpc(e) => {
            assert_eq!(e.code, Code::ResourceExhausted, "{}", e.message);
            assert!(
                e.message.contains("reconnect with your last cursor"),
                "{}",
                e.message
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        received < SENT,
        "the stream was cut short ({received} of {SENT})"
    );

    // Resuming from its cursor delivers the rest, exactly once.
    let mut resumed = school.subscribe_inbox(cursor).await.unwrap();
    while received < SENT {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), resumed.next());
        let item = next.await.unwrap().unwrap().expect("the rest is delivered");
        assert!(item.cursor > cursor);
        cursor = item.cursor;
        received += 1;
    }
}
