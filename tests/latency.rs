//! Query latency from the databases' own statistics, against real servers of every version
//! the matrix holds: a private Postgres with `pg_stat_statements` preloaded, where one
//! statement filters a 200,000-row table without an index (it leads the statements by time
//! with its text, the table leads those read whole, and both fall back once the index
//! exists; on 16+ its plan moves from a sequential scan to the index and back when the index
//! is dropped, two plan changes), a statistics reset mid-run gives no negative or spiking window, and 10,000
//! distinct statements keep the published rows at the top plus one; and private Redis and
//! Valkey servers where a big SORT shows in the command's histogram and the slow log, with no
//! argument in any label, while a server that forbids LATENCY still publishes the rest.
//!
//! Costs about two minutes: the versions run side by side, each window is 10 s (the shortest
//! `statements.interval`).

use pulse_test_support as common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Scrapes `exporter` until `ready` holds (`secs` at most), on a runtime of this thread's.
fn scrape_when(
    exporter: &Exporter,
    what: &str,
    secs: u64,
    ready: impl Fn(&Scrape) -> bool,
) -> Scrape {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(exporter.wait_for(what, Duration::from_secs(secs), ready))
}

/// One scrape of `exporter` now.
fn scrape(exporter: &Exporter) -> Scrape {
    scrape_when(exporter, "a scrape", 5, |_| true)
}

/// The statement rows of database `postgres`: (queryid, window exec seconds).
fn statements(m: &Scrape) -> Vec<(String, f64)> {
    m.find(
        "pulse_postgres_statement_window_exec_seconds",
        &[("source", "db"), ("database", "postgres")],
    )
    .iter()
    .map(|s| (s.labels["queryid"].clone(), s.value))
    .collect()
}

/// The queryid whose text holds `needle`, if its info is published.
fn queryid_of(m: &Scrape, needle: &str) -> Option<String> {
    m.find("pulse_postgres_statement_info", &[("source", "db")])
        .iter()
        .find(|s| s.labels["text"].contains(needle))
        .map(|s| s.labels["queryid"].clone())
}

/// The statement that took the most time in the window, `other` aside.
fn leader(m: &Scrape) -> Option<(String, f64)> {
    statements(m)
        .into_iter()
        .filter(|(q, _)| q != "other")
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Rows read whole from `table` in the window, if it is among the published tables.
fn seq_rows(m: &Scrape, table: &str) -> Option<f64> {
    m.get(
        "pulse_postgres_table_window_seq_rows_read",
        &[("source", "db"), ("table", table)],
    )
}

/// A workload running on its own thread until dropped: every half second, five lookups of
/// users by email (a sequential scan until the index exists) and five small counts.
struct Workload {
    stop: Arc<AtomicBool>,
    lookups: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Workload {
    fn start(port: u16) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let lookups = Arc::new(AtomicU64::new(0));
        let (s, l) = (stop.clone(), lookups.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let mut sql = String::new();
                for _ in 0..5 {
                    n += 1;
                    sql.push_str(&format!(
                        "SELECT id FROM lat_users WHERE email = 'user{}@example.com'; \
                         SELECT count(*) FROM lat_plans; ",
                        n * 7919 % 200_000
                    ));
                }
                psql_at(port, &sql);
                l.fetch_add(5, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Workload {
            stop,
            lookups,
            thread: Some(thread),
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits for the plan of statement `queryid` to read by sequential scan or not (`seq_scan`)
/// after `changes` plan changes (any, for `None`), and returns its hash.
fn plan_when(
    exporter: &Exporter,
    name: &str,
    queryid: &str,
    seq_scan: bool,
    changes: Option<f64>,
) -> String {
    let statement = [("source", "db"), ("queryid", queryid)];
    let what =
        format!("{name}: the plan of {queryid} with seq_scan {seq_scan}, {changes:?} changes");
    let m = scrape_when(exporter, &what, 90, |m| {
        m.get("pulse_postgres_statement_plan_seq_scan", &statement)
            == Some(f64::from(u8::from(seq_scan)))
            && changes.is_none_or(|n| {
                m.get("pulse_postgres_statement_plan_changes_total", &statement) == Some(n)
            })
    });
    let info = m.find("pulse_postgres_statement_plan_info", &statement);
    assert_eq!(info.len(), 1, "{name}: {info:?}");
    info[0].labels["plan"].clone()
}

/// Every Postgres version of the matrix, with pg_stat_statements preloaded.
#[test]
fn statements_and_tables_read_whole_on_every_postgres_version() {
    let servers = servers("postgres");
    each_version(&servers, |s| {
        let tmp = postgres_owned_tempdir();
        let dir = tmp.path().join("db");
        s.initdb(&dir);
        let port = listen_port();
        let _server = s.start_postgres(
            &dir,
            port,
            &[
                "shared_preload_libraries=pg_stat_statements",
                "pg_stat_statements.max=1000",
                "track_io_timing=on",
            ],
        );
        psql_at(
            port,
            "CREATE EXTENSION pg_stat_statements; \
             CREATE TABLE lat_users (id serial, email text, plan text); \
             INSERT INTO lat_users (email, plan) SELECT 'user' || i || '@example.com', \
               CASE WHEN i % 10 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(1, 200000) i; \
             CREATE TABLE lat_plans (name text); INSERT INTO lat_plans VALUES ('free'), ('pro'); \
             ANALYZE",
        );
        let exporter = Exporter::start(&format!(
            r#"
global: {{ health_interval: 1s, health_timeout: 900ms }}
sources:
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:{port}/postgres
    statements: {{ interval: 10s, top: 5, plans: {{ interval: 10s }} }}
    tables: {{ interval: 10s, top: 5 }}
"#
        ));
        let name = &s.name;
        let plans = version_key(&s.version)[0] >= 16;
        let workload = Workload::start(port);

        // The lookup filters 200,000 rows without an index: it leads, with its text, and
        // its table leads the tables read whole.
        let m = scrape_when(&exporter, "the lookup to lead with its text", 60, |m| {
            let lookup = queryid_of(m, "lat_users WHERE email = $1");
            lookup.is_some()
                && leader(m).map(|l| l.0) == lookup
                && seq_rows(m, "lat_users").is_some_and(|r| r >= 200_000.0)
        });
        let lookup = queryid_of(&m, "lat_users WHERE email = $1").unwrap();
        eprintln!(
            "{name} before the index: {:?} {:?}",
            statements(&m),
            seq_rows(&m, "lat_users")
        );
        assert_eq!(
            m.get("pulse_postgres_statements_available", &[("source", "db")]),
            Some(1.0),
            "{name}"
        );
        // Its plan reads the table whole (Postgres 16+; older servers say why there is none).
        let seq_plan = match plans {
            true => Some(plan_when(&exporter, name, &lookup, true, None)),
            false => {
                let m = scrape_when(&exporter, "plans skipped for the version", 30, |m| {
                    m.get(
                        "pulse_postgres_statement_plans_skipped_total",
                        &[("source", "db"), ("reason", "server_version")],
                    )
                    .is_some_and(|n| n >= 1.0)
                });
                assert!(
                    m.find("pulse_postgres_statement_plan_info", &[]).is_empty(),
                    "{name}"
                );
                None
            }
        };
        let mean_before = m
            .get(
                "pulse_postgres_statement_window_mean_exec_seconds",
                &[("source", "db"), ("queryid", lookup.as_str())],
            )
            .unwrap();
        let tables = m.find(
            "pulse_postgres_table_window_seq_rows_read",
            &[("source", "db")],
        );
        let most = tables
            .iter()
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .unwrap();
        assert_eq!(most.labels["table"], "lat_users", "{name}: {tables:?}");
        assert_eq!(most.labels["schema"], "public", "{name}");
        assert_eq!(
            m.get(
                "pulse_postgres_table_live_rows",
                &[("source", "db"), ("table", "lat_users")]
            ),
            Some(200_000.0),
            "{name}"
        );
        // PulsePostgresBigTableReadWhole's bounds, at their defaults, and what they judge: a
        // table above 100k rows read whole more than once a minute, from the first window.
        let limit = |family: &str| m.get(family, &[("source", "db")]);
        assert_eq!(
            limit("pulse_postgres_tables_whole_read_min_rows"),
            Some(100_000.0)
        );
        assert_eq!(
            limit("pulse_postgres_tables_whole_reads_per_minute_limit"),
            Some(1.0)
        );
        let seconds = m
            .get("pulse_postgres_tables_window_seconds", &[("source", "db")])
            .unwrap();
        let whole_reads_a_minute = most.value / seconds * 60.0 / 200_000.0;
        assert!(
            whole_reads_a_minute > 1.0,
            "{name}: the lookup reads lat_users whole {whole_reads_a_minute:.1} times a minute"
        );
        // The rows of the database add up: every statement row and `other` are in one window.
        let window = m
            .get(
                "pulse_postgres_statements_window_seconds",
                &[("source", "db")],
            )
            .unwrap();
        assert!((8.0..=30.0).contains(&window), "{name}: window {window}");

        // With an index, the lookup no longer reads the table: both fall back.
        psql_at(
            port,
            "CREATE INDEX lat_users_email ON lat_users (email); ANALYZE lat_users",
        );
        let changed = Instant::now();
        let m = scrape_when(
            &exporter,
            "the lookup and the table to fall back",
            60,
            |m| {
                changed.elapsed() > Duration::from_secs(12)
                    && seq_rows(m, "lat_users").is_none()
                    && m.get(
                        "pulse_postgres_statement_window_mean_exec_seconds",
                        &[("source", "db"), ("queryid", lookup.as_str())],
                    )
                    .is_none_or(|mean| mean < mean_before / 5.0)
            },
        );
        assert!(seq_rows(&m, "lat_users").is_none(), "{name}");
        eprintln!(
            "{name} after the index: {:?} mean before {mean_before}",
            statements(&m)
        );
        // The plan moved to the index, one change; with the index dropped, it moves back.
        if let Some(seq_plan) = seq_plan {
            let index_plan = plan_when(&exporter, name, &lookup, false, Some(1.0));
            assert_ne!(index_plan, seq_plan, "{name}");
            psql_at(port, "DROP INDEX lat_users_email");
            let again = plan_when(&exporter, name, &lookup, true, Some(2.0));
            assert_eq!(again, seq_plan, "{name}: the same shape hashes the same");
            let m = scrape(&exporter);
            // (`failed` counts the exporter's own statements: normalisation makes
            // `extract('epoch' FROM …)` an unparsable `extract($1 FROM …)`.)
            for reason in ["writes", "refused", "timeout", "database"] {
                assert_eq!(
                    m.get(
                        "pulse_postgres_statement_plans_skipped_total",
                        &[("source", "db"), ("reason", reason)]
                    ),
                    Some(0.0),
                    "{name}: {reason}"
                );
            }
        }

        // A reset mid-run: no window goes negative or counts a history.
        let per_window = 12.0 * 10.0 * 2.0;
        psql_at(port, "SELECT pg_stat_statements_reset()");
        let start = Instant::now();
        let mut seen_after = 0;
        while start.elapsed() < Duration::from_secs(25) {
            let m = scrape(&exporter);
            for s in m.find("pulse_postgres_statement_window_calls", &[("source", "db")]) {
                assert!(s.value >= 0.0, "{name}: {s:?}");
                assert!(
                    s.value <= per_window + 100.0,
                    "{name}: a spike after the reset: {s:?} (about {per_window} a window at most)"
                );
            }
            for s in m.find(
                "pulse_postgres_statement_window_exec_seconds",
                &[("source", "db")],
            ) {
                assert!(s.value >= 0.0 && s.value < 30.0, "{name}: {s:?}");
            }
            seen_after += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(seen_after > 10);
        let made = workload.lookups.load(Ordering::Relaxed);
        drop(workload);
        assert!(made > 100, "{name}: the workload ran {made} lookups");

        // 10,000 distinct statements (a hundred tables, ten columns, ten predicates): the top
        // plus one `other` row, whatever the server evicts.
        let mut setup = String::new();
        for t in 0..100 {
            let cols: Vec<String> = (0..10).map(|c| format!("c{c} int")).collect();
            setup.push_str(&format!("CREATE TABLE lat_t{t} ({}); ", cols.join(", ")));
        }
        psql_at(port, &setup);
        let preds = [
            "= 1",
            "<> 1",
            "< 1",
            "> 1",
            "<= 1",
            ">= 1",
            "IN (1, 2)",
            "IS NULL",
            "IS NOT NULL",
            "BETWEEN 1 AND 2",
        ];
        let mut many = String::new();
        for t in 0..100 {
            for c in 0..10 {
                for p in preds {
                    many.push_str(&format!("SELECT count(*) FROM lat_t{t} WHERE c{c} {p};\n"));
                }
            }
        }
        let file = tmp.path().join("many.sql");
        std::fs::write(&file, many).unwrap();
        let flood = Instant::now();
        psql_with(
            port,
            &[
                "-o".as_ref(),
                "/dev/null".as_ref(),
                "-f".as_ref(),
                file.as_os_str(),
            ],
            "psql -f many.sql",
        );
        // The window of the flood: of the statements the server kept (1,000 at most), those
        // outside the top add up in `other`.
        let m = scrape_when(&exporter, "a window over the 10,000 statements", 60, |m| {
            flood.elapsed() > Duration::from_secs(5)
                && m.sum(
                    "pulse_postgres_statement_window_calls",
                    &[("source", "db"), ("queryid", "other")],
                ) >= 500.0
        });
        let rows = m.find(
            "pulse_postgres_statement_window_calls",
            &[("source", "db"), ("database", "postgres")],
        );
        eprintln!("{name} after the flood: {rows:?}");
        assert_eq!(rows.len(), 6, "{name}: the top 5 and other: {rows:?}");
        // 10,000 statements through 1,000 places: the server evicted, and says so.
        assert_eq!(
            m.get("pulse_postgres_statements_max_entries", &[("source", "db")]),
            Some(1000.0),
            "{name}"
        );
        let evictions = m
            .get(
                "pulse_postgres_statements_deallocations_total",
                &[("source", "db")],
            )
            .unwrap();
        assert!(evictions >= 1.0, "{name}: {evictions} evictions");
        assert!(
            m.find("pulse_postgres_statement_info", &[("source", "db")])
                .len()
                <= 5,
            "{name}: at most one text per statement of the top"
        );
    });
}

/// Every Redis and Valkey version of the matrix: a big SORT is slow, and shows as such.
#[test]
fn slow_commands_show_in_histograms_and_the_slow_log_on_every_redis_version() {
    let servers = servers("redis");
    each_version(&servers, |s| {
        let dir = tempfile::tempdir().unwrap();
        let server = s.start_redis(dir.path(), &["--slowlog-log-slower-than", "1000"]);
        // A server whose operator forbade LATENCY (a managed service's renamed command).
        let forbidding = s.start_redis(dir.path(), &["--rename-command", "LATENCY", ""]);
        let exporter = Exporter::start(&format!(
            r#"
global: {{ health_interval: 1s, health_timeout: 900ms }}
sources:
  - name: cache
    kind: redis
    url: redis://127.0.0.1:{}
    latency: {{ interval: 10s }}
  - name: managed
    kind: redis
    url: redis://127.0.0.1:{}
    latency: {{ interval: 10s }}
"#,
            server.port, forbidding.port
        ));
        let name = &s.name;
        // The first read is the slow log's baseline.
        let first = scrape_when(&exporter, "the first reads", 30, |m| {
            m.get("pulse_redis_slowlog_entries_total", &[("source", "cache")]) == Some(0.0)
                && m.get(
                    "pulse_redis_slowlog_entries_total",
                    &[("source", "managed")],
                )
                .is_some()
        });
        let managed_first = first
            .get(
                "pulse_check_last_success_timestamp_seconds",
                &[("source", "managed"), ("check", "latency")],
            )
            .unwrap();
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
        let mut conn = client.get_connection().unwrap();
        let secret_key = "customer:4242:secret-token";
        for chunk in 0..30 {
            let values: Vec<u64> = (0..10_000)
                .map(|i| (i * 7919 + chunk * 31) % 1_000_003)
                .collect();
            redis::cmd("RPUSH")
                .arg(secret_key)
                .arg(values)
                .query::<u64>(&mut conn)
                .unwrap();
        }
        for _ in 0..3 {
            redis::cmd("SORT")
                .arg(secret_key)
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query::<Vec<String>>(&mut conn)
                .unwrap();
        }
        let m = scrape_when(
            &exporter,
            "the SORTs in the histogram and the slow log",
            45,
            |m| {
                m.get(
                    "pulse_redis_slowlog_slowest_seconds",
                    &[("source", "cache"), ("command", "sort")],
                )
                .is_some()
                    && m.get(
                        "pulse_redis_command_duration_seconds_count",
                        &[("source", "cache"), ("command", "sort")],
                    ) == Some(3.0)
            },
        );
        let slowest = m
            .get(
                "pulse_redis_slowlog_slowest_seconds",
                &[("source", "cache"), ("command", "sort")],
            )
            .unwrap();
        assert!(slowest >= 0.001, "{name}: {slowest}");
        assert!(
            m.get("pulse_redis_slowlog_entries_total", &[("source", "cache")])
                .unwrap()
                >= 3.0,
            "{name}"
        );
        // The SORTs are in buckets of a millisecond or more.
        let fast = m
            .find(
                "pulse_redis_command_duration_seconds_bucket",
                &[("source", "cache"), ("command", "sort")],
            )
            .iter()
            .filter(|b| b.labels["le"] != "+Inf" && b.labels["le"].parse::<f64>().unwrap() < 0.001)
            .map(|b| b.value)
            .fold(0.0, f64::max);
        assert_eq!(fast, 0.0, "{name}: no SORT under a millisecond");
        assert!(
            m.get(
                "pulse_redis_command_calls_total",
                &[("source", "cache"), ("command", "rpush")]
            )
            .unwrap()
                >= 30.0
        );
        assert!(
            m.get(
                "pulse_redis_command_seconds_total",
                &[("source", "cache"), ("command", "sort")]
            )
            .unwrap()
                >= 0.003
        );
        for s in &m.series {
            for (k, v) in &s.labels {
                assert!(!v.contains("customer"), "{name}: an argument in {k}: {s:?}");
            }
        }
        // Without LATENCY: commandstats and the slow log still, no histogram, one log line.
        let m = scrape_when(&exporter, "the managed server's second read", 30, |m| {
            m.get(
                "pulse_check_last_success_timestamp_seconds",
                &[("source", "managed"), ("check", "latency")],
            )
            .is_some_and(|t| t > managed_first)
        });
        assert!(
            !m.find("pulse_redis_command_calls_total", &[("source", "managed")])
                .is_empty(),
            "{name}"
        );
        assert!(m
            .find(
                "pulse_redis_command_duration_seconds_count",
                &[("source", "managed")]
            )
            .is_empty());
        assert_eq!(
            m.get(
                "pulse_check_success",
                &[("source", "managed"), ("check", "latency")]
            ),
            Some(1.0)
        );
        let logs = exporter.logs();
        assert_eq!(
            logs.matches("LATENCY HISTOGRAM").count(),
            1,
            "{name}: logged once: {logs}"
        );
        drop(forbidding);
    });
}

/// The panels a generated dashboard draws for the statistics checks get data from a real
/// Prometheus, where the servers keep the statistics (the every-shape test of
/// tests/generated.rs runs against servers that do not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_latency_panels_have_data_in_prometheus() {
    // The newest: plans are read from Postgres 16 on.
    let postgres = servers("postgres").into_iter().last().unwrap();
    let tmp = postgres_owned_tempdir();
    let dir = tmp.path().join("db");
    postgres.initdb(&dir);
    let port = listen_port();
    let _pg = postgres.start_postgres(&dir, port, &["shared_preload_libraries=pg_stat_statements"]);
    psql_at(
        port,
        "CREATE EXTENSION pg_stat_statements; \
         CREATE TABLE lat_users (id serial, email text); \
         INSERT INTO lat_users (email) SELECT 'u' || i FROM generate_series(1, 50000) i; \
         CREATE TABLE lat_plans (name text); INSERT INTO lat_plans VALUES ('free')",
    );
    let redis_server = servers("redis").into_iter().next().unwrap();
    let redis_dir = tempfile::tempdir().unwrap();
    let cache = redis_server.start_redis(redis_dir.path(), &["--slowlog-log-slower-than", "1000"]);
    let exporter = Exporter::start(&format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 900ms }}
sources:
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:{port}/postgres
    statements: {{ interval: 10s }}
    tables: {{ interval: 10s }}
    load: {{ cpus: 2 }}
  - name: cache
    kind: redis
    url: redis://127.0.0.1:{}
    latency: {{ interval: 10s }}
"#,
        cache.port
    ));
    let workload = Workload::start(port);
    // A statement running most of the time, so that the load by statement has one the
    // statements top knows the text of.
    let sleeper = tokio::spawn(async move {
        use sqlx::Connection;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        loop {
            let _ = sqlx::query("SELECT pg_sleep(0.5)").execute(&mut conn).await;
        }
    });
    // Slow SORTs once the slow log's baseline is read.
    exporter
        .wait_for("the slow log's baseline", Duration::from_secs(30), |m| {
            m.get("pulse_redis_slowlog_entries_total", &[("source", "cache")]) == Some(0.0)
        })
        .await;
    let mut conn = redis_at(&format!("redis://127.0.0.1:{}", cache.port))
        .await
        .unwrap();
    let values: Vec<u64> = (0..200_000).map(|i| i * 7919 % 1_000_003).collect();
    let _: u64 = redis::cmd("RPUSH")
        .arg("big")
        .arg(values)
        .query_async(&mut conn)
        .await
        .unwrap();
    // A slow SORT every few seconds, so that every window has its slow log entry.
    let sorts = tokio::spawn(async move {
        loop {
            let _: Result<Vec<String>, _> = redis::cmd("SORT")
                .arg("big")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query_async(&mut conn)
                .await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });
    let board: serde_json::Value =
        serde_json::from_str(&exporter.get("/dashboards.json").await).unwrap();
    // The bundle's query latency rules, each group evaluated every second.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/rules/pulse-latency.yml"),
    )
    .unwrap();
    let every = regex::Regex::new(r"(?m)^(\s+interval:) \d+[ms]$").unwrap();
    let every_second = every.replace_all(&rules, "$1 1s");
    let scraper = Scraper::start(&[exporter.port], &[("latency.yml", &every_second)]).await;
    let prom = scraper.url.clone();
    let checks = ["statements", "tables", "latency"];
    // The running statements are the fallback published only while pg_stat_statements
    // cannot be read (tests/postgres.rs reads them): here it can.
    let fallback = "pulse_postgres_running_statement_seconds";
    let panels: Vec<GeneratedPanel> = generated_panels(&board)
        .into_iter()
        .filter(|p| {
            p.exprs
                .iter()
                .any(|e| checks.iter().any(|c| e.contains(&format!("check=\"{c}\""))))
                && !p.exprs.iter().any(|e| e.contains(fallback))
        })
        .collect();
    assert!(
        panels.len() >= 9,
        "{:#?}",
        panels.iter().map(|p| &p.title).collect::<Vec<_>>()
    );
    let missing =
        panels_without_data(&prom, &panels, Instant::now() + Duration::from_secs(90)).await;
    assert!(
        missing.is_empty(),
        "panels without data: {missing:#?}\n{}",
        exporter.logs()
    );
    for panel in &panels {
        assert!(
            !reads_degraded(&prom, panel).await,
            "{panel:?} reads DEGRADED while all is well"
        );
    }
    // The bundle's Query latency dashboard: every query has data but MongoDB's (no real
    // mongod here) and the usual (weeks of history).
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = bundle_queries_without_data(
        &prom,
        Some("pulse-query-latency"),
        |_, e| {
            e.contains("pulse_mongodb")
                || e.contains("signal:usual")
                || e.contains("mongodb_collection_mean_seconds")
        },
        deadline,
    )
    .await;
    assert!(
        missing.is_empty(),
        "bundle panels without data: {missing:#?}"
    );
    // The Database load dashboard's load, statements, pool and plans (Postgres 16+), and the
    // Redis load by command; tests/load.rs has the blockers and idle transactions, which
    // this workload has none of. Statements not explained are none here.
    let quiet_titles = [
        "Root blockers",
        "Idle in transaction: the oldest",
        "Operations waiting for a lock",
    ];
    let missing = bundle_queries_without_data(
        &prom,
        Some("pulse-database-load"),
        |title, e| {
            quiet_titles.contains(&title)
                || e.contains("pulse_mongodb")
                || e.contains("plans_skipped")
                || (title == "Sessions waiting behind root blockers"
                    && e.contains("blocker_waiting_sessions"))
        },
        deadline,
    )
    .await;
    assert!(
        missing.is_empty(),
        "database load panels without data: {missing:#?}\n{}",
        exporter.logs()
    );
    sorts.abort();
    sleeper.abort();
    drop(workload);
}
