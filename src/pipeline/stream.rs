//! Streamed answers: each upstream read (or mock event) becomes one client write, and the
//! request's log line is written and its rate limits settled exactly once when the stream
//! ends, however it ends.
//!
//! The platform may notice that the client left before the stream does (workerd aborts
//! the request's signal but does not always drop the body stream): the accounting
//! therefore lives in a [`Ledger`] that the stream and a [`StreamCloser`] share, and
//! whichever sees the end first closes it.
//!
//! A platform pulls the client bytes with [`AnswerStream::next_chunk`], a future per
//! piece, or reads an upstream body in a loop of its own and hands each piece to
//! [`AnswerStream::relay_piece`] (no future, task or wake-up per piece: in workerd those
//! cost more CPU than translating the piece).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures_util::future::{select, Either};

use super::deliver::Keep;
use super::health::TargetHealth;
use super::ports::{within, CacheWrite, Ports, Settle, UpstreamBody};
use crate::error::GatewayError;
use crate::observe::log::{RequestLog, StreamEnd};
use crate::output::{ChunkEncoder, StreamOutcome, StreamTranslator};
use crate::upstream::{out_of_time, unreachable, went_silent, StreamEvent};

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

/// How long the end of an upstream body may take after its answer's last event: it
/// normally comes with that event or right after it.
pub const END_GRACE_MS: u64 = 100;

/// An upstream body read piece by piece, each piece within the idle limit and the time
/// left. One timer watches the whole body: it is armed for the first read and kept while
/// pieces come in time (re-armed only when it goes off early, for what is left of the
/// current wait), instead of a timer set and cleared for every piece: in workerd each
/// costs more CPU than reading the piece.
pub struct TimedBody<P: Ports> {
    body: P::Body,
    timing: StreamTiming,
    /// The armed timer and the Unix milliseconds it goes off at.
    alarm: Option<(P::Timer, u64)>,
}

impl<P: Ports> TimedBody<P> {
    /// `body`, to be read within `timing`.
    pub fn new(body: P::Body, timing: StreamTiming) -> Self {
        TimedBody {
            body,
            timing,
            alarm: None,
        }
    }

    /// The body itself (to cancel it from outside, or read it without this wrapper).
    pub fn body_mut(&mut self) -> &mut P::Body {
        &mut self.body
    }

    /// Reads to the end a body whose answer is complete (its last event came), for at most
    /// [`END_GRACE_MS`]: a body that ends is not cancelled when it is dropped, and in
    /// workerd a cancel costs more CPU than the read that sees the end.
    pub async fn finish(&mut self, ports: &P) {
        let rest = async { while let Some(Ok(_)) = self.body.next().await {} };
        within(ports, END_GRACE_MS, rest).await;
    }

    /// The next piece, waiting no longer than the idle limit or the time left.
    pub async fn read(&mut self, ports: &P) -> Piece {
        let start = ports.now_ms();
        let idle_due = start.saturating_add(self.timing.idle_timeout_ms);
        let due = idle_due.min(self.timing.deadline_ms);
        // A kept timer goes off at or before this wait's end (the end only moves later).
        let mut alarm = match self.alarm.take() {
            Some((timer, at)) if at <= due => (timer, at),
            _ => (ports.sleep(due.saturating_sub(start)), due),
        };
        let read = self.body.next();
        futures_util::pin_mut!(read);
        let outcome = loop {
            match select(read, &mut alarm.0).await {
                Either::Left((outcome, _)) => break Some(outcome),
                Either::Right(((), pending)) => {
                    read = pending;
                    let now = ports.now_ms();
                    if now >= due {
                        break None;
                    }
                    alarm = (ports.sleep(due - now), due);
                }
            }
        };
        let end = match outcome {
            Some(Some(Ok(bytes))) => {
                self.alarm = Some(alarm);
                return Piece::Bytes(bytes);
            }
            Some(None) => BodyEnd::Done,
            Some(Some(Err(()))) => BodyEnd::Broke,
            // A wait cut short by the total limit, not the idle one.
            None if due < idle_due => BodyEnd::OutOfTime,
            None => BodyEnd::Silent,
        };
        Piece::end(end, &self.timing)
    }
}

/// How the reading of an upstream body stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The body ended.
    Done,
    /// The connection broke.
    Broke,
    /// Nothing came within the idle limit.
    Silent,
    /// The request's total time ran out.
    OutOfTime,
}

/// What one read of an upstream body brought.
pub enum Piece {
    /// More bytes.
    Bytes(Vec<u8>),
    /// The end: normal (`None`), or the body broke or timed out.
    End(Option<GatewayError>),
}

impl Piece {
    /// The last piece of a body that stopped as `end` says, while read within `timing`.
    pub fn end(end: BodyEnd, timing: &StreamTiming) -> Piece {
        Piece::End(match end {
            BodyEnd::Done => None,
            BodyEnd::Broke => Some(unreachable(
                "the connection broke before the answer was complete",
            )),
            BodyEnd::Silent => Some(went_silent(timing.idle_timeout_ms)),
            BodyEnd::OutOfTime => Some(out_of_time(timing.total_timeout_ms)),
        })
    }

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
pub struct CommittedStream<P: Ports> {
    /// The rest of the upstream body, within its time limits.
    pub body: TimedBody<P>,
    /// Its translator, already past the first bytes.
    pub translator: StreamTranslator,
    /// The encoder that wrote the first bytes.
    pub encoder: ChunkEncoder,
    /// The client bytes produced so far.
    pub first: Vec<u8>,
    /// The target that answers, told how the stream ended.
    pub health: TargetHealth<P>,
}

/// What a stream's end does besides its log line's fields: what it settles (the rate
/// limits, with the usage delivered) and what it stores (the answer, in the response
/// cache, if it completed).
pub struct Ends<P: Ports> {
    /// The request's rate-limit settlement.
    pub settlement: Option<P::Settlement>,
    /// Stores the completed answer.
    pub cache: Option<P::CacheWriter>,
    /// Keeps the completed answer.
    pub keep: Option<Keep>,
}

/// The answer's accounting (the encoder knows usage and outcome), its one log line, the
/// settlement of its rate limits and its target's breaker report.
pub struct Ledger<P: Ports> {
    ports: P,
    encoder: ChunkEncoder,
    log: RequestLog,
    /// The upstream target, for its circuit breaker (none for the built-in mock or a
    /// replay).
    health: Option<TargetHealth<P>>,
    ends: Ends<P>,
    written: bool,
}

impl<P: Ports> Ledger<P> {
    /// Writes the log line unless it was written already. `client_gone` tells whether the
    /// client disconnected.
    fn close(&mut self, client_gone: bool) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let recorded = self.encoder.recorded();
        if let (Some(cache), Some(completion)) = (&self.ends.cache, &recorded) {
            self.log.cache_stored = cache.store(completion);
        }
        let encoder = &self.encoder;
        let usage = encoder.usage();
        if let (Some(keep), Some(completion)) = (self.ends.keep.take(), &recorded) {
            keep(completion, &usage);
        }
        let end = match encoder.outcome() {
            StreamOutcome::Completed => StreamEnd::Completed,
            // An upstream cut by the client's disconnect is the client's doing, and a stream
            // that is still open here was abandoned by its reader.
            StreamOutcome::Broken if !client_gone => StreamEnd::Broken,
            _ => StreamEnd::ClientClosed,
        };
        let log = &mut self.log;
        log.latency_ms = self.ports.now_ms().saturating_sub(log.ts);
        log.set_usage(&usage, !encoder.usage_is_reported());
        log.stream_outcome = Some(end);
        log.answer = Some(encoder.quality());
        log.error = match end {
            StreamEnd::Broken => encoder.error().map(|error| error.code().to_owned()),
            _ => None,
        };
        self.ports.emit(log);
        // The target's breaker learns how the stream went; a client leaving says nothing
        // about the upstream.
        if let Some(health) = &self.health {
            match end {
                StreamEnd::Completed => health.record(false),
                StreamEnd::Broken => health.record(true),
                StreamEnd::ClientClosed => {}
            }
        }
        // What was delivered is charged, however the stream ended.
        if let Some(settlement) = self.ends.settlement.take() {
            settlement.settle(&usage);
        }
    }
}

/// Closes a stream's accounting from outside the stream, when the platform learns first
/// that the client left.
pub struct StreamCloser<P: Ports>(Rc<RefCell<Ledger<P>>>);

impl<P: Ports> StreamCloser<P> {
    /// The client left: log, settle and report, unless the stream's own end came first.
    pub fn client_left(&self) {
        // The stream never holds the borrow across an await, so this cannot collide.
        if let Ok(mut ledger) = self.0.try_borrow_mut() {
            ledger.close(true);
        }
    }
}

/// What a platform that reads the upstream body itself does after one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayNext {
    /// Read the next piece.
    Read,
    /// The answer is complete: read the rest of the body, for at most [`END_GRACE_MS`]
    /// (a body that ends is not cancelled, and in workerd a cancel costs more CPU than
    /// the read that sees the end), and stop.
    Drain,
    /// The answer broke off or the client left: cancel the body and stop.
    Stop,
}

/// The client bytes of one piece of a relayed upstream body, and what to do next.
pub struct Relayed {
    /// To be written to the client (may be empty).
    pub bytes: Vec<u8>,
    /// What follows.
    pub next: RelayNext,
}

impl Relayed {
    fn stop() -> Self {
        Relayed {
            bytes: Vec::new(),
            next: RelayNext::Stop,
        }
    }
}

/// Where the events of a streamed answer come from.
enum Input<P: Ports> {
    /// The built-in mock or a replay: events in memory, a pause before each chunk after
    /// the first.
    Events {
        events: VecDeque<StreamEvent>,
        delay_ms: u32,
        sent_first: bool,
    },
    /// An upstream SSE body; dropping it closes the upstream connection.
    Upstream {
        body: TimedBody<P>,
        translator: StreamTranslator,
        /// The client bytes read before the answer was committed to, not yet sent.
        first: Option<Vec<u8>>,
    },
}

/// One streamed answer.
pub struct AnswerStream<P: Ports> {
    ports: P,
    input: Input<P>,
    ledger: Rc<RefCell<Ledger<P>>>,
    ended: bool,
}

impl<P: Ports> AnswerStream<P> {
    /// A stream of events held in memory (the mock's, or a cached answer's replay).
    pub fn events(
        ports: &P,
        events: Vec<StreamEvent>,
        delay_ms: u32,
        mut encoder: ChunkEncoder,
        log: RequestLog,
        ends: Ends<P>,
    ) -> Self {
        // An upstream stream's encoder records from its first bytes on (see
        // `answer::attempt`); this one has written nothing yet.
        if ends.cache.is_some() || ends.keep.is_some() {
            encoder.record();
        }
        let input = Input::Events {
            events: events.into(),
            delay_ms,
            sent_first: false,
        };
        AnswerStream::new(ports, input, encoder, None, log, ends)
    }

    /// A stream translating the rest of a committed upstream answer.
    pub fn upstream(
        ports: &P,
        committed: CommittedStream<P>,
        log: RequestLog,
        ends: Ends<P>,
    ) -> Self {
        let CommittedStream {
            body,
            translator,
            encoder,
            first,
            health,
        } = committed;
        let input = Input::Upstream {
            body,
            translator,
            first: Some(first),
        };
        AnswerStream::new(ports, input, encoder, Some(health), log, ends)
    }

    fn new(
        ports: &P,
        input: Input<P>,
        encoder: ChunkEncoder,
        health: Option<TargetHealth<P>>,
        log: RequestLog,
        ends: Ends<P>,
    ) -> Self {
        let ledger = Rc::new(RefCell::new(Ledger {
            ports: ports.clone(),
            encoder,
            log,
            health,
            ends,
            written: false,
        }));
        AnswerStream {
            ports: ports.clone(),
            input,
            ledger,
            ended: false,
        }
    }

    /// A handle that closes the accounting when the client leaves first.
    pub fn closer(&self) -> StreamCloser<P> {
        StreamCloser(Rc::clone(&self.ledger))
    }

    /// The upstream body the stream reads, if it reads one (to cancel it from outside, or
    /// to read it in the platform's own loop).
    pub fn upstream_body(&mut self) -> Option<&mut P::Body> {
        match &mut self.input {
            Input::Upstream { body, .. } => Some(body.body_mut()),
            Input::Events { .. } => None,
        }
    }

    /// Starts relaying an upstream answer whose body the platform reads itself: the client
    /// bytes produced before the answer was committed to, what to do next, and the time
    /// limits of the reads (the platform keeps them from here on). `None` for a stream of
    /// events in memory, which only [`AnswerStream::next_chunk`] reads.
    pub fn relay_start(&mut self) -> Option<(Relayed, StreamTiming)> {
        let Input::Upstream { body, first, .. } = &mut self.input else {
            return None;
        };
        body.alarm = None;
        let timing = body.timing;
        let bytes = first.take().unwrap_or_default();
        Some((self.relayed(bytes), timing))
    }

    /// The client bytes one piece of the upstream body completes, and what to do next.
    pub fn relay_piece(&mut self, piece: Piece) -> Relayed {
        let Input::Upstream { translator, .. } = &mut self.input else {
            return Relayed::stop();
        };
        match Self::translate(&self.ports, &self.ledger, translator, piece) {
            Some(bytes) => self.relayed(bytes),
            None => Relayed::stop(),
        }
    }

    /// `bytes` and what follows them: more reading while the answer is open.
    fn relayed(&mut self, bytes: Vec<u8>) -> Relayed {
        if !bytes.is_empty() {
            self.stamp_first_byte();
        }
        let next = match self.ledger.borrow().encoder.outcome() {
            StreamOutcome::Open => RelayNext::Read,
            StreamOutcome::Completed => RelayNext::Drain,
            _ => RelayNext::Stop,
        };
        self.ended = next != RelayNext::Read;
        Relayed { bytes, next }
    }

    /// The client bytes `piece` completes; `None` when the client has left (the stream just
    /// stops: a client that left is not an upstream failure, and the closer, or the drop,
    /// logs it).
    fn translate(
        ports: &P,
        ledger: &RefCell<Ledger<P>>,
        translator: &mut StreamTranslator,
        piece: Piece,
    ) -> Option<Vec<u8>> {
        if ports.client_gone() {
            return None;
        }
        Some(piece.translate(translator, &mut ledger.borrow_mut().encoder))
    }

    /// Stamps the log line's time to first byte, unless it has one.
    fn stamp_first_byte(&self) {
        let mut ledger = self.ledger.borrow_mut();
        if ledger.log.ttfb_ms.is_none() {
            ledger.log.ttfb_ms = Some(self.ports.now_ms().saturating_sub(ledger.log.ts));
        }
    }

    /// The next client bytes; `None` at the end. The first one stamps the log line's time
    /// to first byte.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let chunk = self.next_bytes().await?;
        self.stamp_first_byte();
        Some(chunk)
    }

    async fn next_bytes(&mut self) -> Option<Vec<u8>> {
        while !self.ended {
            // Each arm awaits its input first and only then takes the ledger, so a closer
            // never finds it borrowed. A client that left is not an upstream failure: the
            // stream just stops (the closer, or the drop, logs it).
            let out = match &mut self.input {
                Input::Events {
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
                            self.ports.sleep(u64::from(*delay_ms)).await;
                        }
                        *sent_first = true;
                    }
                    if self.ports.client_gone() {
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
                } => match first.take() {
                    Some(first) => first,
                    None => {
                        let piece = body.read(&self.ports).await;
                        Self::translate(&self.ports, &self.ledger, translator, piece)?
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
        if let Input::Upstream { body, .. } = &mut self.input {
            if self.ledger.borrow().encoder.outcome() == StreamOutcome::Completed {
                body.finish(&self.ports).await;
            }
        }
        None
    }
}

impl<P: Ports> Drop for AnswerStream<P> {
    /// The stream finished, or its reader dropped it: close the accounting unless the
    /// closer already did.
    fn drop(&mut self) {
        let client_gone = self.ports.client_gone();
        if let Ok(mut ledger) = self.ledger.try_borrow_mut() {
            ledger.close(client_gone);
        }
    }
}
