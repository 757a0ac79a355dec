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
