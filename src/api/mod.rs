//! The public wire formats: OpenAI Chat Completions, the OpenAI Responses API and the
//! Anthropic Messages API (codecs into the same requests and answers), and the small
//! gateway endpoints.

pub mod chat;
pub mod embeddings;
pub mod feedback;
pub mod messages;
pub mod responses;

use serde::Serialize;
use serde_json::{json, Map, Value};

use self::chat::{ChatCompletion, ChunkChoice, Usage};
use crate::error::{ErrorKind, GatewayError};
use crate::limit::TierLimits;

/// The wire format a client speaks: how its answers and errors are written. Every
/// surface's request becomes a chat completion request; only the edges differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Surface {
    /// OpenAI Chat Completions (and every gateway endpoint of its family).
    #[default]
    ChatCompletions,
    /// The Anthropic Messages API.
    Messages,
    /// The OpenAI Responses API.
    Responses,
}

impl Surface {
    /// The id of an answer to request `request_id`.
    pub fn answer_id(self, request_id: &str) -> String {
        match self {
            Surface::ChatCompletions => format!("chatcmpl-{request_id}"),
            Surface::Messages => format!("msg_{request_id}"),
            Surface::Responses => format!("resp_{request_id}"),
        }
    }

    /// A complete answer's body; a `response` repeats `echo` of its request.
    pub fn answer_body(
        self,
        completion: &ChatCompletion,
        usage: &Usage,
        echo: &Map<String, Value>,
    ) -> String {
        match self {
            Surface::ChatCompletions => json!(completion).to_string(),
            Surface::Messages => messages::message(completion, usage).to_string(),
            Surface::Responses => responses::response(completion, usage, echo).to_string(),
        }
    }

    /// An error's body: an OpenAI error object, or Anthropic's.
    pub fn error_body(self, error: &GatewayError) -> String {
        match self {
            Surface::ChatCompletions | Surface::Responses => error.to_json(),
            Surface::Messages => messages::error_json(error),
        }
    }
}

/// A surface's stream of events, written from chat chunks as they pass. Chat Completions
/// needs none: its chunks are written as they are.
pub trait EventStream: std::fmt::Debug {
    /// Appends the events for one chunk's choices to `out`.
    fn chunk(&mut self, choices: &[ChunkChoice], out: &mut Vec<u8>);
    /// Ends the answer, with its `usage`.
    fn done(&mut self, usage: &Usage, out: &mut Vec<u8>);
    /// Ends a broken answer with `error`.
    fn fail(&mut self, error: &GatewayError, out: &mut Vec<u8>);
}

/// A request body as a JSON object whose fields are all `known`; the first other field is
/// a 400 `unknown_parameter` worded by `unknown` (each API words it its own way).
fn known_object(
    body: &[u8],
    known: &[&str],
    unknown: impl Fn(&str) -> String,
) -> Result<Map<String, Value>, GatewayError> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| GatewayError::new(ErrorKind::InvalidJson, "the body is not a JSON object"))?;
    if let Some(field) = fields.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(
            GatewayError::new(ErrorKind::UnknownParameter, unknown(field)).with_param(field),
        );
    }
    Ok(fields)
}

/// The entries of a list field (`tool_calls`, `reasoning_details`), none when absent.
fn entries(list: &Option<Value>) -> impl Iterator<Item = &Value> {
    list.iter().filter_map(Value::as_array).flatten()
}

/// One named SSE event.
fn write_event(out: &mut Vec<u8>, event: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // A JSON value always serializes.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// The body of `GET /v1/usage` and `GET /admin/limits/{principal}`: `status`, the
/// limiter's report (remaining requests and tokens, concurrency, spend today and this
/// month), with who it is about and, when known, under which tier and limits.
pub fn usage_report(
    principal: &str,
    tier: Option<&str>,
    limits: Option<&TierLimits>,
    mut status: Value,
) -> Value {
    if let Some(fields) = status.as_object_mut() {
        fields.insert("object".into(), "usage".into());
        fields.insert("principal".into(), principal.into());
        if let Some(tier) = tier {
            fields.insert("tier".into(), tier.into());
        }
        if let Some(limits) = limits {
            fields.insert("limits".into(), json!(limits));
        }
    }
    status
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry<'a> {
    /// The alias clients put in `model`.
    pub id: &'a str,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds; aliases have no creation date, so 0.
    pub created: u64,
    /// The provider that serves the alias.
    pub owned_by: &'a str,
    /// The gateway endpoints that serve it: `chat.completions`, `responses`, `messages`
    /// and, where its providers make them, `embeddings`.
    pub surfaces: Vec<&'static str>,
}

/// The body of `GET /v1/models`: `{"object":"list","data":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelList<'a> {
    /// Always `list`.
    pub object: &'static str,
    /// The models, sorted by id.
    pub data: Vec<ModelEntry<'a>>,
}

impl<'a> ModelList<'a> {
    /// A list of `(alias, provider, surfaces)` in the order given.
    pub fn new(models: impl IntoIterator<Item = (&'a str, &'a str, Vec<&'static str>)>) -> Self {
        ModelList {
            object: "list",
            data: models
                .into_iter()
                .map(|(id, owned_by, surfaces)| ModelEntry {
                    id,
                    object: "model",
                    created: 0,
                    owned_by,
                    surfaces,
                })
                .collect(),
        }
    }
}

/// What the surfaces' stream tests share.
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::Value;

    use super::chat::{ChunkChoice, Delta};

    /// The name and data of each SSE event in `out`.
    pub fn events(out: &[u8]) -> Vec<(String, Value)> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                (name, data)
            })
            .collect()
    }

    /// A chunk's first choice.
    pub fn choice(delta: Delta, finish_reason: Option<&str>) -> ChunkChoice {
        ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish_reason.map(str::to_owned),
            logprobs: None,
        }
    }
}
