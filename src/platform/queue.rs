//! The queue consumer: runs jobs through the request path's upstream stage, delivers
//! signed webhooks, and closes what reaches the dead-letter queue.
//!
//! Every message is acknowledged or retried on its own (never the whole batch), and a
//! failure never escapes as an error: the runtime would retry the batch blindly. A job
//! attempt that fails in a retryable way (see [`crate::jobs::is_retryable`]) is retried
//! with a growing delay (`JOB_RETRY_BASE_DELAY_SECONDS`, doubling, at most
//! `JOB_RETRY_MAX_DELAY_SECONDS`); after the consumer's `max_retries` the runtime moves the
//! message to the dead-letter queue, whose consumer (this one, on a queue named `…-dlq`)
//! marks the job failed. Webhook deliveries retry the same way. Processing is at least
//! once: an isolate that dies mid-attempt leaves the job `running`, and the redelivered
//! message runs it again.

use futures_util::future::join_all;
use serde_json::{json, Value};
use worker::{Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use super::background::Background;
use super::clock::{new_request_id, now_ms};
use super::crypto::{hmac_sha256_hex, random_u32};
use super::env::config;
use super::fetch;
use super::job_store::JobStoreStub;
use super::jobs::{ended, parse_url, principal_signing_key};
use super::limiter::Settlement;
use super::metrics::Observer;
use super::ports::WorkerPorts;
use crate::api::chat::{ChatRequest, Usage};
use crate::api::Surface;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::jobs::webhook::{event_body, signature_header, signed_payload, SIGNATURE_HEADER};
use crate::jobs::{after_attempt, Change, Delivery, Job, Task, TaskKind, WebhookStatus};
use crate::observe::log::RequestLog;
use crate::output::AnswerMeta;
use crate::pipeline::answer::{self, Call};
use crate::pipeline::ports::Settle;
use crate::upstream::{resolve, HttpCall};

/// A queue whose name ends so is a dead-letter queue: its messages ran out of attempts.
const DEAD_LETTER_SUFFIX: &str = "-dlq";
/// The wait before a message is tried again when the job store or the configuration
/// cannot be used.
const UNAVAILABLE_RETRY_S: u32 = 30;

/// What becomes of a message.
enum Verdict {
    /// Done with (or nothing left to do): acknowledge.
    Done,
    /// Try again after this many seconds.
    RetryIn(u32),
}

/// Handles one batch: every message concurrently (they are independent, and mostly wait
/// on upstreams).
pub async fn consume(batch: MessageBatch<String>, env: &Env, background: Background) {
    let dead_letters = batch.queue().ends_with(DEAD_LETTER_SUFFIX);
    let config = config(env);
    let Ok(config) = config.as_ref() else {
        let options = QueueRetryOptionsBuilder::new()
            .with_delay_seconds(UNAVAILABLE_RETRY_S)
            .build();
        batch.retry_all_with_options(&options);
        return;
    };
    let consumer = Consumer {
        env,
        config,
        background,
    };
    let handled = batch
        .raw_iter()
        .map(|message| consumer.handle(message, dead_letters));
    join_all(handled).await;
}

/// What every message's handling shares.
struct Consumer<'a> {
    env: &'a Env,
    config: &'a Config,
    background: Background,
}

impl Consumer<'_> {
    async fn handle(&self, message: RawMessage, dead_letters: bool) {
        let task = message
            .body()
            .as_string()
            .and_then(|text| serde_json::from_slice::<Task>(text.as_bytes()).ok());
        let verdict = match task {
            // Nothing can be done with a message that is not a task; keeping it would
            // only fill the dead-letter queue.
            None => Verdict::Done,
            Some(task) => {
                let verdict = match (task.kind, dead_letters) {
                    (TaskKind::Run, false) => self.run(&task).await,
                    (TaskKind::Webhook, false) => self.deliver(&task).await,
                    (TaskKind::Run, true) => self.dead_job(&task).await,
                    (TaskKind::Webhook, true) => self.dead_webhook(&task).await,
                };
                verdict.unwrap_or(Verdict::RetryIn(UNAVAILABLE_RETRY_S))
            }
        };
        match verdict {
            Verdict::Done => message.ack(),
            Verdict::RetryIn(delay_s) => {
                let options = QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(delay_s)
                    .build();
                message.retry_with_options(&options);
            }
        }
    }

    fn store(&self, task: &Task) -> Result<JobStoreStub, GatewayError> {
        JobStoreStub::open(self.env, &task.principal)
    }

    fn observer(&self) -> Observer {
        let config = self.config;
        Observer::new(
            self.env,
            &self.background,
            config.log_level,
            config.metrics_shards,
        )
    }

    /// The log line of a consumer step on `task`'s job.
    fn log_line(&self, route: &'static str, task: &Task) -> RequestLog {
        RequestLog {
            ts: now_ms(),
            request_id: new_request_id(),
            method: "QUEUE".to_owned(),
            route,
            principal: Some(task.principal.clone()),
            team: task.team.clone(),
            job_id: Some(task.job.clone()),
            ..RequestLog::default()
        }
    }

    /// Runs one attempt of a job.
    async fn run(&self, task: &Task) -> Result<Verdict, GatewayError> {
        let ttl_s = self.config.jobs.ttl_s;
        let store = self.store(task)?;
        let started = store.change(&task.job, Change::Start, ttl_s).await?;
        // Gone, ended or cancelled: nothing to run.
        let (Some(job), Some(request)) = (started.job, started.request) else {
            return Ok(Verdict::Done);
        };
        let mut log = self.log_line("job_run", task);
        log.model = Some(job.model.clone());
        let observer = self.observer();
        let answer = match serde_json::from_slice::<ChatRequest>(request.as_bytes()) {
            Ok(request) => self.attempt(&request, &mut log, &observer).await,
            Err(_) => Err(GatewayError::new(
                ErrorKind::Internal,
                "the job's stored request could not be read",
            )),
        };
        // What the answer used, to be settled whatever becomes of the job.
        let used = answer.as_ref().ok().map(|(_, usage)| usage.clone());
        if let Err(error) = &answer {
            log.error = Some(error.code().to_owned());
            log.status = error.status();
        }
        let (change, retry_in_s) = after_attempt(answer, job.attempts, &self.config.jobs);
        let changed = store.change(&task.job, change, ttl_s).await;
        log.latency_ms = now_ms().saturating_sub(log.ts);
        observer.emit(&mut log);
        // Not recorded: the job stays `running` and the message comes back to run it again.
        let job = changed?.job.unwrap_or(job);
        if let (Some(lease), Some(usage)) = (&job.lease, used) {
            // Without its limiter binding the usage goes unrecorded; the job's end still
            // follows (a retry would find it ended and skip its webhook).
            let resumed =
                Settlement::resume(self.env, &task.principal, lease.clone(), &self.background);
            if let Ok(settlement) = resumed {
                settlement.repriced(log.price).settle(&usage);
            }
        }
        if job.status.is_final() {
            ended(self.env, &job, &task.principal, &self.background).await;
        }
        Ok(retry_in_s.map_or(Verdict::Done, Verdict::RetryIn))
    }

    /// Sends the job's request to its targets (retries, breakers, fallbacks and time
    /// limits as for any request): the completion, as JSON, and its usage.
    async fn attempt(
        &self,
        request: &ChatRequest,
        log: &mut RequestLog,
        observer: &Observer,
    ) -> Result<(Value, Usage), GatewayError> {
        let config = self.config;
        let resolved = resolve(config, request, random_u32())?;
        log.auto_reason = resolved.auto_reason;
        let client = web_sys::AbortController::new()
            .map_err(|_| GatewayError::new(ErrorKind::Internal, "no AbortController"))?
            .signal();
        let ports = WorkerPorts {
            observer: observer.clone(),
            client,
            // A queued job is its own request: no client trace to continue.
            trace: None,
        };
        let meta = AnswerMeta {
            id: format!("chatcmpl-{}", log.request_id),
            created: log.ts / 1_000,
            model: resolved.targets[0].model.to_owned(),
            include_usage: false,
            estimated_prompt_tokens: request.estimated_prompt_tokens(),
            redact_pii: config.redact_pii.output,
            surface: Surface::ChatCompletions,
            echo: Default::default(),
        };
        let call = Call {
            ports: &ports,
            config,
            request,
            targets: resolved.targets,
            meta,
            // Settled by the job's end, not by one attempt: a retried attempt must leave
            // the lease open.
            settlement: None,
            cache: None,
            keep: None,
        };
        let (completion, usage) = answer::complete(call, log).await?;
        log.status = 200;
        Ok((json!(completion), usage))
    }

    /// A job whose message ran out of attempts: failed, with its last error.
    async fn dead_job(&self, task: &Task) -> Result<Verdict, GatewayError> {
        let store = self.store(task)?;
        let reply = store
            .change(&task.job, Change::DeadLetter, self.config.jobs.ttl_s)
            .await?;
        if let (true, Some(job)) = (reply.changed, reply.job) {
            let mut log = self.log_line("job_dead_letter", task);
            log.model = Some(job.model.clone());
            log.status = job.error.as_ref().map_or(500, |error| error.status);
            log.error = Some("job_dead_lettered".to_owned());
            self.observer().emit(&mut log);
            ended(self.env, &job, &task.principal, &self.background).await;
        }
        Ok(Verdict::Done)
    }

    /// A webhook whose message ran out of attempts: failed.
    async fn dead_webhook(&self, task: &Task) -> Result<Verdict, GatewayError> {
        let change = Change::Delivery {
            outcome: Delivery::Abandoned,
            detail: "attempts_exhausted".to_owned(),
        };
        let store = self.store(task)?;
        store
            .change(&task.job, change, self.config.jobs.ttl_s)
            .await?;
        Ok(Verdict::Done)
    }

    /// Delivers the job's webhook once.
    async fn deliver(&self, task: &Task) -> Result<Verdict, GatewayError> {
        let store = self.store(task)?;
        let Some(job) = store.get(&task.job).await? else {
            return Ok(Verdict::Done);
        };
        let (Some(webhook), Some(event)) = (&job.webhook, job.event()) else {
            return Ok(Verdict::Done);
        };
        if webhook.status != WebhookStatus::Pending {
            return Ok(Verdict::Done);
        }
        let mut log = self.log_line("job_webhook", task);
        let (outcome, detail) = match self.post(&job, &task.principal, event, &webhook.url).await {
            Ok(status) => {
                log.status = status;
                (Delivery::of_status(status), status.to_string())
            }
            Err(error) => {
                log.status = error.status();
                log.error = Some(error.code().to_owned());
                // A URL no longer allowed stays so; anything else may pass next time.
                let outcome = match error.kind {
                    ErrorKind::InvalidCallbackUrl => Delivery::Abandoned,
                    _ => Delivery::Retrying,
                };
                (outcome, error.code().to_owned())
            }
        };
        log.latency_ms = now_ms().saturating_sub(log.ts);
        self.observer().emit(&mut log);
        let verdict = match outcome {
            Delivery::Retrying => {
                Verdict::RetryIn(self.config.jobs.retry_delay_s(webhook.attempts + 1))
            }
            Delivery::Delivered | Delivery::Abandoned => Verdict::Done,
        };
        let change = Change::Delivery { outcome, detail };
        store
            .change(&task.job, change, self.config.jobs.ttl_s)
            .await?;
        Ok(verdict)
    }

    /// POSTs the event for `owner`'s `job` to `url` (checked again: the allow-list may
    /// have changed since the submission), signed with the owner's key; the receiver's
    /// status.
    async fn post(
        &self,
        job: &Job,
        owner: &str,
        event: &str,
        url: &str,
    ) -> Result<u16, GatewayError> {
        let config = self.config;
        let secret = config
            .webhook_secret
            .as_ref()
            .ok_or_else(|| GatewayError::new(ErrorKind::InvalidCallbackUrl, "webhooks are off"))?;
        let url = parse_url(url)?;
        config.jobs.callbacks.check(&url.parsed)?;
        let now_s = now_ms() / 1_000;
        let event_id = format!("{}.{}", job.id, event);
        let body = event_body(event, &event_id, now_s, owner, job.view());
        let key = principal_signing_key(secret, owner).await?;
        let mac = hmac_sha256_hex(key.as_bytes(), signed_payload(now_s, &body).as_bytes()).await?;
        let call = HttpCall {
            url: url.href,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("user-agent", "edge-llm-gateway-webhooks/1".to_owned()),
                (SIGNATURE_HEADER, signature_header(now_s, &mac)),
                ("x-gateway-event", event.to_owned()),
                ("x-gateway-event-id", event_id),
            ],
            body,
        };
        let timeout_ms = u64::from(config.jobs.webhook_timeout_ms);
        // The answer's body is not needed: dropped, it is cancelled rather than read.
        let response = fetch::send(&call, &[], timeout_ms).await?;
        Ok(response.status)
    }
}
