//! `inbox --follow` across the broker's restarts and replicas: when the stream ends (the broker
//! shut down, was killed, or the connection broke), the CLI connects again to the first of
//! `--server` that answers and resumes after the last item it printed, so nothing is printed
//! twice and nothing is skipped.

use std::time::{Duration, Instant};

use super::Failure;
use super::output::Output;
use crate::{Client, ClientError, Identity};

/// How long the CLI goes on trying when no broker of the list answers.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Pause between attempts.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Prints the inbox after `after`, then every item as it arrives, until no broker answers for
/// [`GIVE_UP_AFTER`] or one refuses the caller.
pub(super) async fn follow(
    servers: &str,
    identity: &Identity,
    mut after: u64,
    out: &Output,
) -> Result<(), Failure> {
    out.inbox_header();
    let mut down_since: Option<Instant> = None;
    loop {
        let ended = match Client::connect(servers, identity).await {
            Ok(client) => match client.subscribe_inbox(after).await {
                Ok(mut stream) => {
                    down_since = None;
                    loop {
                        match stream.next().await {
                            Ok(Some(item)) => {
                                after = after.max(item.cursor);
                                out.inbox_item(&item);
                            }
                            Ok(None) => break None,
                            Err(e) => break Some(e),
                        }
                    }
                }
                Err(e) => Some(e),
            },
            Err(e) => Some(e),
        };
        if let Some(e) = ended
            && !transient(&e)
        {
            return Err(e.into());
        }
        let since = *down_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= GIVE_UP_AFTER {
            return Err(format!(
                "no broker of {servers} answered for {} s; resume with --after {after}",
                GIVE_UP_AFTER.as_secs()
            )
            .into());
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// A failure another attempt (on this broker or another) may not meet: the connection, or a
/// broker going away. A refusal of the caller is not one.
fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Connect(..) => true,
        ClientError::Rpc(r) => {
            r.tls_alert.is_none()
                && matches!(
                    r.code,
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                )
        }
        _ => false,
    }
}
