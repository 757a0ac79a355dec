//! S3 source against two local S3 servers: moto_server (127.0.0.1:9000) and s3s-fs
//! (127.0.0.1:9001), which checks request signatures.

use pulse_test_support as common;

use std::time::Duration;

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
    client: &S3Admin,
    bucket: &str,
    keys: impl Iterator<Item = String>,
    size: usize,
) {
    let mut puts = tokio::task::JoinSet::new();
    for key in keys {
        let (client, bucket) = (client.clone(), bucket.to_owned());
        puts.spawn(async move {
            client.put(&bucket, &key, vec![7u8; size]).await;
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
    client.create_bucket(&bucket).await;
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
    let left = client.keys(&bucket, "pulse-canary/").await;
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
    client.create_bucket(&bucket).await;
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
    client.create_bucket(&bucket).await;
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

/// An https endpoint behind a private CA that asks for a client certificate: reached with
/// `ca_file`, `cert_file` and `key_file`; refused without the certificate or the CA.
#[tokio::test]
async fn an_https_endpoint_with_a_private_ca_and_mutual_tls_is_reached_with_the_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let front = TlsFront::start(&ca, MOTO_URL.trim_start_matches("http://")).await;
    let bucket = format!("pulse-tls-{}", std::process::id());
    moto_bucket(&bucket).await;
    let endpoint = format!("https://127.0.0.1:{}", front.port);
    let tls = format!(
        "    tls: {{ ca_file: {}, cert_file: {}, key_file: {} }}\n",
        ca.ca.display(),
        ca.client_cert.display(),
        ca.client_key.display()
    );
    let ca_only = format!("    tls: {{ ca_file: {} }}\n", ca.ca.display());
    let e = InProcess::start(&config(&[
        source("trusted", &endpoint, &bucket, "test", "test", &tls),
        source(
            "no-client-cert",
            &endpoint,
            &bucket,
            "test",
            "test",
            &ca_only,
        ),
        source("public-roots", &endpoint, &bucket, "test", "test", ""),
    ]));
    let want = TlsOutcome {
        trusted: "trusted",
        refused: &["no-client-cert", "public-roots"],
        read: &["trusted", "no-client-cert", "public-roots"],
        endpoint: format!("127.0.0.1:{}", front.port),
    };
    assert_tls_outcome(&e, &ca, want, Duration::from_secs(30)).await;
    s3_client(&MOTO_URL, "test", "test")
        .await
        .delete_bucket(&bucket)
        .await;
}

/// A source without keys signs with what the AWS default chain finds: the environment's keys,
/// a shared credentials file's profile, or a profile's `credential_process`. s3s checks every
/// signature, so `pulse_source_up 1` means the chain's keys were the ones used.
#[tokio::test]
async fn without_keys_the_aws_chain_signs_from_the_environment_a_profile_or_a_credential_process() {
    let client = s3_client(&S3S_URL, S3S_KEY, S3S_SECRET).await;
    let bucket = unique("chain").replace('_', "-");
    client.create_bucket(&bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(
        path("credentials"),
        format!("[pulse]\naws_access_key_id = {S3S_KEY}\naws_secret_access_key = {S3S_SECRET}\n"),
    )
    .unwrap();
    let script = path("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"{S3S_KEY}\", \"SecretAccessKey\": \"{S3S_SECRET}\"}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        path("config"),
        format!("[profile process]\ncredential_process = {script}\n"),
    )
    .unwrap();
    let config = format!(
        "global: {{ health_interval: 2s, health_timeout: 1500ms }}\nsources:\n  - {{ name: chain, kind: s3, bucket: {bucket}, endpoint: \"{}\" }}\n",
        S3S_URL
    );
    let (home, credentials, aws_config) = (path(""), path("credentials"), path("config"));
    // Nothing of the machine's own: its home, its files, its instance metadata.
    let base = [
        ("HOME", home.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("AWS_CONFIG_FILE", aws_config.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        base.iter().chain(extra).copied().collect()
    };
    let environment = with(&[
        ("AWS_PROFILE", "nobody"),
        ("AWS_ACCESS_KEY_ID", S3S_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3S_SECRET),
    ]);
    let cases = [
        ("environment", environment),
        ("profile", with(&[("AWS_PROFILE", "pulse")])),
        ("credential_process", with(&[("AWS_PROFILE", "process")])),
        ("nothing", with(&[("AWS_PROFILE", "nobody")])),
    ];
    for (case, env) in cases {
        let e = Exporter::start_with(&config, &[], &env);
        let m = e
            .wait_for(case, Duration::from_secs(60), |m| {
                m.get("pulse_source_up", &[("source", "chain")]).is_some()
            })
            .await;
        let up = m.get("pulse_source_up", &[("source", "chain")]);
        if case == "nothing" {
            assert_eq!(up, Some(0.0), "{}", e.logs());
            assert!(m.probe_failed_with("chain", "auth"));
            assert!(
                e.logs()
                    .contains("set `access_key_id` and `secret_access_key`"),
                "{}",
                e.logs()
            );
        } else {
            assert_eq!(up, Some(1.0), "{case}: {}", e.logs());
        }
    }
}
