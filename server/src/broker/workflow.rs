//! What follows a request besides its answer: the requester withdraws it, the answering agency
//! sends an update, the broker's deadline task marks it overdue or expires it.

use infoshare_proto::v1;
use prost::Message;

use super::{Acknowledged, Broker, Caller, DeadlineRun, Submitted, Target};
use crate::access::Operation;
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::policy;
use crate::records::{Actor, Event, Record, RequestId, RequestWithdrawn, UpdateSubmitted};
use crate::store::bodies::BodyEntry;
use crate::store::ledger::{Deadline, Once, replay_of, visible_meta};
use crate::validate;
use crate::views;

/// Requests a deadline run marks overdue, and expires, at most (each); a run that finds more
/// says so, and the task runs again at once.
pub(crate) const DEADLINES_PER_RUN: usize = 10_000;

impl Broker {
    /// WithdrawRequest: the requester withdraws a request not answered yet, with reasons (kept
    /// as a body, sealed and erased with the exchange's others).
    pub async fn withdraw(
        &self,
        caller: &Caller,
        input: &v1::WithdrawRequestRequest,
    ) -> Result<Acknowledged, BrokerError> {
        let op = Operation::WithdrawRequest;
        let target = Target::Exchange(RequestId::parse(&input.request_id));
        let valid = validate::withdrawal(input);
        let valid = self.audited(caller, op, target, valid).await?;
        let body = BodyEntry {
            kind: MessageKind::Withdrawal,
            request_id: valid.request_id,
            salt: self.keys.random(),
            body: valid.body.encode_to_vec(),
        };
        let record = Record {
            time_ms: self.clock.now_ms(),
            actor: caller.actor(),
            event: Event::RequestWithdrawn(RequestWithdrawn {
                request_id: valid.request_id,
                staff: self.keys.staff(&caller.principal.id, &valid.staff_id),
                body_commitment: body.commitment(),
            }),
        };
        let withdrawn = self.ledger.withdraw(record, body).await;
        self.once(self.audited(caller, op, target, withdrawn).await?)
            .await
    }

    /// The answer to a change made at most once: its receipt, now or from before.
    pub(super) async fn once(&self, done: Once) -> Result<Acknowledged, BrokerError> {
        Ok(match done {
            Once::New(receipt) => Acknowledged {
                log_index: receipt.log_index,
                already: false,
                receipt,
            },
            Once::Before { index } => Acknowledged {
                log_index: index,
                already: true,
                receipt: self.ledger.receipt_once_signed(index).await?,
            },
        })
    }

    /// SendUpdate: the agency that answered a request sends new information about it, checked
    /// like a response (same protocol, purpose and categories); an exchange of its own, to the
    /// requester, linked to the request. A retry of what was accepted is answered first.
    pub async fn send_update(
        &self,
        caller: &Caller,
        input: &v1::SendUpdateRequest,
    ) -> Result<Submitted, BrokerError> {
        let op = Operation::SendUpdate;
        let target = Target::Exchange(RequestId::parse(&input.request_id));
        let replay = self.update_replay(caller, input);
        if let Some((request_id, index)) = self.audited(caller, op, target, replay).await? {
            return self.replayed(request_id, index).await;
        }
        let checked = self.check_update(caller, input);
        let (update, original, allowed) = self.audited(caller, op, target, checked).await?;
        let time_ms = self.clock.now_ms();
        let update_id = RequestId::time_ordered(time_ms, self.keys.random());
        let body = BodyEntry {
            kind: MessageKind::Update,
            request_id: update_id,
            salt: self.keys.random(),
            body: update.body.encode_to_vec(),
        };
        let sender = &caller.principal.id;
        let record = Record {
            time_ms,
            actor: caller.actor(),
            event: Event::UpdateSubmitted(UpdateSubmitted {
                update_id,
                request_id: update.request_id,
                // Set by the ledger from the request's own record.
                recipient: String::new(),
                staff: self.keys.staff(sender, &update.staff_id),
                subjects: original.subjects,
                protocol_id: original.protocol_id,
                protocol_version: allowed.protocol_version,
                authority: original.authority,
                purpose: original.purpose,
                disclosed: update.items,
                consultation: update.consultation,
                idempotency: self.keys.idempotency(sender, &update.idempotency_key),
                body_commitment: body.commitment(),
            }),
        };
        let opened = self.ledger.open_exchange(record, body).await;
        let opened = self.audited(caller, op, target, opened).await?;
        self.submitted(update_id, time_ms, opened).await
    }

    /// The update an earlier call with this idempotency key made, and its record's index, if
    /// its content is the same.
    fn update_replay(
        &self,
        caller: &Caller,
        input: &v1::SendUpdateRequest,
    ) -> Result<Option<(RequestId, u64)>, BrokerError> {
        let (Some(update), false) = (&input.update, input.idempotency_key.is_empty()) else {
            return Ok(None);
        };
        let agency = &caller.principal.id;
        let hash = self.keys.idempotency(agency, &input.idempotency_key);
        let body = update.encode_to_vec();
        replay_of(
            self.ledger.views(),
            agency,
            &hash,
            MessageKind::Update,
            &body,
            |k, id| self.ledger.body(k, id),
        )
    }

    /// Checks an update: its form, that the caller can see the request, and the policy (the
    /// writer checks the request's state again when it appends).
    fn check_update(
        &self,
        caller: &Caller,
        input: &v1::SendUpdateRequest,
    ) -> Result<
        (
            validate::ValidUpdate,
            crate::records::RequestSubmitted,
            policy::Allowed,
        ),
        BrokerError,
    > {
        let update = validate::update(input)?;
        let meta = visible_meta(
            self.ledger.views(),
            &update.request_id,
            &caller.principal.id,
        )?;
        if meta.kind != MessageKind::Request {
            return Err(BrokerError::refused(
                crate::reason::Reason::WrongMessageKind,
                format!(
                    "{} is a {}, not a request: it cannot be updated",
                    update.request_id, meta.kind
                ),
            ));
        }
        let original = self.original(&meta, &update.request_id)?;
        let registry = self.registry();
        let updater = Self::agency(&registry, &caller.principal.id)?;
        let allowed = policy::check_update(
            updater,
            &update,
            &meta.requester,
            &original,
            &registry,
            &self.ledger.protocols(),
            self.clock.today(),
        )
        .map_err(BrokerError::Denied)?;
        Ok((update, original, allowed))
    }

    /// Marks every request past its due time unanswered as overdue, and expires every request
    /// past its collection window unacknowledged, as of the broker's clock (at most
    /// [`DEADLINES_PER_RUN`] of each); each change by `actor`.
    pub async fn run_deadlines(&self, actor: Actor) -> Result<DeadlineRun, BrokerError> {
        let now = self.clock.now_ms();
        let views = self.ledger.views();
        let mut run = DeadlineRun {
            overdue: 0,
            expired: 0,
            as_of_ms: now,
            more: false,
        };
        for deadline in [Deadline::Due, Deadline::Expiry] {
            let ids = match deadline {
                Deadline::Due => views.due_by(now, DEADLINES_PER_RUN)?,
                Deadline::Expiry => views.expiring_by(now, DEADLINES_PER_RUN)?,
            };
            run.more |= ids.len() == DEADLINES_PER_RUN;
            let due: Vec<(RequestId, Deadline)> =
                ids.into_iter().map(|id| (id, deadline)).collect();
            let marked = self.ledger.deadlines(&actor, now, &due).await?;
            let n = marked.iter().filter(|m| **m).count() as u32;
            match deadline {
                Deadline::Due => run.overdue = n,
                Deadline::Expiry => run.expired = n,
            }
        }
        Ok(run)
    }

    /// The actor the broker's own deadline task logs its marks as (it has no certificate).
    pub fn deadlines_actor() -> Actor {
        Actor {
            role: crate::identity::Role::Admin,
            id: "infoshare-deadlines".into(),
            cert_sha256: [0; 32],
        }
    }

    /// Requests overdue and still awaiting an answer, by the agency that owes it (for the
    /// `infoshare.requests.overdue` gauge). Reads only what is overdue.
    pub fn overdue_by_agency(&self) -> Result<Vec<(String, u64)>, BrokerError> {
        let registry = self.registry();
        let views = self.ledger.views();
        registry
            .agency_ids()
            .map(|agency| {
                let prefix = [views::work::work_prefix(agency).as_slice(), &[0]].concat();
                let end = crate::store::backend::prefix_end(&prefix);
                let mut n = 0u64;
                views.scan(&prefix, &end, &mut |_, _| {
                    n += 1;
                    Ok(true)
                })?;
                Ok((agency.to_string(), n))
            })
            .collect()
    }
}
