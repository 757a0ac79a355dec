//! HTTP behaviour: formats, landing page, auth and TLS, reload, shutdown.

use pulse_test_support as common;

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
        timeout: 10s
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
async fn a_scraper_that_accepts_gzip_gets_it_and_every_scraper_the_same_encode() {
    use std::io::Read;
    // Health every hour: after the first runs nothing changes during the test. The one probe
    // it gets has 20 s, as a busy machine may need more than the usual 800 ms.
    let quiet = redis_config("").replace(
        "health_interval: 1s, health_timeout: 800ms",
        "health_interval: 1h, health_timeout: 20s",
    );
    let e = Exporter::start(&quiet);
    e.wait_for("up and counted", Duration::from_secs(30), |m| {
        m.get("pulse_source_up", &[("source", "cache")]) == Some(1.0)
            && m.get("app_dbsize", &[]).is_some()
    })
    .await;
    let client = reqwest::Client::new();
    let get = |encoding: Option<&'static str>| {
        let mut r = client.get(e.url("/metrics"));
        if let Some(enc) = encoding {
            r = r.header("Accept-Encoding", enc);
        }
        r.send()
    };
    // Prometheus's own header.
    let zipped = get(Some("gzip")).await.unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
    let body = zipped.bytes().await.unwrap();
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(unzipped.contains("pulse_source_up{source=\"cache\",kind=\"redis\"} 1"));
    assert!(
        body.len() * 3 < unzipped.len(),
        "{} -> {}",
        unzipped.len(),
        body.len()
    );
    // No check ran between the two scrapes: both were served from one encode, down to its
    // timestamp.
    let stamp = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("pulse_scrape_timestamp_seconds"))
            .map(str::to_owned)
    };
    assert_eq!(stamp(&unzipped), stamp(&plain));
    let refused = get(Some("gzip;q=0, identity")).await.unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn custom_telemetry_path_is_honoured() {
    let e = Exporter::start_with(&redis_config(""), &["--web.telemetry-path", "/pulse"], &[]);
    assert!(e.get("/pulse").await.contains("pulse_build_info"));
    let r = reqwest::get(e.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn client_certificates_are_required_and_checked_against_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let other = TestCa::new(&{
        let d = dir.path().join("other");
        std::fs::create_dir(&d).unwrap();
        d
    });
    let web = write_temp(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n",
            ca.server_cert.display(),
            ca.server_key.display(),
            ca.ca.display()
        ),
    );
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    let client = |identity: Option<(&std::path::Path, &std::path::Path)>| {
        let ca_pem = std::fs::read(&ca.ca).unwrap();
        let mut b = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap());
        if let Some((cert, key)) = identity {
            let mut pem = std::fs::read(cert).unwrap();
            pem.extend(std::fs::read(key).unwrap());
            b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    };
    let url = format!("https://127.0.0.1:{}/metrics", e.port);
    let with_cert = client(Some((&ca.client_cert, &ca.client_key)))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cert.status(), 200);
    assert!(
        client(None).get(&url).send().await.is_err(),
        "a client without a certificate got in"
    );
    assert!(
        client(Some((&other.client_cert, &other.client_key)))
            .get(&url)
            .send()
            .await
            .is_err(),
        "a certificate of another CA got in"
    );
    // A CA without client_auth_type is a config error, named.
    let bad = write_temp(
        dir.path(),
        "bad.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n",
            ca.server_cert.display(),
            ca.server_key.display(),
            ca.ca.display()
        ),
    );
    let config = write_temp(dir.path(), "pulse.yml", &redis_config(""));
    let mut child = std::process::Command::new(bin())
        .args(["--config.file", config.to_str().unwrap()])
        .args(["--web.config.file", bad.to_str().unwrap()])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "started with a client CA and no client_auth_type: {err}"
    );
    assert!(err.contains("client_auth_type"), "{err}");
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
    // The generated dashboard and rules describe the sources: as private as /metrics.
    for path in ["/dashboards.json", "/rules.yml"] {
        let url = format!("https://localhost:{}{path}", e.port);
        let anonymous = client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let admin = client
            .get(&url)
            .basic_auth("admin", Some("right-horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), 200, "{path}");
    }
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
        .wait_for("first run", Duration::from_secs(30), |m| {
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
        "      - metric: app_dbsize_again\n        command: [DBSIZE]\n        interval: 1s\n        timeout: 900ms\n",
    ));
    let resp = e.reload().await;
    assert_eq!(resp.status(), 200);
    e.wait_for("new check", Duration::from_secs(30), |m| {
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
    // The landing page says so, with the reason, and that the old config runs on.
    let landing = e.get("/").await;
    assert!(
        landing.contains("Config reload REJECTED")
            && landing.contains("sources[0].bogus")
            && landing.contains("keeps running"),
        "{landing}"
    );
}

#[tokio::test]
async fn the_landing_page_shows_a_failing_check_of_a_source_that_is_up() {
    let e = Exporter::start(
        "sources:\n  - name: app-db\n    kind: postgres\n    url: postgres://postgres@127.0.0.1:5432/postgres\n    health_interval: 1s\n    health_timeout: 500ms\n    statements: false\n    tables: false\n    load: false\n    checks:\n      - { metric: app_ok, sql: 'SELECT 1 AS value', interval: 1s, timeout: 500ms }\n      - { metric: app_broken, sql: 'SELEC 1 AS value', interval: 1s, timeout: 500ms }\n",
    );
    e.wait_for("the broken check failed", Duration::from_secs(15), |m| {
        m.get("pulse_check_success", &[("check", "app_broken")]) == Some(0.0)
            && m.get("pulse_check_success", &[("check", "app_ok")]) == Some(1.0)
            && m.get("pulse_source_up", &[("source", "app-db")]) == Some(1.0)
    })
    .await;
    let landing = e.get("/").await;
    // The source row: up, one check of two failing, and that check's error where the
    // source's own would be. (The built-in statistics checks are off: they would count too,
    // and pass or wait depending on when the page is read.)
    assert!(landing.contains(">UP<"), "{landing}");
    assert!(
        landing.contains("<td class=\"down\">1/2 (1 FAILING)</td>"),
        "{landing}"
    );
    assert!(
        landing.contains("check app_broken: ") && landing.contains("syntax error"),
        "{landing}"
    );
    // The checks table: the failing one first, in red, with its reason.
    let checks = &landing[landing.find("<h2>Checks</h2>").unwrap()..];
    let broken = checks.find("<td>app_broken</td>").unwrap();
    let ok = checks.find("<td>app_ok</td>").unwrap();
    assert!(broken < ok, "failing checks first: {checks}");
    assert!(
        checks.contains("<td>app_broken</td><td class=\"down\">FAILING (query)</td>"),
        "{checks}"
    );
    assert!(
        checks.contains("<td>app_ok</td><td class=\"up\">OK</td>"),
        "{checks}"
    );
    assert!(landing.contains("Config applied"), "{landing}");
    // At a glance: a summary line at the top says so, and the failing check's row says since
    // when it fails (a duration and a UTC time).
    assert!(
        landing.contains("PROBLEMS: 0 of 1 sources down, 1 of 2 checks failing"),
        "{landing}"
    );
    let row = &checks[broken..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Z)</td>"), "no since-when: {row}");

    // In a real browser: the page with the failing check shows the failure colour at the top
    // (the summary) and in the tables, and the same exporter with only healthy checks shows
    // none. The screenshot is kept beside the test's other output when it fails.
    let dir = tempfile::tempdir().unwrap();
    let bad = screenshot(&e.url("/"), &dir.path().join("failing.png"));
    let pink = [0xff, 0xeb, 0xe9];
    let (top, rest) = (bad.count(pink, 0.0, 0.25), bad.count(pink, 0.25, 1.0));
    let healthy = Exporter::start(
        "sources:\n  - name: app-db\n    kind: postgres\n    url: postgres://postgres@127.0.0.1:5432/postgres\n    health_interval: 1s\n    health_timeout: 500ms\n    checks:\n      - { metric: app_ok, sql: 'SELECT 1 AS value', interval: 1s, timeout: 500ms }\n",
    );
    healthy
        .wait_for("the check ran", Duration::from_secs(15), |m| {
            m.get("pulse_check_success", &[("check", "app_ok")]) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "app-db")]) == Some(1.0)
        })
        .await;
    let good = screenshot(&healthy.url("/"), &dir.path().join("healthy.png"));
    let green = [0xda, 0xfb, 0xe1];
    let failed = top < 2_000 || rest < 2_000 || good.count(pink, 0.0, 1.0) != 0;
    if failed {
        let keep = std::env::temp_dir().join("pulse-landing-screenshots");
        let _ = std::fs::create_dir_all(&keep);
        for f in ["failing.png", "healthy.png"] {
            let _ = std::fs::copy(dir.path().join(f), keep.join(f));
        }
    }
    assert!(
        top >= 2_000,
        "the summary at the top does not show the failure in colour ({top} px)"
    );
    assert!(
        rest >= 2_000,
        "the tables do not show the failing rows in colour ({rest} px)"
    );
    assert_eq!(
        good.count(pink, 0.0, 1.0),
        0,
        "a healthy page shows failure colour"
    );
    assert!(
        good.count(green, 0.0, 0.25) >= 2_000,
        "a healthy page does not say so at the top"
    );
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

/// Sends `request` on a fresh connection and returns what the server answers before it closes
/// the connection (or stops answering for 5 s).
async fn raw_exchange(port: u16, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The server may answer and close before the whole request is written.
    let _ = conn.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// One plain request for `/-/healthy` must get 200.
async fn assert_healthy(port: u16) {
    let ok = raw_exchange(
        port,
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:.80}");
}

#[tokio::test]
async fn oversized_request_heads_are_refused_and_the_server_keeps_serving() {
    let e = InProcess::start(&redis_config(""));
    let long_url = format!(
        "GET /metrics?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = raw_exchange(e.port, long_url.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    let big_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let answer = raw_exchange(e.port, big_header.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    assert_healthy(e.port).await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_connections_past_the_cap_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = pulse_exporter::serve::limits::Limits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(1),
        ..pulse_exporter::serve::limits::Limits::default()
    };
    let e = InProcess::start_limited(&redis_config(""), limits);
    // Three slowloris clients: a request head that never ends.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", e.port))
            .await
            .unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every slot is held: a fourth connection is closed without an answer.
    let refused = raw_exchange(
        e.port,
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(refused, "", "past the cap, a connection gets nothing");
    // The header timeout closes the slow ones, which frees their slots.
    let started = Instant::now();
    for c in &mut slow {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a slow client was not cut off");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_healthy(e.port).await;
}

#[tokio::test]
async fn a_reconnecting_slowloris_from_one_address_leaves_the_scraper_from_another_its_slots() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    let limits = pulse_exporter::serve::limits::Limits {
        max_connections: 24,
        max_connections_per_address: 8,
        header_read_timeout: Duration::from_secs(2),
        ..pulse_exporter::serve::limits::Limits::default()
    };
    let e = InProcess::start_limited(&redis_config(""), limits);
    let port = e.port;
    // 60 clients at 127.0.0.1 send a header byte every 300 ms and reconnect when closed:
    // more than every slot of the server, were they all let in.
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..60 {
        let (stop, refused) = (stop.clone(), refused.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    if c.write_all(b"X").await.is_err() {
                        break;
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                // Closed before a second byte went out: refused at accept.
                if sent <= 1 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The scraper comes from another loopback address.
    let scraper = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut failed = Vec::new();
    for _ in 0..20 {
        match scraper
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => {}
            other => failed.push(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    assert!(
        failed.is_empty(),
        "scrapes from the other address failed: {failed:?}"
    );
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the attacking address was never held to its share"
    );
}

#[tokio::test]
async fn on_a_busy_server_a_slow_request_head_is_cut_sooner() {
    use tokio::io::AsyncReadExt;
    let limits = pulse_exporter::serve::limits::Limits {
        max_connections: 24,
        max_connections_per_address: 8,
        header_read_timeout: Duration::from_secs(20),
        busy_header_read_timeout: Duration::from_secs(1),
        ..pulse_exporter::serve::limits::Limits::default()
    };
    let e = InProcess::start_limited(&redis_config(""), limits);
    let connect_from = |last: u8| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::new(127, 0, 0, last), 0).into())
            .unwrap();
        socket.connect(([127, 0, 0, 1], e.port).into())
    };
    // Before the server is busy a silent connection keeps the full head timeout; 20 of 24
    // slots taken (from three addresses, 8 each at most) make it busy.
    let mut held = Vec::new();
    for i in 0..20u8 {
        held.push(connect_from(10 + i / 8).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let mut late = connect_from(20).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), late.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok() && started.elapsed() < Duration::from_secs(5),
        "a silent connection on a busy server was held {:?}",
        started.elapsed()
    );
    // One accepted before the server was busy is still open: it has the full timeout.
    let mut first = held.remove(0);
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), first.read(&mut byte))
            .await
            .is_err(),
        "a connection from before the server was busy was cut early"
    );
    // A scraper that sends its head at once is served on the busy server.
    let scraper = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 30]))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let r = scraper
        .get(format!("http://127.0.0.1:{}/metrics", e.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_guesser_at_the_scrapers_address_does_not_lock_the_right_password_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("right-horse", 4).unwrap();
    let web = write_temp(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    // The web config has no TLS: plain HTTP.
    let url = format!("http://127.0.0.1:{}/metrics", e.port);
    // The guesser starts first and never stops: a new wrong password each time, from the
    // address the scraper uses too.
    let stop = Arc::new(AtomicBool::new(false));
    let limited = Arc::new(AtomicUsize::new(0));
    let guesser = {
        let (stop, limited, url) = (stop.clone(), limited.clone(), url.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = client
                    .get(&url)
                    .basic_auth("prometheus", Some(format!("guess-{n}")))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 429) {
                    limited.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scraper = reqwest::Client::new();
    let mut statuses = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let status = scraper
            .get(&url)
            .basic_auth("prometheus", Some("right-horse"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        statuses.push(status);
        if statuses.ends_with(&[200, 200, 200]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = guesser.await;
    assert!(
        limited.load(Ordering::Relaxed) > 0,
        "the guesser was never limited"
    );
    assert!(
        statuses.ends_with(&[200, 200, 200]),
        "the right password stayed locked out: {statuses:?}"
    );
}

#[tokio::test]
async fn a_flood_of_reloads_runs_them_one_at_a_time_and_scrapes_still_answer() {
    let e = Exporter::start(&redis_config(""));
    let client = reqwest::Client::new();
    let reloads: Vec<_> = (0..20)
        .map(|_| client.post(e.url("/-/reload")).send())
        .collect();
    let scrape = client.get(e.url("/metrics")).send();
    let (answers, scrape) = tokio::join!(futures_util::future::join_all(reloads), scrape);
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(scrape.unwrap().status(), 200);
}

#[tokio::test]
async fn a_changed_web_config_takes_effect_and_a_broken_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let users = |password: &str| {
        format!(
            "basic_auth_users:\n  admin: '{}'\n",
            bcrypt::hash(password, 4).unwrap()
        )
    };
    let web = write_temp(dir.path(), "web.yml", &users("first-horse"));
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/-/healthy", e.port);
    let status = |password: &'static str| {
        let req = client.get(&url).basic_auth("admin", Some(password));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("first-horse").await, 200);
    // Written beside and renamed in, as Kubernetes swaps a Secret.
    let next = write_temp(dir.path(), "web.yml.new", &users("second-horse"));
    std::fs::rename(&next, &web).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status("second-horse").await != 200 {
        assert!(Instant::now() < deadline, "the new password never worked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status("first-horse").await, 401, "the old password is gone");
    std::fs::write(&web, "basic_auth_users: [unclosed\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !e.logs().contains("the previous one stays in force") {
        assert!(Instant::now() < deadline, "{}", e.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status("second-horse").await,
        200,
        "the broken file changed nothing"
    );
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    // Two certificates for localhost, the second valid longer.
    let issue = |year: i32| {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key_pair).unwrap();
        rcgen::CertifiedKey { cert, key_pair }
    };
    let (first, second) = (issue(2030), issue(2031));
    let cert_path = write_temp(dir.path(), "tls.crt", &first.cert.pem());
    let key_path = write_temp(dir.path(), "tls.key", &first.key_pair.serialize_pem());
    let web = write_temp(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let e = Exporter::start_with(
        &redis_config(""),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    );
    let trusting = |pem: String| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .resolve(
                "localhost",
                format!("127.0.0.1:{}", e.port).parse().unwrap(),
            )
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let url = format!("https://localhost:{}/-/healthy", e.port);
    let (old, new) = (trusting(first.cert.pem()), trusting(second.cert.pem()));
    assert_eq!(old.get(&url).send().await.unwrap().status(), 200);
    assert!(new.get(&url).send().await.is_err(), "not the second yet");
    // The served certificate's expiry, as a scrape shows it.
    let expiry = |client: reqwest::Client| async move {
        let metrics = format!("https://localhost:{}/metrics", e.port);
        let text = client.get(metrics).send().await.ok()?.text().await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("pulse_web_tls_certificate_expiry_timestamp_seconds "))
            .map(|v| v.trim().parse::<f64>().unwrap())
    };
    // 2030-01-01T00:00:00Z.
    assert_eq!(expiry(old.clone()).await, Some(1_893_456_000.0));
    // The key first, then the certificate: between the two the pair does not match, which
    // must keep the first certificate in force, not fail.
    std::fs::write(&key_path, second.key_pair.serialize_pem()).unwrap();
    std::fs::write(&cert_path, second.cert.pem()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while new.get(&url).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(old.get(&url).send().await.is_err(), "the first is retired");
    // 2031-01-01T00:00:00Z: the expiry follows the certificate served.
    assert_eq!(expiry(new.clone()).await, Some(1_924_992_000.0));
}
