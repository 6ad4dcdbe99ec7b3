//! Table-driven tests of the proactive-disclosure rules.

use super::*;

fn base_disclosure() -> (&'static str, ValidDisclosure, Registry) {
    (
        "oranga-tamariki",
        ValidDisclosure {
            recipient: "police".into(),
            authority: Authority::OtaS66C,
            protocol_id: "youth-reengagement".into(),
            purpose: "assess-risk".into(),
            subject: subject(date(2012, 3, 4)),
            items: vec![("care-status".into(), Classification::Sensitive)],
            consultation: Some(Consultation::NotConsulted),
            staff_id: "sw-1".into(),
            idempotency_key: "k".into(),
            body: Default::default(),
        },
        Registry::from_toml(SAMPLE_REGISTRY).unwrap(),
    )
}

type DiscCase = (
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&mut (&'static str, ValidDisclosure, Registry)),
);

#[test]
fn proactive_disclosure_rules() {
    let cases: Vec<DiscCase> = vec![
        ("lawful s66C proactive disclosure", None, |_| {}),
        ("lawful s20 proactive disclosure to an NGO", None, |d| {
            d.0 = "police";
            d.1.recipient = "safe-homes-trust".into();
            d.1.authority = Authority::FvaS20;
            d.1.protocol_id = "family-harm-sam".into();
            d.1.purpose = "victim-protection".into();
            d.1.subject = subject(date(1985, 6, 1));
            d.1.items = vec![("protection-orders".into(), Classification::Sensitive)];
            d.1.consultation = None;
        }),
        (
            "discloser not a party",
            Some(("party.discloser", "NOT_A_PARTY")),
            |d| d.0 = "corrections",
        ),
        (
            "purpose the discloser may not share for",
            Some(("purpose.sharer_may_share", "PURPOSE_NOT_PERMITTED")),
            |d| {
                d.0 = "msd";
                d.1.items = vec![(
                    "youth-service-enrolment".into(),
                    Classification::InConfidence,
                )];
            },
        ),
        (
            "category not the discloser's to share",
            Some(("category.shareable", "CATEGORY_NOT_SHAREABLE")),
            |d| {
                d.1.items = vec![("attendance".into(), Classification::InConfidence)];
            },
        ),
        (
            "above the recipient's clearance",
            Some((
                "classification.within_recipient_clearance",
                "CLASSIFICATION_ABOVE_CLEARANCE",
            )),
            |d| {
                d.1.recipient = "rangitoto-school-board".into();
            },
        ),
        (
            "adult subject under s66C",
            Some((
                "subject.child_or_young_person",
                "SUBJECT_NOT_CHILD_OR_YOUNG_PERSON",
            )),
            |d| {
                d.1.subject = subject(date(1990, 1, 1));
            },
        ),
        (
            "s66C without a consultation record",
            Some(("consultation.recorded", "CONSULTATION_RECORD_MISSING")),
            |d| {
                d.1.consultation = None;
            },
        ),
        (
            "a SENSITIVE category labelled IN-CONFIDENCE",
            Some((
                "classification.not_below_protocol",
                "CLASSIFICATION_BELOW_PROTOCOL",
            )),
            |d| {
                d.1.items = vec![("care-status".into(), Classification::InConfidence)];
            },
        ),
        (
            "authority not relied on for the purpose",
            Some(("authority.for_purpose", "AUTHORITY_NOT_FOR_PURPOSE")),
            |d| {
                d.1.purpose = "victim-protection".into();
            },
        ),
    ];
    let store = store();
    for (name, expected, mutate) in cases {
        let mut d = base_disclosure();
        mutate(&mut d);
        let discloser = d.2.agency(d.0).unwrap();
        let got = check_disclosure(discloser, &d.1, &d.2, &store, today());
        match (expected, got) {
            (None, Ok(_)) => {}
            (Some((rule, code)), Err(x)) => assert_eq!(
                (x.rule, x.reason.code()),
                (rule, code),
                "{name}: {}",
                x.message
            ),
            (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }
}
