//! S3 source against two local S3 servers: moto_server (127.0.0.1:9000) and s3s-fs
//! (127.0.0.1:9001), which checks request signatures.

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::*;

fn source(
    name: &str,
    endpoint: &str,
    bucket: &str,
    key: &str,
    secret: &str,
    extra: &str,
) -> String {
    format!(
        r#"  - name: {name}
    kind: s3
    bucket: {bucket}
    region: us-east-1
    endpoint: {endpoint}
    access_key_id: {key}
    secret_access_key: {secret}
    interval: 30s
    timeout: 20s
{extra}"#
    )
}

fn config(sources: &[String]) -> String {
    format!(
        "global: {{ health_interval: 5s, health_timeout: 4s }}\nsources:\n{}",
        sources.concat()
    )
}

/// Uploads `size`-byte objects under `keys`, 32 at a time.
async fn put_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    keys: impl Iterator<Item = String>,
    size: usize,
) {
    let mut puts = tokio::task::JoinSet::new();
    for key in keys {
        let (client, bucket) = (client.clone(), bucket.to_owned());
        puts.spawn(async move {
            client
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from(vec![7u8; size]))
                .send()
                .await
                .unwrap();
        });
        if puts.len() >= 32 {
            puts.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = puts.join_next().await {
        r.unwrap();
    }
}

#[tokio::test]
async fn canary_round_trip_prefix_stats_and_a_missing_bucket_on_moto() {
    let client = s3_client(&MOTO_URL, "test", "test").await;
    let bucket = unique("media").replace('_', "-");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    put_objects(
        &client,
        &bucket,
        (0..3).map(|i| format!("uploads/{i:05}.jpg")),
        10,
    )
    .await;
    // What a run cancelled between PUT and DELETE leaves (swept), and objects that are not
    // this source's canaries (kept).
    let leftovers = ["media-1000", "media-notes.txt", "other-1000"];
    put_objects(
        &client,
        &bucket,
        leftovers.iter().map(|k| format!("pulse-canary/{k}")),
        10,
    )
    .await;
    let e = Exporter::start(&config(&[
        source(
            "media",
            &MOTO_URL,
            &bucket,
            "test",
            "test",
            "    canary: { prefix: \"pulse-canary/\" }\n    prefixes: [{ prefix: \"uploads/\" }]\n",
        ),
        source(
            "gone",
            &MOTO_URL,
            "no-such-bucket-pulse",
            "test",
            "test",
            "",
        ),
    ]));
    let checks = ["canary", "prefix:uploads/"];
    let m = e
        .wait_for("canary and prefix stats", Duration::from_secs(90), |m| {
            checks.iter().all(|c| {
                m.get("pulse_check_success", &[("source", "media"), ("check", c)]) == Some(1.0)
            }) && m.get("pulse_source_up", &[("source", "media")]) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "gone")]).is_some()
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_check_success",
            &[("source", "media"), ("check", "canary")]
        ),
        Some(1.0),
        "{}",
        e.logs()
    );
    for step in ["put", "get", "delete"] {
        assert_eq!(
            m.get(
                "pulse_s3_canary_success",
                &[("bucket", &bucket), ("step", step)]
            ),
            Some(1.0)
        );
        assert!(m
            .get("pulse_s3_canary_duration_seconds", &[("step", step)])
            .is_some());
    }
    let left = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("pulse-canary/")
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        left,
        ["pulse-canary/media-notes.txt", "pulse-canary/other-1000"],
        "the canary deletes what it wrote and its own leftovers, nothing else"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_source_up", &[("source", "media")], Some(1.0)),
        ("pulse_source_up", &[("source", "gone")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    assert!(m.probe_failed_with("gone", "not_found"));
    assert_eq!(
        m.get(
            "pulse_s3_prefix_objects",
            &[("source", "media"), ("prefix", "uploads/")]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn prefix_stats_page_and_truncate() {
    let client = s3_client(&MOTO_URL, "test", "test").await;
    let bucket = unique("pages").replace('_', "-");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    put_objects(
        &client,
        &bucket,
        (0..1100).map(|i| format!("posts/{i:05}")),
        3,
    )
    .await;
    let e = InProcess::start(&config(&[
        source(
            "all",
            &MOTO_URL,
            &bucket,
            "test",
            "test",
            "    prefixes: [{ prefix: \"posts/\" }]\n",
        ),
        source(
            "capped",
            &MOTO_URL,
            &bucket,
            "test",
            "test",
            "    prefixes: [{ prefix: \"posts/\", max_pages: 1 }]\n",
        ),
    ]));
    let m = e
        .wait_for("prefix stats", Duration::from_secs(90), |m| {
            m.get("pulse_s3_prefix_objects", &[("source", "all")])
                .is_some()
                && m.get("pulse_s3_prefix_objects", &[("source", "capped")])
                    .is_some()
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_s3_prefix_objects",
            &[("source", "all"), ("prefix", "posts/")]
        ),
        Some(1100.0),
        "paged past 1,000 keys"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_s3_prefix_bytes", &[("source", "all")], Some(3300.0)),
        ("pulse_s3_prefix_truncated", &[("source", "all")], Some(0.0)),
        ("pulse_s3_prefix_objects", &[("source", "capped")], Some(1000.0)),
        ("pulse_s3_prefix_truncated", &[("source", "capped")], Some(1.0)),
    ];
    assert_samples(&m, samples);
    let newest = m
        .get(
            "pulse_s3_prefix_newest_object_timestamp_seconds",
            &[("source", "all")],
        )
        .unwrap();
    let now = m.get("pulse_scrape_timestamp_seconds", &[]).unwrap();
    assert!(now - newest < 600.0, "newest object is recent: {newest}");
}

#[tokio::test]
async fn s3s_checks_signatures_wrong_secret_is_auth_and_the_canary_reports_zero() {
    let client = s3_client(&S3S_URL, S3S_KEY, S3S_SECRET).await;
    let bucket = unique("signed").replace('_', "-");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let e = Exporter::start(&config(&[
        source(
            "good",
            &S3S_URL,
            &bucket,
            S3S_KEY,
            S3S_SECRET,
            "    canary: {}\n",
        ),
        source(
            "badkey",
            &S3S_URL,
            &bucket,
            S3S_KEY,
            "not-the-secret-42",
            "    canary: {}\n",
        ),
        source(
            "nobucket",
            &S3S_URL,
            "missing-bucket-pulse",
            S3S_KEY,
            S3S_SECRET,
            "",
        ),
    ]));
    let m = e
        .wait_for("all three sources", Duration::from_secs(90), |m| {
            m.get(
                "pulse_check_success",
                &[("source", "good"), ("check", "canary")],
            ) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "good")]) == Some(1.0)
                && m.get(
                    "pulse_check_success",
                    &[("source", "badkey"), ("check", "canary")],
                )
                .is_some()
                && ["good", "badkey", "nobucket"]
                    .iter()
                    .all(|s| m.get("pulse_source_up", &[("source", s)]).is_some())
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_check_success",
            &[("source", "good"), ("check", "canary")]
        ),
        Some(1.0),
        "{}",
        e.logs()
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_source_up", &[("source", "good")], Some(1.0)),
        ("pulse_source_up", &[("source", "badkey")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    assert!(m.probe_failed_with("badkey", "auth"));
    // A failing canary publishes its failed step as 0 rather than keeping an old success.
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_check_success", &[("source", "badkey"), ("check", "canary")], Some(0.0)),
        ("pulse_s3_canary_success", &[("source", "badkey"), ("step", "put")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    assert!(m
        .get(
            "pulse_check_failures_total",
            &[
                ("source", "badkey"),
                ("check", "canary"),
                ("reason", "auth")
            ]
        )
        .is_some());
    assert!(m.probe_failed_with("nobucket", "not_found"));
    assert!(!e.logs().contains("not-the-secret-42") && !m.text.contains("not-the-secret-42"));
}

#[tokio::test]
async fn an_https_endpoint_signed_by_a_private_ca_is_trusted_with_tls_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let front = TlsFront::start_server_only(&ca, MOTO_URL.trim_start_matches("http://")).await;
    let bucket = format!("pulse-tls-{}", std::process::id());
    moto_bucket(&bucket).await;
    let endpoint = format!("https://127.0.0.1:{}", front.port);
    let tls = format!("    tls: {{ ca_file: {} }}\n", ca.ca.display());
    let e = InProcess::start(&config(&[
        source("trusted", &endpoint, &bucket, "test", "test", &tls),
        source("public-roots", &endpoint, &bucket, "test", "test", ""),
    ]));
    let want = TlsOutcome {
        trusted: "trusted",
        refused: &["public-roots"],
        read: &["trusted", "public-roots"],
        endpoint: format!("127.0.0.1:{}", front.port),
    };
    assert_tls_outcome(&e, &ca, want, Duration::from_secs(30)).await;
    s3_client(&MOTO_URL, "test", "test")
        .await
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
}
