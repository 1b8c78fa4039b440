//! Work shared out over scoped threads: the one pool the core's parallel steps use.

use std::sync::{Mutex, PoisonError};

/// Runs `work` on every item over up to `threads` threads, items handed out one at a time,
/// each thread with its own scratch state.
pub(crate) fn for_each_on_threads<T: Send, S: Default>(
    threads: usize,
    items: impl IntoIterator<Item = T, IntoIter: Send>,
    work: impl Fn(T, &mut S) + Sync,
) {
    let items = Mutex::new(items.into_iter());
    let run = || {
        let mut scratch = S::default();
        loop {
            let item = items.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some(item) = item else { return };
            work(item, &mut scratch);
        }
    };
    if threads <= 1 {
        run();
        return;
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(run)).collect();
        for handle in handles {
            // A panic in a worker is a bug: re-raise it on the calling thread.
            handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
}
