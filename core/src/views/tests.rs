use super::*;
use crate::records::tests::submitted;
use std::collections::BTreeMap;

/// An in-memory view store for tests of the pure view functions, with the records folded into
/// it by [`fold`] (an inbox item is read from its record).
#[derive(Default, Clone, PartialEq, Debug)]
pub(crate) struct Mem(
    pub(crate) BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) BTreeMap<u64, Record>,
);
impl KvRead for Mem {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.0.get(key).cloned())
    }
}
impl KvWrite for Mem {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert(key, value);
    }
    fn create(&mut self, key: Vec<u8>, value: Vec<u8>) {
        assert!(
            !self.0.contains_key(&key),
            "created a key that exists: {key:?}"
        );
        self.0.insert(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.0.remove(&key);
    }
}

#[test]
fn a_request_flows_through_its_states() {
    let mut kv = Mem::default();
    let rec = submitted(1);
    let id = RequestId([1; 16]);
    fold(&mut kv, 1, &rec);
    let meta = request_meta(&kv, &id).unwrap().unwrap();
    assert_eq!(meta.status, RequestStatus::Submitted);
    assert_eq!(
        (meta.requester.as_str(), meta.recipient.as_str()),
        ("police", "oranga-tamariki")
    );
    assert_eq!(
        idempotent_request(&kv, "police", &[4; 32]).unwrap(),
        Some((id, 1))
    );
    assert_eq!(
        idempotent_request(&kv, "oranga-tamariki", &[4; 32]).unwrap(),
        None
    );

    let mut ack = rec.clone();
    ack.actor.id = "oranga-tamariki".into();
    ack.event = Event::RequestAcknowledged { request_id: id };
    let unacknowledged = inbox_of(&kv, "oranga-tamariki");
    assert_eq!(unacknowledged.len(), 1);
    assert!(!unacknowledged[0].acknowledged);
    assert_eq!(
        (unacknowledged[0].kind, unacknowledged[0].request_id),
        (MessageKind::Request, id)
    );
    fold(&mut kv, 2, &ack);
    let entry = &inbox_of(&kv, "oranga-tamariki")[0];
    assert!(entry.acknowledged);
    assert!(
        kv.0[&inbox_key("oranga-tamariki", 1)].is_empty(),
        "a posting: the item is its record's"
    );
    assert_eq!(
        request_meta(&kv, &id).unwrap().unwrap().status,
        RequestStatus::Acknowledged
    );

    assert_eq!(timeline(&kv, &id), vec![1, 2]);
    assert!(
        keys_under(&kv, &timeline_prefix(&id)).is_empty(),
        "the meta points to the opening and its acknowledgement: no key of their own"
    );
}

/// The timeline as a reader makes it: the records the meta points to and the keyed ones.
fn timeline(kv: &Mem, id: &RequestId) -> Vec<u64> {
    let prefix = timeline_prefix(id);
    let keyed = keys_under(kv, &prefix)
        .iter()
        .map(|k| u64::from_be_bytes(k[prefix.len()..].try_into().unwrap()))
        .collect();
    timeline_of(request_meta(kv, id).unwrap().as_ref(), keyed)
}

/// Records the meta does not point to — a hold, a purge, an acknowledgement of notices that a
/// later one replaced — keep a key of their own, so the timeline loses none of them.
#[test]
fn a_timeline_keeps_the_records_its_meta_does_not_point_to() {
    let mut kv = Mem::default();
    let id = RequestId([1; 16]);
    fold(&mut kv, 1, &with_deadlines(1));
    let exchange = HoldTarget::Exchange(id);
    fold(&mut kv, 2, &by("police", Event::LegalHoldPlaced(exchange)));
    fold(
        &mut kv,
        3,
        &by("police", Event::RequestOverdue { request_id: id }),
    );
    fold(
        &mut kv,
        4,
        &by("police", Event::NoticesAcknowledged { request_id: id }),
    );
    fold(
        &mut kv,
        5,
        &by("police", Event::LegalHoldReleased(exchange)),
    );
    fold(
        &mut kv,
        6,
        &by("police", Event::NoticesAcknowledged { request_id: id }),
    );
    fold(
        &mut kv,
        7,
        &by(
            "oranga-tamariki",
            Event::RequestAcknowledged { request_id: id },
        ),
    );
    assert_eq!(timeline(&kv, &id), (1..=7).collect::<Vec<_>>());
    let keyed: Vec<_> = keys_under(&kv, &timeline_prefix(&id));
    assert_eq!(
        keyed,
        [2, 4, 5].map(|i| timeline_key(&id, i)).to_vec(),
        "the holds and the replaced acknowledgement of notices"
    );
}

#[test]
fn a_follow_up_for_an_unknown_request_is_an_error() {
    let mut kv = Mem::default();
    let mut ack = submitted(1);
    ack.event = Event::RequestAcknowledged {
        request_id: RequestId([9; 16]),
    };
    assert!(apply(&mut kv, 1, &ack, &ack.encode()).is_err());
}

/// The keys under `prefix`, as a list.
fn keys_under(kv: &Mem, prefix: &[u8]) -> Vec<Vec<u8>> {
    kv.0.keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect()
}

/// A request with deadlines, due at 1,000 and expiring at 2,000, its idempotency key `[id; 32]`.
fn with_deadlines(id: u8) -> Record {
    let mut rec = submitted(id);
    if let Event::RequestSubmitted(r) = &mut rec.event {
        r.due_ms = 1_000;
        r.expires_ms = 2_000;
        // Each its own key, as the sequencer would have it (a second use is a replay).
        r.idempotency = [id; 32];
    }
    rec
}

fn by(agency: &str, event: Event) -> Record {
    let mut r = submitted(1);
    r.actor.id = agency.into();
    r.event = event;
    r
}

fn fold(kv: &mut Mem, index: u64, rec: &Record) {
    apply(kv, index, rec, &rec.encode()).unwrap();
    kv.1.insert(index, rec.clone());
}

/// `agency`'s inbox as a reader reads it: each item from its record and its exchange's meta.
fn inbox_of(kv: &Mem, agency: &str) -> Vec<InboxEntry> {
    let prefix = inbox_prefix(agency);
    keys_under(kv, &prefix)
        .iter()
        .map(|k| {
            let index = u64::from_be_bytes(k[prefix.len()..].try_into().unwrap());
            let record = &kv.1[&index];
            let meta = request_meta(kv, &record.event.request_id().unwrap())
                .unwrap()
                .unwrap();
            inbox_entry(agency, index, record, &meta).unwrap()
        })
        .collect()
}

/// A request enters its recipient's work and the expiry index; an acknowledgement takes it out
/// of the expiry index; becoming overdue moves it to the head of the work (rank 0), and tells
/// both parties; acknowledging those notices marks them; the answer
/// takes it out of everything.
#[test]
fn a_request_leaves_the_work_and_deadlines_as_it_is_settled() {
    let mut kv = Mem::default();
    let id = RequestId([1; 16]);
    fold(&mut kv, 1, &with_deadlines(1));
    let work = keys_under(&kv, &work::work_prefix("oranga-tamariki"));
    assert_eq!(work.len(), 1);
    assert_eq!(
        work[0].last_chunk::<17>().unwrap()[0],
        2,
        "priority is rank 2"
    );
    assert_eq!(
        keys_under(&kv, work::EXPIRY),
        vec![work::expiry_key(2_000, 1)]
    );
    assert_eq!(
        keys_under(&kv, &work::outbox_prefix("police")),
        vec![work::outbox_key("police", 1)]
    );
    assert!(
        kv.0[&work::outbox_key("police", 1)].is_empty(),
        "a posting: the exchange is the record's"
    );

    fold(
        &mut kv,
        2,
        &by(
            "oranga-tamariki",
            Event::RequestAcknowledged { request_id: id },
        ),
    );
    assert!(keys_under(&kv, work::EXPIRY).is_empty());

    let overdue = by(
        "infoshare-deadlines",
        Event::RequestOverdue { request_id: id },
    );
    fold(&mut kv, 3, &overdue);
    let meta = request_meta(&kv, &id).unwrap().unwrap();
    assert!(meta.overdue());
    assert_eq!(
        meta.status,
        RequestStatus::Acknowledged,
        "overdue is not a status"
    );
    let work = keys_under(&kv, &work::work_prefix("oranga-tamariki"));
    assert_eq!(work.len(), 1);
    assert_eq!(
        work[0].last_chunk::<17>().unwrap()[0],
        0,
        "overdue is rank 0"
    );
    for agency in ["police", "oranga-tamariki"] {
        let notices: Vec<_> = inbox_of(&kv, agency)
            .into_iter()
            .filter(|e| e.kind == MessageKind::Notice)
            .collect();
        assert_eq!(notices.len(), 1, "{agency}");
        assert_eq!(notices[0].notice, Some(NoticeKind::Overdue));
        assert!(!notices[0].acknowledged);
    }

    fold(
        &mut kv,
        4,
        &by("police", Event::NoticesAcknowledged { request_id: id }),
    );
    let police: Vec<_> = inbox_of(&kv, "police");
    assert!(police.iter().all(|e| e.acknowledged), "{police:?}");
    let meta = request_meta(&kv, &id).unwrap().unwrap();
    assert_eq!(
        (meta.requester_notices_acked, meta.recipient_notices_acked),
        (4, 0)
    );

    let mut answer = all_answer();
    answer.actor.id = "oranga-tamariki".into();
    fold(&mut kv, 5, &answer);
    assert!(keys_under(&kv, &work::work_prefix("oranga-tamariki")).is_empty());
    let meta = request_meta(&kv, &id).unwrap().unwrap();
    assert_eq!(meta.status, RequestStatus::Responded);
    assert!(meta.not_held);
    assert_eq!(meta.referral, "education");
}

/// A response to request 1 that withholds as not held and suggests another agency.
fn all_answer() -> Record {
    let mut r = crate::records::tests::all_kinds()
        .into_iter()
        .find(|r| matches!(r.event, Event::ResponseSubmitted(_)))
        .unwrap();
    if let Event::ResponseSubmitted(x) = &mut r.event {
        x.request_id = RequestId([1; 16]);
        x.ground = Some(crate::domain::DeclineGround::NotHeld);
    }
    r
}

/// A withdrawal tells the recipient, an expiry the requester; both take the request out of the
/// work and the deadlines, and both are final statuses.
#[test]
fn withdrawal_and_expiry_close_a_request_and_tell_the_other_party() {
    for (event, status, told, not_told) in [
        (
            Event::RequestWithdrawn(crate::records::RequestWithdrawn {
                request_id: RequestId([1; 16]),
                staff: [1; 32],
                body_commitment: [2; 32],
            }),
            RequestStatus::Withdrawn,
            "oranga-tamariki",
            "police",
        ),
        (
            Event::RequestExpired {
                request_id: RequestId([1; 16]),
            },
            RequestStatus::Expired,
            "police",
            "oranga-tamariki",
        ),
    ] {
        let mut kv = Mem::default();
        fold(&mut kv, 1, &with_deadlines(1));
        fold(&mut kv, 2, &by("police", event));
        let meta = request_meta(&kv, &RequestId([1; 16])).unwrap().unwrap();
        assert_eq!((meta.status, meta.closed_idx), (status, 2));
        assert!(!meta.status.awaits_answer());
        for prefix in [work::work_prefix("oranga-tamariki"), work::EXPIRY.to_vec()] {
            assert!(keys_under(&kv, &prefix).is_empty(), "{status}");
        }
        let notice = |agency| {
            inbox_of(&kv, agency)
                .into_iter()
                .filter(|e| e.kind == MessageKind::Notice)
                .count()
        };
        assert_eq!((notice(told), notice(not_told)), (1, 0), "{status}");
        assert_eq!(meta.notices_to(told), vec![2]);
        assert!(meta.notices_to(not_told).is_empty());
    }
}

/// An update is an exchange of its own in the requester's inbox, linked to the request and in
/// its timeline; a request sent on is linked to the one it follows the same way.
#[test]
fn updates_and_requests_sent_on_are_linked_to_their_request() {
    let mut kv = Mem::default();
    fold(&mut kv, 1, &with_deadlines(1));
    let update = crate::records::tests::all_kinds()
        .into_iter()
        .find(|r| matches!(r.event, Event::UpdateSubmitted(_)))
        .unwrap();
    let Event::UpdateSubmitted(u) = &update.event else {
        unreachable!()
    };
    let (update_id, request_id) = (u.update_id, u.request_id);
    let mut first = with_deadlines(request_id.0[0]);
    first.event = match first.event {
        Event::RequestSubmitted(mut r) => {
            r.request_id = request_id;
            Event::RequestSubmitted(r)
        }
        e => e,
    };
    fold(&mut kv, 2, &first);
    fold(&mut kv, 3, &update);
    let meta = request_meta(&kv, &update_id).unwrap().unwrap();
    assert_eq!(meta.kind, MessageKind::Update);
    assert_eq!(meta.linked, Some(request_id));
    assert!(kv.0.contains_key(&work::link_key(&request_id, 3)));
    assert_eq!(
        timeline(&kv, &request_id),
        vec![2, 3],
        "the request and its update"
    );
    let inbox = inbox_of(&kv, "police");
    assert_eq!(inbox.last().unwrap().kind, MessageKind::Update);
    assert!(
        keys_under(&kv, &work::work_prefix("police")).is_empty(),
        "an update awaits no answer"
    );

    let mut sent_on = with_deadlines(12);
    if let Event::RequestSubmitted(r) = &mut sent_on.event {
        r.follows = Some(RequestId([1; 16]));
    }
    fold(&mut kv, 4, &sent_on);
    assert!(kv.0.contains_key(&work::link_key(&RequestId([1; 16]), 4)));
    assert_eq!(
        request_meta(&kv, &RequestId([12; 16]))
            .unwrap()
            .unwrap()
            .linked,
        Some(RequestId([1; 16]))
    );
}

/// Views written before deadlines existed still read: a meta in its old layout decodes as
/// having none of the new fields; a meta with every field set round-trips,
/// one with none set is the old layout, and an unknown field is refused.
#[test]
fn values_in_the_first_layout_still_read() {
    let meta = RequestMeta::opened(MessageKind::Request, "police", "msd", 7);
    let old_len = 1 + 1 + 6 + 1 + 3 + 1 + 8 * 4;
    assert_eq!(meta.encode().len(), old_len);
    assert_eq!(RequestMeta::decode(&meta.encode()).unwrap(), meta);
    let full = RequestMeta {
        urgency: Some(crate::domain::Urgency::Priority),
        due_ms: 1,
        expires_ms: 2,
        overdue_idx: 3,
        closed_idx: 4,
        linked: Some(RequestId([5; 16])),
        requester_notices_acked: 6,
        recipient_notices_acked: 7,
        not_held: true,
        referral: "education".into(),
        ..meta.clone()
    };
    assert_eq!(RequestMeta::decode(&full.encode()).unwrap(), full);
    let some = RequestMeta {
        due_ms: 9,
        closed_idx: 10,
        ..meta.clone()
    };
    assert_eq!(some.encode().len(), old_len + 2 + 16);
    assert_eq!(RequestMeta::decode(&some.encode()).unwrap(), some);
    let mut unknown = some.encode();
    unknown[old_len] |= 0x80;
    assert!(RequestMeta::decode(&unknown).is_err());
}

/// A legal hold on a request keeps its updates' bodies too (an update is an exchange of its
/// own, linked to the request).
#[test]
fn a_hold_on_a_request_holds_its_updates() {
    let mut kv = Mem::default();
    let update = crate::records::tests::all_kinds()
        .into_iter()
        .find(|r| matches!(r.event, Event::UpdateSubmitted(_)))
        .unwrap();
    let Event::UpdateSubmitted(u) = &update.event else {
        unreachable!()
    };
    let (update_id, request_id) = (u.update_id, u.request_id);
    fold(&mut kv, 1, &with_deadlines(request_id.0[0]));
    fold(&mut kv, 2, &update);
    assert!(!held(&kv, &update_id, &[]).unwrap());
    let hold = by(
        "privacy-audit",
        Event::LegalHoldPlaced(HoldTarget::Exchange(request_id)),
    );
    fold(&mut kv, 3, &hold);
    assert!(held(&kv, &update_id, &[]).unwrap());
    assert!(held(&kv, &request_id, &[]).unwrap());
}

/// An overdue notice to a request an agency sent itself is one inbox item, created once.
#[test]
fn an_overdue_notice_to_an_agency_that_asked_itself_is_one_item() {
    let mut kv = Mem::default();
    let id = RequestId([1; 16]);
    let mut rec = with_deadlines(1);
    if let Event::RequestSubmitted(r) = &mut rec.event {
        r.recipient = "police".into();
    }
    fold(&mut kv, 1, &rec);
    fold(
        &mut kv,
        2,
        &by("police", Event::RequestOverdue { request_id: id }),
    );
    let notices: Vec<_> = inbox_of(&kv, "police")
        .into_iter()
        .filter(|e| e.notice == Some(NoticeKind::Overdue))
        .collect();
    assert_eq!(notices.len(), 1);
}

/// An acknowledgement of notices covers those before it, not a notice that comes after it; an
/// answer's item is acknowledged once the answer is, and a withdrawal's notice is its
/// recipient's alone.
#[test]
fn an_inbox_item_is_acknowledged_as_its_exchange_says() {
    let mut kv = Mem::default();
    let id = RequestId([1; 16]);
    fold(&mut kv, 1, &with_deadlines(1));
    let deadlines = "infoshare-deadlines";
    let later = [
        by(deadlines, Event::RequestOverdue { request_id: id }),
        by("police", Event::NoticesAcknowledged { request_id: id }),
        by(deadlines, Event::RequestExpired { request_id: id }),
    ];
    for (index, record) in (2..).zip(&later) {
        fold(&mut kv, index, record);
    }
    let police: Vec<_> = inbox_of(&kv, "police")
        .into_iter()
        .map(|e| (e.notice, e.acknowledged, e.from))
        .collect();
    assert_eq!(
        police,
        vec![
            (
                Some(NoticeKind::Overdue),
                true,
                "infoshare-deadlines".to_string()
            ),
            (
                Some(NoticeKind::Expired),
                false,
                "infoshare-deadlines".to_string()
            ),
        ]
    );
    let ot: Vec<_> = inbox_of(&kv, "oranga-tamariki")
        .into_iter()
        .map(|e| (e.kind, e.notice, e.acknowledged))
        .collect();
    assert_eq!(
        ot,
        vec![
            (MessageKind::Request, None, false),
            (MessageKind::Notice, Some(NoticeKind::Overdue), false),
        ],
        "the requester's acknowledgement is not the recipient's"
    );
    fold(
        &mut kv,
        5,
        &by("police", Event::NoticesAcknowledged { request_id: id }),
    );
    assert!(inbox_of(&kv, "police").iter().all(|e| e.acknowledged));

    let mut kv = Mem::default();
    fold(&mut kv, 1, &with_deadlines(1));
    let mut answer = all_answer();
    answer.actor.id = "oranga-tamariki".into();
    fold(&mut kv, 2, &answer);
    let item = |kv: &Mem| inbox_of(kv, "police").pop().unwrap();
    assert_eq!(
        (item(&kv).kind, item(&kv).acknowledged),
        (MessageKind::Response, false)
    );
    fold(
        &mut kv,
        3,
        &by("police", Event::ResponseAcknowledged { request_id: id }),
    );
    assert!(item(&kv).acknowledged);
    assert!(
        inbox_of(&kv, "oranga-tamariki")
            .iter()
            .all(|e| !e.acknowledged),
        "the request itself was never acknowledged"
    );
}

/// Every exchange body is found through its exchange's meta at the record that commits to it
/// (an engine that keeps a body in its record's row reads it so), and no record is named for a
/// body the exchange does not have.
#[test]
fn each_body_is_found_at_the_record_that_commits_to_it() {
    let mut kv = Mem::default();
    let update = crate::records::tests::all_kinds()
        .into_iter()
        .find(|r| matches!(r.event, Event::UpdateSubmitted(_)))
        .unwrap();
    let withdrawal = by(
        "police",
        Event::RequestWithdrawn(crate::records::RequestWithdrawn {
            request_id: RequestId([3; 16]),
            staff: [1; 32],
            body_commitment: [2; 32],
        }),
    );
    let records = [
        with_deadlines(1),
        all_answer(),
        with_deadlines(3),
        withdrawal,
        update,
        with_deadlines(6),
    ];
    for (at, record) in records.iter().enumerate() {
        fold(&mut kv, at as u64 + 1, record);
    }
    for (at, record) in records.iter().enumerate() {
        let (kind, id) = record
            .event
            .body()
            .expect("each of these commits to a body");
        let meta = request_meta(&kv, &id).unwrap().unwrap();
        assert_eq!(
            meta.body_record(kind),
            Some(at as u64 + 1),
            "{kind} of {id}"
        );
    }
    let unanswered = request_meta(&kv, &RequestId([6; 16])).unwrap().unwrap();
    for kind in [
        MessageKind::Response,
        MessageKind::Withdrawal,
        MessageKind::Disclosure,
        MessageKind::Protocol,
        MessageKind::Notice,
    ] {
        assert_eq!(unanswered.body_record(kind), None, "{kind}");
    }
}

/// The work and expiry keys are exactly what the exchanges' metas imply (`work::entries`), at
/// every step of a request's life, so that an engine may keep them with the meta instead.
#[test]
fn the_work_and_expiry_keys_are_what_the_metas_imply() {
    let implied = |kv: &Mem| {
        let mut keys: Vec<Vec<u8>> = keys_under(kv, b"r")
            .iter()
            .flat_map(|k| {
                let e = work::entries(&RequestMeta::decode(&kv.0[k]).unwrap());
                [e.work, e.expiry]
            })
            .flatten()
            .collect();
        keys.sort();
        keys
    };
    let held = |kv: &Mem| {
        let mut keys = keys_under(kv, work::WORK);
        keys.extend(keys_under(kv, work::EXPIRY));
        keys.sort();
        keys
    };
    let id = RequestId([1; 16]);
    let mut answer = all_answer();
    answer.actor.id = "oranga-tamariki".into();
    let steps = [
        by(
            "oranga-tamariki",
            Event::RequestAcknowledged { request_id: id },
        ),
        by(
            "infoshare-deadlines",
            Event::RequestOverdue { request_id: id },
        ),
        by("police", Event::NoticesAcknowledged { request_id: id }),
        answer,
        by("police", Event::ResponseAcknowledged { request_id: id }),
    ];
    let mut kv = Mem::default();
    fold(&mut kv, 1, &with_deadlines(1));
    let mut seen = vec![held(&kv)];
    assert_eq!(held(&kv), implied(&kv));
    for (i, step) in steps.iter().enumerate() {
        fold(&mut kv, i as u64 + 2, step);
        assert_eq!(held(&kv), implied(&kv), "after step {}", i + 2);
        seen.push(held(&kv));
    }
    // Entered, out of the expiry index, moved to rank 0, out of the work.
    assert_eq!(
        seen.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 1, 1, 1, 0, 0]
    );
    assert_ne!(seen[1], seen[2], "overdue moves the work key");
    // Withdrawn or expired before acknowledgement: both go at once.
    for closing in [
        Event::RequestWithdrawn(crate::records::RequestWithdrawn {
            request_id: id,
            staff: [1; 32],
            body_commitment: [2; 32],
        }),
        Event::RequestExpired { request_id: id },
    ] {
        let mut kv = Mem::default();
        fold(&mut kv, 1, &with_deadlines(1));
        fold(&mut kv, 2, &by("police", closing));
        assert!(held(&kv).is_empty());
        assert_eq!(held(&kv), implied(&kv));
    }
}
