//! A streamed answer on the wire: the pipeline's [`AnswerStream`] becomes the response
//! body, chunk by chunk.
//!
//! workerd notices a disconnected client only when a write fails; it then aborts the
//! request's signal but does not always cancel (and so drop) the body stream. A hook on
//! that signal therefore cancels the upstream body (ending the read the stream waits on)
//! and closes the stream's accounting, unless the stream's own end came first.

use futures_util::Stream;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;
use worker::Response;

use super::fetch::BodyCanceller;
use super::ports::WorkerPorts;
use super::respond;
use crate::pipeline::stream::{AnswerStream, StreamCloser};

/// The `text/event-stream` response for `stream`.
pub fn response(stream: AnswerStream<WorkerPorts>, client: AbortSignal) -> Response {
    let upstream = stream.upstream_body().and_then(|body| body.canceller());
    let hook = ClientAbortHook::install(client, stream.closer(), upstream);
    respond::event_stream(body(stream, hook))
}

/// The client bytes, chunk by chunk; the hook lives as long as the stream is read.
fn body(
    stream: AnswerStream<WorkerPorts>,
    hook: ClientAbortHook,
) -> impl Stream<Item = Vec<u8>> + 'static {
    futures_util::stream::unfold((stream, hook), |(mut stream, hook)| async move {
        let chunk = stream.next_chunk().await?;
        Some((chunk, (stream, hook)))
    })
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
