//! Retention: which exchanges' bodies must be erased as of a time. A pure function of the
//! exchanges (when each was opened, under which protocol version) and the protocol register;
//! the ledger does the erasing and logs it.
//!
//! An exchange's retention runs in New Zealand days from the NZ date it was opened (the request
//! or proactive disclosure) for the `retention_days` of the protocol version it was made under:
//! its bodies are erased from the NZ midnight that begins the day `retention_days` after that
//! date (whatever the time of day it was opened, and across daylight saving changes). The
//! response's body goes with it. Protocol documents are never purged.

use crate::protocol::ProtocolStore;
use crate::records::RequestId;

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
    let ends = crate::calendar::nz_date(opened.time_ms).checked_add(time::Duration::days(
        i64::from(entry.protocol.retention_days),
    ))?;
    Some(crate::calendar::nz_day_start_ms(ends))
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
        // 2027-01-14 12:30 UTC is 2027-01-15 01:30 NZDT: the exchange opened on NZ date
        // 2027-01-15, so 365 days end at NZ midnight beginning 2028-01-15 (2028-01-14 11:00 UTC),
        // not 365 × 24 h later.
        let t0 = 1799929800000; // 2027-01-14 12:30 UTC
        assert_eq!(crate::calendar::nz_date(t0).to_string(), "2027-01-15");
        let youth = opened(1, t0, "youth-reengagement");
        let attendance = opened(2, t0, "attendance");
        let unknown = opened(3, 0, "no-such-protocol");
        let all = [youth.clone(), attendance.clone(), unknown];
        let end = 1831460400000; // 2028-01-14 11:00 UTC
        assert_eq!(expires_at(&youth, &register), Some(end));
        assert!(expired(&all, &register, end - 1).is_empty());
        assert_eq!(expired(&all, &register, end), vec![youth.request_id]);
        assert_eq!(
            expired(&all, &register, end + 366 * 86_400_000),
            vec![youth.request_id, attendance.request_id],
            "an unknown protocol version is never guessed at"
        );
    }
}
