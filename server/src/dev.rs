//! The `--dev` bootstrap (feature `dev`): the development PKI under `certs-dev/out` (made if
//! missing), the sample registry, and the example protocols registered and approved. A production
//! build leaves it out, and with it `infoshare-certs-dev` and rcgen.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::broker::Broker;
use crate::config::{Config, ConfigError, RegistryFiles, Retention, TlsFiles};
use crate::server::{Prepared, StartError, start_err};

impl Config {
    /// The `--dev` configuration: the development PKI under `certs-dev/out` (made if missing),
    /// the sample registry (written to `<data>/sample-registry.toml`), 127.0.0.1:50051 and
    /// `./data`, all relative to the current directory.
    pub fn dev(data_dir: &Path, listen: SocketAddr) -> Result<Self, ConfigError> {
        let pki = PathBuf::from("certs-dev/out");
        let principals =
            infoshare_certs_dev::principals_from_registry_str(crate::registry::SAMPLE_REGISTRY)
                .map_err(|message| ConfigError::Parse {
                    path: "sample registry".into(),
                    message,
                })?;
        infoshare_certs_dev::ensure(&pki, &principals, false)
            .map_err(|e| ConfigError::Dev(e.to_string()))?;
        let registry = data_dir.join("sample-registry.toml");
        let io = |source| ConfigError::Io {
            path: registry.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        std::fs::write(&registry, crate::registry::SAMPLE_REGISTRY).map_err(io)?;
        Ok(Self {
            listen,
            data_dir: data_dir.to_path_buf(),
            keys_dir: None,
            trust_domain: crate::config::default_trust_domain(),
            log_origin: crate::config::default_log_origin(),
            tls: TlsFiles {
                ca: pki.join("ca/ca.pem"),
                cert: pki.join("server/cert.pem"),
                key: pki.join("server/key.pem"),
                crl: Vec::new(),
            },
            registry: RegistryFiles { agencies: registry },
            limits: crate::limits::Limits::default(),
            retention: Retention::default(),
            transport: crate::transport::TransportConfig::default(),
            ledger: crate::config::LedgerTuning::default(),
            storage: crate::config::Storage::default(),
            calendar: crate::config::CalendarFiles::default(),
            deadlines: crate::config::Deadlines::default(),
        })
    }
}

/// For `--dev`: when the protocol register is empty, registers the example protocols as the
/// development administrator `registry-admin` and approves them as `privacy-officer`, each acting
/// with its own development certificate (so the log names who did what, as for any other call).
pub async fn bootstrap_dev_protocols(prepared: &Prepared, pki: &Path) -> Result<(), StartError> {
    let broker = prepared.broker();
    if !broker.ledger().protocols().is_empty() {
        return Ok(());
    }
    let admin = dev_caller(broker, pki, "registry-admin")?;
    let approver = dev_caller(broker, pki, "privacy-officer")?;
    for document in crate::protocol::model::EXAMPLES {
        let registered = broker
            .register_protocol(&admin, document)
            .await
            .map_err(|e| start_err!("dev protocols", e))?;
        let (id, version) = (registered.protocol_id, registered.version.unwrap_or(1));
        let approve = infoshare_proto::v1::ApproveProtocolRequest {
            protocol_id: id.clone(),
            version,
            approver_role: "Chief Privacy Officer (development)".into(),
        };
        broker
            .approve_protocol(&approver, &approve)
            .await
            .map_err(|e| start_err!("dev protocols", e))?;
        tracing::info!(protocol = %id, version, "example protocol registered and approved");
    }
    Ok(())
}

fn dev_caller(
    broker: &Broker,
    pki: &Path,
    admin: &str,
) -> Result<crate::broker::Caller, StartError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path = pki.join("admin").join(admin).join("cert.pem");
    let der = CertificateDer::from_pem_file(&path)
        .map_err(|e| start_err!("dev protocols", format!("{}: {e}", path.display())))?;
    let peer = crate::tls::PeerInfo {
        remote: ([127, 0, 0, 1], 0).into(),
        spiffe: crate::identity::spiffe_id_from_cert(&der, infoshare_certs_dev::TRUST_DOMAIN),
        cert_sha256: crate::crypto::sha256(&der),
        connection: None,
    };
    broker
        .authenticate(Some(&peer))
        .map_err(|e| start_err!("dev protocols", e))
}
