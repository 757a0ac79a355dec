//! The dashboards and rules pulse-exporter generates from a config (`dashboards`, `rules`,
//! `/dashboards.json`, `/rules.yml`), for every example config and for a config with one check
//! of every shape: valid against Grafana's schema types (`@grafana/schema`, checked by the
//! TypeScript compiler), every expression parsed by promtool, every metric they name served
//! by the exporter running the config; live through Debian's Prometheus, every panel has
//! data and a cut source turns its own panels DEGRADED and no other; and the rules pass
//! `promtool check rules` and `promtool test rules` (a threshold alert fires above its bound
//! and stays quiet below).

use pulse_test_support as common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use serde_yaml::Value as Yaml;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Placeholder secrets the example configs read (hayon's Stripe key and S3 keys).
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("STRIPE_API_KEY", STRIPE_KEY),
    ("PULSE_S3_ACCESS_KEY_ID", "gen-key"),
    ("PULSE_S3_SECRET_ACCESS_KEY", "gen-secret-0123456789"),
];

const EXAMPLES: &[&str] = &[
    "examples/local.yml",
    "examples/hayon.yml",
    "examples/hivesync-joip.yml",
    "examples/leases.yml",
];

/// `pulse-exporter --config.file CONFIG <what>` (dashboards or rules): its stdout.
fn generate(config: &Path, what: &str) -> String {
    generate_with(config, what, &[])
}

/// [`generate`] with `flags` after the subcommand.
fn generate_with(config: &Path, what: &str, flags: &[&str]) -> String {
    let mut args = vec!["--config.file", config.to_str().unwrap(), what];
    args.extend(flags);
    let (code, out, err) = run_cli(&args, EXAMPLE_ENV);
    assert_eq!(code, 0, "{what} {flags:?} for {}: {err}", config.display());
    out
}

/// Type-checks `boards` against `@grafana/schema` with tsc: the dashboard as a `Dashboard`
/// and each panel's options as its panel type's `Options` (enums read as their string
/// values, as JSON writes them). Panics with tsc's report.
fn type_check(boards: &[(String, Value)]) {
    let dir = repo("tests/grafana-schema");
    let tsc = dir.join("node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "{} is missing: scripts/test runs `npm ci` in tests/grafana-schema",
        tsc.display()
    );
    // Inside the package folder, so the compiler finds its node_modules.
    let work = tempfile::Builder::new()
        .prefix(".check-")
        .tempdir_in(&dir)
        .unwrap();
    let options_types = [
        ("stat", "Stat", "stat/panelcfg/x/StatPanelCfg_types.gen"),
        (
            "timeseries",
            "TimeSeries",
            "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
        ),
        ("table", "Table", "table/panelcfg/x/TablePanelCfg_types.gen"),
        (
            "bargauge",
            "BarGauge",
            "bargauge/panelcfg/x/BarGaugePanelCfg_types.gen",
        ),
    ];
    let mut files = Vec::new();
    for (i, (name, board)) in boards.iter().enumerate() {
        let mut ts = String::from("import type { Dashboard } from '@grafana/schema';\n");
        for (_, alias, path) in options_types {
            ts += &format!(
                "import type {{ Options as {alias} }} from '@grafana/schema/dist/esm/raw/composable/{path}';\n"
            );
        }
        ts += "type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;\n";
        ts += &format!("// {name}\nexport const dashboard: Loose<Dashboard> = {board};\n");
        for (j, p) in board["panels"].as_array().unwrap().iter().enumerate() {
            if let Some((_, alias, _)) = options_types.iter().find(|(t, _, _)| p["type"] == *t) {
                ts += &format!(
                    "export const options{j}: Loose<Partial<{alias}>> = {};\n",
                    p["options"]
                );
            }
        }
        let file = work.path().join(format!("board{i}.ts"));
        std::fs::write(&file, ts).unwrap();
        files.push(file);
    }
    run_ok(
        std::process::Command::new(&tsc)
            .args([
                "--noEmit",
                "--strict",
                "--skipLibCheck",
                "--moduleResolution",
                "bundler",
                "--module",
                "esnext",
                "--target",
                "es2022",
            ])
            .args(&files),
        "generated dashboards do not match @grafana/schema",
    );
}

/// Every query of `board`, as Prometheus receives it.
fn board_exprs(board: &Value) -> Vec<String> {
    generated_panels(board)
        .into_iter()
        .flat_map(|p| p.exprs)
        .collect()
}

/// The rule file `rules` without its group `name`.
fn without_group(rules: &str, name: &str) -> String {
    let mut file: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    file["groups"]
        .as_sequence_mut()
        .unwrap()
        .retain(|g| g["name"] != name);
    serde_yaml::to_string(&file).unwrap()
}

/// Every expression of the rule file `rules`.
fn rule_exprs(rules: &str) -> Vec<String> {
    let file: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    file["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `promtool check rules` on `rules` (a rule file's text) and asserts it passes with
/// nothing to say: its lint findings (duplicate rules) go to stderr with exit status 0.
fn promtool_check_rules(dir: &Path, name: &str, rules: &str) {
    let file = dir.join(name);
    std::fs::write(&file, rules).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", file.to_str().unwrap()])
        .output()
        .expect("promtool (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("FAILED") && !text.contains("lint"),
        "promtool check rules {name}:\n{text}"
    );
}

/// Runs `promtool test rules` on test files (`(name, text)`, written in `dir`), failing with
/// `rules`, the rule file under test, when a case fails.
fn promtool_test_rules(dir: &Path, files: &[(&str, &str)], rules: &str) {
    // Narrowed to the rules the cases can observe (tests/common/rule_tests.rs).
    let paths: Vec<PathBuf> = files
        .iter()
        .flat_map(|(name, text)| narrowed_file(&write_temp(dir, name, text), dir))
        .collect();
    run_ok(
        std::process::Command::new("promtool")
            .args(["test", "rules"])
            .args(&paths),
        &format!("promtool test rules on\n{rules}"),
    );
}

/// promtool parses every expression: they are checked as recording rules.
fn promtool_parses(dir: &Path, name: &str, exprs: &[String]) {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("generated:expr_{i}"), "expr": e}))
        .collect();
    let file = serde_json::json!({"groups": [{"name": "parse", "rules": rules}]});
    promtool_check_rules(dir, name, &serde_yaml::to_string(&file).unwrap());
}

/// The metric names an expression selects (`name{…}`; the generators always write braces).
fn metric_names(exprs: &[String]) -> BTreeSet<String> {
    let re = regex::Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{").unwrap();
    exprs
        .iter()
        .flat_map(|e| {
            re.captures_iter(e)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn example_dashboards_match_grafanas_schema_and_every_expression_parses() {
    let dir = tempfile::tempdir().unwrap();
    let mut boards = Vec::new();
    for example in EXAMPLES {
        let board: Value = serde_json::from_str(&generate(&repo(example), "dashboards")).unwrap();
        let stem = Path::new(example).file_stem().unwrap().to_str().unwrap();
        assert_eq!(board["uid"], format!("pulse-{stem}"));
        // Every check of the config has a panel, under its source's row.
        let titles: Vec<String> = generated_panels(&board)
            .into_iter()
            .map(|p| p.title)
            .collect();
        assert!(titles.len() > 5, "{example}: {titles:?}");
        promtool_parses(
            dir.path(),
            &format!("{stem}-panels.yml"),
            &board_exprs(&board),
        );
        let rules = generate(&repo(example), "rules");
        promtool_check_rules(dir.path(), &format!("{stem}-rules.yml"), &rules);
        // Regenerating gives the same bytes: uids and ids are stable.
        assert_eq!(
            serde_json::from_str::<Value>(&generate(&repo(example), "dashboards")).unwrap(),
            board
        );
        boards.push((example.to_string(), board));
        // For a shared Prometheus: Grafana's schema still holds (the `$cluster` variable
        // with it), and every expression still parses.
        let knobs = ["--selector", "job=\"pulse\"", "--cluster-label", "cluster"];
        let shared: Value =
            serde_json::from_str(&generate_with(&repo(example), "dashboards", &knobs)).unwrap();
        assert_eq!(shared["templating"]["list"][1]["name"], "cluster");
        promtool_parses(
            dir.path(),
            &format!("{stem}-shared-panels.yml"),
            &board_exprs(&shared),
        );
        boards.push((format!("{example} (shared)"), shared));
    }
    type_check(&boards);
}

/// A key built on the demo's prefix variable (`${env:PULSE_DEMO_REDIS_PREFIX:-pulse_demo:}`)
/// is the key its default names in the generated panels and rules, never a placeholder.
#[test]
fn a_referenced_prefix_with_a_default_generates_the_default_key() {
    let config = repo("examples/hivesync-joip.yml");
    for what in ["dashboards", "rules"] {
        let out = generate(&config, what);
        assert!(!out.contains("unresolved-reference"), "{what}");
    }
    let board = generate(&config, "dashboards");
    assert!(
        board.contains(r#"key=\"pulse_demo:ai_queue:tasks\""#),
        "the queue panel reads the default key"
    );
}

#[test]
fn the_schema_check_rejects_a_misspelt_field_and_a_wrong_enum() {
    let board: Value =
        serde_json::from_str(&generate(&repo("examples/local.yml"), "dashboards")).unwrap();
    for broken in [
        board.to_string().replacen("\"gridPos\"", "\"gridPoss\"", 1),
        board.to_string().replacen("\"absolute\"", "\"absolut\"", 1),
        board
            .to_string()
            .replacen("\"colorMode\":\"background\"", "\"colorMode\":\"loud\"", 1),
    ] {
        let bad: Value = serde_json::from_str(&broken).unwrap();
        let caught = std::panic::catch_unwind(|| type_check(&[("broken".to_owned(), bad)]));
        assert!(caught.is_err(), "tsc accepted {}", &broken[..200]);
    }
}

/// A config with one check of every shape, against the real services, `p` prefixing its
/// data; Redis through `redis_port` (a proxy the test can cut).
fn every_shape(
    p: &str,
    redis_port: u16,
    log: &Path,
    vhost: &str,
    bucket: &str,
    stripe: &str,
) -> String {
    format!(
        r#"global: {{ interval: 10s, timeout: 8s, health_interval: 5s, health_timeout: 4s }}
sources:
  - name: shape-pg
    kind: postgres
    url: {PG_URL}
    checks:
      - metric: shape_single
        help: One number from a query.
        sql: SELECT 42 AS value
        alert: {{ above: 100, for: 1m, severity: critical }}
      - metric: shape_by_plan
        help: Accounts by plan.
        sql: SELECT plan, n AS value FROM (VALUES ('free', 3), ('paid', 2)) AS t(plan, n)
        labels: [plan]
      - metric: shape_top_users
        help: The five most active users.
        sql: SELECT 'u' || g AS user_id, g AS value FROM generate_series(1, 20) g ORDER BY g DESC LIMIT 5
        labels: [user_id]
      - metric: shape_per_user
        help: Requests per user.
        sql: SELECT g AS value FROM generate_series(1, 50) g
        summary: [median, p90, max]
      - metric: shape_last_signup_timestamp_seconds
        help: When the last account was created.
        sql: SELECT extract(epoch from now()) - 60 AS value
        alert: {{ above: 3600 }}
      - metric: shape_growth_ratio
        help: Monthly growth.
        sql: SELECT 0.05 AS value
        panel: timeseries
        unit: percentunit
        description: Accounts created in 30 days over those before.
      - metric: shape_usage
        help: Usage against quota, per plan.
        sql: SELECT 'pro' AS plan, 3 AS used, 10 AS quota
        labels: [plan]
        values: [used, quota]
        value_label: field
    heartbeats:
      - pool: shape-pg
        sql: SELECT 'w1' AS worker, now() AS last_seen
  - name: shape-redis
    kind: redis
    url: redis://127.0.0.1:{redis_port}
    keys:
      - {{ key: "{p}:jobs", metric: shape_jobs_waiting, oldest: {{ metric: shape_jobs_oldest_timestamp_seconds }} }}
      - {{ pattern: "{p}:q:*", metric: shape_queue_depth, label: queue }}
      - {{ pattern: "{p}:sess:*", count: true, group_by: device, metric: shape_sessions }}
    checks:
      - {{ metric: shape_jobs_total_waiting, command: [ZCOUNT, "{p}:jobs", "-inf", "+inf"], alert: {{ below: 1 }} }}
    heartbeats:
      - {{ hash: "{p}:beats", pool: shape-redis, min_up: 1 }}
    latency_objectives:
      - {{ name: all-fast, under: 1048576us }}
  - name: shape-mongo
    kind: mongodb
    url: {MONGO_URL}/{p}
    checks:
      - {{ metric: shape_docs, count: {{ collection: {p}_items, filter: {{}} }} }}
      - metric: shape_top_kinds
        aggregate:
          collection: {p}_items
          pipeline:
            - {{ $group: {{ _id: "$kind", value: {{ $sum: 1 }} }} }}
            - {{ $sort: {{ value: -1 }} }}
            - {{ $limit: 3 }}
            - {{ $project: {{ _id: 0, category: "$_id", value: 1 }} }}
        labels: [category]
  - name: shape-logs
    kind: logfile
    path: {log}
    start_at: beginning
    counters: [{{ metric: shape_requests_total, help: Requests by status., labels: {{ status: status }} }}]
    histograms: [{{ metric: shape_latency_seconds, help: Request latency., field: ms, scale: 0.001, buckets: [0.1, 0.5, 1] }}]
  - name: shape-rabbit
    kind: rabbitmq
    management_url: {RABBIT_API}
    username: guest
    password: guest
    vhosts: ["{vhost}"]
  - name: shape-s3
    kind: s3
    bucket: {bucket}
    endpoint: {MOTO_URL}
    access_key_id: gen-key
    secret_access_key: gen-secret-0123456789
    canary: {{}}
    prefixes: [{{ prefix: "up/" }}]
  - name: shape-stripe
    kind: stripe
    api_key: {STRIPE_KEY}
    api_base: {stripe}
jobs:
  - {{ name: shape-job, every: 1h, max_runtime: 1h, token: shape-job-token-0123456789 }}
"#,
        log = log.display()
    )
}

/// True for a metric (or an expression reading one) that the local services cannot give: the
/// statements and tables of a Postgres without pg_stat_statements loaded (and no table read
/// whole in a minute), the latency statistics and the uptime nx-27017 does not keep (the
/// crash-loop alert copied from the bundle reads the start time), and a slow log entry of a
/// Redis where nothing is slow; the blockers and idle-in-transaction sessions of a database
/// nobody blocks; and the statements running longest (pg_stat_statements' fallback) where
/// none runs. tests/latency.rs serves the statistics from servers that have them, and has
/// their generated panels show data in a real Prometheus; tests/load.rs makes the blockers;
/// tests/postgres.rs runs a statement long enough to be seen.
fn unavailable_here(name_or_expr: &str) -> bool {
    [
        "pulse_postgres_blocker_",
        "pulse_postgres_idle_in_transaction",
        "pulse_postgres_statement",
        "pulse_postgres_running_statement",
        "pulse_postgres_table_",
        "pulse_mongodb_collection_latency",
        "pulse_mongodb_start_timestamp_seconds",
        "pulse_mongodb_oldest_operation",
        "pulse_mongodb_query_shape",
        "pulse_redis_slowlog_slowest",
    ]
    .iter()
    .any(|m| name_or_expr.contains(m))
}

/// Seeds what every check of [`every_shape`] reads; returns the guard that removes it.
async fn seed(p: &str, log: &Path) -> Cleanup {
    let mut r = redis().await;
    let now = now_secs() as f64;
    let _: () = redis::pipe()
        .zadd(format!("{p}:jobs"), "job-1", now - 30.0)
        .rpush(format!("{p}:q:mail"), "x")
        .hset(format!("{p}:sess:1"), "device", "web")
        .hset(format!("{p}:beats"), "w1", now)
        .query_async(&mut r)
        .await
        .unwrap();
    let items = mongo()
        .await
        .database(p)
        .collection::<mongodb::bson::Document>(&format!("{p}_items"));
    items
        .insert_many([
            mongodb::bson::doc! {"kind": "a"},
            mongodb::bson::doc! {"kind": "b"},
        ])
        .await
        .unwrap();
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{{\"status\": \"{}\", \"ms\": {}}}\n",
                [200, 500][i % 2],
                i * 40
            )
        })
        .collect();
    std::fs::write(log, lines).unwrap();
    Cleanup::default()
        .redis_keys(format!("{p}:*"))
        .mongo_database(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_is_served_has_data_in_prometheus_and_a_cut_source_greys_only_its_panels() {
    let p = unique("gen");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    let _cleanup = seed(&p, &log).await;
    let vhost = RabbitVhost::create().await;
    vhost
        .declare(&format!("{p}.jobs"), serde_json::json!({}))
        .await;
    vhost.publish(&format!("{p}.jobs"), 3).await;
    let bucket = p.replace('_', "-");
    moto_bucket(&bucket).await;
    let stripe = FakeStripe::start(&[]).await;
    stripe.set_endpoints(
        "",
        vec![endpoint_json(
            "we_gen",
            "https://example.com/hook",
            "enabled",
        )],
    );
    stripe.add_event("", now_secs() as i64 - 3600, "invoice.paid", 1);
    // And one Stripe gave up on, for the abandoned line of the events panel.
    stripe.add_event("", now_secs() as i64 - 80 * 3600, "invoice.paid", 1);
    let proxy = Proxy::start("127.0.0.1:6379").await;
    let config = every_shape(&p, proxy.port, &log, &vhost.name, &bucket, &stripe.uri());
    let shapes = Exporter::start(&config);
    // The job reports a finished run and one in flight: every column of its row has data.
    for path in [
        "/ping/shape-job/start?rid=a",
        "/ping/shape-job/success?rid=a",
        "/ping/shape-job/start?rid=b",
    ] {
        let resp = reqwest::Client::new()
            .post(shapes.url(path))
            .bearer_auth("shape-job-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    // local.yml, with the keys its checks read.
    let mut r = redis().await;
    let _: () = redis::pipe()
        .rpush("ai_queue:gen", "x")
        .rpush("preview_queue", "x")
        .query_async(&mut r)
        .await
        .unwrap();
    let _local_keys = Cleanup::default()
        .redis_keys("ai_queue:gen")
        .redis_keys("preview_queue");
    let local_text = std::fs::read_to_string(repo("examples/local.yml"))
        .unwrap()
        .replace("health_interval: 15s", "health_interval: 5s")
        .replace("interval: 30s", "interval: 10s")
        .replace("timeout: 10s", "timeout: 8s")
        .replace("health_timeout: 5s", "health_timeout: 4s");
    let local = Exporter::start(&local_text);

    // The outputs served for the running config equal the command's, and sit behind /.
    let board: Value = serde_json::from_str(&shapes.get("/dashboards.json").await).unwrap();
    let config_file = write_temp(d, "every-shape.yml", &config);
    let mut from_cli: Value = serde_json::from_str(&generate(&config_file, "dashboards")).unwrap();
    from_cli["uid"] = board["uid"].clone();
    from_cli["title"] = board["title"].clone();
    assert_eq!(
        from_cli, board,
        "/dashboards.json is the dashboards command's output"
    );
    let rules = shapes.get("/rules.yml").await;
    assert_eq!(rules, generate(&config_file, "rules"));
    let landing = shapes.get("/").await;
    assert!(
        landing.contains("href=\"/dashboards.json\"") && landing.contains("href=\"/rules.yml\"")
    );
    let local_board: Value = serde_json::from_str(&local.get("/dashboards.json").await).unwrap();

    // Every shape got its panel type.
    let kind_of = |title: &str| {
        board["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"))["type"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (title, kind) in [
        ("shape_single", "stat"),
        ("shape_by_plan", "timeseries"),
        ("shape_top_users", "table"),
        ("shape_per_user", "bargauge"),
        ("shape_last_signup_timestamp_seconds: age", "stat"),
        ("shape_growth_ratio", "timeseries"),
        ("Workers of pool shape-pg", "table"),
        ("shape_requests_total: per second", "timeseries"),
        ("shape_latency_seconds: quantiles", "timeseries"),
        ("Messages by queue", "timeseries"),
        ("Write canary", "stat"),
        ("Undelivered, stuck and abandoned events", "stat"),
        ("shape_top_kinds", "table"),
        ("Job status", "table"),
        ("Job runs", "timeseries"),
    ] {
        assert_eq!(kind_of(title), kind, "{title}");
    }
    type_check(&[("every shape".to_owned(), board.clone())]);
    promtool_parses(d, "shape-panels.yml", &board_exprs(&board));
    promtool_check_rules(d, "shape-rules.yml", &rules);

    // Every metric the dashboard and rules name is served by the exporters.
    for (exporter, board, rules) in [
        (&shapes, &board, rules.clone()),
        (&local, &local_board, local.get("/rules.yml").await),
    ] {
        let mut names = metric_names(&board_exprs(board));
        // The queue alerts copied from the bundle also read series that appear only with the
        // first acknowledgement, or that other checks of a platform publish: they are replayed
        // through promtool instead (generated_queue_and_worker_alerts_catch_…).
        names.extend(metric_names(&rule_exprs(&without_group(
            &rules,
            "pulse-config-queues",
        ))));
        // Recorded series (`a:b:c`, the objectives' error ratios) are Prometheus's to make.
        names.retain(|n| !unavailable_here(n) && !n.contains(':'));
        let start = Instant::now();
        loop {
            let scrape = exporter.metrics().await;
            // A histogram is read by its buckets (classic) or by its name (native).
            let served = |n: &str| {
                [n, n.trim_end_matches("_bucket"), &format!("{n}_bucket")]
                    .iter()
                    .any(|m| !scrape.find(m, &[]).is_empty())
            };
            let missing: Vec<&String> = names.iter().filter(|n| !served(n)).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "named but not served: {missing:?}\n{}",
                exporter.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Prometheus scrapes both, as cluster `eu`, and evaluates both generated rule files (the
    // objectives' row reads what they record); every panel of both dashboards gets data.
    std::fs::write(d.join("local-rules.yml"), local.get("/rules.yml").await).unwrap();
    let prom_port = free_port();
    let prom_config = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}\nrule_files: [shape-rules.yml, local-rules.yml]\nscrape_configs:\n  - job_name: pulse-exporter\n    static_configs: [{{ targets: ['127.0.0.1:{}', '127.0.0.1:{}'], labels: {{ cluster: eu }} }}]\n",
        shapes.port, local.port
    );
    let prom_file = write_temp(d, "prometheus.yml", &prom_config);
    let prom_log = d.join("prometheus.log");
    let _prom = spawn(
        "prometheus",
        &[
            &format!("--config.file={}", prom_file.display()),
            &format!("--storage.tsdb.path={}", d.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ready(&format!("{prom}/-/ready"), "Prometheus", &prom_log).await;
    let here = |p: &GeneratedPanel| !p.exprs.iter().any(|e| unavailable_here(e));
    let panels: Vec<GeneratedPanel> = generated_panels(&board).into_iter().filter(here).collect();
    let local_panels: Vec<GeneratedPanel> = generated_panels(&local_board)
        .into_iter()
        .filter(here)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = panels_without_data(&prom, &panels, deadline).await;
    missing.extend(panels_without_data(&prom, &local_panels, deadline).await);
    assert!(
        missing.is_empty(),
        "panels without data: {missing:#?}\n{}\n{}",
        shapes.logs(),
        local.logs()
    );
    for panel in panels.iter().chain(&local_panels) {
        assert!(
            !reads_degraded(&prom, panel).await,
            "{panel:?} reads DEGRADED while all is well"
        );
    }

    // The dashboard for a shared Prometheus (`--selector`, `--cluster-label`): its cluster
    // variable lists `eu`, as Grafana asks Prometheus for it; in `eu` every panel has data,
    // and in another cluster none has any.
    let knobs = [
        "--selector",
        "job=\"pulse-exporter\"",
        "--cluster-label",
        "cluster",
    ];
    let shared: Value =
        serde_json::from_str(&generate_with(&config_file, "dashboards", &knobs)).unwrap();
    let cluster = &shared["templating"]["list"][1];
    assert_eq!(
        cluster["query"],
        "label_values(pulse_source_up{job=\"pulse-exporter\"}, cluster)"
    );
    let listed = get_json(&format!(
        "{prom}/api/v1/label/cluster/values?match[]=pulse_source_up{{job=\"pulse-exporter\"}}"
    ))
    .await
    .unwrap();
    assert_eq!(listed["data"], serde_json::json!(["eu"]), "{listed}");
    let in_cluster = |name: &str| -> Vec<GeneratedPanel> {
        generated_panels(&shared)
            .into_iter()
            .filter(here)
            .map(|mut p| {
                p.exprs = p
                    .exprs
                    .iter()
                    .map(|e| e.replace("$cluster", name))
                    .collect();
                p
            })
            .collect()
    };
    let eu = in_cluster("eu");
    assert_eq!(eu.len(), panels.len());
    let missing = panels_without_data(&prom, &eu, Instant::now() + Duration::from_secs(30)).await;
    assert!(
        missing.is_empty(),
        "panels without data in eu: {missing:#?}"
    );
    for panel in in_cluster("us") {
        for e in &panel.exprs {
            assert!(
                values(&prom, e).await.is_empty(),
                "{panel:?} has data in us"
            );
        }
    }

    // The bundled dashboards rendered with the same knobs: in `eu` each query has data
    // where the committed one has (this Prometheus holds nothing else), in `us` none has.
    let shared_dir = d.join("shared-dashboards");
    let mut args = vec![
        "bundle-dashboards",
        "--output.dir",
        shared_dir.to_str().unwrap(),
    ];
    args.extend(knobs);
    let (code, _, err) = run_cli(&args, &[]);
    assert_eq!(code, 0, "bundle-dashboards {knobs:?}: {err}");
    let committed: BTreeMap<(String, String), Vec<String>> = common::bundle::panels()
        .into_iter()
        .map(|(board, title, exprs)| ((board, title), exprs))
        .collect();
    let mut compared = 0;
    for entry in std::fs::read_dir(&shared_dir).unwrap() {
        let board: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let uid = board["uid"].as_str().unwrap().to_owned();
        for p in board["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap().to_owned();
            let targets = p["targets"].as_array().into_iter().flatten();
            let knobbed = targets.map(|t| t["expr"].as_str().unwrap());
            let Some(plain) = committed.get(&(uid.clone(), title.clone())) else {
                assert_eq!(
                    p["type"], "row",
                    "{uid}/{title} is not in grafana/dashboards"
                );
                continue;
            };
            for (plain, knobbed) in plain.iter().zip(knobbed) {
                let in_cluster = |c: &str| substitute(knobbed).replace("$cluster", c);
                assert!(
                    query(&prom, &in_cluster("us")).await.is_empty(),
                    "{uid}/{title} has data in us: {knobbed}"
                );
                if query(&prom, &substitute(plain)).await.is_empty() {
                    continue;
                }
                compared += 1;
                // A series that comes and goes between two reads (a failure counted in the
                // last minute) is read again before it counts as missing.
                if !query(&prom, &in_cluster("eu")).await.is_empty()
                    || query(&prom, &substitute(plain)).await.is_empty()
                {
                    continue;
                }
                panic!("{uid}/{title}: no data in eu where the committed query has:\n{knobbed}");
            }
        }
    }
    assert!(compared > 80, "only {compared} queries with data compared");

    // Redis is cut: every panel of its row reads DEGRADED, no other panel does.
    proxy.cut();
    let down = r#"pulse_source_up{source="shape-redis"} == 0"#;
    let start = Instant::now();
    while values(&prom, down).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "shape-redis never went down"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut wrong = Vec::new();
    for panel in &panels {
        let expected = panel.source == "shape-redis";
        if reads_degraded(&prom, panel).await != expected {
            wrong.push(format!(
                "{}/{} (DEGRADED expected: {expected})",
                panel.source, panel.title
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(panels.iter().filter(|p| p.source == "shape-redis").count() >= 5);
    proxy.restore().await;

    vhost.delete().await;
}

/// Writes `rules` without annotations as `rules-bare.yml` in `dir`: promtool compares every
/// annotation of every expected alert, so cases that test only labels read this copy.
fn write_bare_rules(dir: &Path, rules: &str) {
    let mut bare: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    for g in bare["groups"].as_sequence_mut().unwrap() {
        for r in g["rules"].as_sequence_mut().unwrap() {
            r.as_mapping_mut().unwrap().remove("annotations");
        }
    }
    std::fs::write(
        dir.join("rules-bare.yml"),
        serde_yaml::to_string(&bare).unwrap(),
    )
    .unwrap();
}

#[test]
fn generated_rules_pass_promtool_tests_a_threshold_fires_above_and_stays_quiet_below() {
    let dir = tempfile::tempdir().unwrap();
    let config = "global: { interval: 30s }\nsources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    keys:\n      - { key: jobs, metric: app_jobs_waiting, help: Jobs waiting in the main queue., alert: { above: 100, for: 5m, severity: critical } }\n    checks:\n      - { metric: app_workers_idle, command: [GET, idle], alert: { below: 1, for: 10m } }\n";
    let file = write_temp(dir.path(), "team.yml", config);
    let rules = generate(&file, "rules");
    std::fs::write(dir.path().join("rules.yml"), &rules).unwrap();
    // Two exporters: one over the bound, one under it. The check runs every 30s: stale
    // after 90 s without a success.
    // The annotations are compared once, for the threshold alert; the other cases read a
    // copy without them (promtool compares every annotation of every expected alert).
    write_bare_rules(dir.path(), &rules);
    let annotated = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'app_jobs_waiting{instance="a", job="pulse-exporter", key="jobs"}'
        values: '50 150x20'
    alert_rule_test:
      - eval_time: 8m
        alertname: PulseCheckAboveThreshold
        exp_alerts:
          - exp_labels: { severity: critical, source: cache, check: jobs, instance: a, job: pulse-exporter, key: jobs }
            exp_annotations:
              summary: "jobs value is 150 on a, above 100"
              description: "Jobs waiting in the main queue. The value of app_jobs_waiting has stayed above 100 for 5m. A threshold alert cannot fire on missing data: PulseCheckStale covers that."
              runbook: "What it measures: Jobs waiting in the main queue.\n1. Open the row `cache` of the generated dashboard (`pulse-exporter dashboards`, or /dashboards.json): the panel `jobs` shows the value, DEGRADED while the check fails.\n2. `pulse-exporter probe --config.file <file>` runs every check once and prints its outcome and error.\n3. pulse_check_failures_total{source=\"cache\", check=\"jobs\"} counts failures by reason (timeout, connect, auth, query, decode, …); the exporter log has each failure's error (event=check.failing).\n4. If the source itself is down, PulseSourceDown fires too and its runbook comes first."
              runbook_url: "https://github.com/pulse-exporter/pulse-exporter/blob/main/alerts/runbook.md#pulsecheckabovethreshold"
"#;
    let tests = r#"rule_files: [rules-bare.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'app_jobs_waiting{instance="a", job="pulse-exporter", key="jobs"}'
        values: '50 150x20'
      - series: 'app_jobs_waiting{instance="b", job="pulse-exporter", key="jobs"}'
        values: '50x20'
      - series: 'app_workers_idle{instance="a", job="pulse-exporter"}'
        values: '0x20'
      - series: 'app_workers_idle{instance="b", job="pulse-exporter"}'
        values: '3x20'
      - series: 'pulse_source_up{instance="a", job="pulse-exporter", source="cache", kind="redis"}'
        values: '1x20'
      - series: 'pulse_source_up{instance="b", job="pulse-exporter", source="cache", kind="redis"}'
        values: '1x10 0x10'
      - series: 'pulse_check_success{instance="a", job="pulse-exporter", source="cache", check="jobs"}'
        values: '1x20'
      - series: 'pulse_check_last_success_timestamp_seconds{instance="a", job="pulse-exporter", source="cache", check="jobs"}'
        values: '0+60x20'
    alert_rule_test:
      - eval_time: 3m
        alertname: PulseCheckAboveThreshold
      - eval_time: 8m
        alertname: PulseCheckAboveThreshold
        exp_alerts:
          - exp_labels: { severity: critical, source: cache, check: jobs, instance: a, job: pulse-exporter, key: jobs }
      - eval_time: 9m
        alertname: PulseCheckBelowThreshold
      - eval_time: 12m
        alertname: PulseCheckBelowThreshold
        exp_alerts:
          - exp_labels: { severity: warning, source: cache, check: app_workers_idle, instance: a, job: pulse-exporter }
      - eval_time: 12m
        alertname: PulseCheckStale
      - eval_time: 15m
        alertname: PulseSourceDown
        exp_alerts:
          - exp_labels: { severity: warning, source: cache, kind: redis, instance: b, job: pulse-exporter }
  - interval: 1m
    # The check stops succeeding at 5m (success 0, its last success stays at 5m).
    input_series:
      - series: 'pulse_source_up{instance="a", job="pulse-exporter", source="cache", kind="redis"}'
        values: '1x40'
      - series: 'pulse_check_success{instance="a", job="pulse-exporter", source="cache", check="jobs"}'
        values: '1x5 0x35'
      - series: 'pulse_check_last_success_timestamp_seconds{instance="a", job="pulse-exporter", source="cache", check="jobs"}'
        values: '0+60x5 300x35'
    alert_rule_test:
      - eval_time: 5m
        alertname: PulseCheckStale
      - eval_time: 9m
        alertname: PulseCheckStale
        exp_alerts:
          - exp_labels: { severity: warning, source: cache, check: jobs, instance: a, job: pulse-exporter }
      - eval_time: 15m
        alertname: PulseCheckFailing
      - eval_time: 21m
        alertname: PulseCheckFailing
        exp_alerts:
          - exp_labels: { severity: warning, source: cache, check: jobs, instance: a, job: pulse-exporter }
"#;
    promtool_test_rules(
        dir.path(),
        &[("annotated.test.yml", annotated), ("rules.test.yml", tests)],
        &rules,
    );
}

#[test]
fn a_generated_ratio_alert_fires_on_a_high_share_of_many_and_not_of_few() {
    let dir = tempfile::tempdir().unwrap();
    // The example platforms' AI events by status, from a log file.
    let config = "sources:\n  - name: ai-log\n    kind: logfile\n    path: /tmp/ai-events.log\n    counters:\n      - { metric: app_ai_events_total, labels: { status: status }, alert: { above: 0.25, for: 5m, severity: critical, ratio: { label: status, values: [error, timeout], window: 15m, min_total: 50 } } }\n";
    let file = write_temp(dir.path(), "ai.yml", config);
    let rules = generate(&file, "rules");
    promtool_check_rules(dir.path(), "rules.yml", &rules);
    write_bare_rules(dir.path(), &rules);
    // a: 10 requests a minute, half failing: fires. b: the same share of 1 request every
    // 2 minutes (a quiet night): under min_total, quiet. c: many requests, 5 % failing:
    // quiet. d: many requests and no error series at all (a share of 0): quiet, and the
    // success share is still computed (no error from a missing series).
    let tests = r#"rule_files: [rules-bare.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'app_ai_events_total{instance="a", job="pulse-exporter", status="ok"}'
        values: '0+5x40'
      - series: 'app_ai_events_total{instance="a", job="pulse-exporter", status="error"}'
        values: '0+3x40'
      - series: 'app_ai_events_total{instance="a", job="pulse-exporter", status="timeout"}'
        values: '0+2x40'
      - series: 'app_ai_events_total{instance="b", job="pulse-exporter", status="ok"}'
        values: '0+0.25x40'
      - series: 'app_ai_events_total{instance="b", job="pulse-exporter", status="error"}'
        values: '0+0.25x40'
      - series: 'app_ai_events_total{instance="c", job="pulse-exporter", status="ok"}'
        values: '0+19x40'
      - series: 'app_ai_events_total{instance="c", job="pulse-exporter", status="error"}'
        values: '0+1x40'
      - series: 'app_ai_events_total{instance="d", job="pulse-exporter", status="ok"}'
        values: '0+20x40'
    alert_rule_test:
      - eval_time: 3m
        alertname: PulseCheckRatioAboveThreshold
      - eval_time: 20m
        alertname: PulseCheckRatioAboveThreshold
        exp_alerts:
          - exp_labels: { severity: critical, source: ai-log, check: tail, instance: a, job: pulse-exporter }
"#;
    promtool_test_rules(dir.path(), &[("ratio.test.yml", tests)], &rules);
}

#[test]
fn a_generated_worker_pool_alert_fires_for_the_configs_pool_and_not_another_teams() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources:\n  - name: queue-cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    heartbeats:\n      - { pattern: 'workers:gpu:*', pool: gpu, max_age: 30s, min_up: 2 }\n";
    let file = write_temp(dir.path(), "workers.yml", config);
    let rules = generate(&file, "rules");
    // With its annotations: they must be the bundle's, word for word.
    promtool_check_rules(dir.path(), "rules.yml", &rules);
    // queue-cache's gpu pool loses every worker at 5m: PulseWorkerPoolDown after its 2m. The
    // same pool of another team's source (other-cache, not in this config) is down all along:
    // its own file, not this one, alerts on it. One worker of two (below min_up) from 20m:
    // PulseWorkerPoolBelowMinimum after 15m.
    let tests = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pulse_source_up{instance="a", job="pulse-exporter", source="queue-cache", kind="redis"}'
        values: '1x60'
      - series: 'pulse_source_up{instance="a", job="pulse-exporter", source="other-cache", kind="redis"}'
        values: '1x60'
      - series: 'pulse_worker_pool_workers_up{instance="a", job="pulse-exporter", source="queue-cache", pool="gpu"}'
        values: '2x4 0x14 1x40'
      - series: 'pulse_worker_pool_min_up{instance="a", job="pulse-exporter", source="queue-cache", pool="gpu"}'
        values: '2x60'
      - series: 'pulse_worker_pool_workers_up{instance="a", job="pulse-exporter", source="other-cache", pool="gpu"}'
        values: '0x60'
      - series: 'pulse_worker_pool_min_up{instance="a", job="pulse-exporter", source="other-cache", pool="gpu"}'
        values: '1x60'
    alert_rule_test:
      - eval_time: 4m
        alertname: PulseWorkerPoolDown
      - eval_time: 8m
        alertname: PulseWorkerPoolDown
        exp_alerts:
          - exp_labels: { severity: critical, source: queue-cache, pool: gpu, instance: a, job: pulse-exporter }
            exp_annotations:
              summary: "No gpu worker is up"
              description: "None of the gpu workers (queue-cache) has sent a heartbeat within its max_age for 2 minutes: the pool's jobs are not being processed."
              runbook_url: "https://github.com/pulse-exporter/pulse-exporter/blob/main/alerts/runbook.md#pulseworkerpooldown"
      - eval_time: 30m
        alertname: PulseWorkerPoolBelowMinimum
      - eval_time: 40m
        alertname: PulseWorkerPoolBelowMinimum
        exp_alerts:
          - exp_labels: { severity: warning, source: queue-cache, pool: gpu, instance: a, job: pulse-exporter }
            exp_annotations:
              summary: "The gpu pool has 1 workers up, fewer than its minimum"
              description: "The gpu pool (queue-cache) has had fewer workers up than its configured min_up for 15 minutes: jobs queue up while capacity is missing."
              runbook_url: "https://github.com/pulse-exporter/pulse-exporter/blob/main/alerts/runbook.md#pulseworkerpoolbelowminimum"
"#;
    promtool_test_rules(dir.path(), &[("workers.test.yml", tests)], &rules);
}

#[test]
fn generated_job_alerts_fire_for_the_configs_jobs_and_not_another_teams() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources: []\njobs:\n  - { name: rollup, cron: '0 2 * * *', max_runtime: 1h, token: rollup-token-0123456789 }\njob_keys:\n  - { name: scripts, key: scripts-key-0123456789, every: 1h }\n";
    let file = write_temp(dir.path(), "jobs.yml", config);
    let rules = generate(&file, "rules");
    promtool_check_rules(dir.path(), "rules.yml", &rules);
    // rollup (declared) and nightly-export (made by the `scripts` key) pass their deadline at
    // 5m; billing (another team's exporter config) is late too, but its own file alerts on it.
    // rollup then fails at 10m; the key's job hangs past its max_runtime.
    let tests = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pulse_job_info{instance="a", job="pulse-exporter", job_name="rollup", schedule="cron 0 2 * * * UTC", key=""}'
        values: '1x30'
      - series: 'pulse_job_info{instance="a", job="pulse-exporter", job_name="nightly-export", schedule="every 1h", key="scripts"}'
        values: '1x30'
      - series: 'pulse_job_info{instance="a", job="pulse-exporter", job_name="billing", schedule="every 1h", key=""}'
        values: '1x30'
      - series: 'pulse_job_deadline_timestamp_seconds{instance="a", job="pulse-exporter", job_name="rollup"}'
        values: '300x30'
      - series: 'pulse_job_deadline_timestamp_seconds{instance="a", job="pulse-exporter", job_name="nightly-export"}'
        values: '300x30'
      - series: 'pulse_job_deadline_timestamp_seconds{instance="a", job="pulse-exporter", job_name="billing"}'
        values: '300x30'
      - series: 'pulse_job_failing{instance="a", job="pulse-exporter", job_name="rollup"}'
        values: '0x9 1x20'
      - series: 'pulse_job_failing{instance="a", job="pulse-exporter", job_name="billing"}'
        values: '1x30'
      - series: 'pulse_job_running_since_timestamp_seconds{instance="a", job="pulse-exporter", job_name="nightly-export"}'
        values: '0x30'
      - series: 'pulse_job_max_runtime_seconds{instance="a", job="pulse-exporter", job_name="nightly-export"}'
        values: '600x30'
    alert_rule_test:
      - eval_time: 4m
        alertname: PulseJobLate
      - eval_time: 7m
        alertname: PulseJobLate
        exp_alerts:
          - exp_labels: { severity: warning, job_name: rollup, instance: a, job: pulse-exporter }
          - exp_labels: { severity: warning, job_name: nightly-export, instance: a, job: pulse-exporter }
      - eval_time: 12m
        alertname: PulseJobFailed
        exp_alerts:
          - exp_labels: { severity: warning, job_name: rollup, instance: a, job: pulse-exporter }
      - eval_time: 9m
        alertname: PulseJobRunningTooLong
      - eval_time: 12m
        alertname: PulseJobRunningTooLong
        exp_alerts:
          - exp_labels: { severity: warning, job_name: nightly-export, instance: a, job: pulse-exporter }
      - eval_time: 12m
        alertname: PulseJobLate
        exp_alerts:
          - exp_labels: { severity: warning, job_name: rollup, instance: a, job: pulse-exporter }
"#;
    write_bare_rules(dir.path(), &rules);
    let tests = tests.replace("rule_files: [rules.yml]", "rule_files: [rules-bare.yml]");
    promtool_test_rules(dir.path(), &[("jobs.test.yml", &tests)], &rules);
}

/// The bundled alerts a generated file copies (worker pools and queues).
const COPIED: &[&str] = &[
    "PulseQueueNotDraining",
    "PulseOldestJobTooOld",
    "PulseQueueDrainTooSlow",
    "PulseJobsNotProcessed",
    "PulseJobLatencyHigh",
    "PulseWorkerPoolDown",
    "PulseWorkerPoolBelowMinimum",
];

#[test]
fn generated_queue_and_worker_alerts_catch_every_failure_shape_the_bundled_ones_catch() {
    // Every case of the bundle's own promtool tests that names a copied alert is replayed
    // through the rules generated from a config with the sources those cases name: the same
    // stuck queues, hung consumers, silent pools and quiet nights, with the same labels and
    // annotations expected.
    let bundle: Yaml = serde_yaml::from_str(
        &std::fs::read_to_string(repo("alerts/tests/pulse-alerts.test.yml")).unwrap(),
    )
    .unwrap();
    let mut cases = Vec::new();
    let mut rabbit = BTreeSet::new();
    let mut pools: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut instances = BTreeSet::new();
    let label = |series: &str, name: &str| -> Option<String> {
        let at = series.find(&format!("{name}=\""))? + name.len() + 2;
        Some(series[at..at + series[at..].find('"')?].to_owned())
    };
    for case in bundle["tests"].as_sequence().unwrap() {
        let mut case = case.clone();
        let Some(asserts) = case["alert_rule_test"].as_sequence() else {
            continue;
        };
        let kept: Vec<Yaml> = asserts
            .iter()
            .filter(|a| COPIED.contains(&a["alertname"].as_str().unwrap()))
            .cloned()
            .collect();
        if kept.is_empty() {
            continue;
        }
        for s in case["input_series"].as_sequence().unwrap() {
            let series = s["series"].as_str().unwrap();
            if let Some(i) = label(series, "instance") {
                instances.insert((i, label(series, "job").unwrap_or_default()));
            }
            match (label(series, "source"), series.split('{').next().unwrap()) {
                (Some(src), m) if m.starts_with("pulse_rabbitmq_") => {
                    rabbit.insert(src);
                }
                (Some(src), m) if m.starts_with("pulse_worker_") => {
                    if let Some(pool) = label(series, "pool") {
                        pools.entry(src).or_default().insert(pool);
                    }
                }
                _ => {}
            }
        }
        case["alert_rule_test"] = Yaml::Sequence(kept);
        case.as_mapping_mut().unwrap().remove("promql_expr_test");
        cases.push(case);
    }
    assert!(
        cases.len() >= 10,
        "only {} cases name a copied alert",
        cases.len()
    );
    // The config: those sources, plus checks publishing the bundle's queue metrics.
    let mut config = String::from("sources:\n");
    for src in &rabbit {
        config +=
            &format!("  - {{ name: {src}, kind: rabbitmq, management_url: 'http://127.0.0.1:15672', username: guest, password: guest }}\n");
    }
    for (src, pools) in &pools {
        config += &format!(
            "  - name: {src}\n    kind: redis\n    url: redis://127.0.0.1:6379\n    heartbeats:\n"
        );
        for pool in pools {
            config += &format!("      - {{ pattern: 'w:{pool}:*', pool: {pool}, max_age: 30s }}\n");
        }
    }
    config += "  - name: jobs-cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    keys:\n      - { pattern: 'q:*', metric: app_queue_depth, label: queue, oldest: { metric: app_queue_oldest_job_timestamp_seconds } }\n";
    config +=
        "  - name: jobs-db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n";
    for metric in [
        "app_jobs_pending",
        "app_jobs_completed",
        "app_job_latency_avg_seconds",
        "app_jobs_oldest_pending_timestamp_seconds",
    ] {
        config += &format!("      - {{ metric: {metric}, sql: 'SELECT 1 AS value, 1 AS queue', labels: [queue] }}\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(dir.path(), "queues.yml", &config);
    let rules = generate(&file, "rules");
    promtool_check_rules(dir.path(), "rules.yml", &rules);
    let generated: Yaml = serde_yaml::from_str(&rules).unwrap();
    let names: BTreeSet<&str> = generated["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for alert in COPIED {
        assert!(names.contains(alert), "{alert} is not generated:\n{rules}");
    }
    // Every source of the config is up on every exporter the cases name.
    let sources: Vec<String> = rabbit
        .iter()
        .chain(pools.keys())
        .cloned()
        .chain(["jobs-cache".to_owned(), "jobs-db".to_owned()])
        .collect();
    for case in &mut cases {
        let input = case["input_series"].as_sequence_mut().unwrap();
        for (instance, job) in &instances {
            for src in &sources {
                let mut up = serde_yaml::Mapping::new();
                up.insert(
                    "series".into(),
                    format!(
                        "pulse_source_up{{instance=\"{instance}\",job=\"{job}\",source=\"{src}\"}}"
                    )
                    .into(),
                );
                up.insert("values".into(), "1x240".into());
                input.push(Yaml::Mapping(up));
            }
        }
    }
    let mut tests = serde_yaml::Mapping::new();
    tests.insert("rule_files".into(), vec![Yaml::from("rules.yml")].into());
    tests.insert("evaluation_interval".into(), "1m".into());
    tests.insert("tests".into(), Yaml::Sequence(cases));
    let test_file = write_temp(
        dir.path(),
        "copied.test.yml",
        &serde_yaml::to_string(&Yaml::Mapping(tests)).unwrap(),
    );
    run_ok(
        std::process::Command::new("promtool")
            .args(["test", "rules"])
            .arg(test_file),
        &format!("promtool test rules (the bundle's cases) on\n{rules}"),
    );
}

#[test]
fn a_generated_drop_alert_passes_the_business_rhythm_cases_of_the_bundled_one() {
    // The signups check of the HiveSync example asks for `drop:`; its generated
    // PulseBusinessSignalLow rule replays the weeks of scripts/business-rhythm-tests.py: it
    // fires when signups stop at midday and resolves when they resume, and stays quiet on a
    // quiet night, a 40 % slower weekend, a one-hour dip of 30 % and with one week of history.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("generated.rules.yml");
    std::fs::write(
        &rules,
        generate(&repo("examples/hivesync-joip.yml"), "rules"),
    )
    .unwrap();
    let tests = dir.path().join("business-rhythm.test.yml");
    run_ok(
        std::process::Command::new("python3")
            .arg(repo("scripts/business-rhythm-tests.py"))
            .arg("--generated")
            .arg(&rules)
            .arg(&tests),
        "scripts/business-rhythm-tests.py --generated",
    );
    // Without the example's other alerts and objectives, which no case reads.
    let cases = narrowed_file(&tests, dir.path());
    let out = run_ok(
        std::process::Command::new("promtool")
            .args(["test", "rules"])
            .args(&cases),
        "promtool test rules on the generated drop alert",
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn a_templates_alerts_fire_per_target_and_never_for_a_source_of_the_same_metric() {
    let dir = tempfile::tempdir().unwrap();
    // A configured source and a template publishing the same metric with the same bound.
    let config = "sources:\n  - name: main\n    kind: redis\n    url: redis://127.0.0.1:6379\n    keys:\n      - { key: jobs, metric: app_jobs_waiting, alert: { above: 100, for: 5m } }\ntemplates:\n  - name: shard\n    kind: redis\n    url: 'redis://{{target}}'\n    allowed_targets: ['.*']\n    keys:\n      - { key: jobs, metric: app_jobs_waiting, alert: { above: 100, for: 5m } }\n";
    let file = write_temp(dir.path(), "fleet.yml", config);
    let rules = generate(&file, "rules");
    promtool_check_rules(dir.path(), "rules.yml", &rules);
    write_bare_rules(dir.path(), &rules);
    // Targets 10.0.0.1 and 10.0.0.2 of the template, scraped by its job through /probe; the
    // configured source through /metrics. Target 2 goes down at 10m; target 1's queue and
    // the configured source's pass 100 at 1m.
    let tests = r#"rule_files: [rules-bare.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pulse_source_up{instance="10.0.0.1:6379", job="pulse-shard", source="shard/10.0.0.1:6379", kind="redis"}'
        values: '1x30'
      - series: 'pulse_source_up{instance="10.0.0.2:6379", job="pulse-shard", source="shard/10.0.0.2:6379", kind="redis"}'
        values: '1x10 0x20'
      - series: 'app_jobs_waiting{instance="10.0.0.1:6379", job="pulse-shard", key="jobs"}'
        values: '50 150x30'
      - series: 'app_jobs_waiting{instance="10.0.0.2:6379", job="pulse-shard", key="jobs"}'
        values: '50x30'
      - series: 'pulse_source_up{instance="exporter:7857", job="pulse-exporter", source="main", kind="redis"}'
        values: '1x30'
      - series: 'app_jobs_waiting{instance="exporter:7857", job="pulse-exporter", key="jobs"}'
        values: '50 150x30'
    alert_rule_test:
      - eval_time: 8m
        alertname: PulseCheckAboveThreshold
        exp_alerts:
          # The configured source's, and the template's for its one target over the bound.
          - exp_labels: { severity: warning, source: main, check: jobs, instance: "exporter:7857", job: pulse-exporter, key: jobs }
          - exp_labels: { severity: warning, template: shard, check: jobs, instance: "10.0.0.1:6379", job: pulse-shard, key: jobs }
      - eval_time: 15m
        alertname: PulseSourceDown
        exp_alerts:
          - exp_labels: { severity: warning, template: shard, source: "shard/10.0.0.2:6379", kind: redis, instance: "10.0.0.2:6379", job: pulse-shard }
"#;
    promtool_test_rules(dir.path(), &[("template.test.yml", tests)], &rules);
    // The dashboard: a row per template, its panels filtered by the `target` variable.
    let board: serde_json::Value = serde_json::from_str(&generate(&file, "dashboards")).unwrap();
    let variables: Vec<&str> = board["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "instance", "target"]);
    let text = board.to_string();
    assert!(
        text.contains("shard (redis template): every leased target"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"app_jobs_waiting{job=\"pulse-shard\", key=\"jobs\", instance=~\"$target\"}"#
        ),
        "{text}"
    );
}

/// Loaded as the docs say, the generated file in place of the bundle's `pulse-sources`,
/// `pulse-queues`, `pulse-workers` and `pulse-jobs` groups and beside the rest, in one rule
/// file through promtool: it passes with nothing to say, and every bundled alert is there
/// exactly once (a config bringing each of them: sources, a template, RabbitMQ queues, the
/// bundle's queue metrics, heartbeats and a job).
#[test]
fn the_generated_rules_beside_the_remaining_groups_hold_every_bundled_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources:\n  - { name: db, kind: postgres, url: 'postgres://127.0.0.1:5432/postgres', checks: [{ metric: app_jobs_pending, sql: SELECT 1 AS value }, { metric: app_job_latency_avg_seconds, sql: SELECT 1 AS value }] }\n  - { name: cache, kind: redis, url: 'redis://127.0.0.1:6379', keys: [{ key: q, metric: app_queue_depth, label: queue }], heartbeats: [{ pattern: 'hb:*', pool: gpu, max_age: 2m }] }\n  - { name: mq, kind: rabbitmq, management_url: 'http://127.0.0.1:15672', username: guest, password: guest }\ntemplates:\n  - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }\njobs:\n  - { name: nightly, every: 1d }\n";
    let file = write_temp(dir.path(), "team.yml", config);
    let generated: serde_yaml::Value = serde_yaml::from_str(&generate(&file, "rules")).unwrap();
    let bundle: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo("alerts/pulse-alerts.yml")).unwrap())
            .unwrap();
    let replaced = [
        "pulse-sources",
        "pulse-queues",
        "pulse-workers",
        "pulse-jobs",
    ];
    let mut groups: Vec<serde_yaml::Value> = bundle["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|g| !replaced.contains(&g["name"].as_str().unwrap()))
        .cloned()
        .collect();
    groups.extend(generated["groups"].as_sequence().unwrap().iter().cloned());
    // Alert names by the groups holding them.
    let mut holders: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for g in &groups {
        for r in g["rules"].as_sequence().unwrap() {
            if let Some(a) = r["alert"].as_str() {
                holders
                    .entry(a.to_owned())
                    .or_default()
                    .insert(g["name"].as_str().unwrap().to_owned());
            }
        }
    }
    for g in bundle["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let Some(a) = r["alert"].as_str() else {
                continue;
            };
            let held = holders.get(a).cloned().unwrap_or_default();
            assert_eq!(held.len(), 1, "{a} is in {held:?}");
        }
    }
    let mut all = serde_yaml::Mapping::new();
    all.insert("groups".into(), serde_yaml::Value::Sequence(groups));
    promtool_check_rules(
        dir.path(),
        "together.yml",
        &serde_yaml::to_string(&all).unwrap(),
    );
}

/// An objective's burn-rate alerts (docs/objectives.md) against the failure shapes that
/// decide whether they help: every probe failing pages within 5 minutes; 2 % failing for a
/// day opens the ticket and never pages; 0.05 % stays quiet; an exporter restarting
/// (counters back to 0) in the middle of each changes none of it. Probes run 4 a minute.
#[test]
fn objective_burn_rates_page_on_an_outage_ticket_a_slow_leak_and_ignore_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        "sources:\n  - { name: db, kind: redis, url: 'redis://127.0.0.1:6379', tier: primary }\n";
    let file = write_temp(dir.path(), "team.yml", config);
    let rules = generate(&file, "rules");
    std::fs::write(dir.path().join("rules.yml"), &rules).unwrap();
    write_bare_rules(dir.path(), &rules);
    let probes = r#"pulse_source_probes_total{instance="a", job="pulse-exporter", source="db", kind="redis"}"#;
    let failures = r#"pulse_source_probe_failures_total{instance="a", job="pulse-exporter", source="db", kind="redis", reason="timeout"}"#;
    let page = "{ severity: critical, objective: availability, source: db, instance: a, job: pulse-exporter, kind: redis }";
    let ticket = "{ severity: warning, objective: availability, source: db, instance: a, job: pulse-exporter, kind: redis }";
    // An outage after two healthy hours, each case once straight and once with a restart
    // (the counters start again from 0) in the healthy hour before it.
    let outage = |probes_values: &str, failure_values: &str| {
        format!(
            r#"  - interval: 1m
    input_series:
      - series: '{probes}'
        values: '{probes_values}'
      - series: '{failures}'
        values: '{failure_values}'
    alert_rule_test:
      - eval_time: 123m
        alertname: PulseObjectiveFastBurn
      - eval_time: 125m
        alertname: PulseObjectiveFastBurn
        exp_alerts:
          - exp_labels: {page}
"#
        )
    };
    // A leak after a healthy day: 2 % of the probes fail for a day (2-minute samples).
    let leak = |probes_values: &str, failure_values: &str, share: &str| {
        let expected = match share {
            "2%" => format!("        exp_alerts:\n          - exp_labels: {ticket}\n"),
            _ => String::new(),
        };
        format!(
            r#"  - interval: 2m
    input_series:
      - series: '{probes}'
        values: '{probes_values}'
      - series: '{failures}'
        values: '{failure_values}'
    alert_rule_test:
      - eval_time: 25h
        alertname: PulseObjectiveSlowBurn
      - eval_time: 47h
        alertname: PulseObjectiveSlowBurn
{expected}      - eval_time: 26h
        alertname: PulseObjectiveFastBurn
      - eval_time: 36h
        alertname: PulseObjectiveFastBurn
      - eval_time: 47h
        alertname: PulseObjectiveFastBurn
"#
        )
    };
    let tests = format!(
        "rule_files: [rules-bare.yml]\nevaluation_interval: 1m\ntests:\n{}{}{}{}{}{}",
        outage("0+4x180", "0x120 4+4x60"),
        outage("0+4x90 4+4x90", "0x120 4+4x60"),
        // 2 % of 8 probes every 2 minutes: 0.16 failures.
        leak("0+8x1440", "0x720 0+0.16x720", "2%"),
        leak("0+8x1080 8+8x360", "0x720 0+0.16x359 0.16+0.16x360", "2%"),
        // 0.05 %: 0.004 failures every 2 minutes.
        leak("0+8x1440", "0x720 0+0.004x720", "0.05%"),
        leak(
            "0+8x1080 8+8x360",
            "0x720 0+0.004x359 0.004+0.004x360",
            "0.05%"
        ),
    );
    promtool_test_rules(dir.path(), &[("objectives.test.yml", &tests)], &rules);
}

/// A latency objective burns when the histogram shifts: 99 % of GETs under 4.096 ms, then half
/// of them over it. The page waits for a seventh of the last hour's calls to be slow (14.4
/// times the 1 % budget), and the fast GETs before it never burn.
#[test]
fn a_latency_objective_burns_when_the_histogram_shifts() {
    let labels = r#"instance="a", job="pulse-exporter", source="cache", command="get""#;
    let metric = "pulse_redis_command_duration_seconds";
    // 100 GETs a minute; all under the bound for two hours, then 50 of them.
    replay(
        "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    objective: false\n    latency_objectives:\n      - { name: get-fast, series: { command: get }, under: 4096us }\n",
        &[
            (format!("{metric}_count{{{labels}}}"), "0+100x180"),
            (format!("{metric}_bucket{{{labels}, le=\"0.004096\"}}"), "0+100x120 12050+50x60"),
            (format!("{metric}_bucket{{{labels}, le=\"+Inf\"}}"), "0+100x180"),
        ],
        &[
            quiet("119m", FAST_BURN),
            quiet("130m", FAST_BURN),
            fires("145m", FAST_BURN, "{ severity: warning, objective: get-fast, source: cache, instance: a, job: pulse-exporter }"),
        ]
        .concat(),
    );
}

/// Replays `series` (sampled every minute) through the rules generated for `config`, with
/// `checks` (promtool's `alert_rule_test` items), and fails on promtool's verdict.
fn replay(config: &str, series: &[(String, &str)], checks: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(dir.path(), "team.yml", config);
    let rules = generate(&file, "rules");
    std::fs::write(dir.path().join("rules.yml"), &rules).unwrap();
    write_bare_rules(dir.path(), &rules);
    let input: String = series
        .iter()
        .map(|(s, v)| format!("      - series: '{s}'\n        values: '{v}'\n"))
        .collect();
    let tests = format!(
        "rule_files: [rules-bare.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{input}    alert_rule_test:\n{checks}"
    );
    promtool_test_rules(dir.path(), &[("case.test.yml", &tests)], &rules);
}

const FAST_BURN: &str = "PulseObjectiveFastBurn";

/// A promtool check that `alert` does not fire at `at`.
fn quiet(at: &str, alert: &str) -> String {
    format!("      - eval_time: {at}\n        alertname: {alert}\n")
}

/// A promtool check that `alert` fires at `at` with exactly `labels`.
fn fires(at: &str, alert: &str, labels: &str) -> String {
    format!("      - eval_time: {at}\n        alertname: {alert}\n        exp_alerts:\n          - exp_labels: {labels}\n")
}

/// The minute-by-minute values of a counter that `step` raises at each minute up to `minutes`.
fn counter_values(minutes: u32, step: impl Fn(u32) -> f64) -> String {
    let mut total = 0.0;
    let mut out = Vec::new();
    for minute in 0..=minutes {
        total += step(minute);
        out.push(format!("{total}"));
    }
    out.join(" ")
}

/// A job's objective (95 % of its due runs finish well and on time) against the shapes that
/// decide whether it helps: a job due every 5 minutes failing one run in five opens the ticket
/// and never pages; one failing one run in fifty stays quiet; one that stops running (every
/// due time missed) burns fast, as a warning (its threshold alerts page); an exporter restart
/// (counters back to 0) changes none of it. Each run is a step at its minute, as published.
#[test]
fn a_job_failing_one_run_in_five_tickets_and_a_stopped_one_burns() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources: []\njobs:\n  - { name: rollup, every: 5m, token: 0123456789abcdef0 }\n";
    let file = write_temp(dir.path(), "team.yml", config);
    let rules = generate(&file, "rules");
    std::fs::write(dir.path().join("rules.yml"), &rules).unwrap();
    write_bare_rules(dir.path(), &rules);
    let labels = r#"instance="a", job="pulse-exporter", job_name="rollup""#;
    let alert = |severity: &str| {
        format!("{{ severity: {severity}, objective: runs, job_name: rollup, instance: a, job: pulse-exporter }}")
    };
    // Runs at every fifth minute, the `fail_every`-th of them failing, for `hours`; a
    // restart at `restart` minutes (if any) starts every counter again from 0.
    let case =
        |hours: u32, fail_every: u32, stop_at: Option<u32>, restart: Option<u32>, checks: &str| {
            let minutes = hours * 60;
            let run = |m: u32| m.is_multiple_of(5) && m > 0 && stop_at.is_none_or(|s| m < s);
            let failed = |m: u32| run(m) && (m / 5).is_multiple_of(fail_every);
            let missed = |m: u32| m.is_multiple_of(5) && stop_at.is_some_and(|s| m >= s);
            let series = |step: &dyn Fn(u32) -> bool| {
                let values = counter_values(minutes, |m| f64::from(u8::from(step(m))));
                match restart {
                    // The counters a restarted exporter publishes: the store's count, read again
                    // from 0 by the new process's series (the old one's samples end there).
                    Some(r) => {
                        let mut v: Vec<f64> =
                            values.split(' ').map(|x| x.parse().unwrap()).collect();
                        let at = v[r as usize];
                        for x in v.iter_mut().skip(r as usize) {
                            *x -= at;
                        }
                        v.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                    None => values,
                }
            };
            format!(
                r#"  - interval: 1m
    input_series:
      - series: 'pulse_job_info{{{labels}, schedule="every 5m", key=""}}'
        values: '1x{minutes}'
      - series: 'pulse_job_runs_total{{{labels}, outcome="success"}}'
        values: '{}'
      - series: 'pulse_job_runs_total{{{labels}, outcome="failure"}}'
        values: '{}'
      - series: 'pulse_job_missed_runs_total{{{labels}}}'
        values: '{}'
    alert_rule_test:
{checks}"#,
                series(&|m| run(m) && !failed(m)),
                series(&failed),
                series(&missed),
            )
        };
    let warns = alert("warning");
    // The ticket's pairs are armed once the ratios go back a day.
    let one_in_five = [
        quiet("23h", "PulseObjectiveSlowBurn"),
        fires("25h", "PulseObjectiveSlowBurn", &warns),
        fires("29h", "PulseObjectiveSlowBurn", &warns),
        quiet("3h", "PulseObjectiveFastBurn"),
        quiet("12h", "PulseObjectiveFastBurn"),
        quiet("29h", "PulseObjectiveFastBurn"),
    ]
    .concat();
    let one_in_fifty = [
        quiet("12h", "PulseObjectiveSlowBurn"),
        quiet("29h", "PulseObjectiveSlowBurn"),
        quiet("29h", "PulseObjectiveFastBurn"),
    ]
    .concat();
    // Stopped after 6 healthy hours: the 1-hour ratio passes 72 % about 45 minutes later.
    let stopped = [
        quiet("6h30m", "PulseObjectiveFastBurn"),
        fires("7h", "PulseObjectiveFastBurn", &warns),
    ]
    .concat();
    let tests = format!(
        "rule_files: [rules-bare.yml]\nevaluation_interval: 1m\ntests:\n{}{}{}{}{}{}",
        case(30, 5, None, None, &one_in_five),
        case(30, 5, None, Some(600), &one_in_five),
        case(30, 50, None, None, &one_in_fifty),
        case(30, 50, None, Some(600), &one_in_fifty),
        case(7, 1000, Some(360), None, &stopped),
        case(7, 1000, Some(360), Some(380), &stopped),
    );
    promtool_test_rules(dir.path(), &[("jobs.test.yml", &tests)], &rules);
}

/// A Stripe source's delivery objective (99.9 % of its events reach every webhook endpoint
/// before Stripe gives up): 50 events a minute, all delivered for two hours, then one in
/// twenty given up on. A primary source pages; the delivered hours never burn.
#[test]
fn stripe_events_given_up_on_burn_the_delivery_objective() {
    // The platform account: `account=""`, which Prometheus stores as no label.
    let labels = r#"instance="a", job="pulse-exporter", source="pay", account="""#;
    replay(
        "sources:\n  - { name: pay, kind: stripe, api_key: sk_test_x, tier: primary, objective: false }\n",
        &[
            (format!("pulse_stripe_events_read_total{{{labels}, event_type=\"invoice.paid\"}}"), "0+40x180"),
            (format!("pulse_stripe_events_read_total{{{labels}, event_type=\"payment_intent.succeeded\"}}"), "0+10x180"),
            (format!("pulse_stripe_events_abandoned_total{{{labels}}}"), "0x120 0+2.5x60"),
        ],
        &[
            quiet("119m", FAST_BURN),
            fires("150m", FAST_BURN, "{ severity: critical, objective: delivery, source: pay, instance: a, job: pulse-exporter }"),
        ]
        .concat(),
    );
}

/// A job's latency objective (`latency_objectives:` of a job: 99 % of its runs within 64 s)
/// burns when its runs slow down: a run a minute, all within the bound for two hours, then
/// half of them over it. The bucket's bound reads as the exporter writes it (`le="64.0"`).
#[test]
fn a_jobs_latency_objective_burns_when_its_runs_slow_down() {
    let labels = r#"instance="a", job="pulse-exporter", job_name="rollup""#;
    let metric = "pulse_job_duration_seconds";
    replay(
        "sources: []\njobs:\n  - { name: rollup, every: 1m, token: 0123456789abcdef0, objective: false, latency_objectives: [{ name: quick, under: 64s }] }\n",
        &[
            (format!("{metric}_count{{{labels}}}"), "0+1x180"),
            (format!("{metric}_bucket{{{labels}, le=\"64.0\"}}"), "0+1x120 120.5+0.5x60"),
            (format!("{metric}_bucket{{{labels}, le=\"+Inf\"}}"), "0+1x180"),
        ],
        &[
            quiet("119m", FAST_BURN),
            fires("150m", FAST_BURN, "{ severity: warning, objective: quick, job_name: rollup, instance: a, job: pulse-exporter }"),
        ]
        .concat(),
    );
}

/// The objectives handed to an SLO tool read the latency buckets as Prometheus stores them:
/// Prometheus 3 normalizes a bound on ingestion (`le="64.0"`, `le="6.4e-05"`), where the
/// exporter writes `0.000064`. Sloth's queries (a regex of every form) and Pyrra's selectors
/// (the one stored form, since Pyrra parses it as a number) are replayed through promtool,
/// with half of the runs and half of the `get`s over the bound: Sloth's error ratio is 0.5,
/// Pyrra's good events half of all.
#[test]
fn the_slo_tools_indicators_read_the_buckets_in_the_form_prometheus_stores() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources:\n  - { name: cache, kind: redis, url: 'redis://h', objective: false, latency_objectives: [{ name: get-fast, series: { command: get }, under: 64us }] }\njobs:\n  - { name: rollup, every: 1m, token: 0123456789abcdef0, objective: false, latency_objectives: [{ name: quick, under: 64s }] }\n";
    let file = write_temp(dir.path(), "team.yml", config);
    let mut rules = Vec::new();
    let sloth = generate_with(&file, "rules", &["--format", "sloth"]);
    for doc in sloth.split("\n---\n").skip(1) {
        let spec: Value = serde_yaml::from_str(doc).unwrap();
        for slo in spec["slos"].as_array().unwrap() {
            let name = slo["name"].as_str().unwrap().replace('-', "_");
            for (q, what) in [("error_query", "errors"), ("total_query", "total")] {
                let expr = slo["sli"]["events"][q].as_str().unwrap();
                rules.push(serde_json::json!({
                    "record": format!("sloth:{name}:{what}"),
                    "expr": expr.replace("{{.window}}", "5m"),
                }));
            }
        }
    }
    let pyrra = generate_with(&file, "rules", &["--format", "pyrra"]);
    for doc in pyrra.split("\n---\n").skip(1) {
        let object: Value = serde_yaml::from_str(doc).unwrap();
        let latency = &object["spec"]["indicator"]["latency"];
        for what in ["success", "total"] {
            rules.push(serde_json::json!({
                "record": format!("pyrra:{}:{what}", object["metadata"]["name"].as_str().unwrap().replace('-', "_")),
                "expr": format!("sum(rate({}[5m]))", latency[what]["metric"].as_str().unwrap()),
            }));
        }
    }
    assert_eq!(rules.len(), 6, "two Sloth objectives, one Pyrra: {rules:?}");
    let file = serde_json::json!({"groups": [{"name": "tools", "rules": rules}]});
    std::fs::write(
        dir.path().join("tools.yml"),
        serde_yaml::to_string(&file).unwrap(),
    )
    .unwrap();
    let job = r#"instance="a", job="pulse-exporter", job_name="rollup""#;
    let cache = r#"instance="a", job="pulse-exporter", source="cache", command="get""#;
    let (runs, redis) = (
        "pulse_job_duration_seconds",
        "pulse_redis_command_duration_seconds",
    );
    let tests = format!(
        r#"rule_files: [tools.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{ series: '{runs}_count{{{job}}}', values: '0+2x30' }}
      - {{ series: '{runs}_bucket{{{job}, le="64.0"}}', values: '0+1x30' }}
      - {{ series: '{redis}_count{{{cache}}}', values: '0+20x30' }}
      - {{ series: '{redis}_bucket{{{cache}, le="6.4e-05"}}', values: '0+10x30' }}
    promql_expr_test:
      - expr: sloth:job_rollup_quick:errors / sloth:job_rollup_quick:total
        eval_time: 20m
        exp_samples: [{{ labels: '{{job_name="rollup"}}', value: 0.5 }}]
      - expr: sloth:cache_get_fast:errors / sloth:cache_get_fast:total
        eval_time: 20m
        exp_samples: [{{ labels: '{{source="cache"}}', value: 0.5 }}]
      - expr: pyrra:cache_get_fast:success / pyrra:cache_get_fast:total
        eval_time: 20m
        exp_samples: [{{ labels: '{{}}', value: 0.5 }}]
"#
    );
    promtool_test_rules(
        dir.path(),
        &[("tools.test.yml", &tests)],
        &serde_yaml::to_string(&file).unwrap(),
    );
}

/// A check's objective (`objective: true`, 99 % of its runs succeed) against the shapes that
/// decide whether it helps: a check that starts failing one run in three after a healthy hour
/// burns fast (as a warning: `PulseCheckFailing` never fires for a check that keeps
/// succeeding in between), also when the exporter restarts in the middle of it (every counter
/// back to 0); one failing one run in two hundred stays quiet, neither page nor ticket.
#[test]
fn a_checks_objective_burns_on_a_third_of_its_runs_failing_and_ignores_a_rare_failure() {
    let labels = |check: &str, outcome: &str| {
        format!(
            r#"pulse_check_runs_total{{instance="a", job="pulse-exporter", source="db", check="{check}", outcome="{outcome}"}}"#
        )
    };
    // Two runs a minute; `share` of them fail from minute 60; a restart at `restart` minutes
    // starts both counters again from 0.
    let values = |share: f64, restart: Option<u32>| {
        let (mut ok, mut failed) = (0.0, 0.0);
        let (mut oks, mut faileds) = (Vec::new(), Vec::new());
        for minute in 0..=1560u32 {
            if Some(minute) == restart {
                (ok, failed) = (0.0, 0.0);
            } else if minute > 0 {
                let bad = if minute > 60 { 2.0 * share } else { 0.0 };
                (ok, failed) = (ok + 2.0 - bad, failed + bad);
            }
            oks.push(format!("{ok}"));
            faileds.push(format!("{failed}"));
        }
        (oks.join(" "), faileds.join(" "))
    };
    let (third_ok, third_failed) = values(1.0 / 3.0, Some(80));
    let (rare_ok, rare_failed) = values(0.005, None);
    let fired = |alert: &str| {
        format!("{{ severity: warning, objective: runs, source: db, check: {alert}, instance: a, job: pulse-exporter }}")
    };
    replay(
        "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', tier: primary, objective: false, checks: [{ name: users, metric: app_users, sql: SELECT 1 AS value, objective: true }, { name: rare, metric: app_rare, sql: SELECT 1 AS value, objective: true }] }\n",
        &[
            (labels("users", "success"), &third_ok),
            (labels("users", "failure"), &third_failed),
            (labels("rare", "success"), &rare_ok),
            (labels("rare", "failure"), &rare_failed),
        ],
        &[
            quiet("60m", FAST_BURN),
            fires("100m", FAST_BURN, &fired("users")),
            fires("300m", FAST_BURN, &fired("users")),
            // The ticket's pairs are armed once the ratios go back a day.
            quiet("1380m", "PulseObjectiveSlowBurn"),
            fires("1560m", "PulseObjectiveSlowBurn", &fired("users")),
        ]
        .concat(),
    );
}

/// First contact: a Prometheus whose history starts with a source already down. Every
/// window's ratio is 1 from the second scrape, which would page as a burn before
/// PulseSourceDown (2 minutes) and again with it, and claim an hour it never saw. The burn
/// waits until the ratios go back its long window: the down alert pages alone, and the page's
/// pair arms after an hour (the ticket's after a day).
#[test]
fn from_an_empty_prometheus_a_source_down_pages_as_down_and_burns_once_an_hour_is_seen() {
    let labels = r#"instance="a", job="pulse-exporter", source="db", kind="redis""#;
    replay(
        "sources:\n  - { name: db, kind: redis, url: 'redis://h', tier: primary }\n",
        &[
            (format!("pulse_source_up{{{labels}, tier=\"primary\"}}"), "0x80"),
            (format!("pulse_source_probes_total{{{labels}}}"), "0+4x80"),
            (
                format!("pulse_source_probe_failures_total{{{labels}, reason=\"connect\"}}"),
                "0+4x80",
            ),
        ],
        &[
            quiet("1m", "PulseSourceDown"),
            fires("2m", "PulseSourceDown", "{ severity: critical, source: db, instance: a, job: pulse-exporter, kind: redis, tier: primary }"),
            quiet("5m", FAST_BURN),
            quiet("55m", FAST_BURN),
            fires("65m", FAST_BURN, "{ severity: critical, objective: availability, source: db, instance: a, job: pulse-exporter, kind: redis }"),
            quiet("80m", "PulseObjectiveSlowBurn"),
        ]
        .concat(),
    );
}
