//! Room made ahead of the writer. The batch that grows the last segment pays for it on the
//! writer's path: a chunk of zeros written and synced, and, because the file's length changes,
//! its inode written in the same sync (at 9 M records, 8% of the writer's samples were that inode
//! write, about one sync in ten). So a thread of its own grows the file a chunk ahead, before a
//! batch needs the room.
//!
//! Safety of the sharing: the helper writes only past the room the writer has, and the writer
//! never writes past that room while a chunk is being made (it waits for it first), so their
//! writes never meet. Every byte the helper writes is a zero, so whatever it has written when
//! power is lost reads as the clean end of the log.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc;

use crate::durable;

/// One chunk to make: zeros over `from..to` of `file`, synced.
struct Ask {
    file: File,
    path: PathBuf,
    from: u64,
    to: u64,
    done: mpsc::SyncSender<io::Result<u64>>,
}

/// The helper thread, started at the first chunk asked of it.
#[derive(Default)]
pub(super) struct Room {
    asks: Option<mpsc::Sender<Ask>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The chunk being made: its end, once made.
    making: Option<mpsc::Receiver<io::Result<u64>>>,
}

impl Room {
    /// Asks for zeros over `from..to` of `file` (a clone of the writer's), unless a chunk is
    /// being made already. Best effort: on any failure the writer makes its room itself.
    pub(super) fn ask(&mut self, file: &File, path: PathBuf, from: u64, to: u64) {
        if self.making.is_some() {
            return;
        }
        let Ok(file) = file.try_clone() else {
            return;
        };
        if self.asks.is_none() {
            let (tx, rx) = mpsc::channel::<Ask>();
            let Ok(thread) = std::thread::Builder::new()
                .name("segment-room".into())
                .spawn(move || make(rx))
            else {
                return;
            };
            self.asks = Some(tx);
            self.thread = Some(thread);
        }
        let (done, made) = mpsc::sync_channel(1);
        let ask = Ask {
            file,
            path,
            from,
            to,
            done,
        };
        if self.asks.as_ref().is_some_and(|tx| tx.send(ask).is_ok()) {
            self.making = Some(made);
        }
    }

    /// The end of the chunk made, if one was asked for and is done (`wait`: waits for it).
    /// `None` if none was asked for, it is not done, or it failed.
    pub(super) fn made(&mut self, wait: bool) -> Option<u64> {
        let made = self.making.as_ref()?;
        let result = if wait {
            made.recv().ok()
        } else {
            match made.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return None,
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        self.making = None;
        match result? {
            Ok(end) => Some(end),
            Err(e) => {
                tracing::warn!(error = %e, "could not make room ahead in the log; the writer makes it");
                None
            }
        }
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        drop(self.asks.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The zeros every chunk is written from (in the binary's zeroed data: a buffer made and
/// zeroed anew for each chunk was a tenth of this thread's CPU).
static ZEROS: [u8; super::PREALLOC_CHUNK as usize] = [0; super::PREALLOC_CHUNK as usize];

fn make(asks: mpsc::Receiver<Ask>) {
    while let Ok(ask) = asks.recv() {
        let made = write_zeros(&ask.file, ask.from, ask.to)
            .and_then(|()| durable::sync_data(&ask.file, &ask.path))
            .map(|()| ask.to);
        let _ = ask.done.send(made);
    }
}

fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}
