//! Opening a log that may have stopped anywhere: the views brought up to the log, and the log
//! held to the last checkpoint it signed.

use std::path::Path;

use super::{OpenError, REBUILD_CHUNK};
use crate::bodies::BodyEntry;
use crate::log_keys::LogKeys;
use crate::records::Record;
use crate::segment::SegmentLog;
use crate::view_store::ViewStore;
use crate::views::{self, ViewError};
use infoshare_tlog::Tree;

pub(super) fn replay(
    views: &ViewStore,
    log: &SegmentLog,
    bodies: &SegmentLog,
    applied: u64,
    applied_bodies: u64,
) -> Result<(), OpenError> {
    let mut last_body = applied_bodies;
    let mut ov = views.overlay();
    bodies.for_each_from(applied_bodies + 1, |index, pos, payload| {
        let (kind, id) = BodyEntry::decode_key(payload)
            .map_err(|e| ViewError::Store(format!("body entry {index}: {e}")))?;
        if !BodyEntry::is_erased(payload) {
            ov.put_body(kind, &id, pos);
        }
        last_body = index;
        Ok::<_, OpenError>(())
    })?;
    ov.set_marks(applied, last_body);
    ov.commit()?;

    let mut ov = Some(views.overlay());
    let mut last = applied;
    log.for_each_from(applied + 1, |index, _, raw| {
        let record = Record::decode(raw).map_err(|error| OpenError::Record { index, error })?;
        let o = ov.as_mut().expect("overlay present");
        views::apply(o, index, &record, raw)?;
        last = index;
        if o.len() >= REBUILD_CHUNK {
            let mut full = ov.take().expect("overlay present");
            full.set_marks(last, last_body);
            full.commit()?;
            ov = Some(views.overlay());
        }
        Ok::<_, OpenError>(())
    })?;
    let mut o = ov.take().expect("overlay present");
    o.set_marks(last, last_body);
    o.commit()?;
    Ok(())
}

/// Refuses a log that does not contain what the last signed checkpoint covered.
pub(super) fn check_signed_checkpoint(
    path: &Path,
    note: Option<&str>,
    keys: &LogKeys,
    tree: &Tree,
) -> Result<(), OpenError> {
    let Some(note) = note else {
        return Ok(());
    };
    // Signed by the current key, or (a crash amid a rotation) by a key it replaced.
    let verifiers = keys.verifiers().map_err(OpenError::Tampered)?;
    let checkpoint = verifiers
        .iter()
        .find_map(|v| v.verify(note).ok())
        .ok_or_else(|| {
            OpenError::Tampered(format!(
                "{} is not signed by this log's key",
                path.display()
            ))
        })?;
    if checkpoint.size > tree.size() {
        return Err(OpenError::Tampered(format!(
            "the log holds {} records but checkpoint {} was signed over {}: records were removed",
            tree.size(),
            path.display(),
            checkpoint.size
        )));
    }
    if tree.root(checkpoint.size) != Some(checkpoint.root) {
        return Err(OpenError::Tampered(format!(
            "the first {} records no longer hash to the signed root: a record was changed",
            checkpoint.size
        )));
    }
    Ok(())
}

/// Keeps the latest checkpoint beside the log (replaced atomically; not synced, because a lost
/// update only weakens truncation detection to the previous batch, and the same checkpoint is
/// re-signed identically from the log).
pub(super) fn store_checkpoint(path: &Path, note: &str) {
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, note).and_then(|()| std::fs::rename(&tmp, path)) {
        tracing::warn!(error = %e, "could not store the latest checkpoint");
    }
}
