//! Time, timers and randomness from the runtime (`Date.now()`, `setTimeout`,
//! `crypto.getRandomValues`).
//!
//! Workers advance `Date.now()` only across I/O, which is exactly the resolution latency
//! measurements need.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::WorkerGlobalScope;

use super::crypto::random_bytes;
use crate::auth::api_keys::hex;

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A fresh request id: 128 bits from the platform CSPRNG, as 32 hex digits.
pub fn new_request_id() -> String {
    match random_bytes::<16>() {
        Ok(bytes) => hex(&bytes),
        // The runtime always provides crypto.getRandomValues; a time-based id keeps the
        // request traceable if it ever does not.
        Err(_) => format!("t{:x}", now_ms()),
    }
}

/// A future that is ready `ms` milliseconds after it was made (`setTimeout`), and
/// cancelled (`clearTimeout`) when dropped before.
///
/// Unlike `worker::Delay`, it wakes the task that polled it last, not the first, so that a
/// timer armed in one task stays correct if another one awaits it.
pub struct Timer {
    /// `None` when the runtime refused the timeout: the timer is then ready at once, since
    /// a wait must end.
    armed: Option<Armed>,
}

/// A timeout the runtime holds.
struct Armed {
    id: i32,
    state: Rc<TimerState>,
    /// The callback the runtime calls; it must live as long as the timeout may fire.
    _callback: Closure<dyn FnMut()>,
}

#[derive(Default)]
struct TimerState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Timer {
    /// A timer that goes off `ms` milliseconds from now.
    pub fn after(ms: u64) -> Timer {
        let state = Rc::new(TimerState::default());
        let shared = Rc::clone(&state);
        let callback = Closure::<dyn FnMut()>::new(move || {
            shared.fired.set(true);
            if let Some(waker) = shared.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        let delay = i32::try_from(ms).unwrap_or(i32::MAX);
        let armed = js_sys::global()
            .unchecked_into::<WorkerGlobalScope>()
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                callback.as_ref().unchecked_ref(),
                delay,
            )
            .ok()
            .map(|id| Armed {
                id,
                state,
                _callback: callback,
            });
        Timer { armed }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(armed) = &self.armed else {
            return Poll::Ready(());
        };
        if armed.state.fired.get() {
            return Poll::Ready(());
        }
        let mut waker = armed.state.waker.borrow_mut();
        if !waker
            .as_ref()
            .is_some_and(|known| known.will_wake(cx.waker()))
        {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(armed) = &self.armed {
            if !armed.state.fired.get() {
                js_sys::global()
                    .unchecked_into::<WorkerGlobalScope>()
                    .clear_timeout_with_handle(armed.id);
            }
        }
    }
}
