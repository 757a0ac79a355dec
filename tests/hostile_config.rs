//! Hostile configs, kept as regression cases in `tests/hostile/` (and as the seed corpus of the
//! config fuzz target in `fuzz/`): huge, negative and zero numbers, deep nesting, an alias
//! bomb, invalid UTF-8, NUL bytes, a secret read from a device, runaway regexes. Plus what is
//! too big to keep in the repository, made here: a 10 MB string and 100,000 sources. Each must
//! make `check` exit 1 with a message that names the file, quickly, never panic or hang.

mod common;

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
