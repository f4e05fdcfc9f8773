//! Answer-quality signals: what an answer looked like (its length, how it finished,
//! whether it was empty or a refusal, what was redacted from it), counted as its pieces
//! pass through the encoder, so that no answer is read twice.

use serde::Serialize;

use crate::api::chat::{ChatCompletion, ChunkChoice};

/// The finish reasons that become metric labels; any other an upstream sends is `other`,
/// and an answer that never finished (a broken stream) is `none`.
const FINISH_REASONS: &[&str] = &["stop", "length", "content_filter", "tool_calls"];

/// What one answer looked like, for its log line and the quality metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnswerQuality {
    /// Bytes of text the model wrote: content, refusal, reasoning and tool calls.
    pub answer_bytes: u64,
    /// How the first choice finished (`stop`, `length`, `content_filter`, `tool_calls`,
    /// `other`); absent when it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    /// The model wrote nothing: no text and no tool call.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_answer: bool,
    /// The model refused: it wrote a refusal, or the provider stopped it for one (a
    /// refusal or safety stop reason arrives as `content_filter`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Personal data and secrets replaced in the answer (`REDACT_PII=output` or `both`).
    #[serde(skip_serializing_if = "is_zero")]
    pub redacted_output: u32,
    /// Completion tokens per prompt token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_prompt_ratio: Option<f64>,
    /// Completion tokens per second of generation (after the first token, for a stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    /// Whether a tool call was written (an answer of only tool calls is not empty).
    #[serde(skip)]
    called_tools: bool,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl AnswerQuality {
    /// Takes in one streamed chunk's choices, as the upstream sent them.
    pub fn add_chunk(&mut self, choices: &[ChunkChoice]) {
        for choice in choices {
            let delta = &choice.delta;
            self.add_piece(
                delta.text_len(),
                delta.tool_calls.is_some(),
                delta.refusal.as_deref(),
                (choice.index, choice.finish_reason.as_deref()),
            );
        }
    }

    /// What a complete answer looks like, as the upstream sent it.
    pub fn of_completion(completion: &ChatCompletion) -> Self {
        let mut quality = AnswerQuality::default();
        for choice in &completion.choices {
            let message = &choice.message;
            quality.add_piece(
                message.text_len(),
                message.tool_calls.is_some(),
                message.refusal.as_deref(),
                (choice.index, choice.finish_reason.as_deref()),
            );
        }
        quality
    }

    /// Takes in a piece of one choice (a chunk's delta, or a whole message): its bytes of
    /// text, whether it calls tools, its refusal, and `(choice index, finish reason)`.
    fn add_piece(
        &mut self,
        text_bytes: usize,
        calls_tools: bool,
        refusal: Option<&str>,
        (index, finish_reason): (u32, Option<&str>),
    ) {
        self.answer_bytes += text_bytes as u64;
        self.called_tools |= calls_tools;
        self.refused |= refusal.is_some_and(|text| !text.is_empty());
        if let (0, Some(reason)) = (index, finish_reason) {
            self.finish(reason);
        }
    }

    /// The first choice finished for `reason`.
    fn finish(&mut self, reason: &str) {
        let reason = match reason {
            "function_call" => "tool_calls",
            reason => FINISH_REASONS
                .iter()
                .copied()
                .find(|known| *known == reason)
                .unwrap_or("other"),
        };
        self.refused |= reason == "content_filter";
        self.finish_reason = Some(reason);
    }

    /// Derives what needs the whole request: emptiness (of an answer that finished),
    /// the answer/prompt ratio, and the generation speed (`generation_ms`: the time the
    /// tokens took to arrive; none for a cached answer).
    pub fn conclude(
        &mut self,
        prompt_tokens: u64,
        completion_tokens: u64,
        generation_ms: Option<u64>,
    ) {
        self.empty_answer =
            self.finish_reason.is_some() && self.answer_bytes == 0 && !self.called_tools;
        self.answer_prompt_ratio =
            (prompt_tokens > 0).then(|| round(completion_tokens as f64 / prompt_tokens as f64));
        self.tokens_per_second = generation_ms
            .filter(|ms| *ms > 0 && completion_tokens > 0)
            .map(|ms| round(completion_tokens as f64 * 1_000.0 / ms as f64));
    }

    /// The finish reason as a metric label.
    pub fn finish_label(&self) -> &'static str {
        self.finish_reason.unwrap_or("none")
    }
}

/// Three decimals: enough for a dashboard, short in the log line.
fn round(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::Delta;
    use crate::api::testing::choice;
    use serde_json::json;

    fn chunk(content: Option<&str>, finish: Option<&str>) -> ChunkChoice {
        let delta = Delta {
            content: content.map(str::to_owned),
            ..Delta::default()
        };
        choice(delta, finish)
    }

    #[test]
    fn a_stream_is_measured_piece_by_piece() {
        let mut quality = AnswerQuality::default();
        quality.add_chunk(&[chunk(Some("Hello, "), None)]);
        quality.add_chunk(&[chunk(Some("wörld"), None)]);
        quality.add_chunk(&[chunk(None, Some("length"))]);
        quality.conclude(10, 30, Some(1_500));
        assert_eq!(quality.answer_bytes, 13);
        assert_eq!(quality.finish_label(), "length");
        assert!(!quality.empty_answer && !quality.refused);
        assert_eq!(quality.answer_prompt_ratio, Some(3.0));
        assert_eq!(quality.tokens_per_second, Some(20.0));
    }

    #[test]
    fn empty_refused_and_unknown_endings_are_told_apart() {
        let mut empty = AnswerQuality::default();
        empty.add_chunk(&[chunk(Some(""), Some("stop"))]);
        empty.conclude(5, 0, Some(100));
        assert!(empty.empty_answer);
        assert_eq!(empty.tokens_per_second, None);

        let mut filtered = AnswerQuality::default();
        filtered.add_chunk(&[chunk(None, Some("content_filter"))]);
        assert!(filtered.refused);

        let mut odd = AnswerQuality::default();
        odd.add_chunk(&[chunk(Some("x"), Some("a-reason-nobody-knows"))]);
        assert_eq!(odd.finish_label(), "other");

        let mut broken = AnswerQuality::default();
        broken.add_chunk(&[chunk(Some(""), None)]);
        broken.conclude(5, 0, None);
        assert!(
            !broken.empty_answer,
            "an unfinished answer is broken, not empty"
        );
        assert_eq!(broken.finish_label(), "none");
    }

    #[test]
    fn a_complete_answer_of_tool_calls_or_a_refusal() {
        let completion: ChatCompletion = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "function_call", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "c", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]}}]
        }))
        .unwrap();
        let mut quality = AnswerQuality::of_completion(&completion);
        quality.conclude(0, 4, None);
        assert_eq!(
            (quality.finish_label(), quality.empty_answer),
            ("tool_calls", false)
        );
        assert_eq!(
            (quality.answer_bytes, quality.answer_prompt_ratio),
            (3, None)
        );

        let refusal: ChatCompletion = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": null, "refusal": "I can't help with that."}}]
        }))
        .unwrap();
        assert!(AnswerQuality::of_completion(&refusal).refused);
    }
}
