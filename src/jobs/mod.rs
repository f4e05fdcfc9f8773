//! Asynchronous jobs: a chat completion accepted now (`POST /v1/jobs`), answered later by
//! the queue consumer through the same pipeline, fetched by polling or pushed to a signed
//! webhook.
//!
//! Pure: the job record and its life ([`Job`]), what a submission carries
//! ([`Submission`]), where callbacks may go ([`callback`]) and how webhooks are signed
//! and retried ([`webhook`]). The platform layer keeps the records in one Durable Object
//! per principal and moves the work through Cloudflare Queues.
//!
//! A job's life: `queued` → `running` → `succeeded` | `failed`, with `running` → `queued`
//! again when an attempt fails in a way worth retrying, and `queued` → `cancelled` on
//! request. Final jobs expire `ttl` after they end.

pub mod callback;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::chat::Usage;
use crate::config::source::Reader;
use crate::error::{ErrorKind, GatewayError};
use crate::wire_name::{serde_by_wire_name, WireName};

/// Largest completion (as JSON) a job keeps: the job store's values are limited, and a
/// poll or webhook should not carry more.
pub const MAX_RESULT_BYTES: usize = 1 << 20;

/// Most characters of an `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A queue message: what to do for which principal's job. Sent as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// What to do.
    pub kind: TaskKind,
    /// The job's owner (its store is that principal's).
    pub principal: String,
    /// The owner's team, for the log line and the team's usage.
    #[serde(default)]
    pub team: Option<String>,
    /// The job id.
    pub job: String,
}

/// What a [`Task`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Run an attempt of the job.
    Run,
    /// Deliver the job's webhook.
    Webhook,
}

impl WireName for TaskKind {
    const NAMES: &'static [(&'static str, Self)] =
        &[("run", TaskKind::Run), ("webhook", TaskKind::Webhook)];
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting in the queue (first time, or again after a failed attempt).
    Queued,
    /// An attempt is under way.
    Running,
    /// Answered; `result` holds the completion.
    Succeeded,
    /// Ended without an answer; `error` says why.
    Failed,
    /// Cancelled while queued.
    Cancelled,
}

impl WireName for JobStatus {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("queued", JobStatus::Queued),
        ("running", JobStatus::Running),
        ("succeeded", JobStatus::Succeeded),
        ("failed", JobStatus::Failed),
        ("cancelled", JobStatus::Cancelled),
    ];
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// Why a job (or its last attempt) failed: the error object a synchronous request would
/// have been answered with, and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The HTTP status the error maps to.
    pub status: u16,
    /// The stable error code (`upstream_timeout`, `all_providers_failed`, ...).
    pub code: String,
    /// The OpenAI error type.
    #[serde(rename = "type")]
    pub error_type: String,
    /// What happened.
    pub message: String,
}

impl JobError {
    /// The job error for a gateway error.
    pub fn of(error: &GatewayError) -> Self {
        JobError {
            status: error.status(),
            code: error.code().to_owned(),
            error_type: error.kind.error_type().to_owned(),
            message: error.message.clone(),
        }
    }

    /// The error of a job whose answer is larger than [`MAX_RESULT_BYTES`], if it is.
    pub fn of_oversized_result(result: &Value) -> Option<Self> {
        let bytes = result.to_string().len();
        (bytes > MAX_RESULT_BYTES).then(|| JobError {
            status: 502,
            code: "job_result_too_large".to_owned(),
            error_type: "api_error".to_owned(),
            message: format!(
                "the answer ({bytes} bytes) is larger than a job keeps ({MAX_RESULT_BYTES} bytes); \
                 ask for fewer tokens or use /v1/chat/completions"
            ),
        })
    }

    /// The error of a job whose message reached the dead-letter queue without an attempt
    /// having recorded why (the consumer kept crashing or timing out).
    fn dead_lettered() -> Self {
        JobError {
            status: 500,
            code: "job_dead_lettered".to_owned(),
            error_type: "api_error".to_owned(),
            message: "the job could not be processed and was moved to the dead-letter queue"
                .to_owned(),
        }
    }
}

/// Whether a failed attempt is worth another one later: the upstream was rate limited,
/// failed, timed out or could not be reached. A request the upstream refused (4xx) gets
/// the same refusal next time.
pub fn is_retryable(error: &GatewayError) -> bool {
    matches!(error.status(), 408 | 429 | 500..=504 | 529)
}

/// Where a job's webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    /// Not sent yet, or sent and to be sent again.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl WireName for WebhookStatus {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("pending", WebhookStatus::Pending),
        ("delivered", WebhookStatus::Delivered),
        ("failed", WebhookStatus::Failed),
    ];
}

/// A job's webhook: where it goes and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The `callback_url`.
    pub url: String,
    /// Where the delivery stands.
    pub status: WebhookStatus,
    /// Deliveries tried.
    pub attempts: u32,
    /// The receiver's last status, or the reason no status came (`timeout`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// When it was delivered (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<u64>,
}

/// What the Worker asks of a store (externally tagged: see [`Change`]).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreCall {
    /// Keep a new job, unless its idempotency key names one already. `request` is the
    /// chat request, as JSON text.
    Create { job: Box<Job>, request: String },
    /// The job with this idempotency key.
    Find(String),
    /// The job with this id.
    Get(String),
    /// Apply a change (ended jobs are kept `ttl_s`).
    Change {
        id: String,
        change: Change,
        ttl_s: u64,
    },
    /// Forget a job (its submission failed after it was created).
    Delete(String),
}

/// A store's answer.
#[derive(Default, Serialize, Deserialize)]
pub struct StoreReply {
    /// The job, if there is one (for `create`: the new one or the existing one).
    pub job: Option<Job>,
    /// `create`: a new job was kept. `change`: the change did something (for a start:
    /// the attempt should run).
    pub changed: bool,
    /// With a start that should run: the chat request to send, as JSON text.
    pub request: Option<String>,
    /// The change is not possible in the job's state (the error message).
    pub conflict: Option<String>,
}

/// One job, as its principal's store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job_` and 32 random hex digits.
    pub id: String,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Where its owner polls it (absolute, on the gateway's own origin).
    pub status_url: String,
    /// The model alias asked for.
    pub model: String,
    /// When it was accepted (unix seconds).
    pub created_at: u64,
    /// When its first attempt started.
    #[serde(default)]
    pub started_at: Option<u64>,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// When the store forgets it (ended jobs only).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Attempts started.
    #[serde(default)]
    pub attempts: u32,
    /// The completion (`chat.completion` object) of a job that succeeded.
    #[serde(default)]
    pub result: Option<Value>,
    /// Why it failed, or, while it is queued again, why the last attempt failed.
    #[serde(default)]
    pub error: Option<JobError>,
    /// Tokens used.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The webhook, when the submission named a `callback_url`.
    #[serde(default)]
    pub webhook: Option<Webhook>,
    /// The message ran out of attempts and went to the dead-letter queue.
    #[serde(default)]
    pub dead_lettered: bool,
    /// The submission's `Idempotency-Key`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// SHA-256 of the submitted body, when it had an idempotency key (a second submission
    /// with the same key must match); empty otherwise.
    pub fingerprint: String,
    /// The rate-limit lease the submission was admitted under, settled when the job
    /// ends (none when the caller is not limited).
    #[serde(default)]
    pub lease: Option<String>,
}

/// What [`Job::start`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Run the attempt.
    Run,
    /// The job has ended (cancelled, or finished by an earlier delivery): drop the message.
    Skip,
}

/// A change to a job, as the queue consumer and the API ask the job store for it (the
/// store applies it to the stored record in one step). Externally tagged on the wire
/// (`"start"`, `{"requeue": {...}}`): serde's internally tagged form buffers every value,
/// which costs tens of KB of wasm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// [`Job::start`].
    Start,
    /// [`Job::requeue`], with the attempt's error.
    Requeue(JobError),
    /// [`Job::succeed`].
    Succeed {
        /// The completion.
        result: Value,
        /// Its usage.
        usage: Usage,
    },
    /// [`Job::fail`], with why.
    Fail(JobError),
    /// [`Job::dead_letter`].
    DeadLetter,
    /// [`Job::cancel`].
    Cancel,
    /// [`Job::delivered`]: a webhook delivery attempt ended.
    Delivery {
        /// What it came to.
        outcome: Delivery,
        /// The receiver's status, or why there was none.
        detail: String,
    },
}

/// How a webhook delivery attempt ended, for the job record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver took it.
    Delivered,
    /// It will be tried again.
    Retrying,
    /// No more attempts: the receiver said it is gone, the URL is no longer allowed, or
    /// the attempts ran out.
    Abandoned,
}

impl WireName for Delivery {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("delivered", Delivery::Delivered),
        ("retrying", Delivery::Retrying),
        ("abandoned", Delivery::Abandoned),
    ];
}

serde_by_wire_name!(TaskKind, JobStatus, WebhookStatus, Delivery);

impl Job {
    /// A queued job.
    pub fn queued(id: String, model: String, now_s: u64, fingerprint: String) -> Self {
        Job {
            id,
            status_url: String::new(),
            status: JobStatus::Queued,
            model,
            created_at: now_s,
            started_at: None,
            finished_at: None,
            expires_at: None,
            attempts: 0,
            result: None,
            error: None,
            usage: None,
            webhook: None,
            dead_lettered: false,
            idempotency_key: None,
            fingerprint,
            lease: None,
        }
    }

    /// Applies `change` at `now_s` (ended jobs are kept `ttl_s`); whether it changed the
    /// job (for [`Change::Start`]: whether the attempt should run).
    pub fn apply(&mut self, change: Change, now_s: u64, ttl_s: u64) -> Result<bool, GatewayError> {
        Ok(match change {
            Change::Start => self.start(now_s) == Start::Run,
            Change::Requeue(error) => {
                self.requeue(error);
                true
            }
            Change::Succeed { result, usage } => {
                self.succeed(result, usage, now_s, ttl_s);
                true
            }
            Change::Fail(error) => {
                self.fail(error, now_s, ttl_s);
                true
            }
            Change::DeadLetter => self.dead_letter(now_s, ttl_s),
            Change::Cancel => self.cancel(now_s, ttl_s)?,
            Change::Delivery { outcome, detail } => self.delivered(outcome, detail, now_s),
        })
    }

    /// Records a webhook delivery attempt; false when the job has no webhook.
    pub fn delivered(&mut self, outcome: Delivery, detail: String, now_s: u64) -> bool {
        let Some(webhook) = &mut self.webhook else {
            return false;
        };
        webhook.attempts += 1;
        webhook.last_outcome = Some(detail);
        webhook.status = match outcome {
            Delivery::Delivered => {
                webhook.delivered_at = Some(now_s);
                WebhookStatus::Delivered
            }
            Delivery::Retrying => WebhookStatus::Pending,
            Delivery::Abandoned => WebhookStatus::Failed,
        };
        true
    }

    /// Starts an attempt. A job found `running` had an attempt that never reported back
    /// (its isolate died); the queue delivered the message again, so it runs again.
    pub fn start(&mut self, now_s: u64) -> Start {
        if self.status.is_final() {
            return Start::Skip;
        }
        self.status = JobStatus::Running;
        self.attempts += 1;
        self.started_at.get_or_insert(now_s);
        Start::Run
    }

    /// The attempt failed and will be retried: queued again, with the error kept.
    pub fn requeue(&mut self, error: JobError) {
        if self.status == JobStatus::Running {
            self.status = JobStatus::Queued;
            self.error = Some(error);
        }
    }

    /// The attempt answered.
    pub fn succeed(&mut self, result: Value, usage: Usage, now_s: u64, ttl_s: u64) {
        self.result = Some(result);
        self.usage = Some(usage);
        self.error = None;
        self.end(JobStatus::Succeeded, now_s, ttl_s);
    }

    /// The job ends without an answer.
    pub fn fail(&mut self, error: JobError, now_s: u64, ttl_s: u64) {
        self.error = Some(error);
        self.end(JobStatus::Failed, now_s, ttl_s);
    }

    /// The job's message reached the dead-letter queue: it fails with its last attempt's
    /// error (or a dead-letter error if none recorded one). Returns whether that changed
    /// anything (a job that ended meanwhile stays as it is).
    pub fn dead_letter(&mut self, now_s: u64, ttl_s: u64) -> bool {
        if self.status.is_final() {
            return false;
        }
        self.dead_lettered = true;
        let error = self.error.take().unwrap_or_else(JobError::dead_lettered);
        self.fail(error, now_s, ttl_s);
        true
    }

    /// Cancels a queued job. `Ok(true)` when it was cancelled now, `Ok(false)` when it
    /// already was; a job that is running or has ended cannot be cancelled.
    pub fn cancel(&mut self, now_s: u64, ttl_s: u64) -> Result<bool, GatewayError> {
        match self.status {
            JobStatus::Queued => {
                self.end(JobStatus::Cancelled, now_s, ttl_s);
                Ok(true)
            }
            JobStatus::Cancelled => Ok(false),
            status => Err(GatewayError::new(
                ErrorKind::JobNotCancellable,
                format!(
                    "job {} is {} and can no longer be cancelled",
                    self.id,
                    status.name()
                ),
            )),
        }
    }

    fn end(&mut self, status: JobStatus, now_s: u64, ttl_s: u64) {
        self.status = status;
        self.finished_at = Some(now_s);
        self.expires_at = Some(now_s.saturating_add(ttl_s));
        if let Some(webhook) = &mut self.webhook {
            webhook.status = WebhookStatus::Pending;
        }
    }

    /// Whether the store should have forgotten it by `now_s`.
    pub fn is_expired(&self, now_s: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_s)
    }

    /// The event a webhook reports for this job now: `job.succeeded`, `job.failed` or
    /// `job.cancelled`; none before it ends.
    pub fn event(&self) -> Option<&'static str> {
        Some(match self.status {
            JobStatus::Succeeded => "job.succeeded",
            JobStatus::Failed => "job.failed",
            JobStatus::Cancelled => "job.cancelled",
            JobStatus::Queued | JobStatus::Running => return None,
        })
    }

    /// What clients see (`GET /v1/jobs/{id}`, the 202 of a submission, webhook bodies):
    /// everything but the store's own bookkeeping.
    pub fn view(&self) -> Value {
        let mut view = Map::new();
        let mut put = |name: &str, value: Value| {
            if !value.is_null() {
                view.insert(name.to_owned(), value);
            }
        };
        put("id", Value::from(self.id.as_str()));
        put("object", Value::from("job"));
        put("status", Value::from(self.status.name()));
        put("status_url", Value::from(self.status_url.as_str()));
        put("model", Value::from(self.model.as_str()));
        put("created_at", Value::from(self.created_at));
        put("started_at", self.started_at.into());
        put("finished_at", self.finished_at.into());
        put("expires_at", self.expires_at.into());
        put("attempts", Value::from(self.attempts));
        put("result", self.result.clone().unwrap_or(Value::Null));
        put("error", to_value(&self.error));
        put("usage", to_value(&self.usage));
        put("webhook", to_value(&self.webhook));
        if self.dead_lettered {
            put("dead_lettered", Value::Bool(true));
        }
        Value::Object(view)
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A `POST /v1/jobs` body taken apart: the chat completion request and the job's own
/// fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The chat completion request, as JSON text for the usual validation.
    pub request: Vec<u8>,
    /// Where to send the webhook.
    pub callback_url: Option<String>,
}

impl Submission {
    /// Takes `callback_url` out of the body; the rest must be a non-streaming chat
    /// completion request (validated afterwards like any other).
    pub fn parse(body: &[u8]) -> Result<Submission, GatewayError> {
        let invalid_json =
            |why: String| GatewayError::new(ErrorKind::InvalidJson, format!("request body {why}"));
        let value: Value = serde_json::from_slice(body)
            .map_err(|err| invalid_json(format!("is not valid JSON: {err}")))?;
        let Value::Object(mut fields) = value else {
            return Err(invalid_json("must be a JSON object".to_owned()));
        };
        let callback_url = match fields.remove("callback_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => Some(url),
            Some(_) => {
                return Err(GatewayError::invalid(
                    "callback_url",
                    "callback_url must be a string",
                ))
            }
        };
        if fields.get("stream") == Some(&Value::Bool(true)) {
            return Err(GatewayError::invalid(
                "stream",
                "a job's answer is fetched or delivered whole: stream must be false",
            ));
        }
        Ok(Submission {
            request: Value::Object(fields).to_string().into_bytes(),
            callback_url,
        })
    }
}

/// Checks an `Idempotency-Key` header: 1 to [`MAX_IDEMPOTENCY_KEY_CHARS`] printable ASCII
/// characters.
pub fn check_idempotency_key(key: &str) -> Result<(), GatewayError> {
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS || !printable {
        return Err(GatewayError::new(
            ErrorKind::InvalidRequest,
            format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable \
                 ASCII characters"
            ),
        )
        .with_param("Idempotency-Key"));
    }
    Ok(())
}

/// The error for a job id the caller has no job under (never someone else's: each
/// principal's jobs are kept apart).
pub fn not_found(id: &str) -> GatewayError {
    let shown: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
    GatewayError::new(ErrorKind::JobNotFound, format!("no job {shown:?}"))
}

/// The jobs settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// `JOB_TTL_SECONDS`: how long an ended job (its result, error and idempotency key) is
    /// kept.
    pub ttl_s: u32,
    /// `JOB_RETRY_BASE_DELAY_SECONDS`: the wait before a failed job's second attempt; it
    /// doubles with each attempt after that.
    pub retry_base_delay_s: u32,
    /// `JOB_RETRY_MAX_DELAY_SECONDS`: the most any retry waits.
    pub retry_max_delay_s: u32,
    /// `WEBHOOK_TIMEOUT_MS`: how long a receiver has to answer a delivery.
    pub webhook_timeout_ms: u32,
    /// Where callbacks may go.
    pub callbacks: callback::CallbackPolicy,
}

/// What becomes of a job after its attempt number `attempts` ended with `outcome` (the
/// completion and its usage, or the error): the change to record and, when the job is to
/// be tried again, the wait before the next attempt in seconds.
pub fn after_attempt(
    outcome: Result<(Value, Usage), GatewayError>,
    attempts: u32,
    config: &JobsConfig,
) -> (Change, Option<u32>) {
    match outcome {
        Ok((result, usage)) => match JobError::of_oversized_result(&result) {
            Some(error) => (Change::Fail(error), None),
            None => (Change::Succeed { result, usage }, None),
        },
        Err(error) if is_retryable(&error) => {
            let delay_s = config.retry_delay_s(attempts);
            (Change::Requeue(JobError::of(&error)), Some(delay_s))
        }
        Err(error) => (Change::Fail(JobError::of(&error)), None),
    }
}

impl JobsConfig {
    /// The wait before attempt `attempt + 1` of a job or webhook that has failed `attempt`
    /// times (1 or more): `JOB_RETRY_BASE_DELAY_SECONDS × 2^(attempt - 1)`, capped at
    /// `JOB_RETRY_MAX_DELAY_SECONDS`, in seconds.
    pub fn retry_delay_s(&self, attempt: u32) -> u32 {
        let doublings = attempt.saturating_sub(1).min(31);
        self.retry_base_delay_s
            .saturating_mul(1 << doublings)
            .min(self.retry_max_delay_s)
    }
}

impl JobsConfig {
    /// The jobs and webhook settings (`JOB_*`, `WEBHOOK_TIMEOUT_MS`, `WEBHOOK_ALLOWED_HOSTS`).
    pub fn load(r: &mut Reader) -> JobsConfig {
        let hosts = r.var("WEBHOOK_ALLOWED_HOSTS").unwrap_or_default();
        let callbacks = callback::CallbackPolicy::parse(&hosts).unwrap_or_else(|problem| {
            r.error(problem);
            callback::CallbackPolicy::default()
        });
        JobsConfig {
            ttl_s: r.number("JOB_TTL_SECONDS", 86_400, 1, 30 * 86_400),
            retry_base_delay_s: r.number("JOB_RETRY_BASE_DELAY_SECONDS", 10, 0, 3_600),
            retry_max_delay_s: r.number("JOB_RETRY_MAX_DELAY_SECONDS", 300, 0, 43_200),
            webhook_timeout_ms: r.number("WEBHOOK_TIMEOUT_MS", 10_000, 1, 60_000),
            callbacks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_enums_read_and_write_their_names() {
        use crate::wire_name::tests::every_name_reads_back;
        every_name_reads_back(&[TaskKind::Run, TaskKind::Webhook]);
        every_name_reads_back(&[
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]);
        every_name_reads_back(&[
            WebhookStatus::Pending,
            WebhookStatus::Delivered,
            WebhookStatus::Failed,
        ]);
        every_name_reads_back(&[Delivery::Delivered, Delivery::Retrying, Delivery::Abandoned]);
    }

    fn job() -> Job {
        Job::queued("job_1".into(), "mock".into(), 100, "f".into())
    }

    fn upstream_error() -> JobError {
        JobError::of(&GatewayError::new(ErrorKind::UpstreamError, "502 upstream"))
    }

    #[test]
    fn a_job_runs_requeues_and_succeeds() {
        let mut job = job();
        assert_eq!(job.start(101), Start::Run);
        assert_eq!(
            (job.status, job.attempts, job.started_at),
            (JobStatus::Running, 1, Some(101))
        );
        job.requeue(upstream_error());
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.error.as_ref().unwrap().code, "upstream_error");
        assert_eq!(job.start(105), Start::Run);
        assert_eq!((job.attempts, job.started_at), (2, Some(101)));
        job.succeed(json!({"id": "x"}), Usage::new(3, 4), 110, 60);
        assert_eq!(job.status, JobStatus::Succeeded);
        assert_eq!((job.finished_at, job.expires_at), (Some(110), Some(170)));
        assert!(
            job.error.is_none(),
            "the last attempt's error goes once it succeeds"
        );
        assert!(!job.is_expired(169) && job.is_expired(170));
        // A late redelivery of its message changes nothing.
        assert_eq!(job.start(120), Start::Skip);
        assert_eq!(job.attempts, 2);
    }

    #[test]
    fn a_running_job_whose_attempt_died_runs_again() {
        let mut job = job();
        job.start(101);
        assert_eq!(job.start(130), Start::Run);
        assert_eq!(job.attempts, 2);
    }

    #[test]
    fn only_queued_jobs_can_be_cancelled() {
        let mut job = job();
        assert_eq!(job.cancel(102, 60), Ok(true));
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(
            job.cancel(103, 60),
            Ok(false),
            "cancelling twice is not an error"
        );
        assert_eq!(job.start(104), Start::Skip);

        let mut running = Job::queued("job_2".into(), "mock".into(), 100, "f".into());
        running.start(101);
        let error = running.cancel(102, 60).unwrap_err();
        assert_eq!((error.status(), error.code()), (409, "job_not_cancellable"));
        assert!(error.message.contains("running"));
    }

    #[test]
    fn dead_letters_fail_with_the_last_error_once() {
        let mut job = job();
        job.start(101);
        job.requeue(upstream_error());
        assert!(job.dead_letter(200, 60));
        assert_eq!(job.status, JobStatus::Failed);
        assert!(job.dead_lettered);
        assert_eq!(job.error.as_ref().unwrap().code, "upstream_error");
        assert!(!job.dead_letter(201, 60));

        let mut crashed = Job::queued("job_3".into(), "mock".into(), 100, "f".into());
        crashed.start(101);
        crashed.dead_letter(200, 60);
        assert_eq!(crashed.error.unwrap().code, "job_dead_lettered");

        let mut done = Job::queued("job_4".into(), "mock".into(), 100, "f".into());
        done.start(101);
        done.succeed(json!({}), Usage::default(), 102, 60);
        assert!(!done.dead_letter(200, 60), "an ended job stays as it ended");
        assert_eq!(done.status, JobStatus::Succeeded);
    }

    #[test]
    fn ending_rearms_the_webhook_and_names_the_event() {
        let mut job = job();
        job.webhook = Some(Webhook {
            url: "https://example.com/hook".into(),
            status: WebhookStatus::Pending,
            attempts: 0,
            last_outcome: None,
            delivered_at: None,
        });
        assert_eq!(job.event(), None);
        job.start(101);
        job.fail(upstream_error(), 102, 60);
        assert_eq!(job.event(), Some("job.failed"));
        assert_eq!(job.webhook.as_ref().unwrap().status, WebhookStatus::Pending);
    }

    #[test]
    fn deliveries_are_counted_and_end_the_webhook() {
        let mut job = job();
        assert!(
            !job.delivered(Delivery::Delivered, "200".into(), 5),
            "no webhook"
        );
        job.webhook = Some(Webhook {
            url: "https://example.com/hook".into(),
            status: WebhookStatus::Pending,
            attempts: 0,
            last_outcome: None,
            delivered_at: None,
        });
        let change = |outcome, detail: &str| Change::Delivery {
            outcome,
            detail: detail.to_owned(),
        };
        assert_eq!(
            job.apply(change(Delivery::Retrying, "503"), 5, 60),
            Ok(true)
        );
        assert_eq!(
            job.apply(change(Delivery::Delivered, "204"), 9, 60),
            Ok(true)
        );
        let webhook = job.webhook.as_ref().unwrap();
        assert_eq!(webhook.status, WebhookStatus::Delivered);
        assert_eq!((webhook.attempts, webhook.delivered_at), (2, Some(9)));
        assert_eq!(webhook.last_outcome.as_deref(), Some("204"));
        job.apply(change(Delivery::Abandoned, "410"), 10, 60)
            .unwrap();
        assert_eq!(job.webhook.unwrap().status, WebhookStatus::Failed);
    }

    #[test]
    fn changes_travel_as_tagged_json() {
        let error = JobError::of(&GatewayError::new(ErrorKind::UpstreamTimeout, "slow"));
        let change = Change::Requeue(error);
        let text = serde_json::to_string(&change).unwrap();
        assert!(text.starts_with(r#"{"requeue":{"status":504,"#), "{text}");
        assert_eq!(serde_json::to_string(&Change::Start).unwrap(), r#""start""#);
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), change);
        let mut job = job();
        assert_eq!(job.apply(Change::Start, 1, 60), Ok(true));
        assert_eq!(job.apply(change, 2, 60), Ok(true));
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.apply(Change::Cancel, 3, 60), Ok(true));
        assert_eq!(job.apply(Change::Start, 4, 60), Ok(false));
    }

    #[test]
    fn the_view_hides_bookkeeping_and_leaves_out_empty_fields() {
        let mut job = job();
        job.idempotency_key = Some("k".into());
        job.lease = Some("req".into());
        job.status_url = "https://gw/v1/jobs/job_1".into();
        let view = job.view();
        assert_eq!(
            view,
            json!({"id": "job_1", "object": "job", "status": "queued",
                   "status_url": "https://gw/v1/jobs/job_1", "model": "mock",
                   "created_at": 100, "attempts": 0})
        );
        job.start(101);
        job.succeed(
            json!({"object": "chat.completion"}),
            Usage::new(1, 2),
            102,
            10,
        );
        let view = job.view();
        assert_eq!(view["result"]["object"], "chat.completion");
        assert_eq!(view["usage"]["total_tokens"], 3);
        assert_eq!(view["expires_at"], 112);
        assert!(view.get("fingerprint").is_none() && view.get("lease").is_none());
    }

    #[test]
    fn the_record_round_trips_through_storage() {
        let mut job = job();
        job.start(101);
        job.requeue(upstream_error());
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }

    #[test]
    fn submissions_take_out_the_callback_and_refuse_streams() {
        let body = br#"{"model": "mock", "messages": [], "callback_url": "https://x.example/h"}"#;
        let submission = Submission::parse(body).unwrap();
        assert_eq!(
            submission.callback_url.as_deref(),
            Some("https://x.example/h")
        );
        let rest: Value = serde_json::from_slice(&submission.request).unwrap();
        assert_eq!(rest, json!({"model": "mock", "messages": []}));

        let stream = Submission::parse(br#"{"model": "m", "stream": true}"#).unwrap_err();
        assert_eq!(stream.param.as_deref(), Some("stream"));
        let number = Submission::parse(br#"{"callback_url": 3}"#).unwrap_err();
        assert_eq!(number.param.as_deref(), Some("callback_url"));
        assert_eq!(
            Submission::parse(b"[1]").unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(Submission::parse(b"{").unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn a_validated_request_survives_the_job_store() {
        use crate::api::chat::ChatRequest;
        use crate::guard::validate::parse_chat_request;
        use crate::guard::validate::RequestLimits;
        let body = json!({
            "model": "mock",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"},
                                             {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ],
            "max_completion_tokens": 50, "temperature": 0.5, "stop": ["\n"], "seed": 7,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        });
        let limits = RequestLimits {
            max_body_bytes: 1 << 20,
            max_messages: 10,
            max_message_chars: 1_000,
            max_output_tokens: 100,
        };
        let request = parse_chat_request(body.to_string().as_bytes(), &limits).unwrap();
        let kept = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<ChatRequest>(&kept).unwrap(), request);
        let empty = kept.replace(r#""content":"42""#, r#""content":null"#);
        let empty: ChatRequest = serde_json::from_str(&empty).unwrap();
        assert_eq!(empty.messages[3].content, crate::api::chat::Content::None);
    }

    #[test]
    fn idempotency_keys_are_bounded_printable_ascii() {
        assert!(check_idempotency_key("order-42 retry").is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key(&"k".repeat(256)).is_err());
        assert!(check_idempotency_key("caf\u{e9}").is_err());
        assert!(check_idempotency_key("a\nb").is_err());
    }

    #[test]
    fn retryable_errors_are_transient_upstream_failures() {
        let kinds = [
            (ErrorKind::UpstreamError, true),
            (ErrorKind::UpstreamTimeout, true),
            (ErrorKind::AllProvidersFailed, true),
            (ErrorKind::UpstreamRejected { status: 429 }, true),
            (ErrorKind::UpstreamRejected { status: 400 }, false),
            (ErrorKind::UpstreamRejected { status: 401 }, false),
            (ErrorKind::ModelNotFound, false),
        ];
        for (kind, retryable) in kinds {
            assert_eq!(
                is_retryable(&GatewayError::new(kind, "")),
                retryable,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn an_attempt_succeeds_fails_or_is_retried_later() {
        let config = retrying(10, 300);
        let answer = json!({"object": "chat.completion"});
        let (change, retry) = after_attempt(Ok((answer.clone(), Usage::new(1, 2))), 1, &config);
        assert_eq!(
            change,
            Change::Succeed {
                result: answer,
                usage: Usage::new(1, 2)
            }
        );
        assert_eq!(retry, None);

        let huge = json!({"content": "x".repeat(MAX_RESULT_BYTES)});
        let (change, retry) = after_attempt(Ok((huge, Usage::new(1, 2))), 1, &config);
        assert!(matches!(change, Change::Fail(ref error) if error.code == "job_result_too_large"));
        assert_eq!(retry, None);

        let timeout = GatewayError::new(ErrorKind::UpstreamTimeout, "slow");
        let (change, retry) = after_attempt(Err(timeout), 3, &config);
        assert!(matches!(change, Change::Requeue(ref error) if error.code == "upstream_timeout"));
        assert_eq!(retry, Some(40), "10 s doubled twice");

        let refused = GatewayError::new(ErrorKind::UpstreamRejected { status: 400 }, "bad");
        let (change, retry) = after_attempt(Err(refused), 1, &config);
        assert!(matches!(change, Change::Fail(ref error) if error.status == 400));
        assert_eq!(retry, None);
    }

    /// Jobs settings with these retry delays.
    fn retrying(base_s: u32, max_s: u32) -> JobsConfig {
        JobsConfig {
            ttl_s: 60,
            retry_base_delay_s: base_s,
            retry_max_delay_s: max_s,
            webhook_timeout_ms: 1_000,
            callbacks: callback::CallbackPolicy::default(),
        }
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let config = retrying(5, 60);
        let delays: Vec<u32> = (1..=6)
            .map(|attempt| config.retry_delay_s(attempt))
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(retrying(5, 600).retry_delay_s(100), 600);
        assert_eq!(retrying(0, 60).retry_delay_s(3), 0);
    }

    #[test]
    fn oversized_results_are_refused_with_their_size() {
        assert_eq!(
            JobError::of_oversized_result(&json!({"content": "short"})),
            None
        );
        let big = json!({"content": "x".repeat(MAX_RESULT_BYTES)});
        let error = JobError::of_oversized_result(&big).unwrap();
        assert_eq!(
            (error.status, error.code.as_str()),
            (502, "job_result_too_large")
        );
        assert!(
            error.message.contains(&(MAX_RESULT_BYTES + 14).to_string()),
            "{}",
            error.message
        );
    }

    #[test]
    fn not_found_does_not_echo_control_characters() {
        let error = not_found("job_\u{1b}[31m");
        assert_eq!((error.status(), error.code()), (404, "job_not_found"));
        assert!(!error.message.contains('\u{1b}'));
    }
}
