//! Work that outlives the response (`ctx.waitUntil`): settling rate limits after a stream
//! ends or its client leaves, and the isolate's batches (metrics, feedback records,
//! spans) sent a moment after their first entry.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::thread::LocalKey;

use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::Context as JsContext;
use worker::Context;

use super::clock::{now_ms, Timer};

/// How long past its due time a scheduled run is still expected: a run later than that was
/// cut off with the request that scheduled it (its `waitUntil` ended before its timer
/// fired), and no longer keeps a new one from being scheduled.
const OVERDUE_MS: u64 = 5_000;

/// When an isolate's batch is next sent, if a send is scheduled: one send covers every
/// entry added before it runs.
#[derive(Default)]
pub struct BatchSend {
    due_ms: Cell<Option<u64>>,
}

impl BatchSend {
    /// No send scheduled.
    pub const fn new() -> Self {
        BatchSend {
            due_ms: Cell::new(None),
        }
    }

    /// Whether no send is scheduled.
    pub fn is_idle(&self) -> bool {
        self.due_ms.get().is_none()
    }
}

/// The request's execution context; clones share it.
#[derive(Clone)]
pub struct Background(JsValue);

impl Background {
    /// The background of the request `ctx` belongs to.
    pub fn of(ctx: &Context) -> Self {
        let context: &JsContext = ctx.as_ref();
        Background(JsValue::from(context))
    }

    /// Runs `work` to completion even after the response is sent. Unlike
    /// `Context::wait_until`, never panics: if the runtime refuses (the request is long
    /// over), the work still runs for as long as the isolate lives.
    pub fn run(&self, work: impl Future<Output = ()> + 'static) {
        self.run_boxed(Box::pin(work));
    }

    /// [`Background::run`] for every kind of work: one instance of the promise adapter
    /// rather than one per caller (each is a few hundred bytes of wasm).
    fn run_boxed(&self, work: Pin<Box<dyn Future<Output = ()>>>) {
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            work.await;
            Ok(JsValue::UNDEFINED)
        });
        let _ = self.0.unchecked_ref::<JsContext>().wait_until(&promise);
    }

    /// Runs `send` in `delay_ms`, unless `slot` has a send due no later (which will take
    /// whatever made this one ask); a send long overdue does not count. Whether it
    /// scheduled one.
    pub fn run_batched<F: Future<Output = ()> + 'static>(
        &self,
        slot: &'static LocalKey<BatchSend>,
        delay_ms: u64,
        send: impl FnOnce() -> F + 'static,
    ) -> bool {
        let now = now_ms();
        let due = now + delay_ms;
        let scheduled = slot.with(|slot| slot.due_ms.get());
        if scheduled.is_some_and(|at| at <= due && now < at + OVERDUE_MS) {
            return false;
        }
        slot.with(|slot| slot.due_ms.set(Some(due)));
        self.run(async move {
            Timer::after(delay_ms).await;
            // Entries added from here on ask for a send of their own.
            slot.with(|slot| {
                if slot.due_ms.get() == Some(due) {
                    slot.due_ms.set(None);
                }
            });
            send().await;
        });
        true
    }
}
