//! The registry: the one table of source kinds this build knows, and a parsed source of any
//! kind as the rest of the exporter sees it ([`AnyKind`], [`Connected`]).
//!
//! Adding a kind is one line in [`KINDS`]; everything else comes from its [`Kind`] impl.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

use super::{logfile, mongodb, postgres, rabbitmq, redis, s3, stripe};
use super::{Kind, Parsed, Probe, Source};
use crate::config::{AnyCheck, CheckConfig, CheckPlan, ConfigError};
use crate::sample::Metric;

/// Every source kind, by the name written in `kind:`.
pub const KINDS: &[Entry] = &[
    entry::<logfile::Logfile>(),
    entry::<mongodb::Mongodb>(),
    entry::<postgres::Postgres>(),
    entry::<rabbitmq::Rabbitmq>(),
    entry::<redis::Redis>(),
    entry::<s3::S3>(),
    entry::<stripe::Stripe>(),
];

/// Parses the kind-specific part of a source into a kind-erased [`AnyKind`].
type ParseFn = fn(Value, &str, &mut Vec<ConfigError>) -> Option<Arc<dyn AnyKind>>;

/// One row of [`KINDS`].
pub struct Entry {
    /// The `kind:` value.
    pub name: &'static str,
    /// The kind's built-in metrics.
    pub metrics: &'static [Metric],
    /// The kind's fields and check lists, for the generated config reference.
    pub reference: fn() -> crate::reference::KindReference,
    parse: ParseFn,
}

const fn entry<K: Kind>() -> Entry {
    Entry {
        name: K::NAME,
        metrics: K::METRICS,
        reference: K::reference,
        parse: parse_any::<K>,
    }
}

fn parse_any<K: Kind>(
    rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn AnyKind>> {
    K::parse(rest, path, errors).map(|p| Arc::new(p) as Arc<dyn AnyKind>)
}

/// Parses the kind-specific part of a source (`rest` holds every non-shared field), or
/// records that `kind` is unknown.
pub fn parse_kind(
    kind: &str,
    rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn AnyKind>> {
    match KINDS.iter().find(|e| e.name == kind) {
        Some(e) => (e.parse)(rest, path, errors),
        None => {
            let names: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
            errors.push(ConfigError::new(
                format!("{path}.kind"),
                format!(
                    "unknown source kind {kind:?}: use one of {}",
                    names.join(", ")
                ),
            ));
            None
        }
    }
}

/// A parsed source of some kind: what kind-independent code needs from it.
pub trait AnyKind: fmt::Debug + Send + Sync + 'static {
    /// The `kind` label value.
    fn name(&self) -> &'static str;
    /// See [`Kind::DEFAULT_INTERVAL`].
    fn default_interval(&self) -> Option<Duration>;
    /// The checks, in file order.
    fn checks(&self) -> Vec<&dyn AnyCheck>;
    /// What each check publishes, in the order of [`AnyKind::checks`].
    fn series(&self) -> Vec<Vec<crate::shape::Series>>;
    /// Records the kind's own rules broken at `path`.
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>);
    /// See [`Kind::display_endpoint`].
    fn display_endpoint(&self) -> String;
    /// True when `other` is the same kind with equal settings, so its connections may be kept.
    fn same_connection(&self, other: &dyn AnyKind) -> bool;
    /// Creates the source named `name` (lazily connected).
    fn connect(&self, name: &str) -> Result<Arc<dyn Connected>, String>;
    /// For comparisons across the erased type.
    fn as_any(&self) -> &dyn Any;
}

impl<K: Kind> AnyKind for Parsed<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn default_interval(&self) -> Option<Duration> {
        K::DEFAULT_INTERVAL
    }

    fn checks(&self) -> Vec<&dyn AnyCheck> {
        self.checks.iter().map(|c| c as &dyn AnyCheck).collect()
    }

    fn series(&self) -> Vec<Vec<crate::shape::Series>> {
        self.checks.iter().map(|c| K::series(self, c)).collect()
    }

    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        K::validate(self, path, errors)
    }

    fn display_endpoint(&self) -> String {
        K::display_endpoint(&self.settings)
    }

    fn same_connection(&self, other: &dyn AnyKind) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| o.settings == self.settings)
    }

    fn connect(&self, name: &str) -> Result<Arc<dyn Connected>, String> {
        Ok(Arc::new(Connection::<K>(K::connect(&self.settings, name)?)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A connected source of some kind.
pub trait Connected: Send + Sync + 'static {
    /// See [`Source::health`].
    fn health(&self) -> Arc<dyn Probe>;
    /// A probe for `check`, or `None` when the check belongs to another kind (which a config
    /// that parsed never gives: a kept connection always has the kind of its checks).
    fn check(&self, check: &dyn AnyCheck, plan: &CheckPlan) -> Option<Arc<dyn Probe>>;
}

struct Connection<K: Kind>(K::Source);

impl<K: Kind> Connected for Connection<K> {
    fn health(&self) -> Arc<dyn Probe> {
        self.0.health()
    }

    fn check(&self, check: &dyn AnyCheck, plan: &CheckPlan) -> Option<Arc<dyn Probe>> {
        let check = check.as_any().downcast_ref::<CheckConfig<K::Check>>()?;
        Some(self.0.check(check, plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::MetricType;

    /// The labels RabbitMQ queue metrics share, called "queue labels" in docs/metrics.md.
    const QUEUE_LABELS: [&str; 4] = ["source", "vhost", "queue", "dead_letter"];

    /// docs/metrics.md rows: name -> (type, label names).
    fn documented() -> std::collections::BTreeMap<String, (String, Vec<String>)> {
        include_str!("../../docs/metrics.md")
            .lines()
            .filter(|l| l.starts_with("| `pulse_"))
            .map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cols[1].trim_matches('`').to_owned();
                // Backticked names before any aside in parentheses are the labels.
                let label_col = cols[3].split('(').next().unwrap_or_default();
                let mut labels: Vec<String> = Vec::new();
                if label_col.contains("queue labels") {
                    labels.extend(QUEUE_LABELS.iter().map(|s| s.to_string()));
                }
                labels.extend(label_col.split('`').skip(1).step_by(2).map(str::to_owned));
                (name, (cols[2].to_owned(), labels))
            })
            .collect()
    }

    #[test]
    fn docs_metrics_md_matches_every_built_in_metric_table() {
        let docs = documented();
        let tables: Vec<&Metric> = KINDS
            .iter()
            .flat_map(|e| e.metrics)
            .chain(crate::heartbeat::METRICS)
            .collect();
        for m in &tables {
            let (kind, labels) = docs
                .get(m.name)
                .unwrap_or_else(|| panic!("{} is not in docs/metrics.md", m.name));
            let want = match m.kind {
                MetricType::Gauge => "gauge",
                MetricType::Counter => "counter",
                MetricType::Histogram => "histogram",
            };
            assert_eq!(kind, want, "type of {}", m.name);
            assert_eq!(labels, &m.labels, "labels of {}", m.name);
        }
        // And the other way: every documented metric of a kind is declared in its table.
        let prefixes: Vec<String> = KINDS
            .iter()
            .map(|e| format!("pulse_{}_", e.name))
            .chain(["pulse_worker_".to_owned()])
            .collect();
        for name in docs.keys() {
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                assert!(
                    tables.iter().any(|m| m.name == name),
                    "{name} is documented but declared in no table"
                );
            }
        }
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
    fn an_unknown_kind_names_every_known_one() {
        let mut errors = Vec::new();
        assert!(parse_kind("mysql", Value::Null, "sources[3]", &mut errors).is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "sources[3].kind");
        assert_eq!(
            errors[0].message,
            "unknown source kind \"mysql\": use one of logfile, mongodb, postgres, rabbitmq, redis, s3, stripe"
        );
    }
}
