//! `infoshare-bench`: load benchmark of the broker over real mutual TLS, reported as ratios
//! against baselines measured in the same run on the same machine:
//!
//! - raw transport: a minimal tonic unary echo over the same TLS 1.3 mTLS setup;
//! - broker: full lawful cycles (request → delivery → response → delivery) plus 10% denied
//!   requests, closed loop, then open loop at a fixed offered rate (latency from the scheduled
//!   time, so stalls are not hidden by coordinated omission), each open loop after the echo's
//!   at the same offered rate;
//! - disk: a bare batched `fdatasync` loop at the batch size the broker's group commit reached;
//! - verification: the time to verify a log of N records from scratch (checksums, decoding,
//!   Merkle tree).
//!
//! - scale: a ledger filled with N records (made through the ledger, each about one of 10,000
//!   subjects), then its append rate against the empty ledger's, the time to open it again, the
//!   memory opening it takes, and audit-shaped queries (by subject, by agency) over it.
//!
//! Run: `cargo run --release -p infoshare-tests --bin infoshare-bench` (INFOSHARE_BENCH_SECS,
//! INFOSHARE_BENCH_RATE, INFOSHARE_BENCH_INFLIGHT (broker cycles in flight, default 64),
//! INFOSHARE_BENCH_VERIFY_RECORDS and INFOSHARE_BENCH_SCALE (N, default 1,000,000) adjust it,
//! INFOSHARE_BENCH_VIEW_CACHE_MIB the scale run's view cache (default the server's, 256);
//! INFOSHARE_BENCH_SCALE_KEEP keeps the scale run's filled ledger and prints its path, and
//! INFOSHARE_BENCH_REOPEN=<path> with INFOSHARE_BENCH_REOPEN_RECORDS=<n> reruns only the
//! fresh process's half on it (open, memory, queries, log check), e.g. after dropping the
//! page cache;
//! INFOSHARE_BENCH_IDLE_STREAMS=<n> opens n more inbox streams, of agencies nothing is sent to;
//! INFOSHARE_BENCH_TRIPS=<file> appends every open-loop trip's schedule and latencies to it;
//! INFOSHARE_BENCH_LEDGER_ONLY runs only the embedded ledger phase and its two disk baselines;
//! INFOSHARE_BENCH_PG_LEDGER_ONLY runs only the PostgreSQL ledger phase and its baselines, with
//! INFOSHARE_BENCH_PG_STATS the rows it wrote per table and by view key prefix, and the WAL).
//!
//! `INFOSHARE_BENCH_BACKEND=postgres`: the broker and the ledger on a throwaway PostgreSQL
//! cluster instead; the disk baseline is PostgreSQL's own insert-and-commit rate at the same
//! batch size, and a last phase runs two brokers on the one log (verification and scale are
//! the embedded engine's and are left out).

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// The broker's allocator, as its binary has it.
#[global_allocator]
static ALLOCATOR: infoshare_server::process::Allocator = infoshare_server::process::Allocator;

use infoshare_certs_dev::{Principal, Role};
use infoshare_client::api;
use infoshare_client::{Client, Identity};
use infoshare_proto::bench::v1 as echo;
use infoshare_tests::{categories_of, sample_request};

#[path = "bench/open_loop.rs"]
mod open_loop;
#[path = "bench/postgres.rs"]
mod postgres;
#[path = "bench/scale.rs"]
mod scale;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time this process has used (user + system, all threads), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Clock ticks are 100 per second on Linux.
    f.iter().sum::<u64>() as f64 / 100.0
}

/// Latencies in microseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i] as f64 / 1000.0
    }
    fn line(&mut self, name: &str, secs: f64) -> String {
        let n = self.0.len();
        format!(
            "{name:<22} {:>9.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   p99.9 {:>7.2} ms   (n={n})",
            n as f64 / secs,
            self.pct(0.50),
            self.pct(0.99),
            self.pct(0.999)
        )
    }
}

struct Echo;

#[tonic::async_trait]
impl echo::echo_service_server::EchoService for Echo {
    async fn echo(
        &self,
        request: tonic::Request<echo::EchoRequest>,
    ) -> Result<tonic::Response<echo::EchoResponse>, tonic::Status> {
        Ok(tonic::Response::new(echo::EchoResponse {
            payload: request.into_inner().payload,
        }))
    }
}

/// (requester, recipient) pairs that are lawful under the youth re-engagement protocol.
const PAIRS: [(&str, &str); 4] = [
    ("police", "rangitoto-school-board"),
    ("msd", "oranga-tamariki"),
    ("education", "police"),
    ("oranga-tamariki", "education"),
];

/// A full disclosure of everything `recipient` was asked for, at the protocol's classification.
fn answer(recipient: &str) -> api::InformationResponse {
    let classification = infoshare_tests::classification_of(recipient);
    api::InformationResponse {
        decision: api::Decision::Disclose as i32,
        items: categories_of(recipient)
            .into_iter()
            .map(|category| api::DisclosedItem {
                category,
                classification: classification as i32,
                content: "Benchmark disclosure content of a realistic length for one category."
                    .into(),
            })
            .collect(),
        staff_id: "bench-responder".into(),
        consultation: Some(api::ConsultationRecord {
            status: 1,
            reason_not_consulted: String::new(),
        }),
        ..Default::default()
    }
}

/// The agencies the benchmark's clients act for.
const AGENCIES: [&str; 5] = [
    "police",
    "msd",
    "education",
    "oranga-tamariki",
    "rangitoto-school-board",
];

/// Opens `client`'s inbox stream and counts what it delivers into `delivered`, in a task that
/// keeps the client, and so its connection, for the rest of the run.
async fn follow_inbox(client: Client, delivered: &Arc<AtomicU64>) {
    let mut stream = client.subscribe_inbox(0).await.unwrap();
    let delivered = delivered.clone();
    tokio::spawn(async move {
        let _client = client;
        while let Ok(Some(_)) = stream.next().await {
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Agencies of the sample register the load never sends to (`INFOSHARE_BENCH_IDLE_STREAMS`).
const IDLE_AGENCIES: [&str; 7] = [
    "health-nz",
    "kainga-ora",
    "corrections",
    "justice",
    "te-whare-awhina",
    "safe-homes-trust",
    "dr-aroha-ngata",
];

struct Clients {
    by_agency: std::collections::HashMap<&'static str, Client>,
}

/// One full cycle (submit, respond), or a denied submit every tenth time. Returns
/// (submit µs, respond µs or None if denied).
async fn cycle(clients: &Clients, pair: usize, n: u64) -> (u64, Option<u64>) {
    let (from, to) = PAIRS[pair % PAIRS.len()];
    let mut request = sample_request(to);
    let deny = n % 10 == 9;
    if deny {
        request.subject.as_mut().unwrap().date_of_birth = "1970-01-01".into();
    }
    let key = format!("bench-{pair}-{n}");
    let t = Instant::now();
    let sent = clients.by_agency[from].submit_request(request, &key).await;
    let submit = t.elapsed().as_micros() as u64;
    match (deny, sent) {
        (true, Err(_)) => (submit, None),
        (false, Ok(sent)) => {
            let t = Instant::now();
            clients.by_agency[to]
                .respond(&sent.request_id, answer(to))
                .await
                .expect("respond");
            (submit, Some(t.elapsed().as_micros() as u64))
        }
        (deny, other) => panic!("unexpected outcome (deny={deny}): {other:?}"),
    }
}

fn main() {
    infoshare_server::process::return_freed_memory();
    let secs: u64 = env_or("INFOSHARE_BENCH_SECS", 5);
    let rate: u64 = env_or("INFOSHARE_BENCH_RATE", 1000);
    let inflight: usize = env_or("INFOSHARE_BENCH_INFLIGHT", 64);
    let verify_n: u64 = env_or("INFOSHARE_BENCH_VERIFY_RECORDS", 1_000_000);
    if let Some(dir) = std::env::var_os("INFOSHARE_BENCH_REOPEN") {
        let records: u64 = env_or("INFOSHARE_BENCH_REOPEN_RECORDS", 0);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(scale::reopen(std::path::Path::new(&dir), records));
        return;
    }
    if std::env::var_os("INFOSHARE_BENCH_VERIFY_ONLY").is_some() {
        let root = tempfile::tempdir().unwrap();
        let secs = scale::verify_run(&root.path().join("verify-data"), verify_n);
        println!("verify {verify_n} records from scratch: {secs:.2} s");
        return;
    }
    if std::env::var_os("INFOSHARE_BENCH_SCALE_ONLY").is_some() {
        let n: u64 = env_or("INFOSHARE_BENCH_SCALE", 1_000_000);
        let root = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = root.path().join("scale-data");
        println!("{}", rt.block_on(scale::scale(&dir, n)));
        if std::env::var_os("INFOSHARE_BENCH_SCALE_KEEP").is_some() {
            let kept = root.keep();
            println!("kept {}", kept.join("scale-data").display());
        }
        return;
    }
    if std::env::var_os("INFOSHARE_BENCH_LEDGER_ONLY").is_some() {
        let root = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (rate, batch, cpu) = rt.block_on(ledger_under_load(
            &root.path().join("ledger-bench"),
            Duration::from_secs(secs),
        ));
        println!("ledger alone           {rate:>9.0} records/s   ({batch:.1} per batch)");
        println!("{cpu}");
        let batch = batch.round().max(1.0) as usize;
        let (append, ahead) = (
            bare_fdatasync(root.path(), batch, false),
            bare_fdatasync(root.path(), batch, true),
        );
        println!(
            "ledger ÷ bare fdatasync appending {:.2}, ÷ into zeros written ahead {:.2}",
            rate / append,
            rate / ahead
        );
        return;
    }
    if std::env::var_os("INFOSHARE_BENCH_PG_LEDGER_ONLY").is_some() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(postgres::ledger_only(Duration::from_secs(secs)));
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    // On PostgreSQL: a cluster, with a database for the brokers, one for the ledger alone and
    // one for the baseline.
    let pg = (std::env::var("INFOSHARE_BENCH_BACKEND").as_deref() == Ok("postgres")).then(|| {
        let cluster = postgres::cluster();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dbs = rt.block_on(async {
            [
                cluster.database().await,
                cluster.database().await,
                cluster.database().await,
            ]
        });
        (cluster, dbs)
    });
    let storage = pg
        .as_ref()
        .map_or(String::new(), |(_, dbs)| postgres::storage_toml(&dbs[0]));

    // PKI, registry and configuration, as the end-to-end tests make them.
    std::fs::write(
        root.join("registry.toml"),
        infoshare_server::registry::SAMPLE_REGISTRY,
    )
    .unwrap();
    let principals =
        infoshare_certs_dev::principals_from_registry(&root.join("registry.toml")).unwrap();
    infoshare_certs_dev::ensure(&root.join("pki"), &principals, false).unwrap();
    std::fs::write(
        root.join("server.toml"),
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nkeys_dir = \"data/keys\"\n[tls]\nca = \"pki/ca/ca.pem\"\ncert = \"pki/server/cert.pem\"\nkey = \"pki/server/key.pem\"\n[registry]\nagencies = \"registry.toml\"\n[limits]\ncalls_per_second = 1e9\nburst = 1e9\n{storage}"),
    )
    .unwrap();
    let config = infoshare_server::config::Config::load(&root.join("server.toml")).unwrap();

    // The broker and the echo baseline, on their own runtime (client and server share the
    // machine's two cores, as in the baseline).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server-rt")
        .enable_all()
        .build()
        .unwrap();
    let (broker_addr, echo_addr, batches) = server_rt.block_on(async {
        let prepared =
            infoshare_server::server::prepare(&config, infoshare_server::clock::Clock::system())
                .await
                .expect("prepare");
        infoshare_server::dev::bootstrap_dev_protocols(&prepared, &root.join("pki"))
            .await
            .expect("protocols");
        let ledger = prepared.broker().ledger().clone();
        let broker_addr = prepared.local_addr();
        let tls = prepared.tls();
        tokio::spawn(prepared.serve(std::future::pending()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = listener.local_addr().unwrap();
        // The same front door as the broker's (caps, idle clock, budget state), admitting all.
        let transport = infoshare_server::transport::TransportConfig::default();
        let front = infoshare_server::tls::Front {
            admission: std::sync::Arc::new(
                infoshare_server::transport::admission::Admission::open(
                    transport.max_connections,
                    transport.max_connections_per_identity,
                ),
            ),
            handshake_timeout: infoshare_server::tls::HANDSHAKE_TIMEOUT,
            idle_timeout: transport.idle_timeout(),
            answer_budget_bytes: transport.answer_budget_bytes,
            refusals: transport.refusal_log(),
        };
        let incoming =
            infoshare_server::tls::incoming(listener, tls, "infoshare.dev".into(), front);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(echo::echo_service_server::EchoServiceServer::new(Echo))
                .serve_with_incoming(incoming),
        );
        let batches = move || ledger.batches_committed();
        (broker_addr, echo_addr, batches)
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client-rt")
        .enable_all()
        .build()
        .unwrap();
    let identity = |role, id: &str| {
        Identity::from_dir(infoshare_certs_dev::identity_dir(
            &root.join("pki"),
            &Principal::new(role, id),
        ))
        .unwrap()
    };
    let duration = Duration::from_secs(secs);
    println!(
        "infoshare-bench: {secs} s per phase, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Raw transport: echo, closed loop, 64 in flight over 4 connections.
    let (echo_rate, echo_cpu_us, echo_channels) = client_rt.block_on(async {
        let cpu_before = cpu_secs();
        let url = format!("https://localhost:{}", echo_addr.port());
        let mut channels = Vec::new();
        for _ in 0..4 {
            channels.push(
                infoshare_client::connect_channel(&url, &identity(Role::Agency, "police"))
                    .await
                    .unwrap(),
            );
        }
        let deadline = Instant::now() + duration;
        let mut tasks = Vec::new();
        for w in 0..64 {
            let mut c = echo::echo_service_client::EchoServiceClient::new(channels[w % 4].clone());
            tasks.push(tokio::spawn(async move {
                let mut s = Samples::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    c.echo(echo::EchoRequest {
                        payload: vec![7; 512],
                    })
                    .await
                    .unwrap();
                    s.0.push(t.elapsed().as_micros() as u64);
                }
                s.0
            }));
        }
        let mut all = Samples::default();
        for t in tasks {
            all.0.extend(t.await.unwrap());
        }
        let rate = all.0.len() as f64 / secs as f64;
        let cpu = cpu_secs() - cpu_before;
        println!("{}", all.line("echo (baseline)", secs as f64));
        println!("{}", cpu_line(cpu, secs, all.0.len()));
        (rate, cpu * 1e6 / all.0.len().max(1) as f64, channels)
    });

    // 2. Broker, closed loop: `inflight` cycles at once; every agency also follows its inbox.
    let url = format!("https://localhost:{}", broker_addr.port());
    let agencies = AGENCIES;
    let delivered = Arc::new(AtomicU64::new(0));
    let clients = client_rt.block_on(async {
        let mut by_agency = std::collections::HashMap::new();
        for a in agencies {
            by_agency.insert(
                a,
                Client::connect(&url, &identity(Role::Agency, a))
                    .await
                    .unwrap(),
            );
        }
        for a in agencies {
            follow_inbox(by_agency[a].clone(), &delivered).await;
        }
        // Streams of agencies the load never sends to, as a broker serving every agency of the
        // register has open: what an open stream costs while nothing is delivered to it.
        let idle: usize = std::env::var("INFOSHARE_BENCH_IDLE_STREAMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut idle_clients: std::collections::HashMap<&str, Client> =
            std::collections::HashMap::new();
        for a in IDLE_AGENCIES.iter().cycle().take(idle) {
            if !idle_clients.contains_key(a) {
                let client = Client::connect(&url, &identity(Role::Agency, a))
                    .await
                    .unwrap();
                idle_clients.insert(*a, client);
            }
            follow_inbox(idle_clients[a].clone(), &delivered).await;
        }
        if idle > 0 {
            println!(
                "idle inbox streams     {idle:>9} (of {} agencies the load does not send to)",
                idle_clients.len()
            );
        }
        Arc::new(Clients { by_agency })
    });
    let (broker_calls, records_per_batch, append_rate, broker_cpu_us) =
        client_rt.block_on(closed_loop(&clients, inflight, secs, 0, &batches));
    let cpu_ratio = cpu_per_call_ratio(broker_cpu_us, echo_cpu_us);
    std::thread::sleep(Duration::from_millis(500));

    // 3. Open loop at a fixed offered rate of round trips: the configured rate, then 3,000/s;
    // at each, the echo offered the same load first.
    for offered in [rate, 3000] {
        client_rt.block_on(open_loop::echo_baseline(&echo_channels, offered, secs));
        std::thread::sleep(Duration::from_millis(500));
        client_rt.block_on(open_loop::broker(&clients, offered, secs));
        std::thread::sleep(Duration::from_millis(500));
    }

    if std::env::var_os("INFOSHARE_BENCH_BROKER_ONLY").is_some() {
        println!("{}", broker_ratio(broker_calls, echo_rate));
        println!("{cpu_ratio}");
        std::mem::forget(server_rt);
        return;
    }
    if let Some((_cluster, dbs)) = &pg {
        let one = Run {
            broker_calls,
            echo_rate,
            records_per_batch,
            append_rate,
        };
        postgres_phases(
            &client_rt,
            &server_rt,
            &config,
            dbs,
            &identity,
            (&url, &batches),
            one,
            inflight,
            secs,
        );
        println!("deliveries streamed: {}", delivered.load(Ordering::Relaxed));
        drop(clients);
        std::mem::forget(server_rt);
        return;
    }

    // 4. The log alone under load (no TLS, no gRPC): 64 writers submitting requests with
    // their bodies straight to the ledger, against a bare batched fdatasync loop at the batch
    // size the ledger reached, and at the broker's.
    let (ledger_rate, ledger_batch, ledger_cpu) =
        client_rt.block_on(ledger_under_load(&root.join("ledger-bench"), duration));
    println!(
        "ledger alone           {ledger_rate:>9.0} records/s   ({ledger_batch:.1} per batch: each batch one write and one fdatasync of its bodies, records and checkpoint)"
    );
    println!("{ledger_cpu}");
    let fsync_at = |batch: usize, ahead: bool| bare_fdatasync(root, batch, ahead);
    let ledger_fsync_rate = fsync_at(ledger_batch.round().max(1.0) as usize, false);
    let ledger_ahead_rate = fsync_at(ledger_batch.round().max(1.0) as usize, true);
    let view_us = view_cost_per_key(&root.join("view-bench"));
    println!(
        "view store insert      {view_us:>9.2} µs per key (redb, 500-key transactions of view-shaped keys)"
    );
    let broker_batch = records_per_batch.round().max(1.0) as usize;
    let fsync_rate = fsync_at(broker_batch, false);
    let broker_append = append_rate;

    // 5. Verify a log of N records from scratch.
    let verify_secs = scale::verify_run(&root.join("verify-data"), verify_n);

    println!();
    println!("{}", broker_ratio(broker_calls, echo_rate));
    println!("{cpu_ratio}");
    println!(
        "log append rate (ledger alone) vs bare fdatasync at the same batch size: {:.0} / {:.0} = {:.2}",
        ledger_rate,
        ledger_fsync_rate,
        ledger_rate / ledger_fsync_rate
    );
    println!(
        "log append rate (ledger alone) vs bare fdatasync into zeros written ahead, as the ledger writes: {:.0} / {:.0} = {:.2}",
        ledger_rate,
        ledger_ahead_rate,
        ledger_rate / ledger_ahead_rate
    );
    println!(
        "durable append rate in the full broker vs bare fdatasync at its batch size: {:.0} / {:.0} = {:.2}",
        broker_append,
        fsync_rate,
        broker_append / fsync_rate
    );
    println!("verify {verify_n} records from scratch: {verify_secs:.2} s");
    let scale_n: u64 = env_or("INFOSHARE_BENCH_SCALE", 1_000_000);
    let scale_at = Instant::now();
    println!(
        "{}",
        client_rt.block_on(scale::scale(&root.join("scale-data"), scale_n))
    );
    println!(
        "(the scale run took {:.0} s)",
        scale_at.elapsed().as_secs_f64()
    );
    println!("deliveries streamed: {}", delivered.load(Ordering::Relaxed));
    drop(clients);
    // The servers run until the process exits; no graceful shutdown to wait for.
    std::mem::forget(server_rt);
}

/// What the one-broker phases measured.
struct Run {
    broker_calls: f64,
    echo_rate: f64,
    records_per_batch: f64,
    append_rate: f64,
}

/// Phases 4 and 5 on PostgreSQL: the ledger alone and the broker's append rate against
/// PostgreSQL's insert-and-commit at the same batch sizes; then two brokers on the one log,
/// against the one broker's rate measured before.
#[allow(clippy::too_many_arguments)]
fn postgres_phases(
    client_rt: &tokio::runtime::Runtime,
    server_rt: &tokio::runtime::Runtime,
    config: &infoshare_server::config::Config,
    dbs: &[infoshare_server::store::postgres::PgSettings; 3],
    identity: &dyn Fn(Role, &str) -> Identity,
    (url_a, batches_a): (&str, &dyn Fn() -> u64),
    one: Run,
    inflight: usize,
    secs: u64,
) {
    let duration = Duration::from_secs(secs);
    let keys = config.data_dir.with_file_name("ledger-keys");
    let (ledger_rate, ledger_batch) =
        client_rt.block_on(postgres::ledger_under_load(&dbs[1], &keys, duration));
    println!(
        "ledger alone           {ledger_rate:>9.0} records/s   ({ledger_batch:.1} per batch: each batch one PostgreSQL transaction)"
    );
    let record_len = bench_record().len();
    let baseline_at = |batch: f64| {
        let batch = batch.round().max(1.0) as usize;
        let rate = client_rt.block_on(postgres::insert_commit_rate(&dbs[2], batch, record_len));
        println!("PostgreSQL insert+commit {rate:>7.0} records/s at {batch} per transaction");
        rate
    };
    let ledger_baseline = baseline_at(ledger_batch);
    let broker_baseline = baseline_at(one.records_per_batch);
    let batch = ledger_batch.round().max(1.0) as usize;
    let (same_rows, rows_per_record) = client_rt.block_on(postgres::same_rows_rate(&dbs[1], batch));
    println!(
        "PostgreSQL writing the ledger's own rows {same_rows:>7.0} records/s ({rows_per_record:.1} rows a record, {batch} records per transaction)"
    );

    // 5. A second broker on the same log; the agencies' clients alternate between the two.
    let mut config_b = config.clone();
    config_b.data_dir = config.data_dir.with_file_name("data-b");
    let (url_b, batches_b) = server_rt.block_on(async {
        let prepared =
            infoshare_server::server::prepare(&config_b, infoshare_server::clock::Clock::system())
                .await
                .expect("prepare the second broker");
        let ledger = prepared.broker().ledger().clone();
        let url = format!("https://localhost:{}", prepared.local_addr().port());
        tokio::spawn(prepared.serve(std::future::pending()));
        (url, move || ledger.batches_committed())
    });
    let both = || batches_a() + batches_b();
    let two = client_rt.block_on(async {
        let mut by_agency = std::collections::HashMap::new();
        for (i, a) in AGENCIES.iter().enumerate() {
            let url = if i % 2 == 0 { url_a } else { &url_b };
            let client = Client::connect(url, &identity(Role::Agency, a))
                .await
                .unwrap();
            by_agency.insert(*a, client);
        }
        let clients = Arc::new(Clients { by_agency });
        closed_loop(&clients, inflight, secs, 1 << 40, &both)
            .await
            .0
    });

    println!();
    println!("{}", broker_ratio(one.broker_calls, one.echo_rate));
    println!(
        "log append rate (ledger alone) vs PostgreSQL insert-and-commit at the same batch size: {:.0} / {:.0} = {:.2}",
        ledger_rate,
        ledger_baseline,
        ledger_rate / ledger_baseline
    );
    println!(
        "log append rate (ledger alone) vs PostgreSQL writing the same rows itself: {:.0} / {:.0} = {:.2}",
        ledger_rate,
        same_rows,
        ledger_rate / same_rows
    );
    println!(
        "durable append rate in the full broker vs PostgreSQL insert-and-commit at its batch size: {:.0} / {:.0} = {:.2}",
        one.append_rate,
        broker_baseline,
        one.append_rate / broker_baseline
    );
    println!(
        "two brokers on one log, calls/s vs one broker: {:.0} / {:.0} = {:.2}",
        two,
        one.broker_calls,
        two / one.broker_calls
    );
}

/// `inflight` full cycles at once for `secs`, counting from `first` (idempotency keys of a run
/// differ); prints their latencies and returns (calls/s, records per batch, records/s).
async fn closed_loop(
    clients: &Arc<Clients>,
    inflight: usize,
    secs: u64,
    first: u64,
    batches: &dyn Fn() -> u64,
) -> (f64, f64, f64, f64) {
    let batches_before = batches();
    let cpu_before = cpu_secs();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let counter = Arc::new(AtomicU64::new(first));
    let mut tasks = Vec::new();
    for w in 0..inflight {
        let clients = clients.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let (mut submit, mut respond, mut denied) =
                (Samples::default(), Samples::default(), Samples::default());
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match cycle(&clients, w, n).await {
                    (s, Some(r)) => {
                        submit.0.push(s);
                        respond.0.push(r);
                    }
                    (s, None) => denied.0.push(s),
                }
            }
            (submit.0, respond.0, denied.0)
        }));
    }
    let (mut submit, mut respond, mut denied) =
        (Samples::default(), Samples::default(), Samples::default());
    for t in tasks {
        let (s, r, d) = t.await.unwrap();
        submit.0.extend(s);
        respond.0.extend(r);
        denied.0.extend(d);
    }
    let calls = (submit.0.len() + respond.0.len() + denied.0.len()) as f64 / secs as f64;
    let cycles = respond.0.len() as f64 / secs as f64;
    let records = submit.0.len() + respond.0.len() + denied.0.len();
    let b = (batches() - batches_before).max(1);
    println!("{}", submit.line("submit (lawful)", secs as f64));
    println!("{}", respond.line("respond", secs as f64));
    println!("{}", denied.line("submit (denied)", secs as f64));
    println!(
        "full round trips       {cycles:>9.0}/s   ({records} durable records in {b} batches: {:.1} per fdatasync)",
        records as f64 / b as f64
    );
    let cpu = cpu_secs() - cpu_before;
    println!("{}", cpu_line(cpu, secs, records));
    (
        calls,
        records as f64 / b as f64,
        records as f64 / secs as f64,
        cpu * 1e6 / records.max(1) as f64,
    )
}

/// How busy the cores were in a closed loop of `calls` calls, and the CPU each call cost.
fn cpu_line(cpu: f64, secs: u64, calls: usize) -> String {
    format!(
        "cpu busy               {:>9.2} of {} cores (client and server together), {:.1} µs a call",
        cpu / secs as f64,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu * 1e6 / calls.max(1) as f64
    )
}

/// Broker ÷ echo in CPU a call rather than calls a second: what the ratio would be if both
/// closed loops kept every core busy (the broker's waits for its batches' syncs leave part
/// of a core idle at the same number in flight; see the README).
fn cpu_per_call_ratio(broker_us: f64, echo_us: f64) -> String {
    format!(
        "cpu a call, echo ÷ broker (client and server together): {echo_us:.1} / {broker_us:.1} µs = {:.2}",
        echo_us / broker_us
    )
}

/// The line a script reads for broker ÷ echo.
fn broker_ratio(broker_calls: f64, echo_rate: f64) -> String {
    format!(
        "broker calls/s vs raw echo calls/s: {broker_calls:.0} / {echo_rate:.0} = {:.2}",
        broker_calls / echo_rate
    )
}

/// Drives a ledger of its own in `dir` with 64 concurrent submitters of requests with bodies
/// for `duration`; returns (records/s, records per batch).
/// A bare batched `fdatasync` loop for two seconds: records (260 bytes each) per second at
/// `batch` records per sync. `ahead`: the file written ahead with zeros as the ledger's
/// segments are (a batch that needs room writes zeros to the next 256 KiB boundary in the same
/// write), so its syncs change no metadata; without, every sync also commits the file's new
/// length.
fn bare_fdatasync(root: &std::path::Path, batch: usize, ahead: bool) -> f64 {
    let path = root.join(format!("fsync-{batch}-{ahead}.bin"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let frame = vec![0x5a_u8; 260];
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut records, mut end, mut allocated) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    while Instant::now() < deadline {
        let mut buf = Vec::with_capacity(frame.len() * batch);
        for _ in 0..batch {
            buf.extend_from_slice(&frame);
        }
        let next = end + buf.len() as u64;
        if ahead && next > allocated {
            allocated =
                next.next_multiple_of(infoshare_server::store::embedded::segment::PREALLOC_CHUNK);
            buf.resize((allocated - end) as usize, 0);
        }
        f.write_all_at(&buf, end).unwrap();
        f.sync_data().unwrap();
        end = next;
        records += batch as u64;
    }
    let rate = records as f64 / t.elapsed().as_secs_f64();
    let how = if ahead {
        "into zeros written ahead"
    } else {
        "appending"
    };
    println!("bare fdatasync loop    {rate:>9.0} records/s at {batch} per sync, {how}");
    rate
}

async fn ledger_under_load(dir: &std::path::Path, duration: Duration) -> (f64, f64, String) {
    use infoshare_server::store::ledger::{Ledger, LedgerOptions};
    std::fs::create_dir_all(dir).unwrap();
    let (ledger, _) = Ledger::open(dir, &LedgerOptions::new("bench.invalid/log")).unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let before = ledger.batches_committed();
    let threads_before = thread_times();
    let t = Instant::now();
    let records =
        scale::append_requests(&ledger, &counter, u64::MAX, Some(t + duration), false).await;
    let secs = t.elapsed().as_secs_f64();
    let threads = thread_times_since(&threads_before);
    let batches = (ledger.batches_committed() - before).max(1);
    (
        records as f64 / secs,
        records as f64 / batches as f64,
        thread_line(&threads, secs, records),
    )
}

/// Per thread name: nanoseconds run on a core, and nanoseconds runnable but waiting for one
/// (`/proc/self/task/*/schedstat`), summed over the threads of that name (a thread that has
/// exited is no longer listed, so a phase's figures leave out threads that ended within it).
fn thread_times() -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut f = stat
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        let e: &mut (u64, u64) = out.entry(comm.trim().to_string()).or_default();
        e.0 += run;
        e.1 += wait;
    }
    out
}

fn thread_times_since(
    before: &std::collections::BTreeMap<String, (u64, u64)>,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut now = thread_times();
    for (name, (run, wait)) in &mut now {
        let (r0, w0) = before.get(name).copied().unwrap_or_default();
        *run = run.saturating_sub(r0);
        *wait = wait.saturating_sub(w0);
    }
    now
}

/// Where the ledger's CPU went, per record: the log writer (the serial stage), the view
/// follower, the rest (the submitters, the threads making room and tiles); and how long the
/// writer was runnable but waiting for a core. Threads are told apart by name, so in the
/// default run the broker's own writer and follower, idle by then, are counted with these.
fn thread_line(
    threads: &std::collections::BTreeMap<String, (u64, u64)>,
    secs: f64,
    records: u64,
) -> String {
    let per = |ns: u64| ns as f64 / 1000.0 / records.max(1) as f64;
    let of = |prefix: &str| {
        threads
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .fold((0, 0), |(r, w), (_, (r1, w1))| (r + r1, w + w1))
    };
    let (writer, writer_wait) = of("infoshare-ledge");
    let (follower, _) = of("view-follower");
    let (all, _) = of("");
    format!(
        "ledger cpu             writer {:.1} µs a record ({:.2} of a core, runnable without one {:.2}), view follower {:.1} µs, the rest {:.1} µs",
        per(writer),
        writer as f64 / 1e9 / secs,
        writer_wait as f64 / 1e9 / secs,
        per(follower),
        per(all - writer - follower),
    )
}

/// The cost of writing one view key to the view store, in µs: 200,000 keys shaped like the
/// views' (a prefix, a 16-byte id, a big-endian index; small values) in transactions of 500,
/// the way the writer commits a batch.
fn view_cost_per_key(dir: &std::path::Path) -> f64 {
    use infoshare_server::store::embedded::view_store::ViewStore;
    let store = ViewStore::recreate(
        dir,
        infoshare_server::store::embedded::view_store::DEFAULT_CACHE_BYTES,
    )
    .unwrap();
    let (batches, per_batch) = (400u64, 500u64);
    let t = Instant::now();
    for b in 0..batches {
        let writes = (0..per_batch).map(|k| {
            let i = b * per_batch + k;
            let prefix: &[u8] = [b"r", b"i", b"k", b"t", b"b"][(i % 5) as usize];
            let key = [
                prefix,
                &u128::from(i * 7919).to_be_bytes(),
                &i.to_be_bytes(),
            ]
            .concat();
            (key, Some(vec![0u8; 40]))
        });
        store.apply(writes, ((b + 1) * per_batch, 0)).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e6 / (batches * per_batch) as f64
}

/// A realistic request record (the size of the ones the broker writes).
fn bench_record() -> Vec<u8> {
    use infoshare_server::domain::{Authority, Classification, Consultation, Urgency};
    use infoshare_server::records::{Actor, Event, Record, RequestId, RequestSubmitted};
    Record {
        time_ms: 1_800_000_000_000,
        actor: Actor {
            role: infoshare_server::identity::Role::Agency,
            id: "police".into(),
            cert_sha256: [1; 32],
        },
        event: Event::RequestSubmitted(RequestSubmitted {
            request_id: RequestId([2; 16]),
            recipient: "rangitoto-school-board".into(),
            staff: [3; 32],
            subjects: vec![[4; 32], [5; 32]],
            protocol_id: "youth-reengagement".into(),
            protocol_version: 1,
            authority: Authority::OtaS66C,
            purpose: "support-plan".into(),
            categories: vec!["attendance".into(), "learning-support".into()],
            classification: Classification::InConfidence,
            urgency: Urgency::Routine,
            consultation: Some(Consultation::Consulted),
            idempotency: [6; 32],
            body_commitment: [7; 32],
            due_ms: 1_800_000_900_000,
            expires_ms: 1_800_432_000_000,
            follows: None,
        }),
    }
    .encode()
}
