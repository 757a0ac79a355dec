//! MongoDB source against a MongoDB wire-protocol server on 127.0.0.1:27017 (nx-27017, started
//! by scripts/test; docs/development.md says what it does not cover).

use pulse_test_support as common;

use std::time::{Duration, SystemTime};

use common::*;
use mongodb::bson::{doc, DateTime, Document};

#[tokio::test]
async fn counts_aggregates_and_relative_windows_against_the_real_wire_protocol() {
    let client = mongo().await;
    let dbname = unique("pulse_users");
    let _cleanup = Cleanup::default().mongo_database(&dbname);
    let users = client.database(&dbname).collection::<Document>("users");
    let now = SystemTime::now();
    let ago = |h: u64| DateTime::from_system_time(now - Duration::from_secs(h * 3600));
    users
        .insert_many(vec![
            doc! { "plan": "free", "isDisabled": false, "lastLoginAt": ago(2), "usage": { "postsCreated": 3 } },
            doc! { "plan": "pro", "isDisabled": false, "lastLoginAt": ago(72), "usage": { "postsCreated": 10 } },
            doc! { "plan": "pro", "isDisabled": true, "lastLoginAt": ago(1), "usage": { "postsCreated": 1 } },
            doc! { "plan": "trial", "isDisabled": false, "lastLoginAt": ago(30), "usage": { "postsCreated": 0 } },
        ])
        .await
        .unwrap();
    let config = format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: users-db
    kind: mongodb
    url: {MONGO_URL}/{dbname}
    checks:
      - metric: app_users_enabled
        count: {{ collection: users, filter: {{ isDisabled: false }} }}
      - metric: app_users_stored
        estimated_count: {{ collection: users }}
      - metric: app_users_active_24h
        help: Users who logged in within the last 24 hours.
        count: {{ collection: users, filter: {{ lastLoginAt: {{ $gte: {{ $now: "-24h" }} }} }} }}
      - metric: app_users_by_plan
        aggregate:
          collection: users
          pipeline:
            - {{ $group: {{ _id: "$plan", users: {{ $sum: 1 }}, posts: {{ $sum: "$usage.postsCreated" }} }} }}
            - {{ $project: {{ _id: 0, plan: "$_id", users: 1, posts: 1 }} }}
        labels: [plan]
        values: [users, posts]
        value_label: field
      - metric: app_bad_value
        aggregate:
          collection: users
          pipeline: [{{ $project: {{ _id: 0, value: "$plan" }} }}]
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("every check", Duration::from_secs(20), |m| {
            m.get("app_users_by_plan", &[("plan", "pro"), ("field", "users")])
                .is_some()
                && m.get("app_users_enabled", &[]).is_some()
                && m.get("app_users_active_24h", &[]).is_some()
                && m.get("app_users_stored", &[]).is_some()
                && m.get(
                    "pulse_check_failures_total",
                    &[("check", "app_bad_value"), ("reason", "decode")],
                )
                .is_some()
                && m.get("pulse_source_up", &[("source", "users-db")])
                    .is_some()
        })
        .await;
    assert_samples(
        &m,
        &[
            ("app_users_enabled", &[], Some(3.0)),
            ("app_users_stored", &[], Some(4.0)),
            // Logged in 1 h and 2 h ago, not 30 h or 72 h ago.
            ("app_users_active_24h", &[], Some(2.0)),
            (
                "app_users_by_plan",
                &[("plan", "pro"), ("field", "users")],
                Some(2.0),
            ),
            (
                "app_users_by_plan",
                &[("plan", "pro"), ("field", "posts")],
                Some(11.0),
            ),
            (
                "app_users_by_plan",
                &[("plan", "trial"), ("field", "users")],
                Some(1.0),
            ),
            ("app_bad_value", &[], None),
            (
                "pulse_source_up",
                &[("source", "users-db"), ("kind", "mongodb")],
                Some(1.0),
            ),
        ],
    );
    assert!(m
        .get(
            "pulse_mongodb_connections",
            &[("source", "users-db"), ("state", "current")]
        )
        .is_some());
    assert!(
        e.logs().contains("holds a string where a number belongs"),
        "{}",
        e.logs()
    );
}

#[tokio::test]
async fn a_stopped_server_is_down_with_connect_while_other_sources_stay_up() {
    let _ = mongo().await;
    let proxy = Proxy::start("127.0.0.1:27017").await;
    let config = format!(
        r#"
global: {{ health_interval: 2s, health_timeout: 1500ms }}
sources:
  - name: mongo
    kind: mongodb
    url: mongodb://127.0.0.1:{}/app?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000
  - name: cache
    kind: redis
    url: {REDIS_URL}
"#,
        proxy.port
    );
    let e = Exporter::start(&config);
    assert_outage(&e, &proxy, "mongo", "cache", Duration::ZERO).await;
}

#[tokio::test]
async fn a_hung_server_times_the_check_out_and_scrapes_stay_fast() {
    let hole = BlackHole::start().await;
    let config = format!(
        r#"
sources:
  - name: hung
    kind: mongodb
    url: mongodb://127.0.0.1:{}/app?serverSelectionTimeoutMS=30000&connectTimeoutMS=30000
    checks:
      - {{ metric: app_hung_count, count: {{ collection: users }}, interval: 3s, timeout: 1s }}
"#,
        hole.port
    );
    let e = Exporter::start(&config);
    let (m, worst) = e
        .wait_for_timed("a timeout recorded", Duration::from_secs(15), |m| {
            m.get(
                "pulse_check_failures_total",
                &[("check", "app_hung_count"), ("reason", "timeout")],
            )
            .is_some()
        })
        .await;
    let took = m
        .get(
            "pulse_check_duration_seconds",
            &[("check", "app_hung_count")],
        )
        .unwrap();
    // Near the 1 s timeout, never the 30 s the client would wait: a busy machine may wake the
    // timer late.
    assert!(
        (0.9..4.0).contains(&took),
        "cancelled at the 1 s timeout, took {took}s"
    );
    assert!(
        worst < Duration::from_secs(3),
        "a scrape took {worst:?} while the server hung"
    );
}

#[tokio::test]
async fn an_aggregate_past_the_series_cap_is_streamed_and_counted() {
    let client = mongo().await;
    let dbname = unique("pulse_many");
    let _cleanup = Cleanup::default().mongo_database(&dbname);
    let db = client.database(&dbname);
    let docs: Vec<Document> = (0..500).map(|i| doc! { "k": i, "n": i }).collect();
    db.collection::<Document>("items")
        .insert_many(docs)
        .await
        .unwrap();
    let config = format!(
        r#"
sources:
  - name: m
    kind: mongodb
    url: {MONGO_URL}/{dbname}
    checks:
      - metric: app_items
        aggregate: {{ collection: items, pipeline: [] }}
        labels: [k]
        values: [n]
        max_series: 20
        interval: 1s
        timeout: 800ms
"#
    );
    let e = InProcess::start(&config);
    let m = e
        // The wire server may not show a fresh insert to another connection at once: wait
        // for a run that saw the documents.
        .wait_for("a run over the documents", Duration::from_secs(20), |m| {
            m.get("pulse_check_series", &[("check", "app_items")]) == Some(20.0)
        })
        .await;
    let kept = m.find("app_items", &[]).len();
    let dropped = m.get(
        "pulse_check_series_dropped_total",
        &[("check", "app_items")],
    );
    assert_eq!(kept, 20);
    // Summed over runs: every run that saw the documents dropped the same 480.
    let dropped = dropped.unwrap();
    assert!(dropped >= 480.0 && dropped % 480.0 == 0.0, "{dropped}");
}

#[tokio::test]
async fn a_private_ca_and_a_client_certificate_in_the_url_reach_a_mongodb_behind_tls() {
    // The driver reads TLS files from the URL: tlsCAFile, and tlsCertificateKeyFile holding the
    // client certificate and its key together.
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let both = dir.path().join("client-and-key.pem");
    let mut pem = std::fs::read_to_string(&ca.client_cert).unwrap();
    pem.push_str(&std::fs::read_to_string(&ca.client_key).unwrap());
    std::fs::write(&both, pem).unwrap();
    let front = TlsFront::start(&ca, MONGO_URL.trim_start_matches("mongodb://")).await;
    let url = |query: &str| {
        format!(
            "mongodb://127.0.0.1:{}/pulse?directConnection=true&tls=true&serverSelectionTimeoutMS=1500{query}",
            front.port
        )
    };
    let config = format!(
        r#"
sources:
  - name: trusted
    kind: mongodb
    url: "{trusted}"
    health_interval: 3s
    health_timeout: 2s
  - name: no-client-cert
    kind: mongodb
    url: "{no_client}"
    health_interval: 3s
    health_timeout: 2s
  - name: public-roots
    kind: mongodb
    url: "{public}"
    health_interval: 3s
    health_timeout: 2s
"#,
        trusted = url(&format!(
            "&tlsCAFile={}&tlsCertificateKeyFile={}",
            ca.ca.display(),
            both.display()
        )),
        no_client = url(&format!("&tlsCAFile={}", ca.ca.display())),
        public = url(""),
    );
    let e = InProcess::start(&config);
    // The certificate's expiry is read for every source, the refused ones too: it is what a
    // reconnect would be shown.
    let want = TlsOutcome {
        trusted: "trusted",
        refused: &["no-client-cert", "public-roots"],
        read: &["trusted", "no-client-cert", "public-roots"],
        endpoint: format!("127.0.0.1:{}", front.port),
    };
    let m = assert_tls_outcome(&e, &ca, want, Duration::from_secs(30)).await;
    assert!(
        !m.text.contains("BEGIN"),
        "no certificate or key material in the scrape"
    );
}

/// The latency check against a wire server that keeps no latency statistics (nx-27017 knows
/// neither `$collStats`, `$currentOp` nor the profiler): the check still succeeds, the health
/// probe is unaffected, each missing part is logged once, and nothing made up is published.
#[tokio::test]
async fn the_latency_and_load_checks_succeed_where_the_server_keeps_no_statistics_and_say_so_once()
{
    let dbname = unique("pulse_latency");
    let _cleanup = Cleanup::default().mongo_database(&dbname);
    let (users, posts) = (unique("lat_users"), unique("lat_posts"));
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: docs
    kind: mongodb
    url: {MONGO_URL}/{dbname}
    collections: [{users}, {posts}]
    latency: {{ interval: 10s, timeout: 2s }}
    load: true
"#
    );
    let e = Exporter::start(&config);
    let first = e
        .wait_for(
            "the latency check's first run",
            Duration::from_secs(20),
            |m| {
                m.get(
                    "pulse_check_last_success_timestamp_seconds",
                    &[("check", "latency")],
                )
                .is_some()
            },
        )
        .await;
    let at = first
        .get(
            "pulse_check_last_success_timestamp_seconds",
            &[("check", "latency")],
        )
        .unwrap();
    let m = e
        .wait_for("its second run", Duration::from_secs(30), |m| {
            m.get(
                "pulse_check_last_success_timestamp_seconds",
                &[("check", "latency")],
            )
            .is_some_and(|t| t > at)
                && m.get("pulse_check_success", &[("check", "latency")]) == Some(1.0)
                && m.get("pulse_check_success", &[("check", "load")]) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "docs")]) == Some(1.0)
        })
        .await;
    assert_eq!(
        m.get("pulse_check_success", &[("check", "latency")]),
        Some(1.0)
    );
    assert_eq!(m.get("pulse_source_up", &[("source", "docs")]), Some(1.0));
    for family in [
        "pulse_mongodb_collection_latency_seconds_count",
        "pulse_mongodb_oldest_operation_start_timestamp_seconds",
        "pulse_mongodb_query_shape_window_seconds",
    ] {
        assert!(m.find(family, &[]).is_empty(), "{family}: {}", m.text);
    }
    let logs = e.logs();
    let gaps = logs
        .lines()
        .filter(|l| l.contains("a latency statistic is unavailable"))
        .count();
    assert!(
        (1..=3).contains(&gaps),
        "each missing part logged once, over two runs: {logs}"
    );
    // The stand-in has no $currentOp: the load check succeeds, not measured, with the
    // reason once in the log, and publishes no load (never a false zero).
    assert_eq!(
        m.get("pulse_check_success", &[("check", "load")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pulse_check_measured", &[("check", "load")]),
        Some(0.0),
        "{}",
        m.text
    );
    assert!(
        m.find("pulse_mongodb_load_active_seconds_total", &[])
            .is_empty(),
        "{}",
        m.text
    );
    assert_eq!(
        logs.matches("the server refuses $currentOp").count(),
        1,
        "logged once over many samples: {logs}"
    );
}
