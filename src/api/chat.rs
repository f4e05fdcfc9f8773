//! OpenAI Chat Completions wire types: the validated request and the response shapes.
//!
//! Requests arrive as untyped JSON and become a [`ChatRequest`] only through
//! `guard::validate`, which names the offending field when something is wrong. Responses
//! ([`ChatCompletion`], [`ChatCompletionChunk`]) are both parsed from OpenAI-compatible
//! upstreams and written to clients, so they derive both directions and tolerate fields
//! that upstreams leave out.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire_name::{serde_by_wire_name, WireName};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Operator instructions.
    System,
    /// Operator instructions (the newer OpenAI name for `system` on reasoning models).
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// A legacy function result.
    Function,
}

impl WireName for Role {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("system", Role::System),
        ("developer", Role::Developer),
        ("user", Role::User),
        ("assistant", Role::Assistant),
        ("tool", Role::Tool),
        ("function", Role::Function),
    ];
}

serde_by_wire_name!(Role);

/// A message's content: plain text, typed parts (text, images, audio, files) or nothing
/// (an assistant turn that only calls tools).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// `"content": "..."`.
    Text(String),
    /// `"content": [{"type": "text", ...}, {"type": "image_url", ...}]`, kept verbatim.
    Parts(Vec<Value>),
    /// `"content": null` or absent.
    None,
}

/// Reads what [`Content`] writes (a string, an array or null) by the JSON type at hand:
/// serde's derived untagged form would buffer the value and try each variant in turn,
/// which costs tens of KB of wasm.
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, an array of parts or null")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content::None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content::None)
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

impl Content {
    /// The text a model reads from this content: the string, or the text parts joined.
    pub fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Content::None => String::new(),
        }
    }
}

/// One validated message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The author.
    pub role: Role,
    /// What was said.
    pub content: Content,
    /// Optional participant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For `tool` messages: which call this answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For `assistant` messages: the tool calls it made, kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    /// For `assistant` messages: the reasoning the gateway returned with it (see
    /// [`AssistantMessage::reasoning_details`]), sent back so the provider can continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Value>,
}

/// A validated chat completion request. It serializes (in its own shape, not the wire
/// format) so that a queued job can keep it exactly as it was validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model alias the client asked for.
    pub model: String,
    /// The conversation, at least one message.
    pub messages: Vec<Message>,
    /// Whether the client wants SSE.
    pub stream: bool,
    /// `stream_options.include_usage`: send a final usage chunk.
    pub include_usage: bool,
    /// Output token cap, from `max_completion_tokens` or `max_tokens`.
    pub max_tokens: Option<u32>,
    /// The client named the cap `max_completion_tokens` (required by reasoning models)
    /// rather than the older `max_tokens`; upstreams get the name the client used.
    pub max_tokens_is_completion: bool,
    /// Sampling temperature, 0..=2.
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0..=1.
    pub top_p: Option<f64>,
    /// Number of choices.
    pub n: Option<u32>,
    /// Stop sequences (at most 4).
    pub stop: Vec<String>,
    /// Presence penalty, -2..=2.
    pub presence_penalty: Option<f64>,
    /// Frequency penalty, -2..=2.
    pub frequency_penalty: Option<f64>,
    /// Other known OpenAI parameters (tools, response_format, seed, ...), forwarded verbatim
    /// to OpenAI-compatible upstreams.
    pub passthrough: Map<String, Value>,
}

impl ChatRequest {
    /// The wire name of the output token cap, as the client sent it.
    pub fn max_tokens_param(&self) -> &'static str {
        if self.max_tokens_is_completion {
            "max_completion_tokens"
        } else {
            "max_tokens"
        }
    }

    /// A rough prompt size in tokens, for estimates only (admission, routing): 4 bytes per
    /// token of the messages' text, of the tool calls in the history and of the tool,
    /// function and output-format definitions, plus [`NON_TEXT_PART_TOKENS`] per image,
    /// audio or file part.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let json_len = |value: &Value| serde_json::to_string(value).map_or(0, |text| text.len());
        let mut bytes = 0;
        let mut non_text_parts = 0;
        for message in &self.messages {
            bytes += 4;
            match &message.content {
                Content::Text(text) => bytes += text.len(),
                Content::Parts(parts) => {
                    for part in parts {
                        match part.get("text").or_else(|| part.get("refusal")) {
                            Some(Value::String(text)) => bytes += text.len(),
                            _ => non_text_parts += 1,
                        }
                    }
                }
                Content::None => {}
            }
            bytes += message.tool_calls.as_ref().map_or(0, json_len);
        }
        for definitions in ["tools", "functions", "response_format"] {
            bytes += self.passthrough.get(definitions).map_or(0, json_len);
        }
        estimate_tokens(bytes) + non_text_parts * NON_TEXT_PART_TOKENS
    }

    /// Calls `f` on the text of every message: plain contents and the `text` of text parts.
    pub fn for_each_text(&mut self, mut f: impl FnMut(&mut String)) {
        for message in &mut self.messages {
            match &mut message.content {
                Content::Text(text) => f(text),
                Content::Parts(parts) => {
                    for part in parts {
                        if let Some(Value::String(text)) = part.get_mut("text") {
                            f(text);
                        }
                    }
                }
                Content::None => {}
            }
        }
    }

    /// Calls `f` on the arguments (JSON text) of every tool call in the history.
    pub fn for_each_tool_arguments(&mut self, mut f: impl FnMut(&mut String)) {
        for message in &mut self.messages {
            let calls = message.tool_calls.as_mut().and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
                    f(arguments);
                }
            }
        }
    }

    /// Whether any message carries an image, audio or a file.
    pub fn has_non_text_parts(&self) -> bool {
        self.messages.iter().any(|message| match &message.content {
            Content::Parts(parts) => parts
                .iter()
                .any(|part| !matches!(part["type"].as_str(), Some("text" | "refusal"))),
            _ => false,
        })
    }

    /// The text of the last user message, if any.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .map(|message| message.content.text())
    }
}

/// What an image, audio or file part counts for in a prompt estimate, before the provider
/// reports the real figure: about one image (OpenAI counts a 1024×1024 image at high
/// detail as 765 tokens, Anthropic at most about 1,600), and a floor for audio and files.
pub const NON_TEXT_PART_TOKENS: u64 = 1_000;

/// Tokens for `bytes` bytes of text under the common 4-bytes-per-token rule of thumb.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Token counts of one completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// Provider breakdown (cached tokens, ...), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<Value>,
    /// Provider breakdown (reasoning tokens, ...), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<Value>,
}

impl Usage {
    /// Usage with the total filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Usage::default()
        }
    }

    /// `prompt_tokens_details.cached_tokens`: the part of the prompt read from a cache.
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .as_ref()
            .and_then(|details| details.get("cached_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// The assistant's message in a non-streaming answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    #[serde(default = "assistant_role")]
    pub role: String,
    /// The text, or null when the model only called tools.
    #[serde(default)]
    pub content: Option<String>,
    /// A refusal message, when the model refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The model's reasoning, where an OpenAI-compatible server returns it
    /// (`reasoning_content`, as DeepSeek and vLLM name it, or `reasoning`).
    #[serde(default, alias = "reasoning", skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The reasoning as the provider must get it back on the next turn: an array of
    /// `{"type": "reasoning.text", "text", "signature", "format"}` (Anthropic's signed
    /// thinking) and `{"type": "reasoning.encrypted", "data", "format", "id"?}` (Anthropic's
    /// redacted thinking, Gemini's thought signatures, `id` naming the tool call it
    /// belongs to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Value>,
    /// Tool calls, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
}

impl AssistantMessage {
    /// Bytes of text the model wrote: content, refusal, reasoning and tool calls (names
    /// and arguments), for usage estimates.
    pub fn text_len(&self) -> usize {
        let texts = [&self.content, &self.refusal, &self.reasoning_content];
        text_len(texts, self.tool_calls.as_ref())
    }
}

/// Bytes of `texts` and of the names and arguments in `tool_calls` (whole calls or
/// fragments).
fn text_len(texts: [&Option<String>; 3], tool_calls: Option<&Value>) -> usize {
    let field = |call: &Value, name: &str| call["function"][name].as_str().map_or(0, str::len);
    let calls: usize = tool_calls
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|call| field(call, "name") + field(call, "arguments"))
        .sum();
    texts.into_iter().flatten().map(String::len).sum::<usize>() + calls
}

fn assistant_role() -> String {
    "assistant".to_owned()
}

/// One choice of a non-streaming answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position among the `n` choices.
    #[serde(default)]
    pub index: u32,
    /// The answer.
    #[serde(default)]
    pub message: AssistantMessage,
    /// Why generation stopped: `stop`, `length`, `tool_calls`, `content_filter`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

/// A complete, non-streaming chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`, assigned by the gateway.
    #[serde(default)]
    pub id: String,
    /// Always `chat.completion`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The answers.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token counts, when the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend configuration fingerprint, when the provider sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

/// The incremental part of a streamed choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Sent once, on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The next piece of text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The next piece of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The next piece of the model's reasoning (see [`AssistantMessage::reasoning_content`]).
    #[serde(default, alias = "reasoning", skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Whole entries of [`AssistantMessage::reasoning_details`], each sent once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Value>,
    /// Tool call fragments, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
}

impl Delta {
    /// Bytes of text this piece adds (see [`AssistantMessage::text_len`]).
    pub fn text_len(&self) -> usize {
        let texts = [&self.content, &self.refusal, &self.reasoning_content];
        text_len(texts, self.tool_calls.as_ref())
    }
}

/// One choice of one streamed chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Position among the `n` choices.
    #[serde(default)]
    pub index: u32,
    /// What this chunk adds.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

/// One `chat.completion.chunk` SSE event, as written to clients. It borrows everything, so
/// encoding a chunk copies no strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionChunk<'a> {
    /// Same id on every chunk of a stream.
    pub id: &'a str,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answers.
    pub model: &'a str,
    /// The deltas; empty on the final usage chunk.
    pub choices: &'a [ChunkChoice],
    /// Present only on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<&'a Usage>,
}

#[cfg(test)]
mod tests {
    use crate::guard::validate::parse_for_tests;

    #[test]
    fn roles_read_and_write_their_names() {
        use super::Role::*;
        let all = [System, Developer, User, Assistant, Tool, Function];
        crate::wire_name::tests::every_name_reads_back(&all);
    }

    #[test]
    fn prompt_estimates_count_tools_tool_calls_and_non_text_parts() {
        let plain = parse_for_tests(
            r#"{"model": "m", "messages": [{"role": "user", "content": "12345678"}]}"#,
        );
        assert_eq!(plain.estimated_prompt_tokens(), 3, "(4 + 8) / 4");
        let rich = parse_for_tests(
            r#"{"model": "m", "messages": [
                {"role": "user", "content": [{"type": "text", "text": "12345678"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
              "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}"#,
        );
        let estimate = rich.estimated_prompt_tokens();
        assert!(
            estimate >= 2 * super::NON_TEXT_PART_TOKENS + 3 + 20,
            "{estimate}"
        );
        assert!(
            estimate < 2 * super::NON_TEXT_PART_TOKENS + 60,
            "{estimate}"
        );
    }
}
