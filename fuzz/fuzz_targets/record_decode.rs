//! Log record decoding: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use infoshare_server::records::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encode(), data);
    }
    let _ = infoshare_server::store::bodies::BodyEntry::decode(data);
});
