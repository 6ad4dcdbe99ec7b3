//! The protocol register's state, folded from the log's protocol records, and the lifecycle
//! rules that decide which register changes are allowed.
//!
//! ```text
//! register ─▶ Draft ──approve (another admin)──▶ Active ◀──resume── Suspended
//!                                                 │  └───suspend────▶ │
//!                                                 └──revoke──▶ Revoked ◀┘
//! approving version n+1 makes version n Superseded
//! ```
//!
//! An approved version is immutable: a change is a new version. Past its review date an active
//! protocol is "review overdue" and authorises nothing until a reviewed version is approved.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::Date;

pub use crate::domain::ProtocolState;
use crate::error::BrokerError;
use crate::protocol::Protocol;
use crate::reason::Reason;
use crate::records::{Event, ProtocolEvent, Record};

/// Who approved a protocol version, in which role, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The approving administrator.
    pub by: String,
    /// The role they approved in (e.g. "Chief Privacy Officer").
    pub role: String,
    /// When (Unix ms).
    pub at_ms: u64,
}

/// One version of a protocol in the register.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The parsed document.
    pub protocol: Arc<Protocol>,
    /// The document as registered.
    pub document: Arc<str>,
    /// The administrator who registered it.
    pub registered_by: String,
    /// When (Unix ms).
    pub registered_at_ms: u64,
    /// Its approval, once approved.
    pub approval: Option<Approval>,
    /// Draft, active, suspended, revoked or superseded.
    pub state: ProtocolState,
}

impl Entry {
    /// Whether the protocol is past its review date on `today`.
    pub fn review_overdue(&self, today: Date) -> bool {
        self.protocol.review_date().is_none_or(|d| today > d)
    }

    /// The state as shown to people: an active protocol past its review date is
    /// "review-overdue".
    pub fn status(&self, today: Date) -> &'static str {
        if self.state == ProtocolState::Active && self.review_overdue(today) {
            "review-overdue"
        } else {
            self.state.as_str()
        }
    }
}

/// The register.
#[derive(Clone, Debug, Default)]
pub struct ProtocolStore {
    protocols: BTreeMap<String, Vec<Entry>>,
}

fn precondition(reason: Reason, message: String) -> BrokerError {
    BrokerError::refused(reason, message)
}

impl ProtocolStore {
    /// Every version of `id`, oldest first.
    pub fn versions(&self, id: &str) -> &[Entry] {
        self.protocols.get(id).map_or(&[], Vec::as_slice)
    }

    /// One version.
    pub fn get(&self, id: &str, version: u32) -> Option<&Entry> {
        self.versions(id)
            .iter()
            .find(|e| e.protocol.version == version)
    }

    /// The version in force: the latest approved one (whatever it has become since), if any.
    pub fn in_force(&self, id: &str) -> Option<&Entry> {
        self.versions(id)
            .iter()
            .rev()
            .find(|e| e.approval.is_some() && e.state != ProtocolState::Superseded)
    }

    /// Every protocol id with its versions.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Vec<Entry>)> {
        self.protocols.iter()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.protocols.is_empty()
    }

    /// Checks that `protocol` may be registered: its version must follow the latest one.
    pub fn may_register(&self, protocol: &Protocol) -> Result<(), BrokerError> {
        let latest = self
            .versions(&protocol.id)
            .last()
            .map_or(0, |e| e.protocol.version);
        if protocol.version != latest + 1 {
            return Err(precondition(
                Reason::ProtocolVersionConflict,
                format!(
                    "protocol {} is at version {latest}; register version {} (an approved version never changes)",
                    protocol.id,
                    latest + 1
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `approver` may approve `id` version `version`.
    pub fn may_approve(&self, id: &str, version: u32, approver: &str) -> Result<(), BrokerError> {
        let entry = self.get(id, version).ok_or_else(|| {
            BrokerError::NotFound(format!("no protocol {id} version {version} is registered"))
        })?;
        if entry.state != ProtocolState::Draft {
            return Err(precondition(
                Reason::ProtocolNotDraft,
                format!(
                    "protocol {id} version {version} is {}, not a draft",
                    entry.state.as_str()
                ),
            ));
        }
        if entry.registered_by == approver {
            return Err(precondition(
                Reason::ApproverIsRegistrant,
                format!(
                    "protocol {id} version {version} was registered by {approver}; another administrator must approve it"
                ),
            ));
        }
        if self
            .versions(id)
            .iter()
            .any(|e| e.protocol.version > version && e.approval.is_some())
        {
            return Err(precondition(
                Reason::ProtocolVersionConflict,
                format!("a later version of protocol {id} is already approved"),
            ));
        }
        Ok(())
    }

    /// Checks that the version of `id` in force may move to `to` (Suspended, Active or
    /// Revoked); returns that version.
    pub fn may_change(&self, id: &str, to: ProtocolState) -> Result<u32, BrokerError> {
        let entry = self.in_force(id).ok_or_else(|| {
            BrokerError::NotFound(format!("protocol {id} has no approved version"))
        })?;
        let from = entry.state;
        let allowed = matches!(
            (from, to),
            (ProtocolState::Active, ProtocolState::Suspended)
                | (ProtocolState::Suspended, ProtocolState::Active)
                | (
                    ProtocolState::Active | ProtocolState::Suspended,
                    ProtocolState::Revoked
                )
        );
        if !allowed {
            return Err(precondition(
                Reason::ProtocolStateConflict,
                format!(
                    "protocol {id} is {}; it cannot become {}",
                    from.as_str(),
                    to.as_str()
                ),
            ));
        }
        Ok(entry.protocol.version)
    }

    /// Folds a record into the register (records that are not about protocols are ignored).
    /// A registration needs its document (from the body store), which must match the record's
    /// hash.
    pub fn apply(&mut self, record: &Record, document: Option<&str>) -> Result<(), String> {
        let Event::Protocol(event) = &record.event else {
            return Ok(());
        };
        match event {
            ProtocolEvent::Registered {
                protocol_id,
                version,
                document_sha256,
            } => {
                let document = document
                    .ok_or_else(|| format!("document of {protocol_id} v{version} is missing"))?;
                if crate::crypto::sha256(document.as_bytes()) != *document_sha256 {
                    return Err(format!(
                        "document of {protocol_id} v{version} does not match its logged hash"
                    ));
                }
                let protocol = Protocol::from_toml(document).map_err(|e| e.to_string())?;
                self.protocols
                    .entry(protocol.id.clone())
                    .or_default()
                    .push(Entry {
                        protocol: Arc::new(protocol),
                        document: document.into(),
                        registered_by: record.actor.id.clone(),
                        registered_at_ms: record.time_ms,
                        approval: None,
                        state: ProtocolState::Draft,
                    });
            }
            ProtocolEvent::Approved {
                protocol_id,
                version,
                approver_role,
            } => {
                let versions = self
                    .protocols
                    .get_mut(protocol_id)
                    .ok_or_else(|| format!("approval of unknown protocol {protocol_id}"))?;
                for e in versions.iter_mut() {
                    if e.approval.is_some() && e.state != ProtocolState::Revoked {
                        e.state = ProtocolState::Superseded;
                    }
                }
                let e = versions
                    .iter_mut()
                    .find(|e| e.protocol.version == *version)
                    .ok_or_else(|| {
                        format!("approval of unknown version {protocol_id}/{version}")
                    })?;
                e.state = ProtocolState::Active;
                e.approval = Some(Approval {
                    by: record.actor.id.clone(),
                    role: approver_role.clone(),
                    at_ms: record.time_ms,
                });
            }
            ProtocolEvent::StateChanged {
                protocol_id,
                version,
                state,
            } => {
                let e = self
                    .protocols
                    .get_mut(protocol_id)
                    .and_then(|v| v.iter_mut().find(|e| e.protocol.version == *version))
                    .ok_or_else(|| format!("state change of unknown {protocol_id}/{version}"))?;
                e.state = *state;
            }
        }
        Ok(())
    }
}
