//! Redis source against the real server on 127.0.0.1:6379.

use pulse_test_support as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use redis::AsyncCommands;

#[tokio::test]
async fn keys_are_measured_by_type_and_absent_keys_are_absent() {
    let mut r = redis().await;
    let p = unique("types");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let _: () = redis::pipe()
        .rpush(format!("{p}:list"), &[1, 2, 3])
        .sadd(format!("{p}:set"), &["a", "b"])
        .zadd(format!("{p}:zset"), "m", 1)
        .hset(format!("{p}:hash"), "f", "v")
        .set(format!("{p}:count"), "17")
        .set(format!("{p}:text"), "not-a-number")
        .cmd("XADD")
        .arg(format!("{p}:stream"))
        .arg("*")
        .arg("k")
        .arg("v")
        .query_async(&mut r)
        .await
        .unwrap();
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    interval: 1s
    timeout: 500ms
    keys:
      - pattern: "{p}:*"
        metric: app_key_size
      - key: "{p}:missing"
        metric: app_missing
      - key: "{p}:text"
        metric: app_text
      - key: "{p}:list"
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for(
            "key sizes and the failing text key",
            Duration::from_secs(10),
            |m| {
                m.get("app_key_size", &[("key", &format!("{p}:stream"))])
                    .is_some()
                    && m.get(
                        "pulse_check_failures_total",
                        &[("check", &format!("{p}:text")), ("reason", "decode")],
                    )
                    .is_some()
                    && m.get("pulse_redis_key_length", &[("key", &format!("{p}:list"))])
                        .is_some()
                    && m.get("pulse_check_success", &[("check", &format!("{p}:missing"))])
                        .is_some()
            },
        )
        .await;
    let size = |k: &str| m.get("app_key_size", &[("key", &format!("{p}:{k}"))]);
    assert_eq!(size("list"), Some(3.0));
    assert_eq!(size("set"), Some(2.0));
    assert_eq!(size("zset"), Some(1.0));
    assert_eq!(size("hash"), Some(1.0));
    assert_eq!(size("stream"), Some(1.0));
    assert_eq!(size("count"), Some(17.0));
    assert_eq!(
        size("text"),
        None,
        "a non-numeric string under a pattern is skipped"
    );
    assert!(
        m.get(
            "pulse_check_values_skipped_total",
            &[("check", &format!("{p}:*"))]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        m.find("app_missing", &[]).is_empty(),
        "an absent key is absent, not 0"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_check_success", &[("check", &format!("{p}:missing"))], Some(1.0)),
        // Without a metric name, the built-in metric with a source label.
        ("pulse_redis_key_length", &[("source", "cache"), ("key", &format!("{p}:list"))], Some(3.0)),
    ];
    assert_samples(&m, samples);
}

#[tokio::test]
async fn pattern_over_ten_thousand_keys_is_capped_at_max_series_and_the_drop_counted() {
    let mut r = redis().await;
    let p = unique("many");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.rpush(format!("{p}:{i}"), i % 7 + 1).ignore();
    }
    let _: () = pipe.query_async(&mut r).await.unwrap();
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    keys:
      - pattern: "{p}:*"
        metric: app_many
        label: queue
        scan_count: 500
        max_series: 1000
        interval: 60s
        timeout: 20s
      - pattern: "{p}:*"
        name: many-count
        count: true
        metric: app_many_keys
        label: pattern
        scan_count: 500
        interval: 60s
        timeout: 20s
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("the scan", Duration::from_secs(60), |m| {
            m.get("pulse_check_success", &[("check", &format!("{p}:*"))])
                .is_some()
                && m.get("pulse_check_success", &[("check", "many-count")])
                    .is_some()
        })
        .await;
    // Counting is not capped: every key is counted, none is named.
    assert_eq!(
        m.get("app_many_keys", &[("pattern", &format!("{p}:*"))]),
        Some(10_000.0),
        "{}",
        e.logs()
    );
    assert_eq!(
        m.get("pulse_check_success", &[("check", &format!("{p}:*"))]),
        Some(1.0),
        "{}",
        e.logs()
    );
    assert_eq!(m.find("app_many", &[]).len(), 1000);
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_check_series_dropped_total", &[("check", &format!("{p}:*"))], Some(9000.0)),
        ("pulse_check_series", &[("check", &format!("{p}:*"))], Some(1000.0)),
    ];
    assert_samples(&m, samples);
}

#[tokio::test]
async fn hashes_under_a_pattern_are_counted_by_a_field_and_by_distinct_values() {
    // WebSocket sessions as HiveSync keeps them: one hash per connection with its user and
    // device. u1 is online on two devices; one session has no device; one key is no hash.
    let mut r = redis().await;
    let p = unique("ws");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let sessions = [
        ("s1", Some("u1"), Some("desktop")),
        ("s2", Some("u1"), Some("phone")),
        ("s3", Some("u2"), Some("desktop")),
        ("s4", Some("u3"), Some("ipad")),
        ("s5", Some("u4"), None),
        ("s6", None, Some("desktop")),
    ];
    let mut pipe = redis::pipe();
    for (id, user, device) in sessions {
        let mut fields = vec![("started", "1")];
        fields.extend(user.map(|u| ("user_id", u)));
        fields.extend(device.map(|d| ("device", d)));
        pipe.hset_multiple(format!("{p}:{id}"), &fields).ignore();
    }
    pipe.set(format!("{p}:stray"), "x").ignore();
    let _: () = pipe.query_async(&mut r).await.unwrap();
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    interval: 1s
    timeout: 800ms
    keys:
      - pattern: "{p}:*"
        name: by-device
        count: true
        group_by: device
        metric: app_ws_sessions
        label: pattern
        scan_count: 2
      - pattern: "{p}:*"
        name: users
        count: true
        distinct: user_id
        metric: app_ws_users
        label: pattern
      - pattern: "{p}:*"
        name: users-by-device
        count: true
        group_by: device
        distinct: user_id
        metric: app_ws_users_by_device
        label: pattern
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for("the three counts", Duration::from_secs(20), |m| {
            ["by-device", "users", "users-by-device"]
                .iter()
                .all(|c| m.get("pulse_check_success", &[("check", c)]) == Some(1.0))
        })
        .await;
    let pat = format!("{p}:*");
    for (device, sessions, users) in [
        ("desktop", 3.0, 2.0),
        ("phone", 1.0, 1.0),
        ("ipad", 1.0, 1.0),
        ("unknown", 1.0, 1.0),
    ] {
        assert_eq!(
            m.get("app_ws_sessions", &[("pattern", &pat), ("device", device)]),
            Some(sessions),
            "{device}"
        );
        assert_eq!(
            m.get(
                "app_ws_users_by_device",
                &[("pattern", &pat), ("device", device)]
            ),
            Some(users),
            "{device}"
        );
    }
    assert_eq!(m.find("app_ws_sessions", &[]).len(), 4);
    // u1..u4: the session without a user_id adds no one.
    assert_eq!(m.get("app_ws_users", &[("pattern", &pat)]), Some(4.0));
    // The string key is no session: skipped and counted, once per check.
    assert!(
        m.get("pulse_check_values_skipped_total", &[("check", "users")])
            .is_some_and(|n| n >= 1.0),
        "{}",
        m.text
    );
}

#[tokio::test]
async fn command_checks_count_a_sliding_window_and_health_reads_info() {
    let mut r = redis().await;
    let key = unique("ai_requests");
    let _cleanup = Cleanup::default().redis_keys(key.clone());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Three requests in the last minute, two older ones.
    for (i, age) in [5u64, 20, 50, 300, 4000].iter().enumerate() {
        let _: () = r.zadd(&key, format!("req{i}"), now - age).await.unwrap();
    }
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    checks:
      - metric: app_ai_requests_last_minute
        command: [ZCOUNT, "{key}", "{{{{now-60s}}}}", "+inf"]
        interval: 1s
        timeout: 500ms
      - metric: app_ai_requests_last_hour
        command: [zcount, "{key}", "{{{{now-1h}}}}", "+inf"]
        interval: 1s
        timeout: 500ms
      - metric: app_absent
        command: [GET, "{key}:nothing"]
        interval: 1s
        timeout: 500ms
"#
    );
    let e = InProcess::start(&config);
    let m = e
        .wait_for("window counts and health", Duration::from_secs(10), |m| {
            m.get("app_ai_requests_last_hour", &[]).is_some()
                && m.get("app_ai_requests_last_minute", &[]).is_some()
                && m.get("pulse_redis_memory_used_bytes", &[("source", "cache")])
                    .is_some()
                && m.get("pulse_check_success", &[("check", "app_absent")]) == Some(1.0)
        })
        .await;
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("app_ai_requests_last_minute", &[], Some(3.0)),
        ("app_ai_requests_last_hour", &[], Some(4.0)),
    ];
    assert_samples(&m, samples);
    assert_eq!(m.get("app_absent", &[]), None, "a nil reply is absent");
    assert_eq!(
        m.get("pulse_source_up", &[("source", "cache"), ("kind", "redis")]),
        Some(1.0)
    );
    for name in [
        "pulse_redis_memory_max_bytes",
        "pulse_redis_connected_clients",
        "pulse_redis_blocked_clients",
        "pulse_redis_evicted_keys_total",
        "pulse_redis_rejected_connections_total",
    ] {
        assert!(
            m.get(name, &[("source", "cache")]).is_some(),
            "{name} missing"
        );
    }
    assert!(m
        .text
        .contains("# TYPE pulse_redis_evicted_keys_total counter"));
}

#[tokio::test]
async fn redis_reconnects_by_itself_after_an_outage() {
    let proxy = Proxy::start("127.0.0.1:6379").await;
    let config = format!(
        r#"
global: {{ health_interval: 2s, health_timeout: 1500ms }}
sources:
  - name: flaky
    kind: redis
    url: redis://127.0.0.1:{}
  - name: direct
    kind: redis
    url: {REDIS_URL}
"#,
        proxy.port
    );
    let e = Exporter::start(&config);
    assert_outage(&e, &proxy, "flaky", "direct", Duration::ZERO).await;
    assert_eq!(
        count_lines(&e.logs(), &["event=source.degraded", "kind=redis"]),
        1
    );
}

#[tokio::test]
async fn the_oldest_job_of_a_queue_is_read_from_a_list_end_or_the_lowest_score() {
    let mut r = redis().await;
    let p = unique("oldest");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let job = |at: u64| format!(r#"{{"id": "j{at}", "enqueued_at": {at}}}"#);
    let _: () = redis::pipe()
        // RPUSH producer, LPOP consumer: the head is the oldest.
        .rpush(format!("{p}:fifo"), &[job(now - 300), job(now - 10)])
        // LPUSH producer, RPOP consumer: the tail is the oldest, in milliseconds.
        .lpush(
            format!("{p}:lifo"),
            &[
                format!(r#"{{"ts": {}}}"#, (now - 120) * 1000),
                format!(r#"{{"ts": {}}}"#, now * 1000),
            ],
        )
        .zadd(format!("{p}:delayed"), "late", now - 30)
        .zadd(format!("{p}:delayed"), "early", now - 600)
        // An item without the field: skipped and counted, never a bogus time.
        .rpush(format!("{p}:odd"), "plain-id-42")
        .query_async(&mut r)
        .await
        .unwrap();
    let config = format!(
        r#"
sources:
  - name: queues
    kind: redis
    url: {REDIS_URL}
    # One run within the test: the skipped counter below sums over runs.
    interval: 1m
    timeout: 500ms
    keys:
      - pattern: "{p}:*"
        metric: app_queue_depth
        label: queue
        oldest: {{ metric: app_queue_oldest_job_timestamp_seconds, field: enqueued_at }}
      - key: "{p}:lifo"
        metric: app_lifo_depth
        oldest: {{ metric: app_lifo_oldest_timestamp_seconds, field: ts, end: tail, unit: milliseconds }}
      - key: "{p}:empty"
        metric: app_empty_depth
        oldest: {{ metric: app_empty_oldest_timestamp_seconds, field: enqueued_at }}
"#
    );
    let e = InProcess::start(&config);
    let oldest = "app_queue_oldest_job_timestamp_seconds";
    let m = e
        .wait_for("the oldest items", Duration::from_secs(10), |m| {
            m.get(oldest, &[("queue", &format!("{p}:delayed"))])
                .is_some()
                && m.get("app_lifo_oldest_timestamp_seconds", &[]).is_some()
                && m.get("pulse_check_success", &[("check", &format!("{p}:empty"))])
                    .is_some()
                && !m.find("pulse_redis_maxmemory_policy", &[]).is_empty()
        })
        .await;
    let at = |k: &str| m.get(oldest, &[("queue", &format!("{p}:{k}"))]);
    assert_eq!(at("fifo"), Some((now - 300) as f64), "the head of the list");
    assert_eq!(at("delayed"), Some((now - 600) as f64), "the lowest score");
    assert_eq!(at("odd"), None, "an item without a time publishes nothing");
    assert_eq!(
        m.get("app_queue_depth", &[("queue", &format!("{p}:odd"))]),
        Some(1.0),
        "its length is still published"
    );
    assert_eq!(
        m.get("app_lifo_oldest_timestamp_seconds", &[]),
        Some((now - 120) as f64),
        "the tail, in milliseconds"
    );
    // The unreadable item and the lifo list (no `enqueued_at`) are counted, not fatal.
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_check_values_skipped_total", &[("check", &format!("{p}:*"))], Some(2.0)),
        ("pulse_check_success", &[("check", &format!("{p}:*"))], Some(1.0)),
        // A missing or empty queue has no oldest job: absent, not 0 (an age of 56 years).
        ("app_empty_oldest_timestamp_seconds", &[], None),
    ];
    assert_samples(&m, samples);
    // The health probe reports the eviction policy the memory alerts read.
    let policy = m.find("pulse_redis_maxmemory_policy", &[("source", "queues")]);
    assert_eq!(policy.len(), 1, "{policy:?}");
    assert_eq!(policy[0].value, 1.0);
}

#[tokio::test]
async fn a_private_ca_and_a_client_certificate_reach_a_redis_behind_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let path = |p: &std::path::Path| p.display().to_string();
    // Redis asks every client for a certificate its CA signed.
    let (_server, port) = ca.redis_server(dir.path());
    let config = format!(
        r#"
sources:
  - name: trusted
    kind: redis
    url: rediss://127.0.0.1:{port}
    health_interval: 1s
    health_timeout: 800ms
    tls: {{ ca_file: {ca}, cert_file: {cert}, key_file: {key} }}
  - name: no-client-cert
    kind: redis
    url: rediss://127.0.0.1:{port}
    health_interval: 1s
    health_timeout: 800ms
    tls: {{ ca_file: {ca} }}
  - name: public-roots
    kind: redis
    url: rediss://127.0.0.1:{port}
    health_interval: 1s
    health_timeout: 800ms
"#,
        ca = path(&ca.ca),
        cert = path(&ca.client_cert),
        key = path(&ca.client_key),
    );
    let e = InProcess::start(&config);
    // A real Redis asking for a client certificate shows its own to a read that sends none.
    let want = TlsOutcome {
        trusted: "trusted",
        refused: &["no-client-cert", "public-roots"],
        read: &["trusted", "no-client-cert", "public-roots"],
        endpoint: format!("127.0.0.1:{port}"),
    };
    let m = assert_tls_outcome(&e, &ca, want, Duration::from_secs(20)).await;
    assert!(m
        .get("pulse_redis_connected_clients", &[("source", "trusted")])
        .is_some());

    // A rediss:// URL with `#insecure`, or `tls:` on a plain URL, is a config error.
    let (code, _, err) = run_cli(
        &["check", "--config.file", write_temp(dir.path(), "bad.yml", &format!(
            "sources:\n  - {{ name: a, kind: redis, url: 'rediss://127.0.0.1:{port}/#insecure' }}\n  - {{ name: b, kind: redis, url: 'redis://127.0.0.1:6379', tls: {{ ca_file: {} }} }}\n",
            path(&ca.ca)
        )).to_str().unwrap()],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("sources[0].url") && err.contains("tls.ca_file"),
        "{err}"
    );
    assert!(
        err.contains("sources[1].tls") && err.contains("rediss://"),
        "{err}"
    );
}

#[tokio::test]
async fn overlapping_patterns_serve_one_series_per_key_and_count_the_collision() {
    let mut r = redis().await;
    let p = unique("overlap");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let _: () = r.rpush(format!("{p}:emails"), &[1, 2]).await.unwrap();
    let _: () = r.rpush(format!("{p}:images"), 1).await.unwrap();
    // Both patterns match the emails queue: only the data shows the collision.
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    keys:
      - {{ pattern: "{p}:*", metric: app_overlap_depth, label: queue, interval: 1s, timeout: 500ms }}
      - {{ pattern: "{p}:e*", metric: app_overlap_depth, label: queue, interval: 1s, timeout: 500ms }}
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("the collision counted", Duration::from_secs(10), |m| {
            m.get(
                "pulse_series_collisions",
                &[("metric", "app_overlap_depth")],
            ) == Some(1.0)
        })
        .await;
    let emails = format!("{p}:emails");
    assert_eq!(
        m.find("app_overlap_depth", &[("queue", emails.as_str())])
            .len(),
        1,
        "one series per key in the exposition"
    );
    assert_eq!(m.find("app_overlap_depth", &[]).len(), 2);
    assert_eq!(
        count_lines(&e.logs(), &["series.collision", "app_overlap_depth"]),
        1,
        "logged once, not at every scrape"
    );
}

/// The common two-shard config: two Redis sources watching the same queue key with the
/// default metric. `check` accepts it (their series differ by `source`), and a scrape serves
/// both, each under its own source, with no collision.
#[tokio::test]
async fn two_shards_watching_the_same_key_with_the_default_metric_load_and_both_publish() {
    let key = unique("shardq");
    let _cleanup = Cleanup::default().redis_keys(key.clone());
    let mut r = redis().await;
    let _: () = r.rpush(&key, vec![1, 2, 3]).await.unwrap();
    let config = format!(
        "global: {{ interval: 1s, timeout: 800ms }}\nsources:\n  - {{ name: shard-a, kind: redis, url: 'redis://127.0.0.1:6379', keys: [{{ key: {key} }}] }}\n  - {{ name: shard-b, kind: redis, url: 'redis://127.0.0.1:6379/0', keys: [{{ key: {key} }}] }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(dir.path(), "shards.yml", &config);
    let (code, _, err) = run_cli(&["check", "--config.file", file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let e = Exporter::start(&config);
    let m = e
        .wait_for("both shards' key lengths", Duration::from_secs(15), |m| {
            m.find("pulse_redis_key_length", &[("key", &key)]).len() == 2
        })
        .await;
    for shard in ["shard-a", "shard-b"] {
        assert_eq!(
            m.get(
                "pulse_redis_key_length",
                &[("key", &key), ("source", shard)]
            ),
            Some(3.0)
        );
    }
    assert!(!e.logs().contains("series.collision"), "{}", e.logs());
}
