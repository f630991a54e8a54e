//! When to fetch the IdP's metadata next: periodically while the IdP
//! answers, with capped exponential backoff and jitter while it does not.
//!
//! Backoff: the n-th failure in a row waits `min(max, initial · 2^(n-1))`
//! less a random part of up to half of it ("equal jitter"): never faster
//! than half the nominal delay, so an IdP that is down is asked at most
//! about log2(max/initial) + max-spaced times, and Envoys (and workers)
//! restarted together drift apart instead of asking in lockstep. A healthy
//! refresh waits the configured interval less up to a tenth of it, for the
//! same reason.

/// The fetch schedule of one worker.
#[derive(Debug, Clone)]
pub struct Schedule {
    initial_ms: u64,
    max_ms: u64,
    refresh_ms: u64,
    failures: u32,
    rng: u64,
}

impl Schedule {
    /// A schedule with no failures yet; `seed` feeds the jitter (any value:
    /// the jitter spreads fetches out, it protects nothing).
    pub fn new(initial_ms: u64, max_ms: u64, refresh_ms: u64, seed: u64) -> Schedule {
        Schedule {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            refresh_ms: refresh_ms.max(1),
            failures: 0,
            // xorshift must not start at 0.
            rng: seed | 1,
        }
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next fetch after one that succeeded.
    pub fn after_success(&mut self) -> u64 {
        self.failures = 0;
        let spread = self.refresh_ms / 10;
        self.refresh_ms - self.random_below(spread + 1)
    }

    /// The delay before the next fetch after one that failed.
    pub fn after_failure(&mut self) -> u64 {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(62);
        let nominal = self
            .initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms);
        nominal - self.random_below(nominal / 2 + 1)
    }

    /// The largest delay `after_failure` can return now (for tests and the log).
    pub fn nominal_retry_ms(&self) -> u64 {
        let doublings = self.failures.saturating_sub(1).min(62);
        self.initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }

    /// xorshift64: uniform enough for spreading timers.
    fn random_below(&mut self, bound: u64) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retries_double_up_to_the_cap_and_a_success_resets_them() {
        let mut s = Schedule::new(1000, 8000, 60_000, 7);
        let nominal: Vec<u64> = (0..6)
            .map(|_| {
                s.after_failure();
                s.nominal_retry_ms()
            })
            .collect();
        assert_eq!(nominal, [1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(s.failures(), 6);
        let refresh = s.after_success();
        assert!((54_000..=60_000).contains(&refresh), "{refresh}");
        assert_eq!(s.failures(), 0);
        s.after_failure();
        assert_eq!(s.nominal_retry_ms(), 1000);
    }

    #[test]
    fn jitter_spreads_workers_started_together() {
        let delays: std::collections::BTreeSet<u64> = (1..=20)
            .map(|seed| Schedule::new(1000, 300_000, 3_600_000, seed).after_failure())
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    proptest! {
        /// Every delay stays within [nominal/2, nominal] and never exceeds
        /// the cap, whatever the seed and the run of failures.
        #[test]
        fn delays_stay_within_their_bounds(
            seed in any::<u64>(), initial in 1u64..60_000, max_s in 1u64..3600,
            refresh_s in 1u64..86_400, outcomes in proptest::collection::vec(any::<bool>(), 1..200)
        ) {
            let max = (max_s * 1000).max(initial);
            let mut s = Schedule::new(initial, max, refresh_s * 1000, seed);
            for ok in outcomes {
                if ok {
                    let d = s.after_success();
                    prop_assert!(d <= refresh_s * 1000 && d >= refresh_s * 900);
                } else {
                    let d = s.after_failure();
                    let n = s.nominal_retry_ms();
                    prop_assert!(n <= max);
                    prop_assert!(d <= n && d >= n - n / 2, "{} not in [{}, {}]", d, n - n / 2, n);
                    prop_assert!(d >= 1);
                }
            }
        }
    }
}
