//! The tree as C2SP tlog-tiles: tiles of up to 256 hashes, a tile at level `L` holding the hashes
//! of tree level `8·L` (level-0 tiles hold leaf hashes), each full tile immutable once written.
//! The tile at level `L`, index `N` is named `tile/<L>/<N>` with `N` in zero-padded groups of
//! three digits, every group but the last prefixed `x` (`tile/0/x001/x234/067`); a partial tile
//! of `W` hashes is `tile/<L>/<N>.p/<W>`.
//!
//! A [`TileStore`] keeps full tiles; the [`Tree`](crate::Tree) keeps only the partial tile of
//! each level in memory, so its memory does not grow with the log.

use crate::merkle::Hash;

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// Where full tiles are kept.
///
/// - `read` MUST return the hashes `write` was given for `(level, index)`, or `None` if there
///   are none (never written, lost, unreadable: the tree then cannot prove what lies there).
/// - `write` is called once per full tile, in order; a store MAY keep the tile in memory if it
///   cannot write it durably (tiles are derived from the log and can be rebuilt).
pub trait TileStore: Send + Sync {
    /// The full tile `(level, index)`: exactly 256 hashes.
    fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>>;
    /// Keeps a full tile.
    fn write(&self, level: u8, index: u64, hashes: &[Hash]);
}

/// The path of tile `(level, index)` of `width` hashes (256: full), per C2SP tlog-tiles.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut path = format!("tile/{level}");
    for (i, g) in groups.iter().rev().enumerate() {
        let last = i + 1 == groups.len();
        path.push_str(&format!("/{}{g:03}", if last { "" } else { "x" }));
    }
    if width < TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// Parses a tile path (`tile/<L>/<N>[.p/<W>]`) into (level, index, width).
pub fn parse_tile_path(path: &str) -> Option<(u8, u64, u64)> {
    let rest = path.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    let level: u8 = level.parse().ok().filter(|l| *l < 64)?;
    let (index_part, width) = match rest.split_once(".p/") {
        Some((i, w)) => (
            i,
            w.parse::<u64>()
                .ok()
                .filter(|w| (1..TILE_WIDTH).contains(w))?,
        ),
        None => (rest, TILE_WIDTH),
    };
    let groups: Vec<&str> = index_part.split('/').collect();
    let mut index: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { *g } else { g.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    // One spelling per tile: no leading zero groups.
    (tile_path(level, index, width) == path).then_some((level, index, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp_tlog_tiles() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 5, 17), "tile/1/005.p/17");
        assert_eq!(
            parse_tile_path("tile/0/x001/x234/067"),
            Some((0, 1_234_067, 256))
        );
        assert_eq!(parse_tile_path("tile/1/005.p/17"), Some((1, 5, 17)));
        for bad in [
            "tile/0/x000/067",
            "tile/0/67",
            "tile/0/005.p/0",
            "tile/0/005.p/256",
            "tile/a/000",
            "x/0/000",
            "tile/0/x001",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
