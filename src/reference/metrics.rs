//! The metrics reference (`docs/metrics.md`), generated from the metric tables: the self
//! metrics, each kind's `METRICS` and the heartbeat metrics. The bundle's generated-files test
//! fails when the file is stale; `scripts/generate` rewrites it (with every generated file).

use std::fmt::Write;

use crate::series::metric::{Metric, MetricType, Section};
use crate::sources::registry::KINDS;

use super::one_line;

/// What the reference says before the first section.
const PREAMBLE: &str = "Every built-in metric pulse-exporter emits. Dashboards and alerts \
    depend on these names: they are a public API. Generated from the metric tables in the \
    code by `src/reference/metrics.rs`; do not edit by hand (`scripts/generate` rewrites \
    it, and a test fails when it is stale). \
    `tests/metrics_contract.rs` checks the tables against a live scrape, both ways, including \
    the type.\n\n\
    All values come from the cache: `/metrics` never waits on a source. Business metrics \
    defined in the config take the names the config gives them (they may not start with \
    `pulse_`).\n\n\
    Conventions: base units (`_seconds`, `_bytes`); `_total` only on counters; points in time \
    as `_timestamp_seconds` (an age is `time() - value`); labels are bounded (no error text, \
    no ids). `reason` is one of `timeout`, `connect`, `auth`, `query`, `decode`, `not_found`, \
    `upstream`, `rate_limited`, `inconsistent` (the source contradicted itself: a Stripe page \
    that says more follow but holds nothing), `too_large` (an answer over the bound read from \
    a source, cut off while reading: 16 MiB for an HTTP body), `internal` (a check panicked: a pulse-exporter \
    bug, caught and reported).";

/// Every section, in the order of the reference: the self metrics, the kinds as
/// [`KINDS`] lists them, then the worker heartbeats that several kinds publish.
pub fn sections() -> Vec<Section> {
    crate::series::own_metrics::SECTIONS
        .iter()
        .copied()
        .chain(KINDS.iter().map(|k| k.metrics_section()))
        .chain([
            crate::sources::heartbeat::SECTION,
            crate::jobs::metrics::SECTION,
        ])
        .collect()
}

/// Every built-in metric, once.
pub fn all() -> Vec<&'static Metric> {
    sections().into_iter().flat_map(|s| s.metrics).collect()
}

/// The name of a metric type as the exposition and the reference write it.
pub fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Gauge => "gauge",
        MetricType::Counter => "counter",
        MetricType::Histogram => "histogram",
    }
}

/// The whole reference, as Markdown.
pub fn render() -> String {
    let mut out = String::from("# Metrics reference\n");
    for paragraph in PREAMBLE.split("\n\n") {
        let _ = write!(out, "\n{}\n", wrap(paragraph));
    }
    for section in sections() {
        let _ = write!(out, "\n## {}\n\n", section.title);
        if !section.intro.is_empty() {
            for paragraph in section.intro.split("\n\n") {
                let _ = write!(out, "{}\n\n", wrap(paragraph));
            }
        }
        table(&mut out, section.metrics);
    }
    out
}

fn table(out: &mut String, metrics: &[Metric]) {
    let changes = metrics.iter().any(|m| m.changes != ("", ""));
    let mut head = vec!["metric", "type", "labels", "meaning"];
    if changes {
        head.extend(["rises", "falls"]);
    }
    row(out, head.iter().map(|h| h.to_string()).collect());
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
    for m in metrics {
        let labels = if m.doc_labels.is_empty() {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            m.doc_labels.to_owned()
        };
        let meaning = if m.doc.is_empty() { m.help } else { m.doc };
        let mut cells = vec![
            format!("`{}`", m.name),
            type_name(m.kind).to_owned(),
            labels,
            one_line(meaning),
        ];
        if changes {
            cells.extend([one_line(m.changes.0), one_line(m.changes.1)]);
        }
        row(out, cells);
    }
}

fn row(out: &mut String, cells: Vec<String>) {
    for cell in cells {
        out.push_str("| ");
        if !cell.is_empty() {
            out.push_str(&cell);
            out.push(' ');
        }
    }
    out.push_str("|\n");
}

/// Wraps a paragraph at 95 columns, as the hand-written docs are.
fn wrap(text: &str) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > 95 {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_declared_once_and_documented() {
        let mut names: Vec<&str> = all().iter().map(|m| m.name).collect();
        for m in all() {
            assert!(
                !m.doc.is_empty(),
                "{} has no meaning for the reference",
                m.name
            );
            assert_eq!(
                m.kind == MetricType::Counter,
                m.name.ends_with("_total"),
                "{}: `_total` is for counters only",
                m.name
            );
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a metric is declared twice");
    }

    #[test]
    fn a_kinds_metrics_carry_its_name() {
        for kind in KINDS {
            for m in kind.metrics {
                assert!(
                    m.name.starts_with(&format!("pulse_{}_", kind.name)),
                    "{} is declared by kind {}",
                    m.name,
                    kind.name
                );
            }
        }
    }

    #[test]
    fn a_table_with_changes_gets_two_more_columns() {
        const PLAIN: Metric = Metric::gauge("pulse_x", "X.", &["source"]).doc("Meaning.");
        const MOVING: Metric = Metric::gauge("pulse_y", "Y.", &[])
            .doc("Meaning   on\n two lines.")
            .changes("up", "down");
        let mut out = String::new();
        table(&mut out, &[PLAIN, MOVING]);
        assert_eq!(
            out,
            "| metric | type | labels | meaning | rises | falls |\n\
             |---|---|---|---|---|---|\n\
             | `pulse_x` | gauge | `source` | Meaning. | | |\n\
             | `pulse_y` | gauge | | Meaning on two lines. | up | down |\n"
        );
    }

    #[test]
    fn paragraphs_wrap_at_95_columns() {
        let text = "word ".repeat(50);
        for line in wrap(&text).lines() {
            assert!(line.len() <= 95);
        }
        assert_eq!(wrap("a  b\nc"), "a b c");
    }
}
