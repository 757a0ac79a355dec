//! Source kinds: what every kind implements ([`Kind`], [`Source`], [`Runnable`]) and, in
//! [`registry`], the one table listing the kinds this build knows.
//!
//! A kind is one module (or folder) owning its connection settings, its check type, their
//! parsing and validation, its connection and its probes. A source only knows how to talk to
//! its system; timing, timeouts and outcomes belong to the scheduler. Adding a kind means one
//! new module here, one line in [`registry::KINDS`] and a cargo feature of its name, on by
//! default, that the module and the line are built under.
//!
//! Beside the kinds live the parts several of them share, and only they use: [`rows`] (the row
//! shape of query-style checks, and rows into samples), [`heartbeat`] (worker heartbeats: up
//! within `max_age`, remembered until `forget_after`), [`window`] (counters read whole turned
//! into what moved in a window), [`bounded`] (the load samplers' bounded counters),
//! [`connect`], [`declare`] and [`http_body`]; and [`certificates`], the TLS endpoints of the
//! sources and the certificate chain each presents.

pub mod bounded;
pub mod certificates;
pub mod connect;
pub mod declare;
pub mod heartbeat;
pub mod http_body;
#[cfg(feature = "logfile")]
pub mod logfile;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
pub mod rows;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "stripe")]
pub mod stripe;
pub mod window;

use crate::sync::MutexExt;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;
use tokio::time::Instant;

use crate::config_core::{CheckConfig, CheckPlan, CheckSpec, ConfigError};
use crate::series::metric::Metric;
use crate::series::run_error::RunError;
use crate::series::sample::Output;
pub use connect::{Connect, ConnectError};
use declare::{CheckList, KindReference};

/// A kind's latency histogram, which latency objectives read: its metric, the check that
/// publishes it, and the bounds of its classic buckets (an objective's `under` is one of
/// them, so that a bucket counts what is under it).
#[derive(Debug, Clone, Copy)]
pub struct LatencyHistogram {
    /// The histogram.
    pub metric: &'static Metric,
    /// The name of the check that publishes it (off, the histogram is absent).
    pub check: &'static str,
    /// Its classic buckets' bounds, in seconds, ascending.
    pub bounds: fn() -> Vec<f64>,
}

impl LatencyHistogram {
    /// Its labels but `source`: those an objective may pick operations by, and sums away.
    pub fn operation_labels(&self) -> Vec<&'static str> {
        self.metric
            .labels
            .iter()
            .copied()
            .filter(|l| *l != "source")
            .collect()
    }
}

/// An objective a kind keeps on events it counts (the Stripe events delivered before Stripe
/// gives up): the share of `total`'s increase that `bad`'s must stay under, per source and
/// the labels neither sums away.
#[derive(Debug, Clone, PartialEq)]
pub struct EventObjective {
    /// The `objective` label of its series and alerts (`delivery`).
    pub name: &'static str,
    /// Its target and window, the kind's defaults filled in.
    pub objective: crate::config_core::objective::Objective,
    /// The counter of the events that spend the budget.
    pub bad: &'static Metric,
    /// The counter of all the events.
    pub total: &'static Metric,
    /// The labels of both counters summed away (`event_type`).
    pub summed: &'static [&'static str],
    /// What the target is a share of, for the alerts' description ("its events reach every
    /// webhook endpoint before Stripe gives up").
    pub what: &'static str,
    /// What the error ratio is a share of, for the summary ("of its events are abandoned").
    pub failing: &'static str,
}

/// The future a run of a check or a health probe returns.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, RunError>> + Send + 'a>>;

/// One runnable check (or health probe) of a source. In this crate "probe" means the health
/// probe alone (and the `/probe` endpoint and `probe` subcommand their users know); what the
/// scheduler runs, a check or the health probe, is a `Runnable`, and it fails with a
/// [`RunError`].
pub trait Runnable: Send + Sync + 'static {
    /// Runs once. The scheduler drops the future at `deadline`; a run also passes the
    /// deadline to the server (statement timeout, bounded scan) so the work stops there too.
    fn run(&self, deadline: Instant) -> RunFuture<'_>;
}

/// A connected (lazily) source that makes probes sharing its connections, for checks of its
/// own kind `C`.
pub trait Source<C>: Send + Sync + 'static {
    /// The health probe: reachability, latency and the kind's vital statistics.
    fn health(&self) -> Arc<dyn Runnable>;
    /// A probe for one of the source's configured checks, run as `plan` says.
    fn check(&self, check: &CheckConfig<C>, plan: &CheckPlan) -> Arc<dyn Runnable>;
}

/// Everything about one source kind. Each kind implements it once on a unit struct, and
/// [`registry::KINDS`] lists it.
pub trait Kind: Sized + Send + Sync + 'static {
    /// The `kind:` value in the file and the `kind` label.
    const NAME: &'static str;
    /// The kind's name for humans: the heading of its section in docs/metrics.md.
    const TITLE: &'static str;
    /// What holds for all the kind's metrics, above their table in docs/metrics.md
    /// (Markdown; paragraphs split by a blank line).
    const METRICS_INTRO: &'static str = "";
    /// Interval of this kind's checks when neither the check nor the source sets one
    /// (`None`: `global.interval`).
    const DEFAULT_INTERVAL: Option<Duration> = None;
    /// The latency histogram a latency objective may be set on (`latency_objectives:`),
    /// where the kind publishes one (`None`: a latency objective is refused).
    const LATENCY_HISTOGRAM: Option<LatencyHistogram> = None;
    /// The objective the kind keeps on events it counts, if any and not turned off.
    fn event_objective(_settings: &Self::Settings) -> Option<EventObjective> {
        None
    }
    /// Connection settings: every field of the source but the shared ones and the checks.
    /// Compared on reload: equal settings keep the connections.
    type Settings: fmt::Debug
        + Clone
        + PartialEq
        + Send
        + Sync
        + serde::de::DeserializeOwned
        + schemars::JsonSchema
        + 'static;
    /// The kind's checks, one variant per sort of check.
    type Check: CheckSpec;
    /// The kind's source: made from the settings ([`Connect`], no I/O), probed by checks.
    type Source: Source<Self::Check> + Connect<Self::Settings>;
    /// The kind's built-in metrics (health vitals and built-in checks), each declared once.
    const METRICS: &'static [Metric];
    /// A config file with one source of this kind and a check of every sort it has (the
    /// kind's `example.yml`, against a local server on its usual port). A library test loads
    /// every kind's example, runs it once to series and generates its dashboard and rules.
    const EXAMPLE: &'static str;

    /// The kind's lists of checks in the file, in the order they are read. Declared once:
    /// parsing and the config reference both come from it.
    fn lists() -> Vec<CheckList<Self::Check>> {
        Vec::new()
    }

    /// The checks the kind builds in from its settings (a RabbitMQ source's queue check, an
    /// S3 canary), each named by the kind with [`crate::config_core::parse::builtin`]. They come
    /// before the listed checks.
    fn builtin_checks(settings: &Self::Settings, path: &str) -> Vec<CheckConfig<Self::Check>> {
        let _ = (settings, path);
        Vec::new()
    }

    /// The checks that read the server's own statistics (Postgres `statements` and
    /// `tables`, Redis and MongoDB `latency`), on unless the settings turn them off. They come
    /// after the listed checks, so that switching them on or off moves no listed check.
    fn statistics_checks(settings: &Self::Settings, path: &str) -> Vec<CheckConfig<Self::Check>> {
        let _ = (settings, path);
        Vec::new()
    }

    /// Parses the kind's part of a source: `rest` holds every field the shared source fields
    /// left, including the check lists. Records every problem in `errors`: reads
    /// [`Kind::lists`], then the rest as the settings, and adds [`Kind::builtin_checks`]
    /// before the listed checks and [`Kind::statistics_checks`] after them.
    fn parse(mut rest: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Parsed<Self>> {
        let listed = declare::take_lists(&Self::lists(), &mut rest, path, errors);
        let settings = crate::config_core::parse::parse_at(rest, path, errors)?;
        let mut checks = Self::builtin_checks(&settings, path);
        checks.extend(listed);
        checks.extend(Self::statistics_checks(&settings, path));
        Some(Parsed { settings, checks })
    }

    /// Records the kind's own rules the parsed source at `path` breaks.
    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>);

    /// The endpoint for humans (landing page, `probe`), with credentials removed.
    fn display_endpoint(settings: &Self::Settings) -> String;

    /// The kind's fields and check lists, for the generated config reference.
    fn reference() -> KindReference {
        KindReference {
            settings: declare::schema::<Self::Settings>(),
            lists: Self::lists().iter().map(CheckList::reference).collect(),
        }
    }

    /// What `check` publishes, for the generated dashboard and rules. The default asks the
    /// check; a kind whose checks need its settings to say (log-file counters, S3 prefixes)
    /// answers itself.
    fn series(
        parsed: &Parsed<Self>,
        check: &CheckConfig<Self::Check>,
    ) -> Vec<crate::config_core::shape::Series> {
        let _ = parsed;
        check.spec.series(&check.common)
    }

    /// The TLS endpoints the source's clients connect to, whose certificate expiry is
    /// published ([`crate::sources::certificates`]). The default: none.
    fn tls_endpoints(settings: &Self::Settings) -> crate::sources::certificates::Endpoints {
        let _ = settings;
        crate::sources::certificates::Endpoints::None
    }
}

/// A parsed source of kind `K`: its settings and its checks.
pub struct Parsed<K: Kind> {
    /// Connection settings.
    pub settings: K::Settings,
    /// Checks, in file order (built-in ones first where a kind has them).
    pub checks: Vec<CheckConfig<K::Check>>,
}

impl<K: Kind> fmt::Debug for Parsed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("settings", &self.settings)
            .field("checks", &self.checks)
            .finish()
    }
}

/// Remaining time until `deadline`, never negative.
pub fn remaining(deadline: Instant) -> std::time::Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// How far two estimates of a server's start may differ and still be the same start.
const START_JITTER: f64 = 2.0;

/// A server's start time, estimated at each probe as now minus its whole seconds of uptime.
/// The estimate wanders by a second between probes, which `changes()` would count as a
/// restart (PulsePostgresRestarted, PulseSourceCrashLooping): an estimate within two seconds
/// of the last one published is that one.
#[derive(Debug, Default)]
pub struct StartTime(std::sync::Mutex<Option<f64>>);

impl StartTime {
    /// The start time to publish for `estimate`.
    pub fn settle(&self, estimate: f64) -> f64 {
        let mut last = self.0.locked();
        match *last {
            Some(t) if (t - estimate).abs() <= START_JITTER => t,
            _ => {
                *last = Some(estimate);
                estimate
            }
        }
    }
}

#[cfg(test)]
mod start_time_tests {
    #[test]
    fn a_wandering_estimate_is_one_start_and_a_restart_is_another() {
        let start = super::StartTime::default();
        assert_eq!(start.settle(1000.0), 1000.0);
        assert_eq!(start.settle(1001.0), 1000.0);
        assert_eq!(start.settle(999.0), 1000.0);
        // A restart moves it by the time the server had been up.
        assert_eq!(start.settle(1300.0), 1300.0);
        assert_eq!(start.settle(1299.0), 1300.0);
    }
}

#[cfg(test)]
mod tests {
    //! The default `Kind::parse` and `Kind::reference`, through a kind that keeps them.
    use super::postgres::{Postgres, PostgresCheck};
    use super::Kind;

    fn parse(yaml: &str) -> (Option<super::Parsed<Postgres>>, Vec<String>) {
        let mut errors = Vec::new();
        let parsed = Postgres::parse(
            serde_yaml::from_str(yaml).unwrap(),
            "sources[2]",
            &mut errors,
        );
        let errors = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        (parsed, errors)
    }

    #[test]
    fn lists_are_read_in_their_declared_order_whatever_the_file_order() {
        let (parsed, errors) = parse(
            "{ url: 'postgres://h/db', \
               heartbeats: [{ name: beat, sql: 'SELECT 1', pool: p }], \
               checks: [{ name: a, sql: 'SELECT 1 AS value' }, { name: b, sql: 'SELECT 2 AS value' }] }",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let checks = parsed.unwrap().checks;
        let names: Vec<&str> = checks
            .iter()
            .map(|c| c.common.name.as_deref().unwrap_or(""))
            .collect();
        // The checks of the server's statistics come last.
        assert_eq!(names, ["a", "b", "beat", "statements", "tables", "load"]);
        assert!(matches!(checks[2].spec, PostgresCheck::Heartbeat(_)));
    }

    #[test]
    fn a_list_that_is_not_a_sequence_is_reported_at_its_key() {
        let (_, errors) = parse("{ url: 'postgres://h/db', checks: { name: a } }");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("sources[2].checks: "), "{errors:?}");
    }

    #[test]
    fn the_settings_still_reject_unknown_fields_once_the_lists_are_taken() {
        let (parsed, errors) = parse("{ url: 'postgres://h/db', checks: [], hearbeats: [] }");
        assert!(parsed.is_none());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("hearbeats"), "{errors:?}");
    }

    #[test]
    fn the_reference_lists_every_declared_list_in_order() {
        let reference = Postgres::reference();
        let keys: Vec<&str> = reference.lists.iter().map(|l| l.key).collect();
        let declared: Vec<&str> = Postgres::lists().iter().map(|l| l.key).collect();
        assert_eq!(keys, declared);
        assert_eq!(keys, ["checks", "heartbeats"]);
        let settings = serde_json::to_string(reference.settings.as_value()).unwrap();
        assert!(settings.contains("\"url\"") && !settings.contains("\"checks\""));
    }
}
