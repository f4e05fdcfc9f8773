//! The circuit breakers of this isolate's targets: asked before each call, told how each
//! call (or stream) ended. The breakers are pure state ([`BreakerBoard`]); what a state
//! change writes and counts goes through the ports.

use std::cell::RefCell;

use super::ports::Ports;
use crate::resilience::breaker::{BreakerBoard, BreakerPolicy, Transition};
use crate::upstream::Target;

thread_local! {
    /// Every target's circuit breaker, for this isolate.
    static BREAKERS: RefCell<BreakerBoard> = RefCell::new(BreakerBoard::default());
}

/// One target's circuit breaker.
#[derive(Clone)]
pub struct TargetHealth<P: Ports> {
    /// The target's name, `provider/model`.
    pub key: String,
    policy: BreakerPolicy,
    ports: P,
}

impl<P: Ports> TargetHealth<P> {
    /// The breaker of `target` under `policy`.
    pub fn of(target: &Target, policy: &BreakerPolicy, ports: &P) -> Self {
        TargetHealth {
            key: target.key(),
            policy: policy.clone(),
            ports: ports.clone(),
        }
    }

    /// Whether a call may go out now.
    pub fn allows(&self) -> bool {
        let now = self.ports.now_ms();
        let (allowed, transition) =
            BREAKERS.with(|board| board.borrow_mut().allow(&self.key, &self.policy, now));
        self.report(transition);
        allowed
    }

    /// Records how a call ended (`failed`: in a way that counts against the target).
    pub fn record(&self, failed: bool) {
        let now = self.ports.now_ms();
        let transition = BREAKERS.with(|board| {
            board
                .borrow_mut()
                .record(&self.key, failed, &self.policy, now)
        });
        self.report(transition);
    }

    fn report(&self, transition: Option<Transition>) {
        if let Some(transition) = transition {
            self.ports.breaker_transition(&transition);
        }
    }
}
