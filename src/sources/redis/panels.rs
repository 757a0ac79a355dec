//! The panels of the Redis built-in `latency` check in a generated dashboard: each command's
//! latency percentiles from the server's histograms, its calls, the load by command, and the
//! slow log.

use super::latency::{CALLS, DURATION, SLOWLOG_ENTRIES, SLOWLOG_SLOWEST, TIME};
use crate::config_core::display::PanelKind;
use crate::config_core::shape::{Builtin, Panel, PanelExpr, PanelQuery, Series, Shape};

/// What the `latency` check publishes, with its panels.
pub(super) fn latency() -> Vec<Series> {
    let quantile = |q: &'static str, legend| PanelQuery {
        expr: PanelExpr::Quantile {
            metric: DURATION.name,
            quantile: q,
        },
        legend,
        unit: None,
    };
    let rate = PanelQuery::rate;
    let set = Builtin {
        panels: vec![
            Panel {
                key: "p99",
                title: "Command latency (p50, p99)".to_owned(),
                description: "The 50th and 99th percentile latency of each of the most called \
                    commands, from the server's own histograms (LATENCY HISTOGRAM, Redis 7+): \
                    PulseRedisCommandSlow warns when a p99 stays above the source's p99_limit.",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![
                    quantile("0.5", "{{command}} p50"),
                    quantile("0.99", "{{command}} p99"),
                ],
                outcome: false,
            },
            Panel {
                key: "calls",
                title: "Calls by command".to_owned(),
                description: "Calls a second of each of the most called commands (INFO \
                    commandstats).",
                unit: "reqps",
                kind: PanelKind::Timeseries,
                queries: vec![rate(CALLS.name, "{{command}}")],
                outcome: false,
            },
            Panel {
                key: "load",
                title: "Load by command".to_owned(),
                description: "Seconds the server spent executing each command a second (INFO \
                    commandstats usec), for the most called and the busiest commands: the \
                    share of its one command thread each takes; near 1 in all, commands queue.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![rate(TIME.name, "{{command}}")],
                outcome: false,
            },
            Panel {
                key: "slowlog",
                title: "Slow log".to_owned(),
                description: "Entries added to the slow log a second, and the slowest entry of \
                    each command in the last window (command names only, never arguments).",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![
                    PanelQuery {
                        unit: Some("short"),
                        ..rate(SLOWLOG_ENTRIES.name, "entries/s")
                    },
                    PanelQuery::metric(SLOWLOG_SLOWEST.name, "slowest {{command}}"),
                ],
                outcome: false,
            },
        ],
        also_publishes: &[],
    };
    vec![Series::new(CALLS.name, Vec::new(), Shape::Builtin(set))]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_panel_has_its_own_key_and_a_one_line_description() {
        crate::config_core::shape::assert_panels_well_formed(&super::latency());
    }
}
