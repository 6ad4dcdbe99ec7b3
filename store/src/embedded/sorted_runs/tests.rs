//! The runs, through the view store that keeps them.

use super::super::view_store::ViewStore;
use super::*;
use crate::views::KvRead;

fn key(n: u64) -> Vec<u8> {
    crate::views::idempotency_key("police", &crate::crypto::sha256(&n.to_be_bytes()))
}

fn value(n: u64) -> Vec<u8> {
    [n.to_be_bytes().as_slice(), &[7u8; 16]].concat()
}

/// Folds entries `from..to` in rounds of `per_round`, the last round at a mark
/// DURABLE_EVERY past the last durable one (so it makes a durable commit).
fn fold(store: &ViewStore, from: u64, to: u64, per_round: u64, durable_mark: u64) {
    let mut n = from;
    while n < to {
        let end = (n + per_round).min(to);
        let writes: Vec<_> = (n..end).map(|i| (key(i), Some(value(i)))).collect();
        let mark = if end == to {
            durable_mark
        } else {
            durable_mark - 1
        };
        store.apply(writes, (mark, 0)).unwrap();
        n = end;
    }
}

/// The store's files copied now, as a crash (the process's, not the machine's) would leave
/// them, and the store they open as (not rebuilt).
fn as_a_crash_leaves_it(dir: &tempfile::TempDir) -> (tempfile::TempDir, ViewStore) {
    let crashed = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        std::fs::copy(f.path(), crashed.path().join(f.file_name())).unwrap();
    }
    let (copy, rebuilt) = ViewStore::open(crashed.path(), 8 << 20).unwrap();
    assert!(!rebuilt);
    (crashed, copy)
}

/// A new store whose durable commits are made only every DURABLE_EVERY records (and on close),
/// so a test decides where they fall.
fn store_durable_by_count() -> (tempfile::TempDir, ViewStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
    store.durable_by_count_only();
    (dir, store)
}

fn assert_all_found(store: &ViewStore, total: u64) {
    for n in (0..total).step_by(3).chain([total - 1]) {
        assert_eq!(store.get(&key(n)).unwrap(), Some(value(n)), "entry {n}");
    }
    for n in total..total + 1_000 {
        assert_eq!(store.get(&key(n)).unwrap(), None, "entry {n}");
    }
}

/// Entries held between durable commits and written as runs at them are all found, with
/// their values, and no other key is, while merges move FANOUT runs of a level into one of
/// the next a slice a commit; the table holds no block but the live runs'; a reopened store
/// finds the same, and scans pass over the runs.
#[test]
fn entries_are_found_through_held_rounds_runs_and_merges() {
    let (dir, store) = store_durable_by_count();
    let per_commit = 700u64;
    let commits = 120u64;
    let mut most_runs = 0;
    for c in 0..commits {
        let mark = (c + 1) * 100_000;
        fold(&store, c * per_commit, (c + 1) * per_commit - 1, 90, mark);
        // Held, not yet in a run: the commit's last entry goes in the next round.
        let last = (c + 1) * per_commit - 1;
        store
            .apply([(key(last), Some(value(last)))], (mark + 1, 0))
            .unwrap();
        assert_eq!(store.get(&key(last)).unwrap(), Some(value(last)));
        most_runs = most_runs.max(store.runs_levels().len());
        if c % 10 == 3 {
            assert_all_found(&store, last + 1);
        }
    }
    let total = commits * per_commit;
    assert_all_found(&store, total);
    // 120 runs of level 0: eight merged into each level-1 run, eight of which made one of
    // level 2; merges under way keep their runs live, so never many more than FANOUT a
    // level.
    let levels = store.runs_levels();
    assert!(levels.contains(&2), "{levels:?}");
    assert!(levels.len() < 2 * FANOUT, "{levels:?}");
    assert!(most_runs <= 3 * FANOUT, "{most_runs}");
    // Blocks of merges under way are in the table beside the live runs'.
    assert!(store.runs_blocks_stored() >= store.runs_blocks());
    drop(store);
    let (mut store, rebuilt) = ViewStore::open(dir.path(), 8 << 20).unwrap();
    assert!(!rebuilt);
    store.durable_by_count_only();
    assert_all_found(&store, total);
    // The first durable commit after opening deletes the blocks of unfinished merges.
    store
        .apply(
            [(key(total), Some(value(total)))],
            (commits * 100_000 + 200_000, 0),
        )
        .unwrap();
    store.flush_for_test().unwrap();
    let in_merges = store.runs_blocks_stored() - store.runs_blocks();
    assert!(in_merges < 60, "{in_merges} blocks of unfinished merges");
    assert_all_found(&store, total + 1);
    let mut seen = 0;
    store
        .scan(b"", &[0xff], &mut |k, _| {
            assert!(!is_run_key(k) && !is_entry_key(k), "{k:?}");
            seen += 1;
            Ok(true)
        })
        .unwrap();
    assert!(seen > 0);
}

/// The files as a crash between durable commits leaves them hold exactly the entries of the
/// last durable commit; what the log replays from its mark is taken again.
#[test]
fn a_crash_keeps_the_entries_of_the_last_durable_commit_exactly() {
    let (dir, store) = store_durable_by_count();
    fold(&store, 0, 300, 50, 100_000);
    fold(&store, 300, 400, 50, 150_000);
    assert_eq!(store.get(&key(350)).unwrap(), Some(value(350)));
    let (_crashed, copy) = as_a_crash_leaves_it(&dir);
    assert_eq!(copy.marks().unwrap().0, 100_000);
    assert_eq!(copy.get(&key(299)).unwrap(), Some(value(299)));
    assert_eq!(copy.get(&key(300)).unwrap(), None);
    fold(&copy, 300, 400, 100, 149_999);
    assert_eq!(copy.get(&key(399)).unwrap(), Some(value(399)));
}

/// A crash while merges are under way leaves their blocks beside the live runs; opening
/// finds every entry of the durable commit, and the next durable commit deletes those
/// blocks and starts the merges again, which then finish.
#[test]
fn a_crash_in_a_merge_loses_nothing_and_leaves_nothing() {
    let (dir, store) = store_durable_by_count();
    let per_commit = 2_000u64;
    let commits = FANOUT as u64 + 1;
    for c in 0..commits {
        fold(
            &store,
            c * per_commit,
            (c + 1) * per_commit,
            500,
            (c + 1) * 100_000,
        );
    }
    // FANOUT runs of 2,000 entries: their merge takes four commits; one is made.
    assert!(store.runs_blocks_stored() > store.runs_blocks());
    let (_crashed, mut copy) = as_a_crash_leaves_it(&dir);
    copy.durable_by_count_only();
    let total = commits * per_commit;
    assert_all_found(&copy, total);
    let mark = commits * 100_000;
    let added = 3_000;
    fold(&copy, total, total + added, 500, mark + 100_000);
    assert!(copy.runs_blocks_stored() > copy.runs_blocks());
    // Six commits of 3,000 entries merge 6 × 3,512 entries, past the 16,000 to merge; with
    // seven runs of level 0 then, no other merge begins.
    for c in 1..6 {
        let from = total + c * added;
        fold(&copy, from, from + added, 500, mark + (c + 1) * 100_000);
    }
    assert_eq!(copy.runs_blocks_stored(), copy.runs_blocks());
    assert_eq!(copy.runs_levels().iter().filter(|l| **l == 1).count(), 1);
    assert_all_found(&copy, total + 6 * added);
}

/// An entry deleted, a value over 255 bytes, and a write under the runs' own prefix are
/// refused, and change nothing.
#[test]
fn what_the_runs_cannot_hold_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
    store.apply([(key(1), Some(value(1)))], (1, 0)).unwrap();
    assert!(store.apply([(key(1), None::<Vec<u8>>)], (2, 0)).is_err());
    assert!(
        store
            .apply([(b"K\x00x".to_vec(), Some(vec![1]))], (2, 0))
            .is_err()
    );
    assert_eq!(store.marks().unwrap().0, 1);
    assert_eq!(store.get(&key(1)).unwrap(), Some(value(1)));
    assert!(store.apply([(key(2), Some(vec![0; 256]))], (2, 0)).is_err());
    assert_eq!(store.get(&key(2)).unwrap(), None);
    store.flush_for_test().unwrap();
    assert_eq!(store.get(&key(1)).unwrap(), Some(value(1)));
}

#[test]
fn a_runs_level_is_its_sizes() {
    let levels: Vec<u8> = [0, 4_095, 4_096, 32_767, 32_768, 262_144, u64::MAX]
        .into_iter()
        .map(level_of)
        .collect();
    assert_eq!(levels, vec![0, 0, 1, 1, 2, 3, 18]);
}

/// Every id a filter admitted passes it, and about 1% of others do.
#[test]
fn the_filter_admits_its_ids_and_few_others() {
    let ids = |from: u64| (from..from + 20_000).map(|n| crate::crypto::sha256(&n.to_be_bytes()));
    let mut run = Run {
        id: 1,
        level: 0,
        count: 20_000,
        filter: vec![0; (filter_bits(20_000) / 8) as usize],
        fences: Vec::new(),
    };
    for id in ids(0) {
        admit(&mut run.filter, &id);
    }
    assert!(ids(0).all(|id| run.may_hold(&id)));
    let passed = ids(1 << 40).filter(|id| run.may_hold(id)).count();
    assert!((50..600).contains(&passed), "{passed} of 20,000 passed");
}

#[test]
fn a_malformed_block_or_meta_is_an_error_not_a_miss() {
    assert!(entries(&[1u8; 40]).any(|e| e.is_err()));
    assert!(Run::decode(1, &[0u8; 10]).is_err());
    let run = Run {
        id: 3,
        level: 1,
        count: 2,
        filter: vec![0xff; 64],
        fences: vec![[1; 32], [9; 32]],
    };
    let back = Run::decode(3, &run.encode()).unwrap();
    assert_eq!(
        (back.level, back.count, back.fences),
        (1, 2, run.fences.clone())
    );
    assert_eq!(run.block_of(&[0; 32]), None);
    assert_eq!(run.block_of(&[1; 32]), Some(0));
    assert_eq!(run.block_of(&[8; 32]), Some(0));
    assert_eq!(run.block_of(&[9; 32]), Some(1));
}
