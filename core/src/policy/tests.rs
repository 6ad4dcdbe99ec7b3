//! Table-driven tests of the policy: an allowed case, and for every rule at least one case it
//! refuses, each case naming the rule it exercises. Then properties: nothing outside a protocol
//! is ever allowed, and a denial never changes state.

use proptest::prelude::*;
use time::{Date, Month};

use super::*;
use crate::domain::ProtocolState;
use crate::domain::{Consultation, Decision, DeclineGround, Urgency};
use crate::identity::Role;
use crate::protocol::model::EXAMPLES;
use crate::records::{Actor, Event, ProtocolEvent, Record, RequestId};
use crate::registry::SAMPLE_REGISTRY;
use crate::validate::{ValidDisclosure, ValidResponse, ValidSubject};

fn date(y: i32, m: u8, d: u8) -> Date {
    Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap()
}

const TODAY: (i32, u8, u8) = (2026, 11, 22);

fn today() -> Date {
    date(TODAY.0, TODAY.1, TODAY.2)
}

fn record(actor: &str, event: ProtocolEvent) -> Record {
    Record {
        time_ms: 0,
        actor: Actor {
            role: Role::Admin,
            id: actor.into(),
            cert_sha256: [0; 32],
        },
        event: Event::Protocol(event),
    }
}

/// The registration record of version 1 of a document.
fn registered(id: &str, doc: &str) -> Record {
    record(
        "registry-admin",
        ProtocolEvent::Registered {
            protocol_id: id.into(),
            version: 1,
            document_sha256: crate::crypto::sha256(doc.as_bytes()),
        },
    )
}

/// The example protocols, registered and approved.
pub(crate) fn store() -> ProtocolStore {
    let mut s = ProtocolStore::default();
    for doc in EXAMPLES {
        let p = crate::protocol::Protocol::from_toml(doc).unwrap();
        s.apply(&registered(&p.id, doc), Some(doc)).unwrap();
        s.apply(
            &record(
                "privacy-officer",
                ProtocolEvent::Approved {
                    protocol_id: p.id,
                    version: 1,
                    approver_role: "CPO".into(),
                },
            ),
            None,
        )
        .unwrap();
    }
    s
}

fn set_state(s: &mut ProtocolStore, id: &str, state: ProtocolState) {
    s.apply(
        &record(
            "registry-admin",
            ProtocolEvent::StateChanged {
                protocol_id: id.into(),
                version: 1,
                state,
            },
        ),
        None,
    )
    .unwrap();
}

fn registry_with(from: &str, to: &str) -> Registry {
    assert!(SAMPLE_REGISTRY.contains(from), "{from}");
    Registry::from_toml(&SAMPLE_REGISTRY.replacen(from, to, 1)).unwrap()
}

fn subject(dob: Date) -> ValidSubject {
    ValidSubject {
        family_name: "Ngata".into(),
        given_names: "Aroha".into(),
        date_of_birth: dob,
        identifiers: vec![],
    }
}

/// Everything a request check reads.
#[derive(Debug)]
struct Req {
    requester: &'static str,
    request: ValidRequest,
    registry: Registry,
    store: ProtocolStore,
    today: Date,
}

fn base_request() -> Req {
    Req {
        requester: "police",
        request: ValidRequest {
            recipient: "rangitoto-school-board".into(),
            authority: Authority::OtaS66C,
            protocol_id: "youth-reengagement".into(),
            purpose: "support-plan".into(),
            subject: subject(date(2012, 3, 4)),
            categories: vec!["attendance".into()],
            urgency: Urgency::Routine,
            classification: Classification::InConfidence,
            consultation: Some(Consultation::Consulted),
            staff_id: "c-1".into(),
            idempotency_key: "k".into(),
            follows: None,
            body: Default::default(),
        },
        registry: Registry::from_toml(SAMPLE_REGISTRY).unwrap(),
        store: store(),
        today: today(),
    }
}

fn run_request(r: &Req) -> Result<Allowed, Denial> {
    let requester = r.registry.agency(r.requester).unwrap();
    check_request(requester, &r.request, &r.registry, &r.store, r.today)
}

type ReqCase = (
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&mut Req),
);

#[test]
fn request_rules() {
    let cases: Vec<ReqCase> = vec![
        ("lawful s66C request", None, |_| {}),
        ("lawful s20 request without consultation", None, |r| {
            r.request.authority = Authority::FvaS20;
            r.request.protocol_id = "family-harm-sam".into();
            r.request.purpose = "fv-safety-plan".into();
            r.request.recipient = "safe-homes-trust".into();
            r.request.categories = vec!["safety-plan".into()];
            r.request.subject = subject(date(1990, 1, 1));
            r.request.consultation = None;
        }),
        ("17 today is still a young person", None, |r| {
            r.request.subject = subject(date(TODAY.0 - 18, TODAY.1, TODAY.2 + 1));
        }),
        (
            "unregistered recipient",
            Some(("party.recipient_registered", "UNKNOWN_AGENCY")),
            |r| {
                r.request.recipient = "nobody".into();
            },
        ),
        (
            "unknown protocol",
            Some(("protocol.in_force", "PROTOCOL_NOT_ACTIVE")),
            |r| {
                r.request.protocol_id = "made-up".into();
            },
        ),
        (
            "draft protocol",
            Some(("protocol.in_force", "PROTOCOL_NOT_ACTIVE")),
            |r| {
                let mut s = ProtocolStore::default();
                s.apply(
                    &registered("youth-reengagement", EXAMPLES[0]),
                    Some(EXAMPLES[0]),
                )
                .unwrap();
                r.store = s;
            },
        ),
        (
            "suspended protocol",
            Some(("protocol.in_force", "PROTOCOL_SUSPENDED")),
            |r| {
                set_state(&mut r.store, "youth-reengagement", ProtocolState::Suspended);
            },
        ),
        (
            "revoked protocol",
            Some(("protocol.in_force", "PROTOCOL_REVOKED")),
            |r| {
                set_state(&mut r.store, "youth-reengagement", ProtocolState::Revoked);
            },
        ),
        (
            "protocol past its review date",
            Some(("protocol.review_current", "PROTOCOL_REVIEW_OVERDUE")),
            |r| {
                r.today = date(2028, 1, 1);
            },
        ),
        (
            "requester not a party",
            Some(("party.requester", "NOT_A_PARTY")),
            |r| {
                r.requester = "health-nz";
            },
        ),
        (
            "recipient not a party",
            Some(("party.recipient", "NOT_A_PARTY")),
            |r| {
                r.request.recipient = "corrections".into();
            },
        ),
        (
            "authority not relied on for the purpose",
            Some(("authority.for_purpose", "AUTHORITY_NOT_FOR_PURPOSE")),
            |r| {
                r.request.authority = Authority::FvaS20;
            },
        ),
        (
            "requester no longer eligible",
            Some(("authority.requester_eligible", "AUTHORITY_NOT_ELIGIBLE")),
            |r| {
                r.registry = registry_with(
                    "kinds = [\"child-welfare-and-protection-agency\", \"family-violence-agency\"]\nsector = \"government\"\nclearance = \"SECRET\"",
                    "kinds = [\"family-violence-agency\"]\nsector = \"government\"\nclearance = \"SECRET\"",
                );
            },
        ),
        (
            "recipient not eligible",
            Some(("authority.recipient_eligible", "AUTHORITY_NOT_ELIGIBLE")),
            |r| {
                r.registry = registry_with(
                    "kinds = [\"child-welfare-and-protection-agency\", \"family-violence-agency\"]\nsector = \"government\"\nclearance = \"IN-CONFIDENCE\"",
                    "kinds = [\"family-violence-agency\"]\nsector = \"government\"\nclearance = \"IN-CONFIDENCE\"",
                );
            },
        ),
        (
            "adult subject under s66C",
            Some((
                "subject.child_or_young_person",
                "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON",
            )),
            |r| {
                r.request.subject = subject(date(TODAY.0 - 18, TODAY.1, TODAY.2));
            },
        ),
        (
            "purpose the requester may not request for",
            Some(("purpose.requester_may_request", "PURPOSE_NOT_PERMITTED")),
            |r| {
                r.requester = "msd";
                r.request.purpose = "assess-risk".into();
            },
        ),
        (
            "category the recipient does not share",
            Some(("category.shareable", "CATEGORY_NOT_SHAREABLE")),
            |r| {
                r.request.categories = vec!["care-status".into()];
            },
        ),
        (
            "a request the recipient could not lawfully answer: not its purpose to share for",
            Some(("purpose.recipient_may_share", "PURPOSE_NOT_PERMITTED")),
            |r| {
                r.request.purpose = "assess-risk".into();
                r.request.recipient = "msd".into();
                r.request.categories = vec!["youth-service-enrolment".into()];
            },
        ),
        (
            "a request about a SENSITIVE category labelled IN-CONFIDENCE",
            Some((
                "classification.not_below_protocol",
                "CLASSIFICATION_BELOW_PROTOCOL",
            )),
            |r| {
                r.request.recipient = "oranga-tamariki".into();
                r.request.categories = vec!["care-status".into()];
            },
        ),
        (
            "a request labelled at the protocol's classification",
            None,
            |r| {
                r.request.recipient = "oranga-tamariki".into();
                r.request.categories = vec!["care-status".into()];
                r.request.classification = Classification::Sensitive;
            },
        ),
        (
            "answer above the requester's clearance",
            Some((
                "classification.answer_within_requester_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |r| {
                r.requester = "rangitoto-school-board";
                r.request.recipient = "oranga-tamariki".into();
                r.request.categories = vec!["care-status".into()];
            },
        ),
        (
            "personal information marked UNCLASSIFIED",
            Some((
                "classification.personal_minimum",
                "CLASSIFICATION_BELOW_MINIMUM",
            )),
            |r| {
                r.request.classification = Classification::Unclassified;
            },
        ),
        (
            "classified above the protocol",
            Some((
                "classification.within_protocol",
                "CLASSIFICATION_ABOVE_PROTOCOL",
            )),
            |r| {
                r.request.classification = Classification::Sensitive;
            },
        ),
        (
            "above the recipient's clearance",
            Some((
                "classification.within_recipient_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |r| {
                r.request.recipient = "oranga-tamariki".into();
                r.request.categories = vec!["care-status".into()];
                r.request.classification = Classification::Sensitive;
                r.registry = registry_with(
                    "clearance = \"RESTRICTED\"",
                    "clearance = \"IN-CONFIDENCE\"",
                );
            },
        ),
        (
            "s66C without a consultation record",
            Some(("consultation.recorded", "CONSULTATION_RECORD_MISSING")),
            |r| {
                r.request.consultation = None;
            },
        ),
    ];
    for (name, expected, mutate) in cases {
        let mut r = base_request();
        mutate(&mut r);
        let got = run_request(&r);
        match (expected, got) {
            (None, Ok(allowed)) => assert_eq!(allowed.protocol_version, 1, "{name}"),
            (Some((rule, code)), Err(d)) => {
                assert_eq!(
                    (d.rule, d.reason.code()),
                    (rule, code),
                    "{name}: {}",
                    d.message
                );
                assert!(!d.message.is_empty());
            }
            (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }
}

/// Everything a response check reads.
struct Resp {
    responder: &'static str,
    requester: &'static str,
    original: RequestSubmitted,
    response: ValidResponse,
    registry: Registry,
    store: ProtocolStore,
}

fn base_response() -> Resp {
    Resp {
        responder: "rangitoto-school-board",
        requester: "police",
        original: RequestSubmitted {
            request_id: RequestId([1; 16]),
            recipient: "rangitoto-school-board".into(),
            staff: [0; 32],
            subjects: vec![],
            protocol_id: "youth-reengagement".into(),
            protocol_version: 1,
            authority: Authority::OtaS66C,
            purpose: "support-plan".into(),
            categories: vec!["attendance".into(), "learning-support".into()],
            classification: Classification::InConfidence,
            urgency: Urgency::Routine,
            consultation: Some(Consultation::Consulted),
            idempotency: [0; 32],
            body_commitment: [0; 32],
            due_ms: 0,
            expires_ms: 0,
            follows: None,
        },
        response: ValidResponse {
            request_id: RequestId([1; 16]),
            decision: Decision::PartialDisclose,
            ground: Some(DeclineGround::NotHeld),
            items: vec![("attendance".into(), Classification::InConfidence)],
            consultation: Some(Consultation::Consulted),
            staff_id: "t-1".into(),
            referral: String::new(),
            body: crate::validate::tests::response_body("Not held."),
        },
        registry: Registry::from_toml(SAMPLE_REGISTRY).unwrap(),
        store: store(),
    }
}

type RespCase = (
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&mut Resp),
);

#[test]
fn response_rules() {
    let cases: Vec<RespCase> = vec![
        ("lawful partial disclosure", None, |_| {}),
        (
            "decline with a ground and reasons, no consultation needed",
            None,
            |r| {
                r.response.decision = Decision::Decline;
                r.response.items.clear();
                r.response.consultation = None;
            },
        ),
        (
            "withholding without a ground",
            Some(("response.decline_reasoned", "DECLINE_REASON_MISSING")),
            |r| {
                r.response.ground = None;
            },
        ),
        (
            "withholding without an explanation",
            Some(("response.decline_reasoned", "DECLINE_REASON_MISSING")),
            |r| {
                r.response.body = crate::validate::tests::response_body(" ");
            },
        ),
        (
            "protocol suspended since the request",
            Some(("protocol.in_force", "PROTOCOL_SUSPENDED")),
            |r| {
                set_state(&mut r.store, "youth-reengagement", ProtocolState::Suspended);
            },
        ),
        (
            "answer from an agency the request was not sent to",
            Some(("response.from_recipient", "NOT_THE_RECIPIENT")),
            |r| {
                r.responder = "education";
            },
        ),
        (
            "responder no longer a party",
            Some(("party.responder", "NOT_A_PARTY")),
            |r| {
                r.responder = "health-nz";
                r.original.recipient = "health-nz".into();
            },
        ),
        (
            "responder not eligible",
            Some(("authority.responder_eligible", "AUTHORITY_NOT_ELIGIBLE")),
            |r| {
                r.registry = registry_with(
                    "kinds = [\"child-welfare-and-protection-agency\", \"family-violence-agency\"]\nsector = \"government\"\nclearance = \"IN-CONFIDENCE\"",
                    "kinds = [\"family-violence-agency\"]\nsector = \"government\"\nclearance = \"IN-CONFIDENCE\"",
                );
            },
        ),
        (
            "over-disclosure of a category not requested",
            Some(("response.only_requested", "DISCLOSURE_NOT_REQUESTED")),
            |r| {
                r.original.categories = vec!["learning-support".into()];
            },
        ),
        (
            "requested but not the responder's to share",
            Some(("category.shareable", "CATEGORY_NOT_SHAREABLE")),
            |r| {
                r.original.categories.push("care-status".into());
                r.response.items = vec![("care-status".into(), Classification::Sensitive)];
            },
        ),
        (
            "sharing for a purpose the responder may not share for",
            Some(("purpose.sharer_may_share", "PURPOSE_NOT_PERMITTED")),
            |r| {
                r.responder = "msd";
                r.original.recipient = "msd".into();
                r.original.purpose = "assess-risk".into();
                r.original.categories = vec!["youth-service-enrolment".into()];
                r.response.items = vec![(
                    "youth-service-enrolment".into(),
                    Classification::InConfidence,
                )];
            },
        ),
        (
            "item marked UNCLASSIFIED",
            Some((
                "classification.personal_minimum",
                "CLASSIFICATION_BELOW_MINIMUM",
            )),
            |r| {
                r.response.items[0].1 = Classification::Unclassified;
            },
        ),
        (
            "a SENSITIVE category labelled IN-CONFIDENCE",
            Some((
                "classification.not_below_protocol",
                "CLASSIFICATION_BELOW_PROTOCOL",
            )),
            |r| {
                r.responder = "oranga-tamariki";
                r.original.recipient = "oranga-tamariki".into();
                r.original.categories = vec!["care-status".into()];
                r.response.items = vec![("care-status".into(), Classification::InConfidence)];
            },
        ),
        (
            "a SENSITIVE category to a requester cleared only to IN-CONFIDENCE",
            Some((
                "classification.within_recipient_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |r| {
                r.responder = "oranga-tamariki";
                r.original.recipient = "oranga-tamariki".into();
                r.original.categories = vec!["care-status".into()];
                r.response.items = vec![("care-status".into(), Classification::Sensitive)];
                r.registry =
                    registry_with("clearance = \"SECRET\"", "clearance = \"IN-CONFIDENCE\"");
            },
        ),
        (
            "DISCLOSE that leaves out a requested category",
            Some(("response.disclose_covers_request", "DISCLOSURE_INCOMPLETE")),
            |r| {
                r.response.decision = Decision::Disclose;
                r.response.ground = None;
            },
        ),
        ("DISCLOSE of everything requested", None, |r| {
            r.response.decision = Decision::Disclose;
            r.response.ground = None;
            r.response
                .items
                .push(("learning-support".into(), Classification::InConfidence));
        }),
        (
            "item above the protocol's classification",
            Some((
                "classification.within_protocol",
                "CLASSIFICATION_ABOVE_PROTOCOL",
            )),
            |r| {
                r.response.items[0].1 = Classification::Sensitive;
            },
        ),
        (
            "item above the requester's clearance",
            Some((
                "classification.within_recipient_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |r| {
                r.registry =
                    registry_with("clearance = \"SECRET\"", "clearance = \"UNCLASSIFIED\"");
            },
        ),
        (
            "s66C disclosure without a consultation record",
            Some(("consultation.recorded", "CONSULTATION_RECORD_MISSING")),
            |r| {
                r.response.consultation = None;
            },
        ),
        ("not held, suggesting another party", None, |r| {
            r.response.referral = "education".into();
        }),
        (
            "not held, suggesting an agency outside the protocol",
            Some(("referral.party", "REFERRAL_NOT_PARTY")),
            |r| {
                r.response.referral = "health-nz".into();
            },
        ),
        (
            "not held, suggesting the requester itself",
            Some(("referral.party", "REFERRAL_NOT_PARTY")),
            |r| {
                r.response.referral = "police".into();
            },
        ),
        (
            "not held, suggesting the responder itself",
            Some(("referral.party", "REFERRAL_NOT_PARTY")),
            |r| {
                r.response.referral = "rangitoto-school-board".into();
            },
        ),
    ];
    for (name, expected, mutate) in cases {
        let mut r = base_response();
        mutate(&mut r);
        let responder = r.registry.agency(r.responder).unwrap();
        let got = check_response(
            responder,
            &r.response,
            r.requester,
            &r.original,
            &r.registry,
            &r.store,
            today(),
        );
        judged(name, expected, got);
    }
}

/// Asserts that a case of an answer's rules came out as `expected`: allowed, or refused by that
/// rule with that reason code.
fn judged(name: &str, expected: Option<(&str, &str)>, got: Result<Allowed, Denial>) {
    match (expected, got) {
        (None, Ok(_)) => {}
        (Some((rule, code)), Err(d)) => {
            assert_eq!(
                (d.rule, d.reason.code()),
                (rule, code),
                "{name}: {}",
                d.message
            );
        }
        (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
    }
}

/// An update is checked like a response that discloses, without the rules on withholding: it
/// may carry one of several categories requested, but nothing outside them.
#[test]
fn update_rules() {
    let cases: Vec<RespCase> = vec![
        ("one of the categories requested", None, |_| {}),
        (
            "a category not requested",
            Some(("response.only_requested", "DISCLOSURE_NOT_REQUESTED")),
            |r| {
                r.original.categories = vec!["learning-support".into()];
            },
        ),
        (
            "from an agency the request was not sent to",
            Some(("response.from_recipient", "NOT_THE_RECIPIENT")),
            |r| {
                r.responder = "education";
            },
        ),
        (
            "above the requester's clearance",
            Some((
                "classification.within_recipient_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |r| {
                r.registry =
                    registry_with("clearance = \"SECRET\"", "clearance = \"UNCLASSIFIED\"");
            },
        ),
        (
            "protocol suspended since the answer",
            Some(("protocol.in_force", "PROTOCOL_SUSPENDED")),
            |r| {
                set_state(&mut r.store, "youth-reengagement", ProtocolState::Suspended);
            },
        ),
        (
            "s66C without a consultation record",
            Some(("consultation.recorded", "CONSULTATION_RECORD_MISSING")),
            |r| {
                r.response.consultation = None;
            },
        ),
    ];
    for (name, expected, mutate) in cases {
        let mut r = base_response();
        mutate(&mut r);
        let update = crate::validate::ValidUpdate {
            request_id: r.response.request_id,
            items: r.response.items.clone(),
            consultation: r.response.consultation,
            staff_id: "t-1".into(),
            idempotency_key: "u-1".into(),
            body: Default::default(),
        };
        let responder = r.registry.agency(r.responder).unwrap();
        let got = check_update(
            responder,
            &update,
            r.requester,
            &r.original,
            &r.registry,
            &r.store,
            today(),
        );
        judged(name, expected, got);
    }
}

mod disclosure;
mod properties;
