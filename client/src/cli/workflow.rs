//! The workflow commands beyond asking and answering: outbox, withdraw, update, resend.

use clap::Args;

use super::output::Output;
use super::{ConsultArgs, Failure, parse};
use crate::{Client, api};

#[derive(Args)]
pub(super) struct OutboxArgs {
    /// Start after this cursor.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only exchanges in this status: submitted, acknowledged, responded, completed,
    /// withdrawn, expired. Repeatable.
    #[arg(long = "status", value_name = "STATUS")]
    statuses: Vec<String>,
}

#[derive(Args)]
pub(super) struct WithdrawArgs {
    /// The request's id (32 hex digits, as `send` or `outbox` printed it).
    request_id: String,
    /// Why, for the agency asked (required).
    #[arg(long)]
    reason: String,
    /// Your staff id within your agency.
    #[arg(long)]
    staff_id: String,
}

#[derive(Args)]
pub(super) struct UpdateArgs {
    /// The request you answered (32 hex digits).
    request_id: String,
    /// A disclosed item, CATEGORY:CLASSIFICATION:CONTENT (a category the request asked for).
    /// Repeatable.
    #[arg(
        long = "item",
        value_name = "CATEGORY:CLASSIFICATION:CONTENT",
        required = true
    )]
    items: Vec<String>,
    /// What changed, for the requester.
    #[arg(long, default_value = "")]
    explanation: String,
    #[command(flatten)]
    consultation: ConsultArgs,
    /// Your staff id within your agency.
    #[arg(long)]
    staff_id: String,
    /// Idempotency key: sending again with the same key returns the first result. Default:
    /// random.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Args)]
pub(super) struct ResendArgs {
    /// Your request to send on: one that expired, or whose answer withheld information as
    /// not held.
    request_id: String,
    /// The agency to send it to (default: the one the answer suggested).
    #[arg(long)]
    to: Option<String>,
    /// The categories to ask for (default: the request's). Repeatable.
    #[arg(long = "category")]
    categories: Vec<String>,
    /// Your staff id within your agency (default: the request's).
    #[arg(long)]
    staff_id: Option<String>,
    /// Idempotency key (default: one made from the request and the agency, so running the
    /// command again sends nothing twice).
    #[arg(long)]
    idempotency_key: Option<String>,
}

pub(super) async fn outbox(client: &Client, a: OutboxArgs, out: &Output) -> Result<(), Failure> {
    let statuses = a
        .statuses
        .iter()
        .map(|s| parse::status(s))
        .collect::<Result<Vec<_>, _>>()?;
    out.outbox_page(&client.list_outbox(a.after, a.limit, &statuses).await?);
    Ok(())
}

pub(super) async fn withdraw(
    client: &Client,
    a: WithdrawArgs,
    out: &Output,
) -> Result<(), Failure> {
    let done = client
        .withdraw(&a.request_id, &a.reason, &a.staff_id)
        .await?;
    out.withdrawn(&a.request_id, &done);
    Ok(())
}

pub(super) async fn update(client: &Client, a: UpdateArgs, out: &Output) -> Result<(), Failure> {
    let update = api::InformationUpdate {
        items: a
            .items
            .iter()
            .map(|s| parse::item(s))
            .collect::<Result<_, _>>()?,
        explanation: a.explanation,
        staff_id: a.staff_id,
        consultation: a.consultation.record(),
    };
    let key = a.idempotency_key.unwrap_or_else(parse::random_key);
    let sent = client.send_update(&a.request_id, update, &key).await?;
    out.accepted(
        "update",
        &sent.update_id,
        sent.log_index,
        &sent.accepted_at,
        sent.replayed,
        &key,
    );
    Ok(())
}

/// Sends a request on: the original's body, to the agency given or suggested, linked to it.
pub(super) async fn resend(client: &Client, a: ResendArgs, out: &Output) -> Result<(), Failure> {
    let original = client.get_request(&a.request_id).await?;
    let Some(mut request) = original.request else {
        return Err(format!(
            "request {} has no body to send on (it is not a request, or its body was purged)",
            a.request_id
        )
        .into());
    };
    let suggested = original
        .response
        .as_ref()
        .map(|r| r.referred_agency_id.clone())
        .unwrap_or_default();
    let to = match (a.to, suggested.is_empty()) {
        (Some(to), _) => to,
        (None, false) => suggested,
        (None, true) => {
            return Err(format!(
                "the answer to {} suggested no agency: pass --to AGENCY",
                a.request_id
            )
            .into());
        }
    };
    request.recipient_agency_id = to.clone();
    if !a.categories.is_empty() {
        request.categories = a.categories;
    }
    if let Some(staff_id) = a.staff_id {
        request.staff_id = staff_id;
    }
    let key = a
        .idempotency_key
        .unwrap_or_else(|| format!("resend-{}-{to}", a.request_id));
    let sent = client.send_on(request, &key, &a.request_id).await?;
    out.accepted(
        "request",
        &sent.request_id,
        sent.log_index,
        &sent.accepted_at,
        sent.replayed,
        &key,
    );
    Ok(())
}
