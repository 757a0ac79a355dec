//! Counting lines: each whole line parsed as JSON and counted by the configured counters and
//! histograms under their label sets (bounded), the rest counted as invalid. Pure: no file
//! is read here.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::LogfileConfig;
use crate::series::sample::HistogramData;

/// Longest line kept while waiting for its end: a file without newlines (a sparse file, a
/// binary written by mistake) must not grow memory. A longer line is counted as invalid and
/// skipped up to its newline.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Label sets a counter or histogram keeps at most. Counts are cumulative, so a label fed
/// from a field with unbounded values (a user id, a request path) would otherwise grow
/// without end; lines whose label set does not fit are skipped and counted.
pub(super) const MAX_LABEL_SETS: usize = 10_000;

/// What has been counted so far.
#[derive(Default)]
pub(super) struct Counts {
    /// Lines not counted since the last run because their label set did not fit.
    pub(super) capped: u64,
    /// Bytes of a line whose end has not been written yet, at most [`MAX_LINE_BYTES`].
    pub(super) partial: Vec<u8>,
    /// Set while skipping the rest of a line longer than [`MAX_LINE_BYTES`].
    pub(super) overlong: bool,
    pub(super) counters: Vec<BTreeMap<Vec<String>, f64>>,
    pub(super) histograms: Vec<BTreeMap<Vec<String>, HistogramData>>,
    pub(super) parsed: u64,
    pub(super) invalid: u64,
    pub(super) rotations: u64,
    pub(super) truncations: u64,
}

/// Counts each whole line of `complete`: JSON objects by the counters and histograms, the
/// rest (and lines over [`MAX_LINE_BYTES`], never parsed) as invalid.
pub(super) fn count_lines(c: &LogfileConfig, counts: &mut Counts, complete: &[u8]) {
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
pub(super) fn field(json: &Json, path: &str) -> Option<String> {
    let v = path.split('.').try_fold(json, |v, k| v.get(k))?;
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub(super) fn matches(json: &Json, wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(k, v)| field(json, k).as_deref() == Some(v.as_str()))
}

/// Label values are cut like worker attributes: a log field must not explode cardinality.
pub(super) fn key(json: &Json, labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .values()
        .map(|f| {
            field(json, f)
                .unwrap_or_default()
                .chars()
                .take(crate::sources::heartbeat::MAX_ATTRIBUTE_LEN)
                .collect()
        })
        .collect()
}

pub(super) fn count_line(c: &LogfileConfig, counts: &mut Counts, json: &Json) {
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
}
