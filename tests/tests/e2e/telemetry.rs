//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the broker exports a span per RPC
//! and per log commit batch, and its metrics, over OTLP to a real collector (a tonic OTLP
//! receiver on loopback in this test); no attribute carries personal information. Without it,
//! nothing is exported.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestEnv;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;

/// What the collector received.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    /// (metric name, its data points' attributes and values, as debug text).
    metrics: Vec<(String, String)>,
    requests: usize,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        got.requests += 1;
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                got.spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        got.requests += 1;
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                for metric in scope.metrics {
                    got.metrics
                        .push((metric.name.clone(), format!("{:?}", metric.data)));
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts the collector on loopback; its URL.
async fn collector(received: Collector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn text(value: Option<&any_value::Value>) -> String {
    match value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Polls until `done` holds for what was received (up to 20 s).
async fn wait_for(received: &Collector, what: &str, done: impl Fn(&Received) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done(&received.0.lock().unwrap()) {
        assert!(
            std::time::Instant::now() < deadline,
            "never received {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rpcs_and_commit_batches_are_exported_over_otlp_without_personal_information() {
    let received = Collector::default();
    let endpoint = collector(received.clone()).await;
    let env = TestEnv::new();
    env.set_server_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_SERVICE_NAME", "infoshare-test"),
    ]);
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let _stream = school.subscribe_inbox(0).await.unwrap();
    let request = infoshare_tests::sample_request("rangitoto-school-board");
    let personal = [
        request.subject.as_ref().unwrap().family_name.clone(),
        request.subject.as_ref().unwrap().given_names.clone(),
        request.subject.as_ref().unwrap().date_of_birth.clone(),
        request.subject.as_ref().unwrap().identifiers[0]
            .value
            .clone(),
        request.reason.clone(),
        request.staff_id.clone(),
    ];
    let sent = police
        .submit_request(request.clone(), "otel-1")
        .await
        .unwrap();
    let mut refused = request;
    refused.subject.as_mut().unwrap().date_of_birth = "1970-01-01".into();
    assert!(police.submit_request(refused, "otel-2").await.is_err());

    wait_for(&received, "the SubmitRequest and commit spans", |r| {
        let names: Vec<&str> = r.spans.iter().map(|s| s.name.as_str()).collect();
        names
            .iter()
            .filter(|n| **n == "infoshare.v1.ExchangeService/SubmitRequest")
            .count()
            >= 2
            && names.contains(&"ledger.commit")
    })
    .await;
    wait_for(&received, "the metrics", |r| {
        let has = |name: &str| r.metrics.iter().any(|(n, _)| n == name);
        has("infoshare.rpc.calls")
            && has("infoshare.ledger.batch.records")
            && has("infoshare.ledger.batch.duration")
            && has("infoshare.inbox.unacknowledged")
            && has("infoshare.streams.open")
    })
    .await;

    let got = received.0.lock().unwrap();
    let submits: Vec<&Span> = got
        .spans
        .iter()
        .filter(|s| s.name == "infoshare.v1.ExchangeService/SubmitRequest")
        .collect();
    for span in &submits {
        assert_eq!(text(attr(span, "rpc.system")), "grpc");
        assert_eq!(
            text(attr(span, "rpc.service")),
            "infoshare.v1.ExchangeService"
        );
        assert_eq!(text(attr(span, "rpc.method")), "SubmitRequest");
        assert_eq!(
            text(attr(span, "caller")),
            "spiffe://infoshare.dev/agency/police"
        );
    }
    let accepted = submits
        .iter()
        .find(|s| text(attr(s, "rpc.grpc.status_code")) == "0")
        .expect("the lawful submit");
    assert_eq!(text(attr(accepted, "request_id")), sent.request_id);
    let denied = submits
        .iter()
        .find(|s| text(attr(s, "rpc.grpc.status_code")) == "7")
        .expect("the refused submit: PERMISSION_DENIED");
    assert!(!text(attr(denied, "infoshare.reason")).is_empty());
    let commit = got
        .spans
        .iter()
        .find(|s| s.name == "ledger.commit")
        .unwrap();
    assert!(attr(commit, "records").is_some() && attr(commit, "first_index").is_some());
    let calls = &got
        .metrics
        .iter()
        .find(|(n, _)| n == "infoshare.rpc.calls")
        .unwrap()
        .1;
    assert!(calls.contains("SubmitRequest"), "{calls}");
    let depth = &got
        .metrics
        .iter()
        .rfind(|(n, _)| n == "infoshare.inbox.unacknowledged")
        .unwrap()
        .1;
    assert!(depth.contains("rangitoto-school-board"), "{depth}");

    // Nothing personal anywhere: every attribute of every span, and every metric point.
    let everything = format!(
        "{:?} {:?}",
        got.spans
            .iter()
            .map(|s| (&s.name, &s.attributes, &s.events))
            .collect::<Vec<_>>(),
        got.metrics
    );
    for value in personal {
        assert!(
            !everything.contains(&value),
            "telemetry carries personal information: {value:?}"
        );
    }
}

#[tokio::test]
async fn nothing_is_exported_without_an_endpoint() {
    let received = Collector::default();
    let endpoint = collector(received.clone()).await;
    let env = TestEnv::new();
    // The collector is up, but the server is not told about it.
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    police
        .submit_request(
            infoshare_tests::sample_request("rangitoto-school-board"),
            "quiet",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.0.lock().unwrap().requests, 0, "{endpoint}");
}

/// The value the latest export of gauge `name` gives the point of `agency`, as debug text.
fn gauge_point(r: &Received, name: &str, agency: &str) -> Option<String> {
    let (_, data) = r.metrics.iter().rfind(|(n, _)| n == name)?;
    let at = data.find(&format!("StringValue(\"{agency}\")"))?;
    let rest = &data[at..];
    let value = rest.find("value: Some(As")?;
    Some(rest[value..].split(')').next()?.to_string())
}

/// `infoshare.requests.overdue` counts the requests past their due time unanswered, by the
/// agency that owes the answer; it falls when the answer is given.
#[tokio::test]
async fn overdue_requests_are_counted_by_the_agency_that_owes_the_answer() {
    const START: u64 = 1_799_946_000_000;
    let received = Collector::default();
    let endpoint = collector(received.clone()).await;
    let env = TestEnv::with_config("[deadlines]\ninterval_secs = 3600\n");
    env.set_server_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ]);
    env.set_clock_at(START);
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    let school = server.agency(&env, "rangitoto-school-board").await;
    let admin = server
        .client(&env, infoshare_certs_dev::Role::Admin, "registry-admin")
        .await;
    let mut request = infoshare_tests::sample_request("rangitoto-school-board");
    request.urgency = infoshare_client::api::Urgency::ImmediateSafety as i32;
    let sent = police.submit_request(request, "overdue-1").await.unwrap();
    let school_count =
        |r: &Received| gauge_point(r, "infoshare.requests.overdue", "rangitoto-school-board");
    wait_for(&received, "the overdue gauge at 0", |r| {
        school_count(r).as_deref() == Some("value: Some(AsInt(0")
    })
    .await;

    env.set_clock_at(START + 5 * 3_600_000);
    assert_eq!(admin.run_deadlines().await.unwrap().overdue, 1);
    wait_for(&received, "the overdue gauge at 1", |r| {
        school_count(r).as_deref() == Some("value: Some(AsInt(1")
    })
    .await;
    assert_eq!(
        gauge_point(
            &received.0.lock().unwrap(),
            "infoshare.requests.overdue",
            "police"
        )
        .as_deref(),
        Some("value: Some(AsInt(0"),
        "Police owes nothing"
    );

    school
        .respond(&sent.request_id, infoshare_tests::sample_disclosure())
        .await
        .unwrap();
    wait_for(&received, "the overdue gauge back at 0", |r| {
        school_count(r).as_deref() == Some("value: Some(AsInt(0")
    })
    .await;
}
