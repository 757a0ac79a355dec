//! The log-file source on real files: appends, rotation, truncation, bad lines, histograms.

use pulse_test_support as common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn append(path: &std::path::Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn config(path: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: ai-logs
    kind: logfile
    path: {}
    interval: 1s
    timeout: 800ms
    counters:
      - metric: app_ai_events_total
        help: AI events by status.
        labels: {{ status: status }}
        match: {{ event: ai_request }}
    histograms:
      - metric: app_ai_latency_seconds
        field: latency_ms
        scale: 0.001
        buckets: [0.1, 0.5, 1]
{extra}"#,
        path.display()
    )
}

const OK: &str = r#"{"event": "ai_request", "status": "ok", "latency_ms": 120}"#;
const ERR: &str = r#"{"event": "ai_request", "status": "provider_error", "latency_ms": 900}"#;

#[tokio::test]
async fn counts_across_rotation_and_truncation_with_bad_lines_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ai-events.log");
    append(&log, &[OK, OK]); // before start: not counted (start at the end)
    let e = Exporter::start(&config(&log, ""));
    let events = |m: &Scrape, s: &str| m.get("app_ai_events_total", &[("status", s)]);
    e.wait_for("tailing", Duration::from_secs(10), |m| {
        m.get("pulse_check_success", &[("check", "tail")]) == Some(1.0)
    })
    .await;

    append(&log, &[OK, ERR, "not json at all", r#"{"event": "login"}"#]);
    let m = e
        .wait_for("first lines", Duration::from_secs(10), |m| {
            events(m, "provider_error") == Some(1.0)
        })
        .await;
    assert_eq!(
        events(&m, "ok"),
        Some(1.0),
        "lines written before start are skipped"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_logfile_lines_total", &[("result", "invalid")], Some(1.0)),
        ("pulse_logfile_lines_total", &[("result", "parsed")], Some(3.0)),
        ("app_ai_latency_seconds_bucket", &[("le", "0.1")], Some(0.0)),
        ("app_ai_latency_seconds_bucket", &[("le", "0.5")], Some(1.0)),
        ("app_ai_latency_seconds_bucket", &[("le", "1.0")], Some(2.0)),
        ("app_ai_latency_seconds_bucket", &[("le", "+Inf")], Some(2.0)),
        ("app_ai_latency_seconds_count", &[], Some(2.0)),
    ];
    assert_samples(&m, samples);
    assert!((m.get("app_ai_latency_seconds_sum", &[]).unwrap() - 1.02).abs() < 1e-9);
    assert!(m.text.contains("# TYPE app_ai_latency_seconds histogram"));

    // Rename and create: a late line in the old file, then two in the new one.
    let rotated = dir.path().join("ai-events.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, &[OK]);
    append(&log, &[OK, OK]);
    let m = e
        .wait_for("after rotation", Duration::from_secs(10), |m| {
            events(m, "ok") == Some(4.0)
        })
        .await;
    assert_eq!(m.get("pulse_logfile_rotations_total", &[]), Some(1.0));

    // Truncation: the file is emptied and written again.
    std::fs::write(&log, format!("{OK}\n")).unwrap();
    let m = e
        .wait_for("after truncation", Duration::from_secs(10), |m| {
            events(m, "ok") == Some(5.0)
        })
        .await;
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_logfile_truncations_total", &[], Some(1.0)),
        ("pulse_source_up", &[("source", "ai-logs")], Some(1.0)),
    ];
    assert_samples(&m, samples);

    // A reload that changes the counters resumes at the saved position: nothing is re-read.
    e.write_config(&config(
        &log,
        "      - { metric: app_ai_latency2_seconds, field: latency_ms, buckets: [100, 1000] }\n",
    ));
    let resp = e.reload().await;
    assert_eq!(resp.status(), 200);
    append(&log, &[ERR]);
    let m = e
        .wait_for("after reload", Duration::from_secs(10), |m| {
            m.get("app_ai_latency2_seconds_count", &[]).is_some()
        })
        .await;
    assert_eq!(
        m.get("app_ai_latency2_seconds_count", &[]),
        Some(1.0),
        "only the line written after the reload"
    );
}

#[tokio::test]
async fn start_at_beginning_two_sources_on_one_file_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("preview.log");
    append(&log, &[OK, ERR, "{broken"]);
    let missing = dir.path().join("missing.log");
    let text = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: ai-logs
    kind: logfile
    path: {}
    start_at: beginning
    interval: 1s
    timeout: 800ms
    counters: [{{ metric: app_ai_events_total, labels: {{ status: status }} }}]
  - name: ai-logs-again
    kind: logfile
    path: {}
    start_at: beginning
    interval: 1s
    timeout: 800ms
    counters: [{{ metric: app_ai_events_again_total, labels: {{ status: status }} }}]
  - name: gone
    kind: logfile
    path: {}
    counters: [{{ metric: app_gone_total }}]
"#,
        log.display(),
        log.display(),
        missing.display()
    );
    let e = Exporter::start(&text);
    let m = e
        .wait_for("existing lines", Duration::from_secs(10), |m| {
            m.get("app_ai_events_total", &[("status", "ok")]).is_some()
                && m.get("app_ai_events_again_total", &[("status", "ok")])
                    .is_some()
                && m.get("pulse_source_up", &[("source", "gone")]).is_some()
        })
        .await;
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("app_ai_events_total", &[("status", "provider_error")], Some(1.0)),
        // A second source on the same file keeps its own position: it reads every line too.
        ("app_ai_events_again_total", &[("status", "provider_error")], Some(1.0)),
        ("pulse_logfile_lines_total", &[("source", "ai-logs"), ("result", "invalid")], Some(1.0)),
        ("pulse_source_up", &[("source", "gone")], Some(0.0)),
    ];
    assert_samples(&m, samples);
    assert!(m.probe_failed_with("gone", "not_found"));
}

#[tokio::test]
async fn a_fifo_or_a_device_is_refused_at_load_and_never_freezes_the_exporter_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("events.fifo");
    run_ok(std::process::Command::new("mkfifo").arg(&fifo), "mkfifo");
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (std::path::Path::new("/dev/urandom"), "a character device"),
    ] {
        let file = write_temp(dir.path(), "check.yml", &config(path, ""));
        let (code, _, err) = run_cli(&["check", "--config.file", file.to_str().unwrap()], &[]);
        assert_ne!(code, 0, "{path:?} accepted");
        assert!(
            err.contains("path") && err.contains(what) && err.contains("regular file"),
            "{err}"
        );
    }

    // A path that does not exist at load becomes a FIFO (nobody writing) at run time: the
    // log source fails alone, every endpoint keeps answering, a Redis source beside it keeps
    // being probed, and SIGTERM stops the process.
    let later = dir.path().join("later.log");
    let redis = format!(
        "  - name: cache\n    kind: redis\n    url: {REDIS_URL}\n    health_interval: 1s\n"
    );
    let mut e = Exporter::start(&config(&later, &redis));
    run_ok(std::process::Command::new("mkfifo").arg(&later), "mkfifo");
    let failing = e
        .wait_for("the FIFO refused", Duration::from_secs(10), |m| {
            m.probe_failed_with("ai-logs", "query")
                // Redis's health probe runs on its own schedule: wait for its first result.
                && m.get("pulse_source_up", &[("source", "cache")]).is_some()
        })
        .await;
    assert_eq!(
        failing.get("pulse_source_up", &[("source", "cache")]),
        Some(1.0)
    );
    let probes = |m: &Scrape| {
        m.get("pulse_source_probes_total", &[("source", "cache")])
            .unwrap_or(0.0)
    };
    let before = probes(&failing);
    let later_scrape = e
        .wait_for("Redis probed on", Duration::from_secs(10), |m| {
            probes(m) >= before + 2.0
        })
        .await;
    assert!(later_scrape.text.contains("pulse_source_up"));
    assert!(e.logs().contains("regular files only"), "{}", e.logs());
    e.signal("-TERM");
    assert!(
        e.wait_exit(Duration::from_secs(10)).is_some(),
        "SIGTERM did not stop the exporter: {}",
        e.logs()
    );
}

#[tokio::test]
async fn a_copytruncate_with_a_longer_rewrite_and_a_file_without_newlines_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ai-events.log");
    std::fs::write(&log, "").unwrap();
    let sparse = dir.path().join("sparse.log");
    std::fs::write(&sparse, "").unwrap();
    let e = Exporter::start(&format!(
        "{}  - name: sparse\n    kind: logfile\n    path: {}\n    interval: 1s\n    timeout: 800ms\n\
         \x20   counters: [{{ metric: app_sparse_events_total }}]\n",
        config(&log, ""),
        sparse.display()
    ));
    let parsed = |m: &Scrape| {
        m.get(
            "pulse_logfile_lines_total",
            &[("source", "ai-logs"), ("result", "parsed")],
        )
    };
    // The file is read from its end when first seen: it must be seen before lines arrive.
    e.wait_for("tailing", Duration::from_secs(10), |m| {
        m.get(
            "pulse_check_success",
            &[("source", "ai-logs"), ("check", "tail")],
        ) == Some(1.0)
            && m.get(
                "pulse_check_success",
                &[("source", "sparse"), ("check", "tail")],
            ) == Some(1.0)
    })
    .await;
    append(&log, &[OK; 10]);
    e.wait_for("the first ten lines", Duration::from_secs(10), |m| {
        parsed(m) == Some(10.0)
    })
    .await;
    // copytruncate: the file is cut to nothing in place (same inode), then more lines than
    // it held are written before the next run. The offset is still inside the file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &[ERR; 15]);
    let m = e
        .wait_for("the rewrite counted whole", Duration::from_secs(10), |m| {
            parsed(m) == Some(25.0)
        })
        .await;
    assert_eq!(
        m.get("pulse_logfile_truncations_total", &[("source", "ai-logs")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("app_ai_events_total", &[("status", "provider_error")]),
        Some(15.0),
        "no line of the rewrite lost"
    );
    // A sparse file of 256 MiB without one newline, then a line: memory stays bounded (each
    // run reads at most 64 MiB, and keeps at most 1 MiB of a line), and the next line counts.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .unwrap()
        .set_len(256 * 1024 * 1024)
        .unwrap();
    // The newline that ends the long line of zeros, then a real line.
    append(&sparse, &["", OK]);
    let sparse_lines = |m: &Scrape, result: &str| {
        m.get(
            "pulse_logfile_lines_total",
            &[("source", "sparse"), ("result", result)],
        )
    };
    let m = e
        .wait_for("the line after the zeros", Duration::from_secs(60), |m| {
            sparse_lines(m, "parsed") == Some(1.0)
        })
        .await;
    assert_eq!(
        sparse_lines(&m, "invalid"),
        Some(1.0),
        "the zeros are one line too long"
    );
    assert_eq!(
        m.get("pulse_check_success", &[("source", "sparse")]),
        Some(1.0)
    );
    let rss = rss_mib(e.child.id());
    assert!(rss < 300.0, "{rss:.0} MiB resident");
}
