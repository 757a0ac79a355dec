//! The time a queue needs to drain: its ready messages over the acknowledgement rate of the
//! last [`WINDOW`], kept per queue across runs. Quorum queues and streams never report the
//! age of their oldest message, so this is their wait signal: a queue that drains reports how
//! long it will take, one with messages and no acknowledgements how long it has not drained
//! (since its last acknowledgement, or since it was last empty), which grows as an age does.
//!
//! Memory is bounded: one entry per queue of the last run (at most `max_queues`), each at
//! most [`POINTS`] observations of the acknowledgement counter.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// How far back the acknowledgement rate looks.
pub(super) const WINDOW: Duration = Duration::from_secs(300);
/// Observations kept per queue: one at most every `WINDOW / (POINTS - 3)` within the window,
/// one before its start and the latest.
const POINTS: usize = 11;

/// One queue's history.
#[derive(Debug)]
struct History {
    /// (when, acknowledged so far), oldest first; the oldest at or before the window's start.
    acks: VecDeque<(Instant, f64)>,
    /// The last time a message was acknowledged or nothing was waiting.
    progress: Instant,
}

/// Every queue's history, by (vhost, queue).
#[derive(Debug, Default)]
pub(super) struct Drains {
    queues: HashMap<(String, String), History>,
}

impl Drains {
    /// Takes one run's reading of a queue — its ready messages and its acknowledgement count
    /// (0 where the broker counts acknowledgements and has seen none) — and gives its drain
    /// time: `None` until two readings are there, when the count is unknown, and when
    /// nothing waits and nothing was acknowledged.
    pub(super) fn observe(
        &mut self,
        key: (String, String),
        now: Instant,
        ready: Option<f64>,
        acked: Option<f64>,
    ) -> Option<f64> {
        let (Some(ready), Some(acked)) = (ready, acked) else {
            self.queues.remove(&key);
            return None;
        };
        let h = self.queues.entry(key).or_insert_with(|| History {
            acks: VecDeque::new(),
            progress: now,
        });
        match h.acks.back().copied() {
            // A counter that went down: the queue was recreated or its leader restarted.
            Some((_, last)) if acked < last => {
                h.acks.clear();
                h.progress = now;
            }
            Some((_, last)) if acked > last => h.progress = now,
            _ => {}
        }
        if ready <= 0.0 {
            h.progress = now;
        }
        push(&mut h.acks, now, acked);
        let &(first_at, first) = h.acks.front()?;
        let span = now.saturating_duration_since(first_at).as_secs_f64();
        if h.acks.len() < 2 || span <= 0.0 {
            return None;
        }
        let rate = (acked - first) / span;
        match (ready > 0.0, rate > 0.0) {
            (true, true) => Some(ready / rate),
            (true, false) => Some(now.saturating_duration_since(h.progress).as_secs_f64()),
            (false, true) => Some(0.0),
            (false, false) => None,
        }
    }

    /// Forgets the queues not in `seen` (deleted, or no longer among the kept ones).
    pub(super) fn retain(&mut self, seen: &std::collections::HashSet<(String, String)>) {
        self.queues.retain(|k, _| seen.contains(k));
    }
}

/// Adds a reading, keeping one per `WINDOW / (POINTS - 3)` and only the newest before the
/// window's start.
fn push(acks: &mut VecDeque<(Instant, f64)>, now: Instant, acked: f64) {
    let step = WINDOW / (POINTS as u32 - 3);
    let n = acks.len();
    // The newest reading stands in for its step until the step is over.
    if n >= 2 && now.saturating_duration_since(acks[n - 2].0) < step {
        acks[n - 1] = (now, acked);
    } else {
        acks.push_back((now, acked));
    }
    while acks.len() > 2 && now.saturating_duration_since(acks[1].0) >= WINDOW {
        acks.pop_front();
    }
    while acks.len() > POINTS {
        acks.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (String, String) {
        ("/".to_owned(), "jobs".to_owned())
    }

    /// Readings `step` seconds apart: (ready, acked) each; the last drain time.
    fn run(d: &mut Drains, start: Instant, step: u64, readings: &[(f64, f64)]) -> Vec<Option<f64>> {
        readings
            .iter()
            .enumerate()
            .map(|(i, (r, a))| {
                let at = start + Duration::from_secs(step * i as u64);
                d.observe(key(), at, Some(*r), Some(*a))
            })
            .collect()
    }

    #[test]
    fn a_draining_queue_reports_its_ready_over_its_ack_rate() {
        let mut d = Drains::default();
        // 10 acks a second, 600 waiting: a minute.
        let got = run(&mut d, Instant::now(), 10, &[(700.0, 0.0), (600.0, 100.0)]);
        assert_eq!(got, [None, Some(60.0)]);
    }

    #[test]
    fn a_stuck_queue_reports_how_long_it_has_not_drained() {
        let mut d = Drains::default();
        let start = Instant::now();
        let got = run(
            &mut d,
            start,
            60,
            &[(5.0, 7.0), (5.0, 7.0), (9.0, 7.0), (9.0, 7.0)],
        );
        // Never +Inf: the seconds since the last acknowledgement (none since the first run).
        assert_eq!(got, [None, Some(60.0), Some(120.0), Some(180.0)]);
        // An ack moves the clock: from then on it counts again from 0, then the rate answers.
        let later = start + Duration::from_secs(240);
        assert_eq!(
            d.observe(key(), later, Some(8.0), Some(8.0))
                .map(f64::round),
            Some(1920.0)
        );
    }

    #[test]
    fn an_empty_idle_queue_is_absent_and_an_empty_busy_one_is_zero() {
        let mut d = Drains::default();
        assert_eq!(
            run(&mut d, Instant::now(), 10, &[(0.0, 3.0), (0.0, 3.0)]),
            [None, None]
        );
        let mut d = Drains::default();
        assert_eq!(
            run(&mut d, Instant::now(), 10, &[(0.0, 3.0), (0.0, 9.0)]),
            [None, Some(0.0)]
        );
    }

    #[test]
    fn an_unknown_count_forgets_the_queue_and_a_reset_starts_over() {
        let mut d = Drains::default();
        let start = Instant::now();
        run(&mut d, start, 10, &[(5.0, 50.0), (5.0, 60.0)]);
        let t = start + Duration::from_secs(20);
        assert_eq!(d.observe(key(), t, Some(5.0), None), None);
        assert!(d.queues.is_empty());
        run(&mut d, start, 10, &[(5.0, 50.0), (5.0, 60.0)]);
        // The counter went back (the queue was recreated): no rate until a second reading.
        assert_eq!(d.observe(key(), t, Some(5.0), Some(1.0)), None);
    }

    #[test]
    fn the_rate_looks_back_a_window_and_the_history_stays_small() {
        let mut d = Drains::default();
        let start = Instant::now();
        // An hour of 1 s runs, 1 ack a second, 120 waiting: two minutes, whatever the history.
        let mut last = None;
        for i in 0..3600u64 {
            let at = start + Duration::from_secs(i);
            last = d.observe(key(), at, Some(120.0), Some(i as f64));
            assert!(d.queues[&key()].acks.len() <= POINTS);
        }
        assert_eq!(last.map(f64::round), Some(120.0));
        let h = &d.queues[&key()];
        let span = h.acks.back().unwrap().0 - h.acks.front().unwrap().0;
        assert!(span >= WINDOW && span <= WINDOW + WINDOW / 5, "{span:?}");
        // Acks stop: the rate of the window falls, and once the window holds none the queue
        // reports the time since the last one.
        let stop = start + Duration::from_secs(3599);
        let mut at = stop;
        for _ in 0..40 {
            at += Duration::from_secs(10);
            last = d.observe(key(), at, Some(120.0), Some(3599.0));
        }
        assert_eq!(last.map(f64::round), Some(400.0));
    }
}
