//! RFC 9162 §2.1 Merkle tree hashing, proofs and verification.

use std::sync::{Arc, Mutex};

use ring::digest::{Context, SHA256};

use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileStore};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes cannot be proven (e.g. index beyond the tree).
    #[error("invalid proof parameters: {0}")]
    Parameters(&'static str),
    /// The proof has the wrong number of hashes.
    #[error("proof has the wrong length")]
    Length,
    /// The proof does not lead to the expected root.
    #[error("proof does not match the root")]
    Mismatch,
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The hash of a log entry: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0], entry])
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[1], left, right])
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[])
}

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

/// The largest power of two strictly less than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
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
    /// level. The caller checks the root against a signed checkpoint.
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
                    let below = store.read(level - 1, i).ok_or_else(|| {
                        TileError::Missing(crate::tiles::tile_path(level - 1, i, TILE_WIDTH))
                    })?;
                    tile_root(&below)
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

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::Parameters("leaf index beyond the tree"));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::Parameters(
            "second tree is smaller than the first",
        ));
    }
    if size1 == size2 {
        return if !proof.is_empty() {
            Err(ProofError::Length)
        } else if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if size1 == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Length);
    }
    let mut hashes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        hashes.push(*root1);
    }
    hashes.extend_from_slice(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (hashes[0], hashes[0]);
    for c in &hashes[1..] {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if fr == *root1 && sr == *root2 {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from transparency-dev/merkle (proof/verify_test.go), which come from the
    //! Certificate Transparency reference implementation.
    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    fn roots() -> Vec<Hash> {
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ]
        .iter()
        .map(|s| h(s))
        .collect()
    }

    fn tree() -> Tree {
        let mut t = Tree::new();
        for l in leaves() {
            t.push(leaf_hash(&l));
        }
        t
    }

    /// (leaf index, tree size, proof)
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (size1, size2, proof)
    fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(Tree::new().root(0), Some(empty_root()));
    }

    #[test]
    fn roots_match_the_reference() {
        let t = tree();
        for (size, root) in roots().iter().enumerate() {
            assert_eq!(t.root(size as u64 + 1).unwrap(), *root, "size {}", size + 1);
        }
    }

    #[test]
    fn inclusion_proofs_match_and_verify() {
        let t = tree();
        let roots = roots();
        for (index, size, expected) in inclusion_vectors() {
            let proof = t.inclusion_proof(index, size).unwrap();
            assert_eq!(proof, expected, "inclusion {index} in {size}");
            let leaf = leaf_hash(&leaves()[index as usize]);
            let root = roots[size as usize - 1];
            verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
            // Corruptions never verify.
            assert!(verify_inclusion(index, size, &leaf_hash(b"wrong"), &proof, &root).is_err());
            assert!(verify_inclusion(index + 1, size, &leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index, size * 2, &leaf, &proof, &root).is_err());
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(index, size, &leaf, &longer, &root).is_err());
            for i in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[i][0] ^= 8;
                assert!(verify_inclusion(index, size, &leaf, &flipped, &root).is_err());
                let mut shorter = proof.clone();
                shorter.remove(i);
                assert!(verify_inclusion(index, size, &leaf, &shorter, &root).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_match_and_verify() {
        let t = tree();
        let roots = roots();
        for (size1, size2, expected) in consistency_vectors() {
            let proof = t.consistency_proof(size1, size2).unwrap();
            assert_eq!(proof, expected, "consistency {size1}..{size2}");
            let (r1, r2) = (roots[size1 as usize - 1], roots[size2 as usize - 1]);
            verify_consistency(size1, size2, &proof, &r1, &r2).unwrap();
            if !proof.is_empty() {
                assert!(verify_consistency(size1, size2, &proof, &r2, &r1).is_err());
                assert!(verify_consistency(size1 + 1, size2, &proof, &r1, &r2).is_err());
                assert!(
                    verify_consistency(size1, size2, &proof[..proof.len() - 1], &r1, &r2).is_err()
                );
                for i in 0..proof.len() {
                    let mut flipped = proof.clone();
                    flipped[i][0] ^= 16;
                    assert!(verify_consistency(size1, size2, &flipped, &r1, &r2).is_err());
                }
            }
        }
    }

    #[test]
    fn every_proof_of_a_larger_tree_verifies() {
        let mut t = Tree::new();
        for i in 0u32..70 {
            t.push(leaf_hash(&i.to_be_bytes()));
        }
        for size in 1..=70 {
            let root = t.root(size).unwrap();
            for index in 0..size {
                let proof = t.inclusion_proof(index, size).unwrap();
                verify_inclusion(index, size, &t.leaf(index).unwrap(), &proof, &root).unwrap();
            }
            for first in 0..=size {
                let proof = t.consistency_proof(first, size).unwrap();
                verify_consistency(first, size, &proof, &t.root(first).unwrap(), &root).unwrap();
            }
        }
    }

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
        // A lost tile is a refusal to open, not a wrong root.
        store.0.lock().unwrap().remove(&(0, 256));
        assert!(Tree::open(store, 66_000, |i| leaves.get(i as usize).copied()).is_err());
    }
}
