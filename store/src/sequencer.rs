//! The one writer, the same for every engine: it takes changes in arrival order, batches them,
//! decides each with `core`'s [`decide`] against the views as the batch so far has left them,
//! folds what it appends into the views and the register, signs one checkpoint over the new tree,
//! and hands the batch to its second stage (`committer`), which has the engine make it durable
//! and answers every caller in it. On an engine with one writer the next batch is decided while
//! the last one is made durable, against its writes (`in_flight`); on another, each batch is
//! committed before the next is begun. A purge or a key rotation runs alone, between batches,
//! once every batch before it is committed.
//!
//! Fail-stop: after a storage failure every later write is refused until restart, so nothing is
//! acknowledged that the log might not hold.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use infoshare_tlog::{Checkpoint, Receipt, Tree};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, Reader};
use crate::checkpoint::{CheckpointError, check_signed};
use crate::crypto::Pseudonym;
use crate::error::BrokerError;
use crate::exchange::Change;
use crate::ledger::{LedgerOptions, LogHead, SharedProtocols, SigningKey};
use crate::log_check::LogCheck;
use crate::log_keys::LogKeys;
use crate::open_error::OpenError;
use crate::protocol::ProtocolStore;
use crate::records::{Actor, RequestId};

mod alone;
mod committer;
mod deciding;
mod in_flight;
mod opening;

use committer::{Committer, ToCommit};
use in_flight::InFlight;
use opening::{interrupted_rotation, load_register, open_tree, rebuild_tree};

/// What the writer is asked to do, each with where its answer goes.
pub(crate) enum Job {
    Change {
        change: Box<Change>,
        reply: oneshot::Sender<Result<Decided, BrokerError>>,
    },
    Purge {
        actor: Actor,
        time_ms: u64,
        exchanges: Vec<(RequestId, Vec<Pseudonym>)>,
        reply: oneshot::Sender<Result<usize, BrokerError>>,
    },
    RotateKey {
        actor: Actor,
        time_ms: u64,
        reply: oneshot::Sender<Result<String, BrokerError>>,
    },
    /// Another writer of a shared log committed up to `size` records (see
    /// `Backend::watch_others`).
    Refresh { size: u64 },
    /// The committer has finished a batch: the open one can go.
    Wake,
}

/// A change, once its batch is durable.
#[derive(Debug)]
pub(crate) enum Decided {
    Appended(Receipt),
    Replayed { request_id: RequestId, index: u64 },
    AlreadyDone { index: u64 },
    NotDue,
}

impl Decided {
    /// The receipt of a change that always appends.
    pub(crate) fn receipt(self, what: &str) -> Result<Receipt, BrokerError> {
        match self {
            Decided::Appended(receipt) => Ok(receipt),
            other => Err(other.unexpected(what)),
        }
    }

    /// `decide` gave a change a step it never gives it: a bug, said once here.
    pub(crate) fn unexpected(self, what: &str) -> BrokerError {
        BrokerError::Internal(format!("the ledger answered {what} with {self:?}"))
    }
}

/// What the handle shares with the writer.
pub(crate) struct Shared {
    pub(crate) applied: watch::Receiver<u64>,
    pub(crate) reader: Arc<dyn Reader>,
    pub(crate) protocols: SharedProtocols,
    pub(crate) head: Arc<RwLock<LogHead>>,
    pub(crate) batches: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) log_check: watch::Receiver<LogCheck>,
}

type ChangeJob = (Change, oneshot::Sender<Result<Decided, BrokerError>>);

pub(crate) struct Sequencer {
    /// Shared with the committer, which holds it while a batch is made durable; the writer
    /// takes it only between batches (or, on an engine with other writers, to begin one).
    engine: Arc<Mutex<Box<dyn Backend>>>,
    reader: Arc<dyn Reader>,
    applied: Arc<watch::Sender<u64>>,
    poisoned: Option<String>,
    /// The register including this batch's changes (what register changes are decided against).
    register: ProtocolStore,
    /// The register readers see, replaced after a batch that changed it commits.
    published: SharedProtocols,
    head: Arc<RwLock<LogHead>>,
    keys: LogKeys,
    max_batch: usize,
    /// The engine has no other writer: batches are decided while the last one is committed.
    pipelined: bool,
    in_flight: Arc<InFlight>,
    /// A rendezvous: a batch is handed over once the committer has finished the one before.
    to_commit: std::sync::mpsc::SyncSender<ToCommit>,
    committer: Option<std::thread::JoinHandle<()>>,
    /// The committer holds no batch (it is waiting for the next).
    idle: Arc<std::sync::atomic::AtomicBool>,
    /// Set by the committer at a storage failure.
    failed: Arc<Mutex<Option<String>>>,
    /// Set by the log check if the log is found changed: from then on, writes are refused.
    fault: Arc<std::sync::Mutex<Option<String>>>,
    /// Another broker of a shared log rotated its key to this one, not taken up yet.
    rotated_to: Option<[u8; 32]>,
    /// Other brokers' register changes folded in, not yet checked and published to readers.
    register_unpublished: bool,
}

/// Longest a fold waits for another broker to install the key it rotated to.
const ADOPT_KEY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn internal(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Internal(e.to_string())
}

impl SigningKey {
    fn of(keys: &LogKeys) -> Self {
        Self {
            verifier_key: keys.signer().verifier_key().into(),
            public_key: keys.signer().public_key().into(),
            rotations: keys.rotations().iter().map(|r| r.render().into()).collect(),
        }
    }
}

impl Sequencer {
    /// Rebuilds the tree and the register from what `engine` holds, holds them to its signed
    /// checkpoint, and stores the checkpoint of the tree as it is.
    /// `wake` is the writer's own queue, where the committer says it has finished a batch.
    pub(crate) fn start(
        mut engine: Box<dyn Backend>,
        keys_dir: Option<PathBuf>,
        options: &LedgerOptions,
        wake: mpsc::WeakSender<Job>,
    ) -> Result<(Self, Shared), OpenError> {
        let origin = options.origin.as_str();
        // Held until the checkpoint below is stored: no other writer of a shared log moves it
        // while this one reads the tree (each batch begins this way too).
        engine.begin_batch().map_err(|e| OpenError::Storage(e.0))?;
        let reader = engine.reader();
        let tiles = engine.tiles();
        let (mut tree, mut from_tiles) = open_tree(&*reader, tiles.clone())?;
        let checkpoint_of = |tree: &Tree| Checkpoint {
            origin: origin.to_string(),
            size: tree.size(),
            root: tree.root(tree.size()).expect("size of the tree"),
        };
        let keys = match &keys_dir {
            // The checkpoint a rotation is finished over comes from the records themselves, not
            // from tiles not yet checked against them.
            Some(dir) => LogKeys::open(dir, origin, || {
                interrupted_rotation(&*reader, origin).map_err(|e| e.to_string())
            }),
            None => LogKeys::ephemeral(origin),
        }
        .map_err(|message| OpenError::SigningKey {
            path: keys_dir.map_or("(ephemeral)".into(), |d| d.display().to_string()),
            message,
        })?;
        let mut signed = (0, infoshare_tlog::merkle::empty_root());
        if let Some(note) = reader.checkpoint() {
            let verifiers = keys.verifiers().map_err(OpenError::Tampered)?;
            let mut checked = check_signed(&note, &verifiers, &tree);
            if let (Err(CheckpointError::Changed { .. }), Some(store), true) =
                (&checked, &tiles, from_tiles)
            {
                // The tiles, not the log, may be what is wrong (a power cut tore one): the
                // tree is made again from the log itself before the log is called changed.
                tracing::warn!(
                    "the tiles do not give the signed root; rebuilding them from the log"
                );
                tree = rebuild_tree(&*reader, Some(store.clone()))?;
                from_tiles = false;
                checked = check_signed(&note, &verifiers, &tree);
            }
            let cp = checked.map_err(|e| OpenError::Tampered(e.to_string()))?;
            signed = (cp.size, cp.root);
        }
        let checkpoint = checkpoint_of(&tree);
        let fault = Arc::new(std::sync::Mutex::new(None));
        let log_check = match (&tiles, from_tiles) {
            // Opened from its tiles: the records themselves are rehashed in the background.
            (Some(store), true) => crate::log_check::spawn(
                reader.clone(),
                store.clone(),
                crate::log_check::Expected {
                    signed_size: signed.0,
                    signed_root: signed.1,
                    size: checkpoint.size,
                    root: checkpoint.root,
                },
                fault.clone(),
            ),
            // Rebuilt from every record just now: already checked.
            _ => {
                watch::channel(LogCheck::Passed {
                    records: checkpoint.size,
                    tiles_repaired: 0,
                })
                .1
            }
        };
        let note: Arc<str> = keys.signer().sign(&checkpoint).into();
        engine
            .store_checkpoint(&note)
            .map_err(|e| OpenError::Storage(e.0))?;
        let register = load_register(&*reader)?;
        let last = tree.size();
        let head = Arc::new(RwLock::new(LogHead {
            tree,
            checkpoint,
            note,
            key: SigningKey::of(&keys),
        }));
        let published: SharedProtocols = Arc::new(RwLock::new(Arc::new(register.clone())));
        let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (applied, applied_rx) = watch::channel(last);
        let applied = Arc::new(applied);
        let pipelined = engine.one_writer();
        let engine = Arc::new(Mutex::new(engine));
        let in_flight = Arc::new(InFlight::default());
        let failed = Arc::new(Mutex::new(None));
        let idle = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let committer = Committer {
            idle: idle.clone(),
            // Waking the writer is for deciding while the committer works; without that, the
            // writer waits for each batch itself.
            wake: pipelined.then_some(wake),
            engine: engine.clone(),
            head: head.clone(),
            applied: applied.clone(),
            published: published.clone(),
            batches: batches.clone(),
            on_batch: options.on_batch.clone(),
            in_flight: in_flight.clone(),
            failed: failed.clone(),
        };
        let (to_commit, to_committer) = std::sync::mpsc::sync_channel(0);
        let committer = std::thread::Builder::new()
            .name("ledger-commit".into())
            .spawn(move || committer.run(to_committer))
            .map_err(|e| OpenError::Storage(format!("cannot start the committer: {e}")))?;
        let shared = Shared {
            applied: applied_rx,
            reader: reader.clone(),
            protocols: published.clone(),
            head: head.clone(),
            batches: batches.clone(),
            log_check,
        };
        let sequencer = Self {
            engine,
            reader,
            applied,
            poisoned: None,
            register,
            published,
            head,
            keys,
            max_batch: options.max_batch.max(1),
            pipelined,
            in_flight,
            to_commit,
            committer: Some(committer),
            idle,
            failed,
            fault,
            rotated_to: None,
            register_unpublished: false,
        };
        Ok((sequencer, shared))
    }

    /// Runs until every handle is dropped.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut open: Option<deciding::Open> = None;
        loop {
            if let Some(batch) = open.take_if(|o| o.len() >= self.max_batch || self.may_seal()) {
                self.seal(batch);
            }
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let room = self.max_batch - open.as_ref().map_or(0, deciding::Open::len);
            let mut changes: Vec<ChangeJob> = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Change { change, reply } => changes.push((*change, reply)),
                    Job::Wake => {}
                    // Alone, between the batches before and after it.
                    alone => {
                        self.decide_into(&mut open, std::mem::take(&mut changes));
                        if let Some(batch) = open.take() {
                            self.seal(batch);
                        }
                        self.alone(alone);
                    }
                }
                if changes.len() < room {
                    next = rx.try_recv().ok();
                }
            }
            self.decide_into(&mut open, changes);
        }
        if let Some(batch) = open.take() {
            self.seal(batch);
        }
        // The committer finishes what it holds, then lets go of the engine.
        let Self {
            to_commit,
            committer,
            ..
        } = self;
        drop(to_commit);
        if let Some(thread) = committer {
            let _ = thread.join();
        }
    }

    /// Whether the open batch can be handed over now: the committer is free (on an engine with
    /// other writers it always is, as each batch is waited for).
    fn may_seal(&self) -> bool {
        !self.pipelined || self.idle.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until every batch handed over is committed (or refused).
    fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.to_commit.send(ToCommit::Flush(done)).is_ok() && wait.recv().is_ok() {
            debug_assert!(
                self.in_flight.is_empty(),
                "a batch committed is still in flight"
            );
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Box<dyn Backend>> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alone(&mut self, job: Job) {
        // Alone: after every batch before it is committed.
        self.flush();
        match job {
            Job::Purge {
                actor,
                time_ms,
                exchanges,
                reply,
            } => {
                let _ = reply.send(self.purge(actor, time_ms, &exchanges));
            }
            Job::RotateKey {
                actor,
                time_ms,
                reply,
            } => {
                let _ = reply.send(self.rotate_key(actor, time_ms));
            }
            Job::Refresh { size } => self.refresh(size),
            Job::Change { .. } | Job::Wake => unreachable!("not a job that runs alone"),
        }
    }

    /// Why writes are refused, if they are (a storage failure, or the log check's finding).
    fn refused(&mut self) -> Option<String> {
        if self.poisoned.is_none() {
            self.poisoned = self
                .fault
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|why| format!("the log does not match its signed checkpoint ({why})"))
                .or_else(|| {
                    self.failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone()
                });
        }
        self.poisoned.clone()
    }

    /// Refuses every later write, for `why`.
    fn poison(&mut self, why: String) -> BrokerError {
        tracing::error!(error = %why, "refusing further writes");
        self.poisoned = Some(why.clone());
        BrokerError::Unavailable(why)
    }

    /// Becomes the log's one writer (a no-op on an engine with no other) and folds in what
    /// other writers appended before. On an error the batch is ended: nothing was written.
    fn begin(&mut self) -> Result<(), BrokerError> {
        let begun = self.engine().begin_batch();
        let begun = begun
            .map_err(|e| BrokerError::Unavailable(format!("storage: {e}")))
            .and_then(|()| self.catch_up());
        if begun.is_err() {
            self.engine().end_batch();
        }
        begun
    }

    /// Another writer committed up to `size`: its records are folded in now, so that streams
    /// on this broker see them without waiting for a write here.
    fn refresh(&mut self, size: u64) {
        if self.poisoned.is_some() || size <= self.reader.records() {
            return;
        }
        let refreshed = self.engine().refresh();
        let refreshed = refreshed
            .map_err(|e| BrokerError::Unavailable(format!("storage: {e}")))
            .and_then(|()| self.catch_up());
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, "could not fold in other brokers' records yet");
        }
    }

    /// Folds the records the reader holds beyond this writer's tree into the tree, the register
    /// and the head, and checks the tree against the stored checkpoint that covers them.
    /// Resumable: records folded before a failure stay folded, and are checked at the next call.
    fn catch_up(&mut self) -> Result<(), BrokerError> {
        use crate::catch_up::{FoldError, fold};
        // Only this thread moves the tree: a look under the read lock is enough, and readers are
        // not held up at every batch of an engine with one writer.
        let checked = {
            let head = self.head.read().unwrap_or_else(|e| e.into_inner());
            (head.tree.size() == head.checkpoint.size).then_some(head.tree.size())
        };
        if checked.is_some_and(|size| self.reader.records() <= size) {
            return Ok(());
        }
        let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
        let folded = match fold(&*self.reader, &mut head.tree, &mut self.register) {
            Ok(folded) => folded,
            Err(FoldError::Storage(e)) => {
                return Err(BrokerError::Unavailable(format!("storage: {e}")));
            }
            Err(e) => {
                drop(head);
                return Err(self.poison(format!("the shared log does not fold in: {e}")));
            }
        };
        // Readers are not held up while a rotated key is waited for.
        drop(head);
        // Both kept until the fold is checked, however many calls that takes.
        self.register_unpublished |= folded.register_changed;
        self.rotated_to = folded.rotated_to.or(self.rotated_to);
        if let Some(public_key) = self.rotated_to {
            match adopt_key(&mut self.keys, &public_key) {
                Ok(true) => {
                    self.rotated_to = None;
                    self.head.write().unwrap_or_else(|e| e.into_inner()).key =
                        SigningKey::of(&self.keys);
                }
                Ok(false) => {
                    return Err(BrokerError::Unavailable(
                        "another broker is rotating the log's signing key: its new key is not in \
                         the keys directory yet"
                            .into(),
                    ));
                }
                Err(why) => {
                    return Err(self.poison(format!("the shared log's new signing key: {why}")));
                }
            }
        }
        let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
        let checked = match (self.reader.checkpoint(), self.keys.verifiers()) {
            (Some(note), Ok(verifiers)) => check_signed(&note, &verifiers, &head.tree)
                .map_err(|e| e.to_string())
                .and_then(|cp| match cp.size == head.tree.size() {
                    true => Ok((cp, note)),
                    false => Err(format!(
                        "the stored checkpoint is of {} records, the log holds {}",
                        cp.size,
                        head.tree.size()
                    )),
                }),
            (None, _) => Err("records without a checkpoint".to_string()),
            (_, Err(e)) => Err(e),
        };
        let (checkpoint, note) = match checked {
            Ok(checked) => checked,
            Err(why) => {
                drop(head);
                return Err(self.poison(format!("the shared log: {why}")));
            }
        };
        let size = checkpoint.size;
        head.checkpoint = checkpoint;
        head.note = note.into();
        drop(head);
        tracing::debug!(
            records = folded.records,
            size,
            "folded in other brokers' records"
        );
        if std::mem::take(&mut self.register_unpublished) {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(self.register.clone());
        }
        self.applied.send_replace(size);
        Ok(())
    }
}

/// Takes up the key another broker rotated the shared log to, once that broker has stated and
/// installed it in the shared keys directory: a few milliseconds after its record commits, so
/// it is waited for (briefly: the caller may hold the sequencer lock).
fn adopt_key(keys: &mut LogKeys, public_key: &[u8; 32]) -> Result<bool, String> {
    let until = std::time::Instant::now() + ADOPT_KEY_WAIT;
    loop {
        if keys.adopt(public_key)? {
            tracing::info!(
                verifier_key = %keys.signer().verifier_key(),
                "took up the log signing key another broker rotated to"
            );
            return Ok(true);
        }
        if std::time::Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests;
