//! The connection batches are written on. A broker writes only while it holds the sequencer
//! lease, a session-level advisory lock on this connection: it ends when the broker gives it up
//! (when it has nothing queued, or after its turn, [`LEASE_TURN`], so other brokers get theirs)
//! or with the connection (`kill -9` of the broker included). While it is held no other broker
//! commits, so a broker that takes it reads the log's head once and then writes batch after
//! batch without reading it again; each batch is one transaction whose checkpoint guard
//! (in `WRITE_BATCH`) would refuse it even if two brokers ever held the lease at once.
//!
//! A broker that hangs (stopped, swapping, cut off from the database by the network) while it
//! holds the lease would keep it for as long as its connection looks alive to PostgreSQL —
//! hours, with TCP's defaults — and no other broker could write. So the writer's session is
//! ended by PostgreSQL itself once it has sat idle for [`LEASE_IDLE_LIMIT`]: inside a
//! transaction always, outside one while it holds the lease (a broker under load sends a batch
//! every few milliseconds, and gives the lease up when it has none). Its transaction, never
//! acknowledged, goes with it, and another broker takes the lease.
//!
//! Round trips are what a batch costs here, not the disk: every statement is prepared once per
//! connection, and a batch is one statement (`queries::WRITE_BATCH`), a transaction of its own
//! that commits as it ends: one round trip. Other writes (a stored checkpoint with its tiles)
//! send `BEGIN` and their statements together (tokio-postgres pipelines queries polled at
//! once), then `COMMIT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Statement};

use super::bridge::{Answer, Bridge, CALL_TIMEOUT};
use super::tls::Tls;
use super::{describe, failed, queries};
use crate::backend::StorageError;

/// The advisory lock key of the sequencer lock ("infosh" then 2).
pub(super) const SEQUENCER_LOCK: i64 = 0x696e_666f_7368_0002;
/// Longest a batch waits for another broker's turn to end before it is refused: longer than
/// [`LEASE_IDLE_LIMIT`], so a batch waiting behind a broker that hung goes through once
/// PostgreSQL has ended that broker's session.
const LOCK_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a writer's session may sit idle in a transaction, or outside one while it holds
/// the lease, before PostgreSQL ends it, and the lease with it. With room to spare: a healthy
/// broker holds the lease without writing only for moments (folding in other brokers' records,
/// a retention page's checks in two reads, waiting up to 2 s for a rotated key), and a writer
/// whose session is ended under it refuses writes until restarted.
const LEASE_IDLE_LIMIT: Duration = Duration::from_secs(10);
/// The first server version with `idle_session_timeout`.
const IDLE_LIMIT_SINCE: i32 = 140_000;

/// The writer session's settings, made once per connection.
fn session_settings() -> String {
    format!(
        "SET lock_timeout = '{}ms'; SET idle_in_transaction_session_timeout = '{}ms'",
        LOCK_TIMEOUT.as_millis(),
        LEASE_IDLE_LIMIT.as_millis()
    )
}

/// Set with the lease, cleared with it (`idle_session_timeout`, PostgreSQL 14 and later).
fn idle_limit(on: bool) -> String {
    let ms = if on { LEASE_IDLE_LIMIT.as_millis() } else { 0 };
    format!("SET idle_session_timeout = '{ms}ms'")
}

/// Longest a broker keeps the lease while it has batches to write; then it gives others a
/// turn (a batch takes a few milliseconds).
const LEASE_TURN: Duration = Duration::from_millis(20);

/// The writer's connection and its prepared statements (see `queries`).
pub(super) struct Conn {
    pub(super) client: Client,
    /// Whether the server bounds an idle session (see [`IDLE_LIMIT_SINCE`]).
    idle_limit: bool,
    lock: Statement,
    unlock: Statement,
    head: Statement,
    pub(super) batch: Statement,
    pub(super) store: Statement,
    pub(super) tiles: Statement,
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
        let (lock, unlock, head, batch, store, tiles) = tokio::try_join!(
            p(queries::TAKE_LEASE),
            p(queries::GIVE_UP_LEASE),
            p(queries::SELECT_CHECKPOINT),
            p(queries::WRITE_BATCH),
            p(queries::STORE_CHECKPOINT),
            p(queries::UPSERT_TILES),
        )?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(failed("reading the server's version"))?
            .get(0);
        let idle_limit = version >= IDLE_LIMIT_SINCE;
        if !idle_limit {
            tracing::warn!(
                version,
                "PostgreSQL before 14: a broker that hangs holding the sequencer lease keeps it \
                 until its connection ends"
            );
        }
        Ok(Self {
            client,
            idle_limit,
            lock,
            unlock,
            head,
            batch,
            store,
            tiles,
        })
    }
}

/// How a write is made one transaction.
#[derive(Clone, Copy)]
enum Transaction {
    /// Several statements, between `BEGIN` and `COMMIT`.
    Explicit,
    /// One statement, in its own (it commits as it ends).
    Implicit,
}

pub(super) struct Writer {
    config: tokio_postgres::Config,
    tls: Tls,
    connection: Option<(Arc<Conn>, Arc<AtomicBool>)>,
    /// When this writer took the sequencer lease, if it holds it on its connection.
    leased_at: Option<Instant>,
    /// The transaction of the batch sent last, until it is known committed.
    pending: Option<Answer<()>>,
}

impl Writer {
    pub(super) fn new(config: tokio_postgres::Config, tls: Tls) -> Self {
        Self {
            config,
            tls,
            connection: None,
            leased_at: None,
            pending: None,
        }
    }

    /// The writer's connection, made again if the last one ended.
    fn client(&mut self, bridge: &Bridge) -> Result<Arc<Conn>, StorageError> {
        if let Some((client, lost)) = &self.connection
            && !lost.load(Ordering::SeqCst)
        {
            return Ok(client.clone());
        }
        // A lease ends with its connection.
        self.leased_at = None;
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
                .batch_execute(&session_settings())
                .await
                .map_err(failed("setting the session's timeouts"))?;
            Ok(Arc::new(Conn::prepare(client).await?))
        })?;
        self.connection = Some((client.clone(), lost));
        Ok(client)
    }

    /// Whether this writer holds the lease on a live connection, taken less than
    /// [`LEASE_TURN`] ago.
    pub(super) fn holds_lease(&self) -> bool {
        let live = self
            .connection
            .as_ref()
            .is_some_and(|(_, lost)| !lost.load(Ordering::SeqCst));
        live && self.leased_at.is_some_and(|at| at.elapsed() < LEASE_TURN)
    }

    /// Whether `begin` would be a no-op: the lease is held for its turn, or a batch sent
    /// under it is still pending (the lease is never given up under a transaction still being
    /// written; the turn ends once it is settled).
    fn holds_role(&self) -> bool {
        self.holds_lease() || (self.pending.is_some() && self.leased_at.is_some())
    }

    /// Takes the sequencer lease (waiting for another broker's turn to end), then reads the
    /// checkpoint row: the log's size and signed note as the last batch before this one left
    /// them. A lease held for its turn is given up first, in the same round trip, so a broker
    /// waiting for it goes before this one (PostgreSQL grants a released lock to its waiters).
    /// A no-op (`None`) while the lease is held and its turn not over (see `holds_role`).
    pub(super) fn begin(
        &mut self,
        bridge: &Bridge,
    ) -> Result<Option<(i64, Option<String>)>, StorageError> {
        if self.holds_role() {
            return Ok(None);
        }
        // The lease is never given up or taken again under a transaction still being written.
        self.settle()?;
        let c = self.client(bridge)?;
        let renew = self.leased_at.is_some();
        let head = bridge.run(async move {
            let (_, _, _, head) = tokio::try_join!(
                async {
                    if !renew {
                        return Ok(());
                    }
                    c.client
                        .query_one(&c.unlock, &[&SEQUENCER_LOCK])
                        .await
                        .map(drop)
                        .map_err(failed("giving up the sequencer lease"))
                },
                async {
                    c.client
                        .query_one(&c.lock, &[&SEQUENCER_LOCK])
                        .await
                        .map_err(failed("taking the sequencer lease"))
                },
                async {
                    if renew || !c.idle_limit {
                        return Ok(());
                    }
                    c.client
                        .batch_execute(&idle_limit(true))
                        .await
                        .map_err(failed("bounding the lease's idle time"))
                },
                // Sent after the lock, so read once it is held.
                async {
                    c.client
                        .query_one(&c.head, &[])
                        .await
                        .map_err(failed("reading the checkpoint"))
                },
            )?;
            Ok((head.get(0), head.get(1)))
        });
        // On an error the lease's state is unknown: the connection, and any lease, goes.
        let head = self.or_disconnect(head)?;
        self.leased_at = Some(Instant::now());
        Ok(Some(head))
    }

    /// Runs `writes` in a transaction (the lease taken first if it is not held) and commits
    /// it, or rolls it back if any of them fails. The lease is kept.
    pub(super) fn commit<F, Fut>(&mut self, bridge: &Bridge, writes: F) -> Result<(), StorageError>
    where
        F: FnOnce(Arc<Conn>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StorageError>> + Send,
    {
        self.send_in(bridge, Transaction::Explicit, || (), writes)?;
        self.settle()
    }

    /// Sends `write`, one statement and so a transaction of its own (the lease taken first if
    /// it is not held), without waiting for it to end: once the one sent before it has
    /// committed, it is sent, `committed` is called as soon as it commits (on a blocking
    /// thread of the engine's runtime), and [`settle`](Self::settle) waits for both.
    pub(super) fn send<C, F, Fut>(
        &mut self,
        bridge: &Bridge,
        committed: C,
        write: F,
    ) -> Result<(), StorageError>
    where
        C: FnOnce() + Send + 'static,
        F: FnOnce(Arc<Conn>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StorageError>> + Send,
    {
        self.send_in(bridge, Transaction::Implicit, committed, write)
    }

    fn send_in<C, F, Fut>(
        &mut self,
        bridge: &Bridge,
        transaction: Transaction,
        committed: C,
        writes: F,
    ) -> Result<(), StorageError>
    where
        C: FnOnce() + Send + 'static,
        F: FnOnce(Arc<Conn>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StorageError>> + Send,
    {
        // Never two at once: the one before may fail, and this one was decided on top of it.
        self.settle()?;
        if self.leased_at.is_none() {
            self.begin(bridge)?;
        }
        // The connection that holds the lease, never a new one: on another, the writes would
        // commit without it.
        let Some((c, _)) = self.connection.clone() else {
            return Err(StorageError::new(
                "the writer's connection was lost during the batch",
            ));
        };
        self.pending = Some(bridge.spawn_for(CALL_TIMEOUT, async move {
            let done = match transaction {
                // Its own transaction: committed as it ends, nothing of it kept if it fails.
                Transaction::Implicit => writes(c.clone()).await,
                Transaction::Explicit => {
                    // In one round trip: BEGIN is sent before the writes (polled first).
                    let written = tokio::try_join!(
                        async {
                            c.client
                                .batch_execute("BEGIN")
                                .await
                                .map_err(failed("starting a batch"))
                        },
                        writes(c.clone()),
                    );
                    match written {
                        Ok(_) => c
                            .client
                            .batch_execute("COMMIT")
                            .await
                            .map_err(failed("committing a batch")),
                        Err(e) => {
                            let _ = c.client.batch_execute("ROLLBACK").await;
                            Err(e)
                        }
                    }
                }
            };
            done?;
            // Off the runtime's workers: publishing takes locks whose readers may be waiting
            // on this runtime (a receipt reading its record under the head).
            tokio::task::spawn_blocking(committed)
                .await
                .map_err(|e| StorageError(format!("publishing a committed batch: {e}")))
        }));
        Ok(())
    }

    /// Waits for the transaction sent last, if any, to commit.
    pub(super) fn settle(&mut self) -> Result<(), StorageError> {
        match self.pending.take() {
            Some(answer) => {
                let committed = answer.wait();
                self.or_disconnect(committed)
            }
            None => Ok(()),
        }
    }

    /// After a failed call the connection's state is unknown (a call that timed out may still
    /// hold the transaction or the lease): it is dropped, and PostgreSQL ends what it held.
    fn or_disconnect<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.connection = None;
            self.leased_at = None;
        }
        result
    }

    /// Gives up the lease, so other brokers may write; a no-op if it is not held.
    pub(super) fn end(&mut self, bridge: &Bridge) {
        if let Err(e) = self.settle() {
            // The engine's caller settles first; this only keeps the lease under a transaction.
            tracing::error!(error = %e, "PostgreSQL: a batch failed unsettled");
        }
        if self.leased_at.take().is_none() {
            return;
        }
        let Some((c, _)) = self.connection.clone() else {
            return;
        };
        if let Err(e) = bridge.run(async move {
            let (_, unlocked) = tokio::try_join!(
                async {
                    if !c.idle_limit {
                        return Ok(());
                    }
                    c.client
                        .batch_execute(&idle_limit(false))
                        .await
                        .map_err(failed("unbounding the session's idle time"))
                },
                async {
                    c.client
                        .query_one(&c.unlock, &[&SEQUENCER_LOCK])
                        .await
                        .map_err(failed("giving up the sequencer lease"))
                },
            )?;
            Ok(unlocked)
        }) {
            // The lease goes with the connection: drop it rather than hold the lease on.
            tracing::warn!(error = %e, "PostgreSQL: dropping the writer's connection");
            self.connection = None;
        }
    }
}
