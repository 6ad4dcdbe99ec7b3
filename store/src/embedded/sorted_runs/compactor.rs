//! The merges of the runs, a slice each durable commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::ReadableTable;

use super::{
    BLOCK_BYTES, EntryId, FANOUT, Run, Runs, Table, admit, bad, block_key, entries, filter_bits,
    level_of, meta_key, store_err,
};
use crate::views::ViewError;

/// Entries merged each durable commit by each merge under way: one for each entry the commit
/// adds, and [`MERGE_FLOOR`] more. A level's merge moves the `FANOUT` or so runs it has, and
/// the level has `FANOUT` runs again only once as many entries as they hold have come in, so
/// each merge finishes before its level is due again, however many levels there are. (Every
/// entry merged is written again in the same durable commit; twice the rate wrote more pages
/// than it saved.)
const MERGE_PER_ENTRY: u64 = 1;
const MERGE_FLOOR: u64 = 512;
/// A merge under way: key `MERGING ‖ run:u64be` of the run it is writing, whose blocks opening
/// deletes if the merge did not finish.
const MERGING: &[u8] = b"K\x02";

fn merging_key(run: u64) -> Vec<u8> {
    [MERGING, &run.to_be_bytes()].concat()
}

/// The writer's side of the runs: the merges under way, one a level at most, each moved a
/// slice a durable commit so that no commit writes a whole level at once (merging a level in
/// one commit made a durable commit of several MiB, and the log's syncs waited behind it).
pub(in crate::embedded) struct Compactor {
    merges: BTreeMap<u8, Merge>,
    next_id: u64,
}

impl Compactor {
    /// Starts over from what `table` holds: the blocks of merges that did not finish are
    /// deleted (their runs are still live), and those merges begin again when due.
    pub(in crate::embedded) fn open(table: &mut Table<'_>, runs: &Runs) -> Result<Self, ViewError> {
        let mut unfinished = Vec::new();
        for item in table
            .range(MERGING..b"K\x03".as_slice())
            .map_err(store_err)?
        {
            let (k, _) = item.map_err(store_err)?;
            let id: [u8; 8] = k.value()[MERGING.len()..]
                .try_into()
                .map_err(|_| bad("a merge key is malformed"))?;
            unfinished.push(u64::from_be_bytes(id));
        }
        for &id in &unfinished {
            let mut blocks = Vec::new();
            let range = block_key(id, 0)..block_key(id + 1, 0);
            for item in table
                .range(range.start.as_slice()..range.end.as_slice())
                .map_err(store_err)?
            {
                blocks.push(item.map_err(store_err)?.0.value().to_vec());
            }
            for b in blocks {
                table.remove(b.as_slice()).map_err(store_err)?;
            }
            table
                .remove(merging_key(id).as_slice())
                .map_err(store_err)?;
        }
        let next_id = runs
            .0
            .iter()
            .map(|r| r.id)
            .chain(unfinished)
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Self {
            merges: BTreeMap::new(),
            next_id,
        })
    }

    /// Writes `held` into `table` as a new run, starts the merge of each level that
    /// has [`FANOUT`] runs and none under way, and moves every merge under way a slice; gives
    /// the runs as the transaction leaves them. If the transaction does not commit, this
    /// compactor MUST be dropped (it counts its slices as written) and opened again.
    pub(in crate::embedded) fn commit(
        &mut self,
        table: &mut Table<'_>,
        runs: &Runs,
        held: &[(EntryId, Vec<u8>)],
    ) -> Result<Runs, ViewError> {
        let mut runs = runs.0.clone();
        if !held.is_empty() {
            let mut out = RunWriter::new(self.next_id, held.len() as u64);
            self.next_id += 1;
            for (id, value) in held {
                out.push(table, id, value)?;
            }
            runs.insert(0, Arc::new(out.finish(table)?));
        }
        for level in levels_due(&runs, &self.merges) {
            let sources: Vec<_> = runs.iter().filter(|r| r.level == level).cloned().collect();
            let merge = Merge::new(table, sources, self.next_id)?;
            table
                .insert(merging_key(self.next_id).as_slice(), [].as_slice())
                .map_err(store_err)?;
            self.next_id += 1;
            self.merges.insert(level, merge);
        }
        let budget = MERGE_PER_ENTRY * held.len() as u64 + MERGE_FLOOR;
        let mut finished = Vec::new();
        for (&level, merge) in &mut self.merges {
            if merge.step(table, budget)? {
                finished.push(level);
            }
        }
        for level in finished {
            let merge = self.merges.remove(&level).expect("under way");
            let (sources, run) = merge.finish(table)?;
            for source in &sources {
                remove(table, source)?;
            }
            table
                .remove(merging_key(run.id).as_slice())
                .map_err(store_err)?;
            runs.retain(|r| !sources.iter().any(|s| s.id == r.id));
            runs.push(Arc::new(run));
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        Ok(Runs(runs))
    }
}

/// The levels with [`FANOUT`] runs or more and no merge under way (runs that come to a level
/// while it is merged wait for its next merge).
fn levels_due(runs: &[Arc<Run>], merges: &BTreeMap<u8, Merge>) -> Vec<u8> {
    let mut counts = BTreeMap::<u8, usize>::new();
    for r in runs {
        *counts.entry(r.level).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(l, n)| *n >= FANOUT && !merges.contains_key(l))
        .map(|(l, _)| l)
        .collect()
}

fn remove(table: &mut Table<'_>, run: &Run) -> Result<(), ViewError> {
    for b in 0..run.fences.len() as u32 {
        table
            .remove(block_key(run.id, b).as_slice())
            .map_err(store_err)?;
    }
    table
        .remove(meta_key(run.id).as_slice())
        .map(drop)
        .map_err(store_err)
}

/// Runs of one level being merged into one run of the next, their entries read block by block
/// (an id in more than one keeps the newest run's value).
struct Merge {
    sources: Vec<Arc<Run>>,
    cursors: Vec<Cursor>,
    out: RunWriter,
}

impl Merge {
    fn new(table: &Table<'_>, sources: Vec<Arc<Run>>, id: u64) -> Result<Self, ViewError> {
        let mut cursors: Vec<Cursor> = sources.iter().map(|r| Cursor::new(r.clone())).collect();
        for c in &mut cursors {
            c.advance(table)?;
        }
        let out = RunWriter::new(id, sources.iter().map(|r| r.count).sum());
        Ok(Self {
            sources,
            cursors,
            out,
        })
    }

    /// Merges up to `budget` entries; whether every entry is merged.
    fn step(&mut self, table: &mut Table<'_>, budget: u64) -> Result<bool, ViewError> {
        let Self { cursors, out, .. } = self;
        for _ in 0..budget {
            // The smallest id at the cursors; on a tie, the newest run's.
            let Some(at) = (0..cursors.len())
                .filter(|&i| cursors[i].peek().is_some())
                .min_by(|&a, &b| {
                    let (x, y) = (
                        cursors[a].peek().expect("some"),
                        cursors[b].peek().expect("some"),
                    );
                    x.0.cmp(y.0).then(cursors[b].run.id.cmp(&cursors[a].run.id))
                })
            else {
                return Ok(true);
            };
            let (entry_id, value) = cursors[at].peek().expect("some");
            let entry_id = *entry_id;
            out.push(table, &entry_id, value)?;
            for c in cursors.iter_mut() {
                if c.peek().is_some_and(|(i, _)| *i == entry_id) {
                    c.advance(table)?;
                }
            }
        }
        Ok(cursors.iter().all(|c| c.peek().is_none()))
    }

    fn finish(self, table: &mut Table<'_>) -> Result<(Vec<Arc<Run>>, Run), ViewError> {
        Ok((self.sources, self.out.finish(table)?))
    }
}

/// A run read in order, one block at a time.
struct Cursor {
    run: Arc<Run>,
    next_block: u32,
    /// The block being read (checked whole when read) and where its next entry starts.
    block: Vec<u8>,
    at: usize,
}

impl Cursor {
    fn new(run: Arc<Run>) -> Self {
        Self {
            run,
            next_block: 0,
            block: Vec::new(),
            at: 0,
        }
    }

    /// The entry at the cursor, if the run has any left (read without copying: a merge moves
    /// every entry of a level each time).
    fn peek(&self) -> Option<(&EntryId, &[u8])> {
        let rest = self.block.get(self.at..).filter(|r| r.len() > 32)?;
        let (id, rest) = rest.split_at(32);
        let len = usize::from(rest[0]);
        Some((id.try_into().expect("32"), &rest[1..1 + len]))
    }

    /// Moves past the entry at the cursor (or, at first, to the run's first entry).
    fn advance(&mut self, table: &Table<'_>) -> Result<(), ViewError> {
        if let Some((_, value)) = self.peek() {
            self.at += 33 + value.len();
        }
        while self.at >= self.block.len() && (self.next_block as usize) < self.run.fences.len() {
            let key = block_key(self.run.id, self.next_block);
            let stored = table
                .get(key.as_slice())
                .map_err(store_err)?
                .ok_or_else(|| bad(format!("block of run {} is missing", self.run.id)))?;
            entries(stored.value()).try_for_each(|e| e.map(drop))?;
            self.block.clear();
            self.block.extend_from_slice(stored.value());
            self.at = 0;
            self.next_block += 1;
        }
        Ok(())
    }
}

/// A run being written, block by block, in id order.
struct RunWriter {
    run: Run,
    block: Vec<u8>,
    last: Option<EntryId>,
}

impl RunWriter {
    /// `count`: the entries it will hold, at most (sizes the filter).
    fn new(id: u64, count: u64) -> Self {
        Self {
            run: Run {
                id,
                level: 0,
                count: 0,
                filter: vec![0; (filter_bits(count) / 8) as usize],
                fences: Vec::new(),
            },
            block: Vec::with_capacity(BLOCK_BYTES),
            last: None,
        }
    }

    fn push(&mut self, table: &mut Table<'_>, id: &EntryId, value: &[u8]) -> Result<(), ViewError> {
        let len = u8::try_from(value.len()).map_err(|_| bad("a value is over 255 bytes"))?;
        if self.last.is_some_and(|last| last >= *id) {
            return Err(bad("entries out of order"));
        }
        let size = 33 + value.len();
        if !self.block.is_empty() && self.block.len() + size > BLOCK_BYTES {
            self.write_block(table)?;
        }
        if self.block.is_empty() {
            self.run.fences.push(*id);
        }
        self.block.extend_from_slice(id);
        self.block.push(len);
        self.block.extend_from_slice(value);
        admit(&mut self.run.filter, id);
        self.run.count += 1;
        self.last = Some(*id);
        Ok(())
    }

    fn write_block(&mut self, table: &mut Table<'_>) -> Result<(), ViewError> {
        let block = self.run.fences.len() as u32 - 1;
        table
            .insert(
                block_key(self.run.id, block).as_slice(),
                self.block.as_slice(),
            )
            .map_err(store_err)?;
        self.block.clear();
        Ok(())
    }

    fn finish(mut self, table: &mut Table<'_>) -> Result<Run, ViewError> {
        self.run.level = level_of(self.run.count);
        if !self.block.is_empty() {
            self.write_block(table)?;
        }
        table
            .insert(
                meta_key(self.run.id).as_slice(),
                self.run.encode().as_slice(),
            )
            .map_err(store_err)?;
        Ok(self.run)
    }
}
