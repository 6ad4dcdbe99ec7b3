//! Segment files as read at open and by `--verify-log`: frame checks, then every payload as a
//! log record and as a body frame (plain or sealed), never panic.
#![no_main]

use infoshare_server::records::Record;
use infoshare_server::store::bodies::BodyEntry;
use infoshare_server::store::seal::BodyKeys;
use infoshare_server::store::embedded::segment::check_frame;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static KEYS: LazyLock<BodyKeys> = LazyLock::new(|| BodyKeys::from_secrets(&[(1, [7; 32])]));

fuzz_target!(|data: &[u8]| {
    // After the 16-byte segment header, frames follow one another to the end.
    let mut pos = 16.min(data.len());
    while pos < data.len() {
        let Ok(frame) = check_frame(data, pos) else {
            break;
        };
        let (start, end) = (frame.start, frame.end);
        let payload = &data[start..end];
        if let Ok((version, record)) = Record::decode_versioned(payload) {
            assert_eq!(record.encode_as(version), payload);
        }
        let _ = BodyEntry::decode_key(payload);
        let _ = KEYS.open(payload);
        let _ = BodyEntry::erased(payload);
        pos = end;
    }
    // And a payload on its own, with no framing to get past.
    let _ = KEYS.open(data);
});
