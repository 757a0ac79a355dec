//! The Redis health probe: PING, then INFO fields as vital statistics and the eviction
//! policy.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::{classify, Conn};
use crate::sample::{Metric, Output};
use crate::sources::{Probe, ProbeFuture};

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) conn: Arc<Conn>,
}

pub(super) const MEMORY_USED: Metric = Metric::gauge(
    "pulse_redis_memory_used_bytes",
    "Memory Redis has allocated (INFO used_memory).",
    &["source"],
);
pub(super) const MEMORY_MAX: Metric = Metric::gauge(
    "pulse_redis_memory_max_bytes",
    "The maxmemory limit (INFO maxmemory); 0 means no limit.",
    &["source"],
);
pub(super) const CONNECTED_CLIENTS: Metric = Metric::gauge(
    "pulse_redis_connected_clients",
    "Client connections (INFO connected_clients).",
    &["source"],
);
pub(super) const BLOCKED_CLIENTS: Metric = Metric::gauge(
    "pulse_redis_blocked_clients",
    "Clients blocked in BLPOP and the like (INFO blocked_clients).",
    &["source"],
);
pub(super) const EVICTED_KEYS: Metric = Metric::counter(
    "pulse_redis_evicted_keys_total",
    "Keys evicted because of maxmemory (INFO evicted_keys).",
    &["source"],
);
pub(super) const REJECTED_CONNECTIONS: Metric = Metric::counter(
    "pulse_redis_rejected_connections_total",
    "Connections refused because of maxclients (INFO rejected_connections).",
    &["source"],
);
pub(super) const MAXMEMORY_POLICY: Metric = Metric::gauge(
    "pulse_redis_maxmemory_policy",
    "Always 1; the eviction policy at maxmemory (INFO maxmemory_policy) as the policy label.",
    &["source", "policy"],
);

/// INFO fields published as numbers, and their metrics.
const INFO_FIELDS: [(&str, Metric); 6] = [
    ("used_memory", MEMORY_USED),
    ("maxmemory", MEMORY_MAX),
    ("connected_clients", CONNECTED_CLIENTS),
    ("blocked_clients", BLOCKED_CLIENTS),
    ("evicted_keys", EVICTED_KEYS),
    ("rejected_connections", REJECTED_CONNECTIONS),
];

impl Probe for HealthProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let ping: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
            if let Err(e) = ping {
                // The connection manager reconnects when the socket drops, but not after a
                // reply it cannot parse (a proxy or another protocol answering): it would
                // return that parse error forever. A failed PING starts a fresh connection.
                self.conn.reset().await;
                return Err(classify(e));
            }
            let info: String = redis::cmd("INFO")
                .query_async(&mut conn)
                .await
                .map_err(classify)?;
            let fields: HashMap<&str, &str> =
                info.lines().filter_map(|l| l.split_once(':')).collect();
            let mut out = Output::default();
            let source = self.source.as_str();
            for (field, metric) in &INFO_FIELDS {
                // A field this server version lacks is skipped, not an error.
                if let Some(v) = fields.get(field).and_then(|v| v.trim().parse::<f64>().ok()) {
                    out.add(metric, &[source], v);
                }
            }
            // What happens at maxmemory decides which memory alert applies: `noeviction`
            // rejects writes, the others evict keys (a queue or heartbeat lost). One of a
            // handful of fixed names, so a bounded label.
            if let Some(policy) = fields.get("maxmemory_policy").map(|p| p.trim()) {
                if crate::config::names::is_object_name(policy) {
                    out.add(&MAXMEMORY_POLICY, &[source, policy], 1.0);
                }
            }
            Ok(out)
        })
    }
}
