//! Moving a log to another engine (`infoshare-server --copy-log`): an embedded data directory
//! into an empty PostgreSQL database. Records are copied as they are, in order, a chunk a
//! transaction; the views are folded again from them (engines keep their audit indexes in their
//! own shapes) and the bodies opened from the source and sealed again by the target under the
//! same body keys. Each chunk's checkpoint is signed with the log's current key; the last one is
//! the source's own signed checkpoint, committed only once the copied tree gives its root. The
//! copy is then proved from the target alone: every record rehashed against that checkpoint, and
//! every body the source holds present in the target.

use std::path::Path;

use infoshare_tlog::{Checkpoint, Tree, leaf_hash};

use crate::backend::{Backend, Batch, Reader};
use crate::bodies::BodyEntry;
use crate::checkpoint::check_signed;
use crate::log_keys::LogKeys;
use crate::overlay::Overlay;
use crate::records::Record;
use crate::views;

/// Records per transaction of the copy.
const CHUNK: u64 = 1024;
/// View cache of the source while it is read (it is read once).
const SOURCE_CACHE_BYTES: usize = 64 << 20;

/// What a copy moved and proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Records in both logs.
    pub records: u64,
    /// The root of both trees at that size (hex).
    pub root: String,
    /// Bodies copied (erased ones stay erased: they are not copied).
    pub bodies: u64,
}

/// Copies the embedded log in `data_dir` (its keys in `keys_dir`) into the empty database of
/// `settings`, and proves the copy. The source's broker must be stopped (its directory lock is
/// taken). Refuses a database that already holds records.
pub fn embedded_to_postgres(
    data_dir: &Path,
    keys_dir: &Path,
    settings: &crate::postgres::PgSettings,
) -> Result<Copied, String> {
    let (source, _) =
        crate::embedded::EmbeddedEngine::open_with(data_dir, keys_dir, SOURCE_CACHE_BYTES)
            .map_err(|e| format!("the source: {e}"))?;
    let mut target = crate::postgres::PostgresEngine::open(settings, keys_dir)
        .map_err(|e| format!("the target: {e}"))?;
    let copied = copy(&*source.reader(), &mut target, keys_dir)?;
    drop(target);
    let verified = crate::postgres::verify_postgres(settings, keys_dir)
        .map_err(|e| format!("the copy does not verify: {e}"))?;
    if (verified.records, verified.checkpoint_size) != (copied.records, copied.records) {
        return Err(format!(
            "the copy holds {} records under a checkpoint of {}; the source {}",
            verified.records, verified.checkpoint_size, copied.records
        ));
    }
    Ok(copied)
}

/// Copies every record, view and body of `from` into the empty `to`, and reads each body back
/// from `to` once its chunk is committed.
pub fn copy(from: &dyn Reader, to: &mut dyn Backend, keys_dir: &Path) -> Result<Copied, String> {
    let records = from.records();
    let note = from
        .checkpoint()
        .ok_or("the source has no signed checkpoint: start its broker once, then copy")?;
    let origin = note.lines().next().unwrap_or_default().to_string();
    let keys = log_keys(keys_dir, &origin)?;
    let verifiers = keys.verifiers()?;
    if to.reader().records() != 0 {
        return Err(format!(
            "the target already holds {} records: copy into an empty database",
            to.reader().records()
        ));
    }
    let target = to.reader();
    let mut tree = match to.tiles() {
        Some(tiles) => Tree::with_store(tiles),
        None => Tree::new(),
    };
    let mut bodies = 0u64;
    let mut first = 1;
    while first <= records {
        let last = (first + CHUNK - 1).min(records);
        let mut raws = Vec::with_capacity((last - first + 1) as usize);
        let mut carried: Vec<BodyEntry> = Vec::new();
        let mut overlay = Overlay::new(&*target).noting_created(to.wants_created());
        for index in first..=last {
            let raw = from.record(index).map_err(|e| e.0)?;
            let record = Record::decode(&raw).map_err(|e| format!("record {index}: {e}"))?;
            views::apply(&mut overlay, index, &record, &raw)
                .map_err(|e| format!("record {index}: {e}"))?;
            if let Some((kind, id)) = record.event.body()
                && let Some(body) = from.body(kind, &id).map_err(|e| e.0)?
            {
                carried.push(body);
            }
            tree.push(leaf_hash(&raw));
            raws.push(raw);
        }
        let checkpoint = Checkpoint {
            origin: origin.clone(),
            size: last,
            root: tree.root(last).ok_or("the copied tree has no root")?,
        };
        let signed = if last == records {
            // The source's own checkpoint, only over the tree it signed.
            check_signed(&note, &verifiers, &tree)
                .map_err(|e| format!("the source's signed checkpoint: {e}"))?;
            note.clone()
        } else {
            keys.signer().sign(&checkpoint)
        };
        let (views, postings, created) = overlay.into_parts();
        to.commit(Batch {
            first_index: first,
            records: &raws,
            bodies: &carried,
            views,
            postings,
            created,
            checkpoint: &signed,
        })
        .map_err(|e| format!("records {first} to {last}: {e}"))?;
        // Every body the source holds is one carried (erased ones are not): each read back.
        for body in &carried {
            let copied = target.body(body.kind, &body.request_id).map_err(|e| e.0)?;
            if copied.as_ref().map(|c| (&c.salt, &c.body)) != Some((&body.salt, &body.body)) {
                return Err(format!(
                    "body {} of {} differs in the copy",
                    body.kind, body.request_id
                ));
            }
        }
        bodies += carried.len() as u64;
        first = last + 1;
    }
    Ok(Copied {
        records,
        root: tree.root(records).map(hex::encode).unwrap_or_default(),
        bodies,
    })
}

/// The log's keys, which must exist: a copy signs for the log, never with a new key.
fn log_keys(keys_dir: &Path, origin: &str) -> Result<LogKeys, String> {
    if !keys_dir.join("log-signing.pk8").exists() {
        return Err(format!(
            "{}: no log signing key (the keys directory of the source's log?)",
            keys_dir.display()
        ));
    }
    if keys_dir.join("log-signing.pk8.new").exists() {
        return Err("a key rotation is pending: start the source's broker once, then copy".into());
    }
    LogKeys::open(keys_dir, origin, || {
        Err("a key rotation is pending: start the source's broker once, then copy".into())
    })
}
