//! Metric declarations: a built-in metric's name, type, HELP, labels and documentation
//! ([`Metric`]), and the sections they are listed in ([`Section`]). Kinds, heartbeats and the
//! self metrics fill these in; the exposition and the metrics reference only read them. A
//! leaf: it imports nothing of the crate.

/// Prometheus type of a family. Counter family names end in `_total` here; the encoder
/// strips it for the OpenMetrics descriptor, as the format requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A monotonically increasing count.
    Counter,
    /// Observations counted into buckets, with their sum and count.
    Histogram,
}

/// A built-in metric, declared once in its kind's `METRICS` table (or the self metrics' and
/// heartbeats' tables): name, type, HELP, label names in order and its documentation.
/// `docs/metrics.md` is generated from these tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Metric name (counters end in `_total`).
    pub name: &'static str,
    /// Gauge or counter.
    pub kind: MetricType,
    /// HELP text.
    pub help: &'static str,
    /// Label names, in the order they are exposed.
    pub labels: &'static [&'static str],
    /// What the metric means, for docs/metrics.md (Markdown, one paragraph); empty: the HELP.
    pub doc: &'static str,
    /// The labels column of docs/metrics.md where the label names alone say too little
    /// (labels added by the config, shared label sets); empty: the label names.
    pub doc_labels: &'static str,
    /// When the value rises and when it falls, for metrics whose movements need saying;
    /// empty when they do not.
    pub changes: (&'static str, &'static str),
}

impl Metric {
    /// A gauge.
    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Metric::of(MetricType::Gauge, name, help, labels)
    }

    /// A histogram: cumulative buckets, sum and count (and native buckets where the scraper
    /// negotiates protobuf).
    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Metric::of(MetricType::Histogram, name, help, labels)
    }

    /// A counter (`name` ends in `_total`).
    pub const fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Metric::of(MetricType::Counter, name, help, labels)
    }

    const fn of(
        kind: MetricType,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Metric {
            name,
            kind,
            help,
            labels,
            doc: "",
            doc_labels: "",
            changes: ("", ""),
        }
    }

    /// The same metric with its meaning for docs/metrics.md.
    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// The same metric with its labels column for docs/metrics.md.
    pub const fn doc_labels(mut self, labels: &'static str) -> Self {
        self.doc_labels = labels;
        self
    }

    /// The same metric with when it rises and when it falls, for docs/metrics.md.
    pub const fn changes(mut self, rises: &'static str, falls: &'static str) -> Self {
        self.changes = (rises, falls);
        self
    }
}

/// One section of `docs/metrics.md`: a title, a paragraph and a table of metrics.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The section's heading.
    pub title: &'static str,
    /// What holds for every metric of the section (Markdown; empty for none).
    pub intro: &'static str,
    /// The metrics, in table order.
    pub metrics: &'static [Metric],
}
