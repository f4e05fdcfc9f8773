//! What identifies a cached answer: everything in a request that can change the answer,
//! in a canonical form, and the namespace that says whose it is.

use serde_json::{json, Value};

use super::CacheScope;
use crate::api::chat::ChatRequest;

/// Request fields that never change the answer: left out of the key, so that requests
/// differing only in them share an entry.
const IGNORED_FIELDS: &[&str] = &["user", "metadata", "store", "service_tier"];

/// Bumped whenever the key material or the entry format changes: old entries then simply
/// stop matching.
const KEY_VERSION: u32 = 1;

/// The namespace of the entries a principal may read and write: `principal:<id>`,
/// `team:<team>` (principals without a team keep their own) or `global`.
pub fn namespace(scope: CacheScope, principal: &str, team: Option<&str>) -> String {
    match (scope, team) {
        (CacheScope::Global, _) => "global".to_owned(),
        (CacheScope::Team, Some(team)) => format!("team:{team}"),
        _ => format!("principal:{principal}"),
    }
}

/// The text whose SHA-256 names the answer to `request` when it is served by the targets
/// `route` (`provider/model`, in configured order): canonical JSON (object keys sorted,
/// numbers as parsed, no whitespace) of the route, the conversation and every parameter
/// that shapes the answer. Key order, whitespace and ignored fields in the client's JSON
/// therefore do not matter; a one-part text content counts as plain text.
pub fn material(route: &[String], request: &ChatRequest) -> String {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|message| {
            let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
            if let Some(text) = single_text_part(&value["content"]) {
                value["content"] = Value::String(text);
            }
            value
        })
        .collect();
    let mut parameters = request.passthrough.clone();
    parameters.retain(|name, _| !IGNORED_FIELDS.contains(&name.as_str()));
    // `serde_json::Map` is a BTreeMap here (no `preserve_order`): keys come out sorted.
    json!({
        "v": KEY_VERSION,
        "route": route,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "n": request.n.unwrap_or(1),
        "stop": request.stop,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "parameters": parameters,
    })
    .to_string()
}

/// The text of a content that is exactly one text part.
fn single_text_part(content: &Value) -> Option<String> {
    match content.as_array()?.as_slice() {
        [part] if part["type"] == "text" => part["text"].as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::request;
    use crate::guard::validate::parse_for_tests as parsed;

    const ROUTE: &[String] = &[];

    #[test]
    fn key_order_whitespace_and_ignored_fields_do_not_matter() {
        let a = parsed(
            r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}],"seed":7,"response_format":{"type":"json_object"}}"#,
        );
        let b = parsed(
            r#"{ "response_format" : { "type" : "json_object" },
                 "seed": 7, "messages": [ { "content": "hi", "role": "user" } ],
                 "temperature": 0.0, "model": "m", "stream": true,
                 "stream_options": {"include_usage": true}, "user": "u-42", "metadata": {"a": "b"} }"#,
        );
        assert_eq!(material(ROUTE, &a), material(ROUTE, &b));
        let parts = parsed(
            r#"{"model":"m","temperature":0,"seed":7,"response_format":{"type":"json_object"},
                "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        );
        assert_eq!(material(ROUTE, &a), material(ROUTE, &parts));
    }

    #[test]
    fn everything_that_shapes_the_answer_changes_the_key() {
        let base = request(json!({"temperature": 0}));
        let key = material(ROUTE, &base);
        for extra in [
            json!({"temperature": 0, "messages": [{"role": "user", "content": "hi!"}]}),
            json!({"temperature": 0, "messages": [{"role": "system", "content": "hi"}]}),
            json!({"temperature": 0.5}),
            json!({"temperature": 0, "top_p": 0.5}),
            json!({"temperature": 0, "max_tokens": 5}),
            json!({"temperature": 0, "stop": ["x"]}),
            json!({"temperature": 0, "seed": 1}),
            json!({"temperature": 0, "presence_penalty": 1}),
            json!({"temperature": 0, "response_format": {"type": "json_object"}}),
            json!({"temperature": 0, "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ] {
            assert_ne!(material(ROUTE, &request(extra.clone())), key, "{extra}");
        }
        let other_route = ["up/other".to_owned()];
        assert_ne!(material(&other_route, &base), key);
    }

    #[test]
    fn namespaces_follow_the_scope() {
        assert_eq!(
            namespace(CacheScope::Principal, "u1", Some("t")),
            "principal:u1"
        );
        assert_eq!(namespace(CacheScope::Team, "u1", Some("t")), "team:t");
        assert_eq!(namespace(CacheScope::Team, "u1", None), "principal:u1");
        assert_eq!(namespace(CacheScope::Global, "u1", Some("t")), "global");
    }
}
