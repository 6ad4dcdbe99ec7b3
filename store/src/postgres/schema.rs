//! The PostgreSQL schema, as numbered migrations applied in order at start, each in its own
//! transaction with its version. A database migrated by a newer broker is refused, not used.

use tokio_postgres::Client;

use crate::backend::StorageError;

/// The schema version this broker writes.
pub const SCHEMA_VERSION: i32 = 7;

/// Held (transaction-scoped) while migrating, so two brokers starting together do not both
/// migrate.
const MIGRATION_LOCK: i64 = 0x696e_666f_7368_0001;

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: the log, the bodies, the views, the tiles and the checkpoint.
    "CREATE TABLE log_records (
         idx bigint PRIMARY KEY CHECK (idx > 0),
         bytes bytea NOT NULL
     );
     -- sealed is NULL once retention erased the body; the row stays (it was stored).
     CREATE TABLE bodies (
         kind smallint NOT NULL,
         request_id bytea NOT NULL,
         sealed bytea,
         PRIMARY KEY (kind, request_id)
     );
     CREATE TABLE views (
         key bytea PRIMARY KEY,
         value bytea NOT NULL
     );
     CREATE TABLE tiles (
         level smallint NOT NULL,
         idx bigint NOT NULL,
         hashes bytea NOT NULL CHECK (length(hashes) = 8192),
         PRIMARY KEY (level, idx)
     );
     -- One row: the latest signed checkpoint and the tree size it covers.
     CREATE TABLE checkpoint (
         one boolean PRIMARY KEY DEFAULT true CHECK (one),
         size bigint NOT NULL,
         note text
     );
     INSERT INTO checkpoint (size, note) VALUES (0, NULL);",
    // 2: views gained deadlines, work queues, outboxes and links (record version 3): they are
    // folded again from the log, a chunk a transaction (`rebuild`), from the record this row
    // names; the row goes once every record is folded.
    "DELETE FROM views;
     CREATE TABLE views_rebuild (
         one boolean PRIMARY KEY DEFAULT true CHECK (one),
         next_idx bigint NOT NULL
     );
     INSERT INTO views_rebuild (next_idx) VALUES (1);",
    // 3: the audit index entries are stored as posting chunks, a batch's entries under one
    // prefix one row (`view_rows`): the views are folded again from the log, as for 2.
    "DELETE FROM views;
     DELETE FROM views_rebuild;
     INSERT INTO views_rebuild (next_idx) VALUES (1);",
    // 4: the outboxes became posting lists and most of a timeline is read from the exchange's
    // meta (no key a record): the views are folded again from the log, as for 2.
    "DELETE FROM views;
     DELETE FROM views_rebuild;
     INSERT INTO views_rebuild (next_idx) VALUES (1);",
    // 5: the inboxes became posting lists (an item is read from its record and its exchange's
    // meta): the views are folded again from the log, as for 2.
    "DELETE FROM views;
     DELETE FROM views_rebuild;
     INSERT INTO views_rebuild (next_idx) VALUES (1);",
    // 6: an exchange's body is kept in the row of the record that commits to it (NULL: none
    // there; empty: erased), found through the exchange's meta; bodies written before stay in
    // `bodies` and are read and erased there.
    "ALTER TABLE log_records ADD COLUMN body bytea;",
    // 7: a request's work and expiry entries are kept in its meta's row (`view_rows`), not in
    // rows of their own: the views are folded again from the log, as for 2. A batch is one
    // statement (`queries::WRITE_BATCH`), which refuses itself through `infoshare_advanced`
    // unless it moved the checkpoint row.
    "CREATE FUNCTION infoshare_advanced(moved bigint, from_size bigint) RETURNS void
     LANGUAGE plpgsql AS $$
     BEGIN
         IF moved <> 1 THEN
             RAISE EXCEPTION 'the log is not at % records as this writer holds: refused the batch',
                 from_size USING ERRCODE = 'P0001';
         END IF;
     END $$;
     ALTER TABLE views ADD COLUMN work bytea, ADD COLUMN expiry bytea;
     CREATE UNIQUE INDEX views_work ON views (work) WHERE work IS NOT NULL;
     CREATE UNIQUE INDEX views_expiry ON views (expiry) WHERE expiry IS NOT NULL;
     DELETE FROM views;
     DELETE FROM views_rebuild;
     INSERT INTO views_rebuild (next_idx) VALUES (1);",
];

const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS infoshare_schema (version integer NOT NULL)";
const TAKE_MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const SELECT_VERSION: &str = "SELECT max(version) FROM infoshare_schema";
const INSERT_VERSION: &str = "INSERT INTO infoshare_schema (version) VALUES ($1)";

fn failed(what: impl std::fmt::Display) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError(format!("{what}: {}", super::describe(&e)))
}

/// The schema version the database is at (0: never migrated).
pub(crate) async fn version(client: &Client) -> Result<i32, StorageError> {
    let exists = client
        .query_one("SELECT to_regclass('infoshare_schema') IS NOT NULL", &[])
        .await
        .map_err(failed("reading the schema version"))?
        .get::<_, bool>(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(SELECT_VERSION, &[])
        .await
        .map_err(failed("reading the schema version"))?;
    Ok(row.get::<_, Option<i32>>(0).unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`]; the version it found.
pub(crate) async fn migrate(client: &mut Client) -> Result<i32, StorageError> {
    let tx = client
        .transaction()
        .await
        .map_err(failed("starting the migration"))?;
    tx.execute(TAKE_MIGRATION_LOCK, &[&MIGRATION_LOCK])
        .await
        .map_err(failed("taking the migration lock"))?;
    tx.batch_execute(CREATE_VERSION_TABLE)
        .await
        .map_err(failed("creating the schema version table"))?;
    let found = tx
        .query_one(SELECT_VERSION, &[])
        .await
        .map_err(failed("reading the schema version"))?
        .get::<_, Option<i32>>(0)
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StorageError(format!(
            "the database's schema is version {found}, newer than this broker's {SCHEMA_VERSION}: \
             run the newer broker"
        )));
    }
    for version in found + 1..=SCHEMA_VERSION {
        tx.batch_execute(MIGRATIONS[(version - 1) as usize])
            .await
            .map_err(failed(format_args!("migration {version}").to_string()))?;
        tx.execute(INSERT_VERSION, &[&version])
            .await
            .map_err(failed("recording the schema version"))?;
    }
    tx.commit()
        .await
        .map_err(failed("committing the migration"))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_migration_per_version() {
        assert_eq!(super::MIGRATIONS.len(), super::SCHEMA_VERSION as usize);
    }
}
