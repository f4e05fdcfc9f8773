//! A minimal pass-through Worker: POST bodies go to `UPSTREAM_URL`, answers stream back
//! through a Rust stream. The benchmark's floor for what any workers-rs proxy costs.

use futures_util::TryStreamExt;
use worker::{event, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

#[event(fetch)]
pub async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let upstream = env.var("UPSTREAM_URL")?.to_string();
    let body = req.bytes().await?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys_bytes(&body)));
    let mut answer = Fetch::Request(Request::new_with_init(&upstream, &init)?).send().await?;
    let status = answer.status_code();
    let stream = answer.stream()?.map_ok(|chunk| chunk);
    Ok(Response::from_stream(stream)?.with_status(status))
}

fn js_sys_bytes(bytes: &[u8]) -> wasm_bindgen::JsValue {
    worker::js_sys::Uint8Array::from(bytes).into()
}
