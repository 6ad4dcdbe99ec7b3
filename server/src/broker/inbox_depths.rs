//! The inbox-depth gauge: how many of each agency's inbox items are unacknowledged, counted at
//! every metrics collection without reading every item the inbox ever held. An item is added
//! once (with a cursor above every earlier one) and only ever goes from unacknowledged to
//! acknowledged (or away, with its exchange): so each count reads the items added since the
//! last, and looks again only at those still open then. Its cost is what is new plus what is
//! open, not the inbox's history (which, read whole at every collection, grew with the log).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::store::backend::Reader;
use crate::views::ViewError;

/// Inbox items read per page of new ones.
const PAGE: usize = 1024;

/// What the last count of each agency's inbox found.
#[derive(Default)]
pub(crate) struct InboxDepths {
    by_agency: Mutex<HashMap<String, Depth>>,
}

#[derive(Default)]
struct Depth {
    /// The cursor of the last item read.
    through: u64,
    /// The cursors of the items read and unacknowledged then.
    open: BTreeSet<u64>,
}

impl InboxDepths {
    /// How many of `agency`'s inbox items are unacknowledged now.
    pub(crate) fn count(&self, reader: &dyn Reader, agency: &str) -> Result<u64, ViewError> {
        let mut by_agency = self.by_agency.lock().unwrap_or_else(|e| e.into_inner());
        let depth = by_agency.entry(agency.to_string()).or_default();
        // Those open at the last count: still open?
        let was_open: Vec<u64> = depth.open.iter().copied().collect();
        for chunk in was_open.chunks(PAGE) {
            for (cursor, (entry, _)) in chunk.iter().zip(reader.inbox_at(agency, chunk)?) {
                if entry.acknowledged {
                    depth.open.remove(cursor);
                }
            }
        }
        // Those added since.
        loop {
            let page = reader.inbox_page(agency, depth.through, PAGE, false, usize::MAX)?;
            let more = page.more;
            for item in page.items {
                if !item.entry.acknowledged {
                    depth.open.insert(item.cursor);
                }
                depth.through = item.cursor;
            }
            if !more {
                return Ok(depth.open.len() as u64);
            }
        }
    }
}
