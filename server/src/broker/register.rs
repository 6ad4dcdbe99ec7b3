//! The protocol register's operations: registration (checked against the template, the law and
//! the registry), approval, state changes, and reading a protocol as the caller may see it.

use std::sync::Arc;

use infoshare_proto::v1;

use super::{Broker, Caller, Target};
use crate::access::Operation;
use crate::error::BrokerError;
use crate::identity::Role;
use crate::protocol::{Protocol, ProtocolState, ProtocolStore};
use crate::records::{Event, ProtocolEvent, Record};
use crate::store::bodies::BodyEntry;
use crate::validate;

/// A change to the register, as it stands after it.
#[derive(Debug, Clone)]
pub struct RegisterChanged {
    /// The log index of the change's record.
    pub log_index: u64,
    /// The register after the change.
    pub register: Arc<ProtocolStore>,
    /// The protocol changed.
    pub protocol_id: String,
    /// Its version (for a registration or an approval).
    pub version: Option<u32>,
}

/// The protocol register as one caller may see it.
pub struct VisibleRegister {
    /// The whole register.
    pub register: Arc<ProtocolStore>,
    /// For an agency, itself: it sees only the versions it is party to.
    pub party: Option<String>,
}

impl VisibleRegister {
    /// Whether the caller may see this version.
    pub fn shows(&self, entry: &crate::protocol::Entry) -> bool {
        self.party
            .as_deref()
            .is_none_or(|a| entry.protocol.party(a).is_some())
    }

    /// Every version the caller may see.
    pub fn entries(&self) -> impl Iterator<Item = &crate::protocol::Entry> {
        self.register
            .all()
            .flat_map(|(_, versions)| versions.iter())
            .filter(|e| self.shows(e))
    }
}

impl Broker {
    /// RegisterProtocol: checks the document against the template, the law and the registry,
    /// then registers it as a draft.
    pub async fn register_protocol(
        &self,
        caller: &Caller,
        document: &str,
    ) -> Result<RegisterChanged, BrokerError> {
        let checked = self.check_document(document);
        let protocol = self
            .audited(
                caller,
                Operation::RegisterProtocol,
                Target::Nothing,
                checked,
            )
            .await?;
        let event = ProtocolEvent::Registered {
            protocol_id: protocol.id.clone(),
            version: protocol.version,
            document_sha256: crate::crypto::sha256(document.as_bytes()),
        };
        let body = crate::store::bodies::protocol_body(&protocol.id, protocol.version, document);
        let index = self
            .change_register(caller, Operation::RegisterProtocol, event, Some(body))
            .await?;
        Ok(RegisterChanged {
            log_index: index,
            register: self.ledger.protocols(),
            protocol_id: protocol.id,
            version: Some(protocol.version),
        })
    }

    fn check_document(&self, document: &str) -> Result<Protocol, BrokerError> {
        if document.len() > validate::MAX_MESSAGE_BYTES / 2 {
            return Err(BrokerError::invalid(
                "document_toml",
                "is longer than 512 KiB",
            ));
        }
        // Agencies read its text on their terminals: no control or bidi characters (TOML's
        // own line breaks and tabs aside).
        if let Some((at, c)) = crate::text::forbidden_char(document, &['\n', '\r', '\t']) {
            let line = document[..at].matches('\n').count() + 1;
            return Err(BrokerError::invalid(
                "document_toml",
                format!(
                    "line {line} holds U+{:04X}: protocol documents must not contain control or bidi characters",
                    c as u32
                ),
            ));
        }
        let protocol = Protocol::from_toml(document)?;
        protocol.check(&self.registry())?;
        Ok(protocol)
    }

    /// ApproveProtocol.
    pub async fn approve_protocol(
        &self,
        caller: &Caller,
        input: &v1::ApproveProtocolRequest,
    ) -> Result<RegisterChanged, BrokerError> {
        let checked = validate::protocol_id("protocol_id", &input.protocol_id).and_then(|id| {
            let role = validate::role_title("approver_role", &input.approver_role)?;
            Ok((id, role))
        });
        let (protocol_id, approver_role) = self
            .audited(caller, Operation::ApproveProtocol, Target::Nothing, checked)
            .await?;
        let event = ProtocolEvent::Approved {
            protocol_id: protocol_id.clone(),
            version: input.version,
            approver_role,
        };
        let index = self
            .change_register(caller, Operation::ApproveProtocol, event, None)
            .await?;
        Ok(RegisterChanged {
            log_index: index,
            register: self.ledger.protocols(),
            protocol_id,
            version: Some(input.version),
        })
    }

    /// ChangeProtocolState: suspend, resume or revoke the version in force.
    pub async fn change_protocol_state(
        &self,
        caller: &Caller,
        protocol_id: &str,
        state: ProtocolState,
    ) -> Result<RegisterChanged, BrokerError> {
        let checked = validate::protocol_id("protocol_id", protocol_id);
        let protocol_id = self
            .audited(
                caller,
                Operation::ChangeProtocolState,
                Target::Nothing,
                checked,
            )
            .await?;
        let event = ProtocolEvent::StateChanged {
            protocol_id: protocol_id.clone(),
            // The ledger sets the version in force when it sequences the change.
            version: 0,
            state,
        };
        let index = self
            .change_register(caller, Operation::ChangeProtocolState, event, None)
            .await?;
        Ok(RegisterChanged {
            log_index: index,
            register: self.ledger.protocols(),
            protocol_id,
            version: None,
        })
    }

    async fn change_register(
        &self,
        caller: &Caller,
        op: Operation,
        event: ProtocolEvent,
        document: Option<BodyEntry>,
    ) -> Result<u64, BrokerError> {
        let record = Record {
            time_ms: self.clock.now_ms(),
            actor: caller.actor(),
            event: Event::Protocol(event),
        };
        let changed = self.ledger.change_register(record, document).await;
        let receipt = self.audited(caller, op, Target::Nothing, changed).await?;
        Ok(receipt.log_index)
    }

    /// The register as the caller may see it: all of it for administrators and auditors; for an
    /// agency, the versions it is party to.
    pub fn protocols_visible(&self, caller: &Caller) -> VisibleRegister {
        VisibleRegister {
            register: self.ledger.protocols(),
            party: (caller.principal.role == Role::Agency).then(|| caller.principal.id.clone()),
        }
    }

    /// GetProtocol: a version (0: the one in force, else the latest) of a protocol the caller
    /// may see; an agency's attempt to read a protocol it is no party to is logged.
    pub async fn get_protocol(
        &self,
        caller: &Caller,
        protocol_id: &str,
        version: u32,
    ) -> Result<crate::protocol::Entry, BrokerError> {
        let visible = self.protocols_visible(caller);
        let store = &visible.register;
        let found = validate::protocol_id("protocol_id", protocol_id).and_then(|id| {
            match version {
                0 => store.in_force(&id).or_else(|| store.versions(&id).last()),
                v => store.get(&id, v),
            }
            .filter(|e| visible.shows(e))
            .cloned()
            .ok_or_else(|| BrokerError::NotFound(format!("no protocol {id:?} is visible to you")))
        });
        self.audited(caller, Operation::GetProtocol, Target::Nothing, found)
            .await
    }
}
