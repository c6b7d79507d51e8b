//! [`Io`]: the one asynchronous I/O runtime (tokio) of a process. Sockets, HTTP calls, SQL and
//! NATS run on it; Lua never does. It starts with the first task, so a node that does no I/O
//! has no I/O threads.
//!
//! A service or a Lua binding that starts I/O hands the runtime a future and gets its result
//! back as a message or an event in its own mailbox (see [`crate::service::ServiceContext::spawn`]):
//! the thread that owns the state never waits for I/O.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// A handle on the process's I/O runtime; clones share it.
#[derive(Clone, Default)]
pub struct Io {
    runtime: Arc<OnceLock<Runtime>>,
}

impl Io {
    /// A runtime that is not started yet.
    pub fn new() -> Io {
        Io::default()
    }

    /// The runtime's handle, starting it (one thread per core, named `io`) when this is its
    /// first use. Panics only when the operating system refuses to start threads.
    pub fn handle(&self) -> &Handle {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .thread_name("io")
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("cannot start the I/O runtime: {e}"))
            })
            .handle()
    }

    /// Runs `task` on the runtime.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(task)
    }

    /// Whether the runtime has started.
    pub fn is_started(&self) -> bool {
        self.runtime.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_starts_at_its_first_task_and_runs_it() {
        let io = Io::new();
        assert!(!io.is_started());
        let (tx, rx) = crossbeam_channel::bounded(1);
        io.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let _ = tx.send(42);
        });
        assert!(io.is_started());
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(42));
    }
}
