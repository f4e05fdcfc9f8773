//! Sends an [`HttpCall`] upstream with a deadline for the response headers, and reads
//! bodies: a request's whole and capped, an upstream answer's piece by piece through a
//! [`FetchedBody`] that can be cancelled from outside.
//!
//! No `AbortSignal` is attached to the fetch: in workerd a signal costs CPU on every body
//! read (about 30 µs, measured with `make bench`), and nothing needs it. A call that misses
//! its deadline is cancelled by the runtime when the request it belongs to ends, and a
//! streamed body is cancelled through its reader (which closes the upstream connection).

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStreamDefaultReader, ReadableStreamReadResult, RequestInit, RequestRedirect,
};
use worker::{ByteStream, Fetch, Headers, Request, Response, ResponseBody};

use super::clock::Timer;
use super::incoming::Incoming;
use crate::error::GatewayError;
use crate::pipeline::ports::{UpstreamBody, UpstreamResponse};
use crate::upstream::{timed_out, unreachable, HttpCall};

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
    let request = new_request(
        "POST",
        &call.url,
        Some(&headers),
        Some(&call.body),
        RequestRedirect::Manual,
    )
    .map_err(|_| unreachable("its URL is not valid"))?;
    let fetch = Fetch::Request(request);
    let sending = fetch.send();
    futures_util::pin_mut!(sending);
    let deadline = Timer::after(ttfb_timeout_ms);
    let response = match select(sending, deadline).await {
        Either::Left((Ok(response), _)) => response,
        Either::Left((Err(err), _)) => {
            return Err(unreachable(&format!(
                "connection failed ({})",
                err.to_string().chars().take(200).collect::<String>()
            )))
        }
        Either::Right(_) => return Err(timed_out(ttfb_timeout_ms)),
    };
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    Ok(UpstreamResponse {
        status: response.status_code(),
        retry_after_ms: header("retry-after-ms"),
        retry_after: header("retry-after"),
        content_length: declared_length(headers),
        body: FetchedBody::of(&response),
    })
}

/// A request built with the runtime's own constructor. workers-rs's
/// `Request::new_with_init` also converts each field of its `RequestInit` (the `cf`
/// properties through serde): 11 KB of wasm and more JS calls on every upstream call.
/// `redirect` says whether a redirect is followed (see [`send`] for when not).
pub fn new_request(
    method: &str,
    url: &str,
    headers: Option<&web_sys::Headers>,
    body: Option<&str>,
    redirect: RequestRedirect,
) -> Result<Request, JsValue> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(headers);
    }
    init.set_body_opt_str(body);
    init.set_redirect(redirect);
    web_sys::Request::new_with_str_and_init(url, &init).map(Request::from)
}

/// The body of a fetched answer, read piece by piece. Dropping it, or calling
/// [`BodyCanceller::cancel`] on one of its cancellers, cancels it and so closes the
/// upstream connection.
pub struct FetchedBody {
    /// `None` for an answer without a body, or once it has ended: it reads as empty.
    reader: Option<ReadableStreamDefaultReader>,
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
    /// Takes the body of `response`.
    fn of(response: &Response) -> Self {
        let reader = match response.body() {
            ResponseBody::Stream(stream) => stream
                .get_reader()
                .dyn_into::<ReadableStreamDefaultReader>()
                .ok(),
            _ => None,
        };
        FetchedBody { reader }
    }

    /// A handle that cancels this body, if it has one.
    pub fn canceller(&self) -> Option<BodyCanceller> {
        self.reader.clone().map(BodyCanceller)
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
        let chunk = result.get_value().dyn_into::<js_sys::Uint8Array>();
        Some(chunk.map(|bytes| bytes.to_vec()).map_err(|_| ()))
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
    /// An upstream's answer.
    Response(&'a mut Response),
}

/// Most bytes of a request body read and dropped after it passed its cap, so that the
/// client's connection survives the refusal (an abandoned request body can make the
/// runtime reset it); a body longer still is abandoned.
pub const MAX_DRAINED_BYTES: usize = 1024 * 1024;

/// The body length a message's `Content-Length` declares, if it declares a valid one.
pub fn declared_length(headers: &Headers) -> Option<u64> {
    headers
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|value| value.trim().parse::<u64>().ok())
}

/// Reads a body whole, refusing more than `cap` bytes: a declared `Content-Length` over the
/// cap is refused at once; otherwise the bytes are counted as they stream in (a body may
/// be longer than it declares) and refused once they pass the cap (a request body after
/// reading and dropping up to [`MAX_DRAINED_BYTES`] more). A missing body is empty.
pub async fn read_capped(body: Body<'_>, cap: usize) -> Result<Vec<u8>, BodyError> {
    let headers = match &body {
        Body::Request(request) => request.headers(),
        Body::Response(response) => response.headers(),
    };
    let declared = declared_length(headers);
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
        Body::Response(response) => (response.stream().ok(), 0),
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
