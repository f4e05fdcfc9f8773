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
    let namespace = Reflect::get(env, &JsValue::from_str(binding))?;
    let put: Function = Reflect::get(&namespace, &JsValue::from_str("put"))?.dyn_into()?;
    let options = Object::new();
    if let Some(ttl_s) = ttl_s {
        let ttl_s = JsValue::from_f64(ttl_s.into());
        Reflect::set(&options, &JsValue::from_str("expirationTtl"), &ttl_s)?;
    }
    let key = JsValue::from_str(key);
    let promise: Promise = put
        .call3(&namespace, &key, &JsValue::from_str(value), &options)?
        .dyn_into()?;
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
    let namespace = Reflect::get(env, &JsValue::from_str(binding))?;
    let list: Function = Reflect::get(&namespace, &JsValue::from_str("list"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(
        &options,
        &JsValue::from_str("prefix"),
        &JsValue::from_str(prefix),
    )?;
    if let Some(cursor) = cursor {
        Reflect::set(
            &options,
            &JsValue::from_str("cursor"),
            &JsValue::from_str(cursor),
        )?;
    }
    if let Some(limit) = limit {
        // KV limits are at most 1000: exact as an f64.
        Reflect::set(
            &options,
            &JsValue::from_str("limit"),
            &JsValue::from_f64(limit as f64),
        )?;
    }
    let promise: Promise = list.call1(&namespace, &options)?.dyn_into()?;
    let page = JsFuture::from(promise).await?;
    let keys: Array = Reflect::get(&page, &JsValue::from_str("keys"))?.dyn_into()?;
    let name = JsValue::from_str("name");
    let names = keys
        .iter()
        .filter_map(|key| Reflect::get(&key, &name).ok()?.as_string())
        .collect();
    let complete = Reflect::get(&page, &JsValue::from_str("list_complete"))?
        .as_bool()
        .unwrap_or(true);
    let cursor = match complete {
        true => None,
        false => Reflect::get(&page, &JsValue::from_str("cursor"))?.as_string(),
    };
    Ok(KeyPage { names, cursor })
}
