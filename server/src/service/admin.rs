//! AdminService.

use infoshare_proto::v1;
use tonic::{Request, Response, Status};

use super::status;
use crate::access::Operation;
use crate::broker::Broker;

/// AdminService over a broker.
pub struct AdminApi {
    broker: Broker,
}

impl AdminApi {
    /// The service.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

#[tonic::async_trait]
impl v1::admin_service_server::AdminService for AdminApi {
    async fn run_retention(
        &self,
        request: Request<v1::RunRetentionRequest>,
    ) -> Result<Response<v1::RunRetentionResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::RunRetention)
            .await
            .map_err(status::of)?;
        let as_of = self.broker.clock().now_ms();
        let purged = self
            .broker
            .run_retention(caller.actor(), as_of)
            .await
            .map_err(status::of)?;
        tracing::info!(purged, "retention run by an administrator");
        Ok(Response::new(v1::RunRetentionResponse {
            purged_exchanges: u32::try_from(purged).unwrap_or(u32::MAX),
            as_of: Some(super::convert::timestamp(as_of)),
        }))
    }

    async fn run_deadlines(
        &self,
        request: Request<v1::RunDeadlinesRequest>,
    ) -> Result<Response<v1::RunDeadlinesResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::RunDeadlines)
            .await
            .map_err(status::of)?;
        let run = self
            .broker
            .run_deadlines(caller.actor())
            .await
            .map_err(status::of)?;
        tracing::info!(
            overdue = run.overdue,
            expired = run.expired,
            "deadline run by an administrator"
        );
        Ok(Response::new(v1::RunDeadlinesResponse {
            overdue: run.overdue,
            expired: run.expired,
            as_of: Some(super::convert::timestamp(run.as_of_ms)),
            more: run.more,
        }))
    }

    async fn rotate_log_key(
        &self,
        request: Request<v1::RotateLogKeyRequest>,
    ) -> Result<Response<v1::RotateLogKeyResponse>, Status> {
        let caller = super::caller(&self.broker, &request, Operation::RotateLogKey)
            .await
            .map_err(status::of)?;
        let statement = self
            .broker
            .rotate_log_key(caller.actor())
            .await
            .map_err(status::of)?;
        Ok(Response::new(v1::RotateLogKeyResponse {
            statement,
            verifier_key: self.broker.ledger().verifier_key().to_string(),
        }))
    }
}
