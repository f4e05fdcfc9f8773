//! Circuit breakers, one per target (provider and model), so that a target that keeps
//! failing is skipped for a while instead of making every request wait for it to fail.
//!
//! A breaker is **closed** (calls go through) until its target fails
//! `consecutive_failures` times in a row, or at least `failure_rate_percent` of at least
//! `min_requests` calls in the current window fail. It is then **open** for `cooldown_ms`:
//! the target is skipped. After the cooldown it is **half-open**: one call (the probe) goes
//! through while the others still skip it; the probe's success closes the breaker, its
//! failure opens it for another cooldown. A probe that never reports (its request was
//! abandoned) is replaced by a new one after a cooldown.
//!
//! The window is fixed (counts reset every `window_ms`), which is simple and bounded;
//! it can see up to twice the window's calls just after a reset.

use std::collections::HashMap;

/// Thresholds of every breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// `BREAKER_CONSECUTIVE_FAILURES`: failures in a row that open the breaker (0: never).
    pub consecutive_failures: u32,
    /// `BREAKER_FAILURE_RATE_PERCENT`: share of failed calls in a window that opens it
    /// (0: never).
    pub failure_rate_percent: u32,
    /// `BREAKER_MIN_REQUESTS`: calls a window needs before its failure rate counts.
    pub min_requests: u32,
    /// `BREAKER_WINDOW_SECONDS`, in milliseconds.
    pub window_ms: u64,
    /// `BREAKER_COOLDOWN_SECONDS`, in milliseconds: how long an open breaker stays open.
    pub cooldown_ms: u64,
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls skip the target until `until_ms`.
    Open {
        /// When the cooldown ends.
        until_ms: u64,
    },
    /// One probe is out since `probe_ms`; other calls skip the target.
    HalfOpen {
        /// When the probe was let through.
        probe_ms: u64,
    },
}

impl State {
    /// The state's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }
}

/// A state change, to be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The target, `provider/model`.
    pub target: String,
    /// The state before.
    pub from: &'static str,
    /// The state after.
    pub to: &'static str,
    /// Why, in words.
    pub reason: String,
    /// State changes of this target's breaker so far in this isolate, this one included.
    pub count: u64,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: State,
    consecutive_failures: u32,
    window_start_ms: u64,
    window_calls: u32,
    window_failures: u32,
    transitions: u64,
}

impl Breaker {
    fn new(now_ms: u64) -> Self {
        Breaker {
            state: State::Closed,
            consecutive_failures: 0,
            window_start_ms: now_ms,
            window_calls: 0,
            window_failures: 0,
            transitions: 0,
        }
    }

    fn move_to(&mut self, target: &str, state: State, reason: String) -> Transition {
        let from = self.state.name();
        self.state = state;
        self.transitions += 1;
        if state == State::Closed {
            self.consecutive_failures = 0;
            self.window_calls = 0;
            self.window_failures = 0;
        }
        Transition {
            target: target.to_owned(),
            from,
            to: state.name(),
            reason,
            count: self.transitions,
        }
    }
}

/// Every target's breaker. Kept per isolate: isolates do not share what they saw, so each
/// one opens its own breaker after its own failures.
#[derive(Debug, Default)]
pub struct BreakerBoard {
    breakers: HashMap<String, Breaker>,
}

impl BreakerBoard {
    /// Whether a call to `target` may go out now; a cooldown that ended turns the breaker
    /// half-open and lets this call through as its probe.
    pub fn allow(
        &mut self,
        target: &str,
        policy: &BreakerPolicy,
        now_ms: u64,
    ) -> (bool, Option<Transition>) {
        let Some(breaker) = self.breakers.get_mut(target) else {
            return (true, None);
        };
        match breaker.state {
            State::Closed => (true, None),
            State::Open { until_ms } if now_ms < until_ms => (false, None),
            State::HalfOpen { probe_ms } if now_ms < probe_ms + policy.cooldown_ms => (false, None),
            State::HalfOpen { .. } => {
                // The last probe never reported: this call is the new probe.
                breaker.state = State::HalfOpen { probe_ms: now_ms };
                (true, None)
            }
            State::Open { .. } => {
                let reason = "the cooldown ended; one probe call goes through".to_owned();
                let transition =
                    breaker.move_to(target, State::HalfOpen { probe_ms: now_ms }, reason);
                (true, Some(transition))
            }
        }
    }

    /// Records how a call to `target` ended (`failed`: a failure that counts against the
    /// target).
    pub fn record(
        &mut self,
        target: &str,
        failed: bool,
        policy: &BreakerPolicy,
        now_ms: u64,
    ) -> Option<Transition> {
        let breaker = self
            .breakers
            .entry(target.to_owned())
            .or_insert_with(|| Breaker::new(now_ms));
        match breaker.state {
            // Calls that started before the breaker opened tell nothing new.
            State::Open { .. } => None,
            State::HalfOpen { .. } if failed => Some(breaker.move_to(
                target,
                State::Open {
                    until_ms: now_ms + policy.cooldown_ms,
                },
                "the probe call failed".to_owned(),
            )),
            State::HalfOpen { .. } => {
                Some(breaker.move_to(target, State::Closed, "the probe call succeeded".to_owned()))
            }
            State::Closed => {
                if now_ms.saturating_sub(breaker.window_start_ms) >= policy.window_ms {
                    breaker.window_start_ms = now_ms;
                    breaker.window_calls = 0;
                    breaker.window_failures = 0;
                }
                breaker.window_calls += 1;
                if !failed {
                    breaker.consecutive_failures = 0;
                    return None;
                }
                breaker.consecutive_failures += 1;
                breaker.window_failures += 1;
                let reason = if policy.consecutive_failures > 0
                    && breaker.consecutive_failures >= policy.consecutive_failures
                {
                    format!("{} consecutive failures", breaker.consecutive_failures)
                } else if policy.failure_rate_percent > 0
                    && breaker.window_calls >= policy.min_requests.max(1)
                    && breaker.window_failures * 100
                        >= policy.failure_rate_percent * breaker.window_calls
                {
                    format!(
                        "{} of {} calls failed in the window",
                        breaker.window_failures, breaker.window_calls
                    )
                } else {
                    return None;
                };
                let open = State::Open {
                    until_ms: now_ms + policy.cooldown_ms,
                };
                Some(breaker.move_to(target, open, reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        consecutive_failures: 3,
        failure_rate_percent: 50,
        min_requests: 10,
        window_ms: 60_000,
        cooldown_ms: 30_000,
    };

    fn fail(board: &mut BreakerBoard, now: u64) -> Option<Transition> {
        board.record("up/m", true, &POLICY, now)
    }

    #[test]
    fn consecutive_failures_open_the_breaker_for_the_cooldown() {
        let mut board = BreakerBoard::default();
        assert_eq!(board.allow("up/m", &POLICY, 0), (true, None));
        assert_eq!(fail(&mut board, 1), None);
        assert_eq!(fail(&mut board, 2), None);
        // A success in between resets the run.
        assert_eq!(board.record("up/m", false, &POLICY, 3), None);
        assert_eq!(fail(&mut board, 4), None);
        assert_eq!(fail(&mut board, 5), None);
        let opened = fail(&mut board, 6).unwrap();
        assert_eq!((opened.from, opened.to), ("closed", "open"));
        assert_eq!(opened.reason, "3 consecutive failures");
        assert_eq!(opened.count, 1);
        assert_eq!(board.allow("up/m", &POLICY, 7), (false, None));
        assert_eq!(board.allow("up/m", &POLICY, 30_005), (false, None));
        // Other targets are not affected.
        assert_eq!(board.allow("up/other", &POLICY, 7), (true, None));
    }

    #[test]
    fn one_probe_after_the_cooldown_closes_or_reopens_it() {
        let mut board = BreakerBoard::default();
        for now in 0..3 {
            fail(&mut board, now);
        }
        let (allowed, transition) = board.allow("up/m", &POLICY, 30_002);
        assert!(allowed);
        assert_eq!(transition.unwrap().to, "half_open");
        // While the probe is out, everyone else skips the target.
        assert_eq!(board.allow("up/m", &POLICY, 30_003), (false, None));
        let reopened = fail(&mut board, 30_010).unwrap();
        assert_eq!((reopened.from, reopened.to), ("half_open", "open"));
        assert_eq!(board.allow("up/m", &POLICY, 60_009), (false, None));
        assert!(board.allow("up/m", &POLICY, 60_010).0);
        let closed = board.record("up/m", false, &POLICY, 60_020).unwrap();
        assert_eq!(
            (closed.from, closed.to, closed.count),
            ("half_open", "closed", 5)
        );
        assert_eq!(board.allow("up/m", &POLICY, 60_021), (true, None));
        // Closing forgot the old failures: it takes three new ones to open again.
        assert_eq!(fail(&mut board, 60_022), None);
        assert_eq!(fail(&mut board, 60_023), None);
        assert!(fail(&mut board, 60_024).is_some());
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_a_cooldown() {
        let mut board = BreakerBoard::default();
        for now in 0..3 {
            fail(&mut board, now);
        }
        assert!(board.allow("up/m", &POLICY, 30_002).0);
        assert!(!board.allow("up/m", &POLICY, 60_001).0);
        assert_eq!(board.allow("up/m", &POLICY, 60_002), (true, None));
        assert!(!board.allow("up/m", &POLICY, 60_003).0);
    }

    #[test]
    fn a_failure_rate_opens_it_once_the_window_has_enough_calls() {
        let mut board = BreakerBoard::default();
        // Alternating success and failure: never two failures in a row.
        for call in 0..9 {
            let failed = call % 2 == 1;
            assert_eq!(board.record("up/m", failed, &POLICY, call), None);
        }
        // The tenth call, a failure: 5 of 10 failed.
        let opened = fail(&mut board, 9).unwrap();
        assert_eq!(opened.reason, "5 of 10 calls failed in the window");
    }

    #[test]
    fn the_window_resets_its_counts() {
        let mut board = BreakerBoard::default();
        for call in 0..8 {
            board.record("up/m", call % 2 == 1, &POLICY, call);
        }
        // A new window: the old calls no longer count.
        for call in 0..9 {
            let now = 60_000 + call;
            assert_eq!(board.record("up/m", call % 2 == 0, &POLICY, now), None);
        }
    }

    #[test]
    fn calls_that_end_while_it_is_open_change_nothing() {
        let mut board = BreakerBoard::default();
        for now in 0..3 {
            fail(&mut board, now);
        }
        assert_eq!(board.record("up/m", false, &POLICY, 10), None);
        assert_eq!(fail(&mut board, 11), None);
        assert!(!board.allow("up/m", &POLICY, 12).0);
    }

    #[test]
    fn zero_thresholds_turn_the_rules_off() {
        let policy = BreakerPolicy {
            consecutive_failures: 0,
            failure_rate_percent: 0,
            ..POLICY
        };
        let mut board = BreakerBoard::default();
        for now in 0..100 {
            assert_eq!(board.record("up/m", true, &policy, now), None);
        }
        assert!(board.allow("up/m", &policy, 100).0);
    }
}
