//! `infoshare audit …`: auditors' queries, verification and evidence bundles.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use clap::{Args, Subcommand};
use prost::Message;

use super::failure::Failure;
use super::output::Output;
use super::parse;
use crate::Client;
use crate::api;
use crate::verify;

#[derive(Subcommand)]
pub(super) enum AuditCmd {
    /// Show the log's origin, verifier key and latest checkpoint.
    Info,
    /// Query records (all given conditions must hold); every proof is verified.
    Query {
        #[command(flatten)]
        filter: FilterArgs,
        /// Start after this log index.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Breach investigation: everything about one subject.
    Timeline {
        #[command(flatten)]
        subject: SubjectArgs,
    },
    /// Fetch the latest checkpoint and check it extends the last one seen (kept in --state).
    Verify {
        /// Where the last verified checkpoint and the pinned key are kept.
        #[arg(
            long,
            env = "INFOSHARE_AUDIT_STATE",
            default_value = "infoshare-audit.state"
        )]
        state: PathBuf,
        /// The log's verifier key, if you have it out of band (else it is pinned on first use).
        #[arg(long)]
        key: Option<String>,
    },
    /// Export a self-contained evidence bundle of the matching records.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// Output file (protobuf EvidenceBundle).
        #[arg(long)]
        out: PathBuf,
    },
    /// Legal holds: keep an exchange's bodies, or every exchange's about a subject, past
    /// retention while an investigation needs them.
    #[command(subcommand)]
    Hold(HoldCmd),
    /// Verify an evidence bundle offline (no server needed).
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// The log's verifier key obtained out of band (else the bundle's own key is used).
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
pub(super) enum HoldCmd {
    /// Place a hold on an exchange (--request) or a subject.
    Place(HoldTargetArgs),
    /// Release a hold.
    Release(HoldTargetArgs),
    /// List the holds in place.
    List,
}

#[derive(Args)]
pub(super) struct HoldTargetArgs {
    /// The exchange (request or proactive disclosure) id.
    #[arg(long = "request")]
    request_id: Option<String>,
    #[command(flatten)]
    subject: SubjectArgs,
}

impl HoldTargetArgs {
    fn request(&self) -> Result<api::LegalHoldRequest, String> {
        Ok(api::LegalHoldRequest {
            request_id: self.request_id.clone().unwrap_or_default(),
            subject: self.subject.query()?,
        })
    }
}

#[derive(Args, Default)]
pub(super) struct SubjectArgs {
    /// Subject's family name (with --given-names and --dob).
    #[arg(long)]
    family_name: Option<String>,
    /// Subject's given names.
    #[arg(long, default_value = "")]
    given_names: String,
    /// Subject's date of birth, YYYY-MM-DD.
    #[arg(long)]
    dob: Option<String>,
    /// Or an identifier, SCHEME=VALUE.
    #[arg(long = "id", value_name = "SCHEME=VALUE")]
    identifier: Option<String>,
}

impl SubjectArgs {
    fn query(&self) -> Result<Option<api::SubjectQuery>, String> {
        if self.family_name.is_none() && self.dob.is_none() && self.identifier.is_none() {
            return Ok(None);
        }
        Ok(Some(api::SubjectQuery {
            family_name: self.family_name.clone().unwrap_or_default(),
            given_names: self.given_names.clone(),
            date_of_birth: self.dob.clone().unwrap_or_default(),
            identifier: self
                .identifier
                .as_deref()
                .map(parse::identifier)
                .transpose()?,
        }))
    }
}

#[derive(Args)]
pub(super) struct FilterArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    /// Records where this agency acted or was the other party.
    #[arg(long)]
    agency: Option<String>,
    /// Records by this staff member, AGENCY:STAFF_ID.
    #[arg(long)]
    staff: Option<String>,
    /// Records under this protocol.
    #[arg(long)]
    protocol: Option<String>,
    /// s66c or s20.
    #[arg(long)]
    authority: Option<String>,
    /// Event type (request-submitted, response-submitted, denied, audit-query, ...).
    #[arg(long)]
    event: Option<String>,
    /// disclose, partial-disclose, decline or denied.
    #[arg(long)]
    decision: Option<String>,
    /// Records for this purpose code (requests, answers and disclosures).
    #[arg(long)]
    purpose: Option<String>,
    /// Records that request or disclose this category.
    #[arg(long)]
    category: Option<String>,
    /// At or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
}

fn timestamp(flag: &str, s: &Option<String>) -> Result<Option<prost_types::Timestamp>, String> {
    s.as_deref()
        .map(|t| {
            let at =
                humantime::parse_rfc3339_weak(t).map_err(|e| format!("--{flag} {t:?}: {e}"))?;
            let d = at
                .duration_since(UNIX_EPOCH)
                .map_err(|_| format!("--{flag}: before 1970"))?;
            Ok(prost_types::Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            })
        })
        .transpose()
}

impl FilterArgs {
    fn filter(&self) -> Result<api::AuditFilter, String> {
        Ok(api::AuditFilter {
            subject: self.subject.query()?,
            agency_id: self.agency.clone().unwrap_or_default(),
            staff: self
                .staff
                .as_deref()
                .map(|s| {
                    let (agency_id, staff_id) = s
                        .split_once(':')
                        .ok_or_else(|| format!("--staff {s:?}: expected AGENCY:STAFF_ID"))?;
                    Ok::<_, String>(api::StaffQuery {
                        agency_id: agency_id.into(),
                        staff_id: staff_id.into(),
                    })
                })
                .transpose()?,
            protocol_id: self.protocol.clone().unwrap_or_default(),
            authority: self
                .authority
                .as_deref()
                .map(parse::authority)
                .transpose()?
                .map_or(0, |a| a as i32),
            event_type: self.event.clone().unwrap_or_default(),
            decision: self.decision.clone().unwrap_or_default(),
            purpose: self.purpose.clone().unwrap_or_default(),
            category: self.category.clone().unwrap_or_default(),
            since: timestamp("since", &self.since)?,
            until: timestamp("until", &self.until)?,
        })
    }
}

/// Offline commands, which must not connect.
pub(super) fn offline(cmd: &AuditCmd, out: &Output) -> Option<Result<(), Failure>> {
    let AuditCmd::VerifyBundle { file, key } = cmd else {
        return None;
    };
    Some(
        (|| {
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let bundle = api::EvidenceBundle::decode(bytes.as_slice())
                .map_err(|e| format!("{}: not an evidence bundle ({e})", file.display()))?;
            let (cp, n) = verify::bundle(&bundle, key.as_deref()).map_err(|e| e.to_string())?;
            out.bundle_verified(&bundle, &cp, n, key.is_some());
            Ok::<(), String>(())
        })()
        .map_err(Failure::from),
    )
}

/// Commands that talk to the broker.
pub(super) async fn run(client: &Client, cmd: AuditCmd, out: &Output) -> Result<(), Failure> {
    match cmd {
        AuditCmd::Info => {
            let info = client.log_info().await?;
            let key = verify::verifier(&info.verifier_key).map_err(|e| e.to_string())?;
            let cp = verify::checkpoint(&info.checkpoint, &key).map_err(|e| e.to_string())?;
            out.log_info(&info, &cp);
        }
        AuditCmd::Query {
            filter,
            after,
            limit,
        } => {
            let r = client.audit_query(filter.filter()?, after, limit).await?;
            verified_records(client, &r, out).await?;
        }
        AuditCmd::Timeline { subject } => {
            let subject = subject.query()?.ok_or("give --family-name/--dob or --id")?;
            let r = client.subject_timeline(subject).await?;
            verified_records(client, &r, out).await?;
        }
        AuditCmd::Verify { state, key } => verify_log(client, &state, key, out).await?,
        AuditCmd::Export { filter, out: path } => {
            let bundle = client.export_bundle(filter.filter()?).await?;
            let (cp, n) = verify::bundle(&bundle, None).map_err(|e| e.to_string())?;
            std::fs::write(&path, bundle.encode_to_vec())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            out.exported(&path, &cp, n, bundle.more);
        }
        AuditCmd::Hold(HoldCmd::Place(t)) => out.holds(
            "placed",
            &client.place_legal_hold(t.request()?).await?.holds,
        ),
        AuditCmd::Hold(HoldCmd::Release(t)) => out.holds(
            "released",
            &client.release_legal_hold(t.request()?).await?.holds,
        ),
        AuditCmd::Hold(HoldCmd::List) => out.holds("", &client.legal_holds().await?.holds),
        AuditCmd::VerifyBundle { .. } => unreachable!("handled offline"),
    }
    Ok(())
}

async fn verified_records(
    client: &Client,
    r: &api::AuditRecordsResponse,
    out: &Output,
) -> Result<(), Failure> {
    let info = client.log_info().await?;
    let key = verify::verifier(&info.verifier_key).map_err(|e| e.to_string())?;
    let cp = verify::records(&r.checkpoint, &r.records, &key).map_err(|e| e.to_string())?;
    out.audit_records(r, &cp);
    Ok(())
}

/// The pinned key and last verified checkpoint.
fn read_state(path: &Path) -> Result<Option<(String, String)>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (key, note) = text
                .split_once('\n')
                .ok_or_else(|| format!("{}: not an audit state file", path.display()))?;
            Ok(Some((key.to_string(), note.to_string())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

async fn verify_log(
    client: &Client,
    state: &Path,
    key: Option<String>,
    out: &Output,
) -> Result<(), Failure> {
    let info = client.log_info().await?;
    let mut previous = read_state(state)?;
    let mut pinned = match (&key, &previous) {
        (Some(k), _) => k.clone(),
        (None, Some((k, _))) => k.clone(),
        (None, None) => info.verifier_key.clone(),
    };
    // Follow the log's key rotations from the pinned key: each statement must be signed by the
    // key trusted so far and by its successor, and its checkpoint must extend the last one
    // verified; only then is the successor trusted.
    let mut followed = Vec::new();
    for statement in &info.key_rotations {
        let (rotation, at) = verify::rotation(statement).map_err(|e| e.to_string())?;
        if rotation.old_key != pinned {
            continue;
        }
        if let Some((_, note)) = &previous {
            let old =
                verify::checkpoint(note, &verify::verifier(&pinned).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            let proof = client.consistency_proof(old.size, at.size).await?;
            verify::consistency(&old, &at, &proof.proof).map_err(|e| e.to_string())?;
        }
        followed.push((rotation.old_key, rotation.new_key.clone(), at.size));
        pinned = rotation.new_key;
        previous = Some((pinned.clone(), rotation.note));
    }
    if pinned != info.verifier_key {
        return Err(format!(
            "the broker's log key {} is not the pinned key {pinned}: do not trust this log until the key change is explained",
            info.verifier_key
        )
        .into());
    }
    let key = verify::verifier(&pinned).map_err(|e| e.to_string())?;
    let new = verify::checkpoint(&info.checkpoint, &key).map_err(|e| e.to_string())?;
    let old = match &previous {
        Some((_, note)) => {
            let old = verify::checkpoint(note, &key).map_err(|e| e.to_string())?;
            let proof = client.consistency_proof(old.size, new.size).await?;
            verify::consistency(&old, &new, &proof.proof).map_err(|e| e.to_string())?;
            Some(old)
        }
        None => None,
    };
    std::fs::write(state, format!("{pinned}\n{}", info.checkpoint))
        .map_err(|e| format!("{}: {e}", state.display()))?;
    out.log_verified(&new, old.as_ref(), &followed);
    Ok(())
}
