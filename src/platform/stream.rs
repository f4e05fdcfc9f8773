//! A streamed answer on the wire: one task per response pumps the pipeline's
//! [`AnswerStream`] into the writable side of an `IdentityTransformStream`, whose readable
//! side is the response body. The runtime reads that body natively; a write per chunk is
//! all the stream costs in JS (a Rust `Stream` turned into a `ReadableStream` adds a pull,
//! a promise and a future per chunk; `make bench`'s floors measure the difference).
//!
//! workerd notices a disconnected client only when a write fails; it then aborts the
//! request's signal but does not always cancel the body. A hook on that signal therefore
//! cancels the upstream body (ending the read the stream waits on) and closes the
//! stream's accounting, unless the stream's own end came first; a failed write ends the
//! pump.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStream, WritableStream, WritableStreamDefaultWriter};
use worker::Response;

use super::background::Background;
use super::fetch::BodyCanceller;
use super::ports::WorkerPorts;
use super::respond;
use crate::error::{ErrorKind, GatewayError};
use crate::pipeline::stream::{AnswerStream, StreamCloser};

/// The `text/event-stream` response for `stream`, pumped under `background`.
pub fn response(
    stream: AnswerStream<WorkerPorts>,
    client: AbortSignal,
    background: &Background,
) -> Response {
    let Ok((readable, writer)) = identity_stream() else {
        let error = GatewayError::new(ErrorKind::Internal, "could not open the stream");
        return respond::error(&error, Default::default(), None);
    };
    let upstream = stream.upstream_body().and_then(|body| body.canceller());
    let hook = ClientAbortHook::install(client, stream.closer(), upstream);
    background.run(pump(stream, writer, hook));
    respond::event_stream(readable)
}

/// A new `IdentityTransformStream`: its readable side and a writer of its writable side.
fn identity_stream() -> Result<(ReadableStream, WritableStreamDefaultWriter), JsValue> {
    let class = Reflect::get(
        &js_sys::global(),
        &JsValue::from_str("IdentityTransformStream"),
    )?;
    let class: js_sys::Function = class.dyn_into()?;
    let pair = Reflect::construct(&class, &js_sys::Array::new())?;
    let readable: ReadableStream =
        Reflect::get(&pair, &JsValue::from_str("readable"))?.dyn_into()?;
    let writable: WritableStream =
        Reflect::get(&pair, &JsValue::from_str("writable"))?.dyn_into()?;
    Ok((readable, writable.get_writer()?))
}

/// Writes every chunk of `stream` as it comes, then closes the body; stops at the first
/// write that fails (the client left). The hook lives as long as the pump.
async fn pump(
    mut stream: AnswerStream<WorkerPorts>,
    writer: WritableStreamDefaultWriter,
    hook: ClientAbortHook,
) {
    while let Some(chunk) = stream.next_chunk().await {
        let bytes = Uint8Array::from(chunk.as_slice());
        if JsFuture::from(writer.write_with_chunk(&bytes))
            .await
            .is_err()
        {
            break;
        }
    }
    // The accounting closes when the stream is dropped (before the body ends, so that a
    // client that reads to the end finds the log line written).
    drop(stream);
    let _ = JsFuture::from(writer.close()).await;
    drop(hook);
}

/// When the client's signal aborts: cancels the upstream body and closes the stream's
/// accounting. Unhooks itself when dropped.
struct ClientAbortHook {
    signal: AbortSignal,
    _closure: Closure<dyn FnMut()>,
}

impl ClientAbortHook {
    fn install(
        signal: AbortSignal,
        closer: StreamCloser<WorkerPorts>,
        upstream: Option<BodyCanceller>,
    ) -> Self {
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(upstream) = &upstream {
                upstream.cancel();
            }
            closer.client_left();
        });
        signal.set_onabort(Some(closure.as_ref().unchecked_ref()));
        ClientAbortHook {
            signal,
            _closure: closure,
        }
    }
}

impl Drop for ClientAbortHook {
    fn drop(&mut self) {
        self.signal.set_onabort(None);
    }
}
