use super::*;
use crate::codec::DecodeError;
use crate::domain::Urgency;

pub(crate) fn actor() -> Actor {
    Actor {
        role: Role::Agency,
        id: "police".into(),
        cert_sha256: [0xcc; 32],
    }
}

pub(crate) fn submitted(id: u8) -> Record {
    Record {
        time_ms: 1_700_000_000_000,
        actor: actor(),
        event: Event::RequestSubmitted(RequestSubmitted {
            request_id: RequestId([id; 16]),
            recipient: "oranga-tamariki".into(),
            staff: [1; 32],
            subjects: vec![[2; 32], [3; 32]],
            protocol_id: "youth-reengagement".into(),
            protocol_version: 0,
            authority: Authority::OtaS66C,
            purpose: "assess-risk".into(),
            categories: vec!["attendance".into(), "care-status".into()],
            classification: Classification::InConfidence,
            urgency: Urgency::Priority,
            consultation: Some(Consultation::Consulted),
            idempotency: [4; 32],
            body_commitment: [5; 32],
            due_ms: 1_700_000_900_000,
            expires_ms: 1_700_100_000_000,
            follows: None,
        }),
    }
}

pub(crate) fn all_kinds() -> Vec<Record> {
    let mut out = vec![submitted(9)];
    let mut sent_on = submitted(11);
    if let Event::RequestSubmitted(r) = &mut sent_on.event {
        r.follows = Some(RequestId([9; 16]));
    }
    out.push(sent_on);
    let mut r = submitted(9);
    r.event = Event::RequestAcknowledged {
        request_id: RequestId([9; 16]),
    };
    out.push(r.clone());
    r.event = Event::ResponseSubmitted(ResponseSubmitted {
        request_id: RequestId([9; 16]),
        requester: "police".into(),
        staff: [6; 32],
        decision: Decision::PartialDisclose,
        ground: Some(DeclineGround::EndangersSafety),
        disclosed: vec![("attendance".into(), Classification::Sensitive)],
        consultation: None,
        body_commitment: [7; 32],
        protocol_id: "youth-reengagement".into(),
        protocol_version: 2,
        authority: Some(Authority::OtaS66C),
        purpose: "assess-risk".into(),
        referral: "education".into(),
    });
    out.push(r.clone());
    r.event = Event::ResponseAcknowledged {
        request_id: RequestId([9; 16]),
    };
    out.push(r.clone());
    r.event = Event::Denied(Denied {
        operation: Operation::Respond,
        request_id: None,
        reason_code: "INVALID_ARGUMENT".into(),
        rule: "response.items[0].content".into(),
        subjects: vec![[2; 32]],
    });
    out.push(r.clone());
    r.event = Event::Protocol(ProtocolEvent::Registered {
        protocol_id: "attendance".into(),
        version: 2,
        document_sha256: [6; 32],
    });
    out.push(r.clone());
    r.event = Event::Protocol(ProtocolEvent::Approved {
        protocol_id: "attendance".into(),
        version: 2,
        approver_role: "Chief Privacy Officer".into(),
    });
    out.push(r.clone());
    r.event = Event::Protocol(ProtocolEvent::StateChanged {
        protocol_id: "attendance".into(),
        version: 2,
        state: crate::domain::ProtocolState::Suspended,
    });
    out.push(r.clone());
    r.event = Event::DisclosureSubmitted(DisclosureSubmitted {
        request_id: RequestId([8; 16]),
        recipient: "msd".into(),
        staff: [1; 32],
        subjects: vec![[2; 32]],
        protocol_id: "family-harm-sam".into(),
        protocol_version: 3,
        authority: Authority::FvaS20,
        purpose: "victim-protection".into(),
        disclosed: vec![("protection-orders".into(), Classification::Sensitive)],
        consultation: Some(Consultation::NotConsulted),
        idempotency: [3; 32],
        body_commitment: [4; 32],
    });
    out.push(r.clone());
    r.event = Event::DisclosureAcknowledged {
        request_id: RequestId([8; 16]),
    };
    out.push(r.clone());
    r.event = Event::AuditQueried(AuditQueried {
        query: 2,
        subjects: vec![[9; 32]],
        agency: "police".into(),
        staff: Some([3; 32]),
        protocol_id: "attendance".into(),
        authority: Some(Authority::FvaS20),
        event: 3,
        decision: "decline".into(),
        since_ms: 1,
        until_ms: 2,
        result_count: 7,
        purpose: "assess-risk".into(),
        category: "attendance".into(),
    });
    out.push(r.clone());
    r.event = Event::LegalHoldPlaced(HoldTarget::Exchange(RequestId([8; 16])));
    out.push(r.clone());
    r.event = Event::LegalHoldReleased(HoldTarget::Subject([2; 32]));
    out.push(r.clone());
    r.event = Event::RequestOverdue {
        request_id: RequestId([9; 16]),
    };
    out.push(r.clone());
    r.event = Event::RequestWithdrawn(RequestWithdrawn {
        request_id: RequestId([9; 16]),
        staff: [4; 32],
        body_commitment: [5; 32],
    });
    out.push(r.clone());
    r.event = Event::UpdateSubmitted(UpdateSubmitted {
        update_id: RequestId([10; 16]),
        request_id: RequestId([9; 16]),
        recipient: "police".into(),
        staff: [6; 32],
        subjects: vec![[2; 32], [3; 32]],
        protocol_id: "youth-reengagement".into(),
        protocol_version: 2,
        authority: Authority::OtaS66C,
        purpose: "assess-risk".into(),
        disclosed: vec![("attendance".into(), Classification::InConfidence)],
        consultation: Some(Consultation::Consulted),
        idempotency: [8; 32],
        body_commitment: [9; 32],
    });
    out.push(r.clone());
    r.event = Event::RequestExpired {
        request_id: RequestId([9; 16]),
    };
    out.push(r.clone());
    r.event = Event::UpdateAcknowledged {
        request_id: RequestId([10; 16]),
    };
    out.push(r.clone());
    r.event = Event::NoticesAcknowledged {
        request_id: RequestId([9; 16]),
    };
    out.push(r.clone());
    r.event = Event::BodiesPurged {
        request_id: RequestId([9; 16]),
        kinds: 31,
    };
    out.push(r);
    out
}

/// Whether an event exists only from record version 3.
fn version_3_only(e: &Event) -> bool {
    e.code() >= code::REQUEST_OVERDUE
}

#[test]
fn every_event_round_trips() {
    for rec in all_kinds() {
        let bytes = rec.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
    }
}

#[test]
fn known_answer_for_an_acknowledgement() {
    let rec = Record {
        time_ms: 0x0102030405060708,
        actor: Actor {
            role: Role::Agency,
            id: "ab".into(),
            cert_sha256: [0; 32],
        },
        event: Event::RequestAcknowledged {
            request_id: RequestId([0xee; 16]),
        },
    };
    let mut expected = vec![3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, b'a', b'b'];
    expected.extend([0; 32]);
    expected.extend([0xee; 16]);
    assert_eq!(rec.encode(), expected);
}

#[test]
fn every_truncation_and_extension_is_refused() {
    for rec in all_kinds() {
        let bytes = rec.encode();
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Record::decode(&longer), Err(DecodeError::Trailing(1)));
    }
    let mut bad = submitted(1).encode();
    bad[0] = 4;
    assert_eq!(Record::decode(&bad), Err(DecodeError::Version(4)));
    bad[0] = 0;
    assert_eq!(Record::decode(&bad), Err(DecodeError::Version(0)));
}

/// The fields version 3 added, cleared as a record read in an older version has them.
fn without_version_3_fields(rec: &Record) -> Record {
    let mut old = rec.clone();
    match &mut old.event {
        Event::RequestSubmitted(r) => {
            r.due_ms = 0;
            r.expires_ms = 0;
            r.follows = None;
        }
        Event::ResponseSubmitted(r) => r.referral.clear(),
        Event::BodiesPurged { kinds, .. } => *kinds &= 7,
        _ => {}
    }
    old
}

/// Logs written in version 2 stay readable, their records re-encode to the very bytes the log
/// holds, and the events version 3 added are refused in them.
#[test]
fn version_2_records_are_still_read() {
    for rec in all_kinds() {
        let old = without_version_3_fields(&rec);
        if version_3_only(&old.event) {
            assert!(Record::decode(&old.encode_as(2)).is_err(), "{old:?}");
            continue;
        }
        let v2 = old.encode_as(2);
        let (version, decoded) = Record::decode_versioned(&v2).unwrap();
        assert_eq!((version, &decoded), (2, &old));
        assert_eq!(decoded.encode_as(version), v2);
    }
}

/// Logs written before version 2 stay readable, and their records re-encode to the very
/// bytes the log holds (the Merkle tree is over those bytes).
#[test]
fn version_1_records_are_still_read() {
    for rec in all_kinds() {
        let mut old = without_version_3_fields(&rec);
        match &mut old.event {
            Event::ResponseSubmitted(r) => {
                r.protocol_id.clear();
                r.protocol_version = 0;
                r.authority = None;
                r.purpose.clear();
            }
            Event::Denied(d) => d.subjects.clear(),
            Event::AuditQueried(q) => {
                q.purpose.clear();
                q.category.clear();
            }
            _ => {}
        }
        if matches!(
            old.event,
            Event::LegalHoldPlaced(_) | Event::LegalHoldReleased(_)
        ) || version_3_only(&old.event)
        {
            // Version 2 or 3 only.
            assert!(Record::decode(&old.encode_as(1)).is_err());
            continue;
        }
        let v1 = old.encode_as(1);
        assert_eq!(v1[0], 1);
        let (version, decoded) = Record::decode_versioned(&v1).unwrap();
        assert_eq!((version, &decoded), (1, &old));
        assert_eq!(decoded.encode_as(version), v1);
    }
}

#[test]
fn request_ids_parse_only_canonical_hex() {
    let id = RequestId([0xab; 16]);
    assert_eq!(RequestId::parse(&id.to_string()), Some(id));
    assert_eq!(RequestId::parse(&id.to_string().to_uppercase()), None);
    assert_eq!(RequestId::parse("abc"), None);
    assert_eq!(RequestId::parse(&"zz".repeat(16)), None);
}

/// Time-ordered ids sort by their time, carry it in their first 48 bits, and keep the random
/// part whole.
#[test]
fn time_ordered_request_ids_sort_by_time() {
    let early = RequestId::time_ordered(1_800_000_000_000, [0xff; 10]);
    let late = RequestId::time_ordered(1_800_000_000_001, [0; 10]);
    assert!(early < late);
    assert_eq!(&early.0[..6], &1_800_000_000_000u64.to_be_bytes()[2..]);
    assert_eq!(&early.0[6..], &[0xff; 10]);
    assert_eq!(RequestId::parse(&late.to_string()), Some(late));
}
