//! The Anthropic Messages API as a front door (`POST /v1/messages`, as Claude Code and the
//! Anthropic SDKs call it): a request in Anthropic's wire format becomes a chat completion
//! request for the one pipeline, and the answer, whole or streamed, goes back in
//! Anthropic's format, whichever provider gave it.
//!
//! - [`chat_request`] reads the request: `system` (text or blocks), turns of `text`,
//!   `image`, `document`, `tool_use`, `tool_result`, `thinking` and `redacted_thinking`
//!   blocks, `tools`, `tool_choice`, `thinking` budgets. What the chat shape cannot carry
//!   (server tools, `top_k`, document URLs) is a 400 naming the field.
//! - [`message`] writes a complete answer as a `message`, [`EventWriter`] a stream as
//!   Anthropic's events (`message_start`, `ping`, `content_block_start` / `_delta` /
//!   `_stop`, `message_delta`, `message_stop`, or `error`).
//! - Reasoning keeps its signatures: Anthropic's become `thinking` and `redacted_thinking`
//!   blocks again; another provider's (a Gemini signature) travels as a
//!   `redacted_thinking` block whose data starts with [`FOREIGN_REASONING`], so that a
//!   client that sends its history back unchanged sends it too.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::chat::{ChatCompletion, ChunkChoice, Usage};
use super::{entries, known_object, write_event, EventStream};
use crate::conversation::ReasoningEffort;
use crate::error::GatewayError;

/// The start of a `redacted_thinking` block's data that carries another provider's
/// reasoning detail (its JSON follows).
pub const FOREIGN_REASONING: &str = "gateway-reasoning:";

/// The request fields the translation reads; anything else is refused, as Anthropic does.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
];

/// The chat completion request (JSON bytes) for a Messages request body. `count_only`
/// is for `count_tokens`, which takes no `max_tokens`.
pub fn chat_request(body: &[u8], count_only: bool) -> Result<Vec<u8>, GatewayError> {
    let request = known_object(body, KNOWN, |field| {
        format!("{field}: Extra inputs are not permitted")
    })?;
    let mut chat = Map::new();
    chat.insert(
        "model".into(),
        request.get("model").cloned().unwrap_or(Value::Null),
    );
    match request.get("max_tokens") {
        Some(max_tokens) => {
            chat.insert("max_tokens".into(), max_tokens.clone());
        }
        None if count_only => {}
        None => {
            return Err(GatewayError::invalid(
                "max_tokens",
                "max_tokens: Field required",
            ))
        }
    }
    let mut messages = system(request.get("system"))?;
    let turns = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            GatewayError::invalid("messages", "messages: a list of turns is required")
        })?;
    for (i, turn) in turns.iter().enumerate() {
        messages.extend(turn_messages(turn, &format!("messages[{i}]"))?);
    }
    chat.insert("messages".into(), Value::Array(messages));
    if request.get("stream") == Some(&Value::Bool(true)) && !count_only {
        chat.insert("stream".into(), json!(true));
        // The usage goes in `message_delta`, whatever the client asked.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(temperature) = request.get("temperature") {
        // Anthropic's 0..=1 is OpenAI's 0..=2, as the Anthropic codec maps it back.
        let value = temperature
            .as_f64()
            .ok_or_else(|| GatewayError::invalid("temperature", "temperature: a number"))?;
        chat.insert("temperature".into(), json!(value * 2.0));
    }
    for (from, to) in [("top_p", "top_p"), ("stop_sequences", "stop")] {
        if let Some(value) = request.get(from) {
            chat.insert(to.into(), value.clone());
        }
    }
    if let Some(metadata) = request.get("metadata") {
        if let Some(user) = metadata.get("user_id").filter(|user| !user.is_null()) {
            chat.insert("user".into(), user.clone());
        }
    }
    if let Some(tools) = request.get("tools") {
        chat.insert("tools".into(), self::tools(tools)?);
    }
    if let Some(choice) = request.get("tool_choice") {
        tool_choice(choice, &mut chat)?;
    }
    if let Some(effort) = request.get("thinking").map(reasoning_effort).transpose()? {
        chat.insert("reasoning_effort".into(), json!(effort));
    }
    Ok(Value::Object(chat).to_string().into_bytes())
}

/// `system`, text or text blocks, as one system message.
fn system(system: Option<&Value>) -> Result<Vec<Value>, GatewayError> {
    let text = match system {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                match (block["type"].as_str(), block["text"].as_str()) {
                    (Some("text"), Some(text)) => texts.push(text),
                    _ => {
                        return Err(GatewayError::invalid(
                            format!("system[{i}]"),
                            "system blocks are text blocks",
                        ))
                    }
                }
            }
            texts.join("\n\n")
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "system",
                "system: text or text blocks",
            ))
        }
    };
    Ok(vec![json!({"role": "system", "content": text})])
}

/// One turn as chat messages: an assistant turn is one message; a user turn's tool
/// results become `tool` messages (first, as they answer the calls before them), the
/// rest one user message.
fn turn_messages(turn: &Value, at: &str) -> Result<Vec<Value>, GatewayError> {
    let role = match turn["role"].as_str() {
        Some(role @ ("user" | "assistant")) => role,
        _ => {
            return Err(GatewayError::invalid(
                format!("{at}.role"),
                "role: user or assistant",
            ))
        }
    };
    let blocks = match &turn["content"] {
        Value::String(text) => return Ok(vec![json!({"role": role, "content": text})]),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(GatewayError::invalid(
                format!("{at}.content"),
                "content: text or a list of blocks",
            ))
        }
    };
    match role {
        "user" => user_turn(blocks, at),
        _ => Ok(vec![assistant_turn(blocks, at)?]),
    }
}

fn user_turn(blocks: &[Value], at: &str) -> Result<Vec<Value>, GatewayError> {
    let mut messages = Vec::new();
    let mut parts = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        match block["type"].as_str() {
            Some("tool_result") => messages.push(json!({
                "role": "tool",
                "tool_call_id": block["tool_use_id"],
                "content": tool_result_text(&block["content"], &at)?,
            })),
            _ => parts.push(content_part(block, &at)?),
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(messages)
}

/// A tool result's content (text, or text blocks) as text.
fn tool_result_text(content: &Value, at: &str) -> Result<String, GatewayError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for block in blocks {
                match (block["type"].as_str(), block["text"].as_str()) {
                    (Some("text"), Some(piece)) => text.push_str(piece),
                    _ => {
                        return Err(GatewayError::invalid(
                            format!("{at}.content"),
                            "tool results can hold text only",
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(GatewayError::invalid(
            format!("{at}.content"),
            "content: text or text blocks",
        )),
    }
}

/// A user's `text`, `image` or `document` block as a chat content part.
fn content_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let source = &block["source"];
    let data_url = || match (source["media_type"].as_str(), source["data"].as_str()) {
        (Some(media_type), Some(data)) => Ok(format!("data:{media_type};base64,{data}")),
        _ => Err(GatewayError::invalid(
            format!("{at}.source"),
            "a base64 source needs media_type and data",
        )),
    };
    match (block["type"].as_str(), source["type"].as_str()) {
        (Some("text"), _) => match block["text"].as_str() {
            Some(text) => Ok(json!({"type": "text", "text": text})),
            None => Err(GatewayError::invalid(
                format!("{at}.text"),
                "text: Field required",
            )),
        },
        (Some("image"), Some("base64")) => {
            Ok(json!({"type": "image_url", "image_url": {"url": data_url()?}}))
        }
        (Some("image"), Some("url")) => {
            Ok(json!({"type": "image_url", "image_url": {"url": source["url"]}}))
        }
        (Some("document"), Some("base64")) => {
            let mut file = json!({"file_data": data_url()?});
            if let Some(title) = block["title"].as_str() {
                file["filename"] = json!(title);
            }
            Ok(json!({"type": "file", "file": file}))
        }
        (Some("document"), Some("text")) => match source["data"].as_str() {
            Some(text) => Ok(json!({"type": "text", "text": text})),
            None => Err(GatewayError::invalid(
                format!("{at}.source.data"),
                "data: Field required",
            )),
        },
        (Some("image" | "document"), _) => Err(GatewayError::invalid(
            format!("{at}.source.type"),
            "images take base64 or url sources, documents base64 or text sources",
        )),
        _ => Err(GatewayError::invalid(
            format!("{at}.type"),
            "user blocks are text, image, document or tool_result",
        )),
    }
}

/// An assistant turn as one chat message: its text, its `tool_use` blocks as
/// `tool_calls`, its thinking as `reasoning_details`.
fn assistant_turn(blocks: &[Value], at: &str) -> Result<Value, GatewayError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut details = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            // Unsigned thinking (another provider's summary) is not needed again.
            Some("thinking") => match block["signature"].as_str() {
                Some(signature) if !signature.is_empty() => details.push(json!({
                    "type": "reasoning.text",
                    "text": block["thinking"],
                    "signature": signature,
                    "format": "anthropic",
                })),
                _ => {}
            },
            Some("redacted_thinking") => {
                let data = block["data"].as_str().unwrap_or_default();
                let foreign = data
                    .strip_prefix(FOREIGN_REASONING)
                    .and_then(|detail| serde_json::from_slice::<Value>(detail.as_bytes()).ok());
                details.push(foreign.unwrap_or_else(
                    || json!({"type": "reasoning.encrypted", "data": data, "format": "anthropic"}),
                ));
            }
            _ => {
                return Err(GatewayError::invalid(
                    format!("{at}.content[{i}].type"),
                    "assistant blocks are text, tool_use, thinking or redacted_thinking",
                ))
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        message["reasoning_details"] = Value::Array(details);
    }
    Ok(message)
}

/// `tools` as chat function tools (client tools only: Anthropic's server tools run at
/// Anthropic).
fn tools(tools: &Value) -> Result<Value, GatewayError> {
    let tools = tools
        .as_array()
        .ok_or_else(|| GatewayError::invalid("tools", "tools: a list"))?;
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if !matches!(tool["type"].as_str(), None | Some("custom")) {
            return Err(GatewayError::invalid(
                format!("tools[{i}].type"),
                format!(
                    "{} is a tool Anthropic runs itself; the gateway serves client tools only",
                    tool["type"]
                ),
            ));
        }
        let mut function = json!({"name": tool["name"], "parameters": tool["input_schema"]});
        if let Some(description) = tool["description"].as_str() {
            function["description"] = json!(description);
        }
        functions.push(json!({"type": "function", "function": function}));
    }
    Ok(Value::Array(functions))
}

fn tool_choice(choice: &Value, chat: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let mapped = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
        _ => {
            return Err(GatewayError::invalid(
                "tool_choice.type",
                "tool_choice: auto, any, tool or none",
            ))
        }
    };
    chat.insert("tool_choice".into(), mapped);
    if choice["disable_parallel_tool_use"] == Value::Bool(true) {
        chat.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

/// `thinking` as a `reasoning_effort`: the level whose budget (see
/// [`ReasoningEffort::covering`]) is the nearest at or above the one asked for.
fn reasoning_effort(thinking: &Value) -> Result<&'static str, GatewayError> {
    match thinking["type"].as_str() {
        Some("disabled") => Ok(ReasoningEffort::None.name()),
        Some("enabled") => match thinking["budget_tokens"].as_u64() {
            Some(budget) => Ok(ReasoningEffort::covering(budget).name()),
            None => Err(GatewayError::invalid(
                "thinking.budget_tokens",
                "budget_tokens: Field required",
            )),
        },
        _ => Err(GatewayError::invalid(
            "thinking.type",
            "thinking: enabled or disabled",
        )),
    }
}

/// Anthropic's `stop_reason` for a chat `finish_reason`.
fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage: input without the cache reads, which are counted apart.
fn usage_json(usage: &Usage) -> Value {
    let cached = usage.cached_tokens();
    json!({
        "input_tokens": usage.prompt_tokens.saturating_sub(cached),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

/// A reasoning detail as an Anthropic block.
fn reasoning_block(detail: &Value) -> Value {
    match (detail["format"].as_str(), detail["type"].as_str()) {
        (Some("anthropic"), Some("reasoning.text")) => json!({
            "type": "thinking",
            "thinking": detail["text"].as_str().unwrap_or_default(),
            "signature": detail["signature"].as_str().unwrap_or_default(),
        }),
        (Some("anthropic"), Some("reasoning.encrypted")) => {
            json!({"type": "redacted_thinking", "data": detail["data"]})
        }
        _ => json!({"type": "redacted_thinking", "data": format!("{FOREIGN_REASONING}{detail}")}),
    }
}

/// A tool call's arguments as the `input` object Anthropic's clients expect.
fn tool_input(arguments: &Value) -> Value {
    arguments
        .as_str()
        .and_then(|text| serde_json::from_slice::<Value>(text.as_bytes()).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// A complete answer (`chat.completion`, its first choice) as an Anthropic `message`.
pub fn message(completion: &ChatCompletion, usage: &Usage) -> Value {
    let mut content = Vec::new();
    let choice = completion.choices.first();
    let finish_reason = choice.and_then(|choice| choice.finish_reason.as_deref());
    if let Some(message) = choice.map(|choice| &choice.message) {
        let details = message.reasoning_details.as_ref().and_then(Value::as_array);
        match (details, &message.reasoning_content) {
            (Some(details), _) => content.extend(details.iter().map(reasoning_block)),
            (None, Some(thinking)) => {
                content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
            }
            (None, None) => {}
        }
        for text in [&message.content, &message.refusal].into_iter().flatten() {
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
        }
        for call in entries(&message.tool_calls) {
            content.push(json!({
                "type": "tool_use",
                "id": call["id"],
                "name": call["function"]["name"],
                "input": tool_input(&call["function"]["arguments"]),
            }));
        }
    }
    json!({
        "id": completion.id,
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": stop_reason(finish_reason),
        "stop_sequence": null,
        "usage": usage_json(usage),
    })
}

/// The Anthropic error object for `error`: `{"type": "error", "error": {"type",
/// "message"}}`, with the gateway's stable `code` beside them.
pub fn error_json(error: &GatewayError) -> String {
    let kind = match error.status() {
        400 | 405 | 409 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };
    json!({
        "type": "error",
        "error": {"type": kind, "message": error.message, "code": error.code()},
    })
    .to_string()
}

/// The kind of the content block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    ToolUse,
}

/// Writes a chat answer's chunks as Anthropic's stream events, one chunk at a time
/// (the first choice only: a Messages request has one).
#[derive(Debug)]
pub struct EventWriter {
    /// The answer's id and model, as `message_start` names them.
    id: String,
    model: String,
    /// The prompt's size `message_start` reports, before the upstream's count is known.
    estimated_prompt_tokens: u64,
    started: bool,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    /// Blocks written so far.
    blocks: usize,
    /// The block of each tool call (by its chat `index`).
    calls: BTreeMap<u64, usize>,
    stop_reason: Option<&'static str>,
}

impl EventStream for EventWriter {
    fn chunk(&mut self, choices: &[ChunkChoice], out: &mut Vec<u8>) {
        self.start(self.estimated_prompt_tokens, out);
        let Some(choice) = choices.iter().find(|choice| choice.index == 0) else {
            return;
        };
        let delta = &choice.delta;
        if let Some(thinking) = &delta.reasoning_content {
            self.delta(
                Block::Thinking,
                json!({"type": "thinking_delta", "thinking": thinking}),
                out,
            );
        }
        for detail in entries(&delta.reasoning_details) {
            self.reasoning(detail, out);
        }
        for text in [&delta.content, &delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.delta(
                    Block::Text,
                    json!({"type": "text_delta", "text": text}),
                    out,
                );
            }
        }
        for call in entries(&delta.tool_calls) {
            self.tool_call(call, out);
        }
        if let Some(reason) = &choice.finish_reason {
            self.close(out);
            self.stop_reason = Some(stop_reason(Some(reason)));
        }
    }

    /// Ends the answer: `message_delta` with the stop reason and the usage, then
    /// `message_stop`.
    fn done(&mut self, usage: &Usage, out: &mut Vec<u8>) {
        self.start(usage.prompt_tokens, out);
        self.close(out);
        let delta =
            json!({"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null});
        write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta", "delta": delta, "usage": usage_json(usage)}),
        );
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    /// Ends a broken answer with an `error` event.
    fn fail(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend_from_slice(error_json(error).as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}

impl EventWriter {
    /// A writer for the answer `id` of `model`.
    pub fn new(id: &str, model: &str, estimated_prompt_tokens: u64) -> Self {
        EventWriter {
            id: id.to_owned(),
            model: model.to_owned(),
            estimated_prompt_tokens,
            started: false,
            open: None,
            blocks: 0,
            calls: BTreeMap::new(),
            stop_reason: None,
        }
    }

    fn start(&mut self, prompt_tokens: u64, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": 0},
        });
        write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        write_event(out, "ping", &json!({"type": "ping"}));
    }

    /// A delta for a block of `kind`: the open one, or a new one.
    fn delta(&mut self, kind: Block, delta: Value, out: &mut Vec<u8>) {
        let index = match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                let block = match kind {
                    Block::Text => json!({"type": "text", "text": ""}),
                    _ => json!({"type": "thinking", "thinking": "", "signature": ""}),
                };
                self.open_block(kind, block, out)
            }
        };
        write_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    /// A reasoning detail: the signature of the thinking just written, or a block of its own.
    fn reasoning(&mut self, detail: &Value, out: &mut Vec<u8>) {
        let block = reasoning_block(detail);
        if block["type"] == "thinking" {
            let thinking = block["thinking"].as_str().unwrap_or_default();
            if !matches!(self.open, Some((Block::Thinking, _))) && !thinking.is_empty() {
                self.delta(
                    Block::Thinking,
                    json!({"type": "thinking_delta", "thinking": thinking}),
                    out,
                );
            }
            self.delta(
                Block::Thinking,
                json!({"type": "signature_delta", "signature": block["signature"]}),
                out,
            );
            self.close(out);
        } else {
            self.open_block(Block::Thinking, block, out);
            self.close(out);
        }
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let number = call["index"].as_u64().unwrap_or(0);
        // A call's first fragment opens its block; the rest are its arguments.
        let index = match self.calls.get(&number) {
            Some(index) => *index,
            None => {
                let block = json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {}});
                let index = self.open_block(Block::ToolUse, block, out);
                self.calls.insert(number, index);
                index
            }
        };
        if let Some(arguments) = call["function"]["arguments"]
            .as_str()
            .filter(|text| !text.is_empty())
        {
            let delta = json!({"type": "input_json_delta", "partial_json": arguments});
            write_event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            );
        }
    }

    fn open_block(&mut self, kind: Block, block: Value, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((kind, index));
        write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            write_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::{AssistantMessage, Choice, Delta};
    use crate::api::testing::{choice, events};
    use crate::error::ErrorKind;

    fn chat(body: Value) -> Value {
        serde_json::from_slice(&chat_request(body.to_string().as_bytes(), false).unwrap()).unwrap()
    }

    fn refused(body: Value) -> GatewayError {
        chat_request(body.to_string().as_bytes(), false).unwrap_err()
    }

    #[test]
    fn a_request_becomes_the_chat_request_it_means() {
        let body = json!({
            "model": "m", "max_tokens": 100, "stream": true, "temperature": 0.4, "top_p": 0.9,
            "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "weather", "description": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 4000},
            "messages": [
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
                    {"type": "text", "text": "Weather?"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "text", "text": "Thanks"}]},
            ],
        });
        assert_eq!(
            chat(body),
            json!({
                "model": "m", "max_tokens": 100, "stream": true, "stream_options": {"include_usage": true},
                "temperature": 0.8, "top_p": 0.9, "stop": ["END"], "user": "u-1",
                "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}}}],
                "tool_choice": "required", "parallel_tool_calls": false, "reasoning_effort": "medium",
                "messages": [
                    {"role": "system", "content": "Be brief.\n\nBe kind."},
                    {"role": "user", "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}},
                        {"type": "text", "text": "Weather?"}]},
                    {"role": "assistant", "content": "Let me look.",
                        "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}],
                        "reasoning_details": [
                            {"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"},
                            {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic"}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
                ],
            })
        );
    }

    #[test]
    fn tool_choices_and_thinking_budgets_map_to_their_nearest_level() {
        let with = |extra: Value| {
            let mut body = json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            chat(body)
        };
        let choice = |choice: Value| with(json!({"tool_choice": choice}))["tool_choice"].clone();
        assert_eq!(choice(json!({"type": "auto"})), json!("auto"));
        assert_eq!(choice(json!({"type": "none"})), json!("none"));
        assert_eq!(
            choice(json!({"type": "tool", "name": "f"})),
            json!({"type": "function", "function": {"name": "f"}})
        );
        let effort = |budget: u64| {
            with(json!({"thinking": {"type": "enabled", "budget_tokens": budget}}))
                ["reasoning_effort"]
                .clone()
        };
        assert_eq!(effort(1024), json!("minimal"));
        assert_eq!(effort(2048), json!("low"));
        assert_eq!(effort(8192), json!("medium"));
        assert_eq!(effort(32000), json!("high"));
        assert_eq!(
            with(json!({"thinking": {"type": "disabled"}}))["reasoning_effort"],
            json!("none")
        );
        assert!(
            with(json!({}))["stream"].is_null(),
            "not streamed unless asked"
        );
    }

    #[test]
    fn what_the_chat_shape_cannot_carry_is_refused_naming_it() {
        let base = || json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
        let with = |name: &str, value: Value| {
            let mut body = base();
            body[name] = value;
            refused(body)
        };
        let error = with("top_k", json!(5));
        assert_eq!(
            (error.kind, error.param.as_deref()),
            (ErrorKind::UnknownParameter, Some("top_k"))
        );
        let mut missing = base();
        missing.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(refused(missing).param.as_deref(), Some("max_tokens"));
        let server_tool = with(
            "tools",
            json!([{"type": "web_search_20250305", "name": "web_search"}]),
        );
        assert_eq!(server_tool.param.as_deref(), Some("tools[0].type"));
        let url_document = with(
            "messages",
            json!([{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}]}]),
        );
        assert_eq!(
            url_document.param.as_deref(),
            Some("messages[0].content[0].source.type")
        );
        let role = with("messages", json!([{"role": "system", "content": "hi"}]));
        assert_eq!(role.param.as_deref(), Some("messages[0].role"));
        assert_eq!(
            chat_request(b"[1]", false).unwrap_err().kind,
            ErrorKind::InvalidJson
        );
        // count_tokens takes no max_tokens.
        let mut count = base();
        count.as_object_mut().unwrap().remove("max_tokens");
        assert!(chat_request(count.to_string().as_bytes(), true).is_ok());
    }

    fn completion(message: AssistantMessage, finish_reason: &str) -> ChatCompletion {
        ChatCompletion {
            id: "msg_r1".into(),
            object: "chat.completion".into(),
            created: 1,
            model: "claude-x".into(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish_reason.into()),
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
        }
    }

    #[test]
    fn an_answer_becomes_a_message_and_its_reasoning_comes_back_unchanged() {
        let gemini = json!({"type": "reasoning.encrypted", "data": "g-sig", "format": "gemini", "id": "call_1"});
        let answer = completion(
            AssistantMessage {
                content: Some("Looking.".into()),
                reasoning_content: Some("hm".into()),
                reasoning_details: Some(json!([
                    {"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"},
                    gemini,
                ])),
                tool_calls: Some(
                    json!([{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]),
                ),
                ..AssistantMessage::default()
            },
            "tool_calls",
        );
        let mut usage = Usage::new(120, 9);
        usage.prompt_tokens_details = Some(json!({"cached_tokens": 100}));
        let message = message(&answer, &usage);
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            message["usage"],
            json!({"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0})
        );
        let content = message["content"].as_array().unwrap();
        assert_eq!(
            content[0],
            json!({"type": "thinking", "thinking": "hm", "signature": "sig"})
        );
        assert_eq!(content[1]["type"], "redacted_thinking");
        assert_eq!(content[2], json!({"type": "text", "text": "Looking."}));
        assert_eq!(
            content[3],
            json!({"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}})
        );
        // Sent back as the client got it, the history carries both details again.
        let back = chat(json!({"model": "m", "max_tokens": 9, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}]},
        ]}));
        assert_eq!(
            back["messages"][1]["reasoning_details"],
            json!([{"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"}, gemini])
        );
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("content_filter", "refusal"),
        ] {
            let answer = completion(AssistantMessage::default(), finish);
            assert_eq!(super::message(&answer, &usage)["stop_reason"], stop);
        }
    }

    #[test]
    fn a_stream_becomes_anthropics_events_block_by_block() {
        let mut writer = EventWriter::new("msg_1", "m", 7);
        let mut out = Vec::new();
        let deltas = [
            Delta {
                reasoning_content: Some("hm".into()),
                ..Delta::default()
            },
            Delta {
                reasoning_details: Some(
                    json!([{"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"}]),
                ),
                ..Delta::default()
            },
            Delta {
                content: Some("Hi".into()),
                ..Delta::default()
            },
            Delta {
                tool_calls: Some(
                    json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]),
                ),
                ..Delta::default()
            },
            Delta {
                tool_calls: Some(json!([{"index": 0, "function": {"arguments": "{\"a\":"}}])),
                ..Delta::default()
            },
            Delta {
                tool_calls: Some(json!([{"index": 0, "function": {"arguments": "1}"}}])),
                ..Delta::default()
            },
        ];
        for delta in deltas {
            writer.chunk(&[choice(delta, None)], &mut out);
        }
        writer.chunk(&[choice(Delta::default(), Some("tool_calls"))], &mut out);
        writer.done(&Usage::new(11, 5), &mut out);
        let events = events(&out);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 7);
        assert_eq!(events[2].1["content_block"]["type"], "thinking");
        assert_eq!(
            events[4].1["delta"],
            json!({"type": "signature_delta", "signature": "sig"})
        );
        assert_eq!(
            events[7].1,
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}})
        );
        assert_eq!(
            events[9].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(
            events[11].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "1}"})
        );
        assert_eq!(events[13].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[13].1["usage"]["output_tokens"], 5);
    }

    #[test]
    fn a_broken_stream_ends_with_an_error_event() {
        let mut writer = EventWriter::new("msg_1", "m", 7);
        let mut out = Vec::new();
        writer.chunk(
            &[choice(
                Delta {
                    content: Some("Hi".into()),
                    ..Delta::default()
                },
                None,
            )],
            &mut out,
        );
        writer.fail(
            &GatewayError::new(ErrorKind::UpstreamTimeout, "too slow"),
            &mut out,
        );
        let events = events(&out);
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error");
        assert_eq!(
            data,
            &json!({"type": "error", "error": {"type": "timeout_error", "message": "too slow", "code": "upstream_timeout"}})
        );
    }
}
