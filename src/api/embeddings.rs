//! OpenAI Embeddings (`POST /v1/embeddings`): the request, checked against the
//! configured bounds, and the answer, as float arrays or base64 (little-endian `f32`), in
//! OpenAI's `list` shape whichever provider made the vectors.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::chat::estimate_tokens;
use super::known_object;
use crate::error::GatewayError;
use crate::guard::validate::RequestLimits;

/// The request fields the gateway reads; anything else is refused.
const KNOWN: &[&str] = &["model", "input", "dimensions", "encoding_format", "user"];
/// Most inputs in one request (OpenAI's own bound).
pub const MAX_INPUTS: usize = 2_048;
/// Most tokens in one token-array input.
pub const MAX_INPUT_TOKENS: usize = 8_192;
/// Most dimensions a client may ask for.
const MAX_DIMENSIONS: u64 = 8_192;

/// What to embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// Texts, one vector each.
    Texts(Vec<String>),
    /// Token arrays (OpenAI-compatible upstreams only).
    Tokens(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// How many vectors the answer holds.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Texts(texts) => texts.len(),
            EmbeddingInput::Tokens(tokens) => tokens.len(),
        }
    }

    /// Whether there is nothing to embed (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A checked embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// The alias clients put in `model`.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// The vectors' length, when the client asks for shorter ones.
    pub dimensions: Option<u32>,
    /// Answer with base64 strings rather than float arrays.
    pub base64: bool,
    /// The end user, passed on.
    pub user: Option<String>,
}

impl EmbeddingRequest {
    /// Reads and checks a request body: `input` as a string, strings, a token array or
    /// token arrays, none empty, within [`MAX_INPUTS`], `MAX_MESSAGE_CHARS` per text and
    /// [`MAX_INPUT_TOKENS`] per token array.
    pub fn parse(body: &[u8], limits: &RequestLimits) -> Result<Self, GatewayError> {
        let fields = known_object(body, KNOWN, |field| {
            format!("Unrecognized request argument supplied: {field}")
        })?;
        let model = match fields.get("model") {
            Some(Value::String(model)) if !model.is_empty() && model.len() <= 256 => model.clone(),
            _ => {
                return Err(GatewayError::invalid(
                    "model",
                    "model: a name of 1 to 256 bytes",
                ))
            }
        };
        let input = input(fields.get("input"), limits)?;
        let dimensions = match fields.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64().filter(|n| (1..=MAX_DIMENSIONS).contains(n)) {
                Some(n) => Some(n as u32),
                None => {
                    return Err(GatewayError::invalid(
                        "dimensions",
                        format!("dimensions: an integer from 1 to {MAX_DIMENSIONS}"),
                    ))
                }
            },
        };
        let base64 = match fields.get("encoding_format").and_then(Value::as_str) {
            None if !fields.contains_key("encoding_format") => false,
            Some("float") => false,
            Some("base64") => true,
            _ => {
                return Err(GatewayError::invalid(
                    "encoding_format",
                    "encoding_format: float or base64",
                ))
            }
        };
        let user = fields
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(EmbeddingRequest {
            model,
            input,
            dimensions,
            base64,
            user,
        })
    }

    /// The input's size in tokens, estimated (a token array counts its tokens).
    pub fn estimated_tokens(&self) -> u64 {
        match &self.input {
            EmbeddingInput::Texts(texts) => {
                texts.iter().map(|text| estimate_tokens(text.len())).sum()
            }
            EmbeddingInput::Tokens(arrays) => arrays.iter().map(|array| array.len() as u64).sum(),
        }
    }

    /// The text whose SHA-256 names the answer when the targets `route` serve it:
    /// everything that shapes the vectors (not the encoding, which the gateway applies).
    pub fn cache_material(&self, route: &[String]) -> String {
        json!({"v": 1, "kind": "embeddings", "route": route, "input": self.input, "dimensions": self.dimensions})
            .to_string()
    }
}

fn input(input: Option<&Value>, limits: &RequestLimits) -> Result<EmbeddingInput, GatewayError> {
    let invalid = |why: String| GatewayError::invalid("input", why);
    let token_array = |value: &Value| -> Option<Vec<u32>> {
        let array = value.as_array()?;
        array
            .iter()
            .map(|token| token.as_u64().and_then(|t| u32::try_from(t).ok()))
            .collect()
    };
    let input = match input {
        Some(Value::String(text)) => EmbeddingInput::Texts(vec![text.clone()]),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => EmbeddingInput::Texts(
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => EmbeddingInput::Tokens(
            vec![token_array(&Value::Array(items.clone()))
                .ok_or_else(|| invalid("input: tokens are integers from 0 to 2^32 - 1".into()))?],
        ),
        Some(Value::Array(items)) if items.iter().all(Value::is_array) => EmbeddingInput::Tokens(
            items
                .iter()
                .map(token_array)
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("input: tokens are integers from 0 to 2^32 - 1".into()))?,
        ),
        _ => {
            return Err(invalid(
                "input: a string, a list of strings, a token array or a list of token arrays"
                    .into(),
            ))
        }
    };
    if input.is_empty() || input.len() > MAX_INPUTS {
        return Err(invalid(format!("input: 1 to {MAX_INPUTS} inputs")));
    }
    match &input {
        EmbeddingInput::Texts(texts) => {
            for (i, text) in texts.iter().enumerate() {
                let chars = text.chars().count();
                if chars == 0 || chars > limits.max_message_chars {
                    return Err(GatewayError::invalid(
                        format!("input[{i}]"),
                        format!("input[{i}]: 1 to {} characters", limits.max_message_chars),
                    ));
                }
            }
        }
        EmbeddingInput::Tokens(arrays) => {
            if let Some(i) = arrays
                .iter()
                .position(|array| array.is_empty() || array.len() > MAX_INPUT_TOKENS)
            {
                return Err(GatewayError::invalid(
                    format!("input[{i}]"),
                    format!("input[{i}]: 1 to {MAX_INPUT_TOKENS} tokens"),
                ));
            }
        }
    }
    Ok(input)
}

/// The vectors an upstream made, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    /// One per input.
    #[serde(rename = "v")]
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens as the upstream counted them (some do not).
    #[serde(rename = "p")]
    pub prompt_tokens: Option<u64>,
}

/// The answer's body: OpenAI's `list` of `embedding`s, floats or base64, with the
/// model's alias and the prompt tokens.
pub fn body(embeddings: &Embeddings, model: &str, prompt_tokens: u64, base64: bool) -> String {
    let data: Vec<Value> = embeddings
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = match base64 {
                true => json!(base64_f32(vector)),
                false => json!(vector),
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
    .to_string()
}

/// `vector` as OpenAI's base64 encoding: its little-endian `f32` bytes, standard
/// alphabet, padded.
fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            match i <= group.len() {
                true => out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63])),
                false => out.push('='),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits {
            max_body_bytes: 1 << 20,
            max_messages: 16,
            max_message_chars: 10,
            max_output_tokens: 100,
        }
    }

    fn parse(body: Value) -> Result<EmbeddingRequest, GatewayError> {
        EmbeddingRequest::parse(body.to_string().as_bytes(), &limits())
    }

    #[test]
    fn every_input_shape_is_read_and_bounded() {
        let texts = parse(json!({"model": "e", "input": ["a", "bc"], "dimensions": 4, "encoding_format": "base64"})).unwrap();
        assert_eq!(
            texts.input,
            EmbeddingInput::Texts(vec!["a".into(), "bc".into()])
        );
        assert_eq!((texts.dimensions, texts.base64), (Some(4), true));
        assert_eq!(
            parse(json!({"model": "e", "input": "hi"}))
                .unwrap()
                .input
                .len(),
            1
        );
        assert_eq!(
            parse(json!({"model": "e", "input": [1, 2, 3]}))
                .unwrap()
                .input,
            EmbeddingInput::Tokens(vec![vec![1, 2, 3]])
        );
        let arrays = parse(json!({"model": "e", "input": [[1], [2, 3]]})).unwrap();
        assert_eq!(arrays.estimated_tokens(), 3);
        let refused = [
            (json!({"model": "e", "input": []}), "input"),
            (json!({"model": "e", "input": [""]}), "input[0]"),
            (
                json!({"model": "e", "input": ["x", "much too long"]}),
                "input[1]",
            ),
            (json!({"model": "e", "input": [1, -1]}), "input"),
            (json!({"model": "e", "input": [[1], []]}), "input[1]"),
            (json!({"model": "e", "input": ["a", 1]}), "input"),
            (
                json!({"model": "e", "input": "a", "dimensions": 0}),
                "dimensions",
            ),
            (
                json!({"model": "e", "input": "a", "encoding_format": "int8"}),
                "encoding_format",
            ),
            (json!({"input": "a"}), "model"),
            (json!({"model": "e", "input": "a", "extra": 1}), "extra"),
        ];
        for (body, param) in refused {
            let error = parse(body).unwrap_err();
            assert_eq!((error.status(), error.param.as_deref()), (400, Some(param)));
        }
        let many = vec!["a"; MAX_INPUTS + 1];
        assert!(parse(json!({"model": "e", "input": many})).is_err());
    }

    #[test]
    fn the_answer_is_openais_list_in_floats_or_base64() {
        let embeddings = Embeddings {
            vectors: vec![vec![1.0, -2.0], vec![0.5, 0.0]],
            prompt_tokens: Some(3),
        };
        let floats: Value = serde_json::from_str(&body(&embeddings, "e", 3, false)).unwrap();
        assert_eq!(floats["object"], "list");
        assert_eq!(
            floats["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.5, 0.0]})
        );
        assert_eq!(
            floats["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );
        let encoded: Value = serde_json::from_str(&body(&embeddings, "e", 3, true)).unwrap();
        // 1.0 and -2.0 as little-endian f32: 00 00 80 3f 00 00 00 c0.
        assert_eq!(encoded["data"][0]["embedding"], "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
        assert_eq!(base64_f32(&[0.5]), "AAAAPw==");
    }
}
