//! Progress with an estimate of the time left, for long loops over a layer's units (DPP edge on
//! wide layers takes hours): logged at INFO (the run's `log.txt`, and stderr with `-v`) every
//! twentieth of the work, from any number of worker threads.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts finished items of `total` and logs the progress and time left.
pub struct Eta {
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    start: Instant,
}

impl Eta {
    pub fn new(what: &'static str, total: usize) -> Self {
        Self { what, total, done: AtomicUsize::new(0), start: Instant::now() }
    }

    /// Items finished so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Records one finished item.
    pub fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let step = (self.total / 20).max(1);
        if done.is_multiple_of(step) || done == self.total {
            let elapsed = self.start.elapsed().as_secs_f64();
            let left = elapsed / done as f64 * self.total.saturating_sub(done) as f64;
            tracing::info!(
                "{}: {done} of {} units in {elapsed:.0} s, about {left:.0} s left",
                self.what,
                self.total
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_several_threads() {
        let eta = Eta::new("test", 40);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..10).for_each(|_| eta.tick()));
            }
        });
        assert_eq!(eta.done(), 40);
    }
}
