//! One source at a time, as Prometheus scrapes a fleet: `/probe?source=` and `/sd`, and the
//! scrape config `scrape-config` generates, read by a real Prometheus (Debian's) through HTTP
//! service discovery.

use pulse_test_support as common;

use std::time::{Duration, Instant};

use common::*;

fn config(redis_key: &str) -> String {
    format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: db
    kind: postgres
    url: {PG_URL}
    tier: critical
    platform: hivesync
    checks:
      - {{ metric: app_fleet_one, sql: "SELECT 1 AS value" }}
  - name: cache
    kind: redis
    url: {REDIS_URL}
    keys: [{{ key: "{redis_key}", metric: app_fleet_depth }}]
  - name: gone
    kind: redis
    url: redis://127.0.0.1:{closed}
"#,
        closed = closed_port(),
    )
}

#[tokio::test]
async fn probe_serves_one_source_and_refuses_what_it_cannot_answer() {
    let key = unique("fleet");
    let e = Exporter::start(&config(&key));
    let m = e
        .wait_for("every source probed", Duration::from_secs(30), |m| {
            ["db", "cache", "gone"]
                .iter()
                .all(|s| m.get("pulse_source_up", &[("source", s)]).is_some())
                && m.get("pulse_source_up", &[("source", "db")]) == Some(1.0)
                && m.get("app_fleet_one", &[]).is_some()
        })
        .await;
    let db = Scrape::parse(&e.get("/probe?source=db").await);
    // The source's own series, and nothing of the others or of the exporter itself.
    assert_eq!(db.get("pulse_source_up", &[("source", "db")]), Some(1.0));
    assert_eq!(db.get("app_fleet_one", &[]), Some(1.0));
    assert!(db
        .find("pulse_source_up", &[("source", "cache")])
        .is_empty());
    assert!(db.find("pulse_build_info", &[]).is_empty());
    assert!(
        db.series.len() < m.series.len(),
        "{} of {}",
        db.series.len(),
        m.series.len()
    );
    let gone = Scrape::parse(&e.get("/probe?source=gone").await);
    assert_eq!(
        gone.get("pulse_source_up", &[("source", "gone")]),
        Some(0.0)
    );

    let status = |path: &str| {
        let url = e.url(path);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The exporter's own series alone, for a deployment that scrapes the sources through
    // /probe: nothing is scraped twice.
    let own = Scrape::parse(&e.get("/metrics?only=exporter").await);
    assert_eq!(own.get("pulse_config_sources", &[]), Some(3.0));
    assert!(own.find("pulse_build_info", &[]).len() == 1);
    assert!(own.find("pulse_source_up", &[]).is_empty());
    assert!(own.find("app_fleet_one", &[]).is_empty());
    let (code, body) = status("/metrics?only=sources").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = status("/probe").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("?source=NAME"), "{body}");
    let (code, body) = status("/probe?source=nope").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("the 3 this replica runs"), "{body}");
    let (code, body) = status("/probe?target=10.0.0.5:5432").await;
    assert_eq!(code, 400, "{body}");

    let sd: serde_json::Value = serde_json::from_str(&e.get("/sd").await).unwrap();
    let groups = sd.as_array().unwrap();
    assert_eq!(groups.len(), 3, "{sd}");
    let db_group = groups.iter().find(|g| g["targets"][0] == "db").unwrap();
    assert_eq!(db_group["labels"]["__meta_pulse_kind"], "postgres");
    assert_eq!(db_group["labels"]["__meta_pulse_tier"], "critical");
    assert_eq!(
        db_group["labels"]["__meta_pulse_exporter_address"],
        format!("127.0.0.1:{}", e.port)
    );
}

#[tokio::test]
async fn prometheus_scrapes_each_source_through_the_generated_scrape_config() {
    let key = unique("fleet");
    let e = Exporter::start(&config(&key));
    let dir = tempfile::tempdir().unwrap();
    let exporter = format!("127.0.0.1:{}", e.port);
    let (code, out, err) = run_cli(
        &[
            "scrape-config",
            "--config.file",
            e.config_path.to_str().unwrap(),
            "--exporter",
            &exporter,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let generated = write_temp(dir.path(), "generated.yml", &out);
    let checked = std::process::Command::new("promtool")
        .args(["check", "config", generated.to_str().unwrap()])
        .output()
        .expect("promtool (scripts/test installs it)");
    assert!(
        checked.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The same job, time compressed for the test: scrapes and discovery every second.
    let scraper = Scraper::with_config(&every_second(&out), &[]).await;
    let prom = scraper.url.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query(&prom, "up{job=\"pulse-sources\"}").await;
        let down = query(&prom, "pulse_source_up{job=\"pulse-sources\"} == 0").await;
        if up.len() == 3 && !down.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the three sources: up {up:?}\n{}",
            scraper.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Each source is a target of its own, named by its instance; a source that is down is a
    // scrape that succeeds and says so.
    for instance in ["db", "cache", "gone"] {
        let up = values(&prom, &format!("up{{instance=\"{instance}\"}}")).await;
        assert_eq!(up, [1.0], "{instance}");
    }
    let gone = values(&prom, "pulse_source_up{instance=\"gone\"}").await;
    assert_eq!(gone, [0.0]);
    let db = query(&prom, "pulse_source_up{instance=\"db\"}").await;
    assert_eq!(db.len(), 1, "{db:?}");
    // `tier` and `platform` label every series of the source that sets them, no other.
    assert_eq!(db[0]["metric"]["tier"], "critical", "{db:?}");
    assert_eq!(db[0]["metric"]["platform"], "hivesync", "{db:?}");
    assert!(values(&prom, "app_fleet_one{instance=\"db\"}").await == [1.0]);
    let cache = query(&prom, "pulse_source_up{instance=\"cache\"}").await;
    assert!(cache[0]["metric"].get("tier").is_none(), "{cache:?}");
    // No series of one source in another's scrape.
    assert!(
        query(&prom, "pulse_source_up{instance=\"db\", source!=\"db\"}")
            .await
            .is_empty()
    );
}
