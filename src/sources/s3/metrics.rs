//! The built-in metrics of an S3 source: the canary's steps and the prefix statistics.

use crate::series::metric::Metric;

/// The built-in metrics of an S3 source.
pub const METRICS: &[Metric] = &[
    CANARY_SUCCESS,
    CANARY_DURATION,
    PREFIX_OBJECTS,
    PREFIX_BYTES,
    PREFIX_NEWEST,
    PREFIX_TRUNCATED,
];

pub(super) const CANARY_SUCCESS: Metric = Metric::gauge(
    "pulse_s3_canary_success",
    "Whether the canary's step (put, get, delete) succeeded in its last run.",
    &["source", "bucket", "step"],
)
.doc("1 if the canary's `put`, `get` (read back and compared) or `delete` step worked in its last run, 0 if it failed. After a failed `put` the later steps are not tried.");
pub(super) const CANARY_DURATION: Metric = Metric::gauge(
    "pulse_s3_canary_duration_seconds",
    "Duration of the canary's step in its last run.",
    &["source", "bucket", "step"],
)
.doc("Duration of each canary step in its last run.");
pub(super) const PREFIX_OBJECTS: Metric = Metric::gauge(
    "pulse_s3_prefix_objects",
    "Objects under the prefix (a lower bound when truncated).",
    &["source", "bucket", "prefix"],
)
.doc("Objects under the prefix (a lower bound when truncated).");
pub(super) const PREFIX_BYTES: Metric = Metric::gauge(
    "pulse_s3_prefix_bytes",
    "Total size of the objects under the prefix (a lower bound when truncated).",
    &["source", "bucket", "prefix"],
)
.doc("Their total size.");
pub(super) const PREFIX_NEWEST: Metric = Metric::gauge(
    "pulse_s3_prefix_newest_object_timestamp_seconds",
    "Last-modified time of the newest object under the prefix.",
    &["source", "bucket", "prefix"],
)
.doc("Last-modified time of the newest object; absent for an empty prefix.");
pub(super) const PREFIX_TRUNCATED: Metric = Metric::gauge(
    "pulse_s3_prefix_truncated",
    "Whether the listing stopped at max_pages (1) before the end of the prefix.",
    &["source", "bucket", "prefix"],
)
.doc("1 when the listing stopped at `max_pages`.");
