//! The PostgreSQL engine: the log, the sealed bodies, the views with their audit indexes, the
//! Merkle tree's full tiles and the signed checkpoint, all in one database, each batch one
//! transaction.
//!
//! ```text
//! log_records (idx, bytes, body)         the log, the source of truth; with an exchange's body
//!                                        (AES-256-GCM, `seal`) in the row of the record that
//!                                        commits to it, empty once erased (`body_rows`)
//! bodies (kind, request_id, sealed)      protocol documents, and bodies from before schema 6;
//!                                        sealed NULL once erased
//! views (key, value, work, expiry)       the derived views, the same keys as every engine;
//!                                        a request's work and expiry entries in the
//!                                        columns of its meta's row (`view_rows`)
//! tiles (level, idx, hashes)             full tiles (C2SP tlog-tiles), derived from the log
//! checkpoint (size, note)                one row: the latest signed checkpoint
//! infoshare_schema (version)             the migrations applied (`schema`)
//! ```
//!
//! A batch is one statement, and so one transaction (`queries::WRITE_BATCH`): the checkpoint
//! row moves from `first_index − 1` to the new size (if the log is not where this writer
//! thinks it is, no row moves and the statement refuses itself), with the bodies, records,
//! view writes and the tiles the batch completed. PostgreSQL's commit makes it durable and
//! visible at once, so there is nothing to replay or cut at start: readers see a batch whole or
//! not at all, and the stored checkpoint always covers exactly the records.
//!
//! Several brokers on one log: each batch's transaction first takes the sequencer lock (see
//! `writer`), so batches of every broker follow one another; a broker that takes it folds in
//! the records others appended since its last batch (`catch_up`) before deciding anything, and
//! signs only a tree it has hashed itself. The checkpoint guard above would refuse a batch
//! even if two brokers ever held the lock at once. Other brokers' batches are heard at once
//! (`listen`), so a stream on one broker delivers what was submitted through another.
//!
//! Keys (the log signing key, the body keys) are files in the broker's keys directory, not in
//! the database: a copy of the database alone reveals no body.

mod body_rows;
mod bridge;
mod listen;
mod queries;
mod rebuild;
pub mod schema;
mod settings;
mod tiles;
mod tls;
mod verify;
mod view_rows;
mod writer;

pub use settings::PgSettings;
pub use verify::verify_postgres;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bridge::Bridge;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use infoshare_tlog::tiles::TileStore;
use tiles::PgTiles;
use writer::Writer;

use crate::backend::{Backend, Batch, Reader, StorageError, VisitEntry, VisitRecord};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::open_error::OpenError;
use crate::records::RequestId;
use crate::seal::BodyKeys;
use crate::views::{KvRead, ViewError};

/// Rows read per round trip by a scan or a walk of the log.
const PAGE: i64 = 512;
/// A PostgreSQL error with what the server said, not only "db error".
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError(format!("PostgreSQL, {what}: {}", describe(&e)))
}

/// `sql` prepared once per pooled connection (a statement given as text is prepared again at
/// every call: a round trip more).
async fn prepared(
    client: &deadpool_postgres::Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, StorageError> {
    client
        .prepare_cached(sql)
        .await
        .map_err(failed("preparing a statement"))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => failed("connecting")(e),
        other => StorageError(format!("PostgreSQL connection pool: {other}")),
    }
}

/// The engine over one database.
pub struct PostgresEngine {
    reader: Arc<PgReader>,
    tiles: Arc<PgTiles>,
    writer: Writer,
}

/// What the engine's reader, writer and tiles share.
struct Db {
    pool: Pool,
    /// What the connections outside the pool (the writer's, the listener's) are made with.
    config: tokio_postgres::Config,
    tls: tls::Tls,
    /// Last field: the runtime goes after the pool's connections.
    bridge: Bridge,
}

impl Db {
    fn connect(settings: &PgSettings) -> Result<Self, OpenError> {
        let (config, tls) = settings.connect_with().map_err(OpenError::Storage)?;
        let bridge = Bridge::new().map_err(|e| OpenError::Storage(e.0))?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in_runtime = bridge.handle().enter();
            Pool::builder(manager)
                .max_size(settings.pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(bridge::CALL_TIMEOUT))
                .create_timeout(Some(bridge::CALL_TIMEOUT))
                .build()
                .map_err(|e| OpenError::Storage(format!("PostgreSQL connection pool: {e}")))?
        };
        Ok(Self {
            pool,
            config,
            tls,
            bridge,
        })
    }

    /// Runs `call` with a pooled connection, on the engine's runtime.
    fn with<T, F, Fut>(&self, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, StorageError>> + Send,
    {
        self.with_for(bridge::CALL_TIMEOUT, call)
    }

    /// As [`with`](Self::with), at most `limit`.
    fn with_for<T, F, Fut>(&self, limit: std::time::Duration, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, StorageError>> + Send,
    {
        let pool = self.pool.clone();
        self.bridge.run_for(limit, async move {
            let client = pool.get().await.map_err(pool_error)?;
            call(client).await
        })
    }
}

/// What `--check-config` reports of a database: reachable, and at which schema version.
pub fn probe(settings: &PgSettings) -> Result<String, String> {
    let (config, tls) = settings.connect_with()?;
    let bridge = Bridge::new().map_err(|e| e.0)?;
    bridge
        .run(async move {
            let (client, connection) = config.connect(tls).await.map_err(failed("connecting"))?;
            tokio::spawn(connection);
            let version = schema::version(&client).await?;
            if version > schema::SCHEMA_VERSION {
                return Err(StorageError(format!(
                    "schema version {version} is newer than this broker's {}",
                    schema::SCHEMA_VERSION
                )));
            }
            Ok(match version {
                0 => format!(
                    "PostgreSQL reachable; empty database (schema version {} is applied at start)",
                    schema::SCHEMA_VERSION
                ),
                v if v < schema::SCHEMA_VERSION => format!(
                    "PostgreSQL reachable; schema version {v} (migrated to {} at start)",
                    schema::SCHEMA_VERSION
                ),
                v => format!("PostgreSQL reachable; schema version {v}"),
            })
        })
        .map_err(|e| e.0)
}

impl PostgresEngine {
    /// Connects, applies the schema's migrations, and loads the body keys from `keys_dir/body`
    /// (making the first one if there is none).
    pub fn open(settings: &PgSettings, keys_dir: &Path) -> Result<Self, OpenError> {
        let db = Arc::new(Db::connect(settings)?);
        let (size, note, records) = {
            let (config, tls) = (db.config.clone(), db.tls.clone());
            db.bridge
                .run(async move {
                    let (mut client, connection) =
                        config.connect(tls).await.map_err(failed("connecting"))?;
                    tokio::spawn(connection);
                    let found = schema::migrate(&mut client).await?;
                    if found < schema::SCHEMA_VERSION {
                        tracing::info!(
                            from = found,
                            to = schema::SCHEMA_VERSION,
                            "PostgreSQL schema migrated"
                        );
                    }
                    let head = client
                        .query_one(queries::SELECT_CHECKPOINT, &[])
                        .await
                        .map_err(failed("reading the checkpoint"))?;
                    let records: i64 = client
                        .query_one(queries::COUNT_RECORDS, &[])
                        .await
                        .map_err(failed("counting the records"))?
                        .get(0);
                    let (size, note): (i64, Option<String>) = (head.get(0), head.get(1));
                    Ok((size, note, records))
                })
                .map_err(|e| OpenError::Storage(e.0))?
        };
        if size != records {
            // One transaction writes both: a mismatch is a change made outside the broker.
            return Err(OpenError::Tampered(format!(
                "the log holds {records} records but its checkpoint row says {size}"
            )));
        }
        let body_keys_dir = keys_dir.join("body");
        let body_keys =
            BodyKeys::load_or_create(&body_keys_dir).map_err(|message| OpenError::SigningKey {
                path: body_keys_dir.display().to_string(),
                message,
            })?;
        let reader = Arc::new(PgReader {
            db: db.clone(),
            records: AtomicU64::new(records as u64),
            checkpoint: RwLock::new(note),
            body_keys,
        });
        rebuild::run(&reader).map_err(|e| OpenError::Storage(e.0))?;
        Ok(Self {
            reader,
            writer: Writer::new(db.config.clone(), db.tls.clone()),
            tiles: Arc::new(PgTiles::new(db)),
        })
    }
}

/// Writes the tiles a batch completed, in its transaction (none: nothing sent).
async fn write_tiles(c: &writer::Conn, tiles: &tiles::TileRows) -> Result<u64, StorageError> {
    if tiles.0.is_empty() {
        return Ok(0);
    }
    c.client
        .execute(&c.tiles, &[&tiles.0, &tiles.1, &tiles.2])
        .await
        .map_err(failed("writing tiles"))
}

impl Backend for PostgresEngine {
    fn commit(&mut self, batch: Batch<'_>) -> Result<(), StorageError> {
        self.submit(batch, Box::new(|| ()))?;
        self.settle()
    }

    fn submit(
        &mut self,
        batch: Batch<'_>,
        on_durable: crate::backend::OnDurable,
    ) -> Result<(), StorageError> {
        let first = i64::try_from(batch.first_index).map_err(StorageError::new)?;
        let size = first - 1 + batch.records.len() as i64;
        let indexes: Vec<i64> = (first..=size).collect();
        let records: Vec<Vec<u8>> = batch.records.to_vec();
        let body_rows::Placed {
            in_rows,
            kinds,
            ids,
            sealed,
        } = body_rows::place(
            batch.records,
            batch.bodies,
            self.reader.body_keys.seal_all(batch.bodies),
        );
        let mut views = batch.views;
        views.extend(crate::postings::keys(batch.postings));
        let view_rows::ViewRows { new, set, deleted } =
            view_rows::rows(views, &batch.created, batch.first_index - 1)?;
        let tiles = self.tiles.take_pending();
        let note = batch.checkpoint.to_string();
        let stored = note.clone();
        let reader = self.reader.clone();
        let published = move || {
            reader.set_head(size, Some(stored));
            on_durable();
        };
        let bridge = &self.reader.db.bridge;
        self.writer.send(bridge, published, move |c| async move {
            c.client
                .execute(
                    &c.batch,
                    &[
                        &size,
                        &note,
                        &(first - 1),
                        &indexes,
                        &records,
                        &in_rows,
                        &kinds,
                        &ids,
                        &sealed,
                        &new.keys,
                        &new.values,
                        &new.work,
                        &new.expiry,
                        &set.keys,
                        &set.values,
                        &set.work,
                        &set.expiry,
                        &deleted,
                        &tiles.0,
                        &tiles.1,
                        &tiles.2,
                        &size.to_string(),
                    ],
                )
                .await
                .map(drop)
                .map_err(failed("writing a batch"))
        })
    }

    fn settle(&mut self) -> Result<(), StorageError> {
        self.writer.settle()
    }

    fn writer_held(&self) -> bool {
        self.writer.holds_lease()
    }

    fn writes_behind(&self) -> bool {
        true
    }

    fn erase_bodies(&mut self, bodies: &[(MessageKind, RequestId)]) -> Result<(), StorageError> {
        self.settle()?;
        if bodies.is_empty() {
            return Ok(());
        }
        body_rows::erase(&self.reader, bodies)
    }

    fn store_checkpoint(&mut self, note: &str) -> Result<(), StorageError> {
        let size = note
            .lines()
            .nth(1)
            .and_then(|l| l.parse::<i64>().ok())
            .ok_or_else(|| StorageError::new("a checkpoint without a tree size"))?;
        self.settle()?;
        let tiles = self.tiles.take_pending();
        let text = note.to_string();
        let bridge = &self.reader.db.bridge;
        self.writer.commit(bridge, move |c| async move {
            let (stored, _) = tokio::try_join!(
                async {
                    c.client
                        .execute(&c.store, &[&size, &text])
                        .await
                        .map_err(failed("storing the checkpoint"))
                },
                write_tiles(&c, &tiles),
            )?;
            if stored != 1 {
                return Err(StorageError::new(
                    "refused to replace the checkpoint with one of a smaller tree",
                ));
            }
            Ok(())
        })?;
        self.reader.set_head(size, Some(note.to_string()));
        Ok(())
    }

    fn wants_created(&self) -> bool {
        true
    }

    fn reader(&self) -> Arc<dyn Reader> {
        self.reader.clone()
    }

    fn tiles(&self) -> Option<Arc<dyn TileStore>> {
        Some(self.tiles.clone())
    }

    fn begin_batch(&mut self) -> Result<(), StorageError> {
        if let Some((size, note)) = self.writer.begin(&self.reader.db.bridge)? {
            self.reader.set_head(size, note);
        }
        Ok(())
    }

    fn end_batch(&mut self) {
        self.writer.end(&self.reader.db.bridge);
    }

    fn refresh(&mut self) -> Result<(), StorageError> {
        let (size, note) = self.reader.db.with(|client| async move {
            let row = client
                .query_one(&prepared(&client, queries::SELECT_CHECKPOINT).await?, &[])
                .await
                .map_err(failed("reading the checkpoint"))?;
            Ok((row.get::<_, i64>(0), row.get::<_, Option<String>>(1)))
        })?;
        // Never backwards: a reader may be behind this writer's own last batch.
        if size as u64 > self.reader.records() {
            self.reader.set_head(size, note);
        }
        Ok(())
    }

    fn watch_others(&mut self, appended: Arc<dyn Fn(u64) + Send + Sync>) {
        listen::spawn(
            &self.reader.db.bridge,
            self.reader.db.config.clone(),
            self.reader.db.tls.clone(),
            appended,
        );
    }
}

struct PgReader {
    db: Arc<Db>,
    /// Records committed, as of this broker's last batch or look at the checkpoint row.
    records: AtomicU64,
    checkpoint: RwLock<Option<String>>,
    body_keys: BodyKeys,
}

fn view_error(e: StorageError) -> ViewError {
    ViewError::Store(e.0)
}

impl KvRead for PgReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        if crate::postings::is_index_key(key) {
            return Ok(view_rows::contains(self, key)?.then(Vec::new));
        }
        let query = view_rows::get_query(key);
        let key = key.to_vec();
        self.db
            .with(move |client| async move {
                let row = client
                    .query_opt(&prepared(&client, query).await?, &[&key])
                    .await
                    .map_err(failed("reading a view"))?;
                Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
            })
            .map_err(view_error)
    }

    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ViewError> {
        if keys
            .iter()
            .any(|k| crate::postings::is_index_key(k) || view_rows::is_entry_key(k))
        {
            return keys.iter().map(|k| self.get(k)).collect();
        }
        let wanted = keys.to_vec();
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = self
            .db
            .with(move |client| async move {
                let rows = client
                    .query(&prepared(&client, queries::SELECT_VIEWS).await?, &[&wanted])
                    .await
                    .map_err(failed("reading views"))?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .map_err(view_error)?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }
}

impl Reader for PgReader {
    fn indexed(&self, prefix: &[u8], after: u64, limit: usize) -> Result<Vec<u64>, ViewError> {
        view_rows::indexed(self, prefix, after, limit)
    }

    fn scan(&self, from: &[u8], to: &[u8], visit: &mut VisitEntry<'_>) -> Result<(), ViewError> {
        for (from, to, query) in view_rows::scan_parts(from, to) {
            if !self.scan_part(from, to, query, visit)? {
                break;
            }
        }
        Ok(())
    }

    fn records(&self) -> u64 {
        self.records.load(Ordering::SeqCst)
    }

    fn record(&self, index: u64) -> Result<Vec<u8>, StorageError> {
        let idx = i64::try_from(index).map_err(StorageError::new)?;
        self.db.with(move |client| async move {
            client
                .query_opt(&prepared(&client, queries::SELECT_RECORD).await?, &[&idx])
                .await
                .map_err(failed("reading a record"))?
                .map(|r| r.get::<_, Vec<u8>>(0))
                .ok_or_else(|| StorageError(format!("record {index} is not in the log")))
        })
    }

    fn records_at(&self, indexes: &[u64]) -> Result<Vec<Vec<u8>>, StorageError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = indexes
            .iter()
            .map(|i| i64::try_from(*i).map_err(StorageError::new))
            .collect::<Result<Vec<i64>, _>>()?;
        let found: std::collections::HashMap<i64, Vec<u8>> =
            self.db.with(move |client| async move {
                let rows = client
                    .query(
                        &prepared(&client, queries::SELECT_RECORDS_AT).await?,
                        &[&wanted],
                    )
                    .await
                    .map_err(failed("reading records"))?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
        indexes
            .iter()
            .map(|i| {
                found
                    .get(&(*i as i64))
                    .cloned()
                    .ok_or_else(|| StorageError(format!("record {i} is not in the log")))
            })
            .collect()
    }

    fn for_each_record(&self, from: u64, visit: &mut VisitRecord<'_>) -> Result<(), StorageError> {
        let last = self.records() as i64;
        let mut next = i64::try_from(from.max(1)).map_err(StorageError::new)?;
        while next <= last {
            let rows: Vec<(i64, Vec<u8>)> = self.db.with(move |client| async move {
                let rows = client
                    .query(
                        &prepared(&client, queries::SELECT_RECORDS_FROM).await?,
                        &[&next, &last, &PAGE],
                    )
                    .await
                    .map_err(failed("reading records"))?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            for (idx, raw) in &rows {
                if *idx != next {
                    return Err(StorageError(format!("record {next} is not in the log")));
                }
                visit(*idx as u64, raw)?;
                next += 1;
            }
            if rows.is_empty() {
                return Err(StorageError(format!("record {next} is not in the log")));
            }
        }
        Ok(())
    }

    fn body(&self, kind: MessageKind, id: &RequestId) -> Result<Option<BodyEntry>, StorageError> {
        body_rows::open(self, body_rows::record_of(self, kind, id)?, kind, id)
    }

    fn body_in(
        &self,
        kind: MessageKind,
        id: &RequestId,
        meta: &crate::views::RequestMeta,
    ) -> Result<Option<BodyEntry>, StorageError> {
        body_rows::open(self, body_rows::record_in(meta, kind)?, kind, id)
    }

    fn body_stored(&self, kind: MessageKind, id: &RequestId) -> Result<bool, StorageError> {
        let record = body_rows::record_of(self, kind, id)?;
        Ok(body_rows::stored(self, record, kind, id)?.is_some())
    }

    fn bodies_stored(
        &self,
        wanted: &[(MessageKind, RequestId)],
    ) -> Result<Vec<bool>, StorageError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        body_rows::stored_many(self, wanted)
    }

    fn checkpoint(&self) -> Option<String> {
        self.checkpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl PgReader {
    /// Visits `[from, to)` with `query` (see `view_rows::scan_parts`), a page at a time;
    /// whether the visitor wants more.
    fn scan_part(
        &self,
        mut start: Vec<u8>,
        end: Vec<u8>,
        query: &'static str,
        visit: &mut VisitEntry<'_>,
    ) -> Result<bool, ViewError> {
        while start < end {
            let (from, to) = (start.clone(), end.clone());
            let rows: Vec<(Vec<u8>, Vec<u8>)> = self
                .db
                .with(move |client| async move {
                    let rows = client
                        .query(&prepared(&client, query).await?, &[&from, &to, &PAGE])
                        .await
                        .map_err(failed("scanning views"))?;
                    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
                })
                .map_err(view_error)?;
            let full = rows.len() as i64 == PAGE;
            for (k, v) in &rows {
                if !visit(k, v)? {
                    return Ok(false);
                }
            }
            match rows.into_iter().next_back() {
                // The first key after the last one seen.
                Some((mut last, _)) if full => {
                    last.push(0);
                    start = last;
                }
                _ => break,
            }
        }
        Ok(true)
    }

    /// What the reader shows of the log: `size` records, signed by `note`.
    fn set_head(&self, size: i64, note: Option<String>) {
        self.records.store(size as u64, Ordering::SeqCst);
        *self.checkpoint.write().unwrap_or_else(|e| e.into_inner()) = note;
    }
}
