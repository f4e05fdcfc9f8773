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

use super::clock::now_ms;
use super::fetch::{BodyCanceller, UpstreamBody};
use super::handler::emit_log;
use super::limiter::Settlement;
use crate::observe::log::RequestLog;
use crate::output::{ChunkEncoder, StreamOutcome, StreamTranslator};
use crate::upstream::StreamEvent;

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
    },
}

/// The answer's accounting (the encoder knows usage and outcome), its one log line and
/// the settlement of its rate limits.
struct Ledger {
    encoder: ChunkEncoder,
    log: RequestLog,
    settlement: Option<Settlement>,
    written: bool,
}

impl Ledger {
    /// Writes the log line unless it was written already. `client_gone` tells whether the
    /// client disconnected.
    fn close(&mut self, client_gone: bool) {
        if std::mem::replace(&mut self.written, true) {
            return;
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
        log.prompt_tokens = Some(usage.prompt_tokens);
        log.completion_tokens = Some(usage.completion_tokens);
        log.tokens_estimated = !encoder.usage_is_reported();
        log.stream_outcome = Some(outcome);
        log.error = error;
        emit_log(log);
        // What was delivered is charged, however the stream ended.
        if let Some(settlement) = self.settlement.take() {
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
        settlement: Option<Settlement>,
    ) -> Self {
        let input = Input::Mock {
            events: events.into(),
            delay_ms,
            sent_first: false,
        };
        AnswerStream::new(input, encoder, client, log, settlement)
    }

    /// A stream translating an upstream body.
    pub fn upstream(
        body: UpstreamBody,
        translator: StreamTranslator,
        encoder: ChunkEncoder,
        client: AbortSignal,
        log: RequestLog,
        settlement: Option<Settlement>,
    ) -> Self {
        let input = Input::Upstream { body, translator };
        AnswerStream::new(input, encoder, client, log, settlement)
    }

    fn new(
        input: Input,
        encoder: ChunkEncoder,
        client: AbortSignal,
        log: RequestLog,
        settlement: Option<Settlement>,
    ) -> Self {
        let ledger = Rc::new(RefCell::new(Ledger {
            encoder,
            log,
            settlement,
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
                    body, translator, ..
                } => {
                    let read = body.next().await;
                    if client.aborted() {
                        return None;
                    }
                    let encoder = &mut self.ledger.borrow_mut().encoder;
                    match read {
                        Some(Ok(bytes)) => translator.push(&bytes, encoder),
                        Some(Err(_)) => {
                            translator.end(Some("the connection broke mid-stream"), encoder)
                        }
                        None => translator.end(None, encoder),
                    }
                }
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
