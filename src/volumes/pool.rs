//! Bounded concurrency: a fixed number of worker threads take the next item
//! until none is left. Results come back in the items' order.
//!
//! Workers start one after another: each starts once the one before it has
//! finished its first item. Their HTTP connections therefore open one at a
//! time (kind to the API, like a slow start) instead of in a burst; a burst
//! of new connections can leave one queued behind busy ones on simple
//! thread-per-connection servers (the simulator's tiny_http among them).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Runs `work` on every item with at most `workers` at a time.
pub fn run<T: Sync, R: Send>(items: &[T], workers: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    // How many workers may run: one more each time a worker finishes its first item.
    let started = (Mutex::new(1usize), Condvar::new());
    let admit_next = || {
        let (count, wake) = &started;
        *count.lock().expect("start lock") += 1;
        wake.notify_all();
    };
    std::thread::scope(|scope| {
        for rank in 0..workers.clamp(1, items.len().max(1)) {
            let (next, results, started, admit_next, work) =
                (&next, &results, &started, &admit_next, &work);
            scope.spawn(move || {
                let (count, wake) = started;
                let mut admitted = count.lock().expect("start lock");
                while *admitted <= rank {
                    admitted = wake.wait(admitted).expect("start lock");
                }
                drop(admitted);
                let mut first = true;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    results.lock().expect("results lock")[i] = Some(r);
                    if std::mem::take(&mut first) {
                        admit_next();
                    }
                }
                // Out of items before the first one: let the next worker see that too.
                if first {
                    admit_next();
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order() {
        let items: Vec<u32> = (0..100).collect();
        let calls = AtomicUsize::new(0);
        let out = run(&items, 7, |i| {
            calls.fetch_add(1, Ordering::Relaxed);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::Relaxed), 100);
        assert!(run(&Vec::<u32>::new(), 4, |i| *i).is_empty());
        assert_eq!(run(&[1u32, 2], 16, |i| *i), vec![1, 2]);
    }
}
