//! The administrators' operations and the broker's own housekeeping: retention runs, the log
//! signing key's rotation, the inbox-depth gauge.

use super::Broker;
use crate::error::BrokerError;
use crate::records::{Actor, RequestId};

/// Exchanges a retention run reads at a time (and purges at most in one batch).
const RETENTION_PAGE: usize = 512;

impl Broker {
    /// Erases the bodies of every exchange whose protocol's retention has ended by `now_ms`
    /// (each erasure logged as a BodiesPurged record by `actor`); returns how many exchanges
    /// were purged by this run. The log, and every proof over it, is untouched.
    ///
    /// A page of exchanges at a time, each page's expired ones purged before the next is read:
    /// the run's memory and each purge's batch are bounded, whatever the size of the log.
    pub async fn run_retention(&self, actor: Actor, now_ms: u64) -> Result<usize, BrokerError> {
        let mut purged = 0;
        let mut after = None;
        loop {
            let page = self
                .ledger
                .views()
                .exchanges_page(after.as_ref(), RETENTION_PAGE)?;
            let Some((last, _)) = page.last() else {
                return Ok(purged);
            };
            after = Some(*last);
            let exchanges = self.expired_exchanges(page, now_ms)?;
            if !exchanges.is_empty() {
                purged += self.ledger.purge(actor.clone(), now_ms, exchanges).await?;
            }
        }
    }

    /// The exchanges of `page` whose retention has ended by `now_ms`, not purged yet, with
    /// their subjects.
    fn expired_exchanges(
        &self,
        page: Vec<(RequestId, crate::views::RequestMeta)>,
        now_ms: u64,
    ) -> Result<Vec<(RequestId, Vec<crate::crypto::Pseudonym>)>, BrokerError> {
        // A page's purge marks in one read and its opening records in another (on PostgreSQL
        // each read is a round trip).
        let views = self.ledger.views();
        let marks: Vec<Vec<u8>> = page
            .iter()
            .map(|(id, _)| crate::views::purged_key(id))
            .collect();
        let purged = views.get_many(&marks)?;
        let page: Vec<_> = page
            .into_iter()
            .zip(purged)
            .filter_map(|(exchange, mark)| mark.is_none().then_some(exchange))
            .collect();
        let indexes: Vec<u64> = page.iter().map(|(_, meta)| meta.request_idx).collect();
        let records = self.ledger.decoded_many(&indexes)?;
        let mut opened = Vec::new();
        for ((request_id, meta), record) in page.into_iter().zip(records) {
            let Some(o) = record.event.opening() else {
                return Err(BrokerError::Internal(format!(
                    "record {} does not open {request_id}",
                    meta.request_idx
                )));
            };
            opened.push((
                crate::retention::Opened {
                    request_id,
                    time_ms: record.time_ms,
                    protocol_id: o.protocol_id.to_string(),
                    protocol_version: o.protocol_version,
                },
                o.subjects.to_vec(),
            ));
        }
        let expired: std::collections::HashSet<RequestId> = crate::retention::expired(
            opened.iter().map(|(o, _)| o),
            &self.ledger.protocols(),
            now_ms,
        )
        .into_iter()
        .collect();
        // Held exchanges are skipped by the writer, which sees every hold placed before it
        // erases.
        Ok(opened
            .into_iter()
            .filter(|(o, _)| expired.contains(&o.request_id))
            .map(|(o, subjects)| (o.request_id, subjects))
            .collect())
    }

    /// Unacknowledged inbox items, by agency (for the inbox-depth gauge).
    pub fn inbox_depths(&self) -> Result<Vec<(String, u64)>, BrokerError> {
        let registry = self.registry();
        registry
            .agency_ids()
            .map(|agency| {
                let n = self.inbox_depths.count(self.ledger.views(), agency)?;
                Ok((agency.to_string(), n))
            })
            .collect()
    }

    /// Rotates the log's signing key; returns the rotation statement.
    pub async fn rotate_log_key(&self, actor: Actor) -> Result<String, BrokerError> {
        self.ledger.rotate_key(actor, self.clock.now_ms()).await
    }

    /// The actor the broker's own retention task logs its purges as (it has no certificate).
    pub fn retention_actor() -> Actor {
        Actor {
            role: crate::identity::Role::Admin,
            id: "infoshare-retention".into(),
            cert_sha256: [0; 32],
        }
    }
}
