//! Request validation on arbitrary protobuf input: never panics.
#![no_main]

use infoshare_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = v1::SubmitRequestRequest::decode(data) {
        let _ = infoshare_server::validate::request(&m, infoshare_server::clock::Clock::system().today());
    }
    if let Ok(m) = v1::RespondRequest::decode(data) {
        let _ = infoshare_server::validate::response(&m);
    }
    if let Ok(m) = v1::DiscloseRequest::decode(data) {
        let _ = infoshare_server::validate::disclosure(&m, infoshare_server::clock::Clock::system().today());
    }
});
