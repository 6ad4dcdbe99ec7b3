//! Logs, traces and metrics. Logs go to stderr always. Traces and metrics are exported over
//! OTLP (gRPC) only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the signal-specific variable) is
//! set, configured by the standard OpenTelemetry environment variables; nothing is exported
//! otherwise.
//!
//! What is exported is identifiers, codes, counts and durations: the RPC, the caller's SPIFFE
//! id, request ids, log indexes, status and reason codes. Never a name, a date of birth, free
//! text or a message body (the spans are made here and in the RPC layer, from those fields only).

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Keeps the exporters running; flushes and stops them when dropped.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct Guard {
    providers: Option<(SdkTracerProvider, SdkMeterProvider)>,
}

impl Guard {
    /// Whether spans and metrics are exported.
    pub fn exporting(&self) -> bool {
        self.providers.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((traces, metrics)) = self.providers.take() {
            let _ = traces.shutdown();
            let _ = metrics.shutdown();
        }
    }
}

/// Whether the standard environment asks for OTLP export.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
        && std::env::var("OTEL_SDK_DISABLED").as_deref() != Ok("true")
}

/// Installs logging to stderr (filtered by `RUST_LOG`, default `info`) and, if configured,
/// OTLP export of traces and metrics. Must run inside a Tokio runtime (the exporters' gRPC
/// channels live on it).
pub fn init(service_name: &'static str) -> Result<Guard, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if !otlp_configured() {
        tracing_subscriber::registry().with(filter).with(fmt).init();
        return Ok(Guard { providers: None });
    }
    let resource = Resource::builder().with_service_name(service_name).build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("OTLP span exporter: {e}"))?;
    let traces = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let metrics_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("OTLP metric exporter: {e}"))?;
    let metrics = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics_exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(metrics.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(traces.tracer(service_name));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(Guard {
        providers: Some((traces, metrics)),
    })
}

/// The broker's instruments (no-ops unless export is configured).
pub struct Metrics {
    meter: Meter,
    rpc_calls: Counter<u64>,
    rpc_duration: Histogram<f64>,
    batch_records: Histogram<u64>,
    batch_duration: Histogram<f64>,
}

/// The broker's instruments, made on first use (after [`init`], so they bind to the exporter).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("infoshare");
        Metrics {
            rpc_calls: meter
                .u64_counter("infoshare.rpc.calls")
                .with_description("RPCs by method, gRPC status code and reason code")
                .build(),
            rpc_duration: meter
                .f64_histogram("infoshare.rpc.duration")
                .with_unit("s")
                .with_description("Time to the response headers (streams: to their opening)")
                .build(),
            batch_records: meter
                .u64_histogram("infoshare.ledger.batch.records")
                .with_description("Records per log commit batch (one fdatasync and signature)")
                .build(),
            batch_duration: meter
                .f64_histogram("infoshare.ledger.batch.duration")
                .with_unit("s")
                .with_description("Time to commit a batch: bodies, log, views, checkpoint")
                .build(),
            meter,
        }
    })
}

impl Metrics {
    /// One finished RPC.
    pub fn rpc(&self, method: &str, code: i32, reason: &str, took: Duration) {
        let attrs = [
            KeyValue::new("rpc.method", method.to_string()),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            KeyValue::new("infoshare.reason", reason.to_string()),
        ];
        self.rpc_calls.add(1, &attrs);
        self.rpc_duration.record(took.as_secs_f64(), &attrs[..1]);
    }

    /// One committed batch.
    pub fn batch(&self, records: usize, took: Duration) {
        self.batch_records.record(records as u64, &[]);
        self.batch_duration.record(took.as_secs_f64(), &[]);
    }

    /// The meter, for gauges observed from broker state.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }
}
