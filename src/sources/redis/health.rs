//! The Redis health probe: PING, then INFO fields as vital statistics (memory, clients,
//! replication, persistence, keyspace), the eviction policy, and whether RDB snapshots are
//! configured (`CONFIG GET save`, skipped where CONFIG is not allowed).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::{classify, Conn};
use crate::sample::{unix_now, Metric, Output};
use crate::sources::{Probe, ProbeFuture};

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) conn: Arc<Conn>,
}

pub(super) const MEMORY_USED: Metric = Metric::gauge(
    "pulse_redis_memory_used_bytes",
    "Memory Redis has allocated (INFO used_memory).",
    &["source"],
)
.doc("INFO `used_memory`.");
pub(super) const MEMORY_MAX: Metric = Metric::gauge(
    "pulse_redis_memory_max_bytes",
    "The maxmemory limit (INFO maxmemory); 0 means no limit.",
    &["source"],
)
.doc("INFO `maxmemory`; 0 means no limit.");
pub(super) const FRAGMENTATION: Metric = Metric::gauge(
    "pulse_redis_memory_fragmentation_ratio",
    "Memory the process holds over memory Redis allocated (INFO mem_fragmentation_ratio).",
    &["source"],
)
.doc("INFO `mem_fragmentation_ratio`: memory the process holds over memory Redis allocated.");
pub(super) const CONNECTED_CLIENTS: Metric = Metric::gauge(
    "pulse_redis_connected_clients",
    "Client connections (INFO connected_clients).",
    &["source"],
)
.doc("INFO `connected_clients`.");
pub(super) const MAX_CLIENTS: Metric = Metric::gauge(
    "pulse_redis_max_clients",
    "The maxclients limit (INFO maxclients).",
    &["source"],
)
.doc("INFO `maxclients`.");
pub(super) const BLOCKED_CLIENTS: Metric = Metric::gauge(
    "pulse_redis_blocked_clients",
    "Clients blocked in BLPOP and the like (INFO blocked_clients).",
    &["source"],
)
.doc("INFO `blocked_clients`.");
pub(super) const EVICTED_KEYS: Metric = Metric::counter(
    "pulse_redis_evicted_keys_total",
    "Keys evicted because of maxmemory (INFO evicted_keys).",
    &["source"],
)
.doc("INFO `evicted_keys`.");
pub(super) const REJECTED_CONNECTIONS: Metric = Metric::counter(
    "pulse_redis_rejected_connections_total",
    "Connections refused because of maxclients (INFO rejected_connections).",
    &["source"],
)
.doc("INFO `rejected_connections`.");
pub(super) const KEYSPACE_HITS: Metric = Metric::counter(
    "pulse_redis_keyspace_hits_total",
    "Key lookups that found the key (INFO keyspace_hits).",
    &["source"],
)
.doc("INFO `keyspace_hits`.");
pub(super) const KEYSPACE_MISSES: Metric = Metric::counter(
    "pulse_redis_keyspace_misses_total",
    "Key lookups that did not find the key (INFO keyspace_misses).",
    &["source"],
)
.doc("INFO `keyspace_misses`.");
pub(super) const MAXMEMORY_POLICY: Metric = Metric::gauge(
    "pulse_redis_maxmemory_policy",
    "Always 1; the eviction policy at maxmemory (INFO maxmemory_policy) as the policy label.",
    &["source", "policy"],
)
.doc("Always 1; INFO `maxmemory_policy` (`noeviction`, `allkeys-lru`, …): what Redis does at maxmemory.");
pub(super) const START_TIME: Metric = Metric::gauge(
    "pulse_redis_start_timestamp_seconds",
    "When the server started (now minus INFO uptime_in_seconds).",
    &["source"],
)
.doc("When the server started (now minus INFO `uptime_in_seconds`).");
pub(super) const REPLICA: Metric = Metric::gauge(
    "pulse_redis_replica",
    "1 on a replica (INFO role:slave), 0 on a master.",
    &["source"],
)
.doc("1 on a replica (INFO `role:slave`), 0 on a master.");
pub(super) const CONNECTED_REPLICAS: Metric = Metric::gauge(
    "pulse_redis_connected_replicas",
    "Replicas connected to this server (INFO connected_slaves).",
    &["source"],
)
.doc("INFO `connected_slaves`.");
pub(super) const MASTER_LINK_UP: Metric = Metric::gauge(
    "pulse_redis_master_link_up",
    "On a replica: 1 while its link to the master is up (INFO master_link_status), else 0.",
    &["source"],
)
.doc("On a replica: 1 while INFO `master_link_status` is `up`, else 0.");
pub(super) const MASTER_LAST_IO: Metric = Metric::gauge(
    "pulse_redis_master_last_io_timestamp_seconds",
    "On a replica: when it last heard from its master (now minus INFO master_last_io_seconds_ago).",
    &["source"],
)
.doc("On a replica: when it last heard from its master (now minus INFO `master_last_io_seconds_ago`); absent while the link is down.");
pub(super) const RDB_LAST_BGSAVE_SUCCESS: Metric = Metric::gauge(
    "pulse_redis_rdb_last_bgsave_success",
    "1 if the last RDB background save succeeded (INFO rdb_last_bgsave_status:ok), 0 if it failed.",
    &["source"],
)
.doc("1 if INFO `rdb_last_bgsave_status` is `ok`, 0 if `err` (with `stop-writes-on-bgsave-error`, every write then fails).");
pub(super) const RDB_LAST_SAVE: Metric = Metric::gauge(
    "pulse_redis_rdb_last_save_timestamp_seconds",
    "When the last RDB save succeeded (INFO rdb_last_save_time; the start time if none did).",
    &["source"],
)
.doc("INFO `rdb_last_save_time`: the last successful RDB save (the start time if none).");
pub(super) const RDB_CHANGES: Metric = Metric::gauge(
    "pulse_redis_rdb_changes_since_last_save",
    "Writes since the last RDB save (INFO rdb_changes_since_last_save).",
    &["source"],
)
.doc("INFO `rdb_changes_since_last_save`.");
pub(super) const RDB_CONFIGURED: Metric = Metric::gauge(
    "pulse_redis_rdb_snapshots_configured",
    "1 if RDB snapshots are scheduled (CONFIG GET save is not empty), 0 if not; absent where CONFIG is not allowed.",
    &["source"],
)
.doc("1 if `CONFIG GET save` is not empty, 0 if it is; absent where CONFIG is refused (managed services, ACLs).");
pub(super) const AOF_LAST_WRITE_SUCCESS: Metric = Metric::gauge(
    "pulse_redis_aof_last_write_success",
    "With AOF enabled: 1 if the last append-only file write succeeded (INFO aof_last_write_status:ok), 0 if it failed.",
    &["source"],
)
.doc("With AOF on: 1 if INFO `aof_last_write_status` is `ok`, 0 if `err`.");

/// INFO fields published as they are, and their metrics.
const INFO_FIELDS: [(&str, Metric); 12] = [
    ("used_memory", MEMORY_USED),
    ("maxmemory", MEMORY_MAX),
    ("mem_fragmentation_ratio", FRAGMENTATION),
    ("connected_clients", CONNECTED_CLIENTS),
    ("maxclients", MAX_CLIENTS),
    ("blocked_clients", BLOCKED_CLIENTS),
    ("evicted_keys", EVICTED_KEYS),
    ("rejected_connections", REJECTED_CONNECTIONS),
    ("keyspace_hits", KEYSPACE_HITS),
    ("keyspace_misses", KEYSPACE_MISSES),
    ("connected_slaves", CONNECTED_REPLICAS),
    ("rdb_changes_since_last_save", RDB_CHANGES),
];

/// INFO fields that read `ok` or `err`, published as 1 or 0.
const STATUS_FIELDS: [(&str, Metric); 1] = [("rdb_last_bgsave_status", RDB_LAST_BGSAVE_SUCCESS)];

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
            // Managed services (ElastiCache, Memorystore) and ACLs often refuse CONFIG: then
            // whether snapshots are scheduled is unknown, and absent.
            let save: Option<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("save")
                .query_async(&mut conn)
                .await
                .ok();
            let save = save.as_ref().and_then(|v| v.get(1)).map(String::as_str);
            Ok(vitals(&self.source, &info, save, unix_now()))
        })
    }
}

/// The samples of an INFO reply (and of `CONFIG GET save`'s value, when readable) at `now`.
/// A field this server version lacks is skipped, never an error.
fn vitals(source: &str, info: &str, save: Option<&str>, now: f64) -> Output {
    let fields: HashMap<&str, &str> = info
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let number = |f: &str| fields.get(f).and_then(|v| v.parse::<f64>().ok());
    let mut out = Output::default();
    let s = &[source];
    for (field, metric) in &INFO_FIELDS {
        if let Some(v) = number(field) {
            out.add(metric, s, v);
        }
    }
    for (field, metric) in &STATUS_FIELDS {
        if let Some(v) = fields.get(field) {
            out.add(metric, s, f64::from(u8::from(*v == "ok")));
        }
    }
    // What happens at maxmemory decides which memory alert applies: `noeviction` rejects
    // writes, the others evict keys (a queue or heartbeat lost). One of a handful of fixed
    // names, so a bounded label.
    if let Some(policy) = fields.get("maxmemory_policy") {
        if crate::config::names::is_object_name(policy) {
            out.add(&MAXMEMORY_POLICY, &[source, policy], 1.0);
        }
    }
    if let Some(up) = number("uptime_in_seconds") {
        out.add(&START_TIME, s, (now - up).floor());
    }
    if let Some(t) = number("rdb_last_save_time") {
        out.add(&RDB_LAST_SAVE, s, t);
    }
    if let Some(save) = save {
        out.add(
            &RDB_CONFIGURED,
            s,
            f64::from(u8::from(!save.trim().is_empty())),
        );
    }
    // AOF write status only means something while AOF is on.
    if number("aof_enabled") == Some(1.0) {
        if let Some(v) = fields.get("aof_last_write_status") {
            out.add(&AOF_LAST_WRITE_SUCCESS, s, f64::from(u8::from(*v == "ok")));
        }
    }
    let replica = match fields.get("role") {
        Some(&"slave") => true,
        Some(&"master") => false,
        _ => return out,
    };
    out.add(&REPLICA, s, f64::from(u8::from(replica)));
    if replica {
        if let Some(link) = fields.get("master_link_status") {
            out.add(&MASTER_LINK_UP, s, f64::from(u8::from(*link == "up")));
        }
        // -1 while the link is down: no time to report.
        if let Some(ago) = number("master_last_io_seconds_ago").filter(|a| *a >= 0.0) {
            out.add(&MASTER_LAST_IO, s, (now - ago).floor());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\n\
        # Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\nblocked_clients:0\r\n\
        # Memory\r\nused_memory:1000\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:1.52\r\n\
        # Persistence\r\nrdb_changes_since_last_save:7\r\nrdb_last_save_time:1700000000\r\nrdb_last_bgsave_status:err\r\naof_enabled:0\r\naof_last_write_status:ok\r\n\
        # Stats\r\nkeyspace_hits:40\r\nkeyspace_misses:2\r\nevicted_keys:0\r\nrejected_connections:1\r\n\
        # Replication\r\nrole:master\r\nconnected_slaves:1\r\n";

    #[test]
    fn a_master_reports_persistence_and_its_replicas() {
        let out = vitals("cache", MASTER, Some("3600 1 300 100"), 2000.5);
        assert_eq!(out.value("pulse_redis_replica", ""), Some(0.0));
        assert_eq!(out.value("pulse_redis_connected_replicas", ""), Some(1.0));
        assert_eq!(
            out.value("pulse_redis_rdb_last_bgsave_success", ""),
            Some(0.0)
        );
        assert_eq!(
            out.value("pulse_redis_rdb_changes_since_last_save", ""),
            Some(7.0)
        );
        assert_eq!(
            out.value("pulse_redis_rdb_last_save_timestamp_seconds", ""),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            out.value("pulse_redis_rdb_snapshots_configured", ""),
            Some(1.0)
        );
        assert_eq!(
            out.value("pulse_redis_start_timestamp_seconds", ""),
            Some(1900.0)
        );
        assert_eq!(
            out.value("pulse_redis_memory_fragmentation_ratio", ""),
            Some(1.52)
        );
        assert_eq!(
            out.value("pulse_redis_keyspace_misses_total", ""),
            Some(2.0)
        );
        // AOF is off: its write status says nothing, and a master has no master link.
        assert_eq!(out.value("pulse_redis_aof_last_write_success", ""), None);
        assert_eq!(out.value("pulse_redis_master_link_up", ""), None);
    }

    #[test]
    fn a_replica_reports_its_link_and_unknowns_stay_absent() {
        let info = "role:slave\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\n\
            aof_enabled:1\r\naof_last_write_status:err\r\nrdb_last_bgsave_status:ok\r\n";
        let out = vitals("replica", info, None, 2000.0);
        assert_eq!(out.value("pulse_redis_replica", ""), Some(1.0));
        assert_eq!(out.value("pulse_redis_master_link_up", ""), Some(0.0));
        assert_eq!(
            out.value("pulse_redis_master_last_io_timestamp_seconds", ""),
            None
        );
        assert_eq!(
            out.value("pulse_redis_aof_last_write_success", ""),
            Some(0.0)
        );
        assert_eq!(
            out.value("pulse_redis_rdb_last_bgsave_success", ""),
            Some(1.0)
        );
        // CONFIG refused: unknown, not "not configured".
        assert_eq!(out.value("pulse_redis_rdb_snapshots_configured", ""), None);
        let up = vitals(
            "replica",
            "role:slave\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:3\r\n",
            Some(""),
            2000.0,
        );
        assert_eq!(up.value("pulse_redis_master_link_up", ""), Some(1.0));
        assert_eq!(
            up.value("pulse_redis_master_last_io_timestamp_seconds", ""),
            Some(1997.0)
        );
        assert_eq!(
            up.value("pulse_redis_rdb_snapshots_configured", ""),
            Some(0.0)
        );
    }
}
