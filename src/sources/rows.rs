//! Query-shaped results into samples: rows (SQL rows, aggregate output documents) whose
//! `labels` fields become labels and whose `values` fields become samples.
//!
//! Every source kind whose checks return rows uses this, so the rules are the same everywhere:
//! a NULL value is skipped and counted, a non-number fails the check with reason `decode`, and
//! several value fields need a `value_label` telling their samples apart.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::config_core::validate::label_name;
use crate::config_core::{ConfigError, FieldSet};
use crate::series::run_error::RunError;
use crate::series::sample::{label, Output};

/// A sample's label pairs.
type Labels = Vec<(String, String)>;

/// One row of a result, as the kind reads it.
pub trait Row {
    /// The field as label text; NULL is the empty string (an absent label).
    fn text(&self, field: &str) -> Result<String, RunError>;
    /// The field as a number; `None` for NULL.
    fn number(&self, field: &str) -> Result<Option<f64>, RunError>;
}

/// The value fields of a query-style check that names none: `[value]`.
pub fn default_values() -> Vec<String> {
    vec!["value".to_owned()]
}

/// A statistic over the rows of a result, for `summary:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    /// Number of values.
    Count,
    /// Sum of the values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Arithmetic mean.
    Mean,
    /// 50th percentile.
    Median,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl Stat {
    /// The `stat` label value.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Mean => "mean",
            Stat::Median => "median",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
        }
    }

    /// The statistic of `sorted` (ascending, not empty). Percentiles interpolate linearly
    /// between the two nearest ranks, as numpy and Postgres' percentile_cont do.
    pub fn of(self, sorted: &[f64]) -> f64 {
        let q = match self {
            Stat::Count => return sorted.len() as f64,
            Stat::Sum => return sorted.iter().sum(),
            Stat::Min => return sorted[0],
            Stat::Max => return sorted[sorted.len() - 1],
            Stat::Mean => return sorted.iter().sum::<f64>() / sorted.len() as f64,
            Stat::Median => 0.5,
            Stat::P90 => 0.9,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
        };
        let rank = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
    }
}

/// How a check's rows map to samples: the row fields every query-style check (SQL, MongoDB
/// aggregate) shares, read beside the kind's own fields with
/// [`crate::config_core::parse::parse_split`].
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowShape {
    /// Fields (columns, document fields) whose values become labels, in this order.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Fields holding numbers (default `[value]`).
    #[serde(default = "default_values")]
    pub values: Vec<String>,
    /// With more than one value field: the label naming the field of each sample.
    pub value_label: Option<String>,
    /// Statistics over the rows (per group of `labels`) instead of one sample per row, e.g.
    /// `[median, p90, max]` of per-user counts; labelled `stat`.
    #[serde(default)]
    pub summary: Vec<Stat>,
}

impl FieldSet for RowShape {
    const KEYS: &'static [&'static str] = &["labels", "values", "value_label", "summary"];
}

impl RowShape {
    /// What a check of this shape publishes under `metric`; `top_n` when its query ranks
    /// and limits its rows.
    pub fn series(&self, metric: &str, top_n: bool) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::shape::{gauge_shape, Series, Shape};
        let mut labels = self.labels.clone();
        if self.values.len() > 1 {
            labels.extend(self.value_label.clone());
        }
        let shape = if self.summary.is_empty() {
            gauge_shape(metric, &labels, top_n)
        } else {
            labels.push("stat".to_owned());
            Shape::Summary
        };
        vec![Series::new(metric, labels, shape)]
    }

    /// Adds the samples of every row, or their `summary` statistics, to `out` under `metric`.
    /// NULL values are skipped and counted either way.
    pub fn push_all<R: Row>(
        &self,
        rows: &[R],
        metric: &str,
        help: &str,
        out: &mut Output,
    ) -> Result<(), RunError> {
        let mut sink = self.sink(metric, help, usize::MAX);
        for row in rows {
            sink.push(row)?;
        }
        let done = sink.finish();
        out.families.extend(done.families);
        out.skipped += done.skipped;
        out.dropped += done.dropped;
        Ok(())
    }

    /// A sink that turns rows into samples one at a time, so a result is never held whole:
    /// it keeps at most `max_series` series and counts every value past them as dropped.
    pub fn sink<'a>(&'a self, metric: &'a str, help: &'a str, max_series: usize) -> RowSink<'a> {
        RowSink {
            shape: self,
            metric,
            help,
            max_series,
            groups: BTreeMap::new(),
            dropped_groups: HashSet::new(),
            out: Output::default(),
        }
    }

    /// The (labels, value) pairs one row yields, one per value field; `None` for NULL.
    fn values_of(&self, row: &impl Row) -> Result<Vec<(Labels, Option<f64>)>, RunError> {
        let mut labels = Vec::with_capacity(self.labels.len() + 1);
        for name in &self.labels {
            labels.push(label(name, row.text(name)?));
        }
        self.values
            .iter()
            .map(|field| {
                let mut l = labels.clone();
                if let Some(vl) = &self.value_label {
                    l.push(label(vl, field.as_str()));
                }
                Ok((l, row.number(field)?))
            })
            .collect()
    }

    /// Records the rules the shape breaks; `path` is the check's path, `noun` what the kind
    /// calls a field (`column`, `field`), `const_labels` the check's fixed labels.
    pub fn validate(
        &self,
        path: &str,
        noun: &str,
        const_labels: &BTreeMap<String, String>,
        errors: &mut Vec<ConfigError>,
    ) {
        if self.values.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.values"),
                format!("name at least one value {noun}"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, name) in self.labels.iter().enumerate() {
            let p = format!("{path}.labels[{i}]");
            label_name(&p, name, errors);
            if !seen.insert(name) {
                errors.push(ConfigError::new(
                    p.clone(),
                    format!("label {name:?} is listed twice"),
                ));
            }
            if const_labels.contains_key(name) {
                errors.push(ConfigError::new(
                    p,
                    format!("{name:?} is also a const_label: keep one"),
                ));
            }
        }
        for (i, name) in self.values.iter().enumerate() {
            if self.labels.contains(name) {
                errors.push(ConfigError::new(
                    format!("{path}.values[{i}]"),
                    format!("{noun} {name:?} cannot be both a label and a value"),
                ));
            }
        }
        if !self.summary.is_empty()
            && (self.labels.iter().any(|l| l == "stat")
                || self.value_label.as_deref() == Some("stat"))
        {
            errors.push(ConfigError::new(
                format!("{path}.summary"),
                "`stat` is the label of summary statistics: rename the other label",
            ));
        }
        match (self.value_label.as_deref(), self.values.len()) {
            (None, n) if n > 1 => errors.push(ConfigError::new(
                format!("{path}.value_label"),
                format!("required with more than one value {noun}: name the label that tells them apart, e.g. value_label: {noun}"),
            )),
            (Some(vl), _) => {
                label_name(&format!("{path}.value_label"), vl, errors);
                if self.labels.iter().any(|l| l == vl) || const_labels.contains_key(vl) {
                    errors.push(ConfigError::new(format!("{path}.value_label"), format!("{vl:?} is already a label")));
                }
            }
            _ => {}
        }
    }
}

/// Summary groups past the cap remembered (as digests) so each is counted once; 8 MB at most.
const MAX_DROPPED_GROUPS: usize = 1_000_000;

/// Rows turned into samples as they are read (see [`RowShape::sink`]). Memory is bounded by
/// the series cap, not by the size of the result: plain rows stop producing samples at the
/// cap, and `summary` keeps one number per value of the groups it already has (new groups
/// past the cap are dropped, and remembered only as an 8-byte digest so each counts once).
pub struct RowSink<'a> {
    shape: &'a RowShape,
    metric: &'a str,
    help: &'a str,
    max_series: usize,
    groups: BTreeMap<Labels, Vec<f64>>,
    /// Digests of the summary groups past the cap, so each is counted once (8 bytes each).
    dropped_groups: HashSet<u64>,
    out: Output,
}

impl RowSink<'_> {
    /// Takes one row. Returns `false` once the sink is full and later rows can only be
    /// counted (with [`RowSink::count_rest`]), never kept.
    pub fn push(&mut self, row: &impl Row) -> Result<bool, RunError> {
        let stats = self.shape.summary.len().max(1);
        for (labels, value) in self.shape.values_of(row)? {
            match value {
                None => self.out.skipped += 1,
                Some(v) if self.shape.summary.is_empty() => {
                    if self.out.series() < self.max_series {
                        self.out.gauge(self.metric, self.help, labels, v);
                    } else {
                        self.out.dropped += 1;
                    }
                }
                Some(v) => {
                    let room = (self.groups.len() + 1).saturating_mul(stats) <= self.max_series;
                    match self.groups.get_mut(&labels) {
                        Some(values) => values.push(v),
                        None if room => {
                            self.groups.insert(labels, vec![v]);
                        }
                        None => {
                            // Counted once per group: a digest, not the labels, is remembered.
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            std::hash::Hash::hash(&labels, &mut h);
                            let d = std::hash::Hasher::finish(&h);
                            if self.dropped_groups.contains(&d) {
                                // Already counted.
                            } else if self.dropped_groups.len() < MAX_DROPPED_GROUPS {
                                self.dropped_groups.insert(d);
                                self.out.dropped += stats as u64;
                            } else {
                                // Past the memory for digests every value counts: the total
                                // is then an upper bound.
                                self.out.dropped += stats as u64;
                            }
                        }
                    }
                }
            }
        }
        Ok(!self.full())
    }

    /// True when no further plain row can add a series. Summaries are never full: their
    /// existing groups still take values.
    pub fn full(&self) -> bool {
        self.shape.summary.is_empty() && self.out.series() >= self.max_series
    }

    /// Counts `rows` rows that were not read into samples as dropped series (one per value
    /// field), for a source that can tell how many rows it did not hand over.
    pub fn count_rest(&mut self, rows: u64) {
        self.out.dropped += rows.saturating_mul(self.shape.values.len() as u64);
    }

    /// The samples, with summary statistics computed over each group.
    pub fn finish(mut self) -> Output {
        for (labels, mut values) in std::mem::take(&mut self.groups) {
            values.sort_by(f64::total_cmp);
            for stat in &self.shape.summary {
                let mut l = labels.clone();
                l.push(label("stat", stat.name()));
                self.out.gauge(self.metric, self.help, l, stat.of(&values));
            }
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::run_error::Reason;

    struct MapRow(BTreeMap<&'static str, Option<f64>>);

    impl Row for MapRow {
        fn text(&self, field: &str) -> Result<String, RunError> {
            Ok(self
                .0
                .get(field)
                .copied()
                .flatten()
                .map(|v| v.to_string())
                .unwrap_or_default())
        }
        fn number(&self, field: &str) -> Result<Option<f64>, RunError> {
            match self.0.get(field) {
                Some(v) => Ok(*v),
                None => Err(RunError::new(Reason::Decode, format!("no {field}"))),
            }
        }
    }

    #[test]
    fn rows_become_samples_and_nulls_are_counted() {
        let (labels, values) = (vec!["k".to_owned()], vec!["a".to_owned(), "b".to_owned()]);
        let shape = RowShape {
            labels,
            values,
            value_label: Some("field".to_owned()),
            summary: vec![],
        };
        let mut out = Output::default();
        let row = MapRow(BTreeMap::from([
            ("k", Some(1.0)),
            ("a", Some(2.0)),
            ("b", None),
        ]));
        shape.push_all(&[row], "m", "h", &mut out).unwrap();
        assert_eq!(out.series(), 1);
        assert_eq!(out.skipped, 1);
        assert_eq!(
            out.families[0].samples[0].labels,
            vec![label("k", "1"), label("field", "a")]
        );
    }

    #[test]
    fn summary_statistics_per_label_group() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(Stat::Median.of(&sorted), 5.5);
        assert!((Stat::P90.of(&sorted) - 9.1).abs() < 1e-9);
        assert_eq!(Stat::Max.of(&sorted), 10.0);
        assert_eq!(Stat::P99.of(&[4.0]), 4.0);
        let (labels, values) = (vec!["k".to_owned()], vec!["v".to_owned()]);
        let shape = RowShape {
            labels,
            values,
            value_label: None,
            summary: vec![Stat::Max, Stat::Count],
        };
        let rows: Vec<MapRow> = [(1.0, 3.0), (1.0, 5.0), (2.0, 7.0)]
            .into_iter()
            .map(|(k, v)| MapRow(BTreeMap::from([("k", Some(k)), ("v", Some(v))])))
            .collect();
        let mut out = Output::default();
        shape.push_all(&rows, "m", "h", &mut out).unwrap();
        let got: Vec<(String, String, f64)> = out.families[0]
            .samples
            .iter()
            .map(|s| (s.labels[0].1.clone(), s.labels[1].1.clone(), s.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("1".into(), "max".into(), 5.0),
                ("1".into(), "count".into(), 2.0),
                ("2".into(), "max".into(), 7.0),
                ("2".into(), "count".into(), 1.0)
            ]
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let labels = vec!["plan".to_owned(), "plan".to_owned(), "x".to_owned()];
        let values = vec!["x".to_owned(), "y".to_owned()];
        let shape = RowShape {
            labels,
            values,
            value_label: None,
            summary: vec![],
        };
        let mut errors = Vec::new();
        shape.validate(
            "c",
            "column",
            &BTreeMap::from([("plan".to_owned(), "p".to_owned())]),
            &mut errors,
        );
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("c.labels[1]") && e.contains("twice")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.contains("const_label")), "{text:?}");
        assert!(
            text.iter().any(|e| e.starts_with("c.values[0]")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with("c.value_label")),
            "{text:?}"
        );
    }
}
