//! The lawful-sharing policy: pure functions over the validated input, the agency registry, the
//! protocol register and today's date. Deny by default: an attempt is allowed only when every
//! rule in [`rules`] allows it, and the first rule that says no is the reason given.
//!
//! The rules come from `../shared/domain.md`: s66C Oranga Tamariki Act 1989, s20 Family Violence
//! Act 2018, the multi-agency information-sharing protocol template, and the Protective Security
//! Requirements' classifications.

pub mod rules;
#[cfg(test)]
pub(crate) mod tests;

use time::Date;

use crate::domain::{Authority, Classification};
use crate::protocol::ProtocolStore;
use crate::reason::Reason;
use crate::records::RequestSubmitted;
use crate::registry::{Agency, Registry};
use crate::validate::{ValidDisclosure, ValidRequest, ValidResponse, ValidUpdate};

pub use crate::error::Denial;

/// What an allowed request, response or disclosure is judged under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The protocol version in force.
    pub protocol_version: u32,
}

fn recipient<'a>(registry: &'a Registry, id: &str) -> Result<&'a Agency, Denial> {
    registry.agency(id).ok_or_else(|| Denial {
        rule: "party.recipient_registered",
        reason: Reason::UnknownAgency,
        message: format!("No agency {id:?} is registered with the broker."),
    })
}

/// Checks a request from `requester` to the agency it names, under the protocol it names.
pub fn check_request(
    requester: &Agency,
    request: &ValidRequest,
    registry: &Registry,
    protocols: &ProtocolStore,
    today: Date,
) -> Result<Allowed, Denial> {
    use rules::*;
    let recipient = recipient(registry, &request.recipient)?;
    let entry = protocol_in_force(protocols, &request.protocol_id)?;
    protocol_review_current(entry, today)?;
    let p = &entry.protocol;
    let asking = party(p, requester, "party.requester")?;
    let asked = party(p, recipient, "party.recipient")?;
    authority_for_purpose(p, request.authority, &request.purpose)?;
    agency_eligible(requester, request.authority, "authority.requester_eligible")?;
    agency_eligible(recipient, request.authority, "authority.recipient_eligible")?;
    subject_is_child_or_young_person(request.authority, request.subject.date_of_birth, today)?;
    may_request_for(asking, &request.purpose)?;
    // The request itself must be answerable lawfully: the recipient may share for the purpose
    // and shares every category asked for.
    may_share_for(asked, &request.purpose, "purpose.recipient_may_share")?;
    let mut highest = Classification::Unclassified;
    for category in &request.categories {
        let shared = category_shareable(asked, category)?;
        // The answer will come back at (at least) the category's classification: the requester
        // must be cleared for it.
        classification_within_clearance(
            shared.classification,
            requester,
            "classification.answer_within_requester_clearance",
        )?;
        highest = highest.max(shared.classification);
    }
    // The request names the subject and the categories asked about: it is classified at
    // least as the highest of them.
    classification_minimum(request.classification)?;
    classification_not_below_protocol(request.classification, highest)?;
    classification_within_protocol(request.classification, highest)?;
    classification_within_clearance(
        effective_classification(request.classification, highest),
        recipient,
        "classification.within_recipient_clearance",
    )?;
    consultation_recorded(request.authority, request.consultation)?;
    Ok(Allowed {
        protocol_version: p.version,
    })
}

/// Checks a response by `responder` to the request `original` (whose requester is
/// `original_requester`).
pub fn check_response(
    responder: &Agency,
    response: &ValidResponse,
    original_requester: &str,
    original: &RequestSubmitted,
    registry: &Registry,
    protocols: &ProtocolStore,
    today: Date,
) -> Result<Allowed, Denial> {
    use rules::*;
    from_recipient(responder, &original.recipient)?;
    decline_has_reason(
        response.decision,
        response.ground,
        &response.body.explanation,
    )?;
    let (p, sharing, requester) = answer_basis(
        responder,
        original_requester,
        original,
        registry,
        protocols,
        today,
    )?;
    disclose_covers_request(response.decision, &response.items, &original.categories)?;
    if !response.referral.is_empty() {
        referral_is_party(p, &response.referral, responder, requester)?;
    }
    answered_items(
        sharing,
        requester,
        &response.items,
        response.consultation,
        original,
    )?;
    Ok(Allowed {
        protocol_version: p.version,
    })
}

/// Checks an update by `updater` of the request `original` (whose requester is
/// `original_requester`): checked like a response that discloses (the protocol, the parties,
/// the purpose, only categories requested, classifications, consultation), without the rules
/// on withholding (an update adds to an answer; it withholds nothing).
pub fn check_update(
    updater: &Agency,
    update: &ValidUpdate,
    original_requester: &str,
    original: &RequestSubmitted,
    registry: &Registry,
    protocols: &ProtocolStore,
    today: Date,
) -> Result<Allowed, Denial> {
    rules::from_recipient(updater, &original.recipient)?;
    let (p, sharing, requester) = answer_basis(
        updater,
        original_requester,
        original,
        registry,
        protocols,
        today,
    )?;
    answered_items(
        sharing,
        requester,
        &update.items,
        update.consultation,
        original,
    )?;
    Ok(Allowed {
        protocol_version: p.version,
    })
}

/// The rules every answer (a response or an update) to `original` must meet, whatever it
/// discloses: the protocol in force and reviewed, both agencies its parties and eligible under
/// the request's authority, which the protocol relies on for its purpose. The protocol, the
/// responder's party entry and the requester.
fn answer_basis<'a>(
    responder: &Agency,
    original_requester: &str,
    original: &RequestSubmitted,
    registry: &'a Registry,
    protocols: &'a ProtocolStore,
    today: Date,
) -> Result<
    (
        &'a crate::protocol::Protocol,
        &'a crate::protocol::Party,
        &'a Agency,
    ),
    Denial,
> {
    use rules::*;
    let requester = recipient(registry, original_requester)?;
    let entry = protocol_in_force(protocols, &original.protocol_id)?;
    protocol_review_current(entry, today)?;
    let p = &entry.protocol;
    let sharing = party(p, responder, "party.responder")?;
    party(p, requester, "party.requester")?;
    agency_eligible(
        responder,
        original.authority,
        "authority.responder_eligible",
    )?;
    agency_eligible(
        requester,
        original.authority,
        "authority.requester_eligible",
    )?;
    authority_for_purpose(p, original.authority, &original.purpose)?;
    Ok((p, sharing, requester))
}

/// The rules on what an answer (a response or an update) discloses: for the request's
/// purpose, with the consultation recorded, only categories requested, each classified as the
/// protocol sets and within the requester's clearance.
fn answered_items(
    sharing: &crate::protocol::Party,
    requester: &Agency,
    items: &[(String, Classification)],
    consultation: Option<crate::domain::Consultation>,
    original: &RequestSubmitted,
) -> Result<(), Denial> {
    use rules::*;
    if !items.is_empty() {
        may_share_for(sharing, &original.purpose, "purpose.sharer_may_share")?;
        consultation_recorded(original.authority, consultation)?;
    }
    for (category, class) in items {
        disclosed_was_requested(category, &original.categories)?;
        let shared = category_shareable(sharing, category)?;
        items_classified(*class, shared.classification, requester)?;
    }
    Ok(())
}

/// Checks a proactive disclosure ("on its own initiative": s66C; s20) by `discloser`.
pub fn check_disclosure(
    discloser: &Agency,
    disclosure: &ValidDisclosure,
    registry: &Registry,
    protocols: &ProtocolStore,
    today: Date,
) -> Result<Allowed, Denial> {
    use rules::*;
    let recipient = recipient(registry, &disclosure.recipient)?;
    let entry = protocol_in_force(protocols, &disclosure.protocol_id)?;
    protocol_review_current(entry, today)?;
    let p = &entry.protocol;
    let sharing = party(p, discloser, "party.discloser")?;
    party(p, recipient, "party.recipient")?;
    authority_for_purpose(p, disclosure.authority, &disclosure.purpose)?;
    agency_eligible(
        discloser,
        disclosure.authority,
        "authority.discloser_eligible",
    )?;
    agency_eligible(
        recipient,
        disclosure.authority,
        "authority.recipient_eligible",
    )?;
    subject_is_child_or_young_person(
        disclosure.authority,
        disclosure.subject.date_of_birth,
        today,
    )?;
    may_share_for(sharing, &disclosure.purpose, "purpose.sharer_may_share")?;
    for (category, class) in &disclosure.items {
        let shared = category_shareable(sharing, category)?;
        items_classified(*class, shared.classification, recipient)?;
    }
    consultation_recorded(disclosure.authority, disclosure.consultation)?;
    Ok(Allowed {
        protocol_version: p.version,
    })
}

/// The classification rules for one disclosed item labelled `label` of a category the protocol
/// classifies `protocol`, going to `receiver`.
fn items_classified(
    label: Classification,
    protocol: Classification,
    receiver: &Agency,
) -> Result<(), Denial> {
    use rules::*;
    classification_minimum(label)?;
    classification_not_below_protocol(label, protocol)?;
    classification_within_protocol(label, protocol)?;
    classification_within_clearance(
        effective_classification(label, protocol),
        receiver,
        "classification.within_recipient_clearance",
    )
}

/// Whether `authority` requires the subject to be a child or young person.
pub fn requires_child_or_young_person(authority: Authority) -> bool {
    matches!(authority, Authority::OtaS66C)
}
