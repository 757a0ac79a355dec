//! Stripe source (reqwest): whether webhook deliveries are stuck, and whether the webhook
//! endpoints that receive them are there and enabled, for the platform account and any
//! connected accounts.
//!
//! A restricted key with read access to Events is enough; the endpoints check also needs
//! Webhook Endpoints (`webhook_endpoints: false` turns it off), and connected accounts need
//! Connect permissions. The health probe reads one event: the least the checks need.
//! Events are read incrementally: [`event_window`] remembers them between runs and plans each
//! run's listings, [`listing`] holds what a listing asks and returns, [`events`] is the check
//! that sends them. [`api`] holds Stripe's conventions (pinned version, retries, rate limits,
//! list pages, permission errors); [`endpoints`] the endpoint listing; `metrics` the metric
//! declarations; `source` the connection and the health probe.

pub mod api;
pub mod endpoints;
pub mod event_window;
pub mod events;
pub mod listing;
mod metrics;
mod source;

use std::time::Duration;

use serde::Deserialize;

use super::{EventObjective, Kind, Parsed};
use crate::config_core::objective::Objective;
use crate::config_core::parse::builtin;
use crate::config_core::switch::Switch;
use crate::config_core::validate::in_range;
use crate::config_core::{CheckConfig, CheckSpec, ConfigError, Dur};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, TlsEndpoint};
pub use metrics::METRICS;
use metrics::{ABANDONED, ENDPOINTS, EVENTS, STUCK, UNDELIVERED};
pub use source::StripeSource;

/// Default interval of Stripe checks: the API is rate limited and webhook failures are slow.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Connection settings of a `kind: stripe` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret or restricted key (`rk_…` with read access to Events, and to Webhook Endpoints
    /// unless `webhook_endpoints` is false).
    pub api_key: String,
    /// API base URL (default `https://api.stripe.com`).
    #[serde(default = "default_base")]
    pub api_base: String,
    /// The window of events watched (default 72h, the time Stripe retries a delivery; Stripe
    /// keeps events 30 days).
    #[serde(default = "default_lookback")]
    pub lookback: Dur,
    /// An event not delivered to every endpoint for longer than this is stuck (default 15m;
    /// Stripe retries with growing delays for up to three days).
    #[serde(default = "default_stuck_after")]
    pub stuck_after: Dur,
    /// Most pages of 100 read per listing and run (default 20, at most 1,000).
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// API version sent as `Stripe-Version` (default `2024-06-20`), so responses keep the
    /// shape this exporter reads whatever the account's default version is.
    #[serde(default = "default_stripe_version")]
    pub stripe_version: String,
    /// Connected accounts (`acct_…`) watched besides the platform account, each sent as
    /// `Stripe-Account` and labelled `account` (the platform's own samples have `account=""`).
    #[serde(default)]
    pub stripe_accounts: Vec<String>,
    /// Whether to list webhook endpoints (default true). Turn it off for a key without
    /// Webhook Endpoints access.
    #[serde(default = "default_true")]
    pub webhook_endpoints: bool,
    /// How long after an event Stripe stops retrying its delivery (default 72h, as in live
    /// mode; a sandbox retries three times over a few hours). An event still undelivered past
    /// it is abandoned: counted in `pulse_stripe_abandoned_events` instead of the stuck count,
    /// until it is delivered (resent), acknowledged, or 30 days old.
    #[serde(default = "default_retry_horizon")]
    pub retry_horizon: Dur,
    /// Abandoned events created at or before this time (RFC 3339, such as
    /// `2026-11-24T09:00:00Z`) are acknowledged: dealt with, no longer counted.
    #[serde(default)]
    pub acknowledged_before: Option<String>,
    /// Abandoned events acknowledged one by one (`evt_…`): dealt with, no longer counted.
    #[serde(default)]
    pub acknowledged_events: Vec<String>,
    /// The objective on the events themselves: the share that reach every webhook endpoint
    /// before Stripe gives up (default 99.9 % over 28 days), `{ target: 99.99 }` to change
    /// it, `false` for none. Rules from `pulse-exporter rules` (docs/objectives.md).
    #[serde(default)]
    pub delivery_objective: Switch<Objective>,
}

/// The delivery objective's target when the config names none: one event in a thousand may
/// be given up on (each is an order, a payment or a cancellation the platform never heard of).
pub const DEFAULT_DELIVERY_TARGET: f64 = 99.9;

/// The `Stripe-Version` sent when the config names none: a version whose Events and Webhook
/// Endpoints fields (`pending_webhooks`, `status`, `created`, list `has_more`) are the ones read.
pub const DEFAULT_STRIPE_VERSION: &str = "2024-06-20";

/// Connected accounts one source watches at most (each adds two checks).
const MAX_ACCOUNTS: usize = 100;

/// Abandoned events acknowledged by id at most.
const MAX_ACKNOWLEDGED: usize = 10_000;

fn default_stripe_version() -> String {
    DEFAULT_STRIPE_VERSION.to_owned()
}

fn default_base() -> String {
    "https://api.stripe.com".to_owned()
}

fn default_lookback() -> Dur {
    Dur(Duration::from_secs(72 * 3600))
}

fn default_stuck_after() -> Dur {
    Dur(Duration::from_secs(15 * 60))
}

fn default_retry_horizon() -> Dur {
    Dur(Duration::from_secs(72 * 3600))
}

fn default_max_pages() -> u32 {
    20
}

fn default_true() -> bool {
    true
}

/// Which built-in check a Stripe source runs, and for which account (`None`: the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeCheck {
    /// `GET /v1/webhook_endpoints`.
    WebhookEndpoints(Option<String>),
    /// `GET /v1/events`, read incrementally over the lookback window.
    Events(Option<String>),
}

impl CheckSpec for StripeCheck {
    fn series(
        &self,
        _common: &crate::config_core::CheckCommon,
    ) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::display::PanelKind;
        use crate::config_core::shape::{
            Builtin, Panel, PanelExpr, PanelQuery, Pin, Series, Shape,
        };
        let (metric, panel, account) = match self {
            StripeCheck::WebhookEndpoints(a) => (
                ENDPOINTS.name,
                Panel {
                    key: "endpoints",
                    title: "Webhook endpoints".to_owned(),
                    description: "Webhook endpoints by status: a disabled endpoint receives no \
                        event (PulseStripeWebhookEndpointDisabled).",
                    unit: "none",
                    kind: PanelKind::Stat,
                    queries: vec![PanelQuery::metric(ENDPOINTS.name, "{{status}}")],
                    outcome: false,
                },
                a,
            ),
            StripeCheck::Events(a) => {
                // Absent when there are none: 0 then, while the event count shows the check ran.
                let count = |m: &Metric, legend| PanelQuery {
                    expr: PanelExpr::SumOrZero {
                        metric: m.name,
                        present: EVENTS.name,
                    },
                    legend,
                    unit: None,
                };
                let panel = Panel {
                    key: "events",
                    title: "Undelivered, stuck and abandoned events".to_owned(),
                    description: "Events Stripe still retries that are not yet delivered to \
                        every endpoint, those undelivered for longer than stuck_after \
                        (PulseStripeWebhookDeliveriesStuck), and those Stripe gave up on, shown \
                        until resent or acknowledged (PulseStripeWebhookEventsAbandoned).",
                    unit: "short",
                    kind: PanelKind::Stat,
                    queries: vec![
                        count(&UNDELIVERED, "undelivered"),
                        count(&STUCK, "stuck"),
                        count(&ABANDONED, "abandoned"),
                    ],
                    outcome: false,
                };
                (EVENTS.name, panel, a)
            }
        };
        let set = Builtin {
            panels: vec![panel],
            also_publishes: &[],
        };
        let account = Pin::exact("account", account.as_deref().unwrap_or_default());
        vec![Series::new(metric, Vec::new(), Shape::Builtin(set)).pinned(account)]
    }
}

/// `kind: stripe`.
pub struct Stripe;

impl Kind for Stripe {
    const NAME: &'static str = "stripe";
    const TITLE: &'static str = "Stripe";
    const EXAMPLE: &'static str = include_str!("example.yml");
    const METRICS_INTRO: &'static str = "Every Stripe metric has an `account` label: the connected account (`acct_…`, from \
        `stripe_accounts`) or empty for the platform account itself. Events are read incrementally \
        (see docs/configuration.md, Stripe): after a restart the window is listed again, at most \
        `max_pages` pages a run, and `pulse_stripe_listing_truncated{listing=\"events\"}` is 1 until it \
        has been read whole. The values change only when the check runs (every 5 min by default); a \
        failed run leaves no Stripe sample until the next one that succeeds.\n\n\
        An undelivered event goes through three states, and is in exactly one of these metrics at a \
        time: **retried** (`pulse_stripe_undelivered_events`, from its creation until Stripe gives up), \
        of which **stuck** once older than `stuck_after` (`pulse_stripe_stuck_events`), then \
        **abandoned** (`pulse_stripe_abandoned_events`) once Stripe gives up: past `retry_horizon` \
        (72 h), or earlier when an endpoint that was enabled when the event was created is seen \
        disabled or deleted. It leaves all of them when it is delivered (by a retry or a resend), and \
        an abandoned one also when it is acknowledged in the config or is 30 days old.";
    const DEFAULT_INTERVAL: Option<Duration> = Some(DEFAULT_INTERVAL);
    type Settings = StripeConfig;
    type Check = StripeCheck;
    type Source = StripeSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its checks are built in: events (and endpoints) for the platform, then the same for
    /// each connected account, named `…@acct_…`.
    fn builtin_checks(settings: &StripeConfig, path: &str) -> Vec<CheckConfig<Self::Check>> {
        let accounts = std::iter::once(None).chain(settings.stripe_accounts.iter().map(Some));
        let mut checks = Vec::new();
        for account in accounts {
            let suffix = account.map(|a| format!("@{a}")).unwrap_or_default();
            if settings.webhook_endpoints {
                checks.push(builtin(
                    path,
                    format!("webhook_endpoints{suffix}"),
                    StripeCheck::WebhookEndpoints(account.cloned()),
                ));
            }
            checks.push(builtin(
                path,
                format!("undelivered_events{suffix}"),
                StripeCheck::Events(account.cloned()),
            ));
        }
        checks
    }

    fn event_objective(settings: &StripeConfig) -> Option<EventObjective> {
        let o = settings.delivery_objective.on()?;
        Some(EventObjective {
            name: "delivery",
            objective: Objective {
                target: Some(o.target.unwrap_or(DEFAULT_DELIVERY_TARGET)),
                window: o.window,
            },
            bad: &metrics::EVENTS_ABANDONED,
            total: &metrics::EVENTS_READ,
            summed: &["event_type"],
            what: "its events reach every webhook endpoint before Stripe gives up",
            failing: "of its events are given up on",
        })
    }

    fn validate(parsed: &Parsed<Self>, p: &str, errors: &mut Vec<ConfigError>) {
        let c = &parsed.settings;
        if let Some(o) = c.delivery_objective.on() {
            o.validate(&format!("{p}.delivery_objective"), errors);
        }
        validate_api(c, p, errors);
        validate_windows(c, p, errors);
        validate_acknowledged(c, p, errors);
        validate_accounts(c, p, errors);
    }

    fn display_endpoint(settings: &StripeConfig) -> String {
        crate::secrets::display_url(&settings.api_base)
    }

    fn tls_endpoints(settings: &StripeConfig) -> Endpoints {
        Endpoints::fixed([TlsEndpoint::of_url(&settings.api_base, &["https"], 443)])
    }
}

/// The key, the base URL, the page bound and the pinned API version.
fn validate_api(c: &StripeConfig, p: &str, errors: &mut Vec<ConfigError>) {
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
    if !is_api_version(&c.stripe_version) {
        errors.push(ConfigError::new(
            format!("{p}.stripe_version"),
            format!("expected a Stripe API version such as {DEFAULT_STRIPE_VERSION} or 2025-03-31.basil"),
        ));
    }
}

/// Whether `v` is a Stripe API version: a date, optionally with a release name
/// (2024-06-20, 2025-03-31.basil).
fn is_api_version(v: &str) -> bool {
    let b = v.as_bytes();
    let dated = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
        && (b.len() == 10 || b[10] == b'.');
    dated && v.is_ascii() && !v.contains(char::is_whitespace)
}

/// The time windows, within Stripe's 30 days of events: lookback, then stuck_after, then
/// retry_horizon, each longer than the one before.
fn validate_windows(c: &StripeConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if c.lookback.0 > Duration::from_secs(30 * 86400) {
        errors.push(ConfigError::new(
            format!("{p}.lookback"),
            "Stripe keeps events for 30 days: use at most 30d",
        ));
    }
    if c.stuck_after.0 < Duration::from_secs(60) || c.stuck_after.0 >= c.lookback.0 {
        errors.push(ConfigError::new(
            format!("{p}.stuck_after"),
            format!(
                "must be at least 1m and shorter than lookback ({}): Stripe's first retries come within minutes",
                humantime::format_duration(c.lookback.0)
            ),
        ));
    }
    if c.retry_horizon.0 <= c.stuck_after.0
        || c.retry_horizon.0 > Duration::from_secs(api::RETENTION as u64)
    {
        errors.push(ConfigError::new(
            format!("{p}.retry_horizon"),
            format!(
                "must be longer than stuck_after ({}) and at most 30d: Stripe retries for 72h in live mode, a few hours in a sandbox",
                humantime::format_duration(c.stuck_after.0)
            ),
        ));
    }
}

/// Events acknowledged by time or by id.
fn validate_acknowledged(c: &StripeConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if let Some(t) = &c.acknowledged_before {
        if humantime::parse_rfc3339_weak(t).is_err() {
            errors.push(ConfigError::new(
                format!("{p}.acknowledged_before"),
                "expected a time such as 2026-11-24T09:00:00Z",
            ));
        }
    }
    if c.acknowledged_events.len() > MAX_ACKNOWLEDGED {
        errors.push(ConfigError::new(
            format!("{p}.acknowledged_events"),
            format!("at most {MAX_ACKNOWLEDGED} events: acknowledge older ones with acknowledged_before"),
        ));
    }
    for (i, id) in c.acknowledged_events.iter().enumerate() {
        let well_formed = id.strip_prefix("evt_").is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 255
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !well_formed {
            errors.push(ConfigError::new(
                format!("{p}.acknowledged_events[{i}]"),
                "expected an event id such as evt_1PJBLEBBLEfVcjD9",
            ));
        }
    }
}

/// Connected accounts: well-formed ids, each once, a bounded number.
fn validate_accounts(c: &StripeConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if c.stripe_accounts.len() > MAX_ACCOUNTS {
        errors.push(ConfigError::new(
            format!("{p}.stripe_accounts"),
            format!("at most {MAX_ACCOUNTS} accounts per source: split them over several sources"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in c.stripe_accounts.iter().enumerate() {
        let well_formed = a.strip_prefix("acct_").is_some_and(|id| {
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !well_formed {
            errors.push(ConfigError::new(
                format!("{p}.stripe_accounts[{i}]"),
                "expected a connected account id such as acct_1PJBLEBBLEfV",
            ));
        } else if !seen.insert(a) {
            errors.push(ConfigError::new(
                format!("{p}.stripe_accounts[{i}]"),
                format!("{a} is listed twice"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{assert_reports, errors_of};

    #[test]
    fn api_versions_are_dates_with_an_optional_release_name() {
        for good in ["2024-06-20", "2025-03-31.basil"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in [
            "",
            "2024-6-20",
            "2024/06/20",
            "2024-06-20 basil",
            "2024-06-20basil",
            "latest",
            "2024-06-2é",
        ] {
            assert!(!is_api_version(bad), "{bad}");
        }
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
    fn the_retry_horizon_and_acknowledgements_are_checked() {
        assert_reports(
            "sources:\n  - { name: s, kind: stripe, api_key: rk_test_x, stuck_after: 2h, retry_horizon: 1h, acknowledged_before: yesterday, acknowledged_events: [evt_1Ab, 'evt_1 x', ch_1] }",
            &[
                "sources[0].retry_horizon: must be longer than stuck_after (2h) and at most 30d",
                "sources[0].acknowledged_before: expected a time such as 2026-11-24T09:00:00Z",
                "sources[0].acknowledged_events[1]: expected an event id such as evt_",
                "sources[0].acknowledged_events[2]: expected an event id",
            ],
        );
        assert!(errors_of(
            "sources:\n  - { name: s, kind: stripe, api_key: rk_test_x, retry_horizon: 31d, lookback: 30d }"
        )
        .contains("retry_horizon"));
        let good = "sources:\n  - { name: s, kind: stripe, api_key: rk_test_x, retry_horizon: 6h, acknowledged_before: '2026-11-24T09:00:00Z', acknowledged_events: [evt_1PJBLEBBLEfVcjD9] }";
        assert_eq!(errors_of(good), "");
        let settings: StripeConfig = serde_yaml::from_str(
            "{ api_key: rk_test_x, retry_horizon: 6h, acknowledged_before: '2026-11-24T09:00:00Z', acknowledged_events: [evt_1PJBLEBBLEfVcjD9] }",
        )
        .unwrap();
        let source = <StripeSource as crate::sources::Connect<_>>::connect(&settings, "s").unwrap();
        assert_eq!(source.retry_horizon, Duration::from_secs(6 * 3600));
        assert_eq!(source.acknowledged.before, Some(1_795_510_800));
        assert!(source.acknowledged.events.contains("evt_1PJBLEBBLEfVcjD9"));
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

    #[test]
    fn stuck_after_and_connected_accounts_are_checked() {
        assert_reports(
            "sources:\n  - { name: s, kind: stripe, api_key: k, stuck_after: 30s }",
            &["sources[0].stuck_after: must be at least 1m and shorter than lookback (3days)"],
        );
        assert_reports(
            "sources:\n  - { name: s, kind: stripe, api_key: k, lookback: 1h, stuck_after: 2h }",
            &["sources[0].stuck_after: must be at least 1m and shorter than lookback (1h)"],
        );
        assert_reports(
            "sources:\n  - { name: s, kind: stripe, api_key: k, stripe_accounts: [acct_1A, 'acct_1A', cus_9, 'acct_x y'] }",
            &[
                "sources[0].stripe_accounts[1]: acct_1A is listed twice",
                "sources[0].stripe_accounts[2]: expected a connected account id such as acct_",
                "sources[0].stripe_accounts[3]: expected a connected account id",
            ],
        );
    }

    #[test]
    fn each_connected_account_gets_its_own_checks() {
        let mut errors = Vec::new();
        let rest: serde_yaml::Value = serde_yaml::from_str(
            "{ api_key: k, stripe_accounts: [acct_1A, acct_2B], webhook_endpoints: false }",
        )
        .unwrap();
        let parsed = Stripe::parse(rest, "sources[0]", &mut errors).unwrap();
        assert!(errors.is_empty());
        let names: Vec<_> = parsed
            .checks
            .iter()
            .map(|c| c.common.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "undelivered_events",
                "undelivered_events@acct_1A",
                "undelivered_events@acct_2B"
            ]
        );
        assert_eq!(
            parsed.checks[2].spec,
            StripeCheck::Events(Some("acct_2B".into()))
        );
    }
}
