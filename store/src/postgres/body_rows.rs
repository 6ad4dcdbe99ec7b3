//! Where the PostgreSQL engine keeps a body: an exchange's body in the row of the record that
//! commits to it (`log_records.body`: NULL when the row keeps none, empty once erased), found
//! through the exchange's meta ([`views::RequestMeta::body_record`]); a protocol document, which
//! has no meta, in the `bodies` table, as every body was before schema 6 (those stay there, and
//! are read and erased there). A caller that holds the meta reads a body in one round trip
//! (`Reader::body_in`), others in two.
//!
//! Measured (seven alternating ledger-only pairs against the build before): a body row of its
//! own, with its key in the table's index, cost the ledger about a tenth of its records a
//! second, 11,473 → 12,550 records/s on average (see the README's PostgreSQL section).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{PgReader, failed, prepared, queries};

use crate::backend::StorageError;
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::records::{Record, RequestId};
use crate::views::{self, KvRead};

/// A batch's sealed bodies, placed.
pub(super) struct Placed {
    /// One per record of the batch: the sealed body it commits to, if it is kept in its row.
    pub(super) in_rows: Vec<Option<Vec<u8>>>,
    /// The rest, for the bodies table: kinds, ids and sealed frames (one per kind and id, the
    /// last one sealed winning, as in every engine).
    pub(super) kinds: Vec<i16>,
    pub(super) ids: Vec<Vec<u8>>,
    pub(super) sealed: Vec<Vec<u8>>,
}

/// Whether a body of `kind` is kept in its record's row (found through its exchange's meta).
fn in_row(kind: MessageKind) -> bool {
    !matches!(kind, MessageKind::Protocol | MessageKind::Notice)
}

/// Places each of `bodies` (sealed as `sealed`) in the row of the record of `records` that
/// commits to it, or in the table if no record of the batch does (a protocol document).
pub(super) fn place(records: &[Vec<u8>], bodies: &[BodyEntry], sealed: Vec<Vec<u8>>) -> Placed {
    let committed: HashMap<(MessageKind, RequestId), usize> = records
        .iter()
        .enumerate()
        .filter_map(|(at, raw)| {
            let body = Record::decode(raw).ok()?.event.body()?;
            in_row(body.0).then_some((body, at))
        })
        .collect();
    let mut in_rows = vec![None; records.len()];
    let mut table = BTreeMap::new();
    for (body, frame) in bodies.iter().zip(sealed) {
        match committed.get(&(body.kind, body.request_id)) {
            Some(&at) => in_rows[at] = Some(frame),
            None => {
                table.insert(
                    (i16::from(body.kind.code()), body.request_id.0.to_vec()),
                    frame,
                );
            }
        }
    }
    let (keys, sealed): (Vec<_>, Vec<_>) = table.into_iter().unzip();
    let (kinds, ids) = keys.into_iter().unzip();
    Placed {
        in_rows,
        kinds,
        ids,
        sealed,
    }
}

/// The record whose row would keep the body of `kind` of the exchange whose meta is `meta`
/// (0: none, or a body kept in the table: `body_record` names no record for a document).
pub(super) fn record_in(meta: &views::RequestMeta, kind: MessageKind) -> Result<i64, StorageError> {
    i64::try_from(meta.body_record(kind).unwrap_or(0)).map_err(StorageError::new)
}

/// The record whose row would keep the body of `kind` of `id` (0: none, or a body kept in the
/// table), from the exchange's meta.
pub(super) fn record_of(
    views: &dyn KvRead,
    kind: MessageKind,
    id: &RequestId,
) -> Result<i64, StorageError> {
    let [record] = records_of(views, &[(kind, *id)])?[..] else {
        return Err(StorageError::new(
            "the views answered for more bodies than asked",
        ));
    };
    Ok(record)
}

/// For each of `wanted`, the record whose row would keep its body (0: none, or a body kept in
/// the table), from the exchanges' metas, read at once.
pub(super) fn records_of(
    views: &dyn KvRead,
    wanted: &[(MessageKind, RequestId)],
) -> Result<Vec<i64>, StorageError> {
    // Each exchange's meta read and decoded once, however many of its kinds are asked for.
    let ids: Vec<&RequestId> = wanted
        .iter()
        .filter(|(kind, _)| in_row(*kind))
        .map(|(_, id)| id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let keys: Vec<Vec<u8>> = ids.iter().map(|id| views::meta_key(id)).collect();
    // Only documents asked for: no read (on PostgreSQL a read is a round trip).
    let values = match keys.is_empty() {
        true => Vec::new(),
        false => views.get_many(&keys)?,
    };
    let mut metas = HashMap::new();
    for (id, value) in ids.into_iter().zip(values) {
        if let Some(value) = value {
            let meta = views::RequestMeta::decode(&value)
                .map_err(|e| StorageError(format!("the meta of {id}: {e}")))?;
            metas.insert(id, meta);
        }
    }
    wanted
        .iter()
        .map(|(kind, id)| match metas.get(id) {
            Some(meta) if in_row(*kind) => record_in(meta, *kind),
            _ => Ok(0),
        })
        .collect()
}

/// The body of `kind` of `id`, opened, kept in the row of `record` (0: in the table).
pub(super) fn open(
    reader: &PgReader,
    record: i64,
    kind: MessageKind,
    id: &RequestId,
) -> Result<Option<BodyEntry>, StorageError> {
    let Some(Some(sealed)) = stored(reader, record, kind, id)? else {
        return Ok(None);
    };
    let body = reader
        .body_keys
        .open(&sealed)
        .map_err(|e| StorageError(format!("body {kind} of {id}: {e}")))?;
    // The frame's kind and id are authenticated: a meta that named the wrong record would
    // show here, not as another exchange's body.
    if (body.kind, body.request_id) != (kind, *id) {
        return Err(StorageError(format!(
            "body {kind} of {id}: record {record} keeps the {} of {}",
            body.kind, body.request_id
        )));
    }
    Ok(Some(body))
}

/// The stored frame of the body of `kind` of `id`, kept in the row of `record` (0: in the
/// table). `None`: never stored; `Some(None)`: erased.
pub(super) fn stored(
    reader: &PgReader,
    record: i64,
    kind: MessageKind,
    id: &RequestId,
) -> Result<Option<Option<Vec<u8>>>, StorageError> {
    let (kind, id) = (i16::from(kind.code()), id.0.to_vec());
    reader.db.with(move |client| async move {
        Ok(client
            .query_opt(
                &prepared(&client, queries::SELECT_BODY).await?,
                &[&record, &kind, &id],
            )
            .await
            .map_err(failed("reading a body"))?
            .map(|r| Some(r.get::<_, Vec<u8>>(0)).filter(|b| !b.is_empty())))
    })
}

/// Erases `bodies` where they are kept: in their records' rows (the rows and their records
/// stay), or in the table (written before schema 6, or a document).
pub(super) fn erase(
    reader: &PgReader,
    bodies: &[(MessageKind, RequestId)],
) -> Result<(), StorageError> {
    let (kinds, ids) = table_keys(bodies);
    let records = records_of(reader, bodies)?;
    reader.db.with(move |client| async move {
        client
            .execute(
                &prepared(&client, queries::ERASE_BODIES).await?,
                &[&records, &kinds, &ids],
            )
            .await
            .map_err(failed("erasing bodies"))
            .map(drop)
    })
}

/// `Reader::bodies_stored`: each of `wanted` stored in its record's row or in the table.
pub(super) fn stored_many(
    reader: &PgReader,
    wanted: &[(MessageKind, RequestId)],
) -> Result<Vec<bool>, StorageError> {
    let (kinds, ids) = table_keys(wanted);
    let records = records_of(reader, wanted)?;
    let asked = records.clone();
    type Found = (HashSet<i64>, HashSet<(i16, Vec<u8>)>);
    let (in_rows, in_table): Found = reader.db.with(move |client| async move {
        let rows = client
            .query(
                &prepared(&client, queries::SELECT_BODIES_STORED).await?,
                &[&asked, &kinds, &ids],
            )
            .await
            .map_err(failed("reading which bodies are stored"))?;
        let mut found: Found = Default::default();
        for row in rows {
            match (row.get(0), row.get(1), row.get(2)) {
                (Some(record), _, _) => {
                    found.0.insert(record);
                }
                (None, Some(kind), Some(id)) => {
                    found.1.insert((kind, id));
                }
                _ => {}
            }
        }
        Ok(found)
    })?;
    Ok(wanted
        .iter()
        .zip(records)
        .map(|((k, id), record)| {
            in_rows.contains(&record) || in_table.contains(&(i16::from(k.code()), id.0.to_vec()))
        })
        .collect())
}

/// The bodies table's keys of `wanted`: kinds and ids, in its order.
fn table_keys(wanted: &[(MessageKind, RequestId)]) -> (Vec<i16>, Vec<Vec<u8>>) {
    wanted
        .iter()
        .map(|(kind, id)| (i16::from(kind.code()), id.0.to_vec()))
        .unzip()
}
