//! The OpenAI Responses API as a front door (`POST /v1/responses`, the default of the
//! Vercel AI SDK's `openai(model)`, the OpenAI Agents SDK and Codex): a request becomes a
//! chat completion request for the one pipeline, and the answer, whole or streamed, goes
//! back as a `response` object or the Responses event sequence, whichever provider gave it.
//!
//! - [`ResponsesRequest`] reads the request: `input` (text, or items: messages with
//!   `input_text` / `input_image` / `input_file` parts, `function_call`,
//!   `function_call_output`, `reasoning`), `instructions`, function `tools`, `tool_choice`,
//!   `text.format`, `reasoning.effort`; `item_reference`s are resolved against the
//!   caller's stored responses first. What the chat shape cannot carry (built-in tools,
//!   `background`) is a 400 naming the field.
//! - [`response`] writes a complete answer as a `response`; [`EventWriter`] writes a stream
//!   as `response.created` ... `response.completed` (or `.incomplete` / `.failed`), each
//!   event numbered by `sequence_number`.
//! - [`StoredResponse`] is what `store` keeps: the response object, and the conversation
//!   so far as chat messages, which a turn naming it in `previous_response_id` continues.
//! - Reasoning keeps its signatures: a `reasoning` item's `encrypted_content` holds the
//!   answer's `reasoning_details` as JSON, and comes back to the provider that signed it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::chat::{ChatCompletion, ChunkChoice, Usage};
use super::{entries, known_object, write_event, EventStream};
use crate::error::{ErrorKind, GatewayError};

/// The request fields the translation reads; anything else is refused, as OpenAI does.
/// `truncation`, `include`, `service_tier`, `prompt_cache_key` and `stream_options` are
/// accepted and have no effect: the gateway never truncates, always returns reasoning as
/// `encrypted_content`, and has one tier of service.
const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
    "safety_identifier",
    "stream",
    "store",
    "previous_response_id",
    "truncation",
    "include",
    "service_tier",
    "prompt_cache_key",
    "stream_options",
];

/// The request fields a `response` object repeats.
const ECHOED: &[&str] = &[
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
    "store",
    "previous_response_id",
];

/// A Responses request, read and checked for fields the gateway does not serve.
#[derive(Debug)]
pub struct ResponsesRequest {
    fields: Map<String, Value>,
}

/// A Responses request as the pipeline takes it.
#[derive(Debug)]
pub struct Translated {
    /// The chat completion request (JSON bytes): instructions, the stored conversation,
    /// then this turn's input.
    pub chat: Vec<u8>,
    /// The conversation to store with the answer: the stored one and this turn's input,
    /// as chat messages (instructions are not carried to the next turn, as at OpenAI).
    pub conversation: Vec<Value>,
    /// What the `response` object repeats of the request.
    pub echo: Map<String, Value>,
}

impl ResponsesRequest {
    /// Reads a request body: a JSON object of known fields.
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let fields = known_object(body, KNOWN, |field| {
            format!("Unsupported parameter: '{field}'")
        })?;
        if fields.get("background") == Some(&Value::Bool(true)) {
            return Err(GatewayError::invalid(
                "background",
                "background responses are served as jobs: POST /v1/jobs",
            ));
        }
        Ok(ResponsesRequest { fields })
    }

    /// The stored response this turn continues.
    pub fn previous_response_id(&self) -> Option<&str> {
        self.fields.get("previous_response_id")?.as_str()
    }

    /// The ids of the `item_reference` items of `input` (items of the caller's stored
    /// responses, as clients send them instead of the items when `store` is on).
    pub fn item_references(&self) -> Vec<String> {
        let items = self.fields.get("input").and_then(Value::as_array);
        items
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "item_reference")
            .filter_map(|item| item["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Replaces each `item_reference` with the item `find` gives for its id: 404
    /// `response_not_found` for one it does not know.
    pub fn resolve_references(
        &mut self,
        find: impl Fn(&str) -> Option<Value>,
    ) -> Result<(), GatewayError> {
        let Some(Value::Array(items)) = self.fields.get_mut("input") else {
            return Ok(());
        };
        for (i, item) in items.iter_mut().enumerate() {
            if item["type"] != "item_reference" {
                continue;
            }
            let id = item["id"].as_str().unwrap_or_default();
            *item = find(id).ok_or_else(|| {
                let shown: String = id.chars().take(64).collect();
                GatewayError::new(
                    ErrorKind::ResponseNotFound,
                    format!("no stored item {shown:?}: its response expired, was deleted, or is another caller's"),
                )
                .with_param(format!("input[{i}].id"))
            })?;
        }
        Ok(())
    }

    /// Whether the answer is stored (the default, as at OpenAI).
    pub fn store(&self) -> bool {
        self.fields.get("store") != Some(&Value::Bool(false))
    }

    /// The chat completion request for this turn after `history` (the conversation of the
    /// response named by `previous_response_id`, or none).
    pub fn translate(&self, history: Vec<Value>) -> Result<Translated, GatewayError> {
        let fields = &self.fields;
        let mut chat = Map::new();
        chat.insert(
            "model".into(),
            fields.get("model").cloned().unwrap_or(Value::Null),
        );
        let mut conversation = history;
        let input = fields
            .get("input")
            .ok_or_else(|| GatewayError::invalid("input", "input: Field required"))?;
        conversation.extend(input_messages(input)?);
        let mut messages = Vec::with_capacity(conversation.len() + 1);
        match fields.get("instructions") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
            Some(_) => {
                return Err(GatewayError::invalid(
                    "instructions",
                    "instructions: a string",
                ))
            }
        }
        messages.extend(conversation.iter().cloned());
        chat.insert("messages".into(), Value::Array(messages));
        if fields.get("stream") == Some(&Value::Bool(true)) {
            chat.insert("stream".into(), json!(true));
            // The usage goes in `response.completed`, whatever the client asked.
            chat.insert("stream_options".into(), json!({"include_usage": true}));
        }
        for (from, to) in [
            ("max_output_tokens", "max_completion_tokens"),
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("parallel_tool_calls", "parallel_tool_calls"),
            ("safety_identifier", "user"),
            ("user", "user"),
        ] {
            if let Some(value) = fields.get(from).filter(|value| !value.is_null()) {
                chat.insert(to.into(), value.clone());
            }
        }
        if let Some(tools) = fields.get("tools") {
            chat.insert("tools".into(), self::tools(tools)?);
        }
        if let Some(choice) = fields.get("tool_choice") {
            chat.insert("tool_choice".into(), tool_choice(choice)?);
        }
        if let Some(format) = fields.get("text").and_then(|text| text.get("format")) {
            if let Some(format) = response_format(format)? {
                chat.insert("response_format".into(), format);
            }
        }
        if let Some(effort) = fields.get("reasoning").and_then(|r| r.get("effort")) {
            if !effort.is_null() {
                chat.insert("reasoning_effort".into(), effort.clone());
            }
        }
        let echo = ECHOED
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), fields.get(*name)?.clone())))
            .collect();
        Ok(Translated {
            chat: Value::Object(chat).to_string().into_bytes(),
            conversation,
            echo,
        })
    }
}

/// `input` as chat messages: a string is one user message; items are messages, function
/// calls (joined to the assistant message before them), their outputs and reasoning
/// (given to the assistant message after it).
fn input_messages(input: &Value) -> Result<Vec<Value>, GatewayError> {
    let items = match input {
        Value::String(text) => return Ok(vec![json!({"role": "user", "content": text})]),
        Value::Array(items) => items,
        _ => {
            return Err(GatewayError::invalid(
                "input",
                "input: text or a list of items",
            ))
        }
    };
    let mut messages: Vec<Value> = Vec::with_capacity(items.len());
    // Reasoning waiting for the assistant message it belongs to.
    let mut details: Vec<Value> = Vec::new();
    // Whether the last message is an assistant turn that a function call may join.
    let mut assistant_open = false;
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let kind = match (item["type"].as_str(), item.get("role")) {
            (Some(kind), _) => kind,
            (None, Some(_)) => "message",
            (None, None) => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    "type: Field required",
                ))
            }
        };
        match kind {
            "message" => {
                let message = message(item, &at)?;
                assistant_open = message["role"] == "assistant";
                messages.push(message);
            }
            "function_call" => {
                let call = json!({
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                });
                match messages.last_mut().filter(|_| assistant_open) {
                    Some(last) => match last["tool_calls"].as_array_mut() {
                        Some(calls) => calls.push(call),
                        None => last["tool_calls"] = json!([call]),
                    },
                    None => {
                        messages.push(
                            json!({"role": "assistant", "content": "", "tool_calls": [call]}),
                        );
                        assistant_open = true;
                    }
                }
            }
            "function_call_output" => {
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": output_text(&item["output"], &format!("{at}.output"))?,
                }));
                assistant_open = false;
            }
            "reasoning" => {
                // Reasoning the gateway wrote carries its details; anything else (an
                // OpenAI-encrypted summary) cannot be given to another provider.
                let carried = item["encrypted_content"]
                    .as_str()
                    .and_then(|text| serde_json::from_slice::<Vec<Value>>(text.as_bytes()).ok());
                details.extend(carried.into_iter().flatten());
                assistant_open = false;
            }
            other => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!(
                        "{other}: input items are message, function_call, \
                         function_call_output or reasoning"
                    ),
                ))
            }
        }
        if !details.is_empty() {
            if let Some(last) = messages.last_mut().filter(|_| assistant_open) {
                let list = last
                    .as_object_mut()
                    .map(|fields| fields.entry("reasoning_details").or_insert(json!([])));
                if let Some(Value::Array(list)) = list {
                    list.append(&mut details);
                }
            }
        }
    }
    Ok(messages)
}

/// A `message` item as a chat message.
fn message(item: &Value, at: &str) -> Result<Value, GatewayError> {
    let role = match item["role"].as_str() {
        Some(role @ ("user" | "system" | "developer" | "assistant")) => role,
        _ => {
            return Err(GatewayError::invalid(
                format!("{at}.role"),
                "role: user, system, developer or assistant",
            ))
        }
    };
    let parts = match &item["content"] {
        Value::String(text) => return Ok(json!({"role": role, "content": text})),
        Value::Array(parts) => parts,
        _ => {
            return Err(GatewayError::invalid(
                format!("{at}.content"),
                "content: text or a list of parts",
            ))
        }
    };
    if role == "assistant" {
        let mut text = String::new();
        for (j, part) in parts.iter().enumerate() {
            match (part["type"].as_str(), &part["text"], &part["refusal"]) {
                (Some("output_text"), Value::String(piece), _)
                | (Some("refusal"), _, Value::String(piece)) => text.push_str(piece),
                _ => {
                    return Err(GatewayError::invalid(
                        format!("{at}.content[{j}].type"),
                        "assistant parts are output_text or refusal",
                    ))
                }
            }
        }
        return Ok(json!({"role": role, "content": text}));
    }
    let mut chat_parts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        chat_parts.push(content_part(part, &format!("{at}.content[{j}]"))?);
    }
    Ok(json!({"role": role, "content": chat_parts}))
}

/// An `input_text`, `input_image` or `input_file` part as a chat content part.
fn content_part(part: &Value, at: &str) -> Result<Value, GatewayError> {
    let refuse = |field: &str, why: &str| Err(GatewayError::invalid(format!("{at}.{field}"), why));
    match part["type"].as_str() {
        Some("input_text") => match part["text"].as_str() {
            Some(text) => Ok(json!({"type": "text", "text": text})),
            None => refuse("text", "text: Field required"),
        },
        Some("input_image") => match part["image_url"].as_str() {
            Some(url) => {
                let mut image = json!({"url": url});
                if let Some(detail) = part["detail"].as_str() {
                    image["detail"] = json!(detail);
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            None => refuse(
                "image_url",
                "images are sent as image_url (an https or data URL); file ids are not served",
            ),
        },
        Some("input_file") => {
            let mut file = Map::new();
            for name in ["file_data", "file_id", "filename"] {
                if let Some(value) = part[name].as_str() {
                    file.insert(name.into(), json!(value));
                }
            }
            if file.contains_key("file_data") || file.contains_key("file_id") {
                Ok(json!({"type": "file", "file": file}))
            } else {
                refuse(
                    "file_data",
                    "files are sent as file_data (a data URL) or file_id",
                )
            }
        }
        _ => refuse(
            "type",
            "input parts are input_text, input_image or input_file",
        ),
    }
}

/// A function call's output (text, or `input_text` parts) as text.
fn output_text(output: &Value, at: &str) -> Result<String, GatewayError> {
    match output {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("input_text"), Some(piece)) => text.push_str(piece),
                    _ => {
                        return Err(GatewayError::invalid(
                            at,
                            "function call outputs can hold text only",
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(GatewayError::invalid(
            at,
            "output: text or input_text parts",
        )),
    }
}

/// Function `tools` as chat tools (built-in tools such as `web_search` run at OpenAI).
fn tools(tools: &Value) -> Result<Value, GatewayError> {
    let tools = tools
        .as_array()
        .ok_or_else(|| GatewayError::invalid("tools", "tools: a list"))?;
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool["type"] != "function" {
            return Err(GatewayError::invalid(
                format!("tools[{i}].type"),
                format!(
                    "{} is a tool OpenAI runs itself; the gateway serves function tools only",
                    tool["type"]
                ),
            ));
        }
        let mut function = Map::new();
        for name in ["name", "description", "parameters", "strict"] {
            if let Some(value) = tool.get(name).filter(|value| !value.is_null()) {
                function.insert(name.into(), value.clone());
            }
        }
        functions.push(json!({"type": "function", "function": function}));
    }
    Ok(Value::Array(functions))
}

fn tool_choice(choice: &Value) -> Result<Value, GatewayError> {
    match (choice.as_str(), choice["type"].as_str()) {
        (Some(mode @ ("auto" | "none" | "required")), _) => Ok(json!(mode)),
        (None, Some("function")) => {
            Ok(json!({"type": "function", "function": {"name": choice["name"]}}))
        }
        _ => Err(GatewayError::invalid(
            "tool_choice",
            "tool_choice: auto, none, required or a function",
        )),
    }
}

/// `text.format` as a chat `response_format` (`text` needs none).
fn response_format(format: &Value) -> Result<Option<Value>, GatewayError> {
    match format["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for name in ["name", "description", "schema", "strict"] {
                if let Some(value) = format.get(name).filter(|value| !value.is_null()) {
                    schema.insert(name.into(), value.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(GatewayError::invalid(
            "text.format.type",
            "text.format.type: text, json_object or json_schema",
        )),
    }
}

/// The id of the response that wrote the output item `item_id` (item ids name their
/// response: `<kind>_<response id without resp_>_<index>`).
pub fn response_of_item(item_id: &str) -> Option<String> {
    let (_, rest) = item_id.split_once('_')?;
    let (suffix, _) = rest.rsplit_once('_')?;
    Some(format!("resp_{suffix}"))
}

/// What `store` keeps of one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The `response` object, as `GET /v1/responses/{id}` serves it.
    pub response: Value,
    /// The conversation up to and including the answer, as chat messages.
    pub conversation: Vec<Value>,
}

impl StoredResponse {
    /// The record of `completion` (its first choice), answering `conversation`.
    pub fn new(response: Value, mut conversation: Vec<Value>, completion: &ChatCompletion) -> Self {
        if let Some(message) = completion.choices.first().map(|choice| &choice.message) {
            let text = [&message.content, &message.refusal]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect::<String>();
            let mut turn = json!({"role": "assistant", "content": text});
            if let Some(calls) = &message.tool_calls {
                turn["tool_calls"] = calls.clone();
            }
            if let Some(details) = &message.reasoning_details {
                turn["reasoning_details"] = details.clone();
            }
            conversation.push(turn);
        }
        StoredResponse {
            response,
            conversation,
        }
    }
}

/// The kind of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
    FunctionCall,
}

/// One output item, whole or being streamed.
#[derive(Debug)]
struct Item {
    kind: Kind,
    id: String,
    /// The message's text, the call's arguments, or the reasoning summary.
    text: String,
    /// A function call's `call_id` and `name`.
    call_id: Value,
    name: Value,
    /// A reasoning item's details (signatures), carried as `encrypted_content`.
    details: Vec<Value>,
    done: bool,
}

impl Item {
    fn new(kind: Kind, response_id: &str, output_index: usize) -> Self {
        let prefix = match kind {
            Kind::Reasoning => "rs",
            Kind::Message => "msg",
            Kind::FunctionCall => "fc",
        };
        let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
        Item {
            kind,
            id: format!("{prefix}_{suffix}_{output_index}"),
            text: String::new(),
            call_id: Value::Null,
            name: Value::Null,
            details: Vec::new(),
            done: false,
        }
    }

    /// The item as the API shows it, `in_progress` until done.
    fn render(&self) -> Value {
        let status = if self.done {
            "completed"
        } else {
            "in_progress"
        };
        match self.kind {
            Kind::Message => {
                let content = match self.done {
                    true => vec![text_part(&self.text)],
                    false => Vec::new(),
                };
                json!({"id": self.id, "type": "message", "status": status, "role": "assistant", "content": content})
            }
            Kind::FunctionCall => json!({
                "id": self.id, "type": "function_call", "status": status,
                "call_id": self.call_id, "name": self.name,
                "arguments": if self.done { self.text.as_str() } else { "" },
            }),
            Kind::Reasoning => {
                let summary = match (self.done, self.text.is_empty()) {
                    (true, false) => vec![json!({"type": "summary_text", "text": self.text})],
                    _ => Vec::new(),
                };
                let mut item = json!({"id": self.id, "type": "reasoning", "summary": summary});
                if self.done && !self.details.is_empty() {
                    item["encrypted_content"] =
                        json!(Value::from(self.details.clone()).to_string());
                }
                item
            }
        }
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// The `response` object's `status` and `incomplete_details` for a finish reason.
fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The Responses usage object.
fn usage_json(usage: &Usage) -> Value {
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .and_then(|details| details["reasoning_tokens"].as_u64())
        .unwrap_or(0);
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens()},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    })
}

/// A `response` object without output: its id, time, model and what it repeats of the
/// request, with the API's defaults for what the request left out.
fn skeleton(id: &str, created: u64, model: &str, echo: &Map<String, Value>) -> Map<String, Value> {
    let mut response = json!({
        "id": id, "object": "response", "created_at": created, "status": "in_progress",
        "error": null, "incomplete_details": null, "model": model, "output": [],
        "instructions": null, "max_output_tokens": null, "metadata": {},
        "parallel_tool_calls": true, "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null}, "store": true,
        "temperature": null, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
        "tools": [], "top_p": null, "truncation": "disabled", "usage": null, "user": null,
    });
    let mut fields = match response.take() {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    fields.extend(
        echo.iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    fields
}

/// Finishes a skeleton with its output, status and usage.
fn finished(
    mut response: Map<String, Value>,
    items: &[Item],
    finish_reason: Option<&str>,
    usage: &Usage,
) -> Value {
    let (status, incomplete) = status(finish_reason);
    response.insert("status".into(), json!(status));
    response.insert("incomplete_details".into(), incomplete);
    response.insert(
        "output".into(),
        items.iter().map(Item::render).collect::<Vec<_>>().into(),
    );
    response.insert("usage".into(), usage_json(usage));
    Value::Object(response)
}

/// A complete answer (`chat.completion`, its first choice) as a `response` object.
pub fn response(completion: &ChatCompletion, usage: &Usage, echo: &Map<String, Value>) -> Value {
    let id = &completion.id;
    let mut items = Vec::new();
    let mut push = |kind, fill: &dyn Fn(&mut Item)| {
        let mut item = Item::new(kind, id, items.len());
        fill(&mut item);
        item.done = true;
        items.push(item);
    };
    let choice = completion.choices.first();
    if let Some(message) = choice.map(|choice| &choice.message) {
        let details = entries(&message.reasoning_details)
            .cloned()
            .collect::<Vec<_>>();
        if message.reasoning_content.is_some() || !details.is_empty() {
            push(Kind::Reasoning, &|item| {
                item.text = message.reasoning_content.clone().unwrap_or_default();
                item.details.clone_from(&details);
            });
        }
        let text = [&message.content, &message.refusal]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<String>();
        if !text.is_empty() {
            push(Kind::Message, &|item| item.text.clone_from(&text));
        }
        for call in entries(&message.tool_calls) {
            push(Kind::FunctionCall, &|item| {
                item.call_id = call["id"].clone();
                item.name = call["function"]["name"].clone();
                item.text = call["function"]["arguments"]
                    .as_str()
                    .unwrap_or("{}")
                    .to_owned();
            });
        }
    }
    let finish_reason = choice.and_then(|choice| choice.finish_reason.as_deref());
    let response = skeleton(id, completion.created, &completion.model, echo);
    finished(response, &items, finish_reason, usage)
}

/// Writes a chat answer's chunks as the Responses event sequence, one chunk at a time
/// (the first choice only: a Responses request has one).
#[derive(Debug)]
pub struct EventWriter {
    /// The response object so far, without output.
    response: Map<String, Value>,
    sequence_number: u64,
    started: bool,
    items: Vec<Item>,
    /// The message or reasoning item being written, by index into `items`.
    open: Option<usize>,
    /// The item of each function call (by its chat `index`).
    calls: BTreeMap<u64, usize>,
    finish_reason: Option<String>,
}

/// A `response.*.delta` event's data (`item_id` and `sequence_number` are filled in when
/// it is written).
#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<usize>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[u8; 0]>,
}

impl<'a> DeltaEvent<'a> {
    fn new(kind: &'static str, output_index: usize, delta: &'a str) -> Self {
        DeltaEvent {
            kind,
            sequence_number: 0,
            item_id: "",
            output_index,
            content_index: None,
            summary_index: None,
            delta,
            logprobs: None,
        }
    }
}

impl EventStream for EventWriter {
    /// Appends the events for one chunk's choices to `out`.
    fn chunk(&mut self, choices: &[ChunkChoice], out: &mut Vec<u8>) {
        self.start(out);
        let Some(choice) = choices.iter().find(|choice| choice.index == 0) else {
            return;
        };
        let delta = &choice.delta;
        if let Some(thinking) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
            self.text(Kind::Reasoning, thinking, out);
        }
        for detail in entries(&delta.reasoning_details) {
            let index = self.open_item(Kind::Reasoning, out);
            self.items[index].details.push(detail.clone());
        }
        for text in [&delta.content, &delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.text(Kind::Message, text, out);
            }
        }
        for call in entries(&delta.tool_calls) {
            self.tool_call(call, out);
        }
        if let Some(reason) = &choice.finish_reason {
            self.close_all(out);
            self.finish_reason = Some(reason.clone());
        }
    }

    /// Ends the answer: every item done, then `response.completed` (or `.incomplete`)
    /// with the whole output and the usage.
    fn done(&mut self, usage: &Usage, out: &mut Vec<u8>) {
        self.start(out);
        self.close_all(out);
        let response = finished(
            self.response.clone(),
            &self.items,
            self.finish_reason.as_deref(),
            usage,
        );
        let kind = match response["status"].as_str() {
            Some("incomplete") => "response.incomplete",
            _ => "response.completed",
        };
        self.emit(kind, json!({"response": response}), out);
    }

    /// Ends a broken answer: an `error` event, then `response.failed` with what was
    /// written so far.
    fn fail(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        self.start(out);
        let (code, message) = (error.code(), &error.message);
        self.emit(
            "error",
            json!({"code": code, "message": message, "param": error.param}),
            out,
        );
        let mut response = self.response.clone();
        response.insert("status".into(), json!("failed"));
        response.insert("error".into(), json!({"code": code, "message": message}));
        let output = self.items.iter().map(Item::render).collect::<Vec<_>>();
        response.insert("output".into(), output.into());
        self.emit("response.failed", json!({"response": response}), out);
    }
}

impl EventWriter {
    /// A writer for the response `id` of `model`, created at `created` (Unix seconds),
    /// repeating `echo` of its request.
    pub fn new(id: &str, created: u64, model: &str, echo: &Map<String, Value>) -> Self {
        EventWriter {
            response: skeleton(id, created, model, echo),
            sequence_number: 0,
            started: false,
            items: Vec::new(),
            open: None,
            calls: BTreeMap::new(),
            finish_reason: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = Value::Object(self.response.clone());
        self.emit("response.created", json!({"response": response}), out);
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    /// A piece of message text or reasoning summary, in the open item of `kind` or a new one.
    fn text(&mut self, kind: Kind, text: &str, out: &mut Vec<u8>) {
        let index = self.open_item(kind, out);
        let item = &mut self.items[index];
        let first = item.text.is_empty();
        item.text.push_str(text);
        if kind == Kind::Reasoning && first {
            // A summary part opens with its first text (signatures alone have none).
            let item_id = item.id.clone();
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            );
        }
        let delta = match kind {
            Kind::Message => DeltaEvent {
                content_index: Some(0),
                logprobs: Some([]),
                ..DeltaEvent::new("response.output_text.delta", index, text)
            },
            _ => DeltaEvent {
                summary_index: Some(0),
                ..DeltaEvent::new("response.reasoning_summary_text.delta", index, text)
            },
        };
        self.emit_delta(delta, out);
    }

    /// The open message or reasoning item of `kind`, or a new one (closing the other).
    fn open_item(&mut self, kind: Kind, out: &mut Vec<u8>) -> usize {
        if let Some(index) = self.open.filter(|index| self.items[*index].kind == kind) {
            return index;
        }
        self.close_open(out);
        let index = self.add(kind, out);
        self.open = Some(index);
        index
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let number = call["index"].as_u64().unwrap_or(0);
        let index = match self.calls.get(&number) {
            Some(index) => *index,
            None => {
                self.close_open(out);
                let index = self.items.len();
                let mut item = Item::new(Kind::FunctionCall, self.id(), index);
                item.call_id = call["id"].clone();
                item.name = call["function"]["name"].clone();
                self.items.push(item);
                self.added(index, out);
                self.calls.insert(number, index);
                index
            }
        };
        let Some(arguments) = call["function"]["arguments"].as_str() else {
            return;
        };
        let item = &mut self.items[index];
        if arguments.is_empty() || item.done {
            return;
        }
        item.text.push_str(arguments);
        let delta = DeltaEvent::new("response.function_call_arguments.delta", index, arguments);
        self.emit_delta(delta, out);
    }

    fn id(&self) -> &str {
        self.response["id"].as_str().unwrap_or_default()
    }

    /// Adds an item of `kind` (a message gets its text part at once).
    fn add(&mut self, kind: Kind, out: &mut Vec<u8>) -> usize {
        let index = self.items.len();
        let item = Item::new(kind, self.id(), index);
        self.items.push(item);
        self.added(index, out);
        index
    }

    fn added(&mut self, index: usize, out: &mut Vec<u8>) {
        let item = &self.items[index];
        let (item_id, rendered, kind) = (item.id.clone(), item.render(), item.kind);
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": rendered}),
            out,
        );
        if kind == Kind::Message {
            self.emit(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": text_part("")}),
                out,
            );
        }
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            self.close(index, out);
        }
    }

    fn close_all(&mut self, out: &mut Vec<u8>) {
        self.open = None;
        for index in 0..self.items.len() {
            self.close(index, out);
        }
    }

    /// Ends an item: its `.done` events, then `response.output_item.done`.
    fn close(&mut self, index: usize, out: &mut Vec<u8>) {
        let item = &mut self.items[index];
        if std::mem::replace(&mut item.done, true) {
            return;
        }
        let (item_id, text) = (item.id.clone(), item.text.clone());
        match item.kind {
            Kind::Message => {
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": text_part(&text)}),
                    out,
                );
            }
            Kind::Reasoning if !text.is_empty() => {
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text}),
                    out,
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}}),
                    out,
                );
            }
            Kind::Reasoning => {}
            Kind::FunctionCall => self.emit(
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": index, "arguments": text}),
                out,
            ),
        }
        let rendered = self.items[index].render();
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": rendered}),
            out,
        );
    }

    /// A delta event, the most frequent kind: written from a typed struct rather than
    /// built as a JSON value (a stream is mostly these).
    fn emit_delta(&mut self, delta: DeltaEvent<'_>, out: &mut Vec<u8>) {
        let sequence_number = self.sequence_number;
        self.sequence_number += 1;
        let delta = DeltaEvent {
            sequence_number,
            item_id: &self.items[delta.output_index].id,
            ..delta
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(delta.kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Strings and numbers always serialize.
        let _ = serde_json::to_writer(&mut *out, &delta);
        out.extend_from_slice(b"\n\n");
    }

    /// One event: `event: <kind>` and its data, numbered.
    fn emit(&mut self, kind: &str, mut data: Value, out: &mut Vec<u8>) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence_number);
        self.sequence_number += 1;
        write_event(out, kind, &data);
    }
}

/// A call to one principal's response store (a Durable Object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreCall {
    /// Keep `record` as `id` until `expires_at` (Unix seconds); answers `null`.
    Put {
        /// The response id.
        id: String,
        /// What is kept.
        record: Box<StoredResponse>,
        /// When it is forgotten.
        expires_at: u64,
    },
    /// The live record `id`, or `null`.
    Get(String),
    /// Forget `id`; answers whether it was there.
    Delete(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::{AssistantMessage, Choice, Delta};
    use crate::api::testing::{self, choice};

    fn translate(body: Value, history: Vec<Value>) -> Translated {
        let request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        request.translate(history).unwrap()
    }

    fn chat(translated: &Translated) -> Value {
        serde_json::from_slice(&translated.chat).unwrap()
    }

    fn refused(body: Value) -> GatewayError {
        ResponsesRequest::parse(body.to_string().as_bytes())
            .and_then(|request| request.translate(Vec::new()))
            .unwrap_err()
    }

    #[test]
    fn a_request_becomes_the_chat_request_it_means() {
        let details = json!([{"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"}]);
        let body = json!({
            "model": "m", "instructions": "Be brief.", "stream": true, "max_output_tokens": 100,
            "temperature": 0.4, "top_p": 0.9, "parallel_tool_calls": false, "safety_identifier": "u-1",
            "metadata": {"ticket": "T-1"}, "store": false, "truncation": "disabled",
            "tools": [{"type": "function", "name": "weather", "description": "w", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "weather"},
            "text": {"format": {"type": "json_schema", "name": "place", "schema": {"type": "object"}, "strict": true}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Weather here?"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}],
                 "encrypted_content": details.to_string()},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "21C"}]},
            ],
        });
        let history = vec![
            json!({"role": "user", "content": "Hi"}),
            json!({"role": "assistant", "content": "Hello"}),
        ];
        let translated = translate(body, history);
        let assistant = json!({"role": "assistant", "content": "Looking.", "reasoning_details": details, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]});
        let turns = vec![
            json!({"role": "user", "content": "Hi"}),
            json!({"role": "assistant", "content": "Hello"}),
            json!({"role": "developer", "content": "Use metric units."}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}}]}),
            assistant,
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"}),
            json!({"role": "tool", "tool_call_id": "call_2", "content": "21C"}),
        ];
        assert_eq!(translated.conversation, turns);
        let mut messages = vec![json!({"role": "system", "content": "Be brief."})];
        messages.extend(turns);
        assert_eq!(
            chat(&translated),
            json!({
                "model": "m", "stream": true, "stream_options": {"include_usage": true},
                "max_completion_tokens": 100, "temperature": 0.4, "top_p": 0.9,
                "parallel_tool_calls": false, "user": "u-1",
                "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": {"type": "object"}, "strict": true}},
                "reasoning_effort": "low",
                "messages": messages,
            })
        );
        assert_eq!(translated.echo["metadata"], json!({"ticket": "T-1"}));
        assert_eq!(translated.echo["store"], json!(false));
        assert!(!translated.echo.contains_key("input"));
    }

    #[test]
    fn what_the_chat_shape_cannot_carry_is_refused_naming_it() {
        let base = || json!({"model": "m", "input": "hi"});
        let with = |field: &str, value: Value| {
            let mut body = base();
            body[field] = value;
            body
        };
        let cases = [
            (with("conversation", json!("c_1")), "conversation"),
            (with("background", json!(true)), "background"),
            (
                with("tools", json!([{"type": "web_search"}])),
                "tools[0].type",
            ),
            (
                with("tool_choice", json!({"type": "file_search"})),
                "tool_choice",
            ),
            (
                with("text", json!({"format": {"type": "yaml"}})),
                "text.format.type",
            ),
            (
                with("input", json!([{"type": "item_reference", "id": "msg_1"}])),
                "input[0].type",
            ),
            (
                with(
                    "input",
                    json!([{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]),
                ),
                "input[0].content[0].image_url",
            ),
            (
                with("input", json!([{"role": "tool", "content": "x"}])),
                "input[0].role",
            ),
            (with("input", json!(7)), "input"),
            (json!({"model": "m"}), "input"),
        ];
        for (body, param) in cases {
            let error = refused(body);
            assert_eq!(error.status(), 400);
            assert_eq!(error.param.as_deref(), Some(param), "{}", error.message);
        }
        assert_eq!(
            refused(json!({"model": "m", "input": "hi", "x": 1})).code(),
            "unknown_parameter"
        );
    }

    #[test]
    fn item_references_resolve_to_the_stored_items_their_ids_name() {
        let body = json!({"model": "m", "input": [{"type": "item_reference", "id": "rs_ab12_0"}, {"role": "user", "content": "hi"}]});
        let mut request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(request.item_references(), ["rs_ab12_0"]);
        assert_eq!(response_of_item("rs_ab12_0").as_deref(), Some("resp_ab12"));
        assert_eq!(response_of_item("fc_a_b_7").as_deref(), Some("resp_a_b"));
        assert_eq!(response_of_item("nonsense"), None);
        let details = json!([{"type": "reasoning.encrypted", "data": "sig", "format": "gemini"}]);
        let item = json!({"type": "reasoning", "id": "rs_ab12_0", "summary": [], "encrypted_content": details.to_string()});
        let unknown = request.resolve_references(|_| None).unwrap_err();
        assert_eq!(
            (unknown.status(), unknown.param.as_deref()),
            (404, Some("input[0].id"))
        );
        request
            .resolve_references(|id| (id == "rs_ab12_0").then(|| item.clone()))
            .unwrap();
        let translated = request.translate(Vec::new()).unwrap();
        assert_eq!(
            translated.conversation,
            vec![json!({"role": "user", "content": "hi"})]
        );
    }

    fn completion(message: AssistantMessage, finish_reason: &str) -> ChatCompletion {
        ChatCompletion {
            id: "resp_1".into(),
            object: "chat.completion".into(),
            created: 1_700_000_000,
            model: "m".into(),
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
    fn an_answer_becomes_a_response_whose_items_come_back_as_the_same_turn() {
        let details = json!([{"type": "reasoning.encrypted", "data": "g-sig", "format": "gemini", "id": "call_1"}]);
        let answer = completion(
            AssistantMessage {
                content: Some("Looking.".into()),
                reasoning_content: Some("hm".into()),
                reasoning_details: Some(details.clone()),
                tool_calls: Some(
                    json!([{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]),
                ),
                ..AssistantMessage::default()
            },
            "tool_calls",
        );
        let mut usage = Usage::new(10, 5);
        usage.completion_tokens_details = Some(json!({"reasoning_tokens": 2}));
        let echo = Map::from_iter([("metadata".to_owned(), json!({"n": "1"}))]);
        let response = response(&answer, &usage, &echo);
        assert_eq!(response["object"], "response");
        assert_eq!(response["status"], "completed");
        assert_eq!(response["metadata"], json!({"n": "1"}));
        assert_eq!(response["created_at"], 1_700_000_000);
        assert_eq!(
            response["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                   "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15})
        );
        let output = response["output"].as_array().unwrap();
        let kinds: Vec<&str> = output
            .iter()
            .map(|item| item["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(
            output[0]["summary"],
            json!([{"type": "summary_text", "text": "hm"}])
        );
        assert_eq!(output[1]["content"][0]["text"], "Looking.");
        assert_eq!(output[2]["call_id"], "call_1");
        // The items sent back as input are the assistant turn that gave them.
        let translated = translate(json!({"model": "m", "input": output}), Vec::new());
        let stored = StoredResponse::new(response.clone(), Vec::new(), &answer);
        assert_eq!(translated.conversation, stored.conversation);
        assert_eq!(stored.conversation[0]["reasoning_details"], details);
        // A cut answer is incomplete.
        let cut = super::response(
            &completion(AssistantMessage::default(), "length"),
            &usage,
            &Map::new(),
        );
        assert_eq!(
            (cut["status"].as_str(), &cut["incomplete_details"]),
            (Some("incomplete"), &json!({"reason": "max_output_tokens"}))
        );
    }

    /// The data of each event, checked to name its own type.
    fn events(out: &[u8]) -> Vec<Value> {
        testing::events(out)
            .into_iter()
            .map(|(name, data)| {
                assert_eq!(data["type"], name.as_str());
                data
            })
            .collect()
    }

    #[test]
    fn a_stream_becomes_the_event_sequence_item_by_item() {
        let mut writer = EventWriter::new("resp_1", 1, "m", &Map::new());
        let mut out = Vec::new();
        let call = |value: Value| Delta {
            tool_calls: Some(value),
            ..Delta::default()
        };
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
                content: Some("Loo".into()),
                ..Delta::default()
            },
            Delta {
                content: Some("king.".into()),
                ..Delta::default()
            },
            call(
                json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]),
            ),
            call(json!([{"index": 0, "function": {"arguments": "{\"city\":"}}])),
            call(json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])),
        ];
        for delta in deltas {
            writer.chunk(&[choice(delta, None)], &mut out);
        }
        writer.chunk(&[choice(Delta::default(), Some("tool_calls"))], &mut out);
        writer.done(&Usage::new(7, 3), &mut out);
        let events = events(&out);
        let kinds: Vec<&str> = events
            .iter()
            .map(|event| event["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(
            events[10],
            json!({"type": "response.output_text.delta", "sequence_number": 10, "item_id": "msg_1_1",
                   "output_index": 1, "content_index": 0, "delta": "Loo", "logprobs": []})
        );
        assert_eq!(
            events[4],
            json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": "rs_1_0",
                   "output_index": 0, "summary_index": 0, "delta": "hm"})
        );
        assert_eq!(
            events[16],
            json!({"type": "response.function_call_arguments.delta", "sequence_number": 16, "item_id": "fc_1_2",
                   "output_index": 2, "delta": "{\"city\":"})
        );
        let numbers: Vec<u64> = events
            .iter()
            .map(|event| event["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
        let done = &events.last().unwrap()["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["usage"]["total_tokens"], 10);
        let output = done["output"].as_array().unwrap();
        assert_eq!(output[0]["encrypted_content"], json!(json!([{"type": "reasoning.text", "text": "hm", "signature": "sig", "format": "anthropic"}]).to_string()));
        assert_eq!(output[1]["content"][0]["text"], "Looking.");
        assert_eq!(output[2]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(output[2]["status"], "completed");
    }

    #[test]
    fn a_broken_stream_ends_with_error_then_response_failed() {
        let mut writer = EventWriter::new("resp_1", 1, "m", &Map::new());
        let mut out = Vec::new();
        let text = Delta {
            content: Some("Hel".into()),
            ..Delta::default()
        };
        writer.chunk(&[choice(text, None)], &mut out);
        writer.fail(&crate::upstream::unreachable("it broke"), &mut out);
        let events = events(&out);
        let last = &events[events.len() - 2..];
        assert_eq!(last[0]["type"], "error");
        assert_eq!(last[0]["code"], "upstream_error");
        assert_eq!(last[1]["type"], "response.failed");
        assert_eq!(last[1]["response"]["status"], "failed");
        assert_eq!(last[1]["response"]["error"]["code"], "upstream_error");
        assert_eq!(last[1]["response"]["output"][0]["status"], "in_progress");
    }
}
