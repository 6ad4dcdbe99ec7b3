//! Protocol documents (TOML from administrators): parsing and every template and law check
//! never panic.
#![no_main]

use std::sync::LazyLock;

use infoshare_server::protocol::Protocol;
use infoshare_server::registry::{Registry, SAMPLE_REGISTRY};
use libfuzzer_sys::fuzz_target;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry::from_toml(SAMPLE_REGISTRY).unwrap());

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = infoshare_server::text::forbidden_char(text, &['\n', '\r', '\t']);
    if let Ok(p) = Protocol::from_toml(text) {
        let _ = p.check(&REGISTRY);
        let _ = p.review_date();
    }
});
