//! The state one connection shares with the calls on it: how many streams are open (a
//! connection with none is closed after the idle timeout) and its answer budget.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Context;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Bytes per budget permit.
pub const BUDGET_UNIT: usize = 1024;

/// See the module.
#[derive(Debug)]
pub struct ConnState {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
    /// The answer budget, in [`BUDGET_UNIT`]s.
    pub budget: Arc<Semaphore>,
    /// The whole budget, in units (what one frame can be charged at most).
    pub budget_units: u32,
}

impl ConnState {
    /// A connection's state, with a budget of `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Arc<Self> {
        let units = u32::try_from((budget_bytes / BUDGET_UNIT).max(1)).unwrap_or(u32::MAX >> 4);
        Arc::new(Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            budget: Arc::new(Semaphore::new(units as usize)),
            budget_units: units,
        })
    }

    /// Marks a stream open until the returned guard is dropped.
    pub fn stream(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }

    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(*self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) + timeout)
    }
}

/// Held while a stream is open.
#[derive(Debug)]
pub struct StreamGuard(Arc<ConnState>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }
}

/// The idle clock of one connection, polled from its reads.
pub struct IdleClock {
    state: Arc<ConnState>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl IdleClock {
    /// A clock for `state`.
    pub fn new(state: Arc<ConnState>, timeout: Duration) -> Self {
        Self {
            state,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Whether the connection has been idle past its timeout. Keeps a timer armed so the read
    /// that polls this wakes when it may have become true.
    pub fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        // Once no stream is open, the timer runs from when the last one closed. While streams
        // are open it is only kept well ahead (touched at most every half timeout, not on every
        // read: this runs on the hot path).
        match self.state.idle_deadline(self.timeout) {
            Some(deadline) => {
                if self.sleep.deadline() != deadline {
                    self.sleep.as_mut().reset(deadline);
                }
            }
            None => {
                let now = Instant::now();
                if self.sleep.deadline() < now + self.timeout / 2 {
                    self.sleep.as_mut().reset(now + self.timeout);
                }
            }
        }
        self.sleep.as_mut().poll(cx).is_ready() && self.state.idle_deadline(self.timeout).is_some()
    }
}
