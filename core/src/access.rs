//! Least privilege per role: which operations each role may call.

use crate::identity::Role;

/// An operation a principal can attempt (one per RPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// IdentityService.WhoAmI.
    WhoAmI,
    /// ExchangeService.SubmitRequest.
    SubmitRequest,
    /// ExchangeService.ListInbox.
    ListInbox,
    /// ExchangeService.SubscribeInbox.
    SubscribeInbox,
    /// ExchangeService.Acknowledge.
    Acknowledge,
    /// ExchangeService.Respond.
    Respond,
    /// ExchangeService.GetRequest.
    GetRequest,
    /// ExchangeService.Disclose.
    Disclose,
    /// ProtocolService.RegisterProtocol.
    RegisterProtocol,
    /// ProtocolService.ApproveProtocol.
    ApproveProtocol,
    /// ProtocolService.ChangeProtocolState.
    ChangeProtocolState,
    /// ProtocolService.ListProtocols.
    ListProtocols,
    /// ProtocolService.GetProtocol.
    GetProtocol,
    /// AuditService.GetLogInfo.
    GetLogInfo,
    /// AuditService.GetConsistencyProof.
    GetConsistencyProof,
    /// AuditService.GetTile.
    GetTile,
    /// AuditService.GetRecords.
    GetRecords,
    /// AuditService.QueryRecords.
    QueryRecords,
    /// AuditService.SubjectTimeline.
    SubjectTimeline,
    /// AuditService.ExportBundle.
    ExportBundle,
    /// AdminService.RunRetention.
    RunRetention,
    /// AdminService.RotateLogKey.
    RotateLogKey,
    /// AuditService.PlaceLegalHold.
    PlaceLegalHold,
    /// AuditService.ReleaseLegalHold.
    ReleaseLegalHold,
    /// AuditService.ListLegalHolds.
    ListLegalHolds,
    /// ExchangeService.ListOutbox.
    ListOutbox,
    /// ExchangeService.WithdrawRequest.
    WithdrawRequest,
    /// ExchangeService.SendUpdate.
    SendUpdate,
    /// AdminService.RunDeadlines.
    RunDeadlines,
}

impl Operation {
    /// Every operation.
    pub const ALL: &'static [Operation] = &[
        Operation::WhoAmI,
        Operation::SubmitRequest,
        Operation::ListInbox,
        Operation::SubscribeInbox,
        Operation::Acknowledge,
        Operation::Respond,
        Operation::GetRequest,
        Operation::Disclose,
        Operation::RegisterProtocol,
        Operation::ApproveProtocol,
        Operation::ChangeProtocolState,
        Operation::ListProtocols,
        Operation::GetProtocol,
        Operation::GetLogInfo,
        Operation::GetConsistencyProof,
        Operation::GetRecords,
        Operation::QueryRecords,
        Operation::SubjectTimeline,
        Operation::ExportBundle,
        Operation::RunRetention,
        Operation::RotateLogKey,
        Operation::PlaceLegalHold,
        Operation::ReleaseLegalHold,
        Operation::ListLegalHolds,
        Operation::GetTile,
        Operation::ListOutbox,
        Operation::WithdrawRequest,
        Operation::SendUpdate,
        Operation::RunDeadlines,
    ];

    /// The stable code used in log records.
    pub fn code(self) -> u8 {
        match self {
            Operation::WhoAmI => 1,
            Operation::SubmitRequest => 2,
            Operation::ListInbox => 3,
            Operation::SubscribeInbox => 4,
            Operation::Acknowledge => 5,
            Operation::Respond => 6,
            Operation::GetRequest => 7,
            Operation::Disclose => 8,
            Operation::RegisterProtocol => 9,
            Operation::ApproveProtocol => 10,
            Operation::ChangeProtocolState => 11,
            Operation::ListProtocols => 12,
            Operation::GetProtocol => 13,
            Operation::GetLogInfo => 14,
            Operation::GetConsistencyProof => 15,
            Operation::GetRecords => 16,
            Operation::QueryRecords => 17,
            Operation::SubjectTimeline => 18,
            Operation::ExportBundle => 19,
            Operation::RunRetention => 20,
            Operation::RotateLogKey => 21,
            Operation::PlaceLegalHold => 22,
            Operation::ReleaseLegalHold => 23,
            Operation::ListLegalHolds => 24,
            Operation::GetTile => 25,
            Operation::ListOutbox => 26,
            Operation::WithdrawRequest => 27,
            Operation::SendUpdate => 28,
            Operation::RunDeadlines => 29,
        }
    }

    /// The operation with this code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|op| op.code() == code)
    }

    /// The RPC name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::WhoAmI => "WhoAmI",
            Operation::SubmitRequest => "SubmitRequest",
            Operation::ListInbox => "ListInbox",
            Operation::SubscribeInbox => "SubscribeInbox",
            Operation::Acknowledge => "Acknowledge",
            Operation::Respond => "Respond",
            Operation::GetRequest => "GetRequest",
            Operation::Disclose => "Disclose",
            Operation::RegisterProtocol => "RegisterProtocol",
            Operation::ApproveProtocol => "ApproveProtocol",
            Operation::ChangeProtocolState => "ChangeProtocolState",
            Operation::ListProtocols => "ListProtocols",
            Operation::GetProtocol => "GetProtocol",
            Operation::GetLogInfo => "GetLogInfo",
            Operation::GetConsistencyProof => "GetConsistencyProof",
            Operation::GetRecords => "GetRecords",
            Operation::QueryRecords => "QueryRecords",
            Operation::SubjectTimeline => "SubjectTimeline",
            Operation::ExportBundle => "ExportBundle",
            Operation::RunRetention => "RunRetention",
            Operation::RotateLogKey => "RotateLogKey",
            Operation::PlaceLegalHold => "PlaceLegalHold",
            Operation::ReleaseLegalHold => "ReleaseLegalHold",
            Operation::ListLegalHolds => "ListLegalHolds",
            Operation::GetTile => "GetTile",
            Operation::ListOutbox => "ListOutbox",
            Operation::WithdrawRequest => "WithdrawRequest",
            Operation::SendUpdate => "SendUpdate",
            Operation::RunDeadlines => "RunDeadlines",
        }
    }

    /// Whether the operation shares information, reads or acts on what another pair
    /// exchanged, or changes a register or a hold: its refusals are audited with the rule that
    /// refused them (domain.md §5, every attempt is accountable).
    pub fn audited(self) -> bool {
        matches!(
            self,
            Operation::SubmitRequest
                | Operation::Respond
                | Operation::Disclose
                | Operation::SendUpdate
                | Operation::WithdrawRequest
                | Operation::Acknowledge
                | Operation::GetRequest
                | Operation::GetProtocol
                | Operation::RegisterProtocol
                | Operation::ApproveProtocol
                | Operation::ChangeProtocolState
                | Operation::PlaceLegalHold
                | Operation::ReleaseLegalHold
        )
    }
}

/// Whether `role` may call `op`. Deny by default: anything not listed is refused.
pub fn allowed(role: Role, op: Operation) -> bool {
    use Operation::*;
    match role {
        Role::Agency => matches!(
            op,
            WhoAmI
                | SubmitRequest
                | ListInbox
                | SubscribeInbox
                | Acknowledge
                | Respond
                | GetRequest
                | Disclose
                | ListOutbox
                | WithdrawRequest
                | SendUpdate
                | ListProtocols
                | GetProtocol
        ),
        // Administrators keep the protocol register; they never see exchanges.
        Role::Admin => matches!(
            op,
            WhoAmI
                | RegisterProtocol
                | ApproveProtocol
                | ChangeProtocolState
                | ListProtocols
                | GetProtocol
                | RunRetention
                | RunDeadlines
                | RotateLogKey
        ),
        // Auditors read the register and the log (coded metadata and proofs); they never read
        // message bodies.
        Role::Auditor => matches!(
            op,
            WhoAmI
                | ListProtocols
                | GetProtocol
                | GetLogInfo
                | GetConsistencyProof
                | GetTile
                | GetRecords
                | QueryRecords
                | SubjectTimeline
                | ExportBundle
                | PlaceLegalHold
                | ReleaseLegalHold
                | ListLegalHolds
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
        }
    }

    #[test]
    fn each_role_gets_only_its_own_operations() {
        use Operation::*;
        for op in Operation::ALL {
            let exchange = matches!(
                op,
                SubmitRequest
                    | ListInbox
                    | SubscribeInbox
                    | Acknowledge
                    | Respond
                    | GetRequest
                    | Disclose
                    | ListOutbox
                    | WithdrawRequest
                    | SendUpdate
            );
            let register_change = matches!(
                op,
                RegisterProtocol
                    | ApproveProtocol
                    | ChangeProtocolState
                    | RunRetention
                    | RunDeadlines
                    | RotateLogKey
            );
            let audit = matches!(
                op,
                GetLogInfo
                    | GetConsistencyProof
                    | GetTile
                    | GetRecords
                    | QueryRecords
                    | SubjectTimeline
                    | ExportBundle
                    | PlaceLegalHold
                    | ReleaseLegalHold
                    | ListLegalHolds
            );
            assert_eq!(
                allowed(Role::Agency, *op),
                !register_change && !audit,
                "{op:?}"
            );
            assert_eq!(allowed(Role::Admin, *op), !exchange && !audit, "{op:?}");
            assert_eq!(
                allowed(Role::Auditor, *op),
                !exchange && !register_change,
                "{op:?}"
            );
        }
    }
}
