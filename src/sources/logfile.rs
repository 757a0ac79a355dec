//! Log-file source: tails a JSON-lines file (such as `/data/logs/ai-events.log`), counting
//! events by configured fields into counters and observing a numeric field into histograms.
//!
//! Each run reads what was appended since the last one. A rename-and-create rotation is
//! followed (the old file is read to its end first, then the new one from its start), a
//! truncation restarts from the start, and lines that are not JSON are counted, never fatal.
//! A new file is read from its end by default. The position per source and path outlives
//! reloads, so a reload that changes the counters neither re-reads nor skips lines.
//!
//! Only regular files are read: a FIFO would block an `open` or a read forever, a device
//! such as `/dev/urandom` never ends. Files are opened non-blocking and checked after the
//! open, every file operation runs off the async workers, and a run that overstays its
//! deadline fails alone while the rest of the exporter goes on.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, FileType, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::{Kind, Parsed, Probe, ProbeFuture, Source};
use crate::config::parse::builtin;
use crate::config::validate::{alert_fits, label_name, metric_name};
use crate::config::{CheckConfig, CheckPlan, CheckSpec, ConfigError};
use crate::error::{ProbeError, Reason};
use crate::metric::Metric;
use crate::sample::{label, HistogramData, Output};

/// Default interval of log-file checks: reading appended lines is cheap.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Most bytes read per run, so a huge backlog is caught up over several runs.
pub const MAX_BYTES_PER_RUN: u64 = 64 * 1024 * 1024;

/// Settings of a `kind: logfile` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogfileConfig {
    /// The JSON-lines file to tail.
    pub path: PathBuf,
    /// Where to start in a file seen for the first time: `end` (default) or `beginning`.
    #[serde(default)]
    pub start_at: StartAt,
    /// Counters of lines, by field values.
    #[serde(default)]
    pub counters: Vec<CounterConfig>,
    /// Histograms of a numeric field.
    #[serde(default)]
    pub histograms: Vec<HistogramConfig>,
}

/// Where reading starts in a file seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only lines written from now on.
    #[default]
    End,
    /// The whole file.
    Beginning,
}

/// A counter of matching lines.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterConfig {
    /// Metric name; must end in `_total`.
    pub metric: String,
    /// HELP text.
    pub help: Option<String>,
    /// Label name -> JSON field (dotted path, e.g. `error.kind`); a missing field is "".
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only lines whose fields equal these values (field -> value) are counted.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, String>,
    /// An alert on the counter's rate in the generated rules, or with `ratio`, on the share
    /// of some label values (`{ above: 0.25, ratio: { label: status, values: [error] } }`).
    pub alert: Option<crate::config::display::Threshold>,
}

/// A histogram of a numeric field.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistogramConfig {
    /// Metric name, in base units (e.g. `app_ai_latency_seconds`).
    pub metric: String,
    /// HELP text.
    pub help: Option<String>,
    /// The numeric field observed (dotted path).
    pub field: String,
    /// Factor applied to the field, e.g. 0.001 for milliseconds into seconds (default 1).
    #[serde(default = "one")]
    pub scale: f64,
    /// Bucket upper bounds, ascending (`+Inf` is added).
    pub buckets: Vec<f64>,
    /// Label name -> JSON field.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only lines whose fields equal these values are observed.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}

/// The built-in check of a log-file source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCheck;

impl CheckSpec for TailCheck {}

/// The built-in metrics of a log-file source (besides its configured counters and histograms).
pub const METRICS: &[Metric] = &[LINES, ROTATIONS, TRUNCATIONS];

const LINES: Metric = Metric::counter(
    "pulse_logfile_lines_total",
    "Lines read from the log file, by result (parsed JSON, or invalid).",
    &["source", "result"],
)
.doc("Lines read, by `result`: `parsed` (a JSON object) or `invalid` (counted, never fatal).");
const ROTATIONS: Metric = Metric::counter(
    "pulse_logfile_rotations_total",
    "Rotations (rename and create) followed.",
    &["source"],
)
.doc("Rename-and-create rotations followed (the old file was read to its end first).");
const TRUNCATIONS: Metric = Metric::counter(
    "pulse_logfile_truncations_total",
    "Truncations seen (reading restarted at the start).",
    &["source"],
)
.doc("Truncations seen (reading restarted at the start).");

/// `kind: logfile`.
pub struct Logfile;

impl Kind for Logfile {
    const NAME: &'static str = "logfile";
    const TITLE: &'static str = "Log files";
    const METRICS_INTRO: &'static str = "From `kind: logfile` sources; the counters and histograms the config defines take the names it \
        gives them.";
    const DEFAULT_INTERVAL: Option<Duration> = Some(DEFAULT_INTERVAL);
    type Settings = LogfileConfig;
    type Check = TailCheck;
    type Source = LogfileSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its one check (`tail`) is built in.
    fn builtin_checks(_settings: &LogfileConfig, path: &str) -> Vec<CheckConfig<TailCheck>> {
        vec![builtin(path, "tail", TailCheck)]
    }

    /// The `tail` check publishes every configured counter and histogram.
    fn series(
        parsed: &Parsed<Self>,
        _check: &CheckConfig<TailCheck>,
    ) -> Vec<crate::config::shape::Series> {
        use crate::config::shape::{Series, Shape};
        let s = &parsed.settings;
        let counters = s
            .counters
            .iter()
            .map(|c| (&c.metric, &c.help, &c.labels, Shape::Counter, &c.alert));
        let histograms = s
            .histograms
            .iter()
            .map(|h| (&h.metric, &h.help, &h.labels, Shape::Histogram, &None));
        counters
            .chain(histograms)
            .map(|(metric, help, labels, shape, alert)| Series {
                help: help.clone(),
                alert: alert.clone(),
                ..Series::new(metric, labels.keys().cloned().collect(), shape)
            })
            .collect()
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(&parsed.settings, path, errors)
    }

    fn display_endpoint(settings: &LogfileConfig) -> String {
        settings.path.display().to_string()
    }

    fn connect(settings: &LogfileConfig, name: &str) -> Result<LogfileSource, String> {
        LogfileSource::new(settings, name)
    }
}

/// Records the logfile rules the source at `p` breaks.
fn validate(c: &LogfileConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if !c.path.is_absolute() {
        errors.push(ConfigError::new(
            format!("{p}.path"),
            "must be an absolute path",
        ));
    }
    // A file that does not exist yet is fine (the application creates it); one that exists
    // must be a regular file. `stat` never blocks, even on a FIFO.
    if let Ok(meta) = std::fs::metadata(&c.path) {
        if !meta.is_file() {
            errors.push(ConfigError::new(
                format!("{p}.path"),
                format!(
                    "{} is {}: a log source tails a regular file (a FIFO would block, a device never ends)",
                    c.path.display(),
                    file_type_name(meta.file_type())
                ),
            ));
        }
    }
    if c.counters.is_empty() && c.histograms.is_empty() {
        errors.push(ConfigError::new(
            p,
            "define at least one of `counters` or `histograms`",
        ));
    }
    for (i, ctr) in c.counters.iter().enumerate() {
        let cp = format!("{p}.counters[{i}]");
        metric_name(&format!("{cp}.metric"), &ctr.metric, errors);
        if !ctr.metric.ends_with("_total") {
            errors.push(ConfigError::new(
                format!("{cp}.metric"),
                "a counter's name must end in _total",
            ));
        }
        for name in ctr.labels.keys() {
            label_name(&format!("{cp}.labels"), name, errors);
        }
        if let Some(alert) = &ctr.alert {
            let series = crate::config::shape::Series::new(
                &ctr.metric,
                ctr.labels.keys().cloned().collect(),
                crate::config::shape::Shape::Counter,
            );
            alert_fits(&format!("{cp}.alert"), alert, &[series], errors);
        }
    }
    for (i, h) in c.histograms.iter().enumerate() {
        let hp = format!("{p}.histograms[{i}]");
        metric_name(&format!("{hp}.metric"), &h.metric, errors);
        for name in h.labels.keys() {
            label_name(&format!("{hp}.labels"), name, errors);
            if name == "le" {
                errors.push(ConfigError::new(
                    format!("{hp}.labels"),
                    "`le` is the bucket label of every histogram",
                ));
            }
        }
        if h.buckets.is_empty()
            || h.buckets.windows(2).any(|w| w[0] >= w[1])
            || h.buckets.iter().any(|b| !b.is_finite())
        {
            errors.push(ConfigError::new(
                format!("{hp}.buckets"),
                "list finite upper bounds in ascending order, e.g. [0.1, 0.5, 1, 5]",
            ));
        }
        if !h.scale.is_finite() || h.scale == 0.0 {
            errors.push(ConfigError::new(
                format!("{hp}.scale"),
                "must be a finite, non-zero number",
            ));
        }
    }
}

/// Where reading stopped in a file: its identity and offset, and a digest of its first bytes
/// as they were read, so a file truncated in place and written past the old offset before
/// the next run (`copytruncate`, then a burst) is told from one that only grew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    dev: u64,
    ino: u64,
    offset: u64,
    /// Bytes from the start covered by `head`, at most [`HEAD_BYTES`]; 0 until read.
    head_len: u64,
    /// Digest of those bytes.
    head: u64,
}

impl Position {
    fn new(dev: u64, ino: u64, offset: u64) -> Position {
        Position {
            dev,
            ino,
            offset,
            head_len: 0,
            head: 0,
        }
    }
}

/// Bytes at the start of a file whose digest identifies its content.
const HEAD_BYTES: u64 = 1024;

/// Longest line kept while waiting for its end: a file without newlines (a sparse file, a
/// binary written by mistake) must not grow memory. A longer line is counted as invalid and
/// skipped up to its newline.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The digest of the first `len` bytes of `file`, read without moving its cursor; `None`
/// when the file no longer holds that many.
fn head_digest(file: &File, len: u64) -> std::io::Result<Option<u64>> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; len as usize];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], read as u64)? {
            0 => return Ok(None),
            n => read += n,
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Ok(Some(h.finish()))
}

/// Positions by source name and path, kept for the life of the process so reloads resume
/// where they were. The source name is part of the key: two sources tailing one file each
/// read all of it.
type PositionKey = (String, PathBuf);
static POSITIONS: Mutex<Option<HashMap<PositionKey, Position>>> = Mutex::new(None);

fn saved_position(source: &str, path: &Path) -> Option<Position> {
    POSITIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()?
        .get(&(source.to_owned(), path.to_path_buf()))
        .copied()
}

fn save_position(source: &str, path: &Path, pos: Position) {
    POSITIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert((source.to_owned(), path.to_path_buf()), pos);
}

/// Label sets a counter or histogram keeps at most. Counts are cumulative, so a label fed
/// from a field with unbounded values (a user id, a request path) would otherwise grow
/// without end; lines whose label set does not fit are skipped and counted.
const MAX_LABEL_SETS: usize = 10_000;

/// What has been counted so far.
#[derive(Default)]
struct Counts {
    /// Lines not counted since the last run because their label set did not fit.
    capped: u64,
    /// Bytes of a line whose end has not been written yet, at most [`MAX_LINE_BYTES`].
    partial: Vec<u8>,
    /// Set while skipping the rest of a line longer than [`MAX_LINE_BYTES`].
    overlong: bool,
    counters: Vec<BTreeMap<Vec<String>, f64>>,
    histograms: Vec<BTreeMap<Vec<String>, HistogramData>>,
    parsed: u64,
    invalid: u64,
    rotations: u64,
    truncations: u64,
}

/// The open file and the counts, kept apart so each can be borrowed on its own.
#[derive(Default)]
struct Tail {
    file: Option<(File, Position)>,
    counts: Counts,
}

/// A log-file source.
pub struct LogfileSource {
    name: String,
    config: Arc<LogfileConfig>,
    tail: Arc<Mutex<Tail>>,
}

impl LogfileSource {
    /// Creates the source; nothing is opened until the first run.
    pub fn new(c: &LogfileConfig, name: &str) -> Result<Self, String> {
        let tail = Tail {
            file: None,
            counts: Counts {
                counters: vec![BTreeMap::new(); c.counters.len()],
                histograms: vec![BTreeMap::new(); c.histograms.len()],
                ..Counts::default()
            },
        };
        Ok(LogfileSource {
            name: name.to_owned(),
            config: Arc::new(c.clone()),
            tail: Arc::new(Mutex::new(tail)),
        })
    }
}

impl Source<TailCheck> for LogfileSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(HealthProbe {
            path: self.config.path.clone(),
        })
    }

    fn check(&self, _check: &CheckConfig<TailCheck>, _plan: &CheckPlan) -> Arc<dyn Probe> {
        Arc::new(TailProbe {
            source: self.name.clone(),
            config: self.config.clone(),
            tail: self.tail.clone(),
        })
    }
}

fn io_error(path: &std::path::Path, e: &std::io::Error) -> ProbeError {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => Reason::NotFound,
        std::io::ErrorKind::PermissionDenied => Reason::Auth,
        _ => Reason::Query,
    };
    ProbeError::new(reason, format!("{}: {e}", path.display()))
}

/// What a non-regular file is, for errors.
fn file_type_name(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file. The open is non-blocking (a FIFO
/// without a writer would otherwise block it forever; a regular file ignores the flag) and
/// the type is checked on the opened file, so a path swapped in between cannot slip through.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), ProbeError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    let meta = f.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(ProbeError::new(
            Reason::Query,
            format!(
                "{} is {}: a log source reads regular files only",
                path.display(),
                file_type_name(meta.file_type())
            ),
        ));
    }
    Ok((f, meta))
}

/// Runs blocking file work off the async workers, failing the run at `deadline`. A call that
/// overstays keeps its thread until the kernel returns, but never the caller.
async fn blocking<T: Send + 'static>(
    path: &Path,
    deadline: Instant,
    work: impl FnOnce() -> Result<T, ProbeError> + Send + 'static,
) -> Result<T, ProbeError> {
    match tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(ProbeError::new(
            Reason::Internal,
            format!("log reader task: {e}"),
        )),
        Err(_) => Err(ProbeError::new(
            Reason::Timeout,
            format!("{}: the file did not answer in time", path.display()),
        )),
    }
}

struct HealthProbe {
    path: PathBuf,
}

impl Probe for HealthProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            // Readable is what matters: a file we may not open is as good as missing.
            let path = self.path.clone();
            blocking(&self.path, deadline, move || open_regular(&path).map(drop)).await?;
            Ok(Output::default())
        })
    }
}

struct TailProbe {
    source: String,
    config: Arc<LogfileConfig>,
    tail: Arc<Mutex<Tail>>,
}

impl Probe for TailProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        let (source, config, tail) = (self.source.clone(), self.config.clone(), self.tail.clone());
        Box::pin(async move {
            // File reads block; they run off the async workers, bounded in bytes per run and
            // in time by the deadline. A read still stuck from an earlier run (a hung network
            // file system) fails this run instead of queueing a second thread behind it.
            blocking(&self.config.path, deadline, move || {
                let mut t = match tail.try_lock() {
                    Ok(t) => t,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => {
                        return Err(ProbeError::new(
                            Reason::Timeout,
                            format!(
                                "{}: an earlier read has not returned yet",
                                config.path.display()
                            ),
                        ))
                    }
                };
                read_new(&source, &config, &mut t)
            })
            .await?;
            let mut t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = self.samples(&t.counts);
            // Reported once: the store sums what each run skipped.
            out.skipped += std::mem::take(&mut t.counts.capped);
            Ok(out)
        })
    }
}

impl TailProbe {
    fn samples(&self, t: &Counts) -> Output {
        let mut out = Output::default();
        let source = self.source.as_str();
        for (result, n) in [("parsed", t.parsed), ("invalid", t.invalid)] {
            out.add(&LINES, &[source, result], n as f64);
        }
        out.add(&ROTATIONS, &[source], t.rotations as f64);
        out.add(&TRUNCATIONS, &[source], t.truncations as f64);
        for (c, values) in self.config.counters.iter().zip(&t.counters) {
            let help = c.help.clone().unwrap_or_else(|| {
                format!(
                    "Lines of {} counted by pulse-exporter.",
                    self.config.path.display()
                )
            });
            for (key, n) in values {
                let labels = c
                    .labels
                    .keys()
                    .zip(key)
                    .map(|(k, v)| label(k, v.as_str()))
                    .collect();
                out.counter(&c.metric, &help, labels, *n);
            }
        }
        for (h, values) in self.config.histograms.iter().zip(&t.histograms) {
            let help = h
                .help
                .clone()
                .unwrap_or_else(|| format!("Field {} of {}.", h.field, self.config.path.display()));
            for (key, data) in values {
                let labels = h
                    .labels
                    .keys()
                    .zip(key)
                    .map(|(k, v)| label(k, v.as_str()))
                    .collect();
                out.histogram(&h.metric, &help, labels, data.clone());
            }
        }
        out
    }
}

/// Reads what was appended since the last run, following rotation and truncation.
fn read_new(source: &str, c: &LogfileConfig, t: &mut Tail) -> Result<(), ProbeError> {
    let meta = std::fs::metadata(&c.path);
    let current = meta.as_ref().ok().map(|m| (m.dev(), m.ino(), m.len()));
    if let Some((file, pos)) = t.file.as_mut() {
        match current {
            Some((dev, ino, _)) if (pos.dev, pos.ino) == (dev, ino) => {}
            // Rotated (renamed, a new file in its place) or gone for now: finish the old file,
            // which is still open, before anything else.
            _ => {
                drain(file, pos, c, &mut t.counts)?;
                if current.is_some() {
                    t.file = None;
                    t.counts.partial.clear();
                    t.counts.rotations += 1;
                }
            }
        }
    }
    let Some((dev, ino, len)) = current else {
        return Err(io_error(
            &c.path,
            &meta.expect_err("no metadata means an error"),
        ));
    };
    if t.file.is_none() {
        let (mut f, _) = open_regular(&c.path)?;
        let offset = match saved_position(source, &c.path) {
            Some(p) if (p.dev, p.ino) == (dev, ino) && p.offset <= len => p.offset,
            // A file seen before under another identity: the rotated-in file, from its start.
            Some(_) => 0,
            None if c.start_at == StartAt::End => len,
            None => 0,
        };
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(&c.path, &e))?;
        // A resumed position keeps its head digest: a rewrite while no source read it is
        // then noticed too.
        let pos = match saved_position(source, &c.path) {
            Some(p) if (p.dev, p.ino, p.offset) == (dev, ino, offset) => p,
            _ => Position::new(dev, ino, offset),
        };
        t.file = Some((f, pos));
    }
    let (file, pos) = t.file.as_mut().expect("opened above");
    // Truncated in place: shorter than where reading stopped, or with other first bytes than
    // those read (truncated, then written past the old offset between two runs).
    let rewritten = pos.head_len > 0
        && head_digest(file, pos.head_len).map_err(|e| io_error(&c.path, &e))? != Some(pos.head);
    if len < pos.offset || rewritten {
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(&c.path, &e))?;
        *pos = Position::new(pos.dev, pos.ino, 0);
        t.counts.partial.clear();
        t.counts.overlong = false;
        t.counts.truncations += 1;
    }
    drain(file, pos, c, &mut t.counts)?;
    if pos.head_len < HEAD_BYTES.min(pos.offset) {
        let len = HEAD_BYTES.min(pos.offset);
        if let Some(head) = head_digest(file, len).map_err(|e| io_error(&c.path, &e))? {
            (pos.head_len, pos.head) = (len, head);
        }
    }
    save_position(source, &c.path, *pos);
    Ok(())
}

/// Reads from `pos` to the end of `file` (at most MAX_BYTES_PER_RUN) and counts whole lines.
fn drain(
    file: &mut File,
    pos: &mut Position,
    c: &LogfileConfig,
    counts: &mut Counts,
) -> Result<(), ProbeError> {
    let mut buf = Vec::new();
    file.by_ref()
        .take(MAX_BYTES_PER_RUN)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(&c.path, &e))?;
    pos.offset += buf.len() as u64;
    let mut fresh = &buf[..];
    if counts.overlong {
        // The rest of a line already counted as too long: dropped up to its end.
        match fresh.iter().position(|b| *b == b'\n') {
            Some(end) => {
                fresh = &fresh[end + 1..];
                counts.overlong = false;
            }
            None => return Ok(()),
        }
    }
    counts.partial.extend_from_slice(fresh);
    if let Some(last_newline) = counts.partial.iter().rposition(|b| *b == b'\n') {
        let complete: Vec<u8> = counts.partial.drain(..=last_newline).collect();
        count_lines(c, counts, &complete);
    }
    if counts.partial.len() > MAX_LINE_BYTES {
        counts.partial = Vec::new();
        counts.invalid += 1;
        counts.overlong = true;
    }
    Ok(())
}

/// Counts each whole line of `complete`: JSON objects by the counters and histograms, the
/// rest (and lines over [`MAX_LINE_BYTES`], never parsed) as invalid.
fn count_lines(c: &LogfileConfig, counts: &mut Counts, complete: &[u8]) {
    for line in complete.split(|b| *b == b'\n') {
        if line.len() > MAX_LINE_BYTES {
            counts.invalid += 1;
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(json) if json.is_object() => {
                counts.parsed += 1;
                count_line(c, counts, &json);
            }
            _ => counts.invalid += 1,
        }
    }
}

/// A field by dotted path, as text: strings as they are, other values as JSON.
fn field(json: &Json, path: &str) -> Option<String> {
    let v = path.split('.').try_fold(json, |v, k| v.get(k))?;
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn matches(json: &Json, wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(k, v)| field(json, k).as_deref() == Some(v.as_str()))
}

/// Label values are cut like worker attributes: a log field must not explode cardinality.
fn key(json: &Json, labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .values()
        .map(|f| {
            field(json, f)
                .unwrap_or_default()
                .chars()
                .take(crate::heartbeat::MAX_ATTRIBUTE_LEN)
                .collect()
        })
        .collect()
}

fn count_line(c: &LogfileConfig, counts: &mut Counts, json: &Json) {
    for (ctr, values) in c.counters.iter().zip(counts.counters.iter_mut()) {
        if matches(json, &ctr.matches) {
            let k = key(json, &ctr.labels);
            if let Some(n) = values.get_mut(&k) {
                *n += 1.0;
            } else if values.len() < MAX_LABEL_SETS {
                values.insert(k, 1.0);
            } else {
                counts.capped += 1;
            }
        }
    }
    for (h, values) in c.histograms.iter().zip(counts.histograms.iter_mut()) {
        if !matches(json, &h.matches) {
            continue;
        }
        // A value that is not a number, or whose scaled value is not finite (1e300 ms as
        // seconds), is not observed.
        let Some(v) = field(json, &h.field)
            .and_then(|s| s.parse::<f64>().ok())
            .map(|v| v * h.scale)
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        let k = key(json, &h.labels);
        if let Some(data) = values.get_mut(&k) {
            data.observe(v);
        } else if values.len() < MAX_LABEL_SETS {
            let mut data = HistogramData::new(&h.buckets);
            data.observe(v);
            values.insert(k, data);
        } else {
            counts.capped += 1;
        }
    }
}

#[cfg(test)]
mod config_tests {
    use crate::configfile::assert_reports;

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            "sources:\n  - { name: logs, kind: logfile, path: relative.log }",
            &[
                "sources[0].path: must be an absolute path",
                "sources[0]: define at least one of `counters` or `histograms`",
            ],
        );
        assert_reports(
            r#"
sources:
  - name: logs
    kind: logfile
    path: /var/log/ai.log
    counters: [{ metric: app_events }]
    histograms: [{ metric: app_latency_seconds, field: ms, buckets: [5, 1], scale: 0, labels: { le: x } }]
"#,
            &[
                "sources[0].counters[0].metric: a counter's name must end in _total",
                "sources[0].histograms[0].buckets: list finite upper bounds in ascending order",
                "sources[0].histograms[0].scale: must be a finite, non-zero number",
                "sources[0].histograms[0].labels: `le` is the bucket label",
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_past_the_cap_are_skipped_and_counted() {
        let c: LogfileConfig = serde_yaml::from_str(
            "{ path: /dev/null, counters: [{ metric: app_lines_total, labels: { user: user } }] }",
        )
        .unwrap();
        let mut counts = Counts {
            counters: vec![BTreeMap::new()],
            ..Counts::default()
        };
        for i in 0..MAX_LABEL_SETS + 5 {
            count_line(
                &c,
                &mut counts,
                &serde_json::json!({ "user": format!("u{i}") }),
            );
        }
        // A known label set still counts once the map is full.
        count_line(&c, &mut counts, &serde_json::json!({ "user": "u0" }));
        assert_eq!(counts.counters[0].len(), MAX_LABEL_SETS);
        assert_eq!(counts.capped, 5);
        assert_eq!(counts.counters[0][&vec!["u0".to_owned()]], 2.0);
    }

    #[test]
    fn a_file_without_newlines_costs_one_line_of_memory_and_a_rewrite_is_a_truncation() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        std::fs::write(&path, "").unwrap();
        let c: LogfileConfig = serde_yaml::from_str(&format!(
            "{{ path: {}, start_at: beginning, counters: [{{ metric: app_lines_total }}] }}",
            path.display()
        ))
        .unwrap();
        let mut t = Tail {
            file: None,
            counts: Counts {
                counters: vec![BTreeMap::new()],
                ..Counts::default()
            },
        };
        read_new("unit", &c, &mut t).unwrap();
        let zeros = 3 * MAX_LINE_BYTES;
        std::fs::write(&path, vec![b'x'; zeros]).unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert!(t.counts.partial.is_empty() && t.counts.overlong);
        assert_eq!(t.counts.invalid, 1);
        // The end of the long line, then a real one.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"xx\n{\"a\": 1}\n")
            .unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert_eq!((t.counts.parsed, t.counts.invalid), (1, 1));
        // Rewritten in place past the old offset: counted from the start again.
        let before = t.file.as_ref().unwrap().1.offset;
        let rewrite = "{\"b\": 2}\n".repeat(before as usize / 9 + 10);
        std::fs::write(&path, &rewrite).unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert_eq!(t.counts.truncations, 1);
        assert_eq!(t.counts.parsed, 1 + (before / 9 + 10));
    }
}
