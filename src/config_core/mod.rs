//! The config core every source kind builds on: errors with their field path, durations,
//! the fields every source and check share, a check of any kind ([`CheckConfig`]), and the
//! per-check plan the scheduler runs.
//!
//! It depends on no source kind: the file as a whole and the kind registry sit above the
//! kinds, in `crate::config` and `crate::sources::registry`. Parsing helpers live in
//! [`parse`], `${env:}`/`${file:}` references in `interpolate`, shared naming and timing rules
//! in [`validate`], errors and their report in `errors`, durations, sizes and time zones in
//! `units` (both re-exported here), `{{now-5m}}` windows of check arguments in [`time_template`].

pub mod collisions;
pub mod display;
pub mod drop_alert;
mod errors;
pub(crate) mod interpolate;
pub mod names;
pub mod objective;
pub mod parse;
pub mod positions;
pub mod shape;
pub mod suggest;
pub mod switch;
pub mod template;
pub mod time_template;
pub mod tls;
mod units;
pub mod validate;
pub mod yaml_error;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

pub use errors::{ConfigError, ConfigErrors};
pub(crate) use interpolate::interpolate;
pub use interpolate::{expand_files, secret_files};
pub use switch::Switch;
pub use units::{dur_text, size_text, Dur, Size, TimeZone, MAX_DURATION};

/// The default `max_bytes` per series of `max_series`: about twice a series with a few short
/// labels, so the byte cap binds only where label values are long.
pub const BYTES_PER_SERIES: usize = 1024;

/// `global:` defaults, overridable per source and per check.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// How often business checks run (default 60s; 1s to 7d).
    pub interval: Dur,
    /// How long a business check may take before it is cancelled (default 10s).
    pub timeout: Dur,
    /// How often each source's health probe runs (default 15s; 1s to 7d).
    pub health_interval: Dur,
    /// How long a health probe may take (default 5s).
    pub health_timeout: Dur,
    /// Most series one check may publish; the excess is dropped and counted (default 1000, at most 1,000,000).
    pub max_series: usize,
    /// Most bytes one check's series may take in the text exposition; series past it are
    /// dropped and counted like those past `max_series` (default: 1024 per series of the
    /// check's `max_series`, so 1 MiB with the default 1000; 1024 to 268435456). Checks bounded
    /// by a cap of their own (`max_workers`, `max_queues`) have no byte cap unless one is set.
    pub max_bytes: Option<usize>,
    /// The platform's time zone, as an IANA name (`Europe/Berlin`, `America/New_York`): the
    /// exporter publishes its UTC offset (`pulse_timezone_offset_seconds`), so that the
    /// business signals compare an hour with the same local hour of past weeks across
    /// daylight-saving changes. Unset: UTC, and the usual is the same UTC hour.
    pub timezone: Option<TimeZone>,
    /// Most targets leased at once through `templates:` (`/probe?template=…&target=…`); a
    /// request for one more is refused with 503 until an idle lease ends (default 1000; 1 to
    /// 100000).
    pub max_leased_targets: usize,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            interval: Dur(Duration::from_secs(60)),
            timeout: Dur(Duration::from_secs(10)),
            health_interval: Dur(Duration::from_secs(15)),
            health_timeout: Dur(Duration::from_secs(5)),
            max_series: 1000,
            max_bytes: None,
            timezone: None,
            max_leased_targets: 1000,
        }
    }
}

/// Fields every source has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceCommon {
    /// Unique source name; the `source` label of every metric about it.
    pub name: String,
    /// The kind of system: the name of one of the `kind: …` sections below, which list each
    /// kind's own fields.
    pub kind: String,
    /// Default interval for this source's checks (overrides `global.interval`).
    pub interval: Option<Dur>,
    /// Default timeout for this source's checks (overrides `global.timeout`).
    pub timeout: Option<Dur>,
    /// Health probe interval (overrides `global.health_interval`).
    pub health_interval: Option<Dur>,
    /// Health probe timeout (overrides `global.health_timeout`).
    pub health_timeout: Option<Dur>,
    /// The `tier` label `/sd` gives this source's target (e.g. `critical`, `business`), for a
    /// scrape config to relabel on; not a label of the source's series.
    pub tier: Option<String>,
    /// The `platform` label `/sd` gives this source's target (e.g. `hayon`); not a label of
    /// the source's series.
    pub platform: Option<String>,
    /// The source's availability objective: the share of its health probes that must
    /// succeed over a window (default 99.5 % over 28 days). A mapping changes the target or
    /// the window (`{ target: 99.9, window: 30d }`); `false` turns it off. The generated rules
    /// page when its error budget burns fast (docs/objectives.md).
    #[serde(default)]
    pub objective: switch::Switch<objective::Objective>,
    /// Latency objectives on the source's latency histogram (Redis commands, MongoDB
    /// collections' operations; refused for a kind without one): `[{ name: get-fast, series:
    /// { command: get }, under: 4096us, target: 99 }]`. Each gets the burn-rate rules of an
    /// objective (docs/objectives.md).
    #[serde(default)]
    pub latency_objectives: Vec<objective::LatencyObjective>,
}

impl SourceCommon {
    /// Keys of a source mapping that belong to [`SourceCommon`]; the rest go to the kind.
    pub const KEYS: [&'static str; 10] = [
        "name",
        "kind",
        "interval",
        "timeout",
        "health_interval",
        "health_timeout",
        "tier",
        "platform",
        "objective",
        "latency_objectives",
    ];
}

/// Fields every check has, whatever its source kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckCommon {
    /// Check name, unique within its source (defaults to the metric name, or the key for
    /// Redis keys). It is the `check` label of the check's self metrics.
    pub name: Option<String>,
    /// Metric name the check's samples are published under.
    pub metric: Option<String>,
    /// HELP text of the metric.
    pub help: Option<String>,
    /// How often the check runs (overrides source and global).
    pub interval: Option<Dur>,
    /// How long one run may take before it is cancelled (overrides source and global).
    pub timeout: Option<Dur>,
    /// How long last good samples are served after failures start (default 3 intervals).
    pub stale_after: Option<Dur>,
    /// Most series the check may publish (overrides `global.max_series`).
    pub max_series: Option<usize>,
    /// Most bytes of exposition the check may publish (overrides `global.max_bytes`).
    pub max_bytes: Option<usize>,
    /// Fixed labels added to every sample of the check.
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// Unit of the check's panel in the generated dashboard, a Grafana unit id such as `s`,
    /// `bytes`, `percentunit` or `currencyUSD` (default: from the metric name: `_seconds` s,
    /// `_bytes` bytes, `_ratio` percentunit, `_timestamp_seconds` an age, `_total` a rate,
    /// `_usd`/`_eur`/`_gbp` a currency, else a plain number).
    pub unit: Option<display::Unit>,
    /// Panel of the check in the generated dashboard: `stat`, `timeseries`, `table` or
    /// `bargauge` (default: from what the check publishes: a stat for one sample, a time series
    /// for a few label values, a table for a top-N list, bars for `summary` statistics).
    pub panel: Option<display::PanelKind>,
    /// Description of the check's panel and alerts (default: `help`).
    pub description: Option<String>,
    /// A threshold alert on the check's metric in the generated rules, e.g.
    /// `{ above: 100, for: 10m, severity: warning }`.
    pub alert: Option<display::Threshold>,
    /// A drop-against-usual alert in the generated rules, for a business signal that swings
    /// between night and day: fires when the value falls far below what the same time usually
    /// shows, e.g. `{ ratio: 0.5, min_usual: 20 }` (the same hour of the last four weeks).
    pub drop: Option<drop_alert::DropAlert>,
    /// An objective on the check's runs: the share that must succeed over a window, watched by
    /// burn-rate alerts (warnings) in the generated rules. None by default; `true` takes 99 %
    /// over 28 days, a mapping sets `target` and `window` (docs/objectives.md).
    pub objective: Option<switch::Switch<objective::Objective>>,
}

impl CheckCommon {
    /// The check's objective, its target defaulted; `None` when it has none.
    pub fn objective(&self) -> Option<objective::Objective> {
        let o = self.objective.as_ref()?.on()?;
        Some(objective::Objective {
            target: Some(o.target.unwrap_or(objective::DEFAULT_CHECK_TARGET)),
            window: o.window,
        })
    }

    /// Keys of a check mapping that belong to [`CheckCommon`]; the rest go to the kind.
    pub const KEYS: [&'static str; 15] = [
        "name",
        "metric",
        "help",
        "interval",
        "timeout",
        "stale_after",
        "max_series",
        "max_bytes",
        "const_labels",
        "unit",
        "panel",
        "description",
        "alert",
        "drop",
        "objective",
    ];
}

/// One check of a source: the shared fields plus what the kind runs (`S`, the kind's own
/// check type, so a probe receives only checks of its kind).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig<S> {
    /// Path of this check in the file, e.g. `sources[0].checks[3]`.
    pub path: String,
    /// Shared fields.
    pub common: CheckCommon,
    /// The kind-specific query.
    pub spec: S,
}

/// What a kind's check type tells the rest of the exporter about itself.
pub trait CheckSpec: fmt::Debug + Clone + PartialEq + Send + Sync + 'static {
    /// Name of a check that sets none (default: its metric name).
    fn default_name(&self, common: &CheckCommon) -> String {
        common.metric.clone().unwrap_or_default()
    }

    /// False for checks that publish only built-in metrics (heartbeats), whose `metric` field
    /// the kind rejects itself.
    fn names_metric(&self) -> bool {
        true
    }

    /// True for checks that bound their series with a cap of their own (RabbitMQ's
    /// `max_queues`, a heartbeat check's `max_workers`, each counting what it drops):
    /// `max_series` does not apply to them, so nothing is counted as dropped twice.
    fn bounds_itself(&self) -> bool {
        !self.names_metric()
    }

    /// What the check publishes, for the generated dashboard and rules (default: nothing
    /// they show; built-in checks whose kind shows them some other way).
    fn series(&self, _common: &CheckCommon) -> Vec<crate::config_core::shape::Series> {
        Vec::new()
    }
}

/// A check of any kind, as the kind-independent code (validation, plans, reload) sees it.
pub trait AnyCheck: fmt::Debug + Send + Sync + 'static {
    /// Path of the check in the file.
    fn path(&self) -> &str;
    /// The shared fields.
    fn common(&self) -> &CheckCommon;
    /// The check's name: explicit, else the kind's default (metric name or key).
    fn name(&self) -> String;
    /// See [`CheckSpec::names_metric`].
    fn names_metric(&self) -> bool;
    /// See [`CheckSpec::bounds_itself`].
    fn bounds_itself(&self) -> bool;
    /// True when `other` runs exactly the same check (its place in the file aside), so a
    /// reload may keep it running.
    fn same_check(&self, other: &dyn AnyCheck) -> bool;
    /// For [`AnyCheck::same_check`]: the concrete type.
    fn as_any(&self) -> &dyn Any;
}

impl<S: CheckSpec> AnyCheck for CheckConfig<S> {
    fn path(&self) -> &str {
        &self.path
    }

    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn name(&self) -> String {
        self.common
            .name
            .clone()
            .unwrap_or_else(|| self.spec.default_name(&self.common))
    }

    fn names_metric(&self) -> bool {
        self.spec.names_metric()
    }

    fn bounds_itself(&self) -> bool {
        self.spec.bounds_itself()
    }

    fn same_check(&self, other: &dyn AnyCheck) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| o.common == self.common && o.spec == self.spec)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Name of every source's built-in health check (reserved: no user check may take it).
pub const HEALTH_CHECK: &str = "health";

/// The resolved timing and limits of one check, as the scheduler runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// Source name.
    pub source: String,
    /// Source kind (`postgres`, `redis`, ...).
    pub kind: &'static str,
    /// Check name (`health` for the health probe).
    pub check: String,
    /// Time between runs.
    pub interval: Duration,
    /// Time one run may take.
    pub timeout: Duration,
    /// How long samples outlive the last success.
    pub stale_after: Duration,
    /// Series cap.
    pub max_series: usize,
    /// Cap on the bytes of the check's exposition.
    pub max_bytes: usize,
    /// Fixed labels added to every sample.
    pub const_labels: Vec<(String, String)>,
}

impl CheckPlan {
    /// True for a source's health probe, whose outcome is `pulse_source_up`.
    pub fn is_health(&self) -> bool {
        self.check == HEALTH_CHECK
    }

    /// A plan for unit tests: a Postgres check of `source` every second, its samples stale
    /// after three, at most 100 series.
    #[cfg(test)]
    pub(crate) fn for_test(source: &str, check: &str) -> CheckPlan {
        CheckPlan {
            source: source.into(),
            kind: "postgres",
            check: check.into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            stale_after: Duration::from_secs(3),
            max_series: 100,
            max_bytes: usize::MAX,
            const_labels: vec![],
        }
    }
}

impl SourceCommon {
    /// The health probe's plan: source, then global timing.
    pub fn health_plan(&self, kind: &'static str, global: &Global) -> CheckPlan {
        let interval = self.health_interval.unwrap_or(global.health_interval).0;
        CheckPlan {
            source: self.name.clone(),
            kind,
            check: HEALTH_CHECK.to_owned(),
            interval,
            timeout: self.health_timeout.unwrap_or(global.health_timeout).0,
            stale_after: interval.saturating_mul(3),
            max_series: usize::MAX,
            max_bytes: usize::MAX,
            const_labels: Vec::new(),
        }
    }

    /// A check's plan: check, then source, then the kind's default, then global timing.
    pub fn check_plan(
        &self,
        kind: &'static str,
        kind_interval: Option<Duration>,
        global: &Global,
        check: &dyn AnyCheck,
    ) -> CheckPlan {
        let c = check.common();
        let interval = c
            .interval
            .or(self.interval)
            .map(|d| d.0)
            .or(kind_interval)
            .unwrap_or(global.interval.0);
        let max_series = match check.bounds_itself() {
            true => usize::MAX,
            false => c.max_series.unwrap_or(global.max_series),
        };
        CheckPlan {
            source: self.name.clone(),
            kind,
            check: check.name(),
            interval,
            timeout: c.timeout.or(self.timeout).unwrap_or(global.timeout).0,
            stale_after: c
                .stale_after
                .map(|d| d.0)
                .unwrap_or(interval.saturating_mul(3)),
            max_series,
            max_bytes: c
                .max_bytes
                .or(global.max_bytes)
                .unwrap_or(max_series.saturating_mul(BYTES_PER_SERIES)),
            const_labels: c.const_labels.clone().into_iter().collect(),
        }
    }
}

/// HELP text of a check's metric, saying it is served from cache.
pub fn check_help(check: &dyn AnyCheck, interval: Duration) -> String {
    let base = check
        .common()
        .help
        .clone()
        .unwrap_or_else(|| format!("Result of check {}.", check.name()));
    format!(
        "{} (cached by pulse-exporter, refreshed every {}).",
        base.trim_end_matches('.'),
        humantime::format_duration(interval)
    )
}

/// A struct whose fields [`Split`] takes out of a shared mapping.
pub trait FieldSet {
    /// The keys that belong to this struct.
    const KEYS: &'static [&'static str];
}

/// Splits a mapping into the entries whose keys are in `keys` and the rest.
pub(crate) fn partition(
    map: serde_yaml::Mapping,
    keys: &[&str],
) -> (serde_yaml::Mapping, serde_yaml::Mapping) {
    let (mut picked, mut rest) = (serde_yaml::Mapping::new(), serde_yaml::Mapping::new());
    for (k, v) in map {
        if k.as_str().is_some_and(|k| keys.contains(&k)) {
            picked.insert(k, v);
        } else {
            rest.insert(k, v);
        }
    }
    (picked, rest)
}

/// Two structs read from one YAML mapping: `A` takes the keys it names, `B` the rest, each with
/// its own unknown-field check (serde's `flatten` would switch that check off). Read with
/// [`parse::parse_split`], which keeps the path of a bad field.
#[derive(Debug, Clone, PartialEq)]
pub struct Split<A, B>(pub A, pub B);

impl<S: CheckSpec> CheckConfig<S> {
    /// HELP text of the check's metric; see [`check_help`].
    pub fn help(&self, interval: Duration) -> String {
        check_help(self, interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keeps_every_entry_on_one_side() {
        let map: serde_yaml::Mapping =
            serde_yaml::from_str("{ pool: gpu, max_age: 2m, pattern: 'w:*', 7: x }").unwrap();
        let (picked, rest) = partition(map, &["pool", "max_age"]);
        let keys = |m: &serde_yaml::Mapping| -> Vec<String> {
            m.keys()
                .map(|k| serde_yaml::to_string(k).unwrap().trim().to_owned())
                .collect()
        };
        assert_eq!(keys(&picked), ["pool", "max_age"]);
        // A key that is no string belongs to the rest, where its struct can reject it.
        assert_eq!(keys(&rest), ["pattern", "7"]);
    }
}
