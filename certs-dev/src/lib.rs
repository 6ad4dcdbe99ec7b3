//! Development PKI for infoshare.
//!
//! One call makes a root CA, a server certificate for `localhost`, `127.0.0.1` and `::1`, and one
//! client certificate per principal, each principal named by a SPIFFE URI SAN
//! (`spiffe://infoshare.dev/<role>/<id>`). The layout under the output directory is:
//!
//! ```text
//! ca/ca.pem  ca/ca.key.pem              the root CA (keep ca.key.pem private)
//! server/{ca.pem,cert.pem,key.pem}      the broker's identity
//! <role>/<id>/{ca.pem,cert.pem,key.pem} one directory per principal: pass it to `infoshare --identity`
//! ```
//!
//! Private keys are written with mode 0600. Running it again keeps every existing key and
//! certificate unless `force` is set, so it is safe to run on each start.
//!
//! This is for development and tests only: production certificates come from the agencies' own
//! PKI.

#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
pub use time::Duration;
use time::OffsetDateTime;

/// The SPIFFE trust domain of development identities.
pub const TRUST_DOMAIN: &str = "infoshare.dev";

/// The role part of a SPIFFE id, which is also the directory a principal's files go in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An agency that requests and discloses information.
    Agency,
    /// An auditor of the log.
    Auditor,
    /// An administrator of the registers.
    Admin,
}

impl Role {
    /// The role's path segment, as used in the SPIFFE id.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agency => "agency",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

/// A principal to make a client certificate for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Agency, auditor or admin: the first path segment of its SPIFFE id.
    pub role: Role,
    /// Its registered id.
    pub id: String,
}

impl Principal {
    /// A principal with the given role and id.
    pub fn new(role: Role, id: impl Into<String>) -> Self {
        Self {
            role,
            id: id.into(),
        }
    }

    /// `spiffe://infoshare.dev/<role>/<id>`.
    pub fn spiffe_id(&self) -> String {
        format!("spiffe://{TRUST_DOMAIN}/{}/{}", self.role.as_str(), self.id)
    }
}

/// What can go wrong making the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// rcgen refused to make or parse something.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The registry file could not be read for principal ids.
    #[error("registry {path}: {message}")]
    Registry {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Leaf keys exist but the CA key does not: making a new CA would silently orphan them.
    #[error(
        "{0} has client or server keys but no CA key: refusing to make a new CA over them (use --force to replace everything)"
    )]
    OrphanedLeaves(PathBuf),
    /// A principal id that cannot be a path segment or SPIFFE path.
    #[error("principal id {0:?} must be 1-63 characters of a-z, 0-9 and '-'")]
    BadId(String),
}

/// How long certificates are valid, relative to now.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// Start of validity, as an offset from now (negative: in the past).
    pub not_before: Duration,
    /// End of validity, as an offset from now.
    pub not_after: Duration,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            not_before: Duration::hours(-1),
            not_after: Duration::days(365),
        }
    }
}

/// What [`ensure`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Identities kept as they were.
    pub kept: Vec<PathBuf>,
}

/// Makes whatever of the PKI is missing under `out`: the CA, the server identity and one identity
/// per principal. With `force`, replaces everything.
pub fn ensure(out: &Path, principals: &[Principal], force: bool) -> Result<Report, PkiError> {
    for p in principals {
        check_id(&p.id)?;
    }
    let mut report = Report::default();
    let ca_dir = out.join("ca");
    let ca_key_path = ca_dir.join("ca.key.pem");
    let ca_cert_path = ca_dir.join("ca.pem");
    let (ca_key, ca_pem) = if ca_key_path.exists() && ca_cert_path.exists() && !force {
        report.kept.push(ca_dir.clone());
        (
            KeyPair::from_pem(&read(&ca_key_path)?)?,
            read(&ca_cert_path)?,
        )
    } else {
        if !force && has_leaf_keys(out) {
            return Err(PkiError::OrphanedLeaves(out.to_path_buf()));
        }
        let key = KeyPair::generate()?;
        let cert = ca_params(Validity {
            not_before: Duration::hours(-1),
            not_after: Duration::days(3650),
        })
        .self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        write_public(&ca_cert_path, &cert.pem())?;
        report
            .written
            .extend([ca_key_path.clone(), ca_cert_path.clone()]);
        (key, cert.pem())
    };
    // The issuer is rebuilt from the same fixed parameters and the CA key, so a CA made on an
    // earlier run issues certificates that chain to the same certificate.
    let issuer = Issuer::new(ca_params(Validity::default()), ca_key);
    let fresh = force || !report.written.is_empty();

    let server_dir = out.join("server");
    issue_into(
        &server_dir,
        &issuer,
        &ca_pem,
        server_params(Validity::default())?,
        fresh,
        &mut report,
    )?;
    for p in principals {
        let dir = identity_dir(out, p);
        issue_into(
            &dir,
            &issuer,
            &ca_pem,
            client_params(p, Validity::default())?,
            fresh,
            &mut report,
        )?;
    }
    Ok(report)
}

/// Issues (always anew) a client identity for `principal` signed by the CA under `out`, with the
/// given validity, into `dest`. For tests that need unusual certificates (e.g. expired).
pub fn issue_client(
    out: &Path,
    principal: &Principal,
    validity: Validity,
    dest: &Path,
) -> Result<(), PkiError> {
    check_id(&principal.id)?;
    issue_client_with(out, dest, client_params(principal, validity)?)
}

/// Issues a client identity with `params`, signed by the CA under `out`, into `dest`.
fn issue_client_with(out: &Path, dest: &Path, params: CertificateParams) -> Result<(), PkiError> {
    let ca_key = KeyPair::from_pem(&read(&out.join("ca/ca.key.pem"))?)?;
    let ca_pem = read(&out.join("ca/ca.pem"))?;
    let issuer = Issuer::new(ca_params(Validity::default()), ca_key);
    issue_into(dest, &issuer, &ca_pem, params, true, &mut Report::default())
}

/// Issues a client identity for `principal` with no extended key usage at all (webpki accepts
/// such a certificate for any purpose; the broker must not). For tests.
pub fn issue_client_without_eku(
    out: &Path,
    principal: &Principal,
    dest: &Path,
) -> Result<(), PkiError> {
    check_id(&principal.id)?;
    let mut params = client_params(principal, Validity::default())?;
    params.extended_key_usages.clear();
    issue_client_with(out, dest, params)
}

/// Writes a CRL signed by the CA under `out` to `dest`, revoking the certificates in the given
/// PEM files (none: an empty CRL). Valid from an hour ago for `valid_for`.
pub fn write_crl(
    out: &Path,
    revoked: &[PathBuf],
    dest: &Path,
    valid_for: Duration,
) -> Result<(), PkiError> {
    let ca_key = KeyPair::from_pem(&read(&out.join("ca/ca.key.pem"))?)?;
    let issuer = Issuer::new(ca_params(Validity::default()), ca_key);
    let now = OffsetDateTime::now_utc();
    let mut revoked_certs = Vec::new();
    for path in revoked {
        let bad = |message: String| PkiError::Registry {
            path: path.clone(),
            message,
        };
        let pem = read(path)?;
        let (_, block) =
            x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let cert = block.parse_x509().map_err(|e| bad(e.to_string()))?;
        revoked_certs.push(rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(cert.tbs_certificate.raw_serial()),
            revocation_time: now - Duration::minutes(1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        });
    }
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + valid_for,
        crl_number: rcgen::SerialNumber::from_slice(&now.unix_timestamp().to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    write_public(dest, &params.signed_by(&issuer)?.pem()?)
}

/// The directory holding a principal's `ca.pem`, `cert.pem` and `key.pem`.
pub fn identity_dir(out: &Path, principal: &Principal) -> PathBuf {
    out.join(principal.role.as_str()).join(&principal.id)
}

/// Reads the principal ids from a registry TOML file (`[[agency]]`, `[[auditor]]` and `[[admin]]`
/// tables with an `id`); other keys are ignored.
pub fn principals_from_registry(path: &Path) -> Result<Vec<Principal>, PkiError> {
    principals_from_registry_str(&read(path)?).map_err(|message| PkiError::Registry {
        path: path.to_path_buf(),
        message,
    })
}

/// As [`principals_from_registry`], from the file's text.
pub fn principals_from_registry_str(text: &str) -> Result<Vec<Principal>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        agency: Vec<Entry>,
        #[serde(default)]
        auditor: Vec<Entry>,
        #[serde(default)]
        admin: Vec<Entry>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let tagged = |role: Role, v: Vec<Entry>| {
        v.into_iter()
            .map(move |e| Principal::new(role, e.id))
            .collect::<Vec<_>>()
    };
    let mut all = tagged(Role::Agency, file.agency);
    all.extend(tagged(Role::Auditor, file.auditor));
    all.extend(tagged(Role::Admin, file.admin));
    Ok(all)
}

fn check_id(id: &str) -> Result<(), PkiError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadId(id.to_string()))
    }
}

fn ca_params(validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "infoshare development root CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "infoshare (development only)");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, validity);
    params
}

fn server_params(validity: Validity) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("literal")));
    params
        .subject_alt_names
        .push(SanType::IpAddress("::1".parse().expect("literal")));
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "infoshare broker (development)");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    Ok(params)
}

fn client_params(p: &Principal, validity: Validity) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(p.spiffe_id().try_into()?)];
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{} {}", p.role.as_str(), p.id));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now + validity.not_before;
    params.not_after = now + validity.not_after;
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`, keeping an existing key (and its
/// certificate) unless `replace`.
fn issue_into(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    ca_pem: &str,
    params: CertificateParams,
    replace: bool,
    report: &mut Report,
) -> Result<(), PkiError> {
    let key_path = dir.join("key.pem");
    let cert_path = dir.join("cert.pem");
    let ca_path = dir.join("ca.pem");
    if !replace && key_path.exists() && cert_path.exists() && ca_path.exists() {
        report.kept.push(dir.to_path_buf());
        return Ok(());
    }
    let key = if !replace && key_path.exists() {
        KeyPair::from_pem(&read(&key_path)?)?
    } else {
        let key = KeyPair::generate()?;
        write_private(&key_path, &key.serialize_pem())?;
        report.written.push(key_path);
        key
    };
    let cert = params.signed_by(&key, issuer)?;
    write_public(&cert_path, &cert.pem())?;
    write_public(&ca_path, ca_pem)?;
    report.written.extend([cert_path, ca_path]);
    Ok(())
}

fn has_leaf_keys(out: &Path) -> bool {
    let Ok(roles) = fs::read_dir(out) else {
        return false;
    };
    roles.flatten().any(|role| {
        role.path().join("key.pem").exists()
            || fs::read_dir(role.path())
                .map(|ids| ids.flatten().any(|id| id.path().join("key.pem").exists()))
                .unwrap_or(false)
    })
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_atomically(path, contents, 0o644)
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_atomically(path, contents, 0o600)
}

/// Writes through a temporary file and a rename, so a reader never sees half a key.
fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn principals() -> Vec<Principal> {
        vec![
            Principal::new(Role::Agency, "police"),
            Principal::new(Role::Auditor, "privacy-audit"),
        ]
    }

    #[test]
    fn makes_the_layout_with_private_keys_0600() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &principals(), false).unwrap();
        for sub in ["ca/ca.key.pem", "server/key.pem", "agency/police/key.pem"] {
            let mode = fs::metadata(dir.path().join(sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{sub}");
        }
        let cert = fs::read_to_string(dir.path().join("auditor/privacy-audit/cert.pem")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn second_run_keeps_keys_and_force_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &principals(), false).unwrap();
        let key = dir.path().join("agency/police/key.pem");
        let before = fs::read_to_string(&key).unwrap();
        let report = ensure(dir.path(), &principals(), false).unwrap();
        assert!(report.written.is_empty(), "{:?}", report.written);
        assert_eq!(before, fs::read_to_string(&key).unwrap());
        ensure(dir.path(), &principals(), true).unwrap();
        assert_ne!(before, fs::read_to_string(&key).unwrap());
    }

    #[test]
    fn refuses_a_new_ca_over_existing_leaf_keys() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &principals(), false).unwrap();
        fs::remove_file(dir.path().join("ca/ca.key.pem")).unwrap();
        let err = ensure(dir.path(), &principals(), false).unwrap_err();
        assert!(matches!(err, PkiError::OrphanedLeaves(_)), "{err}");
    }

    #[test]
    fn rejects_ids_that_are_not_path_safe() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure(dir.path(), &[Principal::new(Role::Agency, "../x")], false).unwrap_err();
        assert!(matches!(err, PkiError::BadId(_)));
    }

    #[test]
    fn reads_principals_from_a_registry() {
        let text = r#"
            [[agency]]
            id = "police"
            name = "NZ Police"
            [[admin]]
            id = "root"
        "#;
        let got = principals_from_registry_str(text).unwrap();
        assert_eq!(
            got,
            vec![
                Principal::new(Role::Agency, "police"),
                Principal::new(Role::Admin, "root")
            ]
        );
    }
}
