//! The exporter binary under test: started on a free loopback port with a config written to a
//! temp dir, its logs captured, scraped and killed when the test ends; and one-shot runs of its
//! subcommands.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

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
        let scheme = if args.contains(&"--web.config.file") {
            "https"
        } else {
            "http"
        };
        // A port free_port() found free may be bound by another test's exporter before this
        // one binds it, and that one would answer for this one until it stops: only a
        // listening socket of this very process counts, and a lost race is tried again on
        // another port.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(bin())
                .arg("--config.file")
                .arg(&config_path)
                .arg("--web.listen-address")
                .arg(format!("127.0.0.1:{port}"))
                // Debug logs unless the test chooses a level.
                .args(match args.contains(&"--log.level") {
                    true => &[][..],
                    false => &["--log.level", "debug"][..],
                })
                .args(args)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            match wait_listening(&mut child, port, &log_path) {
                Ok(()) => {
                    return Exporter {
                        child,
                        port,
                        dir,
                        config_path,
                        log_path,
                        scheme,
                    }
                }
                Err(logs) if logs.contains("cannot listen on") => continue,
                Err(logs) => panic!("{logs}"),
            }
        }
        panic!("every port tried was taken before the exporter could listen on it")
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

    /// Waits up to `timeout` for the process to exit, returning its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// An exporter serving HTTP, spawned or in-process: what a test reads from it.
pub trait Serving {
    /// The URL of `path` on the exporter.
    fn url(&self, path: &str) -> String;

    /// What the exporter logged so far (nothing for an in-process server).
    fn logs(&self) -> String;

    async fn get(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn metrics(&self) -> Scrape {
        Scrape::parse(&self.get("/metrics").await)
    }

    /// Polls `/metrics` until `pred` holds, panicking with the last scrape after `timeout`.
    async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        self.wait_for_timed(what, timeout, pred).await.0
    }

    /// Like [`Serving::wait_for`], also returning the slowest scrape seen while waiting.
    async fn wait_for_timed(
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
}

impl Serving for Exporter {
    fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// The exporter's app and HTTP server running inside the test's own runtime: no process to
/// spawn, for tests that read only `/metrics` (and not the binary's logs or flags).
pub struct InProcess {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl InProcess {
    /// Loads `config` (a bad config fails the test with every error) and serves it on a free
    /// loopback port until the value is dropped.
    pub fn start(config: &str) -> InProcess {
        InProcess::start_limited(config, pulse_exporter::serve::limits::Limits::default())
    }

    /// [`InProcess::start`] with explicit HTTP limits (short timeouts, few connections).
    pub fn start_limited(config: &str, limits: pulse_exporter::serve::limits::Limits) -> InProcess {
        let config = pulse_exporter::config::load_str(config).unwrap_or_else(|e| panic!("{e}"));
        let app = pulse_exporter::runtime::app::App::start(config, None).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            pulse_exporter::serve::http::serve_with(
                listener,
                app.clone(),
                pulse_exporter::serve::webconfig::WebConfig::default(),
                "/metrics",
                limits,
                shutdown,
            )
            .await
            .unwrap();
            app.shutdown().await;
        });
        InProcess {
            port,
            stop: Some(stop),
        }
    }
}

impl Serving for InProcess {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn logs(&self) -> String {
        "(in-process server: no logs)".to_owned()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits until `child` itself listens on `port`; `Err` with its log when it exits first or
/// does not listen within 20 s (it is then stopped).
fn wait_listening(child: &mut Child, port: u16, log_path: &std::path::Path) -> Result<(), String> {
    let logs = || std::fs::read_to_string(log_path).unwrap_or_default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exporter exited with {status}: {}", logs()));
        }
        if listens(child.id(), port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("exporter did not listen: {}", logs()))
}

/// Whether process `pid` holds a socket listening on TCP `port` (Linux: the listening
/// sockets of /proc/net/tcp and tcp6, matched to the process's file descriptors).
fn listens(pid: u32, port: u16) -> bool {
    let port_hex = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A (LISTEN), inode.
            if f.len() > 9 && f[1].ends_with(&port_hex) && f[3] == "0A" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.to_string_lossy() == *i))
    })
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Counts log lines containing every one of `needles`.
pub fn count_lines(logs: &str, needles: &[&str]) -> usize {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Open file descriptors of `pid`: (all, sockets).
pub fn fds(pid: u32) -> (usize, usize) {
    let mut all = 0;
    let mut sockets = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        all += 1;
        if std::fs::read_link(entry.path())
            .map(|l| l.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false)
        {
            sockets += 1;
        }
    }
    (all, sockets)
}
