//! Stripe source against a Stripe-shaped server (`common::stripe`: no local server implements
//! the Stripe API, so this is the one mocked source), with wiremock error answers mounted over
//! it where a test needs Stripe to refuse.

use pulse_test_support as common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn now() -> i64 {
    now_secs() as i64
}

const HOUR: i64 = 3600;

fn config(base: &str, extra: &str) -> String {
    format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: stripe
    kind: stripe
    api_key: ${{env:PULSE_TEST_STRIPE_KEY}}
    api_base: {base}
    interval: 1s
    timeout: 900ms
{extra}"#
    )
}

fn start(fake: &FakeStripe, extra: &str) -> Exporter {
    Exporter::start_with(
        &config(&fake.uri(), extra),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", STRIPE_KEY)],
    )
}

/// Sums a Stripe family over its event types for the platform account.
fn total(m: &Scrape, name: &str) -> f64 {
    m.find(name, &[("source", "stripe")])
        .iter()
        .map(|s| s.value)
        .sum()
}

/// Waits (a minute at most) until the window is read whole and holds `events` events.
async fn read_whole(e: &Exporter, what: &str, events: f64) {
    let m = e
        .wait_for(what, Duration::from_secs(60), |m| {
            m.get("pulse_stripe_listing_truncated", &[("listing", "events")]) == Some(0.0)
                && total(m, "pulse_stripe_events") == events
        })
        .await;
    assert_eq!(total(&m, "pulse_stripe_events"), events);
}

/// Waits until the events check has finished `n` more runs than it had.
async fn runs_later(e: &Exporter, fake: &FakeStripe, n: usize) -> Scrape {
    let before = fake.events_runs("").len();
    // A run's requests are logged before its results are stored: one run more, then scrape.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.events_runs("").len() < before + n + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the events check stopped running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    e.metrics().await
}

#[tokio::test]
async fn stuck_deliveries_are_counted_by_age_read_incrementally_and_leave_once_delivered() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    // 250 events over the last 70 hours; three failed long ago, two are in flight.
    let newest_old = fake.add_event("", t - 1000, "charge.succeeded", 0);
    for i in 1..245 {
        fake.add_event("", t - 1000 - i * 1000, "charge.succeeded", 0);
    }
    let oldest = fake.add_event("", t - 60 * HOUR, "invoice.paid", 2);
    let stuck_b = fake.add_event("", t - 2 * HOUR, "invoice.paid", 1);
    let stuck_c = fake.add_event("", t - HOUR, "customer.subscription.updated", 1);
    let fresh_a = fake.add_event("", t - 30, "invoice.paid", 1);
    let fresh_b = fake.add_event("", t - 20, "invoice.created", 1);
    fake.set_endpoints(
        "",
        vec![
            endpoint_json(
                "we_live",
                "https://api.example.com/stripe/hook?token=s3cr3t",
                "enabled",
            ),
            endpoint_json("we_billing", "https://billing.example.com/hook", "enabled"),
            endpoint_json("we_old", "https://old.example.com/hook", "disabled"),
        ],
    );
    let e = start(&fake, "");
    let m = e
        .wait_for("stripe results", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[]).is_some()
                && m.get("pulse_stripe_webhook_endpoints", &[("status", "enabled")])
                    .is_some()
                && m.get("pulse_source_up", &[("source", "stripe")]).is_some()
        })
        .await;

    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_stripe_events", &[("source", "stripe"), ("account", "")], Some(250.0)),
        ("pulse_stripe_listing_truncated", &[("listing", "events")], Some(0.0)),
        // Undelivered: everything not yet at every endpoint, in flight included.
        ("pulse_stripe_undelivered_events", &[("event_type", "invoice.paid")], Some(3.0)),
        ("pulse_stripe_undelivered_events", &[("event_type", "invoice.created")], Some(1.0)),
        // Stuck: undelivered for longer than 15 minutes; in-flight events are not.
        ("pulse_stripe_stuck_events", &[("event_type", "invoice.paid")], Some(2.0)),
        ("pulse_stripe_stuck_events", &[("event_type", "customer.subscription.updated")], Some(1.0)),
        ("pulse_stripe_stuck_events", &[("event_type", "invoice.created")], None),
    ];
    assert_samples(&m, samples);
    let oldest_ts = m
        .get(
            "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
            &[],
        )
        .unwrap();
    assert_eq!(oldest_ts, (t - 60 * HOUR) as f64);
    // Endpoints, each and counted by status; only the host of a URL is kept.
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_stripe_webhook_endpoints", &[("status", "enabled")], Some(2.0)),
        ("pulse_stripe_webhook_endpoints", &[("status", "disabled")], Some(1.0)),
        ("pulse_stripe_webhook_endpoint_enabled", &[("endpoint", "we_live"), ("host", "api.example.com")], Some(1.0)),
    ];
    assert_samples(&m, samples);
    assert!(
        !m.text.contains("s3cr3t"),
        "webhook URL paths and tokens never become labels"
    );
    assert_eq!(
        m.get(
            "pulse_source_up",
            &[("source", "stripe"), ("kind", "stripe")]
        ),
        Some(1.0)
    );

    // The exact requests: the first run lists the window from its start, 100 at a time.
    let runs = fake.events_runs("");
    let first = &runs[0];
    let gte: i64 = first[0].param("created[gte]").unwrap().parse().unwrap();
    assert!(
        (gte - (t - 72 * HOUR)).abs() <= 5,
        "created[gte] is the window start: {gte}"
    );
    assert_eq!(first[0].param("limit"), Some("100"));
    assert_eq!(first[0].version.as_deref(), Some(STRIPE_VERSION));
    assert_eq!(first[0].param("starting_after"), None);
    assert!(first[1]
        .param("starting_after")
        .is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(
        first
            .iter()
            .filter(|r| r.param("delivery_success").is_none())
            .count(),
        3,
        "250 events: 3 pages"
    );
    // Later runs: what is newer than the newest event older than a minute at the last
    // listing (the two fresh ones are read again, in case Stripe lists one a little late),
    // and one re-check of the undelivered ones from the oldest of them.
    let m = runs_later(&e, &fake, 2).await;
    let runs = fake.events_runs("");
    let steady = &runs[runs.len() - 2];
    assert_eq!(
        steady.len(),
        2,
        "one page of new events, one re-check: {steady:?}"
    );
    assert_eq!(steady[0].param("ending_before"), Some(newest_old.as_str()));
    assert_eq!(steady[0].param("created[gte]"), None);
    assert_eq!(steady[1].param("delivery_success"), Some("false"));
    assert_eq!(
        steady[1].param("created[gte]"),
        Some((t - 60 * HOUR).to_string().as_str())
    );
    assert_eq!(
        total(&m, "pulse_stripe_events"),
        250.0,
        "nothing counted twice"
    );

    // New events arrive; Stripe delivers the two oldest stuck ones and the in-flight ones.
    fake.add_event("", now(), "charge.succeeded", 0);
    for id in [&oldest, &stuck_b, &fresh_a, &fresh_b] {
        fake.deliver(id);
    }
    let m = runs_later(&e, &fake, 1).await;
    assert_eq!(total(&m, "pulse_stripe_events"), 251.0);
    assert_eq!(total(&m, "pulse_stripe_stuck_events"), 1.0, "{}", m.text);
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_stripe_stuck_events", &[("event_type", "invoice.paid")], None),
        ("pulse_stripe_oldest_undelivered_event_timestamp_seconds", &[], Some((t - HOUR) as f64)),
    ];
    assert_samples(&m, samples);
    // The last one is delivered: nothing is pending, so a run is one request.
    fake.deliver(&stuck_c);
    let m = runs_later(&e, &fake, 2).await;
    assert_eq!(total(&m, "pulse_stripe_undelivered_events"), 0.0);
    assert_eq!(
        m.get(
            "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
            &[]
        ),
        None
    );
    let runs = fake.events_runs("");
    assert_eq!(runs[runs.len() - 2].len(), 1, "{:?}", runs[runs.len() - 2]);

    // An endpoint deleted (not disabled) shows as a drop of the enabled count.
    fake.set_endpoints(
        "",
        vec![endpoint_json(
            "we_live",
            "https://api.example.com/stripe/hook",
            "enabled",
        )],
    );
    e.wait_for("one enabled endpoint", Duration::from_secs(10), |m| {
        m.get("pulse_stripe_webhook_endpoints", &[("status", "enabled")]) == Some(1.0)
    })
    .await;

    // A restart forgets the state: the first run lists the window again, and the counts
    // come out the same.
    drop(e);
    let before = fake.events_runs("").len();
    let e = start(&fake, "");
    let m = e
        .wait_for("counts after a restart", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[]).is_some()
        })
        .await;
    assert_eq!(total(&m, "pulse_stripe_events"), 251.0);
    let restart = &fake.events_runs("")[before];
    let gte: i64 = restart[0].param("created[gte]").unwrap().parse().unwrap();
    assert!(
        (gte - (now() - 72 * HOUR)).abs() <= 5,
        "a full listing: {gte}"
    );
    assert!(!e.logs().contains(STRIPE_KEY) && !m.text.contains(STRIPE_KEY));
}

#[tokio::test]
async fn a_window_longer_than_max_pages_is_read_over_several_runs_and_its_true_oldest_found() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    // One event failed 70 hours ago; an endpoint broke an hour ago, so the 300 newest of
    // 1,050 events are undelivered too.
    let oldest = fake.add_event("", t - 70 * HOUR, "invoice.paid", 1);
    for i in 0..749 {
        fake.add_event("", t - 2 * HOUR - i * 200, "charge.succeeded", 0);
    }
    for i in 0..300 {
        fake.add_event("", t - 3000 + i * 10, "invoice.paid", 1);
    }
    let e = start(&fake, "    max_pages: 2\n");
    let m = e
        .wait_for("a first, truncated run", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[]).is_some()
        })
        .await;
    assert_eq!(
        m.get("pulse_stripe_listing_truncated", &[("listing", "events")]),
        Some(1.0)
    );
    assert!(
        total(&m, "pulse_stripe_events") < 1050.0,
        "two pages a listing and run cannot have read 1,050 events yet: {}",
        m.text
    );
    // Later runs fill the window: every event once, the true oldest found.
    let m = e
        .wait_for("the whole window", Duration::from_secs(30), |m| {
            m.get("pulse_stripe_listing_truncated", &[("listing", "events")]) == Some(0.0)
                && m.get(
                    "pulse_stripe_listing_truncated",
                    &[("listing", "undelivered_events")],
                ) == Some(0.0)
        })
        .await;
    assert_eq!(total(&m, "pulse_stripe_events"), 1050.0);
    assert_eq!(total(&m, "pulse_stripe_undelivered_events"), 301.0);
    assert_eq!(
        m.get(
            "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
            &[]
        ),
        Some((t - 70 * HOUR) as f64)
    );
    // No run made more than two pages per listing, three listings.
    for run in fake.events_runs("") {
        assert!(run.len() <= 6, "{run:?}");
    }
    fake.deliver(&oldest);
    let m = runs_later(&e, &fake, 3).await;
    assert_eq!(
        m.get(
            "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
            &[]
        ),
        Some((t - 3000) as f64)
    );
}

#[tokio::test]
async fn a_key_that_may_not_read_webhook_endpoints_fails_only_that_check() {
    let fake = FakeStripe::start(&[]).await;
    fake.add_event("", now() - HOUR, "invoice.paid", 1);
    fake.forbid("", "/v1/webhook_endpoints");
    let e = start(&fake, "");
    let m = e
        .wait_for(
            "the endpoints check failing",
            Duration::from_secs(15),
            |m| {
                m.get(
                    "pulse_check_failures_total",
                    &[("check", "webhook_endpoints"), ("reason", "auth")],
                )
                .is_some()
                    && m.get("pulse_stripe_stuck_events", &[]).is_some()
                    && m.get("pulse_source_up", &[("source", "stripe")]).is_some()
            },
        )
        .await;
    assert_eq!(
        m.get("pulse_source_up", &[("source", "stripe")]),
        Some(1.0),
        "health reads Events only"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_check_success", &[("check", "undelivered_events")], Some(1.0)),
        ("pulse_check_success", &[("check", "webhook_endpoints")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    let logs = e.logs();
    assert!(
        logs.contains("may not read Webhook Endpoints: give the restricted key Read on Webhook Endpoints, Stripe names it rak_webhook_read"),
        "{logs}"
    );
    assert!(
        !logs.contains("rk_test_****"),
        "Stripe's message quotes part of the key"
    );
    // Without the endpoints check, the key needs Events only: nothing fails.
    drop(e);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_temp(
        dir.path(),
        "s.yml",
        &config(&fake.uri(), "    webhook_endpoints: false\n"),
    );
    let (code, out, err) = run_cli(
        &["probe", "--config.file", cfg.to_str().unwrap()],
        &[("PULSE_TEST_STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("webhook_endpoints"), "{out}");
}

#[tokio::test]
async fn connected_accounts_are_read_with_stripe_account_and_labelled() {
    let fake = FakeStripe::start(&["acct_1Connected"]).await;
    fake.add_event("", now() - HOUR, "invoice.paid", 0);
    fake.add_event("acct_1Connected", now() - 2 * HOUR, "invoice.paid", 1);
    fake.add_event("acct_1Connected", now() - 100, "invoice.paid", 0);
    fake.set_endpoints(
        "acct_1Connected",
        vec![endpoint_json("we_c", "https://c.example.com/h", "enabled")],
    );
    let e = start(&fake, "    stripe_accounts: [acct_1Connected]\n");
    let m = e
        .wait_for("both accounts", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[("account", "acct_1Connected")])
                .is_some()
                && m.get("pulse_stripe_events", &[("account", "")]).is_some()
                && m.get(
                    "pulse_stripe_webhook_endpoints",
                    &[("account", "acct_1Connected"), ("status", "enabled")],
                )
                .is_some()
        })
        .await;
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_stripe_events", &[("account", "acct_1Connected")], Some(2.0)),
        ("pulse_stripe_events", &[("account", "")], Some(1.0)),
        ("pulse_stripe_stuck_events", &[("account", "acct_1Connected"), ("event_type", "invoice.paid")], Some(1.0)),
        ("pulse_stripe_stuck_events", &[("account", "")], None),
        ("pulse_check_success", &[("check", "undelivered_events@acct_1Connected")], Some(1.0)),
    ];
    assert_samples(&m, samples);
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.account.as_deref() == Some("acct_1Connected")
            && r.path == "/v1/webhook_endpoints"));
    assert!(fake
        .requests()
        .iter()
        .filter(|r| r.param("limit") == Some("1"))
        .all(|r| r.account.is_none()));
}

#[tokio::test]
async fn a_429_is_waited_out_then_the_run_succeeds() {
    let fake = FakeStripe::start(&[]).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&fake.server)
        .await;
    let (code, out) = probe_once(&fake, "");
    assert_eq!(code, 0, "every run succeeds after waiting: {out}");
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
    fake.server.verify().await;
}

#[tokio::test]
async fn a_long_retry_after_stops_requests_instead_of_hammering() {
    let fake = FakeStripe::start(&[]).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "120")
                .set_body_json(json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}})),
        )
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let e = start(&fake, "");
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
    let first = fake.server.received_requests().await.unwrap().len();
    assert!(
        (1..=3).contains(&first),
        "{first} requests before the back-off"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = fake.server.received_requests().await.unwrap().len();
    assert_eq!(
        later, first,
        "after a 429 with Retry-After: 120, no run may call Stripe again"
    );
}

#[tokio::test]
async fn a_bad_key_is_auth_and_server_errors_are_upstream() {
    let fake = FakeStripe::start(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        ))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let e = Exporter::start_with(
        &config(&fake.uri(), ""),
        &[],
        &[("PULSE_TEST_STRIPE_KEY", "rk_test_wrongkey_77")],
    );
    let m = e
        .wait_for("failures", Duration::from_secs(10), |m| {
            m.get(
                "pulse_source_probe_failures_total",
                &[("source", "stripe"), ("reason", "auth")],
            )
            .is_some()
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "webhook_endpoints"), ("reason", "upstream")],
                )
                .is_some()
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "undelivered_events"), ("reason", "auth")],
                )
                .is_some()
        })
        .await;
    assert_eq!(m.get("pulse_source_up", &[("source", "stripe")]), Some(0.0));
    assert!(
        e.logs().contains("the API key is invalid or revoked"),
        "{}",
        e.logs()
    );
    assert!(!e.logs().contains("rk_test_wrongkey_77"));
}

/// Runs `probe` once on a config for `fake` (timeouts long enough for two back-offs);
/// returns (exit code, stdout and stderr).
fn probe_once(fake: &FakeStripe, extra: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(&fake.uri(), extra)
        .replace(
            "health_interval: 1s, health_timeout: 800ms",
            "health_interval: 10s, health_timeout: 5s",
        )
        .replace(
            "interval: 1s\n    timeout: 900ms",
            "interval: 10s\n    timeout: 5s",
        );
    let cfg = write_temp(dir.path(), "stripe.yml", &text);
    let (code, out, err) = run_cli(
        &["probe", "--config.file", cfg.to_str().unwrap()],
        &[("PULSE_TEST_STRIPE_KEY", STRIPE_KEY)],
    );
    (code, format!("{out}{err}"))
}

/// Runs `probe` once, which must fail; returns the line of `check`.
fn failing_line(fake: &FakeStripe, check: &str) -> String {
    let (code, out) = probe_once(fake, "");
    assert_eq!(code, 1, "{out}");
    out.lines()
        .find(|l| l.contains(check))
        .unwrap_or_else(|| panic!("no {check} in {out}"))
        .to_owned()
}

#[tokio::test]
async fn a_configured_stripe_version_is_sent() {
    let fake = FakeStripe::start(&[]).await;
    fake.expect_version("2025-03-31.basil");
    let (code, out) = probe_once(&fake, "    stripe_version: 2025-03-31.basil\n");
    assert_eq!(
        code, 0,
        "every request carried the configured version: {out}"
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.version.as_deref() == Some("2025-03-31.basil")));
}

#[tokio::test]
async fn old_style_400_rate_limits_and_429s_without_retry_after_are_backed_off() {
    let fake = FakeStripe::start(&[]).await;
    // API versions before 2015-09-08 answer rate limits with 400 and code rate_limit.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests hit the API too quickly."}})))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&fake.server)
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
        .mount(&fake.server)
        .await;
    let (code, out) = probe_once(&fake, "");
    assert_eq!(code, 0, "both were retried after a back-off: {out}");
    fake.server.verify().await;
}

#[tokio::test]
async fn stripe_should_retry_decides_whether_an_error_is_tried_again() {
    let fake = FakeStripe::start(&[]).await;
    // A 503 Stripe says to retry: the run goes on.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("stripe-should-retry", "true")
                .set_body_json(json!({"error": {"type": "api_error", "message": "Stripe is briefly unavailable."}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&fake.server)
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
        .mount(&fake.server)
        .await;
    let (code, out) = probe_once(&fake, "");
    assert_eq!(code, 1, "{out}");
    let line = |check: &str| {
        out.lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check} in {out}"))
            .to_owned()
    };
    assert!(line("undelivered_events").contains("ok"), "{out}");
    assert!(line("webhook_endpoints").contains("rate_limited"), "{out}");
    let endpoint_calls = fake
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/webhook_endpoints")
        .count();
    assert_eq!(endpoint_calls, 1, "the check, once: {out}");
    fake.server.verify().await;
}

#[tokio::test]
async fn a_200_that_is_not_a_list_or_not_events_is_a_decode_failure_not_zero_events() {
    for body in [
        json!({"data": []}),
        json!({"object": "list", "url": "/v1/events", "has_more": false, "data": [{"id": "evt_1", "object": "event", "created": "yesterday", "type": "x", "pending_webhooks": 0}]}),
    ] {
        let fake = FakeStripe::start(&[]).await;
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .and(wiremock::matchers::query_param("limit", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .with_priority(1)
            .mount(&fake.server)
            .await;
        let line = failing_line(&fake, "undelivered_events");
        assert!(line.contains("decode"), "{line}");
    }
}

/// Sums a Stripe family over its event types for the platform account.
fn abandoned(m: &Scrape) -> f64 {
    total(m, "pulse_stripe_abandoned_events")
}

#[tokio::test]
async fn an_event_stripe_gave_up_on_is_abandoned_and_stays_until_resent_or_acknowledged() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..50 {
        fake.add_event("", t - 100 - i * 3000, "charge.succeeded", 0);
    }
    // Given up before the exporter started and older than its window: only the first
    // re-check, which covers Stripe's 30 days, can find them.
    let gone = fake.add_event("", t - 80 * HOUR, "invoice.paid", 1);
    let older = fake.add_event("", t - 10 * 24 * HOUR, "customer.subscription.updated", 1);
    // Stuck, and five seconds from the end of Stripe's retries (and of the window).
    fake.add_event("", t - 72 * HOUR + 5, "invoice.paid", 1);
    let e = start(&fake, "");
    let m = e
        .wait_for("the first run", Duration::from_secs(15), |m| {
            m.get(
                "pulse_stripe_listing_truncated",
                &[("listing", "undelivered_events")],
            ) == Some(0.0)
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_stripe_abandoned_events",
            &[("event_type", "invoice.paid")]
        ),
        Some(1.0),
        "{}",
        m.text
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_stripe_abandoned_events", &[("event_type", "customer.subscription.updated")], Some(1.0)),
        ("pulse_stripe_oldest_abandoned_event_timestamp_seconds", &[("source", "stripe"), ("account", "")], Some((t - 10 * 24 * HOUR) as f64)),
    ];
    assert_samples(&m, samples);
    assert_eq!(total(&m, "pulse_stripe_stuck_events"), 1.0);

    // Stripe's retries end: the stuck event is abandoned, leaves the window, and stays.
    let m = e
        .wait_for("three abandoned", Duration::from_secs(20), |m| {
            abandoned(m) == 3.0
        })
        .await;
    assert_eq!(total(&m, "pulse_stripe_stuck_events"), 0.0, "{}", m.text);
    assert_eq!(total(&m, "pulse_stripe_undelivered_events"), 0.0);
    let m = runs_later(&e, &fake, 3).await;
    assert_eq!(abandoned(&m), 3.0, "never dropped silently: {}", m.text);

    // Resent from the Dashboard and delivered: it leaves.
    fake.deliver(&gone);
    e.wait_for("a resent event leaves", Duration::from_secs(15), |m| {
        abandoned(m) == 2.0
    })
    .await;

    // Acknowledged in the config: by id, then everything up to now.
    e.write_config(&config(
        &fake.uri(),
        &format!("    acknowledged_events: [{older}]\n"),
    ));
    assert!(e.reload().await.status().is_success());
    let m = e
        .wait_for("one acknowledged", Duration::from_secs(15), |m| {
            abandoned(m) == 1.0
        })
        .await;
    assert_eq!(
        m.get("pulse_stripe_oldest_abandoned_event_timestamp_seconds", &[]),
        Some((t - 72 * HOUR + 5) as f64)
    );
    let until = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    e.write_config(&config(
        &fake.uri(),
        &format!("    acknowledged_before: {until}\n"),
    ));
    assert!(e.reload().await.status().is_success());
    let m = e
        .wait_for("all acknowledged", Duration::from_secs(15), |m| {
            m.get("pulse_stripe_events", &[]).is_some() && abandoned(m) == 0.0
        })
        .await;
    assert_eq!(
        m.get("pulse_stripe_oldest_abandoned_event_timestamp_seconds", &[]),
        None
    );
}

#[tokio::test]
async fn a_burst_larger_than_max_pages_in_one_minute_is_eventually_counted_exactly() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..100 {
        fake.add_event("", t - HOUR - i * 60, "charge.succeeded", 0);
    }
    // 700 events in one minute before the start, three times the 200 a listing may read.
    for i in 0..700 {
        fake.add_event("", t - 300 + i % 60, "invoice.paid", 0);
    }
    let e = start(&fake, "    max_pages: 2\n");
    e.wait_for("a first run", Duration::from_secs(15), |m| {
        m.get("pulse_stripe_events", &[]).is_some()
    })
    .await;
    // Three bursts of 450 in the same second while it runs.
    for _ in 0..3 {
        let second = now();
        for _ in 0..450 {
            fake.add_event("", second, "payment_intent.succeeded", 0);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    read_whole(&e, "every event counted", 2150.0).await;
    // Never more than two pages a listing: a run is at most three listings.
    for run in fake.events_runs("") {
        assert!(run.len() <= 6, "{run:?}");
    }
    // It stays exact while the bursts settle.
    let m = runs_later(&e, &fake, 3).await;
    assert_eq!(total(&m, "pulse_stripe_events"), 2150.0, "{}", m.text);
}

#[tokio::test]
async fn with_one_page_a_listing_a_burst_of_two_and_a_half_pages_is_walked_past() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..30 {
        fake.add_event("", t - HOUR - i * 60, "charge.succeeded", 0);
    }
    let e = start(&fake, "    max_pages: 1\n");
    e.wait_for("the window read", Duration::from_secs(15), |m| {
        m.get("pulse_stripe_listing_truncated", &[("listing", "events")]) == Some(0.0)
    })
    .await;
    // 250 events newer than the cursor, in one second: two and a half pages.
    let second = now();
    for _ in 0..250 {
        fake.add_event("", second, "payment_intent.succeeded", 0);
    }
    read_whole(&e, "the burst counted", 280.0).await;
    for run in fake.events_runs("") {
        assert!(run.len() <= 3, "one page a listing: {run:?}");
    }
    // A second burst while the first is less than a minute old: no event of either is
    // settled, so the walk goes by time and must still get past its first page.
    let second = now();
    for _ in 0..250 {
        fake.add_event("", second, "invoice.paid", 0);
    }
    read_whole(&e, "the second burst counted", 530.0).await;
}

#[tokio::test]
async fn with_one_page_a_listing_a_first_window_of_fresh_events_is_read_whole() {
    let fake = FakeStripe::start(&[]).await;
    let second = now();
    for _ in 0..250 {
        fake.add_event("", second, "payment_intent.succeeded", 0);
    }
    let e = start(&fake, "    max_pages: 1\n");
    read_whole(&e, "the burst counted", 250.0).await;
}

#[tokio::test]
async fn quiet_runs_after_a_burst_cost_one_request_and_one_more_while_an_event_is_undelivered() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..50 {
        fake.add_event("", t - 2 * HOUR - i * 600, "charge.succeeded", 0);
    }
    // A burst of 250 two minutes ago, one of them not delivered yet.
    let mut newest = (0, String::new());
    let mut undelivered = String::new();
    for i in 0..250 {
        let created = t - 180 + i % 60;
        let id = fake.add_event("", created, "invoice.paid", u64::from(i == 7));
        if i == 7 {
            undelivered = id.clone();
        }
        newest = newest.max((created, id));
    }
    let newest = newest.1;
    let e = start(&fake, "");
    let m = runs_later(&e, &fake, 4).await;
    assert_eq!(total(&m, "pulse_stripe_events"), 300.0);
    let runs = fake.events_runs("");
    assert!(
        runs[0].len() >= 4,
        "the first run reads the window: {:?}",
        runs[0]
    );
    for run in &runs[1..runs.len() - 1] {
        let asked: Vec<(Option<&str>, Option<&str>)> = run
            .iter()
            .map(|r| (r.param("ending_before"), r.param("delivery_success")))
            .collect();
        assert_eq!(
            asked,
            [(Some(newest.as_str()), None), (None, Some("false"))],
            "after the window is read: newer than the newest event, and the re-check"
        );
    }
    // Delivered: one request a run.
    fake.deliver(&undelivered);
    let before = fake.events_runs("").len();
    let m = runs_later(&e, &fake, 3).await;
    assert_eq!(total(&m, "pulse_stripe_undelivered_events"), 0.0);
    let runs = fake.events_runs("");
    for run in &runs[before + 1..runs.len() - 1] {
        assert_eq!(run.len(), 1, "{run:?}");
    }
}

#[tokio::test]
async fn an_empty_page_that_says_more_follow_fails_with_its_own_reason() {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..150 {
        fake.add_event("", t - 100 - i * 60, "charge.succeeded", 0);
    }
    // The second page of a listing comes back empty, yet says more follow.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(|r: &wiremock::Request| r.url.query_pairs().any(|(k, _)| k == "starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "url": "/v1/events", "has_more": true, "data": []}),
        ))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let line = failing_line(&fake, "undelivered_events");
    assert!(line.contains("inconsistent"), "{line}");
    assert!(line.contains("empty page"), "{line}");
}
