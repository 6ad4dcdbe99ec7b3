//! The broker's clock, a value handed to the broker at start: the wall clock in production; a
//! program embedding the server (the end-to-end tests' server binary) or an in-process test may
//! pass another, to test retention and New Zealand dates without waiting for them. Dates are New
//! Zealand dates (Pacific/Auckland), never UTC.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use infoshare_core::calendar::{nz_date, nz_day_start_ms};

/// A source of Unix milliseconds.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Arc::new(system_ms))
    }

    /// A clock reading `source` at each use.
    pub fn from_fn(source: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(source))
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }

    /// Today's New Zealand date: the date the law runs on.
    pub fn today(&self) -> time::Date {
        nz_date(self.now_ms())
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

/// The wall clock, in Unix milliseconds.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
