//! Every generated file the repository commits is what its generator writes today. The
//! generators run in a copy of the checkout, each writing where it writes in the checkout, and
//! every file of the copy is compared with the checkout's: a difference names the file and the
//! row of docs/bundle.md ("Generated files") that generates it. With `PULSE_UPDATE_DOCS` set
//! (`scripts/generate`) what differs is copied back into the checkout instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::run_cli;

/// The generators, in the order they run: the promtool cases and the Kubernetes copies are
/// made from the rule files and dashboards the first two write. Each name is the second
/// column of a row.
const GENERATORS: [&str; 9] = [
    "src/generate/bundle.rs",
    "pulse-exporter bundle-dashboards",
    "scripts/business-rhythm-tests.py",
    "scripts/query-latency-tests.py",
    "scripts/kubernetes.py",
    "src/reference/config.rs",
    "src/reference/metrics.rs",
    "src/reference/schema.rs",
    "pulse-exporter scrape-config --format operator",
];

/// The checkout this test belongs to.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row of the table: the paths it names (a folder ends in `/`) and what generates them.
#[derive(Debug)]
struct Row {
    paths: Vec<String>,
    generator: String,
}

impl Row {
    fn covers(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|p| p == path || (p.ends_with('/') && path.starts_with(p.as_str())))
    }
}

/// The rows of docs/bundle.md's "Generated files" table.
fn table() -> Vec<Row> {
    let doc = std::fs::read_to_string(root().join("docs/bundle.md")).unwrap();
    let section = doc
        .split("\n## Generated files\n")
        .nth(1)
        .expect("docs/bundle.md has a \"Generated files\" section");
    let section = section.split("\n## ").next().unwrap();
    let quoted = regex::Regex::new(r"`([^`]+)`").unwrap();
    let aside = regex::Regex::new(r"\([^)]*\)").unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // A note in parentheses says which part of a file is generated.
            let files = aside.replace_all(cells[1], "");
            let paths = quoted
                .captures_iter(&files)
                .map(|c| c[1].to_owned())
                .collect();
            let generator = quoted
                .captures(cells[2])
                .map(|c| c[1].to_owned())
                .unwrap_or_else(|| panic!("docs/bundle.md: no generator in {line}"));
            Row { paths, generator }
        })
        .collect()
}

/// The checkout's files as git sees them (tracked, and new ones not ignored), relative.
fn checkout_files() -> Vec<String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()
        .expect("git");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|p| !p.is_empty() && root().join(p).is_file())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, base, out);
        } else {
            let rel = path.strip_prefix(base).unwrap();
            out.push(rel.to_str().unwrap().to_owned());
        }
    }
}

/// Runs a generator script in the copy, failing with its output.
fn script(copy: &Path, name: &str) {
    let out = Command::new("python3")
        .arg(copy.join(name))
        .current_dir(copy)
        .output()
        .expect("python3 with PyYAML (scripts/test installs them)");
    assert!(
        out.status.success(),
        "{name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `generator` in the copy.
fn generate(copy: &Path, generator: &str) {
    let write = |path: &str, text: String| std::fs::write(copy.join(path), text).unwrap();
    match generator {
        "src/generate/bundle.rs" => {
            use pulse_exporter::generate::bundle::{Selection, RULE_FILES};
            for file in RULE_FILES {
                write(file.path, file.render(&Selection::default()));
            }
        }
        "pulse-exporter bundle-dashboards" => {
            // Through the command, so that the command is what the bundle is checked against.
            let dir = copy.join(pulse_exporter::generate::dashboards::bundle::DIR);
            let (code, _, err) = run_cli(
                &["bundle-dashboards", "--output.dir", dir.to_str().unwrap()],
                &[],
            );
            assert_eq!(code, 0, "bundle-dashboards: {err}");
        }
        "src/reference/config.rs" => write(
            "docs/config.md",
            pulse_exporter::reference::config::render(),
        ),
        "src/reference/metrics.rs" => write(
            "docs/metrics.md",
            pulse_exporter::reference::metrics::render(),
        ),
        "src/reference/schema.rs" => {
            let path = "charts/pulse-exporter/values.schema.json";
            let committed: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(copy.join(path)).unwrap()).unwrap();
            let schema = pulse_exporter::reference::schema::chart_values_schema(&committed);
            write(
                path,
                format!("{}\n", serde_json::to_string_pretty(&schema).unwrap()),
            );
        }
        "pulse-exporter scrape-config --format operator" => {
            // The sharded overlay's three replicas. A command that writes no secret reads the
            // config with its secret references unresolved.
            let config = copy.join("deploy/kubernetes/overlays/fleet/config.yml");
            let mut args = vec![
                "scrape-config".to_owned(),
                "--format".into(),
                "operator".into(),
                "--config.file".into(),
                config.display().to_string(),
                "--targets".into(),
                "tenant-db=http://tenant-registry.platform.svc/sd/postgres".into(),
            ];
            for i in 0..3 {
                args.push("--exporter".into());
                args.push(format!(
                    "pulse-exporter-{i}.pulse-exporter.monitoring.svc:7857"
                ));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = run_cli(&args, &[]);
            assert_eq!(code, 0, "scrape-config: {err}");
            write("deploy/kubernetes/overlays/fleet/scrapeconfig.yaml", out);
        }
        script_name => script(copy, script_name),
    }
}

#[test]
fn every_generated_file_is_what_its_generator_writes() {
    let rows = table();
    let named: BTreeSet<&str> = rows.iter().map(|r| r.generator.as_str()).collect();
    assert_eq!(
        named,
        GENERATORS.into_iter().collect(),
        "docs/bundle.md's \"Generated files\" names the generators this test runs"
    );

    let files = checkout_files();
    let copy = tempfile::tempdir().unwrap();
    for f in &files {
        let to = copy.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(f), &to).unwrap();
    }
    for generator in GENERATORS {
        generate(copy.path(), generator);
    }

    // What each row names exists, and every file that says it is generated is in a row.
    for row in &rows {
        for p in &row.paths {
            assert!(
                files
                    .iter()
                    .any(|f| f == p || (p.ends_with('/') && f.starts_with(p.as_str()))),
                "docs/bundle.md lists {p} as generated, and there is no such file"
            );
        }
    }
    for f in &files {
        if f.starts_with("src/") || f.starts_with("tests/") || f.starts_with("scripts/") {
            continue; // the generators, and tests that write such headers
        }
        let head: Vec<u8> = std::fs::read(root().join(f))
            .unwrap()
            .into_iter()
            .take(400)
            .collect();
        let head = String::from_utf8_lossy(&head);
        if head.contains("Generated by") || head.contains("Generated from") {
            assert!(
                rows.iter().any(|r| r.covers(f)),
                "{f} says it is generated: list it in docs/bundle.md's \"Generated files\""
            );
        }
    }

    let mut written = Vec::new();
    walk(copy.path(), copy.path(), &mut written);
    written.sort();
    let update = std::env::var_os("PULSE_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for f in &written {
        let new = std::fs::read(copy.path().join(f)).unwrap();
        if std::fs::read(root().join(f)).ok().as_deref() == Some(&new[..]) {
            continue;
        }
        let Some(row) = rows.iter().find(|r| r.covers(f)) else {
            panic!("a generator wrote {f}, which docs/bundle.md does not list as generated");
        };
        if update {
            std::fs::write(root().join(f), &new).unwrap();
        } else {
            stale.push(format!("{f} (generated by {})", row.generator));
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files, rewrite them with scripts/generate and commit them:\n  {}",
        stale.join("\n  ")
    );
}
