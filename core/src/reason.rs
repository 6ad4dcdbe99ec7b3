//! The closed set of reason codes the broker can return: each with its gRPC class, the law,
//! template clause or broker rule it applies, and a sentence for a caseworker. A refusal names
//! one of these; nothing else reaches a client's `google.rpc.ErrorInfo.reason`. README.md's
//! reason-code table lists exactly these (a test checks it).

/// How a reason maps onto gRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// INVALID_ARGUMENT: the input is malformed; the status names the field.
    InvalidArgument,
    /// UNAUTHENTICATED: the certificate names no registered principal.
    Unauthenticated,
    /// PERMISSION_DENIED: the caller may not do this.
    PermissionDenied,
    /// FAILED_PRECONDITION: the state of a register or an exchange does not allow it now.
    FailedPrecondition,
    /// NOT_FOUND: nothing of that id is visible to the caller.
    NotFound,
    /// ALREADY_EXISTS: an idempotency key or a register entry is taken.
    AlreadyExists,
    /// RESOURCE_EXHAUSTED: the caller is over one of its limits; retry later.
    ResourceExhausted,
    /// UNAVAILABLE: the broker cannot write now (storage failed or it is stopping).
    Unavailable,
    /// INTERNAL: a bug, or the log and the views disagree.
    Internal,
}

macro_rules! reasons {
    ($($variant:ident = $code:literal, $class:ident, $basis:literal, $sentence:literal;)+) => {
        /// A reason code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason { $(#[doc = $sentence] $variant,)+ }

        impl Reason {
            /// Every reason, in the README's order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The stable code (`NOT_A_PARTY`).
            pub fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)+ }
            }

            /// The gRPC class.
            pub fn class(self) -> Class {
                match self { $(Reason::$variant => Class::$class,)+ }
            }

            /// What it applies: a statute, a template clause or a broker rule.
            pub fn basis(self) -> &'static str {
                match self { $(Reason::$variant => $basis,)+ }
            }

            /// What it means, for a caseworker.
            pub fn sentence(self) -> &'static str {
                match self { $(Reason::$variant => $sentence,)+ }
            }

            /// The reason with this code.
            pub fn parse(code: &str) -> Option<Self> {
                match code { $($code => Some(Reason::$variant),)+ _ => None }
            }
        }
    };
}

reasons! {
    InvalidArgument = "INVALID_ARGUMENT", InvalidArgument, "input validation",
        "A field is missing or malformed; the field is named.";
    UnregisteredIdentity = "UNREGISTERED_IDENTITY", Unauthenticated, "registry",
        "The client certificate names no registered principal.";
    RoleNotAllowed = "ROLE_NOT_ALLOWED", PermissionDenied, "least privilege per role",
        "The caller's role may not call this operation.";
    UnknownAgency = "UNKNOWN_AGENCY", FailedPrecondition, "registry",
        "The other agency is not registered with the broker.";
    ProtocolNotActive = "PROTOCOL_NOT_ACTIVE", FailedPrecondition, "template §12",
        "The protocol is not registered, or not approved yet.";
    ProtocolSuspended = "PROTOCOL_SUSPENDED", FailedPrecondition, "template §12",
        "The protocol is suspended.";
    ProtocolRevoked = "PROTOCOL_REVOKED", FailedPrecondition, "template §12",
        "The protocol has been revoked.";
    ProtocolReviewOverdue = "PROTOCOL_REVIEW_OVERDUE", FailedPrecondition, "template §12",
        "The protocol is past its review date (a New Zealand date).";
    NotAParty = "NOT_A_PARTY", PermissionDenied, "template §2",
        "An agency is not a party to the protocol.";
    AuthorityNotForPurpose = "AUTHORITY_NOT_FOR_PURPOSE", PermissionDenied, "template §3",
        "The protocol does not rely on that authority for that purpose.";
    AuthorityNotEligible = "AUTHORITY_NOT_ELIGIBLE", PermissionDenied, "s66C OTA; s20 FVA",
        "s66C: only child welfare and protection agencies and independent persons; s20: only family violence agencies and social services practitioners.";
    SubjectNotChildOrYoungPerson = "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON", PermissionDenied, "s2 and s66C OTA",
        "s66C covers people under 18 on the New Zealand date of the request.";
    PurposeNotPermitted = "PURPOSE_NOT_PERMITTED", PermissionDenied, "template §4",
        "Not one of that party's purposes under the protocol (to request, or to share).";
    CategoryNotShareable = "CATEGORY_NOT_SHAREABLE", PermissionDenied, "template §5",
        "The agency does not share that category under the protocol.";
    ClassificationBelowMinimum = "CLASSIFICATION_BELOW_MINIMUM", PermissionDenied, "template §5, §9",
        "Personal information is IN-CONFIDENCE at minimum.";
    ClassificationBelowProtocol = "CLASSIFICATION_BELOW_PROTOCOL", PermissionDenied, "template §5, §9; PSR",
        "Labelled below the classification the protocol sets for the category.";
    ClassificationAboveProtocol = "CLASSIFICATION_ABOVE_PROTOCOL", PermissionDenied, "template §5, §9",
        "Labelled above the classification the protocol sets for the category.";
    ClassificationAboveClearance = "CLASSIFICATION_ABOVE_CLEARANCE", PermissionDenied, "PSR",
        "Above what the receiving agency is cleared for (the higher of the label and the protocol's classification).";
    ConsultationRecordMissing = "CONSULTATION_RECORD_MISSING", FailedPrecondition, "s66C guidance",
        "s66C sharing must record whether the child or young person was consulted, and if not why.";
    DisclosureNotRequested = "DISCLOSURE_NOT_REQUESTED", PermissionDenied, "s66C, s20 (on request)",
        "A response may disclose only the categories asked for (anything else is a proactive disclosure).";
    DisclosureIncomplete = "DISCLOSURE_INCOMPLETE", PermissionDenied, "s66I, s66J OTA",
        "A full disclosure covers every category requested; otherwise it is a partial disclosure with a ground and reasons.";
    NotTheRecipient = "NOT_THE_RECIPIENT", PermissionDenied, "s66H OTA; s24 FVA",
        "Only the agency asked can answer.";
    DeclineReasonMissing = "DECLINE_REASON_MISSING", FailedPrecondition, "s66J OTA",
        "Withholding needs a ground and reasons.";
    RequestPurged = "REQUEST_PURGED", FailedPrecondition, "retention (template §6)",
        "The request's bodies were erased at the end of retention: it can no longer be answered.";
    NotFound = "NOT_FOUND", NotFound, "visibility",
        "Nothing of that id is visible to the caller (an attempt is logged).";
    NotARequest = "NOT_A_REQUEST", FailedPrecondition, "exchange lifecycle",
        "A proactive disclosure cannot be answered.";
    AlreadyAnswered = "ALREADY_ANSWERED", FailedPrecondition, "exchange lifecycle",
        "A request is answered once.";
    NoResponseYet = "NO_RESPONSE_YET", FailedPrecondition, "exchange lifecycle",
        "There is no answer to acknowledge yet.";
    NotTheRequester = "NOT_THE_REQUESTER", PermissionDenied, "exchange lifecycle",
        "Only the agency that made a request can withdraw it or send it on.";
    RequestWithdrawn = "REQUEST_WITHDRAWN", FailedPrecondition, "exchange lifecycle",
        "The requester withdrew the request: it can no longer be answered.";
    RequestExpired = "REQUEST_EXPIRED", FailedPrecondition, "collection window (protocol)",
        "The request expired unacknowledged: it can no longer be acknowledged or answered; the requester may send it again.";
    NotAnsweredYet = "NOT_ANSWERED_YET", FailedPrecondition, "exchange lifecycle",
        "Only a request that has been answered can be updated.";
    NotResendable = "NOT_RESENDABLE", FailedPrecondition, "exchange lifecycle",
        "Only a request that expired, or whose answer withheld information as not held, can be sent on.";
    ReferralNotParty = "REFERRAL_NOT_PARTY", PermissionDenied, "template §2",
        "A referral must name another party to the same protocol (not the requester or the responder).";
    NoNotice = "NO_NOTICE", FailedPrecondition, "exchange lifecycle",
        "There is no notice about that exchange to acknowledge.";
    WrongMessageKind = "WRONG_MESSAGE_KIND", FailedPrecondition, "exchange lifecycle",
        "Acknowledged as the wrong kind (request, response, disclosure, update or notice), or an update or withdrawal of what is no request.";
    NotAddressedToCaller = "NOT_ADDRESSED_TO_CALLER", PermissionDenied, "exchange lifecycle",
        "Only the agency a message was sent to acknowledges it.";
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED", AlreadyExists, "idempotency",
        "The idempotency key was used for different content.";
    ApproverIsRegistrant = "APPROVER_IS_REGISTRANT", FailedPrecondition, "template §12 (two people)",
        "A protocol is approved by an administrator other than the one who registered it.";
    ProtocolVersionConflict = "PROTOCOL_VERSION_CONFLICT", FailedPrecondition, "protocol register",
        "That protocol version exists already, or is not the next one.";
    ProtocolNotDraft = "PROTOCOL_NOT_DRAFT", FailedPrecondition, "protocol register",
        "Only a draft can be approved.";
    ProtocolStateConflict = "PROTOCOL_STATE_CONFLICT", FailedPrecondition, "protocol register",
        "The protocol's state does not allow that change.";
    LegalHoldConflict = "LEGAL_HOLD_CONFLICT", FailedPrecondition, "legal hold",
        "That hold is already in place, or there is no such hold to release.";
    RateLimited = "RATE_LIMITED", ResourceExhausted, "limits",
        "Over the call rate; retry with backoff.";
    TooManyStreams = "TOO_MANY_STREAMS", ResourceExhausted, "limits",
        "Too many inbox streams open for this principal.";
    StorageUnavailable = "STORAGE_UNAVAILABLE", Unavailable, "durability (fail-stop)",
        "Storage failed; writes are refused until the broker restarts.";
    Internal = "INTERNAL", Internal, "—",
        "A bug or an inconsistency; reported to the operator.";
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.code()), Some(*r));
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    /// The README's reason-code table lists exactly the codes the server can return.
    #[test]
    fn the_readme_lists_exactly_these_codes() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("<!-- reason codes -->")
            .nth(1)
            .expect("README.md marks its reason-code table with <!-- reason codes -->");
        let mut listed: Vec<(&str, &str)> = table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| {
                let mut cells = l.trim_start_matches('|').split('|').map(str::trim);
                let code = cells.next().unwrap().trim_matches('`');
                (code, cells.next().unwrap_or(""))
            })
            .collect();
        let status = |c: Class| match c {
            Class::InvalidArgument => "INVALID_ARGUMENT",
            Class::Unauthenticated => "UNAUTHENTICATED",
            Class::PermissionDenied => "PERMISSION_DENIED",
            Class::FailedPrecondition => "FAILED_PRECONDITION",
            Class::NotFound => "NOT_FOUND",
            Class::AlreadyExists => "ALREADY_EXISTS",
            Class::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Class::Unavailable => "UNAVAILABLE",
            Class::Internal => "INTERNAL",
        };
        let mut codes: Vec<(&str, &str)> = Reason::ALL
            .iter()
            .map(|r| (r.code(), status(r.class())))
            .collect();
        listed.sort();
        codes.sort();
        assert_eq!(listed, codes);
    }
}
