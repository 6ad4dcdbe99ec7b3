//! The TLS front door: TLS 1.3 only, a client certificate required and verified against the
//! configured CA, and the caller's SPIFFE id read from it once per connection.
//!
//! tonic's own TLS acceptor cannot restrict versions or expose the verified peer in the way we
//! need, so connections are accepted here with tokio-rustls and handed to tonic through
//! `serve_with_incoming`, each carrying a [`PeerInfo`] that handlers read from the request
//! extensions.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::crypto::{Digest32, sha256};
use crate::identity::{IdentityError, SpiffeId, spiffe_id_from_cert};

/// How long a client may take to complete the TLS handshake, unless configured otherwise.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn pem_err(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |e| TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(path))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            message: "no certificates in file".into(),
        });
    }
    Ok(certs)
}

/// The TLS configuration in force, swapped whole on reload.
pub type SharedTlsConfig = Arc<std::sync::RwLock<Arc<ServerConfig>>>;

/// Builds the server's rustls configuration: TLS 1.3 only, client certificates required and
/// checked against the CA bundle and the CRLs.
pub fn server_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    crls: &[std::path::PathBuf],
) -> Result<Arc<ServerConfig>, TlsError> {
    use rustls::pki_types::CertificateRevocationListDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| TlsError::Rustls(format!("CA {}: {e}", ca.display())))?;
    }
    let mut revoked = Vec::new();
    for path in crls {
        for crl in CertificateRevocationListDer::pem_file_iter(path).map_err(pem_err(path))? {
            revoked.push(crl.map_err(pem_err(path))?);
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(revoked)
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let verifier = Arc::new(RequireClientAuthUsage(verifier));
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The CA's verifier, and one more rule: the certificate must carry the clientAuth extended key
/// usage. webpki refuses a certificate whose EKU names other purposes, but accepts one with no
/// EKU extension at all; a broker certificate for a server or a code-signing key must not log in.
#[derive(Debug)]
struct RequireClientAuthUsage(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl rustls::server::danger::ClientCertVerifier for RequireClientAuthUsage {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        let client_auth = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .ok()
            .and_then(|(_, cert)| {
                cert.extended_key_usage()
                    .ok()
                    .flatten()
                    .map(|e| e.value.client_auth)
            })
            .unwrap_or(false);
        if !client_auth {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What the broker knows about the peer of a connection.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The SPIFFE id of its verified client certificate, or why there is none.
    pub spiffe: Result<SpiffeId, IdentityError>,
    /// SHA-256 of its client certificate (all zero when there is none).
    pub cert_sha256: Digest32,
    /// The connection's shared state (open streams, answer budget); none for in-process calls.
    pub connection: Option<Arc<crate::transport::idle::ConnState>>,
}

/// A TLS connection with its peer information, its places under the connection caps (held for
/// its life) and its idle clock.
pub struct TlsConnection {
    inner: TlsStream<TcpStream>,
    peer: PeerInfo,
    idle: crate::transport::idle::IdleClock,
    _slots: (
        crate::transport::admission::Slot,
        crate::transport::admission::IdentitySlot,
    ),
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        // Idle past its timeout with no open stream: end of input, so HTTP/2 closes it.
        if self.idle.expired(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How connections are admitted and kept.
#[derive(Clone)]
pub struct Front {
    /// The caps and the registry check.
    pub admission: Arc<crate::transport::admission::Admission>,
    /// How long a client may take to complete its TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a connection may stay open with no stream.
    pub idle_timeout: Duration,
    /// Each connection's answer budget, in bytes.
    pub answer_budget_bytes: usize,
    /// Aggregates the operator lines of refused connections: one per remote address (or
    /// identity) per interval, with the count of those not logged since.
    pub refusals: Arc<crate::log_throttle::Throttle>,
}

/// Accepts TCP connections on `listener` — each under the global cap, or closed at once — and
/// completes TLS handshakes concurrently (each bounded by the handshake timeout), yielding
/// finished connections of registered identities under their per-identity cap. A failed
/// handshake is logged (aggregated) and dropped; an unregistered identity is refused at its
/// first stream ([`crate::transport::refuse`]); neither reaches tonic.
pub fn incoming(
    listener: TcpListener,
    config: SharedTlsConfig,
    trust_domain: String,
    front: Front,
) -> ReceiverStream<Result<TlsConnection, std::io::Error>> {
    let (tx, rx) = mpsc::channel(128);
    let trust_domain: Arc<str> = trust_domain.into();
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = front.admission.connection() else {
                if let Some(suppressed) = front.refusals.admit("(connection cap)") {
                    tracing::warn!(%remote, suppressed, "connection cap reached; connection closed");
                }
                continue;
            };
            // Without it every small gRPC frame waits on Nagle against delayed ACK (~40 ms).
            let _ = tcp.set_nodelay(true);
            // The configuration current at accept time: a reload (new certificate, CA bundle or
            // CRL) applies to every connection made after it.
            let acceptor =
                TlsAcceptor::from(config.read().unwrap_or_else(|e| e.into_inner()).clone());
            let tx = tx.clone();
            let trust_domain = trust_domain.clone();
            let front = front.clone();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(
                    front.handshake_timeout,
                    acceptor.accept(tcp),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        if let Some(suppressed) = front.refusals.admit(&remote.ip().to_string()) {
                            tracing::info!(%remote, error = %e, suppressed, "TLS handshake refused");
                        }
                        return;
                    }
                    Err(_) => {
                        if let Some(suppressed) = front.refusals.admit(&remote.ip().to_string()) {
                            tracing::info!(%remote, suppressed, "TLS handshake timed out");
                        }
                        return;
                    }
                };
                let leaf = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref().to_vec());
                let mut peer = match leaf {
                    Some(der) => PeerInfo {
                        remote,
                        spiffe: spiffe_id_from_cert(&der, &trust_domain),
                        cert_sha256: sha256(&der),
                        connection: None,
                    },
                    None => PeerInfo {
                        remote,
                        spiffe: Err(IdentityError::NoCertificate),
                        cert_sha256: [0; 32],
                        connection: None,
                    },
                };
                let identity = match &peer.spiffe {
                    Ok(id) => id.uri.clone(),
                    Err(_) => hex::encode(peer.cert_sha256),
                };
                let Some(identity_slot) = front.admission.identity(&identity) else {
                    if let Some(suppressed) = front.refusals.admit(&identity) {
                        tracing::warn!(%remote, identity, suppressed, "per-identity connection cap reached; connection closed");
                    }
                    return;
                };
                if let Err(status) = front.admission.check(&peer) {
                    if let Some(suppressed) = front.refusals.admit(&identity) {
                        tracing::info!(%remote, identity, suppressed, reason = status.message(), "unregistered identity refused");
                    }
                    crate::transport::refuse::refuse(stream, status).await;
                    drop((slot, identity_slot));
                    return;
                }
                let state = crate::transport::idle::ConnState::new(front.answer_budget_bytes);
                peer.connection = Some(state.clone());
                let _ = tx
                    .send(Ok(TlsConnection {
                        inner: stream,
                        peer,
                        idle: crate::transport::idle::IdleClock::new(state, front.idle_timeout),
                        _slots: (slot, identity_slot),
                    }))
                    .await;
            });
        }
    });
    ReceiverStream::new(rx)
}
