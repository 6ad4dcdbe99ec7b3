use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::backend::{Backend, Batch, Reader, StorageError};
use crate::domain::MessageKind;
use crate::embedded::power_cut::request;
use crate::error::BrokerError;
use crate::ledger::{Ledger, LedgerOptions, Opened};
use crate::mem::MemEngine;
use crate::records::RequestId;

/// Commits entered, and commits let through.
#[derive(Default)]
struct Gate {
    state: Mutex<(u32, u32)>,
    changed: Condvar,
}

impl Gate {
    fn wait_for(&self, ready: impl Fn(&(u32, u32)) -> bool) {
        let guard = self.state.lock().unwrap();
        let (guard, timeout) = self
            .changed
            .wait_timeout_while(guard, Duration::from_secs(10), |s| !ready(s))
            .unwrap();
        assert!(!timeout.timed_out(), "the gate was not reached in time");
        drop(guard);
    }

    fn let_through(&self, commits: u32) {
        self.state.lock().unwrap().1 += commits;
        self.changed.notify_all();
    }
}

/// The memory engine, each commit held until the test lets it through: a batch stays in flight
/// for as long as the test needs.
struct Gated {
    inner: MemEngine,
    gate: Arc<Gate>,
    /// The first commit fails (a disk error) once let through.
    fail_first: bool,
}

impl Backend for Gated {
    fn commit(&mut self, batch: Batch<'_>) -> Result<(), StorageError> {
        let entered = {
            let mut state = self.gate.state.lock().unwrap();
            state.0 += 1;
            state.0
        };
        self.gate.changed.notify_all();
        self.gate.wait_for(|&(_, through)| through >= entered);
        if self.fail_first && entered == 1 {
            return Err(StorageError("the disk failed".into()));
        }
        self.inner.commit(batch)
    }

    fn erase_bodies(&mut self, bodies: &[(MessageKind, RequestId)]) -> Result<(), StorageError> {
        self.inner.erase_bodies(bodies)
    }

    fn store_checkpoint(&mut self, note: &str) -> Result<(), StorageError> {
        self.inner.store_checkpoint(note)
    }

    fn reader(&self) -> Arc<dyn Reader> {
        self.inner.reader()
    }

    fn one_writer(&self) -> bool {
        true
    }
}

fn gated(gate: &Arc<Gate>, fail_first: bool) -> Ledger {
    let engine = Gated {
        inner: MemEngine::new(),
        gate: gate.clone(),
        fail_first,
    };
    Ledger::start(Box::new(engine), None, &LedgerOptions::new("test/log")).unwrap()
}

/// While a batch is being made durable, the next is decided against it: a resubmission of its
/// request is a replay (not a second exchange), one with the same idempotency key and another
/// body a conflict (its body compared with the one in flight), a new request takes the next
/// index; and none of them is answered before the batch they were decided against is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_batch_is_decided_against_the_one_in_flight() {
    let gate = Arc::new(Gate::default());
    let ledger = gated(&gate, false);
    let submit = |(record, body)| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.open_exchange(record, body).await })
    };
    let first = submit(request(0));
    let held = gate.clone();
    tokio::task::spawn_blocking(move || held.wait_for(|&(entered, _)| entered == 1))
        .await
        .unwrap();
    let again = submit(request(0));
    let (record, mut body) = request(0);
    body.body.push(b'!');
    let conflicting = submit((record, body));
    let next = submit(request(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, task) in [
        ("first", &first),
        ("again", &again),
        ("conflicting", &conflicting),
        ("next", &next),
    ] {
        assert!(
            !task.is_finished(),
            "{name} answered before its batch was durable"
        );
    }
    gate.let_through(u32::MAX / 2);
    match first.await.unwrap().unwrap() {
        Opened::New(receipt) => assert_eq!(receipt.log_index, 1),
        other => panic!("the first submission: {other:?}"),
    }
    match again.await.unwrap().unwrap() {
        Opened::Replayed { index, .. } => assert_eq!(index, 1),
        other => panic!("the resubmission: {other:?}"),
    }
    match conflicting.await.unwrap() {
        Err(BrokerError::Conflict(_)) => {}
        other => panic!("the conflicting submission: {other:?}"),
    }
    match next.await.unwrap().unwrap() {
        Opened::New(receipt) => assert_eq!(receipt.log_index, 2),
        other => panic!("the next request: {other:?}"),
    }
    assert_eq!(ledger.head().checkpoint.size, 2);
    assert_eq!(ledger.views().records(), 2);
}

/// A batch decided against one that then fails to commit is refused with it, never committed
/// (it may hold a replay of a record that is not in the log); so is every later write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_decided_against_a_failed_one_is_refused() {
    let gate = Arc::new(Gate::default());
    let ledger = gated(&gate, true);
    let submit = |(record, body)| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.open_exchange(record, body).await })
    };
    let first = submit(request(0));
    let held = gate.clone();
    tokio::task::spawn_blocking(move || held.wait_for(|&(entered, _)| entered == 1))
        .await
        .unwrap();
    let again = submit(request(0));
    let next = submit(request(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.let_through(u32::MAX / 2);
    for (name, task) in [("first", first), ("again", again), ("next", next)] {
        match task.await.unwrap() {
            Err(BrokerError::Unavailable(_)) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        ledger.open_exchange(request(2).0, request(2).1).await,
        Err(BrokerError::Unavailable(_))
    ));
    assert_eq!(
        gate.state.lock().unwrap().0,
        1,
        "a batch after the failed one was committed"
    );
    assert_eq!(ledger.views().records(), 0);
}
