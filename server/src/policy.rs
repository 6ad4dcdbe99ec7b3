//! The lawful-sharing policy: one pure function per kind of attempt, over the validated input,
//! the agency registry and the protocol register. Deny by default; every denial names its rule.
//!
//! This is the seam the "Protocol registry and lawful-sharing policy" issue fills in. For now it
//! accepts every well-formed request and response: well-formedness itself is checked in
//! `validate`, and state (who may answer, once) in the sequencer.

use crate::registry::{Agency, Registry};
use crate::validate::{ValidRequest, ValidResponse};

/// How a denial maps onto gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// The caller is not allowed (PERMISSION_DENIED).
    NotPermitted,
    /// The state of a register does not allow it now (FAILED_PRECONDITION).
    Precondition,
}

/// A refusal by a named rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule's name, e.g. `party.requester_is_party`.
    pub rule: &'static str,
    /// Stable machine-readable reason code, e.g. `NOT_A_PARTY`.
    pub reason_code: &'static str,
    /// A sentence a caseworker understands.
    pub message: String,
    /// How it maps onto gRPC.
    pub kind: DenialKind,
}

/// The registered information-sharing protocols (filled in by the protocol register issue).
#[derive(Debug, Default)]
pub struct ProtocolStore {}

/// Checks a request from `requester` (already validated) against the law and the protocol.
pub fn check_request(
    _requester: &Agency,
    _request: &ValidRequest,
    _registry: &Registry,
    _protocols: &ProtocolStore,
) -> Result<(), Denial> {
    Ok(())
}

/// Checks a response by `responder` to a request whose metadata is `original`.
pub fn check_response(
    _responder: &Agency,
    _response: &ValidResponse,
    _original: &crate::records::RequestSubmitted,
    _registry: &Registry,
    _protocols: &ProtocolStore,
) -> Result<(), Denial> {
    Ok(())
}
