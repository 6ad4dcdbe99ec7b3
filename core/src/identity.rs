//! Who is calling, as a value: a principal's role and SPIFFE id. The shell reads the id from the
//! client certificate, once per connection; nothing here reads certificates or trusts a field in
//! a message about who is calling.

/// A principal's role, the first path segment of its SPIFFE id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// An agency that requests and discloses information.
    Agency,
    /// An auditor of the log.
    Auditor,
    /// An administrator of the registers.
    Admin,
}

impl Role {
    /// The stable one-byte code used in log records.
    pub fn code(self) -> u8 {
        match self {
            Role::Agency => 1,
            Role::Auditor => 2,
            Role::Admin => 3,
        }
    }

    /// The role with this code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Role::Agency),
            2 => Some(Role::Auditor),
            3 => Some(Role::Admin),
            _ => None,
        }
    }

    /// The SPIFFE path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agency => "agency",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

/// A SPIFFE id of the form `spiffe://<trust domain>/<role>/<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The role segment.
    pub role: Role,
    /// The principal id segment.
    pub id: String,
    /// The whole URI.
    pub uri: String,
}

impl SpiffeId {
    /// Parses `uri`, which must be in `trust_domain` and have exactly a role and an id.
    pub fn parse(uri: &str, trust_domain: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::NotAnInfoshareId(uri.chars().take(200).collect());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let (domain, path) = rest.split_once('/').ok_or_else(bad)?;
        if domain != trust_domain {
            return Err(IdentityError::ForeignTrustDomain(domain.to_string()));
        }
        let (role, id) = path.split_once('/').ok_or_else(bad)?;
        let role = match role {
            "agency" => Role::Agency,
            "auditor" => Role::Auditor,
            "admin" => Role::Admin,
            _ => return Err(bad()),
        };
        if !is_principal_id(id) {
            return Err(bad());
        }
        Ok(Self {
            role,
            id: id.to_string(),
            uri: uri.to_string(),
        })
    }
}

impl std::fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.role.as_str(), self.id)
    }
}

/// Whether `id` is a well-formed principal id: 1-63 of `a-z`, `0-9`, `-`.
pub fn is_principal_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Why a certificate does not name a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No client certificate was presented.
    #[error("no client certificate")]
    NoCertificate,
    /// The certificate could not be parsed.
    #[error("client certificate could not be parsed")]
    Unparseable,
    /// The certificate has no URI SAN, or more than one.
    #[error("client certificate must carry exactly one URI SAN, found {0}")]
    UriSanCount(usize),
    /// The URI SAN is not an infoshare SPIFFE id.
    #[error("URI SAN {0:?} is not spiffe://<trust domain>/<agency|auditor|admin>/<id>")]
    NotAnInfoshareId(String),
    /// The SPIFFE id is in another trust domain.
    #[error("SPIFFE trust domain {0:?} is not this broker's")]
    ForeignTrustDomain(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_infoshare_spiffe_ids() {
        let id = SpiffeId::parse("spiffe://infoshare.dev/agency/police", "infoshare.dev").unwrap();
        assert_eq!(id.role, Role::Agency);
        assert_eq!(id.id, "police");
    }

    #[test]
    fn refuses_other_shapes() {
        for uri in [
            "https://infoshare.dev/agency/police",
            "spiffe://infoshare.dev/agency",
            "spiffe://infoshare.dev/agency/police/extra",
            "spiffe://infoshare.dev/root/police",
            "spiffe://infoshare.dev/agency/Police",
            "spiffe://infoshare.dev/agency/",
        ] {
            assert!(SpiffeId::parse(uri, "infoshare.dev").is_err(), "{uri}");
        }
        assert_eq!(
            SpiffeId::parse("spiffe://evil.example/agency/police", "infoshare.dev"),
            Err(IdentityError::ForeignTrustDomain("evil.example".into()))
        );
    }
}
