//! A KV namespace, called on the binding itself: workers-rs's `KvStore` builds its
//! options and reads a listing through serde-wasm-bindgen's generic JS-value serializer
//! and deserializer (about 14 KB of wasm for three options and two fields), and looks up
//! each of its five methods whenever a store is opened.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

/// The namespace behind one KV binding.
pub struct Namespace(JsValue);

/// One page of a listing.
pub struct KeyPage {
    /// The keys' names, in key order.
    pub names: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

impl Namespace {
    /// The namespace bound as `binding`, if the Worker has that binding.
    pub fn bound(env: &Env, binding: &str) -> Option<Namespace> {
        let namespace = get(env, binding).ok()?;
        (!namespace.is_undefined() && !namespace.is_null()).then_some(Namespace(namespace))
    }

    /// The text stored as `key`; `None` if there is none.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>, JsValue> {
        let text = self.call("get", &[&JsValue::from_str(key)]).await?;
        Ok(text.as_string())
    }

    /// Writes `value` as `key`, kept `ttl_s` seconds (KV's minimum is 60) or for good when
    /// `None`.
    pub async fn put(&self, key: &str, value: &str, ttl_s: Option<u32>) -> Result<(), JsValue> {
        let options = Object::new();
        if let Some(ttl_s) = ttl_s {
            set(&options, "expirationTtl", &JsValue::from_f64(ttl_s.into()))?;
        }
        let (key, value) = (JsValue::from_str(key), JsValue::from_str(value));
        self.call("put", &[&key, &value, &options]).await?;
        Ok(())
    }

    /// Deletes `key` (nothing happens if there is none).
    pub async fn delete(&self, key: &str) -> Result<(), JsValue> {
        self.call("delete", &[&JsValue::from_str(key)]).await?;
        Ok(())
    }

    /// The keys that start with `prefix`, from `cursor` on (the start when `None`), at
    /// most `limit` of them (KV's default of 1000 when `None`).
    pub async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> Result<KeyPage, JsValue> {
        let options = Object::new();
        set(&options, "prefix", &JsValue::from_str(prefix))?;
        if let Some(cursor) = cursor {
            set(&options, "cursor", &JsValue::from_str(cursor))?;
        }
        if let Some(limit) = limit {
            // KV limits are at most 1000: exact as an f64.
            set(&options, "limit", &JsValue::from_f64(limit as f64))?;
        }
        let page = self.call("list", &[&options]).await?;
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

    /// Calls the namespace's method `name` with `args` and waits for its promise.
    async fn call(&self, name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
        let method: Function = get(&self.0, name)?.dyn_into()?;
        let args: Array = args.iter().copied().collect();
        let promise: Promise = method.apply(&self.0, &args)?.dyn_into()?;
        JsFuture::from(promise).await
    }
}

/// `object[name]`.
fn get(object: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &JsValue::from_str(name))
}

/// Sets `object[name]` to `value`.
fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(object, &JsValue::from_str(name), value).map(drop)
}
