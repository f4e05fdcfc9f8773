//! Sends an [`HttpCall`] upstream with a deadline for the response headers. The call is
//! cancelled when the client disconnects (its request signal), when the deadline passes,
//! or when the [`UpstreamGuard`] is dropped.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::JsValue;
use web_sys::{AbortController, AbortSignal};
use worker::{ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::error::GatewayError;
use crate::upstream::{timed_out, unreachable, HttpCall};

/// Aborts the upstream fetch when dropped: a stream that ends for any reason releases the
/// upstream connection at once.
pub struct UpstreamGuard(AbortController);

impl Drop for UpstreamGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `call`, waiting at most `ttfb_timeout_ms` for the response headers. On timeout
/// the fetch is aborted and the error is 504 `upstream_timeout`; a network failure is 502.
/// `client` is the incoming request's signal: its abort reaches the upstream too.
pub async fn send(
    call: &HttpCall,
    ttfb_timeout_ms: u32,
    client: &AbortSignal,
) -> Result<(Response, UpstreamGuard), GatewayError> {
    let headers = Headers::new();
    for (name, value) in &call.headers {
        headers
            .set(name, value)
            .map_err(|_| unreachable("a request header could not be set"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&call.body)));
    let request = Request::new_with_init(&call.url, &init)
        .map_err(|_| unreachable("its URL is not valid"))?;

    let controller = AbortController::new().map_err(|_| unreachable("no AbortController"))?;
    let signals = js_sys::Array::of2(client, &controller.signal());
    let signal = worker::AbortSignal::from(AbortSignal::any(&signals));
    let guard = UpstreamGuard(controller);
    let fetch = Fetch::Request(request);
    let response = fetch.send_with_signal(&signal);
    let deadline = Delay::from(Duration::from_millis(ttfb_timeout_ms.into()));
    futures_util::pin_mut!(response);
    match select(response, deadline).await {
        Either::Left((Ok(response), _)) => Ok((response, guard)),
        Either::Left((Err(err), _)) => Err(unreachable(&format!(
            "connection failed ({})",
            err.to_string().chars().take(200).collect::<String>()
        ))),
        // Dropping the guard aborts the pending fetch.
        Either::Right(_) => Err(timed_out(ttfb_timeout_ms)),
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
    Request(&'a mut Request),
    /// An upstream's answer.
    Response(&'a mut Response),
}

/// Reads a body whole, refusing more than `cap` bytes. A declared `Content-Length` within
/// the cap (the runtime enforces it) is read in one call; a body without one is counted
/// while streaming and refused as soon as it passes the cap. A missing body is empty.
pub async fn read_capped(body: Body<'_>, cap: usize) -> Result<Vec<u8>, BodyError> {
    let headers = match &body {
        Body::Request(request) => request.headers(),
        Body::Response(response) => response.headers(),
    };
    let declared = headers
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let whole = declared.is_some();
    match body {
        Body::Request(request) if whole => request.bytes().await.map_err(|_| BodyError::Failed),
        Body::Response(response) if whole => response.bytes().await.map_err(|_| BodyError::Failed),
        Body::Request(request) => match request.stream() {
            Ok(stream) => read_to_end(stream, cap).await,
            Err(_) => Ok(Vec::new()),
        },
        Body::Response(response) => match response.stream() {
            Ok(stream) => read_to_end(stream, cap).await,
            Err(_) => Ok(Vec::new()),
        },
    }
}

async fn read_to_end(mut body: ByteStream, cap: usize) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Failed)?;
        if bytes.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
