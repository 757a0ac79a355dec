//! A Grafana dashboard's JSON, built panel by panel: the layout in rows of 24 columns, panel
//! ids stable across regenerations, and the guarded panel (DEGRADED while its check or
//! source fails, NO DATA when nothing arrives) every check panel is. What to draw is chosen in
//! [`super::dashboard`].

use std::collections::HashSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::style::{self, STYLE};
use crate::config::display::PanelKind;

/// The datasource every panel and query uses: the dashboard's `datasource` variable.
pub(super) fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
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
pub(super) struct Query {
    expr: String,
    legend: String,
}

pub(super) fn query(expr: String, legend: impl Into<String>) -> Query {
    Query {
        expr,
        legend: legend.into(),
    }
}

/// Panels laid out left to right, rows of 24 columns.
#[derive(Default)]
pub(super) struct Board {
    pub(super) panels: Vec<Value>,
    x: u64,
    y: u64,
    row_h: u64,
    ids: HashSet<u64>,
}

/// What a check panel is about: its guard, and the texts around it.
#[derive(Clone)]
pub(super) struct About {
    pub(super) key: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) unit: String,
    /// 1 while the check and its source work (see [`check_ok`]).
    pub(super) ok: String,
    pub(super) thresholds: Value,
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

    pub(super) fn row(&mut self, key: &str, title: &str) {
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
    pub(super) fn panel(
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
    pub(super) fn guarded(&mut self, kind: PanelKind, about: &About, queries: Vec<Query>) {
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
pub(super) fn runbook_link(alert: &str) -> Value {
    json!({
        "title": format!("Runbook: {alert}"), "type": "link", "url": style::runbook_url(alert),
        "targetBlank": true, "asDropdown": false, "icon": "doc", "includeVars": false,
        "keepTime": false, "tags": [], "tooltip": "",
    })
}

/// `A`, `B`, … `Z`, then `Q26`, …
pub(super) fn ref_id(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'A' + n).to_string(),
        _ => format!("Q{i}"),
    }
}
