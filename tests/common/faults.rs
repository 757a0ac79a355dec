//! Faults made without touching the shared servers: a TCP proxy the test cuts and restores or
//! turns hung, slow or garbage-speaking, and a listener that accepts connections and never
//! answers (a hung server).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Serving;

/// How the proxy treats the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept and never answer, holding the connection open.
    Hang,
    /// Forward, but hold every chunk from the server this long first.
    Slow(Duration),
    /// Forward, but hold the server's first chunk of each connection this long: a server
    /// slow to accept a connection (a far region, a loaded TLS handshake), quick after.
    SlowGreeting(Duration),
    /// Answer with bytes that are no protocol at all, then keep reading.
    Garbage,
}

/// A loopback TCP proxy to `target` that the test can cut (closing every connection) and
/// restore on the same port, or switch to a [`Mode`] of failure: the way to make a real
/// server unreachable, hung, slow or broken without touching it.
pub struct Proxy {
    pub port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            target: target.to_owned(),
            tasks: Arc::new(Mutex::new(Vec::new())),
            mode: Arc::new(Mutex::new(Mode::Pass)),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let mode = self.mode.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let mode = *mode.lock().unwrap();
                let conn = tokio::spawn(handle(inbound, target, mode));
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Switches how new connections are treated and closes the current ones, so the source
    /// reconnects into the new mode at once.
    pub async fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        self.cut();
        self.restore().await;
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

/// Serves one accepted connection in `mode`.
async fn handle(mut inbound: tokio::net::TcpStream, target: String, mode: Mode) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    match mode {
        Mode::Pass => {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        }
        Mode::Hang => {
            let mut sink = [0u8; 4096];
            while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Mode::Garbage => {
            // Deterministic noise: no protocol's greeting or frame starts like this.
            let noise: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let _ = inbound.write_all(&noise).await;
            let mut sink = [0u8; 4096];
            while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Mode::Slow(_) | Mode::SlowGreeting(_) => {
            let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                return;
            };
            let (mut client_read, mut client_write) = inbound.into_split();
            let (mut server_read, mut server_write) = outbound.into_split();
            let up = async {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            };
            let down = async {
                let mut buf = vec![0u8; 16 * 1024];
                let mut first = true;
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    match mode {
                        Mode::Slow(delay) => tokio::time::sleep(delay).await,
                        Mode::SlowGreeting(delay) if first => tokio::time::sleep(delay).await,
                        _ => {}
                    }
                    first = false;
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            tokio::join!(up, down);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
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

/// What an outage of one source must show, replayed through `proxy`: the source (reached
/// through the proxy) and `bystander` are up; the proxy is cut; the source goes down with
/// reason `connect` while the bystander stays up; it stays cut for `hold` (more failed probes);
/// the proxy is restored and the source comes back up. The degraded and recovered events are
/// each logged exactly once. Returns how long recovery took after the restore.
pub async fn assert_outage(
    e: &super::Exporter,
    proxy: &Proxy,
    source: &str,
    bystander: &str,
    hold: Duration,
) -> Duration {
    let up = |m: &super::Scrape, s: &str| m.get("pulse_source_up", &[("source", s)]);
    e.wait_for("both sources up", Duration::from_secs(30), |m| {
        up(m, source) == Some(1.0) && up(m, bystander) == Some(1.0)
    })
    .await;
    proxy.cut();
    let m = e
        .wait_for(
            &format!("{source} down with reason connect"),
            Duration::from_secs(30),
            |m| {
                up(m, source) == Some(0.0)
                    && m.get(
                        "pulse_source_probe_failures_total",
                        &[("source", source), ("reason", "connect")],
                    )
                    .is_some_and(|v| v >= 1.0)
            },
        )
        .await;
    assert_eq!(
        up(&m, bystander),
        Some(1.0),
        "{bystander} must not be affected"
    );
    tokio::time::sleep(hold).await;
    proxy.restore().await;
    let back = Instant::now();
    e.wait_for(&format!("{source} back up"), Duration::from_secs(30), |m| {
        up(m, source) == Some(1.0)
    })
    .await;
    let took = back.elapsed();
    let logs = e.logs();
    for event in ["degraded", "recovered"] {
        let needle = format!("event=source.{event}");
        assert_eq!(
            super::count_lines(&logs, &[&needle, &format!("source={source}")]),
            1,
            "{event} once: {logs}"
        );
    }
    took
}
