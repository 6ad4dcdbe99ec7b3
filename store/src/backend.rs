//! The seam between the sequencer and a storage engine. The sequencer decides, orders, hashes
//! and signs; an engine only keeps what it is handed, durably, and reads it back. Every engine
//! (embedded, in-memory, PostgreSQL) keeps the same contract, so the sequencer above it is one.

use std::collections::BTreeMap;

use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::records::{HoldTarget, Record, RequestId};
use crate::views::{self, InboxEntry, KvRead, RequestMeta, ViewError};

/// Inbox items read a round at most (their records and their metas).
const INBOX_READ: usize = 256;

/// An item of an agency's inbox as read, its exchange as it is now.
#[derive(Clone, Debug)]
pub struct InboxRead {
    /// Where it is in the inbox: the index of its record.
    pub cursor: u64,
    /// What it is, and whether its addressee acknowledged it.
    pub entry: InboxEntry,
    /// Its exchange's meta (for a notice, of the request it is about).
    pub meta: RequestMeta,
}

/// A page of an agency's inbox as read.
#[derive(Clone, Debug)]
pub struct InboxPage {
    /// The items, in cursor order.
    pub items: Vec<InboxRead>,
    /// Whether there may be more after `through`.
    pub more: bool,
    /// The cursor of the last item looked at (taken, or skipped as acknowledged): where the
    /// next page begins (the page's `after` if it looked at none).
    pub through: u64,
    /// How many items it looked at.
    pub looked: usize,
}

/// Why an engine could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

impl StorageError {
    /// A storage error saying `what`.
    pub fn new(what: impl std::fmt::Display) -> Self {
        Self(what.to_string())
    }
}

impl From<ViewError> for StorageError {
    fn from(e: ViewError) -> Self {
        Self(e.to_string())
    }
}

/// View writes, in key order: a value to set, or `None` to delete the key.
pub type ViewWrites = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Posting list entries a batch adds (see [`crate::views::KvWrite::post`]): `(prefix, index)`,
/// in log order.
pub type Posted = Vec<(Vec<u8>, u64)>;

/// Keys a batch's view writes set for the first time (see [`crate::views::KvWrite::create`]).
pub type Created = std::collections::HashSet<Vec<u8>>;

/// Visits one view entry (key, value); returns whether to go on.
pub type VisitEntry<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, ViewError> + 'a;
/// Visits one record (index, bytes).
pub type VisitRecord<'a> = dyn FnMut(u64, &[u8]) -> Result<(), StorageError> + 'a;

/// One batch, as the sequencer hands it to the engine: records already numbered and folded.
pub struct Batch<'a> {
    /// The log index of `records[0]` (the log's next index).
    pub first_index: u64,
    /// The records' bytes, in log order.
    pub records: &'a [Vec<u8>],
    /// The bodies the records commit to.
    pub bodies: &'a [BodyEntry],
    /// The view writes the records fold into (key → value, or a deletion).
    pub views: ViewWrites,
    /// The posting list entries they add, apart from `views` (an engine that keeps them as keys
    /// of their own takes them with [`crate::postings::keys`]).
    pub postings: Posted,
    /// The keys of `views` no earlier batch wrote, if the engine asked for them
    /// ([`Backend::wants_created`]); empty otherwise.
    pub created: Created,
    /// The signed checkpoint covering the log once `records` are in it.
    pub checkpoint: &'a str,
}

/// Called once, the moment a submitted batch is durable and visible (see [`Backend::submit`]);
/// dropped uncalled if it never is.
pub type OnDurable = Box<dyn FnOnce() + Send>;

/// A storage engine, driven by exactly one sequencer.
///
/// - `commit` MUST make every body of the batch durable before any of its records, and the
///   records durable, at `first_index..` in order, before the view writes; the view writes MUST
///   be applied all or none, a deletion taking the key away for every reader. It MUST NOT return `Ok` unless all of it would survive a crash
///   (`kill -9`, power loss) — the sequencer answers callers on `Ok`.
/// - After an `Err` the sequencer refuses every later write (fail-stop); the engine MUST NOT
///   need more than a restart to be consistent again (a torn batch is unacknowledged, so an
///   engine may keep or drop it, but never half-apply its views without its records).
/// - The stored checkpoint MUST be the batch's (`checkpoint`) once `commit` returns, durable with
///   the batch's records (a power cut MUST NOT leave records without a checkpoint covering them,
///   nor a checkpoint without its records), and MUST never be replaced by one of a smaller tree.
/// - Every file start-up relies on MUST be synced, and its name synced into its directory, in
///   the order recovery assumes (the embedded engine is held to this by a power-loss
///   simulation).
/// - `erase_bodies` MUST durably erase every listed body that is stored (an erased body reads
///   as `None`) and MUST leave the log untouched; erasing what is not stored is not an error.
/// - Readers handed out MUST see a batch whole or not at all, and only once it is durable (an
///   engine may fold its view writes in later, as long as readers see them from then on).
pub trait Backend: Send + 'static {
    /// Makes `batch` durable, then visible.
    fn commit(&mut self, batch: Batch<'_>) -> Result<(), StorageError>;

    /// Hands `batch` over to be made durable as `commit` does, and calls `on_durable` once it
    /// is; an engine MAY return before then (the batch pending), so that the sequencer decides
    /// the next batch while this one is written (PostgreSQL: a batch's time is mostly the
    /// database's).
    ///
    /// - It MUST call `on_durable` only once the batch is durable and visible to readers, and
    ///   MUST NOT make a pending batch visible before then; it MUST drop it uncalled if the
    ///   batch fails. It MAY call it on another thread, but MUST NOT where its blocking would
    ///   hold up the engine's own reads (it takes the locks of the log's head, which a reader
    ///   may hold while it reads).
    /// - It MUST NOT write any of this batch before the batch submitted before it is durable:
    ///   a failed batch keeps every later one out. An `Err` of `submit` or `settle` is the
    ///   failure of a batch: fail-stop, as for `commit`.
    /// - The caller MUST `settle` before calling anything else of the engine's but `submit`,
    ///   `reader`, `tiles`, `wants_created`, `writes_behind` and `writer_held`.
    fn submit(&mut self, batch: Batch<'_>, on_durable: OnDurable) -> Result<(), StorageError> {
        self.commit(batch)?;
        on_durable();
        Ok(())
    }

    /// Whether `submit` may leave a batch pending.
    fn writes_behind(&self) -> bool {
        false
    }

    /// Returns once the batch `submit` left pending, if any, is durable and visible (its
    /// `on_durable` called), or has failed.
    fn settle(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Whether the caller is still the log's one writer, so that `begin_batch` would be a
    /// no-op (a lease held, see `begin_batch`); an engine with one writer always says yes.
    fn writer_held(&self) -> bool {
        true
    }

    /// Erases these bodies in place.
    fn erase_bodies(&mut self, bodies: &[(MessageKind, RequestId)]) -> Result<(), StorageError>;

    /// Replaces the stored checkpoint outside a batch (a key rotation's cosigned one, of the same
    /// tree).
    fn store_checkpoint(&mut self, note: &str) -> Result<(), StorageError>;

    /// A reader of what is committed.
    fn reader(&self) -> std::sync::Arc<dyn Reader>;

    /// Whether batches MUST say which view keys they set for the first time
    /// ([`Batch::created`]), for an engine that writes those more cheaply than others.
    fn wants_created(&self) -> bool {
        false
    }

    /// Where the engine keeps the Merkle tree's full tiles, if it does; if not, the sequencer
    /// holds the tree in memory, rebuilt from the log at every start. The tiles MUST be kept
    /// beside the log they were derived from (they are checked against its signed checkpoint
    /// at start, and rebuilt if they do not match).
    fn tiles(&self) -> Option<std::sync::Arc<dyn infoshare_tlog::tiles::TileStore>> {
        None
    }

    /// Makes the caller the log's one writer, at least until its next `commit`,
    /// `store_checkpoint` or `end_batch`. An engine that several brokers write (PostgreSQL)
    /// MUST return only once no other writer can commit before then, with its reader showing
    /// every record committed before it returned, so the caller folds those in before it
    /// decides anything. It MAY keep the caller the one writer over several batches (a
    /// lease): then calls while it is held MUST be no-ops, and it MUST end the lease only in a
    /// call of `begin_batch` (whose reader then shows what others committed meanwhile) or of
    /// `end_batch`. An engine with one writer has nothing to do.
    fn begin_batch(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Ends the caller's turn as the one writer (a batch that committed nothing, or a lease
    /// the sequencer no longer needs: it calls this whenever it has nothing queued).
    fn end_batch(&mut self) {}

    /// Brings the reader up to what other writers have committed, without waiting for them.
    fn refresh(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Has the engine call `appended` with the log's new size whenever another writer may have
    /// committed (a hint: it MAY be late, repeated or of the engine's own batches, and MUST
    /// NOT be called on the caller's thread). An engine with one writer never calls it.
    fn watch_others(&mut self, appended: std::sync::Arc<dyn Fn(u64) + Send + Sync>) {
        let _ = appended;
    }
}

/// Read access to an engine's committed state. The view queries are written once, here, over
/// [`Reader::scan`].
///
/// - `get` and `scan` MUST read the views as of a committed batch; `scan` MUST visit keys in
///   ascending byte order and stop when the visitor returns `false`.
/// - `indexed` MUST return the entries of the posting lists (keys under `x`: the audit indexes,
///   the inboxes and the outboxes, see `views`) however the engine stores them; `scan` MAY
///   leave those keys out (an engine may keep them as posting lists), so nothing reads them
///   but `indexed`.
/// - `record` MUST return the bytes committed at `index` (1-based), or an error if there is none.
/// - `body` MUST return `None` for a body never stored or erased, and `body_stored` whether one
///   was ever stored (erased or not).
pub trait Reader: KvRead + Send + Sync {
    /// Visits the view entries with `from <= key < to`, in key order, while `visit` says go on.
    fn scan(&self, from: &[u8], to: &[u8], visit: &mut VisitEntry<'_>) -> Result<(), ViewError>;

    /// Records in the log.
    fn records(&self) -> u64;

    /// The record committed at `index`.
    fn record(&self, index: u64) -> Result<Vec<u8>, StorageError>;

    /// The records committed at `indexes`, in their order. MUST answer as `record` would for
    /// each; a store where each read is a round trip answers them in one, and one whose reads
    /// may wait for a disk asks for them all before waiting for any.
    fn records_at(&self, indexes: &[u64]) -> Result<Vec<Vec<u8>>, StorageError> {
        indexes.iter().map(|i| self.record(*i)).collect()
    }

    /// Visits every record from `from` on, in order (engines may read them faster than one by one).
    fn for_each_record(&self, from: u64, visit: &mut VisitRecord<'_>) -> Result<(), StorageError> {
        for index in from..=self.records() {
            visit(index, &self.record(index)?)?;
        }
        Ok(())
    }

    /// A stored body, or `None` (never stored, or erased).
    fn body(&self, kind: MessageKind, id: &RequestId) -> Result<Option<BodyEntry>, StorageError>;

    /// [`body`](Self::body) of exchange `id`, for a caller that holds its meta as the views
    /// have it (`meta`). MUST answer as `body` would; an engine that finds a body through its
    /// exchange's meta (PostgreSQL) spares the meta's read.
    fn body_in(
        &self,
        kind: MessageKind,
        id: &RequestId,
        meta: &crate::views::RequestMeta,
    ) -> Result<Option<BodyEntry>, StorageError> {
        let _ = meta;
        self.body(kind, id)
    }

    /// Whether a body of `kind` was ever stored for `id` (erased or not).
    fn body_stored(&self, kind: MessageKind, id: &RequestId) -> Result<bool, StorageError>;

    /// `body_stored` of each of `wanted`, in its order. MUST answer as `body_stored` would; a
    /// store where each read is a round trip answers them in one.
    fn bodies_stored(
        &self,
        wanted: &[(MessageKind, RequestId)],
    ) -> Result<Vec<bool>, StorageError> {
        wanted
            .iter()
            .map(|(kind, id)| self.body_stored(*kind, id))
            .collect()
    }

    /// The latest stored checkpoint note, if any.
    fn checkpoint(&self) -> Option<String>;

    /// Up to `limit` exchanges (requests, proactive disclosures, updates) with their metas, in
    /// id order, the first after `after` (from the first if `None`): a page, so that a pass
    /// over every exchange holds one page at a time.
    fn exchanges_page(
        &self,
        after: Option<&RequestId>,
        limit: usize,
    ) -> Result<Vec<(RequestId, views::RequestMeta)>, ViewError> {
        let from = match after {
            // The first key after `r ‖ after`.
            Some(id) => [&b"r"[..], &id.0, &[0]].concat(),
            None => b"r".to_vec(),
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        self.scan(&from, b"s", &mut |k, v| {
            let id = k[1..]
                .try_into()
                .map_err(|_| ViewError::Store("bad request meta key".into()))?;
            out.push((RequestId(id), views::RequestMeta::decode(v)?));
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Up to `limit` inbox items of `agency` with cursor > `after` (only those unacknowledged,
    /// if asked), each with its exchange's meta; it stops once it has looked at about `look`
    /// items (the acknowledged ones it skips cost a record and a meta each), saying so with
    /// `more` and where to go on with `through`.
    fn inbox_page(
        &self,
        agency: &str,
        after: u64,
        limit: usize,
        unacknowledged_only: bool,
        look: usize,
    ) -> Result<InboxPage, ViewError> {
        let prefix = views::inbox_prefix(agency);
        let mut page = InboxPage {
            items: Vec::new(),
            more: false,
            through: after,
            looked: 0,
        };
        loop {
            if page.looked >= look {
                page.more = true;
                return Ok(page);
            }
            // One more than the page holds, to know whether there are more.
            let want = (limit + 1 - page.items.len()).min(INBOX_READ);
            let cursors = self.indexed(&prefix, page.through, want)?;
            for (cursor, (entry, meta)) in cursors.iter().zip(self.inbox_at(agency, &cursors)?) {
                if unacknowledged_only && entry.acknowledged {
                    page.looked += 1;
                    page.through = *cursor;
                    continue;
                }
                if page.items.len() == limit {
                    page.more = true;
                    return Ok(page);
                }
                page.looked += 1;
                page.through = *cursor;
                page.items.push(InboxRead {
                    cursor: *cursor,
                    entry,
                    meta,
                });
            }
            if cursors.len() < want {
                return Ok(page);
            }
        }
    }

    /// `agency`'s inbox items at `cursors` (indexes its inbox lists), each with its exchange's
    /// meta as it is now, in their order: read at once, the records and then the metas.
    fn inbox_at(
        &self,
        agency: &str,
        cursors: &[u64],
    ) -> Result<Vec<(InboxEntry, RequestMeta)>, ViewError> {
        let raws = self
            .records_at(cursors)
            .map_err(|e| ViewError::Store(e.0))?;
        let records = cursors
            .iter()
            .zip(raws)
            .map(|(index, raw)| {
                Record::decode(&raw).map_err(|e| ViewError::Store(format!("record {index}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = cursors
            .iter()
            .zip(&records)
            .map(|(index, record)| {
                record
                    .event
                    .request_id()
                    .map(|id| views::meta_key(&id))
                    .ok_or_else(|| {
                        ViewError::Store(format!("inbox item {index} is of no exchange"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metas = self.get_many(&keys)?;
        cursors
            .iter()
            .zip(records)
            .zip(metas)
            .map(|((index, record), meta)| {
                let meta = meta.ok_or_else(|| {
                    ViewError::Store(format!("inbox item {index}: its exchange has no meta"))
                })?;
                let meta = RequestMeta::decode(&meta)?;
                Ok((views::inbox_entry(agency, *index, &record, &meta)?, meta))
            })
            .collect()
    }

    /// The exchanges `agency` opened with cursor > `after`, in order (cursor, id), while
    /// `visit` says go on.
    fn outbox(
        &self,
        agency: &str,
        after: u64,
        visit: &mut dyn FnMut(u64, RequestId) -> bool,
    ) -> Result<(), ViewError> {
        // A posting list of the openings' indexes: each exchange is read from its record.
        const PAGE: usize = 256;
        let prefix = views::work::outbox_prefix(agency);
        let mut after = after;
        loop {
            let page = self.indexed(&prefix, after, PAGE)?;
            for &index in &page {
                let raw = self.record(index).map_err(|e| ViewError::Store(e.0))?;
                let id = Record::decode(&raw)?
                    .event
                    .opening()
                    .map(|o| o.request_id)
                    .ok_or_else(|| {
                        ViewError::Store(format!("outbox entry {index} opens no exchange"))
                    })?;
                if !visit(index, id) {
                    return Ok(());
                }
            }
            match page.last() {
                Some(&last) if page.len() == PAGE => after = last,
                _ => return Ok(()),
            }
        }
    }

    /// Up to `limit` of the requests awaiting `agency`'s answer after position `after` (see
    /// [`views::work::work_position`]; `None`: from the first), in the order they should be
    /// worked, and whether there are more.
    fn work_page(
        &self,
        agency: &str,
        after: Option<views::work::Position>,
        limit: usize,
    ) -> Result<(Vec<(views::work::Position, RequestId)>, bool), ViewError> {
        let prefix = views::work::work_prefix(agency);
        let start = match after {
            // The first key after `after`: the position with a zero byte appended.
            Some(p) => [prefix.as_slice(), &p, &[0]].concat(),
            None => prefix.clone(),
        };
        let (mut out, mut more) = (Vec::new(), false);
        self.scan(&start, &prefix_end(&prefix), &mut |k, v| {
            if out.len() == limit {
                more = true;
                return Ok(false);
            }
            let position = k
                .get(prefix.len()..)
                .and_then(|p| views::work::Position::try_from(p).ok())
                .ok_or_else(|| ViewError::Store("bad work key".into()))?;
            out.push((position, request_id(v)?));
            Ok(true)
        })?;
        Ok((out, more))
    }

    /// Up to `limit` requests not acknowledged whose collection window ended at or before
    /// `until_ms`, earliest first.
    fn expiring_by(&self, until_ms: u64, limit: usize) -> Result<Vec<RequestId>, ViewError> {
        let kind = views::work::EXPIRY;
        let end = [kind, &until_ms.saturating_add(1).to_be_bytes()].concat();
        let mut out = Vec::new();
        self.scan(kind, &end, &mut |_, v| {
            if out.len() == limit {
                return Ok(false);
            }
            out.push(request_id(v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Up to `limit` requests awaiting an answer, not yet overdue, whose due time is at or
    /// before `until_ms`: read from every agency's work, a range per rank (only what is due is
    /// read).
    fn due_by(&self, until_ms: u64, limit: usize) -> Result<Vec<RequestId>, ViewError> {
        let work = views::work::WORK;
        let (mut out, mut from) = (Vec::new(), work.to_vec());
        let end_of_work = prefix_end(work);
        loop {
            // The next agency with work: the first key from `from` on.
            let mut next = None;
            self.scan(&from, &end_of_work, &mut |k, _| {
                next = Some(k.to_vec());
                Ok(false)
            })?;
            let Some(key) = next else {
                return Ok(out);
            };
            let agency_end = key[work.len()..]
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| ViewError::Store("bad work key".into()))?;
            let prefix = key[..=work.len() + agency_end].to_vec();
            for rank in views::work::OPEN_RANKS {
                let start = [prefix.as_slice(), &[rank]].concat();
                let stop = [start.as_slice(), &until_ms.saturating_add(1).to_be_bytes()].concat();
                self.scan(&start, &stop, &mut |_, v| {
                    if out.len() == limit {
                        return Ok(false);
                    }
                    out.push(request_id(v)?);
                    Ok(true)
                })?;
            }
            if out.len() == limit {
                return Ok(out);
            }
            from = prefix_end(&prefix);
        }
    }

    /// The exchanges linked to `id` (its updates, the requests sent on from it), with the index
    /// of the record that linked each, oldest first.
    fn links(&self, id: &RequestId) -> Result<Vec<(u64, RequestId)>, ViewError> {
        let prefix = views::work::links_prefix(id);
        let mut out = Vec::new();
        self.scan(&prefix, &prefix_end(&prefix), &mut |k, v| {
            out.push((index_after(k, prefix.len(), "link")?, request_id(v)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Log indexes of a request's records, oldest first (see [`views::timeline_of`]).
    fn timeline(&self, id: &RequestId) -> Result<Vec<u64>, ViewError> {
        let prefix = views::timeline_prefix(id);
        let mut keyed = Vec::new();
        self.scan(&prefix, &prefix_end(&prefix), &mut |k, _| {
            keyed.push(index_after(k, prefix.len(), "timeline")?);
            Ok(true)
        })?;
        Ok(views::timeline_of(
            views::request_meta(self, id)?.as_ref(),
            keyed,
        ))
    }

    /// The protocol register's records, in log order.
    fn protocol_records(&self) -> Result<Vec<Record>, ViewError> {
        let prefix = views::PROTOCOL_RECORDS;
        let mut out = Vec::new();
        self.scan(prefix, &prefix_end(prefix), &mut |_, v| {
            out.push(Record::decode(v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Log indexes under an audit index prefix, after `after`, ascending, at most `limit`.
    fn indexed(&self, prefix: &[u8], after: u64, limit: usize) -> Result<Vec<u64>, ViewError> {
        let start = [prefix, &after.saturating_add(1).to_be_bytes()].concat();
        let mut out = Vec::new();
        self.scan(&start, &prefix_end(prefix), &mut |k, _| {
            if out.len() == limit {
                return Ok(false);
            }
            if k.len() == prefix.len() + 8 {
                out.push(index_after(k, prefix.len(), "audit index")?);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// The legal holds in place, with the index of the record that placed each, in target order.
    fn holds(&self) -> Result<Vec<(HoldTarget, u64)>, ViewError> {
        let mut out = Vec::new();
        self.scan(b"h", b"i", &mut |k, v| {
            let Ok(index) = <[u8; 8]>::try_from(v) else {
                return Ok(true); // released
            };
            let target = match (k.get(1), k.len()) {
                (Some(1), 18) => HoldTarget::Exchange(RequestId(k[2..].try_into().expect("16"))),
                (Some(2), 34) => HoldTarget::Subject(k[2..].try_into().expect("32")),
                _ => return Err(ViewError::Store("bad legal hold key".into())),
            };
            out.push((target, u64::from_be_bytes(index)));
            Ok(true)
        })?;
        Ok(out)
    }
}

fn request_id(v: &[u8]) -> Result<RequestId, ViewError> {
    <[u8; 16]>::try_from(v)
        .map(RequestId)
        .map_err(|_| ViewError::Store("bad request id in a view".into()))
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

fn index_after(key: &[u8], at: usize, what: &str) -> Result<u64, ViewError> {
    key.get(at..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ViewError::Store(format!("bad {what} key")))
}
