//! An answer on its way to the client: a complete answer is stamped, settled, stored and
//! sent as JSON; a stream is handed to the platform as an [`AnswerStream`], which settles,
//! stores and logs when it ends.

use std::rc::Rc;

use super::ports::{CacheWrite, Ports, Settle};
use super::stream::{AnswerStream, CommittedStream, Ends};
use crate::api::chat::{ChatCompletion, ChatRequest, Usage};
use crate::cache::entry::Entry;
use crate::observe::log::RequestLog;
use crate::output::{AnswerMeta, ChunkEncoder};
use crate::upstream::mock::MockReply;
use crate::upstream::StreamEvent;

/// Keeps a whole answer, as the client got it, with its usage (the Responses API's
/// `store`); called once the answer is complete, never for a broken stream.
pub type Keep = Box<dyn FnOnce(&ChatCompletion, &Usage)>;

/// What a successful attempt produced.
pub enum Answer<P: Ports> {
    /// A complete answer.
    Complete(ChatCompletion),
    /// A stream whose first client bytes are ready.
    Stream(Box<CommittedStream<P>>),
    /// The built-in mock answers (and the pause before each streamed piece).
    Mock(MockReply, u32),
    /// A cached answer.
    Cached(Rc<Entry>),
}

impl<P: Ports> Answer<P> {
    /// The whole answer, for a request that is not streamed; a stream stays as it is.
    pub fn into_whole(self) -> Result<ChatCompletion, Box<CommittedStream<P>>> {
        match self {
            Answer::Complete(completion) => Ok(completion),
            Answer::Mock(reply, _) => Ok(reply.completion()),
            Answer::Cached(entry) => Ok(entry.completion.clone()),
            Answer::Stream(committed) => Err(committed),
        }
    }
}

/// What the client gets.
pub enum Answered<P: Ports> {
    /// A complete answer: the `chat.completion` JSON, or the surface's equivalent (status
    /// 200); the request's log line is still to be written.
    Json(String),
    /// A streamed answer, which writes its own log line when it ends.
    Stream(AnswerStream<P>),
}

/// Where an answer goes, what it settles and stores.
pub struct Delivery<'a, P: Ports> {
    pub(super) ports: &'a P,
    pub(super) meta: &'a AnswerMeta,
    pub(super) request: &'a ChatRequest,
    pub(super) settlement: Option<P::Settlement>,
    pub(super) cache: Option<P::CacheWriter>,
    pub(super) keep: Option<Keep>,
}

impl<'a, P: Ports> Delivery<'a, P> {
    /// A delivery that settles and stores nothing.
    pub fn new(ports: &'a P, meta: &'a AnswerMeta, request: &'a ChatRequest) -> Self {
        Delivery {
            ports,
            meta,
            request,
            settlement: None,
            cache: None,
            keep: None,
        }
    }

    /// The same delivery, keeping the whole answer with `keep`.
    pub fn keeping(mut self, keep: Option<Keep>) -> Self {
        self.keep = keep;
        self
    }

    /// What the answer's end does: settle, store, keep.
    fn ends(self) -> Ends<P> {
        Ends {
            settlement: self.settlement,
            cache: self.cache,
            keep: self.keep,
        }
    }
}

/// The answer for a cached entry (`meta.model` being the model that gave it). It costs
/// nothing: the admission took only a request, and nothing is settled.
pub fn replay<P: Ports>(
    entry: Rc<Entry>,
    delivery: Delivery<'_, P>,
    log: &mut RequestLog,
) -> Answered<P> {
    deliver(Answer::Cached(entry), delivery, log)
}

/// The answer for what an attempt produced: JSON, or a stream that writes its own log
/// line. A complete answer is stored in the cache at once, a stream's once it completes.
pub fn deliver<P: Ports>(
    answer: Answer<P>,
    delivery: Delivery<'_, P>,
    log: &mut RequestLog,
) -> Answered<P> {
    let (ports, meta) = (delivery.ports, delivery.meta);
    let events = |events: Vec<StreamEvent>, delay_ms: u32, log: &mut RequestLog, ends| {
        log.status = 200;
        let encoder = ChunkEncoder::new(meta.clone());
        Answered::Stream(AnswerStream::events(
            ports,
            events,
            delay_ms,
            encoder,
            log.clone(),
            ends,
        ))
    };
    let completion = match answer {
        Answer::Mock(reply, delay_ms) if delivery.request.stream => {
            return events(reply.events(), delay_ms, log, delivery.ends());
        }
        Answer::Cached(entry) if delivery.request.stream => {
            return events(entry.events(), 0, log, delivery.ends());
        }
        answer => match answer.into_whole() {
            Ok(completion) => completion,
            Err(committed) => {
                log.status = 200;
                let stream =
                    AnswerStream::upstream(ports, *committed, log.clone(), delivery.ends());
                return Answered::Stream(stream);
            }
        },
    };
    let (completion, usage) = settle_whole(completion, delivery, log);
    Answered::Json(meta.answer_body(&completion, &usage))
}

/// A whole answer stamped with the request's id and model, its usage logged, settled, and
/// the answer stored in the cache and kept as the delivery says.
pub fn settle_whole<P: Ports>(
    completion: ChatCompletion,
    delivery: Delivery<'_, P>,
    log: &mut RequestLog,
) -> (ChatCompletion, Usage) {
    let (completion, quality) = delivery.meta.stamp(completion);
    let usage = delivery.meta.usage_of(&completion);
    log.set_usage(&usage, completion.usage.is_none());
    log.answer = Some(quality);
    let ends = delivery.ends();
    if let Some(settlement) = ends.settlement {
        settlement.settle(&usage);
    }
    if let Some(cache) = ends.cache {
        log.cache_stored = cache.store(&completion);
    }
    if let Some(keep) = ends.keep {
        keep(&completion, &usage);
    }
    (completion, usage)
}
