//! A cached answer: the complete completion and when it was stored, its replay as stream
//! events, and the recorder that rebuilds a completion from a stream as it passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CacheConfig;
use crate::api::chat::{AssistantMessage, ChatCompletion, Choice, ChunkChoice, Delta, Usage};
use crate::upstream::StreamEvent;

/// One stored answer, as kept in the isolate and (serialized) in KV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When it was stored (Unix milliseconds).
    #[serde(rename = "t")]
    pub stored_ms: u64,
    /// When it stops being served (Unix milliseconds). KV's own expiry cannot be shorter
    /// than a minute, so shorter lifetimes are enforced here.
    #[serde(rename = "x")]
    pub expires_ms: u64,
    /// The answer; `id` and `created` are replaced when it is served.
    #[serde(rename = "c")]
    pub completion: ChatCompletion,
}

impl Entry {
    /// The entry's serialized form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a serialized entry; `None` for anything unreadable (it is then a miss).
    pub fn from_json(text: &str) -> Option<Entry> {
        serde_json::from_slice(text.as_bytes()).ok()
    }

    /// Whole seconds since it was stored (the `age` header).
    pub fn age_s(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1_000
    }

    /// Whether it may be served at `now_ms` to a request accepting entries up to
    /// `max_age_s` old.
    pub fn is_servable(&self, now_ms: u64, max_age_s: Option<u32>) -> bool {
        now_ms < self.expires_ms && max_age_s.is_none_or(|max| self.age_s(now_ms) <= u64::from(max))
    }

    /// The answer as stream events: for each choice a chunk with the role and the whole
    /// text (and tool calls, indexed as in a stream), then its finish reason; then the
    /// usage and the end.
    pub fn events(&self) -> Vec<StreamEvent> {
        let mut events = Vec::with_capacity(self.completion.choices.len() * 2 + 2);
        for choice in &self.completion.choices {
            let message = &choice.message;
            let tool_calls = message.tool_calls.as_ref().map(indexed_tool_calls);
            let delta = Delta {
                role: Some("assistant".to_owned()),
                content: Some(message.content.clone().unwrap_or_default()),
                refusal: message.refusal.clone(),
                reasoning_content: message.reasoning_content.clone(),
                reasoning_details: message.reasoning_details.clone(),
                tool_calls,
            };
            events.push(StreamEvent::Choices(vec![ChunkChoice {
                index: choice.index,
                delta,
                finish_reason: None,
                logprobs: None,
            }]));
            events.push(StreamEvent::Choices(vec![ChunkChoice {
                index: choice.index,
                delta: Delta::default(),
                finish_reason: choice.finish_reason.clone(),
                logprobs: None,
            }]));
        }
        if let Some(usage) = &self.completion.usage {
            events.push(StreamEvent::Usage(usage.clone()));
        }
        events.push(StreamEvent::Done);
        events
    }
}

/// A message's `tool_calls` in the streamed form: each call with its `index`.
fn indexed_tool_calls(calls: &Value) -> Value {
    let Some(calls) = calls.as_array() else {
        return calls.clone();
    };
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                let mut call = call.clone();
                if let Some(object) = call.as_object_mut() {
                    object.insert("index".to_owned(), Value::from(index));
                }
                call
            })
            .collect(),
    )
}

/// Whether an answer may be stored: every choice finished normally (`length` only when
/// configured), and it fits `CACHE_MAX_ENTRY_BYTES` once serialized (`size`).
pub fn storable(completion: &ChatCompletion, size: usize, config: &CacheConfig) -> bool {
    let finished = completion
        .choices
        .iter()
        .all(|choice| match choice.finish_reason.as_deref() {
            Some("stop" | "tool_calls" | "function_call") => true,
            Some("length") => config.truncated_answers,
            _ => false,
        });
    finished && !completion.choices.is_empty() && size <= config.max_entry_bytes
}

/// Rebuilds the complete answer from a stream's events as they pass, tool calls from
/// their fragments (by their stream `index`).
#[derive(Debug, Default)]
pub struct Recorder {
    choices: BTreeMap<u32, RecordedChoice>,
    usage: Option<Usage>,
    /// A fragment named no call index: the calls cannot be put together.
    unusable: bool,
}

#[derive(Debug, Default)]
struct RecordedChoice {
    content: String,
    refusal: Option<String>,
    reasoning: Option<String>,
    reasoning_details: Vec<Value>,
    tool_calls: BTreeMap<u64, RecordedCall>,
    finish_reason: Option<String>,
}

/// One tool call, put together from its fragments.
#[derive(Debug, Default)]
struct RecordedCall {
    id: String,
    name: String,
    arguments: String,
}

impl RecordedChoice {
    /// Adds the fragments of `tool_calls` (a delta's array); false for one without an
    /// index.
    fn add_tool_calls(&mut self, tool_calls: &Value) -> bool {
        for fragment in tool_calls.as_array().into_iter().flatten() {
            let Some(index) = fragment["index"].as_u64() else {
                return false;
            };
            let call = self.tool_calls.entry(index).or_default();
            let text = |pointer: &str| fragment.pointer(pointer).and_then(Value::as_str);
            if let Some(id) = text("/id") {
                call.id = id.to_owned();
            }
            if let Some(name) = text("/function/name") {
                call.name.push_str(name);
            }
            if let Some(arguments) = text("/function/arguments") {
                call.arguments.push_str(arguments);
            }
        }
        true
    }

    fn message(self) -> AssistantMessage {
        let calls: Vec<Value> = self
            .tool_calls
            .into_values()
            .map(|call| {
                serde_json::json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
        AssistantMessage {
            role: "assistant".to_owned(),
            content: Some(self.content),
            refusal: self.refusal,
            reasoning_content: self.reasoning,
            reasoning_details: (!self.reasoning_details.is_empty())
                .then_some(Value::Array(self.reasoning_details)),
            tool_calls: (!calls.is_empty()).then_some(Value::Array(calls)),
        }
    }
}

impl Recorder {
    /// Takes in one event.
    pub fn record(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Choices(choices) => {
                for choice in choices {
                    let recorded = self.choices.entry(choice.index).or_default();
                    if let Some(content) = &choice.delta.content {
                        recorded.content.push_str(content);
                    }
                    let delta = &choice.delta;
                    for (piece, text) in [
                        (&delta.refusal, &mut recorded.refusal),
                        (&delta.reasoning_content, &mut recorded.reasoning),
                    ] {
                        if let Some(piece) = piece {
                            text.get_or_insert_with(String::new).push_str(piece);
                        }
                    }
                    if let Some(Value::Array(details)) = &delta.reasoning_details {
                        recorded.reasoning_details.extend(details.iter().cloned());
                    }
                    if let Some(calls) = &delta.tool_calls {
                        self.unusable |= !recorded.add_tool_calls(calls);
                    }
                    if choice.finish_reason.is_some() {
                        recorded.finish_reason.clone_from(&choice.finish_reason);
                    }
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(usage.clone()),
            StreamEvent::Done => {}
        }
    }

    /// The answer the events made, if it can be stored as one.
    pub fn completion(self, model: &str) -> Option<ChatCompletion> {
        if self.unusable || self.choices.is_empty() {
            return None;
        }
        let choices = self
            .choices
            .into_iter()
            .map(|(index, mut recorded)| Choice {
                index,
                finish_reason: recorded.finish_reason.take(),
                message: recorded.message(),
                logprobs: None,
            })
            .collect();
        Some(ChatCompletion {
            id: String::new(),
            object: "chat.completion".to_owned(),
            created: 0,
            model: model.to_owned(),
            choices,
            usage: self.usage,
            system_fingerprint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testing::choice;
    use crate::cache::{CacheMode, CacheScope};
    use serde_json::json;

    fn completion(finish_reason: &str) -> ChatCompletion {
        serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        }))
        .unwrap()
    }

    const CONFIG: CacheConfig = CacheConfig {
        mode: CacheMode::Deterministic,
        scope: CacheScope::Principal,
        ttl_s: 60,
        l1_bytes: 1 << 20,
        l1_ttl_s: 60,
        max_entry_bytes: 1_000,
        truncated_answers: false,
    };

    #[test]
    fn entries_round_trip_and_know_their_age() {
        let entry = Entry {
            stored_ms: 10_000,
            expires_ms: 70_000,
            completion: completion("stop"),
        };
        let back = Entry::from_json(&entry.to_json()).unwrap();
        assert_eq!(back, entry);
        assert_eq!(entry.age_s(19_999), 9);
        assert!(entry.is_servable(69_999, None));
        assert!(!entry.is_servable(70_000, None));
        assert!(entry.is_servable(15_000, Some(5)));
        assert!(!entry.is_servable(16_000, Some(5)));
        assert_eq!(Entry::from_json("{\"t\": 1}"), None);
    }

    #[test]
    fn only_finished_answers_that_fit_are_stored() {
        assert!(storable(&completion("stop"), 500, &CONFIG));
        assert!(!storable(&completion("stop"), 1_001, &CONFIG));
        assert!(!storable(&completion("length"), 500, &CONFIG));
        assert!(!storable(&completion("content_filter"), 500, &CONFIG));
        let truncated = CacheConfig {
            truncated_answers: true,
            ..CONFIG
        };
        assert!(storable(&completion("length"), 500, &truncated));
    }

    #[test]
    fn a_recorded_stream_replays_as_the_same_answer() {
        let chunk = |content: Option<&str>, finish: Option<&str>| {
            let delta = Delta {
                content: content.map(str::to_owned),
                ..Delta::default()
            };
            StreamEvent::Choices(vec![choice(delta, finish)])
        };
        let mut recorder = Recorder::default();
        for event in [
            chunk(Some(""), None),
            chunk(Some("Hi"), None),
            chunk(Some(" there"), None),
            chunk(None, Some("stop")),
            StreamEvent::Usage(Usage::new(3, 2)),
            StreamEvent::Done,
        ] {
            recorder.record(&event);
        }
        let recorded = recorder.completion("gpt-x").unwrap();
        let mut expected = completion("stop");
        expected.id = String::new();
        expected.created = 0;
        assert_eq!(recorded, expected);

        let entry = Entry {
            stored_ms: 0,
            expires_ms: 1,
            completion: recorded,
        };
        let mut replayed = Recorder::default();
        entry
            .events()
            .iter()
            .for_each(|event| replayed.record(event));
        assert_eq!(replayed.completion("gpt-x"), Some(entry.completion.clone()));
    }

    #[test]
    fn streamed_tool_calls_are_put_together_and_replay_with_their_index() {
        let fragment = |calls: Value, finish: Option<&str>| {
            StreamEvent::Choices(vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    tool_calls: Some(calls),
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }])
        };
        let mut recorder = Recorder::default();
        for event in [
            fragment(
                json!([{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]),
                None,
            ),
            fragment(
                json!([{"index": 0, "function": {"arguments": "{\"a\":"}}]),
                None,
            ),
            fragment(
                json!([{"index": 1, "id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]),
                None,
            ),
            fragment(
                json!([{"index": 0, "function": {"arguments": "1}"}}]),
                Some("tool_calls"),
            ),
            StreamEvent::Done,
        ] {
            recorder.record(&event);
        }
        let answer = recorder.completion("gpt-x").unwrap();
        assert_eq!(
            answer.choices[0].message.tool_calls,
            Some(json!([
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ]))
        );
        assert_eq!(
            answer.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        let entry = Entry {
            stored_ms: 0,
            expires_ms: 1,
            completion: answer,
        };
        let StreamEvent::Choices(first) = &entry.events()[0] else {
            panic!("a chunk first");
        };
        assert_eq!(first[0].delta.tool_calls.as_ref().unwrap()[1]["index"], 1);
        let mut replayed = Recorder::default();
        entry
            .events()
            .iter()
            .for_each(|event| replayed.record(event));
        assert_eq!(replayed.completion("gpt-x"), Some(entry.completion.clone()));

        let mut unindexed = Recorder::default();
        unindexed.record(&fragment(
            json!([{"id": "c1", "function": {"name": "f"}}]),
            None,
        ));
        assert_eq!(
            unindexed.completion("gpt-x"),
            None,
            "fragments without an index"
        );
    }
}
