//! RabbitMQ benchmark (run by `scripts/bench`): 5,000 queues on the local broker, read by the
//! pulse-exporter release binary and by the RabbitMQ Prometheus plugin's per-object endpoint
//! (127.0.0.1:15692/metrics/per-object). Reports probe duration, scrape latency and RSS, as
//! ratios from this one run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

const QUEUES: usize = 5000;
const API: &str = "http://127.0.0.1:15672";
const PLUGIN: &str = "http://127.0.0.1:15692/metrics/per-object";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn timed_gets(client: &reqwest::Client, url: &str, n: usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
        times.push(t.elapsed());
        size = body.len();
    }
    times.sort();
    (times, size)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn beam_pid() -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-f", "beam.smp"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::new();
    let vhost = format!("pulse_bench_{}", std::process::id());
    let put = |path: String, body: serde_json::Value| {
        let http = http.clone();
        async move {
            let s = http
                .put(format!("{API}{path}"))
                .basic_auth("guest", Some("guest"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status();
            assert!(s.is_success(), "{path}: {s}");
        }
    };
    put(format!("/api/vhosts/{vhost}"), serde_json::json!({})).await;
    put(
        format!("/api/permissions/{vhost}/guest"),
        serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;

    let t = Instant::now();
    let conn = lapin::Connection::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for i in 0..QUEUES {
        ch.queue_declare(
            format!("bench.q{i:05}").into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    println!(
        "declared {QUEUES} queues in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // Let the management database see them all.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let dir = std::env::temp_dir().join(format!("pulse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("rabbit.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ interval: 30s, timeout: 20s }}\nsources:\n  - name: broker\n    kind: rabbitmq\n    management_url: {API}\n    username: guest\n    password: guest\n    vhosts: [\"{vhost}\"]\n    max_queues: {QUEUES}\n"
        ),
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
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--log.level",
            "warn",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    // Wait for the first queues run.
    let mut probe = None;
    for _ in 0..600 {
        if let Ok(r) = http.get(&url).send().await {
            let text = r.text().await.unwrap_or_default();
            if let Some(line) = text.lines().find(|l| {
                l.starts_with("pulse_check_duration_seconds{source=\"broker\",check=\"queues\"}")
            }) {
                probe = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
                let queues = text
                    .lines()
                    .filter(|l| l.starts_with("pulse_rabbitmq_queue_consumers{"))
                    .count();
                println!("pulse-exporter publishes {queues} queues");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let probe = Duration::from_secs_f64(probe.expect("the queues check never ran"));
    let (pulse, pulse_size) = timed_gets(&http, &url, 50).await;
    let pulse_rss = rss_mib(child.id());

    let plugin_ok = http
        .get(PLUGIN)
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    println!();
    println!("pulse-exporter: queues probe {:.1} ms (in the background); /metrics p50 {:.2} ms, p99 {:.2} ms, {} KiB; RSS {:.1} MiB",
        ms(probe), ms(pct(&pulse, 0.5)), ms(pct(&pulse, 0.99)), pulse_size / 1024, pulse_rss);
    if plugin_ok {
        let beam_before = beam_pid().map(rss_mib).unwrap_or(0.0);
        let (plugin, plugin_size) = timed_gets(&http, PLUGIN, 10).await;
        println!("rabbitmq_prometheus per-object: scrape p50 {:.1} ms, p99 {:.1} ms, {} KiB (broker RSS {:.0} MiB)",
            ms(pct(&plugin, 0.5)), ms(pct(&plugin, 0.99)), plugin_size / 1024, beam_before);
        println!();
        println!("ratios from this run (5,000 queues):");
        println!(
            "  pulse /metrics p50 / plugin per-object scrape p50: {:.3}",
            ms(pct(&pulse, 0.5)) / ms(pct(&plugin, 0.5))
        );
        println!(
            "  pulse background probe / plugin per-object scrape p50: {:.2}",
            ms(probe) / ms(pct(&plugin, 0.5))
        );
        println!(
            "  pulse exposition size / plugin exposition size: {:.2}",
            pulse_size as f64 / plugin_size as f64
        );
    } else {
        println!("rabbitmq_prometheus is not enabled on 127.0.0.1:15692: no comparison (scripts/bench enables it)");
    }

    let _ = child.kill();
    let _ = child.wait();
    let _ = conn.close(200, "bye".into()).await;
    let _ = http
        .delete(format!("{API}/api/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}
