//! The caller's lists: its inbox, in delivery order or in priority order, and its outbox. A
//! page is bounded in items, in bytes, and in how many entries it may look at to fill itself.

use super::{Broker, Caller, InboxItem, PAGE_BYTES};
use crate::domain::{MessageKind, NoticeKind, RequestStatus};
use crate::error::BrokerError;
use crate::records::{Record, RequestId};
use crate::store::backend::InboxRead;
use crate::validate;
use crate::views::{self, InboxEntry, RequestMeta};

/// What an inbox item adds to its body when encoded (kind, ids, sender, time, cursor).
const ITEM_OVERHEAD: usize = 320;
/// Entries a page may look at, at most, to fill itself when a filter skips most of them.
pub(crate) const LOOK_MAX: usize = 10_000;

/// Where a page of the inbox in priority order resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageToken {
    /// From the first request awaiting the caller's answer.
    Start,
    /// Among the requests awaiting the caller's answer, after this position.
    Work([u8; 17]),
    /// Among the rest of the inbox, after this cursor.
    Rest(u64),
}

impl PageToken {
    /// Reads a `page_token` ("" is the first page).
    pub fn parse(text: &str) -> Result<Self, BrokerError> {
        let bad = || BrokerError::invalid("page_token", "is not a token this broker gave");
        if text.is_empty() {
            return Ok(Self::Start);
        }
        let (tag, rest) = text.split_at_checked(1).ok_or_else(bad)?;
        match tag {
            "w" => {
                let mut position = [0u8; 17];
                hex::decode_to_slice(rest, &mut position).map_err(|_| bad())?;
                Ok(Self::Work(position))
            }
            "i" if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
                rest.parse().map(Self::Rest).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }

    /// The token a client passes back.
    pub fn render(&self) -> String {
        match self {
            Self::Start => String::new(),
            Self::Work(position) => format!("w{}", hex::encode(position)),
            Self::Rest(cursor) => format!("i{cursor}"),
        }
    }
}

/// One exchange the caller sent, as its outbox shows it.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Its position in the outbox (the index of its opening record).
    pub cursor: u64,
    /// The exchange.
    pub request_id: RequestId,
    /// Where it stands.
    pub meta: RequestMeta,
    /// When it was accepted (Unix ms).
    pub sent_ms: u64,
    /// Its latest record, with its index.
    pub last_event: (u64, Record),
}

/// A page being filled: its items and their bytes.
struct Page {
    items: Vec<InboxItem>,
    bytes: usize,
    limit: usize,
}

impl Page {
    /// Adds `item` unless the page is full (in items, or in bytes once it holds one).
    fn take(&mut self, item: InboxItem) -> bool {
        let size = item.body.as_ref().map_or(0, |b| b.body.len()) + ITEM_OVERHEAD;
        if self.items.len() == self.limit
            || (!self.items.is_empty() && self.bytes + size > PAGE_BYTES)
        {
            return false;
        }
        self.bytes += size;
        self.items.push(item);
        true
    }
}

/// Whether an inbox entry is a request awaiting `agency`'s answer (listed first in priority
/// order).
fn awaits_answer_of(entry: &InboxEntry, meta: &RequestMeta, agency: &str) -> bool {
    entry.kind == MessageKind::Request && meta.recipient == agency && meta.status.awaits_answer()
}

/// Exchanges whose metas are read from the views at once (a round trip each, on PostgreSQL).
const META_BATCH: usize = 256;

impl Broker {
    /// The metas of `ids`, in their order, read at once; every one must exist.
    fn metas(&self, ids: &[RequestId]) -> Result<Vec<RequestMeta>, BrokerError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(views::meta_key).collect();
        let values = self.ledger.views().get_many(&keys)?;
        ids.iter()
            .zip(values)
            .map(|(id, v)| {
                let v = v.ok_or_else(|| BrokerError::Internal(format!("no meta of {id}")))?;
                Ok(RequestMeta::decode(&v).map_err(views::ViewError::from)?)
            })
            .collect()
    }

    /// Inbox items as read, with their bodies.
    fn inbox_items(&self, read: Vec<InboxRead>) -> Result<Vec<InboxItem>, BrokerError> {
        read.into_iter()
            .map(|r| self.inbox_item(r.cursor, r.entry, r.meta))
            .collect()
    }

    /// An inbox entry with the state of its exchange and its body.
    fn inbox_item(
        &self,
        cursor: u64,
        entry: InboxEntry,
        meta: RequestMeta,
    ) -> Result<InboxItem, BrokerError> {
        let body_kind = match (entry.kind, entry.notice) {
            (MessageKind::Notice, Some(NoticeKind::Withdrawn)) => Some(MessageKind::Withdrawal),
            (MessageKind::Notice | MessageKind::Protocol | MessageKind::Withdrawal, _) => None,
            (kind, _) => Some(kind),
        };
        let body = match body_kind {
            Some(kind) => self.ledger.body_in(kind, &entry.request_id, &meta)?,
            None => None,
        };
        Ok(InboxItem {
            cursor,
            purged: body_kind.is_some() && body.is_none(),
            body,
            entry,
            meta,
        })
    }

    /// A page of the caller's inbox after `after`, in delivery order, and whether there is
    /// more.
    pub fn inbox_page(
        &self,
        caller: &Caller,
        after: u64,
        page_size: u32,
        unacknowledged_only: bool,
    ) -> Result<(Vec<InboxItem>, bool), BrokerError> {
        let (items, more, _) =
            self.inbox_page_through(caller, after, page_size, unacknowledged_only)?;
        Ok((items, more))
    }

    /// [`Broker::inbox_page`], and the cursor the next page goes on from: past the
    /// acknowledged items it skipped, when only unacknowledged ones are asked for (a page looks
    /// at [`LOOK_MAX`] items at most, so it may hold none and still have more).
    pub fn inbox_page_through(
        &self,
        caller: &Caller,
        after: u64,
        page_size: u32,
        unacknowledged_only: bool,
    ) -> Result<(Vec<InboxItem>, bool, u64), BrokerError> {
        let limit = validate::page_size(page_size)?;
        let read = self.ledger.views().inbox_page(
            &caller.principal.id,
            after,
            limit,
            unacknowledged_only,
            LOOK_MAX,
        )?;
        let mut page = Page {
            items: Vec::with_capacity(read.items.len()),
            bytes: 0,
            limit,
        };
        let mut through = after;
        for item in self.inbox_items(read.items)? {
            let cursor = item.cursor;
            if !page.take(item) {
                return Ok((page.items, true, through));
            }
            through = cursor;
        }
        Ok((page.items, read.more, through.max(read.through)))
    }

    /// A page of the caller's inbox in priority order — first the requests awaiting its
    /// answer (overdue, then immediate-safety, priority and routine, each by due time), then
    /// every other item in delivery order — from `token`; the token of the next page, if any.
    pub fn inbox_by_priority(
        &self,
        caller: &Caller,
        token: PageToken,
        page_size: u32,
        unacknowledged_only: bool,
    ) -> Result<(Vec<InboxItem>, Option<PageToken>), BrokerError> {
        let limit = validate::page_size(page_size)?;
        let agency = &caller.principal.id;
        let views = self.ledger.views();
        let mut page = Page {
            items: Vec::with_capacity(limit),
            bytes: 0,
            limit,
        };
        let mut after_cursor = match token {
            PageToken::Rest(cursor) => cursor,
            PageToken::Start | PageToken::Work(_) => {
                let mut after = match token {
                    PageToken::Work(position) => Some(position),
                    _ => None,
                };
                loop {
                    let (work, more) = views.work_page(agency, after, limit)?;
                    let ids: Vec<RequestId> = work.iter().map(|(_, id)| *id).collect();
                    // A request's inbox item is its opening record's, read with the metas
                    // already at hand.
                    let metas = self.metas(&ids)?;
                    let cursors: Vec<u64> = metas.iter().map(|m| m.request_idx).collect();
                    let records = self.ledger.decoded_many(&cursors)?;
                    for (((position, id), meta), (cursor, record)) in work
                        .into_iter()
                        .zip(metas)
                        .zip(cursors.into_iter().zip(records))
                    {
                        let entry = views::inbox_entry(agency, cursor, &record, &meta)?;
                        if entry.request_id != id || entry.kind != MessageKind::Request {
                            return Err(BrokerError::Internal(format!(
                                "work item {id} is not a request in the inbox"
                            )));
                        }
                        if unacknowledged_only && entry.acknowledged {
                            after = Some(position);
                            continue;
                        }
                        if !page.take(self.inbox_item(cursor, entry, meta)?) {
                            return Ok((page.items, after.map(PageToken::Work)));
                        }
                        after = Some(position);
                    }
                    if !more {
                        break;
                    }
                    if page.items.len() == limit {
                        return Ok((page.items, after.map(PageToken::Work)));
                    }
                }
                0
            }
        };
        let mut looked = 0;
        loop {
            let room = limit - page.items.len();
            if room == 0 {
                return Ok((page.items, Some(PageToken::Rest(after_cursor))));
            }
            let read = views.inbox_page(
                agency,
                after_cursor,
                room,
                unacknowledged_only,
                LOOK_MAX - looked,
            )?;
            looked += read.looked;
            for item in self.inbox_items(read.items)? {
                let cursor = item.cursor;
                if !awaits_answer_of(&item.entry, &item.meta, agency) && !page.take(item) {
                    return Ok((page.items, Some(PageToken::Rest(after_cursor))));
                }
                after_cursor = cursor;
            }
            // Past the acknowledged items it skipped too.
            after_cursor = after_cursor.max(read.through);
            if !read.more {
                return Ok((page.items, None));
            }
            if looked >= LOOK_MAX {
                return Ok((page.items, Some(PageToken::Rest(after_cursor))));
            }
        }
    }

    /// A page of the exchanges the caller opened after `after`, oldest first, only those in
    /// one of `statuses` (empty: all); the cursor to resume after, and whether there may be
    /// more (a page also stops after looking at [`LOOK_MAX`] exchanges).
    pub fn outbox_page(
        &self,
        caller: &Caller,
        after: u64,
        page_size: u32,
        statuses: &[i32],
    ) -> Result<(Vec<OutboxItem>, u64, bool), BrokerError> {
        let limit = validate::page_size(page_size)?;
        let statuses = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                RequestStatus::from_i32(*s).ok_or_else(|| {
                    BrokerError::invalid(format!("statuses[{i}]"), format!("has no value {s}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let views = self.ledger.views();
        let (mut items, mut next, mut looked) = (Vec::new(), after, 0);
        loop {
            // The next batch of the outbox, and whether there is more after it.
            let mut batch = Vec::new();
            let mut more = false;
            views.outbox(&caller.principal.id, next, &mut |cursor, id| {
                if batch.len() == META_BATCH {
                    more = true;
                    return false;
                }
                batch.push((cursor, id));
                true
            })?;
            let ids: Vec<RequestId> = batch.iter().map(|(_, id)| *id).collect();
            let (mut shown, mut full) = (Vec::new(), false);
            for ((cursor, id), meta) in batch.into_iter().zip(self.metas(&ids)?) {
                if items.len() + shown.len() == limit || looked == LOOK_MAX {
                    full = true;
                    break;
                }
                looked += 1;
                next = cursor;
                if statuses.is_empty() || statuses.contains(&meta.status) {
                    shown.push((cursor, id, meta));
                }
            }
            items.extend(self.outbox_items(shown)?);
            if full || !more {
                return Ok((items, next, full));
            }
        }
    }

    /// Exchanges of the outbox, each with its first and last records (read at once: on
    /// PostgreSQL a read is a round trip).
    fn outbox_items(
        &self,
        shown: Vec<(u64, RequestId, RequestMeta)>,
    ) -> Result<Vec<OutboxItem>, BrokerError> {
        let views = self.ledger.views();
        let lasts = shown
            .iter()
            .map(|(cursor, id, _)| Ok(views.timeline(id)?.last().copied().unwrap_or(*cursor)))
            .collect::<Result<Vec<u64>, BrokerError>>()?;
        let indexes: Vec<u64> = shown
            .iter()
            .zip(&lasts)
            .flat_map(|((_, _, meta), last)| [meta.request_idx, *last])
            .collect();
        let mut records = self.ledger.decoded_many(&indexes)?.into_iter();
        shown
            .into_iter()
            .zip(lasts)
            .map(|((cursor, request_id, meta), last)| {
                let (Some(first), Some(latest)) = (records.next(), records.next()) else {
                    return Err(BrokerError::Internal("a record read short".into()));
                };
                Ok(OutboxItem {
                    cursor,
                    request_id,
                    sent_ms: first.time_ms,
                    last_event: (last, latest),
                    meta,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_strangers_are_refused() {
        for token in [
            PageToken::Start,
            PageToken::Work([7; 17]),
            PageToken::Rest(0),
            PageToken::Rest(u64::MAX),
        ] {
            assert_eq!(PageToken::parse(&token.render()).unwrap(), token);
        }
        for bad in ["x1", "w00", "i", "i-1", "i1a", "w", "é"] {
            assert!(PageToken::parse(bad).is_err(), "{bad}");
        }
    }
}
