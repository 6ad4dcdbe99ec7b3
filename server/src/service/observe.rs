//! The RPC telemetry layer: one span per call, named for the RPC as OpenTelemetry's RPC
//! conventions say (`infoshare.v1.ExchangeService/SubmitRequest`, `rpc.system = grpc`), with
//! its status and reason codes; and a count and duration of each call by method, status and
//! reason. Handlers record the caller and the request id on the span; nothing else is added.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::status::REASON_HEADER;

/// Wraps every RPC in [`Observe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// See the module.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", path));
        let method = method.to_string();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            infoshare.reason = Empty,
            caller = Empty,
            request_id = Empty,
        );
        let started = Instant::now();
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let result = call.await;
                // Unary errors and refused streams carry their status in the headers
                // (trailers-only); a response without one is a success whose status follows
                // in the trailers.
                let (code, reason) = match &result {
                    Ok(response) => {
                        let header = |name: &str| {
                            response
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        (
                            header("grpc-status")
                                .and_then(|c| c.parse().ok())
                                .unwrap_or(0),
                            header(REASON_HEADER).unwrap_or_default(),
                        )
                    }
                    Err(_) => (tonic::Code::Unknown as i32, String::new()),
                };
                let span = tracing::Span::current();
                span.record("rpc.grpc.status_code", code);
                if !reason.is_empty() {
                    span.record("infoshare.reason", reason.as_str());
                }
                crate::telemetry::metrics().rpc(&method, code, &reason, started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}
