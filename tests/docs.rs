//! The README and the guides in docs/ run as written: every shell block is run against the
//! real services (or named, with its reason, as one that cannot run here), every file block is
//! written where the commands expect it, and every output block shown is what the command
//! before it prints. A command that goes stale fails here.
//!
//! Fenced blocks say how they are run by the words after their language:
//!
//! - ```` ```sh ````: run with `bash -euo pipefail`; it must exit 0 within five minutes.
//! - ```` ```sh server ````: started in the background and kept running until the file's
//!   blocks are done; the next block runs once `/` on the documented port shows no PENDING
//!   check (every source and check ran once), as a reader who waits a few seconds sees it.
//! - ```` ```sh background ````: started in the background, not waited for.
//! - ```` ```sh cleanup ````: run after the file's other blocks, even when one failed.
//! - ```` ```sh not-run ````: each command's first word must be in [`NOT_RUN`], which says why
//!   it cannot run here; the block must parse (`bash -n`) and every repository path it names
//!   must exist.
//! - ```` ```text output ````: what the `sh` block before it prints. Every line must appear in
//!   that output, with measured durations, times and ports masked; `‹n›` marks a count that
//!   depends on the server the guide runs against. Every other number must be exact.
//! - ```` ```text output all ````: the same, and every line printed (log lines aside) must
//!   be one of the block's: a table that gains a row fails.
//! - ```` ```yaml file=NAME ````: written as NAME in the directory the commands run in.
//!
//! The commands run in a scratch directory that links every top-level entry of the
//! repository, so what they write stays out of the checkout; `cargo run --release --` runs the
//! binary under test, and the documented port 7857 becomes a free one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Commands a guide may show but this test cannot run, by first word, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("scripts/test", "it is what runs this test"),
    (
        "scripts/bench-capacity",
        "a benchmark: minutes of load, figures for docs/scaling.md",
    ),
    (
        "scripts/bench-statements",
        "a benchmark: minutes of load against postgres_exporter, figures for docs/scaling.md",
    ),
    (
        "scripts/bench-load",
        "a benchmark: 200 connections for minutes beside postgres_exporter, figures for docs/scaling.md",
    ),
    (
        "scripts/bench-footprint",
        "a benchmark: the peers' Debian packages side by side, figures for docs/scaling.md",
    ),
    (
        "scripts/order-symbols",
        "needs root (it turns the disk's readahead off for its run) and a release build",
    ),
    (
        "PULSE_LINK_MAP=$PWD/target/release/pulse-exporter.map",
        "a release build (minutes of LTO) for scripts/order-symbols",
    ),
    (
        "docker",
        "no Docker engine runs here (docker-compose config -q is tested in tests/bundle.rs)",
    ),
    (
        "kubectl",
        "no cluster runs here (tests/kubernetes.rs renders and validates the overlays)",
    ),
    ("helm", "no cluster runs here"),
    (
        "kustomize",
        "it edits the overlay for an image pushed to your registry",
    ),
    ("cd", "only before a command that cannot run here"),
    (
        "IMAGE=registry.example.com/pulse-exporter:1.0",
        "names the image for the commands after it",
    ),
    ("cargo", "only `cargo build --release` before a benchmark"),
];

/// One fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// The words after the fence: language and mode.
    info: Vec<String>,
    body: String,
    /// Its first line in the file, for messages.
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.split_whitespace().map(str::to_owned).collect(),
                    body: String::new(),
                    line: n + 1,
                })
            }
            (Some(_), Some("")) => out.push(open.take().unwrap()),
            (Some(b), _) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fence is not closed");
    out
}

/// What varies from run to run masked, blanks collapsed: durations (`22.7ms`, `3s`), times
/// (RFC 3339, Unix seconds) and ports become `#`. Every other number must be what the binary
/// prints, so a count a guide shows that the binary no longer prints fails the test.
fn masked(text: &str) -> String {
    static VARIES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(concat!(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)?",
            r"|\b1[0-9]{9}(\.[0-9]+)?\b",
            // Measured durations only: a `for: 15m` or `interval: 1m` is what the binary
            // decides, and a change of it must fail.
            r"|\b[0-9]+\.[0-9]+(ns|µs|us|ms|s)\b|\b[0-9]+(ns|µs|us|ms)\b",
            r"|(?P<host>127\.0\.0\.1|localhost|\]):[0-9]+",
        ))
        .unwrap()
    });
    VARIES
        .replace_all(text, |c: &regex::Captures<'_>| match c.name("host") {
            Some(host) => format!("{}:#", host.as_str()),
            None => "#".to_owned(),
        })
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the masked `printed` holds the masked output line `line`, where `‹n›` in the
/// line stands for any number: the mark a guide puts on a count that depends on the server
/// it runs against (the series of a health probe), never on what the exporter decides.
fn prints(printed: &str, line: &str) -> bool {
    // Whole words: `1` is not what a line printing `1.0` shows.
    let pattern = line_pattern(line);
    regex::Regex::new(&format!(r"(^|\s){pattern}($|\s)"))
        .unwrap()
        .is_match(printed)
}

/// The masked output line `line` as a regex, `‹n›` standing for any number.
fn line_pattern(line: &str) -> String {
    regex::escape(&masked(line)).replace("‹n›", r"[0-9]+(\.[0-9]+)?")
}

/// Whether one printed line is, masked, the whole output line `line` (`‹n›` any number).
fn is_line(printed: &str, line: &str) -> bool {
    let pattern = line_pattern(line);
    regex::Regex::new(&format!("^{pattern}$"))
        .unwrap()
        .is_match(&masked(printed))
}

/// Background processes of one file and its cleanup blocks, stopped and run however the
/// file's test ends.
struct Session {
    dir: tempfile::TempDir,
    path_var: String,
    port: u16,
    children: Vec<Child>,
    /// The index in `children` of the server started last, while it runs.
    server: Option<usize>,
    cleanup: Vec<(usize, String)>,
    file: String,
}

impl Session {
    fn new(file: &str) -> Session {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(root).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).unwrap();
        }
        // `cargo run --release -- ARGS` is the binary under test: the guides name the command
        // a reader types, the test runs what it builds. Any other cargo command (`cargo test
        // --test redis` in the development guide) runs in the repository itself, whose build
        // it shares, without the variables cargo set for this test (they would make it build
        // everything anew). CARGO_INCREMENTAL and RUSTC_WORKSPACE_WRAPPER stay: cargo sets
        // neither, and each gives a build artifacts of their own, so that without the ones
        // scripts/test builds with (no incremental caches, clippy-driver as the wrapper) this
        // command built the library and tests/redis.rs again inside the test (seen: this file
        // took 61 CPU-seconds on a clean clone, 12 with those builds there).
        let bin = dir.path().join(".docs-bin");
        std::fs::create_dir(&bin).unwrap();
        let shim = bin.join("cargo");
        std::fs::write(
            &shim,
            format!(
                "#!/usr/bin/env bash\nif [ \"$1 $2 $3\" = 'run --release --' ]; then shift 3; exec {:?} \"$@\"; fi\nfor v in $(compgen -e | grep -E '^(CARGO_|OUT_DIR$|RUST)' | grep -vx -e CARGO_HOME -e CARGO_INCREMENTAL -e RUSTC_WORKSPACE_WRAPPER); do unset \"$v\"; done\ncd {:?} && exec {:?} \"$@\"\n",
                env!("CARGO_BIN_EXE_pulse-exporter"),
                root,
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&shim).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&shim, perms).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Session {
            path_var: format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
            dir,
            port,
            children: Vec::new(),
            server: None,
            cleanup: Vec::new(),
            file: file.to_owned(),
        }
    }

    fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c"])
            .arg(script.replace("7857", &self.port.to_string()))
            .current_dir(self.dir.path())
            .env("PATH", &self.path_var)
            .env_remove("PULSE_LOG_LEVEL");
        cmd
    }

    /// Runs a block to its end; returns what it printed.
    fn run(&self, block: &Block) -> String {
        let out_path = self.dir.path().join(".docs-out");
        let out = std::fs::File::create(&out_path).unwrap();
        let mut child = self
            .command(&block.body)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                panic!(
                    "{}:{}: still running after 5 minutes",
                    self.file, block.line
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let printed = std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(
            status.success(),
            "{}:{} exited with {status}:\n{}\n--- it printed:\n{printed}",
            self.file,
            block.line,
            block.body
        );
        printed
    }

    /// Starts a block in its own process group, to stop it with everything it started.
    fn spawn(&mut self, block: &Block) {
        let log = std::fs::File::create(self.dir.path().join(format!(".docs-{}.log", block.line)))
            .unwrap();
        let mut cmd = self.command(&block.body);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Waits until the exporter on the port has run every source and check once.
    fn wait_served(&mut self, block: &Block) {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/", self.port);
        loop {
            let page = Command::new("curl")
                .args(["-sf", "--max-time", "2", &url])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            if let Some(page) = page {
                if !page.contains("PENDING") {
                    return;
                }
            }
            if let Some(status) = self.children.last_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(
                    self.dir.path().join(format!(".docs-{}.log", block.line)),
                )
                .unwrap_or_default();
                panic!(
                    "{}:{}: the server exited with {status}:\n{log}",
                    self.file, block.line
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{}:{}: {url} did not show every check run within 2 minutes",
                self.file,
                block.line
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Stops a block started in the background, with everything it started: SIGTERM, then
/// SIGKILL after 15 s.
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let quiet = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    quiet("-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    quiet("-KILL");
    let _ = child.wait();
}

impl Session {
    fn stop_server(&mut self) {
        if let Some(i) = self.server.take() {
            stop(&mut self.children[i]);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in &mut self.children {
            stop(child);
        }
        for (line, script) in std::mem::take(&mut self.cleanup) {
            let ok = self
                .command(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok && !std::thread::panicking() {
                panic!("{}:{line}: the cleanup block failed", self.file);
            }
        }
    }
}

/// Checks a block that cannot run here: allowed commands, valid shell, existing paths.
fn check_not_run(file: &str, block: &Block) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .args(["-n", "-c", &block.body])
        .status()
        .unwrap();
    assert!(status.success(), "{file}:{}: not valid shell", block.line);
    let joined = block.body.replace("\\\n", " ");
    for command in joined.lines().flat_map(|l| l.split("&&")) {
        let command = command.split('#').next().unwrap().trim();
        let Some(first) = command.split_whitespace().next() else {
            continue;
        };
        assert!(
            NOT_RUN.iter().any(|(word, _)| *word == first),
            "{file}:{}: `{command}` is neither run nor listed in NOT_RUN with a reason",
            block.line
        );
        for word in command.split_whitespace() {
            let word = word.trim_end_matches(['/', ';']);
            let looks_like_repo_path = ["deploy/", "scripts/", "examples/", "alerts/", "grafana/"]
                .iter()
                .any(|p| word.starts_with(p));
            if looks_like_repo_path {
                assert!(
                    root.join(word).exists(),
                    "{file}:{}: {word} does not exist",
                    block.line
                );
            }
        }
    }
}

/// Runs every block of one Markdown file, in order, as its reader would.
fn run_file(file: &str) {
    // The README and the guides write the same demo data and use the same services: one
    // file at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let mut session = Session::new(file);
    let all = blocks(&text);
    session.cleanup = all
        .iter()
        .filter(|b| b.info.first().map(String::as_str) == Some("sh"))
        .filter(|b| b.info.get(1).map(String::as_str) == Some("cleanup"))
        .map(|b| (b.line, b.body.clone()))
        .collect();
    let mut last_output: Option<String> = None;
    for block in all {
        let lang = block.info.first().map(String::as_str).unwrap_or("");
        let mode = block.info.get(1).map(String::as_str).unwrap_or("");
        assert!(
            !lang.is_empty(),
            "{file}:{}: a block without a language (sh, text, yaml, …)",
            block.line
        );
        match (lang, mode) {
            ("sh", "") => last_output = Some(session.run(&block)),
            ("sh", "server") => {
                // A reader stops the last server (Ctrl-C) before starting one on its port.
                session.stop_server();
                session.spawn(&block);
                session.server = Some(session.children.len() - 1);
                session.wait_served(&block);
                last_output = None;
            }
            ("sh", "background") => {
                session.spawn(&block);
                last_output = None;
            }
            // Registered before the first block runs, so they run however the file ends.
            ("sh", "cleanup") => {}
            ("sh", "not-run") => check_not_run(file, &block),
            ("sh", other) => panic!("{file}:{}: unknown mode `{other}`", block.line),
            ("text", "output") => {
                let printed = last_output.as_deref().unwrap_or_else(|| {
                    panic!("{file}:{}: an output block after no sh block", block.line)
                });
                let shown: Vec<&str> = block
                    .body
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                if block.info.get(2).map(String::as_str) == Some("all") {
                    // The exporter's log lines (stderr, `ts=…`) are no part of a table.
                    let table = printed
                        .lines()
                        .filter(|l| !l.trim().is_empty() && !l.starts_with("ts="));
                    for line in table {
                        assert!(
                            shown.iter().any(|s| is_line(line, s)),
                            "{file}:{}: the command prints a line the block does not show\n  {line}",
                            block.line
                        );
                    }
                }
                let printed = masked(printed);
                for line in shown {
                    assert!(
                        prints(&printed, line),
                        "{file}:{}: the command does not print\n  {line}\nIt printed:\n{printed}",
                        block.line
                    );
                }
            }
            (_, m) if m.starts_with("file=") => {
                let path: PathBuf = session.dir.path().join(&m["file=".len()..]);
                std::fs::write(&path, block.body.replace("7857", &session.port.to_string()))
                    .unwrap();
            }
            _ => {}
        }
    }
    drop(session);
}

#[test]
fn the_blocks_are_parsed_with_their_modes() {
    let b = blocks("a\n```sh server\nx --y\n```\n```text output\nok\n```\n");
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].info, ["sh", "server"]);
    assert_eq!(b[0].body, "x --y\n");
    assert_eq!(b[0].line, 2);
    assert_eq!(masked("took  12ms, 3.5s, 2 s"), "took #, #, 2 s");
    assert_eq!(masked("for: 15m, every 1h"), "for: 15m, every 1h");
    assert!(is_line(
        "app-db  health  ok  22.7ms  31",
        "app-db health ok 1.0ms ‹n›"
    ));
    assert!(!is_line(
        "app-db  health  ok  22.7ms  31 extra",
        "app-db health ok 1.0ms ‹n›"
    ));
    assert_eq!(
        masked("at 2026-11-27T03:14:32.874Z on 127.0.0.1:39211 since 1790000000.5"),
        "at # on 127.0.0.1:# since #"
    );
    assert_eq!(masked("3 sources, 6 checks"), "3 sources, 6 checks");
    assert!(prints(
        &masked("app-db health ok 22.7ms 31"),
        "app-db health ok 1.0ms ‹n›"
    ));
    assert!(!prints(
        &masked("valid (3 sources, 6 checks)"),
        "valid (3 sources, 3 checks)"
    ));
    assert!(!prints(
        &masked("app_users{plan=\"pro\"} 1.0"),
        "app_users{plan=\"pro\"} 1"
    ));
}

#[test]
fn the_readme_runs_as_written() {
    run_file("README.md");
}

#[test]
fn the_guides_run_as_written() {
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
            .unwrap()
            .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".md"))
            .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        run_file(&file);
    }
}

/// The exporter config a YAML block of a guide holds, if it holds one: a whole config (its
/// top-level keys are a config's), or the Helm chart's values with one under `config:`.
fn config_of(body: &str) -> Option<String> {
    const TOP: &[&str] = &[
        "global",
        "sources",
        "templates",
        "jobs",
        "job_keys",
        "job_store",
    ];
    let value: serde_yaml::Value = serde_yaml::from_str(body).ok()?;
    let map = value.as_mapping()?;
    let is_config = |m: &serde_yaml::Mapping| {
        !m.is_empty()
            && m.keys()
                .all(|k| k.as_str().is_some_and(|k| TOP.contains(&k)))
    };
    if is_config(map) {
        return Some(body.to_owned());
    }
    let inner = map.get("config")?.as_mapping()?;
    is_config(inner).then(|| serde_yaml::to_string(inner).unwrap())
}

/// Every config the README and the guides show loads (`check`, its secrets stood in for) and
/// generates its rules, dashboards and scrape config without its secrets, as the guides tell
/// a reader to do: a config the generators refuse fails here, however it was written.
#[test]
fn every_config_in_the_guides_loads_and_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec!["README.md".to_owned()];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    files.sort();
    let bin = env!("CARGO_BIN_EXE_pulse-exporter");
    let dir = tempfile::tempdir().unwrap();
    let env_ref = regex::Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}").unwrap();
    let file_ref = regex::Regex::new(r"\$\{file:([^}]+)\}").unwrap();
    let mut seen = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for block in blocks(&text) {
            if block.info.first().map(String::as_str) != Some("yaml") {
                continue;
            }
            let Some(config) = config_of(&block.body) else {
                continue;
            };
            let at = format!("{file}:{}", block.line);
            seen.push(at.clone());
            let path = dir.path().join(format!("config-{}.yml", seen.len()));
            let run = |args: &[&str], text: &str, envs: &[(String, String)]| {
                std::fs::write(&path, text).unwrap();
                let out = Command::new(bin)
                    .arg("--config.file")
                    .arg(&path)
                    .args(args)
                    .envs(envs.iter().map(|(k, v)| (k, v)))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{at}: `pulse-exporter {}` refuses the guide's config:\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            // Without any secret: the generators read none.
            run(&["rules"], &config, &[]);
            run(&["dashboards"], &config, &[]);
            run(
                &["scrape-config", "--exporter", "pulse-exporter:7857"],
                &config,
                &[],
            );
            // With each secret stood in for: a distinct value per variable, a file per path.
            let envs: Vec<(String, String)> = env_ref
                .captures_iter(&config)
                .map(|c| (c[1].to_owned(), format!("docs-{}-0123456789", &c[1])))
                .collect();
            let mut resolved = config.clone();
            for (i, c) in file_ref.captures_iter(&config).enumerate() {
                let stand_in = dir.path().join(format!("secret-{}-{i}", seen.len()));
                std::fs::write(&stand_in, format!("docs-secret-{i}-0123456789")).unwrap();
                resolved = resolved.replace(&c[0], &format!("${{file:{}}}", stand_in.display()));
            }
            run(&["check"], &resolved, &envs);
        }
    }
    for must in ["README.md", "docs/jobs.md", "docs/configuration.md"] {
        assert!(
            seen.iter().any(|s| s.starts_with(&format!("{must}:"))),
            "no config found in {must}: {seen:?}"
        );
    }
}

/// Every log event the code emits (`event = "…"`) is listed in docs/running.md, and the
/// list names none that is gone.
#[test]
fn every_log_event_is_listed_in_the_running_guide() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let event = regex::Regex::new(r#"event = "([a-z_.]+)""#).unwrap();
    let mut emitted = std::collections::BTreeSet::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                emitted.extend(event.captures_iter(&text).map(|c| c[1].to_owned()));
            }
        }
    }
    assert!(emitted.contains("source.degraded"), "{emitted:?}");
    let guide = std::fs::read_to_string(root.join("docs/running.md")).unwrap();
    let section = guide
        .split("## Log events")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/running.md has a `## Log events` section");
    for e in &emitted {
        assert!(
            section.contains(&format!("`{e}`")),
            "docs/running.md does not list the log event `{e}`"
        );
    }
    let listed = regex::Regex::new(r"^\| `([a-z_.]+)`(?:, `([a-z_.]+)`)?").unwrap();
    for line in section.lines() {
        if let Some(c) = listed.captures(line) {
            for name in c.iter().skip(1).flatten() {
                assert!(
                    emitted.contains(name.as_str()),
                    "docs/running.md lists `{}`, which no code logs",
                    name.as_str()
                );
            }
        }
    }
}
