//! The caseworker's workflow on a broker in this process: due times in New Zealand working
//! days, overdue requests and their notices, the inbox in priority order, the outbox,
//! withdrawal, updates after an answer, referral and sending on, expiry. Every refused
//! transition is logged with its reason.

use super::*;
use infoshare_server::broker::PageToken;
use infoshare_server::error::BrokerError;
use infoshare_server::records::code;

/// Friday 15 January 2027, 06:00 NZDT: the world's clock at start.
const START: u64 = infoshare_tests::in_process::JAN_15_2027_0600_NZ;
/// End of Tuesday 19 January 2027 in New Zealand (2 working days after Friday 15): 00:00
/// NZDT on the 20th, 11:00 UTC on the 19th.
const PRIORITY_DUE: u64 = 1_800_356_400_000;
/// 4 hours after the start (immediate safety under the protocol defaults).
const IMMEDIATE_DUE: u64 = START + 4 * 3_600_000;
/// End of Friday 22 January 2027 in New Zealand: 5 working days after Friday 15 (the default
/// collection window).
const COLLECTION_ENDS: u64 = 1_800_615_600_000;

fn request(urgency: api::Urgency) -> api::InformationRequest {
    let mut r = sample_request("rangitoto-school-board");
    r.urgency = urgency as i32;
    r
}

fn update(request_id: &str, key: &str, category: &str) -> v1::SendUpdateRequest {
    v1::SendUpdateRequest {
        request_id: request_id.into(),
        update: Some(v1::InformationUpdate {
            items: vec![api::DisclosedItem {
                category: category.into(),
                classification: api::Classification::InConfidence as i32,
                content: "Attendance up to 70% since the meeting.".into(),
            }],
            explanation: "New term's figures.".into(),
            staff_id: "attendance-officer-7".into(),
            consultation: Some(infoshare_tests::consulted()),
        }),
        idempotency_key: key.into(),
    }
}

fn withdrawal(request_id: &str, reason: &str) -> v1::WithdrawRequestRequest {
    v1::WithdrawRequestRequest {
        request_id: request_id.into(),
        withdrawal: Some(v1::Withdrawal {
            reason: reason.into(),
            staff_id: "constable-4821".into(),
        }),
    }
}

/// A decline as not held, suggesting `referral`.
fn not_held(referral: &str) -> api::InformationResponse {
    api::InformationResponse {
        decision: api::Decision::Decline as i32,
        decline_ground: api::DeclineGround::NotHeld as i32,
        explanation: "We hold no records for Aroha; the Ministry may.".into(),
        staff_id: "attendance-officer-7".into(),
        referred_agency_id: referral.into(),
        ..Default::default()
    }
}

/// The reason code and rule of the last record, which must be a refusal.
fn last_denial(world: &World) -> (String, String) {
    match world
        .broker
        .ledger()
        .decoded(world.log_size())
        .unwrap()
        .event
    {
        Event::Denied(d) => (d.reason_code, d.rule),
        other => panic!("last record is {}", event_name(other.code())),
    }
}

/// `r` was refused for `reason`, and the refusal is the last record of the log.
fn refused<T: std::fmt::Debug>(world: &World, r: Result<T, BrokerError>, reason: &str) {
    assert_eq!(code_of(r), reason);
    assert_eq!(last_denial(world).0, reason);
}

async fn detail(world: &World, who: &str, id: &str) -> infoshare_server::broker::RequestDetail {
    world
        .broker
        .get_request(&world.agency(who), id)
        .await
        .unwrap()
}

/// Codes of the events in the log since `from` (exclusive).
fn events_since(world: &World, from: u64) -> Vec<u8> {
    (from + 1..=world.log_size())
        .map(|i| world.broker.ledger().decoded(i).unwrap().event.code())
        .collect()
}

/// A request gets its due time from its protocol's response time for its urgency, counted in
/// New Zealand working days; past it unanswered, the deadline run marks it overdue once (a
/// record, a notice to both parties), and the recipient's inbox in priority order lists it
/// first, then the others by urgency.
async fn requests_fall_due_on_new_zealand_working_days(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let mut ids = Vec::new();
    for (key, urgency) in [
        ("routine", api::Urgency::Routine),
        ("priority", api::Urgency::Priority),
        ("immediate", api::Urgency::ImmediateSafety),
    ] {
        let sent = world
            .broker
            .submit_request(&police, &submit(request(urgency), key))
            .await
            .unwrap();
        ids.push(sent.request_id.to_string());
    }
    let [routine, priority, immediate] = [ids[0].clone(), ids[1].clone(), ids[2].clone()];
    let meta = detail(&world, "police", &priority).await.meta;
    assert_eq!(meta.due_ms, PRIORITY_DUE);
    assert_eq!(meta.expires_ms, COLLECTION_ENDS);
    assert_eq!(
        detail(&world, "rangitoto-school-board", &immediate)
            .await
            .meta
            .due_ms,
        IMMEDIATE_DUE
    );

    // Before any is due: the recipient's work in urgency order, nothing marked.
    let order = |world: &World| {
        let (items, _) = world
            .broker
            .inbox_by_priority(&school, PageToken::Start, 100, false)
            .unwrap();
        items
            .iter()
            .map(|i| i.entry.request_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        order(&world),
        [immediate.clone(), priority.clone(), routine.clone()]
    );
    assert_eq!(world.run_deadlines().await.overdue, 0);

    // Past the immediate one's due time: it alone is overdue, once.
    world.advance_ms(IMMEDIATE_DUE - START);
    let before = world.log_size();
    assert_eq!(world.run_deadlines().await.overdue, 1);
    assert_eq!(events_since(&world, before), [code::REQUEST_OVERDUE]);
    assert_eq!(world.run_deadlines().await.overdue, 0, "marked once");
    assert!(detail(&world, "police", &immediate).await.meta.overdue());
    for who in ["police", "rangitoto-school-board"] {
        let (items, _) = world
            .broker
            .inbox_page(&world.agency(who), 0, 100, false)
            .unwrap();
        let notices: Vec<_> = items
            .iter()
            .filter(|i| i.entry.kind == MessageKind::Notice)
            .collect();
        assert_eq!(notices.len(), 1, "{who}");
        assert_eq!(notices[0].entry.request_id.to_string(), immediate);
    }

    // Answering the routine one takes it out of the work; at the priority one's due time it is
    // overdue too and goes first (overdue ones by due time), the answered one after them.
    world
        .broker
        .respond(&school, &respond(&routine, sample_disclosure()))
        .await
        .unwrap();
    world.advance_ms(PRIORITY_DUE - IMMEDIATE_DUE - 1);
    assert_eq!(world.run_deadlines().await.overdue, 0, "not due a ms early");
    world.advance_ms(1);
    assert_eq!(world.run_deadlines().await.overdue, 1);
    assert_eq!(order(&world)[..2], [immediate.clone(), priority.clone()]);
    assert_eq!(order(&world).iter().filter(|i| **i == routine).count(), 1);

    // A page of one at a time walks the same order, then the rest of the inbox.
    let mut token = PageToken::Start;
    let mut walked = Vec::new();
    loop {
        let (items, next) = world
            .broker
            .inbox_by_priority(&school, token, 1, false)
            .unwrap();
        walked.extend(items.iter().map(|i| i.cursor));
        match next {
            Some(t) => token = t,
            None => break,
        }
    }
    let (all, next) = world
        .broker
        .inbox_by_priority(&school, PageToken::Start, 100, false)
        .unwrap();
    assert!(next.is_none());
    assert_eq!(walked, all.iter().map(|i| i.cursor).collect::<Vec<_>>());
}
on_memory_and_postgres!(requests_fall_due_on_new_zealand_working_days);

/// The requester withdraws an unanswered request with reasons: the recipient's item shows it
/// withdrawn and a WITHDRAWN notice carries the reasons; answering it then is refused and
/// logged; withdrawing again answers with the first withdrawal; nobody else can withdraw it,
/// nor an answered one; retention erases the reasons with the rest.
async fn a_withdrawn_request_cannot_be_answered(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let id = world
        .submit_sample(&police, "w")
        .await
        .request_id
        .to_string();

    let r = world
        .broker
        .withdraw(&police, &withdrawal(&id, " \u{200B}"))
        .await;
    match r {
        Err(e) => assert!(e.to_string().contains("withdrawal.reason"), "{e}"),
        Ok(_) => panic!("reasons that say nothing were accepted"),
    }
    refused(
        &world,
        world
            .broker
            .withdraw(&school, &withdrawal(&id, "Not ours."))
            .await,
        "NOT_THE_REQUESTER",
    );

    let first = world
        .broker
        .withdraw(&police, &withdrawal(&id, "Aroha is back at school."))
        .await
        .unwrap();
    assert!(!first.already);
    verify(&world, &first.receipt);
    let again = world
        .broker
        .withdraw(&police, &withdrawal(&id, "Aroha is back at school."))
        .await
        .unwrap();
    assert_eq!((again.already, again.log_index), (true, first.log_index));

    let seen = detail(&world, "rangitoto-school-board", &id).await;
    assert_eq!(seen.meta.status, RequestStatus::Withdrawn);
    let reasons = v1::Withdrawal::decode(seen.withdrawal.unwrap().body.as_slice()).unwrap();
    assert_eq!(reasons.reason, "Aroha is back at school.");
    let (items, _) = world.broker.inbox_page(&school, 0, 100, false).unwrap();
    let notice = items.last().unwrap();
    assert_eq!(notice.entry.kind, MessageKind::Notice);
    assert!(notice.body.is_some(), "the notice carries the reasons");
    assert!(
        world
            .broker
            .inbox_by_priority(&school, PageToken::Start, 100, false)
            .unwrap()
            .0
            .iter()
            .all(|i| i.meta.status == RequestStatus::Withdrawn
                || i.entry.kind != MessageKind::Request),
        "a withdrawn request awaits no answer"
    );

    refused(
        &world,
        world
            .broker
            .respond(&school, &respond(&id, sample_disclosure()))
            .await,
        "REQUEST_WITHDRAWN",
    );
    // An answered request cannot be withdrawn.
    let answered = world
        .submit_sample(&police, "w2")
        .await
        .request_id
        .to_string();
    world
        .broker
        .respond(&school, &respond(&answered, sample_disclosure()))
        .await
        .unwrap();
    refused(
        &world,
        world
            .broker
            .withdraw(&police, &withdrawal(&answered, "Too late."))
            .await,
        "ALREADY_ANSWERED",
    );

    // Retention erases the reasons (bit 16) with the request.
    world.advance_days(366);
    world.run_retention().await;
    let purged = (1..=world.log_size())
        .filter_map(|i| match world.broker.ledger().decoded(i).unwrap().event {
            Event::BodiesPurged { request_id, kinds } if request_id.to_string() == id => {
                Some(kinds)
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(purged, [1 | 16]);
    assert!(detail(&world, "police", &id).await.withdrawal.is_none());
}
on_memory_and_postgres!(a_withdrawn_request_cannot_be_answered);

/// The agency that answered a request sends an update: checked like a response (only
/// categories requested), an exchange of its own in the requester's inbox, linked to the
/// request in its detail and timeline, acknowledged by the requester; an unanswered request
/// cannot be updated, nor by anyone but its recipient; a retry replays.
async fn updates_follow_an_answer(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let id = world
        .submit_sample(&police, "u")
        .await
        .request_id
        .to_string();

    refused(
        &world,
        world
            .broker
            .send_update(&school, &update(&id, "u1", "attendance"))
            .await,
        "NOT_ANSWERED_YET",
    );
    world
        .broker
        .respond(&school, &respond(&id, sample_disclosure()))
        .await
        .unwrap();
    refused(
        &world,
        world
            .broker
            .send_update(&police, &update(&id, "u1", "attendance"))
            .await,
        "NOT_THE_RECIPIENT",
    );
    refused(
        &world,
        world
            .broker
            .send_update(&school, &update(&id, "u1", "care-status"))
            .await,
        "DISCLOSURE_NOT_REQUESTED",
    );

    let sent = world
        .broker
        .send_update(&school, &update(&id, "u1", "attendance"))
        .await
        .unwrap();
    verify(&world, &sent.receipt);
    let replay = world
        .broker
        .send_update(&school, &update(&id, "u1", "attendance"))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.request_id, sent.request_id);
    assert_eq!(
        code_of(
            world
                .broker
                .send_update(&school, &update(&id, "u1", "learning-support"))
                .await
        ),
        "IDEMPOTENCY_KEY_REUSED"
    );

    let update_id = sent.request_id.to_string();
    let (items, _) = world.broker.inbox_page(&police, 0, 100, false).unwrap();
    let item = items.last().unwrap();
    assert_eq!(item.entry.kind, MessageKind::Update);
    assert_eq!(item.meta.linked.unwrap().to_string(), id);
    let request = detail(&world, "police", &id).await;
    assert_eq!(request.updates.len(), 1);
    assert_eq!(request.updates[0].update_id.to_string(), update_id);
    assert!(
        request
            .timeline
            .iter()
            .any(|(_, r)| matches!(r.event, Event::UpdateSubmitted(_)))
    );

    refused(
        &world,
        world
            .broker
            .acknowledge(&police, &ack(&update_id, MessageKind::Request))
            .await,
        "WRONG_MESSAGE_KIND",
    );
    let acked = world
        .broker
        .acknowledge(&police, &ack(&update_id, MessageKind::Update))
        .await
        .unwrap();
    assert!(!acked.already);
    assert!(detail(&world, "police", &id).await.updates[0].acknowledged);
    assert_eq!(
        detail(&world, "police", &update_id).await.meta.status,
        RequestStatus::Completed
    );
}
on_memory_and_postgres!(updates_follow_an_answer);

/// A recipient that does not hold the information declines as not held and names another
/// party to the protocol; the requester sends the request on to it, linked; a referral to an
/// agency outside the protocol is refused, as is one without the not-held ground, and sending
/// on a request that was answered in full.
async fn a_referral_is_sent_on_to_the_agency_named(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let id = world
        .submit_sample(&police, "r")
        .await
        .request_id
        .to_string();

    refused(
        &world,
        world
            .broker
            .respond(&school, &respond(&id, not_held("health-nz")))
            .await,
        "REFERRAL_NOT_PARTY",
    );
    assert_eq!(last_denial(&world).1, "referral.party");
    let mut wrong_ground = not_held("education");
    wrong_ground.decline_ground = api::DeclineGround::EndangersSafety as i32;
    match world
        .broker
        .respond(&school, &respond(&id, wrong_ground))
        .await
    {
        Err(e) => assert!(e.to_string().contains("response.referred_agency_id"), "{e}"),
        Ok(_) => panic!("a referral without the not-held ground was accepted"),
    }
    world
        .broker
        .respond(&school, &respond(&id, not_held("education")))
        .await
        .unwrap();
    assert_eq!(
        detail(&world, "police", &id).await.meta.referral,
        "education"
    );

    let mut onward = sample_request("education");
    onward.reason = "Referred by the school board.".into();
    let follows = |key: &str, to: &str| v1::SubmitRequestRequest {
        request: Some({
            let mut r = onward.clone();
            r.recipient_agency_id = to.into();
            r
        }),
        idempotency_key: key.into(),
        follows_request_id: id.clone(),
    };
    // Only its requester sends a request on.
    refused(
        &world,
        world
            .broker
            .submit_request(&school, &{
                let mut f = follows("s1", "education");
                f.request.as_mut().unwrap().categories = vec!["attendance".into()];
                f
            })
            .await,
        "NOT_THE_REQUESTER",
    );
    let sent = world
        .broker
        .submit_request(&police, &follows("on-1", "education"))
        .await
        .unwrap();
    let onward_id = sent.request_id.to_string();
    let original = detail(&world, "police", &id).await;
    assert_eq!(original.resent_as, [sent.request_id]);
    assert_eq!(
        detail(&world, "education", &onward_id).await.meta.linked,
        Some(original.request_id)
    );

    // A request answered in full is not sent on.
    let full = world
        .submit_sample(&police, "f")
        .await
        .request_id
        .to_string();
    let mut everything = sample_disclosure();
    everything.decision = api::Decision::Disclose as i32;
    everything.decline_ground = 0;
    everything.explanation.clear();
    everything.items.push(api::DisclosedItem {
        category: "learning-support".into(),
        classification: api::Classification::InConfidence as i32,
        content: "Reading support twice a week.".into(),
    });
    world
        .broker
        .respond(&school, &respond(&full, everything))
        .await
        .unwrap();
    let mut again = follows("on-2", "education");
    again.follows_request_id = full;
    refused(
        &world,
        world.broker.submit_request(&police, &again).await,
        "NOT_RESENDABLE",
    );
}
on_memory_and_postgres!(a_referral_is_sent_on_to_the_agency_named);

/// A request its recipient does not acknowledge within the collection window expires: a
/// non-delivery notice to the requester, acknowledging or answering it is refused, and the
/// requester sends it again; an acknowledged request does not expire.
async fn an_uncollected_request_expires_and_is_sent_again(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let lapsing = world
        .submit_sample(&police, "e1")
        .await
        .request_id
        .to_string();
    let collected = world
        .submit_sample(&police, "e2")
        .await
        .request_id
        .to_string();
    world
        .broker
        .acknowledge(&school, &ack(&collected, MessageKind::Request))
        .await
        .unwrap();

    world.advance_ms(COLLECTION_ENDS - START - 1);
    assert_eq!(world.run_deadlines().await.expired, 0);
    world.advance_ms(1);
    let run = world.run_deadlines().await;
    assert_eq!(run.expired, 1);
    assert_eq!(
        detail(&world, "police", &lapsing).await.meta.status,
        RequestStatus::Expired
    );
    assert_ne!(
        detail(&world, "police", &collected).await.meta.status,
        RequestStatus::Expired
    );
    let (items, _) = world.broker.inbox_page(&police, 0, 100, false).unwrap();
    assert!(items.iter().any(|i| i.entry.kind == MessageKind::Notice
        && i.entry.notice == Some(infoshare_server::domain::NoticeKind::Expired)
        && i.entry.request_id.to_string() == lapsing));

    refused(
        &world,
        world
            .broker
            .acknowledge(&school, &ack(&lapsing, MessageKind::Request))
            .await,
        "REQUEST_EXPIRED",
    );
    refused(
        &world,
        world
            .broker
            .respond(&school, &respond(&lapsing, sample_disclosure()))
            .await,
        "REQUEST_EXPIRED",
    );
    let again = v1::SubmitRequestRequest {
        request: Some(sample_request("rangitoto-school-board")),
        idempotency_key: "e1-again".into(),
        follows_request_id: lapsing.clone(),
    };
    let sent = world.broker.submit_request(&police, &again).await.unwrap();
    assert_eq!(
        detail(&world, "police", &lapsing).await.resent_as,
        [sent.request_id]
    );
}
on_memory_and_postgres!(an_uncollected_request_expires_and_is_sent_again);

/// Each party acknowledges its notices about a request at once; acknowledging again answers
/// with the first; where there is none, it is refused.
async fn notices_are_acknowledged_by_the_party_they_reached(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let id = world
        .submit_sample(&police, "n")
        .await
        .request_id
        .to_string();
    refused(
        &world,
        world
            .broker
            .acknowledge(&police, &ack(&id, MessageKind::Notice))
            .await,
        "NO_NOTICE",
    );
    world.advance_ms(PRIORITY_DUE - START);
    world.run_deadlines().await;
    let first = world
        .broker
        .acknowledge(&police, &ack(&id, MessageKind::Notice))
        .await
        .unwrap();
    let again = world
        .broker
        .acknowledge(&police, &ack(&id, MessageKind::Notice))
        .await
        .unwrap();
    assert_eq!((again.already, again.log_index), (true, first.log_index));
    let unacked = |who: &infoshare_server::broker::Caller| {
        world
            .broker
            .inbox_page(who, 0, 100, true)
            .unwrap()
            .0
            .iter()
            .filter(|i| i.entry.kind == MessageKind::Notice)
            .count()
    };
    assert_eq!((unacked(&police), unacked(&school)), (0, 1));
}
on_memory_and_postgres!(notices_are_acknowledged_by_the_party_they_reached);

/// A page of unacknowledged items goes on past the acknowledged ones it skipped, and looks at a
/// bounded number of items: an inbox item is read from its record and its exchange's meta, so
/// skipping costs reads. Stopped by the bound, a page says there is more and where to go on.
async fn unacknowledged_pages_go_on_past_what_they_skipped(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let mut ids = Vec::new();
    for key in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        ids.push(world.submit_sample(&police, key).await.request_id);
    }
    for id in &ids[..4] {
        world
            .broker
            .acknowledge(&school, &ack(&id.to_string(), MessageKind::Request))
            .await
            .unwrap();
    }
    let ids_of = |items: &[infoshare_server::broker::InboxItem]| {
        items.iter().map(|i| i.entry.request_id).collect::<Vec<_>>()
    };
    let (items, more, through) = world
        .broker
        .inbox_page_through(&school, 0, 100, true)
        .unwrap();
    assert_eq!(ids_of(&items), ids[4..]);
    assert!(!more);
    assert_eq!(through, items[1].cursor);
    assert!(items.iter().all(|i| !i.entry.acknowledged));
    // In priority order too: the requests awaiting the school's answer that it acknowledged
    // are left out.
    let (by_priority, _) = world
        .broker
        .inbox_by_priority(&school, PageToken::Start, 100, true)
        .unwrap();
    let mut unacked = ids_of(&by_priority);
    unacked.sort();
    let mut expected = ids[4..].to_vec();
    expected.sort();
    assert_eq!(unacked, expected);

    // Pages of one read two cursors a round: two rounds of acknowledged items pass the bound.
    let agency = &school.principal.id;
    let views = world.broker.ledger().views();
    let stopped = views.inbox_page(agency, 0, 1, true, 3).unwrap();
    assert!(stopped.items.is_empty());
    assert!(stopped.more, "stopped by the bound, not at the end");
    assert_eq!(stopped.looked, 4);
    let (all, _) = world.broker.inbox_page(&school, 0, 100, false).unwrap();
    assert_eq!(stopped.through, all[3].cursor, "past the four it skipped");
    let next = views
        .inbox_page(agency, stopped.through, 1, true, 3)
        .unwrap();
    assert_eq!(next.items.len(), 1);
    assert_eq!(next.items[0].entry.request_id, ids[4]);
    assert!(next.more, "the sixth is unacknowledged too");
    assert_eq!(next.through, next.items[0].cursor);
    let last = views.inbox_page(agency, next.through, 1, true, 3).unwrap();
    assert_eq!(last.items[0].entry.request_id, ids[5]);
    assert!(!last.more);
}
on_memory_and_postgres!(unacknowledged_pages_go_on_past_what_they_skipped);

/// The outbox lists what the caller sent, oldest first, with status and due time, filtered by
/// status and paged; another agency's exchanges are not in it.
async fn the_outbox_lists_what_was_sent(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let mut ids = Vec::new();
    for key in ["o1", "o2", "o3"] {
        ids.push(world.submit_sample(&police, key).await.request_id);
    }
    world
        .broker
        .respond(&school, &respond(&ids[1].to_string(), sample_disclosure()))
        .await
        .unwrap();
    let (all, _, more) = world.broker.outbox_page(&police, 0, 100, &[]).unwrap();
    assert!(!more);
    assert_eq!(all.iter().map(|i| i.request_id).collect::<Vec<_>>(), ids);
    assert_eq!(all[0].meta.due_ms, PRIORITY_DUE);
    assert!(matches!(
        all[1].last_event.1.event,
        Event::ResponseSubmitted(_)
    ));

    let open = [i32::from(RequestStatus::Submitted.code())];
    let (unanswered, _, _) = world.broker.outbox_page(&police, 0, 100, &open).unwrap();
    assert_eq!(
        unanswered.iter().map(|i| i.request_id).collect::<Vec<_>>(),
        [ids[0], ids[2]]
    );
    let (first, next, more) = world.broker.outbox_page(&police, 0, 1, &[]).unwrap();
    assert_eq!((first.len(), more), (1, true));
    let (rest, _, more) = world.broker.outbox_page(&police, next, 100, &[]).unwrap();
    assert_eq!((rest.len(), more), (2, false));
    assert!(
        world
            .broker
            .outbox_page(&school, 0, 100, &[])
            .unwrap()
            .0
            .is_empty()
    );
    match world.broker.outbox_page(&police, 0, 100, &[99]) {
        Err(e) => assert!(e.to_string().contains("statuses[0]"), "{e}"),
        Ok(_) => panic!("an unknown status was accepted"),
    }
}
on_memory_and_postgres!(the_outbox_lists_what_was_sent);

/// Every view key and value a reader sees, audit index entries each as its own key (however
/// the engine grouped them into posting chunks).
fn all_views(world: &World) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    use infoshare_server::store::postings;
    let mut out = std::collections::BTreeMap::new();
    world
        .broker
        .ledger()
        .views()
        .scan(b"", &[0xff; 8], &mut |k, v| {
            match postings::is_index_key(k) {
                true => out.extend(postings::expand(k, v)?.into_iter().map(|e| (e, Vec::new()))),
                false => drop(out.insert(k.to_vec(), v.to_vec())),
            }
            Ok(true)
        })
        .unwrap();
    out
}

/// A database at schema 1 (views in the older layouts) gets its views folded again from the log
/// by the next broker to start: the same views as a broker that wrote them itself.
#[tokio::test]
async fn postgres_views_are_folded_again_by_the_migrations() {
    let Some(world) = World::postgres().await else {
        return;
    };
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let answered = world
        .submit_sample(&police, "m1")
        .await
        .request_id
        .to_string();
    world
        .broker
        .respond(&school, &respond(&answered, sample_disclosure()))
        .await
        .unwrap();
    let withdrawn = world
        .submit_sample(&police, "m2")
        .await
        .request_id
        .to_string();
    world
        .broker
        .withdraw(&police, &withdrawal(&withdrawn, "Resolved."))
        .await
        .unwrap();
    world.submit_sample(&police, "m3").await;
    world.advance_ms(PRIORITY_DUE - START);
    assert_eq!(world.run_deadlines().await.overdue, 1);
    let written = all_views(&world);
    assert!(written.len() > 50, "{}", written.len());

    // Back to schema 1, its views gone and its bodies in the bodies table (a sealed frame
    // begins with its kind, flagged, and its exchange's id), as a broker of before would have
    // left the database.
    let settings = world.database().unwrap();
    let (client, driver) = infoshare_tests::pg_cluster::PgCluster::client(&settings).await;
    client
        .batch_execute(
            "INSERT INTO bodies (kind, request_id, sealed) \
             SELECT (get_byte(body, 0) & 63)::smallint, substring(body from 2 for 16), body \
             FROM log_records WHERE octet_length(body) > 0; \
             ALTER TABLE log_records DROP COLUMN body; \
             ALTER TABLE views DROP COLUMN work, DROP COLUMN expiry; \
             DROP FUNCTION infoshare_advanced; \
             DELETE FROM views; DROP TABLE views_rebuild; \
             DELETE FROM infoshare_schema WHERE version >= 2;",
        )
        .await
        .unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM views", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    drop(client);
    let _ = driver.await;

    let reopened = world.replica().await;
    assert_eq!(all_views(&reopened), written);
    // Its bodies are read where the broker of before left them.
    let detail = reopened
        .broker
        .get_request(&police, &answered)
        .await
        .unwrap();
    assert!(detail.opening.is_some() && detail.response.is_some());
    let detail = reopened
        .broker
        .get_request(&police, &withdrawn)
        .await
        .unwrap();
    assert!(detail.withdrawal.is_some(), "the withdrawal's reasons");
}

/// A retry that arrives while the first submission's batch is being published finds it in the
/// views a moment before the log's head covers it: its receipt waits for the head, rather than
/// failing with "beyond the tree" (seen once in a full run before). Many racing pairs on the
/// embedded engine, whose views of a durable batch are visible before its checkpoint is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racing_retry_gets_the_first_submissions_receipt() {
    let world = std::sync::Arc::new(World::embedded().await);
    let police = world.agency("police");
    let mut tasks = Vec::new();
    for i in 0..1000 {
        for _ in 0..2 {
            let (world, police) = (world.clone(), police.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("race-{i}");
                let input = submit(sample_request("rangitoto-school-board"), &key);
                world.broker.submit_request(&police, &input).await
            }));
        }
    }
    let mut ids = std::collections::HashMap::new();
    for (n, task) in tasks.into_iter().enumerate() {
        let done = task.await.unwrap().unwrap();
        verify(&world, &done.receipt);
        let first = ids.entry(n / 2).or_insert(done.request_id);
        assert_eq!(*first, done.request_id, "one request per key");
    }
}
