//! Every statement the engine sends, by name, each parameterised (no value is ever spliced into
//! SQL text).

/// A whole batch in one statement, so in one transaction of its own that commits as the
/// statement ends: one round trip, where a `BEGIN`, the writes and a `COMMIT` took two
/// (measured: the ledger alone 17,276 → 18,990 records/s, six alternating pairs). In it:
/// - the checkpoint moves from the batch's first index − 1 (`$3`) to its new size (`$1`,
///   note `$2`): the batch's one guard on the total order; if no row moved (a writer whose
///   idea of the log is stale), `infoshare_advanced` raises, and nothing of the statement
///   stays;
/// - the records, each with the body it commits to where it is kept in the row (`$4`–`$6`);
/// - bodies kept in the table (`$7`–`$9`: protocol documents);
/// - views new to the table (a plain insert: a key that exists fails the batch, as the views
///   and the log disagree), views that may exist (an upsert), with the work and expiry
///   entries their metas imply, and views deleted (`$10`–`$18`; no key is in two of them);
/// - the tiles the batch completed (`$19`–`$21`);
/// - the notification of the log's new size to other brokers (`$22`), delivered on commit.
///
/// Its parts run on one snapshot and touch different rows; an empty array writes nothing.
pub(crate) const WRITE_BATCH: &str = "WITH advanced AS (\
         UPDATE checkpoint SET size = $1, note = $2 WHERE size = $3 RETURNING size), \
     records AS (INSERT INTO log_records (idx, bytes, body) \
         SELECT * FROM unnest($4::bigint[], $5::bytea[], $6::bytea[])), \
     bodies AS (INSERT INTO bodies (kind, request_id, sealed) \
         SELECT * FROM unnest($7::smallint[], $8::bytea[], $9::bytea[]) \
         ON CONFLICT (kind, request_id) DO UPDATE SET sealed = EXCLUDED.sealed), \
     new_views AS (INSERT INTO views (key, value, work, expiry) \
         SELECT * FROM unnest($10::bytea[], $11::bytea[], $12::bytea[], $13::bytea[])), \
     set_views AS (INSERT INTO views (key, value, work, expiry) \
         SELECT * FROM unnest($14::bytea[], $15::bytea[], $16::bytea[], $17::bytea[]) \
         ON CONFLICT (key) DO UPDATE \
         SET value = EXCLUDED.value, work = EXCLUDED.work, expiry = EXCLUDED.expiry), \
     deleted_views AS (DELETE FROM views WHERE key = ANY($18)), \
     tiles AS (INSERT INTO tiles (level, idx, hashes) \
         SELECT * FROM unnest($19::smallint[], $20::bigint[], $21::bytea[]) \
         ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes) \
     SELECT infoshare_advanced((SELECT count(*) FROM advanced), $3), \
         pg_notify('infoshare_log', $22)";
/// Replaces the checkpoint with one of the same or a larger tree (never a smaller one).
pub(crate) const STORE_CHECKPOINT: &str =
    "UPDATE checkpoint SET size = $1, note = $2 WHERE size <= $1";
pub(crate) const SELECT_CHECKPOINT: &str = "SELECT size, note FROM checkpoint";
pub(crate) const COUNT_RECORDS: &str = "SELECT coalesce(max(idx), 0) FROM log_records";

pub(crate) const SELECT_RECORD: &str = "SELECT bytes FROM log_records WHERE idx = $1";
pub(crate) const SELECT_RECORDS_AT: &str = "SELECT idx, bytes FROM log_records WHERE idx = ANY($1)";
pub(crate) const SELECT_RECORDS_FROM: &str = "SELECT idx, bytes FROM log_records \
     WHERE idx >= $1 AND idx <= $2 ORDER BY idx LIMIT $3";

/// A body in its record's row (record `$1`), or else in the bodies table: no row if never
/// stored, an empty value if erased.
pub(crate) const SELECT_BODY: &str = "SELECT body FROM log_records WHERE idx = $1 AND body IS NOT NULL \
     UNION ALL SELECT coalesce(sealed, ''::bytea) FROM bodies WHERE kind = $2 AND request_id = $3 \
     LIMIT 1";
/// Which bodies are stored (erased or not), of those kept in the rows of records `$1` (by
/// record) and in the bodies table (`$2`, `$3`: by kind and id), in one read.
pub(crate) const SELECT_BODIES_STORED: &str = "SELECT idx, NULL::smallint, NULL::bytea \
     FROM log_records WHERE idx = ANY($1) AND body IS NOT NULL \
     UNION ALL SELECT NULL::bigint, kind, request_id FROM bodies \
     WHERE (kind, request_id) IN (SELECT * FROM unnest($2::smallint[], $3::bytea[]))";
/// Erases bodies kept in the rows of records `$1` (the rows and their records stay) and in the
/// bodies table (`$2`, `$3`), in one statement: all of them or none.
pub(crate) const ERASE_BODIES: &str = "WITH in_rows AS (UPDATE log_records SET body = ''::bytea \
     WHERE idx = ANY($1) AND body IS NOT NULL RETURNING idx) \
     UPDATE bodies SET sealed = NULL \
     WHERE (kind, request_id) IN (SELECT * FROM unnest($2::smallint[], $3::bytea[]))";

/// Rows with the work and expiry entries their metas imply (NULL: none; see `view_rows`), as
/// a rebuild writes them (a batch writes them within `WRITE_BATCH`).
pub(crate) const UPSERT_VIEWS: &str = "INSERT INTO views (key, value, work, expiry) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[]) \
     ON CONFLICT (key) DO UPDATE \
     SET value = EXCLUDED.value, work = EXCLUDED.work, expiry = EXCLUDED.expiry";
/// Rows new to the table: a key that exists fails the batch (the views and the log disagree).
pub(crate) const INSERT_VIEWS: &str = "INSERT INTO views (key, value, work, expiry) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[])";
pub(crate) const DELETE_VIEWS: &str = "DELETE FROM views WHERE key = ANY($1)";
pub(crate) const SELECT_VIEW: &str = "SELECT value FROM views WHERE key = $1";
pub(crate) const SELECT_VIEWS: &str = "SELECT key, value FROM views WHERE key = ANY($1)";
pub(crate) const SCAN_VIEWS: &str =
    "SELECT key, value FROM views WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
/// A work or expiry entry, kept in its meta's row (`r` ‖ id): its value is the id.
pub(crate) const SELECT_WORK: &str = "SELECT substr(key, 2) FROM views WHERE work = $1";
pub(crate) const SELECT_EXPIRY: &str = "SELECT substr(key, 2) FROM views WHERE expiry = $1";
pub(crate) const SCAN_WORK: &str = "SELECT work, substr(key, 2) FROM views \
     WHERE work >= $1 AND work < $2 ORDER BY work LIMIT $3";
pub(crate) const SCAN_EXPIRY: &str = "SELECT expiry, substr(key, 2) FROM views \
     WHERE expiry >= $1 AND expiry < $2 ORDER BY expiry LIMIT $3";

pub(crate) const UPSERT_TILES: &str = "INSERT INTO tiles (level, idx, hashes) \
     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
     ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes";
pub(crate) const SELECT_TILE: &str = "SELECT hashes FROM tiles WHERE level = $1 AND idx = $2";

/// Transaction-scoped, for work outside the batches (folding the views again at start); the
/// batches are written under the lease below, the same lock.
pub(crate) const LOCK_SEQUENCER: &str = "SELECT pg_advisory_xact_lock($1)";
/// The same lock held by a writer's session over several batches (see `writer`).
pub(crate) const TAKE_LEASE: &str = "SELECT pg_advisory_lock($1)";
pub(crate) const GIVE_UP_LEASE: &str = "SELECT pg_advisory_unlock($1)";
pub(crate) const LISTEN_LOG: &str = "LISTEN infoshare_log";

/// Where a rebuild of the views stands (no row: none is under way).
pub(crate) const SELECT_REBUILD: &str = "SELECT next_idx FROM views_rebuild";
/// Moves a rebuild on past a chunk, guarded: no row moves if another broker moved it first.
pub(crate) const ADVANCE_REBUILD: &str =
    "UPDATE views_rebuild SET next_idx = $1 WHERE next_idx = $2";
pub(crate) const FINISH_REBUILD: &str = "DELETE FROM views_rebuild";
