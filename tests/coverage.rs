//! `docs/specs-coverage.md` maps every number of the three platform specs to the metric that
//! carries it and to the dashboard panel that shows it. This holds the map to the dashboards
//! (`grafana/dashboards/*.json`): every panel a row names exists, every metric the row names is
//! queried by one of its panels, and every panel it names with queries queries one of them.
//! The doc's top section describes the table convention parsed here.

use pulse_test_support as common;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

const DOC: &str = "docs/specs-coverage.md";

/// One table row of the coverage doc.
#[derive(Debug)]
struct Row {
    line: usize,
    /// The backticked items of the metric column: metric names, each maybe with a selector.
    metrics: Vec<String>,
    /// The backticked items of the panel column: `dashboard uid / Panel title`.
    panels: Vec<String>,
}

/// The text between each pair of backticks of `cell`.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.to_owned())
        .collect()
}

/// The rows of every `| spec number | metric | panel |` table of `doc`; a table row that
/// belongs to no such table, or has another number of cells, fails.
fn rows(doc: &str) -> Vec<Row> {
    let mut out = Vec::new();
    let mut in_table = false;
    for (i, line) in doc.lines().enumerate() {
        let line_no = i + 1;
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        // `\|` is a pipe inside a cell (e.g. in a selector), not a cell boundary.
        let cells: Vec<String> = line
            .replace("\\|", "\u{0}")
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().replace('\u{0}', "|"))
            .collect();
        if cells == ["spec number", "metric", "panel"] {
            in_table = true;
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue; // the header's separator
        }
        assert!(
            in_table,
            "{DOC}:{line_no}: a table row outside a `| spec number | metric | panel |` table"
        );
        assert_eq!(
            cells.len(),
            3,
            "{DOC}:{line_no}: a row has three cells, this has {cells:?}"
        );
        out.push(Row {
            line: line_no,
            metrics: backticked(&cells[1]),
            panels: backticked(&cells[2]),
        });
    }
    out
}

/// The metric name of a metric-column item: the part before its selector.
fn metric_name(item: &str) -> &str {
    item.split('{').next().unwrap_or_default().trim()
}

/// Whether `expr` selects `metric` (a whole name; a histogram's name also matches its
/// `_bucket`, `_sum` and `_count` series).
fn queries(expr: &str, metric: &str) -> bool {
    Regex::new(&format!(
        r"(^|[^a-zA-Z0-9_:]){}(_bucket|_sum|_count)?([^a-zA-Z0-9_:]|$)",
        regex::escape(metric)
    ))
    .unwrap()
    .is_match(expr)
}

#[test]
fn the_matcher_takes_whole_metric_names_only() {
    assert!(queries("sum by (x) (app_users{a=\"b\"})", "app_users"));
    assert!(!queries("sum(app_users_registered)", "app_users"));
    assert!(!queries("sum(my_app_users)", "app_users"));
    assert!(queries(
        "rate(app_ai_log_latency_seconds_bucket[1m])",
        "app_ai_log_latency_seconds"
    ));
    assert!(queries("usage_daily:dau", "usage_daily:dau"));
    assert!(!queries("usage_daily:dau_by_plan", "usage_daily:dau"));
    assert_eq!(
        metric_name("app_ai_requests{window=\"1m\"|\"1h\"}"),
        "app_ai_requests"
    );
    let parsed = rows(
        "| spec number | metric | panel |\n|---|---|---|\n| A `x` | `m{a=\"1\"\\|\"2\"}` ✓, `n` | `u / T`, `u / T2` |\n",
    );
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].metrics, ["m{a=\"1\"|\"2\"}", "n"]);
    assert_eq!(parsed[0].panels, ["u / T", "u / T2"]);
}

#[test]
fn every_spec_number_is_on_a_panel_that_queries_its_metric() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC)).unwrap();
    let panels: BTreeMap<(String, String), Vec<String>> = common::panels()
        .into_iter()
        .map(|(uid, title, exprs)| ((uid, title), exprs))
        .collect();
    let name = Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let rows = rows(&doc);
    let mut errors = Vec::new();
    for row in &rows {
        let line = row.line;
        if row.metrics.is_empty() || row.panels.is_empty() {
            errors.push(format!("{DOC}:{line}: names no metric or no panel"));
            continue;
        }
        for item in &row.metrics {
            if !name.is_match(metric_name(item)) {
                errors.push(format!("{DOC}:{line}: `{item}` is not a metric name"));
            }
        }
        let metrics: Vec<&str> = row
            .metrics
            .iter()
            .map(|m| metric_name(m))
            .filter(|m| name.is_match(m))
            .collect();
        let mut exprs: Vec<&str> = Vec::new();
        for p in &row.panels {
            let Some((uid, title)) = p.split_once(" / ") else {
                errors.push(format!(
                    "{DOC}:{line}: `{p}` is not `dashboard uid / Panel title`"
                ));
                continue;
            };
            let Some(panel_exprs) = panels.get(&(uid.to_owned(), title.to_owned())) else {
                errors.push(format!(
                    "{DOC}:{line}: no panel `{p}` in grafana/dashboards"
                ));
                continue;
            };
            // A panel without queries (the alert list) shows what no expression names.
            if !panel_exprs.is_empty()
                && !panel_exprs
                    .iter()
                    .any(|e| metrics.iter().any(|m| queries(e, m)))
            {
                errors.push(format!(
                    "{DOC}:{line}: panel `{p}` queries none of {metrics:?}"
                ));
            }
            exprs.extend(panel_exprs.iter().map(String::as_str));
        }
        for m in &metrics {
            if !exprs.iter().any(|e| queries(e, m)) {
                errors.push(format!(
                    "{DOC}:{line}: no panel of {:?} queries {m}",
                    row.panels
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // All three specs' tables were read (a table lost to a formatting slip would pass).
    for section in ["## HiveSync", "## JOIP", "## Hayon"] {
        assert!(doc.contains(section), "{DOC} has no {section} section");
    }
    assert!(
        rows.len() >= 55,
        "{DOC}: only {} rows were read",
        rows.len()
    );
}
