//! Folding the views again from the log, after a migration changed their layout (schema 2):
//! a chunk of records a transaction, from where the `views_rebuild` row says, so a rebuild cut
//! short goes on at the next start. Each chunk's transaction takes the sequencer lock and moves
//! the row on only from where its fold began: brokers starting together fold each chunk once,
//! and none writes a batch before its own start-up has seen the rebuild through.

use super::{Db, PgReader, failed, queries, writer};
use crate::backend::{Reader, StorageError};
use crate::overlay::Overlay;
use crate::records::Record;
use crate::views;

/// Records folded per transaction.
const CHUNK: i64 = 4096;

/// Sees a pending rebuild of the views through (nothing to do when none is pending).
pub(super) fn run(reader: &PgReader) -> Result<(), StorageError> {
    let db = &reader.db;
    loop {
        let Some(next) = pending(db)? else {
            return Ok(());
        };
        let last = reader.records() as i64;
        if next > last {
            db.with(|client| async move {
                client
                    .execute(queries::FINISH_REBUILD, &[])
                    .await
                    .map_err(failed("finishing the views' rebuild"))
            })?;
            tracing::info!(records = last, "views rebuilt from the log");
            return Ok(());
        }
        let end = (next + CHUNK - 1).min(last);
        let (writes, created) = fold(reader, next, end)?;
        let super::view_rows::ViewRows { new, set, deleted } =
            super::view_rows::rows(writes, &created, next as u64 - 1)?;
        let moved = db.with(move |mut client| async move {
            let tx = client
                .transaction()
                .await
                .map_err(failed("starting a rebuild chunk"))?;
            tx.execute(queries::LOCK_SEQUENCER, &[&writer::SEQUENCER_LOCK])
                .await
                .map_err(failed("taking the sequencer lock"))?;
            let moved = tx
                .execute(queries::ADVANCE_REBUILD, &[&(end + 1), &next])
                .await
                .map_err(failed("moving the rebuild on"))?;
            if moved != 1 {
                // Another broker folded this chunk first; ours goes with the rollback.
                return Ok(false);
            }
            tx.execute(
                queries::INSERT_VIEWS,
                &[&new.keys, &new.values, &new.work, &new.expiry],
            )
            .await
            .map_err(failed("writing new views"))?;
            tx.execute(
                queries::UPSERT_VIEWS,
                &[&set.keys, &set.values, &set.work, &set.expiry],
            )
            .await
            .map_err(failed("writing views"))?;
            tx.execute(queries::DELETE_VIEWS, &[&deleted])
                .await
                .map_err(failed("deleting views"))?;
            tx.commit()
                .await
                .map_err(failed("committing a rebuild chunk"))?;
            Ok(true)
        })?;
        if moved {
            tracing::info!(through = end, of = last, "views: folding the log again");
        }
    }
}

/// Where the pending rebuild stands: the next record to fold (`None`: no rebuild pending).
fn pending(db: &Db) -> Result<Option<i64>, StorageError> {
    db.with(|client| async move {
        Ok(client
            .query_opt(queries::SELECT_REBUILD, &[])
            .await
            .map_err(failed("reading the views' rebuild"))?
            .map(|row| row.get::<_, i64>(0)))
    })
}

/// The view writes records `from..=to` fold into, over the views as they are.
fn fold(
    reader: &PgReader,
    from: i64,
    to: i64,
) -> Result<(crate::backend::ViewWrites, crate::backend::Created), StorageError> {
    let rows: Vec<(i64, Vec<u8>)> = reader.db.with(move |client| async move {
        let rows = client
            .query(
                queries::SELECT_RECORDS_FROM,
                &[&from, &to, &(to - from + 1)],
            )
            .await
            .map_err(failed("reading records"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    })?;
    let mut ov = Overlay::new(reader).noting_created(true);
    for (expected, (index, raw)) in (from..=to).zip(&rows) {
        if *index != expected {
            return Err(StorageError(format!("record {expected} is not in the log")));
        }
        let record = Record::decode(raw)
            .map_err(|e| StorageError(format!("record {index} does not decode: {e}")))?;
        views::apply(&mut ov, *index as u64, &record, raw)?;
    }
    if rows.len() as i64 != to - from + 1 {
        return Err(StorageError(format!(
            "records {from} to {to}: {} found",
            rows.len()
        )));
    }
    let (mut views, posted, created) = ov.into_parts();
    views.extend(crate::postings::keys(posted));
    Ok((views, created))
}
