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
        }
    }

    /// Whether the operation shares information (its refusals are audited).
    pub fn shares(self) -> bool {
        matches!(self, Operation::SubmitRequest | Operation::Respond)
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
        ),
        // Auditors and administrators get their own RPCs in later issues; until then they may
        // only ask who they are. They never read message bodies.
        Role::Auditor | Role::Admin => matches!(op, WhoAmI),
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
    fn only_agencies_exchange() {
        for op in Operation::ALL {
            assert!(allowed(Role::Agency, *op), "{op:?}");
            assert_eq!(allowed(Role::Auditor, *op), *op == Operation::WhoAmI);
            assert_eq!(allowed(Role::Admin, *op), *op == Operation::WhoAmI);
        }
    }
}
