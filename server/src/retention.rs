//! Retention: which exchanges' bodies must be erased as of a time. A pure function of the
//! exchanges (when each was opened, under which protocol version) and the protocol register;
//! the ledger does the erasing and logs it.
//!
//! An exchange's retention runs from when it was opened (the request or proactive disclosure)
//! for the `retention_days` of the protocol version it was made under; the response's body
//! goes with it. Protocol documents are never purged.

use crate::protocol::ProtocolStore;
use crate::records::RequestId;

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// An open exchange, as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The exchange.
    pub request_id: RequestId,
    /// When it was opened (Unix ms).
    pub time_ms: u64,
    /// The protocol it was made under.
    pub protocol_id: String,
    /// That protocol's version.
    pub protocol_version: u32,
}

/// When the exchange's bodies expire (Unix ms), or `None` if its protocol version is unknown
/// (then nothing is erased: deleting on a guess is not allowed).
pub fn expires_at(opened: &Opened, register: &ProtocolStore) -> Option<u64> {
    let entry = register.get(&opened.protocol_id, opened.protocol_version)?;
    Some(
        opened
            .time_ms
            .saturating_add(u64::from(entry.protocol.retention_days).saturating_mul(DAY_MS)),
    )
}

/// The exchanges whose retention has ended at `now_ms`.
pub fn expired<'a>(
    exchanges: impl IntoIterator<Item = &'a Opened>,
    register: &ProtocolStore,
    now_ms: u64,
) -> Vec<RequestId> {
    exchanges
        .into_iter()
        .filter(|o| expires_at(o, register).is_some_and(|at| at <= now_ms))
        .map(|o| o.request_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::store as register_with_examples;

    fn opened(id: u8, time_ms: u64, protocol: &str) -> Opened {
        Opened {
            request_id: RequestId([id; 16]),
            time_ms,
            protocol_id: protocol.into(),
            protocol_version: 1,
        }
    }

    #[test]
    fn bodies_expire_exactly_at_the_end_of_their_protocols_retention() {
        let register = register_with_examples();
        // youth-reengagement keeps 365 days, attendance 730.
        let t0 = 1_800_000_000_000;
        let youth = opened(1, t0, "youth-reengagement");
        let attendance = opened(2, t0, "attendance");
        let unknown = opened(3, 0, "no-such-protocol");
        let all = [youth.clone(), attendance.clone(), unknown];
        assert_eq!(expires_at(&youth, &register), Some(t0 + 365 * DAY_MS));
        assert!(expired(&all, &register, t0 + 365 * DAY_MS - 1).is_empty());
        assert_eq!(
            expired(&all, &register, t0 + 365 * DAY_MS),
            vec![youth.request_id]
        );
        assert_eq!(
            expired(&all, &register, t0 + 730 * DAY_MS),
            vec![youth.request_id, attendance.request_id],
            "an unknown protocol version is never guessed at"
        );
    }
}
