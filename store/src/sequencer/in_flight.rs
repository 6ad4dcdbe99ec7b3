//! The batch the engine is still writing (see `Backend::submit`): the next batch is decided on
//! top of it while it is, and its callers are answered by the engine's `on_durable`, the moment
//! it is durable, wherever that is noticed. Nothing of it is visible before then: its head,
//! applied index and register are published by the same call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use infoshare_tlog::{Checkpoint, Receipt};
use tokio::sync::{oneshot, watch};

use super::{Decided, Sequencer};
use crate::backend::{OnDurable, ViewWrites};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::ledger::{LogHead, SharedProtocols};
use crate::protocol::ProtocolStore;
use crate::records::RequestId;
use crate::views::{KvRead, ViewError};

/// A caller's reply channel and what its change came to (`None`: appended).
pub(super) type Answer = (
    oneshot::Sender<Result<Decided, BrokerError>>,
    Result<Option<Decided>, BrokerError>,
);

/// What the next batch is decided against while this one is pending: its place in the log,
/// its bodies and its view writes.
pub(super) struct InFlight {
    pub(super) end: u64,
    pub(super) bodies: Vec<BodyEntry>,
    pub(super) views: ViewWrites,
}

impl InFlight {
    /// The last body this batch stores for (`kind`, `id`).
    pub(super) fn body(&self, kind: MessageKind, id: &RequestId) -> Option<BodyEntry> {
        self.bodies
            .iter()
            .rev()
            .find(|b| b.kind == kind && b.request_id == *id)
            .cloned()
    }
}

/// The views as a pending batch will leave them: its writes over what is committed.
pub(super) struct Layered<'a> {
    pub(super) base: &'a dyn KvRead,
    pub(super) top: Option<&'a ViewWrites>,
}

impl KvRead for Layered<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        match self.top.and_then(|top| top.get(key)) {
            Some(written) => Ok(written.clone()),
            None => self.base.get(key),
        }
    }

    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ViewError> {
        let Some(top) = self.top else {
            return self.base.get_many(keys);
        };
        // The keys the pending batch did not write, read from the base in one call.
        let below: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| !top.contains_key(*k))
            .cloned()
            .collect();
        let mut read = self.base.get_many(&below)?.into_iter();
        keys.iter()
            .map(|k| match top.get(k) {
                Some(written) => Ok(written.clone()),
                None => read
                    .next()
                    .ok_or_else(|| ViewError::Store("a read answered short".into())),
            })
            .collect()
    }
}

/// A batch's callers: answered once it is durable, or, if it never is (its `OnDurable`
/// dropped), told their changes may not be in the log.
pub(super) struct Answers(pub(super) Vec<Answer>);

impl Drop for Answers {
    fn drop(&mut self) {
        for (reply, _) in self.0.drain(..) {
            let _ = reply.send(Err(BrokerError::Unavailable("storage failure".into())));
        }
    }
}

/// What publishing a durable batch touches: shared with the engine's thread that notices it.
#[derive(Clone)]
pub(super) struct Publish {
    pub(super) head: Arc<RwLock<LogHead>>,
    pub(super) applied: Arc<watch::Sender<u64>>,
    pub(super) published: SharedProtocols,
    pub(super) batches: Arc<AtomicU64>,
    pub(super) on_batch: Option<Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>>,
    /// The log's size after the last batch whose fate is known (durable or failed), and the
    /// writer's wake-up when it moves: the writer may wait on its batch in flight.
    pub(super) known: Arc<AtomicU64>,
    pub(super) settled: Arc<tokio::sync::Notify>,
    pub(super) inbox_wakes: Arc<crate::inbox_wakes::InboxWakes>,
}

/// Makes a batch's fate known when dropped: after it is published, or with its `OnDurable`
/// dropped uncalled.
pub(super) struct Outcome {
    end: u64,
    known: Arc<AtomicU64>,
    settled: Arc<tokio::sync::Notify>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.known.fetch_max(self.end, Ordering::SeqCst);
        self.settled.notify_waiters();
    }
}

/// A submitted batch, as it is published once durable.
pub(super) struct Durable {
    pub(super) first_index: u64,
    pub(super) raws: Vec<Vec<u8>>,
    /// The inboxes the batch adds to (their posting list prefixes).
    pub(super) inboxes: Vec<Vec<u8>>,
    pub(super) checkpoint: Checkpoint,
    pub(super) note: Arc<str>,
    pub(super) answers: Answers,
    /// The register as this batch left it, if it changed it.
    pub(super) register: Option<Arc<ProtocolStore>>,
    pub(super) started: std::time::Instant,
    /// Last field: told once all of the above is done.
    pub(super) outcome: Outcome,
}

impl Publish {
    /// What makes the fate of a batch ending at `end` known.
    pub(super) fn outcome(&self, end: u64) -> Outcome {
        Outcome {
            end,
            known: self.known.clone(),
            settled: self.settled.clone(),
        }
    }

    /// The call that publishes `batch` and answers its callers.
    pub(super) fn on_durable(&self, batch: Durable) -> OnDurable {
        let publish = self.clone();
        Box::new(move || publish.durable(batch))
    }

    fn durable(&self, mut batch: Durable) {
        let size = batch.checkpoint.size;
        {
            let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
            head.checkpoint = batch.checkpoint;
            head.note = batch.note;
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.applied.send_replace(size);
        self.inbox_wakes.ring(&batch.inboxes, size);
        if let Some(register) = batch.register {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) = register;
        }
        if let Some(on_batch) = &self.on_batch {
            on_batch(batch.raws.len(), batch.started.elapsed());
        }
        let head = self.head.read().unwrap_or_else(|e| e.into_inner());
        let mut appended = batch.first_index;
        for (reply, result) in batch.answers.0.drain(..) {
            let answer = result.map(|done| {
                done.unwrap_or_else(|| {
                    let index = appended;
                    appended += 1;
                    Decided::Appended(Receipt {
                        log_index: index,
                        checkpoint: head.note.clone(),
                        proof: head
                            .tree
                            .inclusion_proof(index - 1, head.checkpoint.size)
                            .expect("an appended record is in the tree"),
                        record: std::mem::take(
                            &mut batch.raws[(index - batch.first_index) as usize],
                        ),
                    })
                })
            });
            let _ = reply.send(answer);
        }
        drop(head);
        drop(batch.outcome);
    }
}

impl Sequencer {
    /// Waits for the next job, or, with a batch in flight, for whichever comes first: a job,
    /// or that batch durable (then it is settled, and `None` returned to look again). Ends the
    /// writer's turn first if nothing is in flight. `Some(None)`: every handle is dropped.
    pub(super) fn wait_for_job(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<super::Job>,
    ) -> Option<Option<super::Job>> {
        if self.in_flight.is_none() {
            // Nothing queued, nothing pending: other writers of a shared log get their turn.
            self.engine.end_batch();
            return Some(rx.blocking_recv());
        }
        let (known, settled) = (self.publish.known.clone(), self.publish.settled.clone());
        let end = self.in_flight.as_ref().map_or(0, |sent| sent.end);
        let woken = self.idle.block_on(async {
            let told = settled.notified();
            tokio::pin!(told);
            // Listening before looking: a batch settled in between still wakes this.
            told.as_mut().enable();
            if known.load(Ordering::SeqCst) >= end {
                return None;
            }
            tokio::select! {
                biased;
                job = rx.recv() => Some(job),
                () = told => None,
            }
        });
        if woken.is_none() {
            self.settle();
        }
        woken
    }

    /// Waits for the batch in flight, if any, to be durable (its callers are answered as it
    /// is); if it failed, every later write is refused.
    pub(super) fn settle(&mut self) {
        if self.in_flight.take().is_none() {
            return;
        }
        if let Err(e) = self.engine.settle() {
            self.storage_failed(&e.0);
        }
    }

    /// A storage failure: every later write is refused until restart.
    pub(super) fn storage_failed(&mut self, why: &str) {
        tracing::error!(error = %why, "storage failure: refusing further writes");
        self.poisoned = Some(format!(
            "storage failure; writes refused until restart ({why})"
        ));
    }
}
