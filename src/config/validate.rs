//! Cross-field rules: names, uniqueness and timing contradictions, checked after parsing so
//! that every problem in a file is reported in one go.

use std::collections::HashSet;
use std::time::Duration;

use super::names::{is_label_name, is_metric_name, is_object_name, RESERVED_LABELS};
use super::{CheckPlan, Config, ConfigError, HEALTH_CHECK};

/// Shortest interval a check may have: below this a probe is load, not observation.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Records every rule `config` breaks.
pub fn validate(config: &Config, errors: &mut Vec<ConfigError>) {
    let g = &config.global;
    timing("global", g.interval.0, g.timeout.0, "timeout", errors);
    timing(
        "global",
        g.health_interval.0,
        g.health_timeout.0,
        "health_timeout",
        errors,
    );
    if g.max_series == 0 {
        errors.push(ConfigError::new("global.max_series", "must be at least 1"));
    }

    let mut source_names = HashSet::new();
    for source in &config.sources {
        let name = &source.common.name;
        if !is_object_name(name) {
            errors.push(ConfigError::new(
                format!("{}.name", source.path),
                format!("{name:?} is not a valid source name: use 1-64 characters of letters, digits, `_`, `.`, `:` or `-`"),
            ));
        }
        if !source_names.insert(name.as_str()) {
            errors.push(ConfigError::new(
                format!("{}.name", source.path),
                format!("duplicate source name {name:?}: every source needs its own name"),
            ));
        }
        let health = source.health_plan(g);
        plan_timing(
            &source.path,
            &health,
            "health_timeout",
            "health_interval",
            errors,
        );

        let mut check_names = HashSet::new();
        for check in &source.checks {
            let plan = source.check_plan(g, check);
            plan_timing(&check.path, &plan, "timeout", "interval", errors);
            if plan.stale_after < plan.interval {
                errors.push(ConfigError::new(
                    format!("{}.stale_after", check.path),
                    "must be at least the check's interval, or samples would vanish between two runs",
                ));
            }
            if plan.max_series == 0 {
                errors.push(ConfigError::new(
                    format!("{}.max_series", check.path),
                    "must be at least 1",
                ));
            }
            let check_name = check.name();
            if check_name.is_empty()
                || check_name.len() > 200
                || check_name.chars().any(char::is_control)
            {
                errors.push(ConfigError::new(
                    format!("{}.name", check.path),
                    "a check name must be 1-200 printable characters",
                ));
            }
            if check_name == HEALTH_CHECK {
                errors.push(ConfigError::new(
                    format!("{}.name", check.path),
                    "`health` is the name of every source's built-in health probe: pick another name",
                ));
            } else if !check_names.insert(check_name.clone()) {
                errors.push(ConfigError::new(
                    format!("{}.name", check.path),
                    format!("duplicate check name {check_name:?} in source {name:?}: set a distinct `name`"),
                ));
            }
            if let Some(hb) = check.spec.heartbeat() {
                hb.validate(&check.path, &check.common.const_labels, errors);
                if check.common.metric.is_some() {
                    errors.push(ConfigError::new(
                        format!("{}.metric", check.path),
                        "heartbeat checks publish the pulse_worker_* metrics: remove `metric`",
                    ));
                }
            } else if let Some(metric) = &check.common.metric {
                metric_name(&format!("{}.metric", check.path), metric, errors);
            }
            for label in check.common.const_labels.keys() {
                label_name(&format!("{}.const_labels", check.path), label, errors);
            }
            // Labels, HELP text and names are published as they are in /metrics.
            let published = check
                .common
                .const_labels
                .iter()
                .map(|(k, v)| (format!("const_labels.{k}"), v.as_str()))
                .chain(check.common.help.as_deref().map(|h| ("help".to_owned(), h)))
                .chain(check.common.name.as_deref().map(|n| ("name".to_owned(), n)));
            for (field, value) in published {
                if crate::secrets::scrub(value) != value {
                    errors.push(ConfigError::new(
                        format!("{}.{field}", check.path),
                        "holds a secret (a ${env:}/${file:} value), which /metrics would publish: use a non-secret value",
                    ));
                }
            }
        }
        source.kind.validate(source, errors);
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

fn plan_timing(
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
    }
    timing(path, plan.interval, plan.timeout, timeout_field, errors);
}

fn timing(
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
