//! Stripe benchmark (run by `scripts/bench`): requests per check run on a window of 10,000
//! events, 30 of them stuck, with a few new events a second, against the Stripe-shaped server
//! of the tests. Each binary given in `PULSE_BENCH_BINARIES` (default the release build) runs
//! with `max_pages` 200 (enough to read the window whole) and 20 (the default); the report
//! gives the requests of the first run, the mean of the later ones, and whether the event
//! count matches the server's. Older binaries work too: only fields every version knows are
//! set, and runs are told apart by the idle time between them, not by what they request.

#[path = "../tests/common/stripe.rs"]
#[allow(dead_code)]
mod stripe_fake;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stripe_fake::{FakeStripe, Logged, STRIPE_KEY};

const EVENTS: i64 = 10_000;
const STUCK: i64 = 30;
const RUNS: usize = 8;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Requests of the events check (pages of 100 of `/v1/events`), grouped into runs: a run is
/// a burst of requests, runs are at least 300 ms apart (the check runs every 2 s).
fn runs(requests: &[Logged]) -> Vec<usize> {
    let mut runs: Vec<usize> = Vec::new();
    let mut last: Option<Instant> = None;
    for r in requests
        .iter()
        .filter(|r| r.path == "/v1/events" && r.param("limit") == Some("100"))
    {
        if last.is_none_or(|l| r.at.duration_since(l) > Duration::from_millis(300)) {
            runs.push(0);
        }
        *runs.last_mut().unwrap() += 1;
        last = Some(r.at);
    }
    runs
}

async fn scenario(binary: &str, max_pages: u32) {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    // 72 hours of events, evenly spread; the 30 oldest of the last day failed.
    let step = 72 * 3600 / EVENTS;
    for i in 0..EVENTS {
        let pending = u64::from((3000..3000 + STUCK).contains(&i));
        fake.add_event("", t - 60 - i * step, "invoice.paid", pending);
    }
    let dir = std::env::temp_dir().join(format!("pulse-bench-stripe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("stripe.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{ health_interval: 1h, health_timeout: 5s }}\nsources:\n  - name: stripe\n    kind: stripe\n    api_key: {STRIPE_KEY}\n    api_base: {}\n    max_pages: {max_pages}\n    interval: 2s\n    timeout: 1500ms\n",
            fake.uri()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(binary)
        .arg("--config.file")
        .arg(&cfg)
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    // New events arrive while it runs: three a second.
    let start = Instant::now();
    let mut added = 0;
    while runs(&fake.requests()).len() < RUNS + 1 && start.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(330)).await;
        fake.add_event("", now(), "charge.succeeded", 0);
        added += 1;
    }
    // Let the last run finish, then read its count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scrape = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let counted = scrape
        .lines()
        .find(|l| l.starts_with("pulse_stripe_events{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let per_run = runs(&fake.requests());
    assert!(
        per_run.len() > 1,
        "{binary}: fewer than two runs: {per_run:?}"
    );
    let later = &per_run[1..per_run.len().min(RUNS)];
    let mean = later.iter().sum::<usize>() as f64 / later.len().max(1) as f64;
    println!(
        "  {binary} max_pages {max_pages}: first run {} requests, runs 2-{}: mean {mean:.1} ({later:?}); events counted {counted} of {} on the server",
        per_run[0],
        later.len() + 1,
        EVENTS + added
    );
}

#[tokio::main]
async fn main() {
    let binaries = std::env::var("PULSE_BENCH_BINARIES")
        .unwrap_or_else(|_| "target/release/pulse-exporter".to_owned());
    println!(
        "Stripe: requests per events-check run on a 72 h window of {EVENTS} events, {STUCK} stuck"
    );
    for max_pages in [200, 20] {
        for binary in binaries.split_whitespace() {
            scenario(binary, max_pages).await;
        }
    }
}
