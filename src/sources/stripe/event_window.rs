//! What the exporter remembers of one Stripe account's events between runs ([`EventWindow`]),
//! read incrementally: which listings the next run makes, and what each one read changes.
//!
//! Stripe lists events newest first. A run makes up to three listings, each at most
//! `max_pages` pages:
//!
//! 1. **New events**: `ending_before` the newest *settled* event, one created more than
//!    [`OVERLAP`] before a listing that read it (Stripe may list an event a little after its
//!    creation time; by then every event of that second is listed). This walks up from the
//!    cursor, oldest first, and re-reads only the last minute or so; events already counted
//!    are recognised by id. A walk the page cap stops is continued from the newest event it
//!    read at the next run, so a burst never leaves a hole. Without a settled event (the
//!    first run, or an account whose events are all newer than a minute) the listing is
//!    `created[gte]` the window start or the last listing minus [`OVERLAP`], newest first;
//!    when the page cap stops that one, the rest becomes a *gap*.
//! 2. **Gaps**: listings the page cap cut short, continued with `starting_after` in the order
//!    they were opened, one a run, each until it is finished: the oldest is never starved.
//! 3. **Re-check**: while events are undelivered (or the window is not read whole), one
//!    listing of `delivery_success=false` from the oldest undelivered event on. An event it no
//!    longer lists was delivered (by a retry or a resend) and leaves every count; one it
//!    lists is still undelivered. The first re-check after a start covers Stripe's whole
//!    retention ([`RETENTION`], 30 days), so events given up before a restart are found
//!    again. A re-check the page cap stops continues below where it stopped
//!    (`created[lte]`) at the next run.
//!
//! An undelivered event is **retried** while Stripe still retries it, then **abandoned**:
//! once it is older than the retry horizon (3 days in live mode), or once an endpoint that
//! was enabled when the event was created is seen disabled or deleted (Stripe stops retrying
//! to it). An abandoned event stays counted until it is delivered, acknowledged in the config,
//! or older than [`RETENTION`], whatever the lookback.
//!
//! So a quiet account costs one request per run, two while events are undelivered, whatever
//! the size of the window. Until the window has been read whole the counts are lower
//! bounds and `pulse_stripe_listing_truncated{listing="events"}` is 1.
//!
//! Each listing is applied to the state only once it has been read completely, with no await
//! in between: a run cut off by its timeout leaves the state as the last listing left it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::api::RETENTION;
use super::listing::{Acknowledged, ByType, Event, GapCursor, GiveUp, Recheck, Top, OVERLAP};

/// The payment outcomes every account publishes, read or not, so that a drop to none is a
/// series at 0 and not a missing one: PulseStripePaymentsFailing and the `payments` business
/// signal read them (prometheus/rules/pulse-business.yml).
pub const PAYMENT_OUTCOMES: [&str; 4] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "invoice.paid",
    "invoice.payment_failed",
];

/// Gaps kept at most; past that the oldest is given up and its part of the window stays
/// unread (flagged as truncated) until it leaves the window.
const MAX_GAPS: usize = 16;

/// Undelivered events remembered at most (about 100 bytes each); past that more are not
/// tracked and the undelivered counts are lower bounds.
pub const MAX_UNDELIVERED: usize = 100_000;

/// An event not delivered to every endpoint at the last look.
#[derive(Debug, Clone)]
struct Undelivered {
    created: i64,
    kind: Arc<str>,
    /// Stripe no longer retries it; stays so until it is delivered after all.
    abandoned: bool,
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

/// What the exporter remembers of one account's events between runs.
#[derive(Debug, Default)]
pub struct EventWindow {
    /// Events counted, by minute of creation (Unix seconds / 60).
    per_minute: BTreeMap<i64, u64>,
    /// Ids of counted events the next listings may show again, with their time.
    recent: HashMap<String, i64>,
    /// The newest settled event (id, created): the next listing reads what is newer.
    settled: Option<(String, i64)>,
    /// A walk up the page cap stopped continues after this event.
    climbing: Option<String>,
    /// That walk stopped at events never read before: newer ones may be unread.
    climbing_frontier: bool,
    /// When the last listing of new events that reached the newest event was made.
    listed_at: Option<i64>,
    /// A listing of new events has been applied (the window was read from its start once).
    read: bool,
    /// Listings cut short, in the order they were opened.
    gaps: VecDeque<Gap>,
    /// Events created before this time may be missing: a gap was given up.
    lost_until: i64,
    undelivered: HashMap<String, Undelivered>,
    /// Undelivered events were not remembered for lack of room.
    overflow: bool,
    /// Where a re-check the page cap stopped: the next one lists `created[lte]` this.
    recheck_below: Option<i64>,
    /// A re-check has covered Stripe's whole retention since the start.
    retention_checked: bool,
    /// One copy of each event type name.
    types: HashSet<Arc<str>>,
    /// Events created since the first listing, by type: a counter, so that its increase over
    /// an hour is the events of that hour. Events older than the exporter are history, read
    /// in bulk at a start: counted, they would be a burst of a past hour's events.
    read_by_type: BTreeMap<Arc<str>, u64>,
    /// When the first listing was made: the events created since are the ones counted by type.
    count_from: Option<i64>,
    /// Events created since the first listing that Stripe gave up on: a counter, the delivery
    /// objective's spent events against `read_by_type`'s.
    abandoned_total: u64,
    /// Those counted, with their creation time (until Stripe no longer lists them), so that
    /// one acknowledged and found again by a re-check is not counted twice.
    abandoned_counted: HashMap<String, i64>,
}

impl EventWindow {
    /// Forgets the counts of events created before `window_start` and undelivered events
    /// Stripe no longer lists.
    pub fn prune(&mut self, now: i64, window_start: i64) {
        let retention_start = now - RETENTION;
        self.per_minute = self.per_minute.split_off(&window_start.div_euclid(60));
        self.undelivered.retain(|_, u| u.created >= retention_start);
        self.abandoned_counted
            .retain(|_, created| *created >= retention_start);
        self.gaps.retain(|g| g.after_created >= window_start);
        if self.undelivered.is_empty() {
            self.overflow = false;
        }
        // A cursor Stripe may no longer list (an hour's margin) is dropped for a time floor.
        if self
            .settled
            .as_ref()
            .is_some_and(|(_, c)| *c < retention_start + 3600)
        {
            self.settled = None;
        }
    }

    /// True when every event of the window starting at `window_start` has been read.
    pub fn complete(&self, window_start: i64) -> bool {
        self.read
            && self.gaps.is_empty()
            && self.lost_until <= window_start
            && !self.climbing_frontier
    }

    /// The listing of new events.
    pub fn top(&self, window_start: i64) -> Top {
        match (&self.climbing, &self.settled) {
            (Some(id), _) | (None, Some((id, _))) => Top::Newer(id.clone()),
            (None, None) => Top::Since(match (self.read, self.listed_at) {
                (true, Some(at)) => (at - OVERLAP).max(window_start),
                _ => window_start,
            }),
        }
    }

    /// Stripe refused the cursor (it no longer lists that event): the next run lists by time.
    pub fn forget_cursor(&mut self) {
        self.settled = None;
        self.climbing = None;
        self.climbing_frontier = false;
    }

    /// The gap to continue, if any: the first opened.
    pub fn gap(&self, window_start: i64) -> Option<GapCursor> {
        self.gaps.front().map(|g| GapCursor {
            floor: g.floor.max(window_start),
            after: g.after.clone(),
        })
    }

    /// Applies a listing of new events made at `now`: oldest first for [`Top::Newer`],
    /// newest first for [`Top::Since`].
    pub fn apply_top(&mut self, top: &Top, events: Vec<Event>, truncated: bool, now: i64) {
        let newest_first = matches!(top, Top::Since(_));
        let gap_seen: HashSet<String> = if truncated && newest_first {
            self.recent.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        let oldest_read = events.last().map(|e| (e.id.clone(), e.created));
        // A page whose far end was read before reaches what earlier listings read or left
        // as a gap: nothing below it is new. Without this, a window of fresh events (none
        // settled yet) longer than the page cap opened a new gap at every run, re-listing
        // the same page while the window never read whole.
        let reached_read = oldest_read
            .as_ref()
            .is_some_and(|(id, _)| self.recent.contains_key(id));
        let settled = events
            .iter()
            .filter(|e| e.created < now - OVERLAP)
            .reduce(|a, b| if newest_first { a } else { b })
            .map(|e| (e.id.clone(), e.created));
        let newest_read = if newest_first {
            events.first()
        } else {
            events.last()
        }
        .map(|e| e.id.clone());
        let newest_is_new = newest_read
            .as_ref()
            .is_some_and(|id| !self.recent.contains_key(id));
        self.count_from.get_or_insert(now);
        for e in events {
            self.count_or_note(e, None);
        }
        self.read = true;
        match top {
            Top::Since(floor) => {
                // The part below what was read becomes a gap; what was read reaches the top.
                self.listed_at = Some(now);
                if let (true, false, Some((after, after_created))) =
                    (truncated, reached_read, oldest_read)
                {
                    self.gaps.push_back(Gap {
                        after,
                        after_created,
                        floor: *floor,
                        seen: gap_seen,
                    });
                    if self.gaps.len() > MAX_GAPS {
                        let oldest = self
                            .gaps
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, g)| g.after_created)
                            .map(|(i, _)| i)
                            .unwrap_or(0);
                        if let Some(dropped) = self.gaps.remove(oldest) {
                            self.lost_until = self.lost_until.max(dropped.after_created);
                        }
                    }
                }
            }
            Top::Newer(_) => {
                // A walk the cap stops among events read before is re-reading the last
                // minute: the window is still whole. Stopped among new ones, it is not.
                self.climbing_frontier = truncated && newest_is_new;
                if truncated {
                    self.climbing = newest_read;
                } else {
                    self.climbing = None;
                    self.listed_at = Some(now);
                }
            }
        }
        if let Some((id, created)) = settled {
            if self.settled.as_ref().is_none_or(|(_, c)| created >= *c) {
                self.settled = Some((id, created));
            }
        }
        self.trim_recent();
    }

    /// Applies the continuation of the first gap (newest first).
    pub fn apply_gap(&mut self, events: Vec<Event>, truncated: bool) {
        let Some(mut gap) = self.gaps.pop_front() else {
            return;
        };
        let last = events.last().map(|e| (e.id.clone(), e.created));
        for e in events {
            self.count_or_note(e, Some(&gap.seen));
        }
        if let (true, Some((after, after_created))) = (truncated, last) {
            gap.after = after;
            gap.after_created = after_created;
            self.gaps.push_front(gap);
        }
    }

    /// Keeps the ids the next listings of new events may show again: from the settled
    /// event's time, or the last listing's minus the overlap.
    fn trim_recent(&mut self) {
        let keep_from = [
            self.settled.as_ref().map(|(_, c)| *c),
            self.listed_at.map(|a| a - OVERLAP),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(from) = keep_from {
            self.recent.retain(|_, c| *c >= from);
        }
    }

    /// The re-check listing, or none when nothing is undelivered, the window is read whole
    /// and Stripe's retention has been re-checked once.
    pub fn recheck(&self, now: i64, window_start: i64) -> Option<Recheck> {
        let retention_start = now - RETENTION;
        let complete = self.complete(window_start);
        let oldest = self.undelivered.values().map(|u| u.created).min();
        if complete && self.retention_checked && oldest.is_none() {
            return None;
        }
        let mut floor = oldest.unwrap_or(i64::MAX);
        if !complete {
            floor = floor.min(window_start);
        }
        let whole_retention = !self.retention_checked;
        if whole_retention {
            floor = retention_start;
        }
        Some(Recheck {
            floor: floor.max(retention_start),
            below: self.recheck_below,
            whole_retention,
        })
    }

    /// Applies a `delivery_success=false` listing (newest first).
    pub fn apply_recheck(&mut self, r: &Recheck, undelivered: Vec<Event>, truncated: bool) {
        // The part of the range the listing covered whole: above the last item when the page
        // cap stopped it (events of that very second may be on the next page).
        let covered_from = match (truncated, undelivered.last()) {
            (true, Some(last)) => last.created + 1,
            _ => r.floor,
        };
        let listed: HashSet<&str> = undelivered.iter().map(|e| e.id.as_str()).collect();
        self.undelivered.retain(|id, u| {
            let covered = u.created >= covered_from && r.below.is_none_or(|b| u.created <= b);
            !covered || listed.contains(id.as_str())
        });
        self.recheck_below = match (truncated, undelivered.last()) {
            (true, Some(last)) => Some(last.created),
            _ => None,
        };
        if r.whole_retention && !truncated {
            self.retention_checked = true;
        }
        for e in &undelivered {
            // Listed as undelivered whatever its counter says.
            self.remember(e);
        }
    }

    /// Marks the undelivered events Stripe gave up on, and forgets those acknowledged.
    pub fn give_up(&mut self, rule: GiveUp, acknowledged: &Acknowledged) {
        for (id, u) in self.undelivered.iter_mut() {
            let stopped = rule.endpoint_stopped.is_some_and(|s| u.created <= s);
            if u.abandoned || !(u.created <= rule.horizon || stopped) {
                continue;
            }
            u.abandoned = true;
            // Events older than the first listing are history, as in `read_by_type`; past
            // the bound, one is counted without being remembered.
            let since_start = self.count_from.is_some_and(|from| u.created >= from);
            let known = self.abandoned_counted.contains_key(id);
            if since_start && !known {
                self.abandoned_total += 1;
                if self.abandoned_counted.len() < MAX_UNDELIVERED {
                    self.abandoned_counted.insert(id.clone(), u.created);
                }
            }
        }
        self.undelivered
            .retain(|id, u| !(u.abandoned && acknowledged.covers(id, u.created)));
    }

    /// Counts a new event, or notes the delivery of one counted already (in `recent` or in
    /// `also_seen`).
    fn count_or_note(&mut self, e: Event, also_seen: Option<&HashSet<String>>) {
        if self.recent.contains_key(&e.id) || also_seen.is_some_and(|s| s.contains(&e.id)) {
            self.note_delivery(&e);
            return;
        }
        *self.per_minute.entry(e.created.div_euclid(60)).or_default() += 1;
        if self.count_from.is_some_and(|from| e.created >= from) {
            let kind = self.intern(&e.kind);
            *self.read_by_type.entry(kind).or_default() += 1;
        }
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
            self.remember(e);
        } else {
            // Delivered, by a retry or a resend: abandoned or not, it is done.
            self.undelivered.remove(&e.id);
        }
    }

    fn remember(&mut self, e: &Event) {
        if let Some(u) = self.undelivered.get_mut(&e.id) {
            u.created = e.created;
            return;
        }
        if self.undelivered.len() >= MAX_UNDELIVERED {
            self.overflow = true;
            return;
        }
        let kind = self.intern(&e.kind);
        self.undelivered.insert(
            e.id.clone(),
            Undelivered {
                created: e.created,
                kind,
                abandoned: false,
            },
        );
    }

    /// The one copy of the type name `kind`.
    fn intern(&mut self, kind: &str) -> Arc<str> {
        if let Some(k) = self.types.get(kind) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(kind);
        self.types.insert(k.clone());
        k
    }

    /// Events created since the first listing, by type, with every payment outcome present.
    pub fn read_by_type(&self) -> BTreeMap<&str, u64> {
        let mut out: BTreeMap<&str, u64> = PAYMENT_OUTCOMES.iter().map(|t| (*t, 0)).collect();
        for (kind, n) in &self.read_by_type {
            out.insert(&**kind, *n);
        }
        out
    }

    /// Events created since the first listing that Stripe gave up on, each counted once.
    pub fn abandoned_total(&self) -> u64 {
        self.abandoned_total
    }

    /// Events counted in the window starting at `window_start` (to the minute).
    pub fn events(&self, window_start: i64) -> u64 {
        self.per_minute
            .range(window_start.div_euclid(60)..)
            .map(|(_, n)| n)
            .sum()
    }

    /// Undelivered events by type; stuck are the retried ones created at or before
    /// `stuck_before`.
    pub fn by_type(&self, stuck_before: i64) -> BTreeMap<Arc<str>, ByType> {
        let mut by_type: BTreeMap<Arc<str>, ByType> = BTreeMap::new();
        for u in self.undelivered.values() {
            let n = by_type.entry(u.kind.clone()).or_default();
            if u.abandoned {
                n.abandoned += 1;
            } else {
                n.retried += 1;
                n.stuck += u64::from(u.created <= stuck_before);
            }
        }
        by_type
    }

    /// Creation time of the oldest event Stripe still retries, and of the oldest abandoned.
    pub fn oldest(&self) -> (Option<i64>, Option<i64>) {
        let oldest = |abandoned: bool| {
            self.undelivered
                .values()
                .filter(|u| u.abandoned == abandoned)
                .map(|u| u.created)
                .min()
        };
        (oldest(false), oldest(true))
    }

    /// True while the undelivered counts may be short: the last re-check did not reach its
    /// floor, Stripe's retention has not been re-checked whole yet, or too many events were
    /// undelivered to remember.
    pub fn undelivered_incomplete(&self) -> bool {
        self.recheck_below.is_some() || !self.retention_checked || self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000;

    fn at(i: i64, created: i64, pending: u64) -> Event {
        Event {
            id: format!("evt_{i}"),
            created,
            kind: if i % 2 == 0 {
                "invoice.paid"
            } else {
                "charge.succeeded"
            }
            .to_owned(),
            pending_webhooks: pending,
        }
    }

    fn ev(i: i64, pending: u64) -> Event {
        at(i, T + i, pending)
    }

    /// Events `from..=to`, newest first, as Stripe lists them.
    fn listing(from: i64, to: i64, pending: impl Fn(i64) -> u64) -> Vec<Event> {
        (from..=to).rev().map(|i| ev(i, pending(i))).collect()
    }

    /// The same, oldest first, as an `ending_before` walk reads them.
    fn upward(from: i64, to: i64, pending: impl Fn(i64) -> u64) -> Vec<Event> {
        (from..=to).map(|i| ev(i, pending(i))).collect()
    }

    fn none(_: i64) -> u64 {
        0
    }

    fn newer(i: i64) -> Top {
        Top::Newer(format!("evt_{i}"))
    }

    /// Applies the first run's re-check of Stripe's retention, listing `undelivered`.
    fn first_recheck(log: &mut EventWindow, now: i64, start: i64, undelivered: Vec<Event>) {
        let r = log.recheck(now, start).expect("a first re-check");
        assert!(r.whole_retention);
        assert_eq!(r.floor, now - RETENTION);
        log.apply_recheck(&r, undelivered, false);
    }

    #[test]
    fn events_are_counted_by_type_from_the_first_listing_on_with_the_payment_outcomes_always_present(
    ) {
        let mut log = EventWindow::default();
        let read = |log: &EventWindow| -> Vec<(String, u64)> {
            log.read_by_type()
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect()
        };
        let mut none_yet: Vec<(String, u64)> = PAYMENT_OUTCOMES
            .iter()
            .map(|t| (t.to_string(), 0))
            .collect();
        none_yet.sort();
        assert_eq!(read(&log), none_yet);
        // The window read at the start is history: counted in the window, not by type.
        let (now, start) = (T + 100, T - 5000);
        log.apply_top(&Top::Since(start), listing(0, 99, none), false, now);
        assert_eq!(log.events(start), 100);
        assert_eq!(read(&log), none_yet);
        // Events created after it are counted once each, even when listed twice.
        let later = |i: i64| at(i, T + 100 + i, 0);
        log.apply_top(
            &newer(99),
            vec![later(200), later(201), later(202)],
            false,
            T + 400,
        );
        log.apply_top(&newer(99), vec![later(202), later(203)], false, T + 500);
        let n = |kind: &str| log.read_by_type()[kind];
        assert_eq!(n("invoice.paid"), 2, "evt_200 and evt_202");
        assert_eq!(n("charge.succeeded"), 2, "evt_201 and evt_203");
        assert_eq!(n("payment_intent.payment_failed"), 0);
        assert_eq!(log.read_by_type().len(), 5);
    }

    #[test]
    fn later_runs_read_up_from_the_newest_settled_event_and_quiet_runs_cost_one_listing() {
        let mut log = EventWindow::default();
        let (now, start) = (T + 400, T - 5000);
        assert_eq!(log.top(start), Top::Since(start));
        log.apply_top(&Top::Since(start), listing(0, 299, none), false, now);
        assert_eq!(log.events(start), 300);
        assert!(log.complete(start));
        first_recheck(&mut log, now, start, Vec::new());
        assert_eq!(log.recheck(now, start), None, "nothing undelivered");
        assert_eq!(log.top(start), newer(299));
        // New events: those of the last minute before the listing are not settled yet.
        log.apply_top(&newer(299), upward(300, 410, none), false, T + 420);
        assert_eq!(log.events(start), 411);
        assert_eq!(log.top(start), newer(359));
        // The next run reads them again (counted once), and settles them.
        log.apply_top(&newer(359), upward(360, 410, none), false, T + 500);
        assert_eq!(log.events(start), 411, "nothing counted twice");
        assert_eq!(log.top(start), newer(410));
        assert_eq!(log.recent.len(), 1, "only what the next listing can show");
        // Quiet: one empty listing, nothing else.
        log.apply_top(&newer(410), Vec::new(), false, T + 900);
        assert_eq!(log.top(start), newer(410));
        assert_eq!(log.gap(start), None);
        assert_eq!(log.recheck(T + 900, start), None);
    }

    #[test]
    fn a_burst_the_page_cap_stops_is_climbed_over_the_next_runs_without_a_hole() {
        let dense = |from: i64, to: i64| -> Vec<Event> {
            (from..=to).map(|i| at(i, T + 1000, 0)).collect()
        };
        let mut log = EventWindow::default();
        let start = T - 5000;
        log.apply_top(&Top::Since(start), listing(0, 99, none), false, T + 1000);
        // 1,000 events in one second; a listing reads 200.
        let mut top = log.top(start);
        assert_eq!(top, newer(99));
        for (from, to, cut) in [(100, 299, true), (300, 499, true), (500, 699, true)] {
            log.apply_top(&top, dense(from, to), cut, T + 1010);
            top = log.top(start);
            assert_eq!(top, newer(to), "continues from the newest read");
            assert!(!log.complete(start), "newer events are not read yet");
        }
        log.apply_top(&top, dense(700, 899), true, T + 1011);
        log.apply_top(&newer(899), dense(900, 1099), false, T + 1012);
        assert_eq!(log.events(start), 1100);
        assert!(log.complete(start));
        // The burst is not settled yet: the next run climbs it again, counting nothing twice,
        // and once it is a minute old the settled event moves past it.
        assert_eq!(log.top(start), newer(99));
        log.apply_top(&newer(99), dense(100, 299), true, T + 1070);
        assert_eq!(log.top(start), newer(299));
        assert!(log.complete(start), "re-reading what was counted");
        log.apply_top(&newer(299), dense(300, 1099), false, T + 1071);
        assert_eq!(log.events(start), 1100);
        assert_eq!(log.top(start), newer(1099));
    }

    #[test]
    fn gaps_are_finished_in_the_order_they_were_opened_oldest_included() {
        let mut log = EventWindow::default();
        let start = T - 1000;
        // The first run reads the newest 200 of 1,000: the rest is a gap.
        log.apply_top(&Top::Since(start), listing(800, 999, none), true, T + 2000);
        assert!(!log.complete(start));
        assert_eq!(
            log.gap(start),
            Some(GapCursor {
                floor: start,
                after: "evt_800".into()
            })
        );
        // Stripe refused the cursor: the next listing goes by time and is cut as well.
        log.forget_cursor();
        assert_eq!(log.top(start), Top::Since(T + 2000 - OVERLAP));
        let dense: Vec<Event> = (1000..1300).rev().map(|i| at(i, T + 1990, 0)).collect();
        log.apply_top(&Top::Since(T + 1940), dense[..200].to_vec(), true, T + 2010);
        // The first gap comes first, though a newer one was opened since.
        assert_eq!(log.gap(start).unwrap().after, "evt_800");
        log.apply_gap(listing(600, 799, none), true);
        assert_eq!(log.gap(start).unwrap().after, "evt_600");
        log.apply_gap(listing(0, 599, none), false);
        assert_eq!(log.gap(start).unwrap().after, "evt_1100");
        log.apply_gap(dense[200..].to_vec(), false);
        assert!(log.complete(start));
        assert_eq!(log.events(start), 1300, "every event once");
    }

    #[test]
    fn an_account_without_events_is_read_whole_and_costs_one_listing() {
        let mut log = EventWindow::default();
        let start = T - 1000;
        assert!(!log.complete(start));
        log.apply_top(&Top::Since(start), Vec::new(), false, T + 10);
        assert!(log.complete(start));
        first_recheck(&mut log, T + 10, start, Vec::new());
        assert_eq!(log.recheck(T + 10, start), None);
        assert!(!log.undelivered_incomplete());
        // The next listing starts a minute before this one, not at the window's start.
        assert_eq!(log.top(start), Top::Since(T + 10 - OVERLAP));
    }

    #[test]
    fn undelivered_events_leave_when_a_recheck_no_longer_lists_them() {
        let mut log = EventWindow::default();
        let (now, start) = (T + 200, T - 10_000);
        log.apply_top(
            &Top::Since(start),
            listing(0, 99, |i| u64::from(i % 10 == 0)),
            false,
            now,
        );
        let undelivered = listing(0, 99, |_| 1)
            .into_iter()
            .filter(|e| e.id.ends_with('0'))
            .collect();
        first_recheck(&mut log, now, start, undelivered);
        let n = |log: &EventWindow, stuck_before| -> (u64, u64) {
            let t = log.by_type(stuck_before);
            (
                t.values().map(|v| v.retried).sum(),
                t.values().map(|v| v.stuck).sum(),
            )
        };
        assert_eq!(n(&log, T + 50), (10, 6), "0, 10, .., 50 are past the grace");
        assert_eq!(log.oldest(), (Some(T), None));
        let r = log.recheck(now, start).unwrap();
        assert_eq!((r.floor, r.below, r.whole_retention), (T, None, false));
        // evt_0 and evt_50 were delivered since.
        let still: Vec<Event> = [90, 80, 70, 60, 40, 30, 20, 10]
            .iter()
            .map(|&i| ev(i, 1))
            .collect();
        log.apply_recheck(&r, still, false);
        assert_eq!(log.oldest(), (Some(T + 10), None));
        assert_eq!(n(&log, T + 50).0, 8);
        // A listing of new events that shows one delivered counts too.
        log.apply_top(&newer(99), vec![ev(90, 0)], false, now + 10);
        assert_eq!(n(&log, T + 50).0, 7);
    }

    #[test]
    fn a_cut_recheck_keeps_what_it_did_not_reach_and_continues_below() {
        let mut log = EventWindow::default();
        let (now, start) = (T + 200, T - 10_000);
        log.apply_top(&Top::Since(start), listing(0, 99, |_| 1), false, now);
        first_recheck(&mut log, now, start, listing(0, 99, |_| 1));
        // The re-check lists 99..=50 and stops: 0..=49 are not known to be delivered.
        let r = log.recheck(now, start).unwrap();
        log.apply_recheck(&r, listing(50, 99, |_| 1), true);
        assert_eq!(log.oldest().0, Some(T));
        assert!(log.undelivered_incomplete());
        let r = log.recheck(now, start).unwrap();
        assert_eq!((r.floor, r.below), (T, Some(T + 50)));
        // Below: only 10..=50 still undelivered.
        log.apply_recheck(&r, listing(10, 50, |_| 1), false);
        assert_eq!(log.oldest().0, Some(T + 10));
        assert!(!log.undelivered_incomplete());
        let retried: u64 = log.by_type(T).values().map(|v| v.retried).sum();
        assert_eq!(retried, 90);
    }

    #[test]
    fn the_first_recheck_covers_stripes_retention_and_an_unfinished_one_is_flagged() {
        let mut log = EventWindow::default();
        let (now, start) = (T + 2000, T - 10_000);
        log.apply_top(&Top::Since(start), listing(900, 999, none), true, now);
        let r = log.recheck(now, start).unwrap();
        assert_eq!(r.floor, now - RETENTION, "older than the window, too");
        // The page cap stops it: the next run continues below and only then is it whole.
        log.apply_recheck(&r, vec![ev(5, 1)], true);
        assert!(log.undelivered_incomplete());
        let r = log.recheck(now, start).unwrap();
        assert!(r.whole_retention && r.below == Some(T + 5));
        log.apply_recheck(&r, vec![ev(5, 1), at(7, T - 20 * 86_400, 1)], false);
        assert!(!log.undelivered_incomplete());
        assert_eq!(log.oldest().0, Some(T - 20 * 86_400));
        // The window is still not read whole: the re-check reaches down to its start.
        let r = log.recheck(now, start).unwrap();
        assert_eq!((r.floor, r.whole_retention), (T - 20 * 86_400, false));
    }

    #[test]
    fn an_event_stripe_gave_up_on_stays_until_delivered_acknowledged_or_out_of_retention() {
        let mut log = EventWindow::default();
        let now = T + 100_000;
        let start = now - 1000;
        let horizon = now - 500;
        let (a, b, c, d) = (
            at(1, now - 2000, 1), // outside the window: only the re-check finds it
            at(2, now - 600, 1),  // past the horizon
            at(3, now - 100, 1),  // retried
            at(4, now - 300, 1),  // retried, unless an endpoint stopped
        );
        log.apply_top(
            &Top::Since(start),
            vec![c.clone(), d.clone(), b.clone()],
            false,
            now,
        );
        first_recheck(
            &mut log,
            now,
            start,
            vec![c.clone(), d.clone(), b.clone(), a.clone()],
        );
        let rule = GiveUp {
            horizon,
            endpoint_stopped: None,
        };
        log.give_up(rule, &Acknowledged::default());
        let count = |log: &EventWindow| -> (u64, u64) {
            let t = log.by_type(i64::MAX);
            (
                t.values().map(|v| v.retried).sum(),
                t.values().map(|v| v.abandoned).sum(),
            )
        };
        assert_eq!(count(&log), (2, 2));
        assert_eq!(log.oldest(), (Some(now - 300), Some(now - 2000)));
        // b leaves the window and every event in it is delivered but a: still abandoned.
        let later = now + 500;
        log.prune(later, later - 1000);
        assert_eq!(log.events(later - 1000), 2);
        assert_eq!(count(&log), (2, 2), "leaving the window changes nothing");
        // a is resent and delivered: the re-check no longer lists it.
        let r = log.recheck(later, later - 1000).unwrap();
        assert_eq!(
            r.floor,
            now - 2000,
            "the re-check reaches the oldest abandoned"
        );
        log.apply_recheck(&r, vec![c.clone(), d.clone(), b.clone()], false);
        assert_eq!(count(&log), (2, 1));
        // An endpoint that was enabled when d was created has been disabled: d is given up.
        log.give_up(
            GiveUp {
                horizon,
                endpoint_stopped: Some(now - 200),
            },
            &Acknowledged::default(),
        );
        assert_eq!(count(&log), (1, 2));
        // Acknowledged, by time (b) and by id (d): no longer counted.
        let ack = Acknowledged {
            before: Some(now - 550),
            events: HashSet::from(["evt_4".to_owned()]),
        };
        log.give_up(rule, &ack);
        assert_eq!(count(&log), (1, 0));
        assert_eq!(log.oldest(), (Some(now - 100), None));
        // An acknowledgement covers only abandoned events: c is retried and stays counted.
        let all = Acknowledged {
            before: Some(now),
            events: HashSet::new(),
        };
        log.give_up(rule, &all);
        assert_eq!(count(&log), (1, 0));
        // Past Stripe's retention nothing is listed any more, and nothing is kept.
        log.give_up(
            GiveUp {
                horizon: now,
                endpoint_stopped: None,
            },
            &Acknowledged::default(),
        );
        assert_eq!(count(&log), (0, 1));
        log.prune(now + RETENTION, now + RETENTION - 1000);
        assert_eq!(count(&log), (0, 0));
    }

    #[test]
    fn an_event_given_up_on_since_the_start_is_counted_once_whatever_follows() {
        let mut log = EventWindow::default();
        let (start, first) = (T - 5000, T);
        // At the first listing, evt_0 is history (created before it); evt_1 comes after.
        log.apply_top(&Top::Since(start), vec![at(0, T - 10, 1)], false, first);
        let now = T + 1000;
        let fresh = at(1, T + 100, 1);
        log.apply_top(&newer(0), vec![fresh.clone()], false, now);
        first_recheck(&mut log, now, start, vec![fresh.clone(), at(0, T - 10, 1)]);
        let past_horizon = GiveUp {
            horizon: now,
            endpoint_stopped: None,
        };
        log.give_up(past_horizon, &Acknowledged::default());
        assert_eq!(log.abandoned_total(), 1, "history is not counted");
        log.give_up(past_horizon, &Acknowledged::default());
        assert_eq!(log.abandoned_total(), 1, "still abandoned: once");
        // Acknowledged (dealt with), then listed again by a re-check: counted once still.
        let ack = Acknowledged {
            before: Some(now),
            events: HashSet::new(),
        };
        log.give_up(past_horizon, &ack);
        // (A re-check from an older undelivered event covers it.)
        let older = Recheck {
            floor: start,
            below: None,
            whole_retention: false,
        };
        log.apply_recheck(&older, vec![fresh.clone()], false);
        log.give_up(past_horizon, &Acknowledged::default());
        assert_eq!(log.abandoned_total(), 1);
        // A second event given up on counts; a resend delivering it uncounts nothing.
        let second = at(2, T + 200, 1);
        log.apply_top(&newer(1), vec![second.clone()], false, now + 120);
        log.give_up(past_horizon, &Acknowledged::default());
        assert_eq!(log.abandoned_total(), 2);
        log.apply_recheck(&older, Vec::new(), false);
        assert_eq!(log.by_type(i64::MAX).len(), 0, "delivered after all");
        assert_eq!(log.abandoned_total(), 2);
    }

    #[test]
    fn the_window_slides() {
        let mut log = EventWindow::default();
        let now = T + 700;
        log.apply_top(
            &Top::Since(T - 1000),
            listing(0, 599, |i| u64::from(i < 10)),
            false,
            now,
        );
        log.prune(now, T + 300);
        assert_eq!(log.events(T + 300), 300);
        assert_eq!(
            log.oldest(),
            (Some(T), None),
            "undelivered events stay past the window until Stripe gives up"
        );
    }

    #[test]
    fn gaps_past_the_cap_are_given_up_and_flagged() {
        let mut log = EventWindow::default();
        let start = T - 100_000;
        for run in 0..=MAX_GAPS as i64 {
            let top = 1000 * (run + 1);
            log.forget_cursor();
            log.apply_top(
                &Top::Since(T + top - 100 - OVERLAP),
                listing(top - 99, top, none),
                true,
                T + top + 10,
            );
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
