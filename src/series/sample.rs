//! What a probe returns: metric families of labelled samples, plus what it had to skip, and
//! the unit of its points in time (unix seconds).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::series::metric::{Metric, MetricType};

/// `t` as unix seconds, the unit of every `_timestamp_seconds` sample (0 before 1970).
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, as unix seconds.
pub fn unix_now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// Now, as whole unix seconds: the unit of API timestamps such as Stripe's `created`.
pub fn unix_now_secs() -> i64 {
    unix_now() as i64
}

/// The state of one histogram series: classic buckets, and the native buckets Prometheus 3
/// reads from the protobuf exposition ([`crate::series::native_histogram`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramData {
    /// Upper bounds, ascending, ending with `f64::INFINITY`.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), one per bound.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// The same observations in native buckets; `None` where nothing tells where they lie
    /// (a count and a sum without buckets).
    pub native: Option<crate::series::native_histogram::NativeBuckets>,
}

impl HistogramData {
    /// An empty histogram over `bounds` (an `+Inf` bucket is added when missing).
    pub fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|v| v.is_finite()).collect();
        b.push(f64::INFINITY);
        HistogramData {
            counts: vec![0; b.len()],
            bounds: b,
            sum: 0.0,
            count: 0,
            native: Some(Default::default()),
        }
    }

    /// Counts one observation; refuses (returning false) one that is not finite or would
    /// make the sum infinite, which no later observation could undo.
    pub fn observe(&mut self, v: f64) -> bool {
        if !v.is_finite() || !(self.sum + v).is_finite() {
            return false;
        }
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len() - 1);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
        if let Some(n) = &mut self.native {
            n.add(v.max(0.0), 1);
        }
        true
    }

    /// A histogram from native buckets alone (kept in a store), with classic buckets at
    /// `bounds`, each a native bucket's upper bound (powers of two are), so that each classic
    /// count is exact.
    pub fn from_native(
        native: &crate::series::native_histogram::NativeBuckets,
        sum: f64,
        count: u64,
        bounds: &[f64],
    ) -> Self {
        let mut out = HistogramData::new(bounds);
        let mut below = native.zero_count;
        let mut it = native.positive.iter().peekable();
        for (i, bound) in out.bounds.iter().enumerate() {
            let mut cumulative = below;
            while let Some((&index, &n)) = it.peek() {
                if bound.is_finite() && crate::series::native_histogram::upper_bound(index) > *bound
                {
                    break;
                }
                cumulative += n;
                it.next();
            }
            out.counts[i] = cumulative - below;
            below = cumulative;
        }
        out.count = count.max(below);
        if let Some(last) = out.counts.last_mut() {
            *last += out.count - below;
        }
        out.sum = sum;
        out.native = Some(native.clone());
        out
    }

    /// Moves the classic buckets onto `ladder` (ascending upper bounds, in seconds): each of
    /// its bounds counts the buckets whose bound is at most it times `slack` (1 where the
    /// ladder's bounds are among the server's own; a little above where the server's sit just
    /// above round ones, as Redis's do). With one ladder for every series, a sum across them
    /// (the nodes of a cluster) has every bound. The native buckets stay as they are.
    pub fn rebucket(&mut self, ladder: &[f64], slack: f64) {
        let mut bounds = Vec::with_capacity(ladder.len() + 1);
        let mut counts = Vec::with_capacity(ladder.len() + 1);
        let mut old = self.bounds.iter().zip(&self.counts).peekable();
        let mut placed = 0u64;
        for &b in ladder {
            let mut here = 0u64;
            while let Some((&bound, &n)) = old.peek() {
                if !(bound.is_finite() && bound <= b * slack) {
                    break;
                }
                here = here.saturating_add(n);
                old.next();
            }
            bounds.push(b);
            counts.push(here);
            placed = placed.saturating_add(here);
        }
        bounds.push(f64::INFINITY);
        counts.push(self.count.saturating_sub(placed));
        self.count = self.count.max(placed);
        self.bounds = bounds;
        self.counts = counts;
    }

    /// A histogram from a server's own buckets: `(upper bound, observations at or below it)`
    /// with ascending bounds, the number of observations and their sum. A cumulative count
    /// that falls is read as the one before it; observations past the last bound count in
    /// `+Inf`. Each bucket's observations count in the native bucket of its upper bound, and
    /// those past the last bound in the native bucket after it ([`crate::series::native_histogram`]).
    pub fn from_cumulative(buckets: &[(f64, u64)], count: u64, sum: f64) -> Self {
        let mut out = HistogramData {
            sum: if sum.is_finite() { sum.max(0.0) } else { 0.0 },
            ..Default::default()
        };
        let mut native = crate::series::native_histogram::NativeBuckets::default();
        let mut below = 0u64;
        let mut last_bound = None;
        for &(bound, cumulative) in buckets {
            if !bound.is_finite() || last_bound.is_some_and(|l| bound <= l) {
                continue;
            }
            let cumulative = cumulative.max(below);
            out.bounds.push(bound);
            out.counts.push(cumulative - below);
            native.add(bound.max(0.0), cumulative - below);
            below = cumulative;
            last_bound = Some(bound);
        }
        out.count = count.max(below);
        out.bounds.push(f64::INFINITY);
        out.counts.push(out.count - below);
        out.native = match last_bound {
            Some(last) => {
                let past = out.count - below;
                if past > 0 {
                    let i = if last > crate::series::native_histogram::ZERO_THRESHOLD {
                        crate::series::native_histogram::index_of(last) + 1
                    } else {
                        crate::series::native_histogram::index_of(f64::MIN_POSITIVE)
                    };
                    *native.positive.entry(i).or_insert(0) += past;
                }
                Some(native)
            }
            None => None,
        };
        out
    }
}

/// One series: its labels (in order) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label pairs, in the order they are exposed.
    pub labels: Vec<(String, String)>,
    /// The value (for a histogram, its count).
    pub value: f64,
    /// The buckets, for histogram families only.
    pub histogram: Option<Box<HistogramData>>,
}

impl Sample {
    /// About the bytes of this sample's lines in the text exposition under `name`: the name,
    /// each label as `k="v",`, the value; a histogram has a line per bucket plus sum and count.
    pub fn encoded_len(&self, name: &str) -> usize {
        let labels: usize = self.labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let line = name.len() + labels + 32;
        match &self.histogram {
            Some(h) => (line + 24) * (h.bounds.len() + 2),
            None => line,
        }
    }
}

/// Samples sharing a metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name (counters end in `_total`).
    pub name: String,
    /// HELP text.
    pub help: String,
    /// Gauge or counter.
    pub kind: MetricType,
    /// The series.
    pub samples: Vec<Sample>,
}

/// The result of one successful probe run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Metric families, in the order they were first produced.
    pub families: Vec<Family>,
    /// Values the probe skipped (SQL NULLs, non-numeric Redis values under a pattern).
    pub skipped: u64,
    /// Series the probe dropped itself before the store's cap (e.g. keys past `max_keys`).
    pub dropped: u64,
    /// Label values cut to [`MAX_LABEL_VALUE_BYTES`].
    pub truncated: u64,
    /// Set when the run failed but still measured something worth publishing (a write canary
    /// whose PUT failed reports `success 0`): the check counts as failed with this error, and
    /// these samples replace the previous ones instead of the last good samples being kept.
    pub failure: Option<crate::series::run_error::RunError>,
    /// Set when the run succeeded but the server cannot give what the check measures (an
    /// extension absent or not loaded, a command it forbids, a role without the privilege):
    /// why, and the fix. The check is then *not measured*: neither a failure to page on nor
    /// OK, and its numbers are absent rather than 0.
    pub unmeasured: Option<String>,
}

impl Output {
    /// Adds a gauge sample to the family `name`, creating the family on first use.
    pub fn gauge(&mut self, name: &str, help: &str, labels: Vec<(String, String)>, value: f64) {
        self.push(name, help, MetricType::Gauge, labels, value);
    }

    /// Adds a counter sample (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: Vec<(String, String)>, value: f64) {
        self.push(name, help, MetricType::Counter, labels, value);
    }

    /// Adds a sample of the built-in metric `m`: one label value per label name of `m`, in
    /// its order (debug builds check the count).
    pub fn add(&mut self, m: &Metric, values: &[&str], value: f64) {
        self.push(m.name, m.help, m.kind, labels_of(m, values), value);
    }

    fn push(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        mut labels: Vec<(String, String)>,
        value: f64,
    ) {
        // NaN and ±Inf (a 100 MB digit string, an `infinity` timestamp, an overflowing
        // product) are no measurement: the sample is skipped and counted, the rest kept.
        if !value.is_finite() {
            self.skipped += 1;
            return;
        }
        for (_, v) in &mut labels {
            if truncate_label_value(v) {
                self.truncated += 1;
            }
        }
        let sample = Sample {
            labels,
            value,
            histogram: None,
        };
        // Probes produce a handful of families, so a linear search beats a map here.
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.samples.push(sample),
            None => self.families.push(Family {
                name: name.to_owned(),
                help: help.to_owned(),
                kind,
                samples: vec![sample],
            }),
        }
    }

    /// Adds a series of the built-in histogram `m`: one label value per label name of `m`.
    pub fn add_histogram(&mut self, m: &Metric, values: &[&str], data: HistogramData) {
        self.histogram(m.name, m.help, labels_of(m, values), data);
    }

    /// Adds a histogram series to the family `name`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: Vec<(String, String)>,
        data: HistogramData,
    ) {
        self.push(name, help, MetricType::Histogram, labels, data.count as f64);
        if let Some(s) = self
            .families
            .iter_mut()
            .find(|f| f.name == name)
            .and_then(|f| f.samples.last_mut())
        {
            s.histogram = Some(Box::new(data));
        }
    }

    /// The value of the first series of family `name` having `label_value` as one of its
    /// label values (any series when empty), for tests that read one number.
    #[cfg(test)]
    pub fn value(&self, name: &str, label_value: &str) -> Option<f64> {
        self.families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| label_value.is_empty() || s.labels.iter().any(|(_, v)| v == label_value))
            .map(|s| s.value)
    }

    /// The values of family `name` whose labels include every pair of `labels`, for tests.
    #[cfg(test)]
    pub fn labelled(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.families
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| &f.samples)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
            .collect()
    }

    /// The value of the one series of family `name` whose labels include every pair of
    /// `labels`, for tests: `None` when there is none, a failed test when there are several.
    #[cfg(test)]
    pub fn labelled_one(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.labelled(name, labels);
        assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
        found.first().copied()
    }

    /// Replaces each value of the family `name` with `f` of it.
    pub fn map_values(&mut self, name: &str, mut f: impl FnMut(f64) -> f64) {
        for fam in self.families.iter_mut().filter(|fam| fam.name == name) {
            for s in &mut fam.samples {
                s.value = f(s.value);
            }
        }
    }

    /// Number of series in all families.
    pub fn series(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// Keeps at most `max` series (first produced first kept); returns how many were dropped.
    pub fn cap(&mut self, max: usize) -> u64 {
        let mut left = max;
        let mut dropped = 0u64;
        for f in &mut self.families {
            if f.samples.len() > left {
                dropped += (f.samples.len() - left) as u64;
                f.samples.truncate(left);
            }
            left -= f.samples.len();
        }
        self.families.retain(|f| !f.samples.is_empty());
        dropped
    }

    /// Keeps series (first produced first kept) while their text exposition stays within
    /// `max_bytes`; returns how many were dropped. Label values are already cut, so this is
    /// what bounds a check of many long label values, whatever `max_series` allows.
    pub fn cap_bytes(&mut self, max_bytes: usize) -> u64 {
        let mut left = max_bytes;
        let mut full = false;
        let mut dropped = 0u64;
        for f in &mut self.families {
            let mut keep = 0;
            for s in &f.samples {
                let n = s.encoded_len(&f.name);
                if full || n > left {
                    full = true;
                    break;
                }
                left -= n;
                keep += 1;
            }
            dropped += (f.samples.len() - keep) as u64;
            f.samples.truncate(keep);
        }
        self.families.retain(|f| !f.samples.is_empty());
        dropped
    }

    /// Removes repeated series (the same labels twice in one family, e.g. two SQL rows with the
    /// same label values), keeping the first; returns how many were removed. A repeated series
    /// would make the whole exposition invalid.
    pub fn dedupe(&mut self) -> u64 {
        let mut removed = 0u64;
        for f in &mut self.families {
            let mut seen = std::collections::HashSet::with_capacity(f.samples.len());
            let before = f.samples.len();
            f.samples.retain(|s| seen.insert(s.labels.clone()));
            removed += (before - f.samples.len()) as u64;
        }
        removed
    }

    /// Appends `labels` to every sample (the check's `const_labels`).
    pub fn add_labels(&mut self, labels: &[(String, String)]) {
        if labels.is_empty() {
            return;
        }
        for f in &mut self.families {
            for s in &mut f.samples {
                s.labels.extend(labels.iter().cloned());
            }
        }
    }
}

/// Shorthand for a label pair.
pub fn label(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// The labels of a sample of the built-in metric `m`: one value per label name of `m`, in its
/// order (debug builds check the count).
fn labels_of(m: &Metric, values: &[&str]) -> Vec<(String, String)> {
    debug_assert_eq!(values.len(), m.labels.len(), "label values of {}", m.name);
    m.labels
        .iter()
        .enumerate()
        .map(|(i, k)| label(k, values.get(i).copied().unwrap_or_default()))
        .collect()
}

/// Longest label value served, in bytes. Values come from the data (a text column, a Redis
/// key, a worker id): without a cap, a few rows of megabyte values would make a scrape of
/// megabytes and hold as much in memory, whatever `max_series` says.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// What replaces the cut end of a label value, so a cut value reads as one.
const CUT_MARKER: &str = "…";

/// The head of a borrowed label value that is enough to label it: the whole value when it fits,
/// else a prefix still longer than [`MAX_LABEL_VALUE_BYTES`], so [`truncate_label_value`] cuts and
/// counts it later. Copying only this head keeps a megabyte cell from being copied whole.
pub fn label_head(value: &str) -> &str {
    let mut end = MAX_LABEL_VALUE_BYTES + 1;
    if value.len() <= end {
        return value;
    }
    while !value.is_char_boundary(end) {
        end += 1;
    }
    &value[..end]
}

/// Cuts `value` to [`MAX_LABEL_VALUE_BYTES`] (at a character boundary, ending in `…`);
/// true when it was cut.
pub fn truncate_label_value(value: &mut String) -> bool {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return false;
    }
    let mut end = MAX_LABEL_VALUE_BYTES - CUT_MARKER.len();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.truncate(end);
    value.push_str(CUT_MARKER);
    // Truncating keeps the allocation: give the megabyte back.
    value.shrink_to_fit();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebucketing_keeps_every_observation_and_gives_every_series_one_ladder() {
        // Redis-like bounds (µs): 1, 2, 4, 8, 16, 33, 66, then past the ladder's top.
        let server = [1.0, 2.0, 4.0, 8.0, 16.0, 33.0, 66.0, 4227.0];
        let cumulative: Vec<(f64, u64)> = server
            .iter()
            .enumerate()
            .map(|(i, b)| (b / 1e6, (i as u64 + 1) * 10))
            .collect();
        let mut h = HistogramData::from_cumulative(&cumulative, 90, 0.5);
        let native = h.native.clone();
        let ladder: Vec<f64> = (0..=6).map(|k| f64::from(1u32 << k) / 1e6).collect();
        h.rebucket(&ladder, 1.04);
        assert_eq!(h.bounds.len(), 8);
        // 33 µs counts under 32, 66 under 64; 4227 µs and the unbounded rest under +Inf.
        assert_eq!(h.counts, [10, 10, 10, 10, 10, 10, 10, 20]);
        assert_eq!(h.counts.iter().sum::<u64>(), h.count);
        assert_eq!(h.native, native, "the native buckets stay");
        // An empty series has the same bounds.
        let mut empty = HistogramData::from_cumulative(&[], 0, 0.0);
        empty.rebucket(&ladder, 1.04);
        assert_eq!(empty.bounds, h.bounds);
        assert_eq!(empty.counts, [0; 8]);
    }

    #[test]
    fn values_that_are_not_finite_are_skipped_and_counted() {
        let mut out = Output::default();
        for v in [1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0] {
            out.gauge("app_x", "x", vec![label("k", v.to_string())], v);
        }
        let kept: Vec<f64> = out.families[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(kept, [1.0, 2.0]);
        assert_eq!(out.skipped, 3);
    }

    #[test]
    fn a_servers_cumulative_buckets_become_classic_and_native_buckets() {
        let h = HistogramData::from_cumulative(&[(0.001, 5), (0.004, 3), (0.016, 9)], 12, 0.05);
        assert_eq!(h.bounds, [0.001, 0.004, 0.016, f64::INFINITY]);
        // A count that fell is read as the one before; three past the last bound.
        assert_eq!(h.counts, [5, 0, 4, 3]);
        assert_eq!(h.count, 12);
        let native = h.native.unwrap();
        assert_eq!(
            native.positive.values().sum::<u64>() + native.zero_count,
            12
        );
        let at = |v: f64| {
            native
                .positive
                .get(&crate::series::native_histogram::index_of(v))
                .copied()
        };
        assert_eq!(at(0.001), Some(5));
        assert_eq!(at(0.016), Some(4));
        assert_eq!(
            native.positive.last_key_value(),
            Some((&(crate::series::native_histogram::index_of(0.016) + 1), &3)),
            "past the last bound: the next native bucket"
        );
        // A count and a sum alone: classic only.
        let bare = HistogramData::from_cumulative(&[], 4, 1.0);
        assert_eq!((bare.counts, bare.native), (vec![4], None));
    }

    #[test]
    fn native_buckets_give_exact_classic_counts_at_powers_of_two() {
        let mut kept = HistogramData::new(&[1.0, 4.0, 64.0]);
        for v in [0.5, 1.0, 3.0, 4.0, 4.5, 100.0] {
            kept.observe(v);
        }
        let native = kept.native.clone().unwrap();
        let again = HistogramData::from_native(&native, kept.sum, kept.count, &[1.0, 4.0, 64.0]);
        assert_eq!(again.counts, kept.counts, "{again:?}");
        assert_eq!((again.count, again.sum), (6, kept.sum));
    }

    #[test]
    fn observations_count_in_native_buckets_too() {
        let mut h = HistogramData::new(&[1.0, 10.0]);
        for v in [0.0, 0.5, 0.5, 3.0, 1e6] {
            assert!(h.observe(v));
        }
        let native = h.native.unwrap();
        assert_eq!(native.zero_count, 1);
        assert_eq!(
            native
                .positive
                .get(&crate::series::native_histogram::index_of(0.5)),
            Some(&2)
        );
        assert_eq!(native.positive.values().sum::<u64>(), 4);
    }

    #[test]
    fn a_histogram_sum_never_becomes_infinite() {
        let mut h = HistogramData::new(&[1.0]);
        assert!(h.observe(0.5));
        assert!(!h.observe(f64::INFINITY));
        assert!(h.observe(1.5e308));
        assert!(!h.observe(1.5e308), "the sum would overflow");
        assert_eq!((h.count, h.sum), (2, 0.5 + 1.5e308));
        assert!(h.observe(2.0), "later observations still count");
    }

    #[test]
    fn the_byte_cap_keeps_the_first_series_that_fit_and_counts_the_rest() {
        let mut o = Output::default();
        for i in 0..10 {
            o.gauge(
                "app_a",
                "",
                vec![label("name", format!("{i}{}", "x".repeat(99)))],
                1.0,
            );
        }
        o.gauge("app_b", "", vec![label("name", "short")], 1.0);
        let one = o.families[0].samples[0].encoded_len("app_a");
        assert!(one > 100, "labels, name and value are counted: {one}");
        let mut all = o.clone();
        assert_eq!(all.cap_bytes(usize::MAX), 0);
        assert_eq!(all, o);
        assert_eq!(o.cap_bytes(one * 3 + 1), 8);
        assert_eq!(o.series(), 3);
        assert_eq!(
            o.families.len(),
            1,
            "nothing after the first series that did not fit"
        );
        assert_eq!(o.cap_bytes(10), 3);
        assert!(o.families.is_empty());
    }

    #[test]
    fn a_label_head_is_whole_when_short_and_still_cut_and_counted_when_long() {
        assert_eq!(label_head("short"), "short");
        let exact = "a".repeat(MAX_LABEL_VALUE_BYTES);
        assert_eq!(label_head(&exact), exact);
        let long = "é".repeat(1_000);
        let head = label_head(&long);
        assert!(head.len() > MAX_LABEL_VALUE_BYTES && head.len() <= MAX_LABEL_VALUE_BYTES + 4);
        let (mut from_head, mut from_whole) = (head.to_owned(), long.clone());
        assert!(truncate_label_value(&mut from_head));
        assert!(truncate_label_value(&mut from_whole));
        assert_eq!(
            from_head, from_whole,
            "cutting the head gives what cutting the whole gives"
        );
    }

    #[test]
    fn long_label_values_are_cut_at_a_character_and_counted() {
        let mut o = Output::default();
        let long = "é".repeat(1_000_000);
        o.gauge("a", "h", vec![label("k", long.as_str())], 1.0);
        o.gauge("a", "h", vec![label("k", "short")], 2.0);
        assert_eq!(o.truncated, 1);
        let cut = &o.families[0].samples[0].labels[0].1;
        assert!(
            cut.len() <= MAX_LABEL_VALUE_BYTES && cut.ends_with('…'),
            "{cut}"
        );
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
        assert_eq!(o.families[0].samples[1].labels[0].1, "short");
    }

    #[test]
    fn dedupe_keeps_the_first_of_repeated_series() {
        let mut o = Output::default();
        o.gauge("a", "h", vec![label("k", "x")], 1.0);
        o.gauge("a", "h", vec![label("k", "x")], 2.0);
        o.gauge("a", "h", vec![label("k", "y")], 3.0);
        assert_eq!(o.dedupe(), 1);
        assert_eq!(
            o.families[0]
                .samples
                .iter()
                .map(|s| s.value)
                .collect::<Vec<_>>(),
            vec![1.0, 3.0]
        );
    }

    #[test]
    fn cap_keeps_first_series_and_counts_the_rest() {
        let mut o = Output::default();
        for i in 0..5 {
            o.gauge("a", "h", vec![label("i", i.to_string())], i as f64);
        }
        o.gauge("b", "h", vec![], 1.0);
        assert_eq!(o.cap(3), 3);
        assert_eq!(o.series(), 3);
        assert_eq!(o.families.len(), 1, "family b emptied and removed");
        assert_eq!(o.families[0].samples[2].value, 2.0);
    }
}
