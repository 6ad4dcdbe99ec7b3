//! The one writer, the same for every engine: it takes changes in arrival order, batches them,
//! decides each with `core`'s [`decide`] against the views as the batch so far has left them,
//! folds what it appends into the views and the register, signs one checkpoint over the new tree,
//! hands the batch to the engine, and answers every caller in the batch once the engine says it
//! is durable. A purge or a key rotation runs alone, between batches.
//!
//! Fail-stop: after a storage failure every later write is refused until restart, so nothing is
//! acknowledged that the log might not hold.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use infoshare_tlog::{Checkpoint, Receipt, Tree, leaf_hash};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, Batch, OnDurable, Reader};
use crate::bodies::BodyEntry;
use crate::checkpoint::{CheckpointError, check_signed};
use crate::crypto::Pseudonym;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::exchange::{Change, Step, decide};
use crate::ledger::{LedgerOptions, LogHead, SharedProtocols, SigningKey};
use crate::log_check::LogCheck;
use crate::log_keys::LogKeys;
use crate::open_error::OpenError;
use crate::overlay::Overlay;
use crate::protocol::ProtocolStore;
use crate::records::{Actor, Event, Record, RequestId};
use crate::views::{self, ViewError};

mod in_flight;
mod opening;
mod purge;

use in_flight::{Answers, Durable, InFlight, Layered, Publish};
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
    pub(crate) inbox_bells: crate::inbox_wakes::InboxBells,
    pub(crate) reader: Arc<dyn Reader>,
    pub(crate) protocols: SharedProtocols,
    pub(crate) head: Arc<RwLock<LogHead>>,
    pub(crate) batches: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) log_check: watch::Receiver<LogCheck>,
}

type ChangeJob = (Change, oneshot::Sender<Result<Decided, BrokerError>>);

/// What a batch's records fold into (see `Batch`).
struct Writes {
    views: crate::backend::ViewWrites,
    postings: crate::backend::Posted,
    created: crate::backend::Created,
}

pub(crate) struct Sequencer {
    engine: Box<dyn Backend>,
    reader: Arc<dyn Reader>,
    poisoned: Option<String>,
    /// The register including this batch's changes (what register changes are decided against).
    register: ProtocolStore,
    head: Arc<RwLock<LogHead>>,
    keys: LogKeys,
    max_batch: usize,
    /// What a durable batch publishes (the register readers see among it).
    publish: Publish,
    /// Set by the log check if the log is found changed: from then on, writes are refused.
    fault: Arc<std::sync::Mutex<Option<String>>>,
    /// Another broker of a shared log rotated its key to this one, not taken up yet.
    rotated_to: Option<[u8; 32]>,
    /// Other brokers' register changes folded in, not yet checked and published to readers.
    register_unpublished: bool,
    /// The batch the engine is still writing, if it writes behind (see `Backend::submit`).
    in_flight: Option<InFlight>,
    /// Where the writer waits for a job or its batch in flight, whichever comes first.
    idle: tokio::runtime::Runtime,
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
    pub(crate) fn start(
        mut engine: Box<dyn Backend>,
        keys_dir: Option<PathBuf>,
        options: &LedgerOptions,
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
        let (inbox_wakes, inbox_bells) = crate::inbox_wakes::pair();
        let shared = Shared {
            applied: applied_rx,
            inbox_bells,
            reader: reader.clone(),
            protocols: published.clone(),
            head: head.clone(),
            batches: batches.clone(),
            log_check,
        };
        let sequencer = Self {
            engine,
            reader,
            poisoned: None,
            register,
            publish: Publish {
                head: head.clone(),
                applied: Arc::new(applied),
                published,
                batches,
                on_batch: options.on_batch.clone(),
                known: Arc::new(std::sync::atomic::AtomicU64::new(last)),
                settled: Arc::new(tokio::sync::Notify::new()),
                inbox_wakes,
            },
            head,
            keys,
            max_batch: options.max_batch.max(1),
            fault,
            rotated_to: None,
            register_unpublished: false,
            in_flight: None,
            idle: tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| OpenError::Storage(format!("cannot start the writer: {e}")))?,
        };
        Ok((sequencer, shared))
    }

    /// Runs until every handle is dropped.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut changes: Vec<ChangeJob> = Vec::with_capacity(self.max_batch);
        loop {
            let first = match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Empty) => match self.wait_for_job(&mut rx) {
                    Some(Some(job)) => job,
                    Some(None) => break,
                    None => continue,
                },
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Change { change, reply } => changes.push((*change, reply)),
                    // This writer's own batch heard back (others cannot write while one is in
                    // flight), or nothing new: not worth splitting the batch for.
                    Job::Refresh { size }
                        if self.in_flight.is_some() || size <= self.reader.records() => {}
                    // Alone, between the batches before and after it.
                    alone => {
                        self.batch(&mut changes);
                        self.settle();
                        self.alone(alone);
                    }
                }
                if changes.len() < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            self.batch(&mut changes);
        }
        self.settle();
    }

    fn alone(&mut self, job: Job) {
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
            Job::Change { change, reply } => self.batch(&mut vec![(*change, reply)]),
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
                .map(|why| format!("the log does not match its signed checkpoint ({why})"));
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
        let begun = self
            .engine
            .begin_batch()
            .map_err(|e| BrokerError::Unavailable(format!("storage: {e}")))
            .and_then(|()| self.catch_up());
        if begun.is_err() {
            self.engine.end_batch();
        }
        begun
    }

    /// Another writer committed up to `size`: its records are folded in now, so that streams
    /// on this broker see them without waiting for a write here.
    fn refresh(&mut self, size: u64) {
        if self.poisoned.is_some() || size <= self.reader.records() {
            return;
        }
        let refreshed = self
            .engine
            .refresh()
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
            // A batch in flight is this writer's, past the checkpoint until it settles.
            (head.tree.size() == head.checkpoint.size || self.in_flight.is_some())
                .then_some(head.tree.size())
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
            *self
                .publish
                .published
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Arc::new(self.register.clone());
        }
        self.publish.applied.send_replace(size);
        self.publish.inbox_wakes.ring_all(size);
        Ok(())
    }

    fn batch(&mut self, jobs: &mut Vec<ChangeJob>) {
        if jobs.is_empty() {
            return;
        }
        if !self.engine.writer_held() {
            // Others may write before this batch: what is in flight settles first.
            self.settle();
        }
        if let Some(why) = self.refused() {
            for (_, reply) in jobs.drain(..) {
                let _ = reply.send(Err(BrokerError::Unavailable(why.clone())));
            }
            return;
        }
        if let Err(e) = self.begin() {
            for (_, reply) in jobs.drain(..) {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        let started = std::time::Instant::now();
        let first_index = match &self.in_flight {
            Some(sent) => sent.end,
            None => self.reader.records(),
        } + 1;
        let span = tracing::info_span!(
            "ledger.commit",
            commands = jobs.len(),
            records = tracing::field::Empty,
            bodies = tracing::field::Empty,
            first_index,
        );
        let _in_span = span.enter();
        let reader = self.reader.clone();
        let in_flight = self.in_flight.as_ref();
        let committed = Layered {
            base: &*reader,
            top: in_flight.map(|sent| &sent.views),
        };
        let mut ov = Overlay::new(&committed)
            .noting_created(self.engine.wants_created())
            .expecting(jobs.len());
        let first_reads: Vec<Vec<u8>> = jobs
            .iter()
            .flat_map(|(change, _)| crate::exchange::first_reads(change))
            .collect();
        if let Err(e) = ov.prefetch(&first_reads) {
            // Only a shortcut: decide reads them one by one.
            tracing::warn!(error = %e, "could not read the batch's keys at once");
        }
        let mut results: Vec<Result<Option<Decided>, BrokerError>> = Vec::with_capacity(jobs.len());
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut bodies: Vec<BodyEntry> = Vec::new();
        let mut pending_bodies: HashMap<(RequestId, MessageKind), usize> = HashMap::new();
        let mut register_changed = false;
        let (changes, replies): (Vec<Change>, Vec<_>) = jobs.drain(..).unzip();
        for change in changes {
            let step = decide(change, &ov, &self.register, |kind, id| match pending_bodies
                .get(&(*id, kind))
            {
                Some(&i) => Ok(Some(bodies[i].clone())),
                None => match in_flight.and_then(|sent| sent.body(kind, id)) {
                    Some(body) => Ok(Some(body)),
                    None => reader.body(kind, id).map_err(internal),
                },
            });
            results.push(match step {
                Ok(Step::Append(record, body)) => {
                    let index = first_index + raws.len() as u64;
                    let raw = record.encode();
                    let folded = views::apply(&mut ov, index, &record, &raw).and_then(|()| {
                        if let Event::Protocol(_) = record.event {
                            register_changed = true;
                            let document = body
                                .as_ref()
                                .map(|b| String::from_utf8_lossy(&b.body).into_owned());
                            self.register
                                .apply(&record, document.as_deref())
                                .map_err(ViewError::Store)?;
                        }
                        Ok(())
                    });
                    folded.map_err(BrokerError::from).map(|()| {
                        raws.push(raw);
                        if let Some(b) = body {
                            pending_bodies.insert((b.request_id, b.kind), bodies.len());
                            bodies.push(b);
                        }
                        None
                    })
                }
                Ok(Step::Replayed { request_id, index }) => {
                    Ok(Some(Decided::Replayed { request_id, index }))
                }
                Ok(Step::AlreadyDone { index }) => Ok(Some(Decided::AlreadyDone { index })),
                Ok(Step::NotDue) => Ok(Some(Decided::NotDue)),
                Err(e) => Err(e),
            });
        }
        let answers: Vec<_> = replies.into_iter().zip(results).collect();
        if raws.is_empty() {
            // Answers may name records of the batch in flight: they wait for it.
            self.settle();
            self.engine.end_batch();
            if self.poisoned.is_some() {
                drop(Answers(answers));
            } else {
                self.finish_unwritten(answers);
            }
            return;
        }
        let (views, postings, created) = ov.into_parts();
        let inboxes = crate::inbox_wakes::inboxes_of(&postings);
        span.record("records", raws.len());
        span.record("bodies", bodies.len());
        let register = register_changed.then(|| Arc::new(self.register.clone()));
        let raws_published = raws.clone();
        let outcome = self.publish.outcome(first_index - 1 + raws.len() as u64);
        let durable = move |checkpoint, note| Durable {
            first_index,
            raws: raws_published,
            inboxes,
            checkpoint,
            note,
            answers: Answers(answers),
            register,
            started,
            outcome,
        };
        let publish = self.publish.clone();
        let on_durable = move |checkpoint, note| publish.on_durable(durable(checkpoint, note));
        let writes = Writes {
            views,
            postings,
            created,
        };
        match self.submit(first_index, &raws, &bodies, writes, on_durable) {
            // Whatever was in flight is durable: the engine took this batch only after it.
            Ok(views) => {
                self.in_flight = views.map(|views| InFlight {
                    end: first_index - 1 + raws.len() as u64,
                    bodies,
                    views,
                });
            }
            // The callers of this batch and of the one in flight are told by their dropped
            // `on_durable`.
            Err(why) => {
                self.in_flight = None;
                self.storage_failed(&why);
            }
        }
    }

    /// Answers a batch that appended nothing (replays, refusals), once nothing is in flight.
    fn finish_unwritten(&mut self, answers: Vec<in_flight::Answer>) {
        for (reply, result) in answers {
            let answer = result.and_then(|done| {
                done.ok_or_else(|| internal("a change appended nothing, yet had no answer"))
            });
            let _ = reply.send(answer);
        }
    }

    /// Signs the tree with the batch's leaves and hands the batch to the engine, with what
    /// publishes it once durable (`on_durable`, given the batch's checkpoint and note). Returns
    /// the view writes if the engine may leave the batch pending (the next batch reads through
    /// them until it settles).
    fn submit(
        &mut self,
        first_index: u64,
        raws: &[Vec<u8>],
        bodies: &[BodyEntry],
        writes: Writes,
        on_durable: impl FnOnce(Checkpoint, Arc<str>) -> OnDurable,
    ) -> Result<Option<crate::backend::ViewWrites>, String> {
        // The leaves go into the tree first; receipts and proofs are bounded by the checkpoint's
        // size, which moves only once the engine has the batch.
        let (checkpoint, note) = {
            let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
            for raw in raws {
                head.tree.push(leaf_hash(raw));
            }
            let size = head.tree.size();
            let checkpoint = Checkpoint {
                origin: head.checkpoint.origin.clone(),
                size,
                root: head.tree.root(size).expect("size of the tree"),
            };
            let note: Arc<str> = self.keys.signer().sign(&checkpoint).into();
            (checkpoint, note)
        };
        let Writes {
            views,
            postings,
            created,
        } = writes;
        // Kept for the next batch only by an engine that may leave this one pending.
        let kept = self.engine.writes_behind().then(|| {
            let mut kept = views.clone();
            kept.extend(crate::postings::keys(postings.clone()));
            kept
        });
        self.engine
            .submit(
                Batch {
                    first_index,
                    records: raws,
                    bodies,
                    views,
                    postings,
                    created,
                    checkpoint: &note,
                },
                on_durable(checkpoint, note.clone()),
            )
            .map_err(|e| e.0)?;
        Ok(kept)
    }

    /// Appends records on the writer's own account, through a batch of their own; Ok once every
    /// one is durable.
    fn append_own(&mut self, records: Vec<Record>) -> Result<(), BrokerError> {
        let (mut jobs, replies): (Vec<ChangeJob>, Vec<_>) = records
            .into_iter()
            .map(|record| {
                let (reply, rx) = oneshot::channel();
                ((Change::Append { record }, reply), rx)
            })
            .unzip();
        self.batch(&mut jobs);
        self.settle();
        // Settled: every reply is in by now.
        replies.into_iter().try_for_each(|mut rx| {
            rx.try_recv()
                .unwrap_or_else(|_| Err(internal("own record unanswered")))
                .map(|_| ())
        })
    }

    /// Rotates the signing key: the new key is stored as pending, a LogKeyRotated record is
    /// committed under the old key, the new key cosigns that checkpoint, and takes over.
    fn rotate_key(&mut self, actor: Actor, time_ms: u64) -> Result<String, BrokerError> {
        if let Some(why) = self.refused() {
            return Err(BrokerError::Unavailable(why));
        }
        let unavailable = |e: String| BrokerError::Unavailable(format!("key rotation: {e}"));
        let next = self.keys.prepare_rotation().map_err(unavailable)?;
        let public_key: [u8; 32] = next
            .signer()
            .public_key()
            .try_into()
            .expect("Ed25519 keys are 32 bytes");
        let record = Record {
            time_ms,
            actor,
            event: Event::LogKeyRotated { public_key },
        };
        // Not in the log on failure: the pending key is discarded at the next start (or replaced
        // by the next rotation).
        self.append_own(vec![record])?;
        let (note, size) = {
            let head = self.head.read().unwrap_or_else(|e| e.into_inner());
            (head.note.to_string(), head.checkpoint.size)
        };
        let rotation = self
            .keys
            .complete_rotation(next, &note, size)
            .map_err(|e| {
                // The record is in the log and the new key pending: the next start finishes the
                // rotation. Until then this writer signs with the old key, and says so.
                tracing::error!(error = %e, "log key rotation not completed; it completes at the next start");
                unavailable(e)
            })?;
        {
            let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
            head.note = rotation.note.clone().into();
            head.key = SigningKey::of(&self.keys);
        }
        if let Err(e) = self.engine.store_checkpoint(&rotation.note) {
            tracing::warn!(error = %e, "could not store the cosigned checkpoint");
        }
        tracing::info!(verifier_key = %rotation.new_key, size, "log signing key rotated");
        Ok(rotation.render())
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
