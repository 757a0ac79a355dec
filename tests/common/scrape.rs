//! A text-format scrape parsed into series, and lookups by name and labels.

use std::collections::BTreeMap;

/// One parsed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed text-format scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub series: Vec<Series>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut series = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n.to_owned(), parse_labels(rest.trim_end_matches('}'))),
                None => (head.to_owned(), BTreeMap::new()),
            };
            let value = match value {
                "+Inf" | "inf" => f64::INFINITY,
                "-Inf" | "-inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            series.push(Series {
                name,
                labels,
                value,
            });
        }
        Scrape {
            text: text.to_owned(),
            series,
        }
    }

    /// Series of `name` whose labels include every pair of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The sum of the series of `name` whose labels include every pair of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    /// True once a probe of `source` has failed, for whatever reason.
    pub fn probe_failed(&self, source: &str) -> bool {
        self.sum("pulse_source_probe_failures_total", &[("source", source)]) > 0.0
    }

    /// Whether `source`'s health probe has failed for `reason` at least once.
    pub fn probe_failed_with(&self, source: &str, reason: &str) -> bool {
        self.sum(
            "pulse_source_probe_failures_total",
            &[("source", source), ("reason", reason)],
        ) >= 1.0
    }

    /// The certificate expiry published for `source`'s TLS endpoint `endpoint`.
    pub fn certificate_expiry(&self, source: &str, endpoint: &str) -> Option<f64> {
        self.get(
            "pulse_tls_certificate_expiry_timestamp_seconds",
            &[("source", source), ("endpoint", endpoint)],
        )
    }

    /// The value of the one series matching, if any.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.first().map(|s| s.value)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key, value);
        rest = &rest[end..];
    }
    out
}
