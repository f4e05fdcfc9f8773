//! The jobs API: `POST /v1/jobs` (submit), `GET /v1/jobs/{id}` (poll) and
//! `DELETE /v1/jobs/{id}` (cancel), and the queue the work goes through.
//!
//! A submission passes every check a synchronous request passes (auth, validation, the
//! guards, the model allow-list, rate limits and budget) before it is accepted: what is
//! accepted will not be refused later for a reason the client could have been told now.
//! Its admission's lease stays open until the job ends, so a queued or running job counts
//! against its owner's concurrency (for the lease's lifetime at most) and its estimated
//! cost is held against the budgets.

use worker::Env;

use super::background::Background;
use super::clock::{new_request_id, now_ms};
use super::crypto::{hmac_sha256_hex, random_u32, sha256_hex};
use super::exchange::{admit, read_json_body, Caller, Exchange, Reply};
use super::incoming::Incoming;
use super::job_store::JobStoreStub;
use super::limiter::Settlement;
use super::respond;
use crate::auth::Principal;
use crate::config::Config;
use crate::config::Secret;
use crate::error::{ErrorKind, GatewayError};
use crate::jobs::callback::{refused, ParsedUrl, MAX_CALLBACK_URL_BYTES};
use crate::jobs::webhook::{signing_key, signing_key_label, signing_key_view};
use crate::jobs::{
    check_idempotency_key, not_found, Change, Job, JobStatus, Submission, Task, TaskKind, Webhook,
    WebhookStatus,
};
use crate::pipeline::prepare::{prepare, Prepared};

/// The queue producer binding jobs and webhook deliveries go through.
const QUEUE_BINDING: &str = "JOBS";

/// `POST /v1/jobs`: checks the submission as a chat completion, admits it, keeps it and
/// queues it; 202 with the job. A resubmission with the same `Idempotency-Key` and body
/// answers the same job (`idempotent-replayed: true`); with another body, 422.
pub async fn submit(
    req: &Incoming,
    env: &Env,
    config: &Config,
    caller: &Caller,
    origin: &str,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let store = own_store(env, &caller.principal)?;
    let key = req.header("idempotency-key");
    if let Some(key) = &key {
        check_idempotency_key(key)?;
    }
    let body = read_json_body(req, config).await?;
    let submission = Submission::parse(&body)?;
    let webhook = match &submission.callback_url {
        Some(url) => Some(webhook(config, url)?),
        None => None,
    };
    // A flagged request goes ahead (the 202 carries `x-guard-flags`); jobs skip the cache
    // anyway.
    let Prepared {
        request, resolved, ..
    } = prepare(
        &submission.request,
        config,
        &caller.principal,
        &mut exchange.log,
        random_u32(),
    )?;
    // Only a keyed submission is ever compared with another.
    let fingerprint = match &key {
        Some(_) => sha256_hex(&body).await?,
        None => String::new(),
    };
    if let Some(key) = &key {
        if let Some(job) = store.find(key).await? {
            return replayed(job, &fingerprint, exchange);
        }
    }
    let upstream = (request.estimated_prompt_tokens(), resolved.targets[0].model);
    let settlement = admit(
        config.rate_limits.max_output(request.max_tokens, request.n),
        Some(upstream),
        config,
        caller,
        exchange,
    )
    .await?;
    let id = format!("job_{}", new_request_id());
    let mut job = Job::queued(
        id,
        request.model.clone(),
        now_ms() / 1_000,
        fingerprint.clone(),
    );
    job.status_url = format!("{origin}/v1/jobs/{}", job.id);
    job.idempotency_key = key;
    job.webhook = webhook;
    job.lease = settlement
        .as_ref()
        .map(|settlement| settlement.lease().to_owned());
    let request = serde_json::to_string(&request)
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "the request could not be kept"))?;
    // Until the job is queued, an error drops the settlement, which refunds the admission.
    let created = store.create(job, request).await?;
    let job = created
        .job
        .ok_or_else(|| GatewayError::new(ErrorKind::JobsUnavailable, "the job was not kept"))?;
    if !created.changed {
        // A concurrent submission with the same key won: its job, if the bodies match.
        return replayed(job, &fingerprint, exchange);
    }
    let task = task(TaskKind::Run, &caller.principal, &job.id);
    if let Err(error) = enqueue(env, &task).await {
        let _ = store.delete(&job.id).await;
        return Err(error);
    }
    if let Some(settlement) = settlement {
        settlement.postpone();
    }
    exchange.log.job_id = Some(job.id.clone());
    Ok(Reply::Now(job_response(&job, 202)))
}

/// `GET /v1/jobs/{id}`: the caller's job, or 404 (also for other principals' jobs).
pub async fn get(env: &Env, caller: &Caller, id: &str) -> Result<Reply, GatewayError> {
    let store = own_store(env, &caller.principal)?;
    let job = store.get(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Reply::Now(job_response(&job, 200)))
}

/// `DELETE /v1/jobs/{id}`: cancels the caller's queued job (its reservation is refunded
/// and its webhook, if any, told); 409 when it is running or has ended.
pub async fn cancel(
    env: &Env,
    config: &Config,
    caller: &Caller,
    id: &str,
    background: &Background,
) -> Result<Reply, GatewayError> {
    let store = own_store(env, &caller.principal)?;
    let reply = store.change(id, Change::Cancel, config.jobs.ttl_s).await?;
    let job = reply.job.ok_or_else(|| not_found(id))?;
    if let Some(conflict) = reply.conflict {
        return Err(GatewayError::new(ErrorKind::JobNotCancellable, conflict));
    }
    if reply.changed {
        ended(env, &job, &caller.principal.id, background).await;
    }
    Ok(Reply::Now(job_response(&job, 200)))
}

/// What follows a job's end, wherever it ended: the lease of a job that did not succeed
/// settled with nothing used (a refund; a success settles its real usage itself), and its
/// webhook queued.
pub async fn ended(env: &Env, job: &Job, principal_id: &str, background: &Background) {
    if let (Some(lease), false) = (&job.lease, job.status == JobStatus::Succeeded) {
        // Dropped at once: settles with zero usage.
        let _ = Settlement::resume(env, principal_id, lease.clone(), background);
    }
    if job.webhook.is_some() {
        let task = Task {
            kind: TaskKind::Webhook,
            principal: principal_id.to_owned(),
            team: None,
            job: job.id.clone(),
        };
        // Without the queue the webhook is not sent; the job's status is still polled.
        let _ = enqueue(env, &task).await;
    }
}

/// The caller's job store. Jobs belong to a principal; callers without a key or token
/// have none (401).
fn own_store(env: &Env, principal: &Principal) -> Result<JobStoreStub, GatewayError> {
    own_principal(principal)?;
    JobStoreStub::open(env, &principal.id)
}

/// 401 for a caller without a key or token: jobs and their webhooks belong to a principal.
fn own_principal(principal: &Principal) -> Result<(), GatewayError> {
    if principal.via == "anonymous" {
        return Err(GatewayError::new(
            ErrorKind::InvalidApiKey,
            "jobs need an API key or a JWT: the job belongs to the caller",
        ));
    }
    Ok(())
}

/// `GET /v1/webhooks/signing_key`: the key the caller's webhooks are signed with. Like
/// jobs, it belongs to a principal (401 without credentials); 403 when webhooks are off.
pub async fn signing_key_of(config: &Config, principal: &Principal) -> Result<Reply, GatewayError> {
    own_principal(principal)?;
    let key = principal_signing_key(webhook_secret(config)?, &principal.id).await?;
    let view = signing_key_view(&principal.id, &key);
    Ok(Reply::Now(respond::json(200, view.to_string())))
}

/// The signing key of `principal`'s webhooks, derived from the gateway's secret.
pub async fn principal_signing_key(
    secret: &Secret,
    principal: &str,
) -> Result<String, GatewayError> {
    let label = signing_key_label(principal);
    let mac = hmac_sha256_hex(secret.expose().as_bytes(), label.as_bytes()).await?;
    Ok(signing_key(&mac))
}

/// The `WEBHOOK_SIGNING_SECRET`; 403 `webhooks_disabled` without one.
fn webhook_secret(config: &Config) -> Result<&Secret, GatewayError> {
    config.webhook_secret.as_ref().ok_or_else(|| {
        GatewayError::new(
            ErrorKind::WebhooksDisabled,
            "webhooks are disabled: no WEBHOOK_SIGNING_SECRET is set",
        )
    })
}

/// The webhook for `url`, if webhooks are on and the URL may be used.
fn webhook(config: &Config, url: &str) -> Result<Webhook, GatewayError> {
    if config.webhook_secret.is_none() {
        return Err(GatewayError::new(
            ErrorKind::WebhooksDisabled,
            "this gateway sends no webhooks (no WEBHOOK_SIGNING_SECRET is set); poll status_url",
        )
        .with_param("callback_url"));
    }
    let url = parse_url(url)?;
    config.jobs.callbacks.check(&url.parsed)?;
    Ok(Webhook {
        url: url.href,
        status: WebhookStatus::Pending,
        attempts: 0,
        last_outcome: None,
        delivered_at: None,
    })
}

/// A URL parsed and canonicalized by the runtime's WHATWG parser (the one `fetch` uses).
pub struct Canonical {
    /// The parts the callback check needs.
    pub parsed: ParsedUrl,
    /// The canonical URL.
    pub href: String,
}

/// Parses a callback URL (400 `invalid_callback_url` when it is not one).
pub fn parse_url(url: &str) -> Result<Canonical, GatewayError> {
    if url.len() > MAX_CALLBACK_URL_BYTES {
        return Err(refused(&format!(
            "must be at most {MAX_CALLBACK_URL_BYTES} bytes"
        )));
    }
    let parsed = web_sys::Url::new(url).map_err(|_| refused("is not a valid absolute URL"))?;
    Ok(Canonical {
        parsed: ParsedUrl {
            protocol: parsed.protocol(),
            hostname: parsed.hostname(),
            port: parsed.port(),
            has_credentials: !parsed.username().is_empty() || !parsed.password().is_empty(),
        },
        href: parsed.href(),
    })
}

/// The answer to a resubmission with a known `Idempotency-Key`: the same job, or 422
/// when the body differs from the first submission's.
fn replayed(job: Job, fingerprint: &str, exchange: &mut Exchange) -> Result<Reply, GatewayError> {
    if job.fingerprint != fingerprint {
        return Err(GatewayError::new(
            ErrorKind::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request body",
        )
        .with_param("Idempotency-Key"));
    }
    exchange.log.job_id = Some(job.id.clone());
    let response = job_response(&job, 202);
    respond::set_header(&response, "idempotent-replayed", "true");
    Ok(Reply::Now(response))
}

fn job_response(job: &Job, status: u16) -> worker::Response {
    let response = respond::json(status, job.view().to_string());
    if status == 202 {
        respond::set_header(&response, "location", &job.status_url);
    }
    response
}

/// A task for `principal`'s job `job`.
fn task(kind: TaskKind, principal: &Principal, job: &str) -> Task {
    Task {
        kind,
        principal: principal.id.clone(),
        team: principal.team.clone(),
        job: job.to_owned(),
    }
}

/// Sends `task` to the jobs queue. (A task is retried later by the consumer, through the
/// message's own retry delay, never sent again.)
async fn enqueue(env: &Env, task: &Task) -> Result<(), GatewayError> {
    let unavailable = |why: &str| {
        GatewayError::new(
            ErrorKind::JobsUnavailable,
            format!("the job queue is unavailable: {why}; try again shortly"),
        )
    };
    let queue = env
        .queue(QUEUE_BINDING)
        .map_err(|_| unavailable("its binding is missing"))?;
    let text = serde_json::to_string(task).map_err(|_| unavailable("bad task"))?;
    queue
        .send(text)
        .await
        .map_err(|_| unavailable("the message was not accepted"))
}
