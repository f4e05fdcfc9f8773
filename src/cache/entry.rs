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
        serde_json::from_str(text).ok()
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

/// Rebuilds the complete answer from a stream's events as they pass. Streamed tool-call
/// fragments are not reassembled: such an answer is not recorded.
#[derive(Debug, Default)]
pub struct Recorder {
    choices: BTreeMap<u32, RecordedChoice>,
    usage: Option<Usage>,
    has_tool_calls: bool,
}

#[derive(Debug, Default)]
struct RecordedChoice {
    content: String,
    refusal: Option<String>,
    reasoning: Option<String>,
    finish_reason: Option<String>,
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
                    if choice.finish_reason.is_some() {
                        recorded.finish_reason.clone_from(&choice.finish_reason);
                    }
                    self.has_tool_calls |= choice.delta.tool_calls.is_some();
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(usage.clone()),
            StreamEvent::Done => {}
        }
    }

    /// The answer the events made, if it can be stored as one.
    pub fn completion(self, model: &str) -> Option<ChatCompletion> {
        if self.has_tool_calls || self.choices.is_empty() {
            return None;
        }
        let choices = self
            .choices
            .into_iter()
            .map(|(index, recorded)| Choice {
                index,
                message: AssistantMessage {
                    role: "assistant".to_owned(),
                    content: Some(recorded.content),
                    refusal: recorded.refusal,
                    reasoning_content: recorded.reasoning,
                    tool_calls: None,
                },
                finish_reason: recorded.finish_reason,
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
            StreamEvent::Choices(vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: content.map(str::to_owned),
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }])
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
    fn tool_calls_replay_with_their_index_but_are_not_recorded_from_streams() {
        let mut answer = completion("tool_calls");
        answer.choices[0].message.tool_calls = Some(
            json!([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
        );
        let entry = Entry {
            stored_ms: 0,
            expires_ms: 1,
            completion: answer,
        };
        let StreamEvent::Choices(first) = &entry.events()[0] else {
            panic!("a chunk first");
        };
        assert_eq!(first[0].delta.tool_calls.as_ref().unwrap()[0]["index"], 0);
        let mut recorder = Recorder::default();
        entry
            .events()
            .iter()
            .for_each(|event| recorder.record(event));
        assert_eq!(recorder.completion("gpt-x"), None);
    }
}
