//! The events check of one account: up to three listings a run (new events, a gap, the
//! re-check of undelivered events) as the [`EventWindow`] plans them, each applied once read
//! whole, and the counts the log then holds as samples.

use crate::sync::MutexExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::api::{Api, ListRequest};
use super::endpoints::StoppedEndpoints;
use super::event_window::EventWindow;
use super::listing::{parse_events, Acknowledged, Event, GiveUp, Top};
use super::metrics::{
    account_label, ABANDONED, EVENTS, EVENTS_ABANDONED, EVENTS_READ, LOOKBACK, OLDEST_ABANDONED,
    OLDEST_UNDELIVERED, STUCK, TRUNCATED, UNDELIVERED,
};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable};

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
    /// Undelivered for longer than this is abandoned.
    pub retry_horizon: Duration,
    /// Abandoned events no longer counted.
    pub acknowledged: Acknowledged,
    /// Endpoints the source's endpoints check saw stop receiving.
    pub stopped: Arc<StoppedEndpoints>,
    /// Page cap per listing and run.
    pub max_pages: u32,
    /// What earlier runs read.
    pub log: Mutex<EventWindow>,
}

impl EventsProbe {
    fn log(&self) -> std::sync::MutexGuard<'_, EventWindow> {
        self.log.locked()
    }

    async fn list(
        &self,
        query: Vec<(&'static str, String)>,
        cursor: Cursor,
        deadline: Instant,
    ) -> Result<(Vec<Event>, bool), RunError> {
        let (starting_after, ending_before) = match cursor {
            Cursor::None => (None, None),
            Cursor::After(id) => (Some(id), None),
            Cursor::Before(id) => (None, Some(id)),
        };
        let listing = self
            .api
            .list(
                &ListRequest {
                    path: "v1/events",
                    query,
                    account: self.account.as_deref(),
                    starting_after,
                    ending_before,
                    max_pages: self.max_pages,
                },
                deadline,
            )
            .await?;
        Ok((parse_events(listing.items)?, listing.truncated))
    }

    async fn run_once(&self, deadline: Instant) -> Result<Output, RunError> {
        let now = crate::series::sample::unix_now_secs();
        let window_start = now - self.lookback.as_secs() as i64;
        let top = {
            let mut log = self.log();
            log.prune(now, window_start);
            log.top(window_start)
        };
        let listed = match &top {
            Top::Newer(id) => self.list(Vec::new(), Cursor::Before(id.clone()), deadline),
            Top::Since(floor) => self.list(
                vec![("created[gte]", floor.to_string())],
                Cursor::None,
                deadline,
            ),
        }
        .await;
        let (events, truncated) = match listed {
            Err(e) if matches!(top, Top::Newer(_)) && e.reason() == Reason::Query => {
                // Stripe refused the cursor: list by time from the next run on.
                self.log().forget_cursor();
                return Err(e);
            }
            other => other?,
        };
        self.log().apply_top(&top, events, truncated, now);

        let gap = self.log().gap(window_start);
        if let Some(gap) = gap {
            let (events, truncated) = self
                .list(
                    vec![("created[gte]", gap.floor.to_string())],
                    Cursor::After(gap.after),
                    deadline,
                )
                .await?;
            self.log().apply_gap(events, truncated);
        }

        let recheck = self.log().recheck(now, window_start);
        if let Some(r) = recheck {
            let mut query = vec![
                ("delivery_success", "false".to_owned()),
                ("created[gte]", r.floor.to_string()),
            ];
            if let Some(b) = r.below {
                query.push(("created[lte]", b.to_string()));
            }
            let (events, truncated) = self.list(query, Cursor::None, deadline).await?;
            self.log().apply_recheck(&r, events, truncated);
        }
        let rule = GiveUp {
            horizon: now - self.retry_horizon.as_secs() as i64,
            endpoint_stopped: self.stopped.cutoff(account_label(self.account.as_deref())),
        };
        self.log().give_up(rule, &self.acknowledged);
        Ok(self.output(now, window_start))
    }

    fn output(&self, now: i64, window_start: i64) -> Output {
        let log = self.log();
        let account = account_label(self.account.as_deref());
        let labels = [self.source.as_str(), account];
        let mut out = Output::default();
        let stuck_before = now - self.stuck_after.as_secs() as i64;
        for (kind, n) in log.by_type(stuck_before) {
            let labels = [self.source.as_str(), account, &kind];
            if n.retried > 0 {
                out.add(&UNDELIVERED, &labels, n.retried as f64);
            }
            if n.stuck > 0 {
                out.add(&STUCK, &labels, n.stuck as f64);
            }
            if n.abandoned > 0 {
                out.add(&ABANDONED, &labels, n.abandoned as f64);
            }
        }
        let (oldest_retried, oldest_abandoned) = log.oldest();
        if let Some(o) = oldest_retried {
            out.add(&OLDEST_UNDELIVERED, &labels, o as f64);
        }
        if let Some(o) = oldest_abandoned {
            out.add(&OLDEST_ABANDONED, &labels, o as f64);
        }
        out.add(&EVENTS, &labels, log.events(window_start) as f64);
        for (kind, n) in log.read_by_type() {
            out.add(&EVENTS_READ, &[&self.source, account, kind], n as f64);
        }
        out.add(&EVENTS_ABANDONED, &labels, log.abandoned_total() as f64);
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

/// Where a listing starts.
enum Cursor {
    /// From the newest event matching the filters.
    None,
    /// Below this event (`starting_after`).
    After(String),
    /// Above this event (`ending_before`).
    Before(String),
}

impl Runnable for EventsProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(self.run_once(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000;

    fn probe(account: Option<&str>) -> EventsProbe {
        EventsProbe {
            source: "stripe".into(),
            account: account.map(str::to_owned),
            api: Arc::new(Api::new("http://127.0.0.1:1", "sk_test_x", "2024-06-20").unwrap()),
            lookback: Duration::from_secs(72 * 3600),
            stuck_after: Duration::from_secs(15 * 60),
            retry_horizon: Duration::from_secs(72 * 3600),
            acknowledged: Acknowledged::default(),
            stopped: Arc::default(),
            max_pages: 20,
            log: Mutex::default(),
        }
    }

    fn event(i: i64, created: i64, kind: &str, pending: u64) -> Event {
        Event {
            id: format!("evt_{i}"),
            created,
            kind: kind.to_owned(),
            pending_webhooks: pending,
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    fn value(out: &Output, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        out.labelled_one(name, labels)
    }

    #[test]
    fn the_log_is_published_by_type_account_and_age_with_the_truncation_flags() {
        let p = probe(Some("acct_1"));
        let (now, start) = (T, T - 72 * 3600);
        p.log().apply_top(
            &Top::Since(start),
            vec![
                event(1, T - 10, "invoice.paid", 1),
                event(2, T - 3600, "invoice.paid", 2),
                event(3, T - 7200, "charge.failed", 1),
                event(4, T - 60, "invoice.created", 0),
            ],
            false,
            now,
        );
        let out = p.output(now, start);
        let acct = ("account", "acct_1");
        let undelivered = "pulse_stripe_undelivered_events";
        let stuck = "pulse_stripe_stuck_events";
        let typed = |kind| [("source", "stripe"), acct, ("event_type", kind)];
        assert_eq!(value(&out, undelivered, &typed("invoice.paid")), Some(2.0));
        assert_eq!(value(&out, undelivered, &typed("charge.failed")), Some(1.0));
        // Delivered everywhere: no series rather than a 0.
        assert_eq!(value(&out, undelivered, &typed("invoice.created")), None);
        // Stuck: undelivered for longer than 15 minutes; the event of 10 s ago is not.
        assert_eq!(value(&out, stuck, &typed("invoice.paid")), Some(1.0));
        assert_eq!(value(&out, stuck, &typed("charge.failed")), Some(1.0));
        assert_eq!(
            value(
                &out,
                "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
                &[acct]
            ),
            Some((T - 7200) as f64)
        );
        assert_eq!(value(&out, "pulse_stripe_events", &[acct]), Some(4.0));
        assert_eq!(
            value(&out, "pulse_stripe_lookback_seconds", &[acct]),
            Some(72.0 * 3600.0)
        );
        let truncated = "pulse_stripe_listing_truncated";
        assert_eq!(
            value(&out, truncated, &[acct, ("listing", "events")]),
            Some(0.0)
        );
        // Before a first re-check covers Stripe's retention, undelivered counts are lower
        // bounds.
        assert_eq!(
            value(&out, truncated, &[acct, ("listing", "undelivered_events")]),
            Some(1.0)
        );
    }

    #[test]
    fn the_platform_account_is_the_empty_account_label() {
        let p = probe(None);
        let out = p.output(T, T - 3600);
        assert_eq!(
            value(
                &out,
                "pulse_stripe_events",
                &[("source", "stripe"), ("account", "")]
            ),
            Some(0.0)
        );
    }
}
