//! Degraded, not down: replication and persistence signals against real servers this test
//! starts and owns (a Postgres primary with a streaming standby, a Redis master with a
//! replica, a Redis whose snapshots fail), each on a free port on 127.0.0.1 and stopped, with
//! its files removed, however the test ends. Costs about 10 s: initdb and pg_basebackup
//! dominate.

mod common;

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

#[tokio::test]
async fn a_standby_shows_role_lag_and_slot_and_its_stopped_slot_retains_wal() {
    let tmp = postgres_owned_tempdir();
    let primary_dir = tmp.path().join("primary");
    PgCluster::init(&primary_dir);
    let primary = PgCluster::start(primary_dir, free_port());
    let standby_dir = tmp.path().join("standby");
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
                &standby_dir.display().to_string(),
                "-C",
                "-S",
                "pulse_standby",
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        ),
        "pg_basebackup",
    );
    let standby = PgCluster::start(standby_dir, free_port());
    let config = format!(
        r#"
sources:
  - name: primary
    kind: postgres
    url: {}
    interval: 500ms
  - name: standby
    kind: postgres
    url: {}
    interval: 500ms
"#,
        primary.url(),
        standby.url()
    );
    let e = InProcess::start(&config);
    let p = [("source", "primary")];
    let s = [("source", "standby")];
    let slot = [("source", "primary"), ("slot", "pulse_standby")];
    let m = e
        .wait_for("the standby streaming", Duration::from_secs(30), |m| {
            m.get("pulse_postgres_streaming_standbys", &p) == Some(1.0)
                && m.get("pulse_postgres_wal_receiver_streaming", &s) == Some(1.0)
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
    assert_eq!(standby_lag.len(), 1, "one standby seen from the primary");
    assert!(standby_lag[0].value >= 0.0);
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
                    && m.get("pulse_postgres_streaming_standbys", &p) == Some(0.0)
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
