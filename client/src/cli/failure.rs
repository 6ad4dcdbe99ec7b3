//! Why a command failed, kept structured so `--json` can say it to a program and the human line
//! can say it to a person.

use serde_json::{Value, json};

use crate::{ClientError, RpcError, code_name};

/// A failed command.
#[derive(Debug)]
pub(super) enum Failure {
    /// The broker, the connection or a local file said no.
    Client(ClientError),
    /// The command line or a local check said no.
    Local(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Local(e)
    }
}

impl From<&str> for Failure {
    fn from(e: &str) -> Self {
        Failure::Local(e.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(e) => e.fmt(f),
            Failure::Local(e) => f.write_str(e),
        }
    }
}

fn receipt(r: &crate::api::Receipt) -> Value {
    json!({
        "log_index": r.log_index,
        "checkpoint": r.checkpoint,
        "inclusion_proof": r.inclusion_proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "record": hex::encode(&r.record),
    })
}

fn rpc(e: &RpcError) -> Value {
    json!({
        "code": code_name(e.code),
        "reason": e.reason,
        "rule": e.rule,
        "field": e.field,
        "message": e.message,
        "receipt": e.receipt.as_deref().map(receipt),
    })
}

impl Failure {
    /// `{"error": {"code", "reason", "rule", "field", "message", "receipt"}}`: the gRPC code
    /// and the broker's details for a refused call; for a failure before any call, code
    /// `UNAVAILABLE` (no connection) or `INVALID_ARGUMENT` (the command line or a local file).
    pub(super) fn json(&self) -> Value {
        let local = |code: &str, message: String| {
            json!({
                "code": code,
                "reason": null,
                "rule": null,
                "field": null,
                "message": message,
                "receipt": null,
            })
        };
        json!({
            "error": match self {
                Failure::Client(ClientError::Rpc(e)) => rpc(e),
                Failure::Client(e @ ClientError::Connect(..)) => local("UNAVAILABLE", e.to_string()),
                Failure::Client(e) => local("INVALID_ARGUMENT", e.to_string()),
                Failure::Local(e) => local("INVALID_ARGUMENT", e.clone()),
            }
        })
    }
}
