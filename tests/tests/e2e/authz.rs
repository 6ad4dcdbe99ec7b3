//! The authorisation matrix: every principal role × every RPC, over real mTLS, asserting that
//! the call is either allowed (it may still fail for other reasons, never for the role) or
//! refused exactly (PERMISSION_DENIED, reason ROLE_NOT_ALLOWED); and that an unregistered
//! identity is UNAUTHENTICATED on every RPC.

use crate::common;

use common::{TestEnv, UNREGISTERED};
use infoshare_certs_dev::Role;
use infoshare_client::api;
use infoshare_client::{Client, ClientError};
use infoshare_server::access::{Operation, allowed};
use infoshare_server::identity::Role as ServerRole;
use infoshare_tests::{sample_disclosure, sample_request};
use tonic::Code;

/// Calls the RPC of `op` with minimal input; returns the error, if any.
async fn call(client: &Client, op: Operation) -> Option<ClientError> {
    let id = "0".repeat(32);
    let result = match op {
        Operation::WhoAmI => client.who_am_i().await.map(|_| ()),
        Operation::SubmitRequest => client
            .submit_request(sample_request("msd"), "authz")
            .await
            .map(|_| ()),
        Operation::ListInbox => client.list_inbox(0, 1, false).await.map(|_| ()),
        Operation::SubscribeInbox => client.subscribe_inbox(0).await.map(|_| ()),
        Operation::Acknowledge => client
            .acknowledge(&id, api::MessageKind::Request)
            .await
            .map(|_| ()),
        Operation::Respond => client.respond(&id, sample_disclosure()).await.map(|_| ()),
        Operation::GetRequest => client.get_request(&id).await.map(|_| ()),
        Operation::Disclose => client
            .disclose(api::ProactiveDisclosure::default(), "authz")
            .await
            .map(|_| ()),
        Operation::RegisterProtocol => client.register_protocol("id = \"x\"").await.map(|_| ()),
        Operation::ApproveProtocol => client
            .approve_protocol("attendance", 9, "CPO")
            .await
            .map(|_| ()),
        Operation::ChangeProtocolState => client
            .change_protocol_state("no-such-protocol", api::ProtocolStateChange::Suspend)
            .await
            .map(|_| ()),
        Operation::ListProtocols => client.list_protocols().await.map(|_| ()),
        Operation::RunRetention => client.run_retention().await.map(|_| ()),
        Operation::RotateLogKey => client.rotate_log_key().await.map(|_| ()),
        Operation::GetProtocol => client.get_protocol("attendance", 0).await.map(|_| ()),
        Operation::GetLogInfo => client.log_info().await.map(|_| ()),
        Operation::GetConsistencyProof => client.consistency_proof(1, 0).await.map(|_| ()),
        Operation::GetTile => client.tile("tile/0/000.p/1").await.map(|_| ()),
        Operation::GetRecords => client.audit_records(1, 1).await.map(|_| ()),
        Operation::QueryRecords => client
            .audit_query(api::AuditFilter::default(), 0, 1)
            .await
            .map(|_| ()),
        Operation::SubjectTimeline => client
            .subject_timeline(api::SubjectQuery {
                identifier: Some(api::AgencyIdentifier {
                    scheme: "nhi".into(),
                    value: "X".into(),
                }),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Operation::ExportBundle => client
            .export_bundle(api::AuditFilter::default())
            .await
            .map(|_| ()),
        Operation::PlaceLegalHold => client
            .place_legal_hold(api::LegalHoldRequest {
                request_id: id.clone(),
                subject: None,
            })
            .await
            .map(|_| ()),
        Operation::ReleaseLegalHold => client
            .release_legal_hold(api::LegalHoldRequest {
                request_id: id.clone(),
                subject: None,
            })
            .await
            .map(|_| ()),
        Operation::ListLegalHolds => client.legal_holds().await.map(|_| ()),
        Operation::ListOutbox => client.list_outbox(0, 1, &[]).await.map(|_| ()),
        Operation::WithdrawRequest => client
            .withdraw(&id, "No longer needed.", "authz")
            .await
            .map(|_| ()),
        Operation::SendUpdate => client
            .send_update(&id, api::InformationUpdate::default(), "authz")
            .await
            .map(|_| ()),
        Operation::RunDeadlines => client.run_deadlines().await.map(|_| ()),
    };
    result.err()
}

#[tokio::test]
async fn every_role_gets_exactly_its_operations() {
    let env = TestEnv::new();
    let server = env.start().await;
    let principals = [
        (Role::Agency, "police", ServerRole::Agency),
        (Role::Auditor, "privacy-audit", ServerRole::Auditor),
        (Role::Admin, "registry-admin", ServerRole::Admin),
    ];
    let mut checked = 0;
    for (role, id, server_role) in principals {
        let client = server.client(&env, role, id).await;
        for &op in Operation::ALL {
            let error = call(&client, op).await;
            let refused_for_role = matches!(
                &error,
                Some(ClientError::Rpc(e)) if e.code == Code::PermissionDenied && e.reason.as_deref() == Some("ROLE_NOT_ALLOWED")
            );
            if allowed(server_role, op) {
                assert!(!refused_for_role, "{id} must be allowed {op:?}: {error:?}");
            } else {
                assert!(
                    refused_for_role,
                    "{id} must be refused {op:?} for its role, got {error:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * Operation::ALL.len());

    let ghost = server.agency(&env, UNREGISTERED).await;
    for &op in Operation::ALL {
        match call(&ghost, op).await {
            Some(ClientError::Rpc(e)) => assert_eq!(e.code, Code::Unauthenticated, "{op:?}: {e}"),
            other => panic!("{op:?}: expected UNAUTHENTICATED, got {other:?}"),
        }
    }
}
