//! A streamed answer on the wire: the pipeline's [`AnswerStream`] is written into the
//! writable side of an `IdentityTransformStream`, whose readable side is the response body.
//! The runtime reads that body natively; a write per chunk is all the stream costs in JS
//! (a Rust `Stream` turned into a `ReadableStream` adds a pull, a promise and a future per
//! chunk; `make bench`'s floors measure the difference).
//!
//! An upstream answer is relayed by a loop in JS ([`relay_body`]): it reads each piece of
//! the upstream body, makes one synchronous call into wasm that translates it, and writes
//! the result. A Rust task awaiting each read and write instead costs two promise
//! callbacks, two wake-ups and two queued microtasks per piece, about a sixth of the
//! stream's CPU (`make bench-ab`). The loop also keeps the body's time limits, with one
//! timer for the whole body. Events held in memory (the built-in mock, a cached answer's
//! replay) are pumped by a Rust task: they wait on timers of their own, not on reads.
//!
//! workerd notices a disconnected client only when a write fails; it then aborts the
//! request's signal but does not always cancel the body. A hook on that signal therefore
//! cancels the upstream body (ending the read the stream waits on) and closes the
//! stream's accounting, unless the stream's own end came first; a failed write ends the
//! relay or the pump.

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortSignal, ReadableStream, ReadableStreamDefaultReader, WritableStream,
    WritableStreamDefaultWriter,
};
use worker::Response;

use super::background::Background;
use super::fetch::{BodyCanceller, FetchedBody};
use super::ports::WorkerPorts;
use super::respond;
use crate::error::{ErrorKind, GatewayError};
use crate::pipeline::stream::{
    AnswerStream, BodyEnd, Piece, RelayNext, Relayed, StreamCloser, StreamTiming, END_GRACE_MS,
};

/// The `text/event-stream` response for `stream`, relayed or pumped under `background`.
pub fn response(
    mut stream: AnswerStream<WorkerPorts>,
    client: AbortSignal,
    background: &Background,
) -> Response {
    let Ok((readable, writer)) = identity_stream() else {
        let error = GatewayError::new(ErrorKind::Internal, "could not open the stream");
        return respond::error(&error, Default::default(), None);
    };
    let body = stream.upstream_body();
    let canceller = body.as_ref().and_then(|body| body.canceller());
    let reader = body.and_then(FetchedBody::take_reader);
    let hook = ClientAbortHook::install(client, stream.closer(), canceller);
    // A body already read to its end (its declared length reached) has no reader left:
    // the pump delivers what was read of it.
    let relayed = reader.and_then(|reader| Some((reader, stream.relay_start()?)));
    match relayed {
        Some((reader, (first, timing))) => {
            background.run(relay(stream, reader, writer, first, timing, hook));
        }
        None => background.run(pump(stream, writer, hook)),
    }
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

// The loop that relays an upstream body: see `relay_body`.
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export async function relayBody(reader, writer, first, step, idleMs, deadlineMs, graceMs) {
  // The idle limit runs while a read waits, from when it began; a write that waits on a
  // slow client is not the upstream's silence.
  let readSince = Date.now();
  let reading = false;
  let drainBy = Infinity;
  let cause = "done";
  let open = true;
  const watch = () => {
    const now = Date.now();
    const idleDue = (reading ? readSince : now) + idleMs;
    const due = Math.min(idleDue, deadlineMs, drainBy);
    if (now < due) {
      timer = setTimeout(watch, due - now);
      return;
    }
    if (due !== drainBy) cause = deadlineMs < idleDue ? "out_of_time" : "silent";
    reader.cancel().catch(() => {});
  };
  let timer = setTimeout(watch, Math.min(readSince + idleMs, deadlineMs) - readSince);
  try {
    let out = first;
    for (;;) {
      const last = Array.isArray(out);
      const bytes = last ? out[0] : out;
      if (bytes.length > 0) await writer.write(bytes);
      if (last) {
        if (out[1] && open) {
          drainBy = Date.now() + graceMs;
          clearTimeout(timer);
          timer = setTimeout(watch, graceMs);
          while (open) {
            try {
              if ((await reader.read()).done) open = false;
            } catch {
              open = false;
            }
          }
        }
        break;
      }
      let value;
      readSince = Date.now();
      reading = true;
      try {
        const result = await reader.read();
        if (result.done) open = false;
        else value = result.value;
      } catch {
        open = false;
        if (cause === "done") cause = "broke";
      }
      reading = false;
      out = step(value, cause);
    }
  } catch {
    // A write failed: the client left.
  } finally {
    clearTimeout(timer);
    if (open) reader.cancel().catch(() => {});
  }
}
"#)]
extern "C" {
    /// The loop that relays an upstream body in JS. `first` and what `step` returns are a
    /// `Uint8Array` to write before the next read, or `[bytes, drain]` after the answer's
    /// last piece: write the bytes, then read out the rest of the body for at most
    /// `graceMs` (`drain`) or cancel it. `step` gets each piece, or, at the end, `undefined`
    /// and why the body stopped: "done", "broke", "silent" or "out_of_time".
    ///
    /// One timer watches the whole body: it goes off when the idle limit of the pending
    /// read, the deadline or the grace may have passed, re-arms itself if a piece came in
    /// time, and otherwise cancels the reader, which ends the pending read. A write that fails
    /// (the client left) ends the loop; a body not read to its end is cancelled.
    ///
    /// Settles when the relay has ended, never with an error.
    #[wasm_bindgen(js_name = relayBody)]
    fn relay_body(
        reader: &ReadableStreamDefaultReader,
        writer: &WritableStreamDefaultWriter,
        first: &JsValue,
        step: &Function,
        idle_ms: f64,
        deadline_ms: f64,
        grace_ms: f64,
    ) -> Promise;
}

/// Relays the rest of `stream`'s upstream body from `reader` into `writer` with
/// [`relay_body`], within `timing`, after `first` (the client bytes produced before the
/// answer was committed to, and what follows them); then closes the body. The hook lives as
/// long as the relay.
async fn relay(
    mut stream: AnswerStream<WorkerPorts>,
    reader: ReadableStreamDefaultReader,
    writer: WritableStreamDefaultWriter,
    first: Relayed,
    timing: StreamTiming,
    hook: ClientAbortHook,
) {
    let step = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(
        move |value: JsValue, cause: JsValue| {
            let piece = match value.dyn_into::<Uint8Array>() {
                Ok(chunk) => Piece::Bytes(chunk.to_vec()),
                Err(_) => Piece::end(body_end(&cause), &timing),
            };
            relayed_to_js(stream.relay_piece(piece))
        },
    );
    let relayed = relay_body(
        &reader,
        &writer,
        &relayed_to_js(first),
        step.as_ref().unchecked_ref(),
        timing.idle_timeout_ms as f64,
        timing.deadline_ms as f64,
        END_GRACE_MS as f64,
    );
    let _ = JsFuture::from(relayed).await;
    // The step owns the stream, whose accounting closes when it is dropped: before the
    // body ends, so that a client that reads to the end finds the log line written.
    drop(step);
    let _ = JsFuture::from(writer.close()).await;
    drop(hook);
}

/// `relayed` as [`relay_body`] takes it.
fn relayed_to_js(relayed: Relayed) -> JsValue {
    let bytes = Uint8Array::from(relayed.bytes.as_slice());
    match relayed.next {
        RelayNext::Read => bytes.into(),
        RelayNext::Drain => Array::of2(&bytes, &JsValue::TRUE).into(),
        RelayNext::Stop => Array::of2(&bytes, &JsValue::FALSE).into(),
    }
}

/// Why [`relay_body`] says the body stopped.
fn body_end(cause: &JsValue) -> BodyEnd {
    match cause.as_string().as_deref() {
        Some("broke") => BodyEnd::Broke,
        Some("silent") => BodyEnd::Silent,
        Some("out_of_time") => BodyEnd::OutOfTime,
        _ => BodyEnd::Done,
    }
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
