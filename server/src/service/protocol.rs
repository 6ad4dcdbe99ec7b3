//! ProtocolService.

use infoshare_proto::v1;
use tonic::{Request, Response, Status};

use super::convert::protocol_summary;
use super::status;
use crate::access::Operation;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::protocol::{ProtocolState, ProtocolStore};

/// ProtocolService over a broker.
pub struct ProtocolApi {
    broker: Broker,
}

impl ProtocolApi {
    /// The service.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }

    fn summary(
        &self,
        store: &ProtocolStore,
        id: &str,
        version: Option<u32>,
    ) -> Result<v1::ProtocolSummary, Status> {
        let entry = match version {
            Some(v) => store.get(id, v),
            None => store.in_force(id).or_else(|| store.versions(id).last()),
        }
        .ok_or_else(|| BrokerError::Internal(format!("protocol {id} missing after change")))
        .map_err(status::of)?;
        Ok(protocol_summary(entry, self.broker.clock().today()))
    }
}

#[tonic::async_trait]
impl v1::protocol_service_server::ProtocolService for ProtocolApi {
    async fn register_protocol(
        &self,
        request: Request<v1::RegisterProtocolRequest>,
    ) -> Result<Response<v1::RegisterProtocolResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::RegisterProtocol)
            .await
            .map_err(status::of)?;
        let done = self
            .broker
            .register_protocol(&caller, &request.get_ref().document_toml)
            .await
            .map_err(status::of)?;
        tracing::info!(protocol = %done.protocol_id, version = done.version, "protocol registered");
        Ok(Response::new(v1::RegisterProtocolResponse {
            protocol: Some(self.summary(&done.register, &done.protocol_id, done.version)?),
            log_index: done.log_index,
        }))
    }

    async fn approve_protocol(
        &self,
        request: Request<v1::ApproveProtocolRequest>,
    ) -> Result<Response<v1::ApproveProtocolResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ApproveProtocol)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let done = self
            .broker
            .approve_protocol(&caller, r)
            .await
            .map_err(status::of)?;
        tracing::info!(protocol = %r.protocol_id, version = r.version, "protocol approved");
        Ok(Response::new(v1::ApproveProtocolResponse {
            protocol: Some(self.summary(&done.register, &done.protocol_id, done.version)?),
            log_index: done.log_index,
        }))
    }

    async fn change_protocol_state(
        &self,
        request: Request<v1::ChangeProtocolStateRequest>,
    ) -> Result<Response<v1::ChangeProtocolStateResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ChangeProtocolState)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let state = match v1::ProtocolStateChange::try_from(r.change) {
            Ok(v1::ProtocolStateChange::Suspend) => ProtocolState::Suspended,
            Ok(v1::ProtocolStateChange::Resume) => ProtocolState::Active,
            Ok(v1::ProtocolStateChange::Revoke) => ProtocolState::Revoked,
            _ => {
                return Err(status::of(BrokerError::invalid(
                    "change",
                    "must be SUSPEND, RESUME or REVOKE",
                )));
            }
        };
        let done = self
            .broker
            .change_protocol_state(&caller, &r.protocol_id, state)
            .await
            .map_err(status::of)?;
        tracing::info!(protocol = %r.protocol_id, state = state.as_str(), "protocol state changed");
        Ok(Response::new(v1::ChangeProtocolStateResponse {
            protocol: Some(self.summary(&done.register, &done.protocol_id, None)?),
            log_index: done.log_index,
        }))
    }

    async fn list_protocols(
        &self,
        request: Request<v1::ListProtocolsRequest>,
    ) -> Result<Response<v1::ListProtocolsResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::ListProtocols)
            .await
            .map_err(status::of)?;
        let visible = self.broker.protocols_visible(&caller);
        let today = self.broker.clock().today();
        let protocols = visible
            .entries()
            .map(|e| protocol_summary(e, today))
            .collect();
        Ok(Response::new(v1::ListProtocolsResponse { protocols }))
    }

    async fn get_protocol(
        &self,
        request: Request<v1::GetProtocolRequest>,
    ) -> Result<Response<v1::GetProtocolResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::GetProtocol)
            .await
            .map_err(status::of)?;
        let r = request.get_ref();
        let entry = self
            .broker
            .get_protocol(&caller, &r.protocol_id, r.version)
            .await
            .map_err(status::of)?;
        Ok(Response::new(v1::GetProtocolResponse {
            protocol: Some(protocol_summary(&entry, self.broker.clock().today())),
            document_toml: entry.document.to_string(),
        }))
    }
}
