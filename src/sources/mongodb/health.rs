//! The MongoDB health probe: `ping` for reachability, then `serverStatus` (connections,
//! operations, cursors, start time, the latency of operations by kind and the collection
//! scans of the query executor), `replSetGetStatus` (each member's state and health,
//! whether a primary exists, each secondary's lag) and, on a replica set, the oplog's window
//! (its first and last entries, read in natural order). A user without the `clusterMonitor` role,
//! a standalone server or a wire server that knows neither command publishes what it can and
//! is still up.

use std::sync::Arc;

use mongodb::bson::{self, Bson, Document};
use tokio::time::Instant;

use super::client::{classify, Shared};
use super::decode::number;
use crate::series::metric::Metric;
use crate::series::sample::{unix_now, Output};
use crate::sources::{RunFuture, Runnable, StartTime};

pub(super) const CONNECTIONS: Metric = Metric::gauge(
    "pulse_mongodb_connections",
    "Connections to the server: current, and still available.",
    &["source", "state"],
)
.doc("`current` connections and connections still `available`.");
pub(super) const OPERATIONS: Metric = Metric::counter(
    "pulse_mongodb_operations_total",
    "Operations since the server started, by type (serverStatus opcounters).",
    &["source", "op"],
)
.doc("Operations since the server started, by type (`insert`, `query`, `update`, `delete`, `getmore`, `command`).");
pub(super) const START_TIME: Metric = Metric::gauge(
    "pulse_mongodb_start_timestamp_seconds",
    "When the server started (now minus serverStatus uptime).",
    &["source"],
)
.doc("When the server started (now minus `uptime`).");
pub(super) const CURSORS_OPEN: Metric = Metric::gauge(
    "pulse_mongodb_cursors_open",
    "Cursors open on the server (serverStatus metrics.cursor.open.total).",
    &["source"],
)
.doc("Open cursors (`metrics.cursor.open.total`).");
pub(super) const CURSORS_TIMED_OUT: Metric = Metric::counter(
    "pulse_mongodb_cursors_timed_out_total",
    "Cursors the server closed because they timed out (serverStatus metrics.cursor.timedOut).",
    &["source"],
)
.doc("Cursors closed by the server's timeout (`metrics.cursor.timedOut`).");
pub(super) const HAS_PRIMARY: Metric = Metric::gauge(
    "pulse_mongodb_replset_has_primary",
    "1 while the replica set has a primary (replSetGetStatus), 0 while it has none.",
    &["source", "set"],
)
.doc("From `replSetGetStatus`: 1 while a member is primary, 0 while none is.");
pub(super) const MEMBER_STATE: Metric = Metric::gauge(
    "pulse_mongodb_replset_member_state",
    "Replica set state of each member as the server sees it: 1 primary, 2 secondary, 7 arbiter, 0 startup, 3 recovering, 5 startup2, 6 unknown, 8 down, 9 rollback, 10 removed.",
    &["source", "set", "member"],
)
.doc("Each member's state number: 1 primary, 2 secondary, 7 arbiter; 0 startup, 3 recovering, 5 startup2, 6 unknown, 8 down, 9 rollback, 10 removed.");
pub(super) const MEMBER_HEALTH: Metric = Metric::gauge(
    "pulse_mongodb_replset_member_health",
    "1 if the member is reachable and up as the server sees it, 0 if not (replSetGetStatus health).",
    &["source", "set", "member"],
)
.doc("1 if the member is up as the server sees it, 0 if not.");
pub(super) const MEMBER_LAG: Metric = Metric::gauge(
    "pulse_mongodb_replset_member_lag_seconds",
    "How far each secondary's last applied operation is behind the primary's (optimeDate); absent without a primary.",
    &["source", "set", "member"],
)
.doc("Per secondary: the primary's `optimeDate` minus its own; absent while there is no primary.");

pub(super) const OP_LATENCY: Metric = Metric::counter(
    "pulse_mongodb_op_latency_seconds_total",
    "Time operations of each kind took since the server started (serverStatus opLatencies latency).",
    &["source", "op"],
)
.doc("Time operations took since the server started, by kind (`reads`, `writes`, `commands`, `transactions`; `serverStatus` `opLatencies`): over `pulse_mongodb_op_latency_operations_total`, the mean latency of each kind.");
pub(super) const OP_LATENCY_OPS: Metric = Metric::counter(
    "pulse_mongodb_op_latency_operations_total",
    "Operations of each kind counted in opLatencies since the server started.",
    &["source", "op"],
)
.doc("Operations by kind counted in `opLatencies` (`ops`).");
pub(super) const SCANNED_KEYS: Metric = Metric::counter(
    "pulse_mongodb_query_scanned_keys_total",
    "Index keys queries examined (serverStatus metrics.queryExecutor.scanned).",
    &["source"],
)
.doc("Index keys examined by queries (`metrics.queryExecutor.scanned`).");
pub(super) const SCANNED_DOCUMENTS: Metric = Metric::counter(
    "pulse_mongodb_query_scanned_documents_total",
    "Documents queries examined (serverStatus metrics.queryExecutor.scannedObjects).",
    &["source"],
)
.doc("Documents examined by queries (`metrics.queryExecutor.scannedObjects`): far above the documents returned, queries without a fitting index.");
pub(super) const COLLECTION_SCANS: Metric = Metric::counter(
    "pulse_mongodb_collection_scans_total",
    "Queries that read a whole collection (serverStatus metrics.queryExecutor.collectionScans).",
    &["source", "tailable"],
)
.doc("Queries that read a whole collection (`metrics.queryExecutor.collectionScans`, MongoDB 4.4+): `tailable=\"false\"` the non-tailable ones (a `findAllUsers` without an index), `tailable=\"true\"` tailable cursors on capped collections (the oplog), which scan by design.");

pub(super) const OPLOG_WINDOW: Metric = Metric::gauge(
    "pulse_mongodb_oplog_window_seconds",
    "Time between the first and the last entry of the oplog (local.oplog.rs): how long a secondary may fall behind and still catch up.",
    &["source"],
)
.doc("On a replica set: the time between the oldest and the newest entry of the oplog (`local.oplog.rs`, as the primary has it where one is reachable). A secondary further behind than this cannot catch up and needs a full resync; minus the lag, it is the replication headroom. Needs read access to `local`; absent on a standalone server.");

/// Members published per replica set: MongoDB allows 50.
const MAX_MEMBERS: usize = 50;

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) shared: Arc<Shared>,
    pub(super) start: StartTime,
}

impl Runnable for HealthProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let admin = client.database("admin");
            admin
                .run_command(bson::doc! { "ping": 1 })
                .await
                .map_err(|e| classify(&e))?;
            let mut out = Output::default();
            let source = self.source.as_str();
            // Both need the clusterMonitor role; replSetGetStatus fails on a standalone
            // server (NoReplicationEnabled). Either way the source is up, with fewer numbers.
            let mut replicated = false;
            for (command, read) in [
                (
                    "serverStatus",
                    server_status as fn(&mut Output, &str, &Document, f64),
                ),
                ("replSetGetStatus", replica_set),
            ] {
                match admin.run_command(bson::doc! { command: 1 }).await {
                    Ok(doc) => {
                        replicated |= command == "replSetGetStatus";
                        read(&mut out, source, &doc, unix_now());
                    }
                    Err(e) => {
                        tracing::debug!(source, command, error = %crate::secrets::scrub(&e.to_string()), "command unavailable")
                    }
                }
            }
            out.map_values(START_TIME.name, |t| self.start.settle(t));
            if replicated {
                match oplog_ends(client).await {
                    Ok(Some((first, last))) => {
                        if let Some(window) = oplog_window(&first, &last) {
                            out.add(&OPLOG_WINDOW, &[source], window);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(source, error = %crate::secrets::scrub(&e.to_string()), "oplog unreadable")
                    }
                }
            }
            Ok(out)
        })
    }
}

/// The first and the last entry of the oplog, in natural (insertion) order: two index-free
/// reads at the ends of a capped collection, whatever its size. Read from the primary where
/// one is reachable: its window is what the secondaries must stay within.
async fn oplog_ends(
    client: &mongodb::Client,
) -> Result<Option<(Document, Document)>, mongodb::error::Error> {
    use mongodb::options::{ReadPreference, SelectionCriteria};
    let oplog = client.database("local").collection::<Document>("oplog.rs");
    let primary =
        SelectionCriteria::ReadPreference(ReadPreference::PrimaryPreferred { options: None });
    let end = |direction: i32| {
        oplog
            .find_one(bson::doc! {})
            .sort(bson::doc! { "$natural": direction })
            .projection(bson::doc! { "ts": 1, "_id": 0 })
            .max_time(std::time::Duration::from_secs(2))
            .selection_criteria(primary.clone())
    };
    let (Some(first), Some(last)) = (end(1).await?, end(-1).await?) else {
        return Ok(None);
    };
    Ok(Some((first, last)))
}

/// Seconds between the `ts` of the oldest and the newest oplog entry.
fn oplog_window(first: &Document, last: &Document) -> Option<f64> {
    let ts = |d: &Document| match d.get("ts") {
        Some(Bson::Timestamp(t)) => Some(f64::from(t.time)),
        _ => None,
    };
    Some((ts(last)? - ts(first)?).max(0.0))
}

/// Connections, operation counters, cursors and the start time from a `serverStatus` reply.
fn server_status(out: &mut Output, source: &str, status: &Document, now: f64) {
    if let Ok(conns) = status.get_document("connections") {
        for state in ["current", "available"] {
            if let Some(v) = number(conns.get(state)) {
                out.add(&CONNECTIONS, &[source, state], v);
            }
        }
    }
    if let Ok(ops) = status.get_document("opcounters") {
        for (op, v) in ops {
            if let Some(v) = number(Some(v)) {
                out.add(&OPERATIONS, &[source, op], v);
            }
        }
    }
    if let Ok(cursor) = status
        .get_document("metrics")
        .and_then(|m| m.get_document("cursor"))
    {
        if let Some(v) = number(
            cursor
                .get_document("open")
                .ok()
                .and_then(|o| o.get("total")),
        ) {
            out.add(&CURSORS_OPEN, &[source], v);
        }
        if let Some(v) = number(cursor.get("timedOut")) {
            out.add(&CURSORS_TIMED_OUT, &[source], v);
        }
    }
    if let Some(up) = number(status.get("uptime")) {
        out.add(&START_TIME, &[source], (now - up).floor());
    }
    if let Ok(latencies) = status.get_document("opLatencies") {
        for (op, stats) in latencies {
            let Some(stats) = stats.as_document() else {
                continue;
            };
            if let (Some(micros), Some(ops)) =
                (number(stats.get("latency")), number(stats.get("ops")))
            {
                out.add(&OP_LATENCY, &[source, op], micros / 1e6);
                out.add(&OP_LATENCY_OPS, &[source, op], ops);
            }
        }
    }
    if let Ok(executor) = status
        .get_document("metrics")
        .and_then(|m| m.get_document("queryExecutor"))
    {
        if let Some(v) = number(executor.get("scanned")) {
            out.add(&SCANNED_KEYS, &[source], v);
        }
        if let Some(v) = number(executor.get("scannedObjects")) {
            out.add(&SCANNED_DOCUMENTS, &[source], v);
        }
        // `total` counts the tailable ones too: those are the difference.
        if let Ok(scans) = executor.get_document("collectionScans") {
            let (total, plain) = (number(scans.get("total")), number(scans.get("nonTailable")));
            if let (Some(total), Some(plain)) = (total, plain) {
                out.add(&COLLECTION_SCANS, &[source, "false"], plain);
                out.add(
                    &COLLECTION_SCANS,
                    &[source, "true"],
                    (total - plain).max(0.0),
                );
            }
        }
    }
}

/// Member states, health, the primary and each secondary's lag from a `replSetGetStatus`
/// reply. Lag is measured against the primary's optime, so a set without a primary has none.
fn replica_set(out: &mut Output, source: &str, status: &Document, _now: f64) {
    let Ok(set) = status.get_str("set") else {
        return;
    };
    let Ok(members) = status.get_array("members") else {
        return;
    };
    let members: Vec<&Document> = members
        .iter()
        .filter_map(Bson::as_document)
        .take(MAX_MEMBERS)
        .collect();
    let optime = |m: &Document| match m.get("optimeDate") {
        Some(Bson::DateTime(d)) => Some(d.timestamp_millis() as f64 / 1000.0),
        _ => None,
    };
    let primary = members
        .iter()
        .find(|m| number(m.get("state")) == Some(1.0))
        .copied();
    out.add(
        &HAS_PRIMARY,
        &[source, set],
        f64::from(u8::from(primary.is_some())),
    );
    let primary_optime = primary.and_then(optime);
    for m in members {
        let Ok(name) = m.get_str("name") else {
            continue;
        };
        let state = number(m.get("state"));
        if let Some(v) = state {
            out.add(&MEMBER_STATE, &[source, set, name], v);
        }
        if let Some(v) = number(m.get("health")) {
            out.add(&MEMBER_HEALTH, &[source, set, name], v);
        }
        if state == Some(2.0) {
            if let (Some(p), Some(me)) = (primary_optime, optime(m)) {
                out.add(&MEMBER_LAG, &[source, set, name], (p - me).max(0.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, DateTime};

    use super::*;

    fn fixture(version: &str, file: &str) -> Document {
        match super::super::fixture(version, file) {
            Bson::Document(d) => d,
            other => panic!("{version}/{file}: {other:?}"),
        }
    }

    /// The latency and scans MongoDB 7.0 and 8.0 report in serverStatus: time and operations
    /// by kind (8.0's extra queryable encryption field aside), scanned keys and documents, and
    /// collection scans with the tailable ones apart.
    #[test]
    fn op_latencies_and_collection_scans_of_mongodb_7_and_8() {
        for version in ["7.0", "8.0"] {
            let mut out = Output::default();
            server_status(
                &mut out,
                "db",
                &fixture(version, "primary/serverStatus.json"),
                1_795_658_400.0,
            );
            let v = |name: &str, label: &str| out.value(name, label);
            assert_eq!(v(OP_LATENCY.name, "reads"), Some(12.345678), "{version}");
            assert_eq!(v(OP_LATENCY_OPS.name, "reads"), Some(4321.0), "{version}");
            assert_eq!(
                v(OP_LATENCY_OPS.name, "transactions"),
                Some(0.0),
                "{version}"
            );
            let kinds = out
                .families
                .iter()
                .find(|f| f.name == OP_LATENCY.name)
                .unwrap()
                .samples
                .len();
            assert_eq!(kinds, 4, "{version}: reads, writes, commands, transactions");
            assert_eq!(v(SCANNED_KEYS.name, ""), Some(1.5e6));
            assert_eq!(v(SCANNED_DOCUMENTS.name, ""), Some(8.6e7));
            assert_eq!(v(COLLECTION_SCANS.name, "false"), Some(430.0));
            assert_eq!(v(COLLECTION_SCANS.name, "true"), Some(7.0));
        }
        // A server that reports none of them (nx-27017, before 4.4) publishes none.
        let mut out = Output::default();
        server_status(&mut out, "db", &doc! { "uptime": 5.0 }, 100.0);
        assert!(out.value(OP_LATENCY.name, "").is_none());
        assert!(out.value(COLLECTION_SCANS.name, "").is_none());
    }

    /// MongoDB 7.0 and 8.0, primary and secondary: every number the exporter reads is there
    /// with its type (an int64 counter, a double uptime), the secondary's lag is its optime's
    /// distance from the primary's, the down member is unhealthy with no lag, and the oplog
    /// window spans its entries. 8.0's added fields change nothing.
    #[test]
    fn mongodb_7_and_8_replies_publish_every_vital() {
        for version in ["7.0", "8.0"] {
            let mut out = Output::default();
            let now = 1_795_658_400.0;
            server_status(
                &mut out,
                "db",
                &fixture(version, "primary/serverStatus.json"),
                now,
            );
            replica_set(
                &mut out,
                "db",
                &fixture(version, "primary/replSetGetStatus.json"),
                now,
            );
            let v = |name: &str, label: &str| out.value(name, label);
            assert_eq!(
                v("pulse_mongodb_connections", "current"),
                Some(87.0),
                "{version}"
            );
            assert!(v("pulse_mongodb_connections", "available").is_some());
            assert!(
                v("pulse_mongodb_operations_total", "query").is_some(),
                "{version}"
            );
            assert_eq!(v("pulse_mongodb_cursors_open", ""), Some(3.0));
            assert_eq!(v("pulse_mongodb_cursors_timed_out_total", ""), Some(4.0));
            assert_eq!(
                v("pulse_mongodb_start_timestamp_seconds", ""),
                Some(now - 1_728_000.0)
            );
            assert_eq!(v("pulse_mongodb_replset_has_primary", ""), Some(1.0));
            assert_eq!(
                v(
                    "pulse_mongodb_replset_member_lag_seconds",
                    "db-1.example.net:27017"
                ),
                Some(95.0),
                "{version}"
            );
            assert_eq!(
                v(
                    "pulse_mongodb_replset_member_health",
                    "db-2.example.net:27017"
                ),
                Some(0.0)
            );
            assert_eq!(
                v(
                    "pulse_mongodb_replset_member_lag_seconds",
                    "db-2.example.net:27017"
                ),
                None
            );
            let window = oplog_window(
                &fixture(version, "oplog-first.json"),
                &fixture(version, "oplog-last.json"),
            );
            assert_eq!(window, Some(259_200.0), "{version}");
            // A secondary counts replicated writes apart (opcountersRepl): its own are 0, not
            // absent, as the server says.
            let mut out = Output::default();
            server_status(
                &mut out,
                "db",
                &fixture(version, "secondary/serverStatus.json"),
                now,
            );
            assert_eq!(
                out.value("pulse_mongodb_operations_total", "insert"),
                Some(0.0),
                "{version}"
            );
        }
    }

    /// A `replSetGetStatus` reply shaped as MongoDB documents it: a primary, a secondary 90 s
    /// behind, an arbiter (no optime) and a member that is down.
    fn status(primary_state: i32) -> Document {
        let t = DateTime::from_millis(1_700_000_090_000);
        doc! {
            "set": "rs0", "date": t, "myState": 2, "ok": 1.0,
            "members": [
                { "_id": 0, "name": "db-0:27017", "health": 1.0, "state": primary_state,
                  "stateStr": "PRIMARY", "optimeDate": t, "self": false },
                { "_id": 1, "name": "db-1:27017", "health": 1.0, "state": 2,
                  "stateStr": "SECONDARY", "optimeDate": DateTime::from_millis(1_700_000_000_000), "self": true },
                { "_id": 2, "name": "arb:27017", "health": 1.0, "state": 7, "stateStr": "ARBITER" },
                { "_id": 3, "name": "db-3:27017", "health": 0.0, "state": 8,
                  "stateStr": "(not reachable/healthy)", "optimeDate": DateTime::from_millis(0) },
            ]
        }
    }

    #[test]
    fn a_replica_set_reports_states_health_primary_and_lag() {
        let mut out = Output::default();
        replica_set(&mut out, "users-db", &status(1), 0.0);
        assert_eq!(
            out.value("pulse_mongodb_replset_has_primary", ""),
            Some(1.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_state", "arb:27017"),
            Some(7.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_state", "db-3:27017"),
            Some(8.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_health", "db-3:27017"),
            Some(0.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_lag_seconds", "db-1:27017"),
            Some(90.0)
        );
        // Lag only for secondaries: the down member's ancient optime is no lag.
        assert_eq!(
            out.value("pulse_mongodb_replset_member_lag_seconds", "db-3:27017"),
            None
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_lag_seconds", "db-0:27017"),
            None
        );
    }

    #[test]
    fn without_a_primary_there_is_no_lag_and_the_set_says_so() {
        let mut out = Output::default();
        // The old primary stepped down to recovering (3): nobody is primary.
        replica_set(&mut out, "users-db", &status(3), 0.0);
        assert_eq!(
            out.value("pulse_mongodb_replset_has_primary", ""),
            Some(0.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_lag_seconds", ""),
            None
        );
        assert_eq!(
            out.value("pulse_mongodb_replset_member_state", "db-0:27017"),
            Some(3.0)
        );
    }

    #[test]
    fn a_standalone_reply_publishes_nothing_and_server_status_reads_cursors() {
        let mut out = Output::default();
        replica_set(
            &mut out,
            "db",
            &doc! { "ok": 0.0, "errmsg": "not running with --replSet", "code": 76 },
            0.0,
        );
        assert!(out.families.is_empty());
        let ss = doc! {
            "uptime": 100.0,
            "connections": { "current": 5, "available": 95 },
            "metrics": { "cursor": { "timedOut": 4_i64, "open": { "total": 2_i64 } } },
        };
        server_status(&mut out, "db", &ss, 1000.5);
        assert_eq!(out.value("pulse_mongodb_cursors_open", ""), Some(2.0));
        assert_eq!(
            out.value("pulse_mongodb_cursors_timed_out_total", ""),
            Some(4.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_start_timestamp_seconds", ""),
            Some(900.0)
        );
        assert_eq!(
            out.value("pulse_mongodb_connections", "available"),
            Some(95.0)
        );
    }

    #[test]
    fn the_oplog_window_is_the_time_between_its_ends() {
        let entry = |time: u32| doc! { "ts": bson::Timestamp { time, increment: 3 } };
        assert_eq!(
            oplog_window(&entry(1_700_000_000), &entry(1_700_086_400)),
            Some(86_400.0)
        );
        // An entry without a timestamp says nothing.
        assert_eq!(oplog_window(&doc! { "ts": 5 }, &entry(10)), None);
    }
}
