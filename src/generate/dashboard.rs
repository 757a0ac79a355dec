//! The Grafana dashboard of a config: a header row with every source's health (up, probe
//! latency, failure reasons), then a row per source with a panel per check, chosen from what
//! the check publishes. Every check panel reads DEGRADED while its check or source fails and
//! NO DATA when nothing arrives; panel ids derive from source and check names, so a
//! regenerated dashboard keeps its links.
//!
//! This module chooses the panels, from what each check publishes ([`crate::config_core::shape`]) and the
//! panels kinds describe for their built-in metrics; `grafana.rs` writes the JSON.

use serde_json::{json, Value};

use super::bundle::Selection;
use super::grafana::{
    braces, cluster_variable, ds, query, ref_id, runbook_link, About, Board, Look,
};
use super::style::{self, STYLE};
use super::usual::usual;
use super::{any_of, check_ok, matchers, selector, CheckInfo};
use crate::config::Config;
use crate::config_core::display::PanelKind;
use crate::config_core::drop_alert::{promql_duration, DropAlert};
use crate::config_core::dur_text;
use crate::config_core::shape::{regex_literal, Builtin, PanelExpr, Series, Shape};
use crate::series::own_metrics::{SOURCE_DURATION, SOURCE_FAILURES, SOURCE_UP};

/// The dashboard's variable filter, added to every selector.
const VAR: &str = "instance=~\"$instance\"";

/// The variable filter of a template's panels: its targets (their `instance`).
const TARGET_VAR: &str = "instance=~\"$target\"";

/// The variable filter of `source`'s panels: the exporters chosen (`$instance`), or for a
/// template the targets chosen (`$target`).
fn var_of(source: &crate::config::SourceConfig) -> &'static str {
    match source.is_template() {
        true => TARGET_VAR,
        false => VAR,
    }
}

/// `expr` with `knobs` before each variable filter: every selector the panels write ends
/// with one ([`VAR`] or [`TARGET_VAR`]), as each of a mixin's carries its selector.
fn with_knobs(expr: &str, knobs: &str) -> String {
    expr.replace(VAR, &format!("{knobs}, {VAR}"))
        .replace(TARGET_VAR, &format!("{knobs}, {TARGET_VAR}"))
}

/// Title, uid and selection of a generated dashboard.
#[derive(Debug, Clone)]
pub struct Options {
    /// Grafana uid (at most 40 characters); links use it.
    pub uid: String,
    /// Dashboard title.
    pub title: String,
    /// Which series the panels read, for a Prometheus that holds more than this exporter's:
    /// the selector's matchers join the variable filter of every selector, and a cluster
    /// label becomes a `$cluster` variable (one cluster at a time, so that no panel adds up
    /// or joins two clusters' series).
    pub selection: Selection,
}

impl Options {
    /// A uid and title from the config file's name: `examples/hayon.yml` gives `pulse-hayon`
    /// and "pulse-exporter: hayon".
    pub fn for_file(path: &std::path::Path) -> Options {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let slug: String = stem
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    true => c.to_ascii_lowercase(),
                    false => '-',
                },
            )
            .take(34)
            .collect();
        let slug = if slug.is_empty() {
            "config".to_owned()
        } else {
            slug
        };
        Options {
            uid: format!("pulse-{slug}"),
            title: format!("pulse-exporter: {stem}"),
            selection: Selection::default(),
        }
    }
}

/// `{{a}} {{b}}`, or the exporter when no label varies.
fn legend(labels: &[String]) -> String {
    match labels.is_empty() {
        true => "{{instance}}".to_owned(),
        false => labels
            .iter()
            .map(|l| format!("{{{{{l}}}}}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Threshold steps: neutral blue, or green/red around the check's alert threshold (a ratio
/// alert's bound is a share, not a value the panel shows: blue).
fn thresholds(check: &CheckInfo<'_>) -> Value {
    let alert = check.common.alert.as_ref().filter(|a| a.ratio.is_none());
    let steps = match alert.map(|a| a.comparison()) {
        Some(Ok((">", v))) => {
            json!([{"color": "green", "value": null}, {"color": "red", "value": v}])
        }
        Some(Ok((_, v))) => {
            json!([{"color": "red", "value": null}, {"color": "green", "value": v}])
        }
        _ => json!([{"color": "blue", "value": null}]),
    };
    json!({"mode": "absolute", "steps": steps})
}

/// The dashboard of `config` as the file Grafana imports: indented JSON and a final newline.
pub fn render(config: &Config, options: &Options) -> String {
    serde_json::to_string_pretty(&dashboard(config, options)).unwrap_or_default() + "\n"
}

/// The dashboard of `config`.
pub fn dashboard(config: &Config, options: &Options) -> Value {
    let mut b = Board::default();
    let names: Vec<&str> = config
        .sources
        .iter()
        .map(|s| s.common.name.as_str())
        .collect();
    let sources = any_of("source", &names);
    // Templates' targets have their own row each; the header covers configured sources.
    if !names.is_empty() {
        header(&mut b, &sources);
    }
    let checks = super::checks(config);
    for source in crate::config::SourceConfig::all(config) {
        let name = &source.common.name;
        let title = match source.is_template() {
            false => format!("{name} ({})", source.kind.name()),
            true => format!(
                "{name} ({} template): every leased target",
                source.kind.name()
            ),
        };
        b.row(&format!("row/{name}"), &title);
        if source.is_template() {
            targets_panel(&mut b, source);
        }
        for check in checks.iter().filter(|c| &c.source.common.name == name) {
            for (i, series) in check.series.iter().enumerate() {
                check_panels(&mut b, check, series, i);
            }
        }
    }
    if !config.jobs.is_empty() {
        jobs_panels(&mut b, &config.jobs);
    }
    let knobs = options.selection.dashboard_matchers();
    if !knobs.is_empty() {
        // `get_mut`, not indexing: an index would add `"targets": null` to every row.
        let targets = b.panels.iter_mut().filter_map(|p| p.get_mut("targets"));
        for t in targets.filter_map(Value::as_array_mut).flatten() {
            if let Some(expr) = t.get_mut("expr") {
                if let Some(text) = expr.as_str() {
                    *expr = with_knobs(text, &knobs).into();
                }
            }
        }
    }
    // A config of jobs alone finds its exporters by their jobs.
    let (metric, scope) = match names.is_empty() && !config.jobs.is_empty() {
        true => ("pulse_job_info", ""),
        false => (SOURCE_UP.name, sources.as_str()),
    };
    let instance_query = format!(
        "label_values({metric}{}, instance)",
        braces(&[scope, &knobs])
    );
    let mut variables = vec![
        json!({"name": "datasource", "label": "Prometheus", "type": "datasource",
               "query": "prometheus", "hide": 0, "refresh": 1, "regex": "", "options": []}),
        json!({"name": "instance", "label": "Exporter", "type": "query", "datasource": ds(),
               "query": instance_query, "multi": true,
               "includeAll": true, "allValue": ".*",
               "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
               "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []}),
    ];
    if let Some(label) = options.selection.cluster_label() {
        let query = format!(
            "label_values({metric}{}, {label})",
            braces(&[options.selection.selector()])
        );
        variables.insert(1, cluster_variable(&query));
    }
    if !config.templates.is_empty() {
        let leased: Vec<String> = config
            .templates
            .iter()
            .map(|t| format!("{}/.+", regex_literal(&t.template.name)))
            .collect();
        let leased = format!("source=~{}", super::quote(&leased.join("|")));
        let query = format!(
            "label_values({}{}, instance)",
            SOURCE_UP.name,
            braces(&[&leased, &knobs])
        );
        variables.push(json!({"name": "target", "label": "Target", "type": "query",
            "datasource": ds(), "query": query, "multi": true,
            "includeAll": true, "allValue": ".*",
            "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
            "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []}));
    }
    json!({
        "uid": options.uid, "title": options.title,
        "description": "Generated by `pulse-exporter dashboards` from the config: each source's health, then a row per source with a panel per check. A panel reads DEGRADED while its check or source fails and NO DATA when nothing arrives. Regenerate it after changing the config; panel ids follow source and check names.",
        "tags": ["pulse-exporter", "generated"], "timezone": "browser", "editable": true,
        "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": b.panels,
    })
}

/// The jobs row: every job's state (past its deadline or not, its last run's outcome and exit
/// code, runs in flight, its last success) and its runs by outcome.
fn jobs_panels(b: &mut Board, jobs: &crate::jobs::config::JobsConfig) {
    use crate::jobs::metrics::*;
    b.row("row/jobs", "Jobs that report in");
    let scope = super::jobs_scope(jobs, Some(VAR));
    let of = |metric: &str| {
        format!(
            "max by (instance, job_name) ({} and on (instance, job_name) ({scope}))",
            style::fold(&selector(metric, &[], Some(VAR)))
        )
    };
    let targets = vec![
        json!({"expr": format!("time() - {}", of(JOB_DEADLINE.name)), "instant": true, "format": "table"}),
        json!({"expr": of(JOB_FAILING.name), "instant": true, "format": "table"}),
        json!({"expr": of(JOB_LAST_EXIT_CODE.name), "instant": true, "format": "table"}),
        json!({"expr": of(JOB_RUNNING.name), "instant": true, "format": "table"}),
        json!({"expr": format!("time() - {}", of(JOB_LAST_SUCCESS.name)), "instant": true, "format": "table"}),
    ];
    let about = About::plain(
        "jobs/status",
        "Job status",
        "Each job of `jobs:` and `job_keys:`: seconds past its deadline (negative: time left; red once late), whether its last run failed and its exit code, runs in flight, and the age of its last success. A late job stays listed until it reports; its log tail is on the exporter's landing page.",
        "short",
        json!({"mode": "absolute", "steps": [{"color": "blue", "value": null}]}),
    );
    let look = Look {
        size: (24, 8),
        mappings: Vec::new(),
        options: json!({"showHeader": true, "cellHeight": "sm"}),
    };
    let panel = b.panel("table", &about, targets, look);
    panel["links"] = json!([
        runbook_link("PulseJobLate"),
        runbook_link("PulseJobFailed"),
        runbook_link("PulseJobRunningTooLong")
    ]);
    panel["transformations"] = json!([
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": true},
            "renameByName": {"Value #A": "past deadline", "Value #B": "last run",
                             "Value #C": "exit code", "Value #D": "running",
                             "Value #E": "last success"}}},
        {"id": "sortBy", "options": {"sort": [{"field": "past deadline", "desc": true}]}},
    ]);
    panel["fieldConfig"]["overrides"] = json!([
        {"matcher": {"id": "byName", "options": "past deadline"}, "properties": [
            {"id": "unit", "value": "s"},
            {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                {"color": "green", "value": null}, {"color": "red", "value": 0}]}},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
        {"matcher": {"id": "byName", "options": "last run"}, "properties": [
            {"id": "mappings", "value": [{"type": "value", "options": {
                "0": {"text": "succeeded", "color": "green", "index": 0},
                "1": {"text": "failed", "color": "red", "index": 1}}}]},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
        {"matcher": {"id": "byName", "options": "last success"},
         "properties": [{"id": "unit", "value": "s"}]},
    ]);
    let runs = format!(
        "sum by (job_name, outcome) ({} and on (instance, job_name) ({scope}))",
        style::fold(&format!(
            "increase({}[$__rate_interval])",
            selector(JOB_RUNS.name, &[], Some(VAR))
        ))
    );
    let about = About::plain(
        "jobs/runs",
        "Job runs",
        "Finished runs per job and outcome: a job with no bar in its scheduled hour did not run.",
        "short",
        json!({"mode": "absolute", "steps": [{"color": "blue", "value": null}]}),
    );
    let look = Look {
        size: (24, 8),
        mappings: Vec::new(),
        options: json!({"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true}}),
    };
    let targets = vec![json!({"expr": runs, "legendFormat": "{{job_name}} {{outcome}}"})];
    b.panel("timeseries", &about, targets, look)["fieldConfig"]["defaults"]["custom"] = json!({"fillOpacity": 20, "lineWidth": 1, "showPoints": "never",
               "stacking": {"mode": "normal", "group": "A"}});
}

/// The first panel of a template's row: each leased target's health, by target.
fn targets_panel(b: &mut Board, source: &crate::config::SourceConfig) {
    let name = &source.common.name;
    let up = style::fold(&selector(
        SOURCE_UP.name,
        &[super::source_is(source)],
        Some(TARGET_VAR),
    ));
    let about = About::plain(
        &format!("{name}/targets/up"),
        "Targets up",
        &format!("1 while a target leased through template `{name}` answers its health probe (pulse_source_up): DOWN when it fails, NO DATA when no scraper asks for it."),
        "none",
        json!({"mode": "absolute", "steps": [{"color": "blue", "value": null}]}),
    );
    let look = Look {
        size: (24, 6),
        mappings: vec![STYLE.up.clone(), STYLE.no_data.clone()],
        options: json!({"reduceOptions": {"calcs": ["lastNotNull"], "values": false},
                        "colorMode": "background", "graphMode": "none",
                        "textMode": "value_and_name"}),
    };
    let targets = vec![json!({"expr": up, "legendFormat": "{{instance}}", "instant": true})];
    b.panel("stat", &about, targets, look)["links"] = json!([runbook_link("PulseSourceDown")]);
}

/// The header row: every source's health probe.
fn header(b: &mut Board, sources: &str) {
    b.row("row/sources", "Sources");
    let reduce = json!({"calcs": ["lastNotNull"], "values": false});
    let up = style::fold(&selector(SOURCE_UP.name, &[sources.to_owned()], Some(VAR)));
    let neutral = json!({"mode": "absolute", "steps": [{"color": "blue", "value": null}]});
    let about = About::plain(
        "sources/up",
        "Sources up",
        "1 while a source's health probe succeeds (pulse_source_up): DOWN when it fails, NO DATA when nothing is scraped.",
        "none",
        neutral.clone(),
    );
    let look = Look {
        size: (8, 6),
        mappings: vec![STYLE.up.clone(), STYLE.no_data.clone()],
        options: json!({"reduceOptions": reduce, "colorMode": "background", "graphMode": "none",
                        "textMode": "value_and_name"}),
    };
    let targets = vec![json!({"expr": up, "legendFormat": "{{source}}", "instant": true})];
    b.panel("stat", &about, targets, look)["links"] = json!([runbook_link("PulseSourceDown")]);
    let latency = style::fold(&selector(
        SOURCE_DURATION.name,
        &[sources.to_owned()],
        Some(VAR),
    ));
    let about = About::plain(
        "sources/latency",
        "Health probe latency",
        "Duration of each source's last health probe (PulseSourceSlow fires when the 90th percentile over 15 minutes passes 2 s).",
        "s",
        neutral.clone(),
    );
    let look = Look {
        size: (8, 6),
        mappings: Vec::new(),
        options: json!({"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true}}),
    };
    let targets = vec![json!({"expr": latency, "legendFormat": "{{source}}"})];
    b.panel("timeseries", &about, targets, look)["fieldConfig"]["defaults"]["custom"] =
        json!({"fillOpacity": 5, "lineWidth": 1, "showPoints": "never"});
    let failures = format!(
        "sum by (source, reason) ({}) > 0\nor on (source) label_replace(0 * max by (source) ({up}), \"reason\", \"none\", \"\", \"\")",
        style::fold(&format!(
            "increase({}[$__range])",
            selector(SOURCE_FAILURES.name, &[sources.to_owned()], Some(VAR))
        )),
    );
    let about = About::plain(
        "sources/failures",
        "Health probe failures in the time range",
        "Failed health probes of each source in the dashboard's time range, by reason (timeout, connect, auth, query, …); `none` when a source had none.",
        "short",
        json!({"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "red", "value": 1}]}),
    );
    let look = Look {
        size: (8, 6),
        mappings: Vec::new(),
        options: json!({"showHeader": true, "cellHeight": "sm"}),
    };
    let targets =
        vec![json!({"expr": failures, "legendFormat": "", "instant": true, "format": "table"})];
    let p = b.panel("table", &about, targets, look);
    p["transformations"] = json!([{"id": "organize", "options": {
        "excludeByName": {"Time": true},
        "renameByName": {"Value": "failures"}}}]);
}

/// What the panels of one series of a check share: the check and the series, the series'
/// panel key (`metric#index`) and title, what it shows, and the note on its guard.
struct Panels<'a, 'c> {
    check: &'a CheckInfo<'c>,
    series: &'a Series,
    key: String,
    title: String,
    what: String,
    guard_note: String,
    ok: String,
}

impl<'a, 'c> Panels<'a, 'c> {
    fn new(check: &'a CheckInfo<'c>, series: &'a Series, index: usize) -> Self {
        let source = &check.source.common.name;
        let name = &check.plan.check;
        let what = check
            .common
            .description
            .clone()
            .or_else(|| series.help.clone())
            .or_else(|| check.common.help.clone())
            .unwrap_or_else(|| format!("Metric {} of check {name}.", series.metric));
        let title = match (index, &series.shape) {
            (_, Shape::Timestamp) => format!("{name}: age"),
            (0, _) => name.clone(),
            _ => format!("{name}: {}", series.metric),
        };
        Panels {
            check,
            series,
            key: format!("{}#{index}", series.metric),
            title,
            what,
            guard_note: format!(
                " DEGRADED while check `{name}` of source `{source}` fails or the source is down; NO DATA when nothing arrives."
            ),
            ok: check_ok(check.source, name, Some(var_of(check.source))),
        }
    }

    /// A panel of the check under `key`, in `unit` unless the check sets its own.
    fn about(&self, key: &str, title: String, description: String, unit: &str) -> About {
        let check = self.check;
        About {
            key: format!("{}/{}/{key}", check.source.common.name, check.plan.check),
            title,
            description,
            unit: check
                .common
                .unit
                .as_ref()
                .map_or_else(|| unit.to_owned(), |u| u.0.clone()),
            ok: self.ok.clone(),
            thresholds: thresholds(check),
        }
    }

    /// The panel kind the check asks for, else `default`.
    fn chosen(&self, default: PanelKind) -> PanelKind {
        self.check.common.panel.unwrap_or(default)
    }

    /// Lines per label set, or one stat for a series without labels.
    fn lines_or_stat(&self) -> PanelKind {
        if self.series.labels.is_empty() {
            PanelKind::Stat
        } else {
            PanelKind::Timeseries
        }
    }
}

/// The panels of one series of a check.
fn check_panels(b: &mut Board, check: &CheckInfo<'_>, series: &Series, index: usize) {
    let p = Panels::new(check, series, index);
    if let Some(drop) = &check.common.drop {
        let a = p.about(
            &format!("{}/usual", p.key),
            format!("{}: against its usual", check.plan.check),
            format!("{}{}", p.what, p.guard_note),
            "short",
        );
        usual_panel(b, check, series, drop, &a);
    }
    match &series.shape {
        Shape::Gauge | Shape::TopN | Shape::Summary => value_panel(b, &p),
        Shape::Timestamp => age_panel(b, &p),
        Shape::Counter => rate_panel(b, &p),
        Shape::Histogram => histogram_panel(b, &p),
        Shape::Workers { pool } => worker_panels(b, &p, pool),
        Shape::Builtin(set) => builtin_panels(b, &p, set),
    }
}

/// A gauge's values: lines or a stat, a table of the top N, a bar gauge of a summary.
fn value_panel(b: &mut Board, p: &Panels<'_, '_>) {
    let series = p.series;
    let kind = p.chosen(match series.shape {
        Shape::TopN => PanelKind::Table,
        Shape::Summary => PanelKind::Bargauge,
        _ => p.lines_or_stat(),
    });
    let a = p.about(
        &p.key,
        p.title.clone(),
        format!("{}{}", p.what, p.guard_note),
        style::unit_of(&series.metric),
    );
    let sel = selector(
        &series.metric,
        &matchers(p.check, series),
        Some(var_of(p.check.source)),
    );
    b.guarded(
        kind,
        &a,
        vec![query(style::fold(&sel), legend(&series.labels))],
    );
}

/// A point in time, shown as how long ago it was.
fn age_panel(b: &mut Board, p: &Panels<'_, '_>) {
    let series = p.series;
    let a = p.about(
        &p.key,
        p.title.clone(),
        format!(
            "How long ago: now minus {}. {}{}",
            series.metric, p.what, p.guard_note
        ),
        "s",
    );
    let sel = selector(
        &series.metric,
        &matchers(p.check, series),
        Some(var_of(p.check.source)),
    );
    let expr = format!("time() - {}", style::fold(&sel));
    b.guarded(
        p.chosen(p.lines_or_stat()),
        &a,
        vec![query(expr, legend(&series.labels))],
    );
}

/// A counter, as its per-second rate.
fn rate_panel(b: &mut Board, p: &Panels<'_, '_>) {
    let series = p.series;
    let a = p.about(
        &p.key,
        format!("{}: per second", series.metric),
        format!(
            "Per-second rate of {}. {}{}",
            series.metric, p.what, p.guard_note
        ),
        style::unit_of(&series.metric),
    );
    let sel = selector(
        &series.metric,
        &matchers(p.check, series),
        Some(var_of(p.check.source)),
    );
    let expr = style::fold(&format!("rate({sel}[$__rate_interval])"));
    b.guarded(
        p.chosen(PanelKind::Timeseries),
        &a,
        vec![query(expr, legend(&series.labels))],
    );
}

/// The quantiles panel of a histogram series: p50, p90 and p99 from its buckets.
fn histogram_panel(b: &mut Board, p: &Panels<'_, '_>) {
    let (check, series, key) = (p.check, p.series, p.key.as_str());
    let (what, guard_note) = (p.what.as_str(), p.guard_note.as_str());
    let labels = &series.labels;
    let base = &series.metric;
    let bucket = selector(
        &format!("{base}_bucket"),
        &matchers(check, series),
        Some(var_of(check.source)),
    );
    let by: Vec<&str> = ["instance", "le"]
        .into_iter()
        .chain(labels.iter().map(String::as_str))
        .collect();
    let queries = [("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")]
        .into_iter()
        .map(|(tag, q)| {
            let rate = style::fold(&format!("rate({bucket}[$__rate_interval])"));
            let expr = format!(
                "histogram_quantile({q}, sum by ({}) ({rate}))",
                by.join(", ")
            );
            let named = match labels.is_empty() {
                true => tag.to_owned(),
                false => format!("{tag} {}", legend(labels)),
            };
            query(expr, named)
        })
        .collect();
    let a = p.about(
        key,
        format!("{base}: quantiles"),
        format!("Median, 90th and 99th percentile of {base}. {what}{guard_note}"),
        style::unit_of(base),
    );
    b.guarded(PanelKind::Timeseries, &a, queries);
}

/// The panels of a heartbeat check's pool: every worker with its heartbeat's age, and the
/// workers up.
fn worker_panels(b: &mut Board, p: &Panels<'_, '_>, pool: &str) {
    let (check, series, key, guard_note) = (p.check, p.series, p.key.as_str(), &p.guard_note);
    let sel = selector(
        &series.metric,
        &matchers(check, series),
        Some(var_of(check.source)),
    );
    let ms = matchers(check, series);
    let up = style::fold(&sel);
    let age = format!(
        "time() - {}",
        style::fold(&selector(
            crate::sources::heartbeat::LAST_HEARTBEAT.name,
            &ms,
            Some(var_of(check.source))
        ))
    );
    let a = p.about(
        &format!("{key}/workers"),
        format!("Workers of pool {pool}"),
        format!("Every worker of pool `{pool}`: up (1) while its last heartbeat is within max_age, and the seconds since that beat.{guard_note}"),
        "none",
    );
    b.guarded(
        PanelKind::Table,
        &a,
        vec![query(up, "{{worker}}"), query(age, "{{worker}}")],
    );
    if let Some(p) = b.panels.last_mut() {
        p["transformations"] = json!([
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": true, "__name__": true, "job": true},
                "renameByName": {"Value #A": "up", "Value #B": "heartbeat age"}}},
        ]);
        p["fieldConfig"]["overrides"] = json!([
            {"matcher": {"id": "byName", "options": "up"}, "properties": [
                {"id": "mappings", "value": [STYLE.up, STYLE.degraded]},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
            {"matcher": {"id": "byName", "options": "heartbeat age"},
             "properties": [{"id": "unit", "value": "s"}]},
        ]);
    }
    let workers_up = style::fold(&selector(
        crate::sources::heartbeat::POOL_WORKERS_UP.name,
        &ms,
        Some(var_of(check.source)),
    ));
    let a = p.about(
        &format!("{key}/up"),
        format!("Workers up in pool {pool}"),
        format!("Workers of pool `{pool}` whose last heartbeat is within max_age.{guard_note}"),
        "none",
    );
    b.guarded(PanelKind::Stat, &a, vec![query(workers_up, "{{instance}}")]);
}

/// The panel of a check with `drop:`: its value, its usual (the median of the same time in
/// past periods) and the alert line under it, so that whether today is normal shows at a
/// glance. `a` says what the check measures; the rest of the description is added here.
fn usual_panel(b: &mut Board, check: &CheckInfo<'_>, series: &Series, drop: &DropAlert, a: &About) {
    let Some(u) = usual(check, series, drop, Some(var_of(check.source)), "instance") else {
        return;
    };
    let ratio = drop.ratio;
    let legend_of = |tag: &str| match series.labels.is_empty() {
        true => tag.to_owned(),
        false => format!("{tag} {}", legend(&series.labels)),
    };
    let a = About {
        description: format!(
            "Solid: the {} of {} now. Dashed: its usual, the median of the same time over the last {} periods of {}. Dotted: the alert line, {ratio} × the usual: under it for {} at a time whose usual is at least {} is PulseBusinessSignalLow. {}",
            u.measured,
            series.metric,
            drop.periods,
            promql_duration(drop.period.0),
            dur_text(drop.for_.0),
            drop.min_usual,
            a.description
        ),
        ..a.clone()
    };
    b.guarded(
        PanelKind::Timeseries,
        &a,
        vec![
            query(u.now, legend_of("now")),
            query(u.usual.clone(), legend_of("usual")),
            query(format!("{ratio} * {}", u.usual), legend_of("alert line")),
        ],
    );
}

/// The panels a kind describes for its built-in metrics.
fn builtin_panels(b: &mut Board, p: &Panels<'_, '_>, set: &Builtin) {
    let (check, series, key) = (p.check, p.series, p.key.as_str());
    let name = &check.plan.check;
    let ms = matchers(check, series);
    let raw = |metric: &str| selector(metric, &ms, Some(var_of(check.source)));
    let sel = |metric: &str| style::fold(&raw(metric));
    let note = format!(
        " DEGRADED while check `{name}` of source `{}` fails or the source is down.",
        check.source.common.name
    );
    for panel in &set.panels {
        let a = p.about(
            &format!("{key}/{}", panel.key),
            panel.title.clone(),
            format!("{}{note}", panel.description),
            panel.unit,
        );
        let queries = panel
            .queries
            .iter()
            .map(|q| {
                let expr = match q.expr {
                    PanelExpr::Metric(metric) => sel(metric),
                    PanelExpr::SumOrZero { metric, present } => format!(
                        "sum by (instance) ({})\nor 0 * max by (instance) ({})",
                        sel(metric),
                        sel(present)
                    ),
                    // Replicas of a shard read the same server: their average is its value,
                    // and native histograms can be averaged (not maxed).
                    PanelExpr::Age(metric) => format!("time() - {}", sel(metric)),
                    PanelExpr::Rate(metric) => format!(
                        "avg without (pod) (rate({}[$__rate_interval]))",
                        raw(metric)
                    ),
                    PanelExpr::Quantile { metric, quantile } => format!(
                        "histogram_quantile({quantile}, avg without (pod) (rate({}[$__rate_interval])))\nor histogram_quantile({quantile}, avg without (pod) (rate({}[$__rate_interval])))",
                        raw(&format!("{metric}_bucket")),
                        raw(metric)
                    ),
                };
                query(expr, q.legend)
            })
            .collect();
        b.guarded(panel.kind, &a, queries);
        let Some(p) = b.panels.last_mut() else {
            continue;
        };
        if panel.outcome {
            p["fieldConfig"]["defaults"]["mappings"] =
                json!([STYLE.ok, STYLE.degraded, STYLE.no_data]);
        }
        for (i, q) in panel.queries.iter().enumerate() {
            if let (Some(unit), Some(overrides)) =
                (q.unit, p["fieldConfig"]["overrides"].as_array_mut())
            {
                overrides.push(json!({
                    "matcher": {"id": "byFrameRefID", "options": ref_id(i)},
                    "properties": [{"id": "unit", "value": unit}],
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn board(yaml: &str) -> Value {
        let config = crate::config::load_str(yaml).unwrap();
        dashboard(
            &config,
            &Options::for_file(std::path::Path::new("team.yml")),
        )
    }

    fn panels(d: &Value) -> Vec<&Value> {
        d["panels"].as_array().unwrap().iter().collect()
    }

    const REDIS: &str =
        "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n";

    #[test]
    fn a_panel_is_chosen_by_what_its_check_publishes() {
        let d = board(&format!(
            "{REDIS}    keys:\n      - {{ key: jobs, metric: app_jobs_waiting, unit: 'suffix: jobs', oldest: {{ metric: app_jobs_oldest_timestamp_seconds }} }}\n      - {{ pattern: 'q:*', metric: app_queue_depth, label: queue }}\n    checks:\n      - {{ metric: app_rpm, command: [GET, rpm], panel: bargauge, description: Requests a minute. }}\n"
        ));
        let by_title = |t: &str| {
            panels(&d)
                .into_iter()
                .find(|p| p["title"] == t)
                .unwrap_or_else(|| panic!("no panel {t}"))
                .clone()
        };
        let jobs = by_title("jobs");
        assert_eq!(jobs["type"], "stat");
        assert_eq!(jobs["fieldConfig"]["defaults"]["unit"], "suffix: jobs");
        let expr = jobs["targets"][0]["expr"].as_str().unwrap();
        assert!(expr.starts_with("(max without (pod) (app_jobs_waiting{key=\"jobs\", instance=~\"$instance\"}))\nand on (instance) ("), "{expr}");
        assert!(expr.contains("check=\"jobs\""), "{expr}");
        let age = by_title("jobs: age");
        assert!(age["targets"][0]["expr"].as_str().unwrap().starts_with(
            "(time() - max without (pod) (app_jobs_oldest_timestamp_seconds{key=\"jobs\""
        ));
        assert_eq!(
            age["fieldConfig"]["defaults"]["unit"], "suffix: jobs",
            "the override wins"
        );
        let depth = by_title("q:*");
        assert_eq!(depth["type"], "timeseries");
        assert!(depth["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .contains("queue=~\"q:.*\""));
        assert_eq!(depth["targets"][0]["legendFormat"], "{{queue}}");
        assert_eq!(
            depth["targets"][1]["legendFormat"],
            "DEGRADED: check failing or source down"
        );
        let rpm = by_title("app_rpm");
        assert_eq!(rpm["type"], "bargauge");
        assert!(rpm["description"]
            .as_str()
            .unwrap()
            .starts_with("Requests a minute. DEGRADED while check `app_rpm`"));
    }

    #[test]
    fn ids_follow_names_so_a_new_check_moves_no_other_panel_id() {
        let one = board(&format!("{REDIS}    keys: [{{ key: a }}, {{ key: b }}]\n"));
        let two = board(&format!(
            "{REDIS}    keys: [{{ key: new }}, {{ key: a }}, {{ key: b }}]\n"
        ));
        let id = |d: &Value, t: &str| {
            panels(d).into_iter().find(|p| p["title"] == t).unwrap()["id"].clone()
        };
        assert_eq!(id(&one, "a"), id(&two, "a"));
        assert_eq!(id(&one, "b"), id(&two, "b"));
        assert_eq!(one["uid"], "pulse-team");
        let ids: HashSet<u64> = panels(&two)
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), panels(&two).len());
    }

    #[test]
    fn the_header_row_covers_every_source() {
        let d = board(&format!(
            "{REDIS}  - {{ name: db, kind: postgres, url: 'postgres://x@127.0.0.1/x' }}\n"
        ));
        let first = panels(&d)[1]["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(first.contains("source=~\"cache|db\""), "{first}");
        let rows: Vec<&str> = panels(&d)
            .iter()
            .filter(|p| p["type"] == "row")
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        assert_eq!(rows, ["Sources", "cache (redis)", "db (postgres)"]);
    }

    #[test]
    fn uids_are_short_and_plain() {
        let o = Options::for_file(std::path::Path::new("/etc/pulse/My Team's Config.yaml"));
        assert_eq!(o.uid, "pulse-my-team-s-config");
        let long = Options::for_file(std::path::Path::new(&"x".repeat(100)));
        assert!(long.uid.len() <= 40);
    }

    /// `dashboards --selector … --cluster-label …`: every series a panel or a variable reads
    /// carries the selector and the chosen cluster, for every kind of panel (the header,
    /// checks, thresholds, ratios, drops against usual, the kinds' own panels, heartbeats,
    /// templates' targets, jobs); a `$cluster` variable chooses one cluster.
    #[test]
    fn the_knobs_reach_every_series_a_panel_or_a_variable_reads() {
        let config = crate::config::load_str(super::super::EVERY_KIND_OF_PANEL_AND_RULE)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut options = Options::for_file(std::path::Path::new("team.yml"));
        options.selection = Selection::new("tenant=\"t1\"", Some("cluster")).unwrap();
        let d = dashboard(&config, &options);

        let vars = d["templating"]["list"].as_array().unwrap();
        let names: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["datasource", "cluster", "instance", "target"]);
        assert_eq!(
            vars[1]["query"],
            "label_values(pulse_source_up{tenant=\"t1\"}, cluster)"
        );
        assert_eq!(vars[1]["multi"], false, "one cluster at a time");
        for v in &vars[2..] {
            let q = v["query"].as_str().unwrap();
            assert!(q.contains("cluster=\"$cluster\", tenant=\"t1\"}"), "{q}");
        }

        let mut checked = 0;
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap();
                let concrete = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$__interval", "1m")
                    .replace("$__range", "1h")
                    .replace("$instance", ".*")
                    .replace("$target", ".*")
                    .replace("$cluster", "eu");
                for (metric, matchers) in crate::generate::bundle::selectors(&concrete) {
                    for wanted in ["cluster=\"eu\"", "tenant=\"t1\""] {
                        assert!(
                            matchers.iter().any(|m| m == wanted),
                            "{}: {metric} {matchers:?} lacks {wanted} in\n{expr}",
                            p["title"]
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} selectors found");

        // Without knobs, nothing of them.
        let plain = serde_json::to_string(&dashboard(
            &config,
            &Options::for_file(std::path::Path::new("team.yml")),
        ))
        .unwrap();
        assert!(!plain.contains("cluster") && !plain.contains("tenant"));
    }
}
