//! Fake ports for the pipeline's host tests: a clock the test moves (a sleep advances it
//! at once), an upstream that answers from a script in OpenAI's wire format, and
//! settlements, cache writes, log lines and breaker changes recorded for inspection.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::ports::{CacheWrite, Ports, Settle, UpstreamBody, UpstreamResponse};
use crate::api::chat::{ChatCompletion, ChatRequest, Usage};
use crate::api::Surface;
use crate::config::{Config, ConfigSource};
use crate::error::{ErrorKind, GatewayError};
use crate::guard::validate::parse_for_tests;
use crate::limit::price::Price;
use crate::observe::log::RequestLog;
use crate::output::AnswerMeta;
use crate::resilience::breaker::Transition;
use crate::upstream::HttpCall;

/// Runs `future` to its end. The fakes never wait on anything outside the test, so a
/// future that is still pending after many polls is stuck: the test fails.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
    panic!("the future is stuck");
}

/// One piece of a scripted upstream body.
#[derive(Debug, Clone, PartialEq)]
pub enum Fake {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The connection breaks.
    Break,
    /// Nothing, ever: the body stalls.
    Stall,
    /// The clock jumps forward this many milliseconds before the next piece.
    Jump(u64),
}

/// What the scripted upstream does for one call.
#[derive(Debug, Clone)]
pub enum Script {
    /// Answers with this status, these headers (`retry-after-ms`, `retry-after`) and a
    /// body in pieces.
    Answer {
        status: u16,
        retry_after_ms: Option<String>,
        retry_after: Option<String>,
        content_length: Option<u64>,
        body: Vec<Fake>,
    },
    /// The call fails before any answer: this error (a connection failure, a timeout).
    Fail(GatewayError),
}

impl Script {
    /// A 200 whose body is `pieces`.
    pub fn ok(pieces: Vec<Fake>) -> Script {
        Script::status(200, pieces)
    }

    /// An answer with `status` and `pieces`.
    pub fn status(status: u16, pieces: Vec<Fake>) -> Script {
        Script::Answer {
            status,
            retry_after_ms: None,
            retry_after: None,
            content_length: None,
            body: pieces,
        }
    }

    /// A complete OpenAI answer saying `text`.
    pub fn json(text: &str) -> Script {
        Script::ok(vec![Fake::Bytes(completion_json(text).into_bytes())])
    }

    /// An OpenAI error answer with `status`.
    pub fn error(status: u16) -> Script {
        let body =
            format!(r#"{{"error":{{"message":"failed with {status}","type":"server_error"}}}}"#);
        Script::status(status, vec![Fake::Bytes(body.into_bytes())])
    }

    /// A 429 asking for a wait of `ms`.
    pub fn rate_limited(ms: u64) -> Script {
        match Script::error(429) {
            Script::Answer {
                status,
                content_length,
                body,
                ..
            } => Script::Answer {
                status,
                retry_after_ms: Some(ms.to_string()),
                retry_after: None,
                content_length,
                body,
            },
            fail => fail,
        }
    }
}

/// A complete OpenAI `chat.completion` saying `text`, with usage 10 + 5.
pub fn completion_json(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "up-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
    .to_string()
}

/// An OpenAI stream event carrying `text`.
pub fn chunk(text: &str) -> Fake {
    let event = serde_json::json!({
        "id": "u", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    });
    Fake::Bytes(format!("data: {event}\n\n").into_bytes())
}

/// The end of an OpenAI stream: a finish chunk, usage 10 + `completion`, `[DONE]`.
pub fn stream_end(completion: u64) -> Fake {
    let finish = serde_json::json!({
        "id": "u", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    });
    let usage = serde_json::json!({
        "id": "u", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
        "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}
    });
    Fake::Bytes(format!("data: {finish}\n\ndata: {usage}\n\ndata: [DONE]\n\n").into_bytes())
}

/// What settlements settled: the price and the usage of each, in order.
pub type Settled = Rc<RefCell<Vec<(Option<Price>, Usage)>>>;

/// A body read from a script.
pub struct FakeBody {
    pieces: VecDeque<Fake>,
    clock: Rc<Cell<u64>>,
}

impl UpstreamBody for FakeBody {
    async fn next(&mut self) -> Option<Result<Vec<u8>, ()>> {
        loop {
            match self.pieces.pop_front()? {
                Fake::Bytes(bytes) => return Some(Ok(bytes)),
                Fake::Break => return Some(Err(())),
                Fake::Jump(ms) => self.clock.set(self.clock.get() + ms),
                Fake::Stall => {
                    self.pieces.push_front(Fake::Stall);
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// A settlement that records what it settled (a dropped one settles nothing: zero usage,
/// as the platform's does).
pub struct FakeSettlement {
    price: Option<Price>,
    settled: Settled,
    done: bool,
}

impl Settle for FakeSettlement {
    fn repriced(mut self, price: Option<Price>) -> Self {
        self.price = price;
        self
    }

    fn settle(mut self, usage: &Usage) {
        self.done = true;
        self.settled.borrow_mut().push((self.price, usage.clone()));
    }
}

impl Drop for FakeSettlement {
    fn drop(&mut self) {
        if !self.done {
            self.settled
                .borrow_mut()
                .push((self.price, Usage::default()));
        }
    }
}

/// A cache writer that records what it stored.
pub struct FakeCache {
    stored: Rc<RefCell<Vec<ChatCompletion>>>,
}

impl CacheWrite for FakeCache {
    fn store(&self, completion: &ChatCompletion) -> bool {
        self.stored.borrow_mut().push(completion.clone());
        true
    }
}

/// What the fake platform saw and does.
#[derive(Default)]
pub struct Record {
    /// The upstream calls made, in order.
    pub calls: Vec<HttpCall>,
    /// Every timer waited for, in milliseconds, in order.
    pub sleeps: Vec<u64>,
    /// How many timers were made, waited for or not.
    pub timers: usize,
    /// The log lines written.
    pub lines: Vec<RequestLog>,
    /// Breaker state changes.
    pub transitions: Vec<Transition>,
    /// What settlements settled.
    pub settled: Settled,
    /// What cache writers stored.
    pub stored: Rc<RefCell<Vec<ChatCompletion>>>,
    /// Scripts by upstream model; a model without one answers `"Hello"`.
    pub scripts: HashMap<String, VecDeque<Script>>,
}

/// The fake platform: clones share it.
#[derive(Clone, Default)]
pub struct FakePorts {
    /// Unix milliseconds.
    pub clock: Rc<Cell<u64>>,
    /// Whether the client has left.
    pub gone: Rc<Cell<bool>>,
    /// What happened.
    pub record: Rc<RefCell<Record>>,
}

impl FakePorts {
    /// A platform whose clock starts at `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        let ports = FakePorts::default();
        ports.clock.set(now_ms);
        ports
    }

    /// Scripts the next calls to the upstream model `model`.
    pub fn script(&self, model: &str, scripts: Vec<Script>) {
        self.record
            .borrow_mut()
            .scripts
            .entry(model.to_owned())
            .or_default()
            .extend(scripts);
    }

    /// A settlement to hand the pipeline.
    pub fn settlement(&self) -> FakeSettlement {
        FakeSettlement {
            price: None,
            settled: Rc::clone(&self.record.borrow().settled),
            done: false,
        }
    }

    /// A cache writer to hand the pipeline.
    pub fn cache(&self) -> FakeCache {
        FakeCache {
            stored: Rc::clone(&self.record.borrow().stored),
        }
    }

    /// The upstream models called, in order.
    pub fn called_models(&self) -> Vec<String> {
        self.record
            .borrow()
            .calls
            .iter()
            .map(|call| {
                let body: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_default();
                body["model"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }
}

impl Ports for FakePorts {
    type Body = FakeBody;
    type Settlement = FakeSettlement;
    type CacheWriter = FakeCache;
    type Timer = Pin<Box<dyn Future<Output = ()>>>;

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn sleep(&self, ms: u64) -> Self::Timer {
        // The clock moves to the timer's end when the code under test waits for it, not
        // when a timer is made and dropped unawaited (an upstream piece came first).
        self.record.borrow_mut().timers += 1;
        let (record, clock) = (Rc::clone(&self.record), Rc::clone(&self.clock));
        let ends_at = clock.get() + ms;
        Box::pin(async move {
            record.borrow_mut().sleeps.push(ms);
            clock.set(clock.get().max(ends_at));
        })
    }

    fn random_u32(&self) -> u32 {
        u32::MAX / 2
    }

    async fn send(
        &self,
        call: &HttpCall,
        ttfb_timeout_ms: u64,
    ) -> Result<UpstreamResponse<FakeBody>, GatewayError> {
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_default();
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        let script = {
            let mut record = self.record.borrow_mut();
            record.calls.push(call.clone());
            record.scripts.get_mut(&model).and_then(VecDeque::pop_front)
        };
        let stream = body["stream"] == serde_json::Value::Bool(true);
        let script = script.unwrap_or_else(|| match stream {
            true => Script::ok(vec![chunk("Hello"), stream_end(1)]),
            false => Script::json("Hello"),
        });
        match script {
            Script::Fail(error) if error.kind == ErrorKind::UpstreamTimeout => {
                // No headers in time: the whole first-byte limit passes.
                self.clock.set(self.clock.get() + ttfb_timeout_ms);
                Err(error)
            }
            Script::Fail(error) => Err(error),
            Script::Answer {
                status,
                retry_after_ms,
                retry_after,
                content_length,
                body,
            } => Ok(UpstreamResponse {
                status,
                retry_after_ms,
                retry_after,
                content_length,
                body: FakeBody {
                    pieces: body.into(),
                    clock: Rc::clone(&self.clock),
                },
            }),
        }
    }

    fn client_gone(&self) -> bool {
        self.gone.get()
    }

    fn emit(&self, log: &mut RequestLog) {
        self.record.borrow_mut().lines.push(log.clone());
    }

    fn breaker_transition(&self, transition: &Transition) {
        self.record
            .borrow_mut()
            .transitions
            .push(transition.clone());
    }
}

/// Configuration from `vars` (over a base that routes `a`, `b` and the chain `ab` to two
/// OpenAI-compatible providers on loopback, retries twice from a 100 ms base, and opens a
/// breaker after three failures in a row).
pub fn config(vars: &[(&str, &str)]) -> Config {
    struct Source(HashMap<String, String>);
    impl ConfigSource for Source {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn secret(&self, name: &str) -> Option<String> {
            (name == "UP_KEY").then(|| "sk-test-key-0123456789abcdef".to_owned())
        }
    }
    let provider = |port: u16| serde_json::json!({"type": "openai", "base_url": format!("http://127.0.0.1:{port}/v1"), "api_key_secret": "UP_KEY"});
    let mut values: HashMap<String, String> = [
        ("PROVIDERS", serde_json::json!({"one": provider(1), "two": provider(2)}).to_string()),
        (
            "ROUTES",
            serde_json::json!({
                "a": {"provider": "one", "model": "model-a"},
                "b": {"provider": "two", "model": "model-b"},
                "ab": {"targets": [{"provider": "one", "model": "model-a"}, {"provider": "two", "model": "model-b"}]},
                "mock": {"provider": "mock", "model": "mock"}
            })
            .to_string(),
        ),
        ("UPSTREAM_RETRIES", "2".to_owned()),
        ("RETRY_BASE_DELAY_MS", "100".to_owned()),
        ("RETRY_MAX_DELAY_MS", "1000".to_owned()),
        ("UPSTREAM_TTFB_TIMEOUT_MS", "1000".to_owned()),
        ("UPSTREAM_IDLE_TIMEOUT_MS", "2000".to_owned()),
        ("UPSTREAM_TOTAL_TIMEOUT_MS", "10000".to_owned()),
        ("BREAKER_CONSECUTIVE_FAILURES", "3".to_owned()),
        ("MOCK_CHUNK_DELAY_MS", "7".to_owned()),
        ("MOCK_CHUNKS", "3".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (name, value) in vars {
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    match Config::load(&Source(values)) {
        Ok(config) => config,
        Err(errors) => panic!("{:?}", errors.0),
    }
}

/// A request for `model`, streamed or not.
pub fn request(model: &str, stream: bool) -> ChatRequest {
    parse_for_tests(&format!(
        r#"{{"model": "{model}", "stream": {stream}, "messages": [{{"role": "user", "content": "hi"}}]}}"#
    ))
}

/// The answer's shared fields for `request`.
pub fn meta(request: &ChatRequest) -> AnswerMeta {
    AnswerMeta {
        id: "chatcmpl-test".to_owned(),
        created: 1,
        model: request.model.clone(),
        include_usage: true,
        estimated_prompt_tokens: request.estimated_prompt_tokens(),
        redact_pii: false,
        surface: Surface::ChatCompletions,
        echo: Default::default(),
    }
}
