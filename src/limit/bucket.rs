//! An exact token bucket in integer arithmetic.
//!
//! A rate of `limit` units per `window` refills continuously at `limit / window` and holds
//! at most `limit` units, so a burst of exactly `limit` gets through at once and then one
//! unit per `window / limit` (the same admissions as GCRA). To stay exact for any limit,
//! the bucket counts what has been *spent* in "unit-microseconds of window": one unit costs
//! `window_us`, and each elapsed microsecond gives back `limit`. No division happens until
//! a figure is reported, so rounding can never admit an extra unit.
//!
//! Requests spend 1 unit each. Tokens spend the reservation before the call; the real
//! usage afterwards refunds the difference or charges more, even beyond the limit: that
//! debt is waited out by the next requests.

use serde::{Deserialize, Serialize};

/// Largest `limit × window_s` a rate may have, so that spent amounts fit in `u64` with room
/// for debt.
pub const MAX_LIMIT_WINDOW: u64 = 1 << 40;

/// A rate: `limit` units per `window_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Units per window (at least 1).
    pub limit: u64,
    /// Window length in seconds (at least 1).
    pub window_s: u32,
}

impl Rate {
    fn window_us(self) -> u64 {
        u64::from(self.window_s.max(1)) * 1_000_000
    }

    fn capacity(self) -> u64 {
        self.limit.saturating_mul(self.window_us())
    }

    fn cost(self, units: u64) -> u64 {
        units.saturating_mul(self.window_us())
    }
}

/// One bucket's state: what is spent (in unit-microseconds) as of `updated_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Spent units × window microseconds; 0 is a full bucket.
    pub spent: u64,
    /// Unix milliseconds of the last refill.
    pub updated_ms: u64,
}

impl Bucket {
    /// Credits the time elapsed since the last update. A clock that goes backwards credits
    /// nothing.
    fn refill(&mut self, rate: Rate, now_ms: u64) {
        if now_ms > self.updated_ms {
            let elapsed_us = (now_ms - self.updated_ms).saturating_mul(1_000);
            self.spent = self
                .spent
                .saturating_sub(elapsed_us.saturating_mul(rate.limit));
            self.updated_ms = now_ms;
        }
    }

    /// Whether `units` fit at `now_ms`; `Err` holds the milliseconds to wait until they do
    /// (`u64::MAX` when `units` exceed what the bucket can ever hold).
    pub fn check(&mut self, rate: Rate, now_ms: u64, units: u64) -> Result<(), u64> {
        if units > rate.limit {
            return Err(u64::MAX);
        }
        self.refill(rate, now_ms);
        let needed = self.spent.saturating_add(rate.cost(units));
        match needed.checked_sub(rate.capacity()) {
            None | Some(0) => Ok(()),
            Some(excess) => Err(excess.div_ceil(rate.limit.max(1)).div_ceil(1_000)),
        }
    }

    /// Spends `units` at `now_ms`, whether or not they fit (a charge after the fact).
    pub fn charge(&mut self, rate: Rate, now_ms: u64, units: u64) {
        self.refill(rate, now_ms);
        self.spent = self.spent.saturating_add(rate.cost(units));
    }

    /// Gives back `units` spent earlier; the bucket never holds more than its limit.
    pub fn refund(&mut self, rate: Rate, now_ms: u64, units: u64) {
        self.refill(rate, now_ms);
        self.spent = self.spent.saturating_sub(rate.cost(units));
    }

    /// Units that fit now.
    pub fn remaining(&mut self, rate: Rate, now_ms: u64) -> u64 {
        self.refill(rate, now_ms);
        rate.capacity().saturating_sub(self.spent) / rate.window_us()
    }

    /// Milliseconds until the bucket is full again.
    pub fn reset_ms(&mut self, rate: Rate, now_ms: u64) -> u64 {
        self.refill(rate, now_ms);
        self.spent.div_ceil(rate.limit.max(1)).div_ceil(1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_MINUTE: Rate = Rate {
        limit: 10,
        window_s: 60,
    };
    const THOUSAND_PER_MINUTE: Rate = Rate {
        limit: 1_000,
        window_s: 60,
    };

    /// Tries `tries` single units at `now`; returns how many got in.
    fn admit(bucket: &mut Bucket, rate: Rate, now: u64, tries: u32) -> u32 {
        let mut admitted = 0;
        for _ in 0..tries {
            if bucket.check(rate, now, 1).is_ok() {
                bucket.charge(rate, now, 1);
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn a_burst_gets_exactly_the_limit() {
        let mut bucket = Bucket::default();
        let now = 1_700_000_000_000;
        assert_eq!(bucket.remaining(TEN_PER_MINUTE, now), 10);
        assert_eq!(admit(&mut bucket, TEN_PER_MINUTE, now, 50), 10);
        assert_eq!(bucket.remaining(TEN_PER_MINUTE, now), 0);
        // The next unit fits once one unit's worth of time (6 s) has passed.
        assert_eq!(bucket.check(TEN_PER_MINUTE, now, 1), Err(6_000));
        assert_eq!(bucket.reset_ms(TEN_PER_MINUTE, now), 60_000);
    }

    #[test]
    fn the_steady_rate_is_one_unit_per_interval() {
        let mut bucket = Bucket::default();
        let start = 1_000_000;
        admit(&mut bucket, TEN_PER_MINUTE, start, 10);
        for step in 1..=20u64 {
            let due = start + step * 6_000;
            assert_eq!(
                admit(&mut bucket, TEN_PER_MINUTE, due - 1, 1),
                0,
                "step {step}"
            );
            assert_eq!(admit(&mut bucket, TEN_PER_MINUTE, due, 2), 1, "step {step}");
        }
    }

    #[test]
    fn an_idle_bucket_refills_to_the_limit_and_no_further() {
        let mut bucket = Bucket::default();
        admit(&mut bucket, TEN_PER_MINUTE, 0, 10);
        assert_eq!(bucket.remaining(TEN_PER_MINUTE, 30_000), 5);
        assert_eq!(bucket.reset_ms(TEN_PER_MINUTE, 30_000), 30_000);
        assert_eq!(bucket.remaining(TEN_PER_MINUTE, 60_000), 10);
        assert_eq!(admit(&mut bucket, TEN_PER_MINUTE, 600_000, 50), 10);
    }

    #[test]
    fn retry_after_says_when_the_units_fit() {
        let tokens = THOUSAND_PER_MINUTE;
        let mut bucket = Bucket::default();
        bucket.charge(tokens, 0, 900);
        assert_eq!(bucket.check(tokens, 0, 100), Ok(()));
        // 200 tokens need 100 more than are left; 100 tokens refill in 6 s.
        assert_eq!(bucket.check(tokens, 0, 200), Err(6_000));
        assert_eq!(bucket.check(tokens, 5_999, 200), Err(1));
        assert_eq!(bucket.check(tokens, 6_000, 200), Ok(()));
        assert_eq!(bucket.check(tokens, 6_000, 1_001), Err(u64::MAX));
    }

    #[test]
    fn refunds_and_charges_reconcile_a_reservation() {
        let tokens = THOUSAND_PER_MINUTE;
        let mut bucket = Bucket::default();
        bucket.charge(tokens, 0, 600);
        bucket.refund(tokens, 0, 450);
        assert_eq!(bucket.remaining(tokens, 0), 850);
        // Charging past the limit leaves a debt that has to be waited out.
        bucket.charge(tokens, 0, 1_000);
        assert_eq!(bucket.remaining(tokens, 0), 0);
        assert_eq!(bucket.check(tokens, 0, 1), Err(9_060));
        // A refund never fills the bucket beyond its limit.
        let mut fresh = Bucket::default();
        fresh.refund(tokens, 5_000, 300);
        assert_eq!(fresh.remaining(tokens, 5_000), 1_000);
    }

    #[test]
    fn uneven_rates_admit_exactly_the_limit() {
        for limit in [3, 7, 13, 999_983] {
            let rate = Rate { limit, window_s: 1 };
            let mut bucket = Bucket::default();
            assert!(bucket.check(rate, 0, limit).is_ok(), "limit {limit}");
            bucket.charge(rate, 0, limit);
            assert!(bucket.check(rate, 0, 1).is_err(), "limit {limit}");
            assert!(bucket.check(rate, 1_000, limit).is_ok(), "limit {limit}");
        }
        let seven = Rate {
            limit: 7,
            window_s: 1,
        };
        let mut bucket = Bucket::default();
        assert_eq!(admit(&mut bucket, seven, 0, 20), 7);
        assert_eq!(admit(&mut bucket, seven, 1_000, 20), 7);
    }

    #[test]
    fn a_clock_going_backwards_credits_nothing() {
        let mut bucket = Bucket::default();
        admit(&mut bucket, TEN_PER_MINUTE, 60_000, 10);
        assert_eq!(admit(&mut bucket, TEN_PER_MINUTE, 0, 1), 0);
        assert_eq!(bucket.remaining(TEN_PER_MINUTE, 66_000), 1);
    }
}
