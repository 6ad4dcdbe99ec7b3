//! The connection batches are written on. A batch is one transaction that begins by taking the
//! sequencer lock, a transaction-scoped advisory lock, so the lock and the batch's writes end
//! together: on commit, on rollback, or with the connection (`kill -9` of the broker included).
//! No broker can hold the lock without its transaction, nor write a batch without the lock.
//!
//! Round trips are what a batch costs here, not the disk: every statement is prepared once per
//! connection, and a batch's statements are sent together (tokio-postgres pipelines queries
//! polled at once): one round trip to begin, one for the writes, one to commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::{Client, Statement};

use super::bridge::Bridge;
use super::tls::Tls;
use super::{describe, failed, queries};
use crate::backend::StorageError;

/// The advisory lock key of the sequencer lock ("infosh" then 2).
pub(super) const SEQUENCER_LOCK: i64 = 0x696e_666f_7368_0002;
/// Longest a batch waits for another broker's batch to end before it is refused.
const LOCK_TIMEOUT: &str = "SET lock_timeout = '10s'";

/// The writer's connection and its prepared statements (see `queries`).
pub(super) struct Conn {
    pub(super) client: Client,
    lock: Statement,
    head: Statement,
    pub(super) advance: Statement,
    pub(super) store: Statement,
    pub(super) bodies: Statement,
    pub(super) records: Statement,
    pub(super) views: Statement,
    pub(super) new_views: Statement,
    pub(super) unviews: Statement,
    pub(super) tiles: Statement,
    pub(super) notify: Statement,
}

impl Conn {
    async fn prepare(client: Client) -> Result<Self, StorageError> {
        let p = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .prepare(sql)
                    .await
                    .map_err(failed("preparing a statement"))
            }
        };
        let (lock, head, advance, store, bodies, records, views, new_views, unviews, tiles, notify) =
            tokio::try_join!(
                p(queries::LOCK_SEQUENCER),
                p(queries::SELECT_CHECKPOINT),
                p(queries::ADVANCE_CHECKPOINT),
                p(queries::STORE_CHECKPOINT),
                p(queries::UPSERT_BODIES),
                p(queries::INSERT_RECORDS),
                p(queries::UPSERT_VIEWS),
                p(queries::INSERT_VIEWS),
                p(queries::DELETE_VIEWS),
                p(queries::UPSERT_TILES),
                p(queries::NOTIFY_LOG),
            )?;
        Ok(Self {
            client,
            lock,
            head,
            advance,
            store,
            bodies,
            records,
            views,
            new_views,
            unviews,
            tiles,
            notify,
        })
    }
}

pub(super) struct Writer {
    config: tokio_postgres::Config,
    tls: Tls,
    connection: Option<(Arc<Conn>, Arc<AtomicBool>)>,
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
    fn client(&mut self, bridge: &Bridge) -> Result<Arc<Conn>, StorageError> {
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
            Ok(Arc::new(Conn::prepare(client).await?))
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
        let c = self.client(bridge)?;
        let head = bridge.run(async move {
            // In one round trip; the lock's wait holds back the read that follows it.
            let begun = tokio::try_join!(
                async {
                    c.client
                        .batch_execute("BEGIN")
                        .await
                        .map_err(failed("starting a batch"))
                },
                async {
                    c.client
                        .execute(&c.lock, &[&SEQUENCER_LOCK])
                        .await
                        .map_err(failed("taking the sequencer lock"))
                },
                async {
                    c.client
                        .query_one(&c.head, &[])
                        .await
                        .map_err(failed("reading the checkpoint"))
                },
            );
            match begun {
                Ok((_, _, head)) => Ok((head.get(0), head.get(1))),
                Err(e) => {
                    let _ = c.client.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        });
        let head = self.or_disconnect(head)?;
        self.in_batch = true;
        Ok(Some(head))
    }

    /// Runs `writes` in the open batch (begun first if none is) and commits it, or rolls it
    /// back if any of them fails.
    pub(super) fn commit<F, Fut>(&mut self, bridge: &Bridge, writes: F) -> Result<(), StorageError>
    where
        F: FnOnce(Arc<Conn>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StorageError>> + Send,
    {
        self.begin(bridge)?;
        self.in_batch = false;
        // The connection that holds the transaction, never a new one: on another, the writes
        // would commit one by one, without the lock.
        let Some((c, _)) = self.connection.clone() else {
            return Err(StorageError::new(
                "the writer's connection was lost during the batch",
            ));
        };
        let committed = bridge.run(async move {
            let written = writes(c.clone()).await;
            let committed = match written {
                Ok(()) => c
                    .client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(failed("committing a batch")),
                Err(e) => Err(e),
            };
            if committed.is_err() {
                let _ = c.client.batch_execute("ROLLBACK").await;
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
        let Some((c, _)) = self.connection.clone() else {
            return;
        };
        if let Err(e) = bridge.run(async move {
            c.client
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
