//! Wiring: open the ledger, load the registry and keys, build TLS, and serve.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use infoshare_proto::v1::admin_service_server::AdminServiceServer;
use infoshare_proto::v1::audit_service_server::AuditServiceServer;
use infoshare_proto::v1::exchange_service_server::ExchangeServiceServer;
use infoshare_proto::v1::identity_service_server::IdentityServiceServer;
use infoshare_proto::v1::protocol_service_server::ProtocolServiceServer;
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::config::Config;
use crate::service::admin::AdminApi;
use crate::service::audit::AuditApi;
use crate::service::exchange::ExchangeApi;
use crate::service::identity::IdentityApi;
use crate::service::protocol::ProtocolApi;
use crate::store::ledger::Ledger;
use crate::validate::MAX_MESSAGE_BYTES;

/// A startup failure, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

macro_rules! start_err {
    ($what:literal, $e:expr) => {
        $crate::server::StartError(format!(concat!($what, ": {}"), $e))
    };
}
#[cfg(feature = "dev")]
pub(crate) use start_err;

/// A server ready to serve: its listener is bound.
pub struct Prepared {
    listener: TcpListener,
    broker: Broker,
    tls: crate::tls::SharedTlsConfig,
    tls_files: crate::config::TlsFiles,
    registry_file: std::path::PathBuf,
    retention: crate::config::Retention,
    deadlines: crate::config::Deadlines,
    trust_domain: String,
    transport: crate::transport::TransportConfig,
}

impl Prepared {
    /// The broker (for in-process tools such as the benchmark).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The TLS configuration in force (for in-process tools such as the benchmark).
    pub fn tls(&self) -> crate::tls::SharedTlsConfig {
        self.tls.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Rebuilds the TLS configuration from its files (certificate, key, CA bundle, CRLs) and
    /// puts it in force for new connections. On error the old configuration stays.
    pub fn reload_tls(&self) -> Result<(), StartError> {
        reload(&self.tls, &self.tls_files)
    }

    /// Re-reads the agency registry and puts it in force for new calls. On error the old
    /// registry stays.
    pub fn reload_registry(&self) -> Result<usize, StartError> {
        reload_registry(&self.broker, &self.registry_file)
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: stops accepting, ends
    /// inbox streams with UNAVAILABLE (reconnect), and lets calls in flight (and their commits)
    /// finish. SIGHUP reloads the TLS configuration and the agency registry; open connections
    /// are kept.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let (tls, files) = (self.tls.clone(), self.tls_files.clone());
        let (broker, registry_file) = (self.broker.clone(), self.registry_file.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                match reload(&tls, &files) {
                    Ok(()) => {
                        tracing::info!("TLS configuration reloaded (certificate, CA bundle, CRLs)")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; the previous configuration stays in force")
                    }
                }
                match reload_registry(&broker, &registry_file) {
                    Ok(agencies) => tracing::info!(agencies, "agency registry reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "registry reload failed; the previous registry stays in force")
                    }
                }
            }
        });
        observe_state(&self.broker);
        tokio::spawn(retention_task(
            self.broker.clone(),
            Duration::from_secs(self.retention.interval_secs.max(1)),
        ));
        tokio::spawn(deadline_task(
            self.broker.clone(),
            Duration::from_secs(self.deadlines.interval_secs.max(1)),
        ));
        // Standard gRPC health and server reflection (v1 and v1alpha: many clients still speak
        // the latter), so grpcurl and any gRPC client can probe and discover the API. They sit
        // behind the same mutual TLS as everything else.
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<ExchangeServiceServer<ExchangeApi>>()
            .await;
        health_reporter
            .set_serving::<ProtocolServiceServer<ProtocolApi>>()
            .await;
        health_reporter
            .set_serving::<AuditServiceServer<AuditApi>>()
            .await;
        health_reporter
            .set_serving::<IdentityServiceServer<IdentityApi>>()
            .await;
        health_reporter
            .set_serving::<AdminServiceServer<AdminApi>>()
            .await;
        let descriptors = api_descriptors();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(&descriptors)
            .build_v1()
            .map_err(|e| start_err!("reflection", e))?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(&descriptors)
            .build_v1alpha()
            .map_err(|e| start_err!("reflection", e))?;
        let transport = self.transport.clone();
        let max_connections = crate::transport::raise_open_file_limit(transport.max_connections);
        if max_connections < transport.max_connections {
            tracing::warn!(
                configured = transport.max_connections,
                max_connections,
                "the open-file limit allows fewer connections than configured"
            );
        }
        let registry_of = self.broker.clone();
        let front = crate::tls::Front {
            admission: std::sync::Arc::new(crate::transport::admission::Admission::new(
                max_connections,
                transport.max_connections_per_identity,
                std::sync::Arc::new(move |peer| {
                    registry_of
                        .authenticate(Some(peer))
                        .map(|_| ())
                        .map_err(crate::service::status::of)
                }),
            )),
            handshake_timeout: transport.handshake_timeout(),
            idle_timeout: transport.idle_timeout(),
            answer_budget_bytes: transport.answer_budget_bytes,
            refusals: transport.refusal_log(),
        };
        let incoming = crate::tls::incoming(self.listener, self.tls, self.trust_domain, front);
        let broker = self.broker.clone();
        // The check of the whole log after start-up: if the log is found changed, the server
        // stops and says so, as start-up refused such a log when it rehashed it itself.
        let mut log_check = self.broker.ledger().log_check();
        let log_fault = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let fault = log_fault.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                why = log_check_failure(&mut log_check) => {
                    tracing::error!(error = %why, "stopping: the log does not match its signed checkpoint");
                    *fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                }
            }
            tracing::info!(
                "graceful shutdown: no new connections; ending streams, finishing calls in flight"
            );
            for service in [
                "infoshare.v1.ExchangeService",
                "infoshare.v1.ProtocolService",
                "infoshare.v1.AuditService",
                "infoshare.v1.IdentityService",
                "infoshare.v1.AdminService",
                "",
            ] {
                health_reporter
                    .set_service_status(service, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            broker.begin_shutdown();
        };
        // Every service: 1 MiB in, 4 MiB out (pages stop before it).
        macro_rules! sized {
            ($service:expr) => {
                $service
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(crate::transport::MAX_ANSWER_BYTES)
            };
        }
        tonic::transport::Server::builder()
            // tonic leaves SETTINGS_MAX_CONCURRENT_STREAMS unset (unlimited) unless told.
            .max_concurrent_streams(transport.max_concurrent_streams)
            .concurrency_limit_per_connection(transport.max_calls_per_connection)
            .timeout(transport.request_timeout())
            .http2_max_header_list_size(16 << 10)
            .layer(crate::service::observe::ObserveLayer)
            .layer(crate::transport::budget::BudgetLayer)
            // Bounds how long a connection made before a revocation keeps working.
            .max_connection_age(Duration::from_secs(15 * 60))
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(sized!(ExchangeServiceServer::new(ExchangeApi::new(
                self.broker.clone()
            ))))
            .add_service(sized!(IdentityServiceServer::new(IdentityApi::new(
                self.broker.clone()
            ))))
            .add_service(sized!(ProtocolServiceServer::new(ProtocolApi::new(
                self.broker.clone()
            ))))
            .add_service(sized!(AuditServiceServer::new(AuditApi::new(
                self.broker.clone()
            ))))
            .add_service(sized!(AdminServiceServer::new(AdminApi::new(
                self.broker.clone()
            ))))
            .add_service(sized!(health))
            .add_service(sized!(reflection_v1))
            .add_service(sized!(reflection_v1alpha))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| start_err!("server", e))?;
        match log_fault.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(why) => Err(start_err!(
                "the log does not match its last signed checkpoint",
                why
            )),
            None => Ok(()),
        }
    }
}

/// Resolves with the finding if the log check fails; never if it passes.
async fn log_check_failure(
    check: &mut tokio::sync::watch::Receiver<crate::store::log_check::LogCheck>,
) -> String {
    use crate::store::log_check::LogCheck;
    loop {
        if let LogCheck::Failed(why) = &*check.borrow_and_update() {
            return why.clone();
        }
        if check.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Gauges read from the broker's state when metrics are collected: unacknowledged inbox items
/// per agency and open inbox streams per principal (identifiers and counts only).
fn observe_state(broker: &Broker) {
    use opentelemetry::KeyValue;
    let meter = crate::telemetry::metrics().meter();
    let b = broker.clone();
    meter
        .u64_observable_gauge("infoshare.inbox.unacknowledged")
        .with_description("Unacknowledged inbox items, by agency")
        .with_callback(move |gauge| match b.inbox_depths() {
            Ok(depths) => {
                for (agency, n) in depths {
                    gauge.observe(n, &[KeyValue::new("agency", agency)]);
                }
            }
            Err(e) => tracing::warn!(error = %e, "inbox depths unavailable"),
        })
        .build();
    let b = broker.clone();
    meter
        .u64_observable_gauge("infoshare.requests.overdue")
        .with_description(
            "Requests past their due time unanswered, by the agency that owes the answer",
        )
        .with_callback(move |gauge| match b.overdue_by_agency() {
            Ok(counts) => {
                for (agency, n) in counts {
                    gauge.observe(n, &[KeyValue::new("agency", agency)]);
                }
            }
            Err(e) => tracing::warn!(error = %e, "overdue counts unavailable"),
        })
        .build();
    let b = broker.clone();
    meter
        .u64_observable_gauge("infoshare.streams.open")
        .with_description("Open inbox streams, by principal")
        .with_callback(move |gauge| {
            for (principal, n) in b.limiter().open_streams() {
                gauge.observe(n as u64, &[KeyValue::new("principal", principal)]);
            }
        })
        .build();
}

/// Runs retention a minute after start, then every `interval`, until shutdown begins. A run
/// that fails is logged and tried again at the next interval (nothing is erased by halves:
/// each exchange's erasure is logged after its bodies are gone, and a repeat is a no-op).
async fn retention_task(broker: Broker, interval: Duration) {
    let mut stopping = broker.shutting_down();
    let mut wait = interval.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|&stop| stop) => return,
        }
        wait = interval;
        let as_of = broker.clock().now_ms();
        match broker.run_retention(Broker::retention_actor(), as_of).await {
            Ok(0) => tracing::debug!("retention run: nothing due"),
            Ok(purged) => tracing::info!(purged, "retention run: bodies erased"),
            Err(e) => {
                tracing::error!(error = %e, "retention run failed; retrying at the next interval")
            }
        }
    }
}

/// Runs the deadline task right after start, then every `interval`, until shutdown begins: a
/// request past its due time unanswered becomes overdue, one past its collection window
/// unacknowledged expires. A run that fails is logged and tried again at the next interval
/// (each mark is decided by the writer against the views, so a repeat never marks twice).
async fn deadline_task(broker: Broker, interval: Duration) {
    let mut stopping = broker.shutting_down();
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|&stop| stop) => return,
        }
        wait = interval;
        match broker.run_deadlines(Broker::deadlines_actor()).await {
            Ok(run) if run.overdue + run.expired == 0 => {
                tracing::debug!("deadline run: nothing due")
            }
            Ok(run) => {
                tracing::info!(overdue = run.overdue, expired = run.expired, "deadline run");
                if run.more {
                    // More were due than one run takes: go on at once.
                    wait = Duration::ZERO;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "deadline run failed; retrying at the next interval")
            }
        }
    }
}

fn reload_registry(broker: &Broker, path: &Path) -> Result<usize, StartError> {
    let registry = crate::config::load_registry(path).map_err(|e| start_err!("registry", e))?;
    let agencies = registry.agency_count();
    broker.replace_registry(registry);
    Ok(agencies)
}

/// The API's file descriptors for reflection, without the benchmark's echo (not served here).
fn api_descriptors() -> Vec<u8> {
    use prost::Message;
    let mut set = prost_types::FileDescriptorSet::decode(infoshare_proto::FILE_DESCRIPTOR_SET)
        .expect("the built-in descriptor set decodes");
    set.file
        .retain(|f| f.package.as_deref() != Some("infoshare.bench.v1"));
    // The health service is served too: describe it, so grpcurl and other clients can call it.
    let health = prost_types::FileDescriptorSet::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .expect("tonic-health's descriptor set decodes");
    set.file.extend(health.file);
    set.encode_to_vec()
}

/// Checks a configuration without serving: the registry parses, the TLS files and CRLs load,
/// and the data directory is usable. For `infoshare-server --check-config`.
pub fn check_config(config: &Config) -> Result<String, StartError> {
    let registry = crate::config::load_registry(&config.registry.agencies)
        .map_err(|e| start_err!("registry", e))?;
    crate::tls::server_config(
        &config.tls.ca,
        &config.tls.cert,
        &config.tls.key,
        &config.tls.crl,
    )
    .map_err(|e| start_err!("tls", e))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        start_err!(
            "data directory",
            format!("{}: {e}", config.data_dir.display())
        )
    })?;
    let probe = config.data_dir.join(".check-config");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            start_err!(
                "data directory",
                format!("{} is not writable: {e}", config.data_dir.display())
            )
        })?;
    let l = &config.limits;
    if l.calls_per_second <= 0.0 || l.burst < 1.0 || l.streams_per_principal == 0 {
        return Err(StartError(
            "limits: calls_per_second, burst and streams_per_principal must be positive".into(),
        ));
    }
    let t = &config.transport;
    if t.max_connections == 0
        || t.max_connections_per_identity == 0
        || t.max_concurrent_streams == 0
        || t.max_calls_per_connection == 0
        || t.answer_budget_bytes < crate::transport::MAX_ANSWER_BYTES
    {
        return Err(StartError(format!(
            "transport: connection, stream and call limits must be positive, and answer_budget_bytes at least {} (one full page)",
            crate::transport::MAX_ANSWER_BYTES
        )));
    }
    config.ledger.check().map_err(StartError)?;
    let holidays = holidays_note(
        &config.calendar().map_err(StartError)?.holidays,
        crate::clock::Clock::system().today(),
    );
    let storage = match config.storage.postgres().map_err(StartError)? {
        Some(settings) => {
            crate::store::postgres::probe(&settings).map_err(|e| start_err!("storage", e))?
        }
        None => "embedded engine".to_string(),
    };
    Ok(format!(
        "configuration OK: {} agencies; TLS files and {} CRL file(s) load; data directory {} is writable; {storage}; {holidays}; listen {}",
        registry.agency_count(),
        config.tls.crl.len(),
        config.data_dir.display(),
        config.listen
    ))
}

/// What the holiday list covers, with a warning when it runs out within
/// [`HOLIDAYS_WARN_DAYS`](crate::config::HOLIDAYS_WARN_DAYS) of `today` (past it, working days
/// skip weekends only).
fn holidays_note(holidays: &crate::deadline::Holidays, today: time::Date) -> String {
    let through = holidays.covers_through();
    let left = (through - today).whole_days();
    if left < crate::config::HOLIDAYS_WARN_DAYS {
        format!(
            "WARNING: public holidays known only through {through} ({left} days): update [calendar] holidays"
        )
    } else {
        format!("public holidays through {through}")
    }
}

fn reload(
    tls: &crate::tls::SharedTlsConfig,
    files: &crate::config::TlsFiles,
) -> Result<(), StartError> {
    let fresh = crate::tls::server_config(&files.ca, &files.cert, &files.key, &files.crl)
        .map_err(|e| start_err!("tls reload", e))?;
    *tls.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    Ok(())
}

/// Opens storage and binds the listener.
pub async fn prepare(config: &Config, clock: crate::clock::Clock) -> Result<Prepared, StartError> {
    let registry = crate::config::load_registry(&config.registry.agencies)
        .map_err(|e| start_err!("registry", e))?;
    let keys = crate::key_file::load_or_create_keys(&config.keys_dir().join("pseudonym.key"))
        .map_err(|e| start_err!("keys", e))?;
    let tls = crate::tls::server_config(
        &config.tls.ca,
        &config.tls.cert,
        &config.tls.key,
        &config.tls.crl,
    )
    .map_err(|e| start_err!("tls", e))?;
    config.ledger.check().map_err(StartError)?;
    // A broken holiday file stops the start rather than miscount a deadline later.
    let calendar = config.calendar().map_err(StartError)?;
    let note = holidays_note(&calendar.holidays, clock.today());
    if note.starts_with("WARNING") {
        tracing::warn!("{note}");
    }
    let (ledger, report) = open_ledger(config)?;
    tracing::info!(
        records = report.records,
        bodies = report.bodies,
        replayed = report.replayed,
        rebuilt_views = report.rebuilt,
        truncated_log_bytes = report.truncated.0,
        truncated_body_bytes = report.truncated.1,
        agencies = registry.agency_count(),
        "ledger open"
    );
    // Auditors pin this key to verify checkpoints, receipts and evidence bundles offline.
    tracing::info!(
        verifier_key = &*ledger.verifier_key(),
        "audit log signing key"
    );
    println!(
        "infoshare-server log verifier key {}",
        ledger.verifier_key()
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| start_err!("listen", format!("{}: {e}", config.listen)))?;
    Ok(Prepared {
        listener,
        broker: Broker::new(
            ledger,
            registry,
            keys,
            config.limits.clone(),
            clock,
            calendar,
        ),
        tls: std::sync::Arc::new(std::sync::RwLock::new(tls)),
        tls_files: config.tls.clone(),
        registry_file: config.registry.agencies.clone(),
        retention: config.retention.clone(),
        deadlines: config.deadlines.clone(),
        trust_domain: config.trust_domain.clone(),
        transport: config.transport.clone(),
    })
}

fn open_ledger(config: &Config) -> Result<(Ledger, crate::store::ledger::OpenReport), StartError> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| start_err!("data directory", format!("{}: {e}", data_dir.display())))?;
    let mut options = config.ledger.options(&config.log_origin);
    options.on_batch = Some(std::sync::Arc::new(|records, took| {
        crate::telemetry::metrics().batch(records, took)
    }));
    let keys_dir = config.keys_dir();
    match config.storage.postgres().map_err(StartError)? {
        Some(settings) => Ledger::open_postgres(&settings, &keys_dir, &options),
        None => Ledger::open_embedded(data_dir, &keys_dir, &options),
    }
    .map_err(|e| start_err!("ledger", e))
}
