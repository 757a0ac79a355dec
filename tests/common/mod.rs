//! Helpers shared by the integration tests, one module per job: the binary under test
//! ([`exporter`]), reading its scrapes ([`scrape`]), making sources fail ([`faults`]), the real
//! services ([`services`]), removing a test's data however it ends ([`cleanup`]) and the
//! bundle's files ([`bundle`]), and a Stripe-shaped server ([`stripe`]), helper processes such as Prometheus ([`prometheus`]), a headless browser ([`browser`]), a private CA ([`tls`]), Postgres clusters a test owns ([`pgcluster`]), the servers of the version matrix ([`matrix`]) and tests that read as a config and a table of expected samples ([`scenario`]). Everything is re-exported, so a test writes `use common::*;`.
// Each test binary uses a part of the helpers and of their re-exports.
#![allow(dead_code, unused_imports)]
// The helpers are used by tests in one crate only; no caller needs Send bounds spelled out.
#![allow(async_fn_in_trait)]

pub mod browser;
pub mod bundle;
pub mod cleanup;
pub mod exporter;
pub mod faults;
pub mod matrix;
pub mod pgcluster;
pub mod prometheus;
pub mod scenario;
pub mod scrape;
pub mod services;
pub mod stripe;
pub mod tls;

pub use browser::*;
pub use bundle::*;
pub use cleanup::*;
pub use exporter::*;
pub use faults::*;
pub use matrix::*;
pub use pgcluster::*;
pub use prometheus::*;
pub use scenario::*;
pub use scrape::*;
pub use services::*;
pub use stripe::*;
pub use tls::*;

use std::path::{Path, PathBuf};

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

pub fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Resident memory of `pid` in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

/// The current unix time in whole seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs `cmd`, asserts it succeeds (its output in the failure) and returns its stdout.
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
