//! The agency registry: who may connect, in which role, with which legal kinds and clearance.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::{AgencyKind, Authority, Classification, Sector};
use crate::identity::{Role, SpiffeId, is_principal_id};

/// A registered agency.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// Registered id, the last segment of its SPIFFE id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Legal kinds (an agency can be several).
    pub kinds: Vec<AgencyKind>,
    /// Government or non-government.
    pub sector: Sector,
    /// The highest classification it may receive.
    pub clearance: Classification,
}

impl Agency {
    /// Whether the agency is of the given legal kind.
    pub fn is(&self, kind: AgencyKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether the agency is of a kind that may use `authority` (s66C(1) Oranga Tamariki Act,
    /// s20 Family Violence Act).
    pub fn may_use(&self, authority: Authority) -> bool {
        authority.eligible_kinds().iter().any(|k| self.is(*k))
    }
}

/// A registered auditor or administrator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    /// Registered id.
    pub id: String,
    /// Display name.
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    agency: Vec<Agency>,
    #[serde(default)]
    auditor: Vec<Officer>,
    #[serde(default)]
    admin: Vec<Officer>,
}

/// A principal the registry knows: its role, id and display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Agency, auditor or administrator: what it may call.
    pub role: Role,
    /// The registered id.
    pub id: String,
    /// The display name.
    pub name: String,
}

/// The loaded registry.
#[derive(Debug, Default)]
pub struct Registry {
    agencies: HashMap<String, Agency>,
    auditors: HashMap<String, Officer>,
    admins: HashMap<String, Officer>,
}

/// Why a registry file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read.
    #[error("registry {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid registry TOML.
    #[error("registry: {0}")]
    Parse(String),
    /// A semantic problem.
    #[error("registry: {0}")]
    Invalid(String),
}

impl Registry {
    /// Parses and checks registry TOML.
    pub fn from_toml(text: &str) -> Result<Self, RegistryError> {
        let file: RegistryFile =
            toml::from_str(text).map_err(|e| RegistryError::Parse(e.to_string()))?;
        let mut reg = Registry::default();
        for a in file.agency {
            check_id("agency", &a.id)?;
            if a.kinds.is_empty() {
                return Err(RegistryError::Invalid(format!(
                    "agency {:?} has no legal kinds",
                    a.id
                )));
            }
            if reg.agencies.insert(a.id.clone(), a.clone()).is_some() {
                return Err(RegistryError::Invalid(format!("agency {:?} twice", a.id)));
            }
        }
        for (role, list, map) in [
            ("auditor", file.auditor, &mut reg.auditors),
            ("admin", file.admin, &mut reg.admins),
        ] {
            for o in list {
                check_id(role, &o.id)?;
                if map.insert(o.id.clone(), o.clone()).is_some() {
                    return Err(RegistryError::Invalid(format!("{role} {:?} twice", o.id)));
                }
            }
        }
        Ok(reg)
    }

    /// The agency with this id.
    pub fn agency(&self, id: &str) -> Option<&Agency> {
        self.agencies.get(id)
    }

    /// The registered principal a SPIFFE id names, if any.
    pub fn principal(&self, spiffe: &SpiffeId) -> Option<Principal> {
        let name = match spiffe.role {
            Role::Agency => self.agencies.get(&spiffe.id).map(|a| &a.name),
            Role::Auditor => self.auditors.get(&spiffe.id).map(|o| &o.name),
            Role::Admin => self.admins.get(&spiffe.id).map(|o| &o.name),
        }?;
        Some(Principal {
            role: spiffe.role,
            id: spiffe.id.clone(),
            name: name.clone(),
        })
    }

    /// The registered agencies' ids.
    pub fn agency_ids(&self) -> impl Iterator<Item = &str> {
        self.agencies.keys().map(String::as_str)
    }

    /// Number of agencies.
    pub fn agency_count(&self) -> usize {
        self.agencies.len()
    }
}

fn check_id(role: &str, id: &str) -> Result<(), RegistryError> {
    if is_principal_id(id) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{role} id {id:?} must be 1-63 characters of a-z, 0-9 and '-'"
        )))
    }
}

/// The sample registry shipped for development (`--dev`) and tests.
pub const SAMPLE_REGISTRY: &str = include_str!("../samples/sample-registry.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_registry_loads_with_every_principal() {
        let reg = Registry::from_toml(SAMPLE_REGISTRY).unwrap();
        assert_eq!(reg.agency_count(), 12);
        let police = reg.agency("police").unwrap();
        assert!(police.is(AgencyKind::ChildWelfareAndProtection));
        assert!(police.is(AgencyKind::FamilyViolenceAgency));
        let ngo = reg.agency("safe-homes-trust").unwrap();
        assert_eq!(ngo.sector, Sector::NonGovernment);
        assert!(!ngo.is(AgencyKind::ChildWelfareAndProtection));
        let auditor = SpiffeId {
            role: Role::Auditor,
            id: "privacy-audit".into(),
            uri: "spiffe://infoshare.dev/auditor/privacy-audit".into(),
        };
        assert!(reg.principal(&auditor).is_some());
    }

    #[test]
    fn refuses_unknown_kinds_and_duplicates() {
        let bad_kind = r#"
            [[agency]]
            id = "x"
            name = "X"
            kinds = ["wizard"]
            sector = "government"
            clearance = "SECRET"
        "#;
        let err = Registry::from_toml(bad_kind).unwrap_err().to_string();
        assert!(err.contains("unknown AgencyKind"), "{err}");
        let dup = r#"
            [[admin]]
            id = "a"
            name = "A"
            [[admin]]
            id = "a"
            name = "B"
        "#;
        assert!(Registry::from_toml(dup).is_err());
    }
}
