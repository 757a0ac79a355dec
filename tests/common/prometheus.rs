//! Running Prometheus (and other helper processes) for the tests that read the bundle
//! through a real one: a child process killed when the test ends, readiness, instant queries.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Guards a child started elsewhere.
    pub fn adopt(child: Child) -> Proc {
        Proc(child)
    }

    /// Asks the child to stop (SIGTERM) and waits for it: how it ended.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().unwrap()
    }
}

/// The arguments of a test's own `redis-server`: on the loopback, persisting nothing.
pub const EPHEMERAL_REDIS: &[&str] = &["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];

/// A plain `redis-server` of this test on a port of its own, and the port, once it answers:
/// a port `free_port` found free may be taken by another test's process before the server
/// binds it, and then a test would talk to that process. The server that answers is checked
/// to be this one (its `process_id`); a lost race is tried again on another port.
pub fn own_redis_server(log: &Path) -> (Proc, u16) {
    for _ in 0..5 {
        let port = super::free_port();
        let port_arg = port.to_string();
        let args = [&["--port", port_arg.as_str()][..], EPHEMERAL_REDIS].concat();
        let mut server = spawn("redis-server", &args, log);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.0.try_wait() {
                break; // it could not bind: another port
            }
            let info: Option<String> = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut c| redis::cmd("INFO").arg("server").query(&mut c))
                .ok();
            if let Some(info) = info {
                if info.contains(&format!("process_id:{}\r", server.0.id())) {
                    return (server, port);
                }
                break; // another process answers on this port
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!(
        "no redis-server of this test would start on a free port (log: {})",
        log.display()
    );
}

/// Starts `cmd` with its stderr in `log`, killed when the returned guard drops.
pub fn spawn(cmd: &str, args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} is required (scripts/test installs it): {e}"));
    Proc(child)
}

/// GET `url` as JSON; `None` on any error.
pub async fn get_json(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

/// Waits up to a minute for `url` to answer 2xx, else fails with `log`.
pub async fn wait_ready(url: &str, what: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = reqwest::get(url).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{what} did not become ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The result vector of an instant query (empty on any error).
pub async fn query(prom: &str, expr: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", expr)])
        .unwrap();
    get_json(url.as_str())
        .await
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

/// One panel of a generated dashboard: the source of its row (`Sources` for the header),
/// its title and its queries as Prometheus receives them.
#[derive(Debug, Clone)]
pub struct GeneratedPanel {
    pub source: String,
    pub title: String,
    pub exprs: Vec<String>,
}

/// The panels of a generated dashboard, each with the source its row is about.
pub fn generated_panels(board: &Value) -> Vec<GeneratedPanel> {
    let mut row = String::new();
    let mut out = Vec::new();
    for p in board["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap().to_owned();
        if p["type"] == "row" {
            row = title.split(" (").next().unwrap().to_owned();
            continue;
        }
        let exprs = p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| super::substitute(t["expr"].as_str().unwrap()))
            .collect();
        out.push(GeneratedPanel {
            source: row.clone(),
            title,
            exprs,
        });
    }
    out
}

/// The values of every sample `expr` returns now.
pub async fn values(prom: &str, expr: &str) -> Vec<f64> {
    query(prom, expr)
        .await
        .iter()
        .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The panels that still show nothing but DEGRADED or no data at `deadline`, polled until
/// then: a panel has data when one of its queries returns a sample that is not -1.
pub async fn panels_without_data(
    prom: &str,
    panels: &[GeneratedPanel],
    deadline: Instant,
) -> Vec<String> {
    let mut missing = Vec::new();
    for p in panels {
        loop {
            let mut data = false;
            for e in &p.exprs {
                data |= values(prom, e).await.iter().any(|v| *v != -1.0);
            }
            if data {
                break;
            }
            if Instant::now() > deadline {
                missing.push(format!("{}/{}: {:?}", p.source, p.title, p.exprs));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    missing
}

/// True while one of the panel's queries returns -1: the panel reads DEGRADED.
pub async fn reads_degraded(prom: &str, panel: &GeneratedPanel) -> bool {
    for e in &panel.exprs {
        if values(prom, e).await.contains(&-1.0) {
            return true;
        }
    }
    false
}

/// A Prometheus of the test's own, scraping exporters every second and evaluating its rule
/// files (name, text) every second; stopped, and its data removed, when dropped.
pub struct Scraper {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Scraper {
    /// Starts it on a free port against the exporters on the `targets` ports (job
    /// `pulse-exporter`) and waits until it is ready.
    pub async fn start(targets: &[u16], rules: &[(&str, &str)]) -> Scraper {
        let files: Vec<&str> = rules.iter().map(|(name, _)| *name).collect();
        let targets: Vec<String> = targets.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let config = format!(
            "global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}\n\
             rule_files: {files:?}\n\
             scrape_configs:\n  - job_name: pulse-exporter\n    \
             static_configs: [{{ targets: {targets:?} }}]\n"
        );
        Scraper::with_config(&config, rules).await
    }

    /// Starts it on a free port with `config` (a prometheus.yml) and `files` (name, text)
    /// beside it, and waits until it is ready.
    pub async fn with_config(config: &str, files: &[(&str, &str)]) -> Scraper {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        for (name, text) in files {
            super::write_temp(dir.path(), name, text);
        }
        let config = super::write_temp(dir.path(), "prometheus.yml", config);
        let log = dir.path().join("prometheus.log");
        let proc = spawn(
            "prometheus",
            &[
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            &log,
        );
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&format!("{url}/-/ready"), "Prometheus", &log).await;
        Scraper {
            url,
            _proc: proc,
            _dir: dir,
        }
    }

    /// What it logged so far, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// A scrape config `pulse-exporter scrape-config` wrote, its scrapes and discovery every
/// second: time compressed for a test.
pub fn every_second(config: &str) -> String {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(config).unwrap();
    for job in doc["scrape_configs"].as_sequence_mut().unwrap() {
        job["scrape_interval"] = "1s".into();
        job["scrape_timeout"] = "1s".into();
        job["http_sd_configs"][0]["refresh_interval"] = "1s".into();
    }
    serde_yaml::to_string(&doc).unwrap()
}

/// The queries of the bundled dashboard `uid` (every dashboard for `None`) that still return
/// nothing at `deadline`, polled until then, as `board/panel: query`; those `quiet` says may
/// be empty (by panel title and query) are not asked.
pub async fn bundle_queries_without_data(
    prom: &str,
    uid: Option<&str>,
    quiet: impl Fn(&str, &str) -> bool,
    deadline: Instant,
) -> Vec<String> {
    let mut missing = Vec::new();
    for (board, title, exprs) in super::panels() {
        if uid.is_some_and(|uid| uid != board) {
            continue;
        }
        for e in exprs.iter().filter(|e| !quiet(&title, e)) {
            loop {
                if !query(prom, &super::substitute(e)).await.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    missing.push(format!("{board}/{title}: {e}"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    missing
}
