//! One bundled dashboard as it is built: rows and panels in reading order, each panel a
//! description (kind, texts, queries, size, look) that the board lays out in rows of 24
//! columns and writes as Grafana's JSON, with the dashboard around them (the `datasource`,
//! `platform` and `instance` variables, links to the other bundled dashboards).
//!
//! Panels are numbered in the order they are added, rows included, as the committed
//! dashboards always were: Grafana links to a panel by id, so a new panel belongs at the end
//! of its board, or the links to those after it move.

use serde_json::{json, Map, Value};

use super::FILTER;
use crate::generate::bundle::Selection;
use crate::generate::grafana::{braces, cluster_variable, ds, ref_id, Layout};
use crate::generate::style::{self, STYLE};

/// Panel types that map a missing value to NO DATA in grey (a table or a time series shows
/// an empty cell or no line instead).
const SHOWS_NO_DATA: [&str; 4] = ["stat", "bargauge", "gauge", "piechart"];

/// How a time series draws its lines.
#[derive(Default)]
struct Lines {
    /// Stacked and filled.
    stacked: bool,
    /// Threshold steps drawn as dashed lines.
    dashed: bool,
}

/// One panel: what it shows and how, until the board places it.
pub(super) struct Panel {
    kind: &'static str,
    title: String,
    description: String,
    unit: String,
    targets: Vec<Value>,
    size: (u64, u64),
    alerts: Vec<&'static str>,
    links: Vec<Value>,
    mappings: Vec<Value>,
    thresholds: Value,
    color: &'static str,
    overrides: Vec<Value>,
    options: Value,
    lines: Option<Lines>,
    decimals: Option<u64>,
    transformations: Option<Vec<Value>>,
    time_from: Option<&'static str>,
    interval: Option<&'static str>,
}

impl Panel {
    /// Width (of 24 columns) and height in grid cells.
    pub(super) fn size(&mut self, w: u64, h: u64) -> &mut Panel {
        self.size = (w, h);
        self
    }

    /// Width (of 24 columns), the height as the panel type has it.
    pub(super) fn w(&mut self, w: u64) -> &mut Panel {
        self.size.0 = w;
        self
    }

    /// Links to the runbook sections of the alerts that watch what the panel shows.
    pub(super) fn alerts(&mut self, alerts: &[&'static str]) -> &mut Panel {
        self.alerts = alerts.to_vec();
        self
    }

    /// Colour steps; a time series draws them as dashed lines.
    pub(super) fn thresholds(&mut self, thresholds: Value) -> &mut Panel {
        self.thresholds = thresholds;
        if let Some(lines) = &mut self.lines {
            lines.dashed = true;
        }
        self
    }

    /// Value mappings, before the NO DATA one the panel type may add.
    pub(super) fn mappings(&mut self, mappings: Vec<Value>) -> &mut Panel {
        self.mappings = mappings;
        self
    }

    /// Field overrides (a column's unit, a line's style).
    pub(super) fn overrides(&mut self, overrides: Vec<Value>) -> &mut Panel {
        self.overrides = overrides;
        self
    }

    /// The panel type's options.
    pub(super) fn options(&mut self, options: Value) -> &mut Panel {
        self.options = options;
        self
    }

    /// How values are coloured (`thresholds`, `palette-classic`).
    pub(super) fn color(&mut self, mode: &'static str) -> &mut Panel {
        self.color = mode;
        self
    }

    /// Links after the runbook ones.
    pub(super) fn links(&mut self, links: Vec<Value>) -> &mut Panel {
        self.links = links;
        self
    }

    /// Decimals every value shows.
    pub(super) fn decimals(&mut self, decimals: u64) -> &mut Panel {
        self.decimals = Some(decimals);
        self
    }

    /// A table's transformations.
    pub(super) fn transformations(&mut self, transformations: Vec<Value>) -> &mut Panel {
        self.transformations = Some(transformations);
        self
    }

    /// A time range of its own (`24h`), whatever the dashboard's.
    pub(super) fn time_from(&mut self, range: &'static str) -> &mut Panel {
        self.time_from = Some(range);
        self
    }

    /// The step of its queries (`1d`).
    pub(super) fn interval(&mut self, step: &'static str) -> &mut Panel {
        self.interval = Some(step);
        self
    }

    /// A time series stacked and filled.
    pub(super) fn stacked(&mut self) -> &mut Panel {
        if let Some(lines) = &mut self.lines {
            lines.stacked = true;
        }
        self
    }

    /// A stat's values coloured as `mode` says (`background`, `none`).
    pub(super) fn color_mode(&mut self, mode: &str) -> &mut Panel {
        self.options["colorMode"] = json!(mode);
        self
    }

    /// A card's value named by `legend` (`{{platform}}`) where it showed the value alone.
    pub(super) fn named(&mut self, legend: &str) -> &mut Panel {
        for t in &mut self.targets {
            t["legendFormat"] = json!(legend);
        }
        self.options["textMode"] = json!("value_and_name");
        self
    }

    /// The panel's JSON, with `id` and where it sits, its queries read through `knobs`.
    fn json(&self, id: u64, grid_pos: Value, knobs: &str) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut t = t.clone();
                if let Some(expr) = t.get_mut("expr") {
                    if let Some(text) = expr.as_str() {
                        *expr = with_knobs(text, knobs).into();
                    }
                }
                t["refId"] = json!(ref_id(i));
                t["datasource"] = ds();
                t
            })
            .collect();
        let mut mappings = self.mappings.clone();
        if SHOWS_NO_DATA.contains(&self.kind) {
            mappings.push(STYLE.no_data.clone());
        }
        let mut defaults = json!({
            "unit": self.unit, "noValue": STYLE.no_value, "thresholds": self.thresholds,
            "mappings": mappings, "color": {"mode": self.color},
        });
        if let Some(lines) = &self.lines {
            let mut custom = json!({
                "fillOpacity": if lines.stacked { 20 } else { 5 }, "lineWidth": 1,
                "showPoints": "never",
            });
            if lines.stacked {
                custom["stacking"] = json!({"mode": "normal", "group": "A"});
            }
            if lines.dashed {
                custom["thresholdsStyle"] = json!({"mode": "dashed"});
            }
            defaults["custom"] = custom;
        }
        if let Some(decimals) = self.decimals {
            defaults["decimals"] = json!(decimals);
        }
        let mut panel = json!({
            "type": self.kind, "title": self.title, "description": self.description, "id": id,
            "datasource": ds(), "gridPos": grid_pos, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
        });
        let links: Vec<Value> = self
            .alerts
            .iter()
            .map(|a| runbook(a))
            .chain(self.links.iter().cloned())
            .collect();
        if !links.is_empty() {
            panel["links"] = json!(links);
        }
        if let Some(transformations) = &self.transformations {
            panel["transformations"] = json!(transformations);
        }
        if let Some(range) = self.time_from {
            panel["timeFrom"] = json!(range);
        }
        if let Some(step) = self.interval {
            panel["interval"] = json!(step);
        }
        panel
    }
}

/// A link to the runbook section of `alert`.
fn runbook(alert: &str) -> Value {
    json!({"title": format!("Runbook: {alert}"), "url": style::runbook_url(alert), "targetBlank": true})
}

/// A row header or a panel, in reading order.
enum Item {
    Row(String),
    Panel(Box<Panel>),
}

/// One dashboard being built.
pub(super) struct Board {
    uid: &'static str,
    title: &'static str,
    description: &'static str,
    items: Vec<Item>,
}

/// The reduce options of every panel that shows one value per series: its last.
fn last_value() -> Value {
    json!({"calcs": ["lastNotNull"], "values": false})
}

/// A stat's options: its last values, coloured as `color` says (`background`, `none`), a
/// sparkline or not (`graph`: `area`, `none`), each shown as `text` says (`value`,
/// `value_and_name`).
pub(super) fn stat_options(color: &str, graph: &str, text: &str) -> Value {
    json!({"reduceOptions": last_value(), "colorMode": color, "graphMode": graph,
           "textMode": text})
}

impl Board {
    /// An empty dashboard.
    pub(super) fn new(uid: &'static str, title: &'static str, description: &'static str) -> Board {
        Board {
            uid,
            title,
            description,
            items: Vec::new(),
        }
    }

    /// Its uid, which its file and the other dashboards' links are named after.
    pub(super) fn uid(&self) -> &'static str {
        self.uid
    }

    /// Its title.
    pub(super) fn title(&self) -> &'static str {
        self.title
    }

    /// A row header: the panels after it start on a new line.
    pub(super) fn row(&mut self, title: &str) {
        self.items.push(Item::Row(title.to_owned()));
    }

    /// A panel of Grafana type `kind` showing `targets`, 8 by 8, its values coloured by
    /// neutral thresholds.
    pub(super) fn add(
        &mut self,
        kind: &'static str,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> &mut Panel {
        self.items.push(Item::Panel(Box::new(Panel {
            kind,
            title: title.to_owned(),
            description: description.to_owned(),
            unit: unit.to_owned(),
            targets,
            size: (8, 8),
            alerts: Vec::new(),
            links: Vec::new(),
            mappings: Vec::new(),
            thresholds: neutral(),
            color: "thresholds",
            overrides: Vec::new(),
            options: json!({}),
            lines: None,
            decimals: None,
            transformations: None,
            time_from: None,
            interval: None,
        })));
        match self.items.last_mut() {
            Some(Item::Panel(p)) => p,
            _ => unreachable!("a panel was just pushed"),
        }
    }

    /// A card, 4 by 5: `expr` per exporter, DEGRADED while `ok` is 0 for that exporter
    /// (the check or source behind the card fails there), NO DATA without data.
    pub(super) fn card(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        expr: &str,
        ok: &str,
    ) -> &mut Panel {
        self.card_on("instance", title, description, unit, expr, ok)
    }

    /// A card guarded on the `on` labels (`instance, source, pool`) rather than the exporter
    /// alone; `expr` keeps them.
    pub(super) fn card_on(
        &mut self,
        on: &str,
        title: &str,
        description: &str,
        unit: &str,
        expr: &str,
        ok: &str,
    ) -> &mut Panel {
        let target =
            json!({"expr": style::guard(expr, ok, on), "instant": true, "legendFormat": title});
        self.add("stat", title, description, unit, vec![target])
            .size(4, 5)
            .mappings(vec![STYLE.degraded.clone()])
            .options(stat_options("background", "none", "value"))
    }

    /// A time series, 12 by 8, of `targets` (see [`line`]).
    pub(super) fn ts(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> &mut Panel {
        let p = self
            .add("timeseries", title, description, unit, targets)
            .size(12, 8)
            .color("palette-classic");
        p.lines = Some(Lines::default());
        p
    }

    /// A stat, 6 by 6, of one or more guarded numbers with their legends (see [`guarded`]).
    pub(super) fn number(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> &mut Panel {
        self.add("stat", title, description, unit, targets)
            .size(6, 6)
            .mappings(vec![STYLE.degraded.clone()])
            .options(stat_options("none", "none", "value_and_name"))
    }

    /// UP or DOWN for each source of `kind`, 6 by 6.
    pub(super) fn up_stat(&mut self, kind: &str) -> &mut Panel {
        let description = format!(
            "1 while the {kind} source's health probe succeeds (pulse_source_up); DOWN when it fails, NO DATA when nothing is scraped."
        );
        let target = json!({"expr": super::sel_with("pulse_source_up", &[format!("kind=\"{kind}\"")]),
                            "instant": true, "legendFormat": "{{platform}} {{source}}"});
        self.add(
            "stat",
            &format!("{kind} up"),
            &description,
            "none",
            vec![target],
        )
        .size(6, 6)
        .mappings(vec![STYLE.up.clone()])
        .alerts(&["PulseSourceDown"])
        .options(stat_options("background", "none", "value_and_name"))
    }

    /// Horizontal bars, 8 by 8, of the last value of each series of `targets`.
    pub(super) fn bars(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> &mut Panel {
        let targets = targets.into_iter().map(|mut t| {
            t["instant"] = json!(true);
            t
        });
        self.add("bargauge", title, description, unit, targets.collect())
            .options(
                json!({"orientation": "horizontal", "displayMode": "basic", "showUnfilled": true,
                            "reduceOptions": last_value()}),
            )
    }

    /// A table, 12 by 9, of the instant results of `exprs`.
    pub(super) fn table(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        exprs: Vec<String>,
    ) -> &mut Panel {
        let targets = exprs
            .into_iter()
            .map(|e| json!({"expr": e, "instant": true, "format": "table"}));
        self.add("table", title, description, unit, targets.collect())
            .size(12, 9)
            .transformations(Vec::new())
            .options(json!({"showHeader": true, "cellHeight": "sm"}))
    }

    /// The dashboard's JSON: its panels laid out in rows of 24 columns, every series they
    /// and the variables read narrowed to `selection` (with a cluster label, a `$cluster`
    /// variable chooses one cluster), and links to the other dashboards of `boards` (uid,
    /// title).
    pub(super) fn json(&self, boards: &[(&str, &str)], selection: &Selection) -> Value {
        let knobs = selection.dashboard_matchers();
        let mut layout = Layout::default();
        let mut panels = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let id = i as u64 + 1;
            match item {
                Item::Row(title) => panels.push(json!({
                    "type": "row", "title": title, "id": id, "collapsed": false,
                    "gridPos": layout.row(), "panels": [],
                })),
                Item::Panel(p) => {
                    let (w, h) = p.size;
                    panels.push(p.json(id, layout.place(w, h), &knobs));
                }
            }
        }
        let links: Vec<Value> = boards
            .iter()
            .filter(|(uid, _)| *uid != self.uid)
            .map(|(uid, title)| {
                json!({"title": title, "type": "link", "url": format!("/d/{uid}"),
                       "icon": "dashboard", "keepTime": true, "includeVars": true})
            })
            .collect();
        let info = |matchers: &[&str]| format!("pulse_build_info{}", braces(matchers));
        let mut variables = vec![
            json!({"name": "datasource", "label": "Prometheus", "type": "datasource",
                   "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
                   "options": []}),
            query_var(
                "platform",
                "Platform",
                &format!("label_values({}, platform)", info(&[&knobs])),
            ),
            query_var(
                "instance",
                "Exporter",
                &format!(
                    "label_values({}, instance)",
                    info(&[&knobs, "platform=~\"$platform\""])
                ),
            ),
        ];
        if let Some(label) = selection.cluster_label() {
            let query = format!("label_values({}, {label})", info(&[selection.selector()]));
            variables.insert(1, cluster_variable(&query));
        }
        json!({
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["pulse-exporter"], "timezone": "browser", "editable": true,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "templating": {"list": variables},
            "annotations": {"list": []},
            "links": links,
            "panels": panels,
        })
    }
}

/// `expr` read through `knobs` (see [`Selection::dashboard_matchers`]): they go before the
/// variable filter every selector of the boards ends with, and into braces after a recorded
/// series read bare (`usage_daily:dau`).
fn with_knobs(expr: &str, knobs: &str) -> String {
    if knobs.is_empty() {
        return expr.to_owned();
    }
    let bare = !expr.is_empty()
        && expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    match bare {
        true => format!("{expr}{{{knobs}}}"),
        false => expr.replace(FILTER, &format!("{knobs}, {FILTER}")),
    }
}

/// A variable of the values of a label, every one chosen by default.
fn query_var(name: &str, label: &str, query: &str) -> Value {
    json!({"name": name, "label": label, "type": "query", "datasource": ds(),
           "query": query, "definition": query, "multi": true, "includeAll": true, "allValue": ".*",
           "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
           "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []})
}

/// A time series query: `expr` drawn as `legend`.
pub(super) fn line(expr: impl Into<String>, legend: impl Into<String>) -> Value {
    json!({"expr": expr.into(), "legendFormat": legend.into()})
}

/// A number of [`Board::number`]: `expr` as `legend`, DEGRADED while `ok` is 0 for the same
/// exporter.
pub(super) fn guarded(expr: &str, legend: &str, ok: &str) -> Value {
    guarded_on("instance", expr, legend, ok)
}

/// [`guarded`] on the `on` labels (`instance, source, pool`).
pub(super) fn guarded_on(on: &str, expr: &str, legend: &str, ok: &str) -> Value {
    json!({"expr": style::guard(expr, ok, on), "legendFormat": legend, "instant": true})
}

/// Absolute thresholds from `(colour, from)` pairs, the first from nothing (`Value::Null`).
pub(super) fn steps(pairs: &[(&str, Value)]) -> Value {
    let steps: Vec<Value> = pairs
        .iter()
        .map(|(color, value)| json!({"color": color, "value": value}))
        .collect();
    json!({"mode": "absolute", "steps": steps})
}

/// A count with no good or bad value: blue.
pub(super) fn neutral() -> Value {
    steps(&[("blue", Value::Null)])
}

/// The order a column's properties are written in, whatever order they are given in.
const COLUMN_PROPERTIES: [&str; 5] = [
    "unit",
    "mappings",
    "thresholds",
    "custom.cellOptions",
    "custom.width",
];

/// A table column override, by the column's display name, of the properties given (see
/// [`unit`], [`mapped`], [`coloured`], [`cell`], [`width`]).
pub(super) fn column(name: &str, properties: &[(&str, Value)]) -> Value {
    let mut properties = properties.to_vec();
    properties.sort_by_key(|(id, _)| COLUMN_PROPERTIES.iter().position(|p| p == id));
    json!({"matcher": {"id": "byName", "options": name}, "properties": props(&properties)})
}

/// A column's unit.
pub(super) fn unit(unit: &str) -> (&'static str, Value) {
    ("unit", json!(unit))
}

/// A column's value mappings.
pub(super) fn mapped(mappings: Vec<Value>) -> (&'static str, Value) {
    ("mappings", json!(mappings))
}

/// A column's colour steps.
pub(super) fn coloured(thresholds: Value) -> (&'static str, Value) {
    ("thresholds", thresholds)
}

/// How a column's cells are drawn (`color-background`, `color-text`).
pub(super) fn cell(kind: &str) -> (&'static str, Value) {
    ("custom.cellOptions", json!({"type": kind}))
}

/// A column's width in pixels.
pub(super) fn width(px: u64) -> (&'static str, Value) {
    ("custom.width", json!(px))
}

/// A value mapping of `(value, text, colour)` entries; an empty colour sets none.
pub(super) fn value_map(entries: &[(&str, &str, &str)]) -> Value {
    let mut options = Map::new();
    for (index, (value, text, color)) in entries.iter().enumerate() {
        let mut entry = Map::new();
        if !text.is_empty() {
            entry.insert("text".into(), json!(text));
        }
        if !color.is_empty() {
            entry.insert("color".into(), json!(color));
        }
        entry.insert("index".into(), json!(index));
        options.insert((*value).to_owned(), Value::Object(entry));
    }
    json!({"type": "value", "options": options})
}

/// The `organize` transformation: `rename` columns, hide `Time` and `exclude`, and with
/// `order` put columns in that order.
pub(super) fn organize(rename: &[(&str, &str)], exclude: &[&str], order: &[&str]) -> Value {
    let excluded: Map<String, Value> = std::iter::once("Time")
        .chain(exclude.iter().copied())
        .map(|k| (k.to_owned(), json!(true)))
        .collect();
    let renamed: Map<String, Value> = rename
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let mut options = json!({"excludeByName": excluded, "renameByName": renamed});
    if !order.is_empty() {
        let index: Map<String, Value> = order
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).to_owned(), json!(i)))
            .collect();
        options["indexByName"] = Value::Object(index);
    }
    json!({"id": "organize", "options": options})
}

/// The `merge` transformation: the queries' rows joined on their labels.
pub(super) fn merge() -> Value {
    json!({"id": "merge", "options": {}})
}

/// The `sortBy` transformation on `field`, largest first unless `desc` is false.
pub(super) fn sort_by(field: &str, desc: bool) -> Value {
    json!({"id": "sortBy", "options": {"sort": [{"field": field, "desc": desc}]}})
}

/// A line style override for the query `ref_id`.
pub(super) fn by_query(ref_id: &str, properties: &[(&str, Value)]) -> Value {
    json!({"matcher": {"id": "byFrameRefID", "options": ref_id}, "properties": props(properties)})
}

/// An override's properties, `(id, value)` each.
fn props(properties: &[(&str, Value)]) -> Vec<Value> {
    properties
        .iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect()
}
