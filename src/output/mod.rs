//! The answer on its way out: provider-neutral events become the client's SSE bytes
//! (OpenAI `chat.completion.chunk`s, or the surface's events: Anthropic's, Responses'), and
//! token usage is counted as they pass.
//!
//! [`ChunkEncoder`] writes each event the moment it arrives; [`StreamTranslator`] puts the
//! SSE parser, a provider's decoder and the encoder together so that every piece of
//! upstream bytes is answered with the client bytes it completes, and nothing more is held
//! than the unfinished event.

pub mod redaction;

use serde::Serialize;

use self::redaction::{redact_completion, ChoiceRedactor};
use crate::api::chat::{estimate_tokens, ChatCompletion, ChatCompletionChunk, ChunkChoice, Usage};
use crate::api::{messages, responses, EventStream, Surface};
use crate::cache::entry::Recorder;
use crate::error::GatewayError;
use crate::observe::quality::AnswerQuality;
use crate::upstream::sse::SseParser;
use crate::upstream::{unreachable, StreamDecoder, StreamEvent};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

/// What every chunk of one answer shares.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerMeta {
    /// The answer's id (see [`Surface::answer_id`]).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model reported to the client.
    pub model: String,
    /// Whether the client asked for the final usage chunk.
    pub include_usage: bool,
    /// Prompt size estimate, used when the upstream reports no usage.
    pub estimated_prompt_tokens: u64,
    /// Replace personal data and secrets in the answer's text with markers.
    pub redact_pii: bool,
    /// The wire format the client reads.
    pub surface: Surface,
    /// What the answer repeats of its request (a `response` object's `instructions`,
    /// `tools`, ...); empty for the other surfaces.
    pub echo: Rc<Map<String, Value>>,
}

impl AnswerMeta {
    /// Stamps a complete answer with the gateway's id, time and model (redacting it when
    /// asked to); returns it with what it looked like.
    pub fn stamp(&self, mut completion: ChatCompletion) -> (ChatCompletion, AnswerQuality) {
        let mut quality = AnswerQuality::of_completion(&completion);
        completion.id.clone_from(&self.id);
        completion.object = "chat.completion".to_owned();
        completion.created = self.created;
        completion.model.clone_from(&self.model);
        if self.redact_pii {
            quality.redacted_output = redact_completion(&mut completion);
        }
        (completion, quality)
    }

    /// A complete answer's usage as the upstream reported it, or estimated from its text.
    pub fn usage_of(&self, completion: &ChatCompletion) -> Usage {
        completion.usage.clone().unwrap_or_else(|| {
            let bytes = completion
                .choices
                .iter()
                .map(|choice| choice.message.text_len())
                .sum();
            Usage::new(self.estimated_prompt_tokens, estimate_tokens(bytes))
        })
    }

    /// A complete answer's body in the client's format.
    pub fn answer_body(&self, completion: &ChatCompletion, usage: &Usage) -> String {
        self.surface.answer_body(completion, usage, &self.echo)
    }

    /// The surface's event writer; `None` for Chat Completions, whose chunks are written
    /// as they are.
    fn event_stream(&self) -> Option<Box<dyn EventStream>> {
        match self.surface {
            Surface::ChatCompletions => None,
            Surface::Messages => Some(Box::new(messages::EventWriter::new(
                &self.id,
                &self.model,
                self.estimated_prompt_tokens,
            ))),
            Surface::Responses => Some(Box::new(responses::EventWriter::new(
                &self.id,
                self.created,
                &self.model,
                &self.echo,
            ))),
        }
    }
}

/// How a stream ended, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    /// Still running.
    Open,
    /// The upstream finished and `[DONE]` was sent.
    Completed,
    /// The upstream failed or stopped early; an error event was sent.
    Broken,
}

/// Encodes neutral events as the client's SSE, one event at a time.
#[derive(Debug)]
pub struct ChunkEncoder {
    meta: AnswerMeta,
    /// The surface's event writer (which keeps state: the open content block or output
    /// item); `None` writes OpenAI chunks.
    events: Option<Box<dyn EventStream>>,
    usage: Option<Usage>,
    /// What the answer looks like so far; its bytes of text also make the usage estimate.
    quality: AnswerQuality,
    outcome: StreamOutcome,
    error: Option<GatewayError>,
    /// Rebuilds the complete answer for the cache, when asked to.
    recorder: Option<Recorder>,
    /// One per choice, when `meta.redact_pii`: holds back what may be the start of
    /// personal data until it is known.
    redactors: BTreeMap<u32, ChoiceRedactor>,
}

impl ChunkEncoder {
    /// An encoder for one answer.
    pub fn new(meta: AnswerMeta) -> Self {
        ChunkEncoder {
            events: meta.event_stream(),
            meta,
            usage: None,
            quality: AnswerQuality::default(),
            outcome: StreamOutcome::Open,
            error: None,
            recorder: None,
            redactors: BTreeMap::new(),
        }
    }

    /// Records the answer as it passes, so that it can be stored once complete: called
    /// before the first event, so that the whole answer is recorded.
    pub fn record(&mut self) {
        self.recorder = Some(Recorder::default());
    }

    /// The id of the answer being written.
    pub fn answer_id(&self) -> &str {
        &self.meta.id
    }

    /// The complete answer (with the answer's id and time), if it was recorded and the
    /// stream completed.
    pub fn recorded(&mut self) -> Option<ChatCompletion> {
        if self.outcome != StreamOutcome::Completed {
            return None;
        }
        let mut completion = self.recorder.take()?.completion(&self.meta.model)?;
        completion.id.clone_from(&self.meta.id);
        completion.created = self.meta.created;
        Some(completion)
    }

    /// Appends the SSE bytes for `event` to `out`.
    pub fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) {
        if self.outcome != StreamOutcome::Open {
            return;
        }
        let event = match event {
            StreamEvent::Choices(mut choices) => {
                self.quality.add_chunk(&choices);
                if self.meta.redact_pii {
                    self.redact(&mut choices);
                }
                StreamEvent::Choices(choices)
            }
            StreamEvent::Done if self.meta.redact_pii => {
                // Text still held for a choice that never finished goes out before the end.
                let rest = self.release_held();
                if !rest.is_empty() {
                    self.write_chunk(&rest, None, out);
                    if let Some(recorder) = &mut self.recorder {
                        recorder.record(&StreamEvent::Choices(rest));
                    }
                }
                StreamEvent::Done
            }
            other => other,
        };
        if let Some(recorder) = &mut self.recorder {
            recorder.record(&event);
        }
        match event {
            StreamEvent::Choices(choices) => self.write_chunk(&choices, None, out),
            StreamEvent::Usage(usage) => self.usage = Some(usage),
            StreamEvent::Done => {
                let usage = self.usage();
                match &mut self.events {
                    Some(writer) => writer.done(&usage, out),
                    None => {
                        if self.meta.include_usage {
                            self.write_chunk(&[], Some(&usage), out);
                        }
                        out.extend_from_slice(b"data: [DONE]\n\n");
                    }
                }
                self.outcome = StreamOutcome::Completed;
            }
        }
    }

    /// Redacts the choices in place: each piece goes through its choice's redactor, and a
    /// choice's last chunk (with its finish reason) carries what was held. Log
    /// probabilities are dropped (see [`redaction`]).
    fn redact(&mut self, choices: &mut [ChunkChoice]) {
        for choice in choices {
            let redactor = self.redactors.entry(choice.index).or_default();
            redactor.redact(&mut choice.delta, choice.finish_reason.is_some());
            choice.logprobs = None;
        }
    }

    /// Chunks carrying what every redactor still holds (redacted), emptying them.
    fn release_held(&mut self) -> Vec<ChunkChoice> {
        self.redactors
            .iter_mut()
            .filter_map(|(index, redactor)| {
                redactor.release().map(|delta| ChunkChoice {
                    index: *index,
                    delta,
                    finish_reason: None,
                    logprobs: None,
                })
            })
            .collect()
    }

    /// Ends the stream with an OpenAI error event (no `[DONE]`, so clients know the answer
    /// is incomplete); text held by the redactors goes out (redacted) first.
    pub fn fail(&mut self, error: GatewayError, out: &mut Vec<u8>) {
        if self.outcome != StreamOutcome::Open {
            return;
        }
        let rest = self.release_held();
        if !rest.is_empty() {
            self.write_chunk(&rest, None, out);
        }
        match &mut self.events {
            Some(writer) => writer.fail(&error, out),
            None => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(error.to_json().as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
        self.outcome = StreamOutcome::Broken;
        self.error = Some(error);
    }

    /// The usage the upstream reported, or an estimate from what was delivered.
    pub fn usage(&self) -> Usage {
        self.usage.clone().unwrap_or_else(|| {
            Usage::new(
                self.meta.estimated_prompt_tokens,
                estimate_tokens(self.quality.answer_bytes as usize),
            )
        })
    }

    /// What the answer looked like so far, redactions included.
    pub fn quality(&self) -> AnswerQuality {
        let mut quality = self.quality.clone();
        quality.redacted_output = self.redactors.values().map(ChoiceRedactor::replaced).sum();
        quality
    }

    /// Whether the usage came from the upstream rather than an estimate.
    pub fn usage_is_reported(&self) -> bool {
        self.usage.is_some()
    }

    /// How the stream ended so far.
    pub fn outcome(&self) -> StreamOutcome {
        self.outcome
    }

    /// The error that broke the stream, if one did.
    pub fn error(&self) -> Option<&GatewayError> {
        self.error.as_ref()
    }

    /// Writes one chunk: `choices` (OpenAI's or Anthropic's events), or OpenAI's usage chunk.
    fn write_chunk(&mut self, choices: &[ChunkChoice], usage: Option<&Usage>, out: &mut Vec<u8>) {
        if let Some(writer) = &mut self.events {
            writer.chunk(choices, out);
            return;
        }
        let chunk = ChatCompletionChunk {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            choices,
            usage,
        };
        out.extend_from_slice(b"data: ");
        write_json(&chunk, out);
        out.extend_from_slice(b"\n\n");
    }
}

fn write_json(value: &impl Serialize, out: &mut Vec<u8>) {
    // Our own types hold only strings, numbers and JSON values: serializing cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Turns an upstream SSE byte stream into client SSE bytes, piece by piece, writing through
/// the answer's [`ChunkEncoder`] (kept by the caller, who also needs its usage and outcome).
pub struct StreamTranslator {
    parser: SseParser,
    decoder: Box<dyn StreamDecoder>,
    events: Vec<crate::upstream::sse::SseEvent>,
}

impl StreamTranslator {
    /// A translator using a provider's `decoder`.
    pub fn new(decoder: Box<dyn StreamDecoder>) -> Self {
        StreamTranslator {
            parser: SseParser::default(),
            decoder,
            events: Vec::new(),
        }
    }

    /// Feeds upstream bytes; returns the client bytes they complete (possibly none).
    pub fn push(&mut self, bytes: &[u8], encoder: &mut ChunkEncoder) -> Vec<u8> {
        let mut out = Vec::new();
        if encoder.outcome() != StreamOutcome::Open {
            return out;
        }
        if self.parser.push(bytes, &mut self.events).is_err() {
            encoder.fail(
                unreachable("it sent a stream event that is too large"),
                &mut out,
            );
            return out;
        }
        for event in self.events.drain(..) {
            match self.decoder.decode(&event) {
                Ok(decoded) => {
                    for neutral in decoded {
                        encoder.encode(neutral, &mut out);
                    }
                }
                Err(error) => {
                    encoder.fail(error, &mut out);
                    break;
                }
            }
        }
        out
    }

    /// The upstream body ended (`None`) or failed (`Some(error)`: it broke, or went
    /// silent too long): returns the closing bytes, an error event unless the stream had
    /// already completed.
    pub fn end(&mut self, failure: Option<GatewayError>, encoder: &mut ChunkEncoder) -> Vec<u8> {
        let mut out = Vec::new();
        if encoder.outcome() == StreamOutcome::Open {
            let error = failure
                .unwrap_or_else(|| unreachable("the stream ended before the answer was complete"));
            encoder.fail(error, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::Delta;
    use crate::config::source::Secret;
    use crate::upstream::openai::OpenAi;
    use crate::upstream::HttpProvider;
    use serde_json::Value;

    fn meta(include_usage: bool) -> AnswerMeta {
        AnswerMeta {
            id: "chatcmpl-r1".into(),
            created: 1_700_000_000,
            model: "gpt-x".into(),
            include_usage,
            estimated_prompt_tokens: 7,
            redact_pii: false,
            surface: Surface::ChatCompletions,
            echo: Default::default(),
        }
    }

    /// A translator for an OpenAI upstream with the encoder it writes through.
    struct Pipe {
        translator: StreamTranslator,
        encoder: ChunkEncoder,
    }

    impl Pipe {
        fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
            self.translator.push(bytes, &mut self.encoder)
        }
        fn end(&mut self, failure: Option<GatewayError>) -> Vec<u8> {
            self.translator.end(failure, &mut self.encoder)
        }
        fn encoder(&self) -> &ChunkEncoder {
            &self.encoder
        }
    }

    fn translator(include_usage: bool) -> Pipe {
        let key = Secret::new("sk-k");
        Pipe {
            translator: StreamTranslator::new(
                OpenAi::new("http://h", &key).stream_decoder("chatcmpl-1"),
            ),
            encoder: ChunkEncoder::new(meta(include_usage)),
        }
    }

    /// The `data:` payloads of SSE output, parsed.
    fn payloads(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(
            text.ends_with("\n\n") || text.is_empty(),
            "whole events only: {text:?}"
        );
        text.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let data = event.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    const UPSTREAM: &str = concat!(
        "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn a_whole_stream_is_re_encoded_with_the_gateway_identity() {
        let mut t = translator(true);
        let out = t.push(UPSTREAM.as_bytes());
        let events = payloads(&out);
        assert_eq!(events.len(), 5);
        for chunk in &events[..4] {
            assert_eq!(chunk["id"], "chatcmpl-r1");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "gpt-x");
        }
        assert_eq!(events[1]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(events[1]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(events[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[3]["choices"], serde_json::json!([]));
        assert_eq!(events[3]["usage"]["total_tokens"], 11);
        assert_eq!(events[4], "[DONE]");
        assert_eq!(t.encoder().outcome(), StreamOutcome::Completed);
        assert!(t.encoder().usage_is_reported());
        assert!(t.end(None).is_empty(), "nothing after a completed stream");
    }

    #[test]
    fn usage_is_withheld_unless_asked_but_still_counted() {
        let mut t = translator(false);
        let events = payloads(&t.push(UPSTREAM.as_bytes()));
        assert_eq!(events.len(), 4);
        assert!(events.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(t.encoder().usage(), Usage::new(9, 2));
    }

    #[test]
    fn each_piece_is_answered_with_exactly_the_events_it_completes() {
        let bytes = UPSTREAM.as_bytes();
        let whole = translator(true).push(bytes);
        for split in 0..bytes.len() {
            let mut t = translator(true);
            let first = t.push(&bytes[..split]);
            let complete_events = UPSTREAM[..split].matches("\n\n").count();
            let expected = complete_events.min(3) + usize::from(complete_events >= 5) * 2;
            assert_eq!(payloads(&first).len(), expected, "split at {split}");
            let mut all = first;
            all.extend(t.push(&bytes[split..]));
            assert_eq!(all, whole, "split at {split}");
        }
    }

    #[test]
    fn a_cut_stream_ends_with_an_error_event_and_an_estimate() {
        let mut t = translator(true);
        let cut = UPSTREAM.find("data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo").unwrap();
        t.push(&UPSTREAM.as_bytes()[..cut + 20]);
        let closing = payloads(&t.end(None));
        assert_eq!(closing.len(), 1);
        assert_eq!(closing[0]["error"]["code"], "upstream_error");
        assert_eq!(t.encoder().outcome(), StreamOutcome::Broken);
        assert_eq!(
            t.encoder().usage(),
            Usage::new(7, 1),
            "3 content bytes delivered"
        );
        assert!(
            t.push(b"data: [DONE]\n\n").is_empty(),
            "nothing after a failure"
        );
    }

    #[test]
    fn an_upstream_error_event_ends_the_stream() {
        let mut t = translator(false);
        let out = payloads(
            &t.push(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\ndata: [DONE]\n\n"),
        );
        assert_eq!(out.len(), 1);
        assert!(out[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"));
        assert_eq!(t.encoder().error().unwrap().code(), "upstream_error");
    }

    #[test]
    fn neutral_events_encode_directly() {
        let mut encoder = ChunkEncoder::new(meta(false));
        let mut out = Vec::new();
        encoder.encode(
            StreamEvent::Choices(vec![ChunkChoice {
                delta: Delta {
                    content: Some("é".into()),
                    ..Delta::default()
                },
                ..ChunkChoice::default()
            }]),
            &mut out,
        );
        encoder.encode(StreamEvent::Done, &mut out);
        let events = payloads(&out);
        assert_eq!(events[0]["choices"][0]["delta"]["content"], "é");
        assert_eq!(events[1], "[DONE]");
        assert!(!encoder.usage_is_reported());
        assert_eq!(encoder.usage(), Usage::new(7, 1));
    }

    /// The text of every choice-0 chunk in SSE output, and the finish reason seen.
    fn texts(bytes: &[u8]) -> (Vec<String>, Option<String>) {
        let mut texts = Vec::new();
        let mut finish = None;
        for payload in payloads(bytes) {
            for choice in payload["choices"].as_array().into_iter().flatten() {
                if let Some(text) = choice["delta"]["content"].as_str() {
                    texts.push(text.to_owned());
                }
                if let Some(reason) = choice["finish_reason"].as_str() {
                    finish = Some(reason.to_owned());
                }
            }
        }
        (texts, finish)
    }

    #[test]
    fn personal_data_split_across_chunks_is_redacted_in_the_stream() {
        let mut encoder = ChunkEncoder::new(AnswerMeta {
            redact_pii: true,
            ..meta(false)
        });
        encoder.record();
        let piece = |text: &str, finish: Option<&str>| {
            StreamEvent::Choices(vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: Some(text.to_owned()),
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }])
        };
        let mut out = Vec::new();
        for event in [
            piece("Write to jane.d", None),
            piece("oe@exam", None),
            piece("ple.com or call +1 415 55", None),
            piece("5 2671.", Some("stop")),
            StreamEvent::Done,
        ] {
            encoder.encode(event, &mut out);
        }
        let (texts, finish) = texts(&out);
        assert_eq!(
            texts.concat(),
            "Write to [REDACTED_EMAIL] or call [REDACTED_PHONE]."
        );
        assert!(texts
            .iter()
            .all(|text| !text.contains('@') && !text.contains("2671")));
        assert_eq!(finish.as_deref(), Some("stop"));
        // The cache records the redacted answer, never the personal data.
        let recorded = encoder.recorded().unwrap();
        assert_eq!(
            recorded.choices[0].message.content.as_deref(),
            Some("Write to [REDACTED_EMAIL] or call [REDACTED_PHONE].")
        );
    }

    #[test]
    fn held_text_is_released_before_the_end_or_an_error() {
        for ending in ["done", "broken"] {
            let mut encoder = ChunkEncoder::new(AnswerMeta {
                redact_pii: true,
                ..meta(false)
            });
            let mut out = Vec::new();
            let text = StreamEvent::Choices(vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: Some("mail bob@example.com".into()),
                    ..Delta::default()
                },
                finish_reason: None,
                logprobs: None,
            }]);
            encoder.encode(text, &mut out);
            match ending {
                "done" => encoder.encode(StreamEvent::Done, &mut out),
                _ => encoder.fail(unreachable("cut"), &mut out),
            }
            assert_eq!(texts(&out).0.concat(), "mail [REDACTED_EMAIL]", "{ending}");
            assert_eq!(encoder.quality().redacted_output, 1, "{ending}");
        }
    }

    #[test]
    fn complete_answers_are_redacted_when_stamped() {
        let completion: ChatCompletion = serde_json::from_str(
            r#"{"id":"up","choices":[{"index":0,"message":{"role":"assistant","content":"SSN 123-45-6789"},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        let redacting = AnswerMeta {
            redact_pii: true,
            ..meta(false)
        };
        let (stamped, quality) = redacting.stamp(completion.clone());
        assert_eq!(
            stamped.choices[0].message.content.as_deref(),
            Some("SSN [REDACTED_SSN]")
        );
        assert_eq!(quality.redacted_output, 1);
        let (kept, quality) = meta(false).stamp(completion);
        assert_eq!(quality.redacted_output, 0);
        assert_eq!(
            kept.choices[0].message.content.as_deref(),
            Some("SSN 123-45-6789")
        );
    }

    #[test]
    fn stamping_sets_identity() {
        let completion: ChatCompletion =
            serde_json::from_str(r#"{"id":"up","choices":[]}"#).unwrap();
        let (stamped, _) = meta(false).stamp(completion);
        assert_eq!(
            (
                stamped.id.as_str(),
                stamped.object.as_str(),
                stamped.model.as_str()
            ),
            ("chatcmpl-r1", "chat.completion", "gpt-x")
        );
    }
}
