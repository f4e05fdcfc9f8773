//! Any server that speaks OpenAI Chat Completions (OpenAI itself, vLLM, Ollama, Together,
//! Groq, ...). Requests and answers are already in the public wire format, so this provider
//! mostly re-checks and re-encodes; it always asks the upstream for usage so tokens can be
//! counted even when the client did not ask for them.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::sse::SseEvent;
use super::{unreachable, HttpCall, HttpProvider, StreamDecoder, StreamEvent};
use crate::api::chat::{ChatCompletion, ChatRequest, ChunkChoice, Message, Usage};
use crate::api::embeddings::{EmbeddingRequest, Embeddings};
use crate::config::source::Secret;
use crate::error::{ErrorKind, GatewayError};

/// An OpenAI-compatible upstream at `base_url`.
pub struct OpenAi<'a> {
    base_url: &'a str,
    api_key: &'a Secret,
}

impl<'a> OpenAi<'a> {
    /// A provider for the server at `base_url` (without trailing slash) using `api_key`.
    pub fn new(base_url: &'a str, api_key: &'a Secret) -> Self {
        OpenAi { base_url, api_key }
    }
}

impl HttpProvider for OpenAi<'_> {
    fn build_call(&self, request: &ChatRequest, model: &str) -> Result<HttpCall, GatewayError> {
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("messages".into(), messages(&request.messages));
        if request.stream {
            body.insert("stream".into(), json!(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(name.to_owned(), value);
            }
        };
        put(
            request.max_tokens_param(),
            request.max_tokens.map(Value::from),
        );
        put("temperature", request.temperature.map(Value::from));
        put("top_p", request.top_p.map(Value::from));
        put("n", request.n.map(Value::from));
        put(
            "presence_penalty",
            request.presence_penalty.map(Value::from),
        );
        put(
            "frequency_penalty",
            request.frequency_penalty.map(Value::from),
        );
        put(
            "stop",
            (!request.stop.is_empty()).then(|| json!(request.stop)),
        );
        for (name, value) in &request.passthrough {
            body.insert(name.clone(), value.clone());
        }
        let accept = if request.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        Ok(HttpCall {
            url: format!("{}/chat/completions", self.base_url),
            headers: vec![
                ("authorization", format!("Bearer {}", self.api_key.expose())),
                ("content-type", "application/json".to_owned()),
                ("accept", accept.to_owned()),
            ],
            body: Value::Object(body).to_string(),
        })
    }

    fn parse_completion(&self, body: &[u8], _: &str) -> Result<ChatCompletion, GatewayError> {
        serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("its answer is not a chat completion ({err})")))
    }

    fn stream_decoder(&self, _: &str) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiDecoder {
            api_key: self.api_key.clone(),
        })
    }

    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError {
        map_openai_error(status, body, self.api_key)
    }

    fn embeddings_call(
        &self,
        request: &EmbeddingRequest,
        model: &str,
    ) -> Result<HttpCall, GatewayError> {
        // Floats always: the gateway encodes base64 itself, after the cache.
        let mut body = json!({"model": model, "input": request.input, "encoding_format": "float"});
        if let Some(dimensions) = request.dimensions {
            body["dimensions"] = json!(dimensions);
        }
        if let Some(user) = &request.user {
            body["user"] = json!(user);
        }
        Ok(HttpCall {
            url: format!("{}/embeddings", self.base_url),
            headers: vec![
                ("authorization", format!("Bearer {}", self.api_key.expose())),
                ("content-type", "application/json".to_owned()),
            ],
            body: body.to_string(),
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<Embeddings, GatewayError> {
        #[derive(Deserialize)]
        struct Answer {
            data: Vec<Datum>,
            usage: Option<AnswerUsage>,
        }
        #[derive(Deserialize)]
        struct Datum {
            index: usize,
            embedding: Vec<f32>,
        }
        #[derive(Deserialize)]
        struct AnswerUsage {
            prompt_tokens: u64,
        }
        let mut answer: Answer = serde_json::from_slice(body)
            .map_err(|err| unreachable(&format!("it sent unreadable embeddings ({err})")))?;
        answer.data.sort_by_key(|datum| datum.index);
        Ok(Embeddings {
            vectors: answer
                .data
                .into_iter()
                .map(|datum| datum.embedding)
                .collect(),
            prompt_tokens: answer.usage.map(|usage| usage.prompt_tokens),
        })
    }
}

/// The messages as sent: reasoning that another provider made (`reasoning_details`
/// entries of format `anthropic` or `gemini`, see [`crate::conversation::Reasoning`])
/// stays behind, as no OpenAI-compatible server can continue it; entries an
/// OpenAI-compatible server returned itself go back to it.
fn messages(messages: &[Message]) -> Value {
    let mut value = json!(messages);
    for message in value.as_array_mut().into_iter().flatten() {
        let Some(object) = message.as_object_mut() else {
            continue;
        };
        if let Some(Value::Array(details)) = object.get_mut("reasoning_details") {
            details.retain(|detail| {
                !matches!(detail["format"].as_str(), Some("anthropic" | "gemini"))
            });
            if details.is_empty() {
                object.remove("reasoning_details");
            }
        }
    }
    value
}

struct OpenAiDecoder {
    api_key: Secret,
}

impl StreamDecoder for OpenAiDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, GatewayError> {
        if event.data == "[DONE]" {
            return Ok(vec![StreamEvent::Done]);
        }
        // One pass over the event: the fields the gateway forwards, and `error`, which an
        // upstream sends instead of a chunk when it fails mid-stream.
        let chunk: StreamChunk = serde_json::from_slice(event.data.as_bytes())
            .map_err(|err| unreachable(&format!("it sent an unreadable stream event ({err})")))?;
        if chunk.error.is_some() {
            let mut err = map_openai_error(502, event.data.as_bytes(), &self.api_key);
            err.kind = ErrorKind::UpstreamError;
            return Err(err);
        }
        let mut events = Vec::with_capacity(2);
        if !chunk.choices.is_empty() {
            events.push(StreamEvent::Choices(chunk.choices));
        }
        if let Some(usage) = chunk.usage {
            events.push(StreamEvent::Usage(usage));
        }
        Ok(events)
    }
}

/// The parts of an upstream `chat.completion.chunk` the gateway reads; the id, model and
/// timestamps are the gateway's own in what it sends on.
#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// Statuses whose meaning survives the hop: the client's request (or the gateway's
/// credentials) was at fault, so retrying elsewhere would not help.
const PASSED_THROUGH: &[u16] = &[400, 401, 403, 404, 409, 422, 429];

/// Maps an OpenAI-style error answer to the client's error, scrubbing credentials.
fn map_openai_error(status: u16, body: &[u8], api_key: &Secret) -> GatewayError {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.as_deref())
        .map(|message| scrub_credentials(message, api_key));
    let mut err = map_error_status(status, message);
    if let (ErrorKind::UpstreamRejected { .. }, Some(object)) = (err.kind, parsed) {
        err.param = object.param;
        err.code_override = object
            .code
            .and_then(|code| code.as_str().map(str::to_owned))
            .filter(|code| {
                code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
    }
    err
}

/// The client's error for an upstream `status` with its (already scrubbed) message: the
/// statuses in [`PASSED_THROUGH`] keep their meaning, everything else is a 502.
pub(super) fn map_error_status(status: u16, message: Option<String>) -> GatewayError {
    if !PASSED_THROUGH.contains(&status) {
        let detail = match &message {
            Some(message) => format!("status {status}: {message}"),
            None => format!("status {status}"),
        };
        return unreachable(&detail);
    }
    let message = message.unwrap_or_else(|| format!("the upstream provider answered {status}"));
    GatewayError::new(ErrorKind::UpstreamRejected { status }, message)
}

/// Removes the configured key and anything shaped like a provider key from `text`, and
/// bounds its length.
pub(super) fn scrub_credentials(text: &str, api_key: &Secret) -> String {
    let key = api_key.expose();
    let text = if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "[REDACTED]")
    };
    let mut out = String::with_capacity(text.len());
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let bare = word
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '*');
        if (bare.starts_with("sk-") || bare.starts_with("sk_")) && bare.len() > 8 {
            out.push_str(&word.replace(bare, "[REDACTED]"));
        } else {
            out.push_str(word);
        }
    }
    out.chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::{Content, Message, Role, Usage};

    fn request(stream: bool) -> ChatRequest {
        ChatRequest {
            model: "alias".into(),
            messages: vec![Message {
                role: Role::User,
                content: Content::Text("hi".into()),
                name: None,
                tool_call_id: None,
                tool_calls: None,
                reasoning_details: None,
            }],
            stream,
            include_usage: false,
            max_tokens: Some(50),
            max_tokens_is_completion: false,
            temperature: Some(0.0),
            top_p: None,
            n: None,
            stop: vec!["END".into()],
            presence_penalty: None,
            frequency_penalty: None,
            passthrough: Map::from_iter([("seed".to_owned(), json!(1))]),
        }
    }

    fn key() -> Secret {
        Secret::new("sk-live-abcdefghijklmnop")
    }

    #[test]
    fn reasoning_another_provider_made_stays_behind() {
        let key = key();
        let mut request = request(false);
        request.messages.push(Message {
            role: Role::Assistant,
            content: Content::Text("hello".into()),
            name: None,
            tool_call_id: None,
            tool_calls: None,
            reasoning_details: Some(json!([
                {"type": "reasoning.text", "text": "t", "signature": "s", "format": "anthropic"},
                {"type": "reasoning.encrypted", "data": "d", "format": "gemini"},
                {"type": "reasoning.encrypted", "data": "own", "format": "openai-responses-v1"}])),
        });
        let mut only_foreign = request.messages[1].clone();
        only_foreign.reasoning_details =
            Some(json!([{"type": "reasoning.encrypted", "data": "d", "format": "gemini"}]));
        request.messages.push(only_foreign);
        let call = OpenAi::new("http://h", &key)
            .build_call(&request, "m")
            .unwrap();
        let body: Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(
            body["messages"][1]["reasoning_details"],
            json!([{"type": "reasoning.encrypted", "data": "own", "format": "openai-responses-v1"}])
        );
        assert!(body["messages"][2].get("reasoning_details").is_none());
    }

    #[test]
    fn the_call_targets_chat_completions_with_the_upstream_model() {
        let key = key();
        let call = OpenAi::new("http://127.0.0.1:9/v1", &key)
            .build_call(&request(true), "gpt-x")
            .unwrap();
        assert_eq!(call.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(call
            .headers
            .contains(&("authorization", "Bearer sk-live-abcdefghijklmnop".into())));
        assert!(call
            .headers
            .contains(&("accept", "text/event-stream".into())));
        let body: Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-x",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 50,
                "temperature": 0.0,
                "stop": ["END"],
                "seed": 1,
            })
        );
        let mut completion_request = request(false);
        completion_request.max_tokens_is_completion = true;
        let body: Value = serde_json::from_str(
            &OpenAi::new("http://h", &key)
                .build_call(&completion_request, "o3")
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(body["max_completion_tokens"], 50);
        assert!(body.get("stream").is_none() && body.get("max_tokens").is_none());
    }

    #[test]
    fn stream_events_decode_to_choices_usage_and_done() {
        let key = key();
        let mut decoder = OpenAi::new("http://h", &key).stream_decoder("chatcmpl-1");
        let event = |data: &str| SseEvent {
            event: None,
            data: data.into(),
        };
        let choices = decoder
            .decode(&event(r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#))
            .unwrap();
        let StreamEvent::Choices(choices) = &choices[0] else {
            panic!("{choices:?}")
        };
        assert_eq!(choices[0].delta.content.as_deref(), Some("Hi"));
        let usage = decoder
            .decode(&event(r#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#))
            .unwrap();
        assert_eq!(usage, vec![StreamEvent::Usage(Usage::new(3, 2))]);
        assert_eq!(
            decoder.decode(&event("[DONE]")).unwrap(),
            vec![StreamEvent::Done]
        );
    }

    #[test]
    fn stream_errors_and_garbage_become_upstream_errors() {
        let key = key();
        let mut decoder = OpenAi::new("http://h", &key).stream_decoder("chatcmpl-1");
        for data in [
            "not json",
            r#"{"choices": "nope"}"#,
            r#"{"error": {"message": "overloaded"}}"#,
        ] {
            let err = decoder
                .decode(&SseEvent {
                    event: None,
                    data: data.into(),
                })
                .unwrap_err();
            assert_eq!(err.status(), 502, "{data}");
        }
    }

    #[test]
    fn client_errors_pass_through_and_server_errors_become_502() {
        let key = key();
        let provider = OpenAi::new("http://h", &key);
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let err = provider.map_error(400, body);
        assert_eq!((err.status(), err.code()), (400, "context_length_exceeded"));
        assert_eq!(err.param.as_deref(), Some("messages"));
        assert!(err.message.contains("8192"));

        let err = provider.map_error(422, b"<html>unprocessable</html>");
        assert_eq!((err.status(), err.code()), (422, "upstream_rejected"));

        for status in [500, 502, 503, 504, 418] {
            let err = provider.map_error(status, br#"{"error":{"message":"boom"}}"#);
            assert_eq!(
                (err.status(), err.code()),
                (502, "upstream_error"),
                "{status}"
            );
            assert!(err.message.contains("boom"));
        }
    }

    #[test]
    fn provider_keys_are_never_echoed() {
        let key = key();
        let provider = OpenAi::new("http://h", &key);
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-live-abcdefghijklmnop. Also sk-proj-****wxyz.","code":"invalid_api_key"}}"#;
        let err = provider.map_error(401, body);
        assert_eq!(err.status(), 401);
        assert!(!err.message.contains("abcdefghijklmnop"), "{}", err.message);
        assert!(!err.message.contains("wxyz"), "{}", err.message);
        assert!(!err.to_json().contains("sk-"), "{}", err.to_json());
    }

    #[test]
    fn odd_upstream_codes_are_not_forwarded() {
        let key = key();
        let err = OpenAi::new("http://h", &key).map_error(
            400,
            br#"{"error":{"message":"m","code":"has spaces <script>"}}"#,
        );
        assert_eq!(err.code(), "upstream_rejected");
    }
}
