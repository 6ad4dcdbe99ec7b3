//! The views written behind the log. A batch is acknowledged once its bodies, records and
//! checkpoint are synced; its view writes then wait here, visible to every reader at once (so
//! each caller reads its own writes, and the writer decides the next batch against everything
//! sequenced), while a follower thread folds them into the view store off the writer's path.
//! The view store's periodic durable commit stalls only the follower.
//!
//! Pending writes are kept in two generations: batches go into `active`; the follower freezes
//! it (taking, under the same lock, the marks of the last batch in it, so the store's marks
//! always say exactly what it holds), writes the frozen map into the store in one transaction,
//! and drops it. Readers look in `active`, then the frozen map, then the store; nothing is
//! copied on the way (a batch's writes move into `active`, the frozen map is read in place).
//! A batch's posting list entries are pending beside its writes, as lists by prefix (`Postings`).
//! Pending writes are bounded: the writer waits while more than [`MAX_PENDING`] are queued.
//! A batch wakes the follower only if it is waiting for that batch (see [`Listening`]).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::postings;
use super::view_store::ViewStore;
use crate::backend::VisitEntry;
use crate::postings::Groups;
use crate::views::ViewError;

/// View writes queued for the follower, at most (about 20 MiB of keys and values).
pub(super) const MAX_PENDING: usize = 200_000;

/// A batch's writes are merged into the pending ones in one pass while those are at most this
/// many times as many, and inserted one by one beyond.
const MERGE_WHOLE: usize = 8;

/// How long a round waits for more writes while fewer than [`ROUND_ENOUGH`] are pending (the
/// pending writes are read meanwhile; only the view store's copy waits).
const ROUND_GATHER: std::time::Duration = std::time::Duration::from_millis(5);
/// Pending writes that make a round worth its commit at once.
const ROUND_ENOUGH: usize = 1024;

/// Pending writes: a value, or `None` for a deletion (which hides the stored value); a batch's
/// view writes as the writer built them.
type Writes = crate::backend::ViewWrites;

/// Posting list entries pending, kept apart from the writes as lists by prefix (a record's
/// five to nine entries were half of the keys of the writes, each one more key to order,
/// merge and fold).
#[derive(Default)]
struct Postings {
    lists: Groups,
    entries: usize,
}

impl Postings {
    fn add(&mut self, posted: crate::backend::Posted) {
        for (prefix, index) in posted {
            self.entries += usize::from(crate::postings::insert(&mut self.lists, prefix, index));
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        crate::postings::split(key).is_ok_and(|(prefix, index)| {
            self.lists
                .get(prefix)
                .is_some_and(|list| list.binary_search(&index).is_ok())
        })
    }

    /// Up to `limit` of `prefix`'s entries from `from` on.
    fn from(&self, prefix: &[u8], from: u64, limit: usize) -> impl Iterator<Item = u64> + '_ {
        let list = self.lists.get(prefix).map_or(&[][..], Vec::as_slice);
        let at = list.partition_point(|i| *i < from);
        list[at..].iter().take(limit).copied()
    }
}

/// A generation: writes and posting list entries.
#[derive(Default)]
struct Round {
    writes: Writes,
    postings: Postings,
}

impl Round {
    fn len(&self) -> usize {
        self.writes.len() + self.postings.entries
    }
}

/// The two generations; a key in `active` is newer than the same key in `folding`.
#[derive(Default)]
struct Generations {
    active: Round,
    /// The (log, bodies) marks of the last batch in `active`.
    active_marks: (u64, u64),
    /// What the follower is writing into the store now.
    folding: Arc<Round>,
    /// What the follower waits for, if it is waiting: a write wakes it only then.
    listening: Listening,
}

/// What the follower waits for. A wake is a system call for the writer and a switch for
/// the follower, and the woken follower tends to take the writer's core before it has answered
/// the batch's callers (measured at 1,000 round trips/s: the writer preempted right after the
/// wake more than once a batch, and 40% of the follower's CPU spent being woken while it
/// gathered).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
enum Listening {
    /// Folding, or about to: it looks at what is pending when it is done.
    #[default]
    No,
    /// For any write: nothing is pending.
    ForAny,
    /// For a round's worth ([`ROUND_ENOUGH`]); it folds what there is at its deadline anyway.
    ForEnough,
}

impl Generations {
    fn len(&self) -> usize {
        self.active.len() + self.folding.len()
    }

    /// Whether what is pending is what the follower listens for when it listens for `what`.
    fn has(&self, what: Listening) -> bool {
        match what {
            Listening::No => false,
            Listening::ForAny => self.active.len() > 0,
            Listening::ForEnough => self.len() >= ROUND_ENOUGH,
        }
    }
}

/// Writes acknowledged but not yet in the view store.
#[derive(Default)]
pub(super) struct Pending {
    maps: RwLock<Generations>,
    /// Signalled whenever the follower drains writes (or fails).
    drained: (Mutex<()>, Condvar),
    /// Why the follower stopped, if it did: every later batch is refused.
    failed: Mutex<Option<String>>,
}

impl Pending {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generations> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Generations> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A pending write of `key`, if it has one (`Some(None)`: a pending deletion).
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let maps = self.read();
        if postings::is_index_key(key)
            && (maps.active.postings.contains(key) || maps.folding.postings.contains(key))
        {
            return Some(Some(Vec::new()));
        }
        maps.active
            .writes
            .get(key)
            .or_else(|| maps.folding.writes.get(key))
            .cloned()
    }

    /// Makes a batch's writes and posting list entries visible, all at once, with the marks
    /// the view store carries once they are in it. True if the follower MUST be woken: it
    /// waits for this write (and hears of no other until it is woken).
    pub(super) fn insert(
        &self,
        mut writes: Writes,
        posted: crate::backend::Posted,
        marks: (u64, u64),
    ) -> bool {
        let mut maps = self.write();
        maps.active.postings.add(posted);
        let active = &mut maps.active.writes;
        // A merge of two sorted maps builds one tree of both (and takes the batch's map as it
        // is when nothing is pending): worth it while the batch is not much smaller than what
        // is pending (inserting key by key was 6% of the ledger alone's samples, a fifth of
        // them comparing keys), not once the pending writes are many batches' (each batch
        // would rebuild them all). The batch's value wins either way.
        if active.len() <= MERGE_WHOLE * writes.len() {
            active.append(&mut writes);
        } else {
            active.extend(writes);
        }
        maps.active_marks = marks;
        let wake = maps.has(maps.listening);
        if wake {
            maps.listening = Listening::No;
        }
        wake
    }

    /// Whether the follower may wait for `what` (not pending yet); if so, the write that
    /// brings it wakes the follower (checked and noted under one lock, so no write falls in
    /// between unheard).
    fn listen(&self, what: Listening) -> bool {
        let mut maps = self.write();
        let wait = !maps.has(what);
        maps.listening = if wait { what } else { Listening::No };
        wait
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    /// Waits while too many writes are pending; the follower's failure, if it failed.
    pub(super) fn wait_for_room(&self) -> Result<(), String> {
        let (lock, signal) = &self.drained;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(why) = self.failure() {
                return Err(why);
            }
            if self.len() <= MAX_PENDING {
                return Ok(());
            }
            guard = signal
                .wait_timeout(guard, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The follower's next round: the active writes, frozen, with their marks (none if empty).
    fn freeze(&self) -> Option<(Arc<Round>, (u64, u64))> {
        let mut maps = self.write();
        maps.listening = Listening::No;
        if maps.active.len() == 0 {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut maps.active));
        maps.folding = frozen.clone();
        Some((frozen, maps.active_marks))
    }

    /// The frozen writes are in the store: readers find them there now.
    fn folded(&self) {
        self.write().folding = Arc::default();
        self.drained.1.notify_all();
    }

    fn fail(&self, why: String) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.drained.1.notify_all();
    }

    /// Up to `limit` pending audit index entries under `prefix` from index `from` on, ascending.
    pub(super) fn indexed(&self, prefix: &[u8], from: u64, limit: usize) -> Vec<u64> {
        let maps = self.read();
        let found: Vec<u64> = [&maps.active, &*maps.folding]
            .into_iter()
            .flat_map(|round| round.postings.from(prefix, from, limit))
            .collect();
        crate::postings::first(found, limit)
    }

    /// Visits the entries with `from <= key < to` of the pending writes over `store`, in key
    /// order, a pending write taking the place of the stored value of its key (a pending
    /// deletion hiding it). Like the store's scan, it leaves out the audit indexes (read with
    /// `indexed`).
    pub(super) fn scan(
        &self,
        store: &ViewStore,
        from: &[u8],
        to: &[u8],
        visit: &mut VisitEntry<'_>,
    ) -> Result<(), ViewError> {
        if from >= to {
            return Ok(());
        }
        // Pending first, the store after: a write the follower moves in between is then found
        // in the store (it leaves the pending set only once committed there).
        let pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
            let maps = self.read();
            let range = || from.to_vec()..to.to_vec();
            let mut merged: BTreeMap<&Vec<u8>, &Option<Vec<u8>>> =
                maps.folding.writes.range(range()).collect();
            merged.extend(maps.active.writes.range(range()));
            merged
                .into_iter()
                .filter(|(k, _)| !postings::is_index_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        // A pending deletion is visited as nothing.
        let mut shown = |k: &[u8], v: &Option<Vec<u8>>| match v {
            Some(v) => visit(k, v),
            None => Ok(true),
        };
        let mut next = pending.iter().peekable();
        let mut going = true;
        store.scan(from, to, &mut |k, v| {
            while let Some((pk, pv)) = next.next_if(|(pk, _)| pk.as_slice() < k) {
                if !shown(pk, pv)? {
                    going = false;
                    return Ok(false);
                }
            }
            if let Some((pk, pv)) = next.next_if(|(pk, _)| pk.as_slice() == k) {
                going = shown(pk, pv)?;
                return Ok(going);
            }
            going = shown(k, &Some(v.to_vec()))?;
            Ok(going)
        })?;
        if going {
            for (pk, pv) in next {
                if !shown(pk, pv)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Runs the follower until `wake` closes: each round freezes every pending write, commits them
/// in one transaction with their marks, then drops them from the pending set. A last round after
/// the close folds in what the final batches wrote.
pub(super) fn run(
    store: Arc<super::EmbeddedReader>,
    pending: Arc<Pending>,
    wake: mpsc::Receiver<()>,
) {
    loop {
        let open = (!pending.listen(Listening::ForAny) || wake.recv().is_ok())
            && gather(&wake, &pending, ROUND_GATHER);
        if let Some((round, marks)) = pending.freeze() {
            let entries = round
                .writes
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_deref()));
            if let Err(e) = store.views.fold(entries, &round.postings.lists, marks) {
                tracing::error!(error = %e, "the view store failed; writes are refused until restart");
                pending.fail(format!("view store: {e}"));
                return;
            }
            pending.folded();
        }
        if !open {
            return;
        }
    }
}

/// Waits up to `most` for at least [`ROUND_ENOUGH`] pending writes, so that a round,
/// whose commit has a fixed cost, is not made for every small batch; false once `wake` is
/// closed (then at once). Measured at 1,000 round trips/s: the follower's CPU 1,040 → 390 ms
/// in 5 s, for the same writes.
fn gather(wake: &mpsc::Receiver<()>, pending: &Pending, most: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + most;
    while pending.listen(Listening::ForEnough) {
        let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
            break;
        };
        match wake.recv_timeout(left) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
    while wake.try_recv().is_ok() {}
    true
}

/// The handle the engine keeps: how the follower is woken.
pub(super) struct Follower {
    pub(super) wake: Option<mpsc::Sender<()>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Follower {
    /// Lets the follower finish what is pending, so a clean stop leaves the views up to the log.
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn gone(k: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), None)
    }

    fn scan(pending: &Pending, store: &ViewStore, from: &str, to: &str, most: usize) -> String {
        let mut out = Vec::new();
        pending
            .scan(store, from.as_bytes(), to.as_bytes(), &mut |k, v| {
                out.push(format!(
                    "{}{}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ));
                Ok(out.len() < most)
            })
            .unwrap();
        out.join(" ")
    }

    /// Readers see pending writes over the store, in key order, a pending write in place of the
    /// stored value (and a later pending batch's in place of an earlier one's); a scan stops
    /// where its visitor says.
    #[test]
    fn pending_writes_read_over_the_store_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        store
            .apply([kv("a", "1"), kv("c", "3"), kv("e", "5")], (3, 0))
            .unwrap();
        let pending = Pending::default();
        pending.insert(
            Writes::from_iter([kv("b", "2"), kv("c", "33")]),
            Vec::new(),
            (4, 0),
        );
        pending.insert(Writes::from_iter([kv("f", "6")]), Vec::new(), (5, 0));
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b2 c33 e5 f6");
        assert_eq!(scan(&pending, &store, "a", "l", 3), "a1 b2 c33");
        assert_eq!(scan(&pending, &store, "b", "e", 100), "b2 c33");
        assert_eq!(scan(&pending, &store, "d", "l", 1), "e5");
        assert_eq!(pending.get(b"c"), Some(Some(b"33".to_vec())));
        assert_eq!(pending.get(b"a"), None);
        // A later batch's write of a key an earlier pending batch wrote takes its place.
        pending.insert(
            Writes::from_iter([kv("b", "222"), gone("f")]),
            Vec::new(),
            (6, 0),
        );
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b222 c33 e5");
        let (round, marks) = pending.freeze().unwrap();
        assert_eq!((round.len(), marks), (3, (6, 0)));
        assert_eq!(round.writes.get(b"f".as_slice()), Some(&None));
    }

    /// A write asks for the follower to be woken only while it listens: for any write when
    /// nothing was pending, for a round's worth while it gathers; once, and never while it
    /// folds (freezing a round ends its listening).
    #[test]
    fn a_write_wakes_the_follower_only_while_it_listens() {
        let pending = Pending::default();
        let one = |k: &str| Writes::from_iter([kv(k, "v")]);
        assert!(
            !pending.insert(one("a"), Vec::new(), (1, 0)),
            "not listening yet"
        );
        assert!(
            !pending.listen(Listening::ForAny),
            "something is pending: no wait"
        );
        assert!(!pending.insert(one("b"), Vec::new(), (2, 0)));
        pending.freeze().unwrap();
        pending.folded();
        assert!(
            pending.listen(Listening::ForAny),
            "nothing pending: it may wait"
        );
        assert!(
            pending.insert(one("c"), Vec::new(), (3, 0)),
            "the write it waits for"
        );
        assert!(!pending.insert(one("d"), Vec::new(), (4, 0)), "woken once");

        assert!(pending.listen(Listening::ForEnough));
        assert!(
            !pending.insert(one("e"), Vec::new(), (5, 0)),
            "too few for a round"
        );
        let enough: Writes = (0..ROUND_ENOUGH)
            .map(|i| kv(&format!("k{i:05}"), "v"))
            .collect();
        assert!(
            pending.insert(enough, Vec::new(), (6, 0)),
            "a round's worth"
        );
        assert!(!pending.insert(one("f"), Vec::new(), (7, 0)), "woken once");
        assert!(
            !pending.listen(Listening::ForEnough),
            "a round's worth pending: no wait"
        );

        pending.freeze().unwrap();
        assert!(pending.listen(Listening::ForAny));
        pending.freeze();
        assert!(
            !pending.insert(one("g"), Vec::new(), (8, 0)),
            "folding: not woken"
        );
    }

    /// A later batch's value wins whether it is merged whole into the pending writes or, once
    /// they are many times its size, inserted key by key.
    #[test]
    fn a_later_batch_wins_merged_or_inserted() {
        let pending = Pending::default();
        let many: Writes = (0..MERGE_WHOLE * 4)
            .map(|i| kv(&format!("k{i:03}"), "old"))
            .collect();
        pending.insert(many, Vec::new(), (1, 0));
        // Far smaller than what is pending: inserted key by key.
        pending.insert(
            Writes::from_iter([kv("k001", "new"), gone("k002")]),
            Vec::new(),
            (2, 0),
        );
        assert_eq!(pending.get(b"k001"), Some(Some(b"new".to_vec())));
        assert_eq!(pending.get(b"k002"), Some(None));
        // As large as what is pending: merged whole.
        let as_many: Writes = (0..MERGE_WHOLE * 4)
            .map(|i| kv(&format!("k{i:03}"), if i == 3 { "newer" } else { "old" }))
            .collect();
        pending.insert(as_many, Vec::new(), (3, 0));
        pending.insert(
            Writes::from_iter([kv("k004", "newest")]),
            Vec::new(),
            (4, 0),
        );
        assert_eq!(pending.get(b"k001"), Some(Some(b"old".to_vec())));
        assert_eq!(pending.get(b"k002"), Some(Some(b"old".to_vec())));
        assert_eq!(pending.get(b"k003"), Some(Some(b"newer".to_vec())));
        assert_eq!(pending.get(b"k004"), Some(Some(b"newest".to_vec())));
        let (round, marks) = pending.freeze().unwrap();
        assert_eq!((round.len(), marks), (MERGE_WHOLE * 4, (4, 0)));
    }

    /// A frozen round stays readable until folded; a newer write to one of its keys wins over it;
    /// the round carries the marks of its last batch, and what came after waits for the next.
    #[test]
    fn a_frozen_round_stays_readable_and_newer_writes_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        let pending = Pending::default();
        pending.insert(
            Writes::from_iter([kv("a", "1"), kv("b", "2")]),
            Vec::new(),
            (2, 0),
        );
        let (round, marks) = pending.freeze().unwrap();
        assert_eq!((round.len(), marks), (2, (2, 0)));
        pending.insert(
            Writes::from_iter([kv("b", "22"), kv("c", "3")]),
            Vec::new(),
            (3, 0),
        );
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b22 c3");
        store
            .apply(round.writes.iter().map(|(k, v)| (k, v.as_deref())), marks)
            .unwrap();
        pending.folded();
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b22 c3");
        assert_eq!(store.marks().unwrap(), (2, 0));
        let (round, marks) = pending.freeze().unwrap();
        assert_eq!((round.len(), marks), (2, (3, 0)));
        assert!(Pending::default().freeze().is_none());
    }

    /// A round waits for writes to gather while few are pending, not once enough are, and not
    /// once the engine is closing.
    #[test]
    fn a_small_round_waits_for_more_writes() {
        // Long enough that a wait where none is due cannot pass unnoticed.
        const LONG: std::time::Duration = std::time::Duration::from_secs(30);
        let short = std::time::Duration::from_millis(20);
        let (tx, rx) = mpsc::channel();
        let pending = Pending::default();
        pending.insert(Writes::from_iter([kv("a", "1")]), Vec::new(), (1, 0));
        let t = std::time::Instant::now();
        tx.send(()).unwrap();
        assert!(gather(&rx, &pending, short));
        let waited = t.elapsed();
        assert!(waited >= short, "{waited:?}");
        assert!(rx.try_recv().is_err(), "the wakes are taken");

        let many: Writes = (0..ROUND_ENOUGH)
            .map(|i| kv(&format!("k{i:06}"), "v"))
            .collect();
        pending.insert(many, Vec::new(), (2, 0));
        let t = std::time::Instant::now();
        assert!(gather(&rx, &pending, LONG));
        assert!(t.elapsed() < LONG / 2, "{:?}", t.elapsed());

        let small = Pending::default();
        small.insert(Writes::from_iter([kv("a", "1")]), Vec::new(), (1, 0));
        drop(tx);
        let t = std::time::Instant::now();
        assert!(!gather(&rx, &small, LONG));
        assert!(t.elapsed() < LONG / 2, "{:?}", t.elapsed());
    }

    /// Posting list entries are pending apart from the writes: read by `indexed` and `get`
    /// from either generation, an entry posted twice is one, one posted out of order takes its
    /// place; once folded the store answers for them, and folding them again is refused.
    #[test]
    fn posted_entries_read_while_pending_and_once_folded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        let pending = Pending::default();
        let (p, q) = (b"xa police\0".to_vec(), b"xs\x07".to_vec());
        let key = |prefix: &[u8], index: u64| [prefix, &index.to_be_bytes()].concat();
        let first = vec![(p.clone(), 1), (q.clone(), 1), (p.clone(), 1)];
        pending.insert(Writes::from_iter([kv("r1", "m")]), first, (1, 0));
        pending.insert(Writes::new(), vec![(p.clone(), 3), (p.clone(), 2)], (3, 0));
        assert_eq!(pending.len(), 5);
        assert_eq!(pending.indexed(&p, 0, 10), vec![1, 2, 3]);
        assert_eq!(pending.indexed(&p, 2, 1), vec![2]);
        assert_eq!(pending.get(&key(&p, 2)), Some(Some(Vec::new())));
        assert_eq!(pending.get(&key(&q, 2)), None);
        assert_eq!(
            scan(&pending, &store, "r", "z", 100),
            "r1m",
            "scans leave them out"
        );
        let (round, marks) = pending.freeze().unwrap();
        pending.insert(Writes::new(), vec![(p.clone(), 4)], (4, 0));
        assert_eq!(pending.indexed(&p, 0, 10), vec![1, 2, 3, 4]);
        let writes = || round.writes.iter().map(|(k, v)| (k, v.as_deref()));
        store.fold(writes(), &round.postings.lists, marks).unwrap();
        pending.folded();
        assert_eq!(pending.indexed(&p, 0, 10), vec![4]);
        assert_eq!(store.indexed(&p, 0, 10).unwrap(), vec![1, 2, 3]);
        assert_eq!(store.indexed(&q, 0, 10).unwrap(), vec![1]);
        let again = store.fold(writes(), &round.postings.lists, (5, 0));
        assert!(again.is_err(), "entries at or below the mark folded again");
        assert_eq!(store.marks().unwrap(), (3, 0));
    }

    /// A pending deletion hides the stored value from reads and scans until the follower
    /// folds it, and then the store has it no more; a newer write brings the key back.
    #[test]
    fn a_pending_deletion_hides_the_stored_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        store
            .apply([kv("a", "1"), kv("b", "2"), kv("c", "3")], (3, 0))
            .unwrap();
        let pending = Pending::default();
        pending.insert(Writes::from_iter([gone("b")]), Vec::new(), (4, 0));
        assert_eq!(pending.get(b"b"), Some(None));
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 c3");
        assert_eq!(scan(&pending, &store, "b", "c", 100), "");
        let (round, marks) = pending.freeze().unwrap();
        store
            .apply(round.writes.iter().map(|(k, v)| (k, v.as_deref())), marks)
            .unwrap();
        pending.folded();
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 c3");
        assert_eq!(crate::views::KvRead::get(&store, b"b").unwrap(), None);
        pending.insert(
            Writes::from_iter([gone("c"), kv("b", "22")]),
            Vec::new(),
            (5, 0),
        );
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b22");
    }
}
