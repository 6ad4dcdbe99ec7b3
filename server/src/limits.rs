//! Limits that keep one misbehaving agency from degrading the service for the others: a token
//! bucket of calls per principal, and a cap on each principal's concurrent inbox streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Configured limits (`[limits]` in the configuration file).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Sustained calls per second per principal.
    pub calls_per_second: f64,
    /// Calls a principal may make in a burst.
    pub burst: f64,
    /// Concurrent inbox streams per principal.
    pub streams_per_principal: usize,
    /// How long a stream waits for a slow client to take an item before closing the stream.
    pub stream_send_timeout_secs: u64,
    /// Most log records one audit query call examines; past it the call answers what it found
    /// with `more` set and a cursor to go on from.
    pub audit_scan_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            calls_per_second: 500.0,
            burst: 1000.0,
            streams_per_principal: 16,
            stream_send_timeout_secs: 30,
            audit_scan_budget: 20_000,
        }
    }
}

impl Limits {
    /// How long a stream may wait on a slow reader before it is ended.
    pub fn stream_send_timeout(&self) -> Duration {
        Duration::from_secs(self.stream_send_timeout_secs)
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-principal call buckets and stream counts.
pub struct Limiter {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

/// Held while a stream is open; releases its slot when dropped.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    principal: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = streams.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.principal);
            }
        }
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes one call from `principal`'s bucket; false when it is empty.
    pub fn allow_call(&self, principal: &str) -> bool {
        self.allow_call_at(principal, Instant::now())
    }

    fn allow_call_at(&self, principal: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(principal.to_string()).or_insert(Bucket {
            tokens: self.limits.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limits.calls_per_second).min(self.limits.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Open inbox streams, by principal.
    pub fn open_streams(&self) -> Vec<(String, usize)> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect()
    }

    /// A stream slot for `principal`, unless it has its maximum open.
    pub fn open_stream(&self, principal: &str) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let n = streams.entry(principal.to_string()).or_insert(0);
        if *n >= self.limits.streams_per_principal {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            streams: self.streams.clone(),
            principal: principal.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_per_principal() {
        let l = Limiter::new(Limits {
            calls_per_second: 10.0,
            burst: 3.0,
            ..Limits::default()
        });
        let t0 = Instant::now();
        assert!((0..3).all(|_| l.allow_call_at("police", t0)));
        assert!(!l.allow_call_at("police", t0));
        assert!(
            l.allow_call_at("msd", t0),
            "another principal is unaffected"
        );
        assert!(l.allow_call_at("police", t0 + Duration::from_millis(100)));
        assert!(!l.allow_call_at("police", t0 + Duration::from_millis(100)));
    }

    #[test]
    fn stream_slots_are_capped_and_released() {
        let l = Limiter::new(Limits {
            streams_per_principal: 2,
            ..Limits::default()
        });
        let a = l.open_stream("police").unwrap();
        let _b = l.open_stream("police").unwrap();
        assert!(l.open_stream("police").is_none());
        assert!(l.open_stream("msd").is_some());
        drop(a);
        assert!(l.open_stream("police").is_some());
    }
}
