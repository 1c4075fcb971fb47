//! Serving threads: every accepted connection is served, start to end, on one of
//! a few threads that each run a single-threaded tokio runtime (by default one
//! per core). The acceptor hands connections out in turn. A request's tasks (its
//! guest, its streamed body) then stay on the thread that read it, where a
//! work-stealing runtime would wake and move them between threads: those
//! hand-offs were a third of the edge's CPU per request (README "Performance").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::server::graceful::Watcher;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

thread_local! {
    /// The index of the serving thread this is, on serving threads.
    static SERVING_THREAD: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Which serving thread the caller runs on, if it runs on one.
pub(crate) fn current_thread() -> Option<usize> {
    SERVING_THREAD.with(|t| t.get())
}

/// An accepted connection on its way to a serving thread.
pub(crate) struct Accepted {
    /// The socket, taken off the acceptor's runtime.
    pub stream: std::net::TcpStream,
    /// Its peer address.
    pub peer: std::net::SocketAddr,
    /// Its place under `max_connections`, freed when it closes.
    pub permit: OwnedSemaphorePermit,
    /// Tells it to close once its request is answered, at shutdown.
    pub watcher: Watcher,
}

/// Hands connections to the serving threads; dropping it lets each thread finish
/// the connections it has and then end.
pub(crate) struct ServingThreads {
    inboxes: Vec<mpsc::UnboundedSender<Accepted>>,
    next: AtomicUsize,
}

impl ServingThreads {
    /// Starts `n` threads, each serving what it is handed with `serve`, which
    /// runs on that thread's runtime.
    pub(crate) fn start<F, Fut>(n: usize, serve: F) -> std::io::Result<ServingThreads>
    where
        F: Fn(Accepted) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let serve = Arc::new(serve);
        let mut inboxes = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, mut rx) = mpsc::unbounded_channel::<Accepted>();
            let serve = serve.clone();
            std::thread::Builder::new()
                .name(format!("tollgate-serve-{i}"))
                .spawn(move || {
                    SERVING_THREAD.with(|t| t.set(Some(i)));
                    runtime.block_on(async move {
                        while let Some(accepted) = rx.recv().await {
                            tokio::spawn(serve(accepted));
                        }
                    });
                    // The acceptor waited for in-flight requests before it let go
                    // of the inboxes; what is left (past the grace period) is
                    // dropped with the runtime.
                })?;
            inboxes.push(tx);
        }
        Ok(ServingThreads {
            inboxes,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands `accepted` to the next thread in turn.
    pub(crate) fn hand_over(&self, accepted: Accepted) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.inboxes.len();
        // A thread only stops when its inbox is dropped, which is after this.
        let _ = self.inboxes[i].send(accepted);
    }
}
