//! Operator log lines for refusals, aggregated: the first refusal of a key (a remote address, a
//! principal) in an interval is logged at once, the rest of that interval are counted and the
//! count is logged with the next line. The audit log still records every refused call; this
//! only keeps one certificate (or one address) from writing gigabytes of operator log a day.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once: past it, windows that ended are dropped, and if none have, new
/// keys are counted together under one.
const MAX_KEYS: usize = 10_000;
const OVERFLOW: &str = "(other)";

struct Window {
    since: Instant,
    suppressed: u64,
}

/// See the module.
pub struct Throttle {
    interval: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

impl Throttle {
    /// A throttle logging each key at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log an event of `key` now: `Some(n)` with the `n` events of the key that were
    /// not logged since its last line; `None` to count it and stay quiet.
    pub fn admit(&self, key: &str) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: &str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(key) && windows.len() >= MAX_KEYS {
            let interval = self.interval;
            windows.retain(|_, w| now.duration_since(w.since) < interval);
        }
        let key = if windows.contains_key(key) || windows.len() < MAX_KEYS {
            key
        } else {
            OVERFLOW
        };
        match windows.get_mut(key) {
            Some(w) if now.duration_since(w.since) < self.interval => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let suppressed = w.suppressed;
                *w = Window {
                    since: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                windows.insert(
                    key.to_string(),
                    Window {
                        since: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_with_the_count() {
        let t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit_at("a", t0), Some(0));
        assert_eq!(t.admit_at("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(t.admit_at("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(
            t.admit_at("b", t0),
            Some(0),
            "another key has its own window"
        );
        assert_eq!(t.admit_at("a", t0 + Duration::from_secs(61)), Some(2));
        for i in 0..MAX_KEYS + 5 {
            t.admit_at(&format!("k{i}"), t0);
        }
        assert!(t.windows.lock().unwrap().len() <= MAX_KEYS + 1, "bounded");
    }
}
