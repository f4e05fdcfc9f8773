//! Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`): OpenAI requests
//! become `contents` and `generationConfig`, answers and stream chunks come back as OpenAI
//! shapes. Safety blocks become `finish_reason: "content_filter"`.
//!
//! Gemini's stream has no `[DONE]`: the chunk that carries a `finishReason` ends the answer.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::openai::scrub_credentials;
use super::sse::SseEvent;
use super::translate::{map_error_message, refuse_params, text_conversation, Speaker};
use super::{unreachable, HttpCall, HttpProvider, StreamDecoder, StreamEvent};
use crate::api::chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta, Usage,
};
use crate::config::source::Secret;
use crate::error::GatewayError;

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
    refuse_params(
        request,
        &["tools", "tool_choice", "functions", "function_call"],
    )?;
    let conversation = text_conversation(request)?;
    let system: Vec<Value> = conversation
        .system
        .into_iter()
        .map(|text| json!({"text": text}))
        .collect();
    let contents: Vec<Value> = conversation
        .turns
        .into_iter()
        .map(|(speaker, text)| {
            let role = match speaker {
                Speaker::User => "user",
                Speaker::Assistant => "model",
            };
            json!({"role": role, "parts": [{"text": text}]})
        })
        .collect();
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
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
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
    parts: Vec<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

impl Candidate {
    /// The answer text; thought summaries (`"thought": true` parts) are not the answer.
    fn text(&self) -> String {
        self.content
            .iter()
            .flat_map(|content| &content.parts)
            .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect()
    }
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

    fn usage(&self) -> Option<Usage> {
        self.usage_metadata
            .map(|usage| Usage::new(usage.prompt_token_count, usage.candidates_token_count))
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

    fn parse_completion(&self, body: &[u8]) -> Result<ChatCompletion, GatewayError> {
        let response: Response = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("its answer is not a Gemini response ({err})")))?;
        let mut choices: Vec<Choice> = response
            .candidates
            .iter()
            .map(|candidate| Choice {
                index: candidate.index,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: Some(candidate.text()),
                    refusal: None,
                    reasoning_content: None,
                    tool_calls: None,
                },
                finish_reason: Some(
                    finish_reason(candidate.finish_reason.as_deref().unwrap_or("STOP")).into(),
                ),
                logprobs: None,
            })
            .collect();
        if response.blocked() {
            choices.push(Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: Some(String::new()),
                    refusal: None,
                    reasoning_content: None,
                    tool_calls: None,
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

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(GeminiDecoder {
            api_key: self.api_key.clone(),
            sent_role: false,
        })
    }

    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError {
        map_error_message(status, body, self.api_key)
    }
}

struct GeminiDecoder {
    api_key: Secret,
    sent_role: bool,
}

impl StreamDecoder for GeminiDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, GatewayError> {
        let value: Value = serde_json::from_str(&event.data)
            .map_err(|err| unreachable(&format!("it sent an unreadable stream event ({err})")))?;
        if let Some(message) = value
            .get("error")
            .map(|error| error["message"].as_str().unwrap_or("unknown error"))
        {
            return Err(unreachable(&scrub_credentials(message, &self.api_key)));
        }
        let response: Response = serde_json::from_value(value)
            .map_err(|err| unreachable(&format!("it sent an unreadable stream chunk ({err})")))?;
        let role = (!std::mem::replace(&mut self.sent_role, true)).then(|| "assistant".to_owned());
        let mut finished = response.blocked();
        let mut choices: Vec<ChunkChoice> = response
            .candidates
            .iter()
            .map(|candidate| {
                let reason = candidate.finish_reason.as_deref().map(finish_reason);
                finished |= reason.is_some();
                ChunkChoice {
                    index: candidate.index,
                    delta: Delta {
                        role: role.clone(),
                        content: Some(candidate.text()),
                        ..Delta::default()
                    },
                    finish_reason: reason.map(str::to_owned),
                    logprobs: None,
                }
            })
            .collect();
        if response.blocked() {
            choices.push(ChunkChoice {
                index: 0,
                delta: Delta {
                    role,
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
    use crate::api::chat::{Content, Message, Role};

    fn request(stream: bool) -> ChatRequest {
        let message = |role, text: &str| Message {
            role,
            content: Content::Text(text.into()),
            name: None,
            tool_call_id: None,
            tool_calls: None,
        };
        ChatRequest {
            model: "gemini".into(),
            messages: vec![
                message(Role::System, "be brief"),
                message(Role::User, "hi"),
                message(Role::Assistant, "hello"),
                message(Role::User, "bye"),
            ],
            stream,
            include_usage: false,
            max_tokens: Some(64),
            max_tokens_is_completion: false,
            temperature: Some(0.7),
            top_p: None,
            n: None,
            stop: vec!["END".into()],
            presence_penalty: None,
            frequency_penalty: None,
            passthrough: Map::new(),
        }
    }

    #[test]
    fn requests_translate_to_contents_and_generation_config() {
        let key = Secret::new("AIza-test-key");
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
                "generationConfig": {"maxOutputTokens": 64, "temperature": 0.7, "stopSequences": ["END"]},
            })
        );
        let plain = Gemini::new("https://g/v1beta", &key)
            .build_call(&request(false), "m")
            .unwrap();
        assert!(plain.url.ends_with("/models/m:generateContent"));
    }

    #[test]
    fn answers_and_safety_blocks_translate_back() {
        let key = Secret::new("k");
        let provider = Gemini::new("h", &key);
        let completion = provider
            .parse_completion(br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"thinking...","thought":true},{"text":"Hi"},{"text":" there"}]},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":9}}"#)
            .unwrap();
        assert_eq!(
            completion.choices[0].message.content.as_deref(),
            Some("Hi there")
        );
        assert_eq!(
            completion.choices[0].finish_reason.as_deref(),
            Some("length")
        );
        assert_eq!(completion.usage, Some(Usage::new(7, 2)));
        let blocked = provider.parse_completion(br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":7}}"#).unwrap();
        assert_eq!(
            blocked.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        let unsafe_answer = provider
            .parse_completion(br#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#)
            .unwrap();
        assert_eq!(
            unsafe_answer.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
    }

    #[test]
    fn the_stream_ends_at_the_chunk_with_a_finish_reason() {
        let key = Secret::new("k");
        let mut decoder = Gemini::new("h", &key).stream_decoder();
        let event = |data: &str| SseEvent {
            event: None,
            data: data.into(),
        };
        let first = decoder.decode(&event(r#"{"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}]}"#)).unwrap();
        let StreamEvent::Choices(choices) = &first[0] else {
            panic!()
        };
        assert_eq!(
            (
                choices[0].delta.role.as_deref(),
                choices[0].delta.content.as_deref()
            ),
            (Some("assistant"), Some("Hel"))
        );
        assert_eq!(first.len(), 1);
        let last = decoder.decode(&event(r#"{"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}"#)).unwrap();
        let StreamEvent::Choices(choices) = &last[0] else {
            panic!()
        };
        assert_eq!(
            (
                choices[0].delta.role.as_deref(),
                choices[0].finish_reason.as_deref()
            ),
            (None, Some("stop"))
        );
        assert_eq!(
            last[1..],
            [StreamEvent::Usage(Usage::new(3, 2)), StreamEvent::Done]
        );
        assert!(decoder
            .decode(&event(r#"{"error":{"code":500,"message":"internal"}}"#))
            .is_err());
    }

    #[test]
    fn tools_and_images_are_refused() {
        let mut with_tools = request(false);
        with_tools.passthrough.insert("tools".into(), json!([]));
        assert_eq!(
            translate_request(&with_tools).unwrap_err().param.as_deref(),
            Some("tools")
        );
    }
}
