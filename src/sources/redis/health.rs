//! The Redis health probe: PING, then INFO fields as vital statistics (memory, clients,
//! replication, persistence, keyspace, commands refused for memory), the eviction policy, the
//! replication IDs (a split brain shows as two masters of one history), the cluster state
//! where cluster mode is on (`CLUSTER INFO`), and whether RDB snapshots are configured
//! (`CONFIG GET save`, skipped where CONFIG is not allowed).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::client::{classify, Conn};
use crate::series::metric::Metric;
use crate::series::sample::{unix_now, Output};
use crate::sources::{RunFuture, Runnable, StartTime};

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) conn: Arc<Conn>,
    pub(super) start: StartTime,
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

pub(super) const OOM_ERRORS: Metric = Metric::counter(
    "pulse_redis_oom_errors_total",
    "Commands refused because used memory reached maxmemory (INFO errorstats errorstat_OOM).",
    &["source"],
)
.doc("Commands Redis refused with `OOM` because memory reached `maxmemory` under `noeviction` (or nothing was left to evict): writes lost, such as jobs not queued. From INFO errorstats (Redis 6.2+; 0 until the first); absent on older servers.");
pub(super) const REPLICATION_IDS: Metric = Metric::gauge(
    "pulse_redis_replication_ids",
    "Always 1; the server's replication ID (replid) and the one it took over at its last promotion (replid2).",
    &["source", "replid", "replid2"],
)
.doc("Always 1; INFO `master_replid` as `replid`, and `master_replid2` as `replid2`: the history a promoted replica took over (all zeros if none). A master whose `replid2` is another master's `replid` was promoted while its old master still accepts writes: a split brain (PulseRedisSplitBrain).");
pub(super) const CLUSTER_STATE_OK: Metric = Metric::gauge(
    "pulse_redis_cluster_state_ok",
    "With cluster mode on: 1 while CLUSTER INFO cluster_state is ok, 0 while it is fail.",
    &["source"],
)
.doc("With cluster mode on: 1 while `CLUSTER INFO` says `cluster_state:ok`, 0 while `fail` (the node refuses queries: slots unassigned or their masters unreachable); absent without cluster mode.");
pub(super) const CLUSTER_SLOTS: Metric = Metric::gauge(
    "pulse_redis_cluster_slots",
    "With cluster mode on: hash slots by state (assigned, ok, pfail, fail) from CLUSTER INFO.",
    &["source", "state"],
)
.doc("With cluster mode on: the 16384 hash slots by `state`: `assigned`, `ok`, `pfail` (a master suspected down), `fail`.");

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

impl Runnable for HealthProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
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
            // Cluster mode only: a plain server answers CLUSTER with an error.
            let cluster: Option<String> = match info.contains("cluster_enabled:1") {
                true => Some(
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query_async(&mut conn)
                        .await
                        .map_err(classify)?,
                ),
                false => None,
            };
            let mut out = vitals(&self.source, &info, save, unix_now(), &self.start);
            if let Some(cluster) = cluster {
                cluster_vitals(&mut out, &self.source, &cluster);
            }
            Ok(out)
        })
    }
}

/// The samples of an INFO reply (and of `CONFIG GET save`'s value, when readable) at `now`,
/// the start time settled by `start`. A field this server version lacks is skipped, never an
/// error.
fn vitals(source: &str, info: &str, save: Option<&str>, now: f64, start: &StartTime) -> Output {
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
        if crate::config_core::names::is_object_name(policy) {
            out.add(&MAXMEMORY_POLICY, &[source, policy], 1.0);
        }
    }
    if let Some(up) = number("uptime_in_seconds") {
        out.add(&START_TIME, s, start.settle((now - up).floor()));
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
    // Only counted where the server keeps error statistics (`total_error_replies`, 6.2+), and
    // then from 0: Redis lists an error kind once it happened.
    if fields.contains_key("total_error_replies") {
        let oom = fields
            .get("errorstat_OOM")
            .and_then(|v| v.strip_prefix("count="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        out.add(&OOM_ERRORS, s, oom);
    }
    if let (Some(id), Some(id2)) = (fields.get("master_replid"), fields.get("master_replid2")) {
        let hex = |v: &str| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
        if hex(id) && hex(id2) {
            out.add(&REPLICATION_IDS, &[source, id, id2], 1.0);
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

/// The cluster state and slots of a `CLUSTER INFO` reply.
fn cluster_vitals(out: &mut Output, source: &str, reply: &str) {
    let fields: HashMap<&str, &str> = reply
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    if let Some(state) = fields.get("cluster_state") {
        out.add(
            &CLUSTER_STATE_OK,
            &[source],
            f64::from(u8::from(*state == "ok")),
        );
    }
    for state in ["assigned", "ok", "pfail", "fail"] {
        if let Some(n) = fields
            .get(format!("cluster_slots_{state}").as_str())
            .and_then(|v| v.parse::<f64>().ok())
        {
            out.add(&CLUSTER_SLOTS, &[source, state], n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\n\
        # Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\nblocked_clients:0\r\n\
        # Memory\r\nused_memory:1000\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:1.52\r\n\
        # Persistence\r\nrdb_changes_since_last_save:7\r\nrdb_last_save_time:1700000000\r\nrdb_last_bgsave_status:err\r\naof_enabled:0\r\naof_last_write_status:ok\r\n\
        # Stats\r\nkeyspace_hits:40\r\nkeyspace_misses:2\r\nevicted_keys:0\r\nrejected_connections:1\r\ntotal_error_replies:4\r\n\
        # Replication\r\nrole:master\r\nconnected_slaves:1\r\n";

    #[test]
    fn a_master_reports_persistence_and_its_replicas() {
        let out = vitals(
            "cache",
            MASTER,
            Some("3600 1 300 100"),
            2000.5,
            &StartTime::default(),
        );
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
        // Error statistics kept, no OOM yet: 0, so that the first one is an increase.
        assert_eq!(out.value("pulse_redis_oom_errors_total", ""), Some(0.0));
        // AOF is off: its write status says nothing, and a master has no master link.
        assert_eq!(out.value("pulse_redis_aof_last_write_success", ""), None);
        assert_eq!(out.value("pulse_redis_master_link_up", ""), None);
    }

    #[test]
    fn a_replica_reports_its_link_and_unknowns_stay_absent() {
        let info = "role:slave\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\n\
            aof_enabled:1\r\naof_last_write_status:err\r\nrdb_last_bgsave_status:ok\r\n";
        let out = vitals("replica", info, None, 2000.0, &StartTime::default());
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
            &StartTime::default(),
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

    #[test]
    fn refused_writes_ids_and_the_cluster_state_are_read() {
        let info = "role:master\r\nmaster_replid:aa11\r\nmaster_replid2:bb22\r\n\
            total_error_replies:9\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_OOM:count=7\r\n";
        let out = vitals("q", info, None, 0.0, &StartTime::default());
        assert_eq!(out.value("pulse_redis_oom_errors_total", ""), Some(7.0));
        assert_eq!(out.value("pulse_redis_replication_ids", "bb22"), Some(1.0));
        // A server without error statistics (before 6.2) says nothing about refused writes,
        // and an ID that is not hex is not made a label.
        let old = vitals(
            "q",
            "role:master\r\nmaster_replid:x y\r\nmaster_replid2:0\r\n",
            None,
            0.0,
            &StartTime::default(),
        );
        assert_eq!(old.value("pulse_redis_oom_errors_total", ""), None);
        assert!(!old
            .families
            .iter()
            .any(|f| f.name == "pulse_redis_replication_ids"));
        let mut out = Output::default();
        cluster_vitals(
            &mut out,
            "q",
            "cluster_state:fail\r\ncluster_slots_assigned:16000\r\ncluster_slots_ok:15000\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:1000\r\n",
        );
        assert_eq!(out.value("pulse_redis_cluster_state_ok", ""), Some(0.0));
        assert_eq!(out.value("pulse_redis_cluster_slots", "fail"), Some(1000.0));
    }
}
