//! The broker's clock: wall time, unless a program embedding the server installs another
//! source first (the end-to-end tests' server binary does, to test retention without waiting
//! for it). `infoshare-server` never installs one.

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

/// Today's date (UTC: at most a day off New Zealand's date).
pub fn today() -> time::Date {
    time::OffsetDateTime::from_unix_timestamp((now_ms() / 1000) as i64)
        .map_or_else(|_| time::OffsetDateTime::now_utc().date(), |t| t.date())
}
