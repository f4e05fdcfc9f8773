//! The order of attempts for one request: which target to call next, and how long to wait
//! before calling it.

use super::retry::{Failure, RetryPolicy};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Call the same target again after waiting this many milliseconds.
    Retry {
        /// The wait.
        after_ms: u64,
    },
    /// Go on to the next target in the chain (there may be none left).
    Fallback,
    /// Stop: the client gets this attempt's error.
    Stop,
}

/// Walks a chain of targets for one request.
#[derive(Debug)]
pub struct AttemptPlan<'a> {
    policy: &'a RetryPolicy,
    /// Target indices, in the order they are tried.
    order: Vec<usize>,
    /// Position in `order` of the current target.
    position: usize,
    /// Retries of the current target so far.
    retries: u32,
    /// When every attempt and wait must be over (Unix milliseconds).
    deadline_ms: u64,
    /// Calls made so far.
    attempts: u32,
}

impl<'a> AttemptPlan<'a> {
    /// A plan that tries the targets in `order`, all within `deadline_ms`.
    pub fn new(order: Vec<usize>, policy: &'a RetryPolicy, deadline_ms: u64) -> Self {
        AttemptPlan {
            policy,
            order,
            position: 0,
            retries: 0,
            deadline_ms,
            attempts: 0,
        }
    }

    /// The target to call now: the current one, or the next whose breaker lets the call
    /// through (`allowed` asks it, and is asked once per call made). `None` when the chain
    /// is exhausted or the deadline has passed; `skipped` is told each target passed over
    /// because its breaker refused.
    pub fn next_target(
        &mut self,
        now_ms: u64,
        mut allowed: impl FnMut(usize) -> bool,
        mut skipped: impl FnMut(usize),
    ) -> Option<usize> {
        while let Some(&target) = self.order.get(self.position) {
            if now_ms >= self.deadline_ms {
                return None;
            }
            if allowed(target) {
                self.attempts += 1;
                return Some(target);
            }
            skipped(target);
            self.fallback();
        }
        None
    }

    /// Decides what follows a failed attempt, made at `now_ms`; `random` is a uniformly
    /// random `u32` for the backoff's jitter. A retry happens only when the failure is
    /// transient, the target has retries left, the upstream did not ask for a wait beyond
    /// the cap, and the wait ends before the deadline.
    pub fn after_failure(&mut self, failure: Failure, now_ms: u64, random: u32) -> Next {
        let retry_after_ms = match failure {
            Failure::Request => return Next::Stop,
            Failure::TargetUnusable => {
                self.fallback();
                return Next::Fallback;
            }
            Failure::Transient { retry_after_ms } => retry_after_ms,
        };
        let wait = match retry_after_ms {
            _ if self.retries >= self.policy.retries => None,
            Some(asked) if asked > u64::from(self.policy.max_delay_ms) => None,
            Some(asked) => Some(asked),
            None => Some(self.policy.backoff_ms(self.retries, random)),
        };
        match wait {
            Some(after_ms) if now_ms + after_ms < self.deadline_ms => {
                self.retries += 1;
                Next::Retry { after_ms }
            }
            _ => {
                self.fallback();
                Next::Fallback
            }
        }
    }

    /// Calls made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn fallback(&mut self) {
        self.position += 1;
        self.retries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 2,
        base_delay_ms: 100,
        max_delay_ms: 1_000,
    };
    const TRANSIENT: Failure = Failure::NETWORK;

    fn always(_: usize) -> bool {
        true
    }

    #[test]
    fn a_transient_failure_is_retried_then_falls_back() {
        let mut plan = AttemptPlan::new(vec![0, 1], &POLICY, 10_000);
        assert_eq!(plan.next_target(0, always, |_| ()), Some(0));
        // Full jitter at the top of the range: 100, then 200.
        assert_eq!(
            plan.after_failure(TRANSIENT, 0, u32::MAX),
            Next::Retry { after_ms: 100 }
        );
        assert_eq!(plan.next_target(100, always, |_| ()), Some(0));
        assert_eq!(
            plan.after_failure(TRANSIENT, 100, u32::MAX),
            Next::Retry { after_ms: 200 }
        );
        assert_eq!(plan.next_target(300, always, |_| ()), Some(0));
        // Two retries spent: the next target, with a fresh retry budget.
        assert_eq!(plan.after_failure(TRANSIENT, 300, 0), Next::Fallback);
        assert_eq!(plan.next_target(300, always, |_| ()), Some(1));
        assert_eq!(
            plan.after_failure(TRANSIENT, 300, 0),
            Next::Retry { after_ms: 0 }
        );
        assert_eq!(plan.next_target(300, always, |_| ()), Some(1));
        plan.after_failure(TRANSIENT, 300, 0);
        assert_eq!(plan.next_target(300, always, |_| ()), Some(1));
        assert_eq!(plan.after_failure(TRANSIENT, 300, 0), Next::Fallback);
        assert_eq!(plan.next_target(300, always, |_| ()), None);
        assert_eq!(plan.attempts(), 6);
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap_and_skipped_beyond_it() {
        let mut plan = AttemptPlan::new(vec![0, 1], &POLICY, 10_000);
        plan.next_target(0, always, |_| ());
        let asked = |ms| Failure::Transient {
            retry_after_ms: Some(ms),
        };
        assert_eq!(
            plan.after_failure(asked(700), 0, 0),
            Next::Retry { after_ms: 700 }
        );
        plan.next_target(700, always, |_| ());
        assert_eq!(plan.after_failure(asked(1_001), 700, 0), Next::Fallback);
        assert_eq!(plan.next_target(700, always, |_| ()), Some(1));
    }

    #[test]
    fn no_wait_may_pass_the_deadline() {
        let mut plan = AttemptPlan::new(vec![0, 1], &POLICY, 1_000);
        plan.next_target(900, always, |_| ());
        let asked = Failure::Transient {
            retry_after_ms: Some(100),
        };
        assert_eq!(plan.after_failure(asked, 900, 0), Next::Fallback);
        assert_eq!(plan.next_target(999, always, |_| ()), Some(1));
        plan.after_failure(TRANSIENT, 999, 0);
        assert_eq!(plan.next_target(1_000, always, |_| ()), None);
    }

    #[test]
    fn unusable_targets_fall_back_at_once_and_bad_requests_stop() {
        let mut plan = AttemptPlan::new(vec![2, 0, 1], &POLICY, 10_000);
        assert_eq!(plan.next_target(0, always, |_| ()), Some(2));
        assert_eq!(
            plan.after_failure(Failure::TargetUnusable, 0, 0),
            Next::Fallback
        );
        assert_eq!(plan.next_target(0, always, |_| ()), Some(0));
        assert_eq!(plan.after_failure(Failure::Request, 0, 0), Next::Stop);
    }

    #[test]
    fn targets_whose_breaker_refuses_are_skipped() {
        let mut plan = AttemptPlan::new(vec![0, 1, 2], &POLICY, 10_000);
        let mut skipped = Vec::new();
        let target = plan.next_target(0, |target| target == 2, |target| skipped.push(target));
        assert_eq!((target, skipped), (Some(2), vec![0, 1]));
        assert_eq!(plan.attempts(), 1);
        let mut plan = AttemptPlan::new(vec![0], &POLICY, 10_000);
        assert_eq!(plan.next_target(0, |_| false, |_| ()), None);
        assert_eq!(plan.attempts(), 0);
    }
}
