//! The one place a [`BrokerError`] becomes a gRPC status. Every status carries a
//! `google.rpc.ErrorInfo` whose `reason` is the stable reason code (domain `infoshare.nz`), so a
//! client in any language can branch on it; policy denials add the rule in its metadata, and bad
//! input adds a `BadRequest` naming the field.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::BrokerError;
use crate::reason::Class;

/// The response header that repeats a failed call's reason code.
pub const REASON_HEADER: &str = "infoshare-reason";

/// The ErrorInfo domain of infoshare errors.
pub const ERROR_DOMAIN: &str = "infoshare.nz";

/// The status of a failed call (the one place a [`BrokerError`] becomes a status).
pub fn of(e: BrokerError) -> Status {
    {
        let (e, receipt) = match e {
            BrokerError::Logged { error, receipt } => (*error, Some(receipt)),
            e => (e, None),
        };
        let code = match e.reason().class() {
            Class::InvalidArgument => Code::InvalidArgument,
            Class::Unauthenticated => Code::Unauthenticated,
            Class::PermissionDenied => Code::PermissionDenied,
            Class::FailedPrecondition => Code::FailedPrecondition,
            Class::NotFound => Code::NotFound,
            Class::AlreadyExists => Code::AlreadyExists,
            Class::ResourceExhausted => Code::ResourceExhausted,
            Class::Unavailable => Code::Unavailable,
            Class::Internal => Code::Internal,
        };
        let mut metadata = HashMap::new();
        if let BrokerError::Denied(d) = &e {
            metadata.insert("rule".to_string(), d.rule.to_string());
        }
        if let Some(r) = receipt {
            // The refusal's own receipt: proof that it was logged.
            use base64::Engine;
            use prost::Message;
            metadata.insert("log_index".to_string(), r.log_index.to_string());
            let encoded = super::convert::receipt(&r).encode_to_vec();
            metadata.insert(
                "receipt".to_string(),
                base64::engine::general_purpose::STANDARD.encode(encoded),
            );
        }
        let mut details = ErrorDetails::with_error_info(e.reason_code(), ERROR_DOMAIN, metadata);
        if let BrokerError::InvalidArgument { field, message } = &e {
            details.add_bad_request_violation(field.clone(), message.clone());
        }
        if matches!(e, BrokerError::Internal(_)) {
            tracing::error!(error = %e, "internal error");
        }
        let mut status = Status::with_error_details(code, e.to_string(), details);
        // Also as plain metadata, for the telemetry layer (it reads headers, not details).
        if let Ok(reason) = e.reason_code().parse() {
            status.metadata_mut().insert(REASON_HEADER, reason);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Denial;
    use crate::reason::Reason;

    #[test]
    fn denials_carry_reason_and_rule() {
        let status = of(BrokerError::Denied(Denial {
            rule: "party.requester_is_party",
            reason: Reason::NotAParty,
            message: "Police is not a party to this protocol.".into(),
        }));
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "NOT_A_PARTY");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["rule"], "party.requester_is_party");
    }

    #[test]
    fn bad_input_names_the_field() {
        let status = of(BrokerError::invalid("request.purpose", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "request.purpose: is required");
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "request.purpose");
    }
}
