//! The version matrix: one compatibility test per kind, run against every server version
//! `scripts/servers fetch` put beside Debian's own (Postgres 15 to 18, Redis 7.0, 7.4 and 8.2,
//! Valkey 8 and 9, Prometheus 2.42 and 3.5, RabbitMQ 3.10, 4.0 and 4.3: `matrix/rabbitmq.rs`),
//! each version on its own thread. Every version
//! must publish the same families as the oldest (a number a new version stopped giving is a
//! failure, not a gap), report what only it knows (a lost replication slot, `HSCAN NOVALUES`),
//! and fail for the same reasons. `docs/compatibility.md` is checked against what ran.
//!
//! Costs about a minute: the versions run side by side, each initdb and server start a few
//! seconds.

use pulse_test_support as common;
#[path = "matrix/rabbitmq.rs"]
mod rabbitmq;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// Polls `done` for up to `secs` seconds, failing with `what` if it never comes true.
fn eventually(what: &str, secs: u64, done: impl Fn() -> bool) {
    assert!(
        poll(Duration::from_secs(secs), done),
        "timed out waiting for {what}"
    );
}

/// The families of `prefix` a scrape holds.
fn families(scrape: &Scrape, prefix: &str) -> BTreeSet<String> {
    scrape
        .series
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| s.name.clone())
        .collect()
}

/// A scrape of `exporter` once `ready` holds (30 s at most), from a runtime of this thread's.
fn scrape_when(exporter: &Exporter, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(exporter.wait_for(what, Duration::from_secs(45), ready))
}

/// What a version published, for comparing versions once all have run.
struct Seen {
    version: String,
    families: BTreeSet<String>,
}

/// Families whose presence depends on the moment, not on the version or the role: an active
/// query, a lock wait, a command the slow log caught, and what the statistics checks (`statements`, `tables`) have read so
/// far, which depends on how many of their windows have passed (tests/latency.rs runs them on
/// every version). Left out of the comparisons between versions and roles.
fn momentary(family: &str) -> bool {
    family.contains("oldest")
        || family.contains("lock_wait")
        || family.starts_with("pulse_postgres_statement")
        || family.starts_with("pulse_postgres_table")
        // What the load sampler saw in its last sample (sessions idle in a transaction, a
        // blocker, a statement running), or which statements it has seen active.
        || family.starts_with("pulse_postgres_idle_in_transaction")
        || (family.starts_with("pulse_postgres_blocker_")
            && family != "pulse_postgres_blocker_sessions_limit")
        || family == "pulse_postgres_running_statement_seconds"
        || family == "pulse_postgres_load_statement_active_seconds_total"
        // Only where a command was slower than the slow log's threshold in the window.
        || family.starts_with("pulse_redis_slowlog_slowest")
        // Postgres shows a standby's `replay_lag` as NULL after an idle spell until the
        // standby answers new WAL, so the series comes and goes with the moment (seen on 18
        // with the cores busy). It needs the privilege `replay_lag_bytes` does, still compared.
        || family == "pulse_postgres_standby_replay_lag_seconds"
}

/// Every Postgres version: a primary with a streaming standby (a cold copy: the fetched
/// servers ship no pg_basebackup) and two slots, one of which the server invalidates;
/// vitals read as superuser and as a `pg_monitor` role; a check; and the failure reasons of
/// a server that is down, a role that does not exist and a query that fails.
#[test]
fn postgres_versions() {
    let servers = servers("postgres");
    let seen = Mutex::new(Vec::new());
    each_version(&servers, |s| {
        let tmp = postgres_owned_tempdir();
        let primary_dir = tmp.path().join("primary");
        s.initdb(&primary_dir);
        let port = listen_port();
        // No WAL kept for slots past what the current segment needs: a slot whose consumer
        // is away for a few segments is invalidated at the next checkpoint.
        let options = ["max_slot_wal_keep_size=1MB", "wal_keep_size=0"];
        let mut primary = s.start_postgres(&primary_dir, port, &options);
        let version = psql_at(port, "SHOW server_version");
        assert!(
            version.starts_with(&s.version),
            "{} reports {version}, the manifest {}",
            s.name,
            s.version
        );
        psql_at(
            port,
            "SELECT pg_create_physical_replication_slot('standby_slot', true); \
             SELECT pg_create_physical_replication_slot('gone', true); \
             CREATE ROLE pulse_monitor LOGIN; GRANT pg_monitor TO pulse_monitor; \
             CREATE TABLE matrix_users (plan text); \
             INSERT INTO matrix_users VALUES ('free'), ('free'), ('pro')",
        );
        primary.stop();
        let standby_dir = tmp.path().join("standby");
        cold_copy_standby(&primary_dir, &standby_dir, port);
        let primary = s.start_postgres(&primary_dir, port, &options);
        let standby = s.start_postgres(&standby_dir, listen_port(), &[]);
        eventually("the standby to stream", 60, || {
            psql_at(
                port,
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            ) == "1"
        });
        lose_slot(port, "gone");

        let exporter = Exporter::start(&format!(
            r#"
global: {{ health_interval: 1s, health_timeout: 900ms, interval: 1s, timeout: 900ms }}
sources:
  - name: primary
    kind: postgres
    url: postgres://postgres@127.0.0.1:{port}/postgres
    checks:
      - metric: matrix_users
        help: Users by plan.
        sql: SELECT plan, count(*) AS value FROM matrix_users GROUP BY plan
        labels: [plan]
      - metric: matrix_broken
        help: A query that fails.
        sql: SELECT count(*) AS value FROM no_such_table
  - name: monitor
    kind: postgres
    url: postgres://pulse_monitor@127.0.0.1:{port}/postgres
  - name: standby
    kind: postgres
    url: postgres://postgres@127.0.0.1:{}/postgres
  - name: down
    kind: postgres
    url: postgres://postgres@127.0.0.1:{}/postgres
  - name: norole
    kind: postgres
    url: postgres://nobody@127.0.0.1:{port}/postgres
"#,
            standby.port,
            closed_port()
        ));
        let m = scrape_when(&exporter, "every source probed, the lost slot seen", |m| {
            m.get(
                "pulse_postgres_streaming_standbys",
                &[("source", "primary")],
            ) == Some(1.0)
                && m.get("pulse_postgres_in_recovery", &[("source", "standby")]) == Some(1.0)
                && m.get(
                    "pulse_postgres_replication_slot_invalidated",
                    &[("source", "primary"), ("slot", "gone")],
                ) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "monitor")]) == Some(1.0)
                // The load sampler's first sample may come after the first probe's (it
                // waits for the connection the probe holds): its families are compared.
                && ["primary", "monitor", "standby"].iter().all(|source| {
                    m.get("pulse_postgres_load_samples_total", &[("source", source)])
                        .is_some_and(|n| n >= 1.0)
                })
                && m.get("matrix_users", &[("plan", "free")]) == Some(2.0)
                && m.get("pulse_check_success", &[("check", "matrix_broken")])
                    .is_some()
                && m.probe_failed("down")
                && m.probe_failed("norole")
        });
        let slot = |name: &str, family: &str| {
            m.find(family, &[("source", "primary"), ("slot", name)])
                .iter()
                .filter(|s| s.value == 1.0)
                .map(|s| format!("{:?}", s.labels))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            m.get(
                "pulse_postgres_replication_slot_invalidated",
                &[
                    ("source", "primary"),
                    ("slot", "gone"),
                    ("reason", "wal_removed")
                ]
            ),
            Some(1.0),
            "{}",
            m.text
        );
        assert_eq!(
            slot("gone", "pulse_postgres_replication_slot_wal_status").len(),
            1,
            "exactly one wal_status state"
        );
        assert!(
            m.get(
                "pulse_postgres_replication_slot_wal_status",
                &[("source", "primary"), ("slot", "gone"), ("status", "lost")]
            ) == Some(1.0),
            "{}",
            m.text
        );
        assert_eq!(
            m.get(
                "pulse_postgres_replication_slot_invalidated",
                &[
                    ("source", "primary"),
                    ("slot", "standby_slot"),
                    ("reason", "")
                ]
            ),
            Some(0.0),
            "the standby's own slot is valid: {}",
            m.text
        );
        assert_eq!(
            m.get(
                "pulse_postgres_replication_slot_active",
                &[("source", "primary"), ("slot", "standby_slot")]
            ),
            Some(1.0)
        );
        assert_eq!(m.get("matrix_users", &[("plan", "free")]), Some(2.0));
        assert_eq!(
            m.get("pulse_check_success", &[("check", "matrix_broken")]),
            Some(0.0)
        );
        assert!(m.probe_failed_with("down", "connect"), "{}", m.text);
        assert!(m.probe_failed_with("norole", "auth"), "{}", m.text);
        // The pg_monitor role reads every vital the superuser does.
        let of = |source: &str| -> BTreeSet<String> {
            m.series
                .iter()
                .filter(|x| x.name.starts_with("pulse_postgres_") && !momentary(&x.name))
                .filter(|x| x.labels.get("source").map(String::as_str) == Some(source))
                .map(|x| x.name.clone())
                .collect()
        };
        let (superuser, monitor) = (of("primary"), of("monitor"));
        assert_eq!(
            superuser.difference(&monitor).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "read by the superuser and not by pg_monitor"
        );
        let mut families = of("primary");
        families.extend(of("standby").into_iter().map(|f| format!("standby: {f}")));
        seen.lock().unwrap().push(Seen {
            version: s.version.clone(),
            families,
        });
        drop(primary);
    });
    same_families_on_every_version("postgres", seen.into_inner().unwrap());
}

/// A standby of the stopped primary in `primary_dir`, by copying its folder (as root, keeping
/// the postgres user's ownership) and pointing it at the primary's `port` and slot.
fn cold_copy_standby(primary_dir: &Path, standby_dir: &Path, port: u16) {
    run_ok(
        Command::new("cp")
            .args(["-a"])
            .arg(primary_dir)
            .arg(standby_dir),
        "copy the primary's folder",
    );
    // A base backup carries no slots: the copy's are the primary's, and go.
    for slot in std::fs::read_dir(standby_dir.join("pg_replslot")).unwrap() {
        std::fs::remove_dir_all(slot.unwrap().path()).unwrap();
    }
    let conf = standby_dir.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
    text.push_str(&format!(
        "primary_conninfo = 'host=127.0.0.1 port={port} user=postgres application_name=standby'\n\
         primary_slot_name = 'standby_slot'\n"
    ));
    std::fs::write(&conf, text).unwrap();
    std::fs::write(standby_dir.join("standby.signal"), "").unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(standby_dir),
        "chown the standby",
    );
}

/// Moves the primary's WAL a few segments on, once the standby has everything, and
/// checkpoints: `slot` (which nothing reads) loses its WAL and the server invalidates it.
fn lose_slot(port: u16, slot: &str) {
    eventually(&format!("slot {slot} to be lost"), 60, || {
        for _ in 0..3 {
            psql_at(
                port,
                "CREATE TABLE IF NOT EXISTS wal_filler (n int); INSERT INTO wal_filler VALUES (1)",
            );
            psql_at(port, "SELECT pg_switch_wal()");
        }
        // The standby's slot must not fall behind with it: the checkpoint waits for it.
        eventually("the standby to replay everything", 30, || {
            psql_at(
                port,
                "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()",
            ) == "1"
        });
        psql_at(port, "CHECKPOINT");
        psql_at(
            port,
            &format!("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        ) == "lost"
    });
}

/// Every version published what the oldest did, and nothing the oldest did is missing from
/// a newer one (a newer one may add families: they are listed).
fn same_families_on_every_version(kind: &str, mut seen: Vec<Seen>) {
    seen.sort_by_key(|s| version_key(&s.version));
    let (oldest, newer) = seen.split_first().unwrap();
    for s in newer {
        let missing: Vec<&String> = oldest.families.difference(&s.families).collect();
        let added: Vec<&String> = s.families.difference(&oldest.families).collect();
        assert!(
            missing.is_empty() && added.is_empty(),
            "{kind} {} publishes other families than {}: missing {missing:?}, added {added:?}",
            s.version,
            oldest.version
        );
    }
}

/// `redis-cli -p port` with `args`, its output trimmed.
fn redis_cli(port: u16, args: &[&str]) -> String {
    run_ok(
        Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args),
        &format!("redis-cli {args:?}"),
    )
    .trim()
    .to_owned()
}

/// A field of `INFO` (`total_net_output_bytes`, say) as a number.
fn info_field(port: u16, section: &str, field: &str) -> f64 {
    redis_cli(port, &["INFO", section])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

/// Whether the server takes `HSCAN … NOVALUES` (Redis 7.4+, Valkey 8+): from its name and
/// version as the manifest gives them, so that the exporter's own detection is what is tested.
fn has_novalues(s: &Server) -> bool {
    let v = version_key(&s.version);
    match s.name.starts_with("valkey") {
        true => v >= vec![8],
        false => v >= vec![7, 4],
    }
}

/// A server started on a port another server already holds is never taken for that one: the
/// harness waits for the server answering to be its own, so the failure is named where it
/// happens (in CI, Valkey 8.0's case was answered by a Redis 8.2 a test beside it started on
/// the same port, and failed later as a wrong version).
#[test]
fn a_server_on_a_port_already_held_is_refused_not_mistaken() {
    let s = servers("redis")
        .into_iter()
        .next()
        .expect("a Redis in the matrix");
    let tmp = tempfile::tempdir().unwrap();
    let holder = s.start_redis(tmp.path(), &[]);
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.start_redis_on(tmp.path(), holder.port, &[])
    }));
    let message = match second {
        Ok(_) => panic!(
            "a second server on port {} was taken as started",
            holder.port
        ),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        message.contains(&format!("the server on port {} exited", holder.port)),
        "{message}"
    );
    assert_eq!(redis_cli(holder.port, &["PING"]), "PONG");
}

/// Every Redis and Valkey version: a primary with a replica; every vital; a key check over a
/// pattern (with a vector set where the server has them: skipped and counted); a heartbeat
/// hash holding one 2 MB value, which servers with `HSCAN NOVALUES` never send; and the
/// failure reasons of a server that is down and of a wrong password.
#[test]
fn redis_versions() {
    let servers = servers("redis");
    let seen = Mutex::new(Vec::new());
    each_version(&servers, |s| {
        let tmp = tempfile::tempdir().unwrap();
        let primary = s.start_redis(tmp.path(), &[]);
        let port = primary.port;
        let info = redis_cli(port, &["INFO", "server"]);
        // Valkey reports a Redis version for compatibility and its own beside it.
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let reported = field("valkey_version:")
            .or_else(|| field("redis_version:"))
            .unwrap_or_default();
        assert_eq!(reported, s.version, "{} reports {reported}", s.name);
        let replica = s.start_redis(tmp.path(), &["--replicaof", "127.0.0.1", &port.to_string()]);
        redis_cli(port, &["RPUSH", "matrix:q:jobs", "a", "b", "c"]);
        redis_cli(port, &["SADD", "matrix:q:set", "x"]);
        let vectors = redis_cli(port, &["COMMAND", "INFO", "VADD"]).contains("vadd");
        if vectors {
            redis_cli(
                port,
                &["VADD", "matrix:q:vec", "VALUES", "2", "0.1", "0.2", "item"],
            );
        }
        let now = now_secs().to_string();
        redis_cli(port, &["HSET", "matrix:beats", "w1", &now]);
        let big = tmp.path().join("big");
        std::fs::write(&big, "9".repeat(2 << 20)).unwrap();
        run_ok(
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "-x", "HSET", "matrix:beats", "big"])
                .stdin(std::fs::File::open(&big).unwrap()),
            "HSET a 2 MB field",
        );
        let sent_before = info_field(port, "stats", "total_net_output_bytes");

        let exporter = Exporter::start(&format!(
            r#"
global: {{ health_interval: 1s, health_timeout: 900ms, interval: 1s, timeout: 900ms }}
sources:
  - name: primary
    kind: redis
    url: redis://127.0.0.1:{port}
    keys:
      - pattern: "matrix:q:*"
        metric: matrix_queue_length
        label: queue
    heartbeats:
      - hash: matrix:beats
        pool: matrix
        max_age: 5m
  - name: replica
    kind: redis
    url: redis://127.0.0.1:{}
  - name: down
    kind: redis
    url: redis://127.0.0.1:{}
  - name: badpass
    kind: redis
    url: redis://nobody:wrong@127.0.0.1:{port}
"#,
            replica.port,
            closed_port()
        ));
        let m = scrape_when(
            &exporter,
            "every source probed, the heartbeats read twice",
            |m| {
                m.get("pulse_redis_master_link_up", &[("source", "replica")]) == Some(1.0)
                    && m.sum("pulse_check_success", &[("source", "primary")]) >= 2.0
                    && m.sum("pulse_source_probes_total", &[("source", "primary")]) >= 3.0
                    // The built-in latency check has read both servers' statistics.
                    && ["primary", "replica"].iter().all(|source| {
                        m.get(
                            "pulse_check_success",
                            &[("source", source), ("check", "latency")],
                        ) == Some(1.0)
                    })
                    && m.probe_failed("down")
                    && m.probe_failed("badpass")
            },
        );
        assert_eq!(
            m.get("matrix_queue_length", &[("queue", "matrix:q:jobs")]),
            Some(3.0),
            "{}",
            m.text
        );
        assert_eq!(
            m.get("matrix_queue_length", &[("queue", "matrix:q:set")]),
            Some(1.0)
        );
        assert_eq!(
            m.get("matrix_queue_length", &[("queue", "matrix:q:vec")]),
            None,
            "a vector set has no length we read"
        );
        if vectors {
            assert!(
                m.sum("pulse_check_values_skipped_total", &[("source", "primary")]) >= 1.0,
                "the vector set is skipped and counted: {}",
                m.text
            );
        }
        assert_eq!(
            m.get("pulse_redis_replica", &[("source", "replica")]),
            Some(1.0)
        );
        assert_eq!(
            m.get("pulse_redis_connected_replicas", &[("source", "primary")]),
            Some(1.0)
        );
        assert_eq!(
            m.get("pulse_worker_up", &[("pool", "matrix"), ("worker", "w1")]),
            Some(1.0),
            "{}",
            m.text
        );
        assert!(m.probe_failed_with("down", "connect"), "{}", m.text);
        assert!(m.probe_failed_with("badpass", "auth"), "{}", m.text);
        // The 2 MB value: sent once per heartbeat run by servers without NOVALUES, never by
        // the others (INFO and the rest add kilobytes, not megabytes).
        let sent = info_field(port, "stats", "total_net_output_bytes") - sent_before;
        match has_novalues(s) {
            true => assert!(
                sent < 1e6,
                "{} sent {sent} bytes: the big value crossed the wire",
                s.name
            ),
            false => assert!(
                sent > 2e6,
                "{} sent only {sent} bytes without NOVALUES",
                s.name
            ),
        }
        let mut families = families(&m, "pulse_redis_");
        families.retain(|f| !momentary(f));
        seen.lock().unwrap().push(Seen {
            version: s.version.clone(),
            families,
        });
    });
    // Valkey and Redis differ in nothing we read: one line of versions, Redis 7.0 the oldest.
    same_families_on_every_version("redis", seen.into_inner().unwrap());
}

/// Every Prometheus version (2.42 and 3.5): its promtool accepts the bundle's config and rules
/// and the rules generated for the exporter's config, and passes every rule test under
/// `alerts/tests/` (Prometheus 3's ranges leave out their left
/// edge: the tests must hold either way); a real server of that version scrapes the exporter
/// (3.x also protobuf-first, as with native histograms on) and evaluates every bundled rule
/// without an error.
#[test]
fn prometheus_versions() {
    let servers = servers("prometheus");
    let exporter = Exporter::start(
        r#"
global: { health_interval: 1s, health_timeout: 900ms, interval: 1s, timeout: 900ms }
sources:
  - name: app-db
    kind: postgres
    url: postgres://postgres@127.0.0.1:5432/postgres
  - name: queue-cache
    kind: redis
    url: redis://127.0.0.1:6379
"#,
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tests: Vec<String> = std::fs::read_dir(repo.join("alerts/tests"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".test.yml"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 5, "{tests:?}");
    // The rules `pulse-exporter rules` generates for the exporter's config (its sources'
    // alerts and objectives, whose recorded error ratios the burn-rate alerts read) load and
    // evaluate beside the bundle's in every version too.
    let (code, generated, err) = run_cli(
        &[
            "--config.file",
            exporter.config_path.to_str().unwrap(),
            "rules",
        ],
        &[],
    );
    assert_eq!(code, 0, "rules: {err}");
    assert!(
        generated.contains("pulse_source:probe_error_ratio:rate5m"),
        "{generated}"
    );
    // And those of every other kind of objective: a job's, a key's jobs', a Stripe source's
    // deliveries, a Redis latency objective.
    let others = tempfile::tempdir().unwrap();
    let others_config = others.path().join("pulse.yml");
    std::fs::write(
        &others_config,
        "sources:\n  - { name: pay, kind: stripe, api_key: sk_x, objective: false }\n  - { name: cache, kind: redis, url: 'redis://127.0.0.1:6379', objective: false, latency_objectives: [{ name: get-fast, series: { command: get }, under: 4096us }] }\njobs:\n  - { name: rollup, every: 5m, token: 0123456789abcdef0, latency_objectives: [{ name: quick, under: 64s }] }\njob_keys:\n  - { name: scripts, key: fedcba98765432100, every: 1h }\n",
    )
    .unwrap();
    let (code, objectives, err) = run_cli(
        &["--config.file", others_config.to_str().unwrap(), "rules"],
        &[],
    );
    assert_eq!(code, 0, "rules: {err}");
    for series in [
        "pulse_job:run_error_ratio:rate3d",
        "pulse_source:event_error_ratio:rate5m",
        "pulse_source:latency_error_ratio:rate1h",
        "pulse_job:duration_error_ratio:rate6h",
    ] {
        assert!(objectives.contains(series), "{series}: {objectives}");
    }
    each_version(&servers, |s| {
        let promtool = s.promtool.clone().expect("promtool");
        let reported = run_ok(
            Command::new(&promtool).arg("--version").envs(&s.env),
            "promtool --version",
        );
        assert!(
            reported.contains(&format!("version {}", s.version)),
            "{} reports {reported}",
            s.name
        );
        let dir = tempfile::tempdir().unwrap();
        prometheus_layout(dir.path());
        let promtool_ok = |args: &[&str]| {
            let out = run_ok(
                Command::new(&promtool)
                    .args(args)
                    .envs(&s.env)
                    .current_dir(repo),
                &format!("{} promtool {args:?}", s.name),
            );
            assert!(!out.contains("FAILED"), "{out}");
        };
        promtool_ok(&[
            "check",
            "config",
            &dir.path().join("prometheus.yml").display().to_string(),
        ]);
        // tests/bundle.rs runs them with Debian's own promtool (the one on the PATH). Each case
        // with only the rules it can observe, as there (tests/common/rule_tests.rs).
        if s.origin != "debian" {
            for file in &tests {
                let cases = narrowed_file(Path::new(file), dir.path());
                let mut args = vec!["test", "rules"];
                args.extend(cases.iter().map(|c| c.to_str().unwrap()));
                promtool_ok(&args);
            }
        }
        let generated_file = dir.path().join("rules/generated.yml");
        std::fs::write(&generated_file, &generated).unwrap();
        promtool_ok(&["check", "rules", &generated_file.display().to_string()]);
        let objectives_file = dir.path().join("rules/generated-objectives.yml");
        std::fs::write(&objectives_file, &objectives).unwrap();
        promtool_ok(&["check", "rules", &objectives_file.display().to_string()]);
        // Groups evaluated every second, not every minute: each rule has run within seconds.
        let every = regex::Regex::new(r"(?m)^(\s+interval:) \d+[ms]$").unwrap();
        for e in std::fs::read_dir(dir.path().join("rules")).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, every.replace_all(&text, "$1 1s").as_ref()).unwrap();
        }

        let three = version_key(&s.version) >= vec![3];
        let port = free_port();
        let target = format!("127.0.0.1:{}", exporter.port);
        let protobuf_job = match three {
            true => format!(
                "  - job_name: pulse-protobuf-first\n    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4]\n    static_configs: [{{ targets: ['{target}'], labels: {{ instance: protobuf-first }} }}]\n"
            ),
            false => String::new(),
        };
        std::fs::write(
            dir.path().join("test.yml"),
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 rule_files: [rules/*.yml, alerts/pulse-alerts.yml]\n\
                 scrape_configs:\n  - job_name: pulse-exporter\n    static_configs: [{{ targets: ['{target}'] }}]\n{protobuf_job}"
            ),
        )
        .unwrap();
        let log = dir.path().join("prometheus.log");
        let _prom = {
            let file = std::fs::File::create(&log).unwrap();
            Proc::adopt(
                Command::new(s.prometheus.clone().expect("prometheus"))
                    .arg(format!(
                        "--config.file={}",
                        dir.path().join("test.yml").display()
                    ))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.path().join("tsdb").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    // Prometheus 3 keeps native histograms where it negotiates protobuf.
                    .args(three.then_some("--enable-feature=native-histograms"))
                    .envs(&s.env)
                    .stdout(std::process::Stdio::null())
                    .stderr(file)
                    .spawn()
                    .unwrap(),
            )
        };
        let prom = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            wait_ready(&format!("{prom}/-/ready"), "Prometheus", &log).await;
            let jobs: &[&str] = match three {
                true => &["pulse-exporter", "pulse-protobuf-first"],
                false => &["pulse-exporter"],
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            for job in jobs {
                let expr = format!("pulse_source_up{{job=\"{job}\",source=\"queue-cache\"}}");
                while values(&prom, &expr).await != [1.0] {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: {job} never scraped {expr}: {}",
                        s.name,
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            // Every rule evaluated (twice, so that each had data) and none failed.
            let mut bad = Vec::new();
            loop {
                let rules = get_json(&format!("{prom}/api/v1/rules")).await.unwrap();
                bad.clear();
                let mut unevaluated = 0;
                for g in rules["data"]["groups"].as_array().unwrap() {
                    for r in g["rules"].as_array().unwrap() {
                        if r["health"] == "unknown" {
                            unevaluated += 1;
                        } else if r["health"] != "ok" {
                            bad.push(format!("{}: {}", r["name"], r["lastError"]));
                        }
                    }
                }
                if unevaluated == 0 || std::time::Instant::now() > deadline {
                    assert_eq!(unevaluated, 0, "{}: rules never evaluated", s.name);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(bad.is_empty(), "{}: rules failing: {bad:#?}", s.name);
            // Redis command latency: classic buckets where Prometheus 2 reads a text format;
            // with native histograms on, Prometheus 3 asks for protobuf first on every job and
            // keeps native histograms only (no `_bucket` series).
            let classic = "pulse_redis_command_duration_seconds_bucket";
            let native = "histogram_count(pulse_redis_command_duration_seconds) > 0";
            let (want, absent) = match three {
                true => (native, classic),
                false => (classic, native),
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            for job in jobs {
                let want = format!("{want} and on (job) up{{job=\"{job}\"}}");
                while query(&prom, &want).await.is_empty() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: {job} has no {want}",
                        s.name
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            assert!(
                query(&prom, absent).await.is_empty(),
                "{}: {absent} kept too",
                s.name
            );
            // The native histogram answers a quantile as the classic one does.
            let p99 = "histogram_quantile(0.99, sum by (command) (pulse_redis_command_duration_seconds{command=\"ping\"}))\nor histogram_quantile(0.99, sum by (command, le) (pulse_redis_command_duration_seconds_bucket{command=\"ping\"}))";
            let v = values(&prom, p99).await;
            assert!(
                v.len() == 1 && v[0] > 0.0 && v[0] < 1.0,
                "{}: p99 of ping {v:?}",
                s.name
            );
        });
    });
}

/// `docs/compatibility.md` says which versions are tested live and which are covered by
/// fixtures: its cells must be what the matrix's manifest lists (whose versions the tests above
/// check against the running servers) and the fixture folders hold.
#[test]
fn the_compatibility_table_is_what_the_matrix_runs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(repo.join("docs/compatibility.md")).unwrap();
    let version = regex::Regex::new(r"\b\d+\.\d+(\.\d+)?\b").unwrap();
    let cell_versions = |cell: &str| -> BTreeSet<String> {
        version
            .find_iter(cell)
            .map(|m| m.as_str().to_owned())
            .collect()
    };
    // product -> (live, fixtures)
    let mut table = std::collections::BTreeMap::new();
    for line in doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| kind"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || cells[1].starts_with('-') {
            continue;
        }
        table.insert(
            cells[1].to_lowercase(),
            (cell_versions(cells[2]), cell_versions(cells[3])),
        );
    }
    let mut from_manifest: std::collections::BTreeMap<String, BTreeSet<String>> =
        Default::default();
    for s in matrix() {
        let product = match (s.kind.as_str(), s.name.split('-').next().unwrap()) {
            ("redis", name) => name.to_owned(),
            (kind, _) => kind.to_owned(),
        };
        let plain = s.version.split('+').next().unwrap().to_owned();
        from_manifest.entry(product).or_default().insert(plain);
    }
    for (product, versions) in &from_manifest {
        let (live, _) = table
            .get(product)
            .unwrap_or_else(|| panic!("docs/compatibility.md has no row for {product}"));
        assert_eq!(
            live, versions,
            "{product}: the table's live versions against the manifest's"
        );
    }
    for kind in ["rabbitmq", "mongodb"] {
        let mut versions = BTreeSet::new();
        for e in std::fs::read_dir(repo.join("tests/fixtures").join(kind)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            versions.insert(name.split('-').next().unwrap().to_owned());
        }
        let (_, fixtures) = &table[kind];
        assert_eq!(
            fixtures, &versions,
            "{kind}: the table's fixture versions against tests/fixtures/{kind}/"
        );
    }
}
