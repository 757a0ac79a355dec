//! Log-file source: tails a JSON-lines file (such as `/data/logs/ai-events.log`), counting
//! events by configured fields into counters and observing a numeric field into histograms.
//!
//! Each run reads what was appended since the last one. A rename-and-create rotation is
//! followed (the old file is read to its end first, then the new one from its start), a
//! truncation restarts from the start, and lines that are not JSON are counted, never fatal.
//! A new file is read from its end by default. The position per source and path outlives
//! reloads, so a reload that changes the counters neither re-reads nor skips lines.
//!
//! Only regular files are read: a FIFO would block an `open` or a read forever, a device
//! such as `/dev/urandom` never ends. Files are opened non-blocking and checked after the
//! open, every file operation runs off the async workers, and a run that overstays its
//! deadline fails alone while the rest of the exporter goes on.

mod count;
mod file;
mod metrics;
mod position;
mod source;
mod tail;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Kind, Parsed};
use crate::config_core::parse::builtin;
use crate::config_core::validate::{alert_fits, label_name, metric_name};
use crate::config_core::{CheckConfig, CheckSpec, ConfigError};
use crate::series::metric::Metric;
pub use count::MAX_LINE_BYTES;
use file::file_type_name;
pub use metrics::METRICS;
pub use source::LogfileSource;

/// Default interval of log-file checks: reading appended lines is cheap.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Most bytes read per run, so a huge backlog is caught up over several runs.
pub const MAX_BYTES_PER_RUN: u64 = 64 * 1024 * 1024;

/// Settings of a `kind: logfile` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogfileConfig {
    /// The JSON-lines file to tail.
    pub path: PathBuf,
    /// Where to start in a file seen for the first time: `end` (default) or `beginning`.
    #[serde(default)]
    pub start_at: StartAt,
    /// Counters of lines, by field values.
    #[serde(default)]
    pub counters: Vec<CounterConfig>,
    /// Histograms of a numeric field.
    #[serde(default)]
    pub histograms: Vec<HistogramConfig>,
}

/// Where reading starts in a file seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only lines written from now on.
    #[default]
    End,
    /// The whole file.
    Beginning,
}

/// A counter of matching lines.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterConfig {
    /// Metric name; must end in `_total`.
    pub metric: String,
    /// HELP text.
    pub help: Option<String>,
    /// Label name -> JSON field (dotted path, e.g. `error.kind`); a missing field is "".
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only lines whose fields equal these values (field -> value) are counted.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, String>,
    /// An alert on the counter's rate in the generated rules, or with `ratio`, on the share
    /// of some label values (`{ above: 0.25, ratio: { label: status, values: [error] } }`).
    pub alert: Option<crate::config_core::display::Threshold>,
}

/// A histogram of a numeric field.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistogramConfig {
    /// Metric name, in base units (e.g. `app_ai_latency_seconds`).
    pub metric: String,
    /// HELP text.
    pub help: Option<String>,
    /// The numeric field observed (dotted path).
    pub field: String,
    /// Factor applied to the field, e.g. 0.001 for milliseconds into seconds (default 1).
    #[serde(default = "one")]
    pub scale: f64,
    /// Bucket upper bounds, ascending (`+Inf` is added).
    pub buckets: Vec<f64>,
    /// Label name -> JSON field.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only lines whose fields equal these values are observed.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}

/// The built-in check of a log-file source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCheck;

impl CheckSpec for TailCheck {}

/// `kind: logfile`.
pub struct Logfile;

impl Kind for Logfile {
    const NAME: &'static str = "logfile";
    const TITLE: &'static str = "Log files";
    const EXAMPLE: &'static str = include_str!("example.yml");
    const METRICS_INTRO: &'static str = "From `kind: logfile` sources; the counters and histograms the config defines take the names it \
        gives them.";
    const DEFAULT_INTERVAL: Option<Duration> = Some(DEFAULT_INTERVAL);
    type Settings = LogfileConfig;
    type Check = TailCheck;
    type Source = LogfileSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its one check (`tail`) is built in.
    fn builtin_checks(_settings: &LogfileConfig, path: &str) -> Vec<CheckConfig<TailCheck>> {
        vec![builtin(path, "tail", TailCheck)]
    }

    /// The `tail` check publishes every configured counter and histogram.
    fn series(
        parsed: &Parsed<Self>,
        _check: &CheckConfig<TailCheck>,
    ) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::shape::{Series, Shape};
        let s = &parsed.settings;
        let counters = s
            .counters
            .iter()
            .map(|c| (&c.metric, &c.help, &c.labels, Shape::Counter, &c.alert));
        let histograms = s
            .histograms
            .iter()
            .map(|h| (&h.metric, &h.help, &h.labels, Shape::Histogram, &None));
        counters
            .chain(histograms)
            .map(|(metric, help, labels, shape, alert)| Series {
                help: help.clone(),
                alert: alert.clone(),
                ..Series::new(metric, labels.keys().cloned().collect(), shape)
            })
            .collect()
    }

    fn validate(parsed: &Parsed<Self>, p: &str, errors: &mut Vec<ConfigError>) {
        let c = &parsed.settings;
        if !c.path.is_absolute() {
            errors.push(ConfigError::new(
                format!("{p}.path"),
                "must be an absolute path",
            ));
        }
        // A file that does not exist yet is fine (the application creates it); one that exists
        // must be a regular file. `stat` never blocks, even on a FIFO.
        if let Ok(meta) = std::fs::metadata(&c.path) {
            if !meta.is_file() {
                errors.push(ConfigError::new(
                    format!("{p}.path"),
                    format!(
                        "{} is {}: a log source tails a regular file (a FIFO would block, a device never ends)",
                        c.path.display(),
                        file_type_name(meta.file_type())
                    ),
                ));
            }
        }
        if c.counters.is_empty() && c.histograms.is_empty() {
            errors.push(ConfigError::new(
                p,
                "define at least one of `counters` or `histograms`",
            ));
        }
        for (i, ctr) in c.counters.iter().enumerate() {
            let cp = format!("{p}.counters[{i}]");
            metric_name(&format!("{cp}.metric"), &ctr.metric, errors);
            if !ctr.metric.ends_with("_total") {
                errors.push(ConfigError::new(
                    format!("{cp}.metric"),
                    "a counter's name must end in _total",
                ));
            }
            for name in ctr.labels.keys() {
                label_name(&format!("{cp}.labels"), name, errors);
            }
            if let Some(alert) = &ctr.alert {
                let series = crate::config_core::shape::Series::new(
                    &ctr.metric,
                    ctr.labels.keys().cloned().collect(),
                    crate::config_core::shape::Shape::Counter,
                );
                alert_fits(&format!("{cp}.alert"), alert, &[series], errors);
            }
        }
        for (i, h) in c.histograms.iter().enumerate() {
            let hp = format!("{p}.histograms[{i}]");
            metric_name(&format!("{hp}.metric"), &h.metric, errors);
            for name in h.labels.keys() {
                label_name(&format!("{hp}.labels"), name, errors);
                if name == "le" {
                    errors.push(ConfigError::new(
                        format!("{hp}.labels"),
                        "`le` is the bucket label of every histogram",
                    ));
                }
            }
            if h.buckets.is_empty()
                || h.buckets.windows(2).any(|w| w[0] >= w[1])
                || h.buckets.iter().any(|b| !b.is_finite())
            {
                errors.push(ConfigError::new(
                    format!("{hp}.buckets"),
                    "list finite upper bounds in ascending order, e.g. [0.1, 0.5, 1, 5]",
                ));
            }
            if !h.scale.is_finite() || h.scale == 0.0 {
                errors.push(ConfigError::new(
                    format!("{hp}.scale"),
                    "must be a finite, non-zero number",
                ));
            }
        }
    }

    fn display_endpoint(settings: &LogfileConfig) -> String {
        settings.path.display().to_string()
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::assert_reports;

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            "sources:\n  - { name: logs, kind: logfile, path: relative.log }",
            &[
                "sources[0].path: must be an absolute path",
                "sources[0]: define at least one of `counters` or `histograms`",
            ],
        );
        assert_reports(
            r#"
sources:
  - name: logs
    kind: logfile
    path: /var/log/ai.log
    counters: [{ metric: app_events }]
    histograms: [{ metric: app_latency_seconds, field: ms, buckets: [5, 1], scale: 0, labels: { le: x } }]
"#,
            &[
                "sources[0].counters[0].metric: a counter's name must end in _total",
                "sources[0].histograms[0].buckets: list finite upper bounds in ascending order",
                "sources[0].histograms[0].scale: must be a finite, non-zero number",
                "sources[0].histograms[0].labels: `le` is the bucket label",
            ],
        );
    }
}
