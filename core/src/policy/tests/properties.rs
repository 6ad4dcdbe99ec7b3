//! Properties: nothing outside a protocol is ever allowed, and a denial never changes state.

use super::*;

const AGENCIES: [&str; 12] = [
    "police",
    "oranga-tamariki",
    "education",
    "health-nz",
    "msd",
    "kainga-ora",
    "corrections",
    "justice",
    "rangitoto-school-board",
    "te-whare-awhina",
    "safe-homes-trust",
    "dr-aroha-ngata",
];
const PURPOSES: [&str; 8] = [
    "assess-risk",
    "support-plan",
    "identify-supports",
    "assess-need",
    "fv-risk-assessment",
    "fv-safety-plan",
    "victim-protection",
    "curiosity",
];
const CATEGORIES: [&str; 8] = [
    "attendance",
    "learning-support",
    "care-status",
    "youth-offending-history",
    "safety-plan",
    "protection-orders",
    "enrolment-history",
    "bank-records",
];
const PROTOCOL_IDS: [&str; 4] = [
    "youth-reengagement",
    "attendance",
    "family-harm-sam",
    "no-such-protocol",
];

fn arb_request() -> impl Strategy<Value = (usize, Req)> {
    (
        0..AGENCIES.len(),
        0..AGENCIES.len(),
        0..PROTOCOL_IDS.len(),
        0..PURPOSES.len(),
        proptest::sample::subsequence(CATEGORIES.to_vec(), 1..4),
        1u8..=7,
        any::<bool>(),
        any::<bool>(),
        1950i32..=2026,
    )
        .prop_map(
            |(from, to, p, purpose, cats, class, s20, consulted, year)| {
                let mut r = base_request();
                r.request.recipient = AGENCIES[to].into();
                r.request.protocol_id = PROTOCOL_IDS[p].into();
                r.request.purpose = PURPOSES[purpose].into();
                r.request.categories = cats.into_iter().map(String::from).collect();
                r.request.classification = Classification::from_code(class).unwrap();
                r.request.authority = if s20 {
                    Authority::FvaS20
                } else {
                    Authority::OtaS66C
                };
                r.request.consultation = consulted.then_some(Consultation::Consulted);
                r.request.subject = subject(date(year, 6, 15));
                (from, r)
            },
        )
}

proptest! {
    /// Whatever is asked, an allowed request is inside an active, current protocol: both agencies
    /// are parties, eligible for the authority, the authority covers the purpose, the requester
    /// may request for it and the recipient shares every category.
    #[test]
    fn no_request_outside_a_protocol_is_allowed((from, mut r) in arb_request()) {
        r.requester = AGENCIES[from];
        if let Ok(allowed) = run_request(&r) {
            let entry = r.store.in_force(&r.request.protocol_id).expect("protocol exists");
            prop_assert_eq!(entry.state, ProtocolState::Active);
            prop_assert!(!entry.review_overdue(r.today));
            prop_assert_eq!(allowed.protocol_version, entry.protocol.version);
            let p = &entry.protocol;
            let asking = p.party(r.requester).expect("requester is a party");
            let asked = p.party(&r.request.recipient).expect("recipient is a party");
            prop_assert!(p.authorises(r.request.authority, &r.request.purpose));
            prop_assert!(asking.request_purposes.contains(&r.request.purpose));
            for c in &r.request.categories {
                prop_assert!(asked.share(c).is_some());
            }
            for a in [r.requester, r.request.recipient.as_str()] {
                prop_assert!(r.registry.agency(a).unwrap().may_use(r.request.authority));
            }
            prop_assert!(r.request.classification >= Classification::InConfidence);
        }
        // A protocol nobody registered never authorises anything.
        r.request.protocol_id = "no-such-protocol".into();
        prop_assert!(run_request(&r).is_err());
    }

    /// A refusal is logged but changes no state: applying a Denied record leaves every
    /// exchange view as it was (only the audit indexes, `x…`, grow), and
    /// the protocol register ignores it.
    #[test]
    fn a_denial_never_changes_state(
        op in 1u8..=13,
        code in "[A-Z_]{1,40}",
        rule in "[a-z._\\[\\]0-9]{1,60}",
        with_id in any::<bool>(),
    ) {
        use crate::views::tests::Mem;
        let mut kv = Mem::default();
        let submitted = crate::records::tests::submitted(1);
        crate::views::apply(&mut kv, 1, &submitted, &submitted.encode()).unwrap();
        let before = kv.clone();
        let denied = Record {
            time_ms: 5,
            actor: submitted.actor.clone(),
            event: Event::Denied(crate::records::Denied {
                operation: crate::access::Operation::from_code(op).unwrap(),
                request_id: with_id.then_some(RequestId([1; 16])),
                reason_code: code,
                rule,
                subjects: vec![[7; 32]],
            }),
        };
        crate::views::apply(&mut kv, 2, &denied, &denied.encode()).unwrap();
        let state = |m: &Mem| m.0.iter().filter(|(k, _)| k[0] != b'x').map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
        prop_assert_eq!(state(&kv), state(&before));
        prop_assert!(kv.0.contains_key(&[crate::views::audit_index::event(denied.event.code()), 2u64.to_be_bytes().to_vec()].concat()), "the refusal is in the audit index");
        let mut register = store();
        let snapshot = format!("{:?}", register.all().map(|(k, v)| (k.clone(), v.len())).collect::<Vec<_>>());
        register.apply(&denied, None).unwrap();
        prop_assert_eq!(snapshot, format!("{:?}", register.all().map(|(k, v)| (k.clone(), v.len())).collect::<Vec<_>>()));
    }
}
