//! Hostile configs, kept as regression cases in `tests/hostile/` (and as the seed corpus of the
//! config fuzz target in `fuzz/`): huge, negative and zero numbers, deep nesting, an alias
//! bomb, invalid UTF-8, NUL bytes, a secret read from a device, runaway regexes. Plus what is
//! too big to keep in the repository, made here: a 10 MB string and 100,000 sources. Each must
//! make `check` exit 1 with a message that names the file, quickly, never panic or hang.
//! And at reload: an empty file and a path to `/dev/zero` are refused while the running
//! config goes on.

use pulse_test_support as common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `check` on `path`, killing it after 30 s; returns (exit code, stderr, time taken).
fn check(path: &Path) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(["check", "--config.file"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained beside the wait: a long message must not block the child on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        err
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let err = reader.join().unwrap();
            return (status.code().unwrap_or(-1), err, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("check hung on {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_refused(path: &Path) {
    let (code, err, took) = check(path);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(!err.contains("panicked"), "{name} panicked: {err}");
    assert_eq!(code, 1, "{name}: exit {code}, not 1: {err}");
    assert!(
        err.contains(&*path.to_string_lossy()) && err.contains("error"),
        "{name}: the message must name the file and the error: {err}"
    );
    assert!(
        err.len() < 16 * 1024,
        "{name}: a message an SRE can read, not {} bytes",
        err.len()
    );
    println!("{name}: exit 1 in {took:?}");
}

#[test]
fn every_kept_hostile_config_is_refused_with_a_message() {
    assert_refused(Path::new("/dev/zero"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus is in tests/hostile");
    for f in files {
        assert_refused(&f);
    }
}

#[test]
fn a_ten_megabyte_string_and_a_hundred_thousand_sources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long-string.yml");
    std::fs::write(
        &long,
        format!(
            "sources:\n  - name: {}\n    kind: redis\n    url: redis://127.0.0.1\n",
            "n".repeat(10 * 1024 * 1024)
        ),
    )
    .unwrap();
    assert_refused(&long);
    // 100,000 sources, every one with the same name: one error each would be a 5 MB message.
    let many = dir.path().join("many-sources.yml");
    let mut text = String::from("sources:\n");
    for _ in 0..100_000 {
        text.push_str("  - { name: same, kind: redis, url: 'redis://127.0.0.1' }\n");
    }
    std::fs::write(&many, text).unwrap();
    assert_refused(&many);
}

#[tokio::test]
async fn an_empty_file_and_a_device_are_refused_at_reload_and_the_sources_go_on() {
    let mut e = Exporter::start(&format!(
        "sources:\n  - {{ name: cache, kind: redis, url: '{REDIS_URL}' }}\n"
    ));
    let up = [("source", "cache")];
    e.wait_for("the source up", Duration::from_secs(20), |m| {
        m.get("pulse_source_up", &up) == Some(1.0)
    })
    .await;
    let before = rss_mib(e.child.id());
    // A rewrite caught half-way: the file is there, and empty.
    e.write_config("");
    let refused = e.reload().await;
    assert_eq!(refused.status(), 500);
    let body = refused.text().await.unwrap();
    assert!(body.contains("the config file is empty"), "{body}");
    // A path to a device: refused without reading it.
    std::fs::remove_file(&e.config_path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &e.config_path).unwrap();
    let refused = e.reload().await;
    assert_eq!(refused.status(), 500);
    let body = refused.text().await.unwrap();
    assert!(body.contains("is not a regular file"), "{body}");
    let m = e.metrics().await;
    assert_eq!(
        m.get("pulse_source_up", &up),
        Some(1.0),
        "the running config goes on"
    );
    assert_eq!(m.get("pulse_config_last_reload_successful", &[]), Some(0.0));
    let after = rss_mib(e.child.id());
    assert!(
        after < before + 64.0,
        "/dev/zero was not read: {before:.0} MiB before, {after:.0} MiB after"
    );
    e.signal("-TERM");
    e.wait_exit(Duration::from_secs(10));
}
