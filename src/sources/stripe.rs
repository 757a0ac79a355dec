//! Stripe source (reqwest): webhook endpoints enabled or not, and events Stripe could not
//! deliver to them, counted by type over a lookback window.
//!
//! A restricted key with read access to Events and Webhook Endpoints is enough. Listings page
//! with `limit=100` and `starting_after`, at most `max_pages` pages per listing and run; when
//! the cap is hit the result says it was truncated. A 429 is honoured: the source waits for
//! `Retry-After` (or backs off exponentially) and makes no request until then, failing runs
//! that cannot wait with reason `rate_limited` instead of hammering the API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value;
use tokio::time::Instant;

use super::{remaining, Kind, Parsed, Probe, ProbeFuture, Source};
use crate::config::parse::{builtin, parse_at};
use crate::config::validate::in_range;
use crate::config::{CheckConfig, CheckPlan, CheckSpec, ConfigError, Dur};
use crate::error::{ProbeError, Reason};
use crate::reference::{schema, KindReference};
use crate::sample::{Metric, Output};

/// Default interval of Stripe checks: the API is rate limited and webhook failures are slow.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Connection settings of a `kind: stripe` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret or restricted key (`rk_…` with read access to Events and Webhook Endpoints).
    pub api_key: String,
    /// API base URL (default `https://api.stripe.com`).
    #[serde(default = "default_base")]
    pub api_base: String,
    /// How far back undelivered events are counted (default 72h; Stripe keeps 30 days).
    #[serde(default = "default_lookback")]
    pub lookback: Dur,
    /// Most pages of 100 read per listing and run (default 20, at most 1,000).
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// API version sent as `Stripe-Version` (default `2024-06-20`), so responses keep the
    /// shape this exporter reads whatever the account's default version is.
    #[serde(default = "default_stripe_version")]
    pub stripe_version: String,
}

/// The `Stripe-Version` sent when the config names none: a version whose Events and Webhook
/// Endpoints fields (`pending_webhooks`, `status`, `created`, list `has_more`) are the ones read.
pub const DEFAULT_STRIPE_VERSION: &str = "2024-06-20";

fn default_stripe_version() -> String {
    DEFAULT_STRIPE_VERSION.to_owned()
}

fn default_base() -> String {
    "https://api.stripe.com".to_owned()
}

fn default_lookback() -> Dur {
    Dur(Duration::from_secs(72 * 3600))
}

fn default_max_pages() -> u32 {
    20
}

/// Which built-in check a Stripe source runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeCheck {
    /// `GET /v1/webhook_endpoints`.
    WebhookEndpoints,
    /// `GET /v1/events`, undelivered and all, over the lookback window.
    Events,
}

impl CheckSpec for StripeCheck {}

/// The built-in metrics of a Stripe source.
pub const METRICS: &[Metric] = &[
    ENDPOINT_ENABLED,
    UNDELIVERED,
    OLDEST_UNDELIVERED,
    EVENTS,
    LOOKBACK,
    TRUNCATED,
];

const ENDPOINT_ENABLED: Metric = Metric::gauge(
    "pulse_stripe_webhook_endpoint_enabled",
    "Whether the webhook endpoint is enabled (1) or disabled (0).",
    &["source", "endpoint", "host"],
);
const UNDELIVERED: Metric = Metric::gauge(
    "pulse_stripe_undelivered_events",
    "Events in the lookback window that Stripe has not delivered to a webhook endpoint yet, by type.",
    &["source", "event_type"],
);
const OLDEST_UNDELIVERED: Metric = Metric::gauge(
    "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
    "Creation time of the oldest undelivered event in the window.",
    &["source"],
);
const EVENTS: Metric = Metric::gauge(
    "pulse_stripe_events",
    "Events created in the lookback window (undelivered or not).",
    &["source"],
);
const LOOKBACK: Metric = Metric::gauge(
    "pulse_stripe_lookback_seconds",
    "The lookback window the event counts cover.",
    &["source"],
);
const TRUNCATED: Metric = Metric::gauge(
    "pulse_stripe_listing_truncated",
    "Whether the last run stopped at max_pages before the end of the listing (1): counts are then lower bounds.",
    &["source", "listing"],
);

/// `kind: stripe`.
pub struct Stripe;

impl Kind for Stripe {
    const NAME: &'static str = "stripe";
    const DEFAULT_INTERVAL: Option<Duration> = Some(DEFAULT_INTERVAL);
    type Settings = StripeConfig;
    type Check = StripeCheck;
    type Source = StripeSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its two checks are built in.
    fn parse(rest: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Parsed<Self>> {
        let settings: StripeConfig = parse_at(rest, path, errors)?;
        let checks = vec![
            builtin(path, "webhook_endpoints", StripeCheck::WebhookEndpoints),
            builtin(path, "undelivered_events", StripeCheck::Events),
        ];
        Some(Parsed { settings, checks })
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(&parsed.settings, path, errors)
    }

    fn reference() -> KindReference {
        KindReference {
            settings: schema::<StripeConfig>(),
            lists: Vec::new(),
        }
    }

    fn display_endpoint(settings: &StripeConfig) -> String {
        crate::secrets::display_url(&settings.api_base)
    }

    fn connect(settings: &StripeConfig, name: &str) -> Result<StripeSource, String> {
        StripeSource::new(settings, name)
    }
}

/// Records the stripe rules the source at `p` breaks.
fn validate(c: &StripeConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if c.api_key.trim().is_empty() {
        errors.push(ConfigError::new(
            format!("{p}.api_key"),
            "must not be empty: use ${env:STRIPE_API_KEY} or ${file:…}",
        ));
    }
    match url::Url::parse(&c.api_base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => errors.push(ConfigError::new(
            format!("{p}.api_base"),
            "expected an http(s) URL such as https://api.stripe.com",
        )),
    }
    // 1,000 pages are 100,000 events per listing and run, at 25 requests a second.
    in_range(
        &format!("{p}.max_pages"),
        c.max_pages.into(),
        1,
        1000,
        errors,
    );
    // Versions are dates, optionally with a release name: 2024-06-20, 2025-03-31.basil.
    let v = c.stripe_version.as_bytes();
    let dated = v.len() >= 10
        && v[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && (v.len() == 10 || v[10] == b'.');
    if !dated || !c.stripe_version.is_ascii() || c.stripe_version.contains(char::is_whitespace) {
        errors.push(ConfigError::new(
            format!("{p}.stripe_version"),
            format!("expected a Stripe API version such as {DEFAULT_STRIPE_VERSION} or 2025-03-31.basil"),
        ));
    }
    if c.lookback.0 > Duration::from_secs(30 * 86400) {
        errors.push(ConfigError::new(
            format!("{p}.lookback"),
            "Stripe keeps events for 30 days: use at most 30d",
        ));
    }
}

/// The API client of one source, with the back-off it owes Stripe.
struct Api {
    base: url::Url,
    key: String,
    /// Sent as `Stripe-Version`.
    version: String,
    http: reqwest::Client,
    /// No request before this instant (set by a 429).
    backoff_until: Mutex<Option<Instant>>,
}

/// Longest back-off honoured from one Retry-After.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Attempts per request when Stripe answers 429 (or says `Stripe-Should-Retry: true`) and the
/// deadline allows waiting.
const ATTEMPTS: u32 = 3;

impl Api {
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Json, ProbeError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| ProbeError::new(Reason::Query, e.to_string()))?;
        let mut last = ProbeError::new(
            Reason::RateLimited,
            format!("{path}: still rate limited after {ATTEMPTS} attempts"),
        );
        for attempt in 0..ATTEMPTS {
            let wait_until = *self.backoff_until.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = wait_until {
                if until > Instant::now() {
                    if until >= deadline {
                        return Err(ProbeError::new(
                            Reason::RateLimited,
                            format!(
                                "Stripe asked to wait {:.0}s more (HTTP 429): this run is skipped",
                                until
                                    .saturating_duration_since(Instant::now())
                                    .as_secs_f64()
                            ),
                        ));
                    }
                    tokio::time::sleep_until(until).await;
                }
            }
            let resp = self
                .http
                .get(url.clone())
                .bearer_auth(&self.key)
                .header("Stripe-Version", &self.version)
                .query(query)
                .timeout(remaining(deadline).max(Duration::from_millis(1)))
                .send()
                .await
                .map_err(|e| {
                    let reason = if e.is_timeout() {
                        Reason::Timeout
                    } else {
                        Reason::Connect
                    };
                    ProbeError::new(reason, e.to_string())
                })?;
            let status = resp.status();
            if status.is_success() {
                return resp
                    .json::<Json>()
                    .await
                    .map_err(|e| ProbeError::new(Reason::Decode, format!("{path}: {e}")));
            }
            // Stripe's own advice, when it gives one, decides whether to try again.
            let should_retry = resp
                .headers()
                .get("stripe-should-retry")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.eq_ignore_ascii_case("true"));
            // A malformed, negative or absurd Retry-After must not break the source: it
            // falls back to exponential back-off and is capped at MAX_RETRY_AFTER.
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(|v| Duration::try_from_secs_f64(v).ok());
            let body = resp.json::<Json>().await.ok();
            let error = body.as_ref().map(|b| &b["error"]);
            // API versions before 2015-09-08 report rate limits as HTTP 400 `rate_limit`.
            let rate_limited = status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || (status == reqwest::StatusCode::BAD_REQUEST
                    && error.is_some_and(|e| e["code"] == "rate_limit"));
            if should_retry.unwrap_or(rate_limited) {
                let wait = retry_after
                    .unwrap_or_else(|| backoff(attempt))
                    .min(MAX_RETRY_AFTER);
                tracing::debug!(
                    path,
                    status = status.as_u16(),
                    wait = wait.as_secs_f64(),
                    "Stripe asked to retry"
                );
                *self.backoff_until.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Instant::now() + wait);
                last = ProbeError::new(
                    if rate_limited {
                        Reason::RateLimited
                    } else {
                        Reason::Upstream
                    },
                    format!("{path}: HTTP {} after {ATTEMPTS} attempts", status.as_u16()),
                );
                continue;
            }
            let reason = match status.as_u16() {
                _ if rate_limited => Reason::RateLimited,
                401 | 403 => Reason::Auth,
                404 => Reason::NotFound,
                500..=599 => Reason::Upstream,
                _ => Reason::Query,
            };
            let detail = error
                .and_then(|e| e["message"].as_str())
                .unwrap_or_default();
            let hint = if reason == Reason::Auth {
                " (a restricted key needs read access to Events and Webhook Endpoints)"
            } else {
                ""
            };
            return Err(ProbeError::new(
                reason,
                format!("{path}: HTTP {}{hint} {detail}", status.as_u16()),
            ));
        }
        Err(last)
    }

    /// Every item of a listing, at most `max_pages` pages; `true` when the cap cut it short.
    async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: u32,
        deadline: Instant,
    ) -> Result<(Vec<Json>, bool), ProbeError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let mut q = query.to_vec();
            q.push(("limit", "100".to_owned()));
            if let Some(a) = &after {
                q.push(("starting_after", a.clone()));
            }
            let body = self.get(path, &q, deadline).await?;
            let (data, has_more) = list_page(body, path)?;
            let last = data
                .last()
                .and_then(|d| d["id"].as_str())
                .map(str::to_owned);
            items.extend(data);
            match (has_more, last) {
                (true, Some(id)) => after = Some(id),
                _ => return Ok((items, false)),
            }
        }
        Ok((items, true))
    }
}

/// Back-off before retry `attempt` (from 0) when Stripe says when to come back no more:
/// 0.5 s doubling, with jitter (50 to 100 % of it) so that sources sharing an account do not
/// retry in step, as Stripe's client libraries do.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.min(10));
    base.mul_f64(rand::random_range(0.5..=1.0))
}

/// The items and `has_more` of one page of a Stripe list. A 200 that is not a list (no
/// `object: "list"`, `data` array or `has_more` flag) is a `decode` failure, never an empty
/// and complete listing.
fn list_page(mut body: Json, path: &str) -> Result<(Vec<Json>, bool), ProbeError> {
    let malformed = |what: &str| {
        ProbeError::new(
            Reason::Decode,
            format!("{path}: the answer is not a Stripe list ({what})"),
        )
    };
    if body["object"] != "list" {
        return Err(malformed("`object` is not \"list\""));
    }
    let has_more = body["has_more"]
        .as_bool()
        .ok_or_else(|| malformed("no `has_more` flag"))?;
    match body["data"].take() {
        Json::Array(data) => Ok((data, has_more)),
        _ => Err(malformed("no `data` array")),
    }
}

/// A Stripe source.
pub struct StripeSource {
    name: String,
    api: Arc<Api>,
    lookback: Duration,
    max_pages: u32,
}

impl StripeSource {
    /// Creates the source.
    pub fn new(c: &StripeConfig, name: &str) -> Result<Self, String> {
        crate::secrets::register(&c.api_key);
        let mut base = url::Url::parse(&c.api_base).map_err(|e| e.to_string())?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(StripeSource {
            name: name.to_owned(),
            api: Arc::new(Api {
                base,
                key: c.api_key.clone(),
                version: c.stripe_version.clone(),
                http: reqwest::Client::builder()
                    .user_agent(concat!("pulse-exporter/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())?,
                backoff_until: Mutex::new(None),
            }),
            lookback: c.lookback.0,
            max_pages: c.max_pages,
        })
    }
}

impl Source<StripeCheck> for StripeSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(HealthProbe {
            api: self.api.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<StripeCheck>, _plan: &CheckPlan) -> Arc<dyn Probe> {
        Arc::new(CheckProbe {
            source: self.name.clone(),
            api: self.api.clone(),
            lookback: self.lookback,
            max_pages: self.max_pages,
            which: check.spec.clone(),
        })
    }
}

struct HealthProbe {
    api: Arc<Api>,
}

impl Probe for HealthProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            // The cheapest call the documented key permissions allow: reachability and auth.
            self.api
                .get(
                    "v1/webhook_endpoints",
                    &[("limit", "1".to_owned())],
                    deadline,
                )
                .await?;
            Ok(Output::default())
        })
    }
}

struct CheckProbe {
    source: String,
    api: Arc<Api>,
    lookback: Duration,
    max_pages: u32,
    which: StripeCheck,
}

impl CheckProbe {
    async fn endpoints(&self, deadline: Instant) -> Result<Output, ProbeError> {
        let (items, truncated) = self
            .api
            .list("v1/webhook_endpoints", &[], self.max_pages, deadline)
            .await?;
        let mut out = Output::default();
        for e in &items {
            let id = e["id"].as_str().unwrap_or("unknown");
            // The host only: paths and query strings of webhook URLs often carry tokens.
            let host = e["url"]
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            let enabled = e["status"].as_str() == Some("enabled");
            out.add(
                &ENDPOINT_ENABLED,
                &[&self.source, id, &host],
                f64::from(u8::from(enabled)),
            );
        }
        self.truncated(&mut out, "webhook_endpoints", truncated);
        Ok(out)
    }

    fn truncated(&self, out: &mut Output, listing: &str, truncated: bool) {
        out.add(
            &TRUNCATED,
            &[&self.source, listing],
            f64::from(u8::from(truncated)),
        );
    }

    async fn events(&self, deadline: Instant) -> Result<Output, ProbeError> {
        let since = SystemTime::now()
            .checked_sub(self.lookback)
            .unwrap_or(UNIX_EPOCH);
        let gte = since
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let (undelivered, cut_undelivered) = self
            .api
            .list(
                "v1/events",
                &[
                    ("delivery_success", "false".to_owned()),
                    ("created[gte]", gte.clone()),
                ],
                self.max_pages,
                deadline,
            )
            .await?;
        let (all, cut_all) = self
            .api
            .list(
                "v1/events",
                &[("created[gte]", gte)],
                self.max_pages,
                deadline,
            )
            .await?;
        let mut out = Output::default();
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        let mut oldest: Option<i64> = None;
        for e in &undelivered {
            *by_type
                .entry(e["type"].as_str().unwrap_or("unknown"))
                .or_default() += 1;
            if let Some(c) = e["created"].as_i64() {
                oldest = Some(oldest.map_or(c, |o| o.min(c)));
            }
        }
        for (t, n) in by_type {
            out.add(&UNDELIVERED, &[&self.source, t], n as f64);
        }
        if let Some(o) = oldest {
            out.add(&OLDEST_UNDELIVERED, &[&self.source], o as f64);
        }
        out.add(&EVENTS, &[&self.source], all.len() as f64);
        out.add(&LOOKBACK, &[&self.source], self.lookback.as_secs_f64());
        self.truncated(&mut out, "undelivered_events", cut_undelivered);
        self.truncated(&mut out, "events", cut_all);
        Ok(out)
    }
}

impl Probe for CheckProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            match self.which {
                StripeCheck::WebhookEndpoints => self.endpoints(deadline).await,
                StripeCheck::Events => self.events(deadline).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configfile::{assert_reports, errors_of};

    #[test]
    fn a_page_that_is_not_a_list_is_a_decode_failure() {
        let ok = serde_json::json!({"object": "list", "data": [{"id": "evt_1"}], "has_more": true});
        let (data, more) = list_page(ok, "v1/events").unwrap();
        assert_eq!((data.len(), more), (1, true));
        for bad in [
            serde_json::json!({"data": [], "has_more": false}),
            serde_json::json!({"object": "list", "data": []}),
            serde_json::json!({"object": "list", "has_more": false}),
            serde_json::json!({"error": {"message": "x"}}),
        ] {
            let e = list_page(bad, "v1/events").unwrap_err();
            assert_eq!(e.reason(), Reason::Decode);
            assert!(e.to_string().contains("not a Stripe list"), "{e}");
        }
    }

    #[test]
    fn back_off_doubles_with_jitter() {
        for attempt in 0..4 {
            let full = Duration::from_millis(500 << attempt);
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(u32::MAX) <= Duration::from_millis(500 << 10));
    }

    #[test]
    fn the_api_version_is_a_dated_stripe_version() {
        for good in ["2024-06-20", "2025-03-31.basil"] {
            let yaml = format!("sources:\n  - {{ name: s, kind: stripe, api_key: sk_test_x, stripe_version: {good} }}");
            assert!(!errors_of(&yaml).contains("stripe_version"), "{good}");
        }
        assert_reports(
            "sources:\n  - { name: s, kind: stripe, api_key: sk_test_x, stripe_version: latest }",
            &["sources[0].stripe_version: expected a Stripe API version such as 2024-06-20"],
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            "sources:\n  - { name: stripe, kind: stripe, api_key: '', api_base: 'ftp://x', max_pages: 0, lookback: 40d }",
            &[
                "sources[0].api_key: must not be empty: use ${env:STRIPE_API_KEY}",
                "sources[0].api_base: expected an http(s) URL",
                "sources[0].max_pages: must be at least 1",
                "sources[0].lookback: Stripe keeps events for 30 days",
            ],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: stripe, kind: stripe, api_key: rk_test_x }"),
            ""
        );
    }
}
