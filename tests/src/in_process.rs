//! A broker in this process, on the in-memory engine (or the embedded one in a directory),
//! with the sample registry, the three example protocols registered and approved, and a clock
//! the test moves. No TLS and no sockets: callers are made from their SPIFFE ids, as the
//! transport makes them from verified certificates. For the lifecycle, policy, idempotency and
//! audit rules, in milliseconds; what crosses the wire is tested end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use infoshare_server::broker::{Broker, Caller, Submitted};
use infoshare_server::clock::Clock;
use infoshare_server::crypto::Keys;
use infoshare_server::error::BrokerError;
use infoshare_server::identity::{Role, SpiffeId};
use infoshare_server::limits::Limits;
use infoshare_server::protocol::model::EXAMPLES;
use infoshare_server::registry::{Registry, SAMPLE_REGISTRY};
use infoshare_server::store::ledger::{Ledger, LedgerOptions};
use infoshare_server::store::postgres::PgSettings;

/// 06:00 on 15 January 2027 in New Zealand (NZDT, UTC+13): 17:00 UTC on the 14th.
pub const JAN_15_2027_0600_NZ: u64 = 1_799_946_000_000;

/// A broker and its clock.
pub struct World {
    /// The broker under test.
    pub broker: Broker,
    now: Arc<AtomicU64>,
    _dir: Option<tempfile::TempDir>,
    /// The database and keys directory of a broker on PostgreSQL, for its replicas.
    shared: Option<(PgSettings, std::path::PathBuf)>,
    /// Dropped last: the broker's connections go before the cluster stops.
    _cluster: Option<crate::pg_cluster::PgCluster>,
}

impl World {
    /// A broker on the in-memory engine.
    pub async fn in_memory() -> Self {
        let ledger = Ledger::in_memory(&LedgerOptions::new("in-process.invalid/log")).unwrap();
        Self::with(ledger, None).await
    }

    /// A broker on the embedded engine, in a fresh directory.
    pub async fn embedded() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) =
            Ledger::open(dir.path(), &LedgerOptions::new("in-process.invalid/log")).unwrap();
        Self::with(ledger, Some(dir)).await
    }

    /// A broker on the PostgreSQL engine, in a fresh database of a throwaway cluster; `None`
    /// where PostgreSQL is not installed (see [`crate::pg_cluster`]).
    pub async fn postgres() -> Option<Self> {
        let cluster = crate::pg_cluster::PgCluster::start()?;
        let settings = cluster.database().await;
        let keys = tempfile::tempdir().unwrap();
        let ledger = open_postgres(&settings, keys.path()).await;
        let mut world = Self::with(ledger, Some(keys)).await;
        world.shared = Some((settings, world._dir.as_ref().unwrap().path().to_path_buf()));
        world._cluster = Some(cluster);
        Some(world)
    }

    /// Another broker on this one's database and keys (a replica), on the same clock; it
    /// registers nothing. Panics unless this broker is on PostgreSQL.
    pub async fn replica(&self) -> Self {
        let (settings, keys) = self.shared.clone().expect("a broker on PostgreSQL");
        let ledger = open_postgres(&settings, &keys).await;
        let reading = self.now.clone();
        let clock = Clock::from_fn(move || reading.load(Ordering::SeqCst));
        Self {
            broker: Self::broker(ledger, clock),
            now: self.now.clone(),
            _dir: None,
            shared: self.shared.clone(),
            _cluster: None,
        }
    }

    /// Another broker over this one's ledger and clock, with none of its state in memory (as
    /// after a restart).
    pub fn another_broker(&self) -> Broker {
        let reading = self.now.clone();
        let clock = Clock::from_fn(move || reading.load(Ordering::SeqCst));
        Self::broker(self.broker.ledger().clone(), clock)
    }

    /// The database of a broker on PostgreSQL.
    pub fn database(&self) -> Option<PgSettings> {
        self.shared.as_ref().map(|(settings, _)| settings.clone())
    }

    fn broker(ledger: Ledger, clock: Clock) -> Broker {
        Broker::new(
            ledger,
            Registry::from_toml(SAMPLE_REGISTRY).unwrap(),
            Keys::from_secret(&[7; 32]),
            Limits::default(),
            clock,
            infoshare_server::deadline::Calendar::default(),
        )
    }

    async fn with(ledger: Ledger, dir: Option<tempfile::TempDir>) -> Self {
        let now = Arc::new(AtomicU64::new(JAN_15_2027_0600_NZ));
        let reading = now.clone();
        let clock = Clock::from_fn(move || reading.load(Ordering::SeqCst));
        let world = Self {
            broker: Self::broker(ledger, clock),
            now,
            _dir: dir,
            shared: None,
            _cluster: None,
        };
        let admin = world.caller(Role::Admin, "registry-admin");
        let approver = world.caller(Role::Admin, "privacy-officer");
        for document in EXAMPLES {
            let registered = world
                .broker
                .register_protocol(&admin, document)
                .await
                .unwrap();
            let approve = infoshare_proto::v1::ApproveProtocolRequest {
                protocol_id: registered.protocol_id,
                version: registered.version.unwrap_or(1),
                approver_role: "Chief Privacy Officer (in-process tests)".into(),
            };
            world
                .broker
                .approve_protocol(&approver, &approve)
                .await
                .unwrap();
        }
        world
    }

    /// The registered principal `id` in `role`, as the transport would authenticate it.
    pub fn caller(&self, role: Role, id: &str) -> Caller {
        let spiffe = SpiffeId::parse(
            &format!("spiffe://infoshare.dev/{}/{id}", role.as_str()),
            "infoshare.dev",
        )
        .unwrap();
        self.broker.caller(&spiffe, [role.code(); 32]).unwrap()
    }

    /// An agency caller.
    pub fn agency(&self, id: &str) -> Caller {
        self.caller(Role::Agency, id)
    }

    /// Moves the clock on by `days`.
    pub fn advance_days(&self, days: u64) {
        self.advance_ms(days * 86_400_000);
    }

    /// Moves the clock on by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Runs the deadline task now, as the broker's own task does.
    pub async fn run_deadlines(&self) -> infoshare_server::broker::DeadlineRun {
        self.broker
            .run_deadlines(Broker::deadlines_actor())
            .await
            .unwrap()
    }

    /// `from` sends the sample request to the Rangitoto school board under idempotency key
    /// `key`; panics if it is refused.
    pub async fn submit_sample(&self, from: &Caller, key: &str) -> Submitted {
        let input = infoshare_proto::v1::SubmitRequestRequest {
            request: Some(crate::sample_request("rangitoto-school-board")),
            idempotency_key: key.into(),
            follows_request_id: String::new(),
        };
        self.broker.submit_request(from, &input).await.unwrap()
    }

    /// Runs retention now, as the broker's own task does; returns how many exchanges it purged.
    pub async fn run_retention(&self) -> usize {
        let now = self.broker.clock().now_ms();
        self.broker
            .run_retention(Broker::retention_actor(), now)
            .await
            .unwrap()
    }

    /// Records in the log.
    pub fn log_size(&self) -> u64 {
        self.broker.ledger().head().checkpoint.size
    }
}

/// A ledger on PostgreSQL; its start-up blocks on the database, so off this runtime's threads.
async fn open_postgres(settings: &PgSettings, keys: &std::path::Path) -> Ledger {
    let (settings, keys) = (settings.clone(), keys.to_path_buf());
    let options = LedgerOptions::new("in-process.invalid/log");
    tokio::task::spawn_blocking(move || Ledger::open_postgres(&settings, &keys, &options))
        .await
        .unwrap()
        .unwrap()
        .0
}

/// The reason code of a failed call (looking through a logged refusal).
pub fn code_of<T: std::fmt::Debug>(r: Result<T, BrokerError>) -> &'static str {
    match r {
        Err(e) => e.reason_code(),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}
