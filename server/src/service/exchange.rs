//! ExchangeService.

use infoshare_proto::v1;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use super::status;
use crate::access::Operation;
use crate::broker::{Broker, Caller, PageToken};
use crate::error::BrokerError;

/// Items fetched per step while streaming an inbox.
const STREAM_PAGE: u32 = 100;
/// Items buffered per stream before the sender waits for the client.
const STREAM_BUFFER: usize = 64;

/// ExchangeService over a broker.
pub struct ExchangeApi {
    broker: Broker,
}

impl ExchangeApi {
    /// The service.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

fn record_request_id(id: &str) {
    tracing::Span::current().record("request_id", id);
}

#[tonic::async_trait]
impl v1::exchange_service_server::ExchangeService for ExchangeApi {
    async fn submit_request(
        &self,
        request: Request<v1::SubmitRequestRequest>,
    ) -> Result<Response<v1::SubmitRequestResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::SubmitRequest)
            .await
            .map_err(status::of)?;
        let done = self
            .broker
            .submit_request(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        let id = done.request_id.to_string();
        record_request_id(&id);
        tracing::info!(
            index = done.index,
            replayed = done.replayed,
            "request accepted"
        );
        Ok(Response::new(v1::SubmitRequestResponse {
            request_id: id,
            log_index: done.index,
            accepted_at: Some(convert::timestamp(done.time_ms)),
            replayed: done.replayed,
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }

    async fn list_inbox(
        &self,
        request: Request<v1::ListInboxRequest>,
    ) -> Result<Response<v1::ListInboxResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ListInbox)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let (items, more, next_cursor, next_page_token) = match v1::InboxOrder::try_from(r.order) {
            Ok(v1::InboxOrder::Unspecified) => {
                if !r.page_token.is_empty() {
                    let e = BrokerError::invalid("page_token", "is only for PRIORITY order");
                    return Err(status::of(e));
                }
                let (items, more, next_cursor) = self
                    .broker
                    .inbox_page_through(&caller, r.after_cursor, r.page_size, r.unacknowledged_only)
                    .map_err(status::of)?;
                (items, more, next_cursor, String::new())
            }
            Ok(v1::InboxOrder::Priority) => {
                if r.after_cursor != 0 {
                    let e = BrokerError::invalid(
                        "after_cursor",
                        "must be 0 in PRIORITY order: pass page_token",
                    );
                    return Err(status::of(e));
                }
                let token = PageToken::parse(&r.page_token).map_err(status::of)?;
                let (items, next) = self
                    .broker
                    .inbox_by_priority(&caller, token, r.page_size, r.unacknowledged_only)
                    .map_err(status::of)?;
                let token = next.map(|t| t.render()).unwrap_or_default();
                (items, next.is_some(), 0, token)
            }
            Err(_) => {
                let e = BrokerError::invalid("order", format!("has no value {}", r.order));
                return Err(status::of(e));
            }
        };
        let items = items
            .iter()
            .map(convert::inbox_item)
            .collect::<Result<_, _>>()
            .map_err(status::of)?;
        Ok(Response::new(v1::ListInboxResponse {
            items,
            next_cursor,
            more,
            next_page_token,
        }))
    }

    async fn list_outbox(
        &self,
        request: Request<v1::ListOutboxRequest>,
    ) -> Result<Response<v1::ListOutboxResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ListOutbox)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let (items, next_cursor, more) = self
            .broker
            .outbox_page(&caller, r.after_cursor, r.page_size, &r.statuses)
            .map_err(status::of)?;
        Ok(Response::new(v1::ListOutboxResponse {
            items: items.iter().map(convert::outbox_item).collect(),
            next_cursor,
            more,
        }))
    }

    async fn withdraw_request(
        &self,
        request: Request<v1::WithdrawRequestRequest>,
    ) -> Result<Response<v1::WithdrawRequestResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::WithdrawRequest)
            .await
            .map_err(status::of)?;
        record_request_id(&request.get_ref().request_id);
        let done = self
            .broker
            .withdraw(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        tracing::info!(
            index = done.log_index,
            already = done.already,
            "request withdrawn"
        );
        Ok(Response::new(v1::WithdrawRequestResponse {
            log_index: done.log_index,
            already_withdrawn: done.already,
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }

    async fn send_update(
        &self,
        request: Request<v1::SendUpdateRequest>,
    ) -> Result<Response<v1::SendUpdateResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::SendUpdate)
            .await
            .map_err(status::of)?;
        record_request_id(&request.get_ref().request_id);
        let done = self
            .broker
            .send_update(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        tracing::info!(
            index = done.index,
            replayed = done.replayed,
            "update accepted"
        );
        Ok(Response::new(v1::SendUpdateResponse {
            update_id: done.request_id.to_string(),
            log_index: done.index,
            accepted_at: Some(convert::timestamp(done.time_ms)),
            replayed: done.replayed,
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }

    type SubscribeInboxStream = InboxStream;

    async fn subscribe_inbox(
        &self,
        request: Request<v1::SubscribeInboxRequest>,
    ) -> Result<Response<Self::SubscribeInboxStream>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::SubscribeInbox)
            .await
            .map_err(status::of)?;
        let slot = self
            .broker
            .limiter()
            .open_stream(&caller.spiffe)
            .ok_or_else(|| crate::error::BrokerError::Refused {
                reason: crate::reason::Reason::TooManyStreams,
                message: format!(
                    "{} already has {} inbox streams open",
                    caller.principal.id,
                    self.broker.limiter().limits().streams_per_principal
                ),
            })
            .map_err(status::of)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let broker = self.broker.clone();
        let after = request.get_ref().after_cursor;
        let too_slow = Arc::new(AtomicBool::new(false));
        let flag = too_slow.clone();
        tokio::spawn(async move {
            follow_inbox(broker, caller, after, tx, &flag).await;
            drop(slot);
        });
        Ok(Response::new(InboxStream {
            rx: ReceiverStream::new(rx),
            too_slow,
            finished: false,
        }))
    }

    async fn acknowledge(
        &self,
        request: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::AcknowledgeResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::Acknowledge)
            .await
            .map_err(status::of)?;
        record_request_id(&request.get_ref().request_id);
        let done = self
            .broker
            .acknowledge(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        Ok(Response::new(v1::AcknowledgeResponse {
            log_index: done.log_index,
            already_acknowledged: done.already,
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }

    async fn respond(
        &self,
        request: Request<v1::RespondRequest>,
    ) -> Result<Response<v1::RespondResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::Respond)
            .await
            .map_err(status::of)?;
        record_request_id(&request.get_ref().request_id);
        let done = self
            .broker
            .respond(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        tracing::info!(index = done.log_index, "response accepted");
        Ok(Response::new(v1::RespondResponse {
            log_index: done.log_index,
            accepted_at: Some(convert::timestamp(done.time_ms)),
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }

    async fn get_request(
        &self,
        request: Request<v1::GetRequestRequest>,
    ) -> Result<Response<v1::GetRequestResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::GetRequest)
            .await
            .map_err(status::of)?;
        record_request_id(&request.get_ref().request_id);
        let detail = self
            .broker
            .get_request(&caller, &request.get_ref().request_id)
            .await
            .map_err(status::of)?;
        Ok(Response::new(
            convert::request_detail(&detail).map_err(status::of)?,
        ))
    }

    async fn disclose(
        &self,
        request: Request<v1::DiscloseRequest>,
    ) -> Result<Response<v1::DiscloseResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::Disclose)
            .await
            .map_err(status::of)?;
        let done = self
            .broker
            .disclose(&caller, request.get_ref())
            .await
            .map_err(status::of)?;
        let id = done.request_id.to_string();
        record_request_id(&id);
        tracing::info!(
            index = done.index,
            replayed = done.replayed,
            "disclosure accepted"
        );
        Ok(Response::new(v1::DiscloseResponse {
            request_id: id,
            log_index: done.index,
            accepted_at: Some(convert::timestamp(done.time_ms)),
            replayed: done.replayed,
            receipt: Some(convert::receipt(&done.receipt)),
        }))
    }
}

/// An inbox stream: the items, then — if the client read too slowly — a RESOURCE_EXHAUSTED
/// status telling it to reconnect from its last cursor. (The status cannot be queued behind the
/// items the slow client never took, so it is added when the queue runs dry.)
pub struct InboxStream {
    rx: ReceiverStream<Result<v1::SubscribeInboxResponse, Status>>,
    too_slow: Arc<AtomicBool>,
    finished: bool,
}

impl tokio_stream::Stream for InboxStream {
    type Item = Result<v1::SubscribeInboxResponse, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.rx).poll_next(cx) {
            Poll::Ready(None) if !self.finished && self.too_slow.load(Ordering::Acquire) => {
                self.finished = true;
                Poll::Ready(Some(Err(Status::resource_exhausted(
                    "you did not read your inbox stream in time; reconnect with your last cursor",
                ))))
            }
            other => other,
        }
    }
}

/// Why an inbox stream ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// The client went away, the ledger stopped, or an error was sent.
    Closed,
    /// The client did not take an item within the send timeout.
    TooSlow,
}

/// Streams the caller's inbox after `cursor`: the backlog, then each item as its batch commits.
/// Ends when the client goes away or the ledger stops.
async fn follow_inbox(
    broker: Broker,
    caller: Caller,
    mut cursor: u64,
    tx: mpsc::Sender<Result<v1::SubscribeInboxResponse, Status>>,
    too_slow: &AtomicBool,
) -> StreamEnd {
    // Woken by the batches that add to this caller's inbox, not by every batch.
    let mut delivered = broker.ledger().inbox_changes(&caller.principal.id);
    let mut shutting_down = broker.shutting_down();
    loop {
        // Mark the current commit as seen before reading, so a commit that lands after the
        // read wakes the wait below.
        delivered.borrow_and_update();
        let page = broker
            .inbox_page(&caller, cursor, STREAM_PAGE, false)
            .and_then(|(items, more)| {
                let items = items
                    .iter()
                    .map(|i| {
                        Ok::<_, crate::error::BrokerError>((i.cursor, convert::inbox_item(i)?))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((items, more))
            });
        let (items, more) = match page {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(status::of(e))).await;
                return StreamEnd::Closed;
            }
        };
        let timeout = broker.limiter().limits().stream_send_timeout();
        for (next, item) in items {
            let message = v1::SubscribeInboxResponse { item: Some(item) };
            match tokio::time::timeout(timeout, tx.send(Ok(message))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return StreamEnd::Closed,
                Err(_) => {
                    // A client that stops reading only loses its own stream; it resumes from its
                    // last cursor.
                    tracing::info!(caller = %caller.spiffe, cursor, "slow stream client; closing");
                    // Set before `tx` is dropped, so the stream sees it when its queue runs dry.
                    too_slow.store(true, Ordering::Release);
                    return StreamEnd::TooSlow;
                }
            }
            cursor = next;
        }
        if more {
            continue;
        }
        let stopping = tokio::select! {
            changed = delivered.changed() => changed.is_err(),
            _ = shutting_down.wait_for(|&stop| stop) => true,
            () = tx.closed() => return StreamEnd::Closed,
        };
        if stopping {
            let _ = tx
                .send(Err(Status::unavailable(
                    "the broker is shutting down; reconnect with your last cursor",
                )))
                .await;
            return StreamEnd::Closed;
        }
    }
}
