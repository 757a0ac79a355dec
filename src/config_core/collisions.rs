//! Series two checks would both publish, found from the config alone: the same metric name
//! with the same label names and constant labels that do not tell them apart (two databases
//! each counting `app_users`), and names a histogram exposes (`x_bucket`, `x_sum`, `x_count`)
//! taken by another metric. At run time the first series would win and the other vanish, so
//! `check` refuses them; what only the data can show is counted at scrape time instead.

use std::collections::BTreeMap;

use crate::config_core::shape::{Series, Shape};
use crate::config_core::ConfigError;

/// One check's declared series: where the check is, what it publishes, its constant labels.
pub struct Declared {
    /// The check's path in the file, e.g. `sources[1].checks[0]`.
    pub path: String,
    /// One series it publishes.
    pub series: Series,
    /// Its constant labels (`const_labels` of the check, source and global).
    pub consts: Vec<(String, String)>,
}

/// An error for every declared series that another check's would collide with.
pub fn collisions(declared: &[Declared], errors: &mut Vec<ConfigError>) {
    let mut by_name: BTreeMap<String, Vec<&Declared>> = BTreeMap::new();
    for d in declared.iter().filter(|d| checked(&d.series.shape)) {
        for name in exposed_names(&d.series) {
            by_name.entry(name).or_default().push(d);
        }
    }
    for (name, list) in &by_name {
        for (i, later) in list.iter().enumerate() {
            let Some(earlier) = list[..i].iter().find(|e| collide(e, later, name)) else {
                continue;
            };
            let derived = is_derived(&earlier.series, name) || is_derived(&later.series, name);
            let fix = if derived {
                "rename one of the two metrics"
            } else {
                "rename the metric, or tell them apart with `const_labels` (e.g. `const_labels: { database: orders }`)"
            };
            let what = if is_derived(&earlier.series, name) {
                format!(
                    "`{name}` is a series of the histogram `{}` of {}",
                    earlier.series.metric, earlier.path
                )
            } else if is_derived(&later.series, name) {
                format!(
                    "this histogram exposes `{name}`, which {} also publishes",
                    earlier.path
                )
            } else {
                format!(
                    "{} also publishes `{name}` with the same labels",
                    earlier.path
                )
            };
            errors.push(ConfigError::new(
                later.path.clone(),
                format!("{what}: one of the two series would be dropped at every scrape: {fix}"),
            ));
        }
    }
}

/// Business metrics; a kind's built-in metrics carry `source` and never collide.
fn checked(shape: &Shape) -> bool {
    !matches!(shape, Shape::Workers { .. } | Shape::Builtin(_))
}

/// The names the series is exposed under: a histogram's three, any other metric's one.
fn exposed_names(s: &Series) -> Vec<String> {
    match s.shape {
        Shape::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|suffix| format!("{}{suffix}", s.metric))
            .collect(),
        _ => vec![s.metric.clone()],
    }
}

fn is_derived(s: &Series, name: &str) -> bool {
    s.shape == Shape::Histogram && name != s.metric
}

/// Whether `a` and `b` would publish one series under `name`. A histogram's derived name
/// beside another metric always collides; under one name, the label names must be the same,
/// no constant label may differ, and no exact pin may differ (a regular-expression pin may
/// tell them apart: only the data shows).
fn collide(a: &Declared, b: &Declared, name: &str) -> bool {
    if is_derived(&a.series, name) != is_derived(&b.series, name) {
        return true;
    }
    let mut la = a.series.labels.clone();
    let mut lb = b.series.labels.clone();
    la.sort();
    lb.sort();
    if la != lb {
        return false;
    }
    let consts_differ = a
        .consts
        .iter()
        .any(|(k, v)| b.consts.iter().any(|(k2, v2)| k == k2 && v != v2))
        || keys(&a.consts) != keys(&b.consts);
    if consts_differ {
        return false;
    }
    if a.series.pins.iter().chain(&b.series.pins).any(|p| p.regex) {
        return false;
    }
    let mut pa: Vec<_> = a.series.pins.iter().map(|p| (&p.label, &p.value)).collect();
    let mut pb: Vec<_> = b.series.pins.iter().map(|p| (&p.label, &p.value)).collect();
    pa.sort();
    pb.sort();
    pa == pb
}

fn keys(labels: &[(String, String)]) -> Vec<&str> {
    let mut k: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    k.sort();
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_core::shape::Pin;

    fn declared(path: &str, metric: &str, shape: Shape, consts: &[(&str, &str)]) -> Declared {
        Declared {
            path: path.into(),
            series: Series {
                metric: metric.into(),
                labels: vec!["plan".into()],
                pins: Vec::new(),
                shape,
                help: None,
                alert: None,
            },
            consts: consts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn errors(d: &[Declared]) -> Vec<String> {
        let mut e = Vec::new();
        collisions(d, &mut e);
        e.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_same_series_from_two_checks_is_refused_and_told_apart_by_const_labels() {
        let twins = [
            declared("sources[0].checks[0]", "app_users", Shape::Gauge, &[]),
            declared("sources[1].checks[0]", "app_users", Shape::Gauge, &[]),
        ];
        let e = errors(&twins);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("sources[1].checks[0]")
                && e[0].contains("sources[0].checks[0] also publishes `app_users`"),
            "{e:?}"
        );
        let apart = [
            declared("a", "app_users", Shape::Gauge, &[("database", "orders")]),
            declared("b", "app_users", Shape::Gauge, &[("database", "billing")]),
        ];
        assert!(errors(&apart).is_empty());
        // Pinned to different keys (one Redis key a check): apart.
        let mut q1 = declared("a", "app_queue_depth", Shape::Gauge, &[]);
        let mut q2 = declared("b", "app_queue_depth", Shape::Gauge, &[]);
        q1.series.pins.push(Pin::exact("queue", "emails"));
        q2.series.pins.push(Pin::exact("queue", "images"));
        assert!(errors(&[q1, q2]).is_empty());
    }

    #[test]
    fn a_histogram_reserves_its_derived_names() {
        let d = [
            declared("a", "app_latency_seconds", Shape::Histogram, &[]),
            declared(
                "b",
                "app_latency_seconds_count",
                Shape::Gauge,
                &[("x", "y")],
            ),
        ];
        let e = errors(&d);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("is a series of the histogram `app_latency_seconds`"),
            "{e:?}"
        );
    }
}
