//! The whole bundle on this machine: the demo writing live data into the real services, the
//! two example exporters, Debian's Prometheus and Alertmanager with the repository's own
//! config and rules (ports rewritten; time compressed: `for:`, range windows and their offset
//! guards a tenth, the
//! completions window a quarter, evaluation intervals 1 s), and the dashboards' queries. A Redis
//! outage must reach Alertmanager (and its webhook receiver), turn the AI queue card DEGRADED,
//! and resolve after recovery; a scale-in of part of the GPU pool must page nobody; AI workers
//! that stop taking jobs must page through Alertmanager and resolve when they resume; signups
//! that stop must warn through the drop-against-usual rule `pulse-exporter rules` generates
//! for a `drop:` check (its periods a minute long), and resolve when they resume.

use pulse_test_support as common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn repo_file(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

/// The token of the roll-up job the HiveSync exporter declares.
const ROLLUP_TOKEN: &str = "e2e-rollup-token-0123456789";

/// A signups check with `drop:` whose history is minutes long: signups over the last 20
/// seconds against the same 20 seconds one and two minutes ago. The demo signs up about one
/// account for every ten events (`--rate 5`: ten in 20 seconds); under 0.3 of the usual, so
/// that chance (three or fewer in 20 seconds for 10 seconds) does not fire it first.
const LIVE_SIGNUPS: &str = "      - name: signups-live
        metric: app_users_signups_live
        help: Accounts created in the last 20 seconds.
        interval: 2s
        timeout: 1s
        sql: SELECT count(*) AS value FROM users WHERE created_at > now() - interval '20 seconds'
        drop: { ratio: 0.3, period: 1m, periods: 2, min_usual: 3, for: 10s }
        objective: true
";

/// The generated rules of the `drop:` checks of `config` (the `pulse-config-business` group
/// of `pulse-exporter rules`), only those of check `check`.
fn generated_drop_rules(config: &Path, check: &str) -> String {
    let (code, out, err) = run_cli(&["--config.file", config.to_str().unwrap(), "rules"], &[]);
    assert_eq!(code, 0, "{err}");
    let mut rules: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    let groups = rules["groups"].as_sequence_mut().unwrap();
    groups.retain(|g| g["name"] == "pulse-config-business");
    assert_eq!(groups.len(), 1, "the business group");
    let kept = groups[0]["rules"].as_sequence_mut().unwrap();
    kept.retain(|r| r["labels"]["check"] == check);
    assert_eq!(kept.len(), 1, "one drop alert for {check}");
    serde_yaml::to_string(&rules).unwrap()
}

/// The recording rules of the objectives `pulse-exporter rules` writes for `config`: what the
/// Objectives dashboard reads. Their burn alerts stay out: promtool replays them
/// (tests/generated.rs), and from a Prometheus a minute old a brief fault here would fire
/// them before the threshold alerts this test counts notifications of.
fn generated_objective_records(config: &Path) -> String {
    let (code, out, err) = run_cli(&["--config.file", config.to_str().unwrap(), "rules"], &[]);
    assert_eq!(code, 0, "{err}");
    let mut rules: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    let groups = rules["groups"].as_sequence_mut().unwrap();
    groups.retain(|g| g["name"] == "pulse-config-objectives");
    assert_eq!(groups.len(), 1, "the objectives group");
    let kept = groups[0]["rules"].as_sequence_mut().unwrap();
    kept.retain(|r| r.get("record").is_some());
    serde_yaml::to_string(&rules).unwrap()
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// The Stripe-shaped fake with one enabled endpoint, an event stuck for an hour and one in
/// flight, so every Stripe panel has data.
async fn stripe_fake() -> FakeStripe {
    let fake = FakeStripe::start(&[]).await;
    fake.set_endpoints(
        "",
        vec![endpoint_json(
            "we_e2e",
            "https://hayon.example.com/api/payments/webhook",
            "enabled",
        )],
    );
    fake.add_event("", now_secs() as i64 - 3600, "invoice.paid", 1);
    fake.add_event("", now_secs() as i64 - 30, "invoice.paid", 1);
    fake
}

/// Webhook bodies Alertmanager posted so far, with their paths.
async fn notifications(receiver: &MockServer) -> Vec<(String, String)> {
    receiver
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r.url.path().to_owned(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect()
}

/// Polls `expr` for up to `secs` until its result satisfies `done`; returns the last result.
async fn query_until(
    prom: &str,
    expr: &str,
    secs: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let result = query(prom, expr).await;
        if done(&result) || start.elapsed() > Duration::from_secs(secs) {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The first query of the dashboard panel titled `title`, its variables substituted.
fn panel_query(title: &str) -> String {
    let (_, _, exprs) = panels()
        .into_iter()
        .find(|(_, t, _)| t == title)
        .unwrap_or_else(|| panic!("no panel titled {title:?}"));
    substitute(&exprs[0])
}

/// Waits up to `secs` for a webhook notification whose (path, body) `matches`.
async fn notified(receiver: &MockServer, secs: u64, matches: impl Fn(&str, &str) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if notifications(receiver)
            .await
            .iter()
            .any(|(p, b)| matches(p, b))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_have_data_and_a_redis_outage_pages_through_alertmanager_and_resolves() {
    let name = unique("e2e");
    // Dropped last (locals drop in reverse), after the demo process has stopped.
    let _cleanup = demo_cleanup(&name);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = d.join("demo-logs");
    std::fs::create_dir(&logs).unwrap();

    // Live demo data in the real services.
    let mut demo_args: Vec<String> = ["demo", "--users", "200", "--days", "14", "--rate", "5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    demo_args.extend(demo_target_args(&name, &logs));
    let demo_args: Vec<&str> = demo_args.iter().map(String::as_str).collect();
    let _demo = spawn(bin(), &demo_args, &d.join("demo.log"));

    // S3 (moto) with the media bucket, Stripe (mock), Redis behind a proxy we can cut.
    let bucket = name.replace('_', "-");
    moto_bucket(&bucket).await;
    let stripe = stripe_fake().await;
    let redis_proxy = Proxy::start("127.0.0.1:6379").await;
    let redis_url = format!("redis://127.0.0.1:{}/0", redis_proxy.port);

    // Wait until the demo seeded, then the two example exporters with fast health probes.
    let db = pg().await;
    let start = Instant::now();
    loop {
        let seeded: Option<i64> = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}.users"))
            .fetch_one(&db)
            .await
            .ok();
        // The live demo signs up more once seeded.
        if seeded.is_some_and(|n| n >= 200) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo did not seed: {}",
            std::fs::read_to_string(d.join("demo.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let fast = |text: String| {
        text.replace("pulse_demo", &name)
            .replace("/tmp/pulse-demo/logs", logs.to_str().unwrap())
            .replace("health_interval: 15s", "health_interval: 2s")
            .replace("health_timeout: 5s", "health_timeout: 1s")
            // Time compressed for what the queue and worker alerts read: completions over
            // 15 s instead of a minute, workers down after 10 s of silence instead of 2 min.
            .replace("max_age: 2m", "max_age: 10s")
            .replace(
                "completed_at > now() - interval '1 minute'",
                "completed_at > now() - interval '15 seconds'",
            )
    };
    let hivesync_config = fast(repo_file("examples/hivesync-joip.yml")).replacen(
        "      - metric: app_users_signups_1h\n",
        &format!("{LIVE_SIGNUPS}      - metric: app_users_signups_1h\n"),
        1,
    );
    assert!(hivesync_config.contains("signups-live"));
    // The nightly roll-up reports in, for the bundle's jobs row.
    let hivesync_config = format!(
        "{hivesync_config}jobs:\n  - {{ name: usage-rollup, cron: '15 2 * * *', timezone: Europe/Berlin, grace: 30m, max_runtime: 2h, token: {ROLLUP_TOKEN}, latency_objectives: [{{ name: quick, under: 1024s }}] }}\n"
    );
    std::fs::write(d.join("hivesync.yml"), &hivesync_config).unwrap();
    let hivesync = Exporter::start_with(
        &hivesync_config,
        &[],
        &[("PULSE_REDIS_URL", redis_url.as_str())],
    );
    // A finished run and one in flight: every column of the jobs row has data.
    for path in [
        "/ping/usage-rollup/start?rid=a",
        "/ping/usage-rollup/success?rid=a",
        "/ping/usage-rollup/start?rid=b",
    ] {
        let resp = reqwest::Client::new()
            .post(hivesync.url(path))
            .bearer_auth(ROLLUP_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let stripe_base = stripe.uri();
    let hayon_config = fast(repo_file("examples/hayon.yml"));
    std::fs::write(d.join("hayon.yml"), &hayon_config).unwrap();
    let hayon = Exporter::start_with(
        &hayon_config,
        &[],
        &[
            ("STRIPE_API_KEY", STRIPE_KEY),
            ("STRIPE_API_BASE", stripe_base.as_str()),
            ("PULSE_S3_BUCKET", bucket.as_str()),
            ("PULSE_S3_ACCESS_KEY_ID", "e2e-key"),
            ("PULSE_S3_SECRET_ACCESS_KEY", "e2e-secret-0123456789"),
        ],
    );

    // Alertmanager with the repository's config, its webhooks pointed at a local receiver.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let am_port = free_port();
    let am_config = repo_file("alerts/alertmanager.yml")
        .replace("http://alert-webhook:5001", &receiver.uri())
        .replace("group_wait: 30s", "group_wait: 1s")
        .replace("group_interval: 5m", "group_interval: 2s");
    std::fs::write(d.join("alertmanager.yml"), am_config).unwrap();
    std::fs::create_dir(d.join("am-data")).unwrap();
    let am_log = d.join("alertmanager.log");
    let _am = spawn(
        "prometheus-alertmanager",
        &[
            &format!("--config.file={}", d.join("alertmanager.yml").display()),
            &format!("--storage.path={}", d.join("am-data").display()),
            &format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=",
        ],
        &am_log,
    );
    let am = format!("http://127.0.0.1:{am_port}");
    wait_ready(&format!("{am}/-/ready"), "Alertmanager", &am_log).await;

    // Prometheus with the repository's config and rules: the compose layout, local ports.
    let prom_port = free_port();
    let prom_dir = d.join("prometheus");
    std::fs::create_dir_all(prom_dir.join("rules")).unwrap();
    std::fs::create_dir_all(prom_dir.join("alerts")).unwrap();
    let config = repo_file("prometheus/prometheus.yml")
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("alertmanager:9093", &format!("127.0.0.1:{am_port}"))
        .replace("localhost:9090", &format!("127.0.0.1:{prom_port}"))
        .replace(
            "pulse-hivesync:7857",
            &format!("127.0.0.1:{}", hivesync.port),
        )
        .replace("pulse-hayon:7857", &format!("127.0.0.1:{}", hayon.port));
    std::fs::write(prom_dir.join("prometheus.yml"), config).unwrap();
    for file in recording_rule_files() {
        // The hour a recorded count must have on record before it is recorded (the signups
        // and payments an hour: `… offset 1h`) is compressed as the alerts' windows are, so
        // the admin view's hourly cards have data within the test.
        let recording = repo_file(&file)
            .replace("interval: 30s", "interval: 1s")
            .replace("interval: 1m", "interval: 1s")
            .replace(" offset 1h", " offset 30s");
        let name = Path::new(&file).file_name().unwrap();
        std::fs::write(prom_dir.join("rules").join(name), recording).unwrap();
    }
    // The drop alert generated for the live signups check, as generated (its periods are
    // short already).
    std::fs::write(
        prom_dir.join("rules/generated-business.yml"),
        generated_drop_rules(&d.join("hivesync.yml"), "signups-live"),
    )
    .unwrap();
    // The objectives' error ratios and budgets, as generated, for the Objectives dashboard.
    for platform in ["hivesync", "hayon"] {
        std::fs::write(
            prom_dir.join(format!("rules/generated-objectives-{platform}.yml")),
            generated_objective_records(&d.join(format!("{platform}.yml"))),
        )
        .unwrap();
    }
    // A test copy of the alerts with time compressed tenfold: `for:` durations, range
    // windows and the offsets that guard them a tenth of their length (15m -> 90s). The demo's own hiccups (its posts consumer
    // stops for a minute) stay shorter than the windows, as they are in production, and an
    // alert still needs its condition to hold for a while, so a fresh Prometheus with little
    // history does not fire.
    let minutes = regex::Regex::new(r"(for: |\[|offset )(\d+)m\b").unwrap();
    let alerts = minutes
        .replace_all(
            &repo_file("alerts/pulse-alerts.yml"),
            |c: &regex::Captures| format!("{}{}s", &c[1], c[2].parse::<u64>().unwrap() * 6),
        )
        .into_owned();
    std::fs::write(prom_dir.join("alerts/pulse-alerts.yml"), alerts).unwrap();
    let prom_log = d.join("prometheus.log");
    let _prom = spawn(
        "prometheus",
        &[
            &format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ),
            &format!("--storage.tsdb.path={}", d.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ready(&format!("{prom}/-/ready"), "Prometheus", &prom_log).await;

    // Every query of every dashboard panel returns data, but for these, which are empty on a
    // healthy platform by design.
    let may_be_empty = [
        // Firing alerts: none need be firing before the outage below.
        r#"ALERTS{alertstate="firing""#,
        // No check fails before the outage below: the failed runs by reason are absent (the
        // check objectives' table beside it, signups-live's, is checked).
        "increase(pulse_check_failures_total",
        // The local Redis runs without maxmemory (the series is filtered to limits > 0).
        "pulse_redis_memory_max_bytes{platform=~\"$platform\", instance=~\"$instance\"}) > 0",
        // The previous period is older than this Prometheus.
        "offset $__range",
        // The usual of a business signal needs two weeks of history.
        "business:signal:usual1h",
        // A queue's acknowledgements are counted from its first ack on.
        "pulse_rabbitmq_queue_messages_acked_total",
        // The local RabbitMQ 3.10 runs no stream plugin and keeps its metadata in Mnesia:
        // tests/matrix.rs reads a stream's consumer lag and the Khepri store's majority on
        // the versions that have them.
        "pulse_rabbitmq_stream_consumer_lag_messages",
        "pulse_rabbitmq_metadata_store_quorum",
        // nx-27017, the MongoDB wire server here, has no replica set (unit-tested on
        // replSetGetStatus documents in src/sources/mongodb/health.rs).
        "pulse_mongodb_replset_",
        // The abandoned line by type: Stripe gave up on nothing here (the card beside it
        // shows 0 and is checked).
        "sum by (event_type) (max without (pod) (pulse_stripe_abandoned_events",
        // Query latency from statistics the local servers do not keep (pg_stat_statements is
        // not loaded here, nx-27017 has no latency statistics, nothing is slow enough for the
        // slow log) or that need weeks (the usual): tests/latency.rs has the query latency
        // dashboard's panels show data from servers that keep them.
        "pulse_postgres_statement",
        "pulse_postgres_table_",
        "latency:",
        "pulse_mongodb_collection_latency",
        "pulse_mongodb_op_latency",
        "pulse_mongodb_collection_scans",
        "pulse_mongodb_query_",
        "pulse_mongodb_oldest_operation",
        "pulse_redis_slowlog_slowest",
        // Database load the quiet demo makes none of (tests/load.rs makes it, with blockers):
        // no session long enough active to be sampled, no CPUs declared, no MongoDB `load:`.
        "pulse_postgres_load_active_seconds_total",
        "pulse_postgres_load_statement_active_seconds_total",
        "pulse_postgres_load_held_seconds_total",
        "pulse_postgres_load_cpus",
        "pulse_mongodb_load_",
    ];
    // The same by panel: no blocker, no transaction left open (the cards beside them show 0
    // and are checked).
    let quiet_panels = [
        "Root blockers",
        "Sessions waiting behind root blockers",
        "Idle in transaction: the oldest",
    ];
    let quiet = |title: &str, e: &str| {
        (quiet_panels.contains(&title) && !e.contains("blocker_sessions_limit"))
            || may_be_empty.iter().any(|m| e.contains(m))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = bundle_queries_without_data(&prom, None, quiet, deadline).await;
    assert!(
        missing.is_empty(),
        "panels without data: {missing:?}\nhivesync: {}\nhayon: {}",
        hivesync.logs(),
        hayon.logs()
    );
    // Both exporters are scraped, and the AI queue card shows a real depth.
    let up = query(&prom, "up{job=\"pulse-exporter\"} == 1").await;
    assert_eq!(up.len(), 2, "{up:?}");
    let card = panel_query("AI queue depth");
    let depth = query(&prom, &card).await;
    assert!(value_of(&depth[0]) >= 0.0, "{depth:?}");

    // Redis goes away: the source goes down, the card says DEGRADED (-1), PulseSourceDown
    // reaches Alertmanager as critical (queue-cache holds the job queues and heartbeats:
    // `tier="queue"`) and the pager receiver gets it, once.
    redis_proxy.cut();
    let start = Instant::now();
    let mut firing = false;
    while start.elapsed() < Duration::from_secs(60) {
        let alerts = get_json(&format!(
            "{am}/api/v2/alerts?filter=alertname%3D%22PulseSourceDown%22"
        ))
        .await
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
        if alerts.iter().any(|a| {
            a["labels"]["source"] == "queue-cache"
                && a["labels"]["severity"] == "critical"
                && a["status"]["state"] == "active"
        }) {
            firing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        firing,
        "PulseSourceDown for queue-cache did not reach Alertmanager: {}",
        std::fs::read_to_string(&prom_log).unwrap_or_default()
    );
    let degraded = query_until(&prom, &card, 20, |r| {
        r.len() == 1 && value_of(&r[0]) == -1.0
    })
    .await;
    assert_eq!(degraded.len(), 1);
    assert_eq!(value_of(&degraded[0]), -1.0, "the card reads DEGRADED");
    // Partial data: the cards of other sources, of this platform and the other, keep their
    // numbers while Redis is down.
    let users = query(&prom, &panel_query("Registered users")).await;
    assert_eq!(users.len(), 2, "one per platform: {users:?}");
    assert!(
        users.iter().all(|u| value_of(u) > 0.0),
        "a Redis outage greys no user count: {users:?}"
    );
    notified(&receiver, 30, |p, b| {
        p == "/pager" && b.contains("PulseSourceDown") && b.contains("\"firing\"")
    })
    .await;
    let sent = notifications(&receiver).await;
    let pages = |status: &str| {
        sent.iter()
            .filter(|(p, b)| p == "/pager" && b.contains("queue-cache") && b.contains(status))
            .count()
    };
    assert_eq!(
        pages("\"firing\""),
        1,
        "one page for the queue Redis: {sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|(p, b)| p == "/chat" && b.contains("queue-cache")),
        "a page is not also a chat message: {sent:?}"
    );

    // Redis comes back: the alert resolves (a resolved notification arrives) and the card
    // shows the depth again.
    redis_proxy.restore().await;
    let resolved = notified(&receiver, 60, |p, b| {
        p == "/pager"
            && b.contains("PulseSourceDown")
            && b.contains("queue-cache")
            && b.contains("\"status\":\"resolved\"")
    })
    .await;
    assert!(
        resolved,
        "no resolved notification: {:?}",
        notifications(&receiver).await
    );
    let back = query_until(&prom, &card, 20, |r| r.len() == 1 && value_of(&r[0]) >= 0.0).await;
    assert!(back.len() == 1 && value_of(&back[0]) >= 0.0, "{back:?}");

    // Part of the GPU pool is scaled in (one of its two workers stops beating; min_up is 1):
    // the pool shows one worker up, and nothing pages or warns about workers.
    let mut r = redis().await;
    let pages_before = notifications(&receiver)
        .await
        .iter()
        .filter(|(p, _)| p == "/pager")
        .count();
    let _: () = redis::AsyncCommands::set(&mut r, format!("{name}:control:gpu_workers"), "1")
        .await
        .unwrap();
    let one_up = |r: &[Value]| r.len() == 1 && value_of(&r[0]) == 1.0;
    let up = query_until(
        &prom,
        r#"pulse_worker_pool_workers_up{pool="gpu"}"#,
        200,
        one_up,
    )
    .await;
    assert!(one_up(&up), "the scaled-in worker goes down: {up:?}");
    // Many rule evaluations later: a worker alert whose condition held would be pending (or
    // firing) by now; ALERTS shows both states.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let worker_alerts = query(&prom, r#"ALERTS{alertname=~"PulseWorker.*"}"#).await;
    assert!(worker_alerts.is_empty(), "{worker_alerts:?}");
    let pages: Vec<(String, String)> = notifications(&receiver)
        .await
        .into_iter()
        .filter(|(p, _)| p == "/pager")
        .collect();
    assert_eq!(pages.len(), pages_before, "a scale-in paged: {pages:?}");

    // The AI workers stop taking jobs (they keep beating: stuck, not dead): jobs queue in
    // Redis and none completes, so PulseJobsNotProcessed pages for the AI queue. It never
    // fired while they worked.
    let before: Vec<(String, String)> = notifications(&receiver)
        .await
        .into_iter()
        .filter(|(_, b)| b.contains("PulseJobsNotProcessed"))
        .collect();
    assert!(
        before.is_empty(),
        "fired while the workers worked: {before:?}"
    );
    let paused_at = Instant::now();
    let _: () = redis::AsyncCommands::set(&mut r, format!("{name}:control:ai_workers"), "paused")
        .await
        .unwrap();
    let is_ai_page = |p: &str, b: &str, status: &str| {
        p == "/pager"
            && b.contains("PulseJobsNotProcessed")
            && b.contains("\"queue\":\"ai\"")
            && b.contains(&format!("\"status\":\"{status}\""))
    };
    let paged = notified(&receiver, 240, |p, b| is_ai_page(p, b, "firing")).await;
    eprintln!(
        "paged {:?} after the AI workers paused",
        paused_at.elapsed()
    );
    assert!(
        paged,
        "PulseJobsNotProcessed did not page: {:?}\nALERTS: {:?}",
        notifications(&receiver).await,
        query(&prom, "ALERTS").await
    );
    // The preview queue, whose workers still run, does not fire.
    let preview = query(
        &prom,
        r#"ALERTS{alertname="PulseJobsNotProcessed", queue="preview"}"#,
    )
    .await;
    assert!(preview.is_empty(), "{preview:?}");
    // They resume: jobs complete again and the page resolves.
    let _: () = redis::AsyncCommands::del(&mut r, format!("{name}:control:ai_workers"))
        .await
        .unwrap();
    let resolved = notified(&receiver, 120, |p, b| is_ai_page(p, b, "resolved")).await;
    assert!(
        resolved,
        "the page did not resolve: {:?}",
        notifications(&receiver).await
    );

    // Signups stop (a broken signup form: every database healthy). Once two minutes of
    // history make a usual, the generated drop alert of the live signups check warns in chat,
    // and resolves when signups resume.
    let history = query_until(&prom, "app_users_signups_live offset 2m", 180, |r| {
        !r.is_empty()
    })
    .await;
    assert!(!history.is_empty(), "two minutes of signups history");
    let is_signups = |p: &str, b: &str, status: &str| {
        p == "/chat"
            && b.contains("PulseBusinessSignalLow")
            && b.contains("\"check\":\"signups-live\"")
            && b.contains(&format!("\"status\":\"{status}\""))
    };
    assert!(
        !notifications(&receiver)
            .await
            .iter()
            .any(|(p, b)| is_signups(p, b, "firing")),
        "the signups warning fired while people signed up"
    );
    let stopped_at = Instant::now();
    let _: () = redis::AsyncCommands::set(&mut r, format!("{name}:control:signups"), "paused")
        .await
        .unwrap();
    let warned = notified(&receiver, 120, |p, b| is_signups(p, b, "firing")).await;
    eprintln!("warned {:?} after signups stopped", stopped_at.elapsed());
    assert!(
        warned,
        "PulseBusinessSignalLow did not warn: {:?}\nALERTS: {:?}\nsignups: {:?}",
        notifications(&receiver).await,
        query(&prom, "ALERTS").await,
        query(&prom, "app_users_signups_live").await
    );
    let _: () = redis::AsyncCommands::del(&mut r, format!("{name}:control:signups"))
        .await
        .unwrap();
    let resolved = notified(&receiver, 120, |p, b| is_signups(p, b, "resolved")).await;
    assert!(
        resolved,
        "the signups warning did not resolve: {:?}",
        notifications(&receiver).await
    );

    // Stop the demo; its data goes with the cleanup guard, dropped after it.
    drop(_demo);
}
