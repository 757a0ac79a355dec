//! Helpers shared by the integration tests, one module per job: the binary under test
//! ([`exporter`]), reading its scrapes ([`scrape`]), making sources fail ([`faults`]), the real
//! services ([`services`]), removing a test's data however it ends ([`cleanup`]) and the
//! bundle's files ([`bundle`]), and a Stripe-shaped server ([`stripe`]), helper processes such as Prometheus ([`prometheus`]), promtool rule tests narrowed to what their cases read ([`rule_tests`]), a headless browser ([`browser`]), a private CA ([`tls`]), Postgres clusters a test owns ([`pgcluster`]), the servers of the version matrix ([`matrix`]) and tests that read as a config and a table of expected samples ([`scenario`]). Everything is re-exported, so a test writes `use common::*;`.
//!
//! This file is the library of the crate `pulse-test-support` (tests/support/Cargo.toml), built
//! once for every test binary; each test file imports it as `use pulse_test_support as common;`.
// Not every helper or import is used by some test.
#![allow(dead_code, unused_imports)]
// The helpers are used by the tests only; no caller needs Send bounds spelled out.
#![allow(async_fn_in_trait)]

pub mod browser;
pub mod bundle;
pub mod cleanup;
pub mod exporter;
pub mod faults;
pub mod matrix;
pub mod pgcluster;
pub mod prometheus;
pub mod rule_tests;
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
pub use rule_tests::*;
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

/// A loopback port nothing listens on for as long as the test process runs: a socket bound
/// to it and never listening holds it, so a connection is refused at once, and no server a
/// test beside starts can take it (a port from [`free_port`] can be taken meanwhile; seen:
/// a "down" Redis source answered by another test's server, failing with `decode`). Each
/// call holds a port of its own.
pub fn closed_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());
    // Without SO_REUSEADDR (tokio's TcpSocket does not set it), no other socket may bind it.
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("a loopback port to hold");
    let port = socket.local_addr().unwrap().port();
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(socket);
    port
}

/// A loopback port free now, for a server started on it at once.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback port below the kernel's ephemeral range, for a server that binds it
/// seconds after it is chosen (a RabbitMQ node boots Erlang first): a port from
/// [`free_port`] is in that range, where any outgoing connection of a test running beside it
/// may take it meanwhile (seen in CI: the management listener failed with `eaddrinuse`).
/// Each test process walks its own stretch, so two processes rarely meet, and a port that is
/// taken is skipped.
pub fn listen_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let lowest_ephemeral: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (first, span) = (10_000, lowest_ephemeral.saturating_sub(10_000).max(1));
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let port = first + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port between {first} and {lowest_ephemeral}")
}

/// The exporter's binary, which cargo builds before any integration test runs. A test runs
/// from `target/<profile>/deps/`, the binary sits one folder up; this crate is not an
/// integration test itself, so cargo's `CARGO_BIN_EXE_pulse-exporter` is not set for it.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let test = std::env::current_exe().expect("the running test's own path");
        let bin = test
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("pulse-exporter"))
            .filter(|bin| bin.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no pulse-exporter beside {}: run the tests with cargo test",
                    test.display()
                )
            });
        bin.to_string_lossy().into_owned()
    })
}

/// The repository's root, for the files the tests read (rules, dashboards, examples).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
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
