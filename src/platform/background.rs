//! Work that outlives the response (`ctx.waitUntil`): settling rate limits after a stream
//! ends or its client leaves.

use std::future::Future;

use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::Context as JsContext;
use worker::Context;

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
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            work.await;
            Ok(JsValue::UNDEFINED)
        });
        let _ = self.0.unchecked_ref::<JsContext>().wait_until(&promise);
    }
}
