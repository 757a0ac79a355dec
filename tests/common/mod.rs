//! Helpers shared by the integration tests: the real binary on a free loopback port, scrape
//! parsing, a TCP proxy that can cut a source off, and connections to the real services.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A name unique to this test run, for tables and keys.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pulse-exporter")
}

/// Connects to the real Postgres, failing loudly (never skipping) when it is not there.
pub async fn pg() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(PG_URL)
        .await
        .unwrap_or_else(|e| {
            panic!("Postgres must run on 127.0.0.1:5432 (scripts/test starts it): {e}")
        })
}

/// Connects to the real Redis, failing loudly when it is not there.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("Redis must run on 127.0.0.1:6379 (scripts/test starts it): {e}")
        })
}

/// The exporter binary running with a config written to a temp dir, logs captured.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub scheme: &'static str,
}

impl Exporter {
    pub fn start(config: &str) -> Exporter {
        Self::start_with(config, &[], &[])
    }

    /// Starts with extra flags and environment, waiting until `/-/healthy` answers (plain HTTP)
    /// or the port accepts connections (TLS).
    pub fn start_with(config: &str, args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("pulse.yml");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("exporter.log");
        let port = free_port();
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(bin())
            .arg("--config.file")
            .arg(&config_path)
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--log.level", "debug"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let scheme = if args.contains(&"--web.config.file") {
            "https"
        } else {
            "http"
        };
        let mut e = Exporter {
            child,
            port,
            dir,
            config_path,
            log_path,
            scheme,
        };
        e.wait_listening();
        e
    }

    fn wait_listening(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exporter exited with {status}: {}", self.logs());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("exporter did not listen: {}", self.logs());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> Scrape {
        Scrape::parse(&self.get("/metrics").await)
    }

    /// Polls `/metrics` until `pred` holds, panicking with the last scrape after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        self.wait_for_timed(what, timeout, pred).await.0
    }

    /// Like [`Exporter::wait_for`], also returning the slowest scrape seen while waiting.
    pub async fn wait_for_timed(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Scrape) -> bool,
    ) -> (Scrape, Duration) {
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        loop {
            let t = Instant::now();
            let m = self.metrics().await;
            worst = worst.max(t.elapsed());
            if pred(&m) {
                return (m, worst);
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for {what}\n--- scrape ---\n{}\n--- logs ---\n{}",
                    m.text,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the exporter to re-read its config with `POST /-/reload`.
    pub async fn reload(&self) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/-/reload"))
            .send()
            .await
            .unwrap()
    }

    pub fn write_config(&self, config: &str) {
        let mut f = std::fs::File::create(&self.config_path).unwrap();
        f.write_all(config.as_bytes()).unwrap();
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed text-format scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub series: Vec<Series>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut series = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n.to_owned(), parse_labels(rest.trim_end_matches('}'))),
                None => (head.to_owned(), BTreeMap::new()),
            };
            let value = match value {
                "+Inf" | "inf" => f64::INFINITY,
                "-Inf" | "-inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            series.push(Series {
                name,
                labels,
                value,
            });
        }
        Scrape {
            text: text.to_owned(),
            series,
        }
    }

    /// Series of `name` whose labels include every pair of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one series matching, if any.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.first().map(|s| s.value)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key, value);
        rest = &rest[end..];
    }
    out
}

/// Runs the binary with `args`, returning (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A loopback TCP proxy to `target` that the test can cut (closing every connection) and
/// restore on the same port: the way to make a real server unreachable without stopping it.
pub struct Proxy {
    pub port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            target: target.to_owned(),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every proxied connection.
    pub fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let start = Instant::now();
        loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => return self.serve(l),
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind proxy port {}: {e}", self.port),
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Counts log lines containing every one of `needles`.
pub fn count_lines(logs: &str, needles: &[&str]) -> usize {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

pub const RABBIT_API: &str = "http://127.0.0.1:15672";

/// A vhost of its own on the real RabbitMQ, so tests never see each other's queues.
pub struct RabbitVhost {
    pub name: String,
    http: reqwest::Client,
}

impl RabbitVhost {
    pub async fn create() -> RabbitVhost {
        let name = unique("pulse_vh");
        let v = RabbitVhost {
            name,
            http: reqwest::Client::new(),
        };
        let r = v
            .http
            .put(format!("{RABBIT_API}/api/vhosts/{}", v.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the RabbitMQ management API must run on 127.0.0.1:15672 (scripts/test enables it): {e}"));
        assert!(r.status().is_success(), "create vhost: {}", r.status());
        let r = v
            .api_put(
                &format!("/api/permissions/{}/guest", v.name),
                serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        assert!(r.is_success(), "permissions: {r}");
        v
    }

    async fn api_put(&self, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
        self.http
            .put(format!("{RABBIT_API}{path}"))
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn declare(&self, queue: &str, arguments: serde_json::Value) {
        let s = self
            .api_put(
                &format!("/api/queues/{}/{queue}", self.name),
                serde_json::json!({"durable": false, "arguments": arguments}),
            )
            .await;
        assert!(s.is_success(), "declare {queue}: {s}");
    }

    pub async fn delete_queue(&self, queue: &str) {
        let s = self
            .http
            .delete(format!("{RABBIT_API}/api/queues/{}/{queue}", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(s.is_success(), "delete {queue}: {s}");
    }

    pub async fn publish(&self, queue: &str, n: usize) {
        for _ in 0..n {
            let r: serde_json::Value = self
                .http
                .post(format!("{RABBIT_API}/api/exchanges/{}/amq.default/publish", self.name))
                .basic_auth("guest", Some("guest"))
                .json(&serde_json::json!({"properties": {}, "routing_key": queue, "payload": "job", "payload_encoding": "string"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["routed"], true, "publish to {queue}");
        }
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }

    pub async fn delete(self) {
        let _ = self
            .http
            .delete(format!("{RABBIT_API}/api/vhosts/{}", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
    }
}

pub const MONGO_URL: &str = "mongodb://127.0.0.1:27017";

/// Connects to the MongoDB wire server (nx-27017 here, started by scripts/test).
pub async fn mongo() -> mongodb::Client {
    let c = mongodb::Client::with_uri_str(format!("{MONGO_URL}/?serverSelectionTimeoutMS=3000"))
        .await
        .unwrap();
    c.database("admin")
        .run_command(mongodb::bson::doc! { "ping": 1 })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a MongoDB server must run on 127.0.0.1:27017 (scripts/test starts nx-27017): {e}"
            )
        });
    c
}

/// A loopback TCP listener that accepts connections and never answers: a hung server.
pub struct BlackHole {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        BlackHole { port, task }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// moto_server (S3 without signature checks), started by scripts/test.
pub const MOTO_URL: &str = "http://127.0.0.1:9000";
/// s3s-fs (S3 with SigV4 checks), started by scripts/test with these credentials.
pub const S3S_URL: &str = "http://127.0.0.1:9001";
pub const S3S_KEY: &str = "pulse-test-key";
pub const S3S_SECRET: &str = "pulse-test-secret-0123456789";

/// An S3 client for a local server, on the same rustls/ring HTTP client the exporter uses.
pub async fn s3_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(https)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    if let Err(e) = client.list_buckets().send().await {
        panic!("an S3 server must run at {endpoint} (scripts/test starts moto_server and s3s-fs): {e:?}");
    }
    client
}

/// A panel expression as Prometheus receives it: Grafana's variables substituted.
pub fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
}

/// (dashboard uid, panel title, expressions) of every panel with queries.
pub fn panels() -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards")).unwrap()
    {
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for p in board["panels"].as_array().unwrap() {
            if p["type"] == "row" {
                continue;
            }
            let exprs = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned())
                .collect();
            out.push((
                board["uid"].as_str().unwrap().to_owned(),
                p["title"].as_str().unwrap().to_owned(),
                exprs,
            ));
        }
    }
    out
}

/// `demo` flags that point each of its targets (schema, database, key prefix, queue prefix)
/// at names made from `name`, and its log files at `log_dir`.
pub fn demo_target_args(name: &str, log_dir: &Path) -> Vec<String> {
    [
        "--postgres-schema",
        name,
        "--mongodb-database",
        name,
        "--redis-prefix",
        &format!("{name}:"),
        "--amqp-prefix",
        &format!("{name}."),
        "--log-dir",
        &log_dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Lays out `dir` as docker-compose.yml mounts /etc/prometheus: prometheus.yml, rules/ and the
/// whole alerts/ folder (Alertmanager's config and the rule tests included).
pub fn prometheus_layout(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy_dir(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        repo.join("prometheus/prometheus.yml"),
        dir.join("prometheus.yml"),
    )
    .unwrap();
    copy_dir(&repo.join("prometheus/rules"), &dir.join("rules"));
    copy_dir(&repo.join("alerts"), &dir.join("alerts"));
}
