//! What the writer does on its own account, each alone between batches: rotating the log's
//! signing key, and erasing bodies whose retention has ended (then logging each erasure).

use tokio::sync::oneshot;

use super::{Command, Job, Outcome, SigningKey, Writer, store_checkpoint};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::records::{Event, Record, RequestId};
use crate::views;

impl Writer {
    /// Rotates the signing key: the new key is stored as pending, a LogKeyRotated record is
    /// committed under the old key, the new key cosigns that checkpoint, and takes over.
    pub(super) fn rotate_key(&mut self, job: Job) {
        let Command::RotateKey { actor, time_ms } = job.command else {
            unreachable!("only rotations are passed here");
        };
        let unavailable = |e: String| BrokerError::Unavailable(format!("key rotation: {e}"));
        let next = match self.keys.prepare_rotation() {
            Ok(next) => next,
            Err(e) => {
                let _ = job.reply.send(Err(unavailable(e)));
                return;
            }
        };
        let public_key: [u8; 32] = next
            .public_key()
            .try_into()
            .expect("Ed25519 keys are 32 bytes");
        let record = Record {
            time_ms,
            actor,
            event: Event::LogKeyRotated { public_key },
        };
        if let Err(e) = self.append_own(vec![record]) {
            // Not in the log: the pending key is discarded at the next start (or replaced by
            // the next rotation).
            let _ = job.reply.send(Err(e));
            return;
        }
        let (note, size) = {
            let head = self.head.read().unwrap_or_else(|e| e.into_inner());
            (head.note.to_string(), head.checkpoint.size)
        };
        let result = self.keys.complete_rotation(next, &note, size);
        let rotation = match result {
            Ok(rotation) => rotation,
            Err(e) => {
                // The record is in the log and the new key pending: the next start finishes
                // the rotation. Until then this writer signs with the old key, and says so.
                tracing::error!(error = %e, "log key rotation not completed; it completes at the next start");
                let _ = job.reply.send(Err(unavailable(e)));
                return;
            }
        };
        {
            let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
            head.note = rotation.note.clone().into();
            head.key = SigningKey::of(&self.keys);
        }
        store_checkpoint(&self.checkpoint_path, &rotation.note);
        tracing::info!(verifier_key = %rotation.new_key, size, "log signing key rotated");
        let _ = job.reply.send(Ok(Outcome::Rotated {
            statement: rotation.render(),
        }));
    }

    /// Erases the bodies of a purge's exchanges, then logs one BodiesPurged record for each
    /// (through a batch of its own). Erasure comes first: if the process dies between the two,
    /// the next run finds the exchanges unmarked, erases again (a no-op) and logs them.
    pub(super) fn purge(&mut self, job: Job) {
        let Command::Purge {
            actor,
            time_ms,
            exchanges,
        } = job.command
        else {
            unreachable!("only purges are passed here");
        };
        let erased = self.erase_bodies(&exchanges);
        let purged = match erased {
            Ok(purged) => purged,
            Err(e) => {
                let _ = job.reply.send(Err(e));
                return;
            }
        };
        let records = purged
            .iter()
            .map(|&(request_id, kinds)| Record {
                time_ms,
                actor: actor.clone(),
                event: Event::BodiesPurged { request_id, kinds },
            })
            .collect();
        let logged = self.append_own(records);
        let _ = job.reply.send(logged.map(|()| Outcome::Purged {
            exchanges: purged.len(),
        }));
    }

    /// Appends records on the writer's own account, through a batch of their own; Ok once
    /// every one is durable.
    fn append_own(&mut self, records: Vec<Record>) -> Result<(), BrokerError> {
        let (mut jobs, replies): (Vec<Job>, Vec<_>) = records
            .into_iter()
            .map(|record| {
                let (reply, rx) = oneshot::channel();
                let command = Command::Append { record };
                (Job { command, reply }, rx)
            })
            .unzip();
        self.batch(&mut jobs);
        // The batch answers synchronously: every reply is in by now.
        replies.into_iter().try_for_each(|mut rx| {
            rx.try_recv()
                .unwrap_or_else(|_| Err(BrokerError::Internal("own record unanswered".into())))
                .map(|_| ())
        })
    }

    /// Overwrites the stored bodies of `exchanges` not yet marked purged with their erased
    /// form; returns each exchange with the kinds of body it had (bits 1 request, 2 response,
    /// 4 disclosure; 0 when none was stored).
    fn erase_bodies(
        &mut self,
        exchanges: &[(RequestId, Vec<crate::crypto::Pseudonym>)],
    ) -> Result<Vec<(RequestId, u8)>, BrokerError> {
        let internal = |e: &dyn std::fmt::Display| BrokerError::Internal(e.to_string());
        let mut patches = Vec::new();
        let mut purged = Vec::new();
        for (id, subjects) in exchanges {
            if views::purged(&*self.views, id)?
                || views::request_meta(&*self.views, id)?.is_none()
                || views::held(&*self.views, id, subjects)?
            {
                continue;
            }
            let mut kinds = 0u8;
            for (bit, kind) in [
                (1, MessageKind::Request),
                (2, MessageKind::Response),
                (4, MessageKind::Disclosure),
            ] {
                if let Some(pos) = self.views.body_position(kind, id)? {
                    let stored = self.body_reader.read(pos).map_err(|e| internal(&e))?;
                    if !BodyEntry::is_erased(&stored) {
                        patches.push((pos, BodyEntry::erased(&stored)));
                    }
                    kinds |= bit;
                }
            }
            // An exchange with nothing stored is still marked purged (kinds 0), so it is not
            // looked at again.
            purged.push((*id, kinds));
        }
        self.bodies.overwrite(&patches).map_err(|e| internal(&e))?;
        for (pos, _) in &patches {
            self.body_reader.forget(pos.segment);
        }
        Ok(purged)
    }
}
