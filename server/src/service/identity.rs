//! IdentityService.

use infoshare_proto::v1;
use tonic::{Request, Response, Status};

use super::status;
use crate::access::Operation;
use crate::broker::Broker;
use crate::identity::Role;

/// IdentityService over a broker.
pub struct IdentityApi {
    broker: Broker,
}

impl IdentityApi {
    /// The service.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

#[tonic::async_trait]
impl v1::identity_service_server::IdentityService for IdentityApi {
    async fn who_am_i(
        &self,
        request: Request<v1::WhoAmIRequest>,
    ) -> Result<Response<v1::WhoAmIResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::WhoAmI)
            .await
            .map_err(status::of)?;
        let role = match caller.principal.role {
            Role::Agency => v1::Role::Agency,
            Role::Auditor => v1::Role::Auditor,
            Role::Admin => v1::Role::Admin,
        };
        Ok(Response::new(v1::WhoAmIResponse {
            role: role as i32,
            id: caller.principal.id.clone(),
            display_name: caller.principal.name.clone(),
            spiffe_id: caller.spiffe.clone(),
            certificate_sha256: hex::encode(caller.cert_sha256),
        }))
    }
}
