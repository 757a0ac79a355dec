//! One panel as it is described before its board places it: its kind, texts, queries, size
//! and look, written as Grafana's JSON with a runbook link per alert that watches it.

use serde_json::{json, Value};

use super::fields::neutral;
use crate::generate::style::{self, STYLE};

/// The datasource every panel and query uses: the dashboard's `datasource` variable.
pub(super) fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Panel types that map a missing value to NO DATA in grey (a table or a time series shows
/// an empty cell or no line instead).
const SHOWS_NO_DATA: [&str; 4] = ["stat", "bargauge", "gauge", "piechart"];

/// How a time series draws its lines.
#[derive(Default)]
pub(super) struct Lines {
    /// Stacked and filled.
    stacked: bool,
    /// How threshold steps are drawn (`dashed`, `off`); unset, Grafana's default (none).
    thresholds: Option<&'static str>,
}

/// One panel: what it shows and how, until the board places it.
pub(super) struct Panel {
    kind: &'static str,
    key: Option<String>,
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
    /// A panel of Grafana type `kind` showing `targets`, 8 by 8, its values coloured by
    /// neutral thresholds.
    pub(super) fn new(
        kind: &'static str,
        title: &str,
        description: &str,
        unit: &str,
        targets: Vec<Value>,
    ) -> Panel {
        Panel {
            kind,
            key: None,
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
        }
    }

    /// The key a keyed board derives the panel's id from (the title when unset).
    pub(super) fn key(&mut self, key: &str) -> &mut Panel {
        self.key = Some(key.to_owned());
        self
    }

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
            lines.thresholds = Some("dashed");
        }
        self
    }

    /// A time series' threshold steps drawn as `mode` says (`dashed`, `off`).
    pub(super) fn threshold_lines(&mut self, mode: &'static str) -> &mut Panel {
        if let Some(lines) = &mut self.lines {
            lines.thresholds = Some(mode);
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

    /// One more field override, after those set.
    pub(super) fn and_override(&mut self, over: Value) -> &mut Panel {
        self.overrides.push(over);
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

    /// Lines drawn as `lines` says: the panel is a time series.
    pub(super) fn lines(&mut self, lines: Lines) -> &mut Panel {
        self.lines = Some(lines);
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

    /// Its width and height in grid cells.
    pub(super) fn grid_size(&self) -> (u64, u64) {
        self.size
    }

    /// The key a keyed board numbers it by.
    pub(super) fn id_key(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.title)
    }

    /// The panel's JSON, with `id` and where it sits, each query's expression passed
    /// through `rewrite`.
    pub(super) fn json(&self, id: u64, grid_pos: Value, rewrite: &dyn Fn(&str) -> String) -> Value {
        let mut panel = json!({
            "type": self.kind, "title": self.title, "description": self.description, "id": id,
            "datasource": ds(), "gridPos": grid_pos, "targets": self.targets_json(rewrite),
            "fieldConfig": {"defaults": self.defaults(), "overrides": self.overrides},
            "options": self.options,
        });
        let links: Vec<Value> = self
            .alerts
            .iter()
            .map(|a| runbook_link(a))
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

    /// The queries, lettered, each reading the dashboard's datasource.
    fn targets_json(&self, rewrite: &dyn Fn(&str) -> String) -> Vec<Value> {
        self.targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut t = t.clone();
                if let Some(expr) = t.get_mut("expr") {
                    if let Some(text) = expr.as_str() {
                        *expr = rewrite(text).into();
                    }
                }
                t["refId"] = json!(ref_id(i));
                t["datasource"] = ds();
                t
            })
            .collect()
    }

    /// What every field shows unless overridden: unit, mappings, colours, line style.
    fn defaults(&self) -> Value {
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
            if let Some(mode) = lines.thresholds {
                custom["thresholdsStyle"] = json!({ "mode": mode });
            }
            defaults["custom"] = custom;
        }
        if let Some(decimals) = self.decimals {
            defaults["decimals"] = json!(decimals);
        }
        defaults
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

/// A time series query: `expr` drawn as `legend`.
pub(super) fn line(expr: impl Into<String>, legend: impl Into<String>) -> Value {
    json!({"expr": expr.into(), "legendFormat": legend.into()})
}

/// A number of a board's `number` stat: `expr` as `legend`, DEGRADED while `ok`
/// is 0 for the same exporter.
pub(super) fn guarded(expr: &str, legend: &str, ok: &str) -> Value {
    guarded_on("instance", expr, legend, ok)
}

/// [`guarded`] on the `on` labels (`instance, source, pool`).
pub(super) fn guarded_on(on: &str, expr: &str, legend: &str, ok: &str) -> Value {
    json!({"expr": style::guard(expr, ok, on), "legendFormat": legend, "instant": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ids_run_a_to_z_then_numbered() {
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(25), "Z");
        assert_eq!(ref_id(26), "Q26");
        assert_eq!(ref_id(300), "Q300");
    }

    #[test]
    fn a_stat_maps_no_data_and_a_table_does_not() {
        let mappings = |kind| {
            Panel::new(kind, "t", "d", "short", Vec::new())
                .mappings(vec![STYLE.degraded.clone()])
                .defaults()["mappings"]
                .as_array()
                .map_or(0, Vec::len)
        };
        assert_eq!(mappings("stat"), 2);
        assert_eq!(mappings("table"), 1);
    }

    #[test]
    fn a_runbook_link_carries_every_field_of_the_schema() {
        let link = runbook_link("PulseSourceDown");
        assert_eq!(link["title"], "Runbook: PulseSourceDown");
        assert_eq!(link["type"], "link");
        assert!(link["url"].as_str().unwrap().ends_with("#pulsesourcedown"));
    }
}
