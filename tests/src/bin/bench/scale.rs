//! The scale run of the benchmark: a ledger filled through the ledger itself, reopened in a
//! fresh process; and the timed verification of a log written straight to its segments.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Samples, bench_record};

/// Subjects the scale run's records are spread over.
const SCALE_SUBJECTS: u64 = 10_000;

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn scale_subject(i: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i % SCALE_SUBJECTS).to_be_bytes());
    s
}

/// 64 writers open exchanges through `ledger` (numbered from `counter`) until the counter
/// reaches `stop_at` or `deadline` passes; returns how many were appended. With `spread`, each
/// record is about one of [`SCALE_SUBJECTS`] subjects; without, all keep the template's two.
pub(crate) async fn append_requests(
    ledger: &infoshare_server::store::ledger::Ledger,
    counter: &Arc<AtomicU64>,
    stop_at: u64,
    deadline: Option<Instant>,
    spread: bool,
) -> u64 {
    use infoshare_server::domain::MessageKind;
    use infoshare_server::records::{Event, Record, RequestId};
    use infoshare_server::store::bodies::BodyEntry;
    let template = Record::decode(&bench_record()).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (ledger, template, counter) = (ledger.clone(), template.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= stop_at {
                    break;
                }
                let id = RequestId(u128::from(i).to_be_bytes());
                let mut record = template.clone();
                if let Event::RequestSubmitted(r) = &mut record.event {
                    r.request_id = id;
                    r.idempotency[..8].copy_from_slice(&i.to_be_bytes());
                    if spread {
                        r.subjects = vec![scale_subject(i)];
                    }
                }
                let body = BodyEntry {
                    kind: MessageKind::Request,
                    request_id: id,
                    salt: [9; 32],
                    body: vec![0x42; 400],
                };
                ledger.open_exchange(record, body).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total
}

/// The scale run's ledger options: the defaults, with the view store's cache from
/// `INFOSHARE_BENCH_VIEW_CACHE_MIB` if set (the server's `view_cache_mib`).
fn scale_options() -> infoshare_server::store::ledger::LedgerOptions {
    let mut options = infoshare_server::store::ledger::LedgerOptions::new("bench.invalid/log");
    if let Some(mib) = std::env::var("INFOSHARE_BENCH_VIEW_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        options.view_cache_bytes = mib << 20;
    }
    options
}

/// Fills a ledger in `dir` with `n` records and measures what a log of that size costs: the
/// append rate then against an empty log's, and, in a fresh process (as a restarted server
/// would be), the time to open it again, the memory it holds, audit-shaped queries (50 records
/// by subject, or by agency from a point) over it, and the check of the whole log after start.
pub(crate) async fn scale(dir: &std::path::Path, n: u64) -> String {
    use infoshare_server::store::ledger::Ledger;
    let options = scale_options();
    std::fs::create_dir_all(dir).unwrap();
    let (ledger, _) = Ledger::open(dir, &options).unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    // Long enough that the views' bounded lag behind the log (at most 200,000 writes, a second
    // or so) does not flatter the rate.
    let window = Duration::from_secs(10);
    let t = Instant::now();
    let empty = append_requests(&ledger, &counter, u64::MAX, Some(t + window), true).await as f64
        / t.elapsed().as_secs_f64();
    // Back to the exact count so the log holds n records after the measured window.
    let made = counter.load(Ordering::Relaxed);
    counter.store(made.min(n), Ordering::Relaxed);
    let t = Instant::now();
    append_requests(&ledger, &counter, n, None, true).await;
    let fill_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let full = append_requests(&ledger, &counter, u64::MAX, Some(t + window), true).await as f64
        / t.elapsed().as_secs_f64();
    let records = ledger.head().checkpoint.size;
    drop(ledger);
    // The writer stops once the last handle is gone (the views' follower folding in what is
    // queued, the view store's last durable commit): timed apart, by waiting for the lock.
    let t = Instant::now();
    stopped(dir).await;
    let stop_secs = t.elapsed().as_secs_f64();
    // The empty log's rate again, just after the full one's, on a fresh ledger: this machine's
    // speed drifts over the minutes of the fill, and the baseline is both windows' mean.
    let again = dir.with_file_name(format!(
        "{}-empty-again",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let empty_after = {
        std::fs::create_dir_all(&again).unwrap();
        let (fresh, _) = Ledger::open(&again, &options).unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let rate = append_requests(&fresh, &counter, u64::MAX, Some(t + window), true).await as f64
            / t.elapsed().as_secs_f64();
        drop(fresh);
        stopped(&again).await;
        let _ = std::fs::remove_dir_all(&again);
        rate
    };
    let empty_mean = (empty + empty_after) / 2.0;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("INFOSHARE_BENCH_REOPEN", dir)
        .env("INFOSHARE_BENCH_REOPEN_RECORDS", records.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reopened = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> String {
        reopened
            .split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or("?")
            .to_string()
    };
    let disk = |sub: &str| dir_bytes(&dir.join(sub)) as f64 / f64::from(1 << 20);
    format!(
        "scale {n} records: open {} s, rss {} MiB, append {:.2} of empty, query p99 {} ms   (append {full:.0}/s vs {empty:.0}/s empty before the fill and {empty_after:.0}/s on a fresh log after it; {records} records made through the ledger in {fill_secs:.0} s; a fresh process opened them in {} s (the engine {} s), held {} MiB after the queries, {} MiB once the log check ({}) had rehashed every record in {} s and {} MiB two seconds later (freed memory goes back to the system a second or so after it is freed); the queries' p99 was {} ms reading the index and {} ms reading the records; the writer took {stop_secs:.2} s to stop; on disk: log {:.0} MiB, bodies {:.0} MiB, views {:.0} MiB, tiles {:.0} MiB)",
        field("open"),
        field("rss"),
        full / empty_mean,
        field("query_p99"),
        field("open"),
        field("engine"),
        field("rss"),
        field("rss_after"),
        field("check"),
        field("check_secs"),
        field("rss_settled"),
        field("index_p99"),
        field("records_p99"),
        disk("log"),
        disk("bodies"),
        disk("views"),
        disk("tile"),
    )
}

/// Returns once the ledger in `dir` has stopped (its lock is free).
async fn stopped(dir: &std::path::Path) {
    loop {
        let lock = std::fs::File::open(dir.join("LOCK")).unwrap();
        if lock.try_lock().is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// `count` audit-shaped queries of 50 records over a ledger of `records`: by subject, and by
/// agency from a point of the log, in turn; each read as the broker's audit query reads them
/// (the index, then the page's records at once). Their times, in microseconds: whole, and of
/// each of the two parts.
pub(crate) fn audit_queries(
    ledger: &infoshare_server::store::ledger::Ledger,
    records: u64,
    count: u64,
) -> QueryTimes {
    use infoshare_server::views::audit_index;
    let mut times = QueryTimes::default();
    for q in 0..count {
        let t = Instant::now();
        let (prefix, after) = if q % 2 == 0 {
            (audit_index::subject(&scale_subject(q * 7919)), 0)
        } else {
            (
                audit_index::agency("police"),
                (q * 104_729) % records.max(1),
            )
        };
        let found = ledger.views().indexed(&prefix, after, 50).unwrap();
        let indexed = t.elapsed();
        ledger.decoded_many(&found).unwrap();
        let whole = t.elapsed();
        times.whole.0.push(whole.as_micros() as u64);
        times.index.0.push(indexed.as_micros() as u64);
        times.records.0.push((whole - indexed).as_micros() as u64);
    }
    times
}

/// What [`audit_queries`] measured.
#[derive(Default)]
pub(crate) struct QueryTimes {
    /// Each query, whole.
    pub whole: Samples,
    /// Its read of the index (the views' posting list).
    pub index: Samples,
    /// Its read of the records the index named.
    pub records: Samples,
}

/// The scale run's second half, in a process of its own: opens the ledger in `dir` as a
/// restarted server would, and prints what it took (`open`, `engine`, `rss`, `query_p99`,
/// `check`, `check_secs`, `rss_after`, as `name value` pairs).
pub(crate) async fn reopen(dir: &std::path::Path, records: u64) {
    use infoshare_server::store::ledger::Ledger;
    let options = scale_options();
    let t = Instant::now();
    let (engine, _) = infoshare_server::store::embedded::EmbeddedEngine::open(dir).unwrap();
    let engine_secs = t.elapsed().as_secs_f64();
    drop(engine);
    let t = Instant::now();
    let reopened = loop {
        match Ledger::open(dir, &options) {
            Ok((l, _)) => break l,
            Err(infoshare_server::store::ledger::OpenError::Locked(_)) => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let open_secs = t.elapsed().as_secs_f64();
    // The whole log is rehashed after start-up; the queries run while it does.
    let mut check = reopened.log_check();
    let t = Instant::now();
    let mut queries = audit_queries(&reopened, records, 2000);
    let rss = rss_mib();
    let checked = check
        .wait_for(|c| *c != infoshare_server::store::log_check::LogCheck::Running)
        .await
        .map(|c| c.clone())
        .unwrap();
    let check_secs = t.elapsed().as_secs_f64();
    let outcome = match checked {
        infoshare_server::store::log_check::LogCheck::Passed { .. } => "passed".to_string(),
        other => format!("{other:?}").replace(' ', "_"),
    };
    let rss_after = rss_mib();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "open {open_secs:.2} engine {engine_secs:.2} rss {rss:.0} query_p99 {:.2} index_p99 {:.2} records_p99 {:.2} check {outcome} check_secs {check_secs:.1} rss_after {rss_after:.0} rss_settled {:.0}",
        queries.whole.pct(0.99),
        queries.index.pct(0.99),
        queries.records.pct(0.99),
        rss_mib()
    );
}

/// Writes a log of `n` realistic records straight to the segments (what is timed is the
/// verification, not the writing), then times `--verify-log`'s verification of it.
pub(crate) fn verify_run(dir: &std::path::Path, n: u64) -> f64 {
    let (mut log, _) = infoshare_server::store::embedded::segment::SegmentLog::open(
        &dir.join("log"),
        infoshare_server::store::ledger::LOG_MAGIC,
    )
    .unwrap();
    let template = infoshare_server::records::Record::decode(&bench_record()).unwrap();
    // Each record with a body beside it, as the ledger writes them (a sealed 400-byte body is
    // about 470 bytes): the check reads past them.
    let body = vec![0x42u8; 470];
    let mut written = 0u64;
    while written < n {
        let chunk: Vec<Vec<u8>> = (0..1000.min(n - written))
            .map(|i| {
                let mut r = template.clone();
                r.time_ms += written + i;
                r.encode()
            })
            .collect();
        written += chunk.len() as u64;
        let bodies = vec![body.as_slice(); chunk.len()];
        log.append_batch(&bodies, &chunk, None).unwrap();
    }
    drop(log);
    let t = Instant::now();
    let v = infoshare_server::store::verify::verify_data_dir(dir).unwrap();
    assert_eq!(v.records, n);
    t.elapsed().as_secs_f64()
}
