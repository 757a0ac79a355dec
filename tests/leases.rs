//! Targets from the platform's service discovery, leased through templates: fifty targets (40
//! databases on a Postgres cluster of the test's own, and two databases on each of five private Redis servers) found by two real
//! Prometheus servers through HTTP SD, sharded by the `hashmod` the generated scrape config
//! carries over two exporter replicas; what a first scrape answers, and every refusal.

use pulse_test_support as common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Target lists by name.
type Lists = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

/// The HTTP SD server of the test: target lists by path, changed while Prometheus reads them.
struct Discovery {
    port: u16,
    lists: Lists,
    task: tokio::task::JoinHandle<()>,
}

impl Discovery {
    async fn start(lists: BTreeMap<String, Vec<String>>) -> Discovery {
        use axum::extract::{Path, State};
        let lists = Arc::new(Mutex::new(lists));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route(
                "/{list}",
                axum::routing::get(
                    |State(lists): State<Lists>, Path(list): Path<String>| async move {
                        let targets = lists.lock().unwrap().get(&list).cloned();
                        axum::Json(serde_json::json!([{ "targets": targets.unwrap_or_default() }]))
                    },
                ),
            )
            .with_state(lists.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Discovery { port, lists, task }
    }

    fn url(&self, list: &str) -> String {
        format!("http://127.0.0.1:{}/{list}", self.port)
    }

    fn remove(&self, list: &str, targets: &[String]) {
        if let Some(l) = self.lists.lock().unwrap().get_mut(list) {
            l.retain(|t| !targets.contains(t));
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The exporter config: a Postgres template over the test's databases on the server at
/// `pg_port`, one pooled connection per target (and the health probe's own), tagged with the
/// replica (`PULSE_REPLICA`) so the test can tell whose they are; a Redis template over
/// loopback ports.
fn config(marker: &str, pg_port: u16, idle: &str) -> String {
    format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
templates:
  - name: pg
    kind: postgres
    url: "postgres://postgres@{{{{target}}}}?application_name={marker}_${{env:PULSE_REPLICA}}"
    max_connections: 1
    allowed_targets: ['127\.0\.0\.1:{pg_port}/{marker}_[0-9]+']
    idle: {idle}
    checks:
      - {{ metric: app_lease_db, sql: "SELECT 1 AS value" }}
  - name: cache
    kind: redis
    url: "redis://{{{{target}}}}"
    allowed_targets: ['127\.0\.0\.1:[0-9]+(/1)?']
    idle: {idle}
    keys: [{{ key: "{marker}", metric: app_lease_depth }}]
"#
    )
}

/// The replicas (application names) connected to each database of `marker`'s, and how many
/// connections they hold together.
async fn connections(pool: &sqlx::PgPool, marker: &str) -> BTreeMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT datname::text, count(DISTINCT application_name), count(*) FROM pg_stat_activity \
         WHERE application_name LIKE $1 GROUP BY 1",
    )
    .bind(format!("{marker}_r%"))
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(db, replicas, n)| (db, (replicas, n)))
        .collect()
}

/// Targets scraped successfully by the Prometheus at `prom`, by instance.
async fn scraped(prom: &str) -> BTreeSet<String> {
    query(prom, "up{job=~\"pulse-.*\"} == 1")
        .await
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn fifty_targets_from_sd_run_once_across_two_prometheus_shards_and_two_replicas() {
    // 40 databases, each target two connections (its pool's and its health probe's): 80 of
    // a server's 100. On a cluster of the test's own, so that the files running beside this
    // one (scripts/test runs three lanes) keep the shared server's connections; removed, with
    // the databases, when the test ends however it ends.
    const DATABASES: usize = 40;
    let marker = unique("lease").replace('-', "_");
    let tmp = postgres_owned_tempdir();
    let data = tmp.path().join("data");
    PgCluster::init(&data);
    let cluster = PgCluster::start(data, free_port());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&cluster.url())
        .await
        .unwrap();
    let names: Vec<String> = (0..DATABASES).map(|i| format!("{marker}_{i}")).collect();
    for name in &names {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut redis_targets = Vec::new();
    let mut _redis = Vec::new();
    for i in 0..5 {
        let (server, port) = own_redis_server(&dir.path().join(format!("redis-{i}.log")));
        _redis.push(server);
        // Two targets per server: its db 0 and db 1 (a target's /NAME is the URL's path).
        redis_targets.push(format!("127.0.0.1:{port}"));
        redis_targets.push(format!("127.0.0.1:{port}/1"));
    }
    let pg_targets: Vec<String> = names
        .iter()
        .map(|n| format!("127.0.0.1:{}/{n}", cluster.port))
        .collect();
    let sd = Discovery::start(BTreeMap::from([
        ("pg".to_owned(), pg_targets.clone()),
        ("cache".to_owned(), redis_targets.clone()),
    ]))
    .await;
    let all: BTreeSet<String> = pg_targets.iter().chain(&redis_targets).cloned().collect();
    assert_eq!(all.len(), 50);

    let replicas = [
        // Six missed scrapes before a lease ends for idleness: a Prometheus starved by a busy
        // machine for a few seconds must not end a kept target's lease.
        Exporter::start_with(
            &config(&marker, cluster.port, "6s"),
            &[],
            &[("PULSE_REPLICA", "r0")],
        ),
        Exporter::start_with(
            &config(&marker, cluster.port, "6s"),
            &[],
            &[("PULSE_REPLICA", "r1")],
        ),
    ];
    let addresses: Vec<String> = replicas
        .iter()
        .map(|e| format!("127.0.0.1:{}", e.port))
        .collect();
    let mut proms = Vec::new();
    for shard in 0..2 {
        let mut args = vec![
            "scrape-config".to_owned(),
            "--config.file".into(),
            replicas[0].config_path.display().to_string(),
            "--targets".into(),
            format!("pg={}", sd.url("pg")),
            "--targets".into(),
            format!("cache={}", sd.url("cache")),
            "--prometheus.shards".into(),
            "2".into(),
            "--prometheus.shard".into(),
            shard.to_string(),
        ];
        for a in &addresses {
            args.extend(["--exporter".to_owned(), a.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run_cli(&args, &[("PULSE_REPLICA", "r0")]);
        assert_eq!(code, 0, "{err}");
        let generated = write_temp(dir.path(), &format!("generated-{shard}.yml"), &out);
        run_ok(
            std::process::Command::new("promtool").args([
                "check",
                "config",
                generated.to_str().unwrap(),
            ]),
            "promtool check config",
        );
        // Time compressed for the test: scrapes and discovery every second.
        let scraper = Scraper::with_config(&every_second(&out), &[]).await;
        proms.push((scraper.url.clone(), scraper));
    }

    // Every target scraped, by one Prometheus only, each with its own `up` and series.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (first, second) = loop {
        let first = scraped(&proms[0].0).await;
        let second = scraped(&proms[1].0).await;
        let healthy = values(&proms[0].0, "pulse_source_up == 1").await.len()
            + values(&proms[1].0, "pulse_source_up == 1").await.len();
        // Each database target's check, too: on a busy machine a first run can miss its
        // 800 ms timeout and publish at the next, a second later.
        let databases = values(&proms[0].0, "app_lease_db").await.len()
            + values(&proms[1].0, "app_lease_db").await.len();
        if first.len() + second.len() == 50 && healthy == 50 && databases == DATABASES {
            break (first, second);
        }
        assert!(
            Instant::now() < deadline,
            "not every target scraped and healthy: {} + {} scraped, {healthy} healthy, \
             {databases} of {DATABASES} databases' checks\n{}",
            first.len(),
            second.len(),
            replicas[0].logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    assert_eq!(first.union(&second).cloned().collect::<BTreeSet<_>>(), all);
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{first:?} {second:?}"
    );
    let databases = values(&proms[0].0, "app_lease_db").await.len()
        + values(&proms[1].0, "app_lease_db").await.len();
    assert_eq!(databases, DATABASES);
    for (prom, _) in &proms {
        // A target's health carries its own source label, and its checks' series are there.
        for s in query(prom, "pulse_source_up{job=\"pulse-pg\"}").await {
            let instance = s["metric"]["instance"].as_str().unwrap();
            assert_eq!(s["metric"]["source"], format!("pg/{instance}"), "{s}");
        }
    }
    // Each database is connected from one replica, not both: each target runs on one of
    // them, with its pooled connection and its health probe's.
    let open = connections(&pool, &marker).await;
    assert_eq!(open.len(), DATABASES, "{open:?}");
    assert!(
        open.values().all(|(replicas, n)| *replicas == 1 && *n <= 2),
        "{open:?}"
    );
    let mut leased = 0.0;
    for e in &replicas {
        let n = Scrape::parse(&e.get("/metrics").await)
            .get("pulse_leased_targets", &[])
            .unwrap();
        assert!(n > 0.0, "both replicas lease a share");
        leased += n;
    }
    assert_eq!(leased, 50.0);
    let page = replicas[0].get("/").await;
    assert!(page.contains("<h2>Leased targets</h2>"), "{page}");

    // Five databases leave discovery: their checks stop and their connections close within
    // the idle time (6s), plus discovery's refresh and the reaper's second.
    let removed: Vec<String> = pg_targets[..5].to_vec();
    sd.remove("pg", &removed);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let open = connections(&pool, &marker).await;
        let left = names[..5].iter().filter(|n| open.contains_key(*n)).count();
        if left == 0 {
            assert_eq!(
                open.len(),
                DATABASES - 5,
                "the others keep theirs: {open:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} removed targets still connected: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Each removed target's lease ended once, for idleness, on the replica that held it.
    for target in &removed {
        let needle = format!("target={target} ");
        let ended: usize = replicas
            .iter()
            .map(|e| count_lines(&e.logs(), &["event=lease.ended", "why=idle", &needle]))
            .sum();
        assert_eq!(ended, 1, "lease.ended lines for {target}");
    }
    pool.close().await;
}

#[tokio::test]
async fn a_first_scrape_answers_within_its_bound_and_refusals_say_why() {
    let marker = unique("lease").replace('-', "_");
    let hung = BlackHole::start().await;
    let e = Exporter::start(&format!(
        r#"
global: {{ max_leased_targets: 3 }}
templates:
  - name: pg
    kind: postgres
    url: "postgres://postgres@{{{{target}}}}?application_name={marker}"
    allowed_targets: ['127\.0\.0\.1:[0-9]+/postgres']
    checks:
      - {{ metric: app_lease_one, sql: "SELECT 1 AS value" }}
  - name: hung
    kind: redis
    url: "redis://{{{{target}}}}"
    health_timeout: 9s
    health_interval: 10s
    timeout: 9s
    interval: 10s
    allowed_targets: ['127\.0\.0\.1:[0-9]+']
    keys: [{{ key: "{marker}", metric: app_lease_hung }}]
"#
    ));
    let client = reqwest::Client::new();
    let ask = |query: String, timeout: &'static str| {
        let request = client
            .get(e.url(&format!("/probe?{query}")))
            .header("X-Prometheus-Scrape-Timeout-Seconds", timeout);
        async move {
            let started = Instant::now();
            let r = request.send().await.unwrap();
            let code = r.status().as_u16();
            (code, r.text().await.unwrap(), started.elapsed())
        }
    };

    // A healthy new target: the first scrape waits for the first results (its bound is 5s).
    let (code, body, _) = ask("template=pg&target=127.0.0.1:5432/postgres".into(), "10").await;
    assert_eq!(code, 200, "{body}");
    let first = Scrape::parse(&body);
    assert_eq!(first.get("pulse_probe_warming", &[]), Some(0.0), "{body}");
    assert_eq!(first.get("app_lease_one", &[]), Some(1.0), "{body}");
    let source = "pg/127.0.0.1:5432/postgres";
    assert_eq!(
        first.get("pulse_source_up", &[("source", source)]),
        Some(1.0)
    );
    // Not in /metrics: a leased target's series go to whoever leased it.
    let metrics = Scrape::parse(&e.get("/metrics").await);
    assert!(metrics.find("app_lease_one", &[]).is_empty());
    assert_eq!(metrics.get("pulse_leased_targets", &[]), Some(1.0));
    assert_eq!(metrics.get("pulse_leased_targets_max", &[]), Some(3.0));

    // A server that never answers: the first scrape answers 200 within its bound (half of
    // the 2s scrape timeout), partial and saying so; never a 5xx.
    let (code, body, took) =
        ask(format!("template=hung&target=127.0.0.1:{}", hung.port), "2").await;
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let warm = Scrape::parse(&body);
    assert_eq!(warm.get("pulse_probe_warming", &[]), Some(1.0), "{body}");
    assert!(warm.find("app_lease_hung", &[]).is_empty(), "{body}");

    let refusals = [
        (
            "template=nope&target=127.0.0.1:5432".to_owned(),
            404,
            "no template named \"nope\": the config has 2",
        ),
        (
            "template=pg&target=10.0.0.5:5432/postgres".to_owned(),
            403,
            "outside template \"pg\"'s allowed_targets",
        ),
        (
            "template=pg&target=evil@127.0.0.1:5432/postgres".to_owned(),
            400,
            "is not an address",
        ),
        (
            "template=pg&target=127.0.0.1:5432/postgres%3Fsslmode%3Ddisable".to_owned(),
            400,
            "is not an address",
        ),
        (
            "target=127.0.0.1:5432".to_owned(),
            400,
            "needs `&template=NAME`",
        ),
    ];
    for (query, status, says) in refusals {
        let (code, body, _) = ask(query.clone(), "10").await;
        assert_eq!(code, status, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    // The lease table holds three: a third target fits, a fourth is refused until one lapses.
    let (code, _, _) = ask("template=pg&target=127.0.0.1:5433/postgres".into(), "1").await;
    assert_eq!(code, 200);
    let (code, body, _) = ask("template=pg&target=127.0.0.1:5434/postgres".into(), "1").await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("3 targets are leased, global.max_leased_targets"),
        "{body}"
    );
    // A leased target is renewed, not refused.
    let (code, _, _) = ask("template=pg&target=127.0.0.1:5432/postgres".into(), "1").await;
    assert_eq!(code, 200);
    assert_eq!(
        count_lines(&e.logs(), &["event=lease.started"]),
        3,
        "{}",
        e.logs()
    );
}

/// GETs `/probe` for `target` through the template `fleet`, with a scrape timeout of
/// `timeout` seconds as Prometheus says it: the answer's text and how long it took.
async fn probe_target(e: &Exporter, target: &str, timeout: u32) -> (String, Duration) {
    let started = Instant::now();
    let text = reqwest::Client::new()
        .get(e.url(&format!("/probe?template=fleet&target={target}")))
        .header("X-Prometheus-Scrape-Timeout-Seconds", timeout.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (text, started.elapsed())
}

/// A hung target (it accepts and never answers): the first scrape of its lease waits for
/// first results (half the scrape timeout, 2 s), every later one is answered from the cache
/// at once while its first runs are still pending, warming all the while.
#[tokio::test]
async fn only_the_first_scrape_of_a_hung_target_waits() {
    let hung = BlackHole::start().await;
    let e = Exporter::start(
        "global: { health_timeout: 20s, health_interval: 30s, timeout: 20s, interval: 30s }\ntemplates:\n  - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['127\\.0\\.0\\.1:[0-9]+'] }\n",
    );
    let target = format!("127.0.0.1:{}", hung.port);
    let (text, first) = probe_target(&e, &target, 4).await;
    assert!(
        first >= Duration::from_millis(1500),
        "the first scrape waited only {first:?}"
    );
    assert!(text.contains("pulse_probe_warming 1"), "{text}");
    for i in 0..5 {
        // With a 30 s scrape timeout a scrape that waited for first results would take 10 s
        // (half the timeout, at most 10 s): far from what a busy machine adds to a request
        // answered at once.
        let (text, later) = probe_target(&e, &target, 30).await;
        assert!(
            later < Duration::from_secs(7),
            "scrape {i} after the first waited {later:?}"
        );
        assert!(text.contains("pulse_probe_warming 1"), "{text}");
    }
}

/// Reloads that change the template while its ten targets are each scraped every
/// millisecond or so: a scrape that lands while a reload ends the leases takes a new one,
/// whose series must not go with the old ones (before the fix such a lease served nothing
/// for good). Within a bound after the last reload every target serves its source again.
#[tokio::test]
async fn reloads_that_change_a_template_under_fast_scrapes_leave_no_lease_serving_nothing() {
    let template = |idle: &str| {
        format!("global: {{ health_interval: 1s, health_timeout: 800ms, interval: 1s, timeout: 800ms }}\ntemplates:\n  - {{ name: fleet, kind: redis, url: 'redis://{{{{target}}}}', allowed_targets: ['127\\.0\\.0\\.1:6379/[0-9]+'], idle: {idle} }}\n")
    };
    let e = Exporter::start(&template("5m"));
    let targets: Vec<String> = (0..10).map(|db| format!("127.0.0.1:6379/{db}")).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scrapers: Vec<_> = targets
        .iter()
        .map(|target| {
            let url = e.url(&format!("/probe?template=fleet&target={target}"));
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client.get(&url).send().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for round in 0..16 {
        e.write_config(&template(if round % 2 == 0 { "6m" } else { "5m" }));
        assert!(e.reload().await.status().is_success());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in scrapers {
        let _ = s.await;
    }
    // Scraped on: within a few health intervals each target's lease serves its source.
    let deadline = Instant::now() + Duration::from_secs(60);
    for target in &targets {
        let up = format!("pulse_source_up{{source=\"fleet/{target}\",kind=\"redis\"}} 1");
        loop {
            let (text, _) = probe_target(&e, target, 4).await;
            if text.contains(&up) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the lease of {target} serves nothing:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
