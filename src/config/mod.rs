//! The config core every source kind builds on: errors with their field path, durations,
//! the fields every source and check share, a check of any kind ([`CheckConfig`]), and the
//! per-check plan the scheduler runs.
//!
//! It depends on no source kind: the file as a whole and the kind registry sit above the
//! kinds, in `crate::configfile` and `crate::sources::registry`. Parsing helpers live in
//! [`parse`], `${env:}`/`${file:}` references in `interpolate`, shared naming and timing rules
//! in [`validate`].

pub mod collisions;
pub mod display;
pub mod drop_alert;
pub(crate) mod interpolate;
pub mod names;
pub mod parse;
pub mod positions;
pub mod shape;
pub mod tls;
pub mod validate;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub(crate) use interpolate::interpolate;
pub use interpolate::{expand_files, secret_files};

/// One problem in a config file: where (a path such as `sources[1].checks[0].labels`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field; empty for the file as a whole.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Line and column (from 1) of the field in the file, where the YAML has one.
    pub at: Option<(usize, usize)>,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
            at: None,
        }
    }
}

/// Characters of a path or message shown: a hostile value (a 10 MB name) is echoed in part,
/// so the report stays readable.
const SHOWN_CHARS: usize = 500;

/// Errors listed in a report; the rest are counted.
const SHOWN_ERRORS: usize = 50;

/// `text`, cut at [`SHOWN_CHARS`] characters with a note of how much was left out.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => text.into(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut).into(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&shown(&self.message))?;
        } else {
            write!(f, "{}: {}", shown(&self.path), shown(&self.message))?;
        }
        match self.at {
            Some((line, column)) => write!(f, " (line {line}, column {column})"),
            None => Ok(()),
        }
    }
}

/// Every error found in one config file, reported together.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} config error(s):", self.0.len())?;
        for e in self.0.iter().take(SHOWN_ERRORS) {
            write!(f, "\n  - {e}")?;
        }
        if self.0.len() > SHOWN_ERRORS {
            write!(
                f,
                "\n  … and {} more; fix these first",
                self.0.len() - SHOWN_ERRORS
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Longest duration any field takes.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// A duration written the human way in YAML: `15s`, `5m`, `1h30m`, `72h`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is the likeliest mistake: name the fix instead of a type mismatch.
        let text = match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}): write a number and a unit, e.g. 500ms, 15s, 5m, 1h"
            ))
        })?;
        // Bounded here so that no arithmetic on a configured duration can overflow.
        if d > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration {text:?} is longer than a year: use at most 365d"
            )));
        }
        Ok(Dur(d))
    }
}

/// In the generated reference and its defaults, a duration is text such as `1m 30s`.
impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&dur_text(self.0))
    }
}

/// A duration in the largest whole unit that writes it exactly: `24h`, `90s`, `500ms` (a
/// Prometheus duration too).
pub fn dur_text(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration" })
    }
}

/// A size in bytes written the human way in YAML: `64KiB`, `10GiB`, `500MB`, or a bare number
/// of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Size(b.0))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid size {text:?} ({e}): write a number and a unit, e.g. 64KiB, 16MiB, 10GiB"
                ))
            })
    }
}

impl serde::Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&size_text(self.0))
    }
}

impl schemars::JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "integer"], "format": "byte-size" })
    }
}

/// A size in the largest binary unit that writes it exactly: `10GiB`, `64KiB`, `1000B`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, n)| bytes > 0 && bytes.is_multiple_of(*n))
        .map_or_else(|| format!("{bytes}B"), |(u, n)| format!("{}{u}", bytes / n))
}

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
}

/// An IANA time zone, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.trim().parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone {text:?}: write an IANA name such as Europe/Berlin, America/New_York or UTC"
            ))
        })
    }
}

impl serde::Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl schemars::JsonSchema for TimeZone {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeZone".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "iana-time-zone" })
    }
}

impl TimeZone {
    /// Its offset from UTC at `at`, in seconds (east positive).
    pub fn offset_seconds(&self, at: chrono::DateTime<chrono::Utc>) -> i32 {
        use chrono::Offset;
        use chrono::TimeZone as _;
        self.0
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }
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
}

impl SourceCommon {
    /// Keys of a source mapping that belong to [`SourceCommon`]; the rest go to the kind.
    pub const KEYS: [&'static str; 6] = [
        "name",
        "kind",
        "interval",
        "timeout",
        "health_interval",
        "health_timeout",
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
}

impl CheckCommon {
    /// Keys of a check mapping that belong to [`CheckCommon`]; the rest go to the kind.
    pub const KEYS: [&'static str; 14] = [
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
    fn series(&self, _common: &CheckCommon) -> Vec<crate::config::shape::Series> {
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
    fn a_report_shows_enough_of_a_hostile_value_and_counts_the_rest() {
        let long = ConfigError::new(
            "sources[0].name",
            format!("{:?} is bad", "é".repeat(10_000)),
        );
        let text = long.to_string();
        assert!(text.chars().count() < 600, "{}", text.len());
        assert!(text.ends_with("more bytes)"), "{text}");
        let many = ConfigErrors(
            (0..60)
                .map(|i| ConfigError::new(format!("p{i}"), "x"))
                .collect(),
        );
        let text = many.to_string();
        assert!(text.starts_with("60 config error(s):"));
        assert!(text.contains("p49: x") && !text.contains("p50: x"));
        assert!(text.ends_with("… and 10 more; fix these first"), "{text}");
    }

    #[test]
    fn sizes_read_units_and_are_shown_in_their_largest_exact_one() {
        let size = |v: &str| serde_yaml::from_str::<Size>(v).map(|s| s.0);
        assert_eq!(size("10GiB").unwrap(), 10 << 30);
        assert_eq!(size("64 KiB").unwrap(), 64 << 10);
        assert_eq!(size("500MB").unwrap(), 500_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        let err = size("ten gigs").unwrap_err().to_string();
        assert!(err.contains("e.g. 64KiB"), "{err}");
        assert!(size("-1").is_err());
        assert_eq!(size_text(10 << 30), "10GiB");
        assert_eq!(size_text(1536), "1536B");
        assert_eq!(size_text(64 << 10), "64KiB");
        assert_eq!(size_text(0), "0B");
    }

    #[test]
    fn a_time_zone_is_named_the_iana_way_and_its_offset_follows_daylight_saving() {
        let tz: TimeZone = serde_yaml::from_str("Europe/Berlin").unwrap();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        // Summer time ends on the last Sunday of October, at 01:00 UTC.
        assert_eq!(tz.offset_seconds(at("2026-10-25T00:59:00Z")), 7200);
        assert_eq!(tz.offset_seconds(at("2026-10-25T01:00:00Z")), 3600);
        let err = serde_yaml::from_str::<TimeZone>("CEST+2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("IANA name such as Europe/Berlin"), "{err}");
    }

    #[test]
    fn durations_are_shown_in_their_largest_exact_unit() {
        let text = |secs: u64| dur_text(Duration::from_secs(secs));
        assert_eq!(
            [text(0), text(90), text(120), text(86_400)],
            ["0s", "90s", "2m", "24h"]
        );
        assert_eq!(dur_text(Duration::from_millis(1500)), "1500ms");
    }

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
