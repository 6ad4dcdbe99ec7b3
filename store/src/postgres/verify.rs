//! `--verify-log postgresql://…`: the log in a database verified offline, as a data directory
//! is — every record read and decoded, the tree rebuilt from them, and the stored checkpoint
//! checked against it with the keys the broker signs with. It reads only: no migration, no
//! lease (a running broker may go on writing; what is verified is the log as one snapshot).

use std::path::Path;

use infoshare_tlog::{Frontier, leaf_hash};

use super::{Db, PAGE, PgSettings, failed, queries};
use crate::backend::StorageError;
use crate::checkpoint::check_signed_at;
use crate::records::Record;
use crate::verify::{Verified, VerifyError};

fn io(e: StorageError) -> VerifyError {
    VerifyError::Io(e.0)
}

/// Verifies the log in the database `settings` reach, with the log keys in `keys_dir`.
pub fn verify_postgres(settings: &PgSettings, keys_dir: &Path) -> Result<Verified, VerifyError> {
    let db = Db::connect(settings).map_err(|e| VerifyError::Io(e.to_string()))?;
    // One snapshot for the checkpoint and the records it covers.
    let (size, note, frontier) = db
        // The whole log in one snapshot: bounded by the hour, not by one call's timeout.
        .with_for(
            std::time::Duration::from_secs(3600),
            |mut client| async move {
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(failed("starting a read-only snapshot"))?;
                let head = tx
                    .query_one(queries::SELECT_CHECKPOINT, &[])
                    .await
                    .map_err(failed("reading the checkpoint"))?;
                let (size, note): (i64, Option<String>) = (head.get(0), head.get(1));
                // A page at a time: memory does not grow with the log.
                let mut frontier = Frontier::default();
                let mut next = 1i64;
                loop {
                    let rows = tx
                        .query(queries::SELECT_RECORDS_FROM, &[&next, &i64::MAX, &PAGE])
                        .await
                        .map_err(failed("reading records"))?;
                    let full = rows.len() as i64 == PAGE;
                    for row in rows {
                        let (index, raw): (i64, Vec<u8>) = (row.get(0), row.get(1));
                        if index != next {
                            return Ok(Err(VerifyError::Frame {
                                index: next as u64,
                                detail: "missing from log_records".into(),
                            }));
                        }
                        if let Err(e) = Record::decode(&raw) {
                            return Ok(Err(VerifyError::Record {
                                index: next as u64,
                                detail: e.to_string(),
                            }));
                        }
                        frontier.push(leaf_hash(&raw));
                        next += 1;
                    }
                    if !full {
                        break;
                    }
                }
                Ok(Ok((size, note, frontier)))
            },
        )
        .map_err(io)??;
    let held = frontier.size();
    if size as u64 != held {
        return Err(VerifyError::Checkpoint(format!(
            "the checkpoint row covers {size} records but the log holds {held}"
        )));
    }
    let Some(note) = note else {
        return Ok(Verified {
            records: held,
            checkpoint_size: 0,
        });
    };
    let origin = note.lines().next().unwrap_or_default();
    let verifiers =
        crate::log_keys::trusted_verifiers(keys_dir, origin).map_err(VerifyError::Io)?;
    let root = frontier.root();
    let cp = check_signed_at(&note, &verifiers, held, &|s| (s == held).then_some(root))
        .map_err(|e| VerifyError::Checkpoint(format!("the stored checkpoint: {e}")))?;
    Ok(Verified {
        records: held,
        checkpoint_size: cp.size,
    })
}
