//! Database load and blockers against the real Postgres on 127.0.0.1:5432 (the main case also
//! on the version matrix's newer Postgres servers, 16 to 18, started for it), each test in a
//! database of its own (the load series carry the database, so the other tests' sessions on
//! the same server do not count here): three sessions in `pg_sleep`, one burning CPU, and an
//! idle-in-transaction session holding `ACCESS EXCLUSIVE` on a table two others wait for;
//! then a chain of blockers; then a role without `pg_monitor`, which counts its own sessions
//! only and says so.
//!
//! Costs about 45 s: a 20 s window of samples (the four main cases side by side, each read by a
//! Prometheus of its own for the Database load dashboard's queries), and the sessions' setup.

use pulse_test_support as common;

use std::time::{Duration, Instant};

use common::*;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection};

/// A connection to `url` under `application`.
async fn session(url: &str, application: &str) -> PgConnection {
    PgConnection::connect(&format!("{url}?application_name={application}"))
        .await
        .unwrap()
}

/// Runs `sql` on a connection of its own in the background; the session ends with the
/// database's cleanup.
fn running(url: &str, application: &str, sql: &'static str) -> tokio::task::JoinHandle<()> {
    let url = format!("{url}?application_name={application}");
    tokio::spawn(async move {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let _ = pool.execute(sql).await;
    })
}

fn config(url: &str) -> String {
    format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {url}
    statements: false
    tables: false
    load: {{ interval: 1s, cpus: 2 }}
"#
    )
}

/// Over 20 s, the average active sessions read about 3 in `Timeout/PgSleep`, about 1 on
/// CPU and about 2 in `Lock/relation`; the idle-in-transaction holder is the one root blocker,
/// with both waiters, the lock mode and the relation; it leaves the series once it ends.
///
/// The averages are taken over the time the samples cover (`sampled_seconds`), so a sample
/// the busy machine delayed changes nothing; the tolerance (±0.4 of a session) is the edge
/// of the window: a session that starts or is seen between two samples counts for a part.
#[tokio::test]
async fn load_is_split_by_wait_event_and_the_root_blocker_is_named() {
    let (db, url, _cleanup) = pg_database("load").await;
    load_case(&db, &url).await;
}

/// The same on the newer Postgres servers of the version matrix (16, 17 and 18 today), side
/// by side, whose pg_stat_activity the sampler reads alike: the local server is the oldest
/// the matrix runs (15).
#[test]
fn load_on_every_newer_postgres_of_the_matrix() {
    let newer: Vec<Server> = servers("postgres")
        .into_iter()
        .filter(|s| version_key(&s.version)[0] >= 16)
        .collect();
    assert!(newer.len() >= 3, "the matrix runs Postgres 16 to 18");
    each_version(&newer, |postgres| {
        let tmp = postgres_owned_tempdir();
        let dir = tmp.path().join("db");
        postgres.initdb(&dir);
        let port = listen_port();
        let _server = postgres.start_postgres(&dir, port, &[]);
        psql_at(port, "CREATE DATABASE load_newer");
        let url = format!("postgres://postgres@127.0.0.1:{port}/load_newer");
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(load_case("load_newer", &url));
    });
}

/// Three sleepers, a burner, an idle-in-transaction holder and two waiters in database `db`
/// at `url`, read over 20 s of samples.
async fn load_case(db: &str, url: &str) {
    let (db, url) = (db.to_owned(), url);
    let mut setup = session(url, "setup").await;
    setup
        .execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)")
        .await
        .unwrap();
    let e = Exporter::start(&config(url));
    let mut holder = session(url, "migrate").await;
    holder
        .execute("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(running(url, "sleeper", "SELECT pg_sleep(120)"));
    }
    tasks.push(running(
        url,
        "burner",
        "SELECT count(*) FROM (SELECT generate_series(1, 100000000000)) s",
    ));
    for _ in 0..2 {
        tasks.push(running(url, "waiter", "SELECT count(*) FROM orders"));
    }
    // Every session in its state before the window opens, whatever the machine's load made
    // their connections take: a window that opens early averages a session short.
    let ready = Instant::now();
    loop {
        let (sleeping, burning, waiting): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE application_name = 'sleeper' AND wait_event = 'PgSleep'), \
                    count(*) FILTER (WHERE application_name = 'burner' AND state = 'active'), \
                    count(*) FILTER (WHERE application_name = 'waiter' AND wait_event_type = 'Lock') \
             FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_one(&mut setup)
        .await
        .unwrap();
        if (sleeping, burning, waiting) == (3, 1, 2) {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the sessions did not start: {sleeping} sleeping, {burning} burning, {waiting} waiting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blocker = [
        ("database", db.as_str()),
        ("application", "migrate"),
        ("state", "idle in transaction"),
        ("mode", "AccessShareLock"),
        ("relation", "orders"),
    ];
    let seen = |m: &Scrape| {
        m.get("pulse_postgres_blocker_waiting_sessions", &blocker) == Some(2.0)
            && m.sum(
                "pulse_postgres_load_active_seconds_total",
                &[("database", db.as_str()), ("wait_event", "PgSleep")],
            ) > 0.0
    };
    let first = e
        .wait_for(
            "the sessions and the blocker to show",
            Duration::from_secs(30),
            seen,
        )
        .await;
    assert_eq!(
        first.get("pulse_postgres_blocker_direct_waiting_sessions", &blocker),
        Some(2.0)
    );
    assert!(
        first
            .get("pulse_postgres_blocker_longest_wait_seconds", &blocker)
            .is_some_and(|w| w >= 0.0),
        "{}",
        first.text
    );
    assert!(
        first
            .find(
                "pulse_postgres_idle_in_transaction_oldest_seconds",
                &[("database", db.as_str()), ("application", "migrate")]
            )
            .len()
            == 1
    );
    assert_eq!(
        first.get("pulse_postgres_load_cpus", &[("source", "db")]),
        Some(2.0)
    );
    assert_eq!(
        first.get(
            "pulse_postgres_load_all_sessions_visible",
            &[("source", "db")]
        ),
        Some(1.0)
    );
    let scraper = Scraper::start(&[e.port], &[]).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let last = e.metrics().await;
    let wall = started.elapsed().as_secs_f64();
    let covered = last.sum("pulse_postgres_load_sampled_seconds_total", &[])
        - first.sum("pulse_postgres_load_sampled_seconds_total", &[]);
    assert!(
        covered > wall * 0.5,
        "the samples covered {covered:.1}s of {wall:.1}s"
    );
    let average = |labels: &[(&str, &str)]| {
        let mut with = vec![("database", db.as_str()), ("backend", "client")];
        with.extend_from_slice(labels);
        (last.sum("pulse_postgres_load_active_seconds_total", &with)
            - first.sum("pulse_postgres_load_active_seconds_total", &with))
            / covered
    };
    let sleeping = average(&[("wait_event_type", "Timeout"), ("wait_event", "PgSleep")]);
    let cpu = average(&[("wait_event_type", "CPU")]);
    let locked = average(&[("wait_event_type", "Lock"), ("wait_event", "relation")]);
    eprintln!("over {covered:.1}s sampled of {wall:.1}s: sleep {sleeping:.2}, cpu {cpu:.2}, lock {locked:.2}");
    assert!((sleeping - 3.0).abs() <= 0.4, "PgSleep averaged {sleeping}");
    assert!((cpu - 1.0).abs() <= 0.4, "CPU averaged {cpu}");
    assert!(
        (locked - 2.0).abs() <= 0.4,
        "Lock/relation averaged {locked}"
    );
    // Idle in transaction is no load, but it holds a session: the pool view counts the
    // holder as waiting on its client and the six active sessions as waiting on the server.
    assert_eq!(average(&[("wait_event_type", "Client")]), 0.0);
    let held = |on: &str| {
        let with = [("database", db.as_str()), ("waiting_on", on)];
        (last.sum("pulse_postgres_load_held_seconds_total", &with)
            - first.sum("pulse_postgres_load_held_seconds_total", &with))
            / covered
    };
    let (on_client, on_server) = (held("client"), held("server"));
    eprintln!("held: on the client {on_client:.2}, on the server {on_server:.2}");
    assert!(
        (on_client - 1.0).abs() <= 0.4,
        "held on the client {on_client}"
    );
    assert!(
        (on_server - 6.0).abs() <= 0.8,
        "held on the server {on_server}"
    );
    for s in last.find("pulse_postgres_load_active_seconds_total", &[]) {
        assert!(
            !s.labels.values().any(|v| v.contains("pg_sleep")),
            "no query text in a label: {s:?}"
        );
    }

    // The Database load dashboard shows it: every Postgres query has data (the blockers and
    // the idle transaction included) but the plans and statement texts, which need
    // pg_stat_statements (tests/latency.rs has them).
    let quiet = |title: &str, e: &str| {
        title.starts_with("Plans of")
            || title.starts_with("Statements explained")
            || e.contains("pulse_postgres_statement_info")
            || e.contains("pulse_mongodb")
            || e.contains("pulse_redis")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing =
        bundle_queries_without_data(&scraper.url, Some("pulse-database-load"), quiet, deadline)
            .await;
    assert!(missing.is_empty(), "panels without data: {missing:#?}");

    // Ending the holder ends the queue: its series leaves within a few samples.
    holder.execute("ROLLBACK").await.unwrap();
    e.wait_for("the blocker to leave", Duration::from_secs(10), |m| {
        m.find(
            "pulse_postgres_blocker_waiting_sessions",
            &[("database", db.as_str())],
        )
        .is_empty()
    })
    .await;
    for t in tasks {
        t.abort();
    }
}

/// A chain (A holds a lock B waits for, while B holds one C waits for) has one root, A,
/// with two sessions behind it, one of them directly.
#[tokio::test]
async fn a_chain_of_blockers_reports_its_root_only() {
    let (db, url, _cleanup) = pg_database("chain").await;
    let mut setup = session(&url, "setup").await;
    setup
        .execute("CREATE TABLE a (id int); CREATE TABLE b (id int)")
        .await
        .unwrap();
    let e = Exporter::start(&config(&url));
    let mut first = session(&url, "holder-a").await;
    first
        .execute("BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut second = session(&url, "holder-b").await;
    second
        .execute("BEGIN; LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // B now waits for A while holding b; C waits for B.
    let waits_on_a = tokio::spawn(async move {
        let _ = second
            .execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
            .await;
        second
    });
    let c = running(&url, "reader-c", "SELECT count(*) FROM b");
    let root = [
        ("database", db.as_str()),
        ("application", "holder-a"),
        ("state", "idle in transaction"),
    ];
    let m = e
        .wait_for("the chain's root", Duration::from_secs(30), |m| {
            m.get("pulse_postgres_blocker_waiting_sessions", &root) == Some(2.0)
        })
        .await;
    assert_eq!(
        m.get("pulse_postgres_blocker_direct_waiting_sessions", &root),
        Some(1.0)
    );
    let roots = m.find(
        "pulse_postgres_blocker_waiting_sessions",
        &[("database", db.as_str())],
    );
    assert_eq!(roots.len(), 1, "only A is a root: {roots:?}");
    first.execute("ROLLBACK").await.unwrap();
    waits_on_a.abort();
    c.abort();
}

/// A role without `pg_monitor` sees only its own sessions: the check succeeds, says so once
/// in the log and in `pulse_postgres_load_all_sessions_visible` 0, and counts the role's own
/// session in `pg_sleep`, not the two of another role beside it.
#[tokio::test]
async fn a_role_without_pg_monitor_counts_its_own_sessions_and_says_so() {
    let role = unique("nomon");
    // Declared first, so dropped last: after the database it may connect to.
    let _role = Cleanup::default().pg(format!("DROP ROLE IF EXISTS {role}"));
    sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&pg().await)
        .await
        .unwrap();
    let (db, url, _cleanup) = pg_database("nomon").await;
    let (server, _) = url.rsplit_once('/').unwrap();
    let role_url = server.replacen("postgres@", &format!("{role}@"), 1) + "/" + &db;
    assert!(role_url.contains(&role), "{role_url}");
    let mut tasks = vec![
        running(&url, "others", "SELECT pg_sleep(120)"),
        running(&url, "others", "SELECT pg_sleep(120)"),
        running(&role_url, "own", "SELECT pg_sleep(120)"),
    ];
    let mut setup = session(&url, "setup").await;
    let ready = Instant::now();
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
        )
        .fetch_one(&mut setup)
        .await
        .unwrap();
        if sleeping == 3 {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "{sleeping} sleeping"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = Exporter::start(&config(&role_url));
    let sleep = [("database", db.as_str()), ("wait_event", "PgSleep")];
    let first = e
        .wait_for(
            "the role's own session to show",
            Duration::from_secs(30),
            |m| m.sum("pulse_postgres_load_active_seconds_total", &sleep) > 0.0,
        )
        .await;
    assert_eq!(
        first.get(
            "pulse_postgres_load_all_sessions_visible",
            &[("source", "db")]
        ),
        Some(0.0),
        "{}",
        first.text
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let last = e.metrics().await;
    let covered = last.sum("pulse_postgres_load_sampled_seconds_total", &[])
        - first.sum("pulse_postgres_load_sampled_seconds_total", &[]);
    let slept = (last.sum("pulse_postgres_load_active_seconds_total", &sleep)
        - first.sum("pulse_postgres_load_active_seconds_total", &sleep))
        / covered;
    assert!(covered > 0.0, "no sample covered the wait");
    // One session of its own; the two of another role would make it about 3.
    assert!((slept - 1.0).abs() <= 0.4, "PgSleep averaged {slept}");
    assert_eq!(
        last.get("pulse_check_success", &[("check", "load")]),
        Some(1.0)
    );
    let logs = e.logs();
    assert_eq!(
        logs.matches("may not see other roles").count(),
        1,
        "said once: {logs}"
    );
    for t in tasks.drain(..) {
        t.abort();
    }
}
