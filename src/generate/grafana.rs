//! A Grafana dashboard's JSON, built panel by panel: the layout in rows of 24 columns, panel
//! ids stable across regenerations, and the guarded panel (DEGRADED while its check or
//! source fails, NO DATA when nothing arrives) every check panel is. What to draw is chosen in
//! [`super::dashboard`].

use std::collections::HashSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::style::{self, STYLE};
use crate::config_core::display::PanelKind;

/// The datasource every panel and query uses: the dashboard's `datasource` variable.
pub(super) fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// `{a, b}` of the matcher lists that are not empty; nothing when all are: the braces of a
/// variable's `label_values` selector.
pub(super) fn braces(matchers: &[&str]) -> String {
    let kept: Vec<&str> = matchers.iter().copied().filter(|m| !m.is_empty()).collect();
    match kept.is_empty() {
        true => String::new(),
        false => format!("{{{}}}", kept.join(", ")),
    }
}

/// The `$cluster` variable of a dashboard rendered with `--cluster-label`, its values
/// from `query`. One cluster at a time: the panels' joins and sums match on the exporter
/// alone, so two clusters chosen together would add up or join across them.
pub(super) fn cluster_variable(query: &str) -> Value {
    json!({"name": "cluster", "label": "Cluster", "type": "query", "datasource": ds(),
           "query": query, "multi": false, "includeAll": false,
           "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []})
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

/// Where the next panel goes: left to right, a new line when the row of 24 columns is full.
/// Both the generated and the bundled dashboards lay out their panels so.
#[derive(Default)]
pub(super) struct Layout {
    x: u64,
    y: u64,
    row_h: u64,
}

impl Layout {
    /// The grid position of the next panel, `w` columns wide and `h` high.
    pub(super) fn place(&mut self, w: u64, h: u64) -> Value {
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

    /// The grid position of a row header, which starts a new line unless at the start of
    /// one; the panels after it go below it.
    pub(super) fn row(&mut self) -> Value {
        if self.x > 0 {
            self.x = 0;
            self.y += self.row_h;
            self.row_h = 0;
        }
        let pos = json!({"x": 0, "y": self.y, "w": 24, "h": 1});
        self.y += 1;
        pos
    }
}

/// Panels laid out left to right, rows of 24 columns.
#[derive(Default)]
pub(super) struct Board {
    pub(super) panels: Vec<Value>,
    layout: Layout,
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

impl About {
    /// What a panel that no check guards is about (`ok` empty).
    pub(super) fn plain(
        key: &str,
        title: &str,
        description: &str,
        unit: &str,
        thresholds: Value,
    ) -> About {
        About {
            key: key.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            unit: unit.to_owned(),
            ok: String::new(),
            thresholds,
        }
    }
}

/// How a panel looks: its size in grid cells (width of 24, height), its value mappings, and
/// its type's options.
pub(super) struct Look {
    pub(super) size: (u64, u64),
    pub(super) mappings: Vec<Value>,
    pub(super) options: Value,
}

impl Board {
    pub(super) fn row(&mut self, key: &str, title: &str) {
        let id = stable_id(key, &mut self.ids);
        self.panels.push(json!({
            "type": "row", "title": title, "id": id, "collapsed": false,
            "gridPos": self.layout.row(), "panels": [],
        }));
    }

    /// A panel of Grafana type `kind` about `about`, showing `targets` as `look` says.
    pub(super) fn panel(
        &mut self,
        kind: &str,
        about: &About,
        targets: Vec<Value>,
        look: Look,
    ) -> &mut Value {
        let id = stable_id(&about.key, &mut self.ids);
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
        let (w, h) = look.size;
        let panel = json!({
            "type": kind, "title": about.title, "description": about.description, "id": id,
            "datasource": ds(), "gridPos": self.layout.place(w, h), "targets": targets,
            "fieldConfig": {
                "defaults": {
                    "unit": about.unit, "noValue": STYLE.no_value, "thresholds": about.thresholds,
                    "mappings": look.mappings, "color": {"mode": color},
                },
                "overrides": [],
            },
            "options": look.options,
        });
        self.panels.push(panel);
        self.panels.last_mut().expect("just pushed")
    }

    /// A panel of `kind` showing `queries`, guarded by `about.ok`.
    pub(super) fn guarded(&mut self, kind: PanelKind, about: &About, queries: Vec<Query>) {
        let p = match kind {
            PanelKind::Timeseries => self.guarded_lines(about, queries),
            PanelKind::Stat | PanelKind::Bargauge | PanelKind::Table => {
                self.guarded_values(kind, about, queries)
            }
        };
        p["links"] = json!([runbook_link("PulseCheckFailing")]);
    }

    /// A stat, bar gauge or table of the last values: DEGRADED (and NO DATA, but in a table)
    /// replace them while the check fails.
    fn guarded_values(
        &mut self,
        kind: PanelKind,
        about: &About,
        queries: Vec<Query>,
    ) -> &mut Value {
        let reduce = json!({"calcs": ["lastNotNull"], "values": false});
        let (degraded, no_data) = (STYLE.degraded.clone(), STYLE.no_data.clone());
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
        let look = match kind {
            PanelKind::Stat => Look {
                size: (6, 5),
                mappings: vec![degraded, no_data],
                options: json!({"reduceOptions": reduce, "colorMode": "background",
                                "graphMode": "none", "textMode": "value_and_name"}),
            },
            PanelKind::Bargauge => Look {
                size: (8, 8),
                mappings: vec![degraded, no_data],
                options: json!({"reduceOptions": reduce, "orientation": "horizontal",
                                "displayMode": "basic", "showUnfilled": true}),
            },
            _ => Look {
                size: (12, 8),
                mappings: vec![degraded],
                options: json!({"showHeader": true, "cellHeight": "sm"}),
            },
        };
        let p = self.panel(kind.grafana_type(), about, targets, look);
        if table {
            p["transformations"] = json!([{"id": "organize", "options": {
                "excludeByName": {"Time": true, "__name__": true, "job": true}}}]);
            p["fieldConfig"]["overrides"] = json!([{
                "matcher": {"id": "byName", "options": "Value"},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}],
            }]);
        }
        p
    }

    /// A time series of the queries, cut while the check fails, with a DEGRADED line of its
    /// own in the failure colour.
    fn guarded_lines(&mut self, about: &About, queries: Vec<Query>) -> &mut Value {
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
        let look = Look {
            size: (12, 8),
            mappings: vec![STYLE.degraded.clone()],
            options: json!({"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true},
                            "tooltip": {"mode": "multi", "sort": "desc"}}),
        };
        let p = self.panel("timeseries", about, targets, look);
        p["fieldConfig"]["defaults"]["custom"] = json!({
            "fillOpacity": 5, "lineWidth": 1, "showPoints": "never",
            "thresholdsStyle": {"mode": if dashed { "dashed" } else { "off" }},
        });
        p["fieldConfig"]["overrides"] = json!([{
            "matcher": {"id": "byFrameRefID", "options": degraded_ref},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": STYLE.degraded_color}}],
        }]);
        p
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

#[cfg(test)]
mod tests {
    use super::*;

    fn about(key: &str) -> About {
        About {
            ok: "pulse_check_success{check=\"c\"}".to_owned(),
            ..About::plain(
                key,
                "Title",
                "What it shows.",
                "short",
                json!({"steps": []}),
            )
        }
    }

    #[test]
    fn panels_fill_rows_of_24_columns_and_a_row_starts_on_a_new_line() {
        let mut b = Board::default();
        let look = |w| Look {
            size: (w, 5),
            mappings: Vec::new(),
            options: json!({}),
        };
        let pos = |b: &mut Board, key: &str, w| {
            b.panel("stat", &about(key), Vec::new(), look(w))["gridPos"].clone()
        };
        assert_eq!(
            pos(&mut b, "a", 12),
            json!({"x": 0, "y": 0, "w": 12, "h": 5})
        );
        assert_eq!(
            pos(&mut b, "b", 12),
            json!({"x": 12, "y": 0, "w": 12, "h": 5})
        );
        // No room left on the line: the next one starts below the tallest panel.
        assert_eq!(pos(&mut b, "c", 6), json!({"x": 0, "y": 5, "w": 6, "h": 5}));
        b.row("row/x", "X");
        assert_eq!(
            b.panels[3]["gridPos"],
            json!({"x": 0, "y": 10, "w": 24, "h": 1})
        );
        assert_eq!(
            pos(&mut b, "d", 6),
            json!({"x": 0, "y": 11, "w": 6, "h": 5})
        );
    }

    #[test]
    fn panel_ids_follow_their_key_and_never_collide() {
        let mut used = HashSet::new();
        let a = stable_id("src/check", &mut used);
        assert_eq!(a, stable_id("src/check", &mut HashSet::new()), "stable");
        // The same key again (a collision) takes the next free id.
        assert_eq!(stable_id("src/check", &mut used), a + 1);
        assert_ne!(stable_id("src/other", &mut used), a);
        assert!(a > 0);
    }

    #[test]
    fn a_guarded_time_series_draws_a_degraded_line_in_the_failure_colour() {
        let mut b = Board::default();
        let queries = vec![query("app_depth".to_owned(), "{{queue}}")];
        b.guarded(PanelKind::Timeseries, &about("s/c"), queries);
        let p = &b.panels[0];
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
        assert_eq!(p["links"][0]["title"], "Runbook: PulseCheckFailing");
    }

    #[test]
    fn a_guarded_table_reads_instant_rows_and_colours_its_values() {
        let mut b = Board::default();
        let queries = vec![query("app_users".to_owned(), "")];
        b.guarded(PanelKind::Table, &about("s/t"), queries);
        let p = &b.panels[0];
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

    #[test]
    fn reference_ids_run_a_to_z_then_numbered() {
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(25), "Z");
        assert_eq!(ref_id(26), "Q26");
        assert_eq!(ref_id(300), "Q300");
    }
}
