//! The second stage of the writer: a thread that has the engine make each decided batch
//! durable, in the order decided, then publishes it (the head's checkpoint, the applied index,
//! the register) and answers its callers. While it waits on the disk, the first stage decides
//! the next batch (on an engine with one writer; on another, the first stage waits for it).
//!
//! Fail-stop: after a storage failure every batch still to come is refused, since each was
//! decided against the one that failed.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use infoshare_tlog::{Checkpoint, Receipt};
use tokio::sync::{oneshot, watch};

use super::Decided;
use super::in_flight::InFlight;
use crate::backend::{Backend, Batch, ViewWrites};
use crate::bodies::BodyEntry;
use crate::error::BrokerError;
use crate::ledger::{LogHead, SharedProtocols};
use crate::protocol::ProtocolStore;

/// A caller's answer, as the first stage left it: `Ok(None)` for a record appended (its receipt
/// is made once it is durable).
pub(super) type Reply = (
    oneshot::Sender<Result<Decided, BrokerError>>,
    Result<Option<Decided>, BrokerError>,
);

/// A batch decided and signed, on its way to the engine.
pub(super) struct Sealed {
    pub(super) first_index: u64,
    pub(super) records: Vec<Vec<u8>>,
    pub(super) bodies: Arc<Vec<BodyEntry>>,
    pub(super) views: Arc<ViewWrites>,
    /// The checkpoint over the tree with `records`, and its signed note (unused if none).
    pub(super) checkpoint: Checkpoint,
    pub(super) note: Arc<str>,
    /// The register as the batch leaves it, if the batch changed it.
    pub(super) register: Option<ProtocolStore>,
    pub(super) replies: Vec<Reply>,
    pub(super) started: std::time::Instant,
    pub(super) span: tracing::Span,
}

pub(super) enum ToCommit {
    Batch(Box<Sealed>),
    /// Answered once every batch before it is committed (or refused).
    Flush(mpsc::Sender<()>),
}

/// What the second stage shares with the first.
pub(super) struct Committer {
    pub(super) engine: Arc<Mutex<Box<dyn Backend>>>,
    pub(super) head: Arc<RwLock<LogHead>>,
    pub(super) applied: Arc<watch::Sender<u64>>,
    pub(super) published: SharedProtocols,
    pub(super) batches: Arc<std::sync::atomic::AtomicU64>,
    pub(super) on_batch: Option<Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>>,
    pub(super) in_flight: Arc<InFlight>,
    /// Set at a storage failure: why writes are refused.
    pub(super) failed: Arc<Mutex<Option<String>>>,
    /// Set once a batch is done, with the writer woken (if it decides while this works).
    pub(super) idle: Arc<std::sync::atomic::AtomicBool>,
    pub(super) wake: Option<tokio::sync::mpsc::WeakSender<super::Job>>,
}

impl Committer {
    /// Commits what it is sent, in order, until the first stage hangs up.
    pub(super) fn run(self, rx: mpsc::Receiver<ToCommit>) {
        for job in rx {
            match job {
                ToCommit::Batch(sealed) => {
                    self.commit(*sealed);
                    // Set before the wake: a writer that finds it unset is woken after.
                    self.idle.store(true, std::sync::atomic::Ordering::Release);
                    if let Some(writer) = self.wake.as_ref().and_then(|w| w.upgrade()) {
                        // A full queue needs no wake: the writer looks again after each job.
                        let _ = writer.try_send(super::Job::Wake);
                    }
                }
                ToCommit::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn commit(&self, sealed: Sealed) {
        let Sealed {
            first_index,
            records,
            bodies,
            views,
            checkpoint,
            note,
            register,
            replies,
            started,
            span,
        } = sealed;
        let _in_span = span.enter();
        if let Some(why) = self.failure() {
            self.in_flight.landed(first_index);
            refuse(replies, &why);
            return;
        }
        if records.is_empty() {
            // Nothing to write; its answers were decided against the batches before it, which
            // are durable by now.
            self.engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .end_batch();
        } else {
            let committed = self
                .engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .commit(Batch {
                    first_index,
                    records: &records,
                    bodies: &bodies,
                    views,
                    checkpoint: &note,
                })
                .map_err(|e| e.0);
            // The reader shows the batch now (or the engine failed): the writer reads it there.
            self.in_flight.landed(first_index);
            if let Err(why) = committed {
                tracing::error!(error = %why, "storage failure: refusing further writes");
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                    "storage failure; writes refused until restart ({why})"
                ));
                refuse(replies, "storage failure");
                return;
            }
            let size = checkpoint.size;
            {
                let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
                head.checkpoint = checkpoint;
                head.note = note;
            }
            self.batches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.applied.send_replace(size);
            span.record("records", records.len());
            span.record("bodies", bodies.len());
            if let Some(on_batch) = &self.on_batch {
                on_batch(records.len(), started.elapsed());
            }
        }
        if let Some(register) = register {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(register);
        }
        let head = self.head.read().unwrap_or_else(|e| e.into_inner());
        let mut appended = (first_index..).zip(records);
        for (reply, result) in replies {
            let answer = result.map(|done| {
                done.unwrap_or_else(|| {
                    let (index, record) = appended.next().expect("a record for each append");
                    Decided::Appended(Receipt {
                        log_index: index,
                        checkpoint: head.note.clone(),
                        proof: head
                            .tree
                            .inclusion_proof(index - 1, head.checkpoint.size)
                            .expect("an appended record is in the tree"),
                        record,
                    })
                })
            });
            let _ = reply.send(answer);
        }
    }
}

/// Answers every caller of a batch that will not be committed.
fn refuse(replies: Vec<Reply>, why: &str) {
    for (reply, _) in replies {
        let _ = reply.send(Err(BrokerError::Unavailable(why.to_string())));
    }
}
