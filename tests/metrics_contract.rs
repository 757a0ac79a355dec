//! The metric tables (which docs/metrics.md is generated from) list exactly the built-in metrics
//! the binary emits, with their types, and a live scrape passes `promtool check metrics`.

use pulse_test_support as common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redis::AsyncCommands;

/// (name, type) of every built-in metric, from the tables docs/metrics.md is generated from.
fn documented() -> BTreeMap<String, String> {
    pulse_exporter::reference::metrics::all()
        .into_iter()
        .map(|m| {
            let kind = pulse_exporter::reference::metrics::type_name(m.kind);
            (m.name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// (name, type) of every `pulse_` family in a classic-format scrape.
fn emitted(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE pulse_"))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').unwrap();
            (format!("pulse_{name}"), kind.to_owned())
        })
        .collect()
}

/// The query kept running during the scrape; longer than the test's 30 s wait.
const SLEEP: &str = "SELECT pg_sleep(40)";

#[tokio::test]
async fn docs_list_exactly_what_the_binary_emits() {
    let pool = pg().await;
    // An open transaction, so the "oldest transaction" gauge has something to show.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    // A queue with traffic and a consumer, so rates and utilisation are reported.
    let vh = RabbitVhost::create().await;
    vh.declare("contract.jobs", serde_json::json!({})).await;
    vh.publish("contract.jobs", 3).await;
    let amqp = lapin::Connection::connect(&vh.amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            "contract.jobs".into(),
            "contract".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    // Acked, so the broker counts acknowledgements; a second queue keeps messages waiting
    // (with the timestamp property), so the head's timestamp is reported.
    let acker = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(d)) = consumer.next().await {
            let _ = d.ack(lapin::options::BasicAckOptions::default()).await;
        }
    });
    vh.declare("contract.waiting", serde_json::json!({})).await;
    vh.publish("contract.waiting", 2).await;
    let _ = mongo().await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("ai-events.log");
    std::fs::write(&log, "{\"status\": \"ok\"}\n").unwrap();
    let s3 = s3_client(&MOTO_URL, "test", "test").await;
    let bucket = unique("contract").replace('_', "-");
    s3.create_bucket(&bucket).await;
    s3.put(&bucket, "uploads/a", b"x".to_vec()).await;
    // Stripe has no local server: the Stripe-shaped fake, with an event in flight, one
    // stuck for an hour and one Stripe gave up on.
    let stripe = FakeStripe::start(&[]).await;
    let now = now_secs() as i64;
    stripe.add_event("", now - 60, "invoice.paid", 1);
    stripe.add_event("", now - 3600, "invoice.paid", 1);
    stripe.add_event("", now - 80 * 3600, "invoice.paid", 1);
    stripe.set_endpoints(
        "",
        vec![endpoint_json(
            "we_1",
            "https://hooks.example.com/stripe",
            "enabled",
        )],
    );
    let mut r = redis().await;
    let key = unique("contract");
    let _cleanup = Cleanup::default()
        .redis_keys(key.clone())
        .redis_keys(format!("{key}:*"));
    let _: () = r.rpush(&key, 1).await.unwrap();
    let beat = format!("{key}:hb:w1");
    // An hour old: down (past max_age) and still remembered (within forget_after).
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let _: () = r
        .set(&beat, format!(r#"{{"ts": {hour_ago}, "state": "idle"}}"#))
        .await
        .unwrap();
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms, timezone: Europe/Berlin }}
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - {{ metric: app_ok, sql: "SELECT 1 AS value", interval: 1s, timeout: 500ms }}
      - {{ metric: app_bad, sql: "SELECT 'x'::text AS value", interval: 1s, timeout: 500ms }}
      # A label value past 256 bytes, so the truncation counter is served.
      - {{ metric: app_long, sql: "SELECT repeat('x', 300) AS name, 1 AS value", labels: [name], interval: 1s, timeout: 500ms }}
  - name: cache
    kind: redis
    url: {REDIS_URL}
    keys: [{{ key: "{key}", interval: 1s, timeout: 500ms }}]
    heartbeats:
      - {{ pattern: "{key}:hb:*", pool: gpu, attributes: [state], forget_after: 24h, min_up: 1, interval: 1s, timeout: 500ms }}
  - name: broker
    kind: rabbitmq
    interval: 1s
    timeout: 800ms
    management_url: {RABBIT_API}
    username: guest
    password: guest
    vhosts: ["{vhost}"]
  - name: docs
    kind: mongodb
    url: {MONGO_URL}/contract
  - name: stripe
    kind: stripe
    api_key: {stripe_key}
    api_base: {stripe_uri}
    interval: 2s
    timeout: 1s
  - name: media
    kind: s3
    bucket: {bucket}
    region: us-east-1
    endpoint: {MOTO_URL}
    access_key_id: test
    secret_access_key: test
    interval: 2s
    timeout: 1s
    canary: {{}}
    prefixes: [{{ prefix: "uploads/" }}]
  - name: ai-logs
    kind: logfile
    path: {log}
    start_at: beginning
    interval: 1s
    timeout: 500ms
    counters: [{{ metric: app_ai_events_total, labels: {{ status: status }} }}]
jobs:
  - {{ name: contract, every: 1h, max_runtime: 1h, token: contract-token-0123456789 }}
"#,
        log = log.display(),
        stripe_uri = stripe.uri(),
        stripe_key = STRIPE_KEY,
        vhost = vh.name
    );
    // A query running while the exporter starts and is scraped, for the "oldest query"
    // gauge. Started last: the setup above may take longer than a short sleep (it once did).
    let sleeper = {
        let pool = pool.clone();
        tokio::spawn(async move { sqlx::query(SLEEP).execute(&pool).await })
    };
    // Each kind's metrics need a source of it: a new kind fails here, named, rather than in
    // the wait for its metrics below.
    let parsed = pulse_exporter::config::load_str(&config).unwrap();
    for kind in pulse_exporter::sources::registry::KINDS {
        assert!(
            parsed.sources.iter().any(|s| s.kind.name() == kind.name),
            "kind {} has no source in this test's config: add one that publishes its metrics",
            kind.name
        );
    }
    let e = Exporter::start(&config);
    // A job's runs: a success, a failure with its start (a duration, an exit code), and a
    // run in flight, so every pulse_job_* series is served.
    for path in [
        "/ping/contract/success?rid=s",
        "/ping/contract/start?rid=f",
        "/ping/contract/fail?rid=f&exit_code=2",
        "/ping/contract/start?rid=c",
    ] {
        let resp = reqwest::Client::new()
            .post(e.url(path))
            .bearer_auth("contract-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let mut docs = documented();
    // nx-27017, the MongoDB wire server of the test machine, has no serverStatus opcounters;
    // the metric is covered against a real mongod only (see docs/development.md).
    assert!(docs.remove("pulse_mongodb_operations_total").is_some());
    // Published only by a standby, a replica, a replica set, a Postgres 14+ lock wait, a
    // broker that dropped a message, a server with replication slots, a Redis cluster or
    // colliding checks: the local services are standalone primaries. The unit tests beside each health probe cover them.
    for only_when in [
        "pulse_postgres_replication_lag_seconds",
        "pulse_postgres_replication_lag_bytes",
        "pulse_postgres_wal_receiver_streaming",
        "pulse_postgres_standby_replay_lag_seconds",
        "pulse_postgres_standby_replay_lag_bytes",
        "pulse_postgres_replication_slot_active",
        "pulse_postgres_replication_slot_retained_wal_bytes",
        // A slot's WAL state (tests/matrix.rs has one invalidated on every version).
        "pulse_postgres_replication_slot_wal_status",
        "pulse_postgres_replication_slot_safe_wal_bytes",
        "pulse_postgres_replication_slot_invalidated",
        "pulse_postgres_oldest_lock_wait_start_timestamp_seconds",
        "pulse_redis_master_link_up",
        "pulse_redis_master_last_io_timestamp_seconds",
        "pulse_redis_aof_last_write_success",
        "pulse_mongodb_cursors_open",
        "pulse_mongodb_cursors_timed_out_total",
        "pulse_mongodb_replset_has_primary",
        "pulse_mongodb_replset_member_state",
        "pulse_mongodb_replset_member_health",
        "pulse_mongodb_replset_member_lag_seconds",
        "pulse_rabbitmq_unroutable_messages_total",
        // A Khepri broker (RabbitMQ 4.2 on; the local one is 3.10): tests/matrix.rs reads it
        // on a 4.3 cluster.
        "pulse_rabbitmq_metadata_store_quorum",
        // A stream with a consumer over the stream protocol (the local broker runs no stream
        // plugin): tests/matrix.rs reads it on every version.
        "pulse_rabbitmq_stream_consumer_lag_messages",
        // Cluster mode, a replica set's oplog, and two checks publishing one series (which
        // tests/redis.rs provokes).
        "pulse_redis_cluster_state_ok",
        "pulse_redis_cluster_slots",
        "pulse_mongodb_oplog_window_seconds",
        "pulse_series_collisions",
        // Served over TLS only: tests/http.rs reads it from an exporter serving HTTPS. (The
        // source's certificate expiry is published here: Debian's Postgres serves TLS with
        // its own snakeoil certificate, and the default `sslmode=prefer` uses it.)
        "pulse_web_tls_certificate_expiry_timestamp_seconds",
        // Served at /probe?template=…&target=… only, never at /metrics: tests/leases.rs
        // reads it from a leased target's answer.
        "pulse_probe_warming",
        // The query latency checks: pg_stat_statements is not loaded in the local Postgres
        // (pulse_postgres_statements_available reads 0 here), a window of tables takes a
        // minute, only a slow command makes a slow log entry, and nx-27017 has neither
        // opLatencies, queryExecutor, $collStats, $currentOp nor a profiler. tests/latency.rs
        // reads them from servers that have them; the MongoDB shapes are unit-tested on the
        // fixtures of MongoDB 7.0 and 8.0.
        "pulse_postgres_statements_window_seconds",
        "pulse_postgres_statements_max_entries",
        "pulse_postgres_statements_deallocations_total",
        "pulse_postgres_statement_window_calls",
        "pulse_postgres_statement_window_exec_seconds",
        "pulse_postgres_statement_window_mean_exec_seconds",
        "pulse_postgres_statement_window_rows",
        "pulse_postgres_statement_window_shared_read_bytes",
        "pulse_postgres_statement_window_shared_hit_bytes",
        "pulse_postgres_statement_window_block_read_seconds",
        "pulse_postgres_statement_info",
        // Plans, from a statements read where the extension is loaded (tests/latency.rs,
        // which also changes one by dropping an index).
        "pulse_postgres_statement_plan_info",
        "pulse_postgres_statement_plan_seq_scan",
        "pulse_postgres_statement_plan_changes_total",
        "pulse_postgres_statement_plans_explained_total",
        "pulse_postgres_statement_plans_skipped_total",
        "pulse_postgres_tables_window_seconds",
        "pulse_postgres_table_window_seq_rows_read",
        "pulse_postgres_table_window_seq_scans",
        "pulse_postgres_table_window_index_scans",
        "pulse_postgres_table_live_rows",
        "pulse_postgres_table_dead_rows",
        "pulse_postgres_table_last_vacuum_timestamp_seconds",
        "pulse_postgres_table_last_analyze_timestamp_seconds",
        "pulse_redis_slowlog_slowest_seconds",
        "pulse_mongodb_op_latency_seconds_total",
        "pulse_mongodb_op_latency_operations_total",
        "pulse_mongodb_query_scanned_keys_total",
        "pulse_mongodb_query_scanned_documents_total",
        "pulse_mongodb_collection_scans_total",
        "pulse_mongodb_collection_latency_seconds",
        "pulse_mongodb_oldest_operation_start_timestamp_seconds",
        "pulse_mongodb_query_shape_window_seconds",
        "pulse_mongodb_query_shape_window_calls",
        "pulse_mongodb_query_shape_window_docs_examined",
        "pulse_mongodb_profile_window_seconds",
        // MongoDB load (`load: true`): nx-27017 has no $currentOp (tests/mongodb.rs sees the
        // check not measured); the documented 7.0 and 8.0 shapes are unit-tested.
        "pulse_mongodb_load_active_seconds_total",
        "pulse_mongodb_load_samples_total",
        "pulse_mongodb_load_samples_capped_total",
        "pulse_mongodb_load_lock_waiting_operations",
        "pulse_mongodb_load_lock_waiting_longest_seconds",
        // Database load: sessions idle in a transaction or blocked exist only while a
        // workload makes them, the running statements only without pg_stat_statements and
        // while one runs, the CPUs only where `load.cpus` is set; tests/load.rs and
        // tests/postgres.rs read them with such a workload.
        "pulse_postgres_running_statement_seconds",
        "pulse_postgres_load_cpus",
        "pulse_postgres_idle_in_transaction_sessions",
        "pulse_postgres_idle_in_transaction_oldest_seconds",
        "pulse_postgres_blocker_waiting_sessions",
        "pulse_postgres_blocker_direct_waiting_sessions",
        "pulse_postgres_blocker_longest_wait_seconds",
    ] {
        assert!(docs.remove(only_when).is_some(), "{only_when}");
    }
    assert!(
        docs.len() > 20,
        "parsed too few rows from docs/metrics.md: {docs:?}"
    );
    let m = e
        .wait_for("every documented metric", Duration::from_secs(30), |m| {
            let got = emitted(&m.text);
            docs.keys().all(|k| got.contains_key(k))
        })
        .await;
    let mut got = emitted(&m.text);
    // Those above may appear all the same (a test elsewhere left a slot or a lock wait).
    got.retain(|name, _| docs.contains_key(name) || !documented().contains_key(name));
    assert_eq!(
        got, docs,
        "docs/metrics.md and the scrape disagree (names or types)"
    );

    promtool_check(&m.text);
    tx.rollback().await.unwrap();
    sleeper.abort();
    // Dropping the task leaves the query sleeping on the server: cancel it there.
    sqlx::query("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = $1")
        .bind(SLEEP)
        .execute(&pool)
        .await
        .unwrap();
    acker.abort();
    let _ = amqp.close(200, "bye".into()).await;
    vh.delete().await;
}

/// Runs `promtool check metrics` on `text`; without promtool, fails under CI and says so locally.
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").is_err(),
                "promtool is required in CI (scripts/test installs it): {e}"
            );
            eprintln!("promtool not found; skipping the exposition lint outside CI");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
