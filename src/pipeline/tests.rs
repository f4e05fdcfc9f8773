//! The pipeline on fake ports: every fault path of the end-to-end resilience suite, and
//! those it cannot reach (a clock that jumps, a breaker that opens within one request, a
//! request that fails after admission), with what each settles, stores, logs and tells
//! the breakers.

use super::answer::{answer, complete, Call};
use super::deliver::Answered;
use super::ports::UpstreamBody;
use super::stream::{AnswerStream, BodyEnd, Piece, RelayNext};
use super::testing::{block_on, chunk, config, meta, request, stream_end, Fake, FakePorts, Script};
use crate::api::chat::ChatRequest;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::observe::log::{RequestLog, StreamEnd};
use crate::upstream::{resolve, timed_out, unreachable};

const START_MS: u64 = 1_000_000;

/// Runs `request` through the pipeline on `ports`, with a settlement and a cache writer.
fn run(
    ports: &FakePorts,
    config: &Config,
    request: &ChatRequest,
) -> (Result<Answered<FakePorts>, GatewayError>, RequestLog) {
    let resolved = resolve(config, request, 0).unwrap();
    let mut log = RequestLog {
        ts: ports.clock.get(),
        request_id: "r1".into(),
        ..RequestLog::default()
    };
    let call = Call {
        ports,
        config,
        request,
        targets: resolved.targets,
        meta: meta(request),
        settlement: Some(ports.settlement()),
        cache: Some(ports.cache()),
        keep: None,
    };
    let result = block_on(answer(call, &mut log));
    (result, log)
}

/// `target:outcome` of every upstream call (or skip) of the request.
fn chain(log: &RequestLog) -> Vec<String> {
    log.chain
        .iter()
        .map(|attempt| format!("{}:{}", attempt.target, attempt.outcome))
        .collect()
}

/// The whole client body of a stream; the stream is then dropped (its ledger closes).
fn drain(mut stream: AnswerStream<FakePorts>) -> String {
    let mut out = Vec::new();
    while let Some(chunk) = block_on(stream.next_chunk()) {
        out.extend(chunk);
    }
    String::from_utf8(out).unwrap()
}

/// A stream relayed as the platform's own loop relays it: the body read piece by piece
/// outside the stream, each piece handed to it, until it says to stop reading; a body that
/// stops before its end stops as `end` says. The client body and the last instruction.
fn relay(mut stream: AnswerStream<FakePorts>, end: BodyEnd) -> (String, RelayNext) {
    let (first, timing) = stream.relay_start().expect("an upstream stream");
    let mut out = first.bytes;
    let mut next = first.next;
    while next == RelayNext::Read {
        let piece = match block_on(stream.upstream_body().unwrap().next()) {
            Some(Ok(bytes)) => Piece::Bytes(bytes),
            Some(Err(())) => Piece::end(BodyEnd::Broke, &timing),
            None => Piece::end(end, &timing),
        };
        let relayed = stream.relay_piece(piece);
        out.extend(relayed.bytes);
        next = relayed.next;
    }
    (String::from_utf8(out).unwrap(), next)
}

fn json_of(answered: Answered<FakePorts>) -> serde_json::Value {
    match answered {
        Answered::Json(body) => serde_json::from_str(&body).unwrap(),
        Answered::Stream(_) => panic!("a stream for a JSON request"),
    }
}

fn stream_of(answered: Answered<FakePorts>) -> AnswerStream<FakePorts> {
    match answered {
        Answered::Stream(stream) => stream,
        Answered::Json(_) => panic!("JSON for a streamed request"),
    }
}

#[test]
fn an_answer_is_settled_at_its_usage_and_stored() {
    let ports = FakePorts::at(START_MS);
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("a", false));
    let body = json_of(result.unwrap());
    assert_eq!(body["choices"][0]["message"]["content"], "Hello");
    assert_eq!(body["id"], "chatcmpl-test");
    assert_eq!(chain(&log), ["one/model-a:ok"]);
    assert_eq!(
        (log.prompt_tokens, log.completion_tokens),
        (Some(10), Some(5))
    );
    let record = ports.record.borrow();
    let settled = record.settled.borrow();
    assert_eq!(settled.len(), 1, "settled exactly once");
    assert_eq!(settled[0].1.completion_tokens, 5);
    assert_eq!(record.stored.borrow().len(), 1);
    assert!(record.sleeps.is_empty());
}

#[test]
fn transient_failures_are_retried_with_backoff_then_answered() {
    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::error(503), Script::error(500)]);
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("a", false));
    assert!(result.is_ok());
    assert_eq!(
        chain(&log),
        ["one/model-a:503", "one/model-a:500", "one/model-a:ok"]
    );
    assert_eq!(log.attempts, 3);
    // Full jitter from a 100 ms base: the middle of [0, 100] then of [0, 200].
    assert_eq!(ports.record.borrow().sleeps, [50, 100]);
}

#[test]
fn an_upstream_wait_is_honoured_and_its_own_429_named() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::rate_limited(20), Script::json("fine")],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", false));
    assert!(result.is_ok());
    assert_eq!(
        ports.record.borrow().sleeps,
        [20],
        "exactly the wait it asked for"
    );

    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::rate_limited(20); 3]);
    let (result, log) = run(&ports, &config, &request("a", false));
    let error = result.err().unwrap();
    assert_eq!(
        (error.status(), error.code()),
        (429, "upstream_rate_limited")
    );
    assert_eq!(error.retry_after_ms, Some(20));
    assert!(error.message.contains("\"one\""), "{}", error.message);
    assert_eq!(log.attempts, 3);
}

#[test]
fn a_request_the_upstream_refuses_is_not_retried_nor_held_against_it() {
    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::error(400)]);
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("ab", false));
    assert_eq!(result.err().unwrap().status(), 400);
    assert_eq!(chain(&log), ["one/model-a:400"], "no retry, no fallback");
    assert!(ports.record.borrow().transitions.is_empty());
    let settled = ports.record.borrow().settled.borrow().clone();
    assert_eq!(
        settled.len(),
        1,
        "a failed request settles too, with nothing used"
    );
    assert_eq!(settled[0].1.total_tokens, 0);
}

#[test]
fn unusable_targets_and_redirects_fall_back_to_the_next() {
    let config = config(&[]);
    for script in [Script::error(401), Script::status(307, vec![])] {
        let ports = FakePorts::at(START_MS);
        ports.script("model-a", vec![script]);
        let (result, log) = run(&ports, &config, &request("ab", false));
        assert!(result.is_ok());
        assert_eq!(chain(&log).len(), 2);
        assert_eq!(ports.called_models(), ["model-a", "model-b"]);
        assert_eq!(
            log.provider.as_deref(),
            Some("two"),
            "the log names who answered"
        );
    }
    // On a one-target route a redirect is the client's 502, naming it.
    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::status(302, vec![])]);
    let (result, _) = run(&ports, &config, &request("a", false));
    let error = result.err().unwrap();
    assert_eq!(error.status(), 502);
    assert!(error.message.contains("redirect (302)"));
}

#[test]
fn connection_failures_and_timeouts_exhaust_a_chain_into_503() {
    let ports = FakePorts::at(START_MS);
    let broken = || Script::Fail(unreachable("connection failed"));
    ports.script("model-a", vec![broken(), broken(), broken()]);
    ports.script("model-b", vec![Script::Fail(timed_out(1000)); 3]);
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("ab", false));
    let error = result.err().unwrap();
    assert_eq!(error.code(), "all_providers_failed");
    assert!(error.message.contains("one/model-a: upstream_error"));
    assert!(error.message.contains("two/model-b: upstream_timeout"));
    assert_eq!(log.attempts, 6);
}

#[test]
fn a_breaker_that_opens_within_a_request_skips_its_target() {
    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::error(503); 3]);
    // One failure short of nothing: retries 3 times would be the 4th call; the breaker
    // opens after the 3rd failure and the chain moves on.
    let config = config(&[
        ("UPSTREAM_RETRIES", "5"),
        ("BREAKER_CONSECUTIVE_FAILURES", "3"),
    ]);
    let (result, log) = run(&ports, &config, &request("ab", false));
    assert!(result.is_ok());
    assert_eq!(
        chain(&log),
        [
            "one/model-a:503",
            "one/model-a:503",
            "one/model-a:503",
            "one/model-a:circuit_open",
            "two/model-b:ok"
        ]
    );
    let transitions = &ports.record.borrow().transitions;
    assert_eq!(transitions.len(), 1);
    assert_eq!(
        (transitions[0].target.as_str(), transitions[0].to),
        ("one/model-a", "open")
    );
}

#[test]
fn the_total_deadline_stops_retries_that_would_end_past_it() {
    let ports = FakePorts::at(START_MS);
    // Each call waits out the whole first-byte limit (1 s) of a 2.5 s total.
    ports.script("model-a", vec![Script::Fail(timed_out(1000)); 3]);
    let config = config(&[("UPSTREAM_TOTAL_TIMEOUT_MS", "2500")]);
    let (result, log) = run(&ports, &config, &request("a", false));
    let error = result.err().unwrap();
    assert_eq!(error.kind, ErrorKind::UpstreamTimeout);
    // 1 s, a 50 ms wait, 1 s, a 100 ms wait: the third call has 350 ms left, and its
    // first-byte wait is cut to them.
    assert_eq!(log.attempts, 3);
    assert!(
        error.message.contains("time limit of 2500 ms"),
        "{}",
        error.message
    );
    assert_eq!(ports.clock.get(), START_MS + 2500);
}

#[test]
fn a_stream_commits_after_its_first_bytes_and_is_settled_when_it_ends() {
    let ports = FakePorts::at(START_MS);
    // Broken before its first event, then a whole stream.
    ports.script(
        "model-a",
        vec![
            Script::ok(vec![Fake::Break]),
            Script::ok(vec![chunk("Hel"), chunk("lo"), stream_end(2)]),
        ],
    );
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("a", true));
    assert_eq!(
        chain(&log),
        ["one/model-a:upstream_error", "one/model-a:ok"]
    );
    let body = drain(stream_of(result.unwrap()));
    assert!(body.contains("\"Hel\"") && body.contains("\"lo\""));
    assert!(body.ends_with("data: [DONE]\n\n"));
    let record = ports.record.borrow();
    let line = record.lines.last().unwrap();
    assert_eq!(line.stream_outcome, Some(StreamEnd::Completed));
    assert_eq!(line.completion_tokens, Some(2));
    assert!(line.ttfb_ms.is_some());
    assert_eq!(record.settled.borrow().len(), 1);
    assert_eq!(record.settled.borrow()[0].1.completion_tokens, 2);
    let stored = record.stored.borrow();
    assert_eq!(stored.len(), 1, "a completed stream is stored");
    // Its first bytes, read before the stream was committed to, included.
    let message = &stored[0].choices[0].message;
    assert_eq!(message.content.as_deref(), Some("Hello"));
}

#[test]
fn a_stream_that_breaks_after_its_first_bytes_ends_with_an_error_event() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::ok(vec![chunk("Hello world"), Fake::Break])],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.contains("\"code\":\"upstream_error\""));
    assert!(!body.contains("[DONE]"));
    let record = ports.record.borrow();
    let line = record.lines.last().unwrap();
    assert_eq!(line.stream_outcome, Some(StreamEnd::Broken));
    assert_eq!(line.error.as_deref(), Some("upstream_error"));
    assert!(line.tokens_estimated);
    assert_eq!(
        line.completion_tokens,
        Some(3),
        "what was delivered is charged"
    );
    assert_eq!(record.settled.borrow()[0].1.completion_tokens, 3);
    assert!(
        record.stored.borrow().is_empty(),
        "a broken stream is never stored"
    );
}

#[test]
fn a_stall_before_the_first_byte_is_retried_and_one_after_it_times_out() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![
            Script::ok(vec![Fake::Stall]),
            Script::ok(vec![chunk("Hi"), Fake::Stall]),
        ],
    );
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("a", true));
    assert_eq!(
        chain(&log),
        ["one/model-a:upstream_timeout", "one/model-a:ok"]
    );
    let body = drain(stream_of(result.unwrap()));
    assert!(body.contains("sent nothing for 2000 ms"), "{body}");
    assert_eq!(
        ports.record.borrow().lines.last().unwrap().error.as_deref(),
        Some("upstream_timeout")
    );
}

#[test]
fn pieces_each_within_the_idle_limit_are_read_under_one_timer() {
    let ports = FakePorts::at(START_MS);
    // 4.5 s in all, longer than the 2 s idle limit, but never 2 s without a piece.
    ports.script(
        "model-a",
        vec![Script::ok(vec![
            chunk("a"),
            Fake::Jump(1500),
            chunk("b"),
            Fake::Jump(1500),
            chunk("c"),
            Fake::Jump(1500),
            stream_end(3),
        ])],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let record = ports.record.borrow();
    // One for the body's pieces and one for the grace its end gets after the last event.
    assert_eq!(record.timers, 2, "one timer for the whole body");
    assert!(record.sleeps.is_empty(), "{:?}", record.sleeps);
}

#[test]
fn a_complete_stream_reads_its_body_to_the_end_within_a_grace() {
    // The end comes 30 ms after [DONE]: read (the clock moved), so the body ends by itself.
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::ok(vec![chunk("Hi"), stream_end(1), Fake::Jump(30)])],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(ports.clock.get(), START_MS + 30);
    assert!(ports.record.borrow().sleeps.is_empty());

    // An end that does not come is waited for 100 ms, and the stream still ends complete.
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::ok(vec![chunk("Hi"), stream_end(1), Fake::Stall])],
    );
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(ports.record.borrow().sleeps, [100]);
    let line = ports.record.borrow().lines.last().unwrap().clone();
    assert_eq!(line.error, None);
    assert_eq!(line.completion_tokens, Some(1));
}

#[test]
fn a_kept_idle_timer_that_goes_off_early_waits_out_the_rest_of_the_limit() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::ok(vec![
            chunk("Hi"),
            Fake::Jump(1500),
            chunk("there"),
            Fake::Stall,
        ])],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.contains("\"there\""), "{body}");
    assert!(body.contains("sent nothing for 2000 ms"), "{body}");
    // Armed at the first piece for 2 s, it goes off 0.5 s after the last one and is
    // re-armed for the 1.5 s left: the stream is cut 2 s after its last piece, not before.
    assert_eq!(ports.record.borrow().sleeps, [2000, 1500]);
    assert_eq!(ports.clock.get(), START_MS + 1500 + 2000);
}

#[test]
fn a_clock_that_jumps_past_the_total_limit_ends_the_stream() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::ok(vec![
            chunk("Hi"),
            Fake::Jump(20_000),
            chunk("late"),
            Fake::Stall,
        ])],
    );
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("a", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.contains("\"Hi\""));
    assert!(body.contains("time limit of 10000 ms"), "{body}");
}

/// A committed stream of three events from a target whose breaker opens at its first
/// failure, for a client that will leave.
fn stream_for_a_leaving_client(ports: &FakePorts) -> AnswerStream<FakePorts> {
    ports.script(
        "model-a",
        vec![Script::ok(vec![chunk("Hi"), chunk("there"), stream_end(2)])],
    );
    let config = config(&[("BREAKER_CONSECUTIVE_FAILURES", "1")]);
    let (result, _) = run(ports, &config, &request("a", true));
    stream_of(result.unwrap())
}

/// The stream's end, once its client left: one log line that says so, settled, not
/// stored, and nothing held against the upstream.
fn assert_closed_by_the_client(ports: &FakePorts) {
    let record = ports.record.borrow();
    assert_eq!(record.lines.len(), 1, "one log line, however many ends");
    assert_eq!(
        record.lines[0].stream_outcome,
        Some(StreamEnd::ClientClosed)
    );
    assert_eq!(record.settled.borrow().len(), 1);
    assert!(record.transitions.is_empty(), "the breaker learned nothing");
    assert!(record.stored.borrow().is_empty());
}

#[test]
fn a_client_that_leaves_stops_the_stream_without_blaming_the_upstream() {
    let ports = FakePorts::at(START_MS);
    let mut stream = stream_for_a_leaving_client(&ports);
    assert!(block_on(stream.next_chunk()).is_some());
    ports.gone.set(true);
    let closer = stream.closer();
    closer.client_left();
    closer.client_left();
    assert_eq!(block_on(stream.next_chunk()), None);
    drop(stream);
    assert_closed_by_the_client(&ports);
}

#[test]
fn every_target_failing_gives_the_degradation_message_when_set() {
    let ports = FakePorts::at(START_MS);
    ports.script("model-a", vec![Script::error(500); 3]);
    let config = config(&[("DEGRADED_MESSAGE", "Try again soon.")]);
    let (result, log) = run(&ports, &config, &request("a", false));
    let body = json_of(result.unwrap());
    assert_eq!(body["choices"][0]["message"]["content"], "Try again soon.");
    assert!(log.degraded);
    assert_eq!(
        ports.record.borrow().stored.borrow().len(),
        0,
        "never cached"
    );
}

#[test]
fn the_mock_streams_with_its_pause_between_chunks() {
    let ports = FakePorts::at(START_MS);
    let config = config(&[]);
    let (result, _) = run(&ports, &config, &request("mock", true));
    let body = drain(stream_of(result.unwrap()));
    assert!(body.ends_with("data: [DONE]\n\n"));
    let sleeps = ports.record.borrow().sleeps.clone();
    // The chunks with choices (the usage chunk, last, has none and no pause).
    let chunks = body.matches("chat.completion.chunk").count() - 1;
    assert!(sleeps.iter().all(|ms| *ms == 7), "{sleeps:?}");
    assert_eq!(
        sleeps.len(),
        chunks - 1,
        "a pause before each chunk after the first"
    );
    assert!(ports.record.borrow().calls.is_empty());
}

#[test]
fn an_oversized_answer_moves_on_to_the_next_target() {
    let ports = FakePorts::at(START_MS);
    ports.script(
        "model-a",
        vec![Script::Answer {
            status: 200,
            retry_after_ms: None,
            retry_after: None,
            content_length: Some(64 * 1024 * 1024),
            body: vec![],
        }],
    );
    let config = config(&[]);
    let (result, log) = run(&ports, &config, &request("ab", false));
    assert!(result.is_ok());
    assert_eq!(
        chain(&log),
        ["one/model-a:upstream_error", "two/model-b:ok"]
    );
}

#[test]
fn a_job_gets_the_whole_answer_and_its_usage() {
    let ports = FakePorts::at(START_MS);
    let config = config(&[]);
    let request = request("ab", false);
    let resolved = resolve(&config, &request, 0).unwrap();
    let mut log = RequestLog {
        ts: ports.clock.get(),
        ..RequestLog::default()
    };
    let call = Call {
        ports: &ports,
        config: &config,
        request: &request,
        targets: resolved.targets,
        meta: meta(&request),
        settlement: None,
        cache: None,
        keep: None,
    };
    let (completion, usage) = block_on(complete(call, &mut log)).unwrap();
    assert_eq!(
        completion.choices[0].message.content.as_deref(),
        Some("Hello")
    );
    assert_eq!(usage.total_tokens, 15);
    assert!(
        ports.record.borrow().settled.borrow().is_empty(),
        "nothing to settle"
    );
}

#[test]
fn a_relayed_stream_writes_what_a_pulled_one_does_and_is_settled_when_it_ends() {
    let script = vec![Script::ok(vec![chunk("Hel"), chunk("lo"), stream_end(2)])];
    let config = config(&[]);
    let pulled = FakePorts::at(START_MS);
    pulled.script("model-a", script.clone());
    let (result, _) = run(&pulled, &config, &request("a", true));
    let expected = drain(stream_of(result.unwrap()));

    let ports = FakePorts::at(START_MS);
    ports.script("model-a", script);
    let (result, _) = run(&ports, &config, &request("a", true));
    let (body, next) = relay(stream_of(result.unwrap()), BodyEnd::Done);
    assert_eq!(body, expected);
    assert_eq!(
        next,
        RelayNext::Drain,
        "a complete answer's body is read out"
    );
    let record = ports.record.borrow();
    let line = record.lines.last().unwrap();
    assert_eq!(line.stream_outcome, Some(StreamEnd::Completed));
    assert_eq!(line.completion_tokens, Some(2));
    assert!(line.ttfb_ms.is_some());
    assert_eq!(record.settled.borrow()[0].1.completion_tokens, 2);
    assert_eq!(record.stored.borrow().len(), 1);
}

#[test]
fn a_relayed_body_that_stops_early_ends_with_why() {
    // Each broken stream tells the target's breaker, which would open before the last.
    let breaker_off = config(&[("BREAKER_CONSECUTIVE_FAILURES", "0")]);
    for (end, code, message) in [
        (
            BodyEnd::Done,
            "upstream_error",
            "the stream ended before the answer",
        ),
        (BodyEnd::Broke, "upstream_error", "the connection broke"),
        (
            BodyEnd::Silent,
            "upstream_timeout",
            "sent nothing for 2000 ms",
        ),
        (
            BodyEnd::OutOfTime,
            "upstream_timeout",
            "time limit of 10000 ms",
        ),
    ] {
        let ports = FakePorts::at(START_MS);
        ports.script(
            "model-a",
            vec![Script::ok(vec![chunk("Hi"), chunk("there")])],
        );
        let (result, _) = run(&ports, &breaker_off, &request("a", true));
        let (body, next) = relay(stream_of(result.unwrap()), end);
        assert!(body.contains("\"there\""), "{body}");
        assert!(body.contains(message), "{end:?}: {body}");
        assert!(!body.contains("[DONE]"));
        assert_eq!(next, RelayNext::Stop, "{end:?}");
        let line = ports.record.borrow().lines.last().unwrap().clone();
        assert_eq!(line.stream_outcome, Some(StreamEnd::Broken), "{end:?}");
        assert_eq!(line.error.as_deref(), Some(code), "{end:?}");
    }
}

#[test]
fn a_relayed_stream_whose_client_left_stops_without_writing() {
    let ports = FakePorts::at(START_MS);
    let mut stream = stream_for_a_leaving_client(&ports);
    let (first, _) = stream.relay_start().unwrap();
    assert_eq!(first.next, RelayNext::Read);
    ports.gone.set(true);
    let relayed = stream.relay_piece(Piece::Bytes(b"data: {}\n\n".to_vec()));
    assert!(relayed.bytes.is_empty());
    assert_eq!(relayed.next, RelayNext::Stop);
    drop(stream);
    assert_closed_by_the_client(&ports);
}

#[test]
fn events_in_memory_are_not_relayed() {
    let ports = FakePorts::at(START_MS);
    let (result, _) = run(&ports, &config(&[]), &request("mock", true));
    let mut stream = stream_of(result.unwrap());
    assert!(stream.relay_start().is_none());
    assert!(drain(stream).ends_with("data: [DONE]\n\n"));
}
