//! What other writers of a shared log (brokers on one PostgreSQL database) appended, folded into
//! this writer's tree and register before it decides anything, so that every writer decides
//! against the whole log and signs only trees it has hashed itself.

use infoshare_tlog::{Tree, leaf_hash};

use crate::backend::Reader;
use crate::bodies::protocol_body_id;
use crate::domain::MessageKind;
use crate::protocol::ProtocolStore;
use crate::records::{Event, ProtocolEvent, Record, code};

/// What a fold found besides the leaves.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Folded {
    pub(crate) records: u64,
    pub(crate) register_changed: bool,
    /// Another writer rotated the log's signing key to this public key (the last rotation
    /// folded): this writer holds only the key before it.
    pub(crate) rotated_to: Option<[u8; 32]>,
}

/// Why a fold stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FoldError {
    /// The database could not be read: nothing is wrong with the log, try again later.
    #[error("{0}")]
    Storage(String),
    /// A record that does not decode, or a register change that does not apply.
    #[error("record {index}: {message}")]
    Record { index: u64, message: String },
}

/// Pushes the records after `tree`'s size, up to `reader.records()`, into `tree`, and their
/// protocol changes into `register`. Resumable: on an error, what was folded stays folded.
pub(crate) fn fold(
    reader: &dyn Reader,
    tree: &mut Tree,
    register: &mut ProtocolStore,
) -> Result<Folded, FoldError> {
    let mut folded = Folded::default();
    let from = tree.size() + 1;
    if from > reader.records() {
        return Ok(folded);
    }
    let mut failed = None;
    reader
        .for_each_record(from, &mut |index, raw| {
            if index != tree.size() + 1 {
                return Ok(());
            }
            let event = Record::event_code_of(raw);
            if matches!(
                event,
                Some(
                    code::PROTOCOL_REGISTERED
                        | code::PROTOCOL_APPROVED
                        | code::PROTOCOL_STATE_CHANGED
                )
            ) {
                if let Err(message) = apply_protocol(reader, register, raw) {
                    failed = Some(FoldError::Record { index, message });
                    return Err(crate::backend::StorageError::new("stopped"));
                }
                folded.register_changed = true;
            }
            if event == Some(code::LOG_KEY_ROTATED) {
                match Record::decode(raw) {
                    Ok(Record {
                        event: Event::LogKeyRotated { public_key },
                        ..
                    }) => folded.rotated_to = Some(public_key),
                    other => {
                        failed = Some(FoldError::Record {
                            index,
                            message: other.map_or_else(
                                |e| e.to_string(),
                                |_| "a key rotation that is not one".into(),
                            ),
                        });
                        return Err(crate::backend::StorageError::new("stopped"));
                    }
                }
            }
            tree.push(leaf_hash(raw));
            folded.records += 1;
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or(FoldError::Storage(e.0)))?;
    match failed {
        Some(e) => Err(e),
        None => Ok(folded),
    }
}

fn apply_protocol(
    reader: &dyn Reader,
    register: &mut ProtocolStore,
    raw: &[u8],
) -> Result<(), String> {
    let record = Record::decode(raw).map_err(|e| e.to_string())?;
    let document = protocol_document(reader, &record)?;
    register.apply(&record, document.as_deref())
}

/// The document a protocol record registers, from the body store (`None` for the other
/// protocol changes).
pub(crate) fn protocol_document(
    reader: &dyn Reader,
    record: &Record,
) -> Result<Option<String>, String> {
    let Event::Protocol(ProtocolEvent::Registered {
        protocol_id,
        version,
        ..
    }) = &record.event
    else {
        return Ok(None);
    };
    let id = protocol_body_id(protocol_id, *version);
    let body = reader
        .body(MessageKind::Protocol, &id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("document of {protocol_id} v{version} missing from the body store")
        })?;
    String::from_utf8(body.body)
        .map(Some)
        .map_err(|_| format!("document of {protocol_id} is not UTF-8"))
}
