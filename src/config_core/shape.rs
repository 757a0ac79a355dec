//! What a check publishes, known from its config before it runs: the metric names, the labels
//! that vary, the matchers that pick this check's samples out of a metric other checks may
//! share, and the shape of the values (one number, a few labelled ones, a top-N list, summary
//! statistics, a point in time, a counter, a histogram, workers, or a kind's built-in set).
//!
//! Each kind says it for its checks (`CheckSpec::series`, `Kind::series`); the generated
//! dashboard and rules (`crate::generate`) choose panels, units and alerts from it.

/// How the values of a series set are best read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Numbers, one per label combination: one stat when no label varies, else lines.
    Gauge,
    /// A ranked, limited list (SQL `LIMIT`, a `$limit` stage): a table.
    TopN,
    /// `summary` statistics over rows, labelled `stat`: bars.
    Summary,
    /// A point in time in unix seconds (`_timestamp_seconds`): shown as an age.
    Timestamp,
    /// A counter (`_total`): shown as a rate.
    Counter,
    /// A histogram (`_bucket`, `_sum`, `_count`): shown as quantiles.
    Histogram,
    /// Worker heartbeats of one pool: the built-in `pulse_worker_*` metrics.
    Workers {
        /// The `pool` label.
        pool: String,
    },
    /// A kind's built-in metrics, shown by the panels the kind describes.
    Builtin(Builtin),
}

/// A kind's built-in metric set, described by the kind: the panels that show it and what
/// else it publishes. The generator draws it, and copies the bundled alerts that fire on its
/// metrics, knowing no kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builtin {
    /// The panels, in order.
    pub panels: Vec<Panel>,
    /// The metrics the set publishes besides those its panels show (a queue's head
    /// timestamp): the generated rules copy the bundled queue alerts that fire on any of
    /// them or of the panels' metrics, scoped to the config's sources.
    pub also_publishes: &'static [&'static str],
}

impl Builtin {
    /// Every metric the set publishes that the generator knows of: those its panels read,
    /// then [`Builtin::also_publishes`].
    pub fn metrics(&self) -> Vec<&'static str> {
        let mut metrics: Vec<&'static str> = Vec::new();
        let read = self
            .panels
            .iter()
            .flat_map(|p| &p.queries)
            .flat_map(|q| match q.expr {
                PanelExpr::Metric(m) | PanelExpr::Rate(m) | PanelExpr::Age(m) => vec![m],
                PanelExpr::SumOrZero { metric, present } => vec![metric, present],
                PanelExpr::Quantile { metric, .. } => vec![metric],
            });
        for m in read.chain(self.also_publishes.iter().copied()) {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        metrics
    }
}

/// One panel of a [`Builtin`] set. The generator adds the guard (DEGRADED while the check
/// or its source fails, NO DATA when nothing arrives) and says so in the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    /// Part of the panel's stable id, unique within the check.
    pub key: &'static str,
    /// The title.
    pub title: String,
    /// What the panel shows.
    pub description: &'static str,
    /// Grafana unit of the values.
    pub unit: &'static str,
    /// How it is drawn.
    pub kind: crate::config_core::display::PanelKind,
    /// Its queries, in order.
    pub queries: Vec<PanelQuery>,
    /// Values are outcomes (1 worked, 0 failed), drawn as OK and DEGRADED.
    pub outcome: bool,
}

/// One query of a [`Panel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    /// What it reads.
    pub expr: PanelExpr,
    /// Grafana legend format.
    pub legend: &'static str,
    /// A unit of its own, where it differs from the panel's.
    pub unit: Option<&'static str>,
}

/// What a [`PanelQuery`] reads, always limited to the check's own samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanelExpr {
    /// The metric's samples.
    Metric(&'static str),
    /// The metric summed per exporter, or 0 while `present` has samples: for a metric that
    /// is absent when there is nothing to count.
    SumOrZero {
        /// The metric summed.
        metric: &'static str,
        /// A metric present whenever the check ran.
        present: &'static str,
    },
    /// A counter's rate a second.
    Rate(&'static str),
    /// How long ago a `_timestamp_seconds` metric's point in time was.
    Age(&'static str),
    /// A quantile of a histogram's observations over the dashboard's rate interval, per
    /// series: from classic buckets or native histograms, whichever Prometheus keeps.
    Quantile {
        /// The histogram (without `_bucket`).
        metric: &'static str,
        /// The quantile, e.g. `0.99`.
        quantile: &'static str,
    },
}

impl PanelQuery {
    /// The samples of `metric`, with `legend`.
    pub fn metric(metric: &'static str, legend: &'static str) -> PanelQuery {
        PanelQuery {
            expr: PanelExpr::Metric(metric),
            legend,
            unit: None,
        }
    }

    /// The rate a second of the counter `metric`, with `legend`.
    pub fn rate(metric: &'static str, legend: &'static str) -> PanelQuery {
        PanelQuery {
            expr: PanelExpr::Rate(metric),
            legend,
            unit: None,
        }
    }
}

/// One metric a check publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name (for a histogram, without `_bucket`).
    pub metric: String,
    /// Label names whose values vary between samples (const labels and `source` aside).
    pub labels: Vec<String>,
    /// Label matchers that pick this check's samples: label and the exact value or, with
    /// `regex`, an anchored regular expression.
    pub pins: Vec<Pin>,
    /// How the values are read.
    pub shape: Shape,
    /// What the metric means, when it is not the check's `help` (a log file's counters).
    pub help: Option<String>,
    /// The alert of this metric alone (a log file's counter's `alert:`), where the check's
    /// own `alert:` does not apply.
    pub alert: Option<crate::config_core::display::Threshold>,
}

/// A label matcher of [`Series::pins`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Label name.
    pub label: String,
    /// Exact value, or a regular expression when `regex`.
    pub value: String,
    /// Whether `value` is a regular expression.
    pub regex: bool,
}

impl Pin {
    /// `label="value"`.
    pub fn exact(label: &str, value: &str) -> Pin {
        Pin {
            label: label.to_owned(),
            value: value.to_owned(),
            regex: false,
        }
    }

    /// `label=~"<glob as a regex>"`: a Redis `MATCH` pattern (`*`, `?`, `[…]`, `\x`).
    pub fn glob(label: &str, glob: &str) -> Pin {
        let mut re = String::new();
        let mut chars = glob.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '\\' => match chars.next() {
                    Some(n) => push_literal(&mut re, n),
                    None => push_literal(&mut re, '\\'),
                },
                // A class passes through: Redis and RE2 read `[a-c]` and `[^x]` alike.
                '[' => {
                    re.push('[');
                    for n in chars.by_ref() {
                        if n == '\\' {
                            re.push_str("\\\\");
                            continue;
                        }
                        re.push(n);
                        if n == ']' {
                            break;
                        }
                    }
                }
                c => push_literal(&mut re, c),
            }
        }
        Pin {
            label: label.to_owned(),
            value: re,
            regex: true,
        }
    }
}

/// `text` as a regular expression matching exactly it (RE2 and Rust's `regex` alike).
pub fn regex_literal(text: &str) -> String {
    let mut re = String::with_capacity(text.len());
    for c in text.chars() {
        push_literal(&mut re, c);
    }
    re
}

fn push_literal(re: &mut String, c: char) {
    if "\\.+*?()|[]{}^$".contains(c) {
        re.push('\\');
    }
    re.push(c);
}

impl Series {
    /// A series of `shape` under `metric`, labelled by `labels`.
    pub fn new(metric: &str, labels: Vec<String>, shape: Shape) -> Series {
        Series {
            metric: metric.to_owned(),
            labels,
            pins: Vec::new(),
            shape,
            help: None,
            alert: None,
        }
    }

    /// With `pin` added.
    pub fn pinned(mut self, pin: Pin) -> Series {
        self.pins.push(pin);
        self
    }
}

/// The shape of plain gauge values named `metric` with `labels`: a `_timestamp_seconds` name
/// is a point in time; `top_n` (the query ranks and limits its rows) makes a labelled list a
/// table.
pub fn gauge_shape(metric: &str, labels: &[String], top_n: bool) -> Shape {
    if metric.ends_with("_timestamp_seconds") {
        Shape::Timestamp
    } else if top_n && !labels.is_empty() {
        Shape::TopN
    } else {
        Shape::Gauge
    }
}

/// Fails a test when a built-in set of `series` has two panels with one key (their ids
/// would collide on the dashboard) or a description that is not one single-spaced line (a
/// continued string literal that kept its indentation).
#[cfg(test)]
pub fn assert_panels_well_formed(series: &[Series]) {
    for s in series {
        let Shape::Builtin(set) = &s.shape else {
            continue;
        };
        let mut keys = std::collections::HashSet::new();
        for panel in &set.panels {
            assert!(
                keys.insert(panel.key),
                "{}: key {} twice",
                s.metric,
                panel.key
            );
            let d = panel.description;
            assert!(
                !d.contains("  ") && !d.contains('\n') && d.trim() == d,
                "{}: description of {}: {d:?}",
                s.metric,
                panel.key
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_glob_becomes_an_anchored_prometheus_regex() {
        let re = |g: &str| Pin::glob("queue", g).value;
        assert_eq!(re("ai_queue:*"), "ai_queue:.*");
        assert_eq!(re("job.?"), "job\\..");
        assert_eq!(re("q[ab]:*"), "q[ab]:.*");
        assert_eq!(re("a\\*b"), "a\\*b");
        assert_eq!(re("x(1)+"), "x\\(1\\)\\+");
        for (glob, hit, miss) in [
            ("ai_queue:*", "ai_queue:gpu", "xai_queue:"),
            ("job.?", "job.1", "jobx1"),
        ] {
            let anchored = regex::Regex::new(&format!("^(?:{})$", re(glob))).unwrap();
            assert!(anchored.is_match(hit) && !anchored.is_match(miss), "{glob}");
        }
    }

    #[test]
    fn gauge_shapes_follow_the_name_and_the_query() {
        let l = vec!["user".to_owned()];
        assert_eq!(
            gauge_shape("app_last_signup_timestamp_seconds", &[], false),
            Shape::Timestamp
        );
        assert_eq!(gauge_shape("app_top_users", &l, true), Shape::TopN);
        assert_eq!(gauge_shape("app_top_users", &[], true), Shape::Gauge);
        assert_eq!(gauge_shape("app_users", &l, false), Shape::Gauge);
    }
}
