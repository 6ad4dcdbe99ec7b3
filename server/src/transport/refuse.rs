//! Refusing an identity the registry does not know: the connection is served by a minimal
//! HTTP/2 exchange of our own instead of the broker's services. Its first stream is answered
//! UNAUTHENTICATED (naming why), the connection is told to go away and closed; it is given one
//! stream at a time and no flow-control window for request bodies, so it costs no per-stream
//! memory whatever it sends.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// How long a refused connection is given to take its answer.
const LINGER: Duration = Duration::from_secs(5);

/// Serves `io` only to refuse it with `status`.
pub async fn refuse<IO>(io: IO, status: tonic::Status)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async move {
        let mut conn = h2::server::Builder::new()
            .max_concurrent_streams(1)
            .initial_window_size(0)
            .max_header_list_size(16 << 10)
            .handshake::<_, bytes::Bytes>(io)
            .await
            .ok()?;
        if let Some(Ok((request, mut respond))) = conn.accept().await {
            drop(request);
            let (parts, ()) = status.into_http::<()>().into_parts();
            let response = tonic::codegen::http::Response::from_parts(parts, ());
            let _ = respond.send_response(response, true);
        }
        conn.graceful_shutdown();
        // Drive the connection until the client has the answer and the GOAWAY, refusing any
        // stream it still opens.
        while let Some(stream) = conn.accept().await {
            if stream.is_err() {
                break;
            }
        }
        Some(())
    };
    let _ = tokio::time::timeout(LINGER, exchange).await;
}
