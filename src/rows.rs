//! Query-shaped results into samples: rows (SQL rows, aggregate output documents) whose
//! `labels` fields become labels and whose `values` fields become samples.
//!
//! Every source kind whose checks return rows uses this, so the rules are the same everywhere:
//! a NULL value is skipped and counted, a non-number fails the check with reason `decode`, and
//! several value fields need a `value_label` telling their samples apart.

use std::collections::{BTreeMap, HashSet};

use crate::config::validate::label_name;
use crate::config::ConfigError;
use crate::error::ProbeError;
use crate::sample::{label, Output};

/// One row of a result, as the kind reads it.
pub trait Row {
    /// The field as label text; NULL is the empty string (an absent label).
    fn text(&self, field: &str) -> Result<String, ProbeError>;
    /// The field as a number; `None` for NULL.
    fn number(&self, field: &str) -> Result<Option<f64>, ProbeError>;
}

/// How a check's rows map to samples: its `labels`, `values` and `value_label` fields.
#[derive(Debug, Clone, Copy)]
pub struct RowShape<'a> {
    /// Fields that become labels, in order.
    pub labels: &'a [String],
    /// Fields holding numbers.
    pub values: &'a [String],
    /// With several value fields, the label naming the field of each sample.
    pub value_label: Option<&'a str>,
}

impl RowShape<'_> {
    /// Adds the samples of one row to `out` under `metric`.
    pub fn push(
        &self,
        row: &impl Row,
        metric: &str,
        help: &str,
        out: &mut Output,
    ) -> Result<(), ProbeError> {
        let mut labels = Vec::with_capacity(self.labels.len() + 1);
        for name in self.labels {
            labels.push(label(name, row.text(name)?));
        }
        for field in self.values {
            match row.number(field)? {
                None => out.skipped += 1,
                Some(v) => {
                    let mut l = labels.clone();
                    if let Some(vl) = self.value_label {
                        l.push(label(vl, field.as_str()));
                    }
                    out.gauge(metric, help, l, v);
                }
            }
        }
        Ok(())
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
        match (self.value_label, self.values.len()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    struct MapRow(BTreeMap<&'static str, Option<f64>>);

    impl Row for MapRow {
        fn text(&self, field: &str) -> Result<String, ProbeError> {
            Ok(self
                .0
                .get(field)
                .copied()
                .flatten()
                .map(|v| v.to_string())
                .unwrap_or_default())
        }
        fn number(&self, field: &str) -> Result<Option<f64>, ProbeError> {
            match self.0.get(field) {
                Some(v) => Ok(*v),
                None => Err(ProbeError::new(Reason::Decode, format!("no {field}"))),
            }
        }
    }

    #[test]
    fn rows_become_samples_and_nulls_are_counted() {
        let (labels, values) = (vec!["k".to_owned()], vec!["a".to_owned(), "b".to_owned()]);
        let shape = RowShape {
            labels: &labels,
            values: &values,
            value_label: Some("field"),
        };
        let mut out = Output::default();
        let row = MapRow(BTreeMap::from([
            ("k", Some(1.0)),
            ("a", Some(2.0)),
            ("b", None),
        ]));
        shape.push(&row, "m", "h", &mut out).unwrap();
        assert_eq!(out.series(), 1);
        assert_eq!(out.skipped, 1);
        assert_eq!(
            out.families[0].samples[0].labels,
            vec![label("k", "1"), label("field", "a")]
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let labels = vec!["plan".to_owned(), "plan".to_owned(), "x".to_owned()];
        let values = vec!["x".to_owned(), "y".to_owned()];
        let shape = RowShape {
            labels: &labels,
            values: &values,
            value_label: None,
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
