//! The panels of the MongoDB built-in `latency` check in a generated dashboard: each named
//! collection's latency percentiles by kind of operation, the oldest running operation per
//! namespace, and the profiler's slowest query shapes; and the `load` check's operations by
//! namespace and wait.

use super::latency::{COLLECTION_LATENCY, OLDEST_OPERATION, SHAPE_TIME};
use super::load::{ACTIVE_SECONDS, LOCK_WAITING};
use crate::config_core::display::PanelKind;
use crate::config_core::shape::{Builtin, Panel, PanelExpr, PanelQuery, Series, Shape};

/// What the `latency` check publishes, with its panels.
pub(super) fn latency() -> Vec<Series> {
    let quantile = |q: &'static str, legend| PanelQuery {
        expr: PanelExpr::Quantile {
            metric: COLLECTION_LATENCY.name,
            quantile: q,
        },
        legend,
        unit: None,
    };
    let set = Builtin {
        panels: vec![
            Panel {
                key: "collections",
                title: "Collection latency (p50, p99)".to_owned(),
                description: "The 50th and 99th percentile latency of each named collection's \
                    operations by kind ($collStats latencyStats): PulseMongodbCollectionLatencyHigh \
                    warns when a collection's mean runs at twice its usual.",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![
                    quantile("0.5", "{{collection}} {{op}} p50"),
                    quantile("0.99", "{{collection}} {{op}} p99"),
                ],
                outcome: false,
            },
            Panel {
                key: "oldest",
                title: "Oldest running operation by namespace".to_owned(),
                description: "How long the longest-running active operation of each \
                    namespace has run ($currentOp).",
                unit: "s",
                kind: PanelKind::Table,
                queries: vec![PanelQuery {
                    expr: PanelExpr::Age(OLDEST_OPERATION.name),
                    legend: "",
                    unit: None,
                }],
                outcome: false,
            },
            Panel {
                key: "shapes",
                title: "Slowest query shapes (profiler)".to_owned(),
                description: "Where the profiler is on: the time each query shape took in the \
                    last window, with its plan (COLLSCAN reads the whole collection).",
                unit: "s",
                kind: PanelKind::Table,
                queries: vec![PanelQuery::metric(SHAPE_TIME.name, "")],
                outcome: false,
            },
        ],
        also_publishes: &[],
    };
    vec![Series::new(
        COLLECTION_LATENCY.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

/// What the `load` check publishes, with its panels.
pub(super) fn load() -> Vec<Series> {
    let set = Builtin {
        panels: vec![
            Panel {
                key: "load",
                title: "Operation load by namespace and wait".to_owned(),
                description: "Average active operations, by namespace and what they wait for \
                    (lock, flow_control, latch; CPU: none), sampled every second from \
                    $currentOp.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::rate(
                    ACTIVE_SECONDS.name,
                    "{{namespace}} {{wait}}",
                )],
                outcome: false,
            },
            Panel {
                key: "lock_waits",
                title: "Operations waiting for a lock".to_owned(),
                description: "Operations of the last sample waiting for a lock, by namespace: \
                    the namespace's other operations hold it.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(LOCK_WAITING.name, "{{namespace}}")],
                outcome: false,
            },
        ],
        also_publishes: &[],
    };
    vec![Series::new(
        ACTIVE_SECONDS.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_panel_has_its_own_key_and_a_one_line_description() {
        for set in [super::latency(), super::load()] {
            crate::config_core::shape::assert_panels_well_formed(&set);
        }
    }
}
