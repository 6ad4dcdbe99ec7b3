//! Signed checkpoint notes, verifier keys and rotation statements (read by `infoshare audit
//! verify` from the broker's answers and the state file): parsing and verifying never panic.
#![no_main]

use infoshare_client::verify;
use infoshare_tlog::Checkpoint;
use libfuzzer_sys::fuzz_target;

/// A real log key, so the signature paths are reached too.
static KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let pkcs8 = infoshare_tlog::NoteSigner::generate_pkcs8().unwrap();
    infoshare_tlog::NoteSigner::new("infoshare.dev/log", &pkcs8)
        .unwrap()
        .verifier_key()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = verify::verifier(text);
    if let Ok(key) = verify::verifier(&KEY) {
        let _ = verify::checkpoint(text, &key);
    }
    let _ = verify::rotation(text);
    let _ = Checkpoint::parse_body(text);
});
