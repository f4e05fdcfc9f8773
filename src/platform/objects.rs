//! Calls to Durable Objects: one operation, a JSON body, the answer's text.

use wasm_bindgen::JsValue;
use worker::{Method, ObjectNamespace, Request, RequestInit};

/// Sends operation `op` (a path, e.g. `/admit`) with `body` to the object named `name` in
/// `namespace`; the answer's text when it is a 200, else why not.
pub async fn call(
    namespace: &ObjectNamespace,
    name: &str,
    op: &str,
    body: String,
) -> Result<String, &'static str> {
    let stub = namespace
        .get_by_name(name)
        .map_err(|_| "its Durable Object could not be addressed")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let request = Request::new_with_init(&format!("https://object{op}"), &init)
        .map_err(|_| "the request could not be built")?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|_| "its Durable Object did not answer")?;
    let text = response
        .text()
        .await
        .map_err(|_| "its answer could not be read")?;
    if response.status_code() != 200 {
        return Err("its Durable Object failed");
    }
    Ok(text)
}
