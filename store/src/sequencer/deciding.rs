//! A batch being decided. Changes are decided into it as they arrive, each against the batches
//! in flight and the changes before it in this one; it is sealed (its leaves pushed into the
//! tree, its checkpoint signed) and handed to the committer once the committer is free, so on an
//! engine with one writer the changes that arrive while a batch is made durable are decided
//! meanwhile and go out together in the next.

use std::collections::HashMap;
use std::sync::Arc;

use infoshare_tlog::{Checkpoint, leaf_hash};
use tokio::sync::oneshot;

use super::committer::{Sealed, ToCommit};
use super::in_flight::Ahead;
use super::{ChangeJob, Decided, Sequencer, internal};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::exchange::{Step, decide};
use crate::overlay::{Overlay, OverlayParts};
use crate::records::{Event, RequestId};
use crate::views::{self, ViewError};

/// A batch not yet sealed.
pub(super) struct Open {
    first_index: u64,
    replies: Vec<oneshot::Sender<Result<Decided, BrokerError>>>,
    /// Each change's answer, `Ok(None)` for a record appended (answered with its receipt).
    results: Vec<Result<Option<Decided>, BrokerError>>,
    raws: Vec<Vec<u8>>,
    bodies: Vec<BodyEntry>,
    body_at: HashMap<(RequestId, MessageKind), usize>,
    views: OverlayParts,
    register_changed: bool,
    started: std::time::Instant,
    span: tracing::Span,
}

impl Open {
    /// Changes decided into it.
    pub(super) fn len(&self) -> usize {
        self.replies.len()
    }
}

impl Sequencer {
    /// Decides `jobs` into the open batch, opening one if there is none. Callers are answered at
    /// once only if writes are refused (or a batch cannot be begun).
    pub(super) fn decide_into(&mut self, open: &mut Option<Open>, jobs: Vec<ChangeJob>) {
        if jobs.is_empty() {
            return;
        }
        let refuse = |jobs: Vec<ChangeJob>, e: BrokerError| {
            for (_, reply) in jobs {
                let _ = reply.send(Err(e.clone()));
            }
        };
        if let Some(why) = self.refused() {
            return refuse(jobs, BrokerError::Unavailable(why));
        }
        if open.is_none() {
            if !self.pipelined
                && let Err(e) = self.begin()
            {
                return refuse(jobs, e);
            }
            // The tree holds every batch decided, committed or not.
            let size = self
                .head
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .tree
                .size();
            *open = Some(Open {
                first_index: size + 1,
                replies: Vec::new(),
                results: Vec::new(),
                raws: Vec::new(),
                bodies: Vec::new(),
                body_at: HashMap::new(),
                views: OverlayParts::default(),
                register_changed: false,
                started: std::time::Instant::now(),
                span: tracing::info_span!(
                    "ledger.commit",
                    commands = tracing::field::Empty,
                    records = tracing::field::Empty,
                    bodies = tracing::field::Empty,
                    first_index = size + 1,
                ),
            });
        }
        let open = open.as_mut().expect("opened above");
        let span = open.span.clone();
        span.in_scope(|| self.decide_all(open, jobs));
    }

    fn decide_all(&mut self, open: &mut Open, jobs: Vec<ChangeJob>) {
        let reader = self.reader.clone();
        let in_flight = self.in_flight.clone();
        let ahead = Ahead {
            in_flight: &in_flight,
            reader: &*reader,
        };
        let mut ov = Overlay::from_parts(&ahead, std::mem::take(&mut open.views));
        let first_reads: Vec<Vec<u8>> = jobs
            .iter()
            .flat_map(|(change, _)| crate::exchange::first_reads(change))
            .collect();
        if let Err(e) = ov.prefetch(&first_reads) {
            // Only a shortcut: decide reads them one by one.
            tracing::warn!(error = %e, "could not read the batch's keys at once");
        }
        for (change, reply) in jobs {
            let (bodies, body_at) = (&open.bodies, &open.body_at);
            let step = decide(&change, &ov, &self.register, |kind, id| {
                match body_at.get(&(*id, kind)) {
                    Some(&i) => Ok(Some(bodies[i].clone())),
                    None => match in_flight.body(kind, id) {
                        Some(body) => Ok(Some(body)),
                        None => reader.body(kind, id).map_err(internal),
                    },
                }
            });
            let result = match step {
                Ok(Step::Append(record, body)) => {
                    let index = open.first_index + open.raws.len() as u64;
                    let raw = record.encode();
                    let folded = views::apply(&mut ov, index, &record, &raw).and_then(|()| {
                        if let Event::Protocol(_) = record.event {
                            open.register_changed = true;
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
                        open.raws.push(raw);
                        if let Some(b) = body {
                            open.body_at
                                .insert((b.request_id, b.kind), open.bodies.len());
                            open.bodies.push(b);
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
            };
            open.results.push(result);
            open.replies.push(reply);
        }
        open.views = ov.into_parts();
    }

    /// Signs the batch and hands it to the committer (waiting until the committer has finished
    /// the one before); on an engine with other writers, waits for it to be committed too.
    pub(super) fn seal(&mut self, open: Open) {
        let Open {
            first_index,
            replies,
            results,
            raws,
            bodies,
            views,
            register_changed,
            started,
            span,
            ..
        } = open;
        span.record("commands", replies.len());
        let (checkpoint, note) = if raws.is_empty() {
            let head = self.head.read().unwrap_or_else(|e| e.into_inner());
            (head.checkpoint.clone(), head.note.clone())
        } else {
            self.sign(&raws)
        };
        let (views, bodies) = (Arc::new(views.pending), Arc::new(bodies));
        if !raws.is_empty() {
            self.in_flight
                .push(first_index, views.clone(), bodies.clone());
        }
        let sealed = Sealed {
            first_index,
            records: raws,
            bodies,
            views,
            checkpoint,
            note,
            register: register_changed.then(|| self.register.clone()),
            replies: replies.into_iter().zip(results).collect(),
            started,
            span,
        };
        self.idle.store(false, std::sync::atomic::Ordering::Release);
        // Only if the committer is gone (it panicked): the replies are dropped with the batch,
        // and their callers told the ledger stopped.
        if self
            .to_commit
            .send(ToCommit::Batch(Box::new(sealed)))
            .is_err()
        {
            self.poisoned = Some("the ledger's committer stopped".into());
        }
        if !self.pipelined {
            self.flush();
        }
    }

    /// Pushes the batch's leaves into the tree and signs the checkpoint over it. Receipts and
    /// proofs are bounded by the head's checkpoint, which the committer moves once the engine
    /// has the batch.
    fn sign(&mut self, raws: &[Vec<u8>]) -> (Checkpoint, Arc<str>) {
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
    }
}
