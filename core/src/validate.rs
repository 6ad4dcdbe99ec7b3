//! Input validation: turns API messages into typed, checked values, or says which field is wrong.
//! Nothing here reads state; a message that fails here changes nothing.
//!
//! Limits (also in README.md):
//!
//! | field | limit |
//! |---|---|
//! | codes: agency, protocol, purpose, category, identifier scheme | 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit |
//! | `idempotency_key` | 1–128 printable ASCII characters |
//! | `staff_id` | 1–64 printable ASCII characters |
//! | names | family name 1–200 characters, given names 0–200, no control characters |
//! | `date_of_birth` | `YYYY-MM-DD`, a real date from 1900-01-01 to today |
//! | identifiers | at most 8; value 1–64 printable ASCII characters |
//! | categories | 1–32 per request, no repeats |
//! | `reason`, `explanation`, a withdrawal's `reason` | 1–4,000 characters |
//! | `reason_not_consulted` | 1–2,000 characters, required when not consulted |
//! | disclosed items | at most 64; content 1–65,536 bytes |
//! | whole message | 1 MiB (gRPC decoding limit) |

use infoshare_proto::v1;
use time::{Date, Month};

use crate::domain::{
    Authority, Classification, Consultation, Decision, DeclineGround, MessageKind, Urgency,
};
use crate::error::BrokerError;
use crate::records::RequestId;

/// Largest gRPC message the broker decodes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
const CODE_MAX: usize = 64;
const KEY_MAX: usize = 128;
const STAFF_MAX: usize = 64;
const NAME_MAX: usize = 200;
const IDENTIFIERS_MAX: usize = 8;
const CATEGORIES_MAX: usize = 32;
const TEXT_MAX: usize = 4000;
const CONSULT_TEXT_MAX: usize = 2000;
const ITEMS_MAX: usize = 64;
const CONTENT_MAX: usize = 65_536;
/// Largest page of a list.
pub const PAGE_MAX: u32 = 500;
/// Page size when none is given.
pub const PAGE_DEFAULT: u32 = 100;

/// A checked subject.
#[derive(Debug, Clone)]
pub struct ValidSubject {
    /// Family name, as given (canonical forms are made for pseudonyms only).
    pub family_name: String,
    /// Given names (may be empty).
    pub given_names: String,
    /// Date of birth, a valid date not in the future (NZ date).
    pub date_of_birth: Date,
    /// Agency identifiers (scheme, value).
    pub identifiers: Vec<(String, String)>,
}

/// A checked information request.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    /// The agency asked.
    pub recipient: String,
    /// The authority relied on.
    pub authority: Authority,
    /// The registered protocol it is made under.
    pub protocol_id: String,
    /// The purpose code.
    pub purpose: String,
    /// The child, young person or person at risk it is about.
    pub subject: ValidSubject,
    /// The category codes requested.
    pub categories: Vec<String>,
    /// How soon an answer is needed.
    pub urgency: Urgency,
    /// The label the requester gave (at least the protocol's floor once checked).
    pub classification: Classification,
    /// Consultation, if recorded.
    pub consultation: Option<Consultation>,
    /// The requesting staff member.
    pub staff_id: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The caller's earlier request this one sends on, if any.
    pub follows: Option<RequestId>,
    /// The request as received, kept as the body.
    pub body: v1::InformationRequest,
}

/// A checked response.
#[derive(Debug, Clone)]
pub struct ValidResponse {
    /// The request answered.
    pub request_id: RequestId,
    /// Disclose, partially disclose or decline.
    pub decision: Decision,
    /// Why information was withheld.
    pub ground: Option<DeclineGround>,
    /// Disclosed categories and their classifications.
    pub items: Vec<(String, Classification)>,
    /// Consultation, if recorded.
    pub consultation: Option<Consultation>,
    /// The answering staff member.
    pub staff_id: String,
    /// The agency suggested when declining as not held (empty: none).
    pub referral: String,
    /// The response as received, kept as the body.
    pub body: v1::InformationResponse,
}

/// A checked update of an answered request.
#[derive(Debug, Clone)]
pub struct ValidUpdate {
    /// The request it updates.
    pub request_id: RequestId,
    /// Disclosed categories and their classifications (at least one).
    pub items: Vec<(String, Classification)>,
    /// Consultation, if recorded.
    pub consultation: Option<Consultation>,
    /// The sending staff member.
    pub staff_id: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The update as received, kept as the body.
    pub body: v1::InformationUpdate,
}

/// A checked withdrawal.
#[derive(Debug, Clone)]
pub struct ValidWithdrawal {
    /// The request withdrawn.
    pub request_id: RequestId,
    /// The withdrawing staff member.
    pub staff_id: String,
    /// The withdrawal as received (its reasons), kept as the body.
    pub body: v1::Withdrawal,
}

type Result<T> = std::result::Result<T, BrokerError>;

fn invalid<T>(field: &str, message: impl Into<String>) -> Result<T> {
    Err(BrokerError::invalid(field, message))
}

/// A protocol/purpose/category/agency code.
fn code(field: &str, v: &str) -> Result<String> {
    if v.is_empty() {
        return invalid(field, "is required");
    }
    if v.len() > CODE_MAX {
        return invalid(field, format!("is longer than {CODE_MAX} characters"));
    }
    let first_ok = v.as_bytes()[0].is_ascii_lowercase() || v.as_bytes()[0].is_ascii_digit();
    let ok = first_ok
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok {
        return invalid(
            field,
            "must be a code of a-z, 0-9, '.', '_' and '-' starting with a letter or digit",
        );
    }
    Ok(v.to_string())
}

fn printable_ascii(field: &str, v: &str, max: usize) -> Result<String> {
    required(field, v)?;
    if v.len() > max {
        return invalid(field, format!("is longer than {max} characters"));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return invalid(field, "must be printable ASCII");
    }
    Ok(v.to_string())
}

/// The one check of a mandatory text field: it must say something — not be empty after
/// white space and default-ignorable characters (zero-width spaces, joiners, …) are trimmed.
pub fn required(field: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return invalid(field, "is required");
    }
    if !crate::text::says_something(v) {
        return invalid(
            field,
            "must say something: it holds only blanks or invisible characters",
        );
    }
    Ok(())
}

/// A free-text field: `required` (see [`required`]) or optional, at most `max` characters, no
/// control characters but (if `multiline`) newline and tab, and no bidi controls.
fn text(field: &str, v: &str, required: bool, max: usize, multiline: bool) -> Result<String> {
    if required {
        self::required(field, v)?;
    }
    let chars = v.chars().count();
    if chars > max {
        return invalid(field, format!("is longer than {max} characters"));
    }
    let allowed: &[char] = if multiline { &['\n', '\t'] } else { &[] };
    if let Some((_, c)) = crate::text::forbidden_char(v, allowed) {
        return invalid(
            field,
            format!(
                "must not contain control or bidi characters (found U+{:04X})",
                c as u32
            ),
        );
    }
    Ok(v.to_string())
}

fn enum_value<T>(field: &str, raw: i32, from: impl Fn(i32) -> Option<T>) -> Result<T> {
    if raw == 0 {
        return invalid(field, "is required");
    }
    from(raw).map_or_else(|| invalid(field, format!("has no value {raw}")), Ok)
}

/// A date of birth, from 1900-01-01 to `today` (New Zealand's date: a baby born this morning in
/// New Zealand is a valid subject while UTC still says yesterday).
fn date_of_birth(field: &str, v: &str, today: Date) -> Result<Date> {
    let bad = || invalid(field, "must be a date YYYY-MM-DD");
    let parts: Vec<&str> = v.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return bad();
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return bad();
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return bad();
    };
    let Ok(month) = Month::try_from(m) else {
        return bad();
    };
    let Ok(date) = Date::from_calendar_date(y, month, d) else {
        return bad();
    };
    if y < 1900 || date > today {
        return invalid(field, "must be between 1900-01-01 and today");
    }
    Ok(date)
}

/// A consultation record, if given. Whether one is required depends on the authority, so that is
/// the policy's rule (`consultation.recorded`), not a validation.
fn consultation(field: &str, c: Option<&v1::ConsultationRecord>) -> Result<Option<Consultation>> {
    let Some(c) = c else {
        return Ok(None);
    };
    let status = enum_value(&format!("{field}.status"), c.status, Consultation::from_i32)?;
    let reason_field = format!("{field}.reason_not_consulted");
    match status {
        Consultation::NotConsulted => {
            text(
                &reason_field,
                &c.reason_not_consulted,
                true,
                CONSULT_TEXT_MAX,
                true,
            )?;
        }
        Consultation::Consulted if !c.reason_not_consulted.is_empty() => {
            return invalid(&reason_field, "must be empty when the person was consulted");
        }
        Consultation::Consulted => {}
    }
    Ok(Some(status))
}

/// Parses a request id field.
pub fn request_id(field: &str, v: &str) -> Result<RequestId> {
    if v.is_empty() {
        return invalid(field, "is required");
    }
    RequestId::parse(v).map_or_else(
        || invalid(field, "must be 32 lowercase hexadecimal characters"),
        Ok,
    )
}

/// Parses a protocol id field.
pub fn protocol_id(field: &str, v: &str) -> Result<String> {
    code(field, v)
}

/// Parses an approver's role title (e.g. "Chief Privacy Officer").
pub fn role_title(field: &str, v: &str) -> Result<String> {
    text(field, v.trim(), true, 100, false)
}

/// Parses a message kind field.
pub fn message_kind(field: &str, raw: i32) -> Result<MessageKind> {
    // Protocol documents and withdrawals share the body store but are no message kind of the
    // API.
    enum_value(field, raw, |v| {
        MessageKind::from_i32(v)
            .filter(|k| !matches!(k, MessageKind::Protocol | MessageKind::Withdrawal))
    })
}

/// Checks a SubmitRequest. Whether the recipient exists is the caller's to check against the
/// registry; here only its form is checked.
pub fn request(input: &v1::SubmitRequestRequest, today: Date) -> Result<ValidRequest> {
    let idempotency_key = printable_ascii("idempotency_key", &input.idempotency_key, KEY_MAX)?;
    let Some(r) = input.request.as_ref() else {
        return invalid("request", "is required");
    };
    let subject = subject("request.subject", r.subject.as_ref(), today)?;
    if r.categories.is_empty() {
        return invalid("request.categories", "at least one category is required");
    }
    if r.categories.len() > CATEGORIES_MAX {
        return invalid(
            "request.categories",
            format!("has more than {CATEGORIES_MAX} categories"),
        );
    }
    let mut categories = Vec::with_capacity(r.categories.len());
    for (i, c) in r.categories.iter().enumerate() {
        let c = code(&format!("request.categories[{i}]"), c)?;
        if categories.contains(&c) {
            return invalid(&format!("request.categories[{i}]"), "repeats a category");
        }
        categories.push(c);
    }
    Ok(ValidRequest {
        recipient: code("request.recipient_agency_id", &r.recipient_agency_id)?,
        authority: enum_value("request.authority", r.authority, Authority::from_i32)?,
        protocol_id: code("request.protocol_id", &r.protocol_id)?,
        purpose: code("request.purpose", &r.purpose)?,
        subject,
        categories,
        urgency: enum_value("request.urgency", r.urgency, Urgency::from_i32)?,
        classification: enum_value(
            "request.classification",
            r.classification,
            Classification::from_i32,
        )?,
        consultation: consultation("request.consultation", r.consultation.as_ref())?,
        staff_id: printable_ascii("request.staff_id", &r.staff_id, STAFF_MAX)?,
        idempotency_key,
        follows: match input.follows_request_id.as_str() {
            "" => None,
            id => Some(request_id("follows_request_id", id)?),
        },
        body: {
            text("request.reason", &r.reason, true, TEXT_MAX, true)?;
            r.clone()
        },
    })
}

/// Checks disclosed items: codes, classifications, content sizes, no category twice.
fn disclosed_items(
    field: &str,
    items: &[v1::DisclosedItem],
) -> Result<Vec<(String, Classification)>> {
    if items.len() > ITEMS_MAX {
        return invalid(field, format!("has more than {ITEMS_MAX} items"));
    }
    let mut out: Vec<(String, Classification)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let category = code(&format!("{field}[{i}].category"), &item.category)?;
        let class = enum_value(
            &format!("{field}[{i}].classification"),
            item.classification,
            Classification::from_i32,
        )?;
        let content_field = format!("{field}[{i}].content");
        if item.content.is_empty() {
            return invalid(&content_field, "is required");
        }
        if item.content.len() > CONTENT_MAX {
            return invalid(
                &content_field,
                format!("is longer than {CONTENT_MAX} bytes"),
            );
        }
        if out.iter().any(|(c, _)| *c == category) {
            return invalid(&format!("{field}[{i}].category"), "repeats a category");
        }
        out.push((category, class));
    }
    Ok(out)
}

/// Checks a subject.
fn subject(field: &str, s: Option<&v1::Subject>, today: Date) -> Result<ValidSubject> {
    let Some(s) = s else {
        return invalid(field, "is required");
    };
    if s.identifiers.len() > IDENTIFIERS_MAX {
        return invalid(
            &format!("{field}.identifiers"),
            format!("has more than {IDENTIFIERS_MAX} identifiers"),
        );
    }
    let identifiers = s
        .identifiers
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Ok((
                code(&format!("{field}.identifiers[{i}].scheme"), &id.scheme)?,
                printable_ascii(
                    &format!("{field}.identifiers[{i}].value"),
                    &id.value,
                    CODE_MAX,
                )?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ValidSubject {
        family_name: text(
            &format!("{field}.family_name"),
            &s.family_name,
            true,
            NAME_MAX,
            false,
        )?,
        given_names: text(
            &format!("{field}.given_names"),
            &s.given_names,
            false,
            NAME_MAX,
            false,
        )?,
        date_of_birth: date_of_birth(&format!("{field}.date_of_birth"), &s.date_of_birth, today)?,
        identifiers,
    })
}

/// Checks a subject as an auditor gives it (the same checks as a request's).
pub fn subject_for_audit(field: &str, s: &v1::Subject, today: Date) -> Result<ValidSubject> {
    subject(field, Some(s), today)
}

/// A checked proactive disclosure.
#[derive(Debug, Clone)]
pub struct ValidDisclosure {
    /// The agency disclosed to.
    pub recipient: String,
    /// The authority relied on.
    pub authority: Authority,
    /// The registered protocol it is made under.
    pub protocol_id: String,
    /// The purpose code.
    pub purpose: String,
    /// The child, young person or person at risk it is about.
    pub subject: ValidSubject,
    /// Disclosed categories and their classifications.
    pub items: Vec<(String, Classification)>,
    /// Consultation, if recorded.
    pub consultation: Option<Consultation>,
    /// The disclosing staff member.
    pub staff_id: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The disclosure as received, kept as the body.
    pub body: v1::ProactiveDisclosure,
}

/// What opens an exchange — a checked request or proactive disclosure — as the broker treats
/// both alike: whom it goes to, who sent it, about whom, under which key, with which body.
pub trait Opening {
    /// The field naming the recipient, for errors.
    const RECIPIENT_FIELD: &'static str;
    /// Its message kind.
    const KIND: MessageKind;
    /// The agency it goes to.
    fn recipient(&self) -> &str;
    /// The sending staff member.
    fn staff_id(&self) -> &str;
    /// Whom it is about.
    fn subject(&self) -> &ValidSubject;
    /// The client's idempotency key.
    fn idempotency_key(&self) -> &str;
    /// The body as received, encoded.
    fn encoded_body(&self) -> Vec<u8>;
}

/// Both openings keep their common fields under the same names.
macro_rules! opening {
    ($valid:ty, $field:literal, $kind:expr) => {
        impl Opening for $valid {
            const RECIPIENT_FIELD: &'static str = $field;
            const KIND: MessageKind = $kind;
            fn recipient(&self) -> &str {
                &self.recipient
            }
            fn staff_id(&self) -> &str {
                &self.staff_id
            }
            fn subject(&self) -> &ValidSubject {
                &self.subject
            }
            fn idempotency_key(&self) -> &str {
                &self.idempotency_key
            }
            fn encoded_body(&self) -> Vec<u8> {
                prost::Message::encode_to_vec(&self.body)
            }
        }
    };
}

opening!(
    ValidRequest,
    "request.recipient_agency_id",
    MessageKind::Request
);
opening!(
    ValidDisclosure,
    "disclosure.recipient_agency_id",
    MessageKind::Disclosure
);

/// Checks a Disclose call.
pub fn disclosure(input: &v1::DiscloseRequest, today: Date) -> Result<ValidDisclosure> {
    let idempotency_key = printable_ascii("idempotency_key", &input.idempotency_key, KEY_MAX)?;
    let Some(d) = input.disclosure.as_ref() else {
        return invalid("disclosure", "is required");
    };
    let items = disclosed_items("disclosure.items", &d.items)?;
    if items.is_empty() {
        return invalid("disclosure.items", "a disclosure needs at least one item");
    }
    text("disclosure.reason", &d.reason, true, TEXT_MAX, true)?;
    Ok(ValidDisclosure {
        recipient: code("disclosure.recipient_agency_id", &d.recipient_agency_id)?,
        authority: enum_value("disclosure.authority", d.authority, Authority::from_i32)?,
        protocol_id: code("disclosure.protocol_id", &d.protocol_id)?,
        purpose: code("disclosure.purpose", &d.purpose)?,
        subject: subject("disclosure.subject", d.subject.as_ref(), today)?,
        items,
        consultation: consultation("disclosure.consultation", d.consultation.as_ref())?,
        staff_id: printable_ascii("disclosure.staff_id", &d.staff_id, STAFF_MAX)?,
        idempotency_key,
        body: d.clone(),
    })
}

/// Checks a Respond call.
pub fn response(input: &v1::RespondRequest) -> Result<ValidResponse> {
    let request_id = request_id("request_id", &input.request_id)?;
    let Some(r) = input.response.as_ref() else {
        return invalid("response", "is required");
    };
    let decision = enum_value("response.decision", r.decision, Decision::from_i32)?;
    let items = disclosed_items("response.items", &r.items)?;
    let ground = match r.decline_ground {
        0 => None,
        raw => Some(enum_value(
            "response.decline_ground",
            raw,
            DeclineGround::from_i32,
        )?),
    };
    match decision {
        Decision::Disclose => {
            if items.is_empty() {
                return invalid("response.items", "a disclosure needs at least one item");
            }
            if ground.is_some() {
                return invalid(
                    "response.decline_ground",
                    "must be empty for a full disclosure",
                );
            }
            text(
                "response.explanation",
                &r.explanation,
                false,
                TEXT_MAX,
                true,
            )?;
        }
        Decision::PartialDisclose | Decision::Decline => {
            if decision == Decision::PartialDisclose && items.is_empty() {
                return invalid(
                    "response.items",
                    "a partial disclosure needs at least one item",
                );
            }
            if decision == Decision::Decline && !items.is_empty() {
                return invalid("response.items", "a decline discloses nothing");
            }
            // That a ground and reasons are given is the policy's rule
            // (`response.decline_reasoned`, s66J); here their form, and that reasons given say
            // something.
            let given = !r.explanation.is_empty();
            text(
                "response.explanation",
                &r.explanation,
                given,
                TEXT_MAX,
                true,
            )?;
        }
    }
    let referral = match r.referred_agency_id.as_str() {
        "" => String::new(),
        _ if ground != Some(DeclineGround::NotHeld) => {
            return invalid(
                "response.referred_agency_id",
                "only an answer that withholds information as not held (decline_ground NOT_HELD) may suggest another agency",
            );
        }
        id => code("response.referred_agency_id", id)?,
    };
    Ok(ValidResponse {
        request_id,
        decision,
        ground,
        items,
        consultation: consultation("response.consultation", r.consultation.as_ref())?,
        staff_id: printable_ascii("response.staff_id", &r.staff_id, STAFF_MAX)?,
        referral,
        body: r.clone(),
    })
}

/// Checks a SendUpdate call.
pub fn update(input: &v1::SendUpdateRequest) -> Result<ValidUpdate> {
    let request_id = request_id("request_id", &input.request_id)?;
    let idempotency_key = printable_ascii("idempotency_key", &input.idempotency_key, KEY_MAX)?;
    let Some(u) = input.update.as_ref() else {
        return invalid("update", "is required");
    };
    let items = disclosed_items("update.items", &u.items)?;
    if items.is_empty() {
        return invalid("update.items", "an update needs at least one item");
    }
    text("update.explanation", &u.explanation, false, TEXT_MAX, true)?;
    Ok(ValidUpdate {
        request_id,
        items,
        consultation: consultation("update.consultation", u.consultation.as_ref())?,
        staff_id: printable_ascii("update.staff_id", &u.staff_id, STAFF_MAX)?,
        idempotency_key,
        body: u.clone(),
    })
}

/// Checks a WithdrawRequest call: the reasons must say something (domain.md §5).
pub fn withdrawal(input: &v1::WithdrawRequestRequest) -> Result<ValidWithdrawal> {
    let request_id = request_id("request_id", &input.request_id)?;
    let Some(w) = input.withdrawal.as_ref() else {
        return invalid("withdrawal", "is required");
    };
    text("withdrawal.reason", &w.reason, true, TEXT_MAX, true)?;
    Ok(ValidWithdrawal {
        request_id,
        staff_id: printable_ascii("withdrawal.staff_id", &w.staff_id, STAFF_MAX)?,
        body: w.clone(),
    })
}

/// The page size to use for a requested one.
pub fn page_size(requested: u32) -> Result<usize> {
    match requested {
        0 => Ok(PAGE_DEFAULT as usize),
        n if n > PAGE_MAX => invalid("page_size", format!("must be at most {PAGE_MAX}")),
        n => Ok(n as usize),
    }
}

#[cfg(test)]
pub(crate) mod tests;
