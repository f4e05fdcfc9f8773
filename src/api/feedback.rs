//! `POST /v1/feedback`: a caller rates one of its own answers, by the request's id
//! (`x-request-id`) or the answer's (`chatcmpl-…`, `msg_…`, `resp_…`), with a score from 1
//! to 5 or a thumb (up is 5, down is 1), and optionally a comment and tags. A second rating
//! of the same request replaces the first.
//!
//! The gateway remembers who made each answered request for `FEEDBACK_TTL_SECONDS`, in a
//! store of the caller's own (see [`FeedbackCall`]): a request id that another caller made
//! is simply not found there.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::sorted_map::SortedMap;

/// The longest request id accepted (the gateway's own are 32 hex digits).
const MAX_ID_CHARS: usize = 128;
/// The longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// The most tags one rating carries.
pub const MAX_TAGS: usize = 8;
/// The longest tag.
const MAX_TAG_CHARS: usize = 32;
/// The prefixes of answer ids, each followed by the request id.
const ANSWER_ID_PREFIXES: &[&str] = &["chatcmpl-", "msg_", "resp_"];

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Thumbs {
    /// Satisfied: a score of 5.
    Up,
    /// Not satisfied: a score of 1.
    Down,
}

/// One rating of one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// 1 (worst) to 5 (best); a thumb's score when the rating was a thumb.
    pub score: u8,
    /// The thumb, when the rating was one.
    pub thumbs: Option<Thumbs>,
    /// What the user wrote (kept with the rating, never logged).
    pub comment: Option<String>,
    /// Labels: lowercase letters, digits, `_` and `-`.
    pub tags: Vec<String>,
}

/// A valid `POST /v1/feedback` body.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRequest {
    /// The rated request's id.
    pub request_id: String,
    /// The rating.
    pub rating: Rating,
}

impl FeedbackRequest {
    /// Reads and checks a body; every problem is a 400 naming its field.
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| GatewayError::new(ErrorKind::InvalidJson, "the body is not valid JSON"))?;
        let Value::Object(fields) = value else {
            return Err(GatewayError::invalid(
                "body",
                "the body must be a JSON object",
            ));
        };
        if let Some(unknown) = fields.keys().find(|key| {
            ![
                "request_id",
                "response_id",
                "score",
                "thumbs",
                "comment",
                "tags",
            ]
            .contains(&key.as_str())
        }) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(GatewayError::new(
                ErrorKind::UnknownParameter,
                format!("unknown parameter {shown:?}"),
            )
            .with_param(shown));
        }
        let (score, thumbs) = score(&fields)?;
        Ok(FeedbackRequest {
            request_id: request_id(&fields)?,
            rating: Rating {
                score,
                thumbs,
                comment: comment(&fields)?,
                tags: tags(&fields)?,
            },
        })
    }
}

/// The request id named by `request_id`, or by the answer id `response_id`.
fn request_id(fields: &Map<String, Value>) -> Result<String, GatewayError> {
    let id = match (fields.get("request_id"), fields.get("response_id")) {
        (Some(Value::String(id)), None) => id.as_str(),
        (None, Some(Value::String(answer))) => ANSWER_ID_PREFIXES
            .iter()
            .find_map(|prefix| answer.strip_prefix(prefix))
            .ok_or_else(|| {
                GatewayError::invalid(
                    "response_id",
                    "response_id is an answer's id: chatcmpl-…, msg_… or resp_…",
                )
            })?,
        (Some(_), Some(_)) => {
            return Err(GatewayError::invalid(
                "request_id",
                "name either request_id or response_id, not both",
            ))
        }
        (None, None) => {
            return Err(GatewayError::invalid(
                "request_id",
                "name the rated request: request_id (its x-request-id) or response_id",
            ))
        }
        _ => {
            return Err(GatewayError::invalid(
                "request_id",
                "the id must be a string",
            ))
        }
    };
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(GatewayError::invalid(
            "request_id",
            format!("a request id is 1 to {MAX_ID_CHARS} letters, digits, '-' or '_'"),
        ));
    }
    Ok(id.to_owned())
}

/// The score, from `score` (1 to 5) or `thumbs` (up or down): exactly one of them.
fn score(fields: &Map<String, Value>) -> Result<(u8, Option<Thumbs>), GatewayError> {
    Ok(match (fields.get("score"), fields.get("thumbs")) {
        (Some(score), None) => match score.as_u64() {
            Some(score @ 1..=5) => (score as u8, None),
            _ => {
                return Err(GatewayError::invalid(
                    "score",
                    "score is an integer from 1 to 5",
                ))
            }
        },
        (None, Some(thumbs)) => match thumbs.as_str() {
            Some("up") => (5, Some(Thumbs::Up)),
            Some("down") => (1, Some(Thumbs::Down)),
            _ => {
                return Err(GatewayError::invalid(
                    "thumbs",
                    "thumbs is \"up\" or \"down\"",
                ))
            }
        },
        (Some(_), Some(_)) => {
            return Err(GatewayError::invalid(
                "score",
                "rate with either score or thumbs, not both",
            ))
        }
        (None, None) => {
            return Err(GatewayError::invalid(
                "score",
                "a rating needs score (1 to 5) or thumbs (up or down)",
            ))
        }
    })
}

fn comment(fields: &Map<String, Value>) -> Result<Option<String>, GatewayError> {
    match fields.get("comment") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= MAX_COMMENT_CHARS => {
            Ok(Some(text.clone()))
        }
        Some(Value::String(_)) => Err(GatewayError::invalid(
            "comment",
            format!("a comment has at most {MAX_COMMENT_CHARS} characters"),
        )),
        Some(_) => Err(GatewayError::invalid("comment", "comment must be a string")),
    }
}

fn tags(fields: &Map<String, Value>) -> Result<Vec<String>, GatewayError> {
    let list = match fields.get("tags") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() <= MAX_TAGS => list,
        Some(_) => {
            return Err(GatewayError::invalid(
                "tags",
                format!("tags is an array of at most {MAX_TAGS} strings"),
            ))
        }
    };
    let mut tags: Vec<String> = Vec::with_capacity(list.len());
    for (index, tag) in list.iter().enumerate() {
        let valid = tag.as_str().filter(|tag| {
            (1..=MAX_TAG_CHARS).contains(&tag.len())
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        match valid {
            Some(tag) if !tags.iter().any(|seen| seen == tag) => tags.push(tag.to_owned()),
            Some(_) => {}
            None => {
                return Err(GatewayError::invalid(
                    format!("tags[{index}]"),
                    format!("a tag is 1 to {MAX_TAG_CHARS} lowercase letters, digits, '_' or '-'"),
                ))
            }
        }
    }
    Ok(tags)
}

/// What the Worker asks of a caller's feedback store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackCall {
    /// The caller made these answered requests: remember each until its expiry. A request
    /// remembered already is left as it is.
    Remember(Vec<Remembered>),
    /// Rate a remembered request (replacing an earlier rating); answers [`Rated`], or
    /// `null` when the request is not remembered.
    Rate {
        /// The request's id.
        request_id: String,
        /// The rating.
        rating: Rating,
        /// Unix milliseconds, for the rating's day and month.
        now_ms: u64,
    },
    /// The mean scores per model of the day and month of `now_ms` (see [`Satisfaction`]).
    Satisfaction {
        /// Unix milliseconds.
        now_ms: u64,
    },
}

/// An answered request, as its caller's store remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    /// The request's id.
    pub request_id: String,
    /// Its route (`chat_completions`, `messages`, `responses`).
    pub route: String,
    /// The model alias it asked for.
    pub model: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A rating that was kept: what it rated, and the rating it replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    /// The rated request's route.
    pub route: String,
    /// The rated request's model alias.
    pub model: String,
    /// The rating replaced, if there was one.
    pub previous: Option<PreviousRating>,
}

/// A rating replaced by a newer one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousRating {
    /// Its score.
    pub score: u8,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was made (Unix milliseconds): the day and month it counted in.
    pub rated_at_ms: u64,
}

/// The scores of one model in one period: their sum and how many there are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreTally {
    /// The sum of the scores.
    pub sum: i64,
    /// How many ratings.
    pub count: i64,
}

impl ScoreTally {
    /// Counts a rating in (`weight` 1) or, when it was replaced, out (`weight` -1).
    pub fn add(&mut self, score: u8, weight: i64) {
        self.sum += i64::from(score) * weight;
        self.count += weight;
    }

    /// Adds another tally of the same model and period.
    pub fn merge(&mut self, other: &ScoreTally) {
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// Mean scores per model, for a day and a month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Satisfaction {
    /// Today's tallies (UTC), by model alias.
    pub today: SortedMap<String, ScoreTally>,
    /// This month's tallies, by model alias.
    pub month: SortedMap<String, ScoreTally>,
}

impl Satisfaction {
    /// `{"today": {model: {"mean_score", "ratings"}}, "month": {...}}`; models without a
    /// rating left (every one replaced away) are omitted.
    pub fn view(&self) -> Value {
        let view = |tallies: &SortedMap<String, ScoreTally>| {
            // Inserted one by one: collecting into a map would compile a sort of its
            // entries for these few.
            let mut models = Map::new();
            for (model, tally) in tallies.iter().filter(|(_, tally)| tally.count > 0) {
                let mean = (tally.sum as f64 / tally.count as f64 * 100.0).round() / 100.0;
                let view = json!({"mean_score": mean, "ratings": tally.count});
                models.insert(model.clone(), view);
            }
            Value::Object(models)
        };
        json!({"today": view(&self.today), "month": view(&self.month)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<FeedbackRequest, GatewayError> {
        FeedbackRequest::parse(body.to_string().as_bytes())
    }

    #[test]
    fn a_score_or_a_thumb_rates_a_request_or_an_answer() {
        let rated = parse(json!({"request_id": "abc123", "score": 4, "comment": "ok", "tags": ["slow", "slow", "off-topic"]})).unwrap();
        assert_eq!(rated.request_id, "abc123");
        assert_eq!(rated.rating.score, 4);
        assert_eq!(rated.rating.comment.as_deref(), Some("ok"));
        assert_eq!(rated.rating.tags, ["slow", "off-topic"]);
        let thumbs = parse(json!({"response_id": "resp_abc123", "thumbs": "down"})).unwrap();
        assert_eq!(
            (thumbs.request_id.as_str(), thumbs.rating.score),
            ("abc123", 1)
        );
        assert_eq!(thumbs.rating.thumbs, Some(Thumbs::Down));
        for id in ["chatcmpl-abc", "msg_abc"] {
            let up = parse(json!({"response_id": id, "thumbs": "up"})).unwrap();
            assert_eq!((up.request_id.as_str(), up.rating.score), ("abc", 5));
        }
    }

    #[test]
    fn bad_ratings_name_their_field() {
        let long_comment = "x".repeat(MAX_COMMENT_CHARS + 1);
        for (body, param) in [
            (json!({"score": 3}), "request_id"),
            (
                json!({"request_id": "a", "response_id": "resp_a", "score": 3}),
                "request_id",
            ),
            (json!({"request_id": "a b", "score": 3}), "request_id"),
            (
                json!({"request_id": "x".repeat(129), "score": 3}),
                "request_id",
            ),
            (json!({"response_id": "abc", "score": 3}), "response_id"),
            (json!({"request_id": "a"}), "score"),
            (json!({"request_id": "a", "score": 6}), "score"),
            (json!({"request_id": "a", "score": 2.5}), "score"),
            (
                json!({"request_id": "a", "score": 3, "thumbs": "up"}),
                "score",
            ),
            (json!({"request_id": "a", "thumbs": "sideways"}), "thumbs"),
            (
                json!({"request_id": "a", "score": 3, "comment": long_comment}),
                "comment",
            ),
            (
                json!({"request_id": "a", "score": 3, "tags": ["Bad Tag"]}),
                "tags[0]",
            ),
            (
                json!({"request_id": "a", "score": 3, "tags": vec!["a"; 9]}),
                "tags",
            ),
            (json!({"request_id": "a", "score": 3, "stars": 3}), "stars"),
        ] {
            let error = parse(body.clone()).unwrap_err();
            assert_eq!(error.kind.status(), 400, "{body}");
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
        }
        assert_eq!(
            FeedbackRequest::parse(b"not json").unwrap_err().kind,
            ErrorKind::InvalidJson
        );
    }

    #[test]
    fn tallies_count_replaced_ratings_out() {
        let mut tally = ScoreTally::default();
        tally.add(2, 1);
        tally.add(5, 1);
        tally.add(2, -1);
        tally.add(4, 1);
        let satisfaction = Satisfaction {
            today: SortedMap::from([("fast".to_owned(), tally)]),
            month: SortedMap::from([
                ("fast".to_owned(), tally),
                ("gone".to_owned(), ScoreTally::default()),
            ]),
        };
        let view = satisfaction.view();
        assert_eq!(
            view["today"]["fast"],
            json!({"mean_score": 4.5, "ratings": 2})
        );
        assert!(view["month"].get("gone").is_none());
    }
}
