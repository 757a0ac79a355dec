//! Postgres clusters a test owns: `initdb` into a temporary folder, `pg_ctl` on a free port
//! on 127.0.0.1, run as the `postgres` user (the server refuses root), stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::run_ok;

const PG_BIN: &str = "/usr/lib/postgresql";

/// The newest installed Postgres's bin folder (Debian's layout), where initdb lives.
pub fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir(PG_BIN)
        .expect("Postgres server binaries under /usr/lib/postgresql (scripts/test installs them)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions.last().expect("a Postgres version installed");
    Path::new(PG_BIN).join(v.to_string()).join("bin").join(tool)
}

/// Runs a Postgres tool as the `postgres` user (the server refuses to run as root).
pub fn as_postgres(tool: &str, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"])
        .arg(pg_bin(tool))
        .args(args);
    c
}

/// A Postgres cluster in a temporary folder: stopped (immediately) and removed on drop.
pub struct PgCluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// `initdb` into `dir` (trust authentication, user `postgres`).
    pub fn init(dir: &Path) {
        run_ok(
            &mut as_postgres(
                "initdb",
                &[
                    "-D",
                    &dir.display().to_string(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
    }

    /// Starts the cluster in `dir` on `port`, ready to stream to standbys.
    pub fn start(dir: PathBuf, port: u16) -> PgCluster {
        Self::start_with(dir, port, "")
    }

    /// [`PgCluster::start`] with more server options (`-c name=value …`).
    pub fn start_with(dir: PathBuf, port: u16, extra: &str) -> PgCluster {
        let cluster = PgCluster { dir, port };
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c wal_level=replica -c max_wal_senders=4 -c max_replication_slots=4 \
             -c hot_standby=on -c wal_receiver_status_interval=1s -c fsync=off {extra}",
            cluster.dir.parent().unwrap().display()
        );
        let log = cluster.dir.with_extension("log");
        run_ok(
            &mut as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    &cluster.dir.display().to_string(),
                    "-o",
                    &opts,
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            &format!(
                "pg_ctl start ({})",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        );
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn stop(&self) {
        let _ = as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.dir.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary folder the `postgres` user owns, removed on drop (after the clusters in it
/// stop: declare it first).
pub fn postgres_owned_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pulse-pg-")
        .tempdir()
        .unwrap();
    run_ok(
        Command::new("chown").args(["postgres:postgres", &dir.path().display().to_string()]),
        "chown the test's Postgres folder",
    );
    dir
}
