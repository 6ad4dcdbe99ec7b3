//! The append-only Merkle tree of RFC 9162, kept as C2SP tlog-tiles ([`Tree`]), and its right
//! edge alone for a verifier that reads a log once ([`Frontier`]).

use std::sync::{Arc, Mutex};

use crate::merkle::{Hash, empty_root, node_hash, split};
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileStore};

/// Appends an entry to a tile's levels (`levels[r]`: level `r` within the tile), hashing up
/// every pair it completes.
fn push_within(levels: &mut [Vec<Hash>], entry: Hash) {
    let mut hash = entry;
    for r in 0..levels.len() {
        levels[r].push(hash);
        let len = levels[r].len();
        if !len.is_multiple_of(2) || r + 1 == levels.len() {
            return;
        }
        hash = node_hash(&levels[r][len - 2], &levels[r][len - 1]);
    }
}

/// The root of a full tile's 256 entries.
fn tile_root(entries: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = entries.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// Full tile `(level, index)` from `store`, or, if the store has lost it, made again from the
/// tiles below it (each read or, lost too, made again) or, at level 0, from the leaves, and
/// written back.
fn tile_or_remake(
    store: &dyn TileStore,
    level: u8,
    index: u64,
    leaf: &mut impl FnMut(u64) -> Option<Hash>,
) -> Result<Vec<Hash>, TileError> {
    if let Some(tile) = store.read(level, index) {
        return Ok(tile);
    }
    let hashes = (index * TILE_WIDTH..(index + 1) * TILE_WIDTH)
        .map(|i| match level {
            0 => leaf(i).ok_or_else(|| {
                TileError::Missing(format!(
                    "{} (leaf {i} is not there to make it again)",
                    crate::tiles::tile_path(0, index, TILE_WIDTH)
                ))
            }),
            _ => tile_or_remake(store, level - 1, i, leaf).map(|below| tile_root(&below)),
        })
        .collect::<Result<Vec<Hash>, TileError>>()?;
    store.write(level, index, &hashes);
    Ok(hashes)
}

/// The complete tiles of a tree: in memory (each level's tile entries end to end), or in a store.
#[derive(Clone)]
enum FullTiles {
    Memory(Vec<Vec<Hash>>),
    Store(Arc<dyn TileStore>),
}

/// A full tile with the tree levels inside it worked out: `levels[r]` holds the `256 >> r`
/// hashes of level `8·L + r` that the tile covers.
type Expanded = Arc<Vec<Vec<Hash>>>;

/// Recently expanded tiles by (level, index), oldest first.
type TileCache = Vec<((u8, u64), Expanded)>;

/// Expanded tiles kept for proofs (each 16 KiB): the recent ones serve every new receipt.
const EXPANDED_CACHE: usize = 32;

/// Why a tree could not be opened over a tile store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A full tile the tree needs is not in the store.
    #[error("tile {0} is missing or unreadable")]
    Missing(String),
}

/// An append-only Merkle tree kept as C2SP tlog-tiles (see [`crate::tiles`]): full tiles in
/// memory or in a [`TileStore`], the partial tile of each level in memory with the levels inside
/// it worked out. Memory is O(log n) over a store; a root or proof is O(log² n) hashing, plus
/// up to 255 hashes for each full tile it reads (kept in a small cache).
///
/// Clones share a store: only one of them may push (the log has one writer).
#[derive(Default)]
pub struct Tree {
    size: u64,
    /// Per tile level: the partial tile's levels (`edge[L][r]`, as in [`Expanded`]).
    edge: Vec<Vec<Vec<Hash>>>,
    full: Option<FullTiles>,
    cache: Arc<Mutex<TileCache>>,
}

impl Clone for Tree {
    fn clone(&self) -> Self {
        // A cache of its own: a clone that grows apart must not see the other's tiles.
        Self {
            size: self.size,
            edge: self.edge.clone(),
            full: self.full.clone(),
            cache: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Tree {
    /// An empty tree, its tiles in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree whose full tiles go to `store`.
    pub fn with_store(store: Arc<dyn TileStore>) -> Self {
        Self {
            full: Some(FullTiles::Store(store)),
            ..Self::default()
        }
    }

    /// The tree of `size` leaves whose full tiles are in `store`; `leaf(i)` gives the leaf hashes
    /// of the partial level-0 tile (the last `size % 256` leaves). Reads at most 255 tiles per
    /// level. A tile it needs that the store has lost (the last ones, typically: a crash before
    /// their files were made, a power cut) is made again from the tiles below it, or at level 0
    /// from its 256 leaves, and written back: only what is missing is read again. The caller
    /// checks the root against a signed checkpoint.
    pub fn open(
        store: Arc<dyn TileStore>,
        size: u64,
        mut leaf: impl FnMut(u64) -> Option<Hash>,
    ) -> Result<Self, TileError> {
        let mut tree = Self::with_store(store.clone());
        tree.size = size;
        let mut level = 0u8;
        // Entries of tile level `level` below `size`: size >> 8·level.
        while size >> (TILE_HEIGHT * u32::from(level)) > 0 {
            let entries = size >> (TILE_HEIGHT * u32::from(level));
            let first = entries - entries % TILE_WIDTH;
            let mut edge = vec![Vec::new(); TILE_HEIGHT as usize];
            for i in first..entries {
                let hash = if level == 0 {
                    leaf(i).ok_or_else(|| TileError::Missing(format!("leaf {i}")))?
                } else {
                    tile_root(&tile_or_remake(&*store, level - 1, i, &mut leaf)?)
                };
                push_within(&mut edge, hash);
            }
            tree.edge.push(edge);
            level += 1;
        }
        Ok(tree)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.node(0, index)
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.size += 1;
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.edge.len() == level {
                self.edge.push(vec![Vec::new(); TILE_HEIGHT as usize]);
            }
            push_within(&mut self.edge[level], hash);
            if self.edge[level][0].len() as u64 != TILE_WIDTH {
                return;
            }
            // The tile is full: it is kept, and its root is an entry of the level above.
            let tile = std::mem::replace(
                &mut self.edge[level],
                vec![Vec::new(); TILE_HEIGHT as usize],
            );
            hash = node_hash(&tile[7][0], &tile[7][1]);
            let index = (self.size >> (TILE_HEIGHT * (level as u32 + 1))) - 1;
            match self
                .full
                .get_or_insert_with(|| FullTiles::Memory(Vec::new()))
            {
                FullTiles::Memory(levels) => {
                    if levels.len() == level {
                        levels.push(Vec::new());
                    }
                    levels[level].extend_from_slice(&tile[0]);
                }
                FullTiles::Store(store) => store.write(level as u8, index, &tile[0]),
            }
            self.remember((level as u8, index), Arc::new(tile));
            level += 1;
        }
    }

    /// The full tile `(level, index)`, or the hashes of the partial one (C2SP tlog-tiles: a
    /// partial tile is served with the hashes it has).
    pub fn tile(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        let entries = self.size >> (TILE_HEIGHT * u32::from(level));
        let full = entries / TILE_WIDTH;
        if index < full {
            self.expanded(level, index).map(|t| t[0].clone())
        } else if index == full && !entries.is_multiple_of(TILE_WIDTH) {
            self.edge.get(level as usize).map(|e| e[0].clone())
        } else {
            None
        }
    }

    /// The hash of the complete subtree at tree level `height` and position `index`, if the tree
    /// holds it.
    fn node(&self, height: u32, index: u64) -> Option<Hash> {
        let end = index.checked_add(1)?.checked_shl(height)?;
        if end > self.size {
            return None;
        }
        let (level, r) = (
            (height / TILE_HEIGHT) as u8,
            (height % TILE_HEIGHT) as usize,
        );
        let per_tile = TILE_WIDTH >> r;
        let (tile, at) = (index / per_tile, (index % per_tile) as usize);
        let full = self.size >> (TILE_HEIGHT * (u32::from(level) + 1));
        if tile == full {
            self.edge.get(level as usize)?.get(r)?.get(at).copied()
        } else {
            self.expanded(level, tile)?.get(r)?.get(at).copied()
        }
    }

    fn expanded(&self, level: u8, index: u64) -> Option<Expanded> {
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, t)) = cache.iter().find(|(k, _)| *k == (level, index)) {
                return Some(t.clone());
            }
        }
        let entries = match self.full.as_ref()? {
            FullTiles::Memory(levels) => {
                let at = (index * TILE_WIDTH) as usize;
                levels
                    .get(level as usize)?
                    .get(at..at + TILE_WIDTH as usize)?
                    .to_vec()
            }
            FullTiles::Store(store) => store.read(level, index)?,
        };
        if entries.len() as u64 != TILE_WIDTH {
            return None;
        }
        let mut levels = vec![Vec::new(); TILE_HEIGHT as usize];
        for h in entries {
            push_within(&mut levels, h);
        }
        let tile = Arc::new(levels);
        self.remember((level, index), tile.clone());
        Some(tile)
    }

    fn remember(&self, key: (u8, u64), tile: Expanded) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= EXPANDED_CACHE {
            cache.remove(0);
        }
        cache.push((key, tile));
    }

    /// MTH(D[start:end]).
    fn range(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two()
            && start.is_multiple_of(n)
            && let Some(h) = self.node(n.trailing_zeros(), start / n)
        {
            return h;
        }
        let k = split(n);
        node_hash(&self.range(start, start + k), &self.range(start + k, end))
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Option<Hash> {
        (size <= self.size()).then(|| self.range(0, size))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162
    /// §2.1.3.1), ordered from the leaf up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Some(proof)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.range(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.range(start, start + k));
        }
    }

    /// The consistency proof between the trees of sizes `first` and `second` (RFC 9162
    /// §2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Option<Vec<Hash>> {
        if first > second || second > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range(start, start + k));
        }
    }
}

/// The right edge of a tree being built leaf by leaf: the roots of its complete subtrees,
/// largest first. O(log n) memory; gives the root of the leaves so far, and nothing else (a
/// verifier that reads a log once needs no more).
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// Leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.nodes.pop().expect("a node per set bit");
            hash = node_hash(&left, &hash);
            s >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};

    /// MTH(D[start:end]) straight from RFC 9162's definition.
    fn reference(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    #[derive(Default)]
    struct MemStore(Mutex<std::collections::HashMap<(u8, u64), Vec<Hash>>>);

    impl TileStore for MemStore {
        fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
            self.0.lock().unwrap().get(&(level, index)).cloned()
        }
        fn write(&self, level: u8, index: u64, hashes: &[Hash]) {
            self.0
                .lock()
                .unwrap()
                .insert((level, index), hashes.to_vec());
        }
    }

    /// Past three tile levels (256² leaves), in memory and over a store, opened again at many
    /// sizes: the same roots as the definition, proofs that verify, the same tiles.
    #[test]
    fn tiled_trees_agree_with_the_definition_across_tile_levels() {
        let n = 66_000u64;
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = Arc::new(MemStore::default());
        let mut stored = Tree::with_store(store.clone());
        let mut memory = Tree::new();
        for (i, l) in leaves.iter().enumerate() {
            stored.push(*l);
            memory.push(*l);
            let size = i as u64 + 1;
            if [1, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537].contains(&size) {
                assert_eq!(stored.root(size), Some(reference(&leaves[..size as usize])));
            }
        }
        for size in [
            1, 2, 255, 256, 257, 4096, 65_535, 65_536, 65_537, 65_999, 66_000,
        ] {
            let root = reference(&leaves[..size as usize]);
            let opened =
                Tree::open(store.clone(), size, |i| leaves.get(i as usize).copied()).unwrap();
            for tree in [&stored, &memory, &opened] {
                assert_eq!(tree.root(size), Some(root), "size {size}");
                for index in [0, size / 3, size - 1] {
                    let proof = tree.inclusion_proof(index, size).unwrap();
                    verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
                }
                let old = size / 2;
                if old > 0 {
                    let proof = tree.consistency_proof(old, size).unwrap();
                    verify_consistency(
                        old,
                        size,
                        &proof,
                        &reference(&leaves[..old as usize]),
                        &root,
                    )
                    .unwrap();
                }
            }
            let first = &leaves[..size.min(256) as usize];
            assert!(
                opened.tile(0, 0).as_deref() == Some(first),
                "size {size}: tile 0/0"
            );
            let last_tile = (size - 1) / 256;
            let last = &leaves[(last_tile * 256) as usize..size as usize];
            assert!(
                opened.tile(0, last_tile).as_deref() == Some(last),
                "size {size}: last tile"
            );
            assert!(opened.tile(0, last_tile + 1).is_none());
            assert_eq!(opened.leaf(size - 1), Some(leaves[size as usize - 1]));
        }
        // Tiles lost from the store (the last full one of level 0 and the first of level 1)
        // are made again on opening, from the leaves they cover and the tiles below: only the
        // missing tile's leaves are read, besides the partial tile's.
        let size = 66_000u64;
        let lost = [(0u8, size / 256 - 1), (1u8, 0u64)];
        for key in lost {
            assert!(store.0.lock().unwrap().remove(&key).is_some(), "{key:?}");
        }
        let mut leaves_read = 0;
        let opened = Tree::open(store.clone(), size, |i| {
            leaves_read += 1;
            leaves.get(i as usize).copied()
        })
        .unwrap();
        assert_eq!(opened.root(size), Some(reference(&leaves)));
        assert_eq!(leaves_read, 256 + size % 256);
        for key in lost {
            assert!(
                store.0.lock().unwrap().contains_key(&key),
                "{key:?} written back"
            );
        }
        // Without the leaves to make it from, a lost tile is still an error.
        store.0.lock().unwrap().remove(&lost[0]);
        assert!(
            Tree::open(store.clone(), size, |i| (i >= size - size % 256)
                .then(|| leaves[i as usize]))
            .is_err()
        );

        // The frontier gives the same roots, leaf by leaf.
        let mut frontier = Frontier::default();
        for (i, l) in leaves.iter().enumerate().take(70_000) {
            frontier.push(*l);
            if [1, 2, 3, 255, 256, 257, 65_536, 65_537].contains(&(i + 1)) {
                assert_eq!(
                    frontier.root(),
                    reference(&leaves[..=i]),
                    "frontier at {}",
                    i + 1
                );
            }
        }
        assert_eq!(Frontier::default().root(), empty_root());
        // The opened tree grows on like the one it was opened from.
        let mut opened =
            Tree::open(store.clone(), 65_900, |i| leaves.get(i as usize).copied()).unwrap();
        for l in &leaves[65_900..] {
            opened.push(*l);
        }
        assert_eq!(opened.root(n), Some(reference(&leaves)));
        // A lost tile is made again, never a wrong root.
        store.0.lock().unwrap().remove(&(0, 256));
        let opened = Tree::open(store, 66_000, |i| leaves.get(i as usize).copied()).unwrap();
        assert_eq!(opened.root(66_000), Some(reference(&leaves)));
    }
}
