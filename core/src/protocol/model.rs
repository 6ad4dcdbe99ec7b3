//! A protocol document, parsed from TOML and checked against the template and the law.
//!
//! The sections follow the template (see `../shared/domain.md` §2): purpose and lead agency;
//! parties with their relationship managers; the legal authority for each purpose; purposes per
//! party; the categories each party may share with their classification; method of sharing and
//! security controls; retention; transparency; breach and conflict-of-interest contacts; tikanga;
//! review. Approval is not in the document: it is a separate act in the register.

use std::collections::BTreeSet;

use serde::Deserialize;
use time::Date;

use crate::deadline::ResponseTimes;
use crate::domain::{Authority, Classification};
use crate::error::BrokerError;
use crate::registry::Registry;

/// A category a party may share, with its classification.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SharedCategory {
    /// Category code.
    pub category: String,
    /// Security classification of the category.
    pub classification: Classification,
    /// What exactly is shared (specific, not "attendance information").
    pub description: String,
}

/// A party to the protocol.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// Registered agency id.
    pub agency: String,
    /// Relationship manager contact (a role and business address, not the attendee).
    pub relationship_manager: String,
    /// Purposes for which the party may request information.
    #[serde(default)]
    pub request_purposes: Vec<String>,
    /// Purposes for which the party may share information.
    #[serde(default)]
    pub share_purposes: Vec<String>,
    /// Categories the party may share.
    #[serde(default)]
    pub shares: Vec<SharedCategory>,
}

impl Party {
    /// The party's shared category with this code.
    pub fn share(&self, category: &str) -> Option<&SharedCategory> {
        self.shares.iter().find(|s| s.category == category)
    }
}

/// A legal authority and the purposes it is relied on for.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthorityUse {
    /// s66C OTA or s20 FVA.
    pub authority: Authority,
    /// The purposes (codes) it is relied on for.
    pub purposes: Vec<String>,
}

/// A purpose of sharing.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PurposeDef {
    /// Purpose code.
    pub code: String,
    /// What it is, with its statutory reference.
    pub description: String,
}

/// A protocol as its document states it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Protocol id (code).
    pub id: String,
    /// Version (1, 2, ...); a change is a new version.
    pub version: u32,
    /// Title, for people (the id is the code).
    pub title: String,
    /// Purpose of the meeting or sharing arrangement.
    pub purpose: String,
    /// The agency that leads the arrangement (one of the parties).
    pub lead_agency: String,
    /// Legal authorities and the purposes each is relied on for.
    #[serde(rename = "authority")]
    pub authorities: Vec<AuthorityUse>,
    /// Purposes of sharing.
    pub purposes: Vec<PurposeDef>,
    /// The agencies that share under it, each with what it shares and may ask for.
    #[serde(rename = "party")]
    pub parties: Vec<Party>,
    /// Method of sharing before, during and after meetings.
    pub method_of_sharing: String,
    /// Security classification handling and controls.
    pub security_controls: String,
    /// How long shared information is kept, in days.
    pub retention_days: u32,
    /// Transparency and notification duties (s66C consultation; IPP3A).
    pub transparency: String,
    /// Privacy and security breach contact.
    pub breach_contact: String,
    /// Who hears a conflict of interest.
    pub conflict_of_interest_contact: String,
    /// Tikanga and Māori data considerations.
    #[serde(default)]
    pub tikanga: String,
    /// Date by which the protocol must be reviewed (YYYY-MM-DD); past it, it no longer
    /// authorises sharing.
    pub review_date: String,
    /// Months between reviews.
    pub review_period_months: u32,
    /// The party that initiates review.
    pub review_initiator: String,
    /// How soon a request must be answered, per urgency; absent, the broker's defaults
    /// ([`ResponseTimes::default`]).
    #[serde(default)]
    pub response_times: ResponseTimes,
    /// How long a request may wait unacknowledged before it expires (non-delivery); absent,
    /// the broker's configured default.
    #[serde(default)]
    pub collection_window: Option<crate::deadline::ResponseTime>,
}

impl Protocol {
    /// Parses a TOML document (no checks against the registry; see [`Protocol::check`]).
    pub fn from_toml(text: &str) -> Result<Self, BrokerError> {
        toml::from_str(text).map_err(|e| BrokerError::invalid("document", e.message().to_string()))
    }

    /// The party entry of an agency.
    pub fn party(&self, agency: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.agency == agency)
    }

    /// The review date as a calendar date.
    pub fn review_date(&self) -> Option<Date> {
        crate::calendar::parse_date(&self.review_date)
    }

    /// Whether `authority` is relied on for `purpose`.
    pub fn authorises(&self, authority: Authority, purpose: &str) -> bool {
        self.authorities
            .iter()
            .any(|a| a.authority == authority && a.purposes.iter().any(|p| p == purpose))
    }

    /// Checks the document against the template and the law, with the registry for parties.
    pub fn check(&self, registry: &Registry) -> Result<(), BrokerError> {
        let bad =
            |field: &str, msg: String| Err(BrokerError::invalid(format!("document.{field}"), msg));
        code("id", &self.id)?;
        if self.version == 0 {
            return bad("version", "must be 1 or more".into());
        }
        for (field, value) in [
            ("title", &self.title),
            ("purpose", &self.purpose),
            ("method_of_sharing", &self.method_of_sharing),
            ("security_controls", &self.security_controls),
            ("transparency", &self.transparency),
            ("breach_contact", &self.breach_contact),
            (
                "conflict_of_interest_contact",
                &self.conflict_of_interest_contact,
            ),
        ] {
            if !crate::text::says_something(value) {
                return bad(field, "is required".into());
            }
            if value.chars().count() > 4000 {
                return bad(field, "is longer than 4000 characters".into());
            }
        }
        if self.retention_days == 0 {
            return bad("retention_days", "must be 1 or more".into());
        }
        if self.review_period_months == 0 {
            return bad("review_period_months", "must be 1 or more".into());
        }
        if self.review_date().is_none() {
            return bad("review_date", "must be a date YYYY-MM-DD".into());
        }
        self.response_times.check()?;
        if let Some(window) = self.collection_window {
            window.check("document.collection_window")?;
        }
        let mut purposes = BTreeSet::new();
        for (i, p) in self.purposes.iter().enumerate() {
            code(&format!("purposes[{i}].code"), &p.code)?;
            if !crate::text::says_something(&p.description) {
                return bad(&format!("purposes[{i}].description"), "is required".into());
            }
            if !purposes.insert(p.code.as_str()) {
                return bad(
                    &format!("purposes[{i}].code"),
                    format!("{:?} is defined twice", p.code),
                );
            }
        }
        if self.authorities.is_empty() {
            return bad(
                "authority",
                "at least one legal authority is required".into(),
            );
        }
        for (i, a) in self.authorities.iter().enumerate() {
            if a.purposes.is_empty() {
                return bad(
                    &format!("authority[{i}].purposes"),
                    "must name at least one purpose".into(),
                );
            }
            for p in &a.purposes {
                if !purposes.contains(p.as_str()) {
                    return bad(
                        &format!("authority[{i}].purposes"),
                        format!("purpose {p:?} is not defined"),
                    );
                }
            }
        }
        let mut parties = BTreeSet::new();
        for (i, party) in self.parties.iter().enumerate() {
            let field = |f: &str| format!("party[{i}].{f}");
            let Some(agency) = registry.agency(&party.agency) else {
                return bad(
                    &field("agency"),
                    format!("no agency {:?} is registered", party.agency),
                );
            };
            if !parties.insert(party.agency.as_str()) {
                return bad(
                    &field("agency"),
                    format!("{:?} is a party twice", party.agency),
                );
            }
            if !crate::text::says_something(&party.relationship_manager) {
                return bad(&field("relationship_manager"), "is required".into());
            }
            // Template §3: where s66C or s20 is relied on, every party must meet its criteria.
            for a in &self.authorities {
                if !agency.may_use(a.authority) {
                    return bad(
                        &field("agency"),
                        format!(
                            "{} is not {} and so cannot be a party to a protocol relying on {}",
                            party.agency,
                            a.authority.eligible_in_words(),
                            a.authority
                        ),
                    );
                }
            }
            for p in party.request_purposes.iter().chain(&party.share_purposes) {
                if !purposes.contains(p.as_str()) {
                    return bad(
                        &field("request_purposes"),
                        format!("purpose {p:?} is not defined"),
                    );
                }
            }
            let mut categories = BTreeSet::new();
            for (j, s) in party.shares.iter().enumerate() {
                code(&field(&format!("shares[{j}].category")), &s.category)?;
                if !categories.insert(s.category.as_str()) {
                    return bad(
                        &field(&format!("shares[{j}].category")),
                        "is listed twice".into(),
                    );
                }
                if s.classification < Classification::InConfidence {
                    return bad(
                        &field(&format!("shares[{j}].classification")),
                        "personal information is IN-CONFIDENCE at minimum".into(),
                    );
                }
                if !crate::text::says_something(&s.description) {
                    return bad(
                        &field(&format!("shares[{j}].description")),
                        "must say specifically what is shared".into(),
                    );
                }
            }
        }
        if self.parties.len() < 2 {
            return bad("party", "a protocol needs at least two parties".into());
        }
        if !parties.contains(self.lead_agency.as_str()) {
            return bad("lead_agency", "must be a party".into());
        }
        if !parties.contains(self.review_initiator.as_str()) {
            return bad("review_initiator", "must be a party".into());
        }
        Ok(())
    }
}

fn code(field: &str, v: &str) -> Result<(), BrokerError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(BrokerError::invalid(
            format!("document.{field}"),
            "must be a code of 1-64 characters of a-z, 0-9, '.', '_' and '-'",
        ))
    }
}

/// The example protocols shipped for development and tests.
pub const EXAMPLES: [&str; 3] = [
    include_str!("../../samples/protocols/youth-reengagement.toml"),
    include_str!("../../samples/protocols/attendance.toml"),
    include_str!("../../samples/protocols/family-harm-sam.toml"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SAMPLE_REGISTRY;

    fn registry() -> Registry {
        Registry::from_toml(SAMPLE_REGISTRY).unwrap()
    }

    #[test]
    fn the_examples_are_valid() {
        for text in EXAMPLES {
            let p = Protocol::from_toml(text).unwrap();
            p.check(&registry())
                .unwrap_or_else(|e| panic!("{}: {e}", p.id));
        }
    }

    #[test]
    fn blank_text_fields_are_refused_by_name() {
        let blank = |from: &str, to: &str| {
            let text = EXAMPLES[0].replacen(from, to, 1);
            assert_ne!(text, EXAMPLES[0], "{from}");
            match Protocol::from_toml(&text).unwrap().check(&registry()) {
                Err(BrokerError::InvalidArgument { field, .. }) => field,
                other => panic!("{from}: {other:?}"),
            }
        };
        assert_eq!(
            blank(
                "title = \"Youth re-engagement meeting (Police-led)\"",
                "title = \"\u{200B} \""
            ),
            "document.title"
        );
        assert_eq!(
            blank(
                "relationship_manager = \"Youth Services Manager, youth.services@police.example.govt.nz\"",
                "relationship_manager = \"\u{3000}\"",
            ),
            "document.party[0].relationship_manager"
        );
    }

    #[test]
    fn an_ineligible_party_is_refused() {
        // The NGO family-violence provider is not a child welfare and protection agency.
        let text = EXAMPLES[0].replace("agency = \"msd\"", "agency = \"safe-homes-trust\"");
        let err = Protocol::from_toml(&text)
            .unwrap()
            .check(&registry())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot be a party to a protocol relying on s66c"),
            "{err}"
        );
    }

    #[test]
    fn undefined_purposes_and_weak_classifications_are_refused() {
        let text = EXAMPLES[1].replace(
            "request_purposes = [\"assess-need\"]",
            "request_purposes = [\"nosy\"]",
        );
        assert!(
            Protocol::from_toml(&text)
                .unwrap()
                .check(&registry())
                .is_err()
        );
        let text = EXAMPLES[1].replacen(
            "classification = \"IN-CONFIDENCE\"",
            "classification = \"UNCLASSIFIED\"",
            1,
        );
        let err = Protocol::from_toml(&text)
            .unwrap()
            .check(&registry())
            .unwrap_err();
        assert!(
            err.to_string().contains("IN-CONFIDENCE at minimum"),
            "{err}"
        );
        assert!(Protocol::from_toml("id = 3").is_err());
    }

    #[test]
    fn response_times_default_or_come_from_the_document_checked() {
        use crate::deadline::ResponseTime;
        let plain = Protocol::from_toml(EXAMPLES[0]).unwrap();
        assert_eq!(plain.response_times, ResponseTimes::default());
        let sam = Protocol::from_toml(EXAMPLES[2]).unwrap();
        assert_eq!(sam.response_times.immediate_safety, ResponseTime::Hours(2));
        assert_eq!(sam.response_times.routine, ResponseTime::WorkingDays(5));
        let text = EXAMPLES[2].replace("routine = { working_days = 5 }", "routine = { hours = 1 }");
        match Protocol::from_toml(&text).unwrap().check(&registry()) {
            Err(BrokerError::InvalidArgument { field, .. }) => {
                assert_eq!(field, "document.response_times")
            }
            other => panic!("{other:?}"),
        }
        let text = EXAMPLES[2].replace("routine = { working_days = 5 }", "routine = { days = 5 }");
        assert!(Protocol::from_toml(&text).is_err(), "an unknown unit");
    }
}
