//! The ledger: one writer thread that sequences every state change, appends it to the log with
//! group commit (one `fdatasync` per batch, shared by every call waiting in it), folds it into
//! the views, and only then answers the callers.
//!
//! ```text
//! RPC handlers ──Command──▶ channel ──▶ writer thread:  decide each command against views+batch
//!                                                        append bodies, fdatasync
//!                                                        append records, fdatasync
//!                                                        commit views (one sled batch + marks)
//!                                                        publish applied index, answer callers
//! ```
//!
//! On open, the log and body segments are checked, and views that are missing, unreadable or
//! behind are rebuilt by replaying them.

pub use infoshare_tlog::Receipt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

use crate::bodies::{BODY_MAGIC, BodyEntry};
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::log_keys::LogKeys;
use crate::protocol::ProtocolStore;
use crate::records::{Actor, Event, ProtocolEvent, Record, RequestId};
use crate::seal::BodyKeys;
use crate::segment::{self, SegmentLog, SegmentReader};
use crate::view_store::{Overlay, ViewStore};
use crate::views::{self, ViewError};

mod decide;
mod open_error;
pub use open_error::OpenError;
mod recovery;
use recovery::{check_signed_checkpoint, replay, store_checkpoint};
mod maintenance;
use decide::{Step, decide};
pub use decide::{replay_of, visible_meta};
use infoshare_tlog::merkle::Hash;
use infoshare_tlog::{Checkpoint, Tree, leaf_hash};

/// Magic of the log segments.
pub const LOG_MAGIC: [u8; 8] = *b"ISLOGv01";
/// How a ledger is opened and tuned.
#[derive(Clone)]
pub struct LedgerOptions {
    /// The log's origin line in its checkpoints (C2SP tlog-checkpoint).
    pub origin: String,
    /// Most commands folded into one batch (one fdatasync and one signature).
    pub max_batch: usize,
    /// Commands that may wait for the writer; a caller beyond it waits to enqueue.
    pub queue: usize,
    /// Told of every committed batch: its records and how long it took.
    pub on_batch: Option<Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>>,
}

impl LedgerOptions {
    /// The defaults for a log of `origin`.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            max_batch: 512,
            queue: 4096,
            on_batch: None,
        }
    }
}
/// Records replayed per sled batch during a rebuild.
const REBUILD_CHUNK: usize = 20_000;

/// A state change for the writer to sequence.
#[derive(Debug)]
pub enum Command {
    /// Open an exchange: a request (RequestSubmitted) or a proactive disclosure
    /// (DisclosureSubmitted), with its body. Idempotent on the record's idempotency hash within
    /// the sending agency.
    Open {
        /// The record.
        record: Record,
        /// The body.
        body: BodyEntry,
    },
    /// Acknowledge an inbox item.
    Acknowledge {
        /// Who acknowledges.
        actor: Actor,
        /// When.
        time_ms: u64,
        /// The request.
        request_id: RequestId,
        /// Which of its messages.
        kind: MessageKind,
    },
    /// Answer a request: a ResponseSubmitted record and its body.
    Respond {
        /// The record (event must be ResponseSubmitted).
        record: Record,
        /// The body.
        body: BodyEntry,
    },
    /// Append a record that needs no state check (a refusal, an audit query).
    Append {
        /// The record.
        record: Record,
    },
    /// Erase the bodies of these exchanges (their retention has ended) and log a BodiesPurged
    /// record for each; exchanges already purged, and exchanges under a legal hold (on the
    /// exchange or on one of its subjects, as the writer sees the holds when it erases), are
    /// skipped.
    Purge {
        /// Who runs retention.
        actor: Actor,
        /// When.
        time_ms: u64,
        /// The exchanges, each with its subjects' pseudonyms.
        exchanges: Vec<(RequestId, Vec<crate::crypto::Pseudonym>)>,
    },
    /// Rotate the log's signing key (see [`crate::log_keys`]).
    RotateKey {
        /// The administrator.
        actor: Actor,
        /// When.
        time_ms: u64,
    },
    /// Place or release a legal hold (event LegalHoldPlaced or LegalHoldReleased): an exchange
    /// held must exist; placing a hold in place, or releasing one that is not, is refused.
    Hold {
        /// The record.
        record: Record,
    },
    /// Change the protocol register (event must be a protocol event); checked against the
    /// register's lifecycle.
    Protocol {
        /// The record.
        record: Record,
        /// The document, for a registration.
        document: Option<BodyEntry>,
    },
}

/// The log's head: its Merkle tree and latest signed checkpoint (one per committed batch).
pub struct LogHead {
    /// Leaf hashes of every record (leaf i = log index i + 1).
    pub tree: Tree,
    /// The latest checkpoint.
    pub checkpoint: Checkpoint,
    /// Its signed note.
    pub note: Arc<str>,
    /// Where each record lies in the log (record i at `positions[i - 1]`): the log is the only
    /// store of records; this index is rebuilt from it on open.
    positions: Vec<segment::Position>,
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

impl SigningKey {
    fn of(keys: &LogKeys) -> Self {
        Self {
            verifier_key: keys.signer().verifier_key().into(),
            public_key: keys.signer().public_key().into(),
            rotations: keys.rotations().iter().map(|r| r.render().into()).collect(),
        }
    }
}

/// What a command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A record was appended at `index`.
    Appended {
        /// The record's log index.
        index: u64,
        /// Its receipt.
        receipt: Receipt,
    },
    /// An earlier request with the same idempotency key exists.
    Replayed {
        /// Its id.
        request_id: RequestId,
        /// Its record index.
        index: u64,
    },
    /// The item was acknowledged before, by the record at `index`.
    AlreadyAcknowledged {
        /// The earlier acknowledgement's index.
        index: u64,
    },
    /// The signing key was rotated: the statement (old and new keys, the checkpoint both
    /// signed).
    Rotated {
        /// The statement.
        statement: String,
    },
    /// Bodies were erased: how many exchanges.
    Purged {
        /// Exchanges whose bodies were erased now.
        exchanges: usize,
    },
}

struct Job {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, BrokerError>>,
}

/// What opening found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Records in the log.
    pub records: u64,
    /// Bodies in the body store.
    pub bodies: u64,
    /// Records replayed into the views.
    pub replayed: u64,
    /// Whether the view store was rebuilt from nothing.
    pub rebuilt: bool,
    /// Bytes cut from torn tails (log, bodies).
    pub truncated: (u64, u64),
}

/// Handle to the ledger: send commands, read views and bodies, watch the applied index.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Job>,
    applied: watch::Receiver<u64>,
    views: Arc<ViewStore>,
    records: Arc<SegmentReader>,
    bodies: Arc<SegmentReader>,
    body_keys: Arc<BodyKeys>,
    protocols: SharedProtocols,
    head: Arc<RwLock<LogHead>>,
    batches: Arc<std::sync::atomic::AtomicU64>,
}

/// The published protocol register: replaced whole after each batch that changes it.
type SharedProtocols = Arc<RwLock<Arc<ProtocolStore>>>;

impl Ledger {
    /// Opens the ledger in `data_dir` (subdirectories `log`, `bodies`, `views`) and starts its
    /// writer thread.
    pub fn open(data_dir: &Path, options: &LedgerOptions) -> Result<(Self, OpenReport), OpenError> {
        let origin = options.origin.as_str();
        // One writer per data directory: a second server must not append to the log or, worse,
        // decide the views are unreadable and rebuild them under the first.
        let lock_path = data_dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| OpenError::LockFile {
                path: lock_path.display().to_string(),
                source,
            })?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => OpenError::Locked(data_dir.display().to_string()),
            std::fs::TryLockError::Error(source) => OpenError::LockFile {
                path: lock_path.display().to_string(),
                source,
            },
        })?;
        // Entries under the last signed checkpoint were acknowledged: a bad frame among them is
        // tampering or damage, never a torn write to cut away.
        let checkpoint_path = data_dir.join("checkpoint.note");
        let stored_note = std::fs::read_to_string(&checkpoint_path).ok();
        let signed = stored_note
            .as_deref()
            .and_then(|n| n.lines().nth(1).and_then(|l| l.parse::<u64>().ok()))
            .unwrap_or(0);
        let (log, log_rec) = SegmentLog::open_protecting(
            &data_dir.join("log"),
            LOG_MAGIC,
            crate::segment::DEFAULT_SEGMENT_BYTES,
            signed,
        )?;
        let (bodies, body_rec) = SegmentLog::open(&data_dir.join("bodies"), BODY_MAGIC)?;
        let body_reader = Arc::new(SegmentReader::new(bodies.dir()));
        let (mut views, mut rebuilt) = ViewStore::open(&data_dir.join("views"))?;
        let last_record = log.next_index() - 1;
        let last_body = bodies.next_index() - 1;
        let (mut applied, mut applied_bodies) = views.marks()?;
        if applied > last_record || applied_bodies > last_body {
            // Views ahead of the log cannot be trusted: the log is the truth.
            tracing::warn!(applied, last_record, "views ahead of the log; rebuilding");
            views = views.reset()?;
            rebuilt = true;
            (applied, applied_bodies) = (0, 0);
        }
        let replayed = last_record - applied;
        replay(&views, &log, &bodies, applied, applied_bodies)?;
        let report = OpenReport {
            records: last_record,
            bodies: last_body,
            replayed,
            rebuilt,
            truncated: (log_rec.truncated_bytes, body_rec.truncated_bytes),
        };
        let mut tree = Tree::new();
        let mut positions = Vec::with_capacity(last_record as usize);
        let mut rotated_to = None;
        log.for_each_from(1, |index, pos, raw| {
            tree.push(leaf_hash(raw));
            positions.push(pos);
            if Record::event_code_of(raw) == Some(crate::records::code::LOG_KEY_ROTATED) {
                match Record::decode(raw) {
                    Ok(Record {
                        event: Event::LogKeyRotated { public_key },
                        ..
                    }) => rotated_to = Some(public_key),
                    Ok(_) => {}
                    Err(error) => return Err(OpenError::Record { index, error }),
                }
            }
            Ok::<_, OpenError>(())
        })?;
        let checkpoint = Checkpoint {
            origin: origin.to_string(),
            size: tree.size(),
            root: tree.root(tree.size()).expect("size of the tree"),
        };
        let keys_dir = data_dir.join("keys");
        let keys =
            LogKeys::open(&keys_dir, origin, rotated_to, &checkpoint).map_err(|message| {
                OpenError::SigningKey {
                    path: keys_dir.display().to_string(),
                    message,
                }
            })?;
        check_signed_checkpoint(&checkpoint_path, stored_note.as_deref(), &keys, &tree)?;
        let body_keys_dir = keys_dir.join("body");
        let body_keys = Arc::new(BodyKeys::load_or_create(&body_keys_dir).map_err(|message| {
            OpenError::SigningKey {
                path: body_keys_dir.display().to_string(),
                message,
            }
        })?);
        let note: Arc<str> = keys.signer().sign(&checkpoint).into();
        store_checkpoint(&checkpoint_path, &note);
        let head = Arc::new(RwLock::new(LogHead {
            tree,
            checkpoint,
            note,
            positions,
            key: SigningKey::of(&keys),
        }));
        let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut register = ProtocolStore::default();
        for record in views.protocol_records()? {
            let document = match &record.event {
                Event::Protocol(ProtocolEvent::Registered {
                    protocol_id,
                    version,
                    ..
                }) => {
                    let id = crate::bodies::protocol_body_id(protocol_id, *version);
                    let body = read_body(
                        &views,
                        &body_reader,
                        &body_keys,
                        MessageKind::Protocol,
                        &id,
                    )
                    .map_err(|e| OpenError::Register(e.to_string()))?
                    .ok_or_else(|| {
                        OpenError::Register(format!(
                            "document of {protocol_id} v{version} missing from the body store"
                        ))
                    })?;
                    Some(String::from_utf8(body.body).map_err(|_| {
                        OpenError::Register(format!("document of {protocol_id} is not UTF-8"))
                    })?)
                }
                _ => None,
            };
            register
                .apply(&record, document.as_deref())
                .map_err(OpenError::Register)?;
        }
        let protocols: SharedProtocols = Arc::new(RwLock::new(Arc::new(register.clone())));
        let views = Arc::new(views);
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let (applied_tx, applied_rx) = watch::channel(last_record);
        let records = Arc::new(SegmentReader::new(log.dir()));
        let writer = Writer {
            _lock: lock,
            log,
            bodies,
            body_reader: body_reader.clone(),
            body_keys: body_keys.clone(),
            views: views.clone(),
            applied: applied_tx,
            poisoned: None,
            register,
            published: protocols.clone(),
            head: head.clone(),
            keys,
            checkpoint_path,
            batches: batches.clone(),
            max_batch: options.max_batch.max(1),
            on_batch: options.on_batch.clone(),
        };
        std::thread::Builder::new()
            .name("infoshare-ledger".into())
            .spawn(move || writer.run(rx))
            .expect("spawn ledger thread");
        Ok((
            Self {
                tx,
                applied: applied_rx,
                views,
                records,
                bodies: body_reader.clone(),
                body_keys,
                protocols,
                head,
                batches,
            },
            report,
        ))
    }

    /// Sequences a command; returns once its record (if any) is durable and applied.
    pub async fn submit(&self, command: Command) -> Result<Outcome, BrokerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { command, reply })
            .await
            .map_err(|_| BrokerError::Unavailable("the ledger has stopped".into()))?;
        rx.await
            .map_err(|_| BrokerError::Unavailable("the ledger has stopped".into()))?
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

    /// The bytes of the committed record at `index`, read from the log.
    pub fn record(&self, index: u64) -> Result<Vec<u8>, BrokerError> {
        let pos = index
            .checked_sub(1)
            .and_then(|i| self.head().positions.get(i as usize).copied())
            .ok_or_else(|| BrokerError::Internal(format!("record {index} is not in the log")))?;
        self.records
            .read(pos)
            .map_err(|e| BrokerError::Internal(format!("record {index}: {e}")))
    }

    /// The committed record at `index`, decoded.
    pub fn decoded(&self, index: u64) -> Result<Record, BrokerError> {
        Record::decode(&self.record(index)?)
            .map_err(|e| BrokerError::Internal(format!("record {index}: {e}")))
    }

    /// A request's records, oldest first.
    pub fn timeline(&self, id: &RequestId) -> Result<Vec<(u64, Record)>, BrokerError> {
        self.views
            .timeline(id)?
            .into_iter()
            .map(|i| Ok((i, self.decoded(i)?)))
            .collect()
    }

    /// The protocol register as of the last committed batch.
    pub fn protocols(&self) -> Arc<ProtocolStore> {
        self.protocols
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The views.
    pub fn views(&self) -> &ViewStore {
        &self.views
    }

    /// A receiver of the last applied log index, which changes after every committed batch.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Reads a stored body; `None` when it is not stored (purged).
    pub fn body(
        &self,
        kind: MessageKind,
        id: &RequestId,
    ) -> Result<Option<BodyEntry>, BrokerError> {
        read_body(&self.views, &self.bodies, &self.body_keys, kind, id)
    }
}

/// Reads a stored body through the views' index; `None` when it is not stored (purged).
fn read_body(
    views: &ViewStore,
    reader: &SegmentReader,
    keys: &BodyKeys,
    kind: MessageKind,
    id: &RequestId,
) -> Result<Option<BodyEntry>, BrokerError> {
    let Some(pos) = views.body_position(kind, id)? else {
        return Ok(None);
    };
    let bytes = reader
        .read(pos)
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    if BodyEntry::is_erased(&bytes) {
        return Ok(None);
    }
    keys.open(&bytes)
        .map(Some)
        .map_err(|e| BrokerError::Internal(format!("body of {id}: {e}")))
}

/// The writer thread's state.
struct Writer {
    /// Held for the life of the writer: the data directory's exclusive lock.
    _lock: std::fs::File,
    log: SegmentLog,
    bodies: SegmentLog,
    body_reader: Arc<SegmentReader>,
    /// Seals every body before it is written.
    body_keys: Arc<BodyKeys>,
    views: Arc<ViewStore>,
    applied: watch::Sender<u64>,
    /// Set after a storage failure: every later write is refused (fail-stop), so nothing is
    /// acknowledged that the log might not hold.
    poisoned: Option<String>,
    /// The register including this batch's changes (what register commands are decided against).
    register: ProtocolStore,
    /// The register readers see, replaced after a batch that changed it commits.
    published: SharedProtocols,
    /// The Merkle tree and latest checkpoint, shared with readers.
    head: Arc<RwLock<LogHead>>,
    /// Signs one checkpoint per batch.
    keys: LogKeys,
    /// Where the latest checkpoint is kept (written with every batch), to detect truncation
    /// on start-up.
    checkpoint_path: PathBuf,
    /// Batches committed since start (one fdatasync pair and one signature each).
    batches: Arc<std::sync::atomic::AtomicU64>,
    max_batch: usize,
    on_batch: Option<Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>>,
}

/// A decided command, before its batch is durable.
enum Pending {
    Appended(u64),
    Done(Outcome),
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        while let Some(first) = rx.blocking_recv() {
            jobs.push(first);
            while jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            // A purge or a key rotation runs alone, between the batches before and after it.
            while let Some(at) = jobs.iter().position(|j| {
                matches!(j.command, Command::Purge { .. } | Command::RotateKey { .. })
            }) {
                let mut rest = jobs.split_off(at);
                let alone = rest.remove(0);
                self.batch(&mut jobs);
                if matches!(alone.command, Command::Purge { .. }) {
                    self.purge(alone);
                } else {
                    self.rotate_key(alone);
                }
                jobs = rest;
            }
            self.batch(&mut jobs);
        }
    }

    fn batch(&mut self, jobs: &mut Vec<Job>) {
        if let Some(why) = &self.poisoned {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(BrokerError::Unavailable(why.clone())));
            }
            return;
        }
        if jobs.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "ledger.commit",
            commands = jobs.len(),
            records = tracing::field::Empty,
            bodies = tracing::field::Empty,
            first_index = self.log.next_index(),
        );
        let _in_span = span.enter();
        let views = self.views.clone();
        let mut ov = views.overlay();
        let mut results: Vec<Result<Pending, BrokerError>> = Vec::with_capacity(jobs.len());
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut bodies: Vec<BodyEntry> = Vec::new();
        let mut pending_bodies: HashMap<(RequestId, MessageKind), usize> = HashMap::new();
        let first_index = self.log.next_index();
        let mut register_changed = false;
        for job in jobs.iter() {
            let step = decide(
                &job.command,
                &ov,
                &self.register,
                |kind, id| match pending_bodies.get(&(*id, kind)) {
                    Some(&i) => Ok(Some(bodies[i].clone())),
                    None => self.read_body(kind, id),
                },
            );
            results.push(match step {
                Ok(Step::Append(record, body)) => {
                    let record = *record;
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
                    match folded {
                        Ok(()) => {
                            raws.push(raw);
                            if let Some(b) = body {
                                pending_bodies.insert((b.request_id, b.kind), bodies.len());
                                bodies.push(b);
                            }
                            Ok(Pending::Appended(index))
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                Ok(Step::Done(outcome)) => Ok(Pending::Done(outcome)),
                Err(e) => Err(e),
            });
        }
        if let Err(why) = self.persist(ov, &raws, &bodies) {
            tracing::error!(error = %why, "storage failure: refusing further writes");
            self.poisoned = Some(format!(
                "storage failure; writes refused until restart ({why})"
            ));
            for job in jobs.drain(..) {
                let _ = job
                    .reply
                    .send(Err(BrokerError::Unavailable("storage failure".into())));
            }
            return;
        }
        if register_changed {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(self.register.clone());
        }
        if !raws.is_empty() {
            self.applied.send_replace(self.log.next_index() - 1);
            span.record("records", raws.len());
            span.record("bodies", bodies.len());
            if let Some(on_batch) = &self.on_batch {
                on_batch(raws.len(), started.elapsed());
            }
        }
        let head = self.head.read().unwrap_or_else(|e| e.into_inner());
        for (job, result) in jobs.drain(..).zip(results) {
            let reply = result.map(|pending| match pending {
                Pending::Done(outcome) => outcome,
                Pending::Appended(index) => Outcome::Appended {
                    index,
                    receipt: Receipt {
                        log_index: index,
                        checkpoint: head.note.clone(),
                        proof: head
                            .tree
                            .inclusion_proof(index - 1, head.checkpoint.size)
                            .expect("an appended record is in the tree"),
                        record: raws[(index - first_index) as usize].clone(),
                    },
                },
            });
            let _ = job.reply.send(reply);
        }
    }

    /// Adds the batch's leaves to the tree and signs one checkpoint for the batch.
    fn sign_batch(&mut self, raws: &[Vec<u8>], positions: Vec<segment::Position>) {
        let leaves: Vec<Hash> = raws.iter().map(|r| leaf_hash(r)).collect();
        let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
        for leaf in leaves {
            head.tree.push(leaf);
        }
        head.positions.extend(positions);
        let size = head.tree.size();
        let checkpoint = Checkpoint {
            origin: head.checkpoint.origin.clone(),
            size,
            root: head.tree.root(size).expect("size of the tree"),
        };
        head.note = self.keys.signer().sign(&checkpoint).into();
        head.checkpoint = checkpoint;
        let note = head.note.clone();
        drop(head);
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Every batch, before anyone is answered: the stored checkpoint always covers every
        // acknowledged record, so none of them can be cut at start-up as a torn write.
        store_checkpoint(&self.checkpoint_path, &note);
    }

    /// Makes the batch durable, then applies it to the views.
    fn persist(
        &mut self,
        mut ov: Overlay<'_>,
        raws: &[Vec<u8>],
        bodies: &[BodyEntry],
    ) -> Result<(), String> {
        if raws.is_empty() {
            return Ok(());
        }
        let encoded: Vec<Vec<u8>> = bodies.iter().map(|b| self.body_keys.seal(b)).collect();
        let positions = self.bodies.append(&encoded).map_err(|e| e.to_string())?;
        for (b, pos) in bodies.iter().zip(positions) {
            ov.put_body(b.kind, &b.request_id, pos);
        }
        let positions = self.log.append(raws).map_err(|e| e.to_string())?;
        self.sign_batch(raws, positions);
        ov.set_marks(self.log.next_index() - 1, self.bodies.next_index() - 1);
        ov.commit().map_err(|e| e.to_string())
    }

    fn read_body(
        &self,
        kind: MessageKind,
        id: &RequestId,
    ) -> Result<Option<BodyEntry>, BrokerError> {
        read_body(&self.views, &self.body_reader, &self.body_keys, kind, id)
    }
}

#[cfg(test)]
mod tests;
