//! The policy rules, one small function each, with the law or template clause it applies.
//! Each returns the [`Denial`] it stands for, with a stable reason code and a sentence for a
//! caseworker.

use time::Date;

use super::{Denial, requires_child_or_young_person};
use crate::domain::{Authority, Classification, Consultation, Decision, DeclineGround};
use crate::protocol::{Entry, Party, Protocol, ProtocolState, ProtocolStore, SharedCategory};
use crate::reason::Reason;
use crate::registry::Agency;

fn deny(rule: &'static str, reason: Reason, message: String) -> Denial {
    Denial {
        rule,
        reason,
        message,
    }
}

/// Age below which a person is a child or young person (s2 Oranga Tamariki Act 1989: a young
/// person is 14 or over but under 18). **(verify for s66C: some Parts extend the age.)**
pub const CHILD_OR_YOUNG_PERSON_UNDER: i32 = 18;

/// Template §12 (central register; approval): sharing relies on a registered protocol whose
/// approved version is in force — not a draft, not suspended, not revoked.
pub fn protocol_in_force<'a>(protocols: &'a ProtocolStore, id: &str) -> Result<&'a Entry, Denial> {
    let Some(entry) = protocols.in_force(id) else {
        let message = if protocols.versions(id).is_empty() {
            format!("No information-sharing protocol {id:?} is registered.")
        } else {
            format!("Protocol {id:?} has not been approved yet, so it authorises nothing.")
        };
        return Err(deny(
            "protocol.in_force",
            Reason::ProtocolNotActive,
            message,
        ));
    };
    match entry.state {
        ProtocolState::Active => Ok(entry),
        ProtocolState::Suspended => Err(deny(
            "protocol.in_force",
            Reason::ProtocolSuspended,
            format!("Protocol {id:?} is suspended: no sharing under it until it is resumed."),
        )),
        _ => Err(deny(
            "protocol.in_force",
            Reason::ProtocolRevoked,
            format!("Protocol {id:?} has been revoked: it authorises no sharing."),
        )),
    }
}

/// Template §12 (review period): past its review date a protocol no longer authorises sharing.
pub fn protocol_review_current(entry: &Entry, today: Date) -> Result<(), Denial> {
    if entry.review_overdue(today) {
        return Err(deny(
            "protocol.review_current",
            Reason::ProtocolReviewOverdue,
            format!(
                "Protocol {:?} was due for review on {} and has not been reviewed, so it no longer authorises sharing.",
                entry.protocol.id,
                entry
                    .protocol
                    .review_date()
                    .map_or_else(|| "an invalid date".to_string(), |d| d.to_string())
            ),
        ));
    }
    Ok(())
}

/// Template §2 (attending agencies): only the protocol's parties share under it.
pub fn party<'a>(
    p: &'a Protocol,
    agency: &Agency,
    rule: &'static str,
) -> Result<&'a Party, Denial> {
    p.party(&agency.id).ok_or_else(|| {
        deny(
            rule,
            Reason::NotAParty,
            format!("{} is not a party to protocol {:?}.", agency.name, p.id),
        )
    })
}

/// Template §3 (legal authority for each purpose): the authority relied on must be one the
/// protocol relies on for this purpose.
pub fn authority_for_purpose(
    p: &Protocol,
    authority: Authority,
    purpose: &str,
) -> Result<(), Denial> {
    if p.authorises(authority, purpose) {
        return Ok(());
    }
    Err(deny(
        "authority.for_purpose",
        Reason::AuthorityNotForPurpose,
        format!(
            "Protocol {:?} does not rely on {authority} for the purpose {purpose:?}.",
            p.id
        ),
    ))
}

/// Template §2 (attending agencies): an answer that declines as not held may suggest another
/// agency that may hold the information, and it must be a party to the same protocol (the
/// request sent on is made under it), other than the two already in the exchange.
pub fn referral_is_party(
    p: &Protocol,
    referral: &str,
    responder: &Agency,
    requester: &Agency,
) -> Result<(), Denial> {
    if referral != responder.id && referral != requester.id && p.party(referral).is_some() {
        return Ok(());
    }
    Err(deny(
        "referral.party",
        Reason::ReferralNotParty,
        format!(
            "{referral:?} cannot be suggested: a referral names another party to protocol {:?}, not the requester or the responder.",
            p.id
        ),
    ))
}

/// s66C(1) OTA / s20 FVA: both the one sharing and the one receiving must be of the kinds the
/// section names.
pub fn agency_eligible(
    agency: &Agency,
    authority: Authority,
    rule: &'static str,
) -> Result<(), Denial> {
    if agency.may_use(authority) {
        return Ok(());
    }
    Err(deny(
        rule,
        Reason::AuthorityNotEligible,
        format!(
            "{} cannot share under {authority}: only {} can.",
            agency.name,
            authority.eligible_in_words()
        ),
    ))
}

/// s66C OTA applies to information about a child or young person (s2: under 18 at the date of
/// the request).
pub fn subject_is_child_or_young_person(
    authority: Authority,
    dob: Date,
    today: Date,
) -> Result<(), Denial> {
    if !requires_child_or_young_person(authority) {
        return Ok(());
    }
    let mut age = today.year() - dob.year();
    if (today.month() as u8, today.day()) < (dob.month() as u8, dob.day()) {
        age -= 1;
    }
    if age < CHILD_OR_YOUNG_PERSON_UNDER {
        return Ok(());
    }
    Err(deny(
        "subject.child_or_young_person",
        Reason::SubjectNotChildOrYoungPerson,
        format!(
            "{authority} covers children and young people (under {CHILD_OR_YOUNG_PERSON_UNDER}); the subject is {age}."
        ),
    ))
}

/// Template §4 (purposes per party): the requester may request only for its own purposes.
pub fn may_request_for(party: &Party, purpose: &str) -> Result<(), Denial> {
    if party.request_purposes.iter().any(|p| p == purpose) {
        return Ok(());
    }
    Err(deny(
        "purpose.requester_may_request",
        Reason::PurposeNotPermitted,
        format!(
            "Under this protocol {} may not request information for {purpose:?}.",
            party.agency
        ),
    ))
}

/// Template §4: the one sharing may share only for its own purposes. Checked when it shares
/// (`purpose.sharer_may_share`) and already when it is asked (`purpose.recipient_may_share`): a
/// request it could not lawfully answer never reaches its inbox (domain.md §5).
pub fn may_share_for(party: &Party, purpose: &str, rule: &'static str) -> Result<(), Denial> {
    if party.share_purposes.iter().any(|p| p == purpose) {
        return Ok(());
    }
    Err(deny(
        rule,
        Reason::PurposeNotPermitted,
        format!(
            "Under this protocol {} may not share information for {purpose:?}.",
            party.agency
        ),
    ))
}

/// Template §5 (information to be shared, per party, as specific categories): a category can be
/// asked of, or shared by, only a party that may share it.
pub fn category_shareable<'a>(
    party: &'a Party,
    category: &str,
) -> Result<&'a SharedCategory, Denial> {
    party.share(category).ok_or_else(|| {
        deny(
            "category.shareable",
            Reason::CategoryNotShareable,
            format!(
                "Under this protocol {} does not share {category:?}.",
                party.agency
            ),
        )
    })
}

/// Template §5/§9: personal information is IN-CONFIDENCE at minimum.
pub fn classification_minimum(k: Classification) -> Result<(), Denial> {
    if k >= Classification::InConfidence {
        return Ok(());
    }
    Err(deny(
        "classification.personal_minimum",
        Reason::ClassificationBelowMinimum,
        format!("Personal information must be classified IN-CONFIDENCE or higher, not {k}."),
    ))
}

/// The classification a transfer is handled at: the higher of the sender's label and the
/// protocol's classification of the category (domain.md §5). Every clearance check uses it.
pub fn effective_classification(label: Classification, protocol: Classification) -> Classification {
    label.max(protocol)
}

/// Template §5/§9, domain.md §5: the protocol fixes a category's classification; a sender may
/// not label it lower.
pub fn classification_not_below_protocol(
    label: Classification,
    protocol: Classification,
) -> Result<(), Denial> {
    if label >= protocol {
        return Ok(());
    }
    Err(deny(
        "classification.not_below_protocol",
        Reason::ClassificationBelowProtocol,
        format!(
            "Labelled {label}, below {protocol}, the classification the protocol sets for this information."
        ),
    ))
}

/// Template §5/§9: nothing above the classification the protocol sets for the categories.
pub fn classification_within_protocol(
    k: Classification,
    max: Classification,
) -> Result<(), Denial> {
    if k <= max {
        return Ok(());
    }
    Err(deny(
        "classification.within_protocol",
        Reason::ClassificationAboveProtocol,
        format!(
            "{k} is above {max}, the highest classification the protocol sets for this information."
        ),
    ))
}

/// PSR: a transfer never goes above the receiving agency's clearance.
pub fn classification_within_clearance(
    k: Classification,
    agency: &Agency,
    rule: &'static str,
) -> Result<(), Denial> {
    if k <= agency.clearance {
        return Ok(());
    }
    Err(deny(
        rule,
        Reason::ClassificationAboveClearance,
        format!(
            "{} is cleared to {} and cannot receive {k} information.",
            agency.name, agency.clearance
        ),
    ))
}

/// s66C guidance (consultation): every s66C request and disclosure records whether the child or
/// young person was consulted and, if not, why.
pub fn consultation_recorded(
    authority: Authority,
    consultation: Option<Consultation>,
) -> Result<(), Denial> {
    if authority != Authority::OtaS66C || consultation.is_some() {
        return Ok(());
    }
    Err(deny(
        "consultation.recorded",
        Reason::ConsultationRecordMissing,
        "Under s66C, record whether the child or young person was consulted, and if not, why."
            .into(),
    ))
}

/// s66C / s20 (sharing on request): a response discloses only what was requested; anything else
/// is a proactive disclosure, made and checked as one.
pub fn disclosed_was_requested(category: &str, requested: &[String]) -> Result<(), Denial> {
    if requested.iter().any(|c| c == category) {
        return Ok(());
    }
    Err(deny(
        "response.only_requested",
        Reason::DisclosureNotRequested,
        format!(
            "{category:?} was not requested: a response may disclose only the categories asked for (use a proactive disclosure otherwise)."
        ),
    ))
}

/// s66H OTA / s24 FVA (the one asked must consider the request): only the agency a request was
/// sent to answers it.
pub fn from_recipient(responder: &Agency, recipient: &str) -> Result<(), Denial> {
    if responder.id == recipient {
        return Ok(());
    }
    Err(deny(
        "response.from_recipient",
        Reason::NotTheRecipient,
        format!("Only {recipient}, the agency the request was sent to, can answer it."),
    ))
}

/// s66I–s66J OTA, domain.md §5: "disclose" means everything asked for; anything requested and
/// not disclosed is withheld, which is a partial disclosure (with a ground and reasons).
pub fn disclose_covers_request(
    decision: Decision,
    disclosed: &[(String, Classification)],
    requested: &[String],
) -> Result<(), Denial> {
    let missing: Vec<&str> = requested
        .iter()
        .filter(|c| !disclosed.iter().any(|(d, _)| d == *c))
        .map(String::as_str)
        .collect();
    if decision != Decision::Disclose || missing.is_empty() {
        return Ok(());
    }
    Err(deny(
        "response.disclose_covers_request",
        Reason::DisclosureIncomplete,
        format!(
            "A full disclosure must cover every category requested; {} not disclosed: answer with a partial disclosure, a ground and reasons.",
            missing.join(", ")
        ),
    ))
}

/// s66I–s66J OTA (decline on listed grounds, with reasons); s24 FVA (duty to consider): whatever
/// is withheld is withheld on a ground, with reasons given.
pub fn decline_has_reason(
    decision: Decision,
    ground: Option<DeclineGround>,
    explanation: &str,
) -> Result<(), Denial> {
    if decision == Decision::Disclose
        || (ground.is_some() && crate::text::says_something(explanation))
    {
        return Ok(());
    }
    Err(deny(
        "response.decline_reasoned",
        Reason::DeclineReasonMissing,
        "Withholding information needs a ground and an explanation for the requester (s66J)."
            .into(),
    ))
}
