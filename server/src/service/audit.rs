//! AuditService: converts filters in, proven records out.

use infoshare_proto::v1;
use tonic::{Request, Response, Status};

use super::convert::{self, timestamp};
use super::status;
use crate::access::Operation;
use crate::audit::{Filter, Proven, decision_of};
use crate::broker::Broker;
use crate::domain::{Authority, Classification};
use crate::error::BrokerError;
use crate::records::{Event, HoldTarget, ProtocolEvent, Record, event_code, event_name};
use crate::validate;

/// AuditService over a broker.
pub struct AuditApi {
    broker: Broker,
}

impl AuditApi {
    /// The service.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }

    fn subjects(&self, field: &str, s: &v1::SubjectQuery) -> Result<Vec<[u8; 32]>, BrokerError> {
        let name = if s.family_name.is_empty() && s.date_of_birth.is_empty() {
            None
        } else {
            let subject = v1::Subject {
                family_name: s.family_name.clone(),
                given_names: s.given_names.clone(),
                date_of_birth: s.date_of_birth.clone(),
                identifiers: s.identifier.clone().into_iter().collect(),
            };
            // Same normalisation as when the request was made.
            let checked =
                validate::subject_for_audit(field, &subject, self.broker.clock().today())?;
            Some((
                checked.family_name,
                checked.given_names,
                checked.date_of_birth.to_string(),
            ))
        };
        let identifier = s
            .identifier
            .as_ref()
            .map(|i| (i.scheme.clone(), i.value.clone()));
        if name.is_none() && identifier.is_none() {
            return Err(BrokerError::invalid(
                field,
                "give the family name, given names and date of birth, or an agency identifier",
            ));
        }
        Ok(self.broker.subject_pseudonyms_for_audit(
            name.as_ref()
                .map(|(f, g, d)| (f.as_str(), g.as_str(), d.as_str())),
            identifier.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        ))
    }

    fn filter(&self, f: Option<&v1::AuditFilter>) -> Result<Filter, BrokerError> {
        let Some(f) = f else {
            return Ok(Filter::default());
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let ms = |t: &Option<prost_types::Timestamp>| {
            t.as_ref()
                .map(|t| (t.seconds.max(0) as u64) * 1000 + (t.nanos.max(0) as u64) / 1_000_000)
        };
        Ok(Filter {
            subjects: match &f.subject {
                Some(s) => self.subjects("filter.subject", s)?,
                None => Vec::new(),
            },
            agency: nonempty(&f.agency_id),
            staff: f
                .staff
                .as_ref()
                .map(|s| self.broker.staff_pseudonym(&s.agency_id, &s.staff_id)),
            protocol: nonempty(&f.protocol_id),
            authority: match f.authority {
                0 => None,
                a => Some(Authority::from_i32(a).ok_or_else(|| {
                    BrokerError::invalid("filter.authority", format!("has no value {a}"))
                })?),
            },
            event: match f.event_type.as_str() {
                "" => None,
                name => Some(event_code(name).ok_or_else(|| {
                    BrokerError::invalid(
                        "filter.event_type",
                        format!("unknown event type {name:?}"),
                    )
                })?),
            },
            decision: match f.decision.as_str() {
                "" => None,
                d @ ("disclose" | "partial-disclose" | "decline" | "denied") => Some(d.to_string()),
                other => {
                    return Err(BrokerError::invalid(
                        "filter.decision",
                        format!("{other:?} is not disclose, partial-disclose, decline or denied"),
                    ));
                }
            },
            purpose: nonempty(&f.purpose),
            category: nonempty(&f.category),
            since_ms: ms(&f.since),
            until_ms: ms(&f.until),
        })
    }

    /// What a hold request names: an exchange, or a subject (by every pseudonym the subject
    /// query gives).
    fn hold_targets(&self, r: &v1::LegalHoldRequest) -> Result<Vec<HoldTarget>, BrokerError> {
        match (r.request_id.is_empty(), &r.subject) {
            (false, None) => Ok(vec![HoldTarget::Exchange(validate::request_id(
                "request_id",
                &r.request_id,
            )?)]),
            (true, Some(s)) => Ok(self
                .subjects("subject", s)?
                .into_iter()
                .map(HoldTarget::Subject)
                .collect()),
            _ => Err(BrokerError::invalid(
                "request_id",
                "give either a request id or a subject",
            )),
        }
    }
}

fn hold(target: &HoldTarget, index: u64, record: &Record) -> v1::LegalHold {
    let (request_id, subject_pseudonym) = match target {
        HoldTarget::Exchange(id) => (id.to_string(), String::new()),
        HoldTarget::Subject(p) => (String::new(), hex::encode(p)),
    };
    v1::LegalHold {
        request_id,
        subject_pseudonym,
        log_index: index,
        at: Some(timestamp(record.time_ms)),
        actor: format!("{}/{}", record.actor.role.as_str(), record.actor.id),
    }
}

fn holds(changed: &[crate::holds::HoldRecord]) -> Vec<v1::LegalHold> {
    changed
        .iter()
        .map(|h| hold(&h.target, h.index, &h.record))
        .collect()
}

fn classification(c: Classification) -> i32 {
    i32::from(c.code())
}

/// A record decoded for reading.
pub fn summary(r: &Record) -> v1::RecordSummary {
    let mut s = v1::RecordSummary {
        event_type: event_name(r.event.code()).to_string(),
        at: Some(timestamp(r.time_ms)),
        actor: format!("{}/{}", r.actor.role.as_str(), r.actor.id),
        actor_certificate_sha256: hex::encode(r.actor.cert_sha256),
        request_id: r
            .event
            .request_id()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        decision: decision_of(r).unwrap_or_default().to_string(),
        ..Default::default()
    };
    if let Some(o) = r.event.opening() {
        s.counterpart = o.recipient.to_string();
        s.protocol_id = o.protocol_id.to_string();
        s.protocol_version = o.protocol_version;
        s.subject_pseudonyms = o.subjects.iter().map(hex::encode).collect();
        s.staff_pseudonym = hex::encode(o.staff);
    }
    match &r.event {
        Event::RequestSubmitted(x) => {
            s.authority = Some(i32::from(x.authority.code()));
            s.purpose = x.purpose.clone();
            s.categories = x.categories.clone();
            s.classification = Some(classification(x.classification));
            s.due_at = (x.due_ms != 0).then(|| timestamp(x.due_ms));
            s.expires_at = (x.expires_ms != 0).then(|| timestamp(x.expires_ms));
        }
        Event::DisclosureSubmitted(x) => {
            s.authority = Some(i32::from(x.authority.code()));
            s.purpose = x.purpose.clone();
            s.disclosed = disclosed(&x.disclosed);
        }
        Event::UpdateSubmitted(x) => {
            s.authority = Some(i32::from(x.authority.code()));
            s.purpose = x.purpose.clone();
            s.disclosed = disclosed(&x.disclosed);
        }
        Event::RequestWithdrawn(x) => {
            s.staff_pseudonym = hex::encode(x.staff);
        }
        Event::ResponseSubmitted(x) => {
            s.counterpart = x.requester.clone();
            s.protocol_id = x.protocol_id.clone();
            s.protocol_version = x.protocol_version;
            s.authority = x.authority.map(|a| i32::from(a.code()));
            s.purpose = x.purpose.clone();
            s.disclosed = disclosed(&x.disclosed);
            s.staff_pseudonym = hex::encode(x.staff);
            s.reason_code = x.ground.map(|g| g.as_str().to_string()).unwrap_or_default();
            s.referred_agency_id = x.referral.clone();
        }
        Event::Denied(d) => {
            s.operation = d.operation.as_str().to_string();
            s.reason_code = d.reason_code.clone();
            s.rule = d.rule.clone();
            s.subject_pseudonyms = d.subjects.iter().map(hex::encode).collect();
        }
        Event::LegalHoldPlaced(HoldTarget::Subject(p))
        | Event::LegalHoldReleased(HoldTarget::Subject(p)) => {
            s.subject_pseudonyms = vec![hex::encode(p)];
        }
        Event::Protocol(
            ProtocolEvent::Registered {
                protocol_id,
                version,
                ..
            }
            | ProtocolEvent::Approved {
                protocol_id,
                version,
                ..
            }
            | ProtocolEvent::StateChanged {
                protocol_id,
                version,
                ..
            },
        ) => {
            s.protocol_id = protocol_id.clone();
            s.protocol_version = *version;
        }
        Event::AuditQueried(q) => {
            s.result_count = q.result_count;
            s.subject_pseudonyms = q.subjects.iter().map(hex::encode).collect();
        }
        _ => {}
    }
    if let Some(related) = r.event.related() {
        s.related_request_id = related.to_string();
    }
    s
}

fn disclosed(items: &[(String, Classification)]) -> Vec<v1::DisclosedCategory> {
    items
        .iter()
        .map(|(c, k)| v1::DisclosedCategory {
            category: c.clone(),
            classification: classification(*k),
        })
        .collect()
}

fn records(p: Proven) -> v1::AuditRecordsResponse {
    v1::AuditRecordsResponse {
        checkpoint: p.checkpoint.to_string(),
        records: p
            .records
            .into_iter()
            .map(|p| v1::AuditRecord {
                log_index: p.index,
                summary: Some(summary(&p.record)),
                record: p.bytes,
                inclusion_proof: p.proof.iter().map(|h| h.to_vec()).collect(),
            })
            .collect(),
        next_after_index: p.next_after,
        more: p.more,
    }
}

impl AuditApi {
    async fn change_hold(
        &self,
        request: Request<v1::LegalHoldRequest>,
        place: bool,
    ) -> Result<Response<v1::LegalHoldResponse>, Status> {
        let op = if place {
            Operation::PlaceLegalHold
        } else {
            Operation::ReleaseLegalHold
        };
        let caller = super::caller(&self.broker, &request, op)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let targets = self.hold_targets(r);
        let exchange = crate::records::RequestId::parse(&r.request_id);
        let targets = self
            .broker
            .audited(
                &caller,
                op,
                crate::broker::Target::Exchange(exchange),
                targets,
            )
            .await
            .map_err(status::of)?;
        let changed = self
            .broker
            .change_legal_holds(&caller, place, targets)
            .await
            .map_err(status::of)?;
        Ok(Response::new(v1::LegalHoldResponse {
            holds: holds(&changed),
        }))
    }
}

#[tonic::async_trait]
impl v1::audit_service_server::AuditService for AuditApi {
    async fn get_log_info(
        &self,
        request: Request<v1::GetLogInfoRequest>,
    ) -> Result<Response<v1::GetLogInfoResponse>, Status> {
        super::caller(&self.broker, &request, Operation::GetLogInfo)
            .await
            .map_err(status::of)?;
        let info = self.broker.log_info();
        Ok(Response::new(v1::GetLogInfoResponse {
            origin: info.origin,
            verifier_key: info.key.verifier_key.to_string(),
            public_key: info.key.public_key.to_vec(),
            checkpoint: info.checkpoint.to_string(),
            key_rotations: info.key.rotations.iter().map(|r| r.to_string()).collect(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        super::caller(&self.broker, &request, Operation::GetConsistencyProof)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let c = self
            .broker
            .consistency(r.first_size, r.second_size)
            .map_err(status::of)?;
        Ok(Response::new(v1::GetConsistencyProofResponse {
            proof: c.proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint: c.checkpoint.to_string(),
            first_root: c.first_root.to_vec(),
            second_root: c.second_root.to_vec(),
        }))
    }

    async fn get_tile(
        &self,
        request: Request<v1::GetTileRequest>,
    ) -> Result<Response<v1::GetTileResponse>, Status> {
        super::caller(&self.broker, &request, Operation::GetTile)
            .await
            .map_err(status::of)?;
        let (data, checkpoint) = self
            .broker
            .tile(&request.get_ref().path)
            .map_err(status::of)?;
        Ok(Response::new(v1::GetTileResponse {
            data,
            checkpoint: checkpoint.to_string(),
        }))
    }

    async fn get_records(
        &self,
        request: Request<v1::GetRecordsRequest>,
    ) -> Result<Response<v1::AuditRecordsResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::GetRecords)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let proven = self
            .broker
            .audit_range(&caller, r.start_index, r.count as usize)
            .await
            .map_err(status::of)?;
        Ok(Response::new(records(proven)))
    }

    async fn query_records(
        &self,
        request: Request<v1::QueryRecordsRequest>,
    ) -> Result<Response<v1::AuditRecordsResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::QueryRecords)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let filter = self.filter(r.filter.as_ref()).map_err(status::of)?;
        let page = match r.page_size {
            0 => 100,
            n => n as usize,
        };
        let proven = self
            .broker
            .audit_query(&caller, &filter, r.after_index, page)
            .await
            .map_err(status::of)?;
        Ok(Response::new(records(proven)))
    }

    async fn subject_timeline(
        &self,
        request: Request<v1::SubjectTimelineRequest>,
    ) -> Result<Response<v1::AuditRecordsResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::SubjectTimeline)
            .await
            .map_err(status::of)?;
        let subject = request
            .get_ref()
            .subject
            .as_ref()
            .ok_or_else(|| BrokerError::invalid("subject", "is required"))
            .map_err(status::of)?;
        let subjects = self.subjects("subject", subject).map_err(status::of)?;
        let proven = self
            .broker
            .audit_timeline(&caller, subjects)
            .await
            .map_err(status::of)?;
        Ok(Response::new(records(proven)))
    }

    async fn place_legal_hold(
        &self,
        request: Request<v1::LegalHoldRequest>,
    ) -> Result<Response<v1::LegalHoldResponse>, Status> {
        self.change_hold(request, true).await
    }

    async fn release_legal_hold(
        &self,
        request: Request<v1::LegalHoldRequest>,
    ) -> Result<Response<v1::LegalHoldResponse>, Status> {
        self.change_hold(request, false).await
    }

    async fn list_legal_holds(
        &self,
        request: Request<v1::ListLegalHoldsRequest>,
    ) -> Result<Response<v1::ListLegalHoldsResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ListLegalHolds)
            .await
            .map_err(status::of)?;
        let held = self.broker.legal_holds(&caller).await.map_err(status::of)?;
        Ok(Response::new(v1::ListLegalHoldsResponse {
            holds: holds(&held),
        }))
    }

    async fn export_bundle(
        &self,
        request: Request<v1::ExportBundleRequest>,
    ) -> Result<Response<v1::EvidenceBundle>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ExportBundle)
            .await
            .map_err(status::of)?;
        let filter = self
            .filter(request.get_ref().filter.as_ref())
            .map_err(status::of)?;
        let proven = self
            .broker
            .audit_export(&caller, &filter)
            .await
            .map_err(status::of)?;
        let info = self.broker.log_info();
        let (origin, verifier_key) = (info.origin, info.key.verifier_key.to_string());
        let more = proven.more;
        let r = records(proven);
        Ok(Response::new(v1::EvidenceBundle {
            origin,
            verifier_key,
            checkpoint: r.checkpoint,
            records: r.records,
            exported_at: Some(convert::timestamp(self.broker.clock().now_ms())),
            more,
        }))
    }
}
