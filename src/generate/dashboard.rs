//! The Grafana dashboard of a config: a header row with every source's health (up, probe
//! latency, failure reasons), then a row per source with a panel per check, chosen from what
//! the check publishes. Every check panel reads DEGRADED while its check or source fails and
//! NO DATA when nothing arrives; panel ids derive from source and check names, so a
//! regenerated dashboard keeps its links.

use std::collections::HashSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::style::{self, STYLE};
use super::{any_of, check_ok, matchers, selector, CheckInfo};
use crate::config::display::PanelKind;
use crate::configfile::Config;
use crate::shape::{Builtin, PanelExpr, Series, Shape};

/// The dashboard's variable filter, added to every selector.
const VAR: &str = "instance=~\"$instance\"";

/// The datasource every panel and query uses: the dashboard's `datasource` variable.
fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Title and uid of a generated dashboard.
#[derive(Debug, Clone)]
pub struct Options {
    /// Grafana uid (at most 40 characters); links use it.
    pub uid: String,
    /// Dashboard title.
    pub title: String,
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
        }
    }
}

/// A panel id from `key`, stable across regenerations (Grafana links to a panel by id).
fn stable_id(key: &str, used: &mut HashSet<u64>) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut id =
        u64::from(u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 1).max(1);
    while !used.insert(id) {
        id += 1;
    }
    id
}

/// One query of a panel.
struct Query {
    expr: String,
    legend: String,
}

fn query(expr: String, legend: impl Into<String>) -> Query {
    Query {
        expr,
        legend: legend.into(),
    }
}

/// Panels laid out left to right, rows of 24 columns.
struct Board {
    panels: Vec<Value>,
    x: u64,
    y: u64,
    row_h: u64,
    ids: HashSet<u64>,
}

/// What a check panel is about: its guard, and the texts around it.
struct About {
    key: String,
    title: String,
    description: String,
    unit: String,
    /// 1 while the check and its source work (see [`check_ok`]).
    ok: String,
    thresholds: Value,
}

impl Board {
    fn place(&mut self, w: u64, h: u64) -> Value {
        if self.x + w > 24 {
            self.x = 0;
            self.y += self.row_h;
            self.row_h = 0;
        }
        let pos = json!({"x": self.x, "y": self.y, "w": w, "h": h});
        self.x += w;
        self.row_h = self.row_h.max(h);
        pos
    }

    fn row(&mut self, key: &str, title: &str) {
        if self.x > 0 {
            self.x = 0;
            self.y += self.row_h;
            self.row_h = 0;
        }
        let id = stable_id(key, &mut self.ids);
        self.panels.push(json!({
            "type": "row", "title": title, "id": id, "collapsed": false,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": [],
        }));
        self.y += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn panel(
        &mut self,
        kind: &str,
        key: &str,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
        (w, h): (u64, u64),
        mappings: Vec<Value>,
        thresholds: Value,
        options: Value,
    ) -> &mut Value {
        let id = stable_id(key, &mut self.ids);
        let targets: Vec<Value> = targets
            .into_iter()
            .enumerate()
            .map(|(i, mut t)| {
                t["refId"] = json!(ref_id(i));
                t["datasource"] = ds();
                t
            })
            .collect();
        let color = match kind {
            "timeseries" => "palette-classic",
            _ => "thresholds",
        };
        let panel = json!({
            "type": kind, "title": title, "description": description, "id": id,
            "datasource": ds(), "gridPos": self.place(w, h), "targets": targets,
            "fieldConfig": {
                "defaults": {
                    "unit": unit, "noValue": STYLE.no_value, "thresholds": thresholds,
                    "mappings": mappings, "color": {"mode": color},
                },
                "overrides": [],
            },
            "options": options,
        });
        self.panels.push(panel);
        self.panels.last_mut().expect("just pushed")
    }

    /// A panel of `kind` showing `queries`, guarded by `about.ok`.
    fn guarded(&mut self, kind: PanelKind, about: &About, queries: Vec<Query>) {
        let reduce = json!({"calcs": ["lastNotNull"], "values": false});
        let degraded = STYLE.degraded.clone();
        let no_data = STYLE.no_data.clone();
        match kind {
            PanelKind::Stat | PanelKind::Bargauge | PanelKind::Table => {
                let table = kind == PanelKind::Table;
                let targets = queries
                    .iter()
                    .map(|q| {
                        let mut t = json!({
                            "expr": style::guard(&q.expr, &about.ok, "instance"),
                            "legendFormat": q.legend, "instant": true,
                        });
                        if table {
                            t["format"] = json!("table");
                        }
                        t
                    })
                    .collect();
                let (size, mappings, options) = match kind {
                    PanelKind::Stat => (
                        (6, 5),
                        vec![degraded, no_data],
                        json!({"reduceOptions": reduce, "colorMode": "background",
                               "graphMode": "none", "textMode": "value_and_name"}),
                    ),
                    PanelKind::Bargauge => (
                        (8, 8),
                        vec![degraded, no_data],
                        json!({"reduceOptions": reduce, "orientation": "horizontal",
                               "displayMode": "basic", "showUnfilled": true}),
                    ),
                    _ => (
                        (12, 8),
                        vec![degraded],
                        json!({"showHeader": true, "cellHeight": "sm"}),
                    ),
                };
                let p = self.panel(
                    kind.grafana_type(),
                    &about.key,
                    &about.title,
                    &about.description,
                    &about.unit,
                    targets,
                    size,
                    mappings,
                    about.thresholds.clone(),
                    options,
                );
                if table {
                    p["transformations"] = json!([{"id": "organize", "options": {
                        "excludeByName": {"Time": true, "__name__": true, "job": true}}}]);
                    p["fieldConfig"]["overrides"] = json!([{
                        "matcher": {"id": "byName", "options": "Value"},
                        "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}],
                    }]);
                }
            }
            PanelKind::Timeseries => {
                let mut targets: Vec<Value> = queries
                    .iter()
                    .map(|q| {
                        json!({"expr": style::guard_line(&q.expr, &about.ok, "instance"),
                               "legendFormat": q.legend})
                    })
                    .collect();
                let degraded_ref = ref_id(targets.len());
                targets.push(json!({
                    "expr": style::degraded_line(&about.ok),
                    "legendFormat": "DEGRADED: check failing or source down",
                }));
                let dashed = about.thresholds["steps"]
                    .as_array()
                    .is_some_and(|s| s.len() > 1);
                let p = self.panel(
                    "timeseries",
                    &about.key,
                    &about.title,
                    &about.description,
                    &about.unit,
                    targets,
                    (12, 8),
                    vec![degraded],
                    about.thresholds.clone(),
                    json!({"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true},
                           "tooltip": {"mode": "multi", "sort": "desc"}}),
                );
                p["fieldConfig"]["defaults"]["custom"] = json!({
                    "fillOpacity": 5, "lineWidth": 1, "showPoints": "never",
                    "thresholdsStyle": {"mode": if dashed { "dashed" } else { "off" }},
                });
                p["fieldConfig"]["overrides"] = json!([{
                    "matcher": {"id": "byFrameRefID", "options": degraded_ref},
                    "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": STYLE.degraded_color}}],
                }]);
            }
        }
        if let Some(p) = self.panels.last_mut() {
            p["links"] = json!([runbook_link("PulseCheckFailing")]);
        }
    }
}

/// A panel link to the runbook section of `alert`, with every field Grafana's schema names.
fn runbook_link(alert: &str) -> Value {
    json!({
        "title": format!("Runbook: {alert}"), "type": "link", "url": style::runbook_url(alert),
        "targetBlank": true, "asDropdown": false, "icon": "doc", "includeVars": false,
        "keepTime": false, "tags": [], "tooltip": "",
    })
}

/// `A`, `B`, … `Z`, then `Q26`, …
fn ref_id(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'A' + n).to_string(),
        _ => format!("Q{i}"),
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
    let mut b = Board {
        panels: Vec::new(),
        x: 0,
        y: 0,
        row_h: 0,
        ids: HashSet::new(),
    };
    let names: Vec<&str> = config
        .sources
        .iter()
        .map(|s| s.common.name.as_str())
        .collect();
    let sources = any_of("source", &names);
    header(&mut b, &sources);
    let checks = super::checks(config);
    for source in &config.sources {
        let name = &source.common.name;
        b.row(
            &format!("row/{name}"),
            &format!("{name} ({})", source.kind.name()),
        );
        for check in checks.iter().filter(|c| &c.source.common.name == name) {
            for (i, series) in check.series.iter().enumerate() {
                check_panels(&mut b, check, series, i);
            }
        }
    }
    let instance_query = format!("label_values(pulse_source_up{{{sources}}}, instance)");
    json!({
        "uid": options.uid, "title": options.title,
        "description": "Generated by `pulse-exporter dashboards` from the config: each source's health, then a row per source with a panel per check. A panel reads DEGRADED while its check or source fails and NO DATA when nothing arrives. Regenerate it after changing the config; panel ids follow source and check names.",
        "tags": ["pulse-exporter", "generated"], "timezone": "browser", "editable": true,
        "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "hide": 0, "refresh": 1, "regex": "", "options": []},
            {"name": "instance", "label": "Exporter", "type": "query", "datasource": ds(),
             "query": instance_query, "multi": true,
             "includeAll": true, "allValue": ".*",
             "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
             "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []},
        ]},
        "annotations": {"list": []},
        "links": [],
        "panels": b.panels,
    })
}

/// The header row: every source's health probe.
fn header(b: &mut Board, sources: &str) {
    b.row("row/sources", "Sources");
    let reduce = json!({"calcs": ["lastNotNull"], "values": false});
    let up = style::fold(&selector(
        "pulse_source_up",
        &[sources.to_owned()],
        Some(VAR),
    ));
    let neutral = json!({"mode": "absolute", "steps": [{"color": "blue", "value": null}]});
    b.panel(
        "stat",
        "sources/up",
        "Sources up",
        "1 while a source's health probe succeeds (pulse_source_up): DOWN when it fails, NO DATA when nothing is scraped.",
        "none",
        vec![json!({"expr": up, "legendFormat": "{{source}}", "instant": true})],
        (8, 6),
        vec![STYLE.up.clone(), STYLE.no_data.clone()],
        neutral.clone(),
        json!({"reduceOptions": reduce, "colorMode": "background", "graphMode": "none",
               "textMode": "value_and_name"}),
    )["links"] = json!([runbook_link("PulseSourceDown")]);
    let latency = style::fold(&selector(
        "pulse_source_probe_duration_seconds",
        &[sources.to_owned()],
        Some(VAR),
    ));
    b.panel(
        "timeseries",
        "sources/latency",
        "Health probe latency",
        "Duration of each source's last health probe (PulseSourceSlow fires when the 90th percentile over 15 minutes passes 2 s).",
        "s",
        vec![json!({"expr": latency, "legendFormat": "{{source}}"})],
        (8, 6),
        Vec::new(),
        neutral.clone(),
        json!({"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true}}),
    )["fieldConfig"]["defaults"]["custom"] =
        json!({"fillOpacity": 5, "lineWidth": 1, "showPoints": "never"});
    let failures = format!(
        "sum by (source, reason) ({}) > 0\nor on (source) label_replace(0 * max by (source) ({up}), \"reason\", \"none\", \"\", \"\")",
        style::fold(&format!(
            "increase({}[$__range])",
            selector("pulse_source_probe_failures_total", &[sources.to_owned()], Some(VAR))
        )),
    );
    let p = b.panel(
        "table",
        "sources/failures",
        "Health probe failures in the time range",
        "Failed health probes of each source in the dashboard's time range, by reason (timeout, connect, auth, query, …); `none` when a source had none.",
        "short",
        vec![json!({"expr": failures, "legendFormat": "", "instant": true, "format": "table"})],
        (8, 6),
        Vec::new(),
        json!({"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "red", "value": 1}]}),
        json!({"showHeader": true, "cellHeight": "sm"}),
    );
    p["transformations"] = json!([{"id": "organize", "options": {
        "excludeByName": {"Time": true},
        "renameByName": {"Value": "failures"}}}]);
}

/// The panels of one series of a check.
fn check_panels(b: &mut Board, check: &CheckInfo<'_>, series: &Series, index: usize) {
    let source = &check.source.common.name;
    let name = &check.plan.check;
    let ok = check_ok(source, name, Some(VAR));
    let sel = selector(&series.metric, &matchers(check, series), Some(VAR));
    let what = check
        .common
        .description
        .clone()
        .or_else(|| series.help.clone())
        .or_else(|| check.common.help.clone())
        .unwrap_or_else(|| format!("Metric {} of check {name}.", series.metric));
    let guard_note = format!(
        " DEGRADED while check `{name}` of source `{source}` fails or the source is down; NO DATA when nothing arrives."
    );
    let title = match (index, &series.shape) {
        (_, Shape::Timestamp) => format!("{name}: age"),
        (0, _) => name.clone(),
        _ => format!("{name}: {}", series.metric),
    };
    let unit_override = check.common.unit.as_ref().map(|u| u.0.clone());
    let about = |key: &str, title: String, description: String, unit: &str| About {
        key: format!("{source}/{name}/{key}"),
        title,
        description,
        unit: unit_override.clone().unwrap_or_else(|| unit.to_owned()),
        ok: ok.clone(),
        thresholds: thresholds(check),
    };
    let labels = &series.labels;
    let chosen = |default: PanelKind| check.common.panel.unwrap_or(default);
    let lines_or_stat = if labels.is_empty() {
        PanelKind::Stat
    } else {
        PanelKind::Timeseries
    };
    let key = format!("{}#{index}", series.metric);
    match &series.shape {
        Shape::Gauge | Shape::TopN | Shape::Summary => {
            let kind = chosen(match series.shape {
                Shape::TopN => PanelKind::Table,
                Shape::Summary => PanelKind::Bargauge,
                _ => lines_or_stat,
            });
            let a = about(
                &key,
                title,
                what + &guard_note,
                style::unit_of(&series.metric),
            );
            b.guarded(kind, &a, vec![query(style::fold(&sel), legend(labels))]);
        }
        Shape::Timestamp => {
            let a = about(
                &key,
                title,
                format!(
                    "How long ago: now minus {}. {what}{guard_note}",
                    series.metric
                ),
                "s",
            );
            let expr = format!("time() - {}", style::fold(&sel));
            b.guarded(chosen(lines_or_stat), &a, vec![query(expr, legend(labels))]);
        }
        Shape::Counter => {
            let a = about(
                &key,
                format!("{}: per second", series.metric),
                format!("Per-second rate of {}. {what}{guard_note}", series.metric),
                style::unit_of(&series.metric),
            );
            let expr = style::fold(&format!("rate({sel}[$__rate_interval])"));
            b.guarded(
                chosen(PanelKind::Timeseries),
                &a,
                vec![query(expr, legend(labels))],
            );
        }
        Shape::Histogram => {
            let base = &series.metric;
            let bucket = selector(
                &format!("{base}_bucket"),
                &matchers(check, series),
                Some(VAR),
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
            let a = about(
                &key,
                format!("{base}: quantiles"),
                format!("Median, 90th and 99th percentile of {base}. {what}{guard_note}"),
                style::unit_of(base),
            );
            b.guarded(PanelKind::Timeseries, &a, queries);
        }
        Shape::Workers { pool } => {
            let ms = matchers(check, series);
            let up = style::fold(&sel);
            let age = format!(
                "time() - {}",
                style::fold(&selector(
                    "pulse_worker_last_heartbeat_timestamp_seconds",
                    &ms,
                    Some(VAR)
                ))
            );
            let a = about(
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
            let workers_up = style::fold(&selector("pulse_worker_pool_workers_up", &ms, Some(VAR)));
            let a = about(
                &format!("{key}/up"),
                format!("Workers up in pool {pool}"),
                format!(
                    "Workers of pool `{pool}` whose last heartbeat is within max_age.{guard_note}"
                ),
                "none",
            );
            b.guarded(PanelKind::Stat, &a, vec![query(workers_up, "{{instance}}")]);
        }
        Shape::Builtin(set) => builtin_panels(b, check, series, set, &about, &key),
    }
}

/// The panels a kind describes for its built-in metrics.
fn builtin_panels(
    b: &mut Board,
    check: &CheckInfo<'_>,
    series: &Series,
    set: &Builtin,
    about: &dyn Fn(&str, String, String, &str) -> About,
    key: &str,
) {
    let name = &check.plan.check;
    let ms = matchers(check, series);
    let sel = |metric: &str| style::fold(&selector(metric, &ms, Some(VAR)));
    let note = format!(
        " DEGRADED while check `{name}` of source `{}` fails or the source is down.",
        check.source.common.name
    );
    for panel in &set.panels {
        let a = about(
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
    use super::*;

    fn board(yaml: &str) -> Value {
        let config = crate::configfile::load_str(yaml).unwrap();
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
}
