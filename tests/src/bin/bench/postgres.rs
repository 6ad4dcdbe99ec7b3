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
/// `duration`; returns (records/s, records per batch).
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
