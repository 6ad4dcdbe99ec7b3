//! A purge, run alone between batches: the bodies of expired exchanges erased, then one
//! `BodiesPurged` record logged for each.

use super::{Sequencer, internal};
use crate::crypto::Pseudonym;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::overlay::Overlay;
use crate::records::{Actor, Event, HoldTarget, Record, RequestId};
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
        // Under the lease, and on PostgreSQL each read a round trip: the page's views are read
        // in one call and its bodies in another, not a dozen calls an exchange.
        let reader = self.reader.clone();
        let known = Overlay::new(&*reader);
        let keys: Vec<Vec<u8>> = exchanges
            .iter()
            .flat_map(|(id, subjects)| {
                [
                    views::purged_key(id),
                    views::meta_key(id),
                    views::hold_key(&HoldTarget::Exchange(*id)),
                ]
                .into_iter()
                .chain(
                    subjects
                        .iter()
                        .map(|s| views::hold_key(&HoldTarget::Subject(*s))),
                )
            })
            .collect();
        known.prefetch(&keys)?;
        let mut open = Vec::new();
        for (id, subjects) in exchanges {
            if views::purged(&known, id)?
                || views::request_meta(&known, id)?.is_none()
                || views::held(&known, id, subjects)?
            {
                continue;
            }
            open.push(*id);
        }
        const KINDS: [MessageKind; 5] = [
            MessageKind::Request,
            MessageKind::Response,
            MessageKind::Disclosure,
            MessageKind::Update,
            MessageKind::Withdrawal,
        ];
        let wanted: Vec<(MessageKind, RequestId)> = open
            .iter()
            .flat_map(|id| KINDS.map(|kind| (kind, *id)))
            .collect();
        let stored = reader.bodies_stored(&wanted).map_err(internal)?;
        if stored.len() != wanted.len() {
            return Err(internal("the engine answered for fewer bodies than asked"));
        }
        let mut erase = Vec::new();
        let mut purged = Vec::with_capacity(open.len());
        for (id, found) in open.iter().zip(stored.chunks(KINDS.len())) {
            // An exchange with nothing stored is still marked purged (kinds 0), so it is not
            // looked at again.
            let mut kinds = 0u8;
            for (kind, _) in KINDS.iter().zip(found).filter(|(_, stored)| **stored) {
                erase.push((*kind, *id));
                kinds |= crate::records::purged_bit(*kind);
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
