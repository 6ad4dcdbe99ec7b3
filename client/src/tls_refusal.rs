//! A client certificate the broker refused in the TLS handshake, said as the TLS alert it sent.
//!
//! TLS 1.3 checks the client's certificate after the client has finished its side of the
//! handshake, so the alert arrives on the client's first read. A call usually sees it as a
//! transport error (and sometimes, when its first write races the server closing, only as a
//! broken pipe); [`handshake_refusal`] asks again on a connection of its own that reads before
//! it writes, so the alert is always seen.

use std::sync::Arc;
use std::time::Duration;

use rustls::AlertDescription as A;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt;

use crate::{Identity, RpcError};

/// The alerts a refused client certificate draws, by their rustls names.
const KNOWN: [A; 10] = [
    A::UnknownCA,
    A::CertificateExpired,
    A::CertificateRevoked,
    A::CertificateRequired,
    A::BadCertificate,
    A::UnsupportedCertificate,
    A::DecryptError,
    A::AccessDenied,
    A::HandshakeFailure,
    A::ProtocolVersion,
];

/// The alert the broker sent, if `e` (or an error it wraps) is a received TLS alert.
pub(crate) fn alert_in(e: &(dyn std::error::Error + 'static)) -> Option<A> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(rustls::Error::AlertReceived(alert)) = err.downcast_ref::<rustls::Error>() {
            return Some(*alert);
        }
        // Between rustls and hyper the error is carried as text inside an io::Error, whose
        // source() skips what it wraps: read the text.
        let text = err.to_string();
        if let Some(name) = text.strip_prefix("received fatal alert: ") {
            return KNOWN.into_iter().find(|a| format!("{a:?}") == name.trim());
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| alert_in(inner))
        {
            return Some(inner);
        }
        current = err.source();
    }
    None
}

/// What the alert means for this client certificate, and its RFC 8446 name.
pub(crate) fn meaning(alert: A) -> (&'static str, &'static str) {
    match alert {
        A::UnknownCA => (
            "the broker does not trust the CA that issued this client certificate",
            "unknown_ca",
        ),
        A::DecryptError => (
            "the broker could not verify this client certificate against its CA (issued by another CA?)",
            "decrypt_error",
        ),
        A::CertificateExpired => (
            "this client certificate has expired (or is not valid yet)",
            "certificate_expired",
        ),
        A::CertificateRevoked => (
            "this client certificate has been revoked",
            "certificate_revoked",
        ),
        A::CertificateRequired => (
            "the broker requires a client certificate and none was presented",
            "certificate_required",
        ),
        A::BadCertificate => (
            "the broker refused this client certificate",
            "bad_certificate",
        ),
        A::UnsupportedCertificate => (
            "the broker refused this client certificate (it must carry the clientAuth usage)",
            "unsupported_certificate",
        ),
        A::ProtocolVersion => ("the broker speaks only TLS 1.3", "protocol_version"),
        A::HandshakeFailure => ("the broker refused the TLS handshake", "handshake_failure"),
        A::AccessDenied => (
            "the broker refused this client certificate",
            "access_denied",
        ),
        _ => ("the broker refused the TLS handshake", "another alert"),
    }
}

/// If the broker at `server` refuses `identity` in the TLS handshake, the refusal (naming the
/// alert); `None` if the handshake is accepted, or the broker cannot be reached to ask.
pub async fn handshake_refusal(server: &str, identity: &Identity) -> Option<RpcError> {
    let uri: tonic::codegen::http::Uri = server.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&identity.ca_pem) {
        roots.add(cert.ok()?).ok()?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .ok()?
    .with_root_certificates(roots);
    let mut config = match &identity.cert_and_key {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key).ok()?)
                .ok()?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(host.to_string()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let asked = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let mut tls = match connector.connect(name, tcp).await {
            Ok(tls) => tls,
            Err(e) => return alert_in(&e),
        };
        let mut byte = [0u8; 1];
        match tls.read(&mut byte).await {
            Err(e) => alert_in(&e),
            Ok(_) => None,
        }
    };
    let alert = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .ok()??;
    Some(RpcError::tls(alert))
}

impl RpcError {
    /// A handshake the broker refused with `alert`, as an error of this client (there is no
    /// gRPC status: the call never reached the broker's services).
    pub(crate) fn tls(alert: A) -> Self {
        let (what, name) = meaning(alert);
        Self {
            code: tonic::Code::Unauthenticated,
            message: format!("{what} (TLS alert {name})"),
            reason: None,
            rule: None,
            field: None,
            receipt: None,
            tls_alert: Some(name),
        }
    }
}
