//! Hears other brokers' batches: every batch's transaction sends a notification with the log's
//! new size (PostgreSQL delivers it only if the batch commits), and a connection of the
//! engine's own listens for them, so that a broker folds in another's records within
//! milliseconds, not at its own next write.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::bridge::Bridge;
use super::tls::Tls;
use super::{describe, queries};

/// Wait before listening again after the connection ended.
const RECONNECT: Duration = Duration::from_secs(1);

/// Listens until the engine's runtime stops, reconnecting as needed; calls `appended` with the
/// size each notification carries, and with `u64::MAX` after every (re)connection, for what may
/// have been missed while not listening.
pub(super) fn spawn(
    bridge: &Bridge,
    config: tokio_postgres::Config,
    tls: Tls,
    appended: Arc<dyn Fn(u64) + Send + Sync>,
) {
    bridge.handle().spawn(async move {
        loop {
            if let Err(e) = listen(&config, &tls, &appended).await {
                tracing::warn!(error = %e, "PostgreSQL: not hearing other brokers' batches; retrying");
            }
            tokio::time::sleep(RECONNECT).await;
        }
    });
}

async fn listen(
    config: &tokio_postgres::Config,
    tls: &Tls,
    appended: &Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| describe(&e))?;
    let heard = appended.clone();
    let messages = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Ok(size) = n.payload().parse::<u64>() {
                        heard(size);
                    }
                }
                Ok(_) => {}
                Err(e) => return describe(&e),
            }
        }
        "the connection closed".to_string()
    });
    let listening = client.batch_execute(queries::LISTEN_LOG).await;
    if let Err(e) = listening {
        messages.abort();
        return Err(describe(&e));
    }
    appended(u64::MAX);
    let ended = messages.await.unwrap_or_else(|e| e.to_string());
    drop(client);
    Err(ended)
}
