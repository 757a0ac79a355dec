//! Scrape benchmark (run by `scripts/bench`): encode time for 10,000 cached series, the same
//! served from the body kept between scrapes (`encoded`) with and without gzip, and
//! `/metrics` throughput, latency and CPU per scrape over loopback, with and without gzip, at
//! rest and while a Postgres check hangs in `pg_sleep`. Figures are printed as ratios from
//! one run, since the machine is shared.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::registry::Registry;
use pulse_exporter::config::load_str;
use pulse_exporter::config_core::CheckPlan;
use pulse_exporter::runtime::app::App;
use pulse_exporter::runtime::results::Results;
use pulse_exporter::series::sample::{label, Output};
use pulse_exporter::serve::collector::SnapshotCollector;
use pulse_exporter::serve::encoded::Encoded;
use pulse_exporter::serve::exposition::{self, Format};
use pulse_exporter::serve::webconfig::WebConfig;

const SERIES: usize = 10_000;
const LOAD: Duration = Duration::from_secs(4);

/// Puts `SERIES` samples into `store` under one synthetic check, as a big business query would.
fn fill(store: &Results) {
    let plan = CheckPlan {
        source: "bench".into(),
        kind: "postgres",
        check: "big".into(),
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(10),
        stale_after: Duration::from_secs(3 * 3600),
        max_series: SERIES,
        max_bytes: usize::MAX,
        const_labels: vec![],
    };
    store.register(Arc::new(plan.clone()));
    let mut out = Output::default();
    for i in 0..SERIES {
        out.gauge(
            "app_bench_users",
            "Synthetic users by tenant and plan.",
            vec![
                label("tenant", format!("tenant-{i:05}")),
                label("plan", ["free", "pro", "trial"][i % 3]),
            ],
            i as f64,
        );
    }
    store.record(&plan, Ok(out), Duration::from_millis(1), SystemTime::now());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_encode() -> (Duration, Duration) {
    let store = Arc::new(Results::new());
    fill(&store);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(store)));
    let mut results = Vec::new();
    for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let body = exposition::encode(&registry, format).unwrap();
            times.push(t.elapsed());
            std::hint::black_box(body);
        }
        times.sort();
        println!(
            "encode {SERIES} series ({format:?}): median {:.2} ms, p99 {:.2} ms",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99))
        );
        results.push(percentile(&times, 0.5));
    }
    let om =
        String::from_utf8(exposition::encode(&registry, Format::OpenMetrics).unwrap()).unwrap();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        std::hint::black_box(exposition::to_classic_text(&om));
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "  of which the classic-text rewrite: median {:.2} ms ({} KiB)",
        ms(percentile(&times, 0.5)),
        om.len() / 1024
    );
    (results[0], results[1])
}

/// Per scrape: encoding anew (what every scrape cost before bodies were kept) against the
/// kept body, plain and gzipped; and the sizes.
fn bench_encode_once() -> (Duration, Duration, Duration, usize, usize) {
    let store = Arc::new(Results::new());
    fill(&store);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(store.clone())));
    let cache = Encoded::default();
    let time = |f: &dyn Fn()| {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            f();
            times.push(t.elapsed());
        }
        times.sort();
        percentile(&times, 0.5)
    };
    let fresh = time(&|| {
        std::hint::black_box(exposition::encode(&registry, Format::Text).unwrap());
    });
    let plain = cache.body(&registry, &store, Format::Text, false).unwrap();
    let kept = time(&|| {
        std::hint::black_box(cache.body(&registry, &store, Format::Text, false).unwrap());
    });
    // A new body per call: what the first gzip scrape after a change costs.
    let zipped_fresh = time(&|| {
        std::hint::black_box(
            Encoded::default()
                .body(&registry, &store, Format::Text, true)
                .unwrap(),
        );
    });
    let zipped = cache.body(&registry, &store, Format::Text, true).unwrap();
    println!(
        "per scrape of {SERIES} series: encode anew {:.3} ms, kept body {:.4} ms; first gzip scrape after a change (encode + gzip) {:.3} ms",
        ms(fresh),
        ms(kept),
        ms(zipped_fresh)
    );
    println!(
        "  size: {} KiB plain, {} KiB gzip ({:.1}x smaller)",
        plain.len() / 1024,
        zipped.len() / 1024,
        plain.len() as f64 / zipped.len() as f64
    );
    (fresh, kept, zipped_fresh, plain.len(), zipped.len())
}

/// CPU time of this process so far (user and system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // Linux reports in USER_HZ, 100 per second on every common build.
    Duration::from_millis(ticks * 10)
}

struct Load {
    rps: f64,
    /// Process CPU (server and client together) per scrape.
    cpu: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

async fn load(url: &str, clients: usize) -> Load {
    load_with(url, clients, false).await
}

async fn load_with(url: &str, clients: usize, gzip: bool) -> Load {
    let client = reqwest::Client::new();
    let cpu_before = cpu_time();
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let url = url.to_owned();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < LOAD {
                let t = Instant::now();
                let mut request = client.get(&url);
                if gzip {
                    request = request.header("Accept-Encoding", "gzip");
                }
                let body = request.send().await.unwrap().bytes().await.unwrap();
                lat.push(t.elapsed());
                assert!(
                    body.len() > if gzip { 10_000 } else { 100_000 },
                    "scrape too small: {} bytes",
                    body.len()
                );
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    all.sort();
    Load {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        cpu: cpu / all.len().max(1) as u32,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: *all.last().unwrap(),
    }
}

async fn serve(config: &str) -> (String, tokio::sync::oneshot::Sender<()>, Arc<App>) {
    let app = App::start(load_str(config).unwrap(), None).unwrap();
    fill(&app.store());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = app.clone();
    tokio::spawn(async move {
        pulse_exporter::serve::http::serve(
            listener,
            served,
            WebConfig::default(),
            "/metrics",
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    (url, tx, app)
}

fn report(name: &str, clients: usize, l: &Load) {
    println!(
        "{name}, {clients} client(s): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, CPU {:.0} µs/scrape ({}s)",
        l.rps,
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        l.cpu.as_secs_f64() * 1e6,
        LOAD.as_secs()
    );
}

fn main() {
    let (text, om) = bench_encode();
    let (fresh, kept, zipped_fresh, plain_len, zipped_len) = bench_encode_once();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (url, stop, app) = serve("sources: []\n").await;
        let rest = load(&url, 1).await;
        report("scrape at rest", 1, &rest);
        let rest4 = load(&url, 4).await;
        report("scrape at rest", 4, &rest4);
        let gz = load_with(&url, 1, true).await;
        report("scrape at rest, gzip", 1, &gz);
        let _ = stop.send(());
        app.shutdown().await;

        let hanging = "sources:\n  - name: db\n    kind: postgres\n    url: postgres://postgres@127.0.0.1:5432/postgres\n    checks:\n      - { metric: app_hang, sql: \"SELECT 1 AS value FROM pg_sleep(60)\", interval: 50s, timeout: 40s }\n";
        let (url, stop, app) = serve(hanging).await;
        // The check starts within its 5 s jitter and then sleeps in Postgres for 40 s.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let hung = load(&url, 1).await;
        report("scrape while a check hangs in pg_sleep", 1, &hung);
        let hung4 = load(&url, 4).await;
        report("scrape while a check hangs in pg_sleep", 4, &hung4);
        let _ = stop.send(());
        app.shutdown().await;

        println!();
        println!("ratios from this run:");
        println!("  encode 10k text / 5 ms target: {:.2}", ms(text) / 5.0);
        println!("  encode 10k OpenMetrics / text: {:.2}", ms(om) / ms(text));
        println!("  per scrape, kept body / encode anew: {:.4}", ms(kept) / ms(fresh));
        println!("  first gzip scrape after a change / encode anew: {:.2}", ms(zipped_fresh) / ms(fresh));
        println!("  gzip / plain size: {:.3}", zipped_len as f64 / plain_len as f64);
        println!("  scrape p50 gzip / plain (1 client): {:.2}", ms(gz.p50) / ms(rest.p50));
        println!("  CPU per scrape gzip / plain (1 client, server and client): {:.2}", gz.cpu.as_secs_f64() / rest.cpu.as_secs_f64().max(1e-9));
        println!("  scrape p99 while hanging / at rest (1 client): {:.2}", ms(hung.p99) / ms(rest.p99));
        println!("  scrape p99 while hanging, 1 client / 5 ms target: {:.2}", ms(hung.p99) / 5.0);
        println!("  req/s while hanging / at rest (4 clients): {:.2}", hung4.rps / rest4.rps);
        println!("  scrape p99 while hanging, 4 clients on 2 cores / 5 ms target: {:.2}", ms(hung4.p99) / 5.0);
    });
}
