//! The command line: `check` on good and bad files, `probe`, flags and their env fallbacks.

use pulse_test_support as common;

use common::*;

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(dir.path(), "pulse.yml", config);
    run_cli(&["check", "--config.file", p.to_str().unwrap()], env)
}

fn assert_rejected(config: &str, env: &[(&str, &str)], expected: &[&str]) {
    let (code, _, err) = check(config, env);
    assert_eq!(code, 1, "expected exit 1 for:\n{config}\nstderr: {err}");
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
}

const PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[test]
fn a_valid_file_passes_check() {
    let (code, out, err) = run_cli(
        &[
            "check",
            "--config.file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local.yml"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid (3 sources"), "{out}");
}

#[test]
fn unknown_field_is_named_with_its_path() {
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: app_x\n        sql: SELECT 1 AS value\n        lables: [a]\n"),
        &[],
        &["sources[0].checks[0]", "unknown field `lables`"],
    );
    assert_rejected("globl: {}\n", &[], &["unknown field `globl`"]);
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    pool: 3\n"),
        &[],
        &["sources[0]", "unknown field `pool`"],
    );
}

#[test]
fn redis_field_counting_needs_count_and_a_new_label() {
    assert_rejected(
        "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    keys:\n      - pattern: \"ws:*\"\n        metric: app_ws\n        group_by: device\n        distinct: user_id\n      - pattern: \"ws:*\"\n        metric: app_ws2\n        count: true\n        label: device\n        group_by: device\n",
        &[],
        &[
            "sources[0].keys[0].group_by",
            "sources[0].keys[0].distinct",
            "set `count: true`",
            "sources[0].keys[1].group_by",
            "already a label",
        ],
    );
}

#[test]
fn bad_metric_and_label_names_are_rejected() {
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: app-users\n        sql: SELECT 1 AS value\n        labels: [\"plan type\"]\n"),
        &[],
        &["sources[0].checks[0].metric", "not a valid Prometheus metric name", "sources[0].checks[0].labels[0]"],
    );
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: pulse_users\n        sql: SELECT 1 AS value\n"),
        &[],
        &["sources[0].checks[0].metric", "reserved"],
    );
}

#[test]
fn missing_env_var_and_secret_file_name_the_field() {
    assert_rejected(
        "sources:\n  - name: db\n    kind: postgres\n    url: ${env:PULSE_TEST_NOT_SET_EVER}\n",
        &[],
        &["sources[0].url", "PULSE_TEST_NOT_SET_EVER", "is not set"],
    );
    assert_rejected(
        "sources:\n  - name: db\n    kind: postgres\n    url: postgres://u:${file:/nonexistent/pulse-secret}@h/db\n",
        &[],
        &["sources[0].url", "/nonexistent/pulse-secret"],
    );
}

#[test]
fn timeout_not_below_interval_is_rejected() {
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: app_x\n        sql: SELECT 1 AS value\n        interval: 5s\n        timeout: 5s\n"),
        &[],
        &["sources[0].checks[0].timeout", "shorter than the interval"],
    );
    assert_rejected(
        "global: { health_interval: 2s, health_timeout: 3s }\n",
        &[],
        &["global.health_timeout"],
    );
    assert_rejected(
        "global: { interval: fast }\n",
        &[],
        &["global.interval", "invalid duration"],
    );
}

#[test]
fn duplicate_names_and_contradictions_are_rejected() {
    assert_rejected(
        &format!("sources:\n  - {{ name: db, kind: postgres, url: \"{PG}\" }}\n  - {{ name: db, kind: redis, url: \"redis://127.0.0.1\" }}\n"),
        &[],
        &["sources[1].name", "duplicate source name"],
    );
    assert_rejected(
        "sources:\n  - name: c\n    kind: redis\n    url: redis://127.0.0.1\n    keys:\n      - { key: a, pattern: \"b*\" }\n    checks:\n      - { metric: app_x, command: [DEL, a] }\n",
        &[],
        &["sources[0].keys[0]", "exactly one of", "sources[0].checks[0].command", "\"DEL\" is not an allowed"],
    );
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: app_x\n        sql: SELECT 1 AS a, 2 AS b\n        values: [a, b]\n"),
        &[],
        &["sources[0].checks[0].value_label", "required with more than one value column"],
    );
    // Every kind the build knows, in the registry's order.
    let kinds: Vec<&str> = pulse_exporter::sources::registry::KINDS
        .iter()
        .map(|k| k.name)
        .collect();
    assert_rejected(
        "sources:\n  - { name: q, kind: kafka }\n",
        &[],
        &["sources[0].kind", "unknown source kind", &kinds.join(", ")],
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let (code, _, err) = check(
        &format!("global: {{ timeout: 2m }}\nsources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - {{ metric: 1bad, sql: SELECT 1 }}\n  - name: db\n    kind: redis\n    url: ${{env:PULSE_TEST_NOT_SET_EVER}}\n"),
        &[],
    );
    assert_eq!(code, 1);
    for expected in [
        "global.timeout",
        "sources[0].checks[0].metric",
        "sources[1].url",
        "sources[1].name",
    ] {
        assert!(err.contains(expected), "{expected} missing from:\n{err}");
    }
    assert!(err.contains("config error(s)"), "{err}");
}

#[test]
fn invalid_yaml_reports_the_line() {
    assert_rejected(
        "sources:\n  - name: db\n   kind: postgres\n",
        &[],
        &["invalid YAML", "line"],
    );
}

#[test]
fn config_file_comes_from_the_environment_too() {
    let (code, out, err) = run_cli(
        &["check"],
        &[(
            "PULSE_CONFIG_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local.yml"),
        )],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"));
    let (code, _, err) = run_cli(&["check"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--config.file"), "{err}");
}

#[test]
fn probe_prints_a_table_of_every_check() {
    let (code, out, err) = run_cli(
        &[
            "probe",
            "--config.file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local.yml"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let header = out.lines().next().unwrap();
    for col in ["SOURCE", "KIND", "CHECK", "OUTCOME", "DURATION", "SERIES"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("app-db") && l.contains("health") && l.contains(" ok ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("cache") && l.contains("app_ai_requests_last_minute")),
        "{out}"
    );
}

#[test]
fn bad_listen_address_fails_with_a_clear_message() {
    let (code, _, err) = run_cli(
        &[
            "--config.file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local.yml"),
            "--web.listen-address",
            "nonsense",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--web.listen-address"), "{err}");
}

#[test]
fn heartbeat_mistakes_are_named() {
    assert_rejected(
        "sources:\n  - name: c\n    kind: redis\n    url: redis://127.0.0.1\n    heartbeats:\n      - { pool: gpu, pattern: \"w:*\", hash: w, max_age: 5m, forget_after: 1m, metric: app_x, attributes: [worker] }\n      - { pool: cpu, pattern: \"c:*\", colour: red }\n",
        &[],
        &[
            "sources[0].heartbeats[0]: set exactly one of `pattern`",
            "sources[0].heartbeats[0].forget_after",
            "sources[0].heartbeats[0].metric",
            "sources[0].heartbeats[0].attributes[0]",
            "sources[0].heartbeats[1]",
            "unknown field `colour`",
        ],
    );
}

#[test]
fn a_telemetry_path_that_clashes_is_refused() {
    for bad in ["/", "/-/healthy", "metrics"] {
        let (code, _, err) = run_cli(
            &[
                "--config.file",
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local.yml"),
                "--web.listen-address",
                "127.0.0.1:0",
                "--web.telemetry-path",
                bad,
            ],
            &[],
        );
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--web.telemetry-path"), "{err}");
    }
}

#[test]
fn a_secret_may_not_become_a_label_or_help_text() {
    assert_rejected(
        &format!("sources:\n  - name: db\n    kind: postgres\n    url: {PG}\n    checks:\n      - metric: app_x\n        sql: SELECT 1 AS value\n        help: token ${{env:PULSE_TEST_LABEL_SECRET}}\n        const_labels: {{ tenant: \"${{env:PULSE_TEST_LABEL_SECRET}}\" }}\n"),
        &[("PULSE_TEST_LABEL_SECRET", "s3cr3t-label-value")],
        &["sources[0].checks[0].const_labels.tenant", "sources[0].checks[0].help", "secret"],
    );
}

#[test]
fn healthcheck_exits_0_for_a_running_exporter_and_1_for_a_closed_port() {
    let e = Exporter::start("sources: []\n");
    let addr = format!("127.0.0.1:{}", e.port);
    let (code, _, err) = run_cli(&["healthcheck", "--web.listen-address", &addr], &[]);
    assert_eq!(code, 0, "{err}");
    // The listen address comes from the environment as for the server itself.
    let (code, _, err) = run_cli(&["healthcheck"], &[("PULSE_WEB_LISTEN_ADDRESS", &addr)]);
    assert_eq!(code, 0, "{err}");
    drop(e);
    let closed = format!("127.0.0.1:{}", closed_port());
    let (code, _, err) = run_cli(&["healthcheck", "--web.listen-address", &closed], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&closed), "{err}");
}

/// `helm test` scrapes the release's Service once: `--url` asks any URL, and
/// `--expect-metric` wants a sample of the metric, not its HELP line or a longer name.
#[test]
fn healthcheck_scrapes_a_url_and_requires_the_metric_asked_for() {
    let e = Exporter::start("sources: []\n");
    let url = format!("--url=http://127.0.0.1:{}/metrics", e.port);
    let (code, _, err) = run_cli(
        &["healthcheck", &url, "--expect-metric=pulse_build_info"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_cli(&["healthcheck", &url, "--expect-metric=pulse_build"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("answered 200 without a sample of pulse_build"),
        "{err}"
    );
    let missing = format!("--url=http://127.0.0.1:{}/nowhere", e.port);
    let (code, _, err) = run_cli(&["healthcheck", &missing], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("answered HTTP 404"), "{err}");
}

/// `config-schema` needs no config, and what it writes refuses a misspelt field the loader
/// refuses (the same structs), through `helm lint` in tests/kubernetes/helm.rs and here by
/// its shape.
#[test]
fn config_schema_writes_draft_07_json_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("schema.json");
    let (code, _, err) = run_cli(&["config-schema", "--output", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    let (code, stdout, _) = run_cli(&["config-schema"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
        schema
    );
}

/// The configuration guide's example (docs/configuration.md) is one whole YAML document that
/// `check` accepts, with every source kind in it: readers copy it.
#[test]
fn the_configuration_guides_example_is_a_valid_config() {
    let section = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    for kind in [
        "postgres", "redis", "rabbitmq", "mongodb", "stripe", "s3", "logfile",
    ] {
        assert!(
            block.contains(&format!("kind: {kind}\n")),
            "the example has no {kind} source"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = write_temp(dir.path(), "redis", "example-secret\n");
    let config = write_temp(
        dir.path(),
        "readme.yml",
        &block.replace("/run/secrets/redis", secret.to_str().unwrap()),
    );
    let env = [
        ("PGPASSWORD", "example"),
        ("RABBITMQ_PASSWORD", "example"),
        ("AMQP_PASSWORD", "example"),
        ("MONGO_PASSWORD", "example"),
        ("STRIPE_API_KEY", "rk_test_example"),
    ];
    let (code, out, err) = run_cli(&["check", "--config.file", config.to_str().unwrap()], &env);
    assert_eq!(code, 0, "the guide's example is rejected:\n{out}\n{err}");
}

#[test]
fn absurd_numbers_exit_1_with_the_field_never_a_panic() {
    // This interval once made `check` panic ("overflow when multiplying duration by scalar").
    assert_rejected(
        "global: { interval: 6200000000000000000s }\nsources:\n  - { name: c, kind: redis, url: 'redis://127.0.0.1', keys: [{ key: a, stale_after: 6200000000000000000s }, { key: b, max_series: 99999999999999 }] }\n",
        &[],
        &[
            "global.interval: duration \"6200000000000000000s\" is longer than a year",
            "sources[0].keys[1].max_series: 99999999999999 is too large",
            "sources[0].keys[0].stale_after: duration",
            "(line 3, column",
        ],
    );
}

/// The commands that write no secret run where the secrets are not (CI, a laptop): a config
/// whose every connection string and password comes from unset variables and absent files
/// gives its rules, dashboard and scrape jobs, naming no placeholder; `check` and a start
/// still refuse it, and a real mistake still fails the generators.
#[test]
fn rules_dashboards_and_scrape_config_need_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = "sources:\n  - name: db\n    kind: postgres\n    url: ${env:PULSE_TEST_NOT_SET_EVER}\n    checks:\n      - { metric: app_users, sql: SELECT 1 AS value, alert: { above: 5 } }\n  - name: broker\n    kind: rabbitmq\n    management_url: ${env:PULSE_TEST_NOT_SET_URL}\n    username: monitor\n    password: ${file:/nonexistent/pulse-secret}\ntemplates:\n  - name: fleet\n    kind: redis\n    url: redis://:${env:PULSE_TEST_NOT_SET_PW}@{{target}}\n    allowed_targets: ['.*']\n";
    let p = write_temp(dir.path(), "pulse.yml", config);
    let file = p.to_str().unwrap();
    for args in [
        vec!["rules", "--config.file", file],
        vec!["dashboards", "--config.file", file],
        vec![
            "scrape-config",
            "--config.file",
            file,
            "--exporter",
            "pulse:7857",
        ],
    ] {
        let (code, out, err) = run_cli(&args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            !out.contains("unresolved-reference"),
            "{args:?} wrote a placeholder:\n{out}"
        );
        assert!(
            out.contains("db") || out.contains("fleet"),
            "{args:?}:\n{out}"
        );
    }
    let (code, _, err) = run_cli(&["rules", "--config.file", file], &[]);
    assert_eq!(code, 0, "{err}");
    assert_rejected(config, &[], &["PULSE_TEST_NOT_SET_EVER", "is not set"]);
    let broken = config.replace("metric: app_users", "metric: 9bad");
    let p = write_temp(dir.path(), "broken.yml", &broken);
    let (code, _, err) = run_cli(&["rules", "--config.file", p.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "a real mistake still fails: {err}");
    assert!(err.contains("9bad"), "{err}");
}

/// The three first-hour mistakes reported by their cause and fix, against the real servers:
/// a management URL on the AMQP port (a short message, no query string, the right port),
/// a password for a Redis that has none, and a Postgres port nobody listens on, whose
/// checks keep "connection refused" instead of only a time.
#[test]
fn connect_errors_keep_their_cause_and_say_the_fix() {
    let amqp = url::Url::parse(&RABBIT_AMQP).unwrap();
    let redis = url::Url::parse(&REDIS_URL).unwrap();
    let closed = closed_port();
    let config = format!(
        r#"
sources:
  - name: broker
    kind: rabbitmq
    management_url: http://{}:{}
    username: guest
    password: guest
  - name: cache
    kind: redis
    url: redis://:not-a-password-here@{}:{}
    latency: false
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:{closed}/postgres
"#,
        amqp.host_str().unwrap(),
        amqp.port().unwrap_or(5672),
        redis.host_str().unwrap(),
        redis.port().unwrap_or(6379),
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(dir.path(), "pulse.yml", &config);
    let (code, out, err) = run_cli(&["probe", "--config.file", p.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}{err}");
    let row = |source: &str, check: &str| {
        out.lines()
            .find(|l| {
                let mut cells = l.split_whitespace();
                cells.next() == Some(source) && cells.nth(1) == Some(check)
            })
            .unwrap_or_else(|| panic!("no {source} {check} row in:\n{out}"))
            .to_owned()
    };
    let queues = row("broker", "queues");
    assert!(
        queues.contains("is the AMQP port") && queues.contains("15672"),
        "{queues}"
    );
    assert!(
        !queues.contains("columns="),
        "the queue listing's query is no cause: {queues}"
    );
    assert!(queues.len() < 600, "{} characters: {queues}", queues.len());
    let cache = row("cache", "health");
    assert!(
        cache.contains("FAIL (auth)") && cache.contains("no password set"),
        "{cache}"
    );
    assert!(!cache.contains("not-a-password-here"), "{cache}");
    for check in ["health", "statements", "tables"] {
        let db = row("db", check);
        assert!(db.contains("FAIL (connect)"), "{db}");
        assert!(
            db.to_lowercase().contains("refused"),
            "{check} lost the cause: {db}"
        );
    }
}

/// Each subcommand's `--help` lists the flags it reads and none of the server's, and the
/// listen address's help says what `:7857` binds, as docs/running.md does.
#[test]
fn each_help_lists_only_its_own_flags() {
    let help = |args: &[&str]| {
        let (code, out, err) = run_cli(args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let server = help(&["--help"]);
    assert!(server.contains("--web.max-connections"), "{server}");
    assert!(server.contains("every IPv4 interface"), "{server}");
    let server_only = [
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.max-connections",
        "--config.auto-reload-interval",
    ];
    for sub in [
        "rules",
        "dashboards",
        "scrape-config",
        "check",
        "probe",
        "bundle-rules",
    ] {
        let text = help(&[sub, "--help"]);
        for flag in server_only {
            assert!(!text.contains(flag), "`{sub} --help` lists {flag}:\n{text}");
        }
    }
    for sub in ["rules", "dashboards", "scrape-config", "bundle-rules"] {
        let text = help(&[sub, "--help"]);
        assert!(!text.contains("--shard.count"), "`{sub} --help`:\n{text}");
    }
    for sub in ["check", "probe"] {
        let text = help(&[sub, "--help"]);
        assert!(
            text.contains("--shard.count") && text.contains("--config.file"),
            "{text}"
        );
    }
    assert!(!help(&["bundle-rules", "--help"]).contains("--config.file"));
    let health = help(&["healthcheck", "--help"]);
    assert!(
        health.contains("--web.listen-address") && health.contains("--web.config.file"),
        "{health}"
    );
    assert!(!health.contains("--web.max-connections"), "{health}");
}

/// A config without sources is said to probe nothing, never shown as an empty table that
/// reads as "all fine".
#[test]
fn probe_says_when_there_is_no_source() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(
        dir.path(),
        "jobs.yml",
        "jobs:\n  - { name: nightly, every: 1h }\n",
    );
    let (code, out, err) = run_cli(&["probe", "--config.file", p.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("no source to probe: the config has none"),
        "{out}"
    );
    assert!(!out.contains("SOURCE"), "{out}");
}
