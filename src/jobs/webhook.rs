//! Webhook deliveries: what is sent, how it is signed, and what the receiver's answer
//! means.
//!
//! A delivery is a `POST` of a JSON event with the header
//! `x-gateway-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the
//! job owner's signing key: `whsec_` and the hex HMAC-SHA256, under the
//! `WEBHOOK_SIGNING_SECRET`, of [`signing_key_label`] for the principal. Each principal
//! fetches its own key (`GET /v1/webhooks/signing_key`), so no principal can sign a
//! delivery that another's receiver would accept, and the body names the owner. The
//! timestamp is signed with the body so a captured delivery cannot be replayed later with
//! a fresh one; every attempt is signed anew.

use serde_json::{json, Value};

use super::Delivery;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-gateway-signature";

/// What the gateway's secret signs to make the signing key of `principal` (its id).
pub fn signing_key_label(principal: &str) -> String {
    format!("webhook-signing-key:v1:{principal}")
}

/// A principal's signing key from the MAC (hex) of its [`signing_key_label`].
pub fn signing_key(label_mac_hex: &str) -> String {
    format!("whsec_{label_mac_hex}")
}

/// The body of `GET /v1/webhooks/signing_key`.
pub fn signing_key_view(principal: &str, key: &str) -> Value {
    json!({
        "object": "webhook_signing_key",
        "principal": principal,
        "key": key,
        "algorithm": "HMAC-SHA256",
        "header": SIGNATURE_HEADER,
    })
}

/// The bytes a delivery's MAC covers: `<timestamp>.<body>`.
pub fn signed_payload(timestamp_s: u64, body: &str) -> String {
    format!("{timestamp_s}.{body}")
}

/// The [`SIGNATURE_HEADER`] value for a MAC (hex) made at `timestamp_s`.
pub fn signature_header(timestamp_s: u64, mac_hex: &str) -> String {
    format!("t={timestamp_s},v1={mac_hex}")
}

/// A delivery's body: the event, its id (the same on every attempt, for the receiver to
/// drop duplicates), the job's owner and the job as `GET /v1/jobs/{id}` shows it.
pub fn event_body(event: &str, event_id: &str, created_s: u64, owner: &str, job: Value) -> String {
    json!({
        "id": event_id,
        "type": event,
        "created": created_s,
        "principal": owner,
        "data": job,
    })
    .to_string()
}

impl Delivery {
    /// What a delivery the receiver answered with `status` comes to: 2xx delivered; 410
    /// (the hook is gone) abandoned; anything else (another status, including redirects,
    /// which are not followed) tried again, as are timeouts and network errors.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Delivery::Delivered,
            410 => Delivery::Abandoned,
            _ => Delivery::Retrying,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        assert_eq!(
            signed_payload(1700000000, r#"{"a":1}"#),
            r#"1700000000.{"a":1}"#
        );
        assert_eq!(signature_header(1700000000, "ab12"), "t=1700000000,v1=ab12");
    }

    #[test]
    fn each_principal_has_a_key_of_its_own() {
        assert_eq!(
            signing_key_label("key:alice"),
            "webhook-signing-key:v1:key:alice"
        );
        assert_ne!(
            signing_key_label("key:alice"),
            signing_key_label("jwt:i:alice")
        );
        assert_eq!(signing_key("ab12"), "whsec_ab12");
        let view = signing_key_view("key:alice", "whsec_ab12");
        assert_eq!(
            (view["key"].as_str(), view["principal"].as_str()),
            (Some("whsec_ab12"), Some("key:alice"))
        );
    }

    #[test]
    fn the_body_wraps_the_job_in_an_event() {
        let body = event_body(
            "job.succeeded",
            "evt_1",
            5,
            "key:alice",
            json!({"id": "job_1"}),
        );
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            json!({"id": "evt_1", "type": "job.succeeded", "created": 5, "principal": "key:alice", "data": {"id": "job_1"}})
        );
    }

    #[test]
    fn only_2xx_delivers_and_only_410_stops() {
        assert_eq!(Delivery::of_status(200), Delivery::Delivered);
        assert_eq!(Delivery::of_status(204), Delivery::Delivered);
        assert_eq!(Delivery::of_status(410), Delivery::Abandoned);
        for status in [301, 302, 400, 401, 404, 429, 500, 503] {
            assert_eq!(Delivery::of_status(status), Delivery::Retrying, "{status}");
        }
    }
}
