//! The power-loss simulation. A ledger on the embedded engine runs one batch per round while
//! `durable` records every sync it makes. After each round the data directory is copied; then,
//! for every sync of the next round, the directory is rebuilt as a power cut just after that
//! sync would leave it: each file only as far as it was synced, the one write in flight torn
//! (cut anywhere, or whole with a sector of zeros), files never synced (the checkpoint witness,
//! the views) as they were before the round, after it, empty, cut short or gone, and any name
//! not synced into its directory possibly gone. Start-up must succeed from every such state
//! with every acknowledged record and body present, and the ledger must go on appending. The
//! history before the rounds fills two tiles of the tree, which are never synced either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bodies::BodyEntry;
use crate::domain::{Authority, Classification, MessageKind, Urgency};
use crate::durable::record::{self, Synced};
use crate::identity::Role;
use crate::ledger::{Ledger, LedgerOptions};
use crate::records::{Actor, Event, Record, RequestId, RequestSubmitted};

const ORIGIN: &str = "power-cut.test/log";
const ROUNDS: u64 = 12;
/// Records before the rounds: two full tiles.
const PRELOAD: u64 = 600;

/// A data directory's files, by path relative to it.
type Files = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(root: &Path) -> Files {
    fn walk(root: &Path, dir: &Path, out: &mut Files) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if !path.ends_with("LOCK") {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = Files::new();
    walk(root, root, &mut out);
    out
}

/// A small deterministic generator (xorshift64*), so that every run builds the same states.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Exchange `i`, from the police to a school board, with its body.
pub(crate) fn request(i: u64) -> (Record, BodyEntry) {
    let id = RequestId(u128::from(i + 1).to_be_bytes());
    let record = Record {
        time_ms: 1_800_000_000_000 + i,
        actor: Actor {
            role: Role::Agency,
            id: "police".into(),
            cert_sha256: [1; 32],
        },
        event: Event::RequestSubmitted(RequestSubmitted {
            request_id: id,
            recipient: "rangitoto-school-board".into(),
            staff: [3; 32],
            subjects: vec![[4; 32]],
            protocol_id: "youth-reengagement".into(),
            protocol_version: 1,
            authority: Authority::OtaS66C,
            purpose: "support-plan".into(),
            categories: vec!["attendance".into()],
            classification: Classification::InConfidence,
            urgency: Urgency::Routine,
            consultation: None,
            idempotency: [i as u8; 32],
            body_commitment: [7; 32],
            due_ms: 0,
            expires_ms: 0,
            follows: None,
        }),
    };
    let body = BodyEntry {
        kind: MessageKind::Request,
        request_id: id,
        salt: [9; 32],
        body: vec![b'x'; 300 + (i as usize % 7) * 100],
    };
    (record, body)
}

fn refusal(i: u64) -> Record {
    Record {
        time_ms: 1_800_000_000_000 + i,
        actor: Actor {
            role: Role::Agency,
            id: "police".into(),
            cert_sha256: [1; 32],
        },
        event: Event::Denied(crate::records::Denied {
            operation: crate::access::Operation::SubmitRequest,
            request_id: None,
            reason_code: "TEST".into(),
            subjects: Vec::new(),
            rule: format!("rule-{i}"),
        }),
    }
}

/// What the test knows was acknowledged: record bytes by index, and the exchanges opened.
#[derive(Clone, Default)]
struct Acknowledged {
    records: BTreeMap<u64, Vec<u8>>,
    opened: Vec<RequestId>,
}

/// One round's worth of evidence: the files after it and what had been synced by then.
struct Round {
    files: Files,
    synced: Synced,
    acked: Acknowledged,
}

/// A file in a power-cut state: its bytes at its last sync (`durable`), with the write in
/// flight (what its next sync would have found, `next`) torn by `dice`: not there at all, there
/// up to some byte, or there but for one lost sector. Bytes the write adds past the file's end
/// read as zeros where they did not land.
fn torn(durable: &[u8], next: &[u8], dice: &mut Dice) -> Vec<u8> {
    if next.len() < durable.len() {
        // A cut in flight (a finished segment cut to its frames): done or not.
        return if dice.roll(2) == 0 { durable } else { next }.to_vec();
    }
    let mut base = durable.to_vec();
    base.resize(next.len(), 0);
    let Some(first) = base.iter().zip(next).position(|(a, b)| a != b) else {
        return durable.to_vec();
    };
    match dice.roll(3) {
        0 => durable.to_vec(),
        1 => {
            let k = first + dice.roll((next.len() - first) as u64 + 1) as usize;
            let mut out = next[..k].to_vec();
            if k < durable.len() {
                out.extend_from_slice(&durable[k..]);
            }
            out
        }
        _ => {
            let mut out = next.to_vec();
            let sectors = (next.len() - first).div_ceil(512) as u64;
            let at = first + dice.roll(sectors) as usize * 512;
            let stop = (at + 512).min(out.len());
            out[at..stop].copy_from_slice(&base[at..stop]);
            out
        }
    }
}

/// Builds in `dir` the state a power cut leaves just after the round's first `cut` syncs
/// (`events`: the round's syncs in order, path and bytes then).
fn build_state(
    dir: &Path,
    root: &Path,
    before: &Round,
    after: &Round,
    events: &[(PathBuf, record::Content)],
    cut: usize,
    dice: &mut Dice,
) -> bool {
    let mut tile_lost = false;
    let root = std::fs::canonicalize(root).unwrap();
    let mut durable: BTreeMap<PathBuf, record::Content> = before
        .synced
        .contents
        .iter()
        .map(|(p, c)| (p.clone(), c.clone()))
        .collect();
    for (path, content) in &events[..cut] {
        durable.insert(path.clone(), content.clone());
    }
    let in_flight = events.get(cut).cloned();
    let finished = cut == events.len();
    let names = if finished {
        &after.synced.names
    } else {
        &before.synced.names
    };
    let paths: std::collections::BTreeSet<&PathBuf> =
        before.files.keys().chain(after.files.keys()).collect();
    for rel in paths {
        let abs = root.join(rel);
        let name_durable = abs
            .ancestors()
            .take_while(|a| *a != root)
            .all(|a| names.contains(a));
        let content = if let Some(synced) = durable.get(&abs) {
            // Synced at least once: as it was synced, the write in flight (if it is this
            // file's) torn.
            if !after.files.contains_key(rel) {
                continue;
            }
            Some(match &in_flight {
                Some((p, next)) if *p == abs => torn(synced, next, dice),
                _ => synced.to_vec(),
            })
        } else {
            // Never synced (the witness, the views, a file made in this round): as before the
            // round or, once its last sync is done, as after it; or empty, cut short, gone.
            let old = before.files.get(rel);
            let new = after.files.get(rel).filter(|_| finished);
            let pick = if new.is_some() && dice.roll(2) == 0 {
                new
            } else {
                old
            };
            match (pick, dice.roll(6)) {
                (None, _) | (_, 0) => None,
                (Some(_), 1) if !rel.starts_with("views") => Some(Vec::new()),
                (Some(c), 2) if !rel.starts_with("views") => {
                    Some(c[..dice.roll(c.len() as u64 + 1) as usize].to_vec())
                }
                (Some(c), _) => Some(c.clone()),
            }
        };
        let whole = after.files.get(rel).or(before.files.get(rel));
        let kept = content.filter(|_| name_durable || dice.roll(4) != 0);
        if rel.starts_with("tile") && kept.as_ref() != whole {
            tile_lost = true;
        }
        let Some(content) = kept else { continue };
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    tile_lost
}

async fn check_state(dir: &Path, acked: &Acknowledged, what: &str) {
    let (ledger, report) = Ledger::open(dir, &LedgerOptions::new(ORIGIN))
        .unwrap_or_else(|e| panic!("{what}: start-up refused: {e}"));
    for (index, bytes) in &acked.records {
        let held = ledger
            .record(*index)
            .unwrap_or_else(|e| panic!("{what}: acknowledged record {index} lost: {e}"));
        assert_eq!(&held, bytes, "{what}: acknowledged record {index} changed");
    }
    let last = acked.records.keys().last().copied().unwrap_or(0);
    assert!(
        ledger.head().checkpoint.size >= last,
        "{what}: the checkpoint does not cover acknowledged record {last}"
    );
    for id in &acked.opened {
        assert!(
            ledger.body(MessageKind::Request, id).unwrap().is_some(),
            "{what}: the body of acknowledged exchange {id} is gone"
        );
        assert!(
            crate::views::request_meta(ledger.views(), id)
                .unwrap()
                .is_some(),
            "{what}: acknowledged exchange {id} missing from the views"
        );
    }
    // Every exchange the log holds, acknowledged or not, has its body: bodies are durable
    // before the records that commit to them.
    let mut opened = Vec::new();
    ledger
        .views()
        .for_each_record(1, &mut |_, raw| {
            if let Ok(Record {
                event: Event::RequestSubmitted(r),
                ..
            }) = Record::decode(raw)
            {
                opened.push(r.request_id);
            }
            Ok(())
        })
        .unwrap();
    for id in opened {
        assert!(
            ledger.body(MessageKind::Request, &id).unwrap().is_some(),
            "{what}: exchange {id} is in the log without its body"
        );
    }
    // And it goes on: a new exchange is acknowledged on top of what was recovered.
    let (record, body) = request(10_000 + report.records);
    let crate::ledger::Opened::New(receipt) = ledger
        .open_exchange(record, body)
        .await
        .unwrap_or_else(|e| panic!("{what}: no append after recovery: {e}"))
    else {
        panic!("{what}: a new exchange was taken for a replay");
    };
    // And what was written after recovery is read back alone: nothing left of the cut write
    // joins it.
    drop(ledger);
    let mut reopened = Ledger::open(dir, &LedgerOptions::new(ORIGIN));
    for _ in 0..100 {
        // The last reader of the dropped ledger (its log check) lets the directory go soon.
        if !matches!(reopened, Err(crate::open_error::OpenError::Locked(_))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        reopened = Ledger::open(dir, &LedgerOptions::new(ORIGIN));
    }
    let (ledger, again) =
        reopened.unwrap_or_else(|e| panic!("{what}: second start-up refused: {e}"));
    assert_eq!(
        again.records, receipt.log_index,
        "{what}: records after reopening"
    );
    assert_eq!(
        again.truncated,
        (0, 0),
        "{what}: a clean stop left a torn tail"
    );
    assert_eq!(ledger.record(receipt.log_index).unwrap(), receipt.record);
    let mut check = ledger.log_check();
    let checked = check
        .wait_for(|c| *c != crate::log_check::LogCheck::Running)
        .await
        .unwrap()
        .clone();
    assert!(
        matches!(checked, crate::log_check::LogCheck::Passed { records, .. } if records == receipt.log_index),
        "{what}: the log check after reopening: {checked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_succeeds_after_a_power_cut_at_every_sync_with_every_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    record::watch(&root);
    let (ledger, _) = Ledger::open(&root, &LedgerOptions::new(ORIGIN)).unwrap();
    let mut acked = Acknowledged::default();
    // Enough history first for full tiles of the tree (written beside the log, never synced).
    let mut preload = Vec::new();
    for i in 0..PRELOAD {
        let ledger = ledger.clone();
        preload.push(tokio::spawn(async move {
            ledger.append(refusal(i)).await.unwrap()
        }));
    }
    for task in preload {
        let r = task.await.unwrap();
        acked.records.insert(r.log_index, r.record);
    }
    // Tile files are made by a thread of their own, in order: the second there, both are.
    let made = std::time::Instant::now();
    while !root.join("tile/0/001").exists() && made.elapsed().as_secs() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(root.join("tile/0/001").exists(), "no full tile written");
    let mut synced = record::take(&root);
    synced.events.clear(); // the preload's: only the rounds' syncs are cut after
    let mut rounds = vec![Round {
        files: snapshot(&root),
        synced,
        acked: acked.clone(),
    }];
    for i in 0..ROUNDS {
        let (record, body) = request(i);
        let id = body.request_id;
        let crate::ledger::Opened::New(receipt) = ledger.open_exchange(record, body).await.unwrap()
        else {
            panic!("round {i}: a new exchange was taken for a replay");
        };
        acked.records.insert(receipt.log_index, receipt.record);
        acked.opened.push(id);
        if i % 4 == 3 {
            // Now and then a record without a body, in a batch of its own.
            let r = ledger.append(refusal(i)).await.unwrap();
            acked.records.insert(r.log_index, r.record);
        }
        rounds.push(Round {
            files: snapshot(&root),
            synced: record::take(&root),
            acked: acked.clone(),
        });
    }
    drop(ledger);

    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut states = 0;
    let mut tiles_lost = 0;
    for (round, pair) in rounds.windows(2).enumerate() {
        let (before, after) = (&pair[0], &pair[1]);
        let events = &after.synced.events;
        assert!(!events.is_empty(), "a round with no sync");
        for cut in 0..=events.len() {
            for variant in 0..3 {
                let dir = work.path().join(format!("state-{states}"));
                tiles_lost += usize::from(build_state(
                    &dir, &root, before, after, events, cut, &mut dice,
                ));
                // Acknowledged: the rounds before; this one only once its last sync is done
                // (callers are answered after it).
                let known = if cut == events.len() {
                    &after.acked
                } else {
                    &before.acked
                };
                let what = format!(
                    "round {} of {ROUNDS}, cut after sync {cut} of {}, variant {variant}",
                    round + 1,
                    events.len()
                );
                check_state(&dir, known, &what).await;
                std::fs::remove_dir_all(&dir).unwrap();
                states += 1;
            }
        }
    }
    eprintln!("{states} power-cut states recovered, {tiles_lost} of them with tiles lost or cut");
    assert!(tiles_lost > 0, "no state lost a tile");
    // At least one sync a round (a batch's bodies, records and checkpoint are one write and one
    // sync): every cut before and after it, three variants each.
    assert!(states >= ROUNDS as usize * 2 * 3);
}
