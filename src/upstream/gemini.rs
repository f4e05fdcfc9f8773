//! Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`): the canonical
//! conversation becomes `contents` of typed parts, answers and stream chunks come back as
//! OpenAI shapes.
//!
//! - `system` and `developer` messages become `systemInstruction`; images, PDFs and audio
//!   become `inlineData` (base64) or `fileData` (a URL); tools become
//!   `functionDeclarations` (their JSON Schema as `parametersJsonSchema`), the history's
//!   calls `functionCall` parts and the tool messages `functionResponse` parts in the
//!   user's turn; `tool_choice` is `toolConfig`.
//! - `response_format` is `responseMimeType: application/json`, with the schema as
//!   `responseJsonSchema` (full JSON Schema, as OpenAI's is; `responseSchema` takes only
//!   an OpenAPI subset without `additionalProperties` or `$ref`).
//! - `reasoning_effort` is a `thinkingConfig` budget; thought summaries come back as
//!   `reasoning_content`. Gemini signs its parts (`thoughtSignature`): each signature
//!   comes back in `reasoning_details` (naming the tool call it belongs to), and goes back
//!   on the same part when the client sends the assistant message again; calls another
//!   provider made go with the signature Google documents for them.
//! - Gemini names no tool calls: their ids are made from the answer's id.
//!
//! Safety blocks become `finish_reason: "content_filter"`. Gemini's stream has no
//! `[DONE]`: the chunk that carries a `finishReason` ends the answer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::openai::scrub_credentials;
use super::sse::SseEvent;
use super::translate::{
    map_error_message, non_empty, non_empty_array, push_turn, refuse_params, text_beside,
    tool_arguments, tool_result_object, unsupported,
};
use super::{unreachable, HttpCall, HttpProvider, StreamDecoder, StreamEvent};
use crate::api::chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta, Usage,
};
use crate::api::embeddings::{EmbeddingInput, EmbeddingRequest, Embeddings};
use crate::config::source::Secret;
use crate::conversation::{
    Conversation, Media, MediaSource, OutputFormat, Part, Reasoning, ReasoningEffort, Speaker,
    ToolChoice,
};
use crate::error::GatewayError;

/// The `format` of the reasoning details this provider makes and takes back.
const FORMAT: &str = "gemini";

/// Parameters Gemini has no equivalent for.
const REFUSED: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
];

/// The signature Google documents for function calls that Gemini did not make (a
/// conversation that began on another provider): Gemini 3 refuses unsigned calls.
const UNSIGNED_CALL: &str = "skip_thought_signature_validator";

/// Media types by the file extension of a URL: Gemini needs the type of a `fileData` part.
const URL_TYPES: &[(&str, &str)] = &[
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"),
    (".webp", "image/webp"),
    (".heic", "image/heic"),
    (".gif", "image/gif"),
    (".pdf", "application/pdf"),
    (".txt", "text/plain"),
];

/// A Gemini upstream at `base_url` (e.g. `https://generativelanguage.googleapis.com/v1beta`).
pub struct Gemini<'a> {
    base_url: &'a str,
    api_key: &'a Secret,
}

impl<'a> Gemini<'a> {
    /// A provider for `base_url` using `api_key`.
    pub fn new(base_url: &'a str, api_key: &'a Secret) -> Self {
        Gemini { base_url, api_key }
    }
}

/// The Gemini request body for `request`, or a 400 for what it cannot express.
pub fn translate_request(request: &ChatRequest) -> Result<Value, GatewayError> {
    refuse_params(request, REFUSED)?;
    let conversation = Conversation::of(request)?;
    if conversation.parallel_tool_calls == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            "parallel_tool_calls: false",
        ));
    }
    let mut config = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(name.to_owned(), value);
        }
    };
    put("maxOutputTokens", request.max_tokens.map(Value::from));
    put("temperature", request.temperature.map(Value::from));
    put("topP", request.top_p.map(Value::from));
    put("candidateCount", request.n.map(Value::from));
    put("presencePenalty", request.presence_penalty.map(Value::from));
    put(
        "frequencyPenalty",
        request.frequency_penalty.map(Value::from),
    );
    put("seed", request.passthrough.get("seed").cloned());
    put(
        "stopSequences",
        (!request.stop.is_empty()).then(|| json!(request.stop)),
    );
    match &conversation.output {
        OutputFormat::Text => {}
        OutputFormat::JsonObject => put("responseMimeType", Some(json!("application/json"))),
        OutputFormat::JsonSchema { schema, .. } => {
            put("responseMimeType", Some(json!("application/json")));
            put("responseJsonSchema", Some(schema.clone()));
        }
    }
    put(
        "thinkingConfig",
        conversation.reasoning_effort.map(|effort| match effort {
            ReasoningEffort::None => json!({"thinkingBudget": 0}),
            effort => json!({"thinkingBudget": effort.budget_tokens(), "includeThoughts": true}),
        }),
    );
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents(&conversation)?));
    if !conversation.instructions.is_empty() {
        let parts: Vec<Value> = conversation
            .instructions
            .iter()
            .map(|text| json!({"text": text}))
            .collect();
        body.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    if !conversation.tools.is_empty() {
        let declarations: Vec<Value> = conversation
            .tools
            .iter()
            .map(|tool| {
                let mut declaration =
                    json!({"name": tool.name, "parametersJsonSchema": tool.parameters});
                if let Some(description) = &tool.description {
                    declaration["description"] = json!(description);
                }
                declaration
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = &conversation.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

/// The turns as Gemini `contents` (turns left empty are dropped, and the roles still
/// alternate).
fn contents(conversation: &Conversation) -> Result<Vec<Value>, GatewayError> {
    let mut contents: Vec<Value> = Vec::new();
    for turn in &conversation.turns {
        let role = match turn.speaker {
            Speaker::User => "user",
            Speaker::Assistant => "model",
        };
        push_turn(&mut contents, role, "parts", parts(&turn.parts)?);
    }
    Ok(contents)
}

/// One turn's parts as Gemini parts, each signature back on the part it came with: a
/// call's on its `functionCall`, the text's on the first text part.
fn parts(turn: &[Part]) -> Result<Vec<Value>, GatewayError> {
    let signatures: Vec<&Reasoning> = turn
        .iter()
        .filter_map(|part| match part {
            Part::Reasoning(reasoning) if reasoning.format == FORMAT => Some(reasoning),
            _ => None,
        })
        .filter(|reasoning| reasoning.encrypted.is_some())
        .collect();
    let signature_of = |call_id: Option<&str>| {
        signatures
            .iter()
            .find(|reasoning| reasoning.call_id.as_deref() == call_id)
            .and_then(|reasoning| reasoning.encrypted.clone())
    };
    let mut text_signature = signature_of(None);
    let mut parts = Vec::with_capacity(turn.len());
    for part in turn {
        let value = match part {
            Part::Text(text) if text.is_empty() => continue,
            Part::Text(text) => {
                let mut value = json!({"text": text});
                if let Some(signature) = text_signature.take() {
                    value["thoughtSignature"] = json!(signature);
                }
                value
            }
            Part::Image(media) | Part::File(media) | Part::Audio(media) => media_part(media)?,
            Part::ToolCall(call) => {
                let signature = signature_of(Some(&call.id));
                json!({
                    "functionCall": {"name": call.name, "args": tool_arguments(call)?},
                    "thoughtSignature": signature.as_deref().unwrap_or(UNSIGNED_CALL),
                })
            }
            Part::ToolResult(result) => {
                let Some(name) = &result.name else {
                    return Err(GatewayError::invalid(
                        "messages",
                        format!(
                            "the tool message for call {:?} answers no tool call of the conversation, and this model's provider needs the tool's name",
                            result.call_id.chars().take(64).collect::<String>()
                        ),
                    ));
                };
                json!({"functionResponse": {"name": name, "response": tool_result_object(&result.content)}})
            }
            // Thought summaries are not sent back; signatures go on their parts above.
            Part::Reasoning(_) => continue,
        };
        parts.push(value);
    }
    Ok(parts)
}

/// An image, a file or audio as `inlineData` or `fileData`.
fn media_part(media: &Media) -> Result<Value, GatewayError> {
    match &media.source {
        MediaSource::Base64 { mime, data } => {
            Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
        }
        MediaSource::Url(url) => {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            let path = path.to_ascii_lowercase();
            let mime = URL_TYPES
                .iter()
                .find(|(extension, _)| path.ends_with(extension))
                .map(|(_, mime)| *mime)
                .ok_or_else(|| {
                    GatewayError::invalid(
                        &media.param,
                        "this model's provider needs the media type of a URL: give the file as a data: URL, or a URL whose path ends in .png, .jpg, .webp, .heic, .gif, .pdf or .txt",
                    )
                })?;
            Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
        }
        MediaSource::FileId(_) => Err(unsupported(&media.param, "OpenAI file ids")),
    }
}

/// Gemini's `finishReason` as an OpenAI `finish_reason`.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    }
}

/// One `GenerateContentResponse` (a whole answer, or one stream chunk).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    /// An error reported inside a stream (after its 200 status).
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: u32,
}

#[derive(Deserialize, Default)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<ResponsePart>,
}

/// One part of an answer: text, a thought summary or a function call, maybe signed.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResponsePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Deserialize, Default)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

impl Response {
    /// Whether the prompt itself was blocked (no candidates, a block reason).
    fn blocked(&self) -> bool {
        self.candidates.is_empty()
            && self
                .prompt_feedback
                .as_ref()
                .is_some_and(|feedback| feedback.block_reason.is_some())
    }

    /// OpenAI usage: thoughts are output (as OpenAI counts reasoning), the prompt counts
    /// what tools added to it, and the cached part of the prompt is `cached_tokens`.
    fn usage(&self) -> Option<Usage> {
        let counts = self.usage_metadata?;
        let mut usage = Usage::new(
            counts.prompt_token_count + counts.tool_use_prompt_token_count,
            counts.candidates_token_count + counts.thoughts_token_count,
        );
        if counts.cached_content_token_count > 0 {
            usage.prompt_tokens_details =
                Some(json!({"cached_tokens": counts.cached_content_token_count}));
        }
        if counts.thoughts_token_count > 0 {
            usage.completion_tokens_details =
                Some(json!({"reasoning_tokens": counts.thoughts_token_count}));
        }
        Some(usage)
    }
}

/// What one candidate's parts add to its answer: text, thoughts, tool calls (numbered
/// from `calls_before`) and signatures.
#[derive(Default)]
struct Pieces {
    text: String,
    reasoning: String,
    calls: Vec<Value>,
    details: Vec<Value>,
}

impl Pieces {
    fn of(parts: &[ResponsePart], ids: &CallIds, calls_before: usize) -> Pieces {
        let mut pieces = Pieces::default();
        for part in parts {
            let mut call_id = None;
            if let Some(call) = &part.function_call {
                let index = calls_before + pieces.calls.len();
                let id = call.id.clone().unwrap_or_else(|| ids.id(index));
                let arguments = call
                    .args
                    .as_ref()
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                pieces.calls.push(json!({
                    "index": index,
                    "id": id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": arguments},
                }));
                call_id = Some(id);
            } else if let Some(text) = &part.text {
                match part.thought {
                    true => pieces.reasoning.push_str(text),
                    false => pieces.text.push_str(text),
                }
            }
            if let Some(signature) = &part.thought_signature {
                let mut detail =
                    json!({"type": "reasoning.encrypted", "data": signature, "format": FORMAT});
                if let Some(id) = call_id {
                    detail["id"] = json!(id);
                }
                pieces.details.push(detail);
            }
        }
        pieces
    }
}

/// Makes the ids of one answer's tool calls: `call_<24 characters of the answer's id>_<n>`,
/// unique across a conversation and within the 40 characters OpenAI allows an id.
struct CallIds(String);

impl CallIds {
    fn new(answer_id: &str) -> CallIds {
        let stem = answer_id.strip_prefix("chatcmpl-").unwrap_or(answer_id);
        CallIds(
            stem.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(24)
                .collect(),
        )
    }

    fn id(&self, index: usize) -> String {
        format!("call_{}_{index}", self.0)
    }
}

/// A candidate's `finish_reason`: `tool_calls` when it called a tool.
fn candidate_finish(reason: &str, called: bool) -> &'static str {
    match (finish_reason(reason), called) {
        ("stop", true) => "tool_calls",
        (reason, _) => reason,
    }
}

impl HttpProvider for Gemini<'_> {
    fn build_call(&self, request: &ChatRequest, model: &str) -> Result<HttpCall, GatewayError> {
        let body = translate_request(request)?;
        let method = if request.stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        Ok(HttpCall {
            url: format!("{}/models/{model}:{method}", self.base_url),
            headers: vec![
                ("x-goog-api-key", self.api_key.expose().to_owned()),
                ("content-type", "application/json".to_owned()),
            ],
            body: body.to_string(),
        })
    }

    fn parse_completion(
        &self,
        body: &[u8],
        answer_id: &str,
    ) -> Result<ChatCompletion, GatewayError> {
        let response: Response = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("its answer is not a Gemini response ({err})")))?;
        let ids = CallIds::new(answer_id);
        let mut choices: Vec<Choice> = Vec::with_capacity(response.candidates.len());
        for candidate in &response.candidates {
            let parts = candidate.content.as_ref().map_or(&[][..], |c| &c.parts);
            let mut pieces = Pieces::of(parts, &ids, 0);
            let reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
            let finish = candidate_finish(reason, !pieces.calls.is_empty());
            for call in &mut pieces.calls {
                if let Some(object) = call.as_object_mut() {
                    object.remove("index");
                }
            }
            choices.push(Choice {
                index: candidate.index,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: text_beside(pieces.text, &pieces.calls),
                    refusal: None,
                    reasoning_content: non_empty(pieces.reasoning),
                    reasoning_details: non_empty_array(pieces.details),
                    tool_calls: non_empty_array(pieces.calls),
                },
                finish_reason: Some(finish.into()),
                logprobs: None,
            });
        }
        if response.blocked() {
            choices.push(Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: Some(String::new()),
                    ..AssistantMessage::default()
                },
                finish_reason: Some("content_filter".into()),
                logprobs: None,
            });
        }
        Ok(ChatCompletion {
            id: String::new(),
            object: String::new(),
            created: 0,
            model: String::new(),
            choices,
            usage: response.usage(),
            system_fingerprint: None,
        })
    }

    fn stream_decoder(&self, answer_id: &str) -> Box<dyn StreamDecoder> {
        Box::new(GeminiDecoder {
            api_key: self.api_key.clone(),
            ids: CallIds::new(answer_id),
            candidates: BTreeMap::new(),
        })
    }

    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError {
        map_error_message(status, body, self.api_key)
    }

    /// `batchEmbedContents`: one request per text (Gemini embeds text only).
    fn embeddings_call(
        &self,
        request: &EmbeddingRequest,
        model: &str,
    ) -> Result<HttpCall, GatewayError> {
        let EmbeddingInput::Texts(texts) = &request.input else {
            return Err(GatewayError::invalid(
                "input",
                "Gemini embeds text only: send strings, not token arrays",
            ));
        };
        let requests: Vec<Value> = texts
            .iter()
            .map(|text| {
                let mut one = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
                if let Some(dimensions) = request.dimensions {
                    one["outputDimensionality"] = json!(dimensions);
                }
                one
            })
            .collect();
        Ok(HttpCall {
            url: format!("{}/models/{model}:batchEmbedContents", self.base_url),
            headers: vec![
                ("x-goog-api-key", self.api_key.expose().to_owned()),
                ("content-type", "application/json".to_owned()),
            ],
            body: json!({"requests": requests}).to_string(),
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<Embeddings, GatewayError> {
        #[derive(Deserialize)]
        struct Answer {
            embeddings: Vec<Embedding>,
        }
        #[derive(Deserialize)]
        struct Embedding {
            values: Vec<f32>,
        }
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("it sent unreadable embeddings ({err})")))?;
        // Gemini does not count the input's tokens: the gateway estimates them.
        Ok(Embeddings {
            vectors: answer.embeddings.into_iter().map(|e| e.values).collect(),
            prompt_tokens: None,
        })
    }
}

/// What the stream has said of one candidate so far.
#[derive(Default)]
struct CandidateState {
    sent_role: bool,
    calls: usize,
}

struct GeminiDecoder {
    api_key: Secret,
    ids: CallIds,
    candidates: BTreeMap<u32, CandidateState>,
}

impl GeminiDecoder {
    fn choice(&mut self, candidate: &Candidate) -> ChunkChoice {
        let state = self.candidates.entry(candidate.index).or_default();
        let parts = candidate.content.as_ref().map_or(&[][..], |c| &c.parts);
        let pieces = Pieces::of(parts, &self.ids, state.calls);
        state.calls += pieces.calls.len();
        let role = (!std::mem::replace(&mut state.sent_role, true)).then(|| "assistant".to_owned());
        let finish_reason = candidate
            .finish_reason
            .as_deref()
            .map(|reason| candidate_finish(reason, state.calls > 0).to_owned());
        ChunkChoice {
            index: candidate.index,
            delta: Delta {
                role,
                content: text_beside(pieces.text, &pieces.calls),
                refusal: None,
                reasoning_content: non_empty(pieces.reasoning),
                reasoning_details: non_empty_array(pieces.details),
                tool_calls: non_empty_array(pieces.calls),
            },
            finish_reason,
            logprobs: None,
        }
    }
}

impl StreamDecoder for GeminiDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, GatewayError> {
        // Parsed straight into the answer's types (no `Value` first): one parser instance
        // for whole answers and chunks alike.
        let response: Response = serde_json::from_slice(event.data.as_bytes())
            .map_err(|err| unreachable(&format!("it sent an unreadable stream event ({err})")))?;
        if let Some(error) = &response.error {
            let message = error["message"].as_str().unwrap_or("unknown error");
            return Err(unreachable(&scrub_credentials(message, &self.api_key)));
        }
        let mut choices: Vec<ChunkChoice> = response
            .candidates
            .iter()
            .map(|candidate| self.choice(candidate))
            .collect();
        let finished = response.blocked() || choices.iter().any(|c| c.finish_reason.is_some());
        if response.blocked() {
            let sent_role = self.candidates.entry(0).or_default().sent_role;
            choices.push(ChunkChoice {
                index: 0,
                delta: Delta {
                    role: (!sent_role).then(|| "assistant".to_owned()),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                finish_reason: Some("content_filter".into()),
                logprobs: None,
            });
        }
        let mut events = Vec::with_capacity(3);
        if !choices.is_empty() {
            events.push(StreamEvent::Choices(choices));
        }
        if finished {
            if let Some(usage) = response.usage() {
                events.push(StreamEvent::Usage(usage));
            }
            events.push(StreamEvent::Done);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::validate::parse_for_tests;

    fn body(request: Value) -> Result<Value, GatewayError> {
        translate_request(&parse_for_tests(&request.to_string()))
    }

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    #[test]
    fn requests_translate_to_contents_and_generation_config() {
        let key = Secret::new("AIza-test-key");
        let request = |stream: bool| {
            parse_for_tests(
                &json!({"model": "m", "stream": stream, "max_tokens": 64, "temperature": 0.7,
                    "stop": ["END"], "seed": 3, "n": 2,
                    "messages": [{"role": "system", "content": "be brief"},
                        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                        {"role": "user", "content": "bye"}]})
                .to_string(),
            )
        };
        let call = Gemini::new("https://g/v1beta", &key)
            .build_call(&request(true), "gemini-2.5-flash")
            .unwrap();
        assert_eq!(
            call.url,
            "https://g/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert!(call
            .headers
            .contains(&("x-goog-api-key", "AIza-test-key".into())));
        let body: Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(
            body,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "hi"}]},
                    {"role": "model", "parts": [{"text": "hello"}]},
                    {"role": "user", "parts": [{"text": "bye"}]},
                ],
                "systemInstruction": {"parts": [{"text": "be brief"}]},
                "generationConfig": {"maxOutputTokens": 64, "temperature": 0.7,
                    "stopSequences": ["END"], "seed": 3, "candidateCount": 2},
            })
        );
        let plain = Gemini::new("https://g/v1beta", &key)
            .build_call(&request(false), "m")
            .unwrap();
        assert!(plain.url.ends_with("/models/m:generateContent"));
    }

    #[test]
    fn tools_media_and_signatures_become_parts() {
        let body = body(json!({"model": "m", "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "tools": [{"type": "function", "function": {"name": "weather", "description": "by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "this city?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/b.JPG?size=2"}},
                    {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}],
                 "reasoning_details": [
                    {"type": "reasoning.encrypted", "data": "sig-a", "format": "gemini", "id": "call_a"},
                    {"type": "reasoning.encrypted", "data": "sig-text", "format": "gemini"},
                    {"type": "reasoning.text", "text": "t", "signature": "s", "format": "anthropic"}]},
                {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}"},
                {"role": "tool", "tool_call_id": "call_b", "content": "sunny"}]}))
        .unwrap();
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [
                    {"text": "this city?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/b.JPG?size=2"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]},
                {"role": "model", "parts": [
                    {"text": "Checking.", "thoughtSignature": "sig-text"},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-a"},
                    {"functionCall": {"name": "weather", "args": {"city": "Rome"}}, "thoughtSignature": UNSIGNED_CALL}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "weather", "response": {"temp": 18}}},
                    {"functionResponse": {"name": "weather", "response": {"result": "sunny"}}}]},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [{"name": "weather", "description": "by city",
                "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}]}])
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
        );
    }

    #[test]
    fn structured_output_and_effort_are_generation_config() {
        let body = body(json!({"model": "m", "reasoning_effort": "high",
            "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}},
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}})
        );
        let off = self::body(json!({"model": "m", "reasoning_effort": "none", "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
        assert_eq!(
            off["generationConfig"],
            json!({"responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0}})
        );
    }

    #[test]
    fn what_gemini_cannot_take_is_refused_by_name() {
        let user = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
        for (request, param) in [
            (
                json!({"model": "m", "logprobs": true, "messages": [{"role": "user", "content": "hi"}]}),
                "logprobs",
            ),
            (
                json!({"model": "m", "parallel_tool_calls": false, "messages": [{"role": "user", "content": "hi"}]}),
                "parallel_tool_calls",
            ),
            (
                user(json!([{"type": "image_url", "image_url": {"url": "https://x.test/image"}}])),
                "messages[0].content[0]",
            ),
            (
                user(json!([{"type": "file", "file": {"file_id": "file-1"}}])),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "x", "content": "orphan"}]}),
                "messages",
            ),
        ] {
            assert_eq!(
                body(request.clone()).unwrap_err().param.as_deref(),
                Some(param),
                "{request}"
            );
        }
    }

    #[test]
    fn answers_carry_thoughts_calls_signatures_and_usage_details() {
        let key = Secret::new("k");
        let provider = Gemini::new("h", &key);
        let answer = provider
            .parse_completion(
                json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
                    {"text": "thinking...", "thought": true},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-1"},
                    {"functionCall": {"name": "time"}}]}}],
                    "usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 6, "candidatesTokenCount": 4, "thoughtsTokenCount": 20}})
                .to_string()
                .as_bytes(),
                "chatcmpl-0123456789abcdef0123456789abcdef",
            )
            .unwrap();
        let message = &answer.choices[0].message;
        assert_eq!(
            answer.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        assert_eq!(message.content, None);
        assert_eq!(message.reasoning_content.as_deref(), Some("thinking..."));
        let id = "call_0123456789abcdef01234567_0";
        assert!(id.len() <= 40);
        assert_eq!(
            message.tool_calls,
            Some(json!([
                {"id": id, "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_0123456789abcdef01234567_1", "type": "function", "function": {"name": "time", "arguments": "{}"}}]))
        );
        assert_eq!(
            message.reasoning_details,
            Some(
                json!([{"type": "reasoning.encrypted", "data": "sig-1", "format": "gemini", "id": id}])
            )
        );
        let usage = answer.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (10, 24));
        assert_eq!(
            usage.prompt_tokens_details,
            Some(json!({"cached_tokens": 6}))
        );
        assert_eq!(
            usage.completion_tokens_details,
            Some(json!({"reasoning_tokens": 20}))
        );

        let blocked = provider
            .parse_completion(br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":7}}"#, "chatcmpl-1")
            .unwrap();
        assert_eq!(
            blocked.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        let truncated = provider
            .parse_completion(br#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"MAX_TOKENS"}]}"#, "chatcmpl-1")
            .unwrap();
        assert_eq!(
            truncated.choices[0].finish_reason.as_deref(),
            Some("length")
        );
        assert_eq!(truncated.choices[0].message.content.as_deref(), Some("Hi"));
    }

    #[test]
    fn streamed_calls_are_numbered_across_chunks_and_the_finish_says_tool_calls() {
        let key = Secret::new("k");
        let mut decoder = Gemini::new("h", &key).stream_decoder("chatcmpl-abc");
        let first = decoder
            .decode(&event(
                json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [
                {"text": "Let me check."}]}}]}),
            ))
            .unwrap();
        let second = decoder
            .decode(&event(json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig"}]}}]})))
            .unwrap();
        let last = decoder
            .decode(&event(json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
                {"functionCall": {"name": "time", "args": {}}}]}}],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}})))
            .unwrap();
        let choice = |events: &[StreamEvent]| match &events[0] {
            StreamEvent::Choices(choices) => choices[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(choice(&first).delta.role.as_deref(), Some("assistant"));
        assert_eq!(
            choice(&first).delta.content.as_deref(),
            Some("Let me check.")
        );
        let call = choice(&second).delta;
        assert_eq!(call.role, None);
        assert_eq!(call.content, None);
        assert_eq!(
            call.tool_calls,
            Some(json!([{"index": 0, "id": "call_abc_0", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]))
        );
        assert_eq!(
            call.reasoning_details,
            Some(
                json!([{"type": "reasoning.encrypted", "data": "sig", "format": "gemini", "id": "call_abc_0"}])
            )
        );
        let end = choice(&last);
        assert_eq!(end.delta.tool_calls.as_ref().unwrap()[0]["index"], 1);
        assert_eq!(end.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            last[1..],
            [StreamEvent::Usage(Usage::new(3, 2)), StreamEvent::Done]
        );
        let failed = decoder
            .decode(&event(
                json!({"error": {"code": 500, "message": "internal"}}),
            ))
            .unwrap_err();
        assert_eq!(
            failed.message, "the upstream provider failed: internal",
            "an error inside the stream is reported with its own message"
        );
        let unreadable = decoder.decode(&event(json!({"candidates": "none"})));
        assert!(unreadable
            .unwrap_err()
            .message
            .contains("unreadable stream event"));
    }
}
