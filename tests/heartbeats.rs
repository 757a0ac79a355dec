//! Worker heartbeats in the real Redis, Postgres and MongoDB wire server.

use pulse_test_support as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use redis::AsyncCommands;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn redis_workers_go_down_after_max_age_and_are_forgotten_after_forget_after() {
    let mut r = redis().await;
    let p = unique("hb");
    let _cleanup = Cleanup::default().redis_keys(format!("{p}:*"));
    let gpu1 = format!("{p}:gpu:w1");
    let _: () = r
        .set(format!("{p}:gpu:w2"), format!("{}", now() as u64))
        .await
        .unwrap();
    let _: () = r.set(format!("{p}:gpu:broken"), "garbage").await.unwrap();
    // w2 keeps beating in the background; w1 beat once and stops.
    let beater = {
        let mut r = redis().await;
        let key = format!("{p}:gpu:w2");
        tokio::spawn(async move {
            loop {
                let _: () = r
                    .set(&key, format!("{}", (now() * 1000.0) as u64))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    heartbeats:
      - pattern: "{p}:gpu:*"
        pool: gpu
        max_age: 5s
        forget_after: 20s
        attributes: [state, instance_type, lifecycle]
        interval: 1s
        timeout: 900ms
"#
    );
    let e = Exporter::start(&config);
    let up = |m: &Scrape, w: &str| m.get("pulse_worker_up", &[("pool", "gpu"), ("worker", w)]);
    // w1 beats once the exporter reads the pool: how long a busy machine takes to start it
    // is no part of max_age.
    e.wait_for("w2 up", Duration::from_secs(30), |m| {
        up(m, "w2") == Some(1.0)
    })
    .await;
    let _: () = r
        .set(&gpu1, format!(r#"{{"ts": {}, "state": "active", "instance_type": "g5.xlarge", "lifecycle": "spot"}}"#, now()))
        .await
        .unwrap();
    let m = e
        .wait_for("both workers up", Duration::from_secs(30), |m| {
            up(m, "w1") == Some(1.0) && up(m, "w2") == Some(1.0)
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_worker_info",
            &[
                ("worker", "w1"),
                ("state", "active"),
                ("instance_type", "g5.xlarge"),
                ("lifecycle", "spot")
            ]
        ),
        Some(1.0),
        "JSON attributes become labels"
    );
    assert_eq!(
        m.get(
            "pulse_worker_pool_workers",
            &[("source", "cache"), ("pool", "gpu")]
        ),
        Some(2.0)
    );
    assert!(
        m.get(
            "pulse_check_values_skipped_total",
            &[("check", "heartbeat:gpu")]
        )
        .unwrap()
            >= 1.0,
        "the malformed value is counted"
    );
    assert!(
        e.logs().contains("broken"),
        "and logged with an example: {}",
        e.logs()
    );
    assert!(m
        .find("pulse_worker_up", &[("worker", "broken")])
        .is_empty());

    let m = e
        .wait_for("w1 down", Duration::from_secs(30), |m| {
            up(m, "w1") == Some(0.0)
        })
        .await;
    assert_eq!(up(&m, "w2"), Some(1.0), "a beating worker stays up");
    assert_eq!(
        m.get("pulse_worker_pool_workers_up", &[("pool", "gpu")]),
        Some(1.0)
    );

    // Its key expires: the dead worker is still shown down, not silently gone (read once a
    // run that began after the delete has ended)...
    let runs = |m: &Scrape| m.sum("pulse_check_runs_total", &[("check", "heartbeat:gpu")]);
    let before = runs(&e.metrics().await);
    let _: () = r.del(&gpu1).await.unwrap();
    let m = e
        .wait_for("two runs after the delete", Duration::from_secs(30), |m| {
            runs(m) >= before + 2.0
        })
        .await;
    let last = m
        .get(
            "pulse_worker_last_heartbeat_timestamp_seconds",
            &[("worker", "w1")],
        )
        .expect("still known after its key is gone");
    assert!(now() - last < 20.0);
    assert_eq!(up(&m, "w1"), Some(0.0));
    // ...until forget_after since its last beat.
    e.wait_for("w1 forgotten", Duration::from_secs(60), |m| {
        up(m, "w1").is_none()
    })
    .await;
    beater.abort();
}

#[tokio::test]
async fn redis_hash_and_postgres_heartbeats() {
    let mut r = redis().await;
    let hash = unique("hb_hash");
    let _cleanup_hash = Cleanup::default().redis_keys(format!("{hash}*"));
    let _: () = r.hset(&hash, "cpu-1", format!("{}", now())).await.unwrap();
    let _: () = r
        .hset(&hash, "cpu-2", format!("{}", now() - 600.0))
        .await
        .unwrap();
    // One bad item of each shape beside the healthy ones: a field name that is not UTF-8, a
    // value over 64 KiB; and a beat in RFC 3339 with a negative offset, which is good.
    let _: () = r.hset(&hash, &b"cpu-\xff\xfe"[..], now()).await.unwrap();
    let _: () = r
        .hset(&hash, "cpu-big", "9".repeat(100 * 1024))
        .await
        .unwrap();
    let local = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
        .to_rfc3339();
    let _: () = r.hset(&hash, "cpu-3", &local).await.unwrap();
    // Queue keys under a pattern, one of them named in bytes that are not UTF-8.
    let _: () = r.rpush(format!("{hash}:q:a"), &[1, 2]).await.unwrap();
    let _: () = r
        .rpush([hash.as_bytes(), b":q:\xff"].concat(), 1)
        .await
        .unwrap();
    let pool = pg().await;
    let table = unique("heartbeats");
    let _cleanup = Cleanup::default().pg(format!("DROP TABLE IF EXISTS {table}"));
    sqlx::raw_sql(&format!(
        "CREATE TABLE {table} (worker text, last_seen timestamptz, state text); \
         INSERT INTO {table} VALUES ('gpu-a', now(), 'active'), ('gpu-b', now() - interval '10 minutes', 'idle'), ('gpu-c', NULL, 'offline'), \
         ('gpu-inf', 'infinity', 'active'), ('gpu-minus-inf', '-infinity', 'idle')"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let config = format!(
        r#"
sources:
  - name: cache
    kind: redis
    url: {REDIS_URL}
    heartbeats:
      - {{ hash: "{hash}", pool: cpu, interval: 1s, timeout: 500ms }}
    keys:
      - {{ pattern: "{hash}:q:*", metric: app_hb_queue_depth, interval: 1s, timeout: 500ms }}
  - name: db
    kind: postgres
    url: {PG_URL}
    heartbeats:
      - pool: gpu
        sql: SELECT worker, last_seen, state FROM {table}
        attributes: [state]
        interval: 1s
        timeout: 500ms
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("both pools and the queue", Duration::from_secs(10), |m| {
            m.get("pulse_worker_pool_workers", &[("pool", "cpu")])
                .is_some()
                && m.get("pulse_worker_pool_workers", &[("pool", "gpu")])
                    .is_some()
                // The queue's check starts on its own jitter: waited for too.
                && !m.find("app_hb_queue_depth", &[]).is_empty()
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_worker_up",
            &[("source", "cache"), ("worker", "cpu-1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "pulse_worker_up",
            &[("source", "cache"), ("worker", "cpu-2")]
        ),
        Some(0.0),
        "10 minutes old with the 2m default max_age"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_worker_up", &[("source", "db"), ("worker", "gpu-a")], Some(1.0)),
        ("pulse_worker_up", &[("source", "db"), ("worker", "gpu-b")], Some(0.0)),
        ("pulse_worker_info", &[("worker", "gpu-b"), ("state", "idle")], Some(1.0)),
    ];
    assert_samples(&m, samples);
    for bad in ["gpu-c", "gpu-inf", "gpu-minus-inf", "cpu-big"] {
        assert!(
            m.find("pulse_worker_up", &[("worker", bad)]).is_empty(),
            "a NULL, infinite or oversized last_seen is malformed, not a worker: {bad}"
        );
    }
    assert_eq!(
        m.get(
            "pulse_worker_up",
            &[("source", "cache"), ("worker", "cpu-3")]
        ),
        Some(1.0),
        "RFC 3339 at -05:00: {local}"
    );
    let skipped = |check: &str| m.sum("pulse_check_values_skipped_total", &[("check", check)]);
    assert_eq!(skipped("heartbeat:gpu"), 3.0, "NULL, infinity, -infinity");
    assert_eq!(
        skipped("heartbeat:cpu"),
        2.0,
        "the binary field, the big one"
    );
    for check in ["heartbeat:gpu", "heartbeat:cpu"] {
        assert_eq!(
            m.get("pulse_check_success", &[("check", check)]),
            Some(1.0),
            "{check}: one bad item never fails the rest"
        );
    }
    // The queue under a pattern: the readable key measured, the other skipped and counted.
    let depths = m.find("app_hb_queue_depth", &[]);
    assert_eq!(depths.len(), 1, "{depths:?}");
    assert_eq!(depths[0].value, 2.0);
    let ts = m
        .get(
            "pulse_worker_last_heartbeat_timestamp_seconds",
            &[("worker", "gpu-a")],
        )
        .unwrap();
    assert!(
        (now() - ts).abs() < 30.0,
        "timestamptz read as unix seconds: {ts}"
    );
}

#[tokio::test]
async fn mongodb_heartbeats_with_dates() {
    let client = mongo().await;
    let dbname = unique("pulse_workers");
    let workers = unique("workers");
    let coll = client
        .database(&dbname)
        .collection::<mongodb::bson::Document>(&workers);
    let _cleanup = Cleanup::default().mongo_database(&dbname);
    let at = |age: u64| {
        mongodb::bson::DateTime::from_system_time(SystemTime::now() - Duration::from_secs(age))
    };
    coll.insert_many(vec![
        mongodb::bson::doc! { "workerId": "gpu-spot-1", "lastHeartbeat": at(5), "lifecycle": "spot" },
        mongodb::bson::doc! { "workerId": "gpu-od-1", "lastHeartbeat": at(900), "lifecycle": "on-demand" },
    ])
    .await
    .unwrap();
    let config = format!(
        r#"
sources:
  - name: mongo
    kind: mongodb
    url: {MONGO_URL}/{dbname}
    heartbeats:
      - {{ collection: {workers}, worker_field: workerId, time_field: lastHeartbeat, pool: gpu, attributes: [lifecycle], interval: 1s, timeout: 800ms }}
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("workers", Duration::from_secs(15), |m| {
            m.get("pulse_worker_pool_workers", &[("pool", "gpu")]) == Some(2.0)
        })
        .await;
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_worker_up", &[("worker", "gpu-spot-1")], Some(1.0)),
        ("pulse_worker_up", &[("worker", "gpu-od-1")], Some(0.0)),
        ("pulse_worker_info", &[("worker", "gpu-od-1"), ("lifecycle", "on-demand")], Some(1.0)),
    ];
    assert_samples(&m, samples);
}
