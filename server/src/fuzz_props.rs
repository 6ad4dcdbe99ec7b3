//! Property tests: arbitrary input on every path from the wire never panics the server —
//! protobuf bytes decoded as each request message and validated, page tokens, log record and
//! body decoding, protocol documents. (Fuzz targets for the same paths are in `fuzz/`.)

use infoshare_proto::v1;
use proptest::prelude::*;
use prost::Message;

use crate::records::Record;
use crate::store::bodies::BodyEntry;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_protobuf_bytes_never_panic_validation(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = v1::SubmitRequestRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::request(&m, crate::clock::Clock::system().today());
        }
        if let Ok(m) = v1::RespondRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::response(&m);
        }
        if let Ok(m) = v1::DiscloseRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::disclosure(&m, crate::clock::Clock::system().today());
        }
        if let Ok(m) = v1::AcknowledgeRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::request_id("request_id", &m.request_id);
            let _ = crate::validate::message_kind("kind", m.kind);
        }
        if let Ok(m) = v1::WithdrawRequestRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::withdrawal(&m);
        }
        if let Ok(m) = v1::SendUpdateRequest::decode(bytes.as_slice()) {
            let _ = crate::validate::update(&m);
        }
        if let Ok(m) = v1::ListInboxRequest::decode(bytes.as_slice()) {
            let _ = crate::broker::PageToken::parse(&m.page_token);
        }
    }

    #[test]
    fn random_page_tokens_never_panic_and_parse_back_only_as_given(text in ".{0,60}") {
        if let Ok(token) = crate::broker::PageToken::parse(&text) {
            prop_assert_eq!(crate::broker::PageToken::parse(&token.render()).unwrap(), token);
        }
    }

    #[test]
    fn random_strings_in_every_field_never_panic_validation(
        s in proptest::collection::vec(".{0,80}", 12),
        n in proptest::collection::vec(any::<i32>(), 6),
    ) {
        let m = v1::SubmitRequestRequest {
            idempotency_key: s[0].clone(),
            request: Some(v1::InformationRequest {
                recipient_agency_id: s[1].clone(),
                authority: n[0],
                protocol_id: s[2].clone(),
                purpose: s[3].clone(),
                subject: Some(v1::Subject {
                    family_name: s[4].clone(),
                    given_names: s[5].clone(),
                    date_of_birth: s[6].clone(),
                    identifiers: vec![v1::AgencyIdentifier { scheme: s[7].clone(), value: s[8].clone() }],
                }),
                categories: vec![s[9].clone(), s[10].clone()],
                reason: s[11].clone(),
                urgency: n[1],
                classification: n[2],
                consultation: Some(v1::ConsultationRecord { status: n[3], reason_not_consulted: s[0].clone() }),
                staff_id: s[1].clone(),
            }),
            follows_request_id: s[2].clone(),
        };
        let _ = crate::validate::request(&m, crate::clock::Clock::system().today());
    }

    #[test]
    fn random_bytes_never_panic_record_or_body_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok((version, r)) = Record::decode_versioned(&bytes) {
            // Whatever decodes re-encodes to the same bytes: the format is canonical.
            prop_assert_eq!(r.encode_as(version), bytes.clone());
        }
        let _ = BodyEntry::decode(&bytes);
    }

    #[test]
    fn random_documents_never_panic_the_protocol_parser(text in ".{0,300}") {
        let _ = crate::protocol::Protocol::from_toml(&text);
    }
}
