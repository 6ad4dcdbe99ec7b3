//! Typed Rust client for the infoshare broker, used by the `infoshare` CLI, the end-to-end tests
//! and anything else that talks to the broker.
//!
//! ```no_run
//! # async fn example() -> Result<(), infoshare_client::ClientError> {
//! use infoshare_client::{Client, Identity};
//! let identity = Identity::from_dir("certs-dev/out/agency/police")?;
//! let client = Client::connect("https://localhost:50051", &identity).await?;
//! let me = client.who_am_i().await?;
//! println!("{} ({})", me.display_name, me.spiffe_id);
//! # Ok(()) }
//! ```
//!
//! The caller's identity is its client certificate; nothing in a message says who is calling.
//!
//! # Layout
//! - This file: [`Client`] (one typed method per RPC), [`Identity`] (a principal's certificate,
//!   key and CA), [`ClientError`] with the broker's reason code and any TLS alert.
//! - [`verify`]: offline checks of receipts, evidence bundles and consistency proofs, with the
//!   same `infoshare-tlog` code the broker proves with.
//! - [`cli`]: the `infoshare` command line; what it prints goes through `cli::terminal`, which
//!   escapes control characters and bidi overrides.
//!
//! # What it may not import
//! Anything of the broker but the API (`infoshare-proto`) and the log primitives
//! (`infoshare-tlog`): a client knows the broker only by the wire.

#![forbid(unsafe_code)]

pub mod cli;
mod tls_refusal;
mod workflow;
pub use tls_refusal::handshake_refusal;
pub mod verify;

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

/// The API messages (`infoshare.v1`).
pub use infoshare_proto::v1 as api;

use api::admin_service_client::AdminServiceClient;
use api::audit_service_client::AuditServiceClient;
use api::exchange_service_client::ExchangeServiceClient;
use api::identity_service_client::IdentityServiceClient;
use api::protocol_service_client::ProtocolServiceClient;

/// A client identity: the CA that signed the server's certificate, and the client's own
/// certificate and key (as `certs-dev` writes them: `ca.pem`, `cert.pem`, `key.pem`).
#[derive(Clone)]
pub struct Identity {
    ca_pem: Vec<u8>,
    cert_and_key: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Identity")
            .field("has_certificate", &self.cert_and_key.is_some())
            .finish()
    }
}

impl Identity {
    /// Reads `ca.pem`, `cert.pem` and `key.pem` from `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ClientError::Identity { path, source })
        };
        Ok(Self {
            ca_pem: read("ca.pem")?,
            cert_and_key: Some((read("cert.pem")?, read("key.pem")?)),
        })
    }

    /// An identity that trusts `ca_pem` but presents no client certificate (the broker refuses
    /// it; useful to check that it does).
    pub fn anonymous(ca_pem: Vec<u8>) -> Self {
        Self {
            ca_pem,
            cert_and_key: None,
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A local file (identity, document) could not be read.
    #[error("cannot read {path}: {source}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The server URL is not usable.
    #[error("bad server URL {0:?}: {1}")]
    ServerUrl(String, String),
    /// The connection could not be made.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// The broker answered with an error (or refused the TLS handshake).
    #[error("{0}")]
    Rpc(Box<RpcError>),
}

impl From<RpcError> for ClientError {
    fn from(e: RpcError) -> Self {
        ClientError::Rpc(Box::new(e))
    }
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        RpcError::from(s).into()
    }
}

/// An error status from the broker, with its machine-readable details.
#[derive(Debug, Clone)]
pub struct RpcError {
    /// The gRPC code.
    pub code: Code,
    /// The broker's message.
    pub message: String,
    /// The stable reason code (`google.rpc.ErrorInfo.reason`), e.g. `NOT_A_PARTY`.
    pub reason: Option<String>,
    /// The policy rule that refused the call, when one did.
    pub rule: Option<String>,
    /// The offending field, for bad input.
    pub field: Option<String>,
    /// For a logged refusal: the receipt of its Denied record.
    pub receipt: Option<Box<api::Receipt>>,
    /// For a TLS handshake the broker refused: the alert it sent, as RFC 8446 names it
    /// (`unknown_ca`, `certificate_expired`, `certificate_revoked`, `certificate_required`…).
    pub tls_alert: Option<&'static str>,
}

impl From<Status> for RpcError {
    fn from(s: Status) -> Self {
        if let Some(alert) = std::error::Error::source(&s).and_then(tls_refusal::alert_in) {
            return Self::tls(alert);
        }
        let info = s.get_details_error_info();
        let receipt = info
            .as_ref()
            .and_then(|i| i.metadata.get("receipt"))
            .and_then(|b| {
                use base64::Engine;
                use prost::Message;
                let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
                api::Receipt::decode(bytes.as_slice()).ok().map(Box::new)
            });
        let field = s
            .get_details_bad_request()
            .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
        Self {
            code: s.code(),
            message: s.message().to_string(),
            reason: info.as_ref().map(|i| i.reason.clone()),
            rule: info.and_then(|i| i.metadata.get("rule").cloned()),
            field,
            receipt,
            tls_alert: None,
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = code_name(self.code);
        write!(f, "{code}")?;
        match (self.reason.as_deref(), &self.rule) {
            (Some(reason), Some(rule)) => write!(f, " ({reason}, rule {rule})")?,
            (Some(reason), None) if reason != code => write!(f, " ({reason})")?,
            _ => {}
        }
        if self.message.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

impl std::error::Error for RpcError {}

/// The canonical upper-case name of a gRPC code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A connected client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    exchange: ExchangeServiceClient<Channel>,
    identity: IdentityServiceClient<Channel>,
    protocols: ProtocolServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
    admin: AdminServiceClient<Channel>,
}

type Result<T> = std::result::Result<T, ClientError>;

impl Client {
    /// Connects over mutual TLS to `servers`: one URL (e.g. `https://localhost:50051`), or
    /// several comma-separated (brokers on one log), of which the first that answers is used.
    pub async fn connect(servers: &str, identity: &Identity) -> Result<Self> {
        Ok(Self::from_channel(connect_any(servers, identity).await?))
    }

    /// A client over an established channel (see [`endpoint`] to tune one).
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            exchange: ExchangeServiceClient::new(channel.clone())
                .max_decoding_message_size(8 << 20),
            identity: IdentityServiceClient::new(channel.clone()),
            protocols: ProtocolServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel.clone()),
            audit: AuditServiceClient::new(channel).max_decoding_message_size(64 << 20),
        }
    }

    /// Who the broker says the caller is.
    pub async fn who_am_i(&self) -> Result<api::WhoAmIResponse> {
        Ok(self
            .identity
            .clone()
            .who_am_i(api::WhoAmIRequest {})
            .await?
            .into_inner())
    }

    /// Submits an information request. Resubmitting with the same `idempotency_key` returns the
    /// first result.
    pub async fn submit_request(
        &self,
        request: api::InformationRequest,
        idempotency_key: &str,
    ) -> Result<api::SubmitRequestResponse> {
        let message = api::SubmitRequestRequest {
            request: Some(request),
            idempotency_key: idempotency_key.to_string(),
            follows_request_id: String::new(),
        };
        Ok(self
            .exchange
            .clone()
            .submit_request(message)
            .await?
            .into_inner())
    }

    /// One page of the inbox after `after_cursor`.
    pub async fn list_inbox(
        &self,
        after_cursor: u64,
        page_size: u32,
        unacknowledged_only: bool,
    ) -> Result<api::ListInboxResponse> {
        let message = api::ListInboxRequest {
            after_cursor,
            page_size,
            unacknowledged_only,
            ..Default::default()
        };
        Ok(self
            .exchange
            .clone()
            .list_inbox(message)
            .await?
            .into_inner())
    }

    /// Follows the inbox after `after_cursor`: the backlog, then live items.
    pub async fn subscribe_inbox(&self, after_cursor: u64) -> Result<InboxStream> {
        let message = api::SubscribeInboxRequest { after_cursor };
        let inner = self
            .exchange
            .clone()
            .subscribe_inbox(message)
            .await?
            .into_inner();
        Ok(InboxStream { inner })
    }

    /// Acknowledges a request addressed to the caller, or a response to the caller's request.
    pub async fn acknowledge(
        &self,
        request_id: &str,
        kind: api::MessageKind,
    ) -> Result<api::AcknowledgeResponse> {
        let message = api::AcknowledgeRequest {
            request_id: request_id.to_string(),
            kind: kind as i32,
        };
        Ok(self
            .exchange
            .clone()
            .acknowledge(message)
            .await?
            .into_inner())
    }

    /// Answers a request addressed to the caller.
    pub async fn respond(
        &self,
        request_id: &str,
        response: api::InformationResponse,
    ) -> Result<api::RespondResponse> {
        let message = api::RespondRequest {
            request_id: request_id.to_string(),
            response: Some(response),
        };
        Ok(self.exchange.clone().respond(message).await?.into_inner())
    }

    /// Discloses information proactively (on the caller's own initiative).
    pub async fn disclose(
        &self,
        disclosure: api::ProactiveDisclosure,
        idempotency_key: &str,
    ) -> Result<api::DiscloseResponse> {
        let message = api::DiscloseRequest {
            disclosure: Some(disclosure),
            idempotency_key: idempotency_key.to_string(),
        };
        Ok(self.exchange.clone().disclose(message).await?.into_inner())
    }

    /// Registers a protocol version (TOML document) as a draft (administrators).
    pub async fn register_protocol(
        &self,
        document_toml: &str,
    ) -> Result<api::RegisterProtocolResponse> {
        let message = api::RegisterProtocolRequest {
            document_toml: document_toml.to_string(),
        };
        Ok(self
            .protocols
            .clone()
            .register_protocol(message)
            .await?
            .into_inner())
    }

    /// Approves a draft protocol version (administrators other than its registrant).
    pub async fn approve_protocol(
        &self,
        protocol_id: &str,
        version: u32,
        approver_role: &str,
    ) -> Result<api::ApproveProtocolResponse> {
        let message = api::ApproveProtocolRequest {
            protocol_id: protocol_id.to_string(),
            version,
            approver_role: approver_role.to_string(),
        };
        Ok(self
            .protocols
            .clone()
            .approve_protocol(message)
            .await?
            .into_inner())
    }

    /// Suspends, resumes or revokes the version in force (administrators).
    pub async fn change_protocol_state(
        &self,
        protocol_id: &str,
        change: api::ProtocolStateChange,
    ) -> Result<api::ChangeProtocolStateResponse> {
        let message = api::ChangeProtocolStateRequest {
            protocol_id: protocol_id.to_string(),
            change: change as i32,
        };
        Ok(self
            .protocols
            .clone()
            .change_protocol_state(message)
            .await?
            .into_inner())
    }

    /// Runs retention now (administrators): erases the bodies of every exchange whose
    /// protocol's retention period has ended.
    pub async fn run_retention(&self) -> Result<api::RunRetentionResponse> {
        Ok(self
            .admin
            .clone()
            .run_retention(api::RunRetentionRequest {})
            .await?
            .into_inner())
    }

    /// Rotates the audit log's signing key (administrators); the rotation statement.
    pub async fn rotate_log_key(&self) -> Result<api::RotateLogKeyResponse> {
        Ok(self
            .admin
            .clone()
            .rotate_log_key(api::RotateLogKeyRequest {})
            .await?
            .into_inner())
    }

    /// Lists the protocols visible to the caller.
    pub async fn list_protocols(&self) -> Result<api::ListProtocolsResponse> {
        Ok(self
            .protocols
            .clone()
            .list_protocols(api::ListProtocolsRequest {})
            .await?
            .into_inner())
    }

    /// Reads a protocol version (0: the version in force).
    pub async fn get_protocol(
        &self,
        protocol_id: &str,
        version: u32,
    ) -> Result<api::GetProtocolResponse> {
        let message = api::GetProtocolRequest {
            protocol_id: protocol_id.to_string(),
            version,
        };
        Ok(self
            .protocols
            .clone()
            .get_protocol(message)
            .await?
            .into_inner())
    }

    /// The audit log's origin, verifier key and latest checkpoint (auditors).
    pub async fn log_info(&self) -> Result<api::GetLogInfoResponse> {
        Ok(self
            .audit
            .clone()
            .get_log_info(api::GetLogInfoRequest {})
            .await?
            .into_inner())
    }

    /// A tile of the tree by its C2SP tlog-tiles path (`tile/0/000`, `tile/0/001.p/17`), with the
    /// checkpoint it is within (auditors).
    pub async fn tile(&self, path: &str) -> Result<api::GetTileResponse> {
        let message = api::GetTileRequest { path: path.into() };
        Ok(self.audit.clone().get_tile(message).await?.into_inner())
    }

    /// A consistency proof between two tree sizes (0 for the latest) (auditors).
    pub async fn consistency_proof(
        &self,
        first_size: u64,
        second_size: u64,
    ) -> Result<api::GetConsistencyProofResponse> {
        let message = api::GetConsistencyProofRequest {
            first_size,
            second_size,
        };
        Ok(self
            .audit
            .clone()
            .get_consistency_proof(message)
            .await?
            .into_inner())
    }

    /// Raw records by index range, with proofs (auditors).
    pub async fn audit_records(
        &self,
        start_index: u64,
        count: u32,
    ) -> Result<api::AuditRecordsResponse> {
        let message = api::GetRecordsRequest { start_index, count };
        Ok(self.audit.clone().get_records(message).await?.into_inner())
    }

    /// Records matching a filter, with proofs (auditors).
    pub async fn audit_query(
        &self,
        filter: api::AuditFilter,
        after_index: u64,
        page_size: u32,
    ) -> Result<api::AuditRecordsResponse> {
        let message = api::QueryRecordsRequest {
            filter: Some(filter),
            after_index,
            page_size,
        };
        Ok(self
            .audit
            .clone()
            .query_records(message)
            .await?
            .into_inner())
    }

    /// Breach investigation: everything about one subject (auditors).
    pub async fn subject_timeline(
        &self,
        subject: api::SubjectQuery,
    ) -> Result<api::AuditRecordsResponse> {
        let message = api::SubjectTimelineRequest {
            subject: Some(subject),
        };
        Ok(self
            .audit
            .clone()
            .subject_timeline(message)
            .await?
            .into_inner())
    }

    /// A self-contained evidence bundle (auditors).
    pub async fn export_bundle(&self, filter: api::AuditFilter) -> Result<api::EvidenceBundle> {
        let message = api::ExportBundleRequest {
            filter: Some(filter),
        };
        Ok(self
            .audit
            .clone()
            .export_bundle(message)
            .await?
            .into_inner())
    }

    /// Places a legal hold on an exchange or a subject (auditors).
    pub async fn place_legal_hold(
        &self,
        target: api::LegalHoldRequest,
    ) -> Result<api::LegalHoldResponse> {
        Ok(self
            .audit
            .clone()
            .place_legal_hold(target)
            .await?
            .into_inner())
    }

    /// Releases a legal hold (auditors).
    pub async fn release_legal_hold(
        &self,
        target: api::LegalHoldRequest,
    ) -> Result<api::LegalHoldResponse> {
        Ok(self
            .audit
            .clone()
            .release_legal_hold(target)
            .await?
            .into_inner())
    }

    /// The legal holds in place (auditors).
    pub async fn legal_holds(&self) -> Result<api::ListLegalHoldsResponse> {
        Ok(self
            .audit
            .clone()
            .list_legal_holds(api::ListLegalHoldsRequest {})
            .await?
            .into_inner())
    }

    /// Reads a request the caller is a party to, with its response and timeline.
    pub async fn get_request(&self, request_id: &str) -> Result<api::GetRequestResponse> {
        let message = api::GetRequestRequest {
            request_id: request_id.to_string(),
        };
        Ok(self
            .exchange
            .clone()
            .get_request(message)
            .await?
            .into_inner())
    }
}

/// The URLs of a comma-separated list, trimmed, empty ones left out.
pub fn server_list(servers: &str) -> Vec<&str> {
    servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A channel to the first of `servers` (see [`server_list`]) that accepts a mutual-TLS
/// connection. A URL that is not usable fails at once; if none answers, the error of the only
/// one, or every one's reason.
pub async fn connect_any(servers: &str, identity: &Identity) -> Result<Channel> {
    let list = server_list(servers);
    let mut failures = Vec::new();
    for server in &list {
        match connect_channel(server, identity).await {
            Ok(channel) => return Ok(channel),
            Err(e @ ClientError::ServerUrl(..)) => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Err(ClientError::ServerUrl(servers.into(), "no URL".into())),
        1 => Err(failures.remove(0)),
        _ => Err(ClientError::Connect(
            servers.into(),
            failures
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// A mutual-TLS channel to `server` (what [`Client::connect`] uses; also for other services on
/// the same transport, such as the benchmark's echo).
pub async fn connect_channel(server: &str, identity: &Identity) -> Result<Channel> {
    endpoint(server, identity)?
        .connect()
        .await
        .map_err(|e| match tls_refusal::alert_in(&e) {
            Some(alert) => RpcError::tls(alert).into(),
            None => ClientError::Connect(server.to_string(), error_chain(&e)),
        })
}

/// The endpoint [`connect_channel`] connects to: `server` over mutual TLS as `identity`, with
/// `TCP_NODELAY` and a connect timeout (a host that does not answer must not hold up the
/// next one of a list); tune it (windows, timeouts) before connecting.
pub fn endpoint(server: &str, identity: &Identity) -> Result<Endpoint> {
    let bad_url = |why: String| ClientError::ServerUrl(server.to_string(), why);
    let endpoint = Endpoint::from_shared(server.to_string()).map_err(|e| bad_url(e.to_string()))?;
    let uri = endpoint.uri().clone();
    if uri.scheme_str() != Some("https") {
        return Err(bad_url("the broker only speaks TLS: use https://".into()));
    }
    let host = uri
        .host()
        .ok_or_else(|| bad_url("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&identity.ca_pem))
        .domain_name(host);
    if let Some((cert, key)) = &identity.cert_and_key {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    Ok(endpoint
        .tls_config(tls)
        .map_err(|e| bad_url(e.to_string()))?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT))
}

/// Longest a connection to one server may take to be made.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A live inbox subscription.
pub struct InboxStream {
    inner: Streaming<api::SubscribeInboxResponse>,
}

impl InboxStream {
    /// The next item; `None` when the broker closed the stream.
    pub async fn next(&mut self) -> Result<Option<api::InboxItem>> {
        loop {
            match self.inner.message().await? {
                Some(api::SubscribeInboxResponse { item: Some(item) }) => return Ok(Some(item)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
