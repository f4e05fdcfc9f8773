//! Streamed answers: each upstream read (or mock event) becomes one client write, and the
//! request's log line is written and its rate limits settled exactly once when the stream
//! ends, however it ends.
//!
//! workerd notices a disconnected client only when a write fails; it then aborts the
//! request's signal but does not always cancel (and so drop) the body stream. The log line
//! therefore lives in a [`Ledger`] shared by the stream and an `abort` hook on the client's
//! signal: whichever sees the end first writes it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures_util::Stream;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;
use worker::Delay;

use super::attempts::TargetHealth;
use super::cache::CacheWriter;
use super::clock::now_ms;
use super::fetch::{within, BodyCanceller, UpstreamBody};
use super::limiter::Settlement;
use super::metrics::Observer;
use crate::error::GatewayError;
use crate::observe::log::RequestLog;
use crate::output::{ChunkEncoder, StreamOutcome, StreamTranslator};
use crate::upstream::{out_of_time, unreachable, went_silent, StreamEvent};

/// Where the events of a streamed answer come from.
enum Input {
    /// The built-in mock: events in memory, a pause before each chunk after the first.
    Mock {
        events: VecDeque<StreamEvent>,
        delay_ms: u32,
        sent_first: bool,
    },
    /// An upstream SSE body; dropping it closes the upstream connection.
    Upstream {
        body: UpstreamBody,
        translator: StreamTranslator,
        /// The client bytes read before the answer was committed to, not yet sent.
        first: Option<Vec<u8>>,
        timing: StreamTiming,
    },
}

/// How long a streamed upstream answer may take.
#[derive(Clone, Copy)]
pub struct StreamTiming {
    /// The longest silence between two pieces of the body.
    pub idle_timeout_ms: u64,
    /// When the request's total time runs out (Unix milliseconds).
    pub deadline_ms: u64,
    /// The total time limit, for the error message.
    pub total_timeout_ms: u32,
}

impl StreamTiming {
    /// The next piece of `body`, waiting no longer than the idle limit or the time left.
    pub async fn read(&self, body: &mut UpstreamBody) -> Piece {
        let left = self.deadline_ms.saturating_sub(now_ms());
        let wait = self.idle_timeout_ms.min(left);
        match within(wait, body.next()).await {
            Some(Some(Ok(bytes))) => Piece::Bytes(bytes),
            Some(None) => Piece::End(None),
            Some(Some(Err(()))) => {
                let broke = "the connection broke before the answer was complete";
                Piece::End(Some(unreachable(broke)))
            }
            // A wait cut short by the total limit, not the idle one.
            None if wait < self.idle_timeout_ms => {
                Piece::End(Some(out_of_time(self.total_timeout_ms)))
            }
            None => Piece::End(Some(went_silent(self.idle_timeout_ms))),
        }
    }
}

/// What one read of an upstream body brought.
pub enum Piece {
    /// More bytes.
    Bytes(Vec<u8>),
    /// The end: normal (`None`), or the body broke or timed out.
    End(Option<GatewayError>),
}

impl Piece {
    /// The client bytes this piece completes.
    pub fn translate(
        self,
        translator: &mut StreamTranslator,
        encoder: &mut ChunkEncoder,
    ) -> Vec<u8> {
        match self {
            Piece::Bytes(bytes) => translator.push(&bytes, encoder),
            Piece::End(failure) => translator.end(failure, encoder),
        }
    }
}

/// An upstream stream the request committed to: its first client bytes were produced
/// and nothing can be retried any more.
pub struct CommittedStream {
    /// The rest of the upstream body.
    pub body: UpstreamBody,
    /// Its translator, already past the first bytes.
    pub translator: StreamTranslator,
    /// The encoder that wrote the first bytes.
    pub encoder: ChunkEncoder,
    /// The client bytes produced so far.
    pub first: Vec<u8>,
    /// Its time limits.
    pub timing: StreamTiming,
    /// The target that answers, told how the stream ended.
    pub health: TargetHealth,
}

/// The answer's accounting (the encoder knows usage and outcome), its one log line and
/// the settlement of its rate limits.
struct Ledger {
    encoder: ChunkEncoder,
    log: RequestLog,
    /// The upstream target, for its circuit breaker (none for the built-in mock).
    health: Option<TargetHealth>,
    ends: Ends,
    written: bool,
}

/// What a stream's end does besides its log line's fields: who writes the line, what it
/// settles (the rate limits, with the usage delivered) and what it stores (the answer, in
/// the response cache, if it completed).
pub struct Ends {
    /// Writes the log line and records the metrics.
    pub observer: Observer,
    /// The request's rate-limit settlement.
    pub settlement: Option<Settlement>,
    /// Stores the completed answer.
    pub cache: Option<CacheWriter>,
}

impl Ledger {
    /// Writes the log line unless it was written already. `client_gone` tells whether the
    /// client disconnected.
    fn close(&mut self, client_gone: bool) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        if let (Some(cache), Some(completion)) = (&self.ends.cache, self.encoder.recorded()) {
            self.log.cache_stored = cache.store(&completion);
        }
        let encoder = &self.encoder;
        let usage = encoder.usage();
        let (outcome, error) = match encoder.outcome() {
            StreamOutcome::Completed => ("completed", None),
            // An upstream cut by the client's disconnect is the client's doing, and a stream
            // that is still open here was abandoned by its reader.
            StreamOutcome::Broken if !client_gone => {
                ("broken", encoder.error().map(|e| e.code().to_owned()))
            }
            _ => ("client_closed", None),
        };
        let log = &mut self.log;
        log.latency_ms = now_ms().saturating_sub(log.ts);
        log.set_usage(&usage, !encoder.usage_is_reported());
        log.stream_outcome = Some(outcome);
        log.error = error;
        self.ends.observer.emit(log);
        // The target's breaker learns how the stream went; a client leaving says nothing
        // about the upstream.
        if let Some(health) = &self.health {
            match outcome {
                "completed" => health.record(false),
                "broken" => health.record(true),
                _ => {}
            }
        }
        // What was delivered is charged, however the stream ended.
        if let Some(settlement) = self.ends.settlement.take() {
            settlement.settle(&usage);
        }
    }
}

/// When the client's signal aborts: cancels the upstream body (ending the read the stream
/// waits on) and closes the ledger. Unhooks itself when dropped.
struct ClientAbortHook {
    signal: AbortSignal,
    _closure: Closure<dyn FnMut()>,
}

impl ClientAbortHook {
    fn install(
        signal: AbortSignal,
        ledger: &Rc<RefCell<Ledger>>,
        upstream: Option<BodyCanceller>,
    ) -> Self {
        let ledger = Rc::clone(ledger);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(upstream) = &upstream {
                upstream.cancel();
            }
            // The stream never holds the borrow across an await, so this cannot collide.
            if let Ok(mut ledger) = ledger.try_borrow_mut() {
                ledger.close(true);
            }
        });
        signal.set_onabort(Some(closure.as_ref().unchecked_ref()));
        ClientAbortHook {
            signal,
            _closure: closure,
        }
    }
}

impl Drop for ClientAbortHook {
    fn drop(&mut self) {
        self.signal.set_onabort(None);
    }
}

/// One streamed answer.
pub struct AnswerStream {
    input: Input,
    ledger: Rc<RefCell<Ledger>>,
    hook: ClientAbortHook,
    ended: bool,
}

impl AnswerStream {
    /// A stream replaying the mock's events.
    pub fn mock(
        events: Vec<StreamEvent>,
        delay_ms: u32,
        encoder: ChunkEncoder,
        client: AbortSignal,
        log: RequestLog,
        ends: Ends,
    ) -> Self {
        let input = Input::Mock {
            events: events.into(),
            delay_ms,
            sent_first: false,
        };
        AnswerStream::new(input, encoder, None, client, log, ends)
    }

    /// A stream translating the rest of a committed upstream answer.
    pub fn upstream(
        committed: CommittedStream,
        client: AbortSignal,
        log: RequestLog,
        ends: Ends,
    ) -> Self {
        let CommittedStream {
            body,
            translator,
            encoder,
            first,
            timing,
            health,
        } = committed;
        let input = Input::Upstream {
            body,
            translator,
            first: Some(first),
            timing,
        };
        AnswerStream::new(input, encoder, Some(health), client, log, ends)
    }

    fn new(
        input: Input,
        mut encoder: ChunkEncoder,
        health: Option<TargetHealth>,
        client: AbortSignal,
        log: RequestLog,
        ends: Ends,
    ) -> Self {
        if ends.cache.is_some() {
            encoder.record();
        }
        let ledger = Rc::new(RefCell::new(Ledger {
            encoder,
            log,
            health,
            ends,
            written: false,
        }));
        let upstream = match &input {
            Input::Upstream { body, .. } => Some(body.canceller()),
            Input::Mock { .. } => None,
        };
        let hook = ClientAbortHook::install(client, &ledger, upstream);
        AnswerStream {
            input,
            ledger,
            hook,
            ended: false,
        }
    }

    /// The client bytes, chunk by chunk.
    pub fn into_body(self) -> impl Stream<Item = Vec<u8>> + 'static {
        futures_util::stream::unfold(self, |mut stream| async move {
            let chunk = stream.next_chunk().await?;
            let mut ledger = stream.ledger.borrow_mut();
            if ledger.log.ttfb_ms.is_none() {
                ledger.log.ttfb_ms = Some(now_ms().saturating_sub(ledger.log.ts));
            }
            drop(ledger);
            Some((chunk, stream))
        })
    }

    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let client = &self.hook.signal;
        while !self.ended {
            // Each arm awaits its input first and only then takes the ledger, so the abort
            // hook never finds it borrowed. A disconnect aborts the client signal, and the
            // hook cancels the upstream read being awaited: that is not an upstream failure,
            // so the stream just stops (the hook has logged it).
            let out = match &mut self.input {
                Input::Mock {
                    events,
                    delay_ms,
                    sent_first,
                } => {
                    let Some(event) = events.pop_front() else {
                        self.ended = true;
                        return None;
                    };
                    if matches!(event, StreamEvent::Choices(_)) {
                        if *sent_first && *delay_ms > 0 {
                            Delay::from(Duration::from_millis((*delay_ms).into())).await;
                        }
                        *sent_first = true;
                    }
                    if client.aborted() {
                        return None;
                    }
                    let mut out = Vec::new();
                    self.ledger.borrow_mut().encoder.encode(event, &mut out);
                    out
                }
                Input::Upstream {
                    body,
                    translator,
                    first,
                    timing,
                } => match first.take() {
                    Some(first) => first,
                    None => {
                        let piece = timing.read(body).await;
                        if client.aborted() {
                            return None;
                        }
                        piece.translate(translator, &mut self.ledger.borrow_mut().encoder)
                    }
                },
            };
            if self.ledger.borrow().encoder.outcome() != StreamOutcome::Open {
                self.ended = true;
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
        None
    }
}

impl Drop for AnswerStream {
    /// The stream finished, or the runtime dropped it: log unless the hook already did.
    fn drop(&mut self) {
        let client_gone = self.hook.signal.aborted();
        if let Ok(mut ledger) = self.ledger.try_borrow_mut() {
            ledger.close(client_gone);
        }
    }
}
