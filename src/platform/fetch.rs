//! Sends an [`HttpCall`] upstream with a deadline for the response headers, and reads
//! bodies: a request's whole and capped, an upstream answer's piece by piece through a
//! [`FetchedBody`] that can be cancelled from outside.
//!
//! Every outgoing call (upstreams, the identity provider's JWKS, Durable Objects) goes
//! through the runtime's own `fetch(url, init)` ([`fetch`]): no `Request` object is built,
//! and the answer stays the runtime's `Response`. workers-rs's `Request` and `Response`
//! read their `cf` properties (and the response its `webSocket`) when they wrap one, and
//! its `Request::new_with_init` converts `cf` options through serde: JS calls on every
//! call that the gateway never needs.
//!
//! No `AbortSignal` is attached to the fetch: in workerd a signal costs CPU on every body
//! read (about 30 µs, measured with `make bench`), and nothing needs it. A call that misses
//! its deadline is cancelled by the runtime when the request it belongs to ends, and a
//! streamed body is cancelled through its reader (which closes the upstream connection).

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStreamDefaultReader, ReadableStreamReadResult, RequestInit, RequestRedirect,
};
use worker::ByteStream;

use super::clock::Timer;
use super::incoming::Incoming;
use crate::error::GatewayError;
use crate::pipeline::ports::{UpstreamBody, UpstreamResponse};
use crate::upstream::{timed_out, unreachable, HttpCall};

#[wasm_bindgen]
extern "C" {
    /// Whatever has the Fetch API's `fetch(url, init)`: the global scope, or a Durable
    /// Object's stub.
    pub type Fetcher;

    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch_with_init(
        this: &Fetcher,
        url: &str,
        init: &RequestInit,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// Why a call to the internet brought no answer.
pub enum NoAnswer {
    /// The runtime's error: the connection failed, or the URL was not valid.
    Failed(JsValue),
    /// The answer's headers did not come in time.
    TimedOut,
}

/// The global scope's `fetch(url, init)`, waiting at most `timeout_ms` for the answer's
/// headers.
pub async fn fetch_within(
    url: &str,
    init: &RequestInit,
    timeout_ms: u64,
) -> Result<web_sys::Response, NoAnswer> {
    let internet: Fetcher = js_sys::global().unchecked_into();
    let sending = fetch(&internet, url, init);
    futures_util::pin_mut!(sending);
    match select(sending, Timer::after(timeout_ms)).await {
        Either::Left((answer, _)) => answer.map_err(NoAnswer::Failed),
        Either::Right(_) => Err(NoAnswer::TimedOut),
    }
}

/// `fetcher.fetch(url, init)`: its answer, or why there is none (an invalid URL, a
/// failed connection).
pub async fn fetch(
    fetcher: &Fetcher,
    url: &str,
    init: &RequestInit,
) -> Result<web_sys::Response, JsValue> {
    let answer = JsFuture::from(fetcher.fetch_with_init(url, init)?).await?;
    // `fetch` resolves to a `Response` and nothing else.
    Ok(answer.unchecked_into())
}

/// The options of a call: its method, headers and body, and whether a redirect is
/// followed (see [`send`] for when not).
pub fn request_init(
    method: &str,
    headers: Option<&web_sys::Headers>,
    body: Option<&str>,
    redirect: RequestRedirect,
) -> RequestInit {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(headers);
    }
    init.set_body_opt_str(body);
    init.set_redirect(redirect);
    init
}

/// Sends `call`, waiting at most `ttfb_timeout_ms` for the response headers: 504
/// `upstream_timeout` when they do not come in time, 502 when the connection fails. A
/// redirect is answered as it is, never followed: a provider's key must not go to
/// wherever it points, nor a webhook (whose URL was checked) lead elsewhere.
pub async fn send(
    call: &HttpCall,
    extra_headers: &[(&str, &str)],
    ttfb_timeout_ms: u64,
) -> Result<UpstreamResponse<FetchedBody>, GatewayError> {
    let headers =
        web_sys::Headers::new().map_err(|_| unreachable("its headers could not be made"))?;
    let own = call
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()));
    for (name, value) in own.chain(extra_headers.iter().copied()) {
        headers
            .set(name, value)
            .map_err(|_| unreachable("a request header could not be set"))?;
    }
    let init = request_init(
        "POST",
        Some(&headers),
        Some(&call.body),
        RequestRedirect::Manual,
    );
    let response = match fetch_within(&call.url, &init, ttfb_timeout_ms).await {
        Ok(response) => response,
        Err(NoAnswer::Failed(err)) => {
            let reason = match err.dyn_ref::<js_sys::Error>() {
                Some(err) => format!(
                    "{}: {}",
                    String::from(err.name()),
                    String::from(err.message())
                ),
                None => "no reason given".to_owned(),
            };
            return Err(unreachable(&format!(
                "connection failed ({})",
                reason.chars().take(200).collect::<String>()
            )));
        }
        Err(NoAnswer::TimedOut) => return Err(timed_out(ttfb_timeout_ms)),
    };
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let content_length = declared_length(header("content-length"));
    // The runtime decodes an encoded body, whose decoded length its declared one is not.
    let encoded = header("content-encoding")
        .is_some_and(|coding| !coding.trim().eq_ignore_ascii_case("identity"));
    Ok(UpstreamResponse {
        status: response.status(),
        retry_after_ms: header("retry-after-ms"),
        retry_after: header("retry-after"),
        content_length,
        body: FetchedBody::of(&response, content_length.filter(|_| !encoded)),
    })
}

/// The body of a fetched answer, read piece by piece. Dropping it, or calling
/// [`BodyCanceller::cancel`] on one of its cancellers, cancels it and so closes the
/// upstream connection.
///
/// A body of a known length ends with its last byte: the read that would only say "done"
/// is not made (in workerd a read, its promise and the wake-up it causes cost more CPU
/// than the gateway's own work on a small JSON answer), and the reader is let go without
/// a cancel, which HTTP's framing makes safe: that many bytes are the whole body.
pub struct FetchedBody {
    /// `None` for an answer without a body, or once it has ended: it reads as empty.
    reader: Option<ReadableStreamDefaultReader>,
    /// The bytes still to come, when the body's length is known.
    left: Option<u64>,
}

/// Cancels a [`FetchedBody`] from outside the task that reads it: a pending read then
/// ends as if the body had ended.
#[derive(Clone)]
pub struct BodyCanceller(ReadableStreamDefaultReader);

impl BodyCanceller {
    /// Cancels the body; harmless if it has ended already.
    pub fn cancel(&self) {
        // The promise settles once the connection is closed; nothing waits for it.
        let _ = self.0.cancel();
    }
}

impl FetchedBody {
    /// Takes the body of `response`, `length` bytes long if that is known.
    fn of(response: &web_sys::Response, length: Option<u64>) -> Self {
        let reader = response.body().and_then(|stream| {
            stream
                .get_reader()
                .dyn_into::<ReadableStreamDefaultReader>()
                .ok()
        });
        FetchedBody {
            reader,
            left: length,
        }
    }

    /// A handle that cancels this body, if it has one.
    pub fn canceller(&self) -> Option<BodyCanceller> {
        self.reader.clone().map(BodyCanceller)
    }

    /// Hands the body's reader to a loop that reads the rest itself. This body then reads
    /// as ended and is not cancelled when dropped: the loop cancels the reader if it stops
    /// before the end.
    pub fn take_reader(&mut self) -> Option<ReadableStreamDefaultReader> {
        self.reader.take()
    }
}

impl UpstreamBody for FetchedBody {
    async fn next(&mut self) -> Option<Result<Vec<u8>, ()>> {
        let reader = self.reader.as_ref()?;
        let result = match JsFuture::from(reader.read()).await {
            Ok(result) => result.unchecked_into::<ReadableStreamReadResult>(),
            Err(_) => return Some(Err(())),
        };
        if result.get_done().unwrap_or(true) {
            // An ended body needs no cancelling when it is dropped (in workerd a cancel
            // costs more CPU than a read).
            self.reader = None;
            return None;
        }
        let Ok(chunk) = result.get_value().dyn_into::<js_sys::Uint8Array>() else {
            return Some(Err(()));
        };
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(u64::from(chunk.length()));
            if *left == 0 {
                self.reader = None;
            }
        }
        Some(Ok(chunk.to_vec()))
    }
}

impl Drop for FetchedBody {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            let _ = reader.cancel();
        }
    }
}

/// Why a body could not be read whole.
pub enum BodyError {
    /// It is longer than the cap.
    TooLarge,
    /// The connection failed while reading.
    Failed,
}

/// A message whose body is to be read whole.
pub enum Body<'a> {
    /// The client's request.
    Request(&'a Incoming),
    /// An answer to a call the gateway made.
    Response(&'a web_sys::Response),
}

/// Most bytes of a request body read and dropped after it passed its cap, so that the
/// client's connection survives the refusal (an abandoned request body can make the
/// runtime reset it); a body longer still is abandoned.
pub const MAX_DRAINED_BYTES: usize = 1024 * 1024;

/// The body length a message's `Content-Length` header declares, if it is a valid one.
fn declared_length(content_length: Option<String>) -> Option<u64> {
    content_length.and_then(|value| value.trim().parse::<u64>().ok())
}

/// Reads a body whole, refusing more than `cap` bytes: a declared `Content-Length` over the
/// cap is refused at once; otherwise the bytes are counted as they stream in (a body may
/// be longer than it declares) and refused once they pass the cap (a request body after
/// reading and dropping up to [`MAX_DRAINED_BYTES`] more). A missing body is empty.
pub async fn read_capped(body: Body<'_>, cap: usize) -> Result<Vec<u8>, BodyError> {
    let declared = declared_length(match &body {
        Body::Request(request) => request.header("content-length"),
        Body::Response(response) => response.headers().get("content-length").ok().flatten(),
    });
    if declared.is_some_and(|length| length > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    // A declared length within the cap only sizes the buffer.
    let expected = declared.map_or(0, |length| length as usize);
    let (stream, drain) = match body {
        // A request's declared length is its length (HTTP framing): read it in one piece,
        // without a reader and a read per piece.
        Body::Request(request) if declared.is_some() => {
            return read_whole(request.inner(), cap).await
        }
        Body::Request(request) => (request.stream(), MAX_DRAINED_BYTES),
        Body::Response(response) => (response.body().map(ByteStream::from), 0),
    };
    match stream {
        Some(stream) => read_to_end(stream, cap, drain, expected).await,
        None => Ok(Vec::new()),
    }
}

/// Reads the body of `request` in one piece (`arrayBuffer()`); more than `cap` bytes are
/// refused all the same.
async fn read_whole(request: &web_sys::Request, cap: usize) -> Result<Vec<u8>, BodyError> {
    let whole = request.array_buffer().map_err(|_| BodyError::Failed)?;
    let buffer = JsFuture::from(whole).await.map_err(|_| BodyError::Failed)?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    if bytes.length() as usize > cap {
        return Err(BodyError::TooLarge);
    }
    Ok(bytes.to_vec())
}

/// Reads `body` up to `cap` bytes (`expected` of them, as far as anyone said); past the
/// cap, reads and drops up to `drain` more bytes before refusing.
async fn read_to_end(
    mut body: ByteStream,
    cap: usize,
    drain: usize,
    expected: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::with_capacity(expected);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Failed)?;
        if bytes.len() + chunk.len() > cap {
            let mut dropped = chunk.len();
            while dropped <= drain {
                match body.next().await {
                    Some(Ok(more)) => dropped += more.len(),
                    _ => break,
                }
            }
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
