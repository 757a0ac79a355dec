//! The registry: the one table of source kinds this build knows, and a parsed source of any
//! kind as the rest of the exporter sees it ([`ParsedSource`]), started into typed probes
//! ([`Started`]) on a new or kept [`Connection`].
//!
//! Adding a kind is one line in [`KINDS`]; everything else comes from its [`Kind`] impl.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

use super::{Connect, Kind, Parsed, Runnable, Source};
use crate::config_core::{AnyCheck, CheckPlan, ConfigError};
use crate::series::metric::Metric;

/// Every source kind this build has, by the name written in `kind:`.
pub const KINDS: &[Entry] = &[
    #[cfg(feature = "logfile")]
    entry::<super::logfile::Logfile>(),
    #[cfg(feature = "mongodb")]
    entry::<super::mongodb::Mongodb>(),
    #[cfg(feature = "postgres")]
    entry::<super::postgres::Postgres>(),
    #[cfg(feature = "rabbitmq")]
    entry::<super::rabbitmq::Rabbitmq>(),
    #[cfg(feature = "redis")]
    entry::<super::redis::Redis>(),
    #[cfg(feature = "s3")]
    entry::<super::s3::S3>(),
    #[cfg(feature = "stripe")]
    entry::<super::stripe::Stripe>(),
];

/// Every kind pulse-exporter has, whether or not this build has it: each is a cargo feature
/// of the same name, and a config naming one this build lacks is told which to build with.
pub const ALL_KINDS: &[&str] = &[
    "logfile", "mongodb", "postgres", "rabbitmq", "redis", "s3", "stripe",
];

/// Parses the kind-specific part of a source into a kind-erased [`ParsedSource`].
type ParseFn = fn(Value, &str, &mut Vec<ConfigError>) -> Option<Arc<dyn ParsedSource>>;

/// One row of [`KINDS`].
pub struct Entry {
    /// The `kind:` value.
    pub name: &'static str,
    /// The kind's name for humans.
    pub title: &'static str,
    /// What holds for all the kind's metrics, for docs/metrics.md.
    pub metrics_intro: &'static str,
    /// The kind's built-in metrics.
    pub metrics: &'static [Metric],
    /// The kind's fields and check lists, for the generated config reference.
    pub reference: fn() -> super::declare::KindReference,
    /// The kind's example config (see [`Kind::EXAMPLE`]).
    pub example: &'static str,
    parse: ParseFn,
}

/// The row of [`KINDS`] for kind `K`. Public so that a build with no source kind (only
/// `jobs`, say) still compiles every kind's plumbing, warning-free.
pub const fn entry<K: Kind>() -> Entry {
    Entry {
        name: K::NAME,
        title: K::TITLE,
        metrics_intro: K::METRICS_INTRO,
        metrics: K::METRICS,
        reference: K::reference,
        example: K::EXAMPLE,
        parse: parse_any::<K>,
    }
}

impl Entry {
    /// The kind's section of docs/metrics.md.
    pub fn metrics_section(&self) -> crate::series::metric::Section {
        crate::series::metric::Section {
            title: self.title,
            intro: self.metrics_intro,
            metrics: self.metrics,
        }
    }
}

fn parse_any<K: Kind>(
    rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn ParsedSource>> {
    K::parse(rest, path, errors).map(|p| Arc::new(p) as Arc<dyn ParsedSource>)
}

/// Parses the kind-specific part of a source (`rest` holds every non-shared field), or
/// records that `kind` is unknown.
pub fn parse_kind(
    kind: &str,
    rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn ParsedSource>> {
    match KINDS.iter().find(|e| e.name == kind) {
        Some(e) => (e.parse)(rest, path, errors),
        None if ALL_KINDS.contains(&kind) => {
            let present: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
            errors.push(ConfigError::new(
                format!("{path}.kind"),
                not_built(kind, &present),
            ));
            None
        }
        None => {
            let names: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
            errors.push(ConfigError::new(
                format!("{path}.kind"),
                match crate::config_core::suggest::closest(kind, names.iter().copied()) {
                    Some(near) => format!(
                        "unknown source kind {kind:?}: did you mean {near:?}? The kinds are {}",
                        names.join(", ")
                    ),
                    None => format!(
                        "unknown source kind {kind:?}: use one of {}",
                        names.join(", ")
                    ),
                },
            ));
            None
        }
    }
}

/// A source's connection, kept across reloads while its settings do not change. It holds the
/// settings it was made with, so only a parsed source of the same kind with equal settings
/// takes it up again.
#[derive(Clone)]
pub struct Connection(Arc<dyn Any + Send + Sync>);

/// The typed connection behind a [`Connection`].
struct Live<K: Kind> {
    settings: K::Settings,
    source: Arc<K::Source>,
}

/// A source started: its connection and a probe for its health and each check.
pub struct Started<'a> {
    /// The connection the probes share.
    pub connection: Connection,
    /// True when it is the previous connection, kept: the running checks may go on.
    pub kept: bool,
    /// The health probe.
    pub health: Arc<dyn Runnable>,
    /// Each check, in file order.
    pub checks: Vec<StartedCheck<'a>>,
}

/// One check of a started source.
pub struct StartedCheck<'a> {
    /// The check as configured.
    pub check: &'a dyn AnyCheck,
    /// When and how long it runs.
    pub plan: Arc<CheckPlan>,
    /// Its probe, on the source's connection.
    pub probe: Arc<dyn Runnable>,
}

/// A parsed source of some kind: what kind-independent code needs from it.
pub trait ParsedSource: fmt::Debug + Send + Sync + 'static {
    /// The `kind` label value.
    fn name(&self) -> &'static str;
    /// See [`Kind::DEFAULT_INTERVAL`].
    fn default_interval(&self) -> Option<Duration>;
    /// The checks, in file order.
    fn checks(&self) -> Vec<&dyn AnyCheck>;
    /// What each check publishes, in the order of [`ParsedSource::checks`].
    fn series(&self) -> Vec<Vec<crate::config_core::shape::Series>>;
    /// Records the kind's own rules broken at `path`.
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>);
    /// See [`Kind::LATENCY_HISTOGRAM`].
    fn latency_histogram(&self) -> Option<super::LatencyHistogram>;
    /// See [`Kind::event_objective`].
    fn event_objective(&self) -> Option<super::EventObjective>;
    /// See [`Kind::display_endpoint`].
    fn display_endpoint(&self) -> String;
    /// See [`Kind::tls_endpoints`].
    fn tls_endpoints(&self) -> crate::sources::certificates::Endpoints;
    /// Makes the source named `name` and every probe: on `previous` when that connection is
    /// of this kind with equal settings, else on a new (lazily connected) one. `plans` holds
    /// each check's plan, in the order of [`ParsedSource::checks`].
    fn start<'a>(
        &'a self,
        name: &str,
        previous: Option<&Connection>,
        plans: &[Arc<CheckPlan>],
    ) -> Result<Started<'a>, super::ConnectError>;
}

impl<K: Kind> ParsedSource for Parsed<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn default_interval(&self) -> Option<Duration> {
        K::DEFAULT_INTERVAL
    }

    fn checks(&self) -> Vec<&dyn AnyCheck> {
        self.checks.iter().map(|c| c as &dyn AnyCheck).collect()
    }

    fn series(&self) -> Vec<Vec<crate::config_core::shape::Series>> {
        self.checks.iter().map(|c| K::series(self, c)).collect()
    }

    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        K::validate(self, path, errors)
    }

    fn latency_histogram(&self) -> Option<super::LatencyHistogram> {
        K::LATENCY_HISTOGRAM
    }

    fn event_objective(&self) -> Option<super::EventObjective> {
        K::event_objective(&self.settings)
    }

    fn display_endpoint(&self) -> String {
        K::display_endpoint(&self.settings)
    }

    fn tls_endpoints(&self) -> crate::sources::certificates::Endpoints {
        K::tls_endpoints(&self.settings)
    }

    fn start<'a>(
        &'a self,
        name: &str,
        previous: Option<&Connection>,
        plans: &[Arc<CheckPlan>],
    ) -> Result<Started<'a>, super::ConnectError> {
        let kept = previous
            .and_then(|c| c.0.downcast_ref::<Live<K>>())
            .filter(|live| live.settings == self.settings)
            .map(|live| live.source.clone());
        let (source, kept) = match kept {
            Some(source) => (source, true),
            None => (Arc::new(K::Source::connect(&self.settings, name)?), false),
        };
        let checks = self
            .checks
            .iter()
            .zip(plans)
            .map(|(c, plan)| StartedCheck {
                probe: source.check(c, plan),
                check: c,
                plan: plan.clone(),
            })
            .collect();
        Ok(Started {
            health: source.health(),
            connection: Connection(Arc::new(Live::<K> {
                settings: self.settings.clone(),
                source,
            })),
            kept,
            checks,
        })
    }
}

/// Why a kind pulse-exporter has cannot be used by this build (which has `present`).
fn not_built(kind: &str, present: &[&str]) -> String {
    let has = match present {
        [] => "no source kinds".to_owned(),
        _ => present.join(", "),
    };
    format!(
        "this build of pulse-exporter has no {kind:?} sources (it has {has}): build it with \
         `--features {kind}` beside the kinds it has, or with the default features, which have \
         every kind"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_left_out_of_the_build_names_the_feature_to_build_with() {
        assert_eq!(
            not_built("mongodb", &["postgres", "redis"]),
            "this build of pulse-exporter has no \"mongodb\" sources (it has postgres, redis): \
             build it with `--features mongodb` beside the kinds it has, or with the default \
             features, which have every kind"
        );
        assert!(not_built("s3", &[]).contains("(it has no source kinds)"));
    }

    #[test]
    fn every_kind_is_listed_once_in_order() {
        let names: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn each_kind_names_the_tls_endpoints_its_clients_reach() {
        use crate::sources::certificates::Endpoints;
        let config = crate::config::load_str(
            "sources:
  - { name: pg-tls, kind: postgres, url: 'postgres://u:pw@db.internal:6432/app?sslmode=verify-full' }
  - { name: pg-prefer, kind: postgres, url: 'postgres://u@db.internal/app' }
  - { name: pg-plain, kind: postgres, url: 'postgres://u@db.internal/app?sslmode=disable' }
  - { name: pg-socket, kind: postgres, url: 'postgres://u@%2Frun%2Fpostgresql/app' }
  - { name: redis-tls, kind: redis, url: 'rediss://:pw@cache.internal' }
  - { name: redis-plain, kind: redis, url: 'redis://cache.internal' }
  - { name: mq, kind: rabbitmq, management_url: 'https://mq.internal', amqp_url: 'amqps://u:pw@mq.internal/%2f', amqp_queues: [jobs], username: u, password: p }
  - { name: mq-plain, kind: rabbitmq, management_url: 'http://mq.internal:15672', username: u, password: p }
  - { name: mongo-tls, kind: mongodb, url: 'mongodb://u:pw@a.internal,b.internal:27018/app?tls=true' }
  - { name: mongo-plain, kind: mongodb, url: 'mongodb://a.internal/app' }
  - { name: mongo-srv, kind: mongodb, url: 'mongodb+srv://u:pw@cluster.internal/app' }
  - { name: media, kind: s3, bucket: media, region: eu-west-1 }
  - { name: minio, kind: s3, bucket: media, endpoint: 'https://minio.internal:9000' }
  - { name: minio-plain, kind: s3, bucket: media, endpoint: 'http://minio.internal:9000' }
  - { name: billing, kind: stripe, api_key: sk_test_x }
  - { name: app-log, kind: logfile, path: /var/log/app.log, counters: [{ metric: app_lines_total, match: { level: error } }] }
",
        )
        .unwrap();
        let endpoints = |name: &str| {
            let source = config
                .sources
                .iter()
                .find(|s| s.common.name == name)
                .unwrap();
            match source.kind.tls_endpoints() {
                Endpoints::None => vec![],
                Endpoints::Fixed(list) => list.iter().map(|e| e.label()).collect(),
                Endpoints::Lookup(_) => vec!["(lookup)".to_owned()],
            }
        };
        assert_eq!(endpoints("pg-tls"), ["db.internal:6432"]);
        // `prefer` (the default) uses TLS where offered: the read asks.
        assert_eq!(endpoints("pg-prefer"), ["db.internal:5432"]);
        assert_eq!(endpoints("redis-tls"), ["cache.internal:6379"]);
        assert_eq!(endpoints("mq"), ["mq.internal:443", "mq.internal:5671"]);
        assert_eq!(
            endpoints("mongo-tls"),
            ["a.internal:27017", "b.internal:27018"]
        );
        assert_eq!(endpoints("mongo-srv"), ["(lookup)"]);
        assert_eq!(endpoints("media"), ["media.s3.eu-west-1.amazonaws.com:443"]);
        assert_eq!(endpoints("minio"), ["minio.internal:9000"]);
        assert_eq!(endpoints("billing"), ["api.stripe.com:443"]);
        for plain in [
            "pg-plain",
            "pg-socket",
            "redis-plain",
            "mq-plain",
            "mongo-plain",
            "minio-plain",
            "app-log",
        ] {
            assert!(
                endpoints(plain).is_empty(),
                "{plain}: {:?}",
                endpoints(plain)
            );
        }
    }

    #[test]
    fn an_unknown_kind_names_every_known_one() {
        let mut errors = Vec::new();
        assert!(parse_kind("mysql", Value::Null, "sources[3]", &mut errors).is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "sources[3].kind");
        // Every kind of the table, in its order: a new kind changes no test here.
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        assert!(names.len() >= 7 && names.contains(&"postgres"), "{names:?}");
        assert_eq!(
            errors[0].message,
            format!(
                "unknown source kind \"mysql\": use one of {}",
                names.join(", ")
            )
        );
    }

    /// Every kind proves itself with its example: it loads, uses every list of checks the
    /// kind declares, generates a dashboard panel and rules for each check, and runs once to
    /// series (the health probe's and each check's). The examples' servers are moved to a
    /// closed port first: a unit test must not read or write the services of the machine it
    /// runs on (a MongoDB stand-in lists collections across databases), and a source that
    /// cannot be reached must be a failed run within its timeout and down, not a hang.
    #[tokio::test]
    async fn every_kind_runs_its_example_to_series() {
        use crate::runtime::once::run_once_into;
        use crate::runtime::results::Results;
        use crate::serve::collector::SnapshotCollector;
        use crate::serve::exposition::{encode, Format};

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let servers = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
        let mut runs = Vec::new();
        for entry in KINDS {
            let example = servers.replace_all(entry.example, format!("127.0.0.1:{closed}"));
            let text = format!("global: {{ timeout: 2s, health_timeout: 2s }}\n{example}");
            let config = crate::config::load_str(&text)
                .unwrap_or_else(|e| panic!("{}: its example.yml does not load: {e}", entry.name));
            assert_eq!(config.sources.len(), 1, "{}: one source", entry.name);
            let source = &config.sources[0];
            assert_eq!(source.kind.name(), entry.name);
            for list in (entry.reference)().lists {
                assert!(
                    entry.example.contains(&format!("\n    {}:", list.key)),
                    "{}: the example has no `{}:` list",
                    entry.name,
                    list.key
                );
            }
            let options = crate::generate::dashboards::from_config::Options::for_file(
                std::path::Path::new("example.yml"),
            );
            let dashboard = crate::generate::dashboards::from_config::render(&config, &options);
            let rules = crate::generate::rules::rules(
                &config,
                &crate::generate::bundle::Selection::default(),
            );
            assert!(
                rules.contains(&source.common.name),
                "{}: {rules}",
                entry.name
            );
            for check in source.checks() {
                let name = check.name();
                assert!(
                    dashboard.contains(&name),
                    "{}: no panel for {name}",
                    entry.name
                );
            }
            let has_server = example != entry.example;
            runs.push(tokio::spawn(async move {
                let store = Arc::new(Results::new());
                let rows = run_once_into(&config, &store).await.unwrap();
                let mut registry = prometheus_client::registry::Registry::default();
                registry.register_collector(Box::new(SnapshotCollector::new(store)));
                let text = String::from_utf8(encode(&registry, Format::Text).unwrap()).unwrap();
                (config, rows, text, has_server)
            }));
        }
        for run in runs {
            let (config, rows, text, has_server) = run.await.unwrap();
            let source = &config.sources[0];
            let label = format!("source=\"{}\"", source.common.name);
            assert_eq!(rows.len(), source.checks().len() + 1, "{text}");
            for row in rows {
                let health = row.check == crate::config_core::HEALTH_CHECK;
                let series = if health {
                    "pulse_source_up{"
                } else {
                    "pulse_check_success{"
                };
                if has_server && health {
                    assert!(
                        row.summary.result.is_err(),
                        "{}: up on a closed port",
                        row.kind
                    );
                }
                let check = format!("check=\"{}\"", row.check);
                assert!(
                    text.lines().any(|l| l.starts_with(series)
                        && l.contains(&label)
                        && (health || l.contains(&check))),
                    "{}: no {series}…}} for {}:\n{text}",
                    row.kind,
                    row.check
                );
            }
        }
    }

    /// Every statistics check starts from the one set of defaults
    /// (`config_core::validate::STATISTICS`), not from a copy of its own.
    #[test]
    fn every_statistics_check_starts_from_the_shared_defaults() {
        use crate::config_core::validate::{Statistics, STATISTICS};
        use crate::config_core::Dur;
        let of = |interval: Dur, timeout: Dur, top: usize| Statistics {
            interval: interval.0,
            timeout: timeout.0,
            top,
        };
        let r = super::super::redis::latency::LatencySettings::default();
        let m = super::super::mongodb::latency::LatencySettings::default();
        let s = super::super::postgres::statements::StatementsSettings::default();
        let t = super::super::postgres::tables::TablesSettings::default();
        for (check, defaults) in [
            ("redis latency", of(r.interval, r.timeout, r.top)),
            ("mongodb latency", of(m.interval, m.timeout, m.top)),
            ("postgres statements", of(s.interval, s.timeout, s.top)),
            ("postgres tables", of(t.interval, t.timeout, t.top)),
        ] {
            assert_eq!(defaults, STATISTICS, "{check}");
        }
    }
}
