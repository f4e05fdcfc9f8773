//! The client's request, as the fetch handler receives it from the runtime.
//!
//! workers-rs's `Request` reads the request's `cf` properties when it wraps the runtime's
//! request: on every request, although the gateway never reads them. In workerd that
//! getter alone was about 0.06 ms of CPU per JSON request (V8 profile,
//! `BENCH_ONLY=profile`: 4 % of the request), and on Cloudflare `cf` holds the request's
//! geolocation and TLS details besides.

use worker::{ByteStream, Headers};

use crate::router::split_url;

/// The client's request: its method, path and headers, and its body to be read once.
pub struct Incoming {
    request: web_sys::Request,
    headers: Headers,
    url: String,
}

impl Incoming {
    /// Wraps the runtime's request.
    pub fn new(request: web_sys::Request) -> Self {
        Incoming {
            headers: Headers(request.headers()),
            url: request.url(),
            request,
        }
    }

    /// The method, as the runtime normalized it (`GET`, `POST`, ...).
    pub fn method(&self) -> String {
        self.request.method()
    }

    /// The origin the request was sent to (`scheme://host[:port]`).
    pub fn origin(&self) -> &str {
        split_url(&self.url).0
    }

    /// The path, without query.
    pub fn path(&self) -> &str {
        split_url(&self.url).1
    }

    /// The full URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The header `name`, if the request has it (several are joined with `, `).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// The runtime's request (its signal, its body for reading in one piece).
    pub fn inner(&self) -> &web_sys::Request {
        &self.request
    }

    /// The body as a stream of pieces, unless it was read already or there is none.
    pub fn stream(&self) -> Option<ByteStream> {
        match self.request.body_used() {
            true => None,
            false => self.request.body().map(ByteStream::from),
        }
    }
}
