//! Bringing the views up to the log after any stop: body locations from the body segments of
//! older data directories, then every record not yet applied with the bodies attached to it,
//! folded in chunks (each chunk one view-store transaction with its marks).

use super::segment::{Item, SegmentLog};
use super::view_store::{BodyFile, ViewStore, body_location};
use crate::bodies::BodyEntry;
use crate::open_error::OpenError;
use crate::overlay::Overlay;
use crate::records::Record;
use crate::views::{self, KvWrite, ViewError};

/// Records replayed per view-store transaction during a rebuild.
const REBUILD_CHUNK: usize = 20_000;

pub(super) fn replay(
    views: &ViewStore,
    log: &SegmentLog,
    bodies: &SegmentLog,
    applied: u64,
    applied_bodies: u64,
) -> Result<(), OpenError> {
    let mut last_body = applied_bodies;
    let mut locations = Vec::new();
    bodies.for_each_from(applied_bodies + 1, |index, pos, payload| {
        let (kind, id) = BodyEntry::decode_key(payload)
            .map_err(|e| ViewError::Store(format!("body entry {index}: {e}")))?;
        if !BodyEntry::is_erased(payload) {
            let (key, value) = body_location(kind, &id, BodyFile::Bodies, pos);
            locations.push((key, Some(value)));
        }
        last_body = index;
        Ok::<_, OpenError>(())
    })?;
    views.apply(locations, (applied, last_body))?;

    let mut ov = Overlay::new(views);
    let mut last = applied;
    log.for_each_frame_from(applied + 1, |item| {
        match item {
            Item::Attachment(pos, payload) => {
                // A body, written with the records after it: its location joins their chunk.
                let (kind, id) = BodyEntry::decode_key(payload)
                    .map_err(|e| ViewError::Store(format!("body at {pos:?}: {e}")))?;
                if !BodyEntry::is_erased(payload) {
                    let (key, value) = body_location(kind, &id, BodyFile::Log, pos);
                    ov.put(key, value);
                }
            }
            Item::Entry(index, _, raw) => {
                let record =
                    Record::decode(raw).map_err(|error| OpenError::Record { index, error })?;
                views::apply(&mut ov, index, &record, raw)?;
                last = index;
                if ov.len() >= REBUILD_CHUNK {
                    let writes = std::mem::replace(&mut ov, Overlay::new(views)).into_writes();
                    views.apply(writes, (last, last_body))?;
                }
            }
        }
        Ok::<_, OpenError>(())
    })?;
    views.apply(ov.into_writes(), (last, last_body))?;
    Ok(())
}
