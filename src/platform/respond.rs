//! HTTP responses: JSON bodies, OpenAI error objects and SSE streams.

use web_sys::ReadableStream;
use worker::{Headers, Response, ResponseBody};

use crate::api::Surface;
use crate::error::GatewayError;
use crate::limit::headers::retry_headers;

/// A JSON response with `status`.
pub fn json(status: u16, body: String) -> Response {
    with_content_type(status, "application/json", body.into_bytes())
}

/// A Prometheus text exposition (version 0.0.4).
pub fn prometheus(body: String) -> Response {
    with_content_type(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        body.into_bytes(),
    )
}

/// The error object for `error` in the client's wire format, with its status (and `Allow`
/// for a 405, `retry-after` when the error says when to retry).
pub fn error(error: &GatewayError, surface: Surface, allow: Option<&str>) -> Response {
    let response = json(error.status(), surface.error_body(error));
    if let Some(allow) = allow {
        set_header(&response, "allow", allow);
    }
    for (name, value) in error
        .retry_after_ms
        .map(retry_headers)
        .into_iter()
        .flatten()
    {
        set_header(&response, name, &value);
    }
    response
}

/// A `text/event-stream` response whose body is `body`.
pub fn event_stream(body: ReadableStream) -> Response {
    let headers = Headers::new();
    for (name, value) in [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache, no-transform"),
    ] {
        let _ = headers.set(name, value);
    }
    match Response::from_body(ResponseBody::Stream(body)) {
        Ok(response) => response.with_headers(headers),
        Err(_) => error(
            &GatewayError::new(
                crate::error::ErrorKind::Internal,
                "could not open the stream",
            ),
            Surface::default(),
            None,
        ),
    }
}

/// An empty response with `status` (a CORS preflight's 204).
pub fn empty(status: u16) -> Response {
    Response::builder().with_status(status).empty()
}

/// Sets a header; header values here are ASCII the gateway wrote, so setting cannot fail.
pub fn set_header(response: &Response, name: &str, value: &str) {
    let _ = response.headers().set(name, value);
}

fn with_content_type(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", content_type);
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body)
}
