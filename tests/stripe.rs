//! Stripe source against wiremock serving Stripe-shaped responses (no local server implements
//! the Stripe API, so this is the one mocked source).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const KEY: &str = "rk_test_51PulseKey";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn events(
    ids: std::ops::RangeInclusive<u32>,
    kind: impl Fn(u32) -> &'static str,
    has_more: bool,
) -> Value {
    let data: Vec<Value> = ids
        .map(|i| json!({"id": format!("evt_{i}"), "object": "event", "type": kind(i), "created": now() - 3600 * i64::from(i), "pending_webhooks": 1}))
        .collect();
    json!({"object": "list", "url": "/v1/events", "has_more": has_more, "data": data})
}

fn endpoints() -> Value {
    json!({"object": "list", "url": "/v1/webhook_endpoints", "has_more": false, "data": [
        {"id": "we_live", "object": "webhook_endpoint", "url": "https://api.example.com/stripe/hook?token=s3cr3t", "status": "enabled"},
        {"id": "we_old", "object": "webhook_endpoint", "url": "https://old.example.com/hook", "status": "disabled"}
    ]})
}

async fn stripe_mock() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        // The version is pinned: the default unless the config names one.
        .and(header("stripe-version", "2024-06-20"))
        .respond_with(ResponseTemplate::new(200).set_body_json(endpoints()))
        .mount(&server)
        .await;
    let undelivered = |m: MockBuilder| m.and(query_param("delivery_success", "false"));
    let kind = |i: u32| {
        if i.is_multiple_of(3) {
            "customer.subscription.updated"
        } else {
            "invoice.paid"
        }
    };
    undelivered(Mock::given(method("GET")).and(path("/v1/events")))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(events(1..=3, kind, true)))
        .mount(&server)
        .await;
    undelivered(Mock::given(method("GET")).and(path("/v1/events")))
        .and(query_param("starting_after", "evt_3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(events(4..=5, kind, true)))
        .mount(&server)
        .await;
    undelivered(Mock::given(method("GET")).and(path("/v1/events")))
        .and(query_param("starting_after", "evt_5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(events(6..=6, kind, false)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param_is_missing("delivery_success"))
        .respond_with(ResponseTemplate::new(200).set_body_json(events(
            1..=10,
            |_| "charge.succeeded",
            false,
        )))
        .mount(&server)
        .await;
    server
}

fn config(base: &str, extra: &str) -> String {
    format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: stripe
    kind: stripe
    api_key: ${{env:PULSE_TEST_STRIPE_KEY}}
    api_base: {base}
    interval: 2s
    timeout: 1500ms
{extra}"#
    )
}

#[tokio::test]
async fn pages_through_undelivered_events_and_reports_endpoints() {
    let server = stripe_mock().await;
    let e = Exporter::start_with(
        &config(&server.uri(), ""),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", KEY)],
    );
    let m = e
        .wait_for("stripe results", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[]).is_some()
                && !m
                    .find("pulse_stripe_webhook_endpoint_enabled", &[])
                    .is_empty()
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_stripe_undelivered_events",
            &[("event_type", "invoice.paid")]
        ),
        Some(4.0),
        "evt 1,2,4,5 across 3 pages"
    );
    assert_eq!(
        m.get(
            "pulse_stripe_undelivered_events",
            &[("event_type", "customer.subscription.updated")]
        ),
        Some(2.0)
    );
    let oldest = m
        .get(
            "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
            &[],
        )
        .unwrap();
    assert!(
        (oldest - (now() - 6 * 3600) as f64).abs() < 120.0,
        "evt_6 is the oldest: {oldest}"
    );
    assert_eq!(
        m.get("pulse_stripe_events", &[("source", "stripe")]),
        Some(10.0)
    );
    assert_eq!(
        m.get(
            "pulse_stripe_listing_truncated",
            &[("listing", "undelivered_events")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "pulse_stripe_webhook_endpoint_enabled",
            &[("endpoint", "we_live"), ("host", "api.example.com")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "pulse_stripe_webhook_endpoint_enabled",
            &[("endpoint", "we_old")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "pulse_source_up",
            &[("source", "stripe"), ("kind", "stripe")]
        ),
        Some(1.0)
    );
    assert!(
        !m.text.contains("s3cr3t"),
        "webhook URL paths and tokens never become labels"
    );
    assert!(!e.logs().contains(KEY) && !m.text.contains(KEY));
}

#[tokio::test]
async fn the_page_cap_truncates_and_says_so() {
    let server = stripe_mock().await;
    let e = Exporter::start_with(
        &config(&server.uri(), "    max_pages: 2\n"),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", KEY)],
    );
    let m = e
        .wait_for("capped events", Duration::from_secs(15), |m| {
            m.get(
                "pulse_stripe_listing_truncated",
                &[("listing", "undelivered_events")],
            )
            .is_some()
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_stripe_listing_truncated",
            &[("listing", "undelivered_events")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "pulse_stripe_undelivered_events",
            &[("event_type", "invoice.paid")]
        ),
        Some(4.0),
        "two pages: evt 1..5"
    );
    assert_eq!(
        m.get("pulse_stripe_listing_truncated", &[("listing", "events")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_429_is_waited_out_then_the_run_succeeds() {
    let server = stripe_mock().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"message": "Too many requests"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    // Every run may wait out the 1 s Retry-After: timeouts of 3 s.
    let text = config(&server.uri(), "")
        .replace(
            "health_interval: 1s, health_timeout: 800ms",
            "health_interval: 5s, health_timeout: 3s",
        )
        .replace(
            "interval: 2s\n    timeout: 1500ms",
            "interval: 5s\n    timeout: 3s",
        );
    let cfg = write_temp(dir.path(), "stripe.yml", &text);
    let (code, out, err) = run_cli(
        &["probe", "--config.file", cfg.to_str().unwrap()],
        &[("PULSE_TEST_STRIPE_KEY", KEY)],
    );
    assert_eq!(code, 0, "every run succeeds after waiting: {out}{err}");
    let waited = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().find(|c| c.ends_with("ms")))
        .filter_map(|d| d.trim_end_matches("ms").parse::<f64>().ok())
        .any(|ms| ms >= 950.0);
    assert!(
        waited,
        "the run that got the 429 waited for Retry-After: {out}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_long_retry_after_stops_requests_instead_of_hammering() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let e = Exporter::start_with(
        &config(&server.uri(), ""),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", KEY)],
    );
    let m = e
        .wait_for("rate limited", Duration::from_secs(10), |m| {
            m.get(
                "pulse_source_probe_failures_total",
                &[("source", "stripe"), ("reason", "rate_limited")],
            )
            .is_some_and(|v| v >= 2.0)
        })
        .await;
    assert_eq!(m.get("pulse_source_up", &[("source", "stripe")]), Some(0.0));
    // The health probe and the two checks may each have had a request in flight before the
    // first 429 came back; after it, nothing more is sent.
    let first = server.received_requests().await.unwrap().len();
    assert!(
        (1..=3).contains(&first),
        "{first} requests before the back-off"
    );
    // Four more health intervals and two check intervals.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = server.received_requests().await.unwrap().len();
    assert_eq!(
        later, first,
        "after a 429 with Retry-After: 120, no run may call Stripe again"
    );
}

#[tokio::test]
async fn bad_key_is_auth_and_server_errors_are_upstream() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error": {"message": "Invalid API Key provided: rk_test_****"}}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let e = Exporter::start_with(
        &config(&server.uri(), ""),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", "rk_test_wrongkey_77")],
    );
    let m = e
        .wait_for("failures", Duration::from_secs(10), |m| {
            m.get(
                "pulse_source_probe_failures_total",
                &[("source", "stripe"), ("reason", "auth")],
            )
            .is_some_and(|v| v >= 1.0)
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "undelivered_events"), ("reason", "upstream")],
                )
                .is_some()
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "webhook_endpoints"), ("reason", "auth")],
                )
                .is_some()
        })
        .await;
    assert_eq!(m.get("pulse_source_up", &[("source", "stripe")]), Some(0.0));
    assert!(
        e.logs()
            .contains("read access to Events and Webhook Endpoints"),
        "{}",
        e.logs()
    );
    assert!(!e.logs().contains("rk_test_wrongkey_77"));
}

/// Runs `probe` once on a config for `server` (timeouts long enough for two back-offs);
/// returns (exit code, stdout and stderr).
fn probe_once(server: &MockServer, extra: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(&server.uri(), extra)
        .replace(
            "health_interval: 1s, health_timeout: 800ms",
            "health_interval: 10s, health_timeout: 5s",
        )
        .replace(
            "interval: 2s\n    timeout: 1500ms",
            "interval: 10s\n    timeout: 5s",
        );
    let cfg = write_temp(dir.path(), "stripe.yml", &text);
    let (code, out, err) = run_cli(
        &["probe", "--config.file", cfg.to_str().unwrap()],
        &[("PULSE_TEST_STRIPE_KEY", KEY)],
    );
    (code, format!("{out}{err}"))
}

#[tokio::test]
async fn a_configured_stripe_version_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("stripe-version", "2025-03-31.basil"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "url": "/v1/events", "has_more": false, "data": []}),
        ))
        .mount(&server)
        .await;
    let (code, out) = probe_once(&server, "    stripe_version: 2025-03-31.basil\n");
    assert_eq!(
        code, 0,
        "every request carried the configured version: {out}"
    );
}

#[tokio::test]
async fn old_style_400_rate_limits_and_429s_without_retry_after_are_backed_off() {
    let server = stripe_mock().await;
    // API versions before 2015-09-08 answer rate limits with 400 and code rate_limit.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests hit the API too quickly."}})))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    // A 429 that does not say when to come back.
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests."}})))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    let (code, out) = probe_once(&server, "");
    assert_eq!(code, 0, "both were retried after a back-off: {out}");
    server.verify().await;
}

#[tokio::test]
async fn stripe_should_retry_decides_whether_an_error_is_tried_again() {
    let server = stripe_mock().await;
    // A 503 Stripe says to retry: the run goes on.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(503).insert_header("stripe-should-retry", "true"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    // A 429 Stripe says not to retry: it fails at once, rate_limited, with no second request.
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("stripe-should-retry", "false")
                .set_body_json(
                    json!({"error": {"type": "invalid_request_error", "message": "No."}}),
                ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let (code, out) = probe_once(&server, "");
    assert_eq!(code, 1, "{out}");
    let line = |check: &str| {
        out.lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check} in {out}"))
            .to_owned()
    };
    assert!(line("undelivered_events").contains("ok"), "{out}");
    assert!(line("webhook_endpoints").contains("rate_limited"), "{out}");
    let endpoint_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/webhook_endpoints")
        .count();
    // The health probe and the check, once each.
    assert_eq!(endpoint_calls, 2, "{out}");
    server.verify().await;
}

#[tokio::test]
async fn a_200_that_is_not_a_list_is_a_decode_failure_not_zero_events() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(endpoints()))
        .mount(&server)
        .await;
    let (code, out) = probe_once(&server, "");
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("undelivered_events"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("decode"), "{out}");
}
