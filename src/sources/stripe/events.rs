//! The Events of one Stripe account, read incrementally: what the exporter remembers between
//! runs ([`EventLog`]) and the check that keeps it current.
//!
//! Stripe lists events newest first. A run makes up to three listings, each at most
//! `max_pages` pages:
//!
//! 1. **New events**: `created[gte]` = the newest event seen minus [`OVERLAP`] (the whole
//!    window on the first run). Events already counted are recognised by id and skipped; each
//!    new one is counted in its minute of creation, and remembered as pending when
//!    `pending_webhooks` is above 0. When the page cap stops the listing, the rest becomes a
//!    *gap*, continued by later runs with `starting_after`.
//! 2. **Gaps**: earlier listings the page cap cut short, continued from where they stopped.
//! 3. **Re-check**: while events are pending (or the window is not read whole), one listing of
//!    `delivery_success=false` from the oldest pending event on. A pending event absent from a
//!    part of the window that listing covered was delivered and leaves the count; one it lists
//!    is still undelivered. A re-check the page cap stops continues below where it stopped
//!    (`created[lte]`) at the next run, so every pending event is looked at again in turn.
//!
//! So a quiet account costs one request per run, whatever the size of the window. After a
//! restart the state is empty: the first run lists the window again, bounded by `max_pages`,
//! and later runs fill the gap. Until the window has been read whole the counts are lower
//! bounds and the oldest undelivered event's time an upper bound, and
//! `pulse_stripe_listing_truncated{listing="events"}` is 1.
//!
//! Each listing is applied to the state only once it has been read completely, with no await
//! in between: a run cut off by its timeout leaves the state as the last listing left it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::api::{Api, ListRequest};
use super::{account_label, EVENTS, LOOKBACK, OLDEST_UNDELIVERED, STUCK, TRUNCATED, UNDELIVERED};
use crate::error::ProbeError;
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};

/// Seconds re-read below the newest event seen, so that an event Stripe lists a little late
/// is still counted.
pub const OVERLAP: i64 = 60;

/// Gaps kept at most; past that the oldest is given up and its part of the window stays
/// unread (flagged as truncated) until it leaves the window.
const MAX_GAPS: usize = 16;

/// Pending events remembered at most (about 100 bytes each); past that more are not tracked
/// and the undelivered counts are lower bounds.
pub const MAX_PENDING: usize = 100_000;

/// The fields of a Stripe event this check reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Event type, such as `invoice.paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Webhook endpoints the event has not been delivered to yet.
    pub pending_webhooks: u64,
}

/// Reads the events of a page; an item that is not a Stripe event is a `decode` failure.
fn parse_events(items: Vec<Json>) -> Result<Vec<Event>, ProbeError> {
    super::api::parse_items("v1/events", "a Stripe event", items)
}

/// An event not delivered to every endpoint at the last look.
#[derive(Debug, Clone)]
struct Pending {
    created: i64,
    kind: Arc<str>,
}

/// A listing the page cap cut short: everything at or above `floor` and older than `after`.
#[derive(Debug)]
struct Gap {
    after: String,
    after_created: i64,
    floor: i64,
    /// Ids in the gap's range that are already counted.
    seen: HashSet<String>,
}

/// The listings a run makes: (`created[gte]`, `starting_after`) for new events and gaps.
#[derive(Debug, PartialEq)]
pub struct Cursor {
    /// `created[gte]`.
    pub floor: i64,
    /// `starting_after`, to continue a gap.
    pub after: Option<String>,
}

/// What the exporter remembers of one account's events between runs.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Events counted, by minute of creation (Unix seconds / 60).
    per_minute: BTreeMap<i64, u64>,
    /// Ids of counted events created at or after `newest - OVERLAP`, with their time.
    recent: HashMap<String, i64>,
    /// Creation time of the newest event seen.
    newest: Option<i64>,
    /// A listing of new events has been applied (the window was read from its start once).
    read: bool,
    /// Listings cut short, the newest last.
    gaps: Vec<Gap>,
    /// Events created before this time may be missing: a gap was given up.
    lost_until: i64,
    pending: HashMap<String, Pending>,
    /// Pending events were not remembered for lack of room.
    pending_overflow: bool,
    /// Where a re-check the page cap stopped: the next one lists `created[lte]` this.
    recheck_below: Option<i64>,
    /// One copy of each event type name.
    types: HashSet<Arc<str>>,
}

impl EventLog {
    /// Forgets everything created before `window_start`.
    pub fn prune(&mut self, window_start: i64) {
        self.per_minute = self.per_minute.split_off(&window_start.div_euclid(60));
        self.pending.retain(|_, p| p.created >= window_start);
        self.gaps.retain(|g| g.after_created >= window_start);
        if self.pending.is_empty() {
            self.pending_overflow = false;
        }
    }

    /// True when every event of the window starting at `window_start` has been read.
    pub fn complete(&self, window_start: i64) -> bool {
        self.read && self.gaps.is_empty() && self.lost_until <= window_start
    }

    /// The listing of new events.
    pub fn top(&self, window_start: i64) -> Cursor {
        Cursor {
            floor: self
                .newest
                .map_or(window_start, |n| (n - OVERLAP).max(window_start)),
            after: None,
        }
    }

    /// The gap to continue, if any (the newest first).
    pub fn gap(&self, window_start: i64) -> Option<Cursor> {
        self.gaps.last().map(|g| Cursor {
            floor: g.floor.max(window_start),
            after: Some(g.after.clone()),
        })
    }

    /// Applies a listing of new events read from `floor` (newest first).
    pub fn apply_top(&mut self, floor: i64, events: Vec<Event>, truncated: bool) {
        let seen_before: HashSet<String> = if truncated {
            self.recent.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        let last = events.last().map(|e| (e.id.clone(), e.created));
        for e in events {
            if self.recent.contains_key(&e.id) {
                // Counted already; its delivery may have changed since.
                self.note_delivery(&e);
            } else {
                self.count(e);
            }
        }
        self.read = true;
        if let (true, Some((after, after_created))) = (truncated, last) {
            self.gaps.push(Gap {
                after,
                after_created,
                floor,
                seen: seen_before,
            });
            if self.gaps.len() > MAX_GAPS {
                // Gaps are opened newest last: the first is the oldest, given up.
                let dropped = self.gaps.remove(0);
                self.lost_until = self.lost_until.max(dropped.after_created);
            }
        }
        if let Some(n) = self.newest {
            self.recent.retain(|_, c| *c >= n - OVERLAP);
        }
    }

    /// Applies the continuation of the newest gap.
    pub fn apply_gap(&mut self, events: Vec<Event>, truncated: bool) {
        let Some(mut gap) = self.gaps.pop() else {
            return;
        };
        let last = events.last().map(|e| (e.id.clone(), e.created));
        for e in events {
            if gap.seen.contains(&e.id) || self.recent.contains_key(&e.id) {
                self.note_delivery(&e);
            } else {
                self.count(e);
            }
        }
        if let (true, Some((after, after_created))) = (truncated, last) {
            gap.after = after;
            gap.after_created = after_created;
            self.gaps.push(gap);
        }
    }

    /// The re-check listing: (`created[gte]`, `created[lte]`), or none when nothing is
    /// pending and the window is read whole.
    pub fn recheck(&self, window_start: i64) -> Option<(i64, Option<i64>)> {
        let complete = self.complete(window_start);
        let oldest = self.pending.values().map(|p| p.created).min();
        if complete && oldest.is_none() {
            return None;
        }
        let floor = if complete {
            oldest.unwrap_or(window_start)
        } else {
            window_start
        };
        Some((floor.max(window_start), self.recheck_below))
    }

    /// Applies a `delivery_success=false` listing of `[floor, below]`.
    pub fn apply_recheck(
        &mut self,
        floor: i64,
        below: Option<i64>,
        undelivered: Vec<Event>,
        truncated: bool,
    ) {
        // The part of the range the listing covered whole: above the last item when the page
        // cap stopped it (events of that very second may be on the next page).
        let covered_from = match (truncated, undelivered.last()) {
            (true, Some(last)) => last.created + 1,
            _ => floor,
        };
        let listed: HashSet<&str> = undelivered.iter().map(|e| e.id.as_str()).collect();
        self.pending.retain(|id, p| {
            let covered = p.created >= covered_from && below.is_none_or(|b| p.created <= b);
            !covered || listed.contains(id.as_str())
        });
        self.recheck_below = match (truncated, undelivered.last()) {
            (true, Some(last)) => Some(last.created),
            _ => None,
        };
        for e in &undelivered {
            // Listed as undelivered whatever its counter says.
            self.remember_pending(e);
        }
    }

    fn count(&mut self, e: Event) {
        *self.per_minute.entry(e.created.div_euclid(60)).or_default() += 1;
        self.newest = Some(self.newest.map_or(e.created, |n| n.max(e.created)));
        for gap in &mut self.gaps {
            if (gap.floor..=gap.after_created).contains(&e.created) {
                gap.seen.insert(e.id.clone());
            }
        }
        self.note_delivery(&e);
        self.recent.insert(e.id, e.created);
    }

    fn note_delivery(&mut self, e: &Event) {
        if e.pending_webhooks > 0 {
            self.remember_pending(e);
        } else {
            self.pending.remove(&e.id);
        }
    }

    fn remember_pending(&mut self, e: &Event) {
        if let Some(p) = self.pending.get_mut(&e.id) {
            p.created = e.created;
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending_overflow = true;
            return;
        }
        let kind = match self.types.get(e.kind.as_str()) {
            Some(k) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(e.kind.as_str());
                self.types.insert(k.clone());
                k
            }
        };
        self.pending.insert(
            e.id.clone(),
            Pending {
                created: e.created,
                kind,
            },
        );
    }

    /// Events counted in the window starting at `window_start` (to the minute).
    pub fn events(&self, window_start: i64) -> u64 {
        self.per_minute
            .range(window_start.div_euclid(60)..)
            .map(|(_, n)| n)
            .sum()
    }

    /// Undelivered events by type, and those created at or before `stuck_before`.
    pub fn undelivered(&self, stuck_before: i64) -> BTreeMap<Arc<str>, (u64, u64)> {
        let mut by_type: BTreeMap<Arc<str>, (u64, u64)> = BTreeMap::new();
        for p in self.pending.values() {
            let n = by_type.entry(p.kind.clone()).or_default();
            n.0 += 1;
            if p.created <= stuck_before {
                n.1 += 1;
            }
        }
        by_type
    }

    /// Creation time of the oldest undelivered event.
    pub fn oldest_undelivered(&self) -> Option<i64> {
        self.pending.values().map(|p| p.created).min()
    }

    /// True when the last re-check did not reach its floor or pending events overflowed.
    pub fn undelivered_incomplete(&self) -> bool {
        self.recheck_below.is_some() || self.pending_overflow
    }
}

/// Unix seconds now.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The events check of one account.
pub struct EventsProbe {
    /// Source name.
    pub source: String,
    /// The connected account, if any.
    pub account: Option<String>,
    /// The source's client.
    pub api: Arc<Api>,
    /// The window.
    pub lookback: Duration,
    /// Undelivered for longer than this is stuck.
    pub stuck_after: Duration,
    /// Page cap per listing and run.
    pub max_pages: u32,
    /// What earlier runs read.
    pub log: Mutex<EventLog>,
}

impl EventsProbe {
    fn log(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn list(
        &self,
        query: Vec<(&'static str, String)>,
        after: Option<String>,
        deadline: Instant,
    ) -> Result<(Vec<Event>, bool), ProbeError> {
        let listing = self
            .api
            .list(
                &ListRequest {
                    path: "v1/events",
                    query,
                    account: self.account.as_deref(),
                    starting_after: after,
                    max_pages: self.max_pages,
                },
                deadline,
            )
            .await?;
        Ok((parse_events(listing.items)?, listing.truncated))
    }

    async fn run_once(&self, deadline: Instant) -> Result<Output, ProbeError> {
        let window_start = now() - self.lookback.as_secs() as i64;
        let top = {
            let mut log = self.log();
            log.prune(window_start);
            log.top(window_start)
        };
        let (events, truncated) = self
            .list(
                vec![("created[gte]", top.floor.to_string())],
                None,
                deadline,
            )
            .await?;
        self.log().apply_top(top.floor, events, truncated);

        let gap = self.log().gap(window_start);
        if let Some(gap) = gap {
            let (events, truncated) = self
                .list(
                    vec![("created[gte]", gap.floor.to_string())],
                    gap.after,
                    deadline,
                )
                .await?;
            self.log().apply_gap(events, truncated);
        }

        let recheck = self.log().recheck(window_start);
        if let Some((floor, below)) = recheck {
            let mut query = vec![
                ("delivery_success", "false".to_owned()),
                ("created[gte]", floor.to_string()),
            ];
            if let Some(b) = below {
                query.push(("created[lte]", b.to_string()));
            }
            let (events, truncated) = self.list(query, None, deadline).await?;
            self.log().apply_recheck(floor, below, events, truncated);
        }
        Ok(self.output(window_start))
    }

    fn output(&self, window_start: i64) -> Output {
        let log = self.log();
        let account = account_label(self.account.as_deref());
        let labels = [self.source.as_str(), account];
        let mut out = Output::default();
        let stuck_before = now() - self.stuck_after.as_secs() as i64;
        for (kind, (undelivered, stuck)) in log.undelivered(stuck_before) {
            out.add(
                &UNDELIVERED,
                &[&self.source, account, &kind],
                undelivered as f64,
            );
            if stuck > 0 {
                out.add(&STUCK, &[&self.source, account, &kind], stuck as f64);
            }
        }
        if let Some(o) = log.oldest_undelivered() {
            out.add(&OLDEST_UNDELIVERED, &labels, o as f64);
        }
        out.add(&EVENTS, &labels, log.events(window_start) as f64);
        out.add(&LOOKBACK, &labels, self.lookback.as_secs_f64());
        for (listing, cut) in [
            ("events", !log.complete(window_start)),
            ("undelivered_events", log.undelivered_incomplete()),
        ] {
            out.add(
                &TRUNCATED,
                &[&self.source, account, listing],
                f64::from(u8::from(cut)),
            );
        }
        out
    }
}

impl Probe for EventsProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(self.run_once(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    const T: i64 = 1_800_000_000;

    fn ev(i: i64, pending: u64) -> Event {
        Event {
            id: format!("evt_{i}"),
            created: T + i,
            kind: if i % 2 == 0 {
                "invoice.paid"
            } else {
                "charge.succeeded"
            }
            .to_owned(),
            pending_webhooks: pending,
        }
    }

    /// Events `from..=to`, newest first, as Stripe lists them.
    fn listing(from: i64, to: i64, pending: impl Fn(i64) -> u64) -> Vec<Event> {
        (from..=to).rev().map(|i| ev(i, pending(i))).collect()
    }

    #[test]
    fn the_first_run_reads_the_window_and_later_runs_only_what_is_new() {
        let mut log = EventLog::default();
        let start = T - 1000;
        assert_eq!(
            log.top(start),
            Cursor {
                floor: start,
                after: None
            }
        );
        log.apply_top(start, listing(0, 299, |_| 0), false);
        assert_eq!(log.events(start), 300);
        assert!(log.complete(start));
        assert_eq!(log.recheck(start), None, "nothing pending: no re-check");
        // The next run starts OVERLAP seconds below the newest and skips what it counted.
        assert_eq!(log.top(start).floor, T + 299 - OVERLAP);
        log.apply_top(T + 239, listing(239, 310, |_| 0), false);
        assert_eq!(log.events(start), 311);
    }

    #[test]
    fn a_cut_listing_leaves_a_gap_that_later_runs_fill_without_double_counting() {
        let mut log = EventLog::default();
        let start = T - 1000;
        // Window of 500 events; the page cap lets 200 through per listing.
        log.apply_top(start, listing(300, 499, |_| 0), true);
        assert_eq!(log.events(start), 200);
        assert!(!log.complete(start));
        let gap = log.gap(start).unwrap();
        assert_eq!(
            gap,
            Cursor {
                floor: start,
                after: Some("evt_300".into())
            }
        );
        // New events arrive; the top listing overlaps what was read.
        log.apply_top(T + 439, listing(439, 520, |_| 0), false);
        assert_eq!(log.events(start), 221);
        log.apply_gap(listing(100, 299, |_| 0), true);
        assert_eq!(log.gap(start).unwrap().after.as_deref(), Some("evt_100"));
        log.apply_gap(listing(0, 99, |_| 0), false);
        assert!(log.complete(start));
        assert_eq!(log.events(start), 521, "every event once");
    }

    #[test]
    fn a_gap_overlapped_by_a_later_top_listing_counts_each_event_once() {
        // Ten events a second: a page of 100 spans 10 s, less than the overlap.
        let dense = |from: i64, to: i64| -> Vec<Event> {
            (from..=to)
                .rev()
                .map(|i| Event {
                    created: T + i / 10,
                    ..ev(i, 0)
                })
                .collect()
        };
        let mut log = EventLog::default();
        let start = T - 1000;
        log.apply_top(start, dense(0, 99), false);
        // 2,900 new events by the next run; the cap lets the newest 100 through.
        let top = log.top(start);
        assert_eq!(top.floor, start.max(T + 9 - OVERLAP));
        log.apply_top(top.floor, dense(2900, 2999), true);
        // The next top listing, from newest - OVERLAP, reaches down into the gap.
        let top = log.top(start);
        assert_eq!(top.floor, T + 299 - OVERLAP);
        log.apply_top(top.floor, dense(2390, 3100), false);
        let gap = log.gap(start).unwrap();
        assert_eq!(gap.after.as_deref(), Some("evt_2900"));
        log.apply_gap(dense(0, 2899), false);
        assert!(log.complete(start));
        assert_eq!(log.events(start), 3101, "every event once");
    }

    #[test]
    fn an_account_without_events_is_read_whole_and_costs_one_listing() {
        let mut log = EventLog::default();
        assert!(!log.complete(T));
        log.apply_top(T, Vec::new(), false);
        assert!(log.complete(T));
        assert_eq!(log.recheck(T), None);
        assert_eq!(log.top(T + 60).floor, T + 60);
    }

    #[test]
    fn pending_events_leave_when_a_recheck_no_longer_lists_them() {
        let mut log = EventLog::default();
        let start = T - 10_000;
        log.apply_top(start, listing(0, 99, |i| u64::from(i % 10 == 0)), false);
        let by_type = log.undelivered(T + 50);
        let total: u64 = by_type.values().map(|v| v.0).sum();
        let stuck: u64 = by_type.values().map(|v| v.1).sum();
        assert_eq!(
            (total, stuck),
            (10, 6),
            "0,10,..,50 are older than the grace"
        );
        assert_eq!(log.oldest_undelivered(), Some(T));
        assert_eq!(log.recheck(start), Some((T, None)));
        // evt_0 and evt_50 were delivered since.
        let still: Vec<Event> = [90, 80, 70, 60, 40, 30, 20, 10]
            .iter()
            .map(|&i| ev(i, 1))
            .collect();
        log.apply_recheck(T, None, still, false);
        assert_eq!(log.oldest_undelivered(), Some(T + 10));
        assert_eq!(
            log.undelivered(T + 50).values().map(|v| v.0).sum::<u64>(),
            8
        );
        // The top listing's overlap shows evt_90 delivered.
        log.apply_top(
            T + 39,
            listing(39, 99, |i| {
                u64::from(i % 10 == 0 && ![0, 50, 90].contains(&i))
            }),
            false,
        );
        assert_eq!(
            log.undelivered(T + 50).values().map(|v| v.0).sum::<u64>(),
            7
        );
    }

    #[test]
    fn a_cut_recheck_keeps_what_it_did_not_reach_and_continues_below() {
        let mut log = EventLog::default();
        let start = T - 10_000;
        log.apply_top(start, listing(0, 99, |_| 1), false);
        // The re-check lists 99..=50 and stops: 0..=49 are not known to be delivered.
        log.apply_recheck(T, None, listing(50, 99, |_| 1), true);
        assert_eq!(log.oldest_undelivered(), Some(T));
        assert!(log.undelivered_incomplete());
        assert_eq!(log.recheck(start), Some((T, Some(T + 50))));
        // Below: only 10..=50 still undelivered.
        log.apply_recheck(T, Some(T + 50), listing(10, 50, |_| 1), false);
        assert_eq!(log.oldest_undelivered(), Some(T + 10));
        assert!(!log.undelivered_incomplete());
        assert_eq!(log.undelivered(T).values().map(|v| v.0).sum::<u64>(), 90);
    }

    #[test]
    fn an_incomplete_window_is_rechecked_whole_so_old_failures_show() {
        let mut log = EventLog::default();
        let start = T - 10_000;
        log.apply_top(start, listing(900, 999, |_| 0), true);
        assert_eq!(log.recheck(start), Some((start, None)));
        log.apply_recheck(start, None, vec![ev(5, 1)], false);
        assert_eq!(log.oldest_undelivered(), Some(T + 5));
    }

    #[test]
    fn the_window_slides() {
        let mut log = EventLog::default();
        log.apply_top(T - 1000, listing(0, 599, |i| u64::from(i < 10)), false);
        log.prune(T + 300);
        assert_eq!(log.events(T + 300), 300);
        assert_eq!(
            log.oldest_undelivered(),
            None,
            "pending events left the window"
        );
    }

    #[test]
    fn items_that_are_not_events_are_a_decode_failure() {
        let good = serde_json::json!({"id": "evt_1", "object": "event", "created": 1, "type": "x", "pending_webhooks": 0, "livemode": false});
        assert_eq!(parse_events(vec![good]).unwrap()[0].id, "evt_1");
        let bad = serde_json::json!({"id": "evt_1", "created": "yesterday", "type": "x", "pending_webhooks": 0});
        let e = parse_events(vec![bad]).unwrap_err();
        assert_eq!(e.reason(), Reason::Decode);
        assert!(e.to_string().contains("not a Stripe event"), "{e}");
    }

    #[test]
    fn gaps_past_the_cap_are_given_up_and_flagged() {
        let mut log = EventLog::default();
        let start = T - 100_000;
        for run in 0..=MAX_GAPS as i64 {
            let top = 1000 * (run + 1);
            log.apply_top(T + top - 100 - OVERLAP, listing(top - 99, top, |_| 0), true);
        }
        assert_eq!(log.gaps.len(), MAX_GAPS);
        assert!(log.lost_until > start && !log.complete(start));
        // Once the lost part leaves the window, only the open gaps keep it incomplete.
        while log.gap(start).is_some() {
            log.apply_gap(Vec::new(), false);
        }
        assert!(!log.complete(start));
        assert!(log.complete(log.lost_until));
    }
}
