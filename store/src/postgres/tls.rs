//! TLS to the database, with rustls: TLS 1.3 only, the server's certificate checked against the
//! configured CA bundle and the URL's host (what libpq calls `verify-full`). Without a CA the
//! connection is plaintext, for a database on a local socket or a private network; a URL that
//! asks for TLS without one is refused rather than given TLS that checks nothing.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;

/// What every connection of the engine is made with.
pub(crate) type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `ca` (a PEM bundle), and the mode `config` is set to: TLS required with a
/// CA, none without.
pub(crate) fn configure(
    config: &mut tokio_postgres::Config,
    ca: Option<&Path>,
) -> Result<Tls, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("storage ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("storage ca {}: no certificate", path.display()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("storage ca {}: {e}", path.display()))?;
            }
            config.ssl_mode(SslMode::Require);
        }
        None if config.get_ssl_mode() == SslMode::Require => {
            return Err(
                "storage url: sslmode=require needs the database's CA bundle (storage ca)".into(),
            );
        }
        None => {
            config.ssl_mode(SslMode::Disable);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("storage TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}
