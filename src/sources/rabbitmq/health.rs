//! The RabbitMQ health probe: the management API overview (connections, unroutable messages,
//! whether the broker collects statistics) and node states (running, alarms, partitions, file
//! descriptors and sockets against their limits), or, without the management API, an AMQP
//! channel.
//!
//! A broker with its management statistics off (`management_agent.disable_metrics_collector`
//! or `management.disable_stats`) lists its nodes without alarms or limits: the alarms then come
//! from `/api/health/checks/alarms`, and what stays blind is published as absent, never as 0.
//! RabbitMQ 4 reports no sockets (0 of 0) and, on its Khepri metadata store, no partitions:
//! neither is published then.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::amqp::Amqp;
use super::management::Management;
use super::quorum;
use crate::series::metric::Metric;
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable};

pub(super) const NODE_RUNNING: Metric = Metric::gauge(
    "pulse_rabbitmq_node_running",
    "Whether the broker node is running (1) or not (0).",
    &["source", "node"],
)
.doc("1 if the node is running, 0 for a cluster member the cluster lists as not running (the signal of a lost member on every version, partitions or not).");
pub(super) const NODE_ALARM: Metric = Metric::gauge(
    "pulse_rabbitmq_node_alarm",
    "Whether a resource alarm is raised on the node (publishers are blocked while it is).",
    &["source", "node", "alarm"],
)
.doc("1 while a `memory` or `disk` alarm blocks publishers (from the node list, or from `/api/health/checks/alarms` when the broker's statistics are off).");
pub(super) const NODE_PARTITIONS: Metric = Metric::gauge(
    "pulse_rabbitmq_node_partitions",
    "Nodes this node cannot reach although they are in its cluster (a network partition when above 0).",
    &["source", "node"],
)
.doc("Cluster nodes this node cannot reach: above 0 is a network partition. Absent where the broker does not detect partitions: with statistics off, and on the Khepri metadata store (the default from RabbitMQ 4.2), where a member cut off shows in `pulse_rabbitmq_node_running` instead.");
pub(super) const NODE_RESOURCE_USED: Metric = Metric::gauge(
    "pulse_rabbitmq_node_resource_used",
    "File descriptors or sockets the node uses, by resource.",
    &["source", "node", "resource"],
)
.doc("`file_descriptors` and `sockets` in use, where the broker reports a limit: RabbitMQ 4 reports no sockets (0 of 0) and a broker with statistics off neither.");
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
.doc("Published messages no queue received, `dropped` or `returned` (overview `message_stats`); absent until the first, and while statistics are off.");
pub(super) const STATISTICS: Metric = Metric::gauge(
    "pulse_rabbitmq_statistics_enabled",
    "1 while the broker's management API collects statistics, 0 while they are off (message rates, acknowledgements, consumers and head-message timestamps are then absent).",
    &["source"],
)
.doc("1 while the management API collects statistics; 0 while they are off (`management_agent.disable_metrics_collector` or `management.disable_stats`): queue depths are still read (queue totals), but consumers (but those read over AMQP), rates, acknowledgements, head-message timestamps, unroutable counts and node limits are absent, and a warning says so in the log.");

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) management: Option<Arc<Management>>,
    pub(super) amqp: Option<Arc<Amqp>>,
    /// The statistics mode last logged ([`UNKNOWN`], 0 off, 1 on): a change is logged once.
    pub(super) statistics: AtomicU8,
}

/// No statistics mode seen yet.
pub(super) const UNKNOWN: u8 = 2;

/// What a broker with statistics off leaves blind, for the log line that says so.
const BLIND: &str = "per-queue consumers (but queues read over AMQP), message rates and acknowledgements, \
    head-message timestamps (PulseOldestJobTooOld), unroutable-message counts, node memory, disk and descriptor \
    limits and partitions; queue depths are still read and node alarms come from the health checks; \
    with prometheus_url set, per-queue consumers and acknowledgements are read from the broker's Prometheus endpoint";

impl Runnable for HealthProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
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
                    return Err(RunError::new(
                        Reason::Internal,
                        "neither management_url nor amqp_url is set",
                    ))
                }
            };
            let overview = m.get("api/overview", deadline).await?;
            let nodes = m.get("api/nodes", deadline).await?;
            let alarms = match reports_alarms(&nodes) {
                true => None,
                false => match m.health_check("api/health/checks/alarms", deadline).await {
                    Ok((_, alarms)) => Some(alarms),
                    // Brokers before 3.8.10 have no health checks: the alarms stay absent.
                    Err(e) if e.reason() == Reason::NotFound => None,
                    Err(e) => return Err(e),
                },
            };
            self.log_statistics(statistics_enabled(&overview));
            let mut out = samples(&self.source, &overview, &nodes, alarms.as_ref());
            self.quorum_critical(m, deadline, &mut out).await;
            Ok(out)
        })
    }
}

/// The samples of what the probe read: the overview, the node list and, where the node list
/// carries no alarms, the alarms health check's answer.
pub(super) fn samples(
    source: &str,
    overview: &Json,
    nodes: &Json,
    alarms: Option<&Json>,
) -> Output {
    let mut out = vitals(source, overview, nodes);
    quorum::metadata_store(&mut out, source, khepri(overview), nodes);
    let enabled = statistics_enabled(overview);
    out.add(&STATISTICS, &[source], f64::from(u8::from(enabled)));
    if let Some(alarms) = alarms {
        alarm_samples(&mut out, source, nodes, alarms);
    }
    out
}

impl HealthProbe {
    /// What would lose its majority if the probed node stopped. A broker without the check
    /// (before 3.8.10), or one refusing it to this user, leaves it absent; any other failure
    /// too, said at debug: the node's own health does not depend on it.
    async fn quorum_critical(&self, m: &Management, deadline: Instant, out: &mut Output) {
        match m
            .health_check("api/health/checks/node-is-quorum-critical", deadline)
            .await
        {
            Ok((passed, body)) => quorum::critical(out, &self.source, passed, &body),
            Err(e) => {
                tracing::debug!(source = %self.source, error = %e, "node-is-quorum-critical not read")
            }
        }
    }

    /// Logs a change of the broker's statistics mode once: off is a warning naming what is
    /// blind while it lasts.
    fn log_statistics(&self, enabled: bool) {
        let now = u8::from(enabled);
        if self.statistics.swap(now, Ordering::Relaxed) == now {
            return;
        }
        if enabled {
            tracing::info!(source = %self.source, event = "rabbitmq.statistics", "the broker collects management statistics");
        } else {
            tracing::warn!(source = %self.source, event = "rabbitmq.statistics", blind = BLIND, "the broker's management statistics are off (management_agent.disable_metrics_collector or management.disable_stats): what they carry is not published");
        }
    }
}

/// Whether the broker collects management statistics. `disable_stats` in the overview is true
/// when either setting turns them off (RabbitMQ 3.8 to 4.3); an older broker lacks the field
/// and collects them.
fn statistics_enabled(overview: &Json) -> bool {
    overview["disable_stats"].as_bool() != Some(true)
}

/// Whether the node list carries the alarm flags (it does not while statistics are off).
pub(super) fn reports_alarms(nodes: &Json) -> bool {
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["mem_alarm"].is_boolean() || n["disk_free_alarm"].is_boolean())
}

/// The alarms of `/api/health/checks/alarms` (`{"status": "ok"}`, or `"failed"` with
/// `alarms: [{"node", "resource"}]`), for every running node of the list: a node's alarm is 1
/// when the check names it, else 0.
fn alarm_samples(out: &mut Output, source: &str, nodes: &Json, check: &Json) {
    let raised: Vec<(&str, &str)> = check["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["node"].as_str()?, a["resource"].as_str()?)))
        .collect();
    for node in nodes.as_array().into_iter().flatten() {
        let Some(name) = node["name"].as_str() else {
            continue;
        };
        // A stopped node raises nothing the check could see: its alarms are unknown.
        if node["running"].as_bool() != Some(true) {
            continue;
        }
        // `memory` and `disk space` (RabbitMQ's own wording for its disk alarm).
        for (resource, alarm) in [("memory", "memory"), ("disk", "disk")] {
            let on = raised
                .iter()
                .any(|(n, r)| *n == name && r.starts_with(resource));
            out.add(&NODE_ALARM, &[source, name, alarm], f64::from(u8::from(on)));
        }
    }
}

/// The metadata store is Khepri, which has no partitions in Mnesia's sense: the default from
/// RabbitMQ 4.2 (`partitions` is then always empty), the only one from 4.3.
fn khepri(overview: &Json) -> bool {
    let version = overview["rabbitmq_version"].as_str().unwrap_or("");
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (4, 2)
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
    // Khepri has no partitions in Mnesia's sense: a broker on it always reports none.
    let partitions = !khepri(overview);
    for node in nodes.as_array().into_iter().flatten() {
        let name = node["name"].as_str().unwrap_or("unknown");
        let running = node["running"].as_bool().unwrap_or(false);
        out.add(&NODE_RUNNING, &[source, name], bit(running));
        for (field, alarm) in [("mem_alarm", "memory"), ("disk_free_alarm", "disk")] {
            if let Some(on) = node[field].as_bool() {
                out.add(&NODE_ALARM, &[source, name, alarm], bit(on));
            }
        }
        if let Some(p) = node["partitions"].as_array().filter(|_| partitions) {
            out.add(&NODE_PARTITIONS, &[source, name], p.len() as f64);
        }
        for (used, limit, resource) in [
            ("fd_used", "fd_total", "file_descriptors"),
            ("sockets_used", "sockets_total", "sockets"),
        ] {
            // A stopped node reports neither; "unknown" strings on some platforms are skipped;
            // a limit of 0 is no limit the broker keeps (RabbitMQ 4's sockets: 0 of 0).
            if let (Some(u), Some(l)) = (node[used].as_f64(), node[limit].as_f64()) {
                if l > 0.0 {
                    out.add(&NODE_RESOURCE_USED, &[source, name, resource], u);
                    out.add(&NODE_RESOURCE_LIMIT, &[source, name, resource], l);
                }
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
