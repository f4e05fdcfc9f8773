//! The canonical conversation: what every provider codec translates from, whatever the
//! wire format the client spoke. Messages are turns of typed parts (text, image, file,
//! audio, tool call, tool result, reasoning); beside them the tools, the tool choice, the
//! output format and the reasoning effort.
//!
//! [`Conversation::of`] reads it from a validated [`ChatRequest`] (the OpenAI Chat
//! Completions shape), naming the offending field in a 400 for anything malformed. Turns
//! are already in the shape the non-OpenAI APIs require: `system` and `developer`
//! messages are instructions apart from the turns, tool results belong to the user's turn
//! that follows the assistant's calls, and consecutive turns of one speaker are merged.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::chat::{ChatRequest, Content, Message, Role};
use crate::error::GatewayError;

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The end user (and the tools answering the model's calls).
    User,
    /// The model.
    Assistant,
}

/// One turn: its speaker's parts, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Who speaks.
    pub speaker: Speaker,
    /// What was said.
    pub parts: Vec<Part>,
}

/// One piece of a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image.
    Image(Media),
    /// A document (a PDF, text).
    File(Media),
    /// Audio (always inline, as `audio/wav` or `audio/mp3`).
    Audio(Media),
    /// A call of a tool by the model.
    ToolCall(ToolCall),
    /// A tool's answer to a call.
    ToolResult(ToolResult),
    /// The model's reasoning before its answer.
    Reasoning(Reasoning),
}

/// Where an image's or a file's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaSource {
    /// Inline, base64.
    Base64 {
        /// The media type (`image/png`, `application/pdf`).
        mime: String,
        /// The bytes, base64 (standard alphabet).
        data: String,
    },
    /// At a URL the provider fetches.
    Url(String),
    /// An id of a file stored with OpenAI (only OpenAI can resolve it).
    FileId(String),
}

/// An image or a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// Its bytes.
    pub source: MediaSource,
    /// A file's name, when the client gave one.
    pub filename: Option<String>,
    /// Where it stands in the request, for errors (`messages[1].content[2]`).
    pub param: String,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Its id, which the tool's result names.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the JSON text the model wrote.
    pub arguments: String,
}

/// A tool's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The call it answers.
    pub call_id: String,
    /// The tool's name (from the call it answers), when the call is in the history.
    pub name: Option<String>,
    /// What the tool answered, as text.
    pub content: String,
}

/// The model's reasoning, as a provider returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reasoning {
    /// The reasoning text (empty when the provider gave only an opaque block).
    pub text: String,
    /// The provider's signature over the text, to send back unchanged.
    pub signature: Option<String>,
    /// An opaque block to send back unchanged: Anthropic's `redacted_thinking`, Gemini's
    /// `thoughtSignature`.
    pub encrypted: Option<String>,
    /// The tool call the block belongs to (Gemini signs each call).
    pub call_id: Option<String>,
    /// Which provider made it (`anthropic`, `gemini`): reasoning is sent back to that
    /// provider only.
    pub format: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Its arguments, as a JSON Schema (an object).
    pub parameters: Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// As the model sees fit.
    Auto,
    /// None.
    None,
    /// At least one.
    Required,
    /// This one.
    Function(String),
}

/// The shape of the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows `schema`.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Whether the schema must be followed exactly.
        strict: bool,
    },
}

/// How hard the model should think before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    /// Not at all.
    None,
    /// As little as the model can.
    Minimal,
    /// A little.
    Low,
    /// Some.
    Medium,
    /// A lot.
    High,
}

impl ReasoningEffort {
    /// Every effort, least first.
    pub const ALL: [ReasoningEffort; 5] = [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Low,
        ReasoningEffort::Medium,
        ReasoningEffort::High,
    ];

    /// Its name in `reasoning_effort`.
    pub fn name(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }

    /// The least effort that thinks and whose budget holds `budget` tokens; `High` for
    /// more than any holds.
    pub fn covering(budget: u64) -> ReasoningEffort {
        Self::ALL[1..]
            .iter()
            .copied()
            .find(|effort| u64::from(effort.budget_tokens()) >= budget)
            .unwrap_or(ReasoningEffort::High)
    }

    /// The thinking budget in tokens for this effort (0 for none), for providers that take
    /// a budget rather than a level.
    pub fn budget_tokens(self) -> u32 {
        match self {
            ReasoningEffort::None => 0,
            ReasoningEffort::Minimal => 1_024,
            ReasoningEffort::Low => 2_048,
            ReasoningEffort::Medium => 8_192,
            ReasoningEffort::High => 24_576,
        }
    }
}

/// The whole conversation, canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The `system` and `developer` messages, in order.
    pub instructions: Vec<String>,
    /// The turns, alternating between the speakers.
    pub turns: Vec<Turn>,
    /// The tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool it must call (`None`: the provider's default).
    pub tool_choice: Option<ToolChoice>,
    /// Whether it may call several tools at once (`None`: the provider's default).
    pub parallel_tool_calls: Option<bool>,
    /// The shape of the answer.
    pub output: OutputFormat,
    /// `reasoning_effort`.
    pub reasoning_effort: Option<ReasoningEffort>,
}

impl Conversation {
    /// The canonical form of `request`; a 400 naming the field for a part, a tool or an
    /// option that is malformed.
    pub fn of(request: &ChatRequest) -> Result<Conversation, GatewayError> {
        let mut conversation = Conversation {
            instructions: Vec::new(),
            turns: Vec::new(),
            tools: tools(request)?,
            tool_choice: tool_choice(request)?,
            parallel_tool_calls: request
                .passthrough
                .get("parallel_tool_calls")
                .and_then(Value::as_bool),
            output: output_format(request)?,
            reasoning_effort: reasoning_effort(request)?,
        };
        // Tool results name their call by id; the call names the tool.
        let mut tool_names: HashMap<String, String> = HashMap::new();
        for (index, message) in request.messages.iter().enumerate() {
            let at = |field: &str| format!("messages[{index}].{field}");
            let (speaker, parts) = match message.role {
                Role::System | Role::Developer => {
                    conversation.instructions.push(message.content.text());
                    continue;
                }
                Role::User => (
                    Speaker::User,
                    content_parts(&message.content, &at("content"))?,
                ),
                Role::Assistant => {
                    let mut parts = reasoning_parts(message, &at("reasoning_details"))?;
                    parts.extend(content_parts(&message.content, &at("content"))?);
                    for call in tool_calls(message, &at("tool_calls"))? {
                        tool_names.insert(call.id.clone(), call.name.clone());
                        parts.push(Part::ToolCall(call));
                    }
                    (Speaker::Assistant, parts)
                }
                Role::Tool | Role::Function => {
                    let call_id = message
                        .tool_call_id
                        .clone()
                        .or_else(|| message.name.clone())
                        .unwrap_or_default();
                    let name = tool_names
                        .get(&call_id)
                        .cloned()
                        .or_else(|| message.name.clone());
                    let result = ToolResult {
                        call_id,
                        name,
                        content: message.content.text(),
                    };
                    (Speaker::User, vec![Part::ToolResult(result)])
                }
            };
            match conversation.turns.last_mut() {
                Some(last) if last.speaker == speaker => last.parts.extend(parts),
                _ => conversation.turns.push(Turn { speaker, parts }),
            }
        }
        Ok(conversation)
    }
}

/// The parts of a message's `content`.
fn content_parts(content: &Content, param: &str) -> Result<Vec<Part>, GatewayError> {
    match content {
        Content::Text(text) => Ok(vec![Part::Text(text.clone())]),
        Content::None => Ok(Vec::new()),
        Content::Parts(parts) => parts
            .iter()
            .enumerate()
            .map(|(index, part)| content_part(part, &format!("{param}[{index}]")))
            .collect(),
    }
}

/// One OpenAI content part (validation checked its `type` already).
fn content_part(part: &Value, param: &str) -> Result<Part, GatewayError> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    match part["type"].as_str().unwrap_or_default() {
        "text" | "refusal" => {
            let field = if part["type"] == "text" {
                "text"
            } else {
                "refusal"
            };
            Ok(Part::Text(text(&part[field]).unwrap_or_default()))
        }
        "image_url" => {
            let url = text(&part["image_url"]["url"])
                .or_else(|| text(&part["image_url"]))
                .ok_or_else(|| {
                    GatewayError::invalid(format!("{param}.image_url.url"), "an image needs a url")
                })?;
            let source = media_source(&url, &format!("{param}.image_url.url"))?;
            Ok(Part::Image(Media {
                source,
                filename: None,
                param: param.to_owned(),
            }))
        }
        "file" => {
            let file = &part["file"];
            let source = match (text(&file["file_data"]), text(&file["file_id"])) {
                (Some(data), _) => media_source(&data, &format!("{param}.file.file_data"))?,
                (None, Some(id)) => MediaSource::FileId(id),
                (None, None) => {
                    return Err(GatewayError::invalid(
                        format!("{param}.file"),
                        "a file part needs file_data or file_id",
                    ))
                }
            };
            Ok(Part::File(Media {
                source,
                filename: text(&file["filename"]),
                param: param.to_owned(),
            }))
        }
        "input_audio" => {
            let audio = &part["input_audio"];
            match (text(&audio["data"]), text(&audio["format"])) {
                (Some(data), Some(format)) => Ok(Part::Audio(Media {
                    source: MediaSource::Base64 {
                        mime: format!("audio/{}", format.to_ascii_lowercase()),
                        data,
                    },
                    filename: None,
                    param: param.to_owned(),
                })),
                _ => Err(GatewayError::invalid(
                    format!("{param}.input_audio"),
                    "input_audio needs data and format",
                )),
            }
        }
        other => Err(GatewayError::invalid(
            format!("{param}.type"),
            format!("content part type {other:?} is not supported"),
        )),
    }
}

/// A `data:` URL's media type and base64 bytes, or an `https://` URL.
fn media_source(url: &str, param: &str) -> Result<MediaSource, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').ok_or_else(|| {
            GatewayError::invalid(param, "a data URL needs a comma before its data")
        })?;
        let mime = header.strip_suffix(";base64").ok_or_else(|| {
            GatewayError::invalid(param, "a data URL must be base64 (data:<type>;base64,...)")
        })?;
        if mime.is_empty() || data.is_empty() {
            return Err(GatewayError::invalid(
                param,
                "a data URL needs a media type and data",
            ));
        }
        return Ok(MediaSource::Base64 {
            mime: mime.to_ascii_lowercase(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(MediaSource::Url(url.to_owned()));
    }
    Err(GatewayError::invalid(
        param,
        "the url must be an https:// URL or a data: URL",
    ))
}

/// An assistant message's `tool_calls`.
fn tool_calls(message: &Message, param: &str) -> Result<Vec<ToolCall>, GatewayError> {
    let Some(Value::Array(calls)) = &message.tool_calls else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let function = &call["function"];
            let field = |name: &str| function[name].as_str().map(str::to_owned);
            match (call["id"].as_str(), field("name")) {
                (Some(id), Some(name)) => Ok(ToolCall {
                    id: id.to_owned(),
                    name,
                    arguments: field("arguments").unwrap_or_else(|| "{}".to_owned()),
                }),
                _ => Err(GatewayError::invalid(
                    format!("{param}[{index}]"),
                    "a tool call needs an id and a function name",
                )),
            }
        })
        .collect()
}

/// The reasoning an assistant message carries back (`reasoning_details`, as the gateway
/// returned them).
fn reasoning_parts(message: &Message, param: &str) -> Result<Vec<Part>, GatewayError> {
    let Some(Value::Array(details)) = &message.reasoning_details else {
        return Ok(Vec::new());
    };
    details
        .iter()
        .enumerate()
        .map(|(index, detail)| {
            let text = |name: &str| detail[name].as_str().map(str::to_owned);
            let format = text("format").unwrap_or_default();
            match detail["type"].as_str() {
                Some("reasoning.text") => Ok(Part::Reasoning(Reasoning {
                    text: text("text").unwrap_or_default(),
                    signature: text("signature"),
                    encrypted: None,
                    call_id: text("id"),
                    format,
                })),
                Some("reasoning.encrypted") => Ok(Part::Reasoning(Reasoning {
                    text: String::new(),
                    signature: None,
                    encrypted: text("data"),
                    call_id: text("id"),
                    format,
                })),
                _ => Err(GatewayError::invalid(
                    format!("{param}[{index}].type"),
                    "reasoning details are reasoning.text or reasoning.encrypted",
                )),
            }
        })
        .collect()
}

/// `tools` (and the legacy `functions`).
fn tools(request: &ChatRequest) -> Result<Vec<Tool>, GatewayError> {
    let mut found = Vec::new();
    for (field, nested) in [("tools", true), ("functions", false)] {
        let Some(value) = request.passthrough.get(field) else {
            continue;
        };
        let Value::Array(items) = value else {
            return Err(GatewayError::invalid(
                field,
                format!("{field} must be an array"),
            ));
        };
        for (index, item) in items.iter().enumerate() {
            let param = format!("{field}[{index}]");
            let function = if nested {
                if item["type"].as_str().is_some_and(|kind| kind != "function") {
                    return Err(GatewayError::invalid(
                        format!("{param}.type"),
                        "only function tools can be translated for this model's provider",
                    ));
                }
                &item["function"]
            } else {
                item
            };
            let Some(name) = function["name"].as_str() else {
                return Err(GatewayError::invalid(
                    format!("{param}.name"),
                    "a tool needs a name",
                ));
            };
            let parameters = match &function["parameters"] {
                Value::Null => serde_json::json!({"type": "object", "properties": {}}),
                Value::Object(_) => function["parameters"].clone(),
                _ => {
                    return Err(GatewayError::invalid(
                        format!("{param}.parameters"),
                        "a tool's parameters must be a JSON Schema object",
                    ))
                }
            };
            found.push(Tool {
                name: name.to_owned(),
                description: function["description"].as_str().map(str::to_owned),
                parameters,
            });
        }
    }
    Ok(found)
}

/// `tool_choice` (and the legacy `function_call`).
fn tool_choice(request: &ChatRequest) -> Result<Option<ToolChoice>, GatewayError> {
    for field in ["tool_choice", "function_call"] {
        let Some(value) = request.passthrough.get(field) else {
            continue;
        };
        let named = value["function"]["name"]
            .as_str()
            .or_else(|| value["name"].as_str());
        return match (value.as_str(), named) {
            (Some("auto"), _) => Ok(Some(ToolChoice::Auto)),
            (Some("none"), _) => Ok(Some(ToolChoice::None)),
            (Some("required"), _) => Ok(Some(ToolChoice::Required)),
            (None, Some(name)) => Ok(Some(ToolChoice::Function(name.to_owned()))),
            _ => Err(GatewayError::invalid(
                field,
                format!("{field} must be auto, none, required or a named function"),
            )),
        };
    }
    Ok(None)
}

/// `response_format`.
fn output_format(request: &ChatRequest) -> Result<OutputFormat, GatewayError> {
    let Some(format) = request.passthrough.get("response_format") else {
        return Ok(OutputFormat::Text);
    };
    match format["type"].as_str() {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_object") => Ok(OutputFormat::JsonObject),
        Some("json_schema") => {
            let spec = &format["json_schema"];
            match &spec["schema"] {
                Value::Object(_) => Ok(OutputFormat::JsonSchema {
                    name: spec["name"].as_str().unwrap_or("answer").to_owned(),
                    schema: spec["schema"].clone(),
                    strict: spec["strict"].as_bool().unwrap_or(false),
                }),
                _ => Err(GatewayError::invalid(
                    "response_format.json_schema.schema",
                    "a json_schema response format needs a schema object",
                )),
            }
        }
        _ => Err(GatewayError::invalid(
            "response_format.type",
            "response_format.type must be text, json_object or json_schema",
        )),
    }
}

/// `reasoning_effort`.
fn reasoning_effort(request: &ChatRequest) -> Result<Option<ReasoningEffort>, GatewayError> {
    let Some(value) = request.passthrough.get("reasoning_effort") else {
        return Ok(None);
    };
    let effort = ReasoningEffort::ALL
        .into_iter()
        .find(|effort| value.as_str() == Some(effort.name()));
    match effort {
        Some(effort) => Ok(Some(effort)),
        None => Err(GatewayError::invalid(
            "reasoning_effort",
            "reasoning_effort must be none, minimal, low, medium or high",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::guard::validate::parse_for_tests;

    fn conversation(body: Value) -> Result<Conversation, GatewayError> {
        Conversation::of(&parse_for_tests(&body.to_string()))
    }

    #[test]
    fn turns_alternate_with_instructions_apart_and_tool_results_in_the_users_turn() {
        let conversation = conversation(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "developer", "content": "use metric"},
            {"role": "user", "content": [{"type": "text", "text": "in Paris"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            {"role": "tool", "tool_call_id": "c2", "content": "noon"},
            {"role": "user", "content": "thanks"}]}))
        .unwrap();
        assert_eq!(conversation.instructions, ["be brief", "use metric"]);
        let speakers: Vec<Speaker> = conversation.turns.iter().map(|t| t.speaker).collect();
        assert_eq!(speakers, [Speaker::User, Speaker::Assistant, Speaker::User]);
        assert_eq!(
            conversation.turns[0].parts,
            [Part::Text("weather?".into()), Part::Text("in Paris".into())]
        );
        let Part::ToolCall(call) = &conversation.turns[1].parts[0] else {
            panic!("a call first: {:?}", conversation.turns[1]);
        };
        assert_eq!((call.id.as_str(), call.name.as_str()), ("c1", "weather"));
        assert_eq!(
            conversation.turns[2].parts,
            [
                Part::ToolResult(ToolResult {
                    call_id: "c1".into(),
                    name: Some("weather".into()),
                    content: "18C".into()
                }),
                Part::ToolResult(ToolResult {
                    call_id: "c2".into(),
                    name: Some("time".into()),
                    content: "noon".into()
                }),
                Part::Text("thanks".into()),
            ]
        );
    }

    #[test]
    fn media_parts_name_their_place_when_malformed() {
        let parts = |part: Value| {
            conversation(json!({"model": "m", "messages": [
                {"role": "user", "content": [{"type": "text", "text": "look"}, part]}]}))
        };
        let image = parts(
            json!({"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBOR"}}),
        )
        .unwrap();
        assert_eq!(
            image.turns[0].parts[1],
            Part::Image(Media {
                source: MediaSource::Base64 {
                    mime: "image/png".into(),
                    data: "iVBOR".into()
                },
                filename: None,
                param: "messages[0].content[1]".into(),
            })
        );
        let url = parts(json!({"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}))
            .unwrap();
        assert!(
            matches!(&url.turns[0].parts[1], Part::Image(Media { source: MediaSource::Url(u), .. }) if u == "https://x.test/a.jpg")
        );
        let file = parts(json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}}))
            .unwrap();
        assert!(
            matches!(&file.turns[0].parts[1], Part::File(Media { filename: Some(name), .. }) if name == "a.pdf")
        );
        for (bad, param) in [
            (
                json!({"type": "image_url", "image_url": {"url": "data:image/png,raw"}}),
                "messages[0].content[1].image_url.url",
            ),
            (
                json!({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}),
                "messages[0].content[1].image_url.url",
            ),
            (
                json!({"type": "image_url", "image_url": {}}),
                "messages[0].content[1].image_url.url",
            ),
            (
                json!({"type": "file", "file": {"filename": "a"}}),
                "messages[0].content[1].file",
            ),
            (
                json!({"type": "input_audio", "input_audio": {"data": "AAAA"}}),
                "messages[0].content[1].input_audio",
            ),
        ] {
            let error = parts(bad.clone()).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{bad}");
        }
    }

    #[test]
    fn tools_choices_formats_and_efforts_are_read_or_refused_by_name() {
        let read = conversation(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": "does f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "strict": true, "schema": {"type": "object"}}},
            "reasoning_effort": "low"}))
        .unwrap();
        assert_eq!(read.tools[0].name, "f");
        assert_eq!(
            read.tools[0].parameters,
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(read.tool_choice, Some(ToolChoice::Function("f".into())));
        assert_eq!(read.parallel_tool_calls, Some(false));
        assert_eq!(
            read.output,
            OutputFormat::JsonSchema {
                name: "out".into(),
                schema: json!({"type": "object"}),
                strict: true
            }
        );
        assert_eq!(read.reasoning_effort, Some(ReasoningEffort::Low));
        let legacy = conversation(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "functions": [{"name": "g", "parameters": {"type": "object"}}], "function_call": {"name": "g"}}))
        .unwrap();
        assert_eq!(legacy.tools[0].name, "g");
        assert_eq!(legacy.tool_choice, Some(ToolChoice::Function("g".into())));
        for (extra, param) in [
            (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
            (
                json!({"tools": [{"type": "function", "function": {}}]}),
                "tools[0].name",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}),
                "tools[0].parameters",
            ),
            (json!({"tool_choice": "sometimes"}), "tool_choice"),
            (
                json!({"response_format": {"type": "yaml"}}),
                "response_format.type",
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
                "response_format.json_schema.schema",
            ),
            (json!({"reasoning_effort": "max"}), "reasoning_effort"),
        ] {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            assert_eq!(
                conversation(body).unwrap_err().param.as_deref(),
                Some(param),
                "{extra}"
            );
        }
    }

    #[test]
    fn reasoning_sent_back_comes_before_the_answer_it_led_to() {
        let conversation = conversation(json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "reasoning_content": "said as text, ignored",
             "reasoning_details": [
                {"type": "reasoning.text", "text": "think", "signature": "sig", "format": "anthropic"},
                {"type": "reasoning.encrypted", "data": "opaque", "format": "gemini", "id": "c1"}]},
            {"role": "user", "content": "go on"}]}))
        .unwrap();
        assert_eq!(
            conversation.turns[1].parts,
            [
                Part::Reasoning(Reasoning {
                    text: "think".into(),
                    signature: Some("sig".into()),
                    encrypted: None,
                    call_id: None,
                    format: "anthropic".into()
                }),
                Part::Reasoning(Reasoning {
                    text: String::new(),
                    signature: None,
                    encrypted: Some("opaque".into()),
                    call_id: Some("c1".into()),
                    format: "gemini".into()
                }),
                Part::Text("hello".into()),
            ]
        );
        let bad = Conversation::of(&parse_for_tests(
            &json!({"model": "m", "messages": [{"role": "assistant", "content": "x", "reasoning_details": [{"type": "thought"}]}]}).to_string(),
        ));
        assert_eq!(
            bad.unwrap_err().param.as_deref(),
            Some("messages[0].reasoning_details[0].type")
        );
    }
}
