//! Vars and secrets from the Worker environment, loaded into the isolate's cached config.

use std::cell::OnceCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::Env;

use crate::config::{json_var_text, Config, ConfigErrors, ConfigSource};

/// Reads bindings straight off the `env` object: vars may be strings or JSON objects
/// (wrangler turns TOML tables into objects); secrets are strings.
struct EnvSource<'a>(&'a Env);

impl EnvSource<'_> {
    fn text(&self, name: &str) -> Option<String> {
        let value = js_sys::Reflect::get(self.0, &JsValue::from_str(name)).ok()?;
        if value.is_undefined() || value.is_null() {
            return None;
        }
        if let Some(text) = value.as_string() {
            return Some(text);
        }
        let json: serde_json::Value = serde_wasm_json(&value)?;
        Some(json_var_text(&json))
    }
}

fn serde_wasm_json(value: &JsValue) -> Option<serde_json::Value> {
    let text = js_sys::JSON::stringify(value).ok()?.as_string()?;
    serde_json::from_slice(text.as_bytes()).ok()
}

impl ConfigSource for EnvSource<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.text(name)
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.text(name)
    }
}

thread_local! {
    static CONFIG: OnceCell<Rc<Result<Config, ConfigErrors>>> = const { OnceCell::new() };
}

/// The configuration, validated on the first request of the isolate and reused after.
/// Bindings cannot change within an isolate, so neither can the result.
pub fn config(env: &Env) -> Rc<Result<Config, ConfigErrors>> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| Rc::new(Config::load(&EnvSource(env))))
            .clone()
    })
}
