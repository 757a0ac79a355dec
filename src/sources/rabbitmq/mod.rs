//! RabbitMQ source: queue depth, consumers and dead letters through the management HTTP API,
//! or, without the management plugin, through AMQP passive `queue.declare` (lapin).
//!
//! Queues are filtered by vhost and include/exclude regexes, capped at `max_queues` (the
//! deepest queues are kept; per-vhost totals always count every queue), and dead-letter queues
//! are labelled `dead_letter="true"`: those named by another queue's `x-dead-letter-*`
//! arguments or policy, and those matching `dead_letter_pattern`.
//!
//! Files by concern: `management` (the HTTP API client), `source` (the source and its
//! clients), `selection` (which queues are read), `queues` (the queue check over the API),
//! `amqp` (the AMQP-only check), `health` (the health probe), `quorum` (the cluster's
//! majorities), `broker_metrics` (the broker's Prometheus endpoint), `drain` (drain times),
//! `stream_lag` (streams' consumer lag), `metrics`; this module holds the settings, the check
//! type, validation and the kind.

mod amqp;
mod broker_metrics;
mod drain;
#[cfg(test)]
mod fixture_tests;
mod health;
mod management;
mod metrics;
mod queues;
mod quorum;
mod selection;
mod source;
mod stream_lag;

use regex::Regex;
use serde::Deserialize;

use super::{Kind, Parsed};
use crate::config_core::parse::builtin;
use crate::config_core::validate::in_range;
use crate::config_core::{CheckConfig, CheckSpec, ConfigError};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, TlsEndpoint};

use metrics::{
    QUEUE_ACKED, QUEUE_CONSUMERS, QUEUE_DRAIN, QUEUE_HEAD_TIMESTAMP, QUEUE_INFO, QUEUE_MESSAGES,
    QUEUE_RATE, QUEUE_UTILISATION, STREAM_LAG, VHOST_MESSAGES, VHOST_QUEUES,
};
pub use source::RabbitmqSource;

/// Connection settings and queue selection of a `kind: rabbitmq` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RabbitmqConfig {
    /// Management API base URL, e.g. `http://127.0.0.1:15672`.
    pub management_url: Option<String>,
    /// Management API user.
    pub username: Option<String>,
    /// Management API password (use `${env:…}` or `${file:…}`).
    pub password: Option<String>,
    /// The broker's own Prometheus endpoint (the `rabbitmq_prometheus` plugin), e.g.
    /// `http://127.0.0.1:15692`: read for per-queue consumers and acknowledgements when the
    /// management API's statistics are off (RabbitMQ 4's deprecation pushes operators there),
    /// and, without `management_url`, for which of `amqp_queues` are streams (skipped: a
    /// stream's passive declare answers what it retains, not work waiting). Asked with
    /// `username` and `password` and the source's `tls`.
    pub prometheus_url: Option<String>,
    /// Vhosts to watch (default: every vhost).
    #[serde(default)]
    pub vhosts: Vec<String>,
    /// Queue name filters.
    #[serde(default)]
    pub queues: QueueFilter,
    /// Queue names matching this regex are dead-letter queues, besides those found from
    /// `x-dead-letter-*` arguments and policies.
    pub dead_letter_pattern: Option<String>,
    /// Most queues published (default 1000, at most 100,000); the deepest are kept, the rest counted as dropped.
    #[serde(default = "default_max_queues")]
    pub max_queues: usize,
    /// AMQP URL, for brokers without the management plugin: `amqp://user:pass@host:5672/vhost`.
    pub amqp_url: Option<String>,
    /// Queues to read over AMQP with a passive `queue.declare`.
    #[serde(default)]
    pub amqp_queues: Vec<String>,
    /// For an `https://` management URL and an `amqps://` AMQP URL: a private CA to trust
    /// (instead of the public roots) and a client certificate to present.
    pub tls: Option<crate::config_core::tls::TlsFiles>,
}

/// Include and exclude regexes over queue names.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    /// A queue is watched if it matches any of these (default: every queue).
    #[serde(default)]
    pub include: Vec<String>,
    /// ... and none of these.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_max_queues() -> usize {
    1000
}

/// Which built-in check a RabbitMQ source runs, with the endpoint its probe reads: the source
/// adds only the shared transport (HTTP client and credentials, AMQP connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RabbitmqCheck {
    /// Every selected queue through the management API at this base URL.
    ManagementQueues(url::Url),
    /// The configured queues through AMQP.
    AmqpQueues(AmqpTarget),
}

/// What the AMQP queue check reads: the broker, its vhost and the queues.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpTarget {
    url: String,
    vhost: String,
    queues: Vec<String>,
}

impl AmqpTarget {
    /// The target of `amqp_url` and `amqp_queues`; `None` for a URL that does not parse
    /// (validation reports it).
    fn new(url: &str, queues: &[String]) -> Option<Self> {
        let uri: lapin::uri::AMQPUri = url.parse().ok()?;
        Some(AmqpTarget {
            url: url.to_owned(),
            vhost: uri.vhost,
            queues: queues.to_vec(),
        })
    }
}

// The URL may hold the password: shown without it.
impl std::fmt::Debug for AmqpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTarget")
            .field("url", &crate::secrets::display_url(&self.url))
            .field("vhost", &self.vhost)
            .field("queues", &self.queues)
            .finish()
    }
}

/// The management API base URL, ending in `/` so that paths join below it.
fn management_base(u: &str) -> Option<url::Url> {
    let mut base = url::Url::parse(u).ok()?;
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Some(base)
}

/// Check name of the management-API queue check.
pub const QUEUES_CHECK: &str = "queues";
/// Check name of the AMQP queue check.
pub const AMQP_CHECK: &str = "amqp_queues";

impl CheckSpec for RabbitmqCheck {
    fn series(
        &self,
        _common: &crate::config_core::CheckCommon,
    ) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::display::PanelKind;
        use crate::config_core::shape::{Builtin, Panel, PanelQuery, Series, Shape};
        let queues = Builtin {
            panels: vec![
                Panel {
                    key: "messages",
                    title: "Messages by queue".to_owned(),
                    description: "Messages ready for delivery and unacknowledged, per queue \
                        (dead_letter=\"true\" marks a dead-letter queue).",
                    unit: "short",
                    kind: PanelKind::Timeseries,
                    queries: vec![PanelQuery::metric(
                        QUEUE_MESSAGES.name,
                        "{{vhost}}/{{queue}} {{state}}",
                    )],
                    outcome: false,
                },
                Panel {
                    key: "consumers",
                    title: "Consumers by queue".to_owned(),
                    description: "Consumers attached to each queue: 0 on a queue that holds \
                        work means nothing takes it.",
                    unit: "short",
                    kind: PanelKind::Table,
                    queries: vec![PanelQuery::metric(QUEUE_CONSUMERS.name, "")],
                    outcome: false,
                },
            ],
            also_publishes: &[
                QUEUE_ACKED.name,
                QUEUE_HEAD_TIMESTAMP.name,
                QUEUE_DRAIN.name,
                STREAM_LAG.name,
            ],
        };
        vec![Series::new(
            QUEUE_MESSAGES.name,
            Vec::new(),
            Shape::Builtin(queues),
        )]
    }

    fn bounds_itself(&self) -> bool {
        true
    }
}

/// The built-in metrics of a RabbitMQ source. Queue metrics carry the queue labels `source`,
/// `vhost`, `queue` and `dead_letter` first.
pub const METRICS: &[Metric] = &[
    QUEUE_MESSAGES,
    QUEUE_CONSUMERS,
    QUEUE_UTILISATION,
    QUEUE_RATE,
    QUEUE_ACKED,
    QUEUE_HEAD_TIMESTAMP,
    QUEUE_DRAIN,
    STREAM_LAG,
    QUEUE_INFO,
    VHOST_QUEUES,
    VHOST_MESSAGES,
    health::NODE_RUNNING,
    health::NODE_ALARM,
    health::NODE_PARTITIONS,
    health::NODE_RESOURCE_USED,
    health::NODE_RESOURCE_LIMIT,
    health::CONNECTIONS,
    health::UNROUTABLE,
    health::STATISTICS,
    quorum::METADATA_STORE_QUORUM,
    quorum::QUORUM_CRITICAL,
];

/// `kind: rabbitmq`.
pub struct Rabbitmq;

impl Kind for Rabbitmq {
    const NAME: &'static str = "rabbitmq";
    const TITLE: &'static str = "RabbitMQ";
    const EXAMPLE: &'static str = include_str!("example.yml");
    const METRICS_INTRO: &'static str = "Queue metrics carry `source`, `vhost`, `queue` and `dead_letter` (`\"true\"` for a queue that \
        another queue's `x-dead-letter-*` arguments or policy routes into, or whose name matches \
        `dead_letter_pattern`). From the management API unless noted; AMQP-only mode publishes \
        `pulse_rabbitmq_queue_messages{state=\"ready\"}` and `pulse_rabbitmq_queue_consumers`.";
    type Settings = RabbitmqConfig;
    type Check = RabbitmqCheck;
    type Source = RabbitmqSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its checks are built in, one per configured mode.
    fn builtin_checks(settings: &RabbitmqConfig, path: &str) -> Vec<CheckConfig<Self::Check>> {
        let mut checks = Vec::new();
        // A URL that does not parse adds no check: validation reports it.
        if let Some(base) = settings.management_url.as_deref().and_then(management_base) {
            checks.push(builtin(
                path,
                QUEUES_CHECK,
                RabbitmqCheck::ManagementQueues(base),
            ));
        }
        if let Some(url) = &settings.amqp_url {
            if let Some(target) = (!settings.amqp_queues.is_empty())
                .then(|| AmqpTarget::new(url, &settings.amqp_queues))
                .flatten()
            {
                checks.push(builtin(path, AMQP_CHECK, RabbitmqCheck::AmqpQueues(target)));
            }
        }
        checks
    }

    fn validate(parsed: &Parsed<Self>, p: &str, errors: &mut Vec<ConfigError>) {
        let c = &parsed.settings;
        validate_endpoints(c, p, errors);
        validate_selection(c, p, errors);
    }

    fn display_endpoint(c: &RabbitmqConfig) -> String {
        c.management_url
            .as_deref()
            .or(c.amqp_url.as_deref())
            .map(crate::secrets::display_url)
            .unwrap_or_default()
    }

    fn tls_endpoints(c: &RabbitmqConfig) -> Endpoints {
        let https = |url: &Option<String>| TlsEndpoint::of_url(url.as_deref()?, &["https"], 443);
        let amqps = |url: &Option<String>| TlsEndpoint::of_url(url.as_deref()?, &["amqps"], 5671);
        Endpoints::fixed([
            https(&c.management_url),
            https(&c.prometheus_url),
            amqps(&c.amqp_url),
        ])
    }
}

/// A broker HTTP endpoint other than the management API: an http(s) URL without credentials.
fn validate_http_url(u: &str, field: &str, errors: &mut Vec<ConfigError>) {
    match url::Url::parse(u) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
            if parsed.password().is_some() || !parsed.username().is_empty() {
                errors.push(ConfigError::new(
                    field,
                    "put the credentials in `username` and `password`, not in the URL",
                ));
            }
        }
        Ok(parsed) => errors.push(ConfigError::new(
            field,
            format!(
                "an http:// or https:// URL, not {}:// (the plugin listens on 15692 by default)",
                parsed.scheme()
            ),
        )),
        Err(e) => errors.push(ConfigError::new(
            field,
            format!("not a URL ({e}): e.g. http://127.0.0.1:15692"),
        )),
    }
}

/// The management API and AMQP: at least one, each a URL of its scheme with what it needs
/// (credentials, queue names), and `tls` only where a connection uses TLS.
fn validate_endpoints(c: &RabbitmqConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if c.management_url.is_none() && c.amqp_url.is_none() {
        errors.push(ConfigError::new(
            p,
            "set `management_url` (the management API) or `amqp_url` with `amqp_queues` (AMQP only), or both",
        ));
    }
    if let Some(u) = &c.prometheus_url {
        validate_http_url(u, &format!("{p}.prometheus_url"), errors);
        if c.management_url.is_none() && c.amqp_url.is_none() {
            errors.push(ConfigError::new(
                format!("{p}.prometheus_url"),
                "read beside the management API or AMQP: set `management_url` or `amqp_url` too",
            ));
        }
    }
    if let Some(u) = &c.management_url {
        match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                if parsed.password().is_some() {
                    errors.push(ConfigError::new(
                        format!("{p}.management_url"),
                        "put the credentials in `username` and `password`, not in the URL",
                    ));
                }
            }
            _ => errors.push(ConfigError::new(
                format!("{p}.management_url"),
                "expected an http(s) URL such as http://127.0.0.1:15672",
            )),
        }
        if c.username.is_none() || c.password.is_none() {
            errors.push(ConfigError::new(
                format!("{p}.username"),
                "the management API needs `username` and `password`",
            ));
        }
    }
    if let Some(tls) = &c.tls {
        let secure = c
            .management_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
            || c.amqp_url
                .as_deref()
                .is_some_and(|u| u.starts_with("amqps://"));
        let fix = "use an https:// management_url or an amqps:// amqp_url";
        tls.validate(&format!("{p}.tls"), secure, fix, errors);
    }
    if let Some(u) = &c.amqp_url {
        if u.parse::<lapin::uri::AMQPUri>().is_err() {
            errors.push(ConfigError::new(
                format!("{p}.amqp_url"),
                "expected amqp://user:password@host:5672/vhost (or amqps://)",
            ));
        }
        if c.amqp_queues.is_empty() {
            errors.push(ConfigError::new(
                format!("{p}.amqp_queues"),
                "name the queues to read over AMQP",
            ));
        }
    } else if !c.amqp_queues.is_empty() {
        errors.push(ConfigError::new(
            format!("{p}.amqp_url"),
            "required with `amqp_queues`",
        ));
    }
}

/// Which queues are read: valid regexes, a bounded number of queues.
fn validate_selection(c: &RabbitmqConfig, p: &str, errors: &mut Vec<ConfigError>) {
    for (field, list) in [
        ("queues.include", &c.queues.include),
        ("queues.exclude", &c.queues.exclude),
    ] {
        for (i, re) in list.iter().enumerate() {
            if let Err(e) = Regex::new(re) {
                errors.push(ConfigError::new(
                    format!("{p}.{field}[{i}]"),
                    regex_error(&e),
                ));
            }
        }
    }
    if let Some(re) = &c.dead_letter_pattern {
        if let Err(e) = Regex::new(re) {
            errors.push(ConfigError::new(
                format!("{p}.dead_letter_pattern"),
                regex_error(&e),
            ));
        }
    }
    in_range(
        &format!("{p}.max_queues"),
        c.max_queues as u64,
        1,
        100_000,
        errors,
    );
}

/// A regex error without the echo of the pattern and caret line the regex crate prints, which
/// for a long pattern would bury the reason: the position in the file already says where.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ");
    format!("invalid regex: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{assert_reports, errors_of};

    #[test]
    fn each_mode_brings_its_built_in_check() {
        let load = |extra: &str| {
            crate::config::load_str(&format!(
                "sources:\n  - {{ name: b, kind: rabbitmq, {extra} }}"
            ))
            .unwrap()
            .sources[0]
                .checks()
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            load("management_url: 'http://r:15672', username: u, password: p"),
            [QUEUES_CHECK]
        );
        assert_eq!(
            load("amqp_url: 'amqp://g:g@r:5672/%2f', amqp_queues: [jobs]"),
            [AMQP_CHECK]
        );
        assert_reports(
            "sources:\n  - { name: b, kind: rabbitmq, amqp_url: 'amqp://g:g@r:5672/%2f' }",
            &["sources[0].amqp_queues: name the queues to read over AMQP"],
        );
    }

    #[test]
    fn each_check_carries_the_endpoint_its_probe_reads() {
        let mut errors = Vec::new();
        let rest = serde_yaml::from_str(
            "{ management_url: 'http://r:15672/api', username: u, password: p, \
               amqp_url: 'amqp://g:secret@r:5672/prod', amqp_queues: [jobs, mail] }",
        )
        .unwrap();
        let parsed = Rabbitmq::parse(rest, "sources[0]", &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let specs: Vec<&RabbitmqCheck> = parsed.checks.iter().map(|c| &c.spec).collect();
        let RabbitmqCheck::ManagementQueues(base) = specs[0] else {
            panic!("{specs:?}")
        };
        // Joined paths stay below the base path.
        assert_eq!(
            base.join("queues").unwrap().as_str(),
            "http://r:15672/api/queues"
        );
        let RabbitmqCheck::AmqpQueues(target) = specs[1] else {
            panic!("{specs:?}")
        };
        assert_eq!(target.vhost, "prod");
        assert_eq!(target.queues, ["jobs", "mail"]);
        assert!(!format!("{target:?}").contains("secret"), "{target:?}");
        // A URL that does not parse adds no check; validation names it.
        let rest =
            serde_yaml::from_str("{ management_url: 'not a url', username: u, password: p }")
                .unwrap();
        assert!(Rabbitmq::parse(rest, "s", &mut errors)
            .unwrap()
            .checks
            .is_empty());
    }

    #[test]
    fn a_source_needs_the_management_api_or_amqp() {
        assert_reports(
            "sources:\n  - { name: broker, kind: rabbitmq }",
            &["sources[0]: set `management_url`"],
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            r#"
sources:
  - name: broker
    kind: rabbitmq
    management_url: "http://admin:pw@rabbit:15672"
    queues: { include: ["("] }
    dead_letter_pattern: "["
    max_queues: 0
    amqp_queues: [jobs]
"#,
            &[
                "sources[0].management_url: put the credentials in `username` and `password`",
                "sources[0].queues.include[0]: invalid regex",
                "sources[0].dead_letter_pattern: invalid regex",
                "sources[0].max_queues: must be at least 1",
                "sources[0].amqp_url: required with `amqp_queues`",
            ],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: broker, kind: rabbitmq, management_url: 'http://rabbit:15672', username: u, password: p }"),
            ""
        );
    }
}
