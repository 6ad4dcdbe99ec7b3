use super::*;
use crate::identity::Role;
use crate::records::{Actor, Denied, Event};
use infoshare_tlog::leaf_hash;

fn actor() -> Actor {
    Actor {
        role: Role::Agency,
        id: "police".into(),
        cert_sha256: [0xcc; 32],
    }
}

fn denial(i: u32) -> Record {
    Record {
        time_ms: u64::from(i),
        actor: actor(),
        event: Event::Denied(Denied {
            operation: crate::access::Operation::SubmitRequest,
            request_id: None,
            reason_code: "TEST".into(),
            subjects: Vec::new(),
            rule: format!("rule-{i}"),
        }),
    }
}

/// Appends `n` records concurrently; checks every receipt and that batches were shared.
async fn concurrent_appends(ledger: &Ledger, n: u32) {
    let mut handles = Vec::new();
    for i in 0..n {
        let ledger = ledger.clone();
        handles.push(tokio::spawn(async move {
            ledger.append(denial(i)).await.unwrap()
        }));
    }
    let verifier = infoshare_tlog::NoteVerifier::parse(&ledger.verifier_key()).unwrap();
    let mut indexes = Vec::new();
    for h in handles {
        let receipt = h.await.unwrap();
        let index = receipt.log_index;
        let cp = verifier.verify(&receipt.checkpoint).unwrap();
        infoshare_tlog::merkle::verify_inclusion(
            index - 1,
            cp.size,
            &leaf_hash(&receipt.record),
            &receipt.proof,
            &cp.root,
        )
        .unwrap();
        indexes.push(index);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=u64::from(n)).collect::<Vec<_>>());
    // Group commit: many records per fdatasync and per signature.
    let batches = ledger.batches_committed();
    assert!(batches < u64::from(n), "{batches} batches for {n} records");
    eprintln!("{n} concurrent records committed in {batches} batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_memory_engine_concurrent_writes_share_batches() {
    let ledger = Ledger::in_memory(&LedgerOptions::new("test/log")).unwrap();
    concurrent_appends(&ledger, 200).await;
    assert_eq!(ledger.head().checkpoint.size, 200);
    assert_eq!(ledger.views().records(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_batches_and_every_receipt_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::new("test/log")).unwrap();
    let n = 200;
    concurrent_appends(&ledger, n).await;
    drop(ledger);

    // Everything is there after reopening, and the checkpoint matches. (The writer thread
    // releases the directory lock as it exits, just after the last handle is dropped.)
    let mut tries = 0;
    let (reopened, report) = loop {
        match Ledger::open(dir.path(), &LedgerOptions::new("test/log")) {
            Err(OpenError::Locked(_)) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => break other.unwrap_or_else(|e| panic!("{e}")),
        }
    };
    assert_eq!(report.records, u64::from(n));
    assert_eq!(reopened.head().checkpoint.size, u64::from(n));
}

/// Reopens the ledger in `dir` once the previous writer has let go of it.
async fn reopen(dir: &std::path::Path) -> Ledger {
    for _ in 0..100 {
        match Ledger::open(dir, &LedgerOptions::new("test/log")) {
            Err(OpenError::Locked(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other.unwrap_or_else(|e| panic!("{e}")).0,
        }
    }
    panic!("the directory stayed locked");
}

async fn log_check_outcome(ledger: &Ledger) -> crate::log_check::LogCheck {
    let mut check = ledger.log_check();
    check
        .wait_for(|c| *c != crate::log_check::LogCheck::Running)
        .await
        .map(|c| c.clone())
        .unwrap()
}

/// Start-up opens the tree from its tiles and rehashes only the last partial tile; the rest of
/// the log is rehashed after it. A record changed under a full tile, its frame checksum fixed
/// (a careful forger), is found by that check: writes are refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_under_a_full_tile_is_found_after_start_up_and_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::new("test/log")).unwrap();
    concurrent_appends(&ledger, 600).await;
    drop(ledger);
    let ledger = reopen(dir.path()).await;
    assert_eq!(
        log_check_outcome(&ledger).await,
        crate::log_check::LogCheck::Passed {
            records: 600,
            tiles_repaired: 0
        }
    );
    drop(ledger);

    // Record 10 (under the first full tile): a byte of it changed, its frame's CRC made to
    // match.
    let path = dir.path().join("log/00000000000000000001.seg");
    let mut data = std::fs::read(&path).unwrap();
    let (mut pos, mut entry) = (16, 0);
    loop {
        let flagged = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        let end = pos + 8 + (flagged & !(1 << 31)) as usize;
        entry += u32::from(flagged & (1 << 31) == 0);
        if entry == 10 {
            data[end - 1] ^= 0x01;
            let crc =
                crc32c::crc32c_append(crc32c::crc32c(&flagged.to_le_bytes()), &data[pos + 8..end]);
            data[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
            break;
        }
        pos = end;
    }
    std::fs::write(&path, &data).unwrap();

    let ledger = reopen(dir.path()).await;
    let crate::log_check::LogCheck::Failed(why) = log_check_outcome(&ledger).await else {
        panic!("the changed record went unnoticed");
    };
    assert!(why.contains("a record was changed"), "{why}");
    let refused = ledger.append(denial(1000)).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("does not match its signed checkpoint"),
        "{refused}"
    );
}

/// A tile lost while the rest are there (the last ones, after a crash before their files were
/// made, or a power cut) is made again on opening from the records it covers, without the whole
/// tree being rebuilt: the other tiles' files are left as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tile_is_made_again_alone_on_opening() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::new("test/log")).unwrap();
    concurrent_appends(&ledger, 600).await;
    let root_before = ledger.head().checkpoint.root;
    drop(ledger);
    let (first, second) = (dir.path().join("tile/0/000"), dir.path().join("tile/0/001"));
    let ledger = reopen(dir.path()).await; // waits for the last handle to have made the files
    drop(ledger);
    let kept = std::fs::metadata(&first).unwrap().ino();
    std::fs::remove_file(&second).unwrap();
    let ledger = reopen(dir.path()).await;
    assert_eq!(ledger.head().checkpoint.root, root_before);
    let ledger_check = log_check_outcome(&ledger).await;
    assert_eq!(
        ledger_check,
        crate::log_check::LogCheck::Passed {
            records: 600,
            tiles_repaired: 0
        }
    );
    drop(ledger);
    let _ = reopen(dir.path()).await;
    assert!(second.exists(), "the lost tile was written back");
    assert_eq!(
        std::fs::metadata(&first).unwrap().ino(),
        kept,
        "a tile that was there was written again: the whole tree was rebuilt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_wakes_the_streams_of_the_inboxes_it_adds_to_and_no_others() {
    let ledger = Ledger::in_memory(&LedgerOptions::new("test/log")).unwrap();
    let mut school = ledger.inbox_changes("rangitoto-school-board");
    let mut police = ledger.inbox_changes("police");
    school.borrow_and_update();
    police.borrow_and_update();

    // An audit record adds to no inbox.
    ledger.append(denial(1)).await.unwrap();
    assert!(!school.has_changed().unwrap() && !police.has_changed().unwrap());

    // A request adds to the school's inbox: its bell rings once it is durable, and what rang it
    // is readable by then.
    let (record, body) = crate::embedded::power_cut::request(1);
    let Opened::New(receipt) = ledger.open_exchange(record, body).await.unwrap() else {
        panic!("a new exchange taken for a replay");
    };
    assert!(
        school.has_changed().unwrap(),
        "the recipient's stream not woken"
    );
    assert_eq!(*school.borrow_and_update(), receipt.log_index);
    let page = ledger
        .views()
        .inbox_page("rangitoto-school-board", 0, 10, false, 10)
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].cursor, receipt.log_index);
    assert!(
        !police.has_changed().unwrap(),
        "the sender's stream woken for nothing"
    );

    // Once the writer is gone, a waiting stream is told.
    drop(ledger);
    tokio::time::timeout(std::time::Duration::from_secs(10), police.changed())
        .await
        .expect("the wait outlived the writer")
        .unwrap_err();
}
