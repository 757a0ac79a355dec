//! The RabbitMQ health probe: the management API overview (connections, unroutable messages)
//! and node states (running, alarms, partitions, file descriptors and sockets against their
//! limits), or, without the management API, an AMQP channel.

use std::sync::Arc;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::amqp::Amqp;
use super::management::Management;
use crate::error::{ProbeError, Reason};
use crate::metric::Metric;
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};

pub(super) const NODE_RUNNING: Metric = Metric::gauge(
    "pulse_rabbitmq_node_running",
    "Whether the broker node is running (1) or not (0).",
    &["source", "node"],
)
.doc("1 if the node is running.");
pub(super) const NODE_ALARM: Metric = Metric::gauge(
    "pulse_rabbitmq_node_alarm",
    "Whether a resource alarm is raised on the node (publishers are blocked while it is).",
    &["source", "node", "alarm"],
)
.doc("1 while a `memory` or `disk` alarm blocks publishers.");
pub(super) const NODE_PARTITIONS: Metric = Metric::gauge(
    "pulse_rabbitmq_node_partitions",
    "Nodes this node cannot reach although they are in its cluster (a network partition when above 0).",
    &["source", "node"],
)
.doc("Cluster nodes this node cannot reach: above 0 is a network partition.");
pub(super) const NODE_RESOURCE_USED: Metric = Metric::gauge(
    "pulse_rabbitmq_node_resource_used",
    "File descriptors or sockets the node uses, by resource.",
    &["source", "node", "resource"],
)
.doc("`file_descriptors` and `sockets` in use (sockets where the broker reports them: not RabbitMQ 4).");
pub(super) const NODE_RESOURCE_LIMIT: Metric = Metric::gauge(
    "pulse_rabbitmq_node_resource_limit",
    "The node's limit of file descriptors or sockets, by resource.",
    &["source", "node", "resource"],
)
.doc("The node's limit of each.");
pub(super) const CONNECTIONS: Metric = Metric::gauge(
    "pulse_rabbitmq_connections",
    "Client connections to the cluster (management API object_totals).",
    &["source"],
)
.doc("Client connections to the cluster (overview `object_totals`).");
pub(super) const UNROUTABLE: Metric = Metric::counter(
    "pulse_rabbitmq_unroutable_messages_total",
    "Published messages no queue was bound to receive, dropped or returned to the publisher, by action.",
    &["source", "action"],
)
.doc("Published messages no queue received, `dropped` or `returned` (overview `message_stats`); absent until the first.");

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) management: Option<Arc<Management>>,
    pub(super) amqp: Option<Arc<Amqp>>,
}

impl Probe for HealthProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let m = match (&self.management, &self.amqp) {
                (Some(m), _) => m,
                // AMQP only: the broker is up when a channel opens.
                (None, Some(amqp)) => {
                    amqp.channel(deadline).await?;
                    return Ok(Output::default());
                }
                // Validation requires one of them; never a panic all the same.
                (None, None) => {
                    return Err(ProbeError::new(
                        Reason::Internal,
                        "neither management_url nor amqp_url is set",
                    ))
                }
            };
            let overview = m.get("api/overview", deadline).await?;
            let nodes = m.get("api/nodes", deadline).await?;
            Ok(vitals(&self.source, &overview, &nodes))
        })
    }
}

/// The samples of the management API's overview and node list. A field this broker version
/// does not report (sockets are gone from RabbitMQ 4) is absent, never an error.
fn vitals(source: &str, overview: &Json, nodes: &Json) -> Output {
    let mut out = Output::default();
    let bit = |b: bool| f64::from(u8::from(b));
    if let Some(n) = overview["object_totals"]["connections"].as_f64() {
        out.add(&CONNECTIONS, &[source], n);
    }
    for (field, action) in [
        ("drop_unroutable", "dropped"),
        ("return_unroutable", "returned"),
    ] {
        if let Some(n) = overview["message_stats"][field].as_f64() {
            out.add(&UNROUTABLE, &[source, action], n);
        }
    }
    for node in nodes.as_array().into_iter().flatten() {
        let name = node["name"].as_str().unwrap_or("unknown");
        let running = node["running"].as_bool().unwrap_or(false);
        out.add(&NODE_RUNNING, &[source, name], bit(running));
        for (field, alarm) in [("mem_alarm", "memory"), ("disk_free_alarm", "disk")] {
            if let Some(on) = node[field].as_bool() {
                out.add(&NODE_ALARM, &[source, name, alarm], bit(on));
            }
        }
        if let Some(p) = node["partitions"].as_array() {
            out.add(&NODE_PARTITIONS, &[source, name], p.len() as f64);
        }
        for (used, limit, resource) in [
            ("fd_used", "fd_total", "file_descriptors"),
            ("sockets_used", "sockets_total", "sockets"),
        ] {
            // A stopped node reports neither; "unknown" strings on some platforms are skipped.
            if let (Some(u), Some(l)) = (node[used].as_f64(), node[limit].as_f64()) {
                out.add(&NODE_RESOURCE_USED, &[source, name, resource], u);
                out.add(&NODE_RESOURCE_LIMIT, &[source, name, resource], l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn nodes_report_partitions_and_limits_and_the_overview_unroutable_messages() {
        let overview = json!({
            "object_totals": { "connections": 12 },
            "message_stats": { "drop_unroutable": 3, "return_unroutable": 0 }
        });
        let nodes = json!([
            { "name": "rabbit@a", "running": true, "mem_alarm": false, "disk_free_alarm": true,
              "partitions": ["rabbit@b"], "fd_used": 900, "fd_total": 1000,
              "sockets_used": 10, "sockets_total": 829 },
            // A stopped node: no counters at all.
            { "name": "rabbit@b", "running": false }
        ]);
        let out = super::vitals("broker", &overview, &nodes);
        assert_eq!(out.value("pulse_rabbitmq_connections", ""), Some(12.0));
        assert_eq!(
            out.value("pulse_rabbitmq_unroutable_messages_total", "dropped"),
            Some(3.0)
        );
        assert_eq!(
            out.value("pulse_rabbitmq_node_partitions", "rabbit@a"),
            Some(1.0)
        );
        assert_eq!(
            out.value("pulse_rabbitmq_node_partitions", "rabbit@b"),
            None
        );
        assert_eq!(
            out.value("pulse_rabbitmq_node_running", "rabbit@b"),
            Some(0.0)
        );
        assert_eq!(out.value("pulse_rabbitmq_node_alarm", "disk"), Some(1.0));
        assert_eq!(
            out.value("pulse_rabbitmq_node_resource_used", "file_descriptors"),
            Some(900.0)
        );
        assert_eq!(
            out.value("pulse_rabbitmq_node_resource_limit", "sockets"),
            Some(829.0)
        );
    }

    #[test]
    fn a_broker_without_message_stats_publishes_no_unroutable_counter() {
        let out = super::vitals("broker", &json!({}), &json!([]));
        assert_eq!(
            out.value("pulse_rabbitmq_unroutable_messages_total", ""),
            None
        );
        assert!(out.families.is_empty());
    }
}
