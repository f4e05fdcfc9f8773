//! KV writes and listings, called on the binding itself: workers-rs's `put` and `list`
//! build their options and read a listing through serde-wasm-bindgen's generic JS-value
//! serializer and deserializer, about 14 KB of wasm for three options and two fields.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

/// Writes `value` as `key` in the namespace bound as `binding`, kept `ttl_s` seconds
/// (KV's minimum is 60) or for good when `None`.
pub async fn put(
    env: &Env,
    binding: &str,
    key: &str,
    value: &str,
    ttl_s: Option<u32>,
) -> Result<(), JsValue> {
    let (namespace, put) = method(env, binding, "put")?;
    let options = Object::new();
    if let Some(ttl_s) = ttl_s {
        set(&options, "expirationTtl", &JsValue::from_f64(ttl_s.into()))?;
    }
    let (key, value) = (JsValue::from_str(key), JsValue::from_str(value));
    let promise: Promise = put.call3(&namespace, &key, &value, &options)?.dyn_into()?;
    JsFuture::from(promise).await?;
    Ok(())
}

/// One page of a listing.
pub struct KeyPage {
    /// The keys' names, in key order.
    pub names: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

/// The keys of the namespace bound as `binding` that start with `prefix`, from `cursor`
/// on (the start when `None`), at most `limit` of them (KV's default of 1000 when
/// `None`).
pub async fn list(
    env: &Env,
    binding: &str,
    prefix: &str,
    cursor: Option<&str>,
    limit: Option<u64>,
) -> Result<KeyPage, JsValue> {
    let (namespace, list) = method(env, binding, "list")?;
    let options = Object::new();
    set(&options, "prefix", &JsValue::from_str(prefix))?;
    if let Some(cursor) = cursor {
        set(&options, "cursor", &JsValue::from_str(cursor))?;
    }
    if let Some(limit) = limit {
        // KV limits are at most 1000: exact as an f64.
        set(&options, "limit", &JsValue::from_f64(limit as f64))?;
    }
    let promise: Promise = list.call1(&namespace, &options)?.dyn_into()?;
    let page = JsFuture::from(promise).await?;
    let keys: Array = get(&page, "keys")?.dyn_into()?;
    let names = keys
        .iter()
        .filter_map(|key| get(&key, "name").ok()?.as_string())
        .collect();
    let cursor = match get(&page, "list_complete")?.as_bool().unwrap_or(true) {
        true => None,
        false => get(&page, "cursor")?.as_string(),
    };
    Ok(KeyPage { names, cursor })
}

/// The namespace bound as `binding`, and its method `name`.
fn method(env: &Env, binding: &str, name: &str) -> Result<(JsValue, Function), JsValue> {
    let namespace = get(env, binding)?;
    let method = get(&namespace, name)?.dyn_into()?;
    Ok((namespace, method))
}

/// `object[name]`.
fn get(object: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &JsValue::from_str(name))
}

/// Sets `object[name]` to `value`.
fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(object, &JsValue::from_str(name), value).map(drop)
}
