//! The auditor's queries over the log, in plain Rust: filters over records, answered from the
//! derived audit indexes, each result with its inclusion proof against one signed checkpoint,
//! and each query itself logged (who asked what — identifiers only as pseudonyms — and how many
//! records it returned).

use std::collections::BTreeSet;
use std::sync::Arc;

use infoshare_tlog::merkle::Hash;

use crate::broker::{Broker, Caller};
use crate::crypto::Pseudonym;
use crate::error::BrokerError;
use crate::records::{AuditQueried, Event, Record, RequestId};
pub use infoshare_core::audit_query::{Filter, QueryKind, decision_of};

/// Largest page of audit results.
pub const PAGE_MAX: usize = 500;
/// Most records an evidence bundle holds.
pub const EXPORT_MAX: usize = 10_000;
/// Records an audit query reads from the log at once (on PostgreSQL a read is a round trip:
/// one a record made a page of 50 take 37 ms): enough to fill what is left of the page, within
/// these bounds (a filter no index serves examines records it will not return).
const READ_AT_ONCE_MIN: usize = 16;
const READ_AT_ONCE_MAX: usize = 256;

/// A record with its inclusion proof.
#[derive(Debug, Clone)]
pub struct ProvenRecord {
    /// Its log index.
    pub index: u64,
    /// Its bytes, as the log holds them (what the proof is over).
    pub bytes: Vec<u8>,
    /// Decoded, for the summary.
    pub record: Record,
    /// Its inclusion proof against the answer's checkpoint.
    pub proof: Vec<Hash>,
}

/// The log's identity as an auditor needs it to verify anything the broker hands out.
#[derive(Debug, Clone)]
pub struct LogInfo {
    /// The origin line of its checkpoints.
    pub origin: String,
    /// Its signing key now, with the rotations that led to it.
    pub key: crate::store::ledger::SigningKey,
    /// The latest signed checkpoint.
    pub checkpoint: Arc<str>,
}

/// A consistency proof between two tree sizes, with both roots.
#[derive(Debug, Clone)]
pub struct Consistency {
    /// The proof, RFC 9162 order.
    pub proof: Vec<Hash>,
    /// The root at the first size.
    pub first_root: Hash,
    /// The root at the second size.
    pub second_root: Hash,
    /// The latest signed checkpoint.
    pub checkpoint: Arc<str>,
}

/// Records with proofs against one checkpoint.
#[derive(Debug, Clone)]
pub struct Proven {
    /// The signed checkpoint note.
    pub checkpoint: Arc<str>,
    /// The records, each with its proof.
    pub records: Vec<ProvenRecord>,
    /// The last index examined (for paging).
    pub next_after: u64,
    /// Whether more may match.
    pub more: bool,
}

impl Broker {
    /// The log's origin, signing key (with its rotations) and latest signed checkpoint.
    pub fn log_info(&self) -> LogInfo {
        let head = self.ledger.head();
        LogInfo {
            origin: head.checkpoint.origin.clone(),
            key: head.key.clone(),
            checkpoint: head.note.clone(),
        }
    }

    /// A consistency proof from `first` to `second` (0: latest), with both roots and the
    /// latest checkpoint.
    pub fn consistency(&self, first: u64, second: u64) -> Result<Consistency, BrokerError> {
        let head = self.ledger.head();
        let latest = head.checkpoint.size;
        let second = if second == 0 { latest } else { second };
        if first > second || second > latest {
            return Err(BrokerError::invalid(
                "first_size",
                format!("sizes must satisfy first <= second <= {latest} (the latest checkpoint)"),
            ));
        }
        let beyond = || BrokerError::Internal(format!("size {second} beyond the tree"));
        Ok(Consistency {
            proof: head
                .tree
                .consistency_proof(first, second)
                .ok_or_else(beyond)?,
            first_root: head.tree.root(first).ok_or_else(beyond)?,
            second_root: head.tree.root(second).ok_or_else(beyond)?,
            checkpoint: head.note.clone(),
        })
    }

    /// A tile of the tree by its C2SP tlog-tiles path, as of the latest checkpoint: the hashes
    /// end to end, and that checkpoint. A tile the checkpoint does not yet cover to the width
    /// asked is `NOT_FOUND` (a tlog-tiles client asks for the partial tile then).
    pub fn tile(&self, path: &str) -> Result<(Vec<u8>, Arc<str>), BrokerError> {
        use infoshare_tlog::tiles::{TILE_HEIGHT, TILE_WIDTH, parse_tile_path};
        let (level, index, width) = parse_tile_path(path).ok_or_else(|| {
            BrokerError::invalid(
                "path",
                "not a tile path (tile/<L>/<N> or tile/<L>/<N>.p/<W>)",
            )
        })?;
        let head = self.ledger.head();
        // Hashes of this tile the checkpoint covers (the tree may hold a batch being committed).
        let covered = (head.checkpoint.size >> (TILE_HEIGHT * u32::from(level)))
            .saturating_sub(index.saturating_mul(TILE_WIDTH))
            .min(TILE_WIDTH);
        let hashes = head
            .tree
            .tile(level, index)
            .filter(|h| width <= covered && width <= h.len() as u64)
            .ok_or_else(|| BrokerError::NotFound(format!("no tile {path} in the log yet")))?;
        Ok((hashes[..width as usize].concat(), head.note.clone()))
    }

    /// Proves `indices` against the latest checkpoint, stopping before the answer would pass
    /// [`crate::broker::PAGE_BYTES`]; whether it stopped early.
    fn prove(&self, indices: &[u64]) -> Result<(Arc<str>, Vec<ProvenRecord>, bool), BrokerError> {
        /// A record's summary and framing, beside its bytes and proof.
        const OVERHEAD: usize = 512;
        let head = self.ledger.head();
        let size = head.checkpoint.size;
        let mut out = Vec::with_capacity(indices.len());
        let mut bytes = 0usize;
        // Read a chunk at a time (one round trip each on PostgreSQL): a page may be cut by its
        // size long before an export's last index.
        for chunk in indices.chunks(READ_AT_ONCE_MAX) {
            for (&i, raw) in chunk.iter().zip(self.ledger.records_at(chunk)?) {
                let record = Record::decode(&raw)
                    .map_err(|e| BrokerError::Internal(format!("record {i}: {e}")))?;
                let proof = head.tree.inclusion_proof(i - 1, size).ok_or_else(|| {
                    BrokerError::Internal(format!("record {i} beyond the checkpoint"))
                })?;
                let cost = raw.len() + proof.len() * 34 + OVERHEAD;
                if !out.is_empty() && bytes + cost > crate::broker::PAGE_BYTES {
                    return Ok((head.note.clone(), out, true));
                }
                bytes += cost;
                out.push(ProvenRecord {
                    index: i,
                    bytes: raw,
                    record,
                    proof,
                });
            }
        }
        Ok((head.note.clone(), out, false))
    }

    /// Logs an audit query that takes no filter.
    pub(crate) async fn log_audit_query(
        &self,
        caller: &Caller,
        kind: QueryKind,
        result_count: usize,
    ) -> Result<(), BrokerError> {
        self.log_query(caller, Filter::default().logged(kind, result_count))
            .await
    }

    /// Logs an audit query: who asked (the actor), what, and how many records it returned.
    async fn log_query(&self, caller: &Caller, logged: AuditQueried) -> Result<(), BrokerError> {
        let record = Record {
            time_ms: self.clock.now_ms(),
            actor: caller.actor(),
            event: Event::AuditQueried(logged),
        };
        self.ledger.append(record).await.map(drop)
    }

    /// Matching log indexes after `after`, ascending, at most `limit`; the last index
    /// examined; and whether the limit, or the scan budget (records examined per call, so a
    /// filter no index serves cannot make one call read the whole log), stopped the scan.
    fn matching(
        &self,
        filter: &Filter,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<u64>, u64, bool), BrokerError> {
        const STEP: usize = 1000;
        let budget = self.limiter().limits().audit_scan_budget.max(1);
        let mut examined = 0usize;
        let views = self.ledger.views();
        let prefixes = filter.index_prefixes();
        let mut found = Vec::new();
        let mut cursor = after;
        loop {
            // The next STEP candidates of each prefix, merged. A prefix that returned a full
            // STEP may hold more beyond its last one, so only candidates up to the lowest such
            // horizon are complete in this round.
            let mut candidates = BTreeSet::new();
            let mut horizon = u64::MAX;
            match &prefixes {
                Some(prefixes) => {
                    for p in prefixes {
                        let got = views.indexed(p, cursor, STEP)?;
                        if got.len() == STEP {
                            horizon = horizon.min(*got.last().expect("full"));
                        }
                        candidates.extend(got);
                    }
                }
                None => {
                    let last = self.ledger.head().checkpoint.size;
                    let end = last.min(cursor.saturating_add(STEP as u64));
                    candidates.extend(cursor.saturating_add(1)..=end);
                    if end < last {
                        horizon = end;
                    }
                }
            }
            if candidates.is_empty() {
                return Ok((found, cursor, false));
            }
            let complete: Vec<u64> = candidates
                .into_iter()
                .take_while(|&i| i <= horizon)
                .collect();
            let mut rest = complete.as_slice();
            while !rest.is_empty() {
                if examined == budget {
                    return Ok((found, cursor, true));
                }
                // Read at once (one round trip on PostgreSQL): what the page can still take and
                // one more (to tell whether there is more), within the budget.
                let wanted = (limit - found.len() + 1).clamp(READ_AT_ONCE_MIN, READ_AT_ONCE_MAX);
                let (now, later) = rest.split_at(rest.len().min(wanted).min(budget - examined));
                rest = later;
                for (&i, record) in now.iter().zip(self.ledger.decoded_many(now)?) {
                    examined += 1;
                    if filter.matches(&record) {
                        if found.len() == limit {
                            return Ok((found, cursor, true));
                        }
                        found.push(i);
                    }
                    cursor = i;
                }
            }
            if horizon == u64::MAX {
                return Ok((found, cursor, false));
            }
        }
    }

    /// QueryRecords.
    pub async fn audit_query(
        &self,
        caller: &Caller,
        filter: &Filter,
        after: u64,
        page: usize,
    ) -> Result<Proven, BrokerError> {
        let (indices, next_after, more) = self.matching(filter, after, page.clamp(1, PAGE_MAX))?;
        let (checkpoint, records, cut) = self.prove(&indices)?;
        let more = more || cut;
        self.log_query(caller, filter.logged(QueryKind::Query, records.len()))
            .await?;
        Ok(Proven {
            checkpoint,
            next_after: records.last().map_or(next_after, |r| r.index),
            records,
            more,
        })
    }

    /// ExportBundle.
    pub async fn audit_export(
        &self,
        caller: &Caller,
        filter: &Filter,
    ) -> Result<Proven, BrokerError> {
        let (indices, next_after, more) = self.matching(filter, 0, EXPORT_MAX)?;
        let (checkpoint, records, cut) = self.prove(&indices)?;
        let more = more || cut;
        self.log_query(caller, filter.logged(QueryKind::Export, records.len()))
            .await?;
        Ok(Proven {
            checkpoint,
            records,
            next_after,
            more,
        })
    }

    /// SubjectTimeline: every request and disclosure about the subject, and every event about
    /// those exchanges.
    pub async fn audit_timeline(
        &self,
        caller: &Caller,
        subjects: Vec<Pseudonym>,
    ) -> Result<Proven, BrokerError> {
        let filter = Filter {
            subjects,
            ..Filter::default()
        };
        let (direct, _, _) = self.matching(&filter, 0, EXPORT_MAX)?;
        let mut all = BTreeSet::new();
        let mut exchanges: BTreeSet<RequestId> = BTreeSet::new();
        all.extend(direct.iter().copied());
        for chunk in direct.chunks(READ_AT_ONCE_MAX) {
            for record in self.ledger.decoded_many(chunk)? {
                exchanges.extend(record.event.request_id());
            }
        }
        for id in exchanges {
            all.extend(self.ledger.views().timeline(&id)?);
        }
        let indices: Vec<u64> = all.into_iter().collect();
        let (checkpoint, records, more) = self.prove(&indices)?;
        self.log_query(caller, filter.logged(QueryKind::Timeline, records.len()))
            .await?;
        Ok(Proven {
            checkpoint,
            next_after: records.last().map_or(0, |r| r.index),
            records,
            more,
        })
    }

    /// GetRecords: raw records by index range.
    pub async fn audit_range(
        &self,
        caller: &Caller,
        start: u64,
        count: usize,
    ) -> Result<Proven, BrokerError> {
        if start == 0 {
            return Err(BrokerError::invalid(
                "start_index",
                "log indexes start at 1",
            ));
        }
        if count == 0 || count > PAGE_MAX {
            return Err(BrokerError::invalid(
                "count",
                format!("must be 1..={PAGE_MAX}"),
            ));
        }
        let size = self.ledger.head().checkpoint.size;
        let end = start.saturating_add(count as u64).min(size + 1);
        let indices: Vec<u64> = (start..end).collect();
        let (checkpoint, records, cut) = self.prove(&indices)?;
        self.log_audit_query(caller, QueryKind::Range, records.len())
            .await?;
        Ok(Proven {
            checkpoint,
            next_after: records.last().map_or(start.saturating_sub(1), |r| r.index),
            more: cut || end <= size,
            records,
        })
    }

    /// Pseudonyms of a subject as an auditor identifies them: by name and date of birth, or by
    /// an agency identifier.
    pub fn subject_pseudonyms_for_audit(
        &self,
        name: Option<(&str, &str, &str)>,
        identifier: Option<(&str, &str)>,
    ) -> Vec<Pseudonym> {
        let mut out = Vec::new();
        if let Some((family, given, dob)) = name {
            out.extend(self.keys.subject_by_name_any_form(family, given, dob));
        }
        if let Some((scheme, value)) = identifier {
            out.push(self.keys.subject_by_identifier(scheme, value));
        }
        out
    }

    /// A staff member's pseudonym.
    pub fn staff_pseudonym(&self, agency: &str, staff_id: &str) -> Pseudonym {
        self.keys.staff(agency, staff_id)
    }
}
