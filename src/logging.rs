//! Log setup: logfmt or JSON lines on stderr, filtered by level, with secrets scrubbed.

use std::io;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::secrets::ScrubbingWriter;

/// Log line format (`--log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, as Prometheus components log.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Minimum level logged (`--log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, including every failed run.
    Debug,
    /// State changes and lifecycle (default).
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Clone, Copy)]
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = ScrubbingWriter<io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter(io::stderr())
    }
}

/// Installs the global subscriber. Driver crates stay at `warn` unless asked for `debug`,
/// so an exporter at `info` logs our events and not every connection a pool opens.
pub fn init(level: LogLevel, format: LogFormat) {
    let lvl = level.directive();
    let deps = if level == LogLevel::Debug {
        "debug"
    } else {
        "warn"
    };
    // lapin logs every channel the broker closes (a passive declare of a missing queue) at
    // error level; our probes report those outcomes themselves.
    let lapin = if level == LogLevel::Debug {
        "debug"
    } else {
        "off"
    };
    let filter = EnvFilter::new(format!(
        "{lvl},sqlx={deps},redis={deps},hyper={deps},rustls={deps},h2={deps},tower={deps},lapin={lapin},amq_protocol={lapin}"
    ));
    match format {
        LogFormat::Json => {
            let _ = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_env_filter(filter)
                .with_writer(Stderr)
                .try_init();
        }
        LogFormat::Logfmt => {
            let _ = tracing_logfmt::builder()
                .with_span_name(false)
                .with_span_path(false)
                .subscriber_builder()
                .with_env_filter(filter)
                .with_writer(Stderr)
                .try_init();
        }
    }
}
