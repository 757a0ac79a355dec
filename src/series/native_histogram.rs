//! Native histograms: sparse exponential buckets, as Prometheus 3 reads them from the protobuf
//! exposition, kept beside the classic buckets of every histogram the exporter serves.
//!
//! A native bucket `i` of schema `s` holds the values in `(2^((i-1)/2^s), 2^(i/2^s)]`; values
//! at or below [`ZERO_THRESHOLD`] count in the zero bucket. [`SCHEMA`] 3 makes eight buckets
//! per doubling, each about 9 % wide.
//!
//! Where the exporter observes each value itself (log-file and job durations) the native
//! buckets are exact. Where a server hands over buckets of its own (Redis's `LATENCY
//! HISTOGRAM`, MongoDB's latency histograms), each of its buckets is counted in the native
//! bucket holding its upper bound: a value is never reported lower than it was, and at most
//! one native bucket (9 %) plus the server's own bucket width higher. The classic buckets
//! served beside keep the server's bounds exactly.

use std::collections::BTreeMap;

/// The schema of every native histogram served: 2^(2^-3) growth, eight buckets a doubling.
pub const SCHEMA: i32 = 3;

/// Values at or below this count in the zero bucket (client_golang's default, 2^-128).
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The native part of a histogram: the zero bucket and the positive buckets by index
/// (durations are never negative).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NativeBuckets {
    /// Observations at or below [`ZERO_THRESHOLD`].
    pub zero_count: u64,
    /// Observations per bucket index (not cumulative), only buckets holding any.
    pub positive: BTreeMap<i32, u64>,
}

/// The index of the bucket of schema [`SCHEMA`] holding `v` (> [`ZERO_THRESHOLD`], finite).
pub fn index_of(v: f64) -> i32 {
    let per_doubling = f64::from(1 << SCHEMA);
    let mut i = (v.log2() * per_doubling).ceil() as i32;
    // log2 may land a hair off at exact bounds: settle on (lower, upper].
    while upper_bound(i - 1) >= v {
        i -= 1;
    }
    while upper_bound(i) < v {
        i += 1;
    }
    i
}

/// The upper bound of bucket `i` of schema [`SCHEMA`].
pub fn upper_bound(i: i32) -> f64 {
    (f64::from(i) / f64::from(1 << SCHEMA)).exp2()
}

impl NativeBuckets {
    /// Counts `n` observations of value `v` (finite, not negative).
    pub fn add(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        if v <= ZERO_THRESHOLD {
            self.zero_count += n;
        } else {
            *self.positive.entry(index_of(v)).or_insert(0) += n;
        }
    }

    /// The positive buckets as protobuf encodes them: spans of consecutive indexes (the first
    /// offset absolute, the next ones from the end of the span before) and the count of each
    /// bucket as the difference from the one before.
    pub fn spans_and_deltas(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::with_capacity(self.positive.len());
        let mut next: Option<i32> = None;
        let mut last = 0i64;
        for (&i, &count) in &self.positive {
            match next {
                Some(n) if n == i => {
                    if let Some(s) = spans.last_mut() {
                        s.1 += 1;
                    }
                }
                Some(n) => spans.push((i - n, 1)),
                None => spans.push((i, 1)),
            }
            next = Some(i + 1);
            let c = count as i64;
            deltas.push(c - last);
            last = c;
        }
        (spans, deltas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_bucket_whose_upper_bound_holds_them() {
        // 1 is the upper bound of bucket 0; just above it is bucket 1.
        assert_eq!(index_of(1.0), 0);
        assert_eq!(index_of(1.0001), 1);
        assert_eq!(index_of(2.0), 8);
        assert_eq!(index_of(0.5), -8);
        assert_eq!(index_of(0.001), -79);
        for v in [1e-6, 3.3e-5, 0.25, 0.7, 5.0, 123.4, 86_400.0] {
            let i = index_of(v);
            assert!(upper_bound(i - 1) < v && v <= upper_bound(i), "{v} in {i}");
        }
    }

    #[test]
    fn buckets_encode_as_spans_of_consecutive_indexes_and_count_deltas() {
        let mut b = NativeBuckets::default();
        for (i, n) in [(0, 2), (1, 5), (2, 1), (6, 4), (7, 4)] {
            b.add(upper_bound(i), n);
        }
        b.add(0.0, 3);
        assert_eq!(b.zero_count, 3);
        let (spans, deltas) = b.spans_and_deltas();
        assert_eq!(spans, [(0, 3), (3, 2)]);
        assert_eq!(deltas, [2, 3, -4, 3, 0]);
        // Negative indexes start the first span where they are.
        let mut small = NativeBuckets::default();
        small.add(0.001, 1);
        assert_eq!(small.spans_and_deltas(), (vec![(-79, 1)], vec![1]));
        assert_eq!(
            NativeBuckets::default().spans_and_deltas(),
            (vec![], vec![])
        );
    }
}
