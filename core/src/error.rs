//! The one error type of the broker's core and store, mapped to a gRPC status in exactly one
//! place (`service::status`).

use crate::reason::Reason;

/// A refusal by a named rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule's name, e.g. `party.requester`.
    pub rule: &'static str,
    /// The reason, e.g. `NOT_A_PARTY` (its class says how it maps onto gRPC).
    pub reason: Reason,
    /// A sentence a caseworker understands.
    pub message: String,
}

/// Why an operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The input is malformed; `field` names the offending field.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field path, e.g. `request.subject.date_of_birth`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The caller is not a registered principal.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role may not call this operation.
    #[error("role {role} may not call {operation}")]
    RoleNotAllowed {
        /// The caller's role.
        role: &'static str,
        /// The RPC.
        operation: &'static str,
    },
    /// A policy rule refused the operation.
    #[error("{}", .0.message)]
    Denied(Denial),
    /// The thing named does not exist, or is not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the current state of an exchange or a register, or the
    /// caller is over one of its limits.
    #[error("{message}")]
    Refused {
        /// The reason (its class says how it maps onto gRPC).
        reason: Reason,
        /// For people.
        message: String,
    },
    /// An idempotency key was reused for a different request.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed; the broker refuses writes until it is restarted.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an inconsistency between the log and the views.
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal that was logged: the error, with the receipt of its Denied record.
    #[error("{error}")]
    Logged {
        /// The refusal.
        error: Box<BrokerError>,
        /// Proof that the refusal is in the log.
        receipt: Box<infoshare_tlog::Receipt>,
    },
}

impl BrokerError {
    /// An [`BrokerError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A [`BrokerError::Refused`] for `reason`.
    pub fn refused(reason: Reason, message: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            message: message.into(),
        }
    }

    /// The error's reason.
    pub fn reason(&self) -> Reason {
        match self {
            BrokerError::InvalidArgument { .. } => Reason::InvalidArgument,
            BrokerError::Unauthenticated(_) => Reason::UnregisteredIdentity,
            BrokerError::RoleNotAllowed { .. } => Reason::RoleNotAllowed,
            BrokerError::Denied(d) => d.reason,
            BrokerError::NotFound(_) => Reason::NotFound,
            BrokerError::Refused { reason, .. } => *reason,
            BrokerError::Conflict(_) => Reason::IdempotencyKeyReused,
            BrokerError::Unavailable(_) => Reason::StorageUnavailable,
            BrokerError::Internal(_) => Reason::Internal,
            BrokerError::Logged { error, .. } => error.reason(),
        }
    }

    /// The stable reason code of the error.
    pub fn reason_code(&self) -> &'static str {
        self.reason().code()
    }
}

impl From<crate::views::ViewError> for BrokerError {
    fn from(e: crate::views::ViewError) -> Self {
        BrokerError::Internal(e.to_string())
    }
}
