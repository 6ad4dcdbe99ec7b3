//! Limits that protect the shared service: a misbehaving agency degrades only itself.

mod common;

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
        "\n[limits]\ncalls_per_second = 1000.0\nburst = 1000.0\nhandshake_timeout_secs = 1\n",
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
