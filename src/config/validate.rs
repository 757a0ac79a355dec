//! Shared rules every kind and the file as a whole apply: metric and label names, and timing
//! that contradicts itself. They record errors and never stop at the first one, so that every
//! problem in a file is reported in one go.

use std::time::Duration;

use super::names::{is_label_name, is_metric_name, RESERVED_LABELS};
use super::{CheckPlan, ConfigError};

/// Shortest interval a check may have: below this a probe is load, not observation.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Most series one check may publish: more in one check is an outage of the Prometheus that
/// scrapes it, not a metric.
pub const MAX_SERIES: u64 = 1_000_000;

/// Longest interval of a check or health probe: a check run less than weekly is a report.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

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
