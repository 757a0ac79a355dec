//! Which series the bundle's rules and dashboards read ([`Selection`]): the `--selector` and
//! `--cluster-label` knobs of `bundle-rules` and `bundle-dashboards`, checked, and rendered
//! into the declarations' `$selector`, `$keep` and `$runbook_base` placeholders.

use std::fmt;

use crate::config_core::names::is_label_name;
use crate::generate::style::STYLE;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
