//! The bundled alerting rules read back from their declarations: each alert with its group,
//! expression, `for:`, labels and annotations, the series it fires on and the bound it
//! compares them with. What is copied from the bundle or drawn beside it finds an alert by
//! these properties (the rules of a config take the alerts of a group that fire on a check's
//! metric; a panel's red line is its alert's bound), so a renamed or re-graded alert is
//! followed, never copied wrong.

use std::collections::BTreeMap;

use promql_parser::parser::{parse, Expr};

use super::{Selection, ALERTS};

/// One declared alerting rule.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Its name (`alert:`).
    pub name: String,
    /// The group it is declared in (`pulse-queues`).
    pub group: String,
    /// Its expression, trailing newline trimmed.
    pub expr: String,
    /// Its `for:`, empty for an alert that fires at once.
    pub for_: String,
    /// Its labels (`severity`).
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Alert {
    /// The metrics of the series it fires on: every selector of its expression but those on
    /// the right of an `unless`, which only hold it back (PulseJobLatencyHigh fires on job
    /// latency, not on the queue depths that quiet it). Empty when the expression does not
    /// parse.
    pub fn fires_on(&self) -> Vec<String> {
        let mut metrics = Vec::new();
        if let Ok(expr) = parse(&self.expr) {
            firing_selectors(&expr, &mut |name| {
                if !metrics.iter().any(|m| m == name) {
                    metrics.push(name.to_owned());
                }
            });
        }
        metrics
    }

    /// The number its first comparison holds a series against (`> 600` gives 600).
    pub fn bound(&self) -> Option<f64> {
        parse(&self.expr).ok().and_then(|e| first_bound(&e))
    }
}

/// Calls `f` with the metric of every selector `expr` fires on (see [`Alert::fires_on`]).
fn firing_selectors(expr: &Expr, f: &mut dyn FnMut(&str)) {
    match expr {
        Expr::VectorSelector(v) => f(v.name.as_deref().unwrap_or_default()),
        Expr::MatrixSelector(m) => f(m.vs.name.as_deref().unwrap_or_default()),
        Expr::Aggregate(a) => firing_selectors(&a.expr, f),
        Expr::Unary(u) => firing_selectors(&u.expr, f),
        Expr::Binary(b) => {
            firing_selectors(&b.lhs, f);
            if b.op.to_string() != "unless" {
                firing_selectors(&b.rhs, f);
            }
        }
        Expr::Paren(p) => firing_selectors(&p.expr, f),
        Expr::Subquery(s) => firing_selectors(&s.expr, f),
        Expr::Call(c) => c.args.args.iter().for_each(|a| firing_selectors(a, f)),
        _ => {}
    }
}

/// The number of the first comparison of `expr` with a number, left to right.
fn first_bound(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Binary(b) => {
            if b.op.is_comparison_operator() {
                if let Expr::NumberLiteral(n) = b.rhs.as_ref() {
                    return first_bound(&b.lhs).or(Some(n.val));
                }
            }
            first_bound(&b.lhs).or_else(|| first_bound(&b.rhs))
        }
        Expr::Paren(p) => first_bound(&p.expr),
        Expr::Aggregate(a) => first_bound(&a.expr),
        _ => None,
    }
}

/// The alerts of one rendering of the declarations, in file order.
pub struct Declared(Vec<Alert>);

impl Declared {
    /// The alerts of a rule file's text (rendered declarations).
    pub fn parse(rules: &str) -> Declared {
        let file: serde_yaml::Value = serde_yaml::from_str(rules).unwrap_or_default();
        let mut alerts = Vec::new();
        for group in file["groups"].as_sequence().into_iter().flatten() {
            let name = group["name"].as_str().unwrap_or_default();
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                let (Some(alert), Some(expr)) = (rule["alert"].as_str(), rule["expr"].as_str())
                else {
                    continue;
                };
                alerts.push(Alert {
                    name: alert.to_owned(),
                    group: name.to_owned(),
                    expr: expr.trim_end().to_owned(),
                    for_: rule["for"].as_str().unwrap_or_default().to_owned(),
                    labels: strings(&rule["labels"]),
                    annotations: strings(&rule["annotations"]),
                });
            }
        }
        Declared(alerts)
    }

    /// The bundled alerts rendered for `selection`.
    pub fn of(selection: &Selection) -> Declared {
        Declared::parse(&ALERTS.rules(selection))
    }

    /// The alert `name`: its first declaration (an alert graded in two rules, warning then
    /// critical, is found by its first).
    pub fn get(&self, name: &str) -> Option<&Alert> {
        self.0.iter().find(|a| a.name == name)
    }

    /// The first declaration of each alert of `group`, in file order.
    pub fn group(&self, group: &str) -> Vec<&Alert> {
        let mut seen = std::collections::HashSet::new();
        self.0
            .iter()
            .filter(|a| a.group == group && seen.insert(a.name.as_str()))
            .collect()
    }

    /// The alert names of `group` that fire on any of `metrics`.
    pub fn firing_on(&self, group: &str, metrics: &[&str]) -> Vec<String> {
        self.group(group)
            .into_iter()
            .filter(|a| a.fires_on().iter().any(|m| metrics.contains(&m.as_str())))
            .map(|a| a.name.clone())
            .collect()
    }
}

/// The bound of the bundled alert `name` as committed, for a panel that draws the line the
/// alert fires at.
///
/// # Panics
///
/// When the bundle has no such alert or it compares with no number: a bundled board names
/// only declared alerts, which the unit tests render.
pub fn bound(name: &str) -> f64 {
    // Rendered and parsed once: every board that draws a bound reads the same text.
    static COMMITTED: std::sync::LazyLock<Declared> =
        std::sync::LazyLock::new(|| Declared::of(&Selection::default()));
    COMMITTED
        .get(name)
        .and_then(Alert::bound)
        .unwrap_or_else(|| panic!("the bundle declares {name} with a numeric bound"))
}

/// The text values of a YAML mapping (a rule's labels or annotations).
fn strings(v: &serde_yaml::Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> Declared {
        Declared::of(&Selection::default())
    }

    #[test]
    fn an_alert_fires_on_what_is_left_of_its_unless() {
        let d = declared();
        let latency = d.get("PulseJobLatencyHigh").unwrap();
        assert_eq!(latency.fires_on(), ["app_job_latency_avg_seconds"]);
        let stuck = d.get("PulseJobsNotProcessed").unwrap().fires_on();
        for m in ["app_queue_depth", "app_jobs_pending", "app_jobs_completed"] {
            assert!(stuck.iter().any(|s| s == m), "{m} in {stuck:?}");
        }
        assert_eq!(
            d.get("PulseSourceDown").unwrap().fires_on(),
            ["pulse_source_up"]
        );
    }

    #[test]
    fn a_bound_is_the_number_of_the_first_comparison() {
        assert_eq!(bound("PulseOldestJobTooOld"), 600.0);
        assert_eq!(bound("PulseJobLatencyHigh"), 60.0);
        // `pulse_source_up == 1` inside compares with no literal on the right of a `>`
        // first: the bound is the p90's.
        assert_eq!(bound("PulseSourceSlow"), 2.0);
    }

    /// A re-graded or renamed declaration is followed: the bound and the name come from
    /// the text, never from a copy of it.
    #[test]
    fn a_drifted_declaration_is_read_as_it_now_is() {
        let text = ALERTS
            .rules(&Selection::default())
            .replace("alert: PulseJobsNotProcessed", "alert: PulseJobsStuck")
            .replace(
                "app_job_latency_avg_seconds{window=\"15m\"}) > 60",
                "app_job_latency_avg_seconds{window=\"15m\"}) > 90",
            );
        let d = Declared::parse(&text);
        assert_eq!(
            d.firing_on("pulse-queues", &["app_jobs_completed"]),
            ["PulseJobsStuck"]
        );
        assert_eq!(
            d.get("PulseJobLatencyHigh").and_then(Alert::bound),
            Some(90.0)
        );
    }

    #[test]
    fn a_graded_alert_is_listed_once_in_its_group() {
        let d = declared();
        let names: Vec<&str> = d
            .group("pulse-dependencies")
            .into_iter()
            .map(|a| a.name.as_str())
            .collect();
        let near_max = names
            .iter()
            .filter(|n| **n == "PulsePostgresConnectionsNearMax")
            .count();
        assert_eq!(near_max, 1, "{names:?}");
    }
}
