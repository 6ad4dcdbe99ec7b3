//! The broker's clock: wall time, unless a program embedding the server installs another
//! source first (the end-to-end tests' server binary does, to test retention and New Zealand
//! dates without waiting for them). `infoshare-server` never installs one. Dates are New Zealand
//! dates (Pacific/Auckland), never UTC.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static SOURCE: OnceLock<fn() -> u64> = OnceLock::new();

/// Installs the clock source (Unix milliseconds) for this process; only the first call counts,
/// and it must come before the server starts.
pub fn install(source: fn() -> u64) -> bool {
    SOURCE.set(source).is_ok()
}

/// The wall clock, in Unix milliseconds.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SOURCE.get().map_or_else(system_ms, |source| source())
}

/// Today's New Zealand date: the date the law runs on.
pub fn today() -> time::Date {
    nz_date(now_ms())
}

pub use infoshare_core::calendar::{nz_date, nz_day_start_ms};
