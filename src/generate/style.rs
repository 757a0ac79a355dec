//! The look every pulse-exporter panel shares, read from `grafana/style.json` (compiled in):
//! the replica fold, the DEGRADED/NO DATA guard and mappings, the runbook base and the units
//! inferred from metric names. The bundled dashboards ([`super::dashboards::bundle`]) and those
//! generated from a config both draw with it, so both draw a guarded card one way.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

/// `grafana/style.json`.
#[derive(Debug, Deserialize)]
pub struct Style {
    /// `max without (pod) ({expr})`: replicas of a shard folded together.
    pub fold: String,
    /// `({expr}) and on ({on}) ({ok} == 1) or on ({on}) ({ok} == 0) - 1`.
    pub guard: String,
    /// A time series' query: `({expr}) and on ({on}) ({ok} == 1)`.
    pub guard_line: String,
    /// A time series' DEGRADED line: `({ok} == 0) - 1`.
    pub degraded_line: String,
    /// Colour of DEGRADED.
    pub degraded_color: String,
    /// The text a panel without data shows.
    pub no_value: String,
    /// Value mapping: -1 reads DEGRADED.
    pub degraded: Value,
    /// Value mapping: null and NaN read NO DATA in grey.
    pub no_data: Value,
    /// Value mapping: 1 UP, 0 DOWN.
    pub up: Value,
    /// Value mapping: 1 OK, 0 FAILING.
    pub ok: Value,
    /// Where alerts/runbook.md is browsed; a section is `#<alert name in lower case>`.
    pub runbook_base: String,
    /// Metric name suffix -> Grafana unit, the first match wins.
    pub units: Vec<(String, String)>,
    /// The unit of a name no suffix matches.
    pub default_unit: String,
}

/// The style, parsed once. The file is part of the build, and a unit test parses it, so it
/// cannot fail at run time.
pub static STYLE: LazyLock<Style> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../grafana/style.json"))
        .expect("grafana/style.json is valid (unit-tested)")
});

/// `expr` with the replicas of a shard folded together.
pub fn fold(expr: &str) -> String {
    STYLE.fold.replace("{expr}", expr)
}

/// `expr` where `ok` is 1 on the same `on` labels; -1 (DEGRADED) where `ok` is 0; nothing
/// where neither has data (NO DATA).
pub fn guard(expr: &str, ok: &str, on: &str) -> String {
    STYLE
        .guard
        .replace("{expr}", expr)
        .replace("{ok}", ok)
        .replace("{on}", on)
}

/// A time series' query: `expr` while `ok` is 1, nothing else (see [`degraded_line`]).
pub fn guard_line(expr: &str, ok: &str, on: &str) -> String {
    STYLE
        .guard_line
        .replace("{expr}", expr)
        .replace("{ok}", ok)
        .replace("{on}", on)
}

/// A time series' DEGRADED line: -1 while `ok` is 0.
pub fn degraded_line(ok: &str) -> String {
    STYLE.degraded_line.replace("{ok}", ok)
}

/// The Grafana unit a metric's name implies (`_seconds` s, `_bytes` bytes, `_ratio`
/// percentunit, `_total` a rate, ...).
pub fn unit_of(metric: &str) -> &'static str {
    STYLE
        .units
        .iter()
        .find(|(suffix, _)| metric.ends_with(suffix.as_str()))
        .map_or(STYLE.default_unit.as_str(), |(_, unit)| unit.as_str())
}

/// The runbook section of `alert`.
pub fn runbook_url(alert: &str) -> String {
    format!("{}#{}", STYLE.runbook_base, alert.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_style_file_parses_and_its_units_know_the_naming_conventions() {
        let cases = [
            ("app_queue_oldest_job_timestamp_seconds", "s"),
            ("app_job_latency_avg_seconds", "s"),
            ("app_media_bytes", "bytes"),
            ("app_users_monthly_growth_ratio", "percentunit"),
            ("app_ai_cost_estimate_usd", "currencyUSD"),
            ("app_logins_total", "cps"),
            ("app_upload_bytes_total", "Bps"),
            ("app_users", "short"),
        ];
        for (metric, unit) in cases {
            assert_eq!(unit_of(metric), unit, "{metric}");
        }
        // Every unit the file names is one a check's `unit` field accepts too.
        for (_, unit) in &STYLE.units {
            assert!(
                crate::config_core::display::UNITS.contains(&unit.as_str()),
                "{unit}"
            );
        }
    }

    #[test]
    fn a_guard_reads_degraded_where_its_check_fails() {
        let g = guard("x", "ok", "instance");
        assert_eq!(
            g,
            "(x)\nand on (instance) (ok == 1)\nor on (instance) (ok == 0) - 1"
        );
        assert_eq!(fold("up"), "max without (pod) (up)");
        assert_eq!(
            STYLE.degraded["options"]["-1"]["text"].as_str(),
            Some("DEGRADED")
        );
        assert!(runbook_url("PulseSourceDown").ends_with("runbook.md#pulsesourcedown"));
    }
}
