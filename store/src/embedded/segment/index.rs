//! The index beside each segment of an indexed log (`<first>.idx`): where each entry lies, so that
//! an entry is found by number without every position in memory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::check_frame;
use super::read::{OpenFiles, will_need};
use super::{HEADER, Position, SegmentError, io_err, segment_path};
use crate::durable;

/// Bytes of one index entry.
pub(super) const INDEX_ENTRY: u64 = 12;

pub(super) fn index_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.idx"))
}

pub(super) fn index_bytes(positions: &[Position]) -> Vec<u8> {
    let mut out = Vec::with_capacity(positions.len() * INDEX_ENTRY as usize);
    for p in positions {
        out.extend_from_slice(&p.offset.to_le_bytes());
        out.extend_from_slice(&p.len.to_le_bytes());
    }
    out
}

/// Where the entries of an indexed log lie, read from the index files: memory O(segments).
pub struct SegmentIndex {
    dir: PathBuf,
    /// The first entry of each segment, and the number of entries, as published by the writer.
    state: std::sync::RwLock<(Vec<u64>, u64)>,
    files: OpenFiles,
}

impl SegmentIndex {
    /// The index of the log in `dir`: its segments' first entries, and its number of entries.
    pub(super) fn new(dir: &Path, segments: Vec<u64>, entries: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: std::sync::RwLock::new((segments, entries)),
            files: OpenFiles::default(),
        }
    }

    /// Entries in the log.
    pub fn entries(&self) -> u64 {
        self.state.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Where entry `index` (1-based) lies.
    pub fn position(&self, index: u64) -> Result<Position, SegmentError> {
        let (segment, file) = self.entry_file(index)?;
        self.read_entry(index, segment, &file)
    }

    /// [`position`](Self::position) of each of `indexes`, in their order, with every index
    /// entry outside segment `current` asked of the disk before the first is read (see
    /// [`will_need`]; `current` is the segment being written, whose entries were just written
    /// through the page cache: asking would cost a system call each for nothing, and
    /// deliveries read the newest records).
    pub fn positions(&self, indexes: &[u64], current: u64) -> Result<Vec<Position>, SegmentError> {
        let files = indexes
            .iter()
            .map(|&index| self.entry_file(index))
            .collect::<Result<Vec<_>, _>>()?;
        if indexes.len() > 1 {
            for (&index, (segment, file)) in indexes.iter().zip(&files) {
                if *segment != current {
                    will_need(file, (index - segment) * INDEX_ENTRY, INDEX_ENTRY);
                }
            }
        }
        indexes
            .iter()
            .zip(&files)
            .map(|(&index, (segment, file))| self.read_entry(index, *segment, file))
            .collect()
    }

    /// The first entry of the segment being written (the last one).
    pub fn last_segment(&self) -> u64 {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.0.last().copied().unwrap_or(1)
    }

    /// The first entry of the segment holding entry `index`, and its open index file.
    fn entry_file(&self, index: u64) -> Result<(u64, Arc<File>), SegmentError> {
        let segment = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if index == 0 || index > state.1 {
                return Err(SegmentError::Missing(index));
            }
            let at = state.0.partition_point(|&first| first <= index);
            state.0[at - 1]
        };
        let file = self.files.get(segment, || index_path(&self.dir, segment))?;
        Ok((segment, file))
    }

    fn read_entry(&self, index: u64, segment: u64, file: &File) -> Result<Position, SegmentError> {
        let mut entry = [0u8; INDEX_ENTRY as usize];
        file.read_exact_at(&mut entry, (index - segment) * INDEX_ENTRY)
            .map_err(|e| io_err(&index_path(&self.dir, segment))(e))?;
        Ok(Position {
            segment,
            offset: u64::from_le_bytes(entry[..8].try_into().expect("8")),
            len: u32::from_le_bytes(entry[8..].try_into().expect("4")),
        })
    }

    pub(super) fn publish(&self, segments: &[u64], entries: u64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.0.len() != segments.len() {
            state.0 = segments.to_vec();
        }
        state.1 = entries;
    }
}

/// Makes sure a finished segment's index holds `entries` entries, rebuilding it from the
/// segment if not (lost, or cut short by a power cut before it was synced).
pub(super) fn ensure_index(dir: &Path, first: u64, entries: u64) -> Result<(), SegmentError> {
    let path = index_path(dir, first);
    if fs::metadata(&path).is_ok_and(|m| m.len() == entries * INDEX_ENTRY) {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), "segment index missing or incomplete; rebuilding it");
    let seg = segment_path(dir, first);
    let data = fs::read(&seg).map_err(io_err(&seg))?;
    let mut positions = Vec::new();
    let mut pos = HEADER as usize;
    while pos < data.len() {
        let frame = check_frame(&data, pos).map_err(|what| SegmentError::Corrupt {
            path: seg.clone(),
            index: first + positions.len() as u64,
            offset: pos as u64,
            what,
        })?;
        if frame.is_entry() {
            positions.push(Position {
                segment: first,
                offset: pos as u64,
                len: (frame.end - frame.start) as u32,
            });
        }
        pos = frame.end;
    }
    if positions.len() as u64 != entries {
        return Err(SegmentError::Corrupt {
            path: seg,
            index: first,
            offset: 0,
            what: "segment holds another number of entries than its place says",
        });
    }
    let file = File::create(&path)
        .and_then(|mut f| f.write_all(&index_bytes(&positions)).map(|()| f))
        .map_err(io_err(&path))?;
    durable::sync_data(&file, &path).map_err(io_err(&path))
}
