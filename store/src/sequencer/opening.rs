//! What a writer reads of the log when it starts: the tree (from tiles or every record), the
//! protocol register, and what a key rotation interrupted by a crash left to finish.

use std::sync::Arc;

use infoshare_tlog::tiles::TileStore;
use infoshare_tlog::{Checkpoint, Tree, leaf_hash};

use crate::backend::Reader;
use crate::open_error::OpenError;
use crate::protocol::ProtocolStore;
use crate::records::{Event, Record, code};

/// The tree of the log: from the engine's tiles if it keeps them (reading only the last partial
/// tile's records), else, or if the tiles are incomplete, rebuilt from every record.
/// Whether it came from the tiles is returned with it.
pub(super) fn open_tree(
    reader: &dyn Reader,
    tiles: Option<Arc<dyn TileStore>>,
) -> Result<(Tree, bool), OpenError> {
    let size = reader.records();
    if let Some(store) = &tiles {
        match Tree::open(store.clone(), size, |i| {
            reader.record(i + 1).ok().map(|raw| leaf_hash(&raw))
        }) {
            Ok(tree) => return Ok((tree, true)),
            Err(e) => tracing::warn!(error = %e, "tiles incomplete; rebuilding them from the log"),
        }
    }
    Ok((rebuild_tree(reader, tiles)?, false))
}

/// The tree made again from every record of the log (its tiles rewritten, if kept).
pub(super) fn rebuild_tree(
    reader: &dyn Reader,
    tiles: Option<Arc<dyn TileStore>>,
) -> Result<Tree, OpenError> {
    let mut tree = match tiles {
        Some(store) => Tree::with_store(store),
        None => Tree::new(),
    };
    reader
        .for_each_record(1, &mut |_, raw| {
            tree.push(leaf_hash(raw));
            Ok(())
        })
        .map_err(|e| OpenError::Storage(e.0))?;
    Ok(tree)
}

/// The key named by the log's last LogKeyRotated record, and the log's checkpoint as its records
/// give it (reads the whole log, once).
pub(super) fn interrupted_rotation(
    reader: &dyn Reader,
    origin: &str,
) -> Result<(Option<[u8; 32]>, Checkpoint), OpenError> {
    let mut rotated_to = None;
    let mut bad = None;
    let mut frontier = infoshare_tlog::Frontier::default();
    reader
        .for_each_record(1, &mut |index, raw| {
            frontier.push(leaf_hash(raw));
            if Record::event_code_of(raw) == Some(code::LOG_KEY_ROTATED) {
                match Record::decode(raw) {
                    Ok(Record {
                        event: Event::LogKeyRotated { public_key },
                        ..
                    }) => rotated_to = Some(public_key),
                    Ok(_) => {}
                    Err(error) => bad = bad.take().or(Some(OpenError::Record { index, error })),
                }
            }
            Ok(())
        })
        .map_err(|e| OpenError::Storage(e.0))?;
    let checkpoint = Checkpoint {
        origin: origin.to_string(),
        size: frontier.size(),
        root: frontier.root(),
    };
    bad.map_or(Ok((rotated_to, checkpoint)), Err)
}

/// The protocol register, folded from its records and their documents.
pub(super) fn load_register(reader: &dyn Reader) -> Result<ProtocolStore, OpenError> {
    let mut register = ProtocolStore::default();
    for record in reader.protocol_records()? {
        let document =
            crate::catch_up::protocol_document(reader, &record).map_err(OpenError::Register)?;
        register
            .apply(&record, document.as_deref())
            .map_err(OpenError::Register)?;
    }
    Ok(register)
}
