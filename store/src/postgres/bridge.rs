//! The engine's own tokio runtime, where its PostgreSQL connections live. The `Backend` and
//! `Reader` seams are synchronous (the sequencer is a thread; readers are called from the
//! broker's tasks like a disk read), so each call is spawned here and waited for on a plain
//! channel: never `block_on`, which panics inside another runtime. A caller on a worker of a
//! multi-threaded runtime (the broker's) waits through `block_in_place`, which hands that
//! worker's other tasks to another thread: a round trip to the database is far longer than a
//! disk read, and on two cores two waiting readers would otherwise stop every call.

use std::future::Future;
use std::time::Duration;

use crate::backend::StorageError;

/// Longest any one call to the database may take before it is an error (a database that does
/// not answer must not hang the writer or a reader forever).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub(crate) fn new() -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("infoshare-pg")
            .enable_all()
            .build()
            .map_err(|e| {
                StorageError(format!("cannot start the PostgreSQL client runtime: {e}"))
            })?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.as_ref().expect("runtime until drop").handle()
    }

    /// Runs `call` on the engine's runtime and waits for its answer, at most [`CALL_TIMEOUT`].
    pub(crate) fn run<T, F>(&self, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        self.run_for(CALL_TIMEOUT, call)
    }

    /// As [`run`](Self::run), at most `limit`.
    pub(crate) fn run_for<T, F>(&self, limit: Duration, call: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        self.spawn_for(limit, call).wait()
    }

    /// Starts `call` on the engine's runtime, at most `limit`; its answer is waited for later.
    pub(crate) fn spawn_for<T, F>(&self, limit: Duration, call: F) -> Answer<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let answer = match tokio::time::timeout(limit, call).await {
                Ok(answer) => answer,
                Err(_) => Err(StorageError(format!(
                    "PostgreSQL did not answer within {} s",
                    limit.as_secs()
                ))),
            };
            let _ = tx.send(answer);
        });
        Answer(rx)
    }
}

/// The answer of a call started on the engine's runtime.
pub(crate) struct Answer<T>(std::sync::mpsc::Receiver<Result<T, StorageError>>);

impl<T> Answer<T> {
    /// Waits for it (the call's own limit bounds the wait).
    pub(crate) fn wait(self) -> Result<T, StorageError> {
        let wait = || {
            self.0
                .recv()
                .map_err(|_| StorageError::new("the PostgreSQL client runtime has stopped"))?
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // The last reader may be dropped inside the broker's runtime, where a blocking shutdown
        // panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
