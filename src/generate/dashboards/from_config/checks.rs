//! The panels of a config's checks, one or more per series each check publishes: a value,
//! an age, a rate, quantiles, a pool's workers, the value against its usual, or the panels a
//! kind describes for its built-in metrics. Each is guarded: DEGRADED while its check or
//! source fails (a line of its own in a time series), NO DATA when nothing arrives.

use serde_json::{json, Value};

use super::super::board::{last_value, legend_below, Board};
use super::super::fields::{by_query, cell, column, mapped, merge, organize, unit};
use super::super::panel::{ref_id, Lines, Panel};
use super::var_of;
use crate::config_core::display::PanelKind;
use crate::config_core::drop_alert::{promql_duration, DropAlert};
use crate::config_core::dur_text;
use crate::config_core::shape::{Builtin, PanelExpr, Series, Shape};
use crate::generate::style::{self, STYLE};
use crate::generate::usual::usual;
use crate::generate::{check_ok, matchers, selector, CheckInfo};

/// What a check panel is about: its key, texts, unit and colour steps, and its guard.
#[derive(Clone)]
struct About {
    key: String,
    title: String,
    description: String,
    unit: String,
    /// 1 while the check and its source work (see [`check_ok`]).
    ok: String,
    thresholds: Value,
}

/// One query of a panel: its expression and legend.
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

/// A panel of `kind` showing `queries`, guarded by `about.ok`, with the runbook of the
/// alert that fires while a check fails.
fn guarded<'b>(
    b: &'b mut Board,
    kind: PanelKind,
    about: &About,
    queries: Vec<Query>,
) -> &'b mut Panel {
    let p = match kind {
        PanelKind::Timeseries => guarded_lines(b, about, queries),
        PanelKind::Stat | PanelKind::Bargauge | PanelKind::Table => {
            guarded_values(b, kind, about, queries)
        }
    };
    p.key(&about.key).alerts(&["PulseCheckFailing"])
}

/// A stat, bar gauge or table of the last values: DEGRADED (and NO DATA, but in a table)
/// replace them while the check fails.
fn guarded_values<'b>(
    b: &'b mut Board,
    kind: PanelKind,
    about: &About,
    queries: Vec<Query>,
) -> &'b mut Panel {
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
    let p = b
        .add(
            kind.grafana_type(),
            &about.title,
            &about.description,
            &about.unit,
            targets,
        )
        .thresholds(about.thresholds.clone())
        .mappings(vec![STYLE.degraded.clone()]);
    match kind {
        PanelKind::Stat => p.size(6, 5).options(json!({
            "reduceOptions": last_value(), "colorMode": "background",
            "graphMode": "none", "textMode": "value_and_name"})),
        PanelKind::Bargauge => p.options(json!({
            "reduceOptions": last_value(), "orientation": "horizontal",
            "displayMode": "basic", "showUnfilled": true})),
        _ => p
            .size(12, 8)
            .options(json!({"showHeader": true, "cellHeight": "sm"}))
            .transformations(vec![organize(&[], &["__name__", "job"], &[])])
            .overrides(vec![column("Value", &[cell("color-background")])]),
    }
}

/// A time series of the queries, cut while the check fails, with a DEGRADED line of its
/// own in the failure colour.
fn guarded_lines<'b>(b: &'b mut Board, about: &About, queries: Vec<Query>) -> &'b mut Panel {
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
    let failure = json!({"mode": "fixed", "fixedColor": STYLE.degraded_color});
    b.add(
        "timeseries",
        &about.title,
        &about.description,
        &about.unit,
        targets,
    )
    .size(12, 8)
    .color("palette-classic")
    .lines(Lines::default())
    .thresholds(about.thresholds.clone())
    .mappings(vec![STYLE.degraded.clone()])
    .options(json!({"legend": legend_below(), "tooltip": {"mode": "multi", "sort": "desc"}}))
    .overrides(vec![by_query(&degraded_ref, &[("color", failure)])])
    .threshold_lines(if dashed { "dashed" } else { "off" })
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
pub(super) fn check_panels(b: &mut Board, check: &CheckInfo<'_>, series: &Series, index: usize) {
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
    guarded(
        b,
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
    guarded(
        b,
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
    guarded(
        b,
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
    guarded(b, PanelKind::Timeseries, &a, queries);
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
    guarded(
        b,
        PanelKind::Table,
        &a,
        vec![query(up, "{{worker}}"), query(age, "{{worker}}")],
    )
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "up"), ("Value #B", "heartbeat age")],
            &["__name__", "job"],
            &[],
        ),
    ])
    .overrides(vec![
        column(
            "up",
            &[
                mapped(vec![STYLE.up.clone(), STYLE.degraded.clone()]),
                cell("color-background"),
            ],
        ),
        column("heartbeat age", &[unit("s")]),
    ]);
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
    guarded(
        b,
        PanelKind::Stat,
        &a,
        vec![query(workers_up, "{{instance}}")],
    );
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
    guarded(
        b,
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
        let p = guarded(b, panel.kind, &a, queries);
        if panel.outcome {
            p.mappings(vec![STYLE.ok.clone(), STYLE.degraded.clone()]);
        }
        for (i, q) in panel.queries.iter().enumerate() {
            if let Some(unit) = q.unit {
                p.and_override(by_query(&ref_id(i), &[("unit", json!(unit))]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(key: &str) -> About {
        About {
            key: key.to_owned(),
            title: "Title".to_owned(),
            description: "What it shows.".to_owned(),
            unit: "short".to_owned(),
            ok: "pulse_check_success{check=\"c\"}".to_owned(),
            thresholds: json!({"steps": []}),
        }
    }

    fn first(b: &Board) -> Value {
        b.panels(&|e| e.to_owned()).remove(0)
    }

    #[test]
    fn a_guarded_time_series_draws_a_degraded_line_in_the_failure_colour() {
        let mut b = Board::keyed("u", "t", "d");
        let queries = vec![query("app_depth".to_owned(), "{{queue}}")];
        guarded(&mut b, PanelKind::Timeseries, &about("s/c"), queries);
        let p = first(&b);
        let targets = p["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0]["refId"], "A");
        assert!(targets[0]["expr"].as_str().unwrap().contains("app_depth"));
        assert_eq!(targets[1]["refId"], "B");
        assert_eq!(
            targets[1]["legendFormat"],
            "DEGRADED: check failing or source down"
        );
        let over = &p["fieldConfig"]["overrides"][0];
        assert_eq!(over["matcher"]["options"], "B");
        assert_eq!(
            over["properties"][0]["value"]["fixedColor"],
            STYLE.degraded_color
        );
        // No alert bound to draw: the threshold lines are off.
        assert_eq!(
            p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
            "off"
        );
        assert_eq!(p["links"][0]["title"], "Runbook: PulseCheckFailing");
    }

    #[test]
    fn a_guarded_table_reads_instant_rows_and_colours_its_values() {
        let mut b = Board::keyed("u", "t", "d");
        let queries = vec![query("app_users".to_owned(), "")];
        guarded(&mut b, PanelKind::Table, &about("s/t"), queries);
        let p = first(&b);
        assert_eq!(p["type"], "table");
        assert_eq!(p["targets"][0]["format"], "table");
        assert_eq!(p["targets"][0]["instant"], true);
        assert_eq!(p["gridPos"]["w"], 12);
        assert_eq!(
            p["transformations"][0]["options"]["excludeByName"]["__name__"],
            true
        );
        assert_eq!(
            p["fieldConfig"]["overrides"][0]["properties"][0]["value"]["type"],
            "color-background"
        );
        // A table shows DEGRADED but no NO DATA mapping: an empty table says it already.
        assert_eq!(
            p["fieldConfig"]["defaults"]["mappings"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
