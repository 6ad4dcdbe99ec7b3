//! Parsing of the CLI's coded arguments. Names are case-insensitive and accept `-`, `_` or
//! spaces between words (`in-confidence`, `IN_CONFIDENCE`).

use crate::api;

fn norm(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace(['-', ' '], "_")
}

fn one_of<T: Copy>(what: &str, s: &str, table: &[(&str, T)]) -> Result<T, String> {
    let n = norm(s);
    table
        .iter()
        .find(|(name, _)| norm(name) == n)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!("unknown {what} {s:?}: expected one of {}", names.join(", "))
        })
}

pub(super) fn authority(s: &str) -> Result<api::LegalAuthority, String> {
    one_of(
        "authority",
        s,
        &[
            ("s66c", api::LegalAuthority::OtaS66c),
            ("s20", api::LegalAuthority::FvaS20),
        ],
    )
}

pub(super) fn classification(s: &str) -> Result<api::Classification, String> {
    use api::Classification as C;
    one_of(
        "classification",
        s,
        &[
            ("unclassified", C::Unclassified),
            ("in-confidence", C::InConfidence),
            ("sensitive", C::Sensitive),
            ("restricted", C::Restricted),
            ("confidential", C::Confidential),
            ("secret", C::Secret),
            ("top-secret", C::TopSecret),
        ],
    )
}

pub(super) fn urgency(s: &str) -> Result<api::Urgency, String> {
    use api::Urgency as U;
    one_of(
        "urgency",
        s,
        &[
            ("routine", U::Routine),
            ("priority", U::Priority),
            ("immediate-safety", U::ImmediateSafety),
        ],
    )
}

pub(super) fn status(s: &str) -> Result<api::RequestStatus, String> {
    use api::RequestStatus as S;
    one_of(
        "status",
        s,
        &[
            ("submitted", S::Submitted),
            ("acknowledged", S::Acknowledged),
            ("responded", S::Responded),
            ("completed", S::Completed),
            ("withdrawn", S::Withdrawn),
            ("expired", S::Expired),
        ],
    )
}

pub(super) fn decision(s: &str) -> Result<api::Decision, String> {
    use api::Decision as D;
    one_of(
        "decision",
        s,
        &[
            ("disclose", D::Disclose),
            ("partial", D::PartialDisclose),
            ("decline", D::Decline),
        ],
    )
}

pub(super) fn ground(s: &str) -> Result<api::DeclineGround, String> {
    use api::DeclineGround as G;
    one_of(
        "ground",
        s,
        &[
            ("not-for-purpose", G::NotForPurpose),
            ("endangers-safety", G::EndangersSafety),
            ("prejudices-law", G::PrejudicesLaw),
            ("contrary-to-wishes", G::ContraryToWishes),
            ("legal-privilege", G::LegalPrivilege),
            ("not-held", G::NotHeld),
        ],
    )
}

/// `SCHEME=VALUE`.
pub(super) fn identifier(s: &str) -> Result<api::AgencyIdentifier, String> {
    let (scheme, value) = s
        .split_once('=')
        .ok_or_else(|| format!("--id {s:?}: expected SCHEME=VALUE, e.g. nhi=ABC1234"))?;
    Ok(api::AgencyIdentifier {
        scheme: scheme.trim().to_string(),
        value: value.trim().to_string(),
    })
}

/// `CATEGORY:CLASSIFICATION:CONTENT` (the content may itself contain colons).
pub(super) fn item(s: &str) -> Result<api::DisclosedItem, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(category), Some(class), Some(content)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "--item {:?}: expected CATEGORY:CLASSIFICATION:CONTENT",
            s.chars().take(40).collect::<String>()
        ));
    };
    Ok(api::DisclosedItem {
        category: category.trim().to_string(),
        classification: classification(class)? as i32,
        content: content.to_string(),
    })
}

/// A random idempotency key, for a send that gives none.
pub(super) fn random_key() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random source");
    format!("cli-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_leniently_and_items_exactly() {
        assert_eq!(
            classification("IN_CONFIDENCE").unwrap(),
            api::Classification::InConfidence
        );
        assert_eq!(
            classification("top secret").unwrap(),
            api::Classification::TopSecret
        );
        assert!(
            classification("pink")
                .unwrap_err()
                .contains("expected one of")
        );
        let i = item("attendance:sensitive:Absent 3 days: Mon, Tue").unwrap();
        assert_eq!(i.category, "attendance");
        assert_eq!(i.content, "Absent 3 days: Mon, Tue");
        assert!(item("attendance").is_err());
        assert_eq!(identifier("nhi=ABC1234").unwrap().value, "ABC1234");
    }
}
