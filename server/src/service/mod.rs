//! The tonic layer: thin. Each RPC authenticates the caller from its connection, calls the
//! broker, converts the result, and maps errors in one place ([`status`]).

pub mod admin;
pub mod audit;
pub mod convert;
pub mod exchange;
pub mod identity;
pub mod observe;
pub mod protocol;
pub mod status;

use tonic::Request;

use crate::access::Operation;
use crate::broker::{Broker, Caller};
use crate::error::BrokerError;
use crate::tls::PeerInfo;

/// Authenticates and authorises the caller of `request` for `op`, and records it on the span.
pub(crate) async fn caller<T>(
    broker: &Broker,
    request: &Request<T>,
    op: Operation,
) -> Result<Caller, BrokerError> {
    let caller = broker.authenticate(request.extensions().get::<PeerInfo>())?;
    tracing::Span::current().record("caller", caller.spiffe.as_str());
    broker.check_rate(&caller)?;
    broker.authorize(&caller, op).await?;
    Ok(caller)
}
