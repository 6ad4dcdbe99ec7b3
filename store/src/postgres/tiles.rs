//! The tree's full tiles (C2SP tlog-tiles) in the `tiles` table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use infoshare_tlog::Hash;
use infoshare_tlog::tiles::TileStore;

use super::{Db, failed, prepared, queries};
use crate::backend::StorageError;

/// Full tiles held back for the next transaction before they are written on their own (only a
/// rebuild of the whole tree makes that many).
const MAX_PENDING_TILES: usize = 1024;

/// Columns of a batch of rows, as `unnest` takes them.
pub(super) type TileRows = (Vec<i16>, Vec<i64>, Vec<Vec<u8>>);

/// The tree's full tiles in the `tiles` table. A tile the sequencer completes is held back and
/// written in the transaction of the batch that completes it, so no tile is ever stored for
/// records the log does not hold.
pub(super) struct PgTiles {
    db: Arc<Db>,
    pending: Mutex<BTreeMap<(u8, u64), Vec<u8>>>,
}

impl PgTiles {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            pending: Mutex::default(),
        }
    }

    pub(super) fn take_pending(&self) -> TileRows {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut rows: TileRows = Default::default();
        for ((level, index), hashes) in pending {
            rows.0.push(i16::from(level));
            rows.1.push(index as i64);
            rows.2.push(hashes);
        }
        rows
    }

    fn write_rows(&self, rows: TileRows) -> Result<(), StorageError> {
        self.db.with(move |client| async move {
            client
                .execute(
                    &prepared(&client, queries::UPSERT_TILES).await?,
                    &[&rows.0, &rows.1, &rows.2],
                )
                .await
                .map_err(failed("writing tiles"))
                .map(drop)
        })
    }
}

impl TileStore for PgTiles {
    fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        let bytes = match self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(level, index))
        {
            Some(bytes) => bytes.clone(),
            None => {
                let (l, i) = (i16::from(level), i64::try_from(index).ok()?);
                let row = self.db.with(move |client| async move {
                    Ok(client
                        .query_opt(&prepared(&client, queries::SELECT_TILE).await?, &[&l, &i])
                        .await
                        .map_err(failed("reading a tile"))?
                        .map(|r| r.get::<_, Vec<u8>>(0)))
                });
                match row {
                    Ok(bytes) => bytes?,
                    Err(e) => {
                        tracing::warn!(error = %e, level, index, "tile unreadable");
                        return None;
                    }
                }
            }
        };
        let hashes: Vec<Hash> = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        (hashes.len() == infoshare_tlog::tiles::TILE_WIDTH as usize).then_some(hashes)
    }

    fn write(&self, level: u8, index: u64, hashes: &[Hash]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.insert((level, index), hashes.concat());
        if pending.len() >= MAX_PENDING_TILES {
            // Only a rebuild of the whole tree at start gets here, before any batch.
            drop(pending);
            if let Err(e) = self.write_rows(self.take_pending()) {
                // Derived: tiles that are missing are rebuilt at the next start.
                tracing::warn!(error = %e, "tiles not written");
            }
        }
    }
}
