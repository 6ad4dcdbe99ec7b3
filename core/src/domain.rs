//! The broker's domain vocabulary: legal authorities, classifications, agency kinds and the other
//! coded values that requests, responses and log records carry.
//!
//! Each enum has a stable one-byte code, used in log records (and equal to the value of the same
//! name in the `.proto` API), and a stable text name, used in files and messages.

/// Defines a coded enum: a stable `u8` code and a stable text name per variant.
macro_rules! coded_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable one-byte code.
            pub fn code(self) -> u8 {
                match self { $($name::$variant => $code,)+ }
            }

            /// The value with this code, if any.
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// The value with this code given as an `i32` (as the `.proto` API carries it).
            pub fn from_i32(code: i32) -> Option<Self> {
                u8::try_from(code).ok().and_then(Self::from_code)
            }

            /// The stable text name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The value with this text name, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    serde::de::Error::custom(format!(
                        "unknown {} {:?}: expected one of {}",
                        stringify!($name), text, names.join(", ")
                    ))
                })
            }
        }
    };
}

coded_enum! {
    /// The legal authority a request or disclosure relies on.
    pub enum Authority {
        /// s66C Oranga Tamariki Act 1989.
        OtaS66C = 1 => "s66c",
        /// s20 Family Violence Act 2018.
        FvaS20 = 2 => "s20",
    }
}

impl Authority {
    /// The agency kinds the section lets share: s66C Oranga Tamariki Act — a child welfare and
    /// protection agency or an independent person (s2); s20 Family Violence Act — a family
    /// violence agency or a social services practitioner (s19).
    pub fn eligible_kinds(self) -> &'static [AgencyKind] {
        match self {
            Authority::OtaS66C => &[
                AgencyKind::ChildWelfareAndProtection,
                AgencyKind::IndependentPerson,
            ],
            Authority::FvaS20 => &[
                AgencyKind::FamilyViolenceAgency,
                AgencyKind::SocialServicesPractitioner,
            ],
        }
    }

    /// [`Authority::eligible_kinds`], in words.
    pub fn eligible_in_words(self) -> &'static str {
        match self {
            Authority::OtaS66C => {
                "a child welfare and protection agency or an independent person (s2 Oranga Tamariki Act 1989)"
            }
            Authority::FvaS20 => {
                "a family violence agency or a social services practitioner (s19 Family Violence Act 2018)"
            }
        }
    }
}

coded_enum! {
    /// NZ Government security classification (PSR); the order is total, lowest first.
    pub enum Classification {
        /// UNCLASSIFIED: public information; never personal information.
        Unclassified = 1 => "UNCLASSIFIED",
        /// IN-CONFIDENCE: the minimum for personal information.
        InConfidence = 2 => "IN-CONFIDENCE",
        /// SENSITIVE: personal information whose compromise could seriously harm someone.
        Sensitive = 3 => "SENSITIVE",
        /// RESTRICTED (national security).
        Restricted = 4 => "RESTRICTED",
        /// CONFIDENTIAL (national security).
        Confidential = 5 => "CONFIDENTIAL",
        /// SECRET (national security).
        Secret = 6 => "SECRET",
        /// TOP SECRET (national security).
        TopSecret = 7 => "TOP SECRET",
    }
}

coded_enum! {
    /// A legal kind of agency; an agency can be several.
    pub enum AgencyKind {
        /// Child welfare and protection agency (s2 Oranga Tamariki Act 1989).
        ChildWelfareAndProtection = 1 => "child-welfare-and-protection-agency",
        /// Independent person (s2 Oranga Tamariki Act 1989).
        IndependentPerson = 2 => "independent-person",
        /// Family violence agency (s19 Family Violence Act 2018).
        FamilyViolenceAgency = 3 => "family-violence-agency",
        /// Social services practitioner (s19 Family Violence Act 2018).
        SocialServicesPractitioner = 4 => "social-services-practitioner",
    }
}

coded_enum! {
    /// Whether an agency is part of government.
    pub enum Sector {
        /// A government agency.
        Government = 1 => "government",
        /// A non-government organisation or individual practitioner.
        NonGovernment = 2 => "non-government",
    }
}

coded_enum! {
    /// How urgently an answer is needed.
    pub enum Urgency {
        /// Routine: within the protocol's usual turnaround.
        Routine = 1 => "routine",
        /// As soon as practicable.
        Priority = 2 => "priority",
        /// Someone may be at risk now.
        ImmediateSafety = 3 => "immediate-safety",
    }
}

coded_enum! {
    /// Whether the person concerned was consulted before sharing.
    pub enum Consultation {
        /// The person (or their whānau) was consulted before sharing (s66C(3) OTA).
        Consulted = 1 => "consulted",
        /// Not consulted (a reason is recorded in the body).
        NotConsulted = 2 => "not-consulted",
    }
}

coded_enum! {
    /// The answer to a request.
    pub enum Decision {
        /// Everything requested is disclosed.
        Disclose = 1 => "disclose",
        /// Some is disclosed, some withheld.
        PartialDisclose = 2 => "partial-disclose",
        /// Nothing is disclosed.
        Decline = 3 => "decline",
    }
}

coded_enum! {
    /// Why information is withheld.
    pub enum DeclineGround {
        /// Would not serve a purpose of the authority.
        NotForPurpose = 1 => "not-for-purpose",
        /// Likely to endanger someone's safety.
        EndangersSafety = 2 => "endangers-safety",
        /// Would prejudice the maintenance of the law.
        PrejudicesLaw = 3 => "prejudices-law",
        /// Contrary to the child or young person's wishes and not in their best interests.
        ContraryToWishes = 4 => "contrary-to-wishes",
        /// Legal professional privilege.
        LegalPrivilege = 5 => "legal-privilege",
        /// The information is not held.
        NotHeld = 6 => "not-held",
    }
}

coded_enum! {
    /// What an inbox item or a stored body is.
    pub enum MessageKind {
        /// An information request.
        Request = 1 => "request",
        /// A response to a request.
        Response = 2 => "response",
        /// A proactive disclosure.
        Disclosure = 3 => "disclosure",
        /// A protocol document (kept in the body store, never purged).
        Protocol = 4 => "protocol",
        /// New information about an answered request, from the agency that answered it.
        Update = 5 => "update",
        /// A notice from the broker about an exchange (an inbox item only; no body).
        Notice = 6 => "notice",
        /// A requester's reasons for withdrawing a request (a body only, never an inbox item).
        Withdrawal = 7 => "withdrawal",
    }
}

coded_enum! {
    /// What a notice in an inbox says.
    pub enum NoticeKind {
        /// The request passed its due time unanswered.
        Overdue = 1 => "overdue",
        /// The requester withdrew the request.
        Withdrawn = 2 => "withdrawn",
        /// Non-delivery: not acknowledged within the collection window, the request expired.
        Expired = 3 => "expired",
    }
}

coded_enum! {
    /// Where a request stands.
    pub enum RequestStatus {
        /// Submitted, not yet acknowledged.
        Submitted = 1 => "submitted",
        /// Acknowledged by the recipient.
        Acknowledged = 2 => "acknowledged",
        /// Answered.
        Responded = 3 => "responded",
        /// Answer acknowledged by the requester (a disclosure or update: acknowledged by its
        /// recipient).
        Completed = 4 => "completed",
        /// Withdrawn by the requester before it was answered.
        Withdrawn = 5 => "withdrawn",
        /// Not acknowledged within its collection window: it expired (non-delivery).
        Expired = 6 => "expired",
    }
}

impl RequestStatus {
    /// Whether a request in this status still awaits its answer (it is neither answered,
    /// withdrawn nor expired).
    pub fn awaits_answer(self) -> bool {
        matches!(self, Self::Submitted | Self::Acknowledged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for c in Classification::ALL {
            assert_eq!(Classification::from_code(c.code()), Some(*c));
            assert_eq!(Classification::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Classification::from_code(0), None);
        assert_eq!(Classification::from_i32(-1), None);
        assert_eq!(Classification::from_i32(256 + 2), None);
    }

    #[test]
    fn classification_order_is_the_psr_order() {
        assert!(Classification::Unclassified < Classification::InConfidence);
        assert!(Classification::Sensitive < Classification::Restricted);
        assert!(Classification::Secret < Classification::TopSecret);
    }
}

coded_enum! {
    /// Where a protocol version stands in the register.
    pub enum ProtocolState {
        /// Registered, awaiting approval.
        Draft = 1 => "draft",
        /// Approved and in force.
        Active = 2 => "active",
        /// Suspended by an administrator.
        Suspended = 3 => "suspended",
        /// Revoked by an administrator; final.
        Revoked = 4 => "revoked",
        /// Replaced by a later approved version.
        Superseded = 5 => "superseded",
    }
}
