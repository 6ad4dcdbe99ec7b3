//! The jobs that run alone, between batches, once every batch before them is committed: a
//! purge of bodies past retention, and a rotation of the log's signing key; and the records
//! the writer appends on its own account for them.

use tokio::sync::oneshot;

use super::{ChangeJob, Sequencer, internal};
use crate::crypto::Pseudonym;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::exchange::Change;
use crate::ledger::SigningKey;
use crate::records::{Actor, Event, Record, RequestId};
use crate::views;

impl Sequencer {
    /// Appends records on the writer's own account, through a batch of their own; Ok once every
    /// one is durable.
    fn append_own(&mut self, records: Vec<Record>) -> Result<(), BrokerError> {
        let (jobs, replies): (Vec<ChangeJob>, Vec<_>) = records
            .into_iter()
            .map(|record| {
                let (reply, rx) = oneshot::channel();
                ((Change::Append { record }, reply), rx)
            })
            .unzip();
        let mut open = None;
        self.decide_into(&mut open, jobs);
        if let Some(batch) = open {
            self.seal(batch);
        }
        self.flush();
        // Committed: every reply is in by now.
        replies.into_iter().try_for_each(|mut rx| {
            rx.try_recv()
                .unwrap_or_else(|_| Err(internal("own record unanswered")))
                .map(|_| ())
        })
    }

    /// Erases the bodies of a purge's exchanges, then logs one BodiesPurged record for each.
    /// Erasure comes first: if the process dies between the two, the next run finds the
    /// exchanges unmarked, erases again (a no-op) and logs them.
    pub(super) fn purge(
        &mut self,
        actor: Actor,
        time_ms: u64,
        exchanges: &[(RequestId, Vec<Pseudonym>)],
    ) -> Result<usize, BrokerError> {
        if let Some(why) = self.refused() {
            return Err(BrokerError::Unavailable(why));
        }
        // One writer from the checks to the records: two brokers on one log running retention
        // at once do not both log an exchange's purge.
        self.begin()?;
        let purged = self.purge_begun(actor, time_ms, exchanges);
        self.engine().end_batch();
        purged
    }

    fn purge_begun(
        &mut self,
        actor: Actor,
        time_ms: u64,
        exchanges: &[(RequestId, Vec<Pseudonym>)],
    ) -> Result<usize, BrokerError> {
        let reader = self.reader.clone();
        let mut erase = Vec::new();
        let mut purged = Vec::new();
        for (id, subjects) in exchanges {
            if views::purged(&*reader, id)?
                || views::request_meta(&*reader, id)?.is_none()
                || views::held(&*reader, id, subjects)?
            {
                continue;
            }
            // An exchange with nothing stored is still marked purged (kinds 0), so it is not
            // looked at again.
            let mut kinds = 0u8;
            for kind in [
                MessageKind::Request,
                MessageKind::Response,
                MessageKind::Disclosure,
                MessageKind::Update,
                MessageKind::Withdrawal,
            ] {
                if reader.body_stored(kind, id).map_err(internal)? {
                    erase.push((kind, *id));
                    kinds |= crate::records::purged_bit(kind);
                }
            }
            purged.push((*id, kinds));
        }
        self.engine().erase_bodies(&erase).map_err(internal)?;
        let records = purged
            .iter()
            .map(|&(request_id, kinds)| Record {
                time_ms,
                actor: actor.clone(),
                event: Event::BodiesPurged { request_id, kinds },
            })
            .collect();
        self.append_own(records)?;
        Ok(purged.len())
    }

    /// Rotates the signing key: the new key is stored as pending, a LogKeyRotated record is
    /// committed under the old key, the new key cosigns that checkpoint, and takes over.
    pub(super) fn rotate_key(&mut self, actor: Actor, time_ms: u64) -> Result<String, BrokerError> {
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
        if let Err(e) = self.engine().store_checkpoint(&rotation.note) {
            tracing::warn!(error = %e, "could not store the cosigned checkpoint");
        }
        tracing::info!(verifier_key = %rotation.new_key, size, "log signing key rotated");
        Ok(rotation.render())
    }
}
