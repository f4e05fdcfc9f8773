//! Anthropic Messages API: OpenAI requests are translated to `/v1/messages`, answers and
//! their event streams back into OpenAI shapes.
//!
//! `system` and `developer` messages become the top-level `system` prompt; `stop` becomes
//! `stop_sequences`; `max_tokens` is required by Anthropic, so a request without one gets
//! the provider's configured default. Tools and non-text content parts are refused with a
//! 400 naming the field, rather than silently dropped.

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
use crate::error::{ErrorKind, GatewayError};

/// The API version the translation follows.
const ANTHROPIC_VERSION: &str = "2023-06-01";

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
    refuse_params(
        request,
        &[
            "tools",
            "tool_choice",
            "functions",
            "function_call",
            "response_format",
        ],
    )?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(GatewayError::invalid(
            "n",
            "this model's provider answers one choice only",
        ));
    }
    let conversation = text_conversation(request)?;
    let messages: Vec<Value> = conversation
        .turns
        .into_iter()
        .map(|(speaker, text)| {
            let role = match speaker {
                Speaker::User => "user",
                Speaker::Assistant => "assistant",
            };
            json!({"role": role, "content": text})
        })
        .collect();
    let system = conversation.system;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(
        "max_tokens".into(),
        json!(request.max_tokens.unwrap_or(default_max_tokens)),
    );
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if request.stream {
        body.insert("stream".into(), json!(true));
    }
    if let Some(temperature) = request.temperature {
        // Anthropic's range is 0..=1; OpenAI's 0..=2 maps onto it proportionally.
        body.insert("temperature".into(), json!(temperature / 2.0));
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".into(), json!(top_p));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    if let Some(user) = request.passthrough.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    Ok(Value::Object(body))
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

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

impl HttpProvider for Anthropic<'_> {
    fn build_call(&self, request: &ChatRequest, model: &str) -> Result<HttpCall, GatewayError> {
        let body = translate_request(request, model, self.default_max_tokens)?;
        Ok(HttpCall {
            url: format!("{}/messages", self.base_url),
            headers: vec![
                ("x-api-key", self.api_key.expose().to_owned()),
                ("anthropic-version", ANTHROPIC_VERSION.to_owned()),
                ("content-type", "application/json".to_owned()),
            ],
            body: body.to_string(),
        })
    }

    fn parse_completion(&self, body: &[u8]) -> Result<ChatCompletion, GatewayError> {
        let message: Message = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("its answer is not a message ({err})")))?;
        let text: String = message
            .content
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect();
        let usage = message.usage.unwrap_or_default();
        Ok(ChatCompletion {
            id: String::new(),
            object: String::new(),
            created: 0,
            model: String::new(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: Some(text),
                    refusal: None,
                    reasoning_content: None,
                    tool_calls: None,
                },
                finish_reason: Some(
                    finish_reason(message.stop_reason.as_deref().unwrap_or("end_turn")).into(),
                ),
                logprobs: None,
            }],
            usage: Some(Usage::new(usage.input_tokens, usage.output_tokens)),
            system_fingerprint: None,
        })
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicDecoder {
            api_key: self.api_key.clone(),
            input_tokens: 0,
            sent_role: false,
        })
    }

    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError {
        map_error_message(status, body, self.api_key)
    }
}

/// Folds Anthropic's event stream into OpenAI chunks: `message_start` carries the prompt
/// tokens, `content_block_delta` the text, `message_delta` the stop reason and output tokens.
struct AnthropicDecoder {
    api_key: Secret,
    input_tokens: u64,
    sent_role: bool,
}

impl AnthropicDecoder {
    fn delta(&mut self, content: String, finish_reason: Option<&str>) -> StreamEvent {
        let role = (!std::mem::replace(&mut self.sent_role, true)).then(|| "assistant".to_owned());
        StreamEvent::Choices(vec![ChunkChoice {
            index: 0,
            delta: Delta {
                role,
                content: Some(content),
                ..Delta::default()
            },
            finish_reason: finish_reason.map(str::to_owned),
            logprobs: None,
        }])
    }
}

impl StreamDecoder for AnthropicDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, GatewayError> {
        let value: Value = serde_json::from_str(&event.data)
            .map_err(|err| unreachable(&format!("it sent an unreadable stream event ({err})")))?;
        let kind = value["type"].as_str().unwrap_or_default();
        Ok(match kind {
            "message_start" => {
                self.input_tokens = value["message"]["usage"]["input_tokens"]
                    .as_u64()
                    .unwrap_or(0);
                vec![self.delta(String::new(), None)]
            }
            "content_block_delta" => match value["delta"]["text"].as_str() {
                Some(text) => vec![self.delta(text.to_owned(), None)],
                None => Vec::new(),
            },
            "message_delta" => {
                let reason =
                    finish_reason(value["delta"]["stop_reason"].as_str().unwrap_or("end_turn"));
                let output_tokens = value["usage"]["output_tokens"].as_u64().unwrap_or(0);
                vec![
                    self.delta(String::new(), Some(reason)),
                    StreamEvent::Usage(Usage::new(self.input_tokens, output_tokens)),
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
            // ping, content_block_start, content_block_stop
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::{Content, Message as ChatMessage, Role};

    fn message(role: Role, text: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: Content::Text(text.into()),
            name: None,
            tool_call_id: None,
            tool_calls: None,
        }
    }

    fn request(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: "claude".into(),
            messages,
            stream: true,
            include_usage: true,
            max_tokens: None,
            max_tokens_is_completion: false,
            temperature: Some(1.0),
            top_p: None,
            n: None,
            stop: vec!["END".into()],
            presence_penalty: None,
            frequency_penalty: None,
            passthrough: Map::new(),
        }
    }

    #[test]
    fn requests_translate_to_messages() {
        let body = translate_request(
            &request(vec![
                message(Role::System, "be brief"),
                message(Role::Developer, "no emoji"),
                message(Role::User, "hi"),
                message(Role::Assistant, "hello"),
                message(Role::User, "bye"),
            ]),
            "claude-sonnet-4",
            1024,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({
                "model": "claude-sonnet-4",
                "system": "be brief\n\nno emoji",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "max_tokens": 1024,
                "stream": true,
                "temperature": 0.5,
                "stop_sequences": ["END"],
            })
        );
    }

    #[test]
    fn what_cannot_be_expressed_is_refused_with_its_param() {
        let mut with_tools = request(vec![message(Role::User, "hi")]);
        with_tools.passthrough.insert("tools".into(), json!([]));
        assert_eq!(
            translate_request(&with_tools, "m", 1)
                .unwrap_err()
                .param
                .as_deref(),
            Some("tools")
        );
        let mut image = message(Role::User, "");
        image.content = Content::Parts(vec![
            json!({"type": "text", "text": "x"}),
            json!({"type": "image_url"}),
        ]);
        let err = translate_request(&request(vec![image]), "m", 1).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[1]"));
        let tool = ChatMessage {
            tool_call_id: Some("c".into()),
            ..message(Role::Tool, "r")
        };
        assert_eq!(
            translate_request(&request(vec![tool]), "m", 1)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn answers_translate_back() {
        let key = Secret::new("sk-ant-secret-key-000");
        let provider = Anthropic::new("https://api.anthropic.com/v1", &key, 1024);
        let completion = provider
            .parse_completion(br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],"stop_reason":"max_tokens","usage":{"input_tokens":12,"output_tokens":3}}"#)
            .unwrap();
        assert_eq!(
            completion.choices[0].message.content.as_deref(),
            Some("Hello there")
        );
        assert_eq!(
            completion.choices[0].finish_reason.as_deref(),
            Some("length")
        );
        assert_eq!(completion.usage, Some(Usage::new(12, 3)));
        let call = provider
            .build_call(&request(vec![message(Role::User, "hi")]), "claude")
            .unwrap();
        assert_eq!(call.url, "https://api.anthropic.com/v1/messages");
        assert!(call
            .headers
            .contains(&("anthropic-version", "2023-06-01".into())));
    }

    #[test]
    fn the_event_stream_folds_into_chunks() {
        let key = Secret::new("k");
        let mut decoder = Anthropic::new("h", &key, 1).stream_decoder();
        let event = |name: &str, data: Value| SseEvent {
            event: Some(name.into()),
            data: data.to_string(),
        };
        let start = decoder
            .decode(&event(
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 9}}}),
            ))
            .unwrap();
        let StreamEvent::Choices(first) = &start[0] else {
            panic!()
        };
        assert_eq!(first[0].delta.role.as_deref(), Some("assistant"));
        assert!(decoder
            .decode(&event("ping", json!({"type": "ping"})))
            .unwrap()
            .is_empty());
        let text = decoder.decode(&event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}))).unwrap();
        let StreamEvent::Choices(text) = &text[0] else {
            panic!()
        };
        assert_eq!(
            (
                text[0].delta.content.as_deref(),
                text[0].delta.role.as_deref()
            ),
            (Some("Hi"), None)
        );
        let end = decoder.decode(&event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}))).unwrap();
        let StreamEvent::Choices(finish) = &end[0] else {
            panic!()
        };
        assert_eq!(finish[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(end[1], StreamEvent::Usage(Usage::new(9, 4)));
        assert_eq!(
            decoder
                .decode(&event("message_stop", json!({"type": "message_stop"})))
                .unwrap(),
            vec![StreamEvent::Done]
        );
        let err = decoder.decode(&event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))).unwrap_err();
        assert_eq!(err.status(), 502);
    }

    #[test]
    fn errors_map_like_openai_and_never_echo_the_key() {
        let key = Secret::new("sk-ant-api03-secretsecret");
        let provider = Anthropic::new("h", &key, 1);
        let err = provider.map_error(401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-api03-secretsecret"}}"#);
        assert_eq!(err.status(), 401);
        assert!(!err.message.contains("secretsecret"));
        assert_eq!(provider.map_error(529, br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#).status(), 502);
    }
}
