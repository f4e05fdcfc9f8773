//! A minimal pass-through Worker: POST bodies go to `UPSTREAM_URL`, answers stream back.
//! `FLOOR_MODE` picks how: `rust-stream` (the default: through a Rust `Stream`, as
//! `Response::from_stream` does it), `pump` (each read copied into wasm and written back
//! through an `IdentityTransformStream`, by one Rust task), `jsloop` (the same by a loop
//! in JS that calls into wasm once per chunk), `transform` (piped through a
//! `TransformStream` whose transform is one synchronous call into wasm), `tee` (the body
//! teed: one branch returned untouched, the other read after the response by a JS loop
//! that hands each chunk to wasm and writes nothing: what merely watching an answer
//! costs), or `pass-through` (the upstream's `Response` returned untouched, its body never
//! entering wasm: the least any Worker can cost).

use futures_util::TryStreamExt;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::{spawn_local, JsFuture};
use wasm_bindgen::closure::Closure;
use worker::web_sys::{
    ReadableStream, ReadableStreamDefaultReader, TransformStream, WritableStream,
    WritableStreamDefaultWriter,
};
use worker::{
    event, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, ResponseBody,
    Result,
};

#[event(fetch)]
pub async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let upstream = env.var("UPSTREAM_URL")?.to_string();
    let mode = env.var("FLOOR_MODE").map(|mode| mode.to_string()).unwrap_or_default();
    let body = req.bytes().await?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(Uint8Array::from(body.as_slice()).into()));
    let mut answer = Fetch::Request(Request::new_with_init(&upstream, &init)?).send().await?;
    let status = answer.status_code();
    match mode.as_str() {
        "pass-through" => Ok(answer),
        "transform" => {
            let ResponseBody::Stream(upstream) = answer.body() else {
                return Response::empty();
            };
            let transformed = transform(upstream)?;
            Ok(Response::from_body(ResponseBody::Stream(transformed))?.with_status(status))
        }
        "jsloop" => {
            let ResponseBody::Stream(upstream) = answer.body() else {
                return Response::empty();
            };
            Ok(Response::from_body(ResponseBody::Stream(js_loop(upstream)?))?.with_status(status))
        }
        "tee" => {
            let ResponseBody::Stream(upstream) = answer.body() else {
                return Response::empty();
            };
            let (to_client, watched) = tee(upstream);
            ctx.wait_until(watch(watched));
            Ok(Response::from_body(ResponseBody::Stream(to_client))?.with_status(status))
        }
        "pump" => {
            let ResponseBody::Stream(upstream) = answer.body() else {
                return Response::empty();
            };
            Ok(Response::from_body(ResponseBody::Stream(pump(upstream)?))?.with_status(status))
        }
        _ => {
            let stream = answer.stream()?.map_ok(|chunk| chunk);
            Ok(Response::from_stream(stream)?.with_status(status))
        }
    }
}

/// `upstream` piped through a `TransformStream` whose transform, a synchronous call into
/// wasm, copies each chunk in and out: no Rust future per chunk.
fn transform(upstream: &ReadableStream) -> Result<ReadableStream> {
    let transform = Closure::<dyn FnMut(JsValue, JsValue)>::new(|chunk: JsValue, controller: JsValue| {
        let bytes = chunk.unchecked_into::<Uint8Array>().to_vec();
        let out = Uint8Array::from(bytes.as_slice());
        if let Ok(enqueue) = Reflect::get(&controller, &JsValue::from_str("enqueue")) {
            let _ = enqueue.unchecked_into::<js_sys::Function>().call1(&controller, &out);
        }
    });
    let transformer = js_sys::Object::new();
    Reflect::set(&transformer, &JsValue::from_str("transform"), transform.as_ref())?;
    // The closure lives as long as the isolate: fine for a benchmark, one per request.
    transform.forget();
    let stream = TransformStream::new_with_transformer(&transformer)?;
    // A TransformStream is itself the {readable, writable} pair pipeThrough takes.
    let pipe_through = Reflect::get(upstream, &JsValue::from_str("pipeThrough"))?;
    let piped = pipe_through.unchecked_into::<js_sys::Function>().call1(upstream, &stream)?;
    Ok(piped.unchecked_into())
}

/// A new `IdentityTransformStream`: its readable side and a writer of its writable side.
fn identity_stream() -> Result<(ReadableStream, WritableStreamDefaultWriter)> {
    let class = Reflect::get(&js_sys::global(), &JsValue::from_str("IdentityTransformStream"))?;
    let class: js_sys::Function = class.unchecked_into();
    let pair = Reflect::construct(&class, &js_sys::Array::new())?;
    let readable: ReadableStream = Reflect::get(&pair, &JsValue::from_str("readable"))?.unchecked_into();
    let writable: WritableStream = Reflect::get(&pair, &JsValue::from_str("writable"))?.unchecked_into();
    Ok((readable, writable.get_writer()?))
}

/// The readable side of an `IdentityTransformStream` that one task fills with copies of
/// `upstream`'s chunks, each read into wasm and written back.
fn pump(upstream: &ReadableStream) -> Result<ReadableStream> {
    let (readable, writer) = identity_stream()?;
    let reader: ReadableStreamDefaultReader = upstream.get_reader().unchecked_into();
    spawn_local(async move {
        loop {
            let Ok(result) = JsFuture::from(reader.read()).await else { break };
            if Reflect::get(&result, &JsValue::from_str("done")).map_or(true, |done| done.is_truthy()) {
                break;
            }
            let Ok(value) = Reflect::get(&result, &JsValue::from_str("value")) else { break };
            let bytes = value.unchecked_into::<Uint8Array>().to_vec();
            let out = Uint8Array::from(bytes.as_slice());
            if JsFuture::from(writer.write_with_chunk(&out)).await.is_err() {
                break;
            }
        }
        let _ = JsFuture::from(writer.close()).await;
    });
    Ok(readable)
}

// The `jsloop` floor's loop: no Rust future, no wasm-bindgen task per chunk.
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export async function pumpInJs(reader, writer, transform) {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    await writer.write(transform(value));
  }
  await writer.close();
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = pumpInJs)]
    fn pump_in_js(reader: &ReadableStreamDefaultReader, writer: &WritableStreamDefaultWriter, transform: &js_sys::Function) -> js_sys::Promise;
}

/// Like `pump`, but the loop is JS (an awaited read, one synchronous call into wasm that
/// copies the chunk in and out, an awaited write): what a chunk costs a Worker that reads
/// it into wasm without a Rust future or task around it.
fn js_loop(upstream: &ReadableStream) -> Result<ReadableStream> {
    let (readable, writer) = identity_stream()?;
    let reader: ReadableStreamDefaultReader = upstream.get_reader().unchecked_into();
    let transform = Closure::<dyn FnMut(Uint8Array) -> Uint8Array>::new(|chunk: Uint8Array| {
        let bytes = chunk.to_vec();
        Uint8Array::from(bytes.as_slice())
    });
    let done = pump_in_js(&reader, &writer, transform.as_ref().unchecked_ref());
    spawn_local(async move {
        let _ = JsFuture::from(done).await;
        drop(transform);
    });
    Ok(readable)
}

// The `tee` floor's reader: each chunk of one branch handed to wasm, nothing written.
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export async function readInJs(reader, inspect) {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    inspect(value);
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readInJs)]
    fn read_in_js(reader: &ReadableStreamDefaultReader, inspect: &js_sys::Function) -> js_sys::Promise;
}

/// `upstream`'s two branches: one for the client (piped natively), one to watch.
fn tee(upstream: &ReadableStream) -> (ReadableStream, ReadableStream) {
    let branches = upstream.tee();
    (branches.get(0).unchecked_into(), branches.get(1).unchecked_into())
}

/// Reads `branch` to its end in a JS loop that copies each chunk into wasm: what watching
/// an answer costs a Worker that hands the body itself to the client untouched.
async fn watch(branch: ReadableStream) {
    let reader: ReadableStreamDefaultReader = branch.get_reader().unchecked_into();
    let inspect = Closure::<dyn FnMut(Uint8Array)>::new(|chunk: Uint8Array| {
        let bytes = chunk.to_vec();
        std::hint::black_box(bytes);
    });
    let _ = JsFuture::from(read_in_js(&reader, inspect.as_ref().unchecked_ref())).await;
}
