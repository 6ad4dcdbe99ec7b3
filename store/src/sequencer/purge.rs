//! A purge, run alone between batches: the bodies of expired exchanges erased, then one
//! `BodiesPurged` record logged for each.

use super::{Sequencer, internal};
use crate::crypto::Pseudonym;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::records::{Actor, Event, Record, RequestId};
use crate::views;

impl Sequencer {
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
        self.engine.end_batch();
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
        self.engine.erase_bodies(&erase).map_err(internal)?;
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
}
