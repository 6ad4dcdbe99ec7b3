//! The request message of every RPC, from arbitrary bytes, through its validation: never panics.
//! The first byte picks the RPC.
#![no_main]

use infoshare_proto::v1;
use infoshare_server::validate;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let today = infoshare_server::clock::Clock::system().today();
    match which % 15 {
        0 => {
            if let Ok(m) = v1::SubmitRequestRequest::decode(bytes) {
                let _ = validate::request(&m, today);
            }
        }
        1 => {
            if let Ok(m) = v1::RespondRequest::decode(bytes) {
                let _ = validate::response(&m);
            }
        }
        2 => {
            if let Ok(m) = v1::DiscloseRequest::decode(bytes) {
                let _ = validate::disclosure(&m, today);
            }
        }
        3 => {
            if let Ok(m) = v1::AcknowledgeRequest::decode(bytes) {
                let _ = validate::request_id("request_id", &m.request_id);
                let _ = validate::message_kind("kind", m.kind);
            }
        }
        4 => {
            if let Ok(m) = v1::ListInboxRequest::decode(bytes) {
                let _ = validate::page_size(m.page_size);
            }
        }
        5 => {
            if let Ok(m) = v1::GetRequestRequest::decode(bytes) {
                let _ = validate::request_id("request_id", &m.request_id);
            }
        }
        6 => {
            if let Ok(m) = v1::ApproveProtocolRequest::decode(bytes) {
                let _ = validate::protocol_id("protocol_id", &m.protocol_id);
                let _ = validate::role_title("approver_role", &m.approver_role);
            }
        }
        7 => {
            if let Ok(m) = v1::RegisterProtocolRequest::decode(bytes) {
                let _ = infoshare_server::text::forbidden_char(&m.document_toml, &['\n', '\r', '\t']);
                let _ = infoshare_server::protocol::Protocol::from_toml(&m.document_toml);
            }
        }
        8 => {
            if let Ok(m) = v1::QueryRecordsRequest::decode(bytes)
                && let Some(s) = m.filter.and_then(|f| f.subject)
            {
                let subject = v1::Subject {
                    family_name: s.family_name,
                    given_names: s.given_names,
                    date_of_birth: s.date_of_birth,
                    identifiers: s.identifier.into_iter().collect(),
                };
                let _ = validate::subject_for_audit("filter.subject", &subject, today);
            }
        }
        9 => {
            if let Ok(m) = v1::LegalHoldRequest::decode(bytes) {
                let _ = validate::request_id("request_id", &m.request_id);
            }
        }
        10 => {
            if let Ok(m) = v1::ChangeProtocolStateRequest::decode(bytes) {
                let _ = validate::protocol_id("protocol_id", &m.protocol_id);
            }
        }
        11 => {
            if let Ok(m) = v1::WithdrawRequestRequest::decode(bytes) {
                let _ = validate::withdrawal(&m);
            }
        }
        12 => {
            if let Ok(m) = v1::SendUpdateRequest::decode(bytes) {
                let _ = validate::update(&m);
            }
        }
        13 => {
            if let Ok(m) = v1::ListInboxRequest::decode(bytes) {
                let _ = infoshare_server::broker::PageToken::parse(&m.page_token);
            }
        }
        _ => {
            if let Ok(m) = v1::GetProtocolRequest::decode(bytes) {
                let _ = validate::protocol_id("protocol_id", &m.protocol_id);
            }
        }
    }
});
