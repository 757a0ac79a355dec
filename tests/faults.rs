//! Fault injection per source kind: Postgres, Redis, the RabbitMQ management API, MongoDB and
//! S3, each reached through a TCP proxy the test turns hung, slow, garbage-speaking or cut.
//! Each fault must take its own source down (and only it) while every scrape still answers,
//! and the source must come back when the proxy passes traffic again. Twenty cut/restore
//! cycles of every source must leave the exporter with the file descriptors it had.

use pulse_test_support as common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// The five sources, each behind its own proxy, and the config that reaches them.
struct Rig {
    proxies: Vec<(&'static str, Proxy)>,
    config: String,
}

/// A config with one source of each kind (pg, cache, broker, docs, files) on `ports`, in
/// that order, with `global` timing and `mongo_options` appended to the MongoDB URL.
fn five_sources(global: &str, ports: &[u16], mongo_options: &str, bucket: &str) -> String {
    format!(
        r#"
global: {global}
sources:
  - name: pg
    kind: postgres
    url: postgres://postgres@127.0.0.1:{}/postgres
    checks:
      - {{ metric: app_one, sql: 'SELECT 1 AS value' }}
  - name: cache
    kind: redis
    url: redis://127.0.0.1:{}
    checks:
      - {{ metric: app_dbsize, command: [DBSIZE] }}
  - name: broker
    kind: rabbitmq
    management_url: http://127.0.0.1:{}
    username: guest
    password: guest
    vhosts: [/]
  - name: docs
    kind: mongodb
    url: mongodb://127.0.0.1:{}/pulse_faults?directConnection=true{mongo_options}
  - name: files
    kind: s3
    bucket: {bucket}
    region: us-east-1
    endpoint: http://127.0.0.1:{}
    access_key_id: test
    secret_access_key: test
"#,
        ports[0], ports[1], ports[2], ports[3], ports[4]
    )
}

/// How soon a rig's sources are probed, and how long each probe may take.
#[derive(Clone, Copy)]
enum Timing {
    /// Every second, 800 ms each: for tests that wait until all sources agree.
    Quick,
    /// Every 3 s, 2 s each: for tests that assert the healthy sources are up at the moment
    /// one goes down, which a probe past its budget on a busy machine would contradict.
    Roomy,
}

async fn rig(bucket: &str, timing: Timing) -> Rig {
    let targets = [
        ("pg", "127.0.0.1:5432"),
        ("cache", "127.0.0.1:6379"),
        ("broker", "127.0.0.1:15672"),
        ("docs", "127.0.0.1:27017"),
        ("files", "127.0.0.1:9000"),
    ];
    let mut proxies = Vec::new();
    for (name, target) in targets {
        proxies.push((name, Proxy::start(target).await));
    }
    let ports: Vec<u16> = proxies.iter().map(|(_, p)| p.port).collect();
    let config = match timing {
        Timing::Quick => five_sources(
            "{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }",
            &ports,
            "&serverSelectionTimeoutMS=700&connectTimeoutMS=700",
            bucket,
        ),
        Timing::Roomy => five_sources(
            "{ interval: 3s, timeout: 2s, health_interval: 3s, health_timeout: 2s }",
            &ports,
            "&serverSelectionTimeoutMS=1800&connectTimeoutMS=1800",
            bucket,
        ),
    };
    Rig { proxies, config }
}

/// Scrapes every 100 ms until stopped; records the slowest answer and any failed scrape.
struct Scraper {
    stop: Arc<AtomicBool>,
    slowest_us: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    scrapes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Scraper {
    fn start(url: String) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let slowest_us = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s, sl, f, n) = (
            stop.clone(),
            slowest_us.clone(),
            failed.clone(),
            scrapes.clone(),
        );
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = match client.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                n.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                sl.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Scraper {
            stop,
            slowest_us,
            failed,
            scrapes,
            task,
        }
    }

    /// (scrapes, failed, slowest) so far.
    async fn finish(self) -> (u64, u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.scrapes.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            Duration::from_micros(self.slowest_us.load(Ordering::Relaxed)),
        )
    }
}

fn up(m: &Scrape, source: &str) -> Option<f64> {
    m.get("pulse_source_up", &[("source", source)])
}

async fn all_up(e: &Exporter, names: &[&str], why: &str) {
    e.wait_for(why, Duration::from_secs(30), |m| {
        names.iter().all(|s| up(m, s) == Some(1.0))
    })
    .await;
}

async fn new_bucket() -> String {
    let bucket = unique("pulse-faults").replace('_', "-");
    moto_bucket(&bucket).await;
    bucket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_slow_and_garbage_sources_go_down_alone_and_scrapes_still_answer() {
    let rig = rig(&new_bucket().await, Timing::Roomy).await;
    let names: Vec<&str> = rig.proxies.iter().map(|(n, _)| *n).collect();
    let e = Exporter::start(&rig.config);
    all_up(&e, &names, "every source up through its proxy").await;
    let scraper = Scraper::start(e.url("/metrics"));
    let mut report = Vec::new();
    for (name, proxy) in &rig.proxies {
        for mode in [
            Mode::Hang,
            Mode::Slow(Duration::from_secs(4)),
            Mode::Garbage,
        ] {
            proxy.set(mode).await;
            let t = Instant::now();
            let m = e
                .wait_for(
                    &format!("{name} down while {mode:?}"),
                    Duration::from_secs(30),
                    |m| up(m, name) == Some(0.0),
                )
                .await;
            let down_after = t.elapsed();
            for other in names.iter().filter(|o| *o != name) {
                assert_eq!(
                    up(&m, other),
                    Some(1.0),
                    "{other} must stay up while {name} is {mode:?}: {}",
                    e.logs()
                );
            }
            proxy.set(Mode::Pass).await;
            let t = Instant::now();
            all_up(&e, &names, &format!("{name} back after {mode:?}")).await;
            report.push(format!(
                "{name} {mode:?}: down after {:.1}s, back {:.1}s after the fault ended",
                down_after.as_secs_f64(),
                t.elapsed().as_secs_f64()
            ));
        }
    }
    let (scrapes, failed, slowest) = scraper.finish().await;
    println!("{}", report.join("\n"));
    println!("{scrapes} scrapes, {failed} failed, slowest {slowest:?}");
    assert_eq!(failed, 0, "every scrape is answered whatever a source does");
    // Not a speed target (this machine is shared): a scrape never waits on a source, so even a
    // loaded machine answers far inside Prometheus' default 10 s scrape timeout.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest scrape {slowest:?}"
    );
}

/// A Postgres slower to accept a connection than a check's connect budget (a third of its
/// timeout: 500 ms here, against 900 ms to the server's first answer) is still read: the
/// connection the budget cut short is finished in the background and kept for the next
/// run. sqlx alone drops a connection half-open with the run that asked for it, so every
/// attempt was cut and the check never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_slower_to_accept_than_the_connect_budget_is_still_read() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    proxy
        .set(Mode::SlowGreeting(Duration::from_millis(900)))
        .await;
    let e = Exporter::start(&format!(
        r#"
global: {{ interval: 2s, timeout: 1500ms, health_interval: 2s, health_timeout: 1500ms }}
sources:
  - name: pg
    kind: postgres
    url: postgres://postgres@127.0.0.1:{}/postgres
    # The check alone on the pool: no built-in check opens a connection for it.
    statements: false
    tables: false
    load: false
    checks:
      - {{ metric: app_one, sql: 'SELECT 1 AS value' }}
"#,
        proxy.port
    ));
    e.wait_for(
        "the check read through a slow accept",
        Duration::from_secs(30),
        |m| m.get("app_one", &[]) == Some(1.0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cut_and_restore_cycles_leak_no_descriptors_or_connections() {
    let rig = rig(&new_bucket().await, Timing::Quick).await;
    let names: Vec<&str> = rig.proxies.iter().map(|(n, _)| *n).collect();
    let e = Exporter::start(&rig.config);
    all_up(&e, &names, "every source up through its proxy").await;
    // A few more rounds so every pool has opened what it keeps.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = e.child.id();
    let before = fds(pid);
    for cycle in 0..20 {
        for (_, p) in &rig.proxies {
            p.cut();
        }
        e.wait_for(
            &format!("every source down, cycle {cycle}"),
            Duration::from_secs(30),
            |m| names.iter().all(|s| up(m, s) == Some(0.0)),
        )
        .await;
        for (_, p) in &rig.proxies {
            p.restore().await;
        }
        all_up(&e, &names, &format!("every source back, cycle {cycle}")).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = fds(pid);
    println!("descriptors (all, sockets): before {before:?}, after 20 cycles {after:?}");
    // Pools may hold a connection more or less at any moment; a leak of one per cycle would be
    // 20 or more.
    assert!(
        after.0 <= before.0 + 5 && after.1 <= before.1 + 5,
        "descriptors grew from {before:?} to {after:?}"
    );
}

#[tokio::test]
async fn megabyte_label_values_are_cut_and_memory_follows_the_config_not_the_data() {
    let p = unique("huge");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    // 20 workers whose ids are a megabyte each, beating now.
    let mut r = redis().await;
    let now = now_secs();
    for i in 0..20 {
        let id = format!("{i}{}", "w".repeat(1_000_000));
        let _: () = redis::AsyncCommands::set(&mut r, format!("{p}:hb:{id}"), now)
            .await
            .unwrap();
    }
    // Rows labelled by a megabyte of text each (before: 100 rows made a 100 MB scrape and
    // ~400 MiB of memory, 200 rows 687 MiB). Reading 400 MB took a busy machine past 10 s
    // fifteen runs in a row: the checks get 39 s (a long timeout costs nothing when the
    // machine is quiet), and what is asserted is the cut and the memory, counted in runs,
    // never how fast a loaded machine moves 400 MB.
    let config = |rows: u32| {
        format!(
            r#"
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: app_huge
        sql: SELECT g || repeat('x', 1000000) AS name, 1 AS value FROM generate_series(1, {rows}) g
        labels: [name]
        interval: 40s
        timeout: 39s
  - name: q
    kind: redis
    url: {REDIS_URL}
    heartbeats:
      - pool: huge
        pattern: "{p}:hb:*"
        interval: 40s
        timeout: 39s
"#
        )
    };
    let cut = |m: &Scrape, source: &str| {
        m.find(
            "pulse_check_label_values_truncated_total",
            &[("source", source)],
        )
        .iter()
        .map(|s| s.value)
        .sum::<f64>()
    };
    let e = Exporter::start(&config(100));
    let m = e
        .wait_for(
            "both checks cut their labels",
            Duration::from_secs(240),
            |m| cut(m, "db") >= 100.0 && cut(m, "q") >= 20.0,
        )
        .await;
    assert_eq!(m.find("app_huge", &[]).len(), 100, "distinct after the cut");
    let longest = m
        .series
        .iter()
        .flat_map(|s| s.labels.values())
        .map(String::len)
        .max()
        .unwrap();
    assert!(
        longest <= 256,
        "a label value of {longest} bytes was served"
    );
    let workers = m.find("pulse_worker_up", &[("pool", "huge")]);
    assert_eq!(workers.len(), 20, "every worker kept, by its cut id");
    assert!(
        m.text.len() < 200_000,
        "the scrape is {} bytes",
        m.text.len()
    );
    // Another run, then memory; then four times the rows (max_series keeps 1,000): memory
    // must not follow the megabytes read.
    let first = cut(&m, "db");
    e.wait_for("another run of 100 rows", Duration::from_secs(240), |m| {
        cut(m, "db") >= first + 100.0
    })
    .await;
    let small = rss_mib(e.child.id());
    e.write_config(&config(400));
    assert_eq!(e.reload().await.status(), 200);
    let before = cut(&e.metrics().await, "db");
    e.wait_for("400 rows cut", Duration::from_secs(240), |m| {
        cut(m, "db") >= before + 400.0
    })
    .await;
    // The cut is counted as rows are read; the run ends once they are all stored.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let large = rss_mib(e.child.id());
    eprintln!(
        "resident memory: {small:.0} MiB with 100 rows of a megabyte, {large:.0} MiB with 400"
    );
    assert!(
        large < small * 1.5,
        "RSS {small:.0} MiB with 100 rows of a megabyte, {large:.0} MiB with 400"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_fails_fast_as_connect_for_every_kind() {
    // Nothing listens on these ports: each probe must say `connect` well within its 10 s
    // timeout, never wait it out and say `timeout` (a wrong port is not a slow query).
    let ports: Vec<u16> = (0..5).map(|_| closed_port()).collect();
    let config = five_sources(
        "{ interval: 30s, timeout: 10s, health_interval: 30s, health_timeout: 10s }",
        &ports,
        "",
        "pulse-closed-port",
    );
    let started = Instant::now();
    let e = Exporter::start(&config);
    let names = ["pg", "cache", "broker", "docs", "files"];
    let failures = |m: &Scrape, s: &str, reason: &str| {
        m.get(
            "pulse_source_probe_failures_total",
            &[("source", s), ("reason", reason)],
        )
    };
    let m = e
        .wait_for("every source down", Duration::from_secs(30), |m| {
            names.iter().all(|s| up(m, s) == Some(0.0))
        })
        .await;
    let took = started.elapsed();
    let mut report = Vec::new();
    for s in names {
        let connect = failures(&m, s, "connect").unwrap_or(0.0);
        let timeout = failures(&m, s, "timeout").unwrap_or(0.0);
        let secs = m
            .get("pulse_source_probe_duration_seconds", &[("source", s)])
            .unwrap_or(f64::NAN);
        report.push(format!(
            "{s}: connect {connect} timeout {timeout} in {secs:.2}s"
        ));
        assert!(
            connect >= 1.0 && timeout == 0.0,
            "{s}: {report:?}\n{}",
            e.logs()
        );
        assert!(secs < 5.0, "{s} took {secs}s to fail: {report:?}");
    }
    // The checks, too, fail as connect (a pooled source must not retry to the timeout).
    for (s, check) in [("pg", "app_one"), ("cache", "app_dbsize")] {
        let m = e
            .wait_for(&format!("{s} check failed"), Duration::from_secs(20), |m| {
                m.get("pulse_check_success", &[("source", s), ("check", check)])
                    .is_some()
            })
            .await;
        assert_eq!(
            m.get("pulse_check_success", &[("source", s), ("check", check)]),
            Some(0.0)
        );
        let reason = m
            .get(
                "pulse_check_failures_total",
                &[("source", s), ("check", check), ("reason", "connect")],
            )
            .unwrap_or(0.0);
        assert!(reason >= 1.0, "{s}/{check}: {}", e.logs());
    }
    assert!(took < Duration::from_secs(8), "{report:?} after {took:?}");
}

/// An HTTP server on 127.0.0.1 that answers every request with `head` and then, when
/// `endless`, chunks of zeros until the client goes away.
/// Postgres checks that outnumber their pool, on a port nothing listens on: the checks that
/// wait for a slot wait on a server that refuses, not behind work, and fail as `connect`
/// like the first (they once waited out their timeout and said `timeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checks_queued_for_a_pool_slot_fail_as_connect_on_a_closed_port() {
    let port = closed_port();
    let checks = ["app_a", "app_b", "app_c", "app_d"];
    let config = format!(
        r#"
global: {{ interval: 30s, timeout: 10s, health_interval: 30s, health_timeout: 10s }}
sources:
  - name: pg
    kind: postgres
    url: postgres://postgres@127.0.0.1:{port}/postgres
    max_connections: 1
    checks:
{}
"#,
        checks
            .iter()
            .map(|c| format!("      - {{ metric: {c}, sql: 'SELECT 1 AS value' }}\n"))
            .collect::<String>()
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("every check failed", Duration::from_secs(40), |m| {
            let failed = m.find("pulse_check_success", &[("source", "pg")]);
            !failed.is_empty()
                && failed.iter().all(|s| s.value == 0.0)
                && checks.iter().all(|c| {
                    m.get("pulse_check_success", &[("source", "pg"), ("check", c)])
                        .is_some()
                })
        })
        .await;
    for s in m.find("pulse_check_success", &[("source", "pg")]) {
        let check = s.labels["check"].as_str();
        let reason = |r: &str| {
            m.get(
                "pulse_check_failures_total",
                &[("source", "pg"), ("check", check), ("reason", r)],
            )
            .unwrap_or(0.0)
        };
        assert!(
            reason("connect") >= 1.0 && reason("timeout") == 0.0,
            "{check}: connect {} timeout {}\n{}",
            reason("connect"),
            reason("timeout"),
            e.logs()
        );
    }
}

async fn answering_server(head: &'static str, endless: bool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = s.read(&mut request).await;
                if s.write_all(head.as_bytes()).await.is_err() || !endless {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "0".repeat(0x10000));
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    port
}

#[tokio::test]
async fn oversized_and_endless_answers_are_cut_off_as_too_large() {
    // A management API that declares 50 MB, one that streams a chunked body forever, and a
    // Redis value of 100 MB read by a GET check beside a healthy one.
    let declared = answering_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n[",
        false,
    )
    .await;
    let endless = answering_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    let key = unique("faults_big");
    let _cleanup = Cleanup::default().redis_keys(format!("{key}*"));
    let mut r = redis().await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("9".repeat(100 * 1024 * 1024))
        .query_async(&mut r)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{key}:small"))
        .arg("42")
        .query_async(&mut r)
        .await
        .unwrap();
    let rabbit = |name: &str, port: u16| {
        format!(
            "  - {{ name: {name}, kind: rabbitmq, management_url: 'http://127.0.0.1:{port}', \
             username: guest, password: guest, health_interval: 1s, health_timeout: 900ms }}\n"
        )
    };
    let config = format!(
        "sources:\n{}{}  - name: cache\n    kind: redis\n    url: {REDIS_URL}\n    checks:\n\
         \x20     - {{ metric: app_big, command: [GET, '{key}'], interval: 1s, timeout: 900ms }}\n\
         \x20     - {{ metric: app_small, command: [GET, '{key}:small'], interval: 1s, timeout: 900ms }}\n",
        rabbit("declared", declared),
        rabbit("endless", endless),
    );
    let e = Exporter::start(&config);
    let too_large = |m: &Scrape, source: &str| {
        m.sum(
            "pulse_source_probe_failures_total",
            &[("source", source), ("reason", "too_large")],
        ) + m.sum(
            "pulse_check_failures_total",
            &[("source", source), ("reason", "too_large")],
        )
    };
    let m = e
        .wait_for(
            "each oversized answer refused",
            Duration::from_secs(20),
            |m| {
                too_large(m, "declared") >= 2.0
                    && too_large(m, "endless") >= 2.0
                    && too_large(m, "cache") >= 2.0
                    && m.get("app_small", &[]) == Some(42.0)
                    && m.get("pulse_source_up", &[("source", "cache")]) == Some(1.0)
            },
        )
        .await;
    assert_eq!(m.get("app_big", &[]), None, "no inf, no value");
    for source in ["declared", "endless"] {
        assert_eq!(m.get("pulse_source_up", &[("source", source)]), Some(0.0));
    }
    // Two refusals each of a 16 MiB-bounded body: the endless one was never buffered whole.
    let rss = rss_mib(e.child.id());
    assert!(rss < 200.0, "{rss:.0} MiB resident");
    let logs = e.logs();
    assert!(logs.contains("over 16 MiB"), "{logs}");
}
