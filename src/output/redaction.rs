//! Personal data and secrets out of an answer (`REDACT_PII=output` or `both`), in every
//! field that carries the model's text: the content, the refusal, the reasoning and the
//! arguments of tool calls (as JSON, see [`JsonRedactor`]). Signed reasoning
//! (`reasoning_details` of type `reasoning.text`) is dropped: its text cannot be changed
//! without breaking its signature, and is already in `reasoning_content`, redacted. Log
//! probabilities repeat the text token by token, which cannot be redacted without
//! changing the tokens, and audio cannot be read at all: asking for either while redaction is on is refused before any
//! upstream call ([`refuse_unredactable`]), and log probabilities an upstream sends anyway
//! are dropped.

use std::collections::BTreeMap;

use guard_scan::pii::{self, JsonRedactor, StreamRedactor};
use serde_json::{json, Value};

use crate::api::chat::{ChatCompletion, ChatRequest, Delta};
use crate::error::{ErrorKind, GatewayError};

/// 400 `redaction_unsupported` for a request that asks for output the gateway cannot
/// redact: `logprobs` / `top_logprobs` (the tokens are the unredacted text) or audio
/// (`modalities` with `audio`, or `audio`).
pub fn refuse_unredactable(request: &ChatRequest) -> Result<(), GatewayError> {
    let field = |name: &str| request.passthrough.get(name);
    let refused = |param: &str, what: &str| {
        Err(GatewayError::new(
            ErrorKind::RedactionUnsupported,
            format!(
                "{what} cannot be redacted, and this gateway redacts personal data from answers; \
                 leave out {param}"
            ),
        )
        .with_param(param))
    };
    if field("logprobs").is_some_and(|value| value == &Value::Bool(true)) {
        return refused(
            "logprobs",
            "log probabilities repeat the answer token by token and",
        );
    }
    if field("top_logprobs").is_some_and(|value| !value.is_null()) {
        return refused(
            "top_logprobs",
            "log probabilities repeat the answer token by token and",
        );
    }
    let audio_modality = field("modalities")
        .and_then(Value::as_array)
        .is_some_and(|modalities| modalities.iter().any(|m| m == "audio"));
    if audio_modality {
        return refused("modalities", "audio answers");
    }
    if field("audio").is_some_and(|value| !value.is_null()) {
        return refused("audio", "audio answers");
    }
    Ok(())
}

/// Redacts a complete answer in place; how many matches were replaced.
pub fn redact_completion(completion: &mut ChatCompletion) -> u32 {
    let mut replaced = 0;
    for choice in &mut completion.choices {
        let message = &mut choice.message;
        for text in [
            &mut message.content,
            &mut message.refusal,
            &mut message.reasoning_content,
        ]
        .into_iter()
        .flatten()
        {
            replaced += pii::redact_in_place(text);
        }
        for call in message.tool_calls.iter_mut().flat_map(calls_mut) {
            if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
                replaced += pii::redact_json_in_place(arguments);
            }
        }
        drop_signed_reasoning(&mut message.reasoning_details);
        choice.logprobs = None;
    }
    replaced
}

/// Leaves only the opaque entries of `reasoning_details` (see the module's documentation).
fn drop_signed_reasoning(details: &mut Option<Value>) {
    if let Some(Value::Array(entries)) = details {
        entries.retain(|entry| entry["type"] != "reasoning.text");
        if entries.is_empty() {
            *details = None;
        }
    }
}

/// Redacts the text of one choice of a streamed answer as it passes, each field with a
/// redactor of its own (a match never spans two fields).
#[derive(Debug, Default)]
pub struct ChoiceRedactor {
    content: StreamRedactor,
    refusal: StreamRedactor,
    reasoning: StreamRedactor,
    /// The arguments of each tool call, by its stream `index`.
    tool_arguments: BTreeMap<u64, JsonRedactor>,
    /// Matches replaced so far in this choice.
    replaced: u32,
}

impl ChoiceRedactor {
    /// Redacts `delta` in place. On the choice's `last` chunk (the one with its finish
    /// reason), everything still held goes out with it.
    pub fn redact(&mut self, delta: &mut Delta, last: bool) {
        for (redactor, field) in [
            (&mut self.content, &mut delta.content),
            (&mut self.refusal, &mut delta.refusal),
            (&mut self.reasoning, &mut delta.reasoning_content),
        ] {
            let mut text = field
                .as_deref()
                .map_or_else(String::new, |piece| redactor.push(piece));
            if last {
                text.push_str(&redactor.finish());
            }
            if field.is_some() || !text.is_empty() {
                *field = Some(text);
            }
        }
        drop_signed_reasoning(&mut delta.reasoning_details);
        let calls = delta.tool_calls.iter_mut().flat_map(calls_mut);
        for (position, call) in calls.enumerate() {
            let index = call["index"].as_u64().unwrap_or(position as u64);
            if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
                *arguments = self
                    .tool_arguments
                    .entry(index)
                    .or_default()
                    .push(arguments);
            }
        }
        if last {
            self.release_tool_arguments(delta);
        }
        let redactors = [&mut self.content, &mut self.refusal, &mut self.reasoning];
        self.replaced += redactors
            .into_iter()
            .map(StreamRedactor::take_replaced)
            .sum::<u32>();
        let arguments = self.tool_arguments.values_mut();
        self.replaced += arguments.map(JsonRedactor::take_replaced).sum::<u32>();
    }

    /// Matches replaced in this choice so far.
    pub fn replaced(&self) -> u32 {
        self.replaced
    }

    /// Everything still held, as a delta; `None` when nothing is.
    pub fn release(&mut self) -> Option<Delta> {
        let mut delta = Delta::default();
        self.redact(&mut delta, true);
        let empty = delta.content.is_none()
            && delta.refusal.is_none()
            && delta.reasoning_content.is_none()
            && delta.tool_calls.is_none();
        (!empty).then_some(delta)
    }

    /// Adds what the tool-call redactors hold to `delta`: to its fragment of the same call,
    /// or as a fragment of its own.
    fn release_tool_arguments(&mut self, delta: &mut Delta) {
        for (index, mut redactor) in std::mem::take(&mut self.tool_arguments) {
            let rest = redactor.finish();
            self.replaced += redactor.take_replaced();
            if rest.is_empty() {
                continue;
            }
            let calls = delta.tool_calls.get_or_insert_with(|| json!([]));
            let Some(calls) = calls.as_array_mut() else {
                continue;
            };
            let same_call = calls
                .iter_mut()
                .find(|call| call["index"].as_u64() == Some(index))
                .and_then(|call| call.pointer_mut("/function/arguments"));
            match same_call {
                Some(Value::String(arguments)) => arguments.push_str(&rest),
                _ => calls.push(json!({"index": index, "function": {"arguments": rest}})),
            }
        }
    }
}

/// The tool calls of a `tool_calls` value (an array of call objects).
fn calls_mut(tool_calls: &mut Value) -> impl Iterator<Item = &mut Value> {
    tool_calls.as_array_mut().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::validate::parse_for_tests;

    fn tool_delta(index: u64, arguments: &str) -> Delta {
        Delta {
            tool_calls: Some(json!([{"index": index, "function": {"arguments": arguments}}])),
            ..Delta::default()
        }
    }

    fn arguments_of(delta: &Delta) -> Vec<(u64, String)> {
        delta
            .tool_calls
            .iter()
            .flat_map(|calls| calls.as_array().cloned().unwrap_or_default())
            .map(|call| {
                let index = call["index"].as_u64().unwrap_or(99);
                let arguments = call["function"]["arguments"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (index, arguments)
            })
            .collect()
    }

    #[test]
    fn signed_reasoning_is_dropped_and_opaque_reasoning_kept() {
        let details = json!([
            {"type": "reasoning.text", "text": "mail jane@example.com", "signature": "s", "format": "anthropic"},
            {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic"}]);
        let mut delta = Delta {
            reasoning_details: Some(details.clone()),
            ..Delta::default()
        };
        ChoiceRedactor::default().redact(&mut delta, true);
        assert_eq!(
            delta.reasoning_details,
            Some(json!([{"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic"}]))
        );
        let mut only_signed = Delta {
            reasoning_details: Some(json!([details[0].clone()])),
            ..Delta::default()
        };
        ChoiceRedactor::default().redact(&mut only_signed, false);
        assert_eq!(only_signed.reasoning_details, None);
    }

    #[test]
    fn every_text_field_of_a_stream_is_redacted() {
        let mut redactor = ChoiceRedactor::default();
        let mut pieces = Vec::new();
        let mut out: BTreeMap<&str, String> = BTreeMap::new();
        for (field, piece) in [
            ("content", "mail jane.d"),
            ("refusal", "I won't share 123-4"),
            ("reasoning", "the key is sk-proj-0123456789ab"),
            ("content", "oe@example.com now"),
            ("refusal", "5-6789 with you."),
            ("reasoning", "cdefghijklmn, hidden"),
        ] {
            let mut delta = Delta::default();
            let text = Some(piece.to_owned());
            match field {
                "content" => delta.content = text,
                "refusal" => delta.refusal = text,
                _ => delta.reasoning_content = text,
            }
            pieces.push(delta);
        }
        let last = pieces.len() - 1;
        for (i, mut delta) in pieces.into_iter().enumerate() {
            redactor.redact(&mut delta, i == last);
            for (name, text) in [
                ("content", delta.content),
                ("refusal", delta.refusal),
                ("reasoning", delta.reasoning_content),
            ] {
                out.entry(name)
                    .or_default()
                    .push_str(&text.unwrap_or_default());
            }
        }
        assert_eq!(out["content"], "mail [REDACTED_EMAIL] now");
        assert_eq!(out["refusal"], "I won't share [REDACTED_SSN] with you.");
        assert_eq!(out["reasoning"], "the key is [REDACTED_SECRET], hidden");
    }

    #[test]
    fn tool_call_arguments_are_redacted_across_deltas_and_released_at_the_end() {
        let mut redactor = ChoiceRedactor::default();
        let mut released: BTreeMap<u64, String> = BTreeMap::new();
        let deltas = [
            tool_delta(0, "{\"to\":\"jane.d"),
            tool_delta(1, "{\"card\":\"4111 1111"),
            tool_delta(0, "oe@example.com\",\"x\":1}"),
            tool_delta(1, " 1111 1111\"}"),
        ];
        for mut delta in deltas {
            redactor.redact(&mut delta, false);
            for (index, arguments) in arguments_of(&delta) {
                released.entry(index).or_default().push_str(&arguments);
            }
        }
        let rest = redactor.release().unwrap();
        for (index, arguments) in arguments_of(&rest) {
            released.entry(index).or_default().push_str(&arguments);
        }
        let parsed = |index| serde_json::from_str::<Value>(&released[&index]).unwrap();
        assert_eq!(parsed(0), json!({"to": "[REDACTED_EMAIL]", "x": 1}));
        assert_eq!(parsed(1), json!({"card": "[REDACTED_CARD]"}));
        assert!(redactor.release().is_none(), "nothing is held twice");
    }

    #[test]
    fn complete_answers_are_redacted_in_every_field() {
        let mut completion: ChatCompletion = serde_json::from_value(json!({
            "choices": [{"index": 0, "message": {
                "role": "assistant",
                "content": "call +1 415 555 2671",
                "refusal": "no, 123-45-6789",
                "reasoning_content": "ip 10.0.0.1",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "send", "arguments": "{\"to\":\"a@example.com\"}"}}]
            }, "logprobs": {"content": [{"token": "call", "logprob": -0.1}]}, "finish_reason": "tool_calls"}]
        }))
        .unwrap();
        redact_completion(&mut completion);
        let choice = &completion.choices[0];
        let message = &choice.message;
        assert_eq!(message.content.as_deref(), Some("call [REDACTED_PHONE]"));
        assert_eq!(message.refusal.as_deref(), Some("no, [REDACTED_SSN]"));
        assert_eq!(
            message.reasoning_content.as_deref(),
            Some("ip [REDACTED_IP]")
        );
        let arguments = message.tool_calls.as_ref().unwrap()[0]["function"]["arguments"]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            json!({"to": "[REDACTED_EMAIL]"})
        );
        assert_eq!(choice.logprobs, None);
    }

    #[test]
    fn output_that_cannot_be_redacted_is_refused() {
        let request = |extra: &str| {
            parse_for_tests(&format!(
                r#"{{"model": "mock", "messages": [{{"role": "user", "content": "hi"}}]{extra}}}"#
            ))
        };
        for (extra, param) in [
            (r#", "logprobs": true"#, "logprobs"),
            (r#", "logprobs": true, "top_logprobs": 3"#, "logprobs"),
            (r#", "top_logprobs": 2"#, "top_logprobs"),
            (r#", "modalities": ["text", "audio"]"#, "modalities"),
            (r#", "audio": {"voice": "alloy", "format": "wav"}"#, "audio"),
        ] {
            let error = refuse_unredactable(&request(extra)).unwrap_err();
            assert_eq!(
                (error.status(), error.code()),
                (400, "redaction_unsupported")
            );
            assert_eq!(error.param.as_deref(), Some(param), "{extra}");
        }
        for extra in ["", r#", "logprobs": false"#, r#", "modalities": ["text"]"#] {
            assert!(refuse_unredactable(&request(extra)).is_ok(), "{extra}");
        }
    }
}
