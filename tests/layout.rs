//! The code's shape, as `src/lib.rs` states it: no import circle anywhere in `src/`, and each
//! top-level module imports only modules listed above it in the module map.
//!
//! Imports are read from the source text outside `#[cfg(test)]` (tests may reach anywhere):
//! every `crate::a::b…` path, and `super::…` paths, resolved to the deepest module file that
//! exists. A module and its own folder's modules (a parent declaring its children) are one
//! unit here; a circle between siblings, or between folders, is not allowed.
//!
//! And the quick loop's table (docs/development.md) of the services each test file needs,
//! the six files at the top of `src/`, and functions that fit on a screen (80 lines). And the
//! Dockerfile's build stage copies what cargo loads and what lays the code out (no Docker
//! engine here to build it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every library module (by path, `a::b`) and its file; the binary (`main.rs`, `cli/`, `demo/`) aside.
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    rust_files(root)
        .into_iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            let name = parts.join("::");
            let binary = name == "main"
                || ["demo", "cli"]
                    .iter()
                    .any(|b| name == *b || name.starts_with(&format!("{b}::")));
            (!binary).then_some((name, f))
        })
        .collect()
}

/// The modules `name` imports outside its tests.
fn imports(name: &str, file: &Path, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len())
            .rev()
            .map(|i| parts[..i].join("::"))
            .find(|candidate| known.contains_key(candidate))
    };
    // `super` of `a::b` (a file `a/b.rs`, or a folder's `a/b/mod.rs`) is `a`.
    let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
    let mut out = BTreeSet::new();
    let braces = regex::Regex::new(r"crate::((?:[a-z_0-9]+::)*)\{([^}]*)\}").unwrap();
    for c in braces.captures_iter(&code) {
        for item in c[2].split(',') {
            let item = item.trim().split([' ', '{']).next().unwrap_or_default();
            if let Some(m) = resolve(&format!("{}{}", &c[1], item.trim_end_matches(':'))) {
                out.insert(m);
            }
        }
    }
    let plain = regex::Regex::new(r"\b(crate|super)::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)").unwrap();
    for c in plain.captures_iter(&code) {
        let path = match &c[1] {
            "super" if !parent.is_empty() => format!("{parent}::{}", &c[2]),
            _ => c[2].to_owned(),
        };
        if let Some(m) = resolve(&path) {
            out.insert(m);
        }
    }
    out.remove(name);
    out
}

/// Whether `a` and `b` are one unit: the same module, or one inside the other's folder.
fn nested(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// The edges between modules cut to their first `depth` path segments.
fn graph(
    edges: &BTreeMap<String, BTreeSet<String>>,
    depth: usize,
) -> BTreeMap<String, BTreeSet<String>> {
    let cut = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in edges {
        for b in bs {
            let (ca, cb) = (cut(a), cut(b));
            if !nested(&ca, &cb) {
                out.entry(ca).or_default().insert(cb);
            }
        }
    }
    out
}

/// A circle of `graph`, if any, as the modules along it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&root);
    known
        .iter()
        .map(|(name, file)| (name.clone(), imports(name, file, &known)))
        .collect()
}

#[test]
fn no_import_circle_between_modules_or_folders() {
    let edges = edges();
    assert!(
        edges.contains_key("sources::postgres") && edges["serve::http"].contains("runtime::app"),
        "the import scan found too little: {edges:?}"
    );
    for depth in [1, 2, 3] {
        if let Some(found) = circle(&graph(&edges, depth)) {
            panic!("an import circle: {}", found.join(" -> "));
        }
    }
}

#[test]
fn each_top_level_module_imports_only_those_above_it_in_the_map() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let row = regex::Regex::new(r"(?m)^//! \| \[`([a-z_]+)`\](?:\([a-z@_]+\))? \|").unwrap();
    let order: Vec<String> = row.captures_iter(&lib).map(|c| c[1].to_owned()).collect();
    let declared: BTreeSet<String> = regex::Regex::new(r"(?m)^pub mod ([a-z_]+);")
        .unwrap()
        .captures_iter(&lib)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(
        order.iter().cloned().collect::<BTreeSet<_>>(),
        declared,
        "the module map of src/lib.rs lists every module, once"
    );
    assert_eq!(order.len(), declared.len(), "a module listed twice");
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap();
    for (a, bs) in graph(&edges(), 1) {
        for b in bs {
            assert!(
                rank(&b) < rank(&a),
                "{a} imports {b}, which the module map of src/lib.rs lists below it"
            );
        }
    }
}

#[test]
fn the_scan_finds_a_circle_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b::x"]),
        ("b::x", vec!["c"]),
        ("c", vec!["a"]),
        ("d::y", vec!["d"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let found = circle(&graph(&edges, 1)).expect("a -> b -> c -> a");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4, "{found:?}");
    // A module and its folder's children are one unit.
    assert!(circle(&graph(&edges, 2)).is_some());
    let parent_child: BTreeMap<String, BTreeSet<String>> =
        [("d::y".to_owned(), BTreeSet::from(["d".to_owned()]))].into();
    assert!(circle(&graph(&parent_child, 2)).is_none());
}

/// docs/development.md says what a new kind touches outside its own folder; this keeps it
/// true. Every file of `src/` (the command line's too, tests included; the demo aside) that names a kind's module
/// (`postgres::`, `sources::postgres`) outside `src/sources/<kind>/` must be one the guide's
/// "Adding a source kind" section names, and each file it names must be such a file.
#[test]
fn what_a_new_kind_touches_is_what_the_guide_says() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(repo.join("docs/development.md")).unwrap();
    let section = guide
        .split("## Adding a source kind")
        .nth(1)
        .expect("docs/development.md has an \"Adding a source kind\" section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let files = rust_files(&repo.join("src"));
    let mut touched = BTreeSet::new();
    for entry in pulse_exporter::sources::registry::KINDS {
        let own = repo.join("src/sources").join(entry.name);
        // The kind's module by its path (`sources::redis`, `super::redis` from a sibling, or
        // a `sources::{…, redis}` list), never the crate of the same name (`redis::Client`,
        // `sqlx::postgres`), which a module such as the job store may use as it is.
        let name = entry.name;
        let names = regex::Regex::new(&format!(
            r"\b(?:sources|super)::(?:{name}\b|\{{[^}}]*\b{name}\b[^}}]*\}})"
        ))
        .unwrap();
        for file in &files {
            // The demo's own `postgres` module writes demo data; it is not the kind.
            if file.starts_with(&own) || file.starts_with(repo.join("src/demo")) {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            if names.is_match(&code) {
                let rel = file.strip_prefix(repo).unwrap().display().to_string();
                touched.insert(rel);
            }
        }
    }
    assert!(
        touched.contains("src/sources/registry.rs"),
        "the scan found too little: {touched:?}"
    );
    for file in &touched {
        assert!(
            section.contains(&format!("`{file}`")),
            "{file} names a kind's module, but docs/development.md (\"Adding a source kind\") \
             does not say a new kind touches it: reach the kind through the registry instead, \
             or say so in the guide"
        );
    }
    let named = regex::Regex::new(r"`(src/[a-z_/]+\.rs)`").unwrap();
    for c in named.captures_iter(section) {
        let file = &c[1];
        assert!(
            file.starts_with("src/sources/foo")
                || file.starts_with("src/sources/echo")
                || touched.contains(file),
            "docs/development.md says a new kind touches {file}, which names no kind"
        );
    }
}

/// Each kind is a cargo feature of its name, on by default, and the registry's table of every
/// kind (what a build without one names in its error) is that list: a kind added without its
/// feature, or a feature without its kind, fails here. The one other default feature is
/// `jobs`, the ping endpoint and the job tracker.
#[test]
fn every_kind_is_a_default_feature_of_its_name() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    let default = manifest
        .lines()
        .find_map(|l| l.strip_prefix("default = ["))
        .expect("Cargo.toml has a [features] default list");
    let mut defaults: Vec<&str> = default
        .trim_end_matches(']')
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect();
    defaults.sort_unstable();
    let jobs = defaults.iter().position(|f| *f == "jobs");
    defaults.remove(jobs.expect("`jobs` is a default feature"));
    assert!(
        manifest.contains("\njobs = ["),
        "Cargo.toml has no feature jobs"
    );
    let all = pulse_exporter::sources::registry::ALL_KINDS;
    assert_eq!(
        defaults, all,
        "Cargo.toml's default features are the kinds and jobs"
    );
    let built: Vec<&str> = pulse_exporter::sources::registry::KINDS
        .iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(built, all, "the default build has every kind");
    for kind in all {
        assert!(
            manifest.contains(&format!("\n{kind} = [")),
            "Cargo.toml has no feature {kind}"
        );
        let module = std::fs::read_to_string(repo.join("src/sources/mod.rs")).unwrap();
        assert!(
            module.contains(&format!("#[cfg(feature = \"{kind}\")]\npub mod {kind};")),
            "src/sources/mod.rs builds `{kind}` under its feature"
        );
    }
}

/// Each row of the table of test file to services in docs/development.md: the files named in
/// backticks in its first column, the services in backticks in its second (`all` or `none`
/// when it names none).
fn service_table() -> Vec<(Vec<String>, Vec<String>)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/development.md"))
            .unwrap();
    let ticked = regex::Regex::new(r"`([a-z0-9_-]+)`").unwrap();
    let names = |cell: &str| -> Vec<String> {
        ticked
            .captures_iter(cell)
            .map(|c| c[1].to_owned())
            .collect()
    };
    let start = doc
        .find("| test file | services |")
        .expect("the table of test file to services");
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            let services = match cells[2].trim() {
                c if c.starts_with("all") => vec!["all".to_owned()],
                c if c.starts_with("none") => Vec::new(),
                c => names(c),
            };
            (names(cells[1]), services)
        })
        .collect()
}

/// `scripts/test NAME…` brings up what the table gives the files named, so the table must
/// hold every test file once, name only services `scripts/services` knows, and give a file
/// the services whose helpers it uses: a file missing from it, or missing a service, would
/// fail in the quick loop while the full run passes.
#[test]
fn the_table_of_test_file_to_services_holds_every_file_and_what_it_uses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::process::Command::new("bash")
        .arg(root.join("scripts/services"))
        .arg("list")
        .output()
        .unwrap();
    let known: BTreeSet<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        known.contains("postgres") && known.contains("matrix"),
        "{known:?}"
    );
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (files, services) in service_table() {
        for s in &services {
            assert!(
                s == "all" || known.contains(s),
                "no service {s} in scripts/services"
            );
        }
        for f in files {
            assert!(
                rows.insert(f.clone(), services.clone()).is_none(),
                "{f} is on two rows"
            );
        }
    }
    let mut files: BTreeSet<String> = ["lib", "doc"].iter().map(|s| s.to_string()).collect();
    for entry in std::fs::read_dir(root.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.insert(path.file_stem().unwrap().to_str().unwrap().to_owned());
        }
    }
    assert_eq!(rows.keys().cloned().collect::<BTreeSet<_>>(), files);
    // What a file uses, by the helpers it calls.
    let uses: [(&str, &[&str]); 8] = [
        ("postgres", &["PG_URL", "pg()", "pg_database(", "PgCluster"]),
        ("redis", &["REDIS_URL", "redis()"]),
        ("rabbitmq", &["RABBIT_AMQP", "RABBIT_API", "RabbitVhost"]),
        ("mongodb", &["MONGO_URL", "mongo()"]),
        ("s3", &["MOTO_URL", "S3S_URL", "moto_bucket("]),
        (
            "prometheus",
            &["Scraper::start", "Command::new(\"promtool\")", "\"amtool\""],
        ),
        ("matrix", &["servers(\""]),
        ("chromium", &["screenshot("]),
    ];
    for (file, services) in &rows {
        // This file names the helpers, and uses none of them.
        let helpers_named_not_used = file == "layout";
        if services.iter().any(|s| s == "all")
            || ["lib", "doc"].contains(&file.as_str())
            || helpers_named_not_used
        {
            continue;
        }
        let mut text = std::fs::read_to_string(root.join(format!("tests/{file}.rs"))).unwrap();
        // A test file's own modules (tests/bundle/, tests/kubernetes/) are part of it.
        let own = root.join("tests").join(file);
        let subs = if own.is_dir() {
            rust_files(&own)
        } else {
            Vec::new()
        };
        for sub in subs {
            text += &std::fs::read_to_string(sub).unwrap();
        }
        for (service, markers) in uses {
            if let Some(m) = markers.iter().find(|m| text.contains(*m)) {
                assert!(
                    services.iter().any(|s| s == service),
                    "tests/{file}.rs uses {m} but its row in docs/development.md lacks `{service}`"
                );
            }
        }
    }
}

/// The top of `src/` holds the crate's root, the binary's, the config file as a whole, and
/// the three modules everything else builds on (logging, secrets, locks); the rest lives in
/// folders named for what they hold (`series/`, `clients/`, `config_core/`, `sources/`, …).
#[test]
fn the_top_of_src_holds_six_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let top: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "config.rs",
        "lib.rs",
        "logging.rs",
        "main.rs",
        "secrets.rs",
        "sync.rs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        top, expected,
        "a new module belongs in the folder of what it holds"
    );
}

/// Functions longer than this many lines (from `fn` to its closing brace) are allowed only as
/// kept exceptions: at most [`MAX_KEPT`], each with a `// Kept whole (over 80 lines): why`
/// comment above it.
const MAX_LINES: usize = 80;

/// How many functions outside tests and the demo may stay over [`MAX_LINES`].
const MAX_KEPT: usize = 3;

/// Each function of `text` over [`MAX_LINES`] lines outside `#[cfg(test)]` (what follows it
/// in a file is its tests): its name, its length, and whether a `// Kept whole` comment
/// stands in the lines of comments and attributes above it.
fn long_functions(text: &str) -> Vec<(String, usize, bool)> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let name = trimmed
            .split_once("fn ")
            .filter(|(before, _)| {
                before
                    .split_whitespace()
                    .all(|w| w.starts_with("pub") || ["async", "const", "unsafe"].contains(&w))
            })
            .and_then(|(_, rest)| rest.split(['(', '<']).next())
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'));
        let Some(name) = name else {
            i += 1;
            continue;
        };
        let close = format!("{indent}}}");
        let Some(end) = (i..lines.len()).find(|&j| lines[j] == close) else {
            i += 1;
            continue;
        };
        let length = end - i + 1;
        if length > MAX_LINES {
            let kept = lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    let t = l.trim_start();
                    t.starts_with("//") || t.starts_with("#[")
                })
                .any(|l| l.trim_start().starts_with("// Kept whole (over 80 lines):"));
            out.push((name.to_owned(), length, kept));
        }
        i = end + 1;
    }
    out
}

/// The files of `src/` a parent declares under `#[cfg(test)]` (`mod fixture_tests;`):
/// tests, however long.
fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let Some(name) = pair[1]
                .trim()
                .strip_prefix("mod ")
                .and_then(|r| r.strip_suffix(';'))
            else {
                continue;
            };
            if pair[0].trim() == "#[cfg(test)]" {
                out.insert(file.with_file_name(format!("{name}.rs")));
            }
        }
    }
    out
}

/// Functions fit on a screen: outside tests and the demo (`src/demo/`, a fixture generator),
/// none is over 80 lines but at most three kept whole, each saying why.
#[test]
fn functions_fit_on_a_screen() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let tests = test_files(&files);
    let mut long = Vec::new();
    for file in &files {
        if file.starts_with(src.join("demo")) || tests.contains(file) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (name, length, kept) in long_functions(&text) {
            let at = file.strip_prefix(&src).unwrap().display().to_string();
            long.push((format!("{at} {name} ({length} lines)"), kept));
        }
    }
    let unexplained: Vec<&String> = long.iter().filter(|(_, k)| !k).map(|(f, _)| f).collect();
    assert!(
        unexplained.is_empty(),
        "split these, or keep one whole with a `// Kept whole (over 80 lines): why` comment: {unexplained:?}"
    );
    assert!(
        long.len() <= MAX_KEPT,
        "at most {MAX_KEPT} functions kept over {MAX_LINES} lines: {long:?}"
    );
}

#[test]
fn the_function_scan_finds_a_long_function_and_its_reason() {
    let body = |n: usize| "    let _ = 1;\n".repeat(n);
    let long = format!("/// Doc.\npub(crate) fn long() {{\n{}}}\n", body(79));
    let fits = format!("fn fits() {{\n{}}}\n", body(78));
    let kept = format!(
        "// Kept whole (over 80 lines): a table.\nfn kept() {{\n{}}}\n",
        body(90)
    );
    let text = format!(
        "{fits}{long}{kept}#[cfg(test)]\nfn in_tests() {{\n{}}}\n",
        body(99)
    );
    assert_eq!(
        long_functions(&text),
        [
            ("long".to_owned(), 81, false),
            ("kept".to_owned(), 92, true)
        ]
    );
}

/// The files the Dockerfile's build stage copies (`COPY` lines before the second `FROM`),
/// as paths in the repository.
fn docker_build_context() -> Vec<String> {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let build_stage: Vec<&str> = dockerfile.split("\nFROM ").take(2).collect();
    build_stage
        .join("\nFROM ")
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| (*w).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_images_build_stage_has_what_cargo_and_the_code_layout_read() {
    // No Docker engine here: the build stage's files, copied alone, must load as a workspace
    // (a member's manifest missing fails the image's build before it compiles anything).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let context = docker_build_context();
    for needed in ["build.rs", "link", "src", "Cargo.lock"] {
        assert!(
            context.iter().any(|c| c == needed),
            "the Dockerfile's build stage does not copy {needed}: {context:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for path in &context {
        pulse_test_support::copy_tree(&root.join(path), &dir.path().join(path));
    }
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--locked",
            "--offline",
            "--format-version",
            "1",
            "--no-deps",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo cannot load the image's build context ({context:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
