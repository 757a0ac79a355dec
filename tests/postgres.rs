//! Postgres source against the real server on 127.0.0.1:5432.

use pulse_test_support as common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn slow_query_is_cancelled_on_the_server_at_the_timeout_and_scrapes_stay_fast() {
    let marker = unique("slowmark");
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_slow
        sql: SELECT 1 AS value, '{marker}' AS marker FROM pg_sleep(5)
        labels: [marker]
        interval: 3s
        timeout: 1s
"#
    );
    let e = Exporter::start(&config);
    let pool = pg().await;
    let (m, worst) = e
        .wait_for_timed("a timeout recorded", Duration::from_secs(15), |m| {
            m.get(
                "pulse_check_failures_total",
                &[("check", "app_slow"), ("reason", "timeout")],
            )
            .is_some()
        })
        .await;
    let took = m
        .get("pulse_check_duration_seconds", &[("check", "app_slow")])
        .unwrap();
    // Near the 1 s timeout, never the 5 s query: a busy machine may wake the timer late.
    assert!(
        (0.8..4.0).contains(&took),
        "the run should end near the 1s timeout, took {took}s"
    );
    assert_eq!(
        m.get("pulse_check_success", &[("check", "app_slow")]),
        Some(0.0)
    );
    // The server stopped the query too: no backend is still sleeping on our behalf (the
    // cancel reaches it a moment after the client gave up; the query would run 5 s).
    let mut still = active_queries(&pool, &marker).await;
    let since = std::time::Instant::now();
    while still > 0 && since.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        still = active_queries(&pool, &marker).await;
    }
    assert_eq!(still, 0, "the timed-out query still runs on the server");
    // A scrape never waits for the 5 s query: every one answered well within it.
    assert!(
        worst < Duration::from_secs(3),
        "a scrape took {worst:?} while the check hung"
    );
}

#[tokio::test]
async fn unreachable_postgres_reports_connect_others_stay_up_and_recovery_is_logged_once() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let config = format!(
        r#"
global: {{ health_interval: 2s, health_timeout: 1500ms }}
sources:
  - name: pg-via-proxy
    kind: postgres
    url: postgres://postgres@127.0.0.1:{}/postgres
  - name: cache
    kind: redis
    url: {REDIS_URL}
"#,
        proxy.port
    );
    let e = Exporter::start(&config);
    // Probes keep failing for 3s: the degraded event must still be logged only once.
    let took = assert_outage(&e, &proxy, "pg-via-proxy", "cache", Duration::from_secs(3)).await;
    assert!(
        took < Duration::from_secs(8),
        "recovery should show within a health interval or two, took {took:?}"
    );
    assert_eq!(
        count_lines(&e.logs(), &["event=source.degraded", "kind=postgres"]),
        1
    );
}

#[tokio::test]
async fn rows_become_samples_nulls_are_skipped_and_vanished_rows_vanish() {
    let (table, _cleanup) = pg_table(
        "plans",
        "CREATE TABLE {table} (plan text, status text, n int, paid numeric); \
         INSERT INTO {table} VALUES ('free','active',10,0), ('pro','active',3,29.5), ('trial','disabled',NULL,NULL)",
    )
    .await;
    let s = scenario(&format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_users
        help: Users by plan and status.
        sql: SELECT plan, status, n AS value FROM {table}
        labels: [plan, status]
        interval: 1s
        timeout: 500ms
        const_labels: {{ platform: test }}
      - metric: app_plan_stats
        sql: SELECT plan, n AS users, paid AS revenue FROM {table}
        labels: [plan]
        values: [users, revenue]
        value_label: column
        interval: 1s
        timeout: 500ms
"#
    ))
    .await;
    assert_samples(
        &s.first,
        &[
            (
                "app_users",
                &[("plan", "free"), ("status", "active"), ("platform", "test")],
                Some(10.0),
            ),
            ("app_users", &[("plan", "pro")], Some(3.0)),
            // A NULL value is skipped, not 0 (and counted, below).
            ("app_users", &[("plan", "trial")], None),
            (
                "app_plan_stats",
                &[("plan", "pro"), ("column", "revenue")],
                Some(29.5),
            ),
            (
                "app_plan_stats",
                &[("plan", "free"), ("column", "users")],
                Some(10.0),
            ),
        ],
    );
    let skipped = s.first.get(
        "pulse_check_values_skipped_total",
        &[("check", "app_users")],
    );
    assert!(skipped >= Some(1.0), "{skipped:?}");
    assert!(
        s.first
            .text
            .contains("# HELP app_users Users by plan and status (cached by pulse-exporter"),
        "{}",
        s.first.text
    );

    sqlx::query(&format!("DELETE FROM {table} WHERE plan = 'pro'"))
        .execute(&pg().await)
        .await
        .unwrap();
    s.exporter
        .wait_for("pro row gone", Duration::from_secs(10), |m| {
            m.get("app_users", &[("plan", "pro")]).is_none()
        })
        .await;
}

#[tokio::test]
async fn text_where_a_number_belongs_fails_with_decode_and_writes_are_refused() {
    let pool = pg().await;
    let (table, _cleanup) = pg_table("ro", "CREATE TABLE {table} (x int)").await;
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_text
        sql: SELECT 'abc'::text AS value
        interval: 1s
        timeout: 500ms
      - metric: app_write
        sql: WITH w AS (INSERT INTO {table} VALUES (1) RETURNING x) SELECT count(*) AS value FROM w
        interval: 1s
        timeout: 500ms
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("both checks failed", Duration::from_secs(10), |m| {
            m.get(
                "pulse_check_failures_total",
                &[("check", "app_text"), ("reason", "decode")],
            )
            .is_some()
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "app_write"), ("reason", "query")],
                )
                .is_some()
                && m.get("pulse_source_up", &[("source", "db")]).is_some()
        })
        .await;
    assert_eq!(m.get("app_text", &[]), None);
    assert_eq!(
        m.get("pulse_source_up", &[("source", "db")]),
        Some(1.0),
        "a bad check does not make the source down"
    );
    let logs = e.logs();
    assert!(
        logs.contains("column `value` holds text \\\"abc\\\" where a number belongs")
            || logs.contains("column `value` holds text"),
        "{logs}"
    );
    assert!(logs.contains("read-only transaction"), "{logs}");
    let (rows,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a check must never write");
}

#[tokio::test]
async fn failed_check_serves_last_samples_until_stale_after_then_drops_them() {
    let pool = pg().await;
    let (table, _cleanup) = pg_table(
        "stale",
        "CREATE TABLE {table} (v int); INSERT INTO {table} VALUES (42)",
    )
    .await;
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_stale
        sql: SELECT v AS value FROM {table}
        interval: 1s
        timeout: 500ms
        stale_after: 4s
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for("value", Duration::from_secs(10), |m| {
            m.get("app_stale", &[]) == Some(42.0)
        })
        .await;
    let _ = m;
    // The table goes away: the check fails from now on.
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&pool)
        .await
        .unwrap();
    let failing = e
        .wait_for("check failing", Duration::from_secs(10), |m| {
            m.get("pulse_check_success", &[("check", "app_stale")]) == Some(0.0)
        })
        .await;
    assert_eq!(
        failing.get("app_stale", &[]),
        Some(42.0),
        "last good value is still served while failing"
    );
    let last_ok = failing
        .get(
            "pulse_check_last_success_timestamp_seconds",
            &[("check", "app_stale")],
        )
        .unwrap();
    let gone = e
        .wait_for("stale value dropped", Duration::from_secs(15), |m| {
            m.get("app_stale", &[]).is_none()
        })
        .await;
    let now = gone.get("pulse_scrape_timestamp_seconds", &[]).unwrap();
    assert!(
        now - last_ok >= 3.9,
        "dropped {:.1}s after the last success, before stale_after",
        now - last_ok
    );
    assert_eq!(
        gone.get("pulse_check_series", &[("check", "app_stale")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn health_reports_connections_sizes_pool_and_oldest_transaction() {
    let pool = pg().await;
    // Hold a transaction open so the oldest-transaction gauge has something to show.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for("vitals", Duration::from_secs(10), |m| {
            m.get(
                "pulse_postgres_oldest_transaction_start_timestamp_seconds",
                &[("source", "db")],
            )
            .is_some()
        })
        .await;
    let max = m
        .get("pulse_postgres_max_connections", &[("source", "db")])
        .unwrap();
    assert!(max >= 1.0);
    let idle_in_tx = m.get(
        "pulse_postgres_connections",
        &[("source", "db"), ("state", "idle in transaction")],
    );
    assert!(
        idle_in_tx.unwrap_or(0.0) >= 1.0,
        "our open transaction shows: {}",
        m.text
    );
    assert!(
        m.get(
            "pulse_postgres_database_size_bytes",
            &[("source", "db"), ("database", "postgres")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        m.get("pulse_postgres_pool_max_connections", &[("source", "db")]),
        Some(2.0)
    );
    assert!(m
        .get(
            "pulse_postgres_pool_connections",
            &[("source", "db"), ("state", "idle")]
        )
        .is_some());
    let oldest = m
        .get(
            "pulse_postgres_oldest_transaction_start_timestamp_seconds",
            &[("source", "db")],
        )
        .unwrap();
    let now = m.get("pulse_scrape_timestamp_seconds", &[]).unwrap();
    assert!(oldest <= now && now - oldest < 120.0);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn summary_statistics_match_what_postgres_computes() {
    let pool = pg().await;
    let (table, _cleanup) = pg_table(
        "ai_per_user",
        "CREATE TABLE {table} (user_id int, plan text, requests int); \
         INSERT INTO {table} SELECT g, CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END, (g * 37) % 101 FROM generate_series(1, 200) g",
    )
    .await;
    let m = scenario(&format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_ai_requests_per_user
        help: AI requests per user today.
        sql: SELECT plan, requests AS value FROM {table}
        labels: [plan]
        summary: [median, p90, max]
        interval: 1s
        timeout: 500ms
"#
    ))
    .await
    .first;
    for plan in ["free", "pro"] {
        let (median, p90, max): (f64, f64, f64) = sqlx::query_as(&format!(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY requests), percentile_cont(0.9) WITHIN GROUP (ORDER BY requests), max(requests)::float8 FROM {table} WHERE plan = $1"
        ))
        .bind(plan)
        .fetch_one(&pool)
        .await
        .unwrap();
        let got = |stat| {
            m.get(
                "app_ai_requests_per_user",
                &[("plan", plan), ("stat", stat)],
            )
            .unwrap()
        };
        assert!(
            (got("median") - median).abs() < 1e-9,
            "{plan} median {} vs {median}",
            got("median")
        );
        assert!(
            (got("p90") - p90).abs() < 1e-9,
            "{plan} p90 {} vs {p90}",
            got("p90")
        );
        assert_eq!(got("max"), max);
    }
    assert_eq!(
        m.find("app_ai_requests_per_user", &[("plan", "free")])
            .len(),
        3,
        "one series per statistic, not per row"
    );
}

#[tokio::test]
async fn a_huge_result_keeps_the_series_cap_and_counts_every_row_past_it() {
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_rows
        sql: SELECT g::text AS id, g AS value FROM generate_series(1, 200000) g
        labels: [id]
        max_series: 100
        interval: 1m
        timeout: 20s
      - metric: app_rows_summary
        sql: SELECT (g % 1000)::text AS grp, g AS value FROM generate_series(1, 200000) g
        labels: [grp]
        summary: [max, count]
        max_series: 10
        interval: 1m
        timeout: 20s
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for("both checks ran", Duration::from_secs(30), |m| {
            m.get("pulse_check_success", &[("check", "app_rows")]) == Some(1.0)
                && m.get("pulse_check_success", &[("check", "app_rows_summary")]) == Some(1.0)
        })
        .await;
    assert_eq!(m.find("app_rows", &[]).len(), 100);
    assert_eq!(
        m.get("pulse_check_series_dropped_total", &[("check", "app_rows")]),
        Some(199_900.0),
        "every row past the cap is counted"
    );
    // Five groups fit (two statistics each); the other 995 groups are dropped, two series each.
    assert_eq!(m.find("app_rows_summary", &[]).len(), 10);
    assert_eq!(
        m.get(
            "pulse_check_series_dropped_total",
            &[("check", "app_rows_summary")]
        ),
        Some(995.0 * 2.0)
    );
    // The kept groups' statistics are over all their rows, not the rows read before the cap.
    let counts = m.find("app_rows_summary", &[("stat", "count")]);
    assert!(counts.iter().all(|s| s.value == 200.0), "{counts:?}");
}

#[tokio::test]
async fn sigterm_during_a_long_query_exits_in_the_grace_period_and_the_server_stops_it() {
    let marker = unique("termmark");
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_long
        sql: SELECT 1 AS value, '{marker}' AS marker FROM pg_sleep(120)
        labels: [marker]
        interval: 10m
        timeout: 5m
"#
    );
    // Should the test fail with the query still sleeping, it is cancelled all the same.
    let _cleanup = Cleanup::default().pg(format!(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
    ));
    let mut e = Exporter::start(&config);
    let pool = pg().await;
    let running = || active_queries(&pool, &marker);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while running().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the query never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    e.signal("-TERM");
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(s) = e.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed()
                < pulse_exporter::serve::http::SHUTDOWN_GRACE + Duration::from_secs(2),
            "did not exit within the grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    // The server notices the closed connection and ends the query, instead of sleeping on
    // for two minutes on behalf of an exporter that is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the query still runs on the server after the exporter exited"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("exited {:?} after SIGTERM", stopped.elapsed());
}

#[tokio::test]
async fn a_postgres_with_ssl_and_a_private_ca_is_reached_only_with_the_ca() {
    let tmp = postgres_owned_tempdir();
    let data = tmp.path().join("data");
    PgCluster::init(&data);
    let ca = TestCa::new(tmp.path());
    // The server's key must be the postgres user's own, readable by it alone.
    for (file, mode) in [
        (&ca.server_key, "600"),
        (&ca.server_cert, "644"),
        (&ca.ca, "644"),
    ] {
        run_ok(
            std::process::Command::new("chown").args(["postgres:postgres", file.to_str().unwrap()]),
            "chown",
        );
        run_ok(
            std::process::Command::new("chmod").args([mode, file.to_str().unwrap()]),
            "chmod",
        );
    }
    // TLS only, and a client certificate the CA signed.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\nhostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    let server = PgCluster::start_with(
        data,
        free_port(),
        &format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            ca.server_cert.display(),
            ca.server_key.display(),
            ca.ca.display()
        ),
    );
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: trusted
    kind: postgres
    url: {base}?sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}
  - name: no-ca
    kind: postgres
    url: {base}?sslmode=verify-full&sslcert={cert}&sslkey={key}
  - name: plain
    kind: postgres
    url: {base}?sslmode=disable
"#,
        ca = ca.ca.display(),
        cert = ca.client_cert.display(),
        key = ca.client_key.display(),
    );
    let e = InProcess::start(&config);
    // Read after an SSLRequest, for the source whose client refuses the certificate too;
    // `sslmode=disable` reads none.
    let endpoint = format!("127.0.0.1:{}", server.port);
    let want = TlsOutcome {
        trusted: "trusted",
        refused: &["no-ca", "plain"],
        read: &["trusted", "no-ca"],
        endpoint: endpoint.clone(),
    };
    let m = assert_tls_outcome(&e, &ca, want, Duration::from_secs(30)).await;
    assert_eq!(m.certificate_expiry("plain", &endpoint), None);
    assert_eq!(
        m.get("pulse_postgres_in_recovery", &[("source", "trusted")]),
        Some(0.0)
    );
}

/// Sessions on the databases named `prefix…`, other than the test's own.
async fn sessions_on(pool: &sqlx::PgPool, prefix: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1 AND pid <> pg_backend_pid()",
    )
    .bind(format!("{prefix}%"))
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

/// Sessions on databases named `prefix…` running the fan-out check's query now.
async fn running_on(pool: &sqlx::PgPool, prefix: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1 AND pid <> pg_backend_pid() \
         AND state = 'active' AND query LIKE '%pg_sleep(0.3)%'",
    )
    .bind(format!("{prefix}%"))
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn a_check_fans_out_over_the_databases_the_patterns_pick_a_few_sessions_at_a_time() {
    let prefix = unique("fan").replace('-', "_");
    let pool = pg().await;
    let dbs: Vec<String> = ["a", "b", "c", "d", "e", "f", "skip"]
        .iter()
        .map(|s| format!("{prefix}_{s}"))
        .collect();
    let mut cleanup = Cleanup::default();
    for db in &dbs {
        cleanup = cleanup.pg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    }
    let _cleanup = cleanup;
    for (i, db) in dbs.iter().enumerate() {
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&pool)
            .await
            .unwrap();
        // `f` has no table: its query fails while the others' samples are served.
        if db.ends_with("_f") {
            continue;
        }
        let url = format!("{}/{db}", PG_URL.rsplit_once('/').unwrap().0);
        let one = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (v int)")
            .execute(&one)
            .await
            .unwrap();
        sqlx::query(&format!(
            "INSERT INTO t SELECT generate_series(1, {})",
            i + 1
        ))
        .execute(&one)
        .await
        .unwrap();
        one.close().await;
    }
    let config = format!(
        r#"
sources:
  - name: fleet
    kind: postgres
    url: {PG_URL}
    databases:
      include: ['{prefix}_.*']
      exclude: ['{prefix}_skip']
      max: 6
      connections: 2
    checks:
      - metric: app_fan_rows
        sql: SELECT count(*) AS value FROM t, pg_sleep(0.3)
        interval: 6s
        timeout: 5s
"#
    );
    let e = Exporter::start(&config);
    // Sessions running the check on the fanned-out databases, sampled through a run: never
    // more than two. What the exporter holds at once is what runs its query: a session it
    // has closed may still be listed for a moment while its server process exits (the test
    // failed on that once with the cores busy), but it runs nothing.
    let mut most = 0;
    let mut fewest_after = i64::MAX;
    let started = std::time::Instant::now();
    // A run connects six times and sleeps 0.9 s: a busy machine takes seconds, so the run
    // gets 5 s and the gap before the next (at 6 s) is what is sampled for no session.
    while started.elapsed() < Duration::from_secs(9) {
        most = most.max(running_on(&pool, &prefix).await);
        let n = sessions_on(&pool, &prefix).await;
        if started.elapsed() > Duration::from_secs(2) {
            fewest_after = fewest_after.min(n);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most >= 1, "no session was ever seen");
    assert!(most <= 2, "{most} sessions at once, over `connections: 2`");
    // Between runs every session is closed: none is kept idle per database.
    assert_eq!(fewest_after, 0);
    let m = e
        .wait_for("the fanned-out samples", Duration::from_secs(45), |m| {
            m.get("app_fan_rows", &[("database", &format!("{prefix}_e"))])
                .is_some()
        })
        .await;
    let db = |s: &str| format!("{prefix}_{s}");
    let (a, b, e_, f, skip) = (db("a"), db("b"), db("e"), db("f"), db("skip"));
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("app_fan_rows", &[("database", &a)], Some(1.0)),
        ("app_fan_rows", &[("database", &b)], Some(2.0)),
        ("app_fan_rows", &[("database", &e_)], Some(5.0)),
        ("app_fan_rows", &[("database", &skip)], None),
        ("app_fan_rows", &[("database", &f)], None),
        ("pulse_check_success", &[("check", "app_fan_rows")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    // The failing database is the check's reason; the healthy ones' samples are served.
    assert!(m
        .get(
            "pulse_check_failures_total",
            &[("check", "app_fan_rows"), ("reason", "query")]
        )
        .is_some_and(|n| n >= 1.0));
    let log = e.logs();
    assert!(
        log.contains(&format!("1 of 6 databases failed; {prefix}_f:")),
        "{log}"
    );
    pool.close().await;
}

/// Without `pg_stat_statements` in the source's database the `statements` check is NOT
/// MEASURED, never OK: `pulse_check_measured` 0 beside `pulse_check_success` 1, the landing
/// page and `probe` say so with the exact `shared_preload_libraries` line, and "which query"
/// is answered by the longest-running statements of `pg_stat_activity`, their literals gone.
#[tokio::test]
async fn without_pg_stat_statements_the_check_is_not_measured_and_running_statements_answer() {
    let (db, url, _cleanup) = pg_database("nostatements").await;
    // A statement that runs for a while, a value a user sent in its text.
    let sleeper = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let sleeping = tokio::spawn(async move {
        let _ = sqlx::query("SELECT pg_sleep(60), 'someone@example.com' AS email")
            .execute(&sleeper)
            .await;
    });
    let config = format!(
        r#"
sources:
  - name: db
    kind: postgres
    url: {url}
    statements: {{ interval: 10s }}
    tables: false
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for(
            "the running statement to be published",
            Duration::from_secs(30),
            |m| {
                m.find(
                    "pulse_postgres_running_statement_seconds",
                    &[("source", "db"), ("database", db.as_str())],
                )
                .iter()
                .any(|s| s.labels["text"].contains("pg_sleep"))
            },
        )
        .await;
    let running = m.find(
        "pulse_postgres_running_statement_seconds",
        &[("source", "db"), ("database", db.as_str())],
    );
    let text = &running[0].labels["text"];
    assert_eq!(text, "SELECT pg_sleep(?), ? AS email", "{running:?}");
    assert!(running[0].value >= 0.0);
    let check = [("source", "db"), ("check", "statements")];
    assert_eq!(m.get("pulse_check_success", &check), Some(1.0));
    assert_eq!(m.get("pulse_check_measured", &check), Some(0.0));
    assert_eq!(
        m.get("pulse_postgres_statements_available", &[("source", "db")]),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "pulse_check_measured",
            &[("source", "db"), ("check", "health")]
        ),
        None,
        "a health probe is a source's, not a check's"
    );
    let page = e.get("/").await;
    assert!(page.contains("NOT MEASURED"), "{page}");
    assert!(
        page.contains("shared_preload_libraries = &#39;pg_stat_statements&#39;"),
        "{page}"
    );
    assert!(page.contains("not measured"), "{page}");
    assert!(!page.contains("or not run yet"), "{page}");

    let (code, out, err) = run_cli(
        &["--config.file", e.config_path.to_str().unwrap(), "probe"],
        &[],
    );
    assert_eq!(code, 0, "not measured is no failure: {out}{err}");
    let row = out
        .lines()
        .find(|l| l.contains("statements"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("not measured") && row.contains("shared_preload_libraries"),
        "{out}"
    );
    sleeping.abort();
}

/// Server connections whose `application_name` is `name`.
async fn connections_named(pool: &sqlx::PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A storm of reloads between twelve sources and two of them leaves, at the twelve again, the
/// server connections and the descriptors the twelve held before: a removed source closes
/// what it held, a kept one reuses its pool, a source added back opens its own anew. A leak of
/// one connection a reload would be twenty or more; the bound allows a pool's own coming and
/// going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_reloads_leaves_the_connections_of_the_same_config() {
    let app = unique("pulse-reloads");
    let sep = if PG_URL.contains('?') { '&' } else { '?' };
    let config = |n: usize| {
        let mut text = String::from("sources:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  - name: pg{i}\n    kind: postgres\n    url: {PG_URL}{sep}application_name={app}\n    statements: false\n    tables: false\n    load: false\n    checks:\n      - {{ metric: app_reload_{i}, sql: SELECT 1 AS value, interval: 2s, timeout: 1s }}\n"
            ));
        }
        text
    };
    // Every source probed and its check read: both pools have connected.
    let every_check = |m: &Scrape| {
        (0..12).all(|i| {
            m.get(&format!("app_reload_{i}"), &[]).is_some()
                && m.get("pulse_source_up", &[("source", &format!("pg{i}"))]) == Some(1.0)
        })
    };
    let e = Exporter::start(&config(12));
    e.wait_for("every check read", Duration::from_secs(60), every_check)
        .await;
    // A few rounds so that every pool has opened what it keeps (the statistics checks are
    // off: the health probe and the check alone hold connections, and come back alike).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pool = pg().await;
    let before = connections_named(&pool, &app).await;
    let fds_before = fds(e.child.id());
    assert!(before >= 12, "each source holds a connection: {before}");
    for cycle in 0..12 {
        for n in [2, 12] {
            e.write_config(&config(n));
            let reloaded = e.reload().await;
            assert_eq!(reloaded.status(), 200, "cycle {cycle}, {n} sources");
        }
    }
    e.wait_for(
        "every check read again",
        Duration::from_secs(60),
        every_check,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // What the removed sources held closes as they stop; poll, within a bound far above it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut after = connections_named(&pool, &app).await;
    while after > before + 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = connections_named(&pool, &app).await;
    }
    let fds_after = fds(e.child.id());
    println!("server connections of twelve sources: {before} before, {after} after 24 reloads; descriptors (all, sockets) {fds_before:?}, {fds_after:?}");
    assert!(
        after <= before + 3,
        "{before} connections before 24 reloads, {after} after (at the same twelve sources)"
    );
    assert!(
        fds_after.0 <= fds_before.0 + 5 && fds_after.1 <= fds_before.1 + 5,
        "descriptors (all, sockets) {fds_before:?} before 24 reloads, {fds_after:?} after"
    );
}
