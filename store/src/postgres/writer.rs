//! The connection batches are written on. A batch is one transaction that begins by taking the
//! sequencer lock, a transaction-scoped advisory lock, so the lock and the batch's writes end
//! together: on commit, on rollback, or with the connection (`kill -9` of the broker included).
//! No broker can hold the lock without its transaction, nor write a batch without the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Client;

use super::bridge::Bridge;
use super::tls::Tls;
use super::{describe, failed, queries};
use crate::backend::StorageError;

/// The advisory lock key of the sequencer lock ("infosh" then 2).
const SEQUENCER_LOCK: i64 = 0x696e_666f_7368_0002;
/// Longest a batch waits for another broker's batch to end before it is refused.
const LOCK_TIMEOUT: &str = "SET lock_timeout = '10s'";

pub(super) struct Writer {
    config: tokio_postgres::Config,
    tls: Tls,
    connection: Option<(Arc<Client>, Arc<AtomicBool>)>,
    /// A transaction is open and holds the lock.
    in_batch: bool,
}

impl Writer {
    pub(super) fn new(config: tokio_postgres::Config, tls: Tls) -> Self {
        Self {
            config,
            tls,
            connection: None,
            in_batch: false,
        }
    }

    /// The writer's connection, made again if the last one ended.
    fn client(&mut self, bridge: &Bridge) -> Result<Arc<Client>, StorageError> {
        if let Some((client, lost)) = &self.connection
            && !lost.load(Ordering::SeqCst)
        {
            return Ok(client.clone());
        }
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let lost = Arc::new(AtomicBool::new(false));
        let ended = lost.clone();
        let client = bridge.run(async move {
            let (client, connection) = config.connect(tls).await.map_err(failed("connecting"))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %describe(&e), "PostgreSQL: the writer's connection ended");
                }
                ended.store(true, Ordering::SeqCst);
            });
            client
                .batch_execute(LOCK_TIMEOUT)
                .await
                .map_err(failed("setting the lock timeout"))?;
            Ok(Arc::new(client))
        })?;
        self.connection = Some((client.clone(), lost));
        Ok(client)
    }

    /// Opens the batch's transaction and takes the sequencer lock (waiting for another broker's
    /// batch to end), then reads the checkpoint row: the log's size and signed note as the
    /// last batch before this one left them. A no-op (`None`) if a batch is open.
    pub(super) fn begin(
        &mut self,
        bridge: &Bridge,
    ) -> Result<Option<(i64, Option<String>)>, StorageError> {
        if self.in_batch {
            return Ok(None);
        }
        let client = self.client(bridge)?;
        let head = bridge.run(async move {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(failed("starting a batch"))?;
            let taken = client
                .execute(queries::LOCK_SEQUENCER, &[&SEQUENCER_LOCK])
                .await
                .map_err(failed("taking the sequencer lock"));
            let head = match taken {
                Ok(_) => client
                    .query_one(queries::SELECT_CHECKPOINT, &[])
                    .await
                    .map_err(failed("reading the checkpoint")),
                Err(e) => Err(e),
            };
            if head.is_err() {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            let head = head?;
            Ok((head.get(0), head.get(1)))
        });
        let head = self.or_disconnect(head)?;
        self.in_batch = true;
        Ok(Some(head))
    }

    /// Runs `writes` in the open batch (begun first if none is) and commits it, or rolls it
    /// back if any of them fails.
    pub(super) fn commit<F, Fut>(&mut self, bridge: &Bridge, writes: F) -> Result<(), StorageError>
    where
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StorageError>> + Send,
    {
        self.begin(bridge)?;
        self.in_batch = false;
        let client = self.client(bridge)?;
        let committed = bridge.run(async move {
            let written = writes(client.clone()).await;
            let committed = match written {
                Ok(()) => client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(failed("committing a batch")),
                Err(e) => Err(e),
            };
            if committed.is_err() {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            committed
        });
        self.or_disconnect(committed)
    }

    /// After a failed call the connection's state is unknown (a call that timed out may still
    /// hold the transaction): it is dropped, and PostgreSQL ends what it held.
    fn or_disconnect<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    /// Rolls the open batch back, releasing the lock; a no-op if none is open.
    pub(super) fn end(&mut self, bridge: &Bridge) {
        if !std::mem::take(&mut self.in_batch) {
            return;
        }
        let Some((client, _)) = self.connection.clone() else {
            return;
        };
        if let Err(e) = bridge.run(async move {
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(failed("ending a batch"))
        }) {
            // The lock goes with the connection: drop it rather than hold the lock on.
            tracing::warn!(error = %e, "PostgreSQL: dropping the writer's connection");
            self.connection = None;
        }
    }
}
