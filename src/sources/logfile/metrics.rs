//! The built-in metrics of a log-file source: lines by result, rotations and truncations.

use crate::series::metric::Metric;

/// The built-in metrics of a log-file source (besides its configured counters and histograms).
pub const METRICS: &[Metric] = &[LINES, ROTATIONS, TRUNCATIONS];

pub(super) const LINES: Metric = Metric::counter(
    "pulse_logfile_lines_total",
    "Lines read from the log file, by result (parsed JSON, or invalid).",
    &["source", "result"],
)
.doc("Lines read, by `result`: `parsed` (a JSON object) or `invalid` (counted, never fatal).");
pub(super) const ROTATIONS: Metric = Metric::counter(
    "pulse_logfile_rotations_total",
    "Rotations (rename and create) followed.",
    &["source"],
)
.doc("Rename-and-create rotations followed (the old file was read to its end first).");
pub(super) const TRUNCATIONS: Metric = Metric::counter(
    "pulse_logfile_truncations_total",
    "Truncations seen (reading restarted at the start).",
    &["source"],
)
.doc("Truncations seen (reading restarted at the start).");
