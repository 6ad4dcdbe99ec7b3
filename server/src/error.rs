//! The one error type of the broker's core and store, mapped to a gRPC status in exactly one
//! place (`service::status`).

use crate::policy::Denial;

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
    /// The operation does not fit the current state.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable machine-readable reason.
        reason_code: &'static str,
        /// For people.
        message: String,
    },
    /// An idempotency key was reused for a different request.
    #[error("{0}")]
    Conflict(String),
    /// The caller is over one of its limits.
    #[error("{message}")]
    Exhausted {
        /// Stable reason code (RATE_LIMITED, TOO_MANY_STREAMS).
        reason_code: &'static str,
        /// For people.
        message: String,
    },
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
        receipt: Box<crate::store::ledger::Receipt>,
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

    /// The stable reason code of the error.
    pub fn reason_code(&self) -> &str {
        match self {
            BrokerError::InvalidArgument { .. } => "INVALID_ARGUMENT",
            BrokerError::Unauthenticated(_) => "UNREGISTERED_IDENTITY",
            BrokerError::RoleNotAllowed { .. } => "ROLE_NOT_ALLOWED",
            BrokerError::Denied(d) => d.reason_code,
            BrokerError::NotFound(_) => "NOT_FOUND",
            BrokerError::FailedPrecondition { reason_code, .. } => reason_code,
            BrokerError::Conflict(_) => "IDEMPOTENCY_KEY_REUSED",
            BrokerError::Unavailable(_) => "STORAGE_UNAVAILABLE",
            BrokerError::Exhausted { reason_code, .. } => reason_code,
            BrokerError::Internal(_) => "INTERNAL",
            BrokerError::Logged { error, .. } => error.reason_code(),
        }
    }
}

impl From<crate::views::ViewError> for BrokerError {
    fn from(e: crate::views::ViewError) -> Self {
        BrokerError::Internal(e.to_string())
    }
}
