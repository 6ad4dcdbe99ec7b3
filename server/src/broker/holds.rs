//! Legal holds: an auditor keeps an exchange's bodies, or every exchange's about a subject,
//! from being erased at the end of retention while an investigation needs them. Placing and
//! releasing a hold are log records (and refused attempts are audited like any other); the
//! ledger's writer checks the holds when it erases, so no hold placed before an erasure is
//! missed.

use crate::access::Operation;
use crate::broker::{Broker, Caller, Target};
use crate::error::BrokerError;
use crate::records::{Event, HoldTarget, Record};

/// A hold with the record that placed (or released) it.
#[derive(Debug, Clone)]
pub struct HoldRecord {
    /// An exchange, or every exchange about a subject.
    pub target: HoldTarget,
    /// The log index of the record.
    pub index: u64,
    /// The record.
    pub record: Record,
}

impl Broker {
    /// Places (`place`) or releases legal holds on `targets`; returns the holds changed. Targets
    /// already in the asked state are skipped; if none changed, the refusal is returned.
    pub async fn change_legal_holds(
        &self,
        caller: &Caller,
        place: bool,
        targets: Vec<HoldTarget>,
    ) -> Result<Vec<HoldRecord>, BrokerError> {
        let op = if place {
            Operation::PlaceLegalHold
        } else {
            Operation::ReleaseLegalHold
        };
        let mut changed = Vec::new();
        let mut refusal = None;
        for target in targets {
            let record = Record {
                time_ms: self.clock.now_ms(),
                actor: caller.actor(),
                event: if place {
                    Event::LegalHoldPlaced(target)
                } else {
                    Event::LegalHoldReleased(target)
                },
            };
            match self.ledger.hold(record.clone()).await {
                Ok(receipt) => changed.push(HoldRecord {
                    target,
                    index: receipt.log_index,
                    record,
                }),
                Err(e @ (BrokerError::Unavailable(_) | BrokerError::Internal(_))) => return Err(e),
                Err(e) => refusal = Some((target, e)),
            }
        }
        match (changed.is_empty(), refusal) {
            (true, Some((target, e))) => {
                let on = match target {
                    HoldTarget::Exchange(id) => Target::Exchange(Some(id)),
                    HoldTarget::Subject(_) => Target::Nothing,
                };
                Err(self.refused(caller, op, on, e).await)
            }
            _ => Ok(changed),
        }
    }

    /// The legal holds in place, oldest first (an audit query, logged).
    pub async fn legal_holds(&self, caller: &Caller) -> Result<Vec<HoldRecord>, BrokerError> {
        let mut holds = self
            .ledger
            .views()
            .holds()?
            .into_iter()
            .map(|(target, index)| {
                Ok(HoldRecord {
                    target,
                    index,
                    record: self.ledger.decoded(index)?,
                })
            })
            .collect::<Result<Vec<_>, BrokerError>>()?;
        holds.sort_by_key(|h| h.index);
        self.log_audit_query(caller, crate::audit::QueryKind::Holds, holds.len())
            .await?;
        Ok(holds)
    }
}
