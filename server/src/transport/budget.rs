//! The answer budget of a connection, and its open streams, kept by a tower layer around every
//! service.
//!
//! Before a call runs it reserves what its answer may take (small for acknowledgements, a full
//! page for lists and reads); a connection whose budget is spent waits here — holding only its
//! request — until its earlier answers have gone out, or the request deadline ends the call.
//! Each data frame of the answer is then charged exactly (the reservation is trimmed to it) and
//! carries its share of the budget until HTTP/2 has written it to the socket and dropped it, so
//! answers a client does not read hold the budget, not more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;

use super::idle::{BUDGET_UNIT, StreamGuard};
use crate::tls::PeerInfo;

/// Budget units for `bytes`.
fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX)
}

/// What a call reserves before it runs: a page for the calls that answer with lists, bodies or
/// documents; little for the rest (a larger answer is charged in full all the same).
fn reservation(path: &str) -> usize {
    const LARGE: &[&str] = &[
        "/ListInbox",
        "/GetRequest",
        "/QueryRecords",
        "/SubjectTimeline",
        "/GetRecords",
        "/ExportBundle",
        "/GetProtocol",
        "/ListProtocols",
        "/ServerReflectionInfo",
    ];
    if LARGE.iter().any(|m| path.ends_with(m)) {
        super::MAX_ANSWER_BYTES
    } else {
        64 << 10
    }
}

/// Wraps every service in [`Budgeted`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BudgetLayer;

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted { inner }
    }
}

/// See the module.
#[derive(Clone, Debug)]
pub struct Budgeted<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Budgeted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    B: Send + 'static,
    R: Body<Data = Bytes>,
{
    type Response = http::Response<Charged<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The service made ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.connection.clone());
        let reserve = units(reservation(request.uri().path()));
        Box::pin(async move {
            let Some(state) = state else {
                // In-process callers (no TLS connection) have no budget to keep.
                return inner.call(request).await.map(|r| r.map(Charged::free));
            };
            let stream = state.stream();
            let budget = state.budget.clone();
            let reserved = budget
                .clone()
                .acquire_many_owned(reserve.min(state.budget_units))
                .await
                .ok();
            let response = inner.call(request).await?;
            Ok(response.map(|body| Charged {
                body,
                budget: Some((budget, state.budget_units)),
                reserved,
                waiting: None,
                _stream: Some(stream),
            }))
        })
    }
}

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// An answer's body, each data frame carrying its share of the connection's budget.
pub struct Charged<B> {
    body: B,
    /// The connection's budget and its whole size in units.
    budget: Option<(Arc<Semaphore>, u32)>,
    reserved: Option<OwnedSemaphorePermit>,
    /// A frame waiting for budget beyond the reservation, with the units it already has.
    waiting: Option<(Bytes, Option<OwnedSemaphorePermit>, Acquire)>,
    _stream: Option<StreamGuard>,
}

impl<B> Charged<B> {
    fn free(body: B) -> Self {
        Self {
            body,
            budget: None,
            reserved: None,
            waiting: None,
            _stream: None,
        }
    }
}

/// Bytes that give their budget back when HTTP/2 drops them (written out, or the stream reset).
struct Owned {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

fn charged(bytes: Bytes, permit: OwnedSemaphorePermit) -> Bytes {
    Bytes::from_owner(Owned {
        bytes,
        _permit: permit,
    })
}

impl<B> Body for Charged<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some((_, _, acquire)) = &mut this.waiting {
            let more = match acquire.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(permit) => permit.ok(),
            };
            let (bytes, mut have, _) = this.waiting.take().expect("waiting");
            let permit = match (have.take(), more) {
                (Some(mut a), Some(b)) => {
                    a.merge(b);
                    Some(a)
                }
                (a, b) => a.or(b),
            };
            let data = match permit {
                Some(p) => charged(bytes, p),
                None => bytes,
            };
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let Some((budget, total)) = this.budget.clone() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let bytes = match frame.into_data() {
            Ok(bytes) => bytes,
            Err(frame) => return Poll::Ready(Some(Ok(frame))),
        };
        // A frame larger than the whole budget takes all of it (and waits for all of it).
        let need = units(bytes.len()).min(total);
        // Charge the reservation first; anything beyond it is acquired (and waited for).
        let mut have = this.reserved.take();
        let held = have.as_ref().map_or(0, |p| p.num_permits() as u32);
        if held >= need {
            let mut rest = have.expect("held > 0");
            let part = rest.split(need as usize).expect("held >= need");
            // The rest of the reservation is given back: later frames pay as they come.
            drop(rest);
            return Poll::Ready(Some(Ok(Frame::data(charged(bytes, part)))));
        }
        let acquire: Acquire = Box::pin(budget.acquire_many_owned(need - held));
        this.waiting = Some((bytes, have.take(), acquire));
        Pin::new(this).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
