//! Credentials never reach /metrics, the landing page, `probe` output or the logs.

use pulse_test_support as common;

use std::time::Duration;

use common::*;

const REDIS_PW: &str = "RedisPw-7a1c9e";
const PG_PW: &str = "PgPw-3f8b2d";
const FILE_PW: &str = "FilePw-19c4aa";
const MONGO_PW: &str = "MongoPw-5e7d01";
const AMQP_PW: &str = "AmqpPw-0b6c3f";
const ENV_FILE_PW: &str = "EnvFilePw-6d2e84";

#[tokio::test]
async fn passwords_never_appear_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_temp(dir.path(), "pg_password", &format!("{FILE_PW}\n"));
    let closed = closed_port();
    // Redis has no password set, so AUTH fails and the error is logged; the Postgres
    // sources point at a closed port, so connection errors are logged with their URLs.
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: cache
    kind: redis
    url: redis://:{REDIS_PW}@127.0.0.1:6379
    keys: [{{ key: somekey }}]
  - name: db-env
    kind: postgres
    url: postgres://app:${{env:PULSE_TEST_PG_PW}}@127.0.0.1:{closed}/app
    checks:
      - {{ metric: app_x, sql: "SELECT 1 AS value", interval: 2s, timeout: 1s }}
  - name: db-file
    kind: postgres
    url: postgres://app:${{file:{}}}@127.0.0.1:{closed}/app
  - name: db-env-file
    kind: postgres
    url: ${{env:PULSE_TEST_PG_URL}}
  - name: mongo
    kind: mongodb
    url: mongodb://app:{MONGO_PW}@127.0.0.1:{closed}/app?serverSelectionTimeoutMS=300&connectTimeoutMS=300
  - name: amqp
    kind: rabbitmq
    amqp_url: amqp://app:{AMQP_PW}@127.0.0.1:{closed}/%2f
    amqp_queues: [jobs]
"#,
        secret_file.display()
    );
    // The way compose passes a URL: in the environment, its password a secret file reference.
    let env_file = write_temp(dir.path(), "pg_env_password", &format!("{ENV_FILE_PW}\n"));
    let env_url = format!(
        "postgres://app:${{file:{}}}@127.0.0.1:{closed}/app",
        env_file.display()
    );
    let env = [
        ("PULSE_TEST_PG_PW", PG_PW),
        ("PULSE_TEST_PG_URL", env_url.as_str()),
    ];
    let e = Exporter::start_with(&config, &[], &env);
    let m = e
        .wait_for("failures recorded", Duration::from_secs(10), |m| {
            m.probe_failed_with("cache", "auth")
                && m.probe_failed_with("db-env", "connect")
                && m.probe_failed_with("db-file", "connect")
                && m.probe_failed_with("db-env-file", "connect")
                && m.get("pulse_check_success", &[("check", "app_x")])
                    .is_some()
        })
        .await;
    let landing = e.get("/").await;
    assert!(
        landing.contains("db-env") && landing.contains("DOWN (connect)"),
        "{landing}"
    );
    assert!(
        landing.contains("postgres://app@127.0.0.1"),
        "endpoint shown without password: {landing}"
    );

    let path = e.config_path.to_str().unwrap().to_owned();
    let (code, probe_out, probe_err) = run_cli(&["probe", "--config.file", &path], &env);
    assert_eq!(code, 1, "probe exits 1 when checks fail");
    assert!(
        probe_out.contains("FAIL (auth)") && probe_out.contains("FAIL (connect)"),
        "{probe_out}"
    );

    let logs = e.logs();
    assert!(
        logs.contains("event=source.degraded"),
        "errors were logged: {logs}"
    );
    for (what, text) in [
        ("metrics", &m.text),
        ("landing page", &landing),
        ("probe output", &probe_out),
        ("probe stderr", &probe_err),
        ("logs", &logs),
    ] {
        for pw in [REDIS_PW, PG_PW, FILE_PW, MONGO_PW, AMQP_PW, ENV_FILE_PW] {
            assert!(!text.contains(pw), "{pw} leaked into the {what}:\n{text}");
        }
    }
    // The exporter's command line holds no secret either: it only names the config file.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", e.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(PG_PW));
    // A password kept in a secret file stays out of the environment: it holds the reference.
    let environ = std::fs::read(format!("/proc/{}/environ", e.child.id())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains(ENV_FILE_PW) && environ.contains("${file:"));
}
