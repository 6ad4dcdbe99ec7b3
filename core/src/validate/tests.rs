use super::*;

pub(crate) fn good_request() -> v1::SubmitRequestRequest {
    v1::SubmitRequestRequest {
        idempotency_key: "k-1".into(),
        follows_request_id: String::new(),
        request: Some(v1::InformationRequest {
            recipient_agency_id: "oranga-tamariki".into(),
            authority: v1::LegalAuthority::OtaS66c as i32,
            protocol_id: "youth-reengagement".into(),
            purpose: "assess-risk".into(),
            subject: Some(v1::Subject {
                family_name: "Ngata".into(),
                given_names: "Aroha".into(),
                date_of_birth: "2012-03-04".into(),
                identifiers: vec![v1::AgencyIdentifier {
                    scheme: "nhi".into(),
                    value: "ABC1234".into(),
                }],
            }),
            categories: vec!["attendance".into()],
            reason: "Concern raised at school.".into(),
            urgency: v1::Urgency::Routine as i32,
            classification: v1::Classification::InConfidence as i32,
            consultation: Some(v1::ConsultationRecord {
                status: v1::ConsultationStatus::Consulted as i32,
                reason_not_consulted: String::new(),
            }),
            staff_id: "officer-42".into(),
        }),
    }
}

pub(crate) fn today() -> Date {
    Date::from_calendar_date(2026, Month::December, 1).unwrap()
}

fn field_of(r: Result<ValidRequest>) -> String {
    match r {
        Err(BrokerError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn accepts_a_good_request() {
    let v = request(&good_request(), today()).unwrap();
    assert_eq!(v.recipient, "oranga-tamariki");
    assert_eq!(v.authority, Authority::OtaS66C);
    assert_eq!(
        v.subject.identifiers,
        vec![("nhi".into(), "ABC1234".into())]
    );
}

#[test]
fn names_the_bad_field() {
    type Mutation = Box<dyn Fn(&mut v1::SubmitRequestRequest)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("idempotency_key", Box::new(|r| r.idempotency_key.clear())),
        ("request", Box::new(|r| r.request = None)),
        (
            "request.subject",
            Box::new(|r| r.request.as_mut().unwrap().subject = None),
        ),
        (
            "request.authority",
            Box::new(|r| r.request.as_mut().unwrap().authority = 0),
        ),
        (
            "request.authority",
            Box::new(|r| r.request.as_mut().unwrap().authority = 99),
        ),
        (
            "request.classification",
            Box::new(|r| r.request.as_mut().unwrap().classification = -3),
        ),
        (
            "request.recipient_agency_id",
            Box::new(|r| r.request.as_mut().unwrap().recipient_agency_id = "Police!".into()),
        ),
        (
            "request.reason",
            Box::new(|r| r.request.as_mut().unwrap().reason = "x".repeat(4001)),
        ),
        (
            "request.categories",
            Box::new(|r| r.request.as_mut().unwrap().categories.clear()),
        ),
        (
            "request.categories[1]",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .categories
                    .push("attendance".into())
            }),
        ),
        (
            "request.subject.date_of_birth",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .subject
                    .as_mut()
                    .unwrap()
                    .date_of_birth = "2012-02-30".into()
            }),
        ),
        (
            "request.subject.date_of_birth",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .subject
                    .as_mut()
                    .unwrap()
                    .date_of_birth = "3012-02-01".into()
            }),
        ),
        (
            "request.subject.family_name",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .subject
                    .as_mut()
                    .unwrap()
                    .family_name = "a\u{0}b".into()
            }),
        ),
        (
            "request.subject.identifiers[0].scheme",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .subject
                    .as_mut()
                    .unwrap()
                    .identifiers[0]
                    .scheme = String::new()
            }),
        ),
        (
            "request.consultation.reason_not_consulted",
            Box::new(|r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .consultation
                    .as_mut()
                    .unwrap()
                    .status = 2
            }),
        ),
        (
            "request.staff_id",
            Box::new(|r| r.request.as_mut().unwrap().staff_id = "é".into()),
        ),
    ];
    for (field, mutate) in cases {
        let mut r = good_request();
        mutate(&mut r);
        assert_eq!(field_of(request(&r, today())), field);
    }
}

/// Every mandatory free-text field refuses text that says nothing (blanks, zero-width and
/// other default-ignorable characters), naming the field.
#[test]
fn blank_text_is_no_text() {
    type Mutation = fn(&mut v1::InformationRequest, &str);
    let cases: [(&str, Mutation); 5] = [
        ("request.reason", |r, v| r.reason = v.into()),
        ("request.subject.family_name", |r, v| {
            r.subject.as_mut().unwrap().family_name = v.into()
        }),
        ("request.staff_id", |r, v| r.staff_id = v.into()),
        ("request.consultation.reason_not_consulted", |r, v| {
            r.consultation = Some(v1::ConsultationRecord {
                status: v1::ConsultationStatus::NotConsulted as i32,
                reason_not_consulted: v.into(),
            })
        }),
        ("request.subject.family_name", |r, v| {
            r.subject.as_mut().unwrap().family_name = format!("\u{200B}{v}\u{FEFF}")
        }),
    ];
    for (field, mutate) in cases {
        for blank in [" ", "   ", "\u{200B}", " \u{00A0}\u{3000} "] {
            // staff ids are printable ASCII: only the ASCII blank reaches the text check
            if field == "request.staff_id" && !blank.trim_matches(' ').is_empty() {
                continue;
            }
            let mut r = good_request();
            mutate(r.request.as_mut().unwrap(), blank);
            let err = request(&r, today()).unwrap_err();
            assert!(
                matches!(&err, BrokerError::InvalidArgument { field: f, .. } if f == field),
                "{field} = {blank:?}: {err:?}"
            );
        }
    }
    let mut decline = good_response(v1::Decision::Decline);
    let body = decline.response.as_mut().unwrap();
    body.items.clear();
    body.decline_ground = v1::DeclineGround::EndangersSafety as i32;
    body.explanation = " \u{200B} ".into();
    assert!(matches!(
        response(&decline),
        Err(BrokerError::InvalidArgument { ref field, .. }) if field == "response.explanation"
    ));
    let d = v1::DiscloseRequest {
        idempotency_key: " ".into(),
        ..Default::default()
    };
    assert!(matches!(
        disclosure(&d, today()),
        Err(BrokerError::InvalidArgument { ref field, .. }) if field == "idempotency_key"
    ));
}

#[test]
fn structured_text_holds_no_controls_or_bidi_but_content_may() {
    for (field, hostile) in [
        ("request.reason", "fine\u{1b}[2J ALL CLEAR"),
        ("request.reason", "line\rstatus COMPLETED"),
        ("request.subject.family_name", "Ngata\u{202E}evil"),
        ("request.subject.given_names", "Aroha\u{2066}"),
        ("request.subject.family_name", "Nga\nta"),
    ] {
        let mut r = good_request();
        let req = r.request.as_mut().unwrap();
        match field {
            "request.reason" => req.reason = hostile.into(),
            "request.subject.family_name" => {
                req.subject.as_mut().unwrap().family_name = hostile.into()
            }
            _ => req.subject.as_mut().unwrap().given_names = hostile.into(),
        }
        assert_eq!(field_of(request(&r, today())), field, "{hostile:?}");
    }
    let mut ok = good_request();
    ok.request.as_mut().unwrap().reason = "Two lines:\n\tindented".into();
    assert!(request(&ok, today()).is_ok());
    let mut answer = good_response(v1::Decision::Disclose);
    answer.response.as_mut().unwrap().items[0].content = "\u{1b}]52;c;bad\u{7}".into();
    assert!(response(&answer).is_ok(), "item content may carry any text");
}

#[test]
fn a_baby_born_today_in_new_zealand_is_a_valid_subject() {
    let mut r = good_request();
    r.request
        .as_mut()
        .unwrap()
        .subject
        .as_mut()
        .unwrap()
        .date_of_birth = "2026-12-01".into();
    assert!(request(&r, today()).is_ok());
    r.request
        .as_mut()
        .unwrap()
        .subject
        .as_mut()
        .unwrap()
        .date_of_birth = "2026-12-02".into();
    assert_eq!(
        field_of(request(&r, today())),
        "request.subject.date_of_birth"
    );
}

/// A response body with only an explanation (for policy tests).
pub(crate) fn response_body(explanation: &str) -> v1::InformationResponse {
    v1::InformationResponse {
        explanation: explanation.into(),
        ..Default::default()
    }
}

fn good_response(decision: v1::Decision) -> v1::RespondRequest {
    v1::RespondRequest {
        request_id: "ab".repeat(16),
        response: Some(v1::InformationResponse {
            decision: decision as i32,
            items: vec![v1::DisclosedItem {
                category: "attendance".into(),
                classification: v1::Classification::InConfidence as i32,
                content: "Attended 62% this term.".into(),
            }],
            decline_ground: 0,
            explanation: String::new(),
            staff_id: "teacher-7".into(),
            referred_agency_id: String::new(),
            consultation: Some(v1::ConsultationRecord {
                status: 1,
                reason_not_consulted: String::new(),
            }),
        }),
    }
}

#[test]
fn responses_must_be_consistent_with_their_decision() {
    assert!(response(&good_response(v1::Decision::Disclose)).is_ok());
    let mut decline = good_response(v1::Decision::Decline);
    let err = response(&decline).unwrap_err();
    assert!(
        matches!(err, BrokerError::InvalidArgument { ref field, .. } if field == "response.items")
    );
    decline.response.as_mut().unwrap().items.clear();
    // Well-formed; that a ground is missing is the policy's to refuse.
    assert_eq!(response(&decline).unwrap().ground, None);
    decline.response.as_mut().unwrap().decline_ground = v1::DeclineGround::EndangersSafety as i32;
    decline.response.as_mut().unwrap().explanation =
        "Disclosure would put the child at risk.".into();
    assert_eq!(
        response(&decline).unwrap().ground,
        Some(DeclineGround::EndangersSafety)
    );
    let mut bad_id = good_response(v1::Decision::Disclose);
    bad_id.request_id = "nope".into();
    assert!(
        matches!(response(&bad_id), Err(BrokerError::InvalidArgument { ref field, .. }) if field == "request_id")
    );
}
