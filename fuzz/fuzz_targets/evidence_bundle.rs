//! Evidence bundles (read by `infoshare audit verify-bundle` from files others hand over):
//! verification never panics, with the bundle's own key or a pinned one.
#![no_main]

use infoshare_client::{api, verify};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A real log key, so the signature paths are reached too.
static KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let pkcs8 = infoshare_tlog::NoteSigner::generate_pkcs8().unwrap();
    infoshare_tlog::NoteSigner::new("infoshare.dev/log", &pkcs8)
        .unwrap()
        .verifier_key()
});

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = api::EvidenceBundle::decode(data) {
        let _ = verify::bundle(&bundle, None);
        let _ = verify::bundle(&bundle, Some(KEY.as_str()));
    }
});
