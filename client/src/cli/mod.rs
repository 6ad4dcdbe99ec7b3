//! The `infoshare` command line: argument parsing and dispatch (output in `output`).

mod audit;
mod failure;
mod follow;
mod output;
mod parse;
mod terminal;
mod workflow;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::api::{self, MessageKind};
use crate::{Client, ClientError, Identity};
use clap::{Args, Parser, Subcommand};

use failure::Failure;
use output::Output;

/// Send and answer information requests through the infoshare broker (mutual TLS).
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// Directory holding ca.pem, cert.pem and key.pem (as certs-dev writes them).
    #[arg(long, env = "INFOSHARE_IDENTITY", global = true)]
    identity: Option<PathBuf>,
    /// Broker URL, or several comma-separated (brokers on one log): the first that answers is
    /// used, and `inbox --follow` moves to another if its broker goes away.
    #[arg(
        long,
        env = "INFOSHARE_SERVER",
        default_value = "https://localhost:50051",
        global = true
    )]
    server: String,
    /// Print machine-readable JSON (one object per line) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show who the broker says you are.
    Whoami,
    /// Send an information request to another agency.
    Send(SendArgs),
    /// List your inbox, the requests awaiting your answer first (overdue, then by urgency and
    /// due time), or follow it live with --follow.
    Inbox(InboxArgs),
    /// List what you sent (requests, disclosures, updates): status, due time, last event.
    Outbox(workflow::OutboxArgs),
    /// Acknowledge a request sent to you (or, with --response, the answer to your request; with
    /// --disclosure, a proactive disclosure to you; with --update, an update to your request;
    /// with --notice, your notices about a request).
    Ack {
        /// The request's id (32 hex digits, as `submit` or the inbox printed it; for --update,
        /// the update's).
        request_id: String,
        /// Acknowledge the response to your request.
        #[arg(long, group = "what")]
        response: bool,
        /// Acknowledge a proactive disclosure made to you.
        #[arg(long, group = "what")]
        disclosure: bool,
        /// Acknowledge an update to your request.
        #[arg(long, group = "what")]
        update: bool,
        /// Acknowledge your notices (overdue, withdrawn, not delivered) about the request.
        #[arg(long, group = "what")]
        notice: bool,
    },
    /// Answer a request sent to you.
    Respond(RespondArgs),
    /// Show a request, its answer and its timeline.
    Show {
        /// The request's id (32 hex digits, as `submit` or the inbox printed it).
        request_id: String,
    },
    /// Disclose information to another agency on your own initiative.
    Disclose(DiscloseArgs),
    /// Withdraw a request you sent that is not answered yet, with a reason.
    Withdraw(workflow::WithdrawArgs),
    /// Send new information about a request you answered.
    Update(workflow::UpdateArgs),
    /// Send your request on: to the agency its answer suggested (declined as not held), or
    /// again after it expired undelivered.
    Resend(workflow::ResendArgs),
    /// The protocol register: list and show (everyone); register, approve, suspend, resume,
    /// revoke (administrators).
    #[command(subcommand)]
    Protocol(ProtocolCmd),
    /// The audit log (auditors): query, timeline, verify, export, verify-bundle.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Operating the broker (administrators).
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Erase now the message bodies whose protocol's retention period has ended (the broker
    /// also does this on its own, hourly by default). Each erasure is logged.
    Retention,
    /// Mark now the requests past their due time as overdue, and expire those not collected
    /// in time (the broker also does this on its own, every minute by default).
    Deadlines,
    /// Rotate the audit log's signing key (online; the old key cosigns the handover).
    RotateLogKey,
}

#[derive(Subcommand)]
enum ProtocolCmd {
    /// List the protocols you can see.
    List,
    /// Show a protocol version and its document.
    Show {
        /// The protocol's id in the register (e.g. youth-reengagement).
        protocol_id: String,
        /// Version (default: the one in force).
        #[arg(value_name = "VERSION")]
        protocol_version: Option<u32>,
    },
    /// Register a protocol version from a TOML file (see core/samples/protocols/).
    Register {
        /// The TOML document.
        file: PathBuf,
    },
    /// Approve a draft (must be another administrator than the one who registered it).
    Approve {
        /// The protocol's id in the register (e.g. youth-reengagement).
        protocol_id: String,
        /// Draft version.
        #[arg(value_name = "VERSION")]
        protocol_version: u32,
        /// The role you approve in, e.g. "Chief Privacy Officer".
        #[arg(long)]
        role: String,
    },
    /// Suspend the version in force.
    Suspend {
        /// The protocol's id in the register (e.g. youth-reengagement).
        protocol_id: String,
    },
    /// Resume a suspended protocol.
    Resume {
        /// The protocol's id in the register (e.g. youth-reengagement).
        protocol_id: String,
    },
    /// Revoke the version in force (final).
    Revoke {
        /// The protocol's id in the register (e.g. youth-reengagement).
        protocol_id: String,
    },
}

/// What a request and a proactive disclosure both say: to whom, under what, about whom.
#[derive(Args)]
struct Basis {
    /// The other agency (its registered id, e.g. oranga-tamariki).
    #[arg(long)]
    to: String,
    /// Legal authority: s66c (Oranga Tamariki Act) or s20 (Family Violence Act).
    #[arg(long)]
    authority: String,
    /// The information-sharing protocol's id.
    #[arg(long)]
    protocol: String,
    /// The protocol purpose code.
    #[arg(long)]
    purpose: String,
    /// Subject's family name.
    #[arg(long)]
    family_name: String,
    /// Subject's given names.
    #[arg(long, default_value = "")]
    given_names: String,
    /// Subject's date of birth, YYYY-MM-DD.
    #[arg(long)]
    dob: String,
    /// An identifier another agency holds, SCHEME=VALUE (e.g. nhi=ABC1234). Repeatable.
    #[arg(long = "id", value_name = "SCHEME=VALUE")]
    identifiers: Vec<String>,
}

impl Basis {
    fn subject(&self) -> Result<api::Subject, String> {
        Ok(api::Subject {
            family_name: self.family_name.clone(),
            given_names: self.given_names.clone(),
            date_of_birth: self.dob.clone(),
            identifiers: self
                .identifiers
                .iter()
                .map(|s| parse::identifier(s))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Whether the subject was consulted (s66C requires one of the two when sharing).
#[derive(Args)]
struct ConsultArgs {
    /// The subject was consulted.
    #[arg(long, conflicts_with = "not_consulted")]
    consulted: bool,
    /// The subject was not consulted, for this reason.
    #[arg(long, value_name = "REASON")]
    not_consulted: Option<String>,
}

impl ConsultArgs {
    fn record(self) -> Option<api::ConsultationRecord> {
        match (self.consulted, self.not_consulted) {
            (_, Some(reason)) => Some(api::ConsultationRecord {
                status: api::ConsultationStatus::NotConsulted as i32,
                reason_not_consulted: reason,
            }),
            (true, None) => Some(api::ConsultationRecord {
                status: api::ConsultationStatus::Consulted as i32,
                reason_not_consulted: String::new(),
            }),
            (false, None) => None,
        }
    }
}

#[derive(Args)]
struct DiscloseArgs {
    #[command(flatten)]
    basis: Basis,
    /// A disclosed item, CATEGORY:CLASSIFICATION:CONTENT. Repeatable.
    #[arg(
        long = "item",
        value_name = "CATEGORY:CLASSIFICATION:CONTENT",
        required = true
    )]
    items: Vec<String>,
    /// Why the disclosure will help achieve the purpose.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    consultation: ConsultArgs,
    /// Your staff id within your agency.
    #[arg(long)]
    staff_id: String,
    /// Idempotency key (default: random).
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    basis: Basis,
    /// An information category requested. Repeatable.
    #[arg(long = "category", required = true)]
    categories: Vec<String>,
    /// Why the information is needed.
    #[arg(long)]
    reason: String,
    /// routine, priority or immediate-safety.
    #[arg(long, default_value = "routine")]
    urgency: String,
    /// Security classification of the request.
    #[arg(long, default_value = "in-confidence")]
    classification: String,
    #[command(flatten)]
    consultation: ConsultArgs,
    /// Your staff id within your agency.
    #[arg(long)]
    staff_id: String,
    /// Idempotency key: resending with the same key returns the first result. Default: random.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Args)]
struct InboxArgs {
    /// In delivery order, after this cursor (by default the inbox is in priority order).
    #[arg(long, conflicts_with = "page")]
    after: Option<u64>,
    /// In priority order, the page after this token (as the previous page printed it).
    #[arg(long)]
    page: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only items you have not acknowledged.
    #[arg(long)]
    unacked: bool,
    /// Keep the connection open and print items as they arrive.
    #[arg(long, conflicts_with_all = ["unacked", "page"])]
    follow: bool,
}

#[derive(Args)]
struct RespondArgs {
    /// The request's id (32 hex digits, as `submit` or the inbox printed it).
    request_id: String,
    /// disclose, partial or decline.
    #[arg(long)]
    decision: String,
    /// A disclosed item, CATEGORY:CLASSIFICATION:CONTENT. Repeatable.
    #[arg(long = "item", value_name = "CATEGORY:CLASSIFICATION:CONTENT")]
    items: Vec<String>,
    /// Why information is withheld: not-for-purpose, endangers-safety, prejudices-law,
    /// contrary-to-wishes, legal-privilege, not-held.
    #[arg(long)]
    ground: Option<String>,
    /// Explanation for the requester (required when withholding).
    #[arg(long, default_value = "")]
    explanation: String,
    /// With --ground not-held: an agency that may hold the information (a party to the same
    /// protocol); the requester can send the request on to it with `resend`.
    #[arg(long, value_name = "AGENCY")]
    refer_to: Option<String>,
    #[command(flatten)]
    consultation: ConsultArgs,
    /// Your staff id within your agency.
    #[arg(long)]
    staff_id: String,
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return out.fail(&format!("cannot start: {e}").into()),
    };
    match runtime.block_on(run(cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out.fail(&e),
    }
}

async fn protocol(client: &Client, cmd: ProtocolCmd, out: &Output) -> Result<(), ClientError> {
    use api::ProtocolStateChange as Change;
    let change = |id: String, change: Change| async move {
        let r = client.change_protocol_state(&id, change).await?;
        Ok::<_, ClientError>((r.protocol, r.log_index))
    };
    let (summary, index) = match cmd {
        ProtocolCmd::List => {
            out.protocols(&client.list_protocols().await?.protocols);
            return Ok(());
        }
        ProtocolCmd::Show {
            protocol_id,
            protocol_version,
        } => {
            let version = protocol_version.unwrap_or(0);
            out.protocol_detail(&client.get_protocol(&protocol_id, version).await?);
            return Ok(());
        }
        ProtocolCmd::Register { file } => {
            let text = std::fs::read_to_string(&file).map_err(|source| ClientError::Identity {
                path: file.clone(),
                source,
            })?;
            let r = client.register_protocol(&text).await?;
            (r.protocol, r.log_index)
        }
        ProtocolCmd::Approve {
            protocol_id,
            protocol_version,
            role,
        } => {
            let r = client
                .approve_protocol(&protocol_id, protocol_version, &role)
                .await?;
            (r.protocol, r.log_index)
        }
        ProtocolCmd::Suspend { protocol_id } => change(protocol_id, Change::Suspend).await?,
        ProtocolCmd::Resume { protocol_id } => change(protocol_id, Change::Resume).await?,
        ProtocolCmd::Revoke { protocol_id } => change(protocol_id, Change::Revoke).await?,
    };
    if let Some(s) = summary {
        out.protocol_changed(&s, index);
    }
    Ok(())
}

async fn run(cli: Cli, out: &Output) -> Result<(), Failure> {
    if let Cmd::Audit(a) = &cli.command
        && let Some(result) = audit::offline(a, out)
    {
        return result;
    }
    let dir = cli
        .identity
        .ok_or("no identity: pass --identity DIR or set INFOSHARE_IDENTITY")?;
    let identity = Identity::from_dir(&dir)?;
    let done = match &cli.command {
        Cmd::Inbox(a) if a.follow => {
            follow::follow(&cli.server, &identity, a.after.unwrap_or(0), out).await
        }
        _ => match Client::connect(&cli.server, &identity).await {
            Ok(client) => command(cli.command, &client, out).await,
            Err(e) => Err(e.into()),
        },
    };
    // The first URL of a list is the one a refused handshake is asked again of.
    let first = crate::server_list(&cli.server)
        .first()
        .copied()
        .unwrap_or_default();
    match done {
        Err(Failure::Client(e)) => Err(explained(e, first, &identity).await),
        done => done,
    }
}

/// A transport failure is often the broker refusing our certificate in the TLS handshake:
/// ask it on a connection of our own, and say which alert it sent.
async fn explained(e: ClientError, server: &str, identity: &Identity) -> Failure {
    let transport = match &e {
        ClientError::Connect(..) => true,
        ClientError::Rpc(r) => {
            r.reason.is_none()
                && r.tls_alert.is_none()
                && matches!(
                    r.code,
                    tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Unavailable
                )
        }
        _ => false,
    };
    if transport && let Some(refusal) = crate::handshake_refusal(server, identity).await {
        return Failure::Client(refusal.into());
    }
    Failure::Client(e)
}

async fn command(command: Cmd, client: &Client, out: &Output) -> Result<(), Failure> {
    match command {
        Cmd::Whoami => out.whoami(&client.who_am_i().await?),
        Cmd::Admin(AdminCmd::Retention) => out.retention(&client.run_retention().await?),
        Cmd::Admin(AdminCmd::Deadlines) => out.deadlines(&client.run_deadlines().await?),
        Cmd::Outbox(a) => workflow::outbox(client, a, out).await?,
        Cmd::Withdraw(a) => workflow::withdraw(client, a, out).await?,
        Cmd::Update(a) => workflow::update(client, a, out).await?,
        Cmd::Resend(a) => workflow::resend(client, a, out).await?,
        Cmd::Admin(AdminCmd::RotateLogKey) => out.log_key_rotation(&client.rotate_log_key().await?),
        Cmd::Send(a) => {
            let request = api::InformationRequest {
                subject: Some(a.basis.subject()?),
                recipient_agency_id: a.basis.to,
                authority: parse::authority(&a.basis.authority)? as i32,
                protocol_id: a.basis.protocol,
                purpose: a.basis.purpose,
                categories: a.categories,
                reason: a.reason,
                urgency: parse::urgency(&a.urgency)? as i32,
                classification: parse::classification(&a.classification)? as i32,
                consultation: a.consultation.record(),
                staff_id: a.staff_id,
            };
            let key = a.idempotency_key.unwrap_or_else(parse::random_key);
            let sent = client.submit_request(request, &key).await?;
            out.accepted(
                "request",
                &sent.request_id,
                sent.log_index,
                &sent.accepted_at,
                sent.replayed,
                &key,
            );
        }
        // Followed in `run`, reconnecting as needed, never on one client.
        Cmd::Inbox(a) if a.follow => return Err("inbox --follow needs the server list".into()),
        Cmd::Inbox(a) => {
            let page = match a.after {
                Some(after) => client.list_inbox(after, a.limit, a.unacked).await?,
                None => {
                    let token = a.page.unwrap_or_default();
                    client
                        .list_inbox_by_priority(&token, a.limit, a.unacked)
                        .await?
                }
            };
            out.inbox_page(&page);
        }
        Cmd::Ack {
            request_id,
            response,
            disclosure,
            update,
            notice,
        } => {
            let kind = match (response, disclosure, update, notice) {
                (true, ..) => MessageKind::Response,
                (_, true, ..) => MessageKind::Disclosure,
                (_, _, true, _) => MessageKind::Update,
                (.., true) => MessageKind::Notice,
                _ => MessageKind::Request,
            };
            let ack = client.acknowledge(&request_id, kind).await?;
            out.acked(&request_id, &ack);
        }
        Cmd::Respond(a) => {
            let response = api::InformationResponse {
                decision: parse::decision(&a.decision)? as i32,
                items: a
                    .items
                    .iter()
                    .map(|s| parse::item(s))
                    .collect::<Result<_, _>>()?,
                decline_ground: match &a.ground {
                    Some(g) => parse::ground(g)? as i32,
                    None => 0,
                },
                explanation: a.explanation,
                staff_id: a.staff_id,
                consultation: a.consultation.record(),
                referred_agency_id: a.refer_to.unwrap_or_default(),
            };
            let done = client.respond(&a.request_id, response).await?;
            out.responded(&a.request_id, &done);
        }
        Cmd::Show { request_id } => out.detail(&client.get_request(&request_id).await?),
        Cmd::Disclose(a) => {
            let disclosure = api::ProactiveDisclosure {
                subject: Some(a.basis.subject()?),
                recipient_agency_id: a.basis.to,
                authority: parse::authority(&a.basis.authority)? as i32,
                protocol_id: a.basis.protocol,
                purpose: a.basis.purpose,
                items: a
                    .items
                    .iter()
                    .map(|s| parse::item(s))
                    .collect::<Result<_, _>>()?,
                reason: a.reason,
                consultation: a.consultation.record(),
                staff_id: a.staff_id,
            };
            let key = a.idempotency_key.unwrap_or_else(parse::random_key);
            let done = client.disclose(disclosure, &key).await?;
            out.accepted(
                "disclosure",
                &done.request_id,
                done.log_index,
                &done.accepted_at,
                done.replayed,
                &key,
            );
        }
        Cmd::Protocol(p) => protocol(client, p, out).await?,
        Cmd::Audit(a) => audit::run(client, a, out).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
