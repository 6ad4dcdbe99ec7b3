//! The transport between the TLS front door and the services: every bound that holds before a
//! caller is authenticated, so that any certificate the CA ever issued — hostile or not — can
//! take only its share of streams, connections, file descriptors and memory.
//!
//! - [`admission`]: a global and a per-identity cap on connections, and an identity the registry
//!   does not know refused once, at its first stream, on a connection then closed.
//! - [`idle`]: a connection with no open stream is closed after the idle timeout.
//! - [`budget`]: the answers a connection has not taken yet (encoded, not yet written to the
//!   socket) are bounded in bytes; past the budget, its next call waits (and times out).
//! - [`refuse`]: the minimal HTTP/2 exchange that refuses an unregistered identity.
//!
//! HTTP/2 itself (advertised concurrent streams, calls per connection, request deadline,
//! message sizes) is configured where the server is built, from [`TransportConfig`].

pub mod admission;
pub mod budget;
pub mod idle;
pub mod refuse;

use std::time::Duration;

use serde::Deserialize;

/// `[transport]` in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportConfig {
    /// Most connections open at once (TLS handshakes in progress included). Lowered at start to
    /// what the process's open-file limit allows, with headroom for the log and the views.
    pub max_connections: usize,
    /// How long a client may take to complete its TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Most connections one identity (client certificate) may hold.
    pub max_connections_per_identity: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to every client.
    pub max_concurrent_streams: u32,
    /// Calls one connection may have in progress at once; more wait their turn.
    pub max_calls_per_connection: usize,
    /// How long a call may take to arrive and be answered (not counting a stream's items once
    /// it is streaming); a stream whose request never arrives ends at this deadline.
    pub request_timeout_secs: u64,
    /// A connection with no open stream for this long is closed.
    pub idle_timeout_secs: u64,
    /// Bytes of answers one connection may hold encoded but not yet sent.
    pub answer_budget_bytes: usize,
    /// Operator log lines of refused connections are aggregated over this interval, per remote
    /// address or identity (the audit log still has every refused call).
    pub refusal_log_interval_secs: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            handshake_timeout_secs: 10,
            max_connections_per_identity: 64,
            max_concurrent_streams: 128,
            max_calls_per_connection: 32,
            request_timeout_secs: 30,
            idle_timeout_secs: 300,
            answer_budget_bytes: 64 << 20,
            refusal_log_interval_secs: 60,
        }
    }
}

impl TransportConfig {
    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// The aggregation of refused connections' log lines.
    pub fn refusal_log(&self) -> std::sync::Arc<crate::log_throttle::Throttle> {
        std::sync::Arc::new(crate::log_throttle::Throttle::new(Duration::from_secs(
            self.refusal_log_interval_secs.max(1),
        )))
    }

    /// How long a connection has to finish its TLS handshake.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs.max(1))
    }

    /// How long a connection may carry no call before it is closed.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

/// Largest gRPC message the broker sends (a page stops before it).
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// File descriptors kept free of connections: the log and body segments, the views, the
/// checkpoint, the listener, the telemetry exporters.
const FD_HEADROOM: u64 = 256;

/// Raises the process's soft open-file limit to its hard limit, and returns how many
/// connections that leaves room for (at most `wanted`), keeping `FD_HEADROOM` descriptors free.
pub fn raise_open_file_limit(wanted: usize) -> usize {
    let Some(limit) = crate::process::raise_open_file_limit() else {
        return wanted;
    };
    let room = limit.saturating_sub(FD_HEADROOM);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}
