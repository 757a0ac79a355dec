//! The cluster's majorities, as the probed node sees them: whether the Khepri metadata store
//! (RabbitMQ 4.2 on) has a majority of its members running, and what would lose its majority
//! if the probed node stopped (`/api/health/checks/node-is-quorum-critical`).
//!
//! Khepri replaces Mnesia's partitions: a member cut off from the others is not reported as a
//! partition but leaves the store on the side without a majority unable to change anything
//! (no queue, binding, user or policy can be declared or deleted there). Every cluster node is
//! a member of the store, so the node list says whether a majority runs.

use serde_json::Value as Json;

use crate::series::metric::Metric;
use crate::series::sample::Output;

pub(super) const METADATA_STORE_QUORUM: Metric = Metric::gauge(
    "pulse_rabbitmq_metadata_store_quorum",
    "1 while a majority of the cluster's nodes (the Khepri metadata store's members) run, as the probed node sees them; 0 when the store cannot change anything.",
    &["source"],
)
.doc("1 while a majority of the cluster's nodes run as the probed node sees them (every node is a member of the Khepri metadata store, the default from RabbitMQ 4.2): 0 when the store has no majority, so no queue, exchange, binding, user or policy can be declared or deleted, and a member cut off sees 0 on its side. Absent on the Mnesia store (before 4.2), where `pulse_rabbitmq_node_partitions` says it.");
pub(super) const QUORUM_CRITICAL: Metric = Metric::gauge(
    "pulse_rabbitmq_quorum_critical",
    "What would lose its majority if the probed node stopped, by kind (quorum_queue, stream, metadata_store, stream_coordinator): a count, 0 when nothing would.",
    &["source", "what"],
)
.doc("How many of each `what` (`quorum_queue`, `stream`, `metadata_store`, `stream_coordinator`) would lose their majority if the probed node stopped (the broker's `node-is-quorum-critical` health check): above 0, the cluster has no member to spare. Every kind reads 0 while the check passes; absent where the broker has no such check or refuses it to the user.");

/// The kinds of `QUORUM_CRITICAL`, by what the health check calls them.
const KINDS: &[(&str, &str)] = &[
    ("rabbit_quorum_queue", "quorum_queue"),
    ("rabbit_stream_queue", "stream"),
    ("rabbitmq_metadata", "metadata_store"),
    ("rabbit_stream_coordinator", "stream_coordinator"),
];

/// The metadata store's majority, on a Khepri broker, from the node list: more than half of
/// the listed nodes running.
pub(super) fn metadata_store(out: &mut Output, source: &str, khepri: bool, nodes: &Json) {
    let Some(nodes) = nodes.as_array().filter(|n| khepri && !n.is_empty()) else {
        return;
    };
    let running = nodes
        .iter()
        .filter(|n| n["running"].as_bool() == Some(true))
        .count();
    let quorum = running * 2 > nodes.len();
    out.add(
        &METADATA_STORE_QUORUM,
        &[source],
        f64::from(u8::from(quorum)),
    );
}

/// What the `node-is-quorum-critical` check names, counted by kind: `passed` is its status
/// (200), `body` its answer (`queues: [{name, type}]` when it failed). A name the check gives
/// without a known type is counted by name (the store and the coordinator are "process"es).
pub(super) fn critical(out: &mut Output, source: &str, passed: bool, body: &Json) {
    let mut counts = [0u32; 4];
    if !passed {
        for item in body["queues"].as_array().into_iter().flatten() {
            let (name, kind) = (item["name"].as_str(), item["type"].as_str());
            if let Some(i) = KINDS
                .iter()
                .position(|(k, _)| Some(*k) == kind || Some(*k) == name)
            {
                counts[i] += 1;
            }
        }
    }
    for ((_, what), n) in KINDS.iter().zip(counts) {
        out.add(&QUORUM_CRITICAL, &[source, what], f64::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(out: &Output, name: &str, what: Option<&str>) -> Option<f64> {
        out.families
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| &f.samples)
            .find(|s| what.is_none_or(|w| s.labels.iter().any(|(_, v)| v == w)))
            .map(|s| s.value)
    }

    #[test]
    fn the_store_has_a_majority_while_more_than_half_of_the_nodes_run() {
        let nodes = |up: &[bool]| {
            Json::Array(
                up.iter()
                    .map(|r| json!({"name": "n", "running": r}))
                    .collect(),
            )
        };
        let quorum = |khepri, up: &[bool]| {
            let mut out = Output::default();
            metadata_store(&mut out, "mq", khepri, &nodes(up));
            value(&out, METADATA_STORE_QUORUM.name, None)
        };
        assert_eq!(quorum(true, &[true]), Some(1.0));
        assert_eq!(quorum(true, &[true, true, false]), Some(1.0));
        assert_eq!(quorum(true, &[true, false, false]), Some(0.0));
        // Two of four is no majority.
        assert_eq!(quorum(true, &[true, true, false, false]), Some(0.0));
        // Mnesia has no such majority; an empty list says nothing.
        assert_eq!(quorum(false, &[true, false, false]), None);
        assert_eq!(quorum(true, &[]), None);
    }

    /// RabbitMQ 4.3's answer with two of three nodes stopped, and a passing check.
    #[test]
    fn the_critical_check_is_counted_by_kind_and_zero_when_it_passes() {
        let failed = json!({"status": "failed", "reason": "There are quorum queues that would lose their quorum if the target node is shut down",
        "queues": [
            {"name": "work", "type": "rabbit_quorum_queue", "virtual_host": "/"},
            {"name": "mail", "type": "rabbit_quorum_queue", "virtual_host": "b"},
            {"name": "events", "type": "rabbit_stream_queue", "virtual_host": "/"},
            {"name": "rabbit_stream_coordinator", "type": "process", "virtual_host": "(not applicable)"},
            {"name": "rabbitmq_metadata", "type": "process", "virtual_host": "(not applicable)"},
            {"name": "something_new", "type": "process"},
            "not an object"
        ]});
        let mut out = Output::default();
        critical(&mut out, "mq", false, &failed);
        let of = |w| value(&out, QUORUM_CRITICAL.name, Some(w));
        assert_eq!(of("quorum_queue"), Some(2.0));
        assert_eq!(of("stream"), Some(1.0));
        assert_eq!(of("metadata_store"), Some(1.0));
        assert_eq!(of("stream_coordinator"), Some(1.0));
        let mut out = Output::default();
        critical(
            &mut out,
            "mq",
            true,
            &json!({"status": "ok", "reason": "single node cluster"}),
        );
        let all: Vec<f64> = out.families[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(all, [0.0; 4]);
    }
}
