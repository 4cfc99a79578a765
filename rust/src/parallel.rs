//! One bounded rayon pool for the whole core.
//!
//! The size comes from `SENTRS_NUM_THREADS` (default: all cores). After a `fork()` the pool of the parent is
//! unusable in the child, so the Python layer calls [`mark_forked`] from an `os.register_at_fork` hook and every
//! later kernel runs sequentially in that child (the same policy as `TOKENIZERS_PARALLELISM`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
static FORKED: AtomicBool = AtomicBool::new(false);

/// Number of threads requested through `SENTRS_NUM_THREADS`, or `None` for the default.
fn requested_threads() -> Option<usize> {
    std::env::var("SENTRS_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("sentrs-{i}"));
        if let Some(n) = requested_threads() {
            builder = builder.num_threads(n);
        }
        builder.build().ok()
    })
    .as_ref()
}

/// Records that the process forked: later work in this process runs on the calling thread.
pub fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Whether parallel execution is allowed in this process.
pub fn parallel_enabled() -> bool {
    !FORKED.load(Ordering::SeqCst) && current_num_threads() > 1
}

/// Threads the pool runs (1 after a fork).
pub fn current_num_threads() -> usize {
    if FORKED.load(Ordering::SeqCst) {
        return 1;
    }
    pool().map(|p| p.current_num_threads()).unwrap_or(1)
}

/// Runs `f` inside the pool, or on the calling thread when parallelism is off.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if FORKED.load(Ordering::SeqCst) {
        return f();
    }
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}
