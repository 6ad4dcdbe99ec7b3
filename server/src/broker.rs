//! The broker's operations, one method per RPC, in plain Rust: authenticate and authorise the
//! caller, validate, check policy, build log records, hand them to the ledger, and read views.
//! No tonic here: the service layer converts messages and maps [`BrokerError`] to a status.

use std::sync::Arc;

use infoshare_proto::v1;
use prost::Message;

use crate::access::{self, Operation};
use crate::crypto::{Digest32, Keys};
use crate::domain::MessageKind;
use crate::error::BrokerError;
use crate::identity::SpiffeId;
use crate::policy;
use crate::records::{
    Actor, Denied, DisclosureSubmitted, Event, Record, RequestId, RequestSubmitted,
    ResponseSubmitted,
};
use crate::registry::{Agency, Principal, Registry};
use crate::store::bodies::BodyEntry;
use crate::store::ledger::{Ledger, Opened, replay_of, visible_meta};
use crate::tls::PeerInfo;
use crate::validate::{self, Opening, ValidResponse, ValidSubject};

mod admin;
pub mod audit;
pub mod holds;
mod inbox_depths;
mod lists;
mod register;
mod results;
mod workflow;
pub use lists::{OutboxItem, PageToken};
pub use register::{RegisterChanged, VisibleRegister};
pub use results::{
    Acknowledged, Answered, DeadlineRun, InboxItem, LinkedUpdate, RequestDetail, Submitted,
};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The registered principal.
    pub principal: Principal,
    /// SHA-256 of the certificate it used.
    pub cert_sha256: Digest32,
    /// Its SPIFFE id, as text.
    pub spiffe: String,
}

impl Caller {
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            role: self.principal.role,
            id: self.principal.id.clone(),
            cert_sha256: self.cert_sha256,
        }
    }
}

/// Bytes of a page of answers at most: the largest message the broker sends, less room for the
/// message's own fields.
pub const PAGE_BYTES: usize = crate::transport::MAX_ANSWER_BYTES - (64 << 10);

/// What a refused attempt was about, for its Denied record (which carries the subject's
/// pseudonyms, so an auditor finds the attempt in the subject's timeline).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// Nothing in particular (a register change, a role refusal).
    Nothing,
    /// An exchange by id: its subjects come from its opening record, when it exists.
    Exchange(Option<RequestId>),
    /// A subject the attempt named (pseudonyms only if it is well-formed).
    Subject(Option<&'a v1::Subject>),
}

/// What a response was judged under (recorded in its record).
#[derive(Debug, Clone)]
struct Judged {
    protocol_id: String,
    protocol_version: u32,
    authority: crate::domain::Authority,
    purpose: String,
}

/// What the broker makes for an opening record besides its content: ids, pseudonyms, the
/// commitment to its body, the protocol version it was judged under, and when.
struct OpeningIds {
    time_ms: u64,
    request_id: RequestId,
    staff: crate::crypto::Pseudonym,
    subjects: Vec<crate::crypto::Pseudonym>,
    protocol_version: u32,
    idempotency: Digest32,
    body_commitment: Digest32,
}

/// The broker: every operation, over one ledger, registry and key set (cheap to clone).
#[derive(Clone)]
pub struct Broker {
    pub(crate) ledger: Ledger,
    registry: Arc<std::sync::RwLock<Arc<Registry>>>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) limiter: Arc<crate::limits::Limiter>,
    /// Becomes true when the server begins a graceful shutdown: streams end, telling their
    /// clients to reconnect.
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// What time it is (every record's time, every New Zealand date the law is applied on).
    pub(crate) clock: crate::clock::Clock,
    /// What deadlines are counted with: the public holidays, the default collection window.
    calendar: Arc<crate::deadline::Calendar>,
    /// What the inbox-depth gauge found last (so that it reads only what changed since).
    inbox_depths: Arc<inbox_depths::InboxDepths>,
}

impl Broker {
    /// A broker over an opened ledger.
    pub fn new(
        ledger: Ledger,
        registry: Registry,
        keys: Keys,
        limits: crate::limits::Limits,
        clock: crate::clock::Clock,
        calendar: crate::deadline::Calendar,
    ) -> Self {
        Self {
            clock,
            calendar: Arc::new(calendar),
            inbox_depths: Arc::default(),
            ledger,
            registry: Arc::new(std::sync::RwLock::new(Arc::new(registry))),
            keys: Arc::new(keys),
            limiter: Arc::new(crate::limits::Limiter::new(limits)),
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// The agency registry in force.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a new agency registry in force: calls already admitted finish under the old one.
    pub fn replace_registry(&self, registry: Registry) {
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(registry);
    }

    /// Begins a graceful shutdown: inbox streams end with UNAVAILABLE (reconnect).
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that sees the shutdown begin.
    pub fn shutting_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The per-principal call and stream limits.
    pub fn limiter(&self) -> &crate::limits::Limiter {
        &self.limiter
    }

    /// Takes one call from the caller's rate bucket.
    pub fn check_rate(&self, caller: &Caller) -> Result<(), BrokerError> {
        if self.limiter.allow_call(&caller.spiffe) {
            return Ok(());
        }
        Err(BrokerError::Refused {
            reason: crate::reason::Reason::RateLimited,
            message: format!(
                "{} is over its call rate ({} calls/s); retry with backoff",
                caller.principal.id,
                self.limiter.limits().calls_per_second
            ),
        })
    }

    /// The ledger it writes to (for the health check and telemetry).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Identifies the caller of a connection: its certificate's SPIFFE id must name a registered
    /// principal.
    pub fn authenticate(&self, peer: Option<&PeerInfo>) -> Result<Caller, BrokerError> {
        let peer = peer.ok_or_else(|| {
            BrokerError::Unauthenticated("connection carries no TLS peer information".into())
        })?;
        let spiffe = peer.spiffe.as_ref().map_err(|e| {
            BrokerError::Unauthenticated(format!("client certificate refused: {e}"))
        })?;
        self.caller(spiffe, peer.cert_sha256)
    }

    /// The caller a verified SPIFFE id names, if it is a registered principal. The transport
    /// calls it with the id of a certificate the TLS handshake verified; in-process tests call
    /// it directly.
    pub fn caller(&self, spiffe: &SpiffeId, cert_sha256: Digest32) -> Result<Caller, BrokerError> {
        let principal = self.registry().principal(spiffe).ok_or_else(|| {
            BrokerError::Unauthenticated(format!(
                "{spiffe} is not a registered principal of this broker"
            ))
        })?;
        Ok(Caller {
            principal,
            cert_sha256,
            spiffe: spiffe.uri.clone(),
        })
    }

    /// Checks that the caller's role may call `op`; a refusal is logged.
    pub async fn authorize(&self, caller: &Caller, op: Operation) -> Result<(), BrokerError> {
        if access::allowed(caller.principal.role, op) {
            return Ok(());
        }
        let err = BrokerError::RoleNotAllowed {
            role: caller.principal.role.as_str(),
            operation: op.as_str(),
        };
        Err(self.refused(caller, op, Target::Nothing, err).await)
    }

    /// Logs a refusal as a Denied record and returns the error to give the caller. If the
    /// record cannot be written, the caller gets the storage error instead: a refusal that is
    /// not in the log is not reported as one.
    pub(crate) async fn refused(
        &self,
        caller: &Caller,
        op: Operation,
        target: Target<'_>,
        err: BrokerError,
    ) -> BrokerError {
        let rule = match &err {
            BrokerError::InvalidArgument { field, .. } => field.clone(),
            BrokerError::Denied(d) => d.rule.to_string(),
            BrokerError::RoleNotAllowed { .. } => "access.role".to_string(),
            BrokerError::NotFound(_) => "visibility.party".to_string(),
            _ => "state".to_string(),
        };
        let (request_id, subjects) = match target {
            Target::Nothing => (None, Vec::new()),
            Target::Exchange(id) => (
                id,
                id.map(|id| self.exchange_subjects(&id)).unwrap_or_default(),
            ),
            Target::Subject(s) => (
                None,
                s.and_then(|s| validate::subject_for_audit("subject", s, self.clock.today()).ok())
                    .map(|s| self.subject_pseudonyms(&s))
                    .unwrap_or_default(),
            ),
        };
        let record = Record {
            time_ms: self.clock.now_ms(),
            actor: caller.actor(),
            event: Event::Denied(Denied {
                operation: op,
                request_id,
                reason_code: err.reason_code().to_string(),
                rule: rule.chars().take(128).collect(),
                subjects,
            }),
        };
        match self.ledger.append(record).await {
            Ok(receipt) => BrokerError::Logged {
                error: Box::new(err),
                receipt: Box::new(receipt),
            },
            Err(store) => store,
        }
    }

    /// The subject pseudonyms of an exchange, from its opening record (none if it does not
    /// exist).
    fn exchange_subjects(&self, id: &RequestId) -> Vec<crate::crypto::Pseudonym> {
        let Ok(Some(meta)) = crate::views::request_meta(self.ledger.views(), id) else {
            return Vec::new();
        };
        self.ledger
            .decoded(meta.request_idx)
            .ok()
            .and_then(|r| r.event.opening().map(|o| o.subjects.to_vec()))
            .unwrap_or_default()
    }

    /// Logs refusals of attempts to share, to read what one may not, or to change a register
    /// (bad input, policy, state), and passes errors through.
    pub(crate) async fn audited<T>(
        &self,
        caller: &Caller,
        op: Operation,
        target: Target<'_>,
        result: Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        match result {
            Err(e) if !op.audited() => Err(e),
            Err(e @ (BrokerError::Unavailable(_) | BrokerError::Internal(_))) => Err(e),
            Err(e) => Err(self.refused(caller, op, target, e).await),
            ok => ok,
        }
    }

    fn agency<'r>(registry: &'r Registry, id: &str) -> Result<&'r Agency, BrokerError> {
        registry
            .agency(id)
            .ok_or_else(|| BrokerError::Unauthenticated(format!("{id} is not a registered agency")))
    }

    /// SubmitRequest.
    pub async fn submit_request(
        &self,
        caller: &Caller,
        input: &v1::SubmitRequestRequest,
    ) -> Result<Submitted, BrokerError> {
        let subject = input.request.as_ref().and_then(|r| r.subject.as_ref());
        let body = input.request.as_ref().map(Message::encode_to_vec);
        let (op, key) = (Operation::SubmitRequest, &input.idempotency_key);
        let check = || {
            let request = validate::request(input, self.clock.today())?;
            let allowed = self.judge(caller, &request, policy::check_request)?;
            Ok((request, allowed))
        };
        self.submit_opening(caller, op, subject, key, body, check, |r, opened| {
            let deadlines = self.deadlines(
                &r.protocol_id,
                opened.protocol_version,
                opened.time_ms,
                r.urgency,
            );
            Event::RequestSubmitted(RequestSubmitted {
                request_id: opened.request_id,
                recipient: r.recipient.clone(),
                staff: opened.staff,
                subjects: opened.subjects,
                protocol_id: r.protocol_id.clone(),
                protocol_version: opened.protocol_version,
                authority: r.authority,
                purpose: r.purpose.clone(),
                categories: r.categories.clone(),
                classification: r.classification,
                urgency: r.urgency,
                consultation: r.consultation,
                idempotency: opened.idempotency,
                body_commitment: opened.body_commitment,
                due_ms: deadlines.due_ms,
                expires_ms: deadlines.expires_ms,
                follows: r.follows,
            })
        })
        .await
    }

    /// A request's deadlines under the protocol version it was judged under (the broker's
    /// defaults, should that version have gone from the register since).
    fn deadlines(
        &self,
        protocol_id: &str,
        version: u32,
        time_ms: u64,
        urgency: crate::domain::Urgency,
    ) -> crate::deadline::Deadlines {
        let protocols = self.ledger.protocols();
        let judged_under = protocols.get(protocol_id, version).map(|e| &*e.protocol);
        self.calendar.deadlines(time_ms, urgency, judged_under)
    }

    /// Disclose (proactive disclosure).
    pub async fn disclose(
        &self,
        caller: &Caller,
        input: &v1::DiscloseRequest,
    ) -> Result<Submitted, BrokerError> {
        let subject = input.disclosure.as_ref().and_then(|d| d.subject.as_ref());
        let body = input.disclosure.as_ref().map(Message::encode_to_vec);
        let (op, key) = (Operation::Disclose, &input.idempotency_key);
        let check = || {
            let disclosure = validate::disclosure(input, self.clock.today())?;
            let allowed = self.judge(caller, &disclosure, policy::check_disclosure)?;
            Ok((disclosure, allowed))
        };
        self.submit_opening(caller, op, subject, key, body, check, |d, opened| {
            Event::DisclosureSubmitted(DisclosureSubmitted {
                request_id: opened.request_id,
                recipient: d.recipient.clone(),
                staff: opened.staff,
                subjects: opened.subjects,
                protocol_id: d.protocol_id.clone(),
                protocol_version: opened.protocol_version,
                authority: d.authority,
                purpose: d.purpose.clone(),
                disclosed: d.items.clone(),
                consultation: d.consultation,
                idempotency: opened.idempotency,
                body_commitment: opened.body_commitment,
            })
        })
        .await
    }

    /// Opens an exchange, the same way for a request and a proactive disclosure: a retry of
    /// what was accepted is answered first (idempotency before policy: whatever changed since in
    /// the register, the registry or the date); then the opening is checked, logged with
    /// pseudonyms and a commitment to its body, and handed to the ledger. Every refusal is
    /// logged against the subject the attempt named.
    #[allow(clippy::too_many_arguments)]
    async fn submit_opening<V: Opening>(
        &self,
        caller: &Caller,
        op: Operation,
        subject: Option<&v1::Subject>,
        key: &str,
        body: Option<Vec<u8>>,
        check: impl FnOnce() -> Result<(V, policy::Allowed), BrokerError>,
        event: impl FnOnce(&V, OpeningIds) -> Event,
    ) -> Result<Submitted, BrokerError> {
        let target = Target::Subject(subject);
        let replay = self.replay(caller, V::KIND, key, body);
        if let Some((request_id, index)) = self.audited(caller, op, target, replay).await? {
            return self.replayed(request_id, index).await;
        }
        let (valid, allowed) = self.audited(caller, op, target, check()).await?;
        let time_ms = self.clock.now_ms();
        let request_id = RequestId::time_ordered(time_ms, self.keys.random());
        let body = self.body(V::KIND, request_id, valid.encoded_body());
        let sender = &caller.principal.id;
        let ids = OpeningIds {
            time_ms,
            request_id,
            staff: self.keys.staff(sender, valid.staff_id()),
            subjects: self.subject_pseudonyms(valid.subject()),
            protocol_version: allowed.protocol_version,
            idempotency: self.keys.idempotency(sender, valid.idempotency_key()),
            body_commitment: body.commitment(),
        };
        let record = Record {
            time_ms,
            actor: caller.actor(),
            event: event(&valid, ids),
        };
        let opened = self.ledger.open_exchange(record, body).await;
        let opened = self.audited(caller, op, target, opened).await?;
        self.submitted(request_id, time_ms, opened).await
    }

    /// What opening exchange `request_id` at `time_ms` came to: the new exchange, or the one an
    /// earlier submission with the same key opened.
    pub(crate) async fn submitted(
        &self,
        request_id: RequestId,
        time_ms: u64,
        opened: Opened,
    ) -> Result<Submitted, BrokerError> {
        match opened {
            Opened::New(receipt) => Ok(Submitted {
                request_id,
                index: receipt.log_index,
                time_ms,
                replayed: false,
                receipt,
            }),
            Opened::Replayed { request_id, index } => self.replayed(request_id, index).await,
        }
    }

    /// Checks an opening against the policy: another agency is its recipient (whether it is
    /// registered is the policy's rule, `party.recipient_registered`), then `rules`.
    fn judge<V: Opening>(
        &self,
        caller: &Caller,
        valid: &V,
        rules: impl FnOnce(
            &Agency,
            &V,
            &Registry,
            &crate::protocol::ProtocolStore,
            time::Date,
        ) -> Result<policy::Allowed, policy::Denial>,
    ) -> Result<policy::Allowed, BrokerError> {
        if valid.recipient() == caller.principal.id {
            return Err(BrokerError::invalid(
                V::RECIPIENT_FIELD,
                "an agency cannot send to itself",
            ));
        }
        let registry = self.registry();
        let sender = Self::agency(&registry, &caller.principal.id)?;
        rules(
            sender,
            valid,
            &registry,
            &self.ledger.protocols(),
            self.clock.today(),
        )
        .map_err(BrokerError::Denied)
    }

    fn body(&self, kind: MessageKind, request_id: RequestId, body: Vec<u8>) -> BodyEntry {
        BodyEntry {
            kind,
            request_id,
            salt: self.keys.random(),
            body,
        }
    }

    /// Pseudonyms of a subject: by name and date of birth, then one per agency identifier.
    fn subject_pseudonyms(&self, s: &ValidSubject) -> Vec<crate::crypto::Pseudonym> {
        let mut out = vec![self.keys.subject_by_name(
            &s.family_name,
            &s.given_names,
            &s.date_of_birth.to_string(),
        )];
        out.extend(
            s.identifiers
                .iter()
                .map(|(scheme, value)| self.keys.subject_by_identifier(scheme, value)),
        );
        out
    }

    /// The exchange an earlier submission with this idempotency key opened, and its opening
    /// record's index, if its content is the same (a conflict if not); `None` when there is
    /// none, or the input is too malformed to say (its validation then says why).
    fn replay(
        &self,
        caller: &Caller,
        kind: MessageKind,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<(RequestId, u64)>, BrokerError> {
        let Some(body) = body else {
            return Ok(None);
        };
        if key.is_empty() {
            return Ok(None);
        }
        let agency = &caller.principal.id;
        let hash = self.keys.idempotency(agency, key);
        replay_of(self.ledger.views(), agency, &hash, kind, &body, |k, id| {
            self.ledger.body(k, id)
        })
    }

    /// The result of the submission that opened `request_id` (record `index`), as a replay.
    pub(crate) async fn replayed(
        &self,
        request_id: RequestId,
        index: u64,
    ) -> Result<Submitted, BrokerError> {
        Ok(Submitted {
            request_id,
            index,
            time_ms: self.ledger.decoded(index)?.time_ms,
            replayed: true,
            receipt: self.ledger.receipt_once_signed(index).await?,
        })
    }

    /// Acknowledge. Returns the acknowledgement's index, whether it was acknowledged before,
    /// and the acknowledgement's receipt.
    pub async fn acknowledge(
        &self,
        caller: &Caller,
        input: &v1::AcknowledgeRequest,
    ) -> Result<Acknowledged, BrokerError> {
        let op = Operation::Acknowledge;
        let target = Target::Exchange(RequestId::parse(&input.request_id));
        let checked = validate::request_id("request_id", &input.request_id)
            .and_then(|id| Ok((id, validate::message_kind("kind", input.kind)?)));
        let (request_id, kind) = self.audited(caller, op, target, checked).await?;
        let acknowledged = self
            .ledger
            .acknowledge(caller.actor(), self.clock.now_ms(), request_id, kind)
            .await;
        self.once(self.audited(caller, op, target, acknowledged).await?)
            .await
    }

    /// Respond. Returns the response record's index, time and receipt.
    pub async fn respond(
        &self,
        caller: &Caller,
        input: &v1::RespondRequest,
    ) -> Result<Answered, BrokerError> {
        let op = Operation::Respond;
        let target = Target::Exchange(RequestId::parse(&input.request_id));
        let checked = self.check_response(caller, input);
        let (response, judged) = self.audited(caller, op, target, checked).await?;
        let time_ms = self.clock.now_ms();
        let id = response.request_id;
        let body = BodyEntry {
            kind: MessageKind::Response,
            request_id: id,
            salt: self.keys.random(),
            body: response.body.encode_to_vec(),
        };
        let record = Record {
            time_ms,
            actor: caller.actor(),
            event: Event::ResponseSubmitted(ResponseSubmitted {
                request_id: id,
                // Set by the ledger from the request's own record.
                requester: String::new(),
                staff: self.keys.staff(&caller.principal.id, &response.staff_id),
                decision: response.decision,
                ground: response.ground,
                disclosed: response.items.clone(),
                consultation: response.consultation,
                body_commitment: body.commitment(),
                protocol_id: judged.protocol_id,
                protocol_version: judged.protocol_version,
                authority: Some(judged.authority),
                purpose: judged.purpose,
                referral: response.referral.clone(),
            }),
        };
        let answered = self.ledger.respond(record, body).await;
        let receipt = self.audited(caller, op, target, answered).await?;
        Ok(Answered {
            log_index: receipt.log_index,
            time_ms,
            receipt,
        })
    }

    /// The request record that opened `id` (whose meta is `meta`): what an answer to it is
    /// judged against.
    fn original(
        &self,
        meta: &crate::views::RequestMeta,
        id: &RequestId,
    ) -> Result<RequestSubmitted, BrokerError> {
        match self.ledger.decoded(meta.request_idx)?.event {
            Event::RequestSubmitted(original) => Ok(original),
            _ => Err(BrokerError::Internal(format!(
                "record {} is not the request {id}",
                meta.request_idx
            ))),
        }
    }

    fn check_response(
        &self,
        caller: &Caller,
        input: &v1::RespondRequest,
    ) -> Result<(ValidResponse, Judged), BrokerError> {
        let response = validate::response(input)?;
        let views = self.ledger.views();
        let meta = visible_meta(views, &response.request_id, &caller.principal.id)?;
        if meta.kind != MessageKind::Request {
            return Err(BrokerError::Refused {
                reason: crate::reason::Reason::NotARequest,
                message: format!(
                    "{} is a proactive disclosure; there is nothing to answer",
                    response.request_id
                ),
            });
        }
        let original = self.original(&meta, &response.request_id)?;
        let registry = self.registry();
        let responder = Self::agency(&registry, &caller.principal.id)?;
        let allowed = policy::check_response(
            responder,
            &response,
            &meta.requester,
            &original,
            &registry,
            &self.ledger.protocols(),
            self.clock.today(),
        )
        .map_err(BrokerError::Denied)?;
        let judged = Judged {
            protocol_id: original.protocol_id,
            protocol_version: allowed.protocol_version,
            authority: original.authority,
            purpose: original.purpose,
        };
        Ok((response, judged))
    }

    /// GetRequest; an attempt to read what the caller is no party to is logged.
    pub async fn get_request(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<RequestDetail, BrokerError> {
        let target = Target::Exchange(RequestId::parse(id));
        let visible = validate::request_id("request_id", id).and_then(|request_id| {
            let meta = visible_meta(self.ledger.views(), &request_id, &caller.principal.id)?;
            Ok((request_id, meta))
        });
        let (request_id, meta) = self
            .audited(caller, Operation::GetRequest, target, visible)
            .await?;
        let body = |kind| self.ledger.body_in(kind, &request_id, &meta);
        let response = match meta.response_idx {
            0 => None,
            _ => body(MessageKind::Response)?,
        };
        let withdrawal = match meta.status {
            crate::domain::RequestStatus::Withdrawn => body(MessageKind::Withdrawal)?,
            _ => None,
        };
        let opening = match meta.kind {
            MessageKind::Disclosure | MessageKind::Update | MessageKind::Request => {
                body(meta.kind)?
            }
            _ => None,
        };
        let (mut updates, mut resent_as) = (Vec::new(), Vec::new());
        for (index, linked) in self.ledger.views().links(&request_id)? {
            let Some(linked_meta) = crate::views::request_meta(self.ledger.views(), &linked)?
            else {
                continue;
            };
            match linked_meta.kind {
                MessageKind::Update => updates.push(LinkedUpdate {
                    update_id: linked,
                    time_ms: self.ledger.decoded(index)?.time_ms,
                    body: self
                        .ledger
                        .body_in(MessageKind::Update, &linked, &linked_meta)?,
                    acknowledged: linked_meta.request_ack_idx != 0,
                }),
                _ => resent_as.push(linked),
            }
        }
        let subjects = self.exchange_subjects(&request_id);
        Ok(RequestDetail {
            request_id,
            opening,
            response,
            withdrawal,
            updates,
            resent_as,
            timeline: self.ledger.timeline(&request_id)?,
            legal_hold: crate::views::held(self.ledger.views(), &request_id, &subjects)?,
            meta,
        })
    }

    /// The broker's clock.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }
}
