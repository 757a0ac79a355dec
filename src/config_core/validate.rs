//! Shared rules every kind and the file as a whole apply: metric and label names, and timing
//! that contradicts itself. They record errors and never stop at the first one, so that every
//! problem in a file is reported in one go.

use std::time::Duration;

use super::display::Threshold;
use super::drop_alert::DropAlert;
use super::names::{is_label_name, is_metric_name, RESERVED_LABELS};
use super::{CheckPlan, ConfigError};
use crate::config_core::shape::{Series, Shape};

/// Shortest interval a check may have: below this a probe is load, not observation.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Most series one check may publish: more in one check is an outage of the Prometheus that
/// scrapes it, not a metric.
pub const MAX_SERIES: u64 = 1_000_000;

/// Smallest `max_bytes`: one series with a few labels fits.
pub const MIN_BYTES: u64 = 1024;

/// Largest `max_bytes` (256 MiB): what one check may add to every scrape.
pub const MAX_BYTES: u64 = 256 << 20;

/// Longest interval of a check or health probe: a check run less than weekly is a report.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// `patterns` compiled to match whole strings (`^(?:…)$`), one error per pattern that does not
/// compile, at `path[i]`: the include and exclude lists of the config are written as whole
/// names or addresses, never as substrings.
pub fn whole_match_patterns(
    patterns: &[String],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<regex::Regex> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{path}[{i}]"),
                    format!("not a regular expression: {e}"),
                ));
                None
            }
        })
        .collect()
}

/// What every statistics check (Redis's and MongoDB's `latency:`, Postgres's `statements:`
/// and `tables:`) has in common: how often it reads the server's statistics, how long a read
/// may take, how many items it publishes. Each check's settings keep these three fields by
/// name (a flattened struct would lose `deny_unknown_fields`, which names a misspelt field),
/// and take their defaults and rules from here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Statistics {
    /// The window each read's numbers cover.
    pub interval: Duration,
    /// How long one read may take.
    pub timeout: Duration,
    /// Items published.
    pub top: usize,
}

/// The defaults of every statistics check: a read a minute, 5 s for it, the top 20.
pub const STATISTICS: Statistics = Statistics {
    interval: Duration::from_secs(60),
    timeout: Duration::from_secs(5),
    top: 20,
};

impl Statistics {
    /// Records what is wrong, at `path`: the interval is the window its numbers cover, 10s to
    /// 1h; the timeout must end each read before the next one starts; the top is 1 to 100.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if !(10..=3600).contains(&self.interval.as_secs()) {
            errors.push(ConfigError::new(
                format!("{path}.interval"),
                "must be between 10s and 1h: the window each read's numbers cover",
            ));
        }
        if self.timeout.is_zero() || self.timeout >= self.interval {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                "must be above 0 and shorter than the interval, or reads would overlap",
            ));
        }
        in_range(&format!("{path}.top"), self.top as u64, 1, 100, errors);
    }
}

/// Records what is wrong with the timing of a load sampler (Postgres's and MongoDB's
/// `load`): a sample every 1s to 1m, each over before the next starts.
pub fn sampler_timing(
    path: &str,
    interval: Duration,
    timeout: Duration,
    errors: &mut Vec<ConfigError>,
) {
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&interval) {
        errors.push(ConfigError::new(
            format!("{path}.interval"),
            "must be between 1s and 1m: the time between two samples",
        ));
    }
    if timeout.is_zero() || timeout >= interval {
        errors.push(ConfigError::new(
            format!("{path}.timeout"),
            "must be above 0 and shorter than the interval, or samples would overlap",
        ));
    }
}

/// Records an error unless `min <= value <= max`, naming the field and the bound it crosses.
pub fn in_range(path: &str, value: u64, min: u64, max: u64, errors: &mut Vec<ConfigError>) {
    if value < min {
        errors.push(ConfigError::new(path, format!("must be at least {min}")));
    } else if value > max {
        errors.push(ConfigError::new(
            path,
            format!("{value} is too large: use at most {max}"),
        ));
    }
}

/// Records an error unless `metric` is a valid name outside the reserved `pulse_` namespace.
pub fn metric_name(path: &str, metric: &str, errors: &mut Vec<ConfigError>) {
    if !is_metric_name(metric) {
        errors.push(ConfigError::new(
            path,
            format!("{metric:?} is not a valid Prometheus metric name: use letters, digits, `_` and `:`, not starting with a digit"),
        ));
    } else if metric.starts_with("pulse_") {
        errors.push(ConfigError::new(
            path,
            format!("{metric:?} uses the `pulse_` prefix, which is reserved for built-in metrics: use your own prefix such as `app_`"),
        ));
    }
}

/// Records an error unless `label` is a valid label name that pulse-exporter does not reserve.
pub fn label_name(path: &str, label: &str, errors: &mut Vec<ConfigError>) {
    if !is_label_name(label) {
        errors.push(ConfigError::new(
            path,
            format!("{label:?} is not a valid Prometheus label name: use letters, digits and `_`, not starting with a digit or `__`"),
        ));
    } else if RESERVED_LABELS.contains(&label) {
        errors.push(ConfigError::new(
            path,
            format!("label {label:?} is reserved for pulse-exporter's own metrics: rename it"),
        ));
    }
}

/// Records an interval below [`MIN_INTERVAL`] and a timeout that is 0 or not shorter than
/// the interval, at `path` plus the field names given.
pub fn plan_timing(
    path: &str,
    plan: &CheckPlan,
    timeout_field: &str,
    interval_field: &str,
    errors: &mut Vec<ConfigError>,
) {
    if plan.interval < MIN_INTERVAL {
        errors.push(ConfigError::new(
            format!("{path}.{interval_field}"),
            format!(
                "{} is too short: use at least 1s",
                humantime::format_duration(plan.interval)
            ),
        ));
    } else if plan.interval > MAX_INTERVAL {
        errors.push(ConfigError::new(
            format!("{path}.{interval_field}"),
            format!(
                "{} is too long: use at most 7d",
                humantime::format_duration(plan.interval)
            ),
        ));
    }
    timing(path, plan.interval, plan.timeout, timeout_field, errors);
}

/// Records a timeout that is 0 or not shorter than `interval`, at `path.timeout_field`.
pub fn timing(
    path: &str,
    interval: Duration,
    timeout: Duration,
    timeout_field: &str,
    errors: &mut Vec<ConfigError>,
) {
    if timeout.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.{timeout_field}"),
            "must be greater than 0",
        ));
    } else if timeout >= interval {
        errors.push(ConfigError::new(
            format!("{path}.{timeout_field}"),
            format!(
                "timeout {} must be shorter than the interval {}, or runs would overlap: shorten the timeout or lengthen the interval",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
}

/// Records what is wrong with `alert:` (at `path`) on `series`: a bound that is missing, or a
/// ratio whose label is not on every series or whose numbers do not add up (a ratio takes a
/// counter, by its increase over the window, or a gauge, as it is).
pub fn alert_fits(path: &str, alert: &Threshold, series: &[Series], errors: &mut Vec<ConfigError>) {
    if let Err(why) = alert.comparison() {
        errors.push(ConfigError::new(path, why));
    }
    let Some(ratio) = &alert.ratio else {
        return;
    };
    let path = &format!("{path}.ratio");
    if let Some((field, why)) = ratio.problem() {
        errors.push(ConfigError::new(format!("{path}.{field}"), why));
    }
    label_name(&format!("{path}.label"), &ratio.label, errors);
    for s in series {
        if !s.labels.contains(&ratio.label) {
            let labels = match s.labels.is_empty() {
                true => "none".to_owned(),
                false => s.labels.join(", "),
            };
            errors.push(ConfigError::new(
                format!("{path}.label"),
                format!(
                    "{:?} is not a label of {} (its labels: {labels}): name the label that splits the count, e.g. `status`",
                    ratio.label, s.metric
                ),
            ));
        }
        count_fits(
            path,
            s,
            ratio.window.is_some(),
            "that adds up across label values: a ratio",
            errors,
        );
    }
}

/// Records what is wrong with `s` as the count an alert at `path` compares: a counter is
/// taken by its increase over the alert's window, a gauge as it is (so with no `window`), and
/// nothing else is a count; `needs` says what is missing, e.g. "…: a ratio".
fn count_fits(path: &str, s: &Series, window: bool, needs: &str, errors: &mut Vec<ConfigError>) {
    match s.shape {
        Shape::Counter => {}
        Shape::Gauge if window => errors.push(ConfigError::new(
            format!("{path}.window"),
            "the check publishes a gauge, whose values are compared as they are: remove `window` (count over a window in the query), or publish a `_total` counter",
        )),
        Shape::Gauge => {}
        _ => errors.push(ConfigError::new(
            path.to_owned(),
            format!(
                "{} is not a count {needs} needs a gauge or a `_total` counter",
                s.metric
            ),
        )),
    }
}

/// Records what is wrong with `drop:` (at `path`) on `series`: a field out of range, or a
/// metric that is no count (a drop alert takes a counter, by its increase over the window,
/// or a gauge, as it is).
pub fn drop_fits(path: &str, drop: &DropAlert, series: &[Series], errors: &mut Vec<ConfigError>) {
    if let Some((field, why)) = drop.problem() {
        errors.push(ConfigError::new(format!("{path}.{field}"), why));
    }
    for s in series {
        count_fits(
            path,
            s,
            drop.window.is_some(),
            "or a rate to compare with its usual: a drop alert",
            errors,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Statistics, STATISTICS};

    #[test]
    fn a_drop_alert_takes_a_count_and_names_its_bad_field() {
        let err = |check: &str| {
            let yaml = format!("sources:\n  - name: db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - {check}\n");
            crate::config::load_str(&yaml).unwrap_err().to_string()
        };
        let e = err(
            "{ metric: app_signups_1h, sql: 'SELECT 1 AS value', drop: { ratio: 2, window: 1h } }",
        );
        assert!(
            e.contains("checks[0].drop.ratio: must be a share between 0 and 1"),
            "{e}"
        );
        assert!(
            e.contains("checks[0].drop.window: the check publishes a gauge"),
            "{e}"
        );
        let e = err(
            "{ metric: app_last_signup_timestamp_seconds, sql: 'SELECT 1 AS value', drop: {} }",
        );
        assert!(
            e.contains("checks[0].drop: app_last_signup_timestamp_seconds is not a count"),
            "{e}"
        );
        let ok = "sources:\n  - name: db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - { metric: app_signups_1h, sql: 'SELECT 1 AS value', drop: { min_usual: 5 } }\n";
        let config = crate::config::load_str(ok).unwrap();
        let drop = config.sources[0].checks()[0].common().drop.clone().unwrap();
        assert_eq!(drop.min_usual, 5.0);
    }

    #[test]
    fn a_ratio_must_name_a_label_of_a_count() {
        let err = |check: &str| {
            let yaml = format!("sources:\n  - name: db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - {check}\n");
            crate::config::load_str(&yaml).unwrap_err().to_string()
        };
        let e = err("{ metric: app_x, sql: 'SELECT 1 AS value', labels: [], alert: { above: 0.5, ratio: { label: status, values: [e] } } }");
        assert!(
            e.contains("alert.ratio.label") && e.contains("its labels: none"),
            "{e}"
        );
        let e = err("{ metric: app_x, sql: 'SELECT 1 AS value, 1 AS s', labels: [s], alert: { above: 0.5, ratio: { label: s, values: [e], window: 1h } } }");
        assert!(
            e.contains("alert.ratio.window") && e.contains("gauge"),
            "{e}"
        );
        let e = err("{ metric: app_x_timestamp_seconds, sql: 'SELECT 1 AS value, 1 AS s', labels: [s], alert: { above: 0.5, ratio: { label: s, values: [e] } } }");
        assert!(e.contains("adds up"), "{e}");
    }

    #[test]
    fn a_ratio_on_a_log_file_counter_is_checked_at_its_own_path() {
        let e = crate::config::errors_of(
            "sources:\n  - { name: l, kind: logfile, path: /tmp/a.log, counters: [{ metric: app_e_total, labels: { status: status }, alert: { above: 2, ratio: { label: kind, values: [] } } }] }",
        );
        for expected in [
            "sources[0].counters[0].alert: with `ratio`, the threshold is a share between 0 and 1",
            "sources[0].counters[0].alert.ratio.values: list the values",
            "sources[0].counters[0].alert.ratio.label: \"kind\" is not a label of app_e_total (its labels: status)",
        ] {
            assert!(e.contains(expected), "{expected:?} not in:\n{e}");
        }
    }

    /// The statistics checks' defaults pass their own rules, and each bound names its field
    /// (sources/registry.rs checks that every such check starts from these defaults).
    #[test]
    fn the_statistics_defaults_pass_and_each_bound_names_its_field() {
        let mut errors = Vec::new();
        STATISTICS.validate("latency", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let mut errors = Vec::new();
        let bad = Statistics {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            top: 0,
        };
        bad.validate("statements", &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            fields,
            [
                "statements.interval",
                "statements.timeout",
                "statements.top"
            ]
        );
    }
}
