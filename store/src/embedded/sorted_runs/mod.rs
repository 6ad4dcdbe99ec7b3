//! The idempotency entries (keys under [`views::IDEMPOTENCY`]) as sorted runs in the view
//! store's table, instead of B-tree entries of their own.
//!
//! Their keys end in a hash, so as entries each landed on a random leaf of the B-tree, and the
//! store's once-a-second durable commit wrote about one 4 KiB page a request for them: at
//! 1,000 round trips a second, 585 of the 690 leaves a durable commit wrote, and the log's
//! `fdatasync`s queued behind that burst (the README has the figures). They are only created
//! and read by key — never scanned, changed or deleted — so they can be kept as an LSM keeps
//! them: the entries folded between two durable commits are held in memory ([`Held`]) and
//! written at the durable commit as one run, its entries sorted by id in blocks of about a
//! page, with a Bloom filter and each block's first id in the run's meta. A run's level is
//! its size's (see [`level_of`]); when a level has [`FANOUT`] runs they are merged into one,
//! a slice each durable commit (see [`Compactor`]). A lookup reads at most one block of each
//! run whose filter admits the id.
//!
//! Everything lives in the view store's table and commits with its marks: a crash takes the
//! runs and the marks back together, and opening replays the log from there.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use redb::ReadableTable;

use crate::views::{self, ViewError};

mod compactor;
#[cfg(test)]
mod tests;

pub(super) use compactor::Compactor;

/// What an entry is found by: the SHA-256 of its view key (uniform, so it also feeds the
/// filter's probes directly).
pub(super) type EntryId = [u8; 32];

/// A run's block: key `BLOCK ‖ run:u64be ‖ block:u32be`, entries `id ‖ len:u8 ‖ value`.
const BLOCK: &[u8] = b"K\x00";
/// A run's meta: key `META ‖ run:u64be`.
const META: &[u8] = b"K\x01";
/// A block's entries' bytes, at most: with its key, one block fills one 4 KiB leaf.
const BLOCK_BYTES: usize = 3968;
/// Runs of a level merged into one, of the next level as a rule.
pub(super) const FANOUT: usize = 8;
/// Runs under `LEVEL_BASE × FANOUT` entries are of level 0, then each level `FANOUT` times
/// the last.
const LEVEL_BASE: u64 = 512;
const FILTER_BITS_PER_ENTRY: u64 = 10;
/// Probes of the filter an id makes, all in one 64-byte block of it (one cache line: a lookup
/// checks every live run's filter on the writer's path, and seven lines a run cost more than
/// the B-tree lookup they replace). About 1% false positives at 10 bits an entry.
const PROBES: u64 = 7;
const FILTER_BLOCK_BITS: u64 = 512;

/// Whether `key` is an entry kept here.
pub(super) fn is_entry_key(key: &[u8]) -> bool {
    key.starts_with(views::IDEMPOTENCY)
}

/// Whether `key` is one of the runs' own (a block or a meta): no view may write it, and scans
/// pass over it.
pub(super) fn is_run_key(key: &[u8]) -> bool {
    key.first() == Some(&b'K')
}

pub(super) fn entry_id(key: &[u8]) -> EntryId {
    crate::crypto::sha256(key)
}

/// What a view write of an entry is held as: its id and value, which a block can hold only up
/// to 255 bytes.
pub(super) fn held_entry(key: &[u8], value: &[u8]) -> Result<(EntryId, Vec<u8>), ViewError> {
    if value.len() > usize::from(u8::MAX) {
        return Err(bad("a value is over 255 bytes"));
    }
    Ok((entry_id(key), value.to_vec()))
}

fn bad(what: impl std::fmt::Display) -> ViewError {
    ViewError::Store(format!("idempotency runs: {what}"))
}

fn store_err(e: impl std::fmt::Display) -> ViewError {
    ViewError::Store(e.to_string())
}

fn block_key(run: u64, block: u32) -> Vec<u8> {
    [BLOCK, &run.to_be_bytes(), &block.to_be_bytes()].concat()
}

fn meta_key(run: u64) -> Vec<u8> {
    [META, &run.to_be_bytes()].concat()
}

/// A run's meta, held in memory while the run is live.
#[derive(Debug)]
struct Run {
    id: u64,
    level: u8,
    count: u64,
    filter: Vec<u8>,
    /// Each block's first id, ascending.
    fences: Vec<EntryId>,
}

/// The level of a run of `count` entries. By size rather than by how it was made: a run of a
/// busy second is of a higher level than the runs of quiet ones, and waits there for its
/// like, rather than making the quiet seconds' merges as large as itself (by generation, a
/// merge of eight runs of a busy minute went on for a hundred quiet commits at their rate,
/// and runs piled up meanwhile).
fn level_of(count: u64) -> u8 {
    let (mut level, mut bound) = (0u8, LEVEL_BASE * FANOUT as u64);
    while count >= bound {
        level += 1;
        match bound.checked_mul(FANOUT as u64) {
            Some(next) => bound = next,
            None => break,
        }
    }
    level
}

fn filter_bits(count: u64) -> u64 {
    (count.max(8) * FILTER_BITS_PER_ENTRY).next_multiple_of(FILTER_BLOCK_BITS)
}

/// The filter's bit positions for `id`, out of `bits`: a block chosen by one word of the id,
/// and seven positions in it by nine bits each of another.
fn probes(id: &EntryId, bits: u64) -> impl Iterator<Item = u64> {
    let h1 = u64::from_le_bytes(id[..8].try_into().expect("8"));
    let h2 = u64::from_le_bytes(id[8..16].try_into().expect("8"));
    let block = (h1 % (bits / FILTER_BLOCK_BITS)) * FILTER_BLOCK_BITS;
    (0..PROBES).map(move |j| block + ((h2 >> (9 * j)) & (FILTER_BLOCK_BITS - 1)))
}

fn admit(filter: &mut [u8], id: &EntryId) {
    for b in probes(id, filter.len() as u64 * 8) {
        filter[(b / 8) as usize] |= 1 << (b % 8);
    }
}

impl Run {
    fn may_hold(&self, id: &EntryId) -> bool {
        let bits = self.filter.len() as u64 * 8;
        probes(id, bits).all(|b| self.filter[(b / 8) as usize] & (1 << (b % 8)) != 0)
    }

    /// The block that holds `id` if any does.
    fn block_of(&self, id: &EntryId) -> Option<u32> {
        let after = self.fences.partition_point(|f| f <= id);
        after.checked_sub(1).map(|b| b as u32)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.filter.len() + 32 * self.fences.len());
        out.push(self.level);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&(self.fences.len() as u32).to_be_bytes());
        out.extend_from_slice(&(self.filter.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.filter);
        for f in &self.fences {
            out.extend_from_slice(f);
        }
        out
    }

    fn decode(id: u64, v: &[u8]) -> Result<Self, ViewError> {
        let short = || bad(format!("meta of run {id} is short"));
        let (&level, rest) = v.split_first().ok_or_else(short)?;
        let (count, rest) = rest.split_at_checked(8).ok_or_else(short)?;
        let (blocks, rest) = rest.split_at_checked(4).ok_or_else(short)?;
        let (filter_len, rest) = rest.split_at_checked(4).ok_or_else(short)?;
        let blocks = u32::from_be_bytes(blocks.try_into().expect("4")) as usize;
        let filter_len = u32::from_be_bytes(filter_len.try_into().expect("4")) as usize;
        let (filter, fences) = rest.split_at_checked(filter_len).ok_or_else(short)?;
        let whole_blocks = (filter.len() as u64 * 8).is_multiple_of(FILTER_BLOCK_BITS);
        if filter.is_empty() || !whole_blocks || fences.len() != blocks * 32 {
            return Err(bad(format!("meta of run {id} is malformed")));
        }
        Ok(Self {
            id,
            level,
            count: u64::from_be_bytes(count.try_into().expect("8")),
            filter: filter.to_vec(),
            fences: fences
                .chunks_exact(32)
                .map(|f| f.try_into().expect("32"))
                .collect(),
        })
    }
}

/// The entries of a block, in order.
fn entries(block: &[u8]) -> impl Iterator<Item = Result<(EntryId, &[u8]), ViewError>> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let (id, after) = rest.split_at_checked(32)?;
            let (&len, after) = after.split_first()?;
            let (value, after) = after.split_at_checked(len as usize)?;
            rest = after;
            Some((id.try_into().expect("32"), value))
        })();
        if parsed.is_none() {
            rest = &[];
        }
        Some(parsed.ok_or_else(|| bad("a block is malformed")))
    })
}

/// The live runs, newest first, as of one commit of the table.
#[derive(Debug, Default)]
pub(super) struct Runs(Vec<Arc<Run>>);

type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

impl Runs {
    /// The runs whose metas are in `table`.
    pub(super) fn load(
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ) -> Result<Self, ViewError> {
        let mut runs = Vec::new();
        for item in table.range(META..b"K\x02".as_slice()).map_err(store_err)? {
            let (k, v) = item.map_err(store_err)?;
            let id: [u8; 8] = k.value()[META.len()..]
                .try_into()
                .map_err(|_| bad("a meta key is malformed"))?;
            runs.push(Arc::new(Run::decode(u64::from_be_bytes(id), v.value())?));
        }
        runs.reverse();
        Ok(Self(runs))
    }

    /// The value stored for `id`, read from `table` (the commit these runs are of).
    pub(super) fn get(
        &self,
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        id: &EntryId,
    ) -> Result<Option<Vec<u8>>, ViewError> {
        for run in &self.0 {
            if !run.may_hold(id) {
                continue;
            }
            let Some(block) = run.block_of(id) else {
                continue;
            };
            let stored = table
                .get(block_key(run.id, block).as_slice())
                .map_err(store_err)?
                .ok_or_else(|| bad(format!("block {block} of run {} is missing", run.id)))?;
            for entry in entries(stored.value()) {
                let (found, value) = entry?;
                if &found == id {
                    return Ok(Some(value.to_vec()));
                }
            }
        }
        Ok(None)
    }

    #[cfg(test)]
    pub(super) fn levels(&self) -> Vec<u8> {
        self.0.iter().map(|r| r.level).collect()
    }

    /// The blocks of the live runs.
    #[cfg(test)]
    pub(super) fn blocks(&self) -> usize {
        self.0.iter().map(|r| r.fences.len()).sum()
    }
}

/// The blocks `table` holds, live or not.
#[cfg(test)]
pub(super) fn stored_blocks(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> usize {
    table.range(BLOCK..META).unwrap().count()
}

/// Entries folded since the last durable commit. Readers MUST look here before they take the
/// store's snapshot: entries leave this set only after the snapshot whose runs hold them is
/// published.
#[derive(Default)]
pub(super) struct Held(RwLock<HashMap<EntryId, Vec<u8>>>);

impl Held {
    pub(super) fn get(&self, id: &EntryId) -> Option<Vec<u8>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(super) fn extend(&self, round: impl IntoIterator<Item = (EntryId, Vec<u8>)>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(round);
    }

    /// What is held, with `round` added (its values first), sorted by id: a durable commit's
    /// run.
    pub(super) fn with(&self, round: &[(EntryId, Vec<u8>)]) -> Vec<(EntryId, Vec<u8>)> {
        let mut all = round.to_vec();
        all.extend(
            self.0
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(id, v)| (*id, v.clone())),
        );
        // Stable: of two values for one id, the round's (first) is kept.
        all.sort_by_key(|(id, _)| *id);
        all.dedup_by_key(|(id, _)| *id);
        all
    }

    /// The held entries are in the published snapshot's runs: readers find them there now.
    pub(super) fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
