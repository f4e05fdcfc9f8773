//! The built-in mock provider: a deterministic answer with no network and no keys, so the
//! gateway can be tried, demonstrated and load-tested out of the box.
//!
//! The answer is `MOCK_CHUNKS` words long (one word per streamed chunk, one token per
//! word), cycling through a fixed sentence that quotes the last user message. A
//! `max_tokens` below that cuts it short with `finish_reason: "length"`.

use crate::api::chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta, Usage,
};
use crate::api::embeddings::{EmbeddingInput, EmbeddingRequest, Embeddings};
use crate::config::source::Reader;

use super::StreamEvent;

/// The complete mock answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct MockReply {
    /// The pieces of text, one per streamed chunk.
    pub pieces: Vec<String>,
    /// `stop`, or `length` when `max_tokens` cut the answer.
    pub finish_reason: &'static str,
    /// Prompt tokens are estimated from the text; completion tokens are the pieces.
    pub usage: Usage,
    /// How many identical choices (`n`).
    pub choices: u32,
}

/// Dimensions of the mock's vectors unless the request asks for fewer or more.
pub const MOCK_DIMENSIONS: u32 = 16;

/// The mock's embeddings: for each input, a unit vector of `dimensions` (default
/// [`MOCK_DIMENSIONS`]) that depends only on the input, so equal inputs get equal
/// vectors and different ones (almost always) differ.
pub fn embed(request: &EmbeddingRequest) -> Embeddings {
    let dimensions = request.dimensions.unwrap_or(MOCK_DIMENSIONS) as usize;
    let seeds: Vec<u64> = match &request.input {
        EmbeddingInput::Texts(texts) => texts.iter().map(|text| fnv1a(text.as_bytes())).collect(),
        EmbeddingInput::Tokens(arrays) => arrays
            .iter()
            .map(|tokens| {
                let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
                fnv1a(&bytes)
            })
            .collect(),
    };
    let vectors = seeds
        .into_iter()
        .map(|seed| {
            // A xorshift sequence from the input's hash, scaled to unit length.
            let mut state = seed | 1;
            let raw: Vec<f32> = (0..dimensions)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect();
            let norm = raw
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            raw.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    Embeddings {
        vectors,
        prompt_tokens: Some(request.estimated_tokens()),
    }
}

/// FNV-1a, 64 bits: a fixed, fast hash (the vectors must not change between isolates).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Builds the mock's answer to `request`.
pub fn reply(request: &ChatRequest, settings: &MockSettings) -> MockReply {
    let quoted = request.last_user_text().unwrap_or_default();
    let quoted: String = quoted
        .split_whitespace()
        .take(24)
        .collect::<Vec<_>>()
        .join(" ");
    let sentence = format!("This is the mock provider of the edge gateway. You said: {quoted}");
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let wanted = settings.chunks as usize;
    let allowed = request
        .max_tokens
        .map_or(wanted, |cap| wanted.min(cap as usize));
    let pieces: Vec<String> = words
        .iter()
        .cycle()
        .take(allowed)
        .enumerate()
        .map(|(index, word)| {
            if index == 0 {
                (*word).to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect();
    let finish_reason = if allowed < wanted { "length" } else { "stop" };
    let choices = request.n.unwrap_or(1);
    let usage = Usage::new(
        request.estimated_prompt_tokens(),
        pieces.len() as u64 * u64::from(choices),
    );
    MockReply {
        pieces,
        finish_reason,
        usage,
        choices,
    }
}

impl MockReply {
    /// A one-piece answer with fixed `text` that used no tokens: what the gateway says
    /// when it degrades gracefully instead of failing.
    pub fn fixed(text: &str) -> MockReply {
        MockReply {
            pieces: vec![text.to_owned()],
            finish_reason: "stop",
            usage: Usage::new(0, 0),
            choices: 1,
        }
    }

    /// The answer as stream events: a role chunk, one chunk per piece, the finish chunk,
    /// usage, done. The platform pauses before each piece.
    pub fn events(&self) -> Vec<StreamEvent> {
        let all = |delta: Delta, finish_reason: Option<&str>| {
            StreamEvent::Choices(
                (0..self.choices)
                    .map(|index| ChunkChoice {
                        index,
                        delta: delta.clone(),
                        finish_reason: finish_reason.map(str::to_owned),
                        logprobs: None,
                    })
                    .collect(),
            )
        };
        let mut events = Vec::with_capacity(self.pieces.len() + 4);
        events.push(all(
            Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        ));
        for piece in &self.pieces {
            events.push(all(
                Delta {
                    content: Some(piece.clone()),
                    ..Delta::default()
                },
                None,
            ));
        }
        events.push(all(Delta::default(), Some(self.finish_reason)));
        events.push(StreamEvent::Usage(self.usage.clone()));
        events.push(StreamEvent::Done);
        events
    }

    /// The answer as one non-streaming completion (id, created and model set by the caller).
    pub fn completion(&self) -> ChatCompletion {
        let text: String = self.pieces.concat();
        ChatCompletion {
            id: String::new(),
            object: String::new(),
            created: 0,
            model: String::new(),
            choices: (0..self.choices)
                .map(|index| Choice {
                    index,
                    message: AssistantMessage {
                        role: "assistant".into(),
                        content: Some(text.clone()),
                        refusal: None,
                        reasoning_content: None,
                        tool_calls: None,
                        reasoning_details: None,
                    },
                    finish_reason: Some(self.finish_reason.into()),
                    logprobs: None,
                })
                .collect(),
            usage: Some(self.usage.clone()),
            system_fingerprint: None,
        }
    }
}

/// How the built-in mock provider answers.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSettings {
    /// `MOCK_CHUNKS`: how many content chunks a streamed answer has.
    pub chunks: u32,
    /// `MOCK_CHUNK_DELAY_MS`: pause before each chunk.
    pub chunk_delay_ms: u32,
}

impl MockSettings {
    /// `MOCK_CHUNKS`, `MOCK_CHUNK_DELAY_MS`.
    pub fn load(r: &mut Reader) -> MockSettings {
        MockSettings {
            chunks: r.number("MOCK_CHUNKS", 8, 1, 10_000),
            chunk_delay_ms: r.number("MOCK_CHUNK_DELAY_MS", 25, 0, 60_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_unit_vectors_that_depend_only_on_the_input() {
        let request = |input: EmbeddingInput, dimensions| EmbeddingRequest {
            model: "mock".into(),
            input,
            dimensions,
            base64: false,
            user: None,
        };
        let texts =
            |texts: &[&str]| EmbeddingInput::Texts(texts.iter().map(|t| (*t).to_owned()).collect());
        let one = embed(&request(texts(&["a"]), None));
        let two = embed(&request(texts(&["b", "a"]), Some(16)));
        assert_eq!(one.vectors[0].len(), MOCK_DIMENSIONS as usize);
        assert_eq!(two.vectors[1], one.vectors[0]);
        assert_ne!(two.vectors[0], one.vectors[0]);
        for vector in &two.vectors {
            let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        let tokens = embed(&request(
            EmbeddingInput::Tokens(vec![vec![1, 2], vec![3]]),
            Some(3),
        ));
        assert_eq!(
            tokens.vectors.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3]
        );
        assert_eq!(tokens.prompt_tokens, Some(3));
    }
    use crate::api::chat::{Content, Message, Role};

    fn request(text: &str, max_tokens: Option<u32>, n: Option<u32>) -> ChatRequest {
        ChatRequest {
            model: "mock".into(),
            messages: vec![Message {
                role: Role::User,
                content: Content::Text(text.into()),
                name: None,
                tool_call_id: None,
                tool_calls: None,
                reasoning_details: None,
            }],
            stream: true,
            include_usage: true,
            max_tokens,
            max_tokens_is_completion: false,
            temperature: None,
            top_p: None,
            n,
            stop: vec![],
            presence_penalty: None,
            frequency_penalty: None,
            passthrough: Default::default(),
        }
    }

    const SETTINGS: MockSettings = MockSettings {
        chunks: 12,
        chunk_delay_ms: 0,
    };

    #[test]
    fn the_reply_is_deterministic_and_quotes_the_user() {
        let first = reply(&request("hello there", None, None), &SETTINGS);
        assert_eq!(first, reply(&request("hello there", None, None), &SETTINGS));
        // 13 words, 12 chunks: the last word falls off.
        assert_eq!(first.pieces.len(), 12);
        assert_eq!(
            first.pieces.concat(),
            "This is the mock provider of the edge gateway. You said: hello"
        );
        assert_eq!(first.finish_reason, "stop");
        assert_eq!(first.usage.completion_tokens, 12);
        assert_eq!(first.usage.prompt_tokens, 4);
    }

    #[test]
    fn more_chunks_than_words_cycle_and_max_tokens_cuts() {
        let settings = MockSettings {
            chunks: 30,
            chunk_delay_ms: 0,
        };
        assert_eq!(reply(&request("x", None, None), &settings).pieces.len(), 30);
        let cut = reply(&request("x", Some(5), None), &settings);
        assert_eq!(cut.pieces.len(), 5);
        assert_eq!(cut.finish_reason, "length");
    }

    #[test]
    fn events_frame_the_pieces_like_openai() {
        let events = reply(&request("hi", None, Some(2)), &SETTINGS).events();
        assert_eq!(events.len(), 12 + 4);
        let StreamEvent::Choices(first) = &events[0] else {
            panic!()
        };
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].delta.role.as_deref(), Some("assistant"));
        let StreamEvent::Choices(last) = &events[13] else {
            panic!()
        };
        assert_eq!(last[1].finish_reason.as_deref(), Some("stop"));
        assert!(matches!(events[14], StreamEvent::Usage(_)));
        assert_eq!(events[15], StreamEvent::Done);
    }

    #[test]
    fn the_completion_holds_the_whole_text() {
        let completion = reply(&request("hi", None, None), &SETTINGS).completion();
        assert_eq!(
            completion.choices[0].message.content.as_deref(),
            Some("This is the mock provider of the edge gateway. You said: hi")
        );
        assert_eq!(completion.usage.unwrap().total_tokens, 2 + 12);
    }
}
