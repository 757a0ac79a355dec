//! One dashboard as it is built: row headers and panels in reading order, laid out in rows
//! of 24 columns, numbered, and written as Grafana's JSON inside the dashboard around them
//! (title, variables, links). Both the bundled dashboards and the one generated from a
//! config are built so.
//!
//! A board numbers its panels one of two ways. The bundled ones count in the order panels
//! are added, rows included, as the committed dashboards always were: a new panel belongs at
//! the end of its board, or the links to those after it move. The one generated from a
//! config derives each id from a key (source and check names), so a panel keeps its id when
//! a check is added before it.

use std::collections::HashSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::panel::{ds, Lines, Panel};
use crate::generate::style::STYLE;

/// `{a, b}` of the matcher lists that are not empty; nothing when all are: the braces of a
/// variable's `label_values` selector.
pub(super) fn braces(matchers: &[&str]) -> String {
    let kept: Vec<&str> = matchers.iter().copied().filter(|m| !m.is_empty()).collect();
    match kept.is_empty() {
        true => String::new(),
        false => format!("{{{}}}", kept.join(", ")),
    }
}

/// The `datasource` variable: which Prometheus every panel reads. No `current` (Grafana's
/// schema wants its text and value; absent, Grafana picks the default datasource).
pub(super) fn datasource_variable() -> Value {
    json!({"name": "datasource", "label": "Prometheus", "type": "datasource",
           "query": "prometheus", "hide": 0, "refresh": 1, "regex": "", "options": []})
}

/// A variable of the values of a label, every one chosen by default. No `definition`: it is
/// not in Grafana's schema, which the generated dashboards are type-checked against.
pub(super) fn query_variable(name: &str, label: &str, query: &str) -> Value {
    json!({"name": name, "label": label, "type": "query", "datasource": ds(),
           "query": query, "multi": true, "includeAll": true, "allValue": ".*",
           "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
           "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []})
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

/// Where the next panel goes: left to right, a new line when the row of 24 columns is full.
#[derive(Default)]
struct Layout {
    x: u64,
    y: u64,
    row_h: u64,
}

impl Layout {
    /// The grid position of the next panel, `w` columns wide and `h` high.
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

    /// The grid position of a row header, which starts a new line unless at the start of
    /// one; the panels after it go below it.
    fn row(&mut self) -> Value {
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

/// A row header or a panel, in reading order; each with the key a keyed board derives its
/// id from.
enum Item {
    Row { key: String, title: String },
    Panel(Box<Panel>),
}

/// How a board numbers its panels (see the module's header).
#[derive(Clone, Copy, PartialEq)]
enum Ids {
    /// 1, 2, … in the order added.
    Counted,
    /// From each panel's key.
    Keyed,
}

/// One dashboard being built.
pub(super) struct Board {
    uid: String,
    title: String,
    description: String,
    ids: Ids,
    items: Vec<Item>,
}

/// The reduce options of every panel that shows one value per series: its last.
pub(super) fn last_value() -> Value {
    json!({"calcs": ["lastNotNull"], "values": false})
}

/// A stat's options: its last values, coloured as `color` says (`background`, `none`), a
/// sparkline or not (`graph`: `area`, `none`), each shown as `text` says (`value`,
/// `value_and_name`).
pub(super) fn stat_options(color: &str, graph: &str, text: &str) -> Value {
    json!({"reduceOptions": last_value(), "colorMode": color, "graphMode": graph,
           "textMode": text})
}

/// A time series' legend: a list under the lines.
pub(super) fn legend_below() -> Value {
    json!({"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true})
}

impl Board {
    /// An empty dashboard whose panels are numbered in the order they are added.
    pub(super) fn new(uid: &str, title: &str, description: &str) -> Board {
        Board {
            uid: uid.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            ids: Ids::Counted,
            items: Vec::new(),
        }
    }

    /// An empty dashboard whose panel ids derive from their keys (see [`Panel::key`]).
    pub(super) fn keyed(uid: &str, title: &str, description: &str) -> Board {
        Board {
            ids: Ids::Keyed,
            ..Board::new(uid, title, description)
        }
    }

    /// Its uid, which its file and the other dashboards' links are named after.
    pub(super) fn uid(&self) -> &str {
        &self.uid
    }

    /// Its title.
    pub(super) fn title(&self) -> &str {
        &self.title
    }

    /// A row header: the panels after it start on a new line.
    pub(super) fn row(&mut self, title: &str) {
        self.keyed_row(title, title);
    }

    /// A row header with the key a keyed board derives its id from.
    pub(super) fn keyed_row(&mut self, key: &str, title: &str) {
        self.items.push(Item::Row {
            key: key.to_owned(),
            title: title.to_owned(),
        });
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
        self.items.push(Item::Panel(Box::new(Panel::new(
            kind,
            title,
            description,
            unit,
            targets,
        ))));
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
        let target = json!({"expr": crate::generate::style::guard(expr, ok, on), "instant": true, "legendFormat": title});
        self.add("stat", title, description, unit, vec![target])
            .size(4, 5)
            .mappings(vec![STYLE.degraded.clone()])
            .options(stat_options("background", "none", "value"))
    }

    /// A time series, 12 by 8, of `targets` (see [`super::panel::line`]).
    pub(super) fn ts(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> &mut Panel {
        self.add("timeseries", title, description, unit, targets)
            .size(12, 8)
            .color("palette-classic")
            .lines(Lines::default())
    }

    /// A stat, 6 by 6, of one or more guarded numbers with their legends (see
    /// [`super::panel::guarded`]).
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
            .options(json!({"orientation": "horizontal", "displayMode": "basic",
                            "showUnfilled": true, "reduceOptions": last_value()}))
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

    /// The panels' JSON, laid out in rows of 24 columns, each query's expression passed
    /// through `rewrite` (the selection's matchers; see the callers).
    pub(super) fn panels(&self, rewrite: &dyn Fn(&str) -> String) -> Vec<Value> {
        let mut layout = Layout::default();
        let mut used = HashSet::new();
        let mut id = |i: usize, key: &str| match self.ids {
            Ids::Counted => i as u64 + 1,
            Ids::Keyed => stable_id(key, &mut used),
        };
        let mut panels = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Row { key, title } => panels.push(json!({
                    "type": "row", "title": title, "id": id(i, key), "collapsed": false,
                    "gridPos": layout.row(), "panels": [],
                })),
                Item::Panel(p) => {
                    let (w, h) = p.grid_size();
                    let id = id(i, p.id_key());
                    panels.push(p.json(id, layout.place(w, h), rewrite));
                }
            }
        }
        panels
    }

    /// The dashboard's JSON: its panels (see [`Board::panels`]) with `variables`, `links`
    /// to other dashboards and `tags`.
    pub(super) fn dashboard(
        &self,
        tags: &[&str],
        variables: Vec<Value>,
        links: Vec<Value>,
        rewrite: &dyn Fn(&str) -> String,
    ) -> Value {
        json!({
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": tags, "timezone": "browser", "editable": true,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "templating": {"list": variables},
            "annotations": {"list": []},
            "links": links,
            "panels": self.panels(rewrite),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(b: &Board) -> Vec<Value> {
        b.panels(&|e| e.to_owned())
            .into_iter()
            .map(|p| p["gridPos"].clone())
            .collect()
    }

    #[test]
    fn panels_fill_rows_of_24_columns_and_a_row_starts_on_a_new_line() {
        let mut b = Board::new("u", "t", "d");
        b.add("stat", "a", "", "short", Vec::new()).size(12, 5);
        b.add("stat", "b", "", "short", Vec::new()).size(12, 5);
        b.add("stat", "c", "", "short", Vec::new()).size(6, 5);
        b.row("X");
        b.add("stat", "d", "", "short", Vec::new()).size(6, 5);
        assert_eq!(
            grid(&b),
            [
                json!({"x": 0, "y": 0, "w": 12, "h": 5}),
                json!({"x": 12, "y": 0, "w": 12, "h": 5}),
                // No room left on the line: the next one starts below the tallest panel.
                json!({"x": 0, "y": 5, "w": 6, "h": 5}),
                json!({"x": 0, "y": 10, "w": 24, "h": 1}),
                json!({"x": 0, "y": 11, "w": 6, "h": 5}),
            ]
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
    fn a_counted_board_numbers_in_order_and_a_keyed_one_by_key() {
        let ids = |mut b: Board| {
            b.row("R");
            b.add("stat", "a", "", "short", Vec::new()).key("k/a");
            b.panels(&|e| e.to_owned())
                .iter()
                .map(|p| p["id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Board::new("u", "t", "d")), [1, 2]);
        let keyed = ids(Board::keyed("u", "t", "d"));
        assert_eq!(keyed[1], stable_id("k/a", &mut HashSet::new()));
    }
}
