//! The bundle: its dashboards are described in [`dashboards`]; its rule files are here.
//!
//! The bundle's rule files (`alerts/pulse-alerts.yml`, `prometheus/rules/*.yml`), rendered
//! from their declarations beside this file, as monitoring mixins render theirs: each
//! declaration's PromQL writes `$selector` in every selector, and `$keep` first in every
//! `by (…)` and `on (…)`: the labels every aggregation and join keeps, the cluster label and
//! the selector's (an aggregation of everything is `sum by ($keep) (…)`, `sum(…)` without
//! knobs). The bundle as committed is the declarations with neither knob (byte for
//! byte the PromQL as it reads here); `pulse-exporter bundle-rules --selector …
//! --cluster-label …` renders them for a Prometheus shared with other exporters or clusters;
//! and the rules `pulse-exporter rules` writes for a config copy the bundled alerts with a
//! selector of the config's own sources (see [`super::rules`]).
//!
//! Because every grouping keeps the selector's labels, a recorded series keeps them too, and
//! is read through the selector like any other: two renderings loaded in one Prometheus
//! record apart and alert apart. The one exception is a constant of `vector()` (a signal's
//! smallest usual), which carries no label to select by: it takes no `$selector`, and the
//! join with it no `$keep`.

pub mod dashboards;

use std::fmt;

use super::style::STYLE;
use crate::config_core::names::is_label_name;

/// Which series the rules read, for a Prometheus that holds more than this exporter's.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selection {
    /// Label matchers every series the rules read must match, comma-separated
    /// (`job="pulse-exporter"`, `cluster="eu-1", team="billing"`); empty: every series.
    selector: String,
    /// The label that tells clusters apart where one Prometheus (Thanos, Mimir, federation)
    /// sees several: kept first in every `by (…)` and `on (…)`, so no rule adds up or joins
    /// series of two clusters. None: no such label.
    cluster_label: Option<String>,
    /// What every `by (…)` and `on (…)` keeps: the cluster label, then the labels the
    /// selector (as given, not as [`Selection::and`] narrows it) matches on.
    kept: Vec<String>,
}

/// A `--selector` or `--cluster-label` that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionError(String);

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectionError {}

impl Selection {
    /// The selection of `selector` (label matchers, as between the braces of a PromQL
    /// selector) and `cluster_label`, each checked the way Prometheus would read it.
    pub fn new(selector: &str, cluster_label: Option<&str>) -> Result<Selection, SelectionError> {
        let selector = selector.trim().trim_end_matches(',').trim().to_owned();
        let mut selected = Vec::new();
        if !selector.is_empty() {
            // Parsed as Prometheus parses a selector, so a brace, a bad regex or an operator
            // hidden in it is refused here and not in a rule file Prometheus then rejects.
            let probe = format!("pulse_source_up{{{selector}}}");
            let parsed = promql_parser::parser::parse(&probe);
            let plain = match &parsed {
                Ok(promql_parser::parser::Expr::VectorSelector(v))
                    if v.name.as_deref() == Some("pulse_source_up")
                        && v.offset.is_none()
                        && v.at.is_none()
                        && v.matchers.or_matchers.is_empty() =>
                {
                    selected = v
                        .matchers
                        .matchers
                        .iter()
                        .map(|m| m.name.clone())
                        .filter(|n| n != "__name__")
                        .collect();
                    true
                }
                _ => false,
            };
            if !plain {
                let why = parsed
                    .err()
                    .unwrap_or_else(|| "not only label matchers".to_owned());
                return Err(SelectionError(format!(
                    "--selector {selector:?}: {why}; give label matchers as between a selector's braces, e.g. job=\"pulse-exporter\" or cluster=~\"eu-.*\", team=\"billing\""
                )));
            }
        }
        let cluster_label = match cluster_label.map(str::trim) {
            None | Some("") => None,
            Some(label) if is_label_name(label) => Some(label.to_owned()),
            Some(label) => {
                return Err(SelectionError(format!(
                    "--cluster-label {label:?} is not a label name (letters, digits and _, not starting with a digit or __), e.g. cluster"
                )))
            }
        };
        let mut kept: Vec<String> = cluster_label.iter().cloned().collect();
        for label in selected {
            if !kept.contains(&label) {
                kept.push(label);
            }
        }
        Ok(Selection {
            selector,
            cluster_label,
            kept,
        })
    }

    /// The selector, empty when every series is read.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The label that tells clusters apart, if any.
    pub fn cluster_label(&self) -> Option<&str> {
        self.cluster_label.as_deref()
    }

    /// The flags that ask for this selection (`--selector 'job="a"' --cluster-label c`), for
    /// the header of a file rendered with it; None for the default.
    pub fn flags(&self) -> Option<String> {
        let mut flags = Vec::new();
        if !self.selector.is_empty() {
            flags.push(format!("--selector '{}'", self.selector));
        }
        if let Some(c) = &self.cluster_label {
            flags.push(format!("--cluster-label {c}"));
        }
        (!flags.is_empty()).then(|| flags.join(" "))
    }

    /// The matchers a dashboard adds before the variable filter of every selector it
    /// writes: the chosen cluster (`cluster="$cluster"`), then the selector's; empty
    /// without knobs.
    pub fn dashboard_matchers(&self) -> String {
        let mut matchers: Vec<String> = self
            .cluster_label
            .iter()
            .map(|label| format!("{label}=\"$cluster\""))
            .collect();
        if !self.selector.is_empty() {
            matchers.push(self.selector.clone());
        }
        matchers.join(", ")
    }

    /// This selection narrowed by `matcher` as well (a generated file's own sources).
    pub fn and(&self, matcher: &str) -> Selection {
        let selector = match self.selector.is_empty() {
            true => matcher.to_owned(),
            false => format!("{}, {matcher}", self.selector),
        };
        Selection {
            selector,
            cluster_label: self.cluster_label.clone(),
            kept: self.kept.clone(),
        }
    }

    /// `labels` (a `by (…)` or `on (…)` list) with what every grouping keeps first.
    pub fn grouping(&self, labels: &str) -> String {
        let mut all = self.kept.clone();
        if !labels.is_empty() {
            all.push(labels.to_owned());
        }
        all.join(", ")
    }

    /// `template` with its placeholders filled in.
    pub fn render(&self, template: &str) -> String {
        let out = match self.selector.is_empty() {
            true => template
                .replace("{$selector}", "")
                .replace(", $selector}", "}"),
            false => template
                .replace("{$selector}", &format!("{{{}}}", self.selector))
                .replace(", $selector}", &format!(", {}}}", self.selector)),
        };
        let kept = self.kept.join(", ");
        // `sum by ($keep) (x)`, an aggregation of everything in the bundle, is `sum(x)` there.
        let out = match kept.is_empty() {
            true => out
                .replace(" by ($keep) (", "(")
                .replace("$keep, ", "")
                .replace("($keep)", "()"),
            false => out
                .replace(" by ($keep) (", &format!(" by ({kept}) ("))
                .replace("$keep, ", &format!("{kept}, "))
                .replace("($keep)", &format!("({kept})")),
        };
        out.replace("$runbook_base", &STYLE.runbook_base)
    }
}

/// One rule file of the bundle: where the repository keeps it, and its declarations.
#[derive(Debug, Clone, Copy)]
pub struct RuleFile {
    /// Its path in the repository, which is where Prometheus loads it from in the bundle.
    pub path: &'static str,
    /// Where its declarations are, for the header that says so.
    declared_in: &'static str,
    /// The declarations.
    template: &'static str,
}

/// The alerting rules.
pub const ALERTS: RuleFile = RuleFile {
    path: "alerts/pulse-alerts.yml",
    declared_in: "src/generate/bundle/pulse-alerts.yml",
    template: include_str!("bundle/pulse-alerts.yml"),
};

/// Every rule file of the bundle: the alerting rules, then the recording rules.
pub const RULE_FILES: [RuleFile; 4] = [
    ALERTS,
    RuleFile {
        path: "prometheus/rules/pulse-recording.yml",
        declared_in: "src/generate/bundle/pulse-recording.yml",
        template: include_str!("bundle/pulse-recording.yml"),
    },
    RuleFile {
        path: "prometheus/rules/pulse-business.yml",
        declared_in: "src/generate/bundle/pulse-business.yml",
        template: include_str!("bundle/pulse-business.yml"),
    },
    RuleFile {
        path: "prometheus/rules/pulse-latency.yml",
        declared_in: "src/generate/bundle/pulse-latency.yml",
        template: include_str!("bundle/pulse-latency.yml"),
    },
];

impl RuleFile {
    /// The file's name (`pulse-alerts.yml`).
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }

    /// The rules alone, rendered for `selection` (what [`super::rules`] copies from).
    pub fn rules(&self, selection: &Selection) -> String {
        selection.render(self.template)
    }

    /// The whole file for `selection`, headed by where it comes from and how it was
    /// rendered.
    pub fn render(&self, selection: &Selection) -> String {
        let header = match selection.flags() {
            None => format!(
                "# Generated by `pulse-exporter bundle-rules` from {}:\n\
                 # edit that file, then run scripts/generate. For a Prometheus that also holds other\n\
                 # exporters' or clusters' series, `pulse-exporter bundle-rules --selector … --cluster-label …`\n\
                 # writes it with the selector in every series it reads and the cluster label kept in every\n\
                 # `by (…)` and `on (…)` (docs/bundle.md).\n",
                self.declared_in
            ),
            Some(flags) => format!(
                "# Generated by `pulse-exporter bundle-rules` from {},\n# rendered with {flags}.\n",
                self.declared_in
            ),
        };
        format!("{header}#\n{}", self.rules(selection))
    }
}

#[cfg(test)]
pub(crate) fn walk(
    e: &promql_parser::parser::Expr,
    f: &mut dyn FnMut(&promql_parser::parser::Expr),
) {
    use promql_parser::parser::Expr;
    f(e);
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::MatrixSelector(m) => f(&Expr::VectorSelector(m.vs.clone())),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, f)),
        _ => {}
    }
}

/// Every vector selector of `expr`: its metric and its matchers as written
/// (`source=~"a"`), for tests that check what a rendering selected.
#[cfg(test)]
pub(crate) fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let parsed = promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{e}\n{expr}"));
    let mut out = Vec::new();
    walk(&parsed, &mut |node| {
        if let promql_parser::parser::Expr::VectorSelector(v) = node {
            let matchers = v
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name != "__name__")
                .map(|m| m.to_string())
                .collect();
            out.push((v.name.clone().unwrap_or_default(), matchers));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::{self, Expr};

    /// Every rule's `expr` of a rendered file.
    fn exprs(text: &str) -> Vec<String> {
        let file: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        file["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
            .map(|r| r["expr"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_bundle_with_neither_knob_is_the_declarations_without_placeholders() {
        let none = Selection::default();
        for file in RULE_FILES {
            let text = file.rules(&none);
            for placeholder in ["$selector", "$keep", "$runbook_base"] {
                assert!(!text.contains(placeholder), "{}: {placeholder}", file.path);
            }
            for expr in exprs(&text) {
                parser::parse(&expr).unwrap_or_else(|e| panic!("{}: {e}\n{expr}", file.path));
            }
        }
    }

    /// The knobs reach every series and every grouping: a rule that missed one would add up
    /// or join two tenants' or two clusters' series. A grouping keeps the cluster and the
    /// selector's label, so recorded series keep them and are selected like the rest.
    #[test]
    fn a_selector_reaches_every_series_and_every_grouping_keeps_its_labels() {
        let selection = Selection::new("tenant=\"t1\"", Some("cluster")).unwrap();
        let keeps = |labels: &[String]| {
            labels.iter().any(|l| l == "cluster") && labels.iter().any(|l| l == "tenant")
        };
        // The per-signal constant of `vector()`: no label to select or join by.
        let constant = "business:signal:min_usual1h";
        for file in RULE_FILES {
            let text = file.rules(&selection);
            for expr in exprs(&text) {
                let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("{e}\n{expr}"));
                walk(&parsed, &mut |node| match node {
                    Expr::VectorSelector(v) => {
                        let name = v.name.clone().unwrap_or_default();
                        let has = v.matchers.matchers.iter().any(|m| m.name == "tenant");
                        assert_eq!(has, name != constant, "{}: {name} in\n{expr}", file.path);
                    }
                    Expr::Aggregate(a) => match &a.modifier {
                        Some(promql_parser::parser::LabelModifier::Include(l)) => assert!(
                            keeps(&l.labels),
                            "{}: by {:?} in\n{expr}",
                            file.path,
                            l.labels
                        ),
                        Some(promql_parser::parser::LabelModifier::Exclude(_)) => {}
                        None => panic!("{}: an aggregation keeps no label in\n{expr}", file.path),
                    },
                    Expr::Binary(b) => {
                        let on = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
                        if let Some(promql_parser::parser::LabelModifier::Include(l)) = on {
                            assert!(
                                keeps(&l.labels) || expr.contains(constant),
                                "{}: on {:?} in\n{expr}",
                                file.path,
                                l.labels
                            );
                        }
                    }
                    _ => {}
                });
            }
        }
    }

    #[test]
    fn a_bad_knob_is_refused_naming_the_flag_and_the_fix() {
        for bad in [
            "job=",
            "job=\"a\"} or vector(1",
            "job=~\"(\"",
            "{job=\"a\"}",
        ] {
            let err = Selection::new(bad, None).unwrap_err().to_string();
            assert!(err.starts_with("--selector"), "{bad}: {err}");
            assert!(err.contains("e.g. job=\"pulse-exporter\""), "{bad}: {err}");
        }
        let err = Selection::new("", Some("9lives")).unwrap_err().to_string();
        assert!(err.starts_with("--cluster-label \"9lives\""), "{err}");
        // Empty knobs are no knobs; a trailing comma is forgiven.
        assert_eq!(Selection::new(" ", Some("")).unwrap(), Selection::default());
        assert_eq!(
            Selection::new("job=\"a\",", None).unwrap().selector(),
            "job=\"a\""
        );
    }

    #[test]
    fn a_rendered_file_says_where_it_comes_from_and_how_it_was_rendered() {
        let plain = ALERTS.render(&Selection::default());
        assert!(plain.starts_with(
            "# Generated by `pulse-exporter bundle-rules` from src/generate/bundle/pulse-alerts.yml"
        ));
        let knobs = Selection::new("job=\"pulse\"", Some("cluster")).unwrap();
        let text = ALERTS.render(&knobs);
        assert!(
            text.contains("# rendered with --selector 'job=\"pulse\"' --cluster-label cluster.\n"),
            "{}",
            &text[..400]
        );
        assert!(text.contains("max without (pod) (pulse_source_up{job=\"pulse\"}) == 0"));
        assert!(text.contains("and on (cluster, job, instance, source)"));
    }
}
