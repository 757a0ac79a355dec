//! The generated references under `docs/`: the config reference (`docs/config.md`, from the
//! config structs) and the metrics reference (`docs/metrics.md`, from the metric
//! declarations). Renderers only: they import the declarations and nothing imports them but
//! their tests and the tests that read the metric list.

pub mod config;
pub mod metrics;
pub mod schema;

/// A doc comment on one line: paragraphs joined with spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fails when the generated file at `path` (from the repository root) is not `want`;
/// rewrites it first when `PULSE_UPDATE_DOCS` is set. For the generated references' tests.
#[cfg(test)]
fn assert_generated_file_is_current(path: &str, want: &str) {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("PULSE_UPDATE_DOCS").is_some() {
        std::fs::write(&full, want).unwrap();
    }
    let have = std::fs::read_to_string(&full).unwrap_or_default();
    assert!(
        have == want,
        "{path} is stale: run `PULSE_UPDATE_DOCS=1 cargo test --lib reference` and commit it"
    );
}
