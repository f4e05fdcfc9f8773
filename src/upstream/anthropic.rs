//! Anthropic Messages API: the canonical conversation becomes a `/v1/messages` request,
//! and answers and their event streams come back as OpenAI shapes.
//!
//! - `system` and `developer` messages become the top-level `system` prompt; images and
//!   PDFs become `image` and `document` blocks (base64 or URL sources); tools become
//!   `tools` with `input_schema`, the history's calls `tool_use` blocks and the tool
//!   messages `tool_result` blocks in the user's turn.
//! - `response_format` (a JSON object, or a JSON Schema) is a forced tool, [`ANSWER_TOOL`],
//!   whose input is the answer: it comes back as the message's text, as OpenAI returns it.
//! - `reasoning_effort` is a `thinking` budget; thinking comes back as `reasoning_content`,
//!   and with its signature in `reasoning_details`, which a client sends back with the
//!   assistant message so the next turn can continue it.
//! - `max_tokens` is required by Anthropic: a request without one gets the provider's
//!   configured default. What Anthropic cannot express (`seed`, penalties, `n > 1`, log
//!   probabilities, audio) is refused with a 400 naming the field.

use serde_json::{json, Map, Value};

use super::openai::scrub_credentials;
use super::sse::SseEvent;
use super::translate::{
    map_error_message, media_type_is, non_empty, non_empty_array, push_turn, refuse_params,
    text_beside, tool_arguments, unsupported,
};
use super::{unreachable, HttpCall, HttpProvider, StreamDecoder, StreamEvent};
use crate::api::chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta, Usage,
};
use crate::config::source::Secret;
use crate::conversation::{
    Conversation, MediaSource, OutputFormat, Part, ReasoningEffort, Speaker, ToolChoice,
};
use crate::error::{ErrorKind, GatewayError};

/// The API version the translation follows.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The tool a structured answer is forced through: its input is the answer.
pub const ANSWER_TOOL: &str = "json_answer";

/// The smallest thinking budget Anthropic takes.
const MIN_THINKING_BUDGET: u32 = 1_024;

/// Image media types Anthropic reads.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Parameters Anthropic has no equivalent for.
const REFUSED: &[&str] = &[
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "presence_penalty",
    "frequency_penalty",
];

/// An Anthropic Messages upstream at `base_url`.
pub struct Anthropic<'a> {
    base_url: &'a str,
    api_key: &'a Secret,
    default_max_tokens: u32,
}

impl<'a> Anthropic<'a> {
    /// A provider for `base_url` (e.g. `https://api.anthropic.com/v1`).
    pub fn new(base_url: &'a str, api_key: &'a Secret, default_max_tokens: u32) -> Self {
        Anthropic {
            base_url,
            api_key,
            default_max_tokens,
        }
    }
}

/// The Anthropic request body for `request`, or a 400 for what it cannot express.
pub fn translate_request(
    request: &ChatRequest,
    model: &str,
    default_max_tokens: u32,
) -> Result<Value, GatewayError> {
    refuse_params(request, REFUSED)?;
    if request.presence_penalty.is_some() || request.frequency_penalty.is_some() {
        let param = match request.presence_penalty {
            Some(_) => "presence_penalty",
            None => "frequency_penalty",
        };
        return Err(unsupported(param, "penalties"));
    }
    if request.n.is_some_and(|n| n > 1) {
        return Err(GatewayError::invalid(
            "n",
            "this model's provider answers one choice only",
        ));
    }
    let conversation = Conversation::of(request)?;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages(&conversation)?));
    let mut max_tokens = request.max_tokens.unwrap_or(default_max_tokens);
    let budget = match conversation.reasoning_effort {
        None | Some(ReasoningEffort::None) => None,
        Some(effort) => Some(effort.budget_tokens().max(MIN_THINKING_BUDGET)),
    };
    if let Some(budget) = budget {
        // The budget is part of `max_tokens`, and must leave room for the answer.
        let budget = match request.max_tokens {
            Some(cap) if cap <= MIN_THINKING_BUDGET => {
                return Err(GatewayError::invalid(
                    request.max_tokens_param(),
                    format!("with reasoning_effort, {} must be above {MIN_THINKING_BUDGET} for this model's provider", request.max_tokens_param()),
                ))
            }
            Some(cap) => budget.min(cap - 1),
            None => budget,
        };
        max_tokens = max_tokens.max(budget + MIN_THINKING_BUDGET);
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    if !conversation.instructions.is_empty() {
        body.insert(
            "system".into(),
            json!(conversation.instructions.join("\n\n")),
        );
    }
    if request.stream {
        body.insert("stream".into(), json!(true));
    }
    // Thinking takes no sampling changes.
    if budget.is_none() {
        if let Some(temperature) = request.temperature {
            // Anthropic's range is 0..=1; OpenAI's 0..=2 maps onto it proportionally.
            body.insert("temperature".into(), json!(temperature / 2.0));
        }
        if let Some(top_p) = request.top_p {
            body.insert("top_p".into(), json!(top_p));
        }
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    if let Some(user) = request.passthrough.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    tools(&conversation, budget.is_some(), &mut body)?;
    Ok(Value::Object(body))
}

/// The `tools` and `tool_choice` of the request: the client's tools, or the forced
/// [`ANSWER_TOOL`] of a structured answer.
fn tools(
    conversation: &Conversation,
    thinking: bool,
    body: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    let answer_schema = match &conversation.output {
        OutputFormat::Text => None,
        OutputFormat::JsonObject => Some(json!({"type": "object"})),
        OutputFormat::JsonSchema { schema, .. } => Some(schema.clone()),
    };
    if let Some(schema) = answer_schema {
        if !conversation.tools.is_empty() {
            return Err(GatewayError::invalid(
                "response_format",
                "this model's provider cannot combine tools with a response_format",
            ));
        }
        if thinking {
            return Err(GatewayError::invalid(
                "response_format",
                "this model's provider cannot combine reasoning_effort with a response_format",
            ));
        }
        let description = "Give your whole answer as this tool's input.";
        body.insert(
            "tools".into(),
            json!([{"name": ANSWER_TOOL, "description": description, "input_schema": schema}]),
        );
        body.insert(
            "tool_choice".into(),
            json!({"type": "tool", "name": ANSWER_TOOL}),
        );
        return Ok(());
    }
    if conversation.tools.is_empty() {
        return Ok(());
    }
    let tools: Vec<Value> = conversation
        .tools
        .iter()
        .map(|tool| {
            let mut entry = json!({"name": tool.name, "input_schema": tool.parameters});
            if let Some(description) = &tool.description {
                entry["description"] = json!(description);
            }
            entry
        })
        .collect();
    body.insert("tools".into(), Value::Array(tools));
    let mut choice = match &conversation.tool_choice {
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
    };
    if thinking && matches!(choice["type"].as_str(), Some("any" | "tool")) {
        return Err(GatewayError::invalid(
            "tool_choice",
            "this model's provider cannot force a tool call while it reasons",
        ));
    }
    if conversation.parallel_tool_calls == Some(false) && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    body.insert("tool_choice".into(), choice);
    Ok(())
}

/// The turns as Anthropic messages (turns left empty are dropped).
fn messages(conversation: &Conversation) -> Result<Vec<Value>, GatewayError> {
    let mut messages: Vec<Value> = Vec::new();
    for turn in &conversation.turns {
        let mut blocks = Vec::with_capacity(turn.parts.len());
        for part in &turn.parts {
            if let Some(block) = block(part)? {
                blocks.push(block);
            }
        }
        let role = match turn.speaker {
            Speaker::User => "user",
            Speaker::Assistant => "assistant",
        };
        push_turn(&mut messages, role, "content", blocks);
    }
    Ok(messages)
}

/// One part as an Anthropic content block (`None`: nothing to send).
fn block(part: &Part) -> Result<Option<Value>, GatewayError> {
    Ok(Some(match part {
        Part::Text(text) if text.is_empty() => return Ok(None),
        Part::Text(text) => json!({"type": "text", "text": text}),
        Part::Image(media) => {
            let source = match &media.source {
                MediaSource::Base64 { mime, data } => {
                    media_type_is(mime, IMAGE_TYPES, &media.param)?;
                    json!({"type": "base64", "media_type": mime, "data": data})
                }
                MediaSource::Url(url) => json!({"type": "url", "url": url}),
                MediaSource::FileId(_) => return Err(unsupported(&media.param, "OpenAI file ids")),
            };
            json!({"type": "image", "source": source})
        }
        Part::File(media) => {
            let source = match &media.source {
                MediaSource::Base64 { mime, data } => {
                    media_type_is(mime, &["application/pdf"], &media.param)?;
                    json!({"type": "base64", "media_type": mime, "data": data})
                }
                MediaSource::Url(url) => json!({"type": "url", "url": url}),
                MediaSource::FileId(_) => return Err(unsupported(&media.param, "OpenAI file ids")),
            };
            let mut document = json!({"type": "document", "source": source});
            if let Some(name) = &media.filename {
                document["title"] = json!(name);
            }
            document
        }
        Part::Audio(media) => return Err(unsupported(&media.param, "audio input")),
        Part::ToolCall(call) => {
            let input = tool_arguments(call)?;
            json!({"type": "tool_use", "id": tool_id(&call.id), "name": call.name, "input": input})
        }
        Part::ToolResult(result) => json!({
            "type": "tool_result",
            "tool_use_id": tool_id(&result.call_id),
            "content": result.content,
        }),
        // A signature is Anthropic's only: others' reasoning is not sent.
        Part::Reasoning(reasoning) if reasoning.format != "anthropic" => return Ok(None),
        Part::Reasoning(reasoning) => match (&reasoning.encrypted, &reasoning.signature) {
            (Some(data), _) => json!({"type": "redacted_thinking", "data": data}),
            (None, Some(signature)) => json!({
                "type": "thinking",
                "thinking": reasoning.text,
                "signature": signature,
            }),
            (None, None) => return Ok(None),
        },
    }))
}

/// A tool call's id as Anthropic takes it (`[a-zA-Z0-9_-]+`): other providers' ids may
/// hold other characters (`functions.lookup:0`), which become `_` in the call and in its
/// result alike.
fn tool_id(id: &str) -> String {
    let id: String = id
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                true => c,
                false => '_',
            },
        )
        .collect();
    match id.is_empty() {
        true => "_".to_owned(),
        false => id,
    }
}

/// Anthropic's `stop_reason` as an OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage as OpenAI usage: the prompt counts the tokens read from and written to
/// the prompt cache too, the reads as `cached_tokens`.
fn usage(value: &Value) -> Usage {
    let count = |name: &str| value[name].as_u64().unwrap_or(0);
    let cached = count("cache_read_input_tokens");
    let prompt = count("input_tokens") + cached + count("cache_creation_input_tokens");
    let mut usage = Usage::new(prompt, count("output_tokens"));
    if cached > 0 {
        usage.prompt_tokens_details = Some(json!({"cached_tokens": cached}));
    }
    usage
}

/// A thinking block's `reasoning_details` entry.
fn reasoning_detail(block: &Value) -> Value {
    match block["type"].as_str() {
        Some("redacted_thinking") => {
            json!({"type": "reasoning.encrypted", "data": block["data"], "format": "anthropic"})
        }
        _ => json!({
            "type": "reasoning.text",
            "text": block["thinking"],
            "signature": block["signature"],
            "format": "anthropic",
        }),
    }
}

impl Anthropic<'_> {
    fn call(&self, path: &str, body: &Value) -> HttpCall {
        HttpCall {
            url: format!("{}{path}", self.base_url),
            headers: vec![
                ("x-api-key", self.api_key.expose().to_owned()),
                ("anthropic-version", ANTHROPIC_VERSION.to_owned()),
                ("content-type", "application/json".to_owned()),
            ],
            body: body.to_string(),
        }
    }
}

/// The fields of a Messages request that `count_tokens` takes.
const COUNTED: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
];

impl HttpProvider for Anthropic<'_> {
    fn build_call(&self, request: &ChatRequest, model: &str) -> Result<HttpCall, GatewayError> {
        let body = translate_request(request, model, self.default_max_tokens)?;
        Ok(self.call("/messages", &body))
    }

    fn count_tokens_call(&self, request: &ChatRequest, model: &str) -> Option<HttpCall> {
        let mut body = translate_request(request, model, self.default_max_tokens).ok()?;
        body.as_object_mut()?
            .retain(|field, _| COUNTED.contains(&field.as_str()));
        Some(self.call("/messages/count_tokens", &body))
    }

    fn parse_completion(
        &self,
        body: &[u8],
        _answer_id: &str,
    ) -> Result<ChatCompletion, GatewayError> {
        let message: Value = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("its answer is not a message ({err})")))?;
        let Some(blocks) = message["content"].as_array() else {
            return Err(unreachable("its answer is not a message (no content)"));
        };
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details = Vec::new();
        let mut calls = Vec::new();
        let mut answered_by_tool = false;
        for block in blocks {
            match block["type"].as_str() {
                Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
                Some("tool_use") if block["name"] == ANSWER_TOOL => {
                    answered_by_tool = true;
                    text.push_str(&block["input"].to_string());
                }
                Some("tool_use") => calls.push(json!({
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": block["input"].to_string()},
                })),
                Some("thinking") => {
                    reasoning.push_str(block["thinking"].as_str().unwrap_or_default());
                    details.push(reasoning_detail(block));
                }
                Some("redacted_thinking") => details.push(reasoning_detail(block)),
                _ => {}
            }
        }
        let stop = message["stop_reason"].as_str().unwrap_or("end_turn");
        let finish = match (stop, answered_by_tool) {
            ("tool_use", true) => "stop",
            _ => finish_reason(stop),
        };
        Ok(ChatCompletion {
            id: String::new(),
            object: String::new(),
            created: 0,
            model: String::new(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: text_beside(text, &calls),
                    refusal: None,
                    reasoning_content: non_empty(reasoning),
                    reasoning_details: non_empty_array(details),
                    tool_calls: non_empty_array(calls),
                },
                finish_reason: Some(finish.into()),
                logprobs: None,
            }],
            usage: Some(usage(&message["usage"])),
            system_fingerprint: None,
        })
    }

    fn stream_decoder(&self, _answer_id: &str) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicDecoder {
            api_key: self.api_key.clone(),
            prompt: Usage::default(),
            sent_role: false,
            blocks: Vec::new(),
            tool_calls: 0,
            answered_by_tool: false,
        })
    }

    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError {
        map_error_message(status, body, self.api_key)
    }
}

/// What a content block of the stream is, by its index.
enum Block {
    /// Text, or anything else that adds no deltas of its own.
    Text,
    /// A call of a client tool: its index among the answer's calls.
    ToolCall(u32),
    /// The forced answer tool: its input is the answer's text.
    Answer,
    /// Thinking: the text so far, for its `reasoning_details` entry when it ends.
    Thinking { text: String, signature: String },
}

/// Folds Anthropic's event stream into OpenAI chunks: `message_start` carries the prompt
/// tokens, `content_block_*` the text, tool calls (their arguments in `input_json_delta`
/// pieces) and thinking, `message_delta` the stop reason and output tokens.
struct AnthropicDecoder {
    api_key: Secret,
    /// The prompt's counts, from `message_start`.
    prompt: Usage,
    sent_role: bool,
    blocks: Vec<Block>,
    tool_calls: u32,
    answered_by_tool: bool,
}

impl AnthropicDecoder {
    fn chunk(&mut self, delta: Delta, finish_reason: Option<&str>) -> StreamEvent {
        let role = (!std::mem::replace(&mut self.sent_role, true)).then(|| "assistant".to_owned());
        StreamEvent::Choices(vec![ChunkChoice {
            index: 0,
            delta: Delta { role, ..delta },
            finish_reason: finish_reason.map(str::to_owned),
            logprobs: None,
        }])
    }

    fn text(&mut self, text: &str) -> StreamEvent {
        let delta = Delta {
            content: Some(text.to_owned()),
            ..Delta::default()
        };
        self.chunk(delta, None)
    }

    fn block_mut(&mut self, value: &Value) -> Option<&mut Block> {
        let index = value["index"].as_u64()? as usize;
        self.blocks.get_mut(index)
    }

    fn start_block(&mut self, value: &Value) -> Vec<StreamEvent> {
        let block = &value["content_block"];
        let index = value["index"].as_u64().unwrap_or(self.blocks.len() as u64) as usize;
        let (kind, events) = match block["type"].as_str() {
            Some("tool_use") if block["name"] == ANSWER_TOOL => {
                self.answered_by_tool = true;
                (Block::Answer, Vec::new())
            }
            Some("tool_use") => {
                let call = self.tool_calls;
                self.tool_calls += 1;
                let delta = Delta {
                    tool_calls: Some(json!([{
                        "index": call,
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": ""},
                    }])),
                    ..Delta::default()
                };
                (Block::ToolCall(call), vec![self.chunk(delta, None)])
            }
            Some("thinking") => (
                Block::Thinking {
                    text: String::new(),
                    signature: String::new(),
                },
                Vec::new(),
            ),
            Some("redacted_thinking") => {
                let delta = Delta {
                    reasoning_details: Some(json!([reasoning_detail(block)])),
                    ..Delta::default()
                };
                (Block::Text, vec![self.chunk(delta, None)])
            }
            _ => {
                let text = block["text"].as_str().unwrap_or_default();
                let events = match text.is_empty() {
                    true => Vec::new(),
                    false => vec![self.text(text)],
                };
                (Block::Text, events)
            }
        };
        if self.blocks.len() <= index {
            self.blocks.resize_with(index, || Block::Text);
            self.blocks.push(kind);
        } else {
            self.blocks[index] = kind;
        }
        events
    }

    fn block_delta(&mut self, value: &Value) -> Vec<StreamEvent> {
        let delta = &value["delta"];
        let piece = |name: &str| delta[name].as_str().unwrap_or_default().to_owned();
        match delta["type"].as_str() {
            Some("text_delta") => vec![self.text(&piece("text"))],
            Some("input_json_delta") => match self.block_mut(value) {
                Some(Block::Answer) => vec![self.text(&piece("partial_json"))],
                Some(Block::ToolCall(call)) => {
                    let call = *call;
                    let delta = Delta {
                        tool_calls: Some(json!([{
                            "index": call,
                            "function": {"arguments": piece("partial_json")},
                        }])),
                        ..Delta::default()
                    };
                    vec![self.chunk(delta, None)]
                }
                _ => Vec::new(),
            },
            Some("thinking_delta") => {
                let thinking = piece("thinking");
                if let Some(Block::Thinking { text, .. }) = self.block_mut(value) {
                    text.push_str(&thinking);
                }
                let delta = Delta {
                    reasoning_content: Some(thinking),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            Some("signature_delta") => {
                if let Some(Block::Thinking { signature, .. }) = self.block_mut(value) {
                    signature.push_str(&piece("signature"));
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The end of a thinking block sends its text and signature as one
    /// `reasoning_details` entry.
    fn stop_block(&mut self, value: &Value) -> Vec<StreamEvent> {
        let Some(Block::Thinking { text, signature }) = self.block_mut(value) else {
            return Vec::new();
        };
        let detail = reasoning_detail(&json!({
            "type": "thinking",
            "thinking": std::mem::take(text),
            "signature": std::mem::take(signature),
        }));
        let delta = Delta {
            reasoning_details: Some(json!([detail])),
            ..Delta::default()
        };
        vec![self.chunk(delta, None)]
    }
}

impl StreamDecoder for AnthropicDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, GatewayError> {
        let value: Value = serde_json::from_slice(event.data.as_bytes())
            .map_err(|err| unreachable(&format!("it sent an unreadable stream event ({err})")))?;
        let kind = value["type"].as_str().unwrap_or_default();
        Ok(match kind {
            "message_start" => {
                self.prompt = usage(&value["message"]["usage"]);
                vec![self.chunk(Delta::default(), None)]
            }
            "content_block_start" => self.start_block(&value),
            "content_block_delta" => self.block_delta(&value),
            "content_block_stop" => self.stop_block(&value),
            "message_delta" => {
                let stop = value["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
                let reason = match (stop, self.answered_by_tool) {
                    ("tool_use", true) => "stop",
                    _ => finish_reason(stop),
                };
                // The final counts: the output's, and the prompt's when they are repeated.
                let counts = &value["usage"];
                let mut usage = match counts.get("input_tokens") {
                    Some(_) => usage(counts),
                    None => self.prompt.clone(),
                };
                usage.completion_tokens = counts["output_tokens"].as_u64().unwrap_or(0);
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
                vec![
                    self.chunk(Delta::default(), Some(reason)),
                    StreamEvent::Usage(usage),
                ]
            }
            "message_stop" => vec![StreamEvent::Done],
            "error" => {
                let message = value["error"]["message"]
                    .as_str()
                    .unwrap_or("unknown error");
                let mut err = unreachable(&scrub_credentials(message, &self.api_key));
                err.kind = ErrorKind::UpstreamError;
                return Err(err);
            }
            // ping
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::validate::parse_for_tests;

    fn body(request: Value) -> Result<Value, GatewayError> {
        translate_request(&parse_for_tests(&request.to_string()), "claude", 1_000)
    }

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    fn deltas(events: &[StreamEvent]) -> Vec<Delta> {
        events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::Choices(choices) => Some(choices[0].delta.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_tool_conversation_with_media_becomes_blocks() {
        let body = body(json!({"model": "m", "max_tokens": 200, "temperature": 1.0,
            "stop": ["END"], "user": "u-1", "parallel_tool_calls": false, "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "weather", "description": "by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "this city?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/b.jpg"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}}]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "functions.weather:0", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "functions.weather:0", "content": "18C"}]}))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "model": "claude",
                "max_tokens": 200,
                "system": "be brief",
                "temperature": 0.5,
                "stop_sequences": ["END"],
                "metadata": {"user_id": "u-1"},
                "tools": [{"name": "weather", "description": "by city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "this city?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/b.jpg"}},
                        {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "functions_weather_0", "name": "weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "functions_weather_0", "content": "18C"}]}],
            })
        );
    }

    #[test]
    fn what_anthropic_cannot_take_is_refused_by_name() {
        let user = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
        let with = |extra: Value| {
            let mut request = user(json!("hi"));
            request
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            request
        };
        for (request, param) in [
            (with(json!({"seed": 1})), "seed"),
            (with(json!({"presence_penalty": 0.5})), "presence_penalty"),
            (with(json!({"n": 2})), "n"),
            (with(json!({"logprobs": true})), "logprobs"),
            (
                user(
                    json!([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0"}}]),
                ),
                "messages[0].content[0]",
            ),
            (
                user(json!([{"type": "file", "file": {"file_id": "file-1"}}])),
                "messages[0].content[0]",
            ),
            (
                user(
                    json!([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]),
                ),
                "messages[0].content[0]",
            ),
            (
                with(
                    json!({"reasoning_effort": "high", "tool_choice": "required",
                "tools": [{"type": "function", "function": {"name": "f"}}]}),
                ),
                "tool_choice",
            ),
            (
                with(
                    json!({"reasoning_effort": "low", "response_format": {"type": "json_object"}}),
                ),
                "response_format",
            ),
            (
                with(json!({"reasoning_effort": "low", "max_tokens": 1000})),
                "max_tokens",
            ),
        ] {
            let error = body(request.clone()).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{request}");
        }
    }

    #[test]
    fn effort_is_a_thinking_budget_and_structured_output_a_forced_tool() {
        let thinking = body(json!({"model": "m", "reasoning_effort": "medium", "temperature": 0.2,
            "messages": [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello", "reasoning_details": [
                    {"type": "reasoning.text", "text": "greet", "signature": "sig", "format": "anthropic"},
                    {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic"},
                    {"type": "reasoning.encrypted", "data": "gem", "format": "gemini"}]},
                {"role": "user", "content": "again"}]}))
        .unwrap();
        assert_eq!(
            thinking["thinking"],
            json!({"type": "enabled", "budget_tokens": 8192})
        );
        assert_eq!(thinking["max_tokens"], 8192 + 1024, "room for the answer");
        assert!(
            thinking.get("temperature").is_none(),
            "thinking takes no sampling changes"
        );
        assert_eq!(
            thinking["messages"][1]["content"],
            json!([
                {"type": "thinking", "thinking": "greet", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "hello"}]),
            "Gemini's signatures stay behind"
        );
        let off = body(json!({"model": "m", "reasoning_effort": "none", "messages": [{"role": "user", "content": "hi"}]}))
            .unwrap();
        assert!(off.get("thinking").is_none());
        let structured = body(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object", "required": ["a"]}}}}))
        .unwrap();
        assert_eq!(
            structured["tools"][0]["input_schema"],
            json!({"type": "object", "required": ["a"]})
        );
        assert_eq!(
            structured["tool_choice"],
            json!({"type": "tool", "name": ANSWER_TOOL})
        );
    }

    #[test]
    fn token_counts_send_only_what_count_tokens_takes() {
        let key = Secret::new("k");
        let request = parse_for_tests(
            &json!({"model": "m", "max_tokens": 50, "temperature": 0.5, "stream": true,
                "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
            .to_string(),
        );
        let call = Anthropic::new("https://a.test/v1", &key, 100)
            .count_tokens_call(&request, "claude")
            .unwrap();
        assert_eq!(call.url, "https://a.test/v1/messages/count_tokens");
        let body: Value = serde_json::from_str(&call.body).unwrap();
        let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            ["messages", "model", "system", "tool_choice", "tools"]
        );
    }

    #[test]
    fn answers_carry_tool_calls_thinking_structured_text_and_cache_usage() {
        let key = Secret::new("k");
        let provider = Anthropic::new("h", &key, 100);
        let answer = provider
            .parse_completion(
                json!({"content": [
                    {"type": "thinking", "thinking": "need weather", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
                    "stop_reason": "tool_use",
                    "usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 9}})
                .to_string()
                .as_bytes(),
                "chatcmpl-1",
            )
            .unwrap();
        let choice = &answer.choices[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            choice.message.content, None,
            "content is null beside tool calls"
        );
        assert_eq!(
            choice.message.reasoning_content.as_deref(),
            Some("need weather")
        );
        assert_eq!(
            choice.message.tool_calls,
            Some(json!([{"id": "toolu_1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]))
        );
        assert_eq!(
            choice.message.reasoning_details,
            Some(json!([
                {"type": "reasoning.text", "text": "need weather", "signature": "sig", "format": "anthropic"},
                {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic"}]))
        );
        let usage = answer.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (125, 9));
        assert_eq!(
            usage.prompt_tokens_details,
            Some(json!({"cached_tokens": 100}))
        );

        let structured = provider
            .parse_completion(
                json!({"content": [{"type": "tool_use", "id": "t", "name": ANSWER_TOOL, "input": {"a": 1}}],
                    "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}})
                .to_string()
                .as_bytes(),
                "chatcmpl-1",
            )
            .unwrap();
        assert_eq!(
            structured.choices[0].message.content.as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(structured.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(structured.choices[0].message.tool_calls, None);
    }

    #[test]
    fn streamed_tool_calls_keep_their_index_and_id_and_arrive_in_pieces() {
        let key = Secret::new("k");
        let mut decoder = Anthropic::new("h", &key, 100).stream_decoder("chatcmpl-1");
        let mut events = Vec::new();
        for data in [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 4, "cache_read_input_tokens": 50, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me check."}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}}),
            json!({"type": "content_block_stop", "index": 3}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ] {
            events.extend(decoder.decode(&event(data)).unwrap());
        }
        let deltas = deltas(&events);
        assert_eq!(deltas[0].role.as_deref(), Some("assistant"));
        assert_eq!(deltas[1].reasoning_content.as_deref(), Some("hm"));
        assert_eq!(
            deltas[2].reasoning_details,
            Some(
                json!([{"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"}])
            )
        );
        assert_eq!(deltas[3].content.as_deref(), Some("Let me check."));
        let calls: Vec<Value> = deltas.iter().filter_map(|d| d.tool_calls.clone()).collect();
        assert_eq!(
            calls,
            [
                json!([{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]),
                json!([{"index": 0, "function": {"arguments": "{\"city\":"}}]),
                json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}]),
                json!([{"index": 1, "id": "toolu_2", "type": "function", "function": {"name": "time", "arguments": ""}}]),
            ]
        );
        let StreamEvent::Choices(last) = &events[events.len() - 3] else {
            panic!("{events:?}");
        };
        assert_eq!(last[0].finish_reason.as_deref(), Some("tool_calls"));
        let mut usage = Usage::new(54, 30);
        usage.prompt_tokens_details = Some(json!({"cached_tokens": 50}));
        assert_eq!(
            events[events.len() - 2..],
            [StreamEvent::Usage(usage), StreamEvent::Done]
        );
        let error = decoder
            .decode(&event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::UpstreamError);
    }

    #[test]
    fn a_forced_answer_tool_streams_as_text() {
        let key = Secret::new("k");
        let mut decoder = Anthropic::new("h", &key, 100).stream_decoder("chatcmpl-1");
        let mut events = Vec::new();
        for data in [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 4}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": ANSWER_TOOL, "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
        ] {
            events.extend(decoder.decode(&event(data)).unwrap());
        }
        let deltas = deltas(&events);
        let text: String = deltas.iter().filter_map(|d| d.content.clone()).collect();
        assert_eq!(text, "{\"a\":1}");
        assert!(deltas.iter().all(|d| d.tool_calls.is_none()));
        let StreamEvent::Choices(last) = &events[events.len() - 2] else {
            panic!("{events:?}");
        };
        assert_eq!(last[0].finish_reason.as_deref(), Some("stop"));
    }
}
