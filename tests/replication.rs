//! Degraded, not down: replication and persistence signals against real servers this test
//! starts and owns (a Postgres primary with twin streaming standbys, a Redis master with a
//! replica, a Redis whose snapshots fail, a Redis full under noeviction, servers that close
//! idle connections), each on a free port on 127.0.0.1 and stopped, with
//! its files removed, however the test ends. Costs about 12 s: initdb and two pg_basebackups
//! dominate.

use pulse_test_support as common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

async fn psql(url: &str, sql: &str) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

/// `pg_basebackup -R` of `primary` into `dir`, creating and streaming from `slot`.
fn basebackup(primary: &PgCluster, dir: &Path, slot: &str) {
    run_ok(
        &mut as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &dir.display().to_string(),
                "-C",
                "-S",
                slot,
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        ),
        "pg_basebackup",
    );
}

#[tokio::test]
async fn twin_standbys_show_role_lag_and_slot_and_a_stopped_slot_retains_wal() {
    let tmp = postgres_owned_tempdir();
    let primary_dir = tmp.path().join("primary");
    PgCluster::init(&primary_dir);
    // Limits set apart from their defaults, so the published ones are read, not assumed.
    let primary = PgCluster::start_with(
        primary_dir,
        free_port(),
        "-c max_connections=20 -c superuser_reserved_connections=5 \
         -c max_locks_per_transaction=32 -c max_worker_processes=8 -c autovacuum_max_workers=3",
    );
    // Two standbys as `pg_basebackup -R` makes them: both connect as `walreceiver`, from the
    // same address; only their slots tell them apart.
    let standby_dir = tmp.path().join("standby");
    basebackup(&primary, &standby_dir, "pulse_standby");
    let twin_dir = tmp.path().join("twin");
    basebackup(&primary, &twin_dir, "pulse_twin");
    let standby = PgCluster::start(standby_dir, free_port());
    let _twin = PgCluster::start(twin_dir, free_port());
    let config = format!(
        r#"
sources:
  - name: primary
    kind: postgres
    url: {}
    health_interval: 1s
    health_timeout: 800ms
    slot_wal_limit: 64MiB
  - name: standby
    kind: postgres
    url: {}
    health_interval: 1s
    health_timeout: 800ms
"#,
        primary.url(),
        standby.url()
    );
    let e = InProcess::start(&config);
    let p = [("source", "primary")];
    let s = [("source", "standby")];
    let slot = [("source", "primary"), ("slot", "pulse_standby")];
    let m = e
        .wait_for("both standbys streaming", Duration::from_secs(30), |m| {
            m.get("pulse_postgres_streaming_standbys", &p) == Some(2.0)
                && m.get("pulse_postgres_wal_receiver_streaming", &s) == Some(1.0)
                // A standby that has just connected has sent no reply yet: its replay_lsn
                // (and so its lag) is NULL, and absent, until its first status message.
                && m.find("pulse_postgres_standby_replay_lag_bytes", &p).len() == 2
                // Twins are told apart by their slots, known once each walsender holds one.
                && m.sum("pulse_postgres_replication_slot_active", &p) == 2.0
        })
        .await;
    assert_eq!(m.get("pulse_postgres_in_recovery", &p), Some(0.0));
    assert_eq!(m.get("pulse_postgres_in_recovery", &s), Some(1.0));
    for metric in [
        "pulse_postgres_replication_lag_seconds",
        "pulse_postgres_replication_lag_bytes",
    ] {
        let lag = m.get(metric, &s);
        assert!(
            lag.is_some_and(|v| v >= 0.0),
            "{metric} on the standby: {lag:?}"
        );
        assert_eq!(m.get(metric, &p), None, "{metric} is a standby's number");
    }
    let standby_lag = m.find("pulse_postgres_standby_replay_lag_bytes", &p);
    let mut names: Vec<&str> = standby_lag
        .iter()
        .map(|s| s.labels["standby"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "walreceiver@127.0.0.1/pulse_standby",
            "walreceiver@127.0.0.1/pulse_twin"
        ],
        "each twin standby has its own lag series"
    );
    assert!(standby_lag.iter().all(|s| s.value >= 0.0));
    // The limits the alerts divide by: the configured slot limit (the server sets none),
    // the reserved connection slots and the lock table's size, as the server reports them.
    assert_eq!(
        m.get("pulse_postgres_replication_slot_wal_limit_bytes", &p),
        Some(64.0 * 1024.0 * 1024.0)
    );
    assert_eq!(m.get("pulse_postgres_reserved_connections", &p), Some(5.0));
    // 32 locks for each of 20 connections, 3 autovacuum workers and their launcher, 8
    // background workers and 4 WAL senders.
    assert_eq!(
        m.get("pulse_postgres_lock_table_slots", &p),
        Some(32.0 * 36.0)
    );
    assert!(m
        .find("pulse_postgres_locks", &p)
        .iter()
        .all(|s| s.value >= 0.0));
    assert_eq!(
        m.get("pulse_postgres_replication_slot_active", &slot),
        Some(1.0)
    );
    assert!(m
        .get("pulse_postgres_start_timestamp_seconds", &s)
        .is_some_and(|t| t > 1.0e9));

    // The standby stops: the primary shows no streaming standby, an inactive slot, and WAL
    // that the slot keeps growing as the primary writes on.
    standby.stop();
    psql(
        &primary.url(),
        "CREATE TABLE filler AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g; \
         SELECT pg_switch_wal();",
    )
    .await;
    let m = e
        .wait_for(
            "an inactive slot retaining WAL",
            Duration::from_secs(30),
            |m| {
                m.get("pulse_postgres_replication_slot_active", &slot) == Some(0.0)
                    && m.get("pulse_postgres_streaming_standbys", &p) == Some(1.0)
            },
        )
        .await;
    let retained = m
        .get("pulse_postgres_replication_slot_retained_wal_bytes", &slot)
        .unwrap();
    assert!(
        retained > 1_000_000.0,
        "the slot retains the WAL written since the standby stopped: {retained} bytes"
    );
    assert_eq!(m.get("pulse_source_up", &p), Some(1.0));
    e.wait_for("the stopped standby down", Duration::from_secs(15), |m| {
        m.get("pulse_source_up", &s) == Some(0.0)
    })
    .await;
}

/// A `redis-server` this test owns: continued (if paused) and stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(dir: &Path, extra: &[&str]) -> RedisServer {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &dir.display().to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        let server = RedisServer { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        run_ok(
            Command::new("kill").args([sig, &self.child.id().to_string()]),
            &format!("kill {sig} redis-server"),
        );
    }

    async fn cmd(&self, name: &str) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd(name).query_async(&mut c).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server would not act on SIGTERM: continue it first.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_replica_shows_its_link_and_the_link_goes_down_when_the_master_pauses() {
    let tmp = tempfile::tempdir().unwrap();
    let master = RedisServer::start(
        &tmp.path().join("master"),
        &["--repl-ping-replica-period", "1"],
    );
    let replica = RedisServer::start(
        &tmp.path().join("replica"),
        &[
            "--replicaof",
            "127.0.0.1",
            &master.port.to_string(),
            "--repl-timeout",
            "3",
        ],
    );
    let config = format!(
        r#"
sources:
  - name: master
    kind: redis
    url: {}
    interval: 500ms
    timeout: 400ms
  - name: replica
    kind: redis
    url: {}
    interval: 500ms
    timeout: 400ms
"#,
        master.url(),
        replica.url()
    );
    let e = InProcess::start(&config);
    let ms = [("source", "master")];
    let rs = [("source", "replica")];
    let m = e
        .wait_for("the replica linked", Duration::from_secs(20), |m| {
            m.get("pulse_redis_master_link_up", &rs) == Some(1.0)
                && m.get("pulse_redis_connected_replicas", &ms) == Some(1.0)
        })
        .await;
    assert_eq!(m.get("pulse_redis_replica", &ms), Some(0.0));
    assert_eq!(m.get("pulse_redis_replica", &rs), Some(1.0));
    // A replica shares its master's replication ID: what PulseRedisSplitBrain compares.
    let ids = |s: &[(&str, &str)]| {
        let found = m.find("pulse_redis_replication_ids", s);
        assert_eq!(found.len(), 1, "{s:?}");
        found[0].labels["replid"].clone()
    };
    let master_id = ids(&ms);
    assert_eq!(master_id.len(), 40, "a replication ID: {master_id}");
    assert_eq!(ids(&rs), master_id);
    assert_eq!(m.get("pulse_redis_master_link_up", &ms), None);
    let last_io = m
        .get("pulse_redis_master_last_io_timestamp_seconds", &rs)
        .unwrap();
    assert!(
        (last_io - now_secs() as f64).abs() < 10.0,
        "the last I/O with the master is recent: {last_io}"
    );

    // The master hangs (paused, its port open): the replica's link times out and says so,
    // and the master's own probe fails.
    master.signal("-STOP");
    let m = e
        .wait_for("the replica's link down", Duration::from_secs(20), |m| {
            m.get("pulse_redis_master_link_up", &rs) == Some(0.0)
        })
        .await;
    assert_eq!(
        m.get("pulse_source_up", &rs),
        Some(1.0),
        "the replica answers"
    );
    let m = e
        .wait_for("the paused master down", Duration::from_secs(10), |m| {
            m.get("pulse_source_up", &ms) == Some(0.0)
        })
        .await;
    assert_eq!(m.get("pulse_redis_master_link_up", &rs), Some(0.0));
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_written_shows_the_save_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = RedisServer::start(&data, &[]);
    let config = format!(
        r#"
sources:
  - name: store
    kind: redis
    url: {}
    interval: 500ms
"#,
        server.url()
    );
    let e = InProcess::start(&config);
    let s = [("source", "store")];
    let m = e
        .wait_for("a first probe", Duration::from_secs(10), |m| {
            m.get("pulse_redis_rdb_last_bgsave_success", &s).is_some()
        })
        .await;
    assert_eq!(m.get("pulse_redis_rdb_last_bgsave_success", &s), Some(1.0));
    assert_eq!(
        m.get("pulse_redis_rdb_snapshots_configured", &s),
        Some(0.0),
        "started with --save \"\""
    );
    // The server's folder disappears under it: the snapshot child cannot create its file.
    std::fs::remove_dir_all(&data).unwrap();
    server.cmd("BGSAVE").await.unwrap();
    let m = e
        .wait_for("the failed save", Duration::from_secs(20), |m| {
            m.get("pulse_redis_rdb_last_bgsave_success", &s) == Some(0.0)
        })
        .await;
    assert_eq!(m.get("pulse_source_up", &s), Some(1.0));
}

#[tokio::test]
async fn a_full_noeviction_redis_counts_the_writes_it_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let server = RedisServer::start(
        tmp.path(),
        &["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"],
    );
    let config = format!(
        "sources:\n  - {{ name: jobs, kind: redis, url: '{}', health_interval: 1s, health_timeout: 800ms }}\n",
        server.url()
    );
    let e = InProcess::start(&config);
    let s = [("source", "jobs")];
    e.wait_for("no refusal yet", Duration::from_secs(10), |m| {
        m.get("pulse_redis_oom_errors_total", &s) == Some(0.0)
    })
    .await;
    // Jobs pushed until the server refuses them.
    let mut c = redis_at(&server.url()).await.unwrap();
    let job = "x".repeat(64 * 1024);
    let mut refused = 0;
    for _ in 0..200 {
        let pushed: redis::RedisResult<i64> = redis::cmd("RPUSH")
            .arg("queue")
            .arg(&job)
            .query_async(&mut c)
            .await;
        if pushed.is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "2 MB hold fewer than 200 jobs of 64 KiB");
    let m = e
        .wait_for("the refusals counted", Duration::from_secs(10), |m| {
            m.get("pulse_redis_oom_errors_total", &s) == Some(refused as f64)
        })
        .await;
    assert_eq!(m.get("pulse_source_up", &s), Some(1.0), "reads still work");
}

/// Probes `samples` times (or more) with a `probe` interval and asserts none failed: the
/// server closes idle connections between probes, and that is no failure.
async fn no_failure_across_idle_closes(e: &InProcess, source: &str, samples: f64) {
    let s = [("source", source)];
    let m = e
        .wait_for("probes across idle closes", Duration::from_secs(90), |m| {
            m.sum("pulse_source_probes_total", &s) >= samples
        })
        .await;
    assert_eq!(
        m.sum("pulse_source_probe_failures_total", &s),
        0.0,
        "{source}: a healthy server that closes idle connections is not down"
    );
    assert_eq!(m.sum("pulse_check_failures_total", &s), 0.0, "{source}");
    assert_eq!(m.get("pulse_source_up", &s), Some(1.0));
}

#[tokio::test]
async fn servers_that_close_idle_connections_stay_up() {
    // Redis with `timeout 1` and Postgres with idle_session_timeout, as managed services and
    // proxies close idle clients: each probe, 3 s apart, finds its saved connection closed,
    // and has 2.5 s (a busy machine's reconnect is no idle close).
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &["--timeout", "1"]);
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {}
    interval: 3s
    health_interval: 3s
    health_timeout: 2500ms
    timeout: 2500ms
    checks:
      - {{ metric: app_keys, command: [DBSIZE] }}
  - name: db
    kind: postgres
    url: "{PG_URL}?options=-c%20idle_session_timeout%3D500"
    interval: 3s
    health_interval: 3s
    health_timeout: 2500ms
    timeout: 2500ms
    # The sampler reads every second on the probe's connection, keeping it from idling,
    # and its 800 ms budget is no part of what is tested.
    statements: false
    tables: false
    load: false
    checks:
      - {{ metric: app_one, sql: 'SELECT 1 AS value' }}
"#,
        redis.url()
    );
    let e = InProcess::start(&config);
    no_failure_across_idle_closes(&e, "cache", 5.0).await;
    no_failure_across_idle_closes(&e, "db", 5.0).await;
}
