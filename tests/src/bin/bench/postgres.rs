//! The benchmark on the PostgreSQL engine (`INFOSHARE_BENCH_BACKEND=postgres`): a throwaway
//! cluster, the ledger alone on it, and its baseline, PostgreSQL's own insert-and-commit rate
//! at the ledger's batch size, measured in the same run on the same cluster.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use infoshare_server::store::ledger::{Ledger, LedgerOptions};
use infoshare_server::store::postgres::PgSettings;
use infoshare_tests::pg_cluster::PgCluster;

/// A cluster for the run; the benchmark cannot run on PostgreSQL without one.
pub(crate) fn cluster() -> PgCluster {
    PgCluster::start().expect(
        "INFOSHARE_BENCH_BACKEND=postgres needs PostgreSQL's server binaries (see README, Test it)",
    )
}

/// The `[storage]` section of a broker on `settings`.
pub(crate) fn storage_toml(settings: &PgSettings) -> String {
    format!(
        "[storage]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
        settings.url,
        settings
            .password_file
            .as_ref()
            .expect("the cluster's password file")
            .display()
    )
}

/// 64 concurrent submitters of requests with bodies straight to a ledger on `settings` for
/// `duration`; returns (records/s, records per batch), and prints the p50 and p99 of audit
/// queries over what they made.
pub(crate) async fn ledger_under_load(
    settings: &PgSettings,
    keys: &std::path::Path,
    duration: Duration,
) -> (f64, f64) {
    let (settings, keys) = (settings.clone(), keys.to_path_buf());
    let ledger = tokio::task::spawn_blocking(move || {
        Ledger::open_postgres(&settings, &keys, &LedgerOptions::new("bench.invalid/log"))
            .unwrap()
            .0
    })
    .await
    .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let before = ledger.batches_committed();
    let t = Instant::now();
    let records =
        super::scale::append_requests(&ledger, &counter, u64::MAX, Some(t + duration), false).await;
    let secs = t.elapsed().as_secs_f64();
    let batches = (ledger.batches_committed() - before).max(1);
    let mut queries = tokio::task::spawn_blocking(move || {
        let size = ledger.head().checkpoint.size;
        super::scale::audit_queries(&ledger, size, 200).whole
    })
    .await
    .unwrap();
    println!(
        "audit query on PostgreSQL (50 records, by subject or agency)   p50 {:.2} ms   p99 {:.2} ms   (n=200)",
        queries.pct(0.5),
        queries.pct(0.99)
    );
    (records as f64 / secs, records as f64 / batches as f64)
}

/// PostgreSQL's own rate of rows inserted and committed, `batch` rows of `record_len` bytes a
/// transaction (one multi-row INSERT and a COMMIT, as the engine's batch is), for 2 s.
pub(crate) async fn insert_commit_rate(
    settings: &PgSettings,
    batch: usize,
    record_len: usize,
) -> f64 {
    let config = settings.connection().unwrap();
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (idx bigint PRIMARY KEY, bytes bytea NOT NULL)",
        )
        .await
        .unwrap();
    client
        .batch_execute("TRUNCATE bench_baseline")
        .await
        .unwrap();
    let row = vec![0x5a_u8; record_len];
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut next, t) = (1i64, Instant::now());
    while Instant::now() < deadline {
        let indexes: Vec<i64> = (next..next + batch as i64).collect();
        let rows = vec![row.clone(); batch];
        let tx = client.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO bench_baseline (idx, bytes) SELECT * FROM unnest($1::bigint[], $2::bytea[])",
            &[&indexes, &rows],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        next += batch as i64;
    }
    (next - 1) as f64 / t.elapsed().as_secs_f64()
}

/// The ledger phase alone on a fresh cluster, with its baseline: the loop to profile the engine.
pub(crate) async fn ledger_only(duration: Duration) {
    let cluster = cluster();
    let (ledger_db, baseline_db) = (cluster.database().await, cluster.database().await);
    let keys = tempfile::tempdir().unwrap();
    let (rate, batch) = ledger_under_load(&ledger_db, keys.path(), duration).await;
    if std::env::var_os("INFOSHARE_BENCH_PG_STATS").is_some() {
        print_table_stats(&ledger_db).await;
    }
    let record_len = super::bench_record().len();
    let baseline =
        insert_commit_rate(&baseline_db, batch.round().max(1.0) as usize, record_len).await;
    println!(
        "ledger alone {rate:.0} records/s ({batch:.1} per batch) / insert+commit {baseline:.0} = {:.2}",
        rate / baseline
    );
    let (same, per_record) = same_rows_rate(&ledger_db, batch.round().max(1.0) as usize).await;
    println!(
        "ledger alone / its own rows ({per_record:.1} per record) written directly {same:.0} = {:.2}",
        rate / same
    );
}

/// Rows written per table (TOAST included), from PostgreSQL's own statistics.
async fn print_table_stats(settings: &PgSettings) {
    let config = settings.connection().unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let rows = client
        .query(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_all_tables \
             WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let (name, ins, upd, hot, del): (String, i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        println!("  {name:<28} inserted {ins:>9} updated {upd:>8} (hot {hot:>8}) deleted {del:>8}");
    }
    let prefixes = client
        .query(
            "SELECT CASE WHEN get_byte(key, 0) = 120 THEN substr(key, 1, 2) ELSE substr(key, 1, 1) END AS p, \
             count(*) FROM views GROUP BY p ORDER BY count(*) DESC",
            &[],
        )
        .await
        .unwrap();
    let shown: Vec<String> = prefixes
        .iter()
        .map(|r| {
            let (p, n): (Vec<u8>, i64) = (r.get(0), r.get(1));
            format!("{} {n}", String::from_utf8_lossy(&p))
        })
        .collect();
    println!("  view rows by key prefix: {}", shown.join(", "));
    let wal = client
        .query_one(
            "SELECT wal_records, wal_fpi, wal_bytes::bigint FROM pg_stat_wal",
            &[],
        )
        .await
        .unwrap();
    let (records, fpi, bytes): (i64, i64, i64) = (wal.get(0), wal.get(1), wal.get(2));
    println!(
        "  WAL: {records} records, {fpi} full-page images, {} MiB",
        bytes >> 20
    );
}

/// PostgreSQL's rate of writing the very rows the ledger wrote on `settings` (records, bodies,
/// views), `batch` records a transaction, a statement a table between `BEGIN` and `COMMIT` (the
/// engine writes a batch as one statement, so it can beat this), into copies of its tables.
/// Returns (records/s, rows per record).
pub(crate) async fn same_rows_rate(settings: &PgSettings, batch: usize) -> (f64, f64) {
    let config = settings.connection().unwrap();
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE copy_records (LIKE log_records INCLUDING ALL);
             CREATE TABLE copy_bodies (LIKE bodies INCLUDING ALL);
             CREATE TABLE copy_views (LIKE views INCLUDING ALL);",
        )
        .await
        .unwrap();
    // In the order they were written (the heap's, as nothing was updated or deleted).
    let all = |sql: &'static str| {
        let client = &client;
        async move { client.query(sql, &[]).await.unwrap() }
    };
    let records = all("SELECT idx, bytes, body FROM log_records ORDER BY idx").await;
    let bodies = all("SELECT kind, request_id, sealed FROM bodies ORDER BY ctid").await;
    let views = all("SELECT key, value, work, expiry FROM views ORDER BY ctid").await;
    let n = records.len().max(1);
    let (views_per, bodies_per) = (views.len() / n, bodies.len() / n);
    let t = Instant::now();
    for (i, chunk) in records.chunks(batch).enumerate() {
        let at = i * batch;
        let b = &bodies[(at * bodies_per).min(bodies.len())
            ..((at + chunk.len()) * bodies_per).min(bodies.len())];
        let v = &views
            [(at * views_per).min(views.len())..((at + chunk.len()) * views_per).min(views.len())];
        let column = |rows: &[tokio_postgres::Row], c: usize| -> Vec<Vec<u8>> {
            rows.iter().map(|r| r.get(c)).collect()
        };
        let nullable = |rows: &[tokio_postgres::Row], c: usize| -> Vec<Option<Vec<u8>>> {
            rows.iter().map(|r| r.get(c)).collect()
        };
        let idx: Vec<i64> = chunk.iter().map(|r| r.get(0)).collect();
        let kinds: Vec<i16> = b.iter().map(|r| r.get(0)).collect();
        let tx = client.transaction().await.unwrap();
        let in_rows: Vec<Option<Vec<u8>>> = chunk.iter().map(|r| r.get(2)).collect();
        tx.execute(
            "INSERT INTO copy_records (idx, bytes, body) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
            &[&idx, &column(chunk, 1), &in_rows],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO copy_bodies (kind, request_id, sealed) \
             SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
             ON CONFLICT (kind, request_id) DO UPDATE SET sealed = EXCLUDED.sealed",
            &[&kinds, &column(b, 1), &column(b, 2)],
        )
        .await
        .unwrap();
        tx.execute(
            // A plain insert, as the engine writes the keys a batch creates (each row here is
            // the last value of its key, so none exists yet).
            "INSERT INTO copy_views (key, value, work, expiry) \
             SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[])",
            &[
                &column(v, 0),
                &column(v, 1),
                &nullable(v, 2),
                &nullable(v, 3),
            ],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let rows = records.len() + bodies.len() + views.len();
    (
        records.len() as f64 / t.elapsed().as_secs_f64(),
        rows as f64 / n as f64,
    )
}
