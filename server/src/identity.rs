//! Who is calling: the SPIFFE id in a client certificate's URI SAN ([`spiffe_id_from_cert`]), and
//! the principal it names (the values are `infoshare_core::identity`'s).
//!
//! Identity enters the broker here, once per connection; nothing downstream reads certificates
//! or trusts a field in a message about who is calling.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use infoshare_core::identity::*;

/// Reads the SPIFFE id from a DER client certificate's single URI SAN.
pub fn spiffe_id_from_cert(der: &[u8], trust_domain: &str) -> Result<SpiffeId, IdentityError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::Unparseable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparseable)?;
    let uris: Vec<&str> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [uri] => SpiffeId::parse(uri, trust_domain),
        other => Err(IdentityError::UriSanCount(other.len())),
    }
}
