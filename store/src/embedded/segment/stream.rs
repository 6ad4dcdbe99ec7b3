//! A segment file read front to back a chunk at a time, for the scans of the whole log (the log
//! check after start-up, `--verify-log`, the views' catch-up).
//!
//! Why not the whole file at once: a 64 MiB `read` (and the kernel's own read-ahead of a file
//! read in order, 8 MiB here) puts megabytes of requests in front of the disk, and the random
//! reads of audit queries served meanwhile wait behind them. Measured on this machine's disk,
//! cold cache, random 4 KiB reads of the view store while a scan of the log ran: p99 9.8 ms
//! beside a whole-file scan; beside a scan reading with the kernel's read-ahead off and the
//! next chunk advised, 0.72–0.81 ms with 1 MiB chunks, 0.23–0.28 ms with 256 KiB and
//! 0.17–0.21 ms with 128 KiB. The scan alone ran at 786, 807 and 743 MB/s with those chunks.
//! Memory is a chunk or two (or a frame, if larger), not a segment.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::read::will_need;

/// Bytes read at a time; the next chunk is asked of the disk while this one is used.
pub(super) const CHUNK: usize = 256 << 10;

/// A file's bytes, read in order a chunk at a time.
pub(super) struct Stream {
    file: File,
    /// Bytes read and not yet dropped, from file offset `at`.
    buf: Vec<u8>,
    at: u64,
    /// The file has no bytes past the buffer.
    ended: bool,
}

impl Stream {
    /// Reads `file` from its start. The kernel's own read-ahead is turned off for it: each
    /// chunk is read and the next advised (see [`will_need`]), no more.
    pub(super) fn new(file: File) -> Self {
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Random);
        Self {
            file,
            buf: Vec::new(),
            at: 0,
            ended: false,
        }
    }

    /// The bytes from `offset` on, at least `len` of them unless the file ends first (then all
    /// that is left). `offset` MUST NOT be before an offset asked before: bytes before it are
    /// dropped.
    pub(super) fn bytes(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        debug_assert!(offset >= self.at, "a stream is read forwards");
        let skip = usize::try_from(offset - self.at)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        let have = self.buf.len() - skip;
        if have < len && !self.ended {
            self.buf.drain(..skip);
            self.at += skip as u64;
            if offset > self.at {
                // Past everything read so far (a caller skipping ahead): start there.
                self.at = offset;
            }
            self.fill(len)?;
        }
        let from = usize::try_from(offset - self.at)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        Ok(&self.buf[from..])
    }

    /// Reads on until the buffer holds `len` bytes (in whole chunks) or the file ends.
    fn fill(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len && !self.ended {
            let start = self.buf.len();
            self.buf.resize(start + CHUNK, 0);
            let mut got = 0;
            while got < CHUNK {
                let n = self
                    .file
                    .read_at(&mut self.buf[start + got..], self.at + (start + got) as u64)?;
                if n == 0 {
                    self.ended = true;
                    break;
                }
                got += n;
            }
            self.buf.truncate(start + got);
            if !self.ended {
                let next = self.at + self.buf.len() as u64;
                will_need(&self.file, next, CHUNK as u64);
            }
        }
        Ok(())
    }

    /// Whether every byte from `offset` to the end of the file is zero (the room written
    /// ahead of a segment's last frame).
    pub(super) fn zeros_from(&mut self, offset: u64) -> io::Result<bool> {
        let mut at = offset;
        loop {
            let rest = self.bytes(at, CHUNK)?;
            if rest.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            if rest.len() < CHUNK {
                return Ok(true);
            }
            at += rest.len() as u64;
        }
    }
}
