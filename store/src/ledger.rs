//! The ledger: the handle every caller uses. One writer (the sequencer) sequences
//! every change; a call returns once what it changed is durable and visible, with a typed result
//! (a receipt, a replay, an earlier acknowledgement…).
//!
//! ```text
//! callers ──typed call──▶ queue ──▶ sequencer:  decide each change (core::exchange::decide)
//!                                               fold it into the views, sign the new tree
//!                                               engine: bodies, records, checkpoint, views
//!                                               publish the applied index, answer callers
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::Backend;
pub use crate::backend::Reader;
use crate::bodies::BodyEntry;
use crate::crypto::Pseudonym;
use crate::domain::MessageKind;
use crate::embedded::EmbeddedEngine;
pub use crate::embedded::{LOG_MAGIC, OpenReport};
use crate::error::BrokerError;
use crate::exchange::Change;
pub use crate::exchange::{Deadline, replay_of, visible_meta};
pub use crate::open_error::OpenError;
use crate::protocol::ProtocolStore;
use crate::records::{Actor, Record, RequestId};
use crate::sequencer::{Decided, Job, Sequencer};
pub use infoshare_tlog::Receipt;
use infoshare_tlog::{Checkpoint, Tree};

/// How a ledger is opened and tuned.
#[derive(Clone)]
pub struct LedgerOptions {
    /// The log's origin line in its checkpoints (C2SP tlog-checkpoint).
    pub origin: String,
    /// Most changes folded into one batch (one fdatasync and one signature).
    pub max_batch: usize,
    /// Changes that may wait for the writer; a caller beyond it waits to enqueue.
    pub queue: usize,
    /// Told of every committed batch: its records and how long it took.
    pub on_batch: Option<Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>>,
    /// Bytes of view pages the embedded engine caches in memory.
    pub view_cache_bytes: usize,
}

impl LedgerOptions {
    /// The defaults for a log of `origin`.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            max_batch: 512,
            queue: 4096,
            on_batch: None,
            view_cache_bytes: crate::embedded::view_store::DEFAULT_CACHE_BYTES,
        }
    }
}

/// The log's head: its Merkle tree and latest signed checkpoint (one per committed batch).
pub struct LogHead {
    /// Leaf hashes of every record (leaf i = log index i + 1).
    pub tree: Tree,
    /// The latest checkpoint.
    pub checkpoint: Checkpoint,
    /// Its signed note.
    pub note: Arc<str>,
    /// The key that signs the checkpoints, and how it came to.
    pub key: SigningKey,
}

/// The log's current signing key, as readers need it, and the rotations that led to it.
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// Its C2SP verifier key.
    pub verifier_key: Arc<str>,
    /// Its raw Ed25519 public key.
    pub public_key: Arc<[u8]>,
    /// The rotation statements, oldest first (see [`crate::log_keys`]).
    pub rotations: Vec<Arc<str>>,
}

/// What opening an exchange came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new exchange: its opening record's receipt.
    New(Receipt),
    /// An earlier submission with the same idempotency key opened it.
    Replayed {
        /// The exchange.
        request_id: RequestId,
        /// Its opening record's index.
        index: u64,
    },
}

/// What a change made at most once (an acknowledgement, a withdrawal) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once {
    /// Made now: the record's receipt.
    New(Receipt),
    /// Made before, by the record at `index`.
    Before {
        /// The earlier record's index.
        index: u64,
    },
}

impl Once {
    fn of(decided: Decided, what: &str) -> Result<Self, BrokerError> {
        Ok(match decided {
            Decided::Appended(receipt) => Once::New(receipt),
            Decided::AlreadyDone { index } => Once::Before { index },
            other => return Err(other.unexpected(what)),
        })
    }
}

/// Handle to the ledger: typed changes, reads of what is committed, the applied index.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Job>,
    applied: watch::Receiver<u64>,
    inbox_bells: crate::inbox_wakes::InboxBells,
    reader: Arc<dyn Reader>,
    protocols: SharedProtocols,
    head: Arc<RwLock<LogHead>>,
    batches: Arc<std::sync::atomic::AtomicU64>,
    log_check: watch::Receiver<crate::log_check::LogCheck>,
}

/// The published protocol register: replaced whole after each batch that changes it.
pub(crate) type SharedProtocols = Arc<RwLock<Arc<ProtocolStore>>>;

/// Longest [`Ledger::receipt_once_signed`] waits for the head to cover a record it was handed.
pub const SIGNED_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

fn stopped() -> BrokerError {
    BrokerError::Unavailable("the ledger has stopped".into())
}

impl Ledger {
    /// Opens the embedded engine in `data_dir` (see [`crate::embedded`]), its keys in
    /// `data_dir/keys`, and starts the writer.
    pub fn open(data_dir: &Path, options: &LedgerOptions) -> Result<(Self, OpenReport), OpenError> {
        Self::open_embedded(data_dir, &data_dir.join("keys"), options)
    }

    /// Opens the embedded engine in `data_dir` with its keys (log signing, bodies) in
    /// `keys_dir`, and starts the writer.
    pub fn open_embedded(
        data_dir: &Path,
        keys_dir: &Path,
        options: &LedgerOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        let (engine, report) =
            EmbeddedEngine::open_with(data_dir, keys_dir, options.view_cache_bytes)?;
        let ledger = Self::start(Box::new(engine), Some(keys_dir.to_path_buf()), options)?;
        Ok((ledger, report))
    }

    /// Opens the PostgreSQL engine (see [`crate::postgres`]) with its keys in `keys_dir`, and
    /// starts the writer.
    pub fn open_postgres(
        settings: &crate::postgres::PgSettings,
        keys_dir: &Path,
        options: &LedgerOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        let engine = crate::postgres::PostgresEngine::open(settings, keys_dir)?;
        let report = OpenReport {
            records: engine.reader().records(),
            ..OpenReport::default()
        };
        let ledger = Self::start(Box::new(engine), Some(keys_dir.to_path_buf()), options)?;
        Ok((ledger, report))
    }

    /// A ledger on the in-memory engine, with an ephemeral signing key: for tests.
    pub fn in_memory(options: &LedgerOptions) -> Result<Self, OpenError> {
        Self::start(Box::new(crate::mem::MemEngine::new()), None, options)
    }

    /// Starts the writer over `engine`: rebuilds the tree and the register from what it holds,
    /// checks them against its signed checkpoint, and loads the signing key from `keys_dir`
    /// (`None`: an ephemeral key).
    pub fn start(
        mut engine: Box<dyn Backend>,
        keys_dir: Option<PathBuf>,
        options: &LedgerOptions,
    ) -> Result<Self, OpenError> {
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        // A weak sender: the writer still stops when the last handle is dropped.
        let weak = tx.downgrade();
        engine.watch_others(Arc::new(move |size| {
            if let Some(tx) = weak.upgrade() {
                // A full queue needs no hint: every batch folds in what others appended first.
                let _ = tx.try_send(Job::Refresh { size });
            }
        }));
        let (sequencer, shared) = Sequencer::start(engine, keys_dir, options)?;
        std::thread::Builder::new()
            .name("infoshare-ledger".into())
            .spawn(move || sequencer.run(rx))
            .map_err(|e| OpenError::Register(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            tx,
            applied: shared.applied,
            inbox_bells: shared.inbox_bells,
            reader: shared.reader,
            protocols: shared.protocols,
            head: shared.head,
            batches: shared.batches,
            log_check: shared.log_check,
        })
    }

    async fn call<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, BrokerError>>) -> Job,
    ) -> Result<T, BrokerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(job(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    async fn change(&self, change: Change) -> Result<Decided, BrokerError> {
        self.call(|reply| Job::Change {
            change: Box::new(change),
            reply,
        })
        .await
    }

    /// Opens an exchange (a RequestSubmitted or DisclosureSubmitted record, with its body);
    /// idempotent on the record's idempotency hash within the sending agency.
    pub async fn open_exchange(
        &self,
        record: Record,
        body: BodyEntry,
    ) -> Result<Opened, BrokerError> {
        Ok(match self.change(Change::Open { record, body }).await? {
            Decided::Appended(receipt) => Opened::New(receipt),
            Decided::Replayed { request_id, index } => Opened::Replayed { request_id, index },
            other => return Err(other.unexpected("opening an exchange")),
        })
    }

    /// Acknowledges an inbox item for `actor`, its addressee.
    pub async fn acknowledge(
        &self,
        actor: Actor,
        time_ms: u64,
        request_id: RequestId,
        kind: MessageKind,
    ) -> Result<Once, BrokerError> {
        let change = Change::Acknowledge {
            actor,
            time_ms,
            request_id,
            kind,
        };
        Once::of(self.change(change).await?, "an acknowledgement")
    }

    /// Withdraws a request (a RequestWithdrawn record, with the body of its reasons) for its
    /// requester; a request withdrawn before answers with that withdrawal.
    pub async fn withdraw(&self, record: Record, body: BodyEntry) -> Result<Once, BrokerError> {
        Once::of(
            self.change(Change::Withdraw { record, body }).await?,
            "a withdrawal",
        )
    }

    /// Marks each request overdue, or expires it, that is still due as of `time_ms` (a
    /// RequestOverdue or RequestExpired record by `actor`); a request no longer due is left
    /// alone. Every change is queued before any is awaited, so they share batches. Returns, for
    /// each, whether a record was appended.
    pub async fn deadlines(
        &self,
        actor: &Actor,
        time_ms: u64,
        due: &[(RequestId, Deadline)],
    ) -> Result<Vec<bool>, BrokerError> {
        let mut replies = Vec::with_capacity(due.len());
        for (request_id, deadline) in due {
            let (reply, rx) = oneshot::channel();
            let change = Change::Deadline {
                actor: actor.clone(),
                time_ms,
                request_id: *request_id,
                deadline: *deadline,
            };
            self.tx
                .send(Job::Change {
                    change: Box::new(change),
                    reply,
                })
                .await
                .map_err(|_| stopped())?;
            replies.push(rx);
        }
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            out.push(match rx.await.map_err(|_| stopped())?? {
                Decided::Appended(_) => true,
                Decided::NotDue => false,
                other => return Err(other.unexpected("a deadline")),
            });
        }
        Ok(out)
    }

    /// Answers a request (a ResponseSubmitted record, with its body).
    pub async fn respond(&self, record: Record, body: BodyEntry) -> Result<Receipt, BrokerError> {
        self.change(Change::Respond { record, body })
            .await?
            .receipt("an answer")
    }

    /// Appends a record that needs no state check (a refusal, an audit query).
    pub async fn append(&self, record: Record) -> Result<Receipt, BrokerError> {
        self.change(Change::Append { record })
            .await?
            .receipt("an appended record")
    }

    /// Places or releases a legal hold (a LegalHoldPlaced or LegalHoldReleased record).
    pub async fn hold(&self, record: Record) -> Result<Receipt, BrokerError> {
        self.change(Change::Hold { record })
            .await?
            .receipt("a legal hold")
    }

    /// Changes the protocol register (a protocol record, with the document of a registration).
    pub async fn change_register(
        &self,
        record: Record,
        document: Option<BodyEntry>,
    ) -> Result<Receipt, BrokerError> {
        self.change(Change::Protocol { record, document })
            .await?
            .receipt("a register change")
    }

    /// Erases the bodies of these exchanges (their retention has ended), each with its subjects'
    /// pseudonyms, and logs a BodiesPurged record for each; exchanges already purged, and those
    /// under a legal hold (on the exchange or one of its subjects, as the writer sees the holds
    /// when it erases), are skipped. Returns how many were purged now.
    pub async fn purge(
        &self,
        actor: Actor,
        time_ms: u64,
        exchanges: Vec<(RequestId, Vec<Pseudonym>)>,
    ) -> Result<usize, BrokerError> {
        self.call(|reply| Job::Purge {
            actor,
            time_ms,
            exchanges,
            reply,
        })
        .await
    }

    /// Rotates the log's signing key (see [`crate::log_keys`]); returns the rotation statement.
    pub async fn rotate_key(&self, actor: Actor, time_ms: u64) -> Result<String, BrokerError> {
        self.call(|reply| Job::RotateKey {
            actor,
            time_ms,
            reply,
        })
        .await
    }

    /// The log's head (tree and latest checkpoint), for proofs.
    pub fn head(&self) -> std::sync::RwLockReadGuard<'_, LogHead> {
        self.head.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Batches committed since start: each is one `fdatasync` of the log (and of the bodies, if
    /// any) and one checkpoint signature, shared by every record in it.
    pub fn batches_committed(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The log's verifier key (C2SP note format).
    pub fn verifier_key(&self) -> Arc<str> {
        self.head().key.verifier_key.clone()
    }

    /// A receipt for the record at `log_index`, against the latest checkpoint.
    pub fn receipt(&self, log_index: u64) -> Result<Receipt, BrokerError> {
        let record = self.record(log_index)?;
        let head = self.head();
        let proof = head
            .tree
            .inclusion_proof(log_index - 1, head.checkpoint.size)
            .ok_or_else(|| BrokerError::Internal(format!("record {log_index} beyond the tree")))?;
        Ok(Receipt {
            log_index,
            checkpoint: head.note.clone(),
            proof,
            record,
        })
    }

    /// A receipt for the record at `log_index`, once the head's signed checkpoint covers it.
    /// A record found through the views (an earlier submission's, an earlier
    /// acknowledgement's) may be a moment ahead of the head: the views of a durable batch are
    /// visible before the writer publishes its checkpoint, and on a shared log another broker's
    /// batch before this one folds it in. Waits for that, at most [`SIGNED_WITHIN`].
    pub async fn receipt_once_signed(&self, log_index: u64) -> Result<Receipt, BrokerError> {
        let mut applied = self.applied();
        // The borrow `wait_for` returns is let go before the record is read: the writer
        // publishes the applied index under that lock.
        let signed = tokio::time::timeout(SIGNED_WITHIN, async {
            applied.wait_for(|size| *size >= log_index).await.map(drop)
        })
        .await;
        match signed {
            Ok(Ok(())) => self.receipt(log_index),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(BrokerError::Unavailable(format!(
                "record {log_index} is not yet under a checkpoint of this broker's; retry"
            ))),
        }
    }

    /// The bytes of the committed record at `index`, read from the log.
    pub fn record(&self, index: u64) -> Result<Vec<u8>, BrokerError> {
        self.reader
            .record(index)
            .map_err(|e| BrokerError::Internal(e.to_string()))
    }

    /// The committed record at `index`, decoded.
    pub fn decoded(&self, index: u64) -> Result<Record, BrokerError> {
        Record::decode(&self.record(index)?)
            .map_err(|e| BrokerError::Internal(format!("record {index}: {e}")))
    }

    /// The bytes of the committed records at `indexes`, in their order (read at once: one
    /// round trip on PostgreSQL).
    pub fn records_at(&self, indexes: &[u64]) -> Result<Vec<Vec<u8>>, BrokerError> {
        self.reader
            .records_at(indexes)
            .map_err(|e| BrokerError::Internal(e.to_string()))
    }

    /// The committed records at `indexes`, decoded, in their order (read at once).
    pub fn decoded_many(&self, indexes: &[u64]) -> Result<Vec<Record>, BrokerError> {
        let raws = self.records_at(indexes)?;
        indexes
            .iter()
            .zip(raws)
            .map(|(index, raw)| {
                Record::decode(&raw)
                    .map_err(|e| BrokerError::Internal(format!("record {index}: {e}")))
            })
            .collect()
    }

    /// A request's records, oldest first.
    pub fn timeline(&self, id: &RequestId) -> Result<Vec<(u64, Record)>, BrokerError> {
        let indexes = self.reader.timeline(id)?;
        let records = self.decoded_many(&indexes)?;
        Ok(indexes.into_iter().zip(records).collect())
    }

    /// The protocol register as of the last committed batch.
    pub fn protocols(&self) -> Arc<ProtocolStore> {
        self.protocols
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The committed views.
    pub fn views(&self) -> &dyn Reader {
        &*self.reader
    }

    /// Where the check of the whole log after start-up stands (see [`crate::log_check`]).
    pub fn log_check(&self) -> watch::Receiver<crate::log_check::LogCheck> {
        self.log_check.clone()
    }

    /// A receiver of the last applied log index, which changes after every committed batch.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// A receiver of the log's size that changes after each committed batch adding to
    /// `agency`'s inbox, and only then (see [`crate::inbox_wakes`]); its wait ends with an
    /// error once the writer is gone.
    pub fn inbox_changes(&self, agency: &str) -> watch::Receiver<u64> {
        self.inbox_bells.subscribe(agency, *self.applied.borrow())
    }

    /// Reads a stored body; `None` when it is not stored (purged).
    pub fn body(
        &self,
        kind: MessageKind,
        id: &RequestId,
    ) -> Result<Option<BodyEntry>, BrokerError> {
        self.reader
            .body(kind, id)
            .map_err(|e| BrokerError::Internal(e.to_string()))
    }

    /// [`body`](Self::body) of exchange `id`, whose meta the caller read (`meta`).
    pub fn body_in(
        &self,
        kind: MessageKind,
        id: &RequestId,
        meta: &crate::views::RequestMeta,
    ) -> Result<Option<BodyEntry>, BrokerError> {
        self.reader
            .body_in(kind, id, meta)
            .map_err(|e| BrokerError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
