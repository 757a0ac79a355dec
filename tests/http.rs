//! HTTP behaviour: formats, landing page, auth and TLS, reload, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn redis_config(extra_checks: &str) -> String {
    format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    checks:
      - metric: app_dbsize
        command: [DBSIZE]
        interval: 60s
        timeout: 2s
{extra_checks}"#
    )
}

#[tokio::test]
async fn formats_are_negotiated_and_the_landing_page_shows_sources() {
    let e = Exporter::start(&redis_config(""));
    e.wait_for("up", Duration::from_secs(10), |m| {
        m.get("pulse_source_up", &[("source", "cache")]) == Some(1.0)
    })
    .await;
    let client = reqwest::Client::new();
    let om = client
        .get(e.url("/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let om = om.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE pulse_source_probe_failures counter"));

    let text = client.get(e.url("/metrics")).send().await.unwrap();
    assert!(text.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = text.text().await.unwrap();
    assert!(!text.contains("# EOF"));
    assert!(text.contains("# TYPE pulse_source_probe_failures_total counter"));
    assert!(text.contains("pulse_build_info{version=\""));

    let landing = e.get("/").await;
    assert!(landing.contains("pulse-exporter") && landing.contains(env!("CARGO_PKG_VERSION")));
    assert!(landing.contains("href=\"/metrics\""));
    assert!(
        landing.contains("<td>cache</td><td>redis</td>") && landing.contains(">UP<"),
        "{landing}"
    );
    assert_eq!(e.get("/-/healthy").await, "Healthy\n");
    assert_eq!(e.get("/-/ready").await, "Ready\n");
    let get_reload = client.get(e.url("/-/reload")).send().await.unwrap();
    assert_eq!(get_reload.status(), 405, "reload only by POST or PUT");
}

#[tokio::test]
async fn custom_telemetry_path_is_honoured() {
    let e = Exporter::start_with(&redis_config(""), &["--web.telemetry-path", "/pulse"], &[]);
    assert!(e.get("/pulse").await.contains("pulse_build_info"));
    let r = reqwest::get(e.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn basic_auth_over_tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = write_temp(dir.path(), "tls.crt", &cert.cert.pem());
    let key_path = write_temp(dir.path(), "tls.key", &cert.key_pair.serialize_pem());
    let hash = bcrypt::hash("right-horse", 4).unwrap();
    let web = write_temp(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  admin: '{hash}'\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            format!("127.0.0.1:{}", e.port).parse().unwrap(),
        )
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/metrics", e.port);
    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = client
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let nobody = client
        .get(&url)
        .basic_auth("nobody", Some("right-horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 401);
    let right = client
        .get(&url)
        .basic_auth("admin", Some("right-horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("pulse_build_info"));
    // Every endpoint is admin-only, the reload trigger included.
    let reload = client
        .post(format!("https://localhost:{}/-/reload", e.port))
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 401);
    // Plain HTTP is not served on the TLS port.
    assert!(reqwest::get(format!("http://127.0.0.1:{}/metrics", e.port))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true));
}

#[test]
fn an_invalid_web_config_stops_start_up_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let web = write_temp(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
    );
    let cfg = write_temp(dir.path(), "pulse.yml", &redis_config(""));
    let (code, _, err) = run_cli(
        &[
            "--config.file",
            cfg.to_str().unwrap(),
            "--web.config.file",
            web.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("cert_file /nonexistent.crt"), "{err}");
}

#[tokio::test]
async fn reload_adds_checks_keeps_unchanged_ones_and_rejects_bad_files() {
    let e = Exporter::start(&redis_config(""));
    let first = e
        .wait_for("first run", Duration::from_secs(10), |m| {
            m.get("app_dbsize", &[]).is_some()
        })
        .await;
    let ran_at = first
        .get(
            "pulse_check_last_success_timestamp_seconds",
            &[("check", "app_dbsize")],
        )
        .unwrap();

    e.write_config(&redis_config(
        "      - metric: app_dbsize_again\n        command: [DBSIZE]\n        interval: 1s\n        timeout: 500ms\n",
    ));
    let resp = e.reload().await;
    assert_eq!(resp.status(), 200);
    e.wait_for("new check", Duration::from_secs(10), |m| {
        m.get("app_dbsize_again", &[]).is_some()
    })
    .await;
    // A restarted task would have run again within its start jitter (at most 5 s); the
    // unchanged check keeps its 60 s schedule and its cached result instead.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = e.metrics().await;
    assert_eq!(
        m.get(
            "pulse_check_last_success_timestamp_seconds",
            &[("check", "app_dbsize")]
        ),
        Some(ran_at)
    );
    assert!(m.get("app_dbsize", &[]).is_some());

    // SIGHUP reloads too: remove the added check.
    e.write_config(&redis_config(""));
    e.signal("-HUP");
    e.wait_for("check removed", Duration::from_secs(10), |m| {
        m.get("app_dbsize_again", &[]).is_none()
    })
    .await;

    e.write_config(
        "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1\n    bogus: 1\n",
    );
    let resp = e.reload().await;
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("sources[0].bogus"));
    let m = e.metrics().await;
    assert_eq!(m.get("pulse_config_last_reload_successful", &[]), Some(0.0));
    assert!(
        m.get("app_dbsize", &[]).is_some(),
        "the old config keeps running"
    );
    assert!(e.logs().contains("event=config.reload_failed"));
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut e = Exporter::start(&redis_config(""));
    e.wait_for("up", Duration::from_secs(10), |m| {
        m.get("pulse_source_up", &[]).is_some()
    })
    .await;
    e.signal("-TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = e.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(e.logs().contains("stopped"));
}

#[tokio::test]
async fn a_password_guessing_client_is_limited_without_slowing_a_known_scraper() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("right-horse", 4).unwrap();
    let web = write_temp(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  admin: '{hash}'\n"),
    );
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    let url = format!("http://127.0.0.1:{}/metrics", e.port);
    let client = reqwest::Client::new();
    let get = |password: &'static str| client.get(&url).basic_auth("admin", Some(password)).send();
    assert_eq!(get("right-horse").await.unwrap().status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get("wrong").await.unwrap().status().as_u16());
    }
    // Five verifications at once per address, the successful login among them.
    assert_eq!(statuses[..4], [401; 4], "{statuses:?}");
    assert_eq!(statuses[4..], [429; 4], "{statuses:?}");
    let limited = get("wrong").await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "6");
    // The scraper that logged in before is remembered: never limited, never pays bcrypt.
    for _ in 0..5 {
        assert_eq!(get("right-horse").await.unwrap().status(), 200);
    }
}
