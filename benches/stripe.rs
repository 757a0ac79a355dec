//! Stripe benchmark (run by `scripts/bench`), against the Stripe-shaped server of the tests:
//!
//! - requests per check run on a window of 10,000 events, 30 of them stuck, with a few new
//!   events a second, with `max_pages` 200 (enough to read the window whole) and 20 (the
//!   default): the requests of the first run, the mean of the later ones, and whether the
//!   event count matches the server's;
//! - requests per quiet run after a burst of 250 events in one minute, first with one event
//!   undelivered (documented: 2, the listing of newer events and the re-check), then with
//!   none (documented: 1).
//!
//! Each binary given in `PULSE_BENCH_BINARIES` (default the release build) runs each case.
//! Older binaries work too: only fields every version knows are set, and runs are told apart
//! by the idle time between them, not by what they request.

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

/// A running exporter on a one-source config for `fake`, checking every 2 s.
struct Running {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Running {
    fn start(binary: &str, fake: &FakeStripe, max_pages: u32) -> Running {
        let dir = std::env::temp_dir().join(format!(
            "pulse-bench-stripe-{}-{max_pages}",
            std::process::id()
        ));
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
        let child = Command::new(binary)
            .arg("--config.file")
            .arg(&cfg)
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        Running { child, port, dir }
    }

    /// The events counted at the last run.
    async fn counted(&self) -> f64 {
        let scrape = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        scrape
            .lines()
            .find(|l| l.starts_with("pulse_stripe_events{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mean(runs: &[usize]) -> f64 {
    runs.iter().sum::<usize>() as f64 / runs.len().max(1) as f64
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
    let running = Running::start(binary, &fake, max_pages);
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
    let counted = running.counted().await;
    drop(running);
    let per_run = runs(&fake.requests());
    assert!(
        per_run.len() > 1,
        "{binary}: fewer than two runs: {per_run:?}"
    );
    let later = &per_run[1..per_run.len().min(RUNS)];
    println!(
        "  {binary} max_pages {max_pages}: first run {} requests, runs 2-{}: mean {:.1} ({later:?}); events counted {counted} of {} on the server",
        per_run[0],
        later.len() + 1,
        mean(later),
        EVENTS + added
    );
}

/// Quiet runs after a burst of 250 events in one minute, two minutes before the start.
async fn burst(binary: &str) {
    let fake = FakeStripe::start(&[]).await;
    let t = now();
    for i in 0..50 {
        fake.add_event("", t - 7200 - i * 600, "charge.succeeded", 0);
    }
    let mut undelivered = String::new();
    for i in 0..250 {
        let id = fake.add_event("", t - 180 + i % 60, "invoice.paid", u64::from(i == 7));
        if i == 7 {
            undelivered = id;
        }
    }
    let running = Running::start(binary, &fake, 20);
    let wait_runs = |n: usize| {
        let fake = &fake;
        async move {
            let start = Instant::now();
            while runs(&fake.requests()).len() < n && start.elapsed() < Duration::from_secs(40) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_runs(RUNS + 1).await;
    let pending = runs(&fake.requests());
    fake.deliver(&undelivered);
    wait_runs(pending.len() + RUNS).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counted = running.counted().await;
    drop(running);
    let all = runs(&fake.requests());
    // The run after the delivery may still hold a re-check: skip it.
    let with_pending = &pending[1..pending.len() - 1];
    let quiet = &all[(pending.len() + 1).min(all.len())..all.len().saturating_sub(1)];
    println!(
        "  {binary} burst of 250: first run {} requests; quiet runs with 1 undelivered: mean {:.1} ({with_pending:?}); with none: mean {:.1} ({quiet:?}); events counted {counted} of 300",
        pending[0],
        mean(with_pending),
        mean(quiet),
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
    println!("Stripe: requests per quiet run after a burst (documented: 2 while an event is undelivered, else 1)");
    for binary in binaries.split_whitespace() {
        burst(binary).await;
    }
}
