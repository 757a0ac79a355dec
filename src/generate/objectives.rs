//! The rules of a config's objectives (`objective:` of each source, on by default): recording
//! rules for the error ratio of the health probes over the windows the burn-rate alerts read,
//! the budget left and the burn rate as series, and the two alerts of the multi-window,
//! multi-burn-rate scheme (the Google SRE workbook, chapter 5): a page when the budget burns
//! fast, a ticket when it burns slowly.
//!
//! Ratios are of `rate()`s (or `increase()`s) of the probe counters, summed over replicas:
//! a counter reset (a restart of the exporter) is counted from the new value, never as a
//! fall, and a missed scrape only widens the gap `rate()` spans; neither burns nor hides
//! budget. The ratio of two rates over the same window cancels their extrapolation.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bundle::Selection;
use super::{quote, selector, source_is};
use crate::config::{Config, SourceConfig};
use crate::config_core::objective::Objective;
use crate::config_core::shape::regex_literal;
use crate::series::own_metrics::{SOURCE_FAILURES, SOURCE_PROBES};

/// The windows an error ratio is recorded over, shortest first: those the alerts pair.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The recorded error ratio of the health probes over `window`.
pub fn ratio_series(window: &str) -> String {
    format!("pulse_source:probe_error_ratio:rate{window}")
}

/// The recorded share of the budget left in the objective's window (1 untouched, 0 spent,
/// below 0 overspent).
pub const BUDGET_LEFT: &str = "pulse_source:objective_budget_left:ratio";

/// The recorded burn rate over a window: the error ratio over the share the budget allows
/// (1 spends the budget exactly over the window).
pub fn burn_series(window: &str) -> String {
    format!("pulse_source:objective_burn_rate:rate{window}")
}

/// The alert that pages on a fast burn.
pub const FAST_BURN: &str = "PulseObjectiveFastBurn";

/// The alert that opens a ticket on a slow burn.
pub const SLOW_BURN: &str = "PulseObjectiveSlowBurn";

/// The pairs of windows (long, short) and the burn rate both must pass: the workbook's,
/// for a page (2 % and 5 % of a 30-day budget spent in 1 h and 6 h) and for a ticket (10 %
/// in 3 days, all of it at the pace of the window).
const PAGE: [(&str, &str, f64); 2] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
const TICKET: [(&str, &str, f64); 2] = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];

/// A recording or alerting rule of the objectives' group.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ObjectiveRule {
    /// A recording rule.
    Record {
        /// The series it records.
        record: String,
        /// Its expression.
        expr: String,
        /// Labels added to what it records.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// An alerting rule.
    Alert {
        /// The alert's name.
        alert: String,
        /// Its expression.
        expr: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// Its annotations.
        annotations: BTreeMap<String, String>,
    },
}

/// A number as PromQL reads it, without trailing zeros (`0.072`, `3`).
fn number(v: f64) -> String {
    let text = format!("{v:.8}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// The sources and templates whose objective is on, with it. A template's objective holds
/// for each of its targets (`NAME/TARGET` sources), each alerting on its own.
fn objectives(config: &Config) -> Vec<(&SourceConfig, &Objective)> {
    SourceConfig::all(config)
        .filter_map(|s| s.common.objective.on().map(|o| (s, o)))
        .collect()
}

/// The rules of the objectives of `config`, reading the series `selection` picks; none
/// when no source has one.
pub fn rules(config: &Config, selection: &Selection) -> Vec<ObjectiveRule> {
    let objectives = objectives(config);
    if objectives.is_empty() {
        return Vec::new();
    }
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let names: Vec<String> = objectives
        .iter()
        .map(|(s, _)| match s.is_template() {
            false => regex_literal(&s.common.name),
            true => format!("{}/.+", regex_literal(&s.common.name)),
        })
        .collect();
    let sources = format!("source=~{}", quote(&names.join("|")));
    let mut out: Vec<ObjectiveRule> = WINDOWS
        .iter()
        .map(|w| ObjectiveRule::Record {
            record: ratio_series(w),
            expr: ratio(&sources, extra, w),
            labels: BTreeMap::new(),
        })
        .collect();
    for (source, objective) in &objectives {
        out.extend(per_source(source, objective, extra));
    }
    out
}

/// Failed over all health probes of the sources `matcher` picks, over `window`, per source
/// and exporter (replicas summed; the failure reasons too).
fn ratio(matcher: &str, extra: Option<&str>, window: &str) -> String {
    let of = |metric: &str| selector(metric, &[matcher.to_owned()], extra);
    format!(
        "sum without (pod, reason) (rate({}[{window}]))\n/ sum without (pod) (rate({}[{window}]))",
        of(SOURCE_FAILURES.name),
        of(SOURCE_PROBES.name)
    )
}

/// The budget left, the burn rates and the two alerts of one source's objective.
fn per_source(
    source: &SourceConfig,
    objective: &Objective,
    extra: Option<&str>,
) -> Vec<ObjectiveRule> {
    let pin = source_is(source);
    let budget = objective.budget();
    let days = objective.window_days();
    // The source (or template) as a label too: promtool reports rules of one name and the
    // same labels as duplicates.
    let labels = BTreeMap::from([
        ("objective".to_owned(), "availability".to_owned()),
        named(source),
    ]);
    let of = |metric: &str| selector(metric, std::slice::from_ref(&pin), extra);
    let mut out = vec![ObjectiveRule::Record {
        record: BUDGET_LEFT.to_owned(),
        expr: format!(
            "1 - (\n  sum without (pod, reason) (increase({}[{days}d]))\n  / sum without (pod) (increase({}[{days}d]))\n) / {}",
            of(SOURCE_FAILURES.name),
            of(SOURCE_PROBES.name),
            number(budget)
        ),
        labels: labels.clone(),
    }];
    for window in ["1h", "6h"] {
        out.push(ObjectiveRule::Record {
            record: burn_series(window),
            expr: format!("{} / {}", of(&ratio_series(window)), number(budget)),
            labels: labels.clone(),
        });
    }
    out.push(burn_alert(source, objective, FAST_BURN, &PAGE, extra));
    out.push(burn_alert(source, objective, SLOW_BURN, &TICKET, extra));
    out
}

/// The label that names the objective's source: `source`, or for a template `template`
/// (its targets' series carry their own `source`, `NAME/TARGET`, so each alerts on its own).
fn named(source: &SourceConfig) -> (String, String) {
    let label = match source.is_template() {
        true => "template",
        false => "source",
    };
    (label.to_owned(), source.common.name.clone())
}

/// `name` for `source`: fires while, for one of the pairs, the error ratio over both the
/// long and the short window burns the budget `factor` times too fast. The short window
/// lets the alert end soon after the errors do.
fn burn_alert(
    source: &SourceConfig,
    objective: &Objective,
    name: &str,
    pairs: &[(&str, &str, f64)],
    extra: Option<&str>,
) -> ObjectiveRule {
    let pin = source_is(source);
    let of = |window: &str| selector(&ratio_series(window), std::slice::from_ref(&pin), extra);
    let budget = objective.budget();
    let expr = pairs
        .iter()
        .map(|(long, short, factor)| {
            let bound = number(factor * budget);
            format!(
                "(\n  {} > {bound}\n  and {} > {bound}\n)",
                of(long),
                of(short)
            )
        })
        .collect::<Vec<_>>()
        .join("\nor\n");
    let fast = name == FAST_BURN;
    let severity = match (fast, source.common.tier.as_deref()) {
        (true, Some("primary" | "queue")) => "critical",
        _ => "warning",
    };
    let shown = match source.is_template() {
        true => "{{ $labels.source }}".to_owned(),
        false => super::template_safe(&source.common.name),
    };
    let target = number(objective.target());
    let days = objective.window_days();
    let (summary, pace) = match fast {
        true => (
            format!("{shown} burns its availability budget fast ({{{{ $value | humanizePercentage }}}} of its health probes fail)"),
            "at 14.4 times the sustainable pace over 1 h (and 5 min), or 6 times over 6 h (and 30 min): 2 % or 5 % of the budget gone in that hour or those six",
        ),
        false => (
            format!("{shown} spends its availability budget faster than it lasts ({{{{ $value | humanizePercentage }}}} of its health probes fail)"),
            "at 3 times the sustainable pace over a day (and 2 h), or faster than it lasts over 3 days (and 6 h): no threshold alert fires for failures this sparse",
        ),
    };
    ObjectiveRule::Alert {
        alert: name.to_owned(),
        expr,
        labels: BTreeMap::from([
            ("severity".to_owned(), severity.to_owned()),
            ("objective".to_owned(), "availability".to_owned()),
            named(source),
        ]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            ("description".to_owned(), format!("The objective of {shown}: {target} % of its health probes succeed over {days} days. Its probes fail {pace}. {} shows what is left of the budget.", BUDGET_LEFT)),
            ("runbook_url".to_owned(), super::style::runbook_url(name)),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(yaml: &str) -> Vec<ObjectiveRule> {
        rules(
            &crate::config::load_str(yaml).unwrap(),
            &Selection::default(),
        )
    }

    const TWO: &str = "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', tier: primary, objective: { target: 99.9 } }\n  - { name: cache, kind: redis, url: 'redis://h' }\n  - { name: off, kind: redis, url: 'redis://h', objective: false }\n";

    fn alert<'a>(
        rules: &'a [ObjectiveRule],
        name: &str,
        source: &str,
    ) -> (&'a str, &'a BTreeMap<String, String>) {
        rules
            .iter()
            .find_map(|r| match r {
                ObjectiveRule::Alert {
                    alert,
                    expr,
                    labels,
                    ..
                } if alert == name && labels["source"] == source => Some((expr.as_str(), labels)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name} for {source}"))
    }

    #[test]
    fn every_source_has_an_objective_unless_turned_off_and_its_bounds_follow_its_target() {
        let r = rules_of(TWO);
        let (fast, labels) = alert(&r, FAST_BURN, "db");
        // 99.9 %: a budget of 0.001, burnt 14.4 times too fast over 1 h and 5 min.
        assert!(
            fast.contains("pulse_source:probe_error_ratio:rate1h{source=\"db\"} > 0.0144"),
            "{fast}"
        );
        assert!(fast.contains("rate5m{source=\"db\"} > 0.0144"), "{fast}");
        assert!(fast.contains("rate6h{source=\"db\"} > 0.006"), "{fast}");
        assert_eq!(labels["severity"], "critical", "a primary source pages");
        let (slow, labels) = alert(&r, SLOW_BURN, "cache");
        // The default 99.5 %: 0.005, three times over a day, once over three.
        assert!(slow.contains("rate1d{source=\"cache\"} > 0.015"), "{slow}");
        assert!(slow.contains("rate3d{source=\"cache\"} > 0.005"), "{slow}");
        assert_eq!(labels["severity"], "warning");
        assert_eq!(
            alert(&r, FAST_BURN, "cache").1["severity"],
            "warning",
            "no tier: warns"
        );
        let text = serde_yaml::to_string(&r).unwrap();
        assert!(
            !text.contains("\"off\""),
            "an objective turned off makes no rule"
        );
        assert!(text.contains("source=~\"db|cache\""), "{text}");
    }

    #[test]
    fn no_source_with_an_objective_makes_no_rule() {
        assert!(rules_of(
            "sources: [{ name: a, kind: redis, url: 'redis://h', objective: false }]\n"
        )
        .is_empty());
    }

    #[test]
    fn numbers_read_as_promql_writes_them() {
        assert_eq!(number(14.4 * 0.005), "0.072");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(99.5), "99.5");
    }
}
