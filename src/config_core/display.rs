//! How a check is shown and alerted on by the generated dashboard and rules
//! (`pulse-exporter dashboards`, `pulse-exporter rules`): the optional check fields `unit`,
//! `panel` and `alert`, each validated where it is read so a typo names the field and the
//! values it takes.

use serde::{Deserialize, Deserializer};

use super::Dur;

/// Grafana unit ids a check's `unit` may take, besides `suffix:<text>` and `prefix:<text>`
/// (Grafana's custom units). A short list on purpose: the units a business number has.
pub const UNITS: &[&str] = &[
    "none",
    "short",
    "percent",
    "percentunit",
    "ns",
    "µs",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "dtdurations",
    "dateTimeFromNow",
    "bytes",
    "decbytes",
    "bits",
    "bps",
    "Bps",
    "reqps",
    "rps",
    "wps",
    "ops",
    "cps",
    "currencyUSD",
    "currencyEUR",
    "currencyGBP",
    "currencyJPY",
];

/// A Grafana unit id, checked against [`UNITS`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unit(pub String);

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let custom = ["suffix:", "prefix:"]
            .iter()
            .any(|p| text.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if custom || UNITS.contains(&text.as_str()) {
            return Ok(Unit(text));
        }
        Err(serde::de::Error::custom(format!(
            "unknown unit {text:?}: use one of {}, or `suffix:<text>` / `prefix:<text>` for a label of your own",
            UNITS.join(", ")
        )))
    }
}

impl schemars::JsonSchema for Unit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Unit".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "grafana-unit" })
    }
}

/// The panel a check gets in the generated dashboard.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// One number per series, DEGRADED when the check fails.
    Stat,
    /// Lines over time, one per label value.
    Timeseries,
    /// A row per series (top-N lists).
    Table,
    /// A bar per series (distributions).
    Bargauge,
}

impl PanelKind {
    /// Grafana's panel type id.
    pub fn grafana_type(self) -> &'static str {
        match self {
            PanelKind::Stat => "stat",
            PanelKind::Timeseries => "timeseries",
            PanelKind::Table => "table",
            PanelKind::Bargauge => "bargauge",
        }
    }
}

/// Severity of a generated alert: `critical` pages, `warning` goes to chat (the bundled
/// alerts' convention).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Goes to chat for working hours.
    #[default]
    Warning,
    /// Pages a human now.
    Critical,
}

impl Severity {
    /// The `severity` label value.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// `alert:` of a check: a threshold alert in the generated rules, on every series of the
/// check's metric, or with `ratio`, on the share some label values take of the check's total.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Fire while a value is above this (set `above` or `below`, not both). With `ratio`, a
    /// share between 0 and 1.
    pub above: Option<f64>,
    /// Fire while a value is below this.
    pub below: Option<f64>,
    /// How long the value must stay past the threshold before the alert fires (default 10m).
    #[serde(rename = "for", default = "default_for")]
    pub for_: Dur,
    /// `warning` (default) or `critical`.
    #[serde(default)]
    pub severity: Severity,
    /// Compare the share of some values of a label (failures among requests by `status`)
    /// instead of the values themselves.
    #[serde(default)]
    pub ratio: Option<Ratio>,
}

/// `alert.ratio`: an error-ratio alert. The check's series are summed over `label`; the sum of
/// the series whose `label` is one of `values`, divided by the sum of all, is compared with
/// `above` or `below`, and only while the total is at least `min_total`, so that two failed
/// requests out of three at night do not page.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// The label that splits the count (one of the check's labels), e.g. `status`.
    pub label: String,
    /// The values of `label` counted in the share, e.g. `[error, timeout]` (at least one).
    pub values: Vec<String>,
    /// For a counter: the window the increases are taken over (default 15m). A gauge is
    /// compared as it is (a query that counts over its own window): leave this out.
    pub window: Option<Dur>,
    /// The smallest total (the increase of a counter over `window`, or a gauge's sum) that is
    /// judged (default 20).
    #[serde(default = "default_min_total")]
    pub min_total: f64,
}

fn default_for() -> Dur {
    Dur(std::time::Duration::from_secs(600))
}

fn default_min_total() -> f64 {
    20.0
}

/// The counter window of a ratio alert when none is set.
pub const DEFAULT_RATIO_WINDOW: std::time::Duration = std::time::Duration::from_secs(900);

impl Ratio {
    /// What is wrong with the ratio on its own (its fit to the check's labels is checked
    /// where the labels are known), with the field to fix.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.values.is_empty() {
            return Some((
                "values",
                "list the values of `label` counted as failures, e.g. [error, timeout]",
            ));
        }
        if !self.min_total.is_finite() || self.min_total < 0.0 {
            return Some(("min_total", "must be a number of 0 or more"));
        }
        if self.window.is_some_and(|w| w.0.as_secs() < 60) {
            return Some((
                "window",
                "must be at least 1m: an increase needs several scrapes",
            ));
        }
        None
    }
}

impl Threshold {
    /// The comparison and its bound (`> 100`), or what is wrong with the threshold.
    pub fn comparison(&self) -> Result<(&'static str, f64), &'static str> {
        match (self.above, self.below) {
            (Some(v), None) if v.is_finite() => Ok((">", v)),
            (None, Some(v)) if v.is_finite() => Ok(("<", v)),
            (Some(_), Some(_)) => {
                Err("set `above` or `below`, not both: write two checks for a band")
            }
            (None, None) => Err("set `above` or `below`: the value the alert fires past"),
            _ => Err("the threshold must be a finite number"),
        }
        .and_then(
            |(op, v)| match self.ratio.is_some() && !(0.0..=1.0).contains(&v) {
                true => Err(
                    "with `ratio`, the threshold is a share between 0 and 1 (0.25 is a quarter)",
                ),
                false => Ok((op, v)),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_outside_the_list_names_the_list() {
        let ok: Unit = serde_yaml::from_str("percentunit").unwrap();
        assert_eq!(ok.0, "percentunit");
        let custom: Unit = serde_yaml::from_str("'suffix: jobs'").unwrap();
        assert_eq!(custom.0, "suffix: jobs");
        let err = serde_yaml::from_str::<Unit>("seconds")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown unit \"seconds\": use one of none, short"),
            "{err}"
        );
        assert!(serde_yaml::from_str::<Unit>("'suffix:'").is_err());
    }

    #[test]
    fn a_threshold_takes_one_finite_bound() {
        let t = |y: &str| serde_yaml::from_str::<Threshold>(y).unwrap();
        assert_eq!(t("{ above: 100 }").comparison(), Ok((">", 100.0)));
        assert_eq!(t("{ below: 0.5, for: 5m }").comparison(), Ok(("<", 0.5)));
        assert_eq!(t("{ above: 1 }").for_.0.as_secs(), 600);
        assert_eq!(t("{ above: 1 }").severity, Severity::Warning);
        assert!(t("{ above: 1, below: 0 }")
            .comparison()
            .unwrap_err()
            .contains("not both"));
        assert!(t("{ for: 5m }").comparison().is_err());
        assert!(t("{ above: .nan }").comparison().is_err());
        assert!(serde_yaml::from_str::<Threshold>("{ above: 1, severity: page }").is_err());
        assert!(serde_yaml::from_str::<Threshold>("{ abov: 1 }").is_err());
    }

    #[test]
    fn a_ratio_takes_a_share_values_and_a_sane_window() {
        let t = |y: &str| serde_yaml::from_str::<Threshold>(y).unwrap();
        let ok = t("{ above: 0.25, ratio: { label: status, values: [error] } }");
        assert_eq!(ok.comparison(), Ok((">", 0.25)));
        let r = ok.ratio.unwrap();
        assert_eq!((r.min_total, r.window, r.problem()), (20.0, None, None));
        assert!(
            t("{ above: 25, ratio: { label: status, values: [error] } }")
                .comparison()
                .unwrap_err()
                .contains("between 0 and 1")
        );
        let problem = |y: &str| t(y).ratio.unwrap().problem().map(|(field, _)| field);
        assert_eq!(
            problem("{ above: 0.5, ratio: { label: s, values: [] } }"),
            Some("values")
        );
        assert_eq!(
            problem("{ above: 0.5, ratio: { label: s, values: [e], min_total: -1 } }"),
            Some("min_total")
        );
        assert_eq!(
            problem("{ above: 0.5, ratio: { label: s, values: [e], window: 30s } }"),
            Some("window")
        );
        assert!(serde_yaml::from_str::<Threshold>("{ above: 0.5, ratio: { label: s } }").is_err());
    }
}
