//! The caseworker's workflow beyond asking and answering: the outbox, withdrawing a request,
//! updating an answer, sending a request on, the inbox in priority order, the deadline run.

use crate::{Client, Result, api};

impl Client {
    /// Submits a request that sends on `follows` (one of the caller's that expired, or whose
    /// answer withheld information as not held). Resubmitting with the same `idempotency_key`
    /// returns the first result.
    pub async fn send_on(
        &self,
        request: api::InformationRequest,
        idempotency_key: &str,
        follows: &str,
    ) -> Result<api::SubmitRequestResponse> {
        let message = api::SubmitRequestRequest {
            request: Some(request),
            idempotency_key: idempotency_key.to_string(),
            follows_request_id: follows.to_string(),
        };
        Ok(self
            .exchange
            .clone()
            .submit_request(message)
            .await?
            .into_inner())
    }

    /// One page of the inbox in priority order (the requests awaiting the caller's answer,
    /// overdue and urgent first, then the rest); `page_token` is the previous page's
    /// `next_page_token` (empty: the first page).
    pub async fn list_inbox_by_priority(
        &self,
        page_token: &str,
        page_size: u32,
        unacknowledged_only: bool,
    ) -> Result<api::ListInboxResponse> {
        let message = api::ListInboxRequest {
            page_size,
            unacknowledged_only,
            order: api::InboxOrder::Priority as i32,
            page_token: page_token.to_string(),
            ..Default::default()
        };
        Ok(self
            .exchange
            .clone()
            .list_inbox(message)
            .await?
            .into_inner())
    }

    /// One page of the caller's outbox after `after_cursor`, only exchanges in `statuses`
    /// (empty: all).
    pub async fn list_outbox(
        &self,
        after_cursor: u64,
        page_size: u32,
        statuses: &[api::RequestStatus],
    ) -> Result<api::ListOutboxResponse> {
        let message = api::ListOutboxRequest {
            after_cursor,
            page_size,
            statuses: statuses.iter().map(|s| *s as i32).collect(),
        };
        Ok(self
            .exchange
            .clone()
            .list_outbox(message)
            .await?
            .into_inner())
    }

    /// Withdraws one of the caller's requests that is not answered yet.
    pub async fn withdraw(
        &self,
        request_id: &str,
        reason: &str,
        staff_id: &str,
    ) -> Result<api::WithdrawRequestResponse> {
        let message = api::WithdrawRequestRequest {
            request_id: request_id.to_string(),
            withdrawal: Some(api::Withdrawal {
                reason: reason.to_string(),
                staff_id: staff_id.to_string(),
            }),
        };
        Ok(self
            .exchange
            .clone()
            .withdraw_request(message)
            .await?
            .into_inner())
    }

    /// Sends new information about a request the caller answered.
    pub async fn send_update(
        &self,
        request_id: &str,
        update: api::InformationUpdate,
        idempotency_key: &str,
    ) -> Result<api::SendUpdateResponse> {
        let message = api::SendUpdateRequest {
            request_id: request_id.to_string(),
            update: Some(update),
            idempotency_key: idempotency_key.to_string(),
        };
        Ok(self
            .exchange
            .clone()
            .send_update(message)
            .await?
            .into_inner())
    }

    /// Runs the deadline task now (administrators): marks overdue requests and expires
    /// unacknowledged ones.
    pub async fn run_deadlines(&self) -> Result<api::RunDeadlinesResponse> {
        Ok(self
            .admin
            .clone()
            .run_deadlines(api::RunDeadlinesRequest {})
            .await?
            .into_inner())
    }
}
