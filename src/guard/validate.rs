//! Turns a raw request body into a [`ChatRequest`], or a 4xx that names the field at fault.
//!
//! Every check runs before anything is sent upstream. Parsing goes through
//! `serde_json::Value` (whose recursion limit turns deeply nested input into an error, not
//! a stack overflow) and then field by field, so each error can carry its `param`.

use serde_json::{Map, Value};

use crate::api::chat::{ChatRequest, Content, Message, Role};
use crate::config::source::Reader;
use crate::error::{ErrorKind, GatewayError};
use crate::wire_name::WireName;

/// The default `MAX_MESSAGE_CHARS`: the longest text the guards are built to scan in one
/// message (their property tests go up to it).
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 200_000;

/// Bounds on what a client may send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLimits {
    /// `MAX_BODY_BYTES`: largest accepted request body.
    pub max_body_bytes: usize,
    /// `MAX_MESSAGES`: most messages in one request.
    pub max_messages: usize,
    /// `MAX_MESSAGE_CHARS`: longest text of one message, in characters.
    pub max_message_chars: usize,
    /// `MAX_OUTPUT_TOKENS`: highest `max_tokens` a client may ask for.
    pub max_output_tokens: u32,
}

impl RequestLimits {
    /// `MAX_BODY_BYTES`, `MAX_MESSAGES`, `MAX_MESSAGE_CHARS`, `MAX_OUTPUT_TOKENS`.
    pub fn load(r: &mut Reader) -> RequestLimits {
        let max_message_chars = DEFAULT_MAX_MESSAGE_CHARS as u32;
        RequestLimits {
            max_body_bytes: r.number("MAX_BODY_BYTES", 1_048_576, 1_024, 100 * 1_048_576) as usize,
            max_messages: r.number("MAX_MESSAGES", 256, 1, 100_000) as usize,
            max_message_chars: r.number("MAX_MESSAGE_CHARS", max_message_chars, 1, 100_000_000)
                as usize,
            max_output_tokens: r.number("MAX_OUTPUT_TOKENS", 32_768, 1, 10_000_000),
        }
    }
}

/// OpenAI parameters the gateway does not interpret but forwards verbatim to
/// OpenAI-compatible upstreams. Anything else is refused as `unknown_parameter`, as OpenAI
/// itself does, so a typo never silently changes nothing.
const PASSTHROUGH_PARAMS: &[&str] = &[
    "audio",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "metadata",
    "modalities",
    "parallel_tool_calls",
    "prediction",
    "reasoning_effort",
    "response_format",
    "seed",
    "service_tier",
    "store",
    "tool_choice",
    "tools",
    "top_logprobs",
    "user",
    "verbosity",
    "web_search_options",
];

/// Content part types accepted inside `content` arrays.
const CONTENT_PART_TYPES: &[&str] = &["text", "image_url", "input_audio", "file", "refusal"];

/// The longest model name accepted: aliases are configured names, and nothing a client
/// names may grow what the gateway keeps.
pub const MAX_MODEL_BYTES: usize = 256;

/// The largest `n` accepted.
const MAX_CHOICES: u64 = 16;
/// The most stop sequences accepted (OpenAI's own bound).
const MAX_STOP_SEQUENCES: usize = 4;

/// Checks the `Content-Type` header: JSON only (any charset parameter is fine).
pub fn check_content_type(content_type: Option<&str>) -> Result<(), GatewayError> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) => Err(GatewayError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Content-Type must be application/json, got {other:?}"),
        )),
        None => Err(GatewayError::new(
            ErrorKind::UnsupportedMediaType,
            "Content-Type must be application/json",
        )),
    }
}

/// The 413 for a body over `limit` bytes.
pub fn body_too_large(limit: usize) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge,
        format!("request body exceeds the limit of {limit} bytes"),
    )
}

/// Parses `body` under generous limits, for the tests of other modules that need a
/// valid request.
#[cfg(test)]
pub(crate) fn parse_for_tests(body: &str) -> ChatRequest {
    let limits = RequestLimits {
        max_body_bytes: 1 << 20,
        max_messages: 100,
        max_message_chars: 100_000,
        max_output_tokens: 1_000,
    };
    parse_chat_request(body.as_bytes(), &limits).unwrap()
}

/// Parses and validates a chat completion request body.
pub fn parse_chat_request(
    body: &[u8],
    limits: &RequestLimits,
) -> Result<ChatRequest, GatewayError> {
    parse_chat_request_for(body, limits, |_| Ok(()))
}

/// Like [`parse_chat_request`], asking `allowed` whether the caller may use the model as
/// soon as it is read: a caller refused the model costs no validation of the rest.
pub fn parse_chat_request_for(
    body: &[u8],
    limits: &RequestLimits,
    allowed: impl FnOnce(&str) -> Result<(), GatewayError>,
) -> Result<ChatRequest, GatewayError> {
    if body.len() > limits.max_body_bytes {
        return Err(body_too_large(limits.max_body_bytes));
    }
    let text = std::str::from_utf8(body).map_err(|err| {
        GatewayError::new(
            ErrorKind::InvalidJson,
            format!(
                "request body is not valid UTF-8 (byte {})",
                err.valid_up_to()
            ),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|err| {
        GatewayError::new(
            ErrorKind::InvalidJson,
            format!("request body is not valid JSON: {err}"),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(GatewayError::new(
            ErrorKind::InvalidJson,
            "request body must be a JSON object",
        ));
    };

    let model = match fields.remove("model") {
        Some(Value::String(model)) if model.len() > MAX_MODEL_BYTES => {
            return Err(GatewayError::invalid(
                "model",
                format!("model must be at most {MAX_MODEL_BYTES} bytes"),
            ))
        }
        Some(Value::String(model)) if !model.is_empty() => model,
        Some(Value::String(_)) => {
            return Err(GatewayError::invalid("model", "model must not be empty"))
        }
        Some(_) => return Err(GatewayError::invalid("model", "model must be a string")),
        None => return Err(GatewayError::invalid("model", "model is required")),
    };
    allowed(&model)?;
    let messages = parse_messages(fields.remove("messages"), limits)?;
    let stream = take_bool(&mut fields, "stream")?.unwrap_or(false);
    let include_usage = parse_stream_options(fields.remove("stream_options"), stream)?;

    let max_completion_tokens = take_integer(
        &mut fields,
        "max_completion_tokens",
        1,
        limits.max_output_tokens.into(),
    )?;
    let max_tokens = take_integer(
        &mut fields,
        "max_tokens",
        1,
        limits.max_output_tokens.into(),
    )?;
    let temperature = take_number(&mut fields, "temperature", 0.0, 2.0)?;
    let top_p = take_number(&mut fields, "top_p", 0.0, 1.0)?;
    let n = take_integer(&mut fields, "n", 1, MAX_CHOICES)?;
    let presence_penalty = take_number(&mut fields, "presence_penalty", -2.0, 2.0)?;
    let frequency_penalty = take_number(&mut fields, "frequency_penalty", -2.0, 2.0)?;
    let stop = parse_stop(fields.remove("stop"))?;

    let mut passthrough = Map::new();
    for (name, value) in fields {
        if !PASSTHROUGH_PARAMS.contains(&name.as_str()) {
            return Err(GatewayError::new(
                ErrorKind::UnknownParameter,
                format!("unrecognized request parameter: {}", printable_name(&name)),
            )
            .with_param(printable_name(&name)));
        }
        if !value.is_null() {
            passthrough.insert(name, value);
        }
    }

    Ok(ChatRequest {
        model,
        messages,
        stream,
        include_usage,
        // Both are u32-bounded by the limit check above.
        max_tokens: max_completion_tokens.or(max_tokens).map(|v| v as u32),
        max_tokens_is_completion: max_completion_tokens.is_some(),
        temperature,
        top_p,
        n: n.map(|v| v as u32),
        stop,
        presence_penalty,
        frequency_penalty,
        passthrough,
    })
}

/// A field name fit to echo back: bounded and without control characters.
fn printable_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn parse_messages(
    value: Option<Value>,
    limits: &RequestLimits,
) -> Result<Vec<Message>, GatewayError> {
    let items = match value {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(GatewayError::invalid(
                "messages",
                "messages must be an array",
            ))
        }
        None => return Err(GatewayError::invalid("messages", "messages is required")),
    };
    if items.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "messages must not be empty",
        ));
    }
    if items.len() > limits.max_messages {
        return Err(GatewayError::invalid(
            "messages",
            format!(
                "too many messages: {} (limit {})",
                items.len(),
                limits.max_messages
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_message(index, item, limits))
        .collect()
}

fn parse_message(
    index: usize,
    item: Value,
    limits: &RequestLimits,
) -> Result<Message, GatewayError> {
    let at = |field: &str| format!("messages[{index}].{field}");
    let Value::Object(mut fields) = item else {
        return Err(GatewayError::invalid(
            format!("messages[{index}]"),
            "each message must be an object",
        ));
    };
    let role = match fields.remove("role") {
        Some(Value::String(name)) => Role::from_name(&name).ok_or_else(|| {
            GatewayError::invalid(
                at("role"),
                format!(
                    "unknown role {:?}; expected system, developer, user, assistant or tool",
                    printable_name(&name)
                ),
            )
        })?,
        Some(_) => return Err(GatewayError::invalid(at("role"), "role must be a string")),
        None => return Err(GatewayError::invalid(at("role"), "role is required")),
    };
    let tool_calls = fields.remove("tool_calls").filter(|v| !v.is_null());
    if tool_calls.as_ref().is_some_and(|v| !v.is_array()) {
        return Err(GatewayError::invalid(
            at("tool_calls"),
            "tool_calls must be an array",
        ));
    }
    let content = match fields.remove("content") {
        Some(Value::String(text)) => Content::Text(text),
        Some(Value::Array(parts)) => {
            check_content_parts(&parts, &at("content"))?;
            Content::Parts(parts)
        }
        None | Some(Value::Null) => Content::None,
        Some(_) => {
            return Err(GatewayError::invalid(
                at("content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    if content == Content::None && !(role == Role::Assistant && tool_calls.is_some()) {
        return Err(GatewayError::invalid(at("content"), "content is required"));
    }
    let chars = content_chars(&content);
    if chars > limits.max_message_chars {
        return Err(GatewayError::invalid(
            at("content"),
            format!(
                "content is too long: {chars} characters (limit {})",
                limits.max_message_chars
            ),
        ));
    }
    let name = take_string(&mut fields, "name", &at("name"))?;
    let tool_call_id = take_string(&mut fields, "tool_call_id", &at("tool_call_id"))?;
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(GatewayError::invalid(
            at("tool_call_id"),
            "tool messages need a tool_call_id",
        ));
    }
    let reasoning_details = fields.remove("reasoning_details").filter(|v| !v.is_null());
    if reasoning_details.as_ref().is_some_and(|v| !v.is_array()) {
        return Err(GatewayError::invalid(
            at("reasoning_details"),
            "reasoning_details must be an array",
        ));
    }
    // These appear when clients send back an assistant message verbatim; the reasoning
    // text goes back through `reasoning_details`, which carries its signature.
    for echoed in ["refusal", "audio", "reasoning_content", "reasoning"] {
        fields.remove(echoed);
    }
    if let Some(unknown) = fields.keys().next() {
        return Err(GatewayError::new(
            ErrorKind::UnknownParameter,
            format!("unrecognized message field: {}", printable_name(unknown)),
        )
        .with_param(at(&printable_name(unknown))));
    }
    Ok(Message {
        role,
        content,
        name,
        tool_call_id,
        tool_calls,
        reasoning_details,
    })
}

fn check_content_parts(parts: &[Value], param: &str) -> Result<(), GatewayError> {
    if parts.is_empty() {
        return Err(GatewayError::invalid(
            param,
            "content parts must not be empty",
        ));
    }
    for (index, part) in parts.iter().enumerate() {
        let part_type = part.get("type").and_then(Value::as_str);
        match part_type {
            Some("text") if !part.get("text").is_some_and(Value::is_string) => {
                return Err(GatewayError::invalid(
                    format!("{param}[{index}].text"),
                    "text parts need a string text",
                ));
            }
            Some(kind) if CONTENT_PART_TYPES.contains(&kind) => {}
            _ => {
                return Err(GatewayError::invalid(
                    format!("{param}[{index}].type"),
                    "content part type must be text, image_url, input_audio, file or refusal",
                ))
            }
        }
    }
    Ok(())
}

fn content_chars(content: &Content) -> usize {
    match content {
        Content::Text(text) => text.chars().count(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        Content::None => 0,
    }
}

fn parse_stream_options(value: Option<Value>, stream: bool) -> Result<bool, GatewayError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(mut options)) => {
            if !stream {
                return Err(GatewayError::invalid(
                    "stream_options",
                    "stream_options is only allowed when stream is true",
                ));
            }
            let include_usage = take_bool(&mut options, "include_usage")
                .map_err(|err| err.with_param("stream_options.include_usage"))?;
            if let Some(unknown) = options.keys().next() {
                return Err(GatewayError::new(
                    ErrorKind::UnknownParameter,
                    format!("unrecognized stream option: {}", printable_name(unknown)),
                )
                .with_param(format!("stream_options.{}", printable_name(unknown))));
            }
            Ok(include_usage.unwrap_or(false))
        }
        Some(_) => Err(GatewayError::invalid(
            "stream_options",
            "stream_options must be an object",
        )),
    }
}

fn parse_stop(value: Option<Value>) -> Result<Vec<String>, GatewayError> {
    let stops = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(stop)) => vec![stop],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(stop) => Ok(stop),
                _ => Err(GatewayError::invalid(
                    "stop",
                    "stop must be a string or an array of strings",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(GatewayError::invalid(
                "stop",
                "stop must be a string or an array of strings",
            ))
        }
    };
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(GatewayError::invalid(
            "stop",
            format!("at most {MAX_STOP_SEQUENCES} stop sequences"),
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(GatewayError::invalid(
            "stop",
            "stop sequences must not be empty",
        ));
    }
    Ok(stops)
}

fn take_bool(fields: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, GatewayError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(value)),
        Some(_) => Err(GatewayError::invalid(
            name,
            format!("{name} must be a boolean"),
        )),
    }
}

fn take_string(
    fields: &mut Map<String, Value>,
    name: &str,
    param: &str,
) -> Result<Option<String>, GatewayError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(GatewayError::invalid(
            param,
            format!("{name} must be a string"),
        )),
    }
}

/// A number within `min..=max`. Non-finite values cannot occur: JSON has no syntax for them
/// and serde_json refuses literals that overflow `f64`.
fn take_number(
    fields: &mut Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, GatewayError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(value) if (min..=max).contains(&value) => Ok(Some(value)),
            _ => Err(GatewayError::invalid(
                name,
                format!("{name} must be between {min} and {max}"),
            )),
        },
        Some(_) => Err(GatewayError::invalid(
            name,
            format!("{name} must be a number"),
        )),
    }
}

/// A whole number within `min..=max` (`2.0` counts as whole, `2.5` does not).
fn take_integer(
    fields: &mut Map<String, Value>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, GatewayError> {
    let out_of_range = || {
        GatewayError::invalid(
            name,
            format!("{name} must be an integer from {min} to {max}"),
        )
    };
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            let value = match number.as_u64() {
                Some(value) => value,
                None => match number.as_f64() {
                    Some(float) if float.fract() == 0.0 && float >= 0.0 && float <= max as f64 => {
                        float as u64
                    }
                    _ => return Err(out_of_range()),
                },
            };
            if (min..=max).contains(&value) {
                Ok(Some(value))
            } else {
                Err(out_of_range())
            }
        }
        Some(_) => Err(GatewayError::invalid(
            name,
            format!("{name} must be an integer"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> RequestLimits {
        RequestLimits {
            max_body_bytes: 4096,
            max_messages: 3,
            max_message_chars: 10,
            max_output_tokens: 1000,
        }
    }

    fn parse(value: Value) -> Result<ChatRequest, GatewayError> {
        parse_chat_request(value.to_string().as_bytes(), &limits())
    }

    fn with(extra: Value) -> Value {
        let mut base = json!({"model": "mock", "messages": [{"role": "user", "content": "hi"}]});
        for (key, value) in extra.as_object().unwrap() {
            base[key] = value.clone();
        }
        base
    }

    #[test]
    fn a_full_request_is_accepted() {
        let request = parse(json!({
            "model": "mock",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 100,
            "temperature": 0,
            "top_p": 1.0,
            "n": 1,
            "stop": ["\n\n"],
            "seed": 7,
            "tools": [],
        }))
        .unwrap();
        assert!(request.stream && request.include_usage);
        assert_eq!(request.max_tokens, Some(100));
        assert_eq!(request.temperature, Some(0.0));
        assert_eq!(request.stop, vec!["\n\n"]);
        assert_eq!(request.passthrough["seed"], json!(7));
        assert_eq!(request.messages[1].content.text(), "hi");
        assert_eq!(request.last_user_text().as_deref(), Some("hi"));
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let request = parse(with(json!({"max_tokens": 5, "max_completion_tokens": 9}))).unwrap();
        assert_eq!(request.max_tokens, Some(9));
        assert_eq!(
            parse(with(json!({"max_tokens": 5.0}))).unwrap().max_tokens,
            Some(5)
        );
    }

    /// Every bad input, the kind it must produce and the param it must name.
    #[test]
    fn bad_inputs_are_rejected_with_the_field_named() {
        let table: Vec<(Value, ErrorKind, Option<&str>)> = vec![
            (json!([1, 2]), ErrorKind::InvalidJson, None),
            (json!("text"), ErrorKind::InvalidJson, None),
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                ErrorKind::InvalidRequest,
                Some("model"),
            ),
            (
                with(json!({"model": ""})),
                ErrorKind::InvalidRequest,
                Some("model"),
            ),
            (
                with(json!({"model": 5})),
                ErrorKind::InvalidRequest,
                Some("model"),
            ),
            (
                with(json!({"model": "m".repeat(MAX_MODEL_BYTES + 1)})),
                ErrorKind::InvalidRequest,
                Some("model"),
            ),
            (
                json!({"model": "mock"}),
                ErrorKind::InvalidRequest,
                Some("messages"),
            ),
            (
                with(json!({"messages": []})),
                ErrorKind::InvalidRequest,
                Some("messages"),
            ),
            (
                with(json!({"messages": "hi"})),
                ErrorKind::InvalidRequest,
                Some("messages"),
            ),
            (
                with(json!({"messages": [1]})),
                ErrorKind::InvalidRequest,
                Some("messages[0]"),
            ),
            (
                with(json!({"messages": [{"content": "x"}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].role"),
            ),
            (
                with(json!({"messages": [{"role": "robot", "content": "x"}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].role"),
            ),
            (
                with(json!({"messages": [{"role": "user"}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": 3}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": []}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [{"type": "video"}]}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content[0].type"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content[0].text"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": "x", "mood": "happy"}]})),
                ErrorKind::UnknownParameter,
                Some("messages[0].mood"),
            ),
            (
                with(json!({"messages": [{"role": "tool", "content": "x"}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].tool_call_id"),
            ),
            (
                with(json!({"messages": [{"role": "user", "content": "01234567890"}]})),
                ErrorKind::InvalidRequest,
                Some("messages[0].content"),
            ),
            (
                with(
                    json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "user", "content": "c"}, {"role": "user", "content": "d"}]}),
                ),
                ErrorKind::InvalidRequest,
                Some("messages"),
            ),
            (
                with(json!({"max_tokens": 0})),
                ErrorKind::InvalidRequest,
                Some("max_tokens"),
            ),
            (
                with(json!({"max_tokens": 1001})),
                ErrorKind::InvalidRequest,
                Some("max_tokens"),
            ),
            (
                with(json!({"max_tokens": -1})),
                ErrorKind::InvalidRequest,
                Some("max_tokens"),
            ),
            (
                with(json!({"max_tokens": 2.5})),
                ErrorKind::InvalidRequest,
                Some("max_tokens"),
            ),
            (
                with(json!({"max_tokens": "10"})),
                ErrorKind::InvalidRequest,
                Some("max_tokens"),
            ),
            (
                with(json!({"max_completion_tokens": 1e300})),
                ErrorKind::InvalidRequest,
                Some("max_completion_tokens"),
            ),
            (
                with(json!({"temperature": 2.01})),
                ErrorKind::InvalidRequest,
                Some("temperature"),
            ),
            (
                with(json!({"temperature": -0.1})),
                ErrorKind::InvalidRequest,
                Some("temperature"),
            ),
            (
                with(json!({"top_p": 1.5})),
                ErrorKind::InvalidRequest,
                Some("top_p"),
            ),
            (with(json!({"n": 0})), ErrorKind::InvalidRequest, Some("n")),
            (with(json!({"n": 17})), ErrorKind::InvalidRequest, Some("n")),
            (
                with(json!({"presence_penalty": 3})),
                ErrorKind::InvalidRequest,
                Some("presence_penalty"),
            ),
            (
                with(json!({"stream": "yes"})),
                ErrorKind::InvalidRequest,
                Some("stream"),
            ),
            (
                with(json!({"stream_options": {"include_usage": true}})),
                ErrorKind::InvalidRequest,
                Some("stream_options"),
            ),
            (
                with(json!({"stream": true, "stream_options": {"include_usage": 1}})),
                ErrorKind::InvalidRequest,
                Some("stream_options.include_usage"),
            ),
            (
                with(json!({"stream": true, "stream_options": {"x": 1}})),
                ErrorKind::UnknownParameter,
                Some("stream_options.x"),
            ),
            (
                with(json!({"stop": ["a", "b", "c", "d", "e"]})),
                ErrorKind::InvalidRequest,
                Some("stop"),
            ),
            (
                with(json!({"stop": [1]})),
                ErrorKind::InvalidRequest,
                Some("stop"),
            ),
            (
                with(json!({"stop": ""})),
                ErrorKind::InvalidRequest,
                Some("stop"),
            ),
            (
                with(json!({"temprature": 1})),
                ErrorKind::UnknownParameter,
                Some("temprature"),
            ),
        ];
        for (input, kind, param) in table {
            let err = parse(input.clone()).expect_err(&input.to_string());
            assert_eq!(err.kind, kind, "{input}: {err}");
            assert_eq!(err.param.as_deref(), param, "{input}: {err}");
        }
    }

    #[test]
    fn the_scanners_property_tests_reach_the_default_message_size() {
        assert_eq!(guard_scan::hostile::MAX_TEXT, DEFAULT_MAX_MESSAGE_CHARS);
    }

    #[test]
    fn hostile_bytes_are_errors_never_panics() {
        let limits = limits();
        let deep = "[".repeat(100_000);
        let huge_number = format!(
            "{{\"model\":\"m\",\"messages\":[],\"n\":1{}}}",
            "0".repeat(400)
        );
        let cases: Vec<&[u8]> = vec![
            b"",
            b"\xff\xfe{}",
            b"{\"model\": \"\xc3\x28\"}",
            b"{\"model\": \"mock\", \"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}",
            b"{\"n\": 1e999}",
            deep.as_bytes(),
            huge_number.as_bytes(),
            b"{\"model\": \"mock\",",
            b"null",
        ];
        for body in cases {
            let err = parse_chat_request(
                body,
                &RequestLimits {
                    max_body_bytes: 1 << 20,
                    ..limits.clone()
                },
            )
            .expect_err("must be rejected");
            assert_eq!(err.status(), 400, "{err}");
        }
    }

    #[test]
    fn oversized_bodies_are_413() {
        let body = vec![b' '; 4097];
        assert_eq!(
            parse_chat_request(&body, &limits()).unwrap_err().status(),
            413
        );
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        for bad in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(check_content_type(bad).unwrap_err().status(), 415);
        }
    }

    #[test]
    fn error_messages_do_not_echo_unbounded_input() {
        let name = format!("x\u{7}{}", "y".repeat(1000));
        let err = parse(with(json!({ name.clone(): 1 }))).unwrap_err();
        assert!(err.message.len() < 200);
        assert!(!err.message.contains('\u{7}'));
    }
}
