//! What the non-OpenAI providers share when translating: refusing what they cannot
//! express with a 400 naming the field, reading a tool call's arguments and a tool's
//! answer as JSON, and reading errors of the shape `{"error": {"message": ...}}`.

use serde_json::{json, Value};

use super::openai::{map_error_status, scrub_credentials};
use crate::api::chat::ChatRequest;
use crate::config::source::Secret;
use crate::conversation::ToolCall;
use crate::error::GatewayError;

/// 400 for the first of `params` the request carries.
pub fn refuse_params(request: &ChatRequest, params: &[&str]) -> Result<(), GatewayError> {
    match params
        .iter()
        .find(|name| request.passthrough.contains_key(**name))
    {
        Some(name) => Err(unsupported(name, name)),
        None => Ok(()),
    }
}

/// 400 naming `param`: `what` is not supported for the model's provider.
pub fn unsupported(param: &str, what: &str) -> GatewayError {
    GatewayError::invalid(
        param,
        format!("{what} is not supported for this model's provider"),
    )
}

/// 400 naming `param` unless `mime` is one of `accepted`.
pub fn media_type_is(mime: &str, accepted: &[&str], param: &str) -> Result<(), GatewayError> {
    if accepted.contains(&mime) {
        return Ok(());
    }
    Err(GatewayError::invalid(
        param,
        format!(
            "media type {mime:?} is not supported for this model's provider (supported: {})",
            accepted.join(", ")
        ),
    ))
}

/// A tool call's arguments as the JSON object the provider wants; a 400 when the model's
/// earlier arguments (sent back in the history) are not one.
pub fn tool_arguments(call: &ToolCall) -> Result<Value, GatewayError> {
    let arguments = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        &call.arguments
    };
    match serde_json::from_slice(arguments.as_bytes()) {
        Ok(Value::Object(object)) => Ok(Value::Object(object)),
        _ => Err(GatewayError::invalid(
            "messages",
            format!(
                "the arguments of tool call {:?} are not a JSON object",
                call.id.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// A tool's answer as a JSON object: the object it wrote, or its text under `result`.
pub fn tool_result_object(content: &str) -> Value {
    match serde_json::from_slice(content.as_bytes()) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => json!({"result": content}),
    }
}

/// The text of an answer (or of a stream piece) beside its tool calls: none when there are
/// calls and no text, as OpenAI sends `content: null` beside tool calls.
pub fn text_beside(text: String, calls: &[Value]) -> Option<String> {
    (!text.is_empty() || calls.is_empty()).then_some(text)
}

/// `text`, unless it is empty.
pub fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// `values` as a JSON array, unless there are none.
pub fn non_empty_array(values: Vec<Value>) -> Option<Value> {
    (!values.is_empty()).then_some(Value::Array(values))
}

/// The client's error for a non-2xx answer whose body is `{"error": {"message": ...}}`.
pub fn map_error_message(status: u16, body: &[u8], api_key: &Secret) -> GatewayError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
        .map(|message| scrub_credentials(&message, api_key));
    map_error_status(status, message)
}

/// Appends a turn of `role` holding `pieces` (under `field`: `content` blocks, `parts`) to
/// `turns`, merged into the last turn when it has the same role (the providers want roles
/// to alternate); an empty turn is left out.
pub fn push_turn(turns: &mut Vec<Value>, role: &str, field: &str, pieces: Vec<Value>) {
    if pieces.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(existing) = last[field].as_array_mut() {
                existing.extend(pieces);
            }
        }
        _ => turns.push(json!({"role": role, field: pieces})),
    }
}
