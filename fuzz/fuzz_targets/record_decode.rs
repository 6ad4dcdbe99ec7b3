//! Log record decoding: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use infoshare_server::records::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((version, record)) = Record::decode_versioned(data) {
        assert_eq!(record.encode_as(version), data);
    }
    let _ = infoshare_server::store::bodies::BodyEntry::decode(data);
});
