//! Basic-auth benchmark (run by `scripts/bench`): the latency of a legitimate scraper (right
//! password, every 100 ms) at rest, and while 50 connections send wrong passwords as fast as
//! they are answered: first all from one address, then each from its own loopback address
//! (127.0.0.2 to 127.0.0.51), the worst case for a per-address limit. bcrypt cost 10, as
//! `htpasswd -nBC 10` makes. Figures are ratios from one run, since the machine is shared.
//! Last, the cost of a wrong password for a user that exists against one that does not: a
//! ratio near 1 means user names cannot be told apart by timing.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_secs(8);
const ATTACKERS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Scrapes with the right password every 100 ms for [`PHASE`]; returns (p50, p99, failures).
async fn legitimate(url: &str) -> (Duration, Duration, usize) {
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    let mut failures = 0;
    let end = Instant::now() + PHASE;
    while Instant::now() < end {
        let t = Instant::now();
        let ok = match client
            .get(url)
            .basic_auth("prometheus", Some("right-password"))
            .send()
            .await
        {
            Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            took.push(t.elapsed());
        } else {
            failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    took.sort();
    (percentile(&took, 0.5), percentile(&took, 0.99), failures)
}

/// 50 connections guessing until `stop`; counts (answers 401, answers 429).
fn attack(
    url: &str,
    spread: bool,
    stop: Arc<AtomicBool>,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
) {
    let (denied, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks = (0..ATTACKERS)
        .map(|i| {
            let from: IpAddr = if spread {
                [127, 0, 0, 2 + i as u8].into()
            } else {
                [127, 0, 0, 1].into()
            };
            let client = reqwest::Client::builder()
                .local_address(from)
                .build()
                .unwrap();
            let (url, stop, denied, limited) = (
                url.to_owned(),
                stop.clone(),
                denied.clone(),
                limited.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let guess = format!("guess-{i}-{n}");
                    match client
                        .get(&url)
                        .basic_auth("prometheus", Some(guess))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 429 => limited.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => denied.fetch_add(1, Ordering::Relaxed),
                        Err(_) => 0,
                    };
                }
            })
        })
        .collect();
    (tasks, denied, limited)
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("pulse-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hash = bcrypt::hash("right-password", 10).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    let config = dir.join("pulse.yml");
    std::fs::write(
        &config,
        "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulse-exporter"))
        .arg("--config.file")
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--log.level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (rest50, rest99, rest_failed) = legitimate(&url).await;
    println!(
        "at rest: legitimate scrape p50 {:.2} ms, p99 {:.2} ms, {rest_failed} failed",
        ms(rest50),
        ms(rest99)
    );
    let mut phases = Vec::new();
    for (spread, what) in [
        (false, "50 guessing connections from one address"),
        (true, "50 guessing connections from 50 addresses"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let (tasks, denied, limited) = attack(&url, spread, stop.clone());
        let (p50, p99, failed) = legitimate(&url).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let (d, l) = (
            denied.load(Ordering::Relaxed),
            limited.load(Ordering::Relaxed),
        );
        println!(
            "{what}: legitimate scrape p50 {:.2} ms, p99 {:.2} ms, {failed} failed; guesses answered 401 (bcrypt ran) {d}, 429 (refused, no bcrypt) {l}",
            ms(p50),
            ms(p99)
        );
        phases.push((what, p50, p99));
        // Let the limiter's buckets refill before the next phase.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    println!("ratios from this run (legitimate scrape latency under attack / at rest):");
    for (what, p50, p99) in phases {
        println!(
            "  {what}: p50 {:.1}x, p99 {:.1}x",
            p50.as_secs_f64() / rest50.as_secs_f64(),
            p99.as_secs_f64() / rest99.as_secs_f64()
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    user_timing(&hash);
}

/// A wrong password for an existing user against any password for an unknown one.
fn user_timing(hash: &str) {
    use pulse_exporter::serve::webconfig::BasicAuth;
    let users = std::collections::BTreeMap::from([("prometheus".to_owned(), hash.to_owned())]);
    let auth = BasicAuth::new(&users).unwrap();
    let time = |user: &str| {
        let t = Instant::now();
        for i in 0..10 {
            assert!(!auth.check(user, &format!("wrong-{i}")));
        }
        t.elapsed() / 10
    };
    let (known, unknown) = (time("prometheus"), time("nobody"));
    println!(
        "wrong password: existing user {:.1} ms, unknown user {:.1} ms: ratio {:.2}",
        ms(known),
        ms(unknown),
        unknown.as_secs_f64() / known.as_secs_f64()
    );
}
