//! The version matrix: the servers `scripts/servers fetch` put in its cache (Postgres 16 to 18,
//! Redis 7.4 and 8.2, Valkey 8 and 9, Prometheus 3.5, RabbitMQ 4.0 and 4.3) beside Debian's
//! own, as its manifest lists them, and starting one of them on a free loopback port with a
//! folder of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{listen_port, run_ok};

/// One server of the matrix, as the manifest describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// `postgres`, `redis` or `prometheus`.
    pub kind: String,
    /// e.g. `postgres-18`, `valkey-9.1`.
    pub name: String,
    /// The version the binary reports of itself.
    pub version: String,
    /// `debian`, or the registry package it came from.
    pub origin: String,
    /// Postgres: the folder of `initdb` and `postgres`.
    pub bin: Option<PathBuf>,
    /// Redis and Valkey: the server binary.
    pub server: Option<PathBuf>,
    /// Prometheus: its two binaries.
    pub prometheus: Option<PathBuf>,
    pub promtool: Option<PathBuf>,
    /// RabbitMQ: its `RABBITMQ_HOME` (with `sbin/rabbitmq-server`) and the folder of the
    /// `erl` it runs.
    pub home: Option<PathBuf>,
    pub erlang: Option<PathBuf>,
    /// What the binaries need in their environment (`LD_LIBRARY_PATH`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Manifest {
    servers: Vec<Server>,
}

/// The manifest's path: `PULSE_SERVERS_DIR` (or `~/.cache/pulse-exporter/servers`) holds it.
pub fn manifest_path() -> PathBuf {
    let dir = std::env::var_os("PULSE_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME"))
                .join(".cache/pulse-exporter/servers")
        });
    dir.join("manifest.json")
}

/// Every server of the matrix; a missing manifest fails the test (never a silent skip).
pub fn matrix() -> Vec<Server> {
    let path = manifest_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the version matrix's manifest {} cannot be read ({e}): run `scripts/servers fetch` (scripts/test does)",
            path.display()
        )
    });
    let m: Manifest = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a manifest: {e}", path.display()));
    m.servers
}

/// The servers of `kind`, oldest first.
pub fn servers(kind: &str) -> Vec<Server> {
    let mut s: Vec<Server> = matrix().into_iter().filter(|s| s.kind == kind).collect();
    s.sort_by_key(|s| version_key(&s.version));
    assert!(!s.is_empty(), "the manifest lists no {kind} server");
    s
}

/// `"18.4"` as `[18, 4]`, for ordering.
pub fn version_key(v: &str) -> Vec<u32> {
    v.split(['.', '-', '+', ' '])
        .map_while(|p| p.parse().ok())
        .collect()
}

/// Runs every server's case at once, each on its own thread (they are mostly waiting on
/// servers), and fails with every version's failure, not only the first.
pub fn each_version(servers: &[Server], case: impl Fn(&Server) + Sync) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|s| {
                let case = &case;
                (s, scope.spawn(move || case(s)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(s, h)| {
                h.join().err().map(|e| {
                    let text = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    format!("--- {} ({}) ---\n{text}", s.name, s.version)
                })
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} versions failed:\n{}",
        failures.len(),
        servers.len(),
        failures.join("\n")
    );
}

/// A server process of the matrix: stopped (and reaped) when dropped, however the test ends.
pub struct Running {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// Postgres: `postmaster.pid`, whose first line is the server's PID (the child is
    /// `runuser`, which would not wait for a fast shutdown); RabbitMQ: the Erlang VM's.
    pidfile: Option<PathBuf>,
    /// What stops it gracefully: `INT` (Postgres's fast shutdown), `TERM` (RabbitMQ).
    signal: &'static str,
}

impl Running {
    /// What the server logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server now: SIGINT (Postgres's fast shutdown; Redis saves nothing here) or
    /// SIGTERM (RabbitMQ), then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        let pid = self
            .pidfile
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.child.id().to_string());
        let _ = Command::new("kill")
            .args([&format!("-{}", self.signal), &pid])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    fn binary(&self, path: &Option<PathBuf>, what: &str) -> PathBuf {
        path.clone()
            .unwrap_or_else(|| panic!("{}: the manifest names no {what}", self.name))
    }

    /// `initdb` into `dir` (which the `postgres` user must own), trust authentication.
    pub fn initdb(&self, dir: &Path) {
        let bin = self.binary(&self.bin, "bin");
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .args(["-D", &dir.display().to_string(), "-A", "trust", "-U"])
                .args(["postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
                .envs(&self.env)
                .stdout(Stdio::null()),
            &format!("{} initdb", self.name),
        );
    }

    /// Starts `postgres` on `dir` on `port` with `options` (`name=value`), ready to stream to
    /// standbys, and waits until it accepts connections.
    pub fn start_postgres(&self, dir: &Path, port: u16, options: &[&str]) -> Running {
        let bin = self.binary(&self.bin, "bin");
        let log = dir.with_extension("log");
        let socket_dir = dir.parent().unwrap().display().to_string();
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("postgres"))
            .args(["-D", &dir.display().to_string(), "-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={socket_dir}")])
            .args(["-c", "fsync=off", "-c", "wal_level=replica"])
            .args(["-c", "max_wal_senders=4", "-c", "max_replication_slots=6"])
            .args([
                "-c",
                "hot_standby=on",
                "-c",
                "wal_receiver_status_interval=1s",
            ])
            .args(options.iter().flat_map(|o| ["-c", o]))
            .envs(&self.env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start postgres: {e}", self.name));
        let pidfile = Some(dir.join("postmaster.pid"));
        let running = Running {
            child,
            port,
            log,
            pidfile,
            signal: "INT",
        };
        // Ready when the server answering on the port is this one: another test's server
        // holding the port would answer pg_isready too.
        let ours = dir.display().to_string();
        wait_until(&running, || {
            Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(["-d", "postgres", "-XAtq", "-c", "SHOW data_directory"])
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == ours)
        });
        running
    }

    /// Starts the Redis or Valkey server on a free port, nothing saved, with `args` added
    /// (`--replicaof 127.0.0.1 6379`, say), and waits until it is the server answering there.
    pub fn start_redis(&self, dir: &Path, args: &[&str]) -> Running {
        // A test beside this one may start its own server on the port chosen here before
        // this server binds it (seen in CI: Valkey 8.0's test was answered by Redis 8.2):
        // then this server exits, and another port is tried.
        let mut refused = Vec::new();
        for _ in 0..5 {
            match self.try_start_redis_on(dir, listen_port(), args) {
                Ok(running) => return running,
                Err(e) => refused.push(e),
            }
        }
        panic!(
            "{}: no port took the server:\n{}",
            self.name,
            refused.join("\n")
        );
    }

    /// [`Server::start_redis`] on `port` (a restart where clients expect it).
    pub fn start_redis_on(&self, dir: &Path, port: u16, args: &[&str]) -> Running {
        self.try_start_redis_on(dir, port, args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server on `port` and waits until the server answering there is this one
    /// (its `INFO server` names this process): a PONG alone may come from another test's
    /// server that holds the port. An error when the server exits first (the port taken).
    fn try_start_redis_on(&self, dir: &Path, port: u16, args: &[&str]) -> Result<Running, String> {
        let server = self.binary(&self.server, "server");
        let log = dir.join(format!("redis-{port}.log"));
        let mut child = Command::new(server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &dir.display().to_string()])
            .args(["--logfile", &log.display().to_string()])
            .args(args)
            .envs(&self.env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start the server: {e}", self.name));
        let ours = format!("process_id:{}", child.id());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = child.try_wait() {
                let logs = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "{}: the server on port {port} exited ({status}) before it answered:\n{logs}",
                    self.name
                ));
            }
            let answered = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "info", "server"])
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l.trim() == ours)
                });
            if answered {
                return Ok(Running {
                    child,
                    port,
                    log,
                    pidfile: None,
                    signal: "INT",
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let running = Running {
            child,
            port,
            log,
            pidfile: None,
            signal: "INT",
        };
        panic!("the server did not become ready:\n{}", running.logs());
    }
}

/// A RabbitMQ node of the matrix and the epmd it registers with (its own, or a cluster's
/// first node's), both stopped when dropped (the node first).
pub struct RabbitNode {
    pub broker: Running,
    /// The management API's port.
    pub api: u16,
    /// The `rabbitmq_prometheus` plugin's port.
    pub prometheus: u16,
    /// The stream protocol's port (`rabbitmq_stream`).
    pub stream: u16,
    /// Its Erlang node name (`matrixPORT@localhost`).
    pub name: String,
    /// The port of the epmd it registers with.
    epmd_port: u16,
    /// Its folder (HOME, so its Erlang cookie, the matrix's own).
    dir: PathBuf,
    /// `sbin/rabbitmqctl` of its version, and the `erl` folder to put first on PATH.
    ctl: PathBuf,
    erlang: PathBuf,
    _epmd: Option<Running>,
}

/// The Erlang cookie of every matrix node: nodes of one cluster must share it.
const COOKIE: &str = "PULSEMATRIXCOOKIE";

impl RabbitNode {
    /// `http://127.0.0.1:PORT`, the management API.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }

    /// `http://127.0.0.1:PORT`, the Prometheus endpoint.
    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prometheus)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/VHOST` (the vhost percent-encoded).
    pub fn amqp_url(&self, vhost: &str) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/{vhost}", self.broker.port)
    }

    /// Runs `rabbitmqctl` against this node with `args`, failing with its output.
    pub fn ctl(&self, args: &[&str]) -> String {
        run_ok(
            Command::new(&self.ctl)
                .args(["-n", &self.name])
                .args(args)
                .env("PATH", path_with(&self.erlang))
                .env("HOME", &self.dir)
                .env("ERL_EPMD_PORT", self.epmd_port.to_string()),
            &format!("rabbitmqctl {}", args.join(" ")),
        )
    }

    /// Joins this node to `seed`'s cluster (stop_app, join_cluster, start_app).
    pub fn join(&self, seed: &RabbitNode) {
        self.ctl(&["stop_app"]);
        self.ctl(&["join_cluster", &seed.name]);
        self.ctl(&["start_app"]);
    }
}

/// `PATH` with `first` in front.
fn path_with(first: &Path) -> String {
    format!(
        "{}:{}",
        first.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The node's six ports (AMQP, management, Prometheus, distribution, epmd, stream), chosen
/// once and kept in `dir/ports`: a restarted node keeps its name and data, which belong to
/// them.
fn rabbit_ports(dir: &Path) -> [u16; 6] {
    let ports_file = dir.join("ports");
    let ports: Vec<u16> = match std::fs::read_to_string(&ports_file) {
        Ok(t) => t.split_whitespace().map(|p| p.parse().unwrap()).collect(),
        Err(_) => (0..6).map(|_| listen_port()).collect(),
    };
    let listed: Vec<String> = ports.iter().map(u16::to_string).collect();
    std::fs::write(&ports_file, listed.join(" ")).unwrap();
    ports
        .try_into()
        .unwrap_or_else(|_| panic!("{}: bad ports file", ports_file.display()))
}

/// The node's `rabbitmq.conf` (listeners on 127.0.0.1, then `conf`), its plugins (management,
/// prometheus, stream and its management extension) and its cookie.
fn rabbit_files(dir: &Path, [amqp, api, prometheus, _, _, stream]: [u16; 6], conf: &[&str]) {
    let mut lines = vec![
        format!("listeners.tcp.1 = 127.0.0.1:{amqp}"),
        format!("management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {api}"),
        format!("prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {prometheus}"),
        format!("stream.listeners.tcp.1 = 127.0.0.1:{stream}"),
        "loopback_users = none".to_owned(),
    ];
    lines.extend(conf.iter().map(|l| (*l).to_owned()));
    std::fs::write(dir.join("rabbitmq.conf"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("enabled_plugins"),
        "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_stream,rabbitmq_stream_management].\n",
    )
    .unwrap();
    let cookie = dir.join(".erlang.cookie");
    if !cookie.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&cookie, COOKIE).unwrap();
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
}

impl Server {
    /// Starts a RabbitMQ node with its data, logs, configuration and plugins (management,
    /// prometheus, stream) in `dir`, every port on 127.0.0.1 (its own epmd too), `conf` lines added to
    /// its `rabbitmq.conf`, and waits until the management API answers. Started again on the
    /// same `dir`, it keeps its node name and data (durable queues and persistent messages).
    pub fn start_rabbitmq(&self, dir: &Path, conf: &[&str]) -> RabbitNode {
        self.start_rabbit_node(dir, conf, None)
    }

    /// Starts a node as [`Server::start_rabbitmq`] does that registers with `seed`'s epmd, so
    /// that it can join `seed`'s cluster ([`RabbitNode::join`]). Drop it before `seed`.
    pub fn start_rabbitmq_beside(&self, dir: &Path, seed: &RabbitNode) -> RabbitNode {
        self.start_rabbit_node(dir, &[], Some(seed.epmd_port))
    }

    fn start_rabbit_node(&self, dir: &Path, conf: &[&str], epmd: Option<u16>) -> RabbitNode {
        let home = self.binary(&self.home, "home");
        let erlang = self.binary(&self.erlang, "erlang");
        std::fs::create_dir_all(dir).unwrap();
        let ports = rabbit_ports(dir);
        rabbit_files(dir, ports, conf);
        let [amqp, api, prometheus, dist, own_epmd, stream] = ports;
        let epmd_port = epmd.unwrap_or(own_epmd);
        let own = epmd
            .is_none()
            .then(|| self.start_epmd(dir, &erlang, own_epmd));
        let log = dir.join("rabbitmq.out");
        let pidfile = dir.join("rabbit.pid");
        let _ = std::fs::remove_file(&pidfile);
        let name = format!("matrix{amqp}@localhost");
        let d = |sub: &str| dir.join(sub).display().to_string();
        let child = Command::new(home.join("sbin/rabbitmq-server"))
            .env("PATH", path_with(&erlang))
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", d("data"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", d("rabbit.pid"))
            .envs(&self.env)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start rabbitmq-server: {e}", self.name));
        let broker = Running {
            child,
            port: amqp,
            log,
            pidfile: Some(pidfile),
            signal: "TERM",
        };
        // The management API answers before the broker has finished booting: the AMQP and
        // stream listeners open last (a restarted node recovering its queues on a busy machine
        // refused AMQP seconds after the API answered). Ready is every port accepting.
        let overview = format!("http://127.0.0.1:{api}/api/overview");
        wait_until(&broker, || {
            Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-u", "guest:guest", &overview])
                .status()
                .is_ok_and(|s| s.success())
                && [amqp, prometheus, stream].iter().all(|p| {
                    std::net::TcpStream::connect_timeout(
                        &([127, 0, 0, 1], *p).into(),
                        Duration::from_secs(1),
                    )
                    .is_ok()
                })
        });
        RabbitNode {
            broker,
            api,
            prometheus,
            stream,
            name,
            epmd_port,
            dir: dir.to_owned(),
            ctl: home.join("sbin/rabbitmqctl"),
            erlang,
            _epmd: own,
        }
    }

    /// An epmd of the node's own on 127.0.0.1:`port`, a child of the test.
    fn start_epmd(&self, dir: &Path, erlang: &Path, port: u16) -> Running {
        let log = dir.join(format!("epmd-{port}.log"));
        let child = Command::new(erlang.join("epmd"))
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .env("PATH", path_with(erlang))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start epmd: {e}", self.name));
        Running {
            child,
            port,
            log,
            pidfile: None,
            signal: "TERM",
        }
    }
}

/// Polls `ready` for up to 60 s, failing with the server's log.
fn wait_until(running: &Running, ready: impl Fn() -> bool) {
    if !poll(Duration::from_secs(60), ready) {
        panic!("the server did not become ready:\n{}", running.logs());
    }
}

/// Runs psql on the server at `port` as `postgres` with `args` (`-c SQL`, `-f FILE`), failing
/// with psql's message under `what`; its output, trimmed.
pub fn psql_with(port: u16, args: &[&std::ffi::OsStr], what: &str) -> String {
    crate::run_ok(
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1"])
            .args(args),
        what,
    )
    .trim()
    .to_owned()
}

/// Runs `sql` on the server at `port` as `postgres`, failing with psql's message.
pub fn psql_at(port: u16, sql: &str) -> String {
    psql_with(
        port,
        &["-c".as_ref(), sql.as_ref()],
        &format!("psql -c {}", sql.chars().take(200).collect::<String>()),
    )
}

/// Polls `done` every 100 ms for up to `timeout`: whether it came true.
pub fn poll(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
