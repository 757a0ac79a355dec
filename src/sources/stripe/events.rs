//! The events check of one account: up to three listings a run (new events, a gap, the
//! re-check of undelivered events) as the [`EventLog`] plans them, each applied once read
//! whole, and the counts the log then holds as samples.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::api::{Api, ListRequest};
use super::endpoints::StoppedEndpoints;
use super::listing::{parse_events, Acknowledged, Event, GiveUp, Top};
use super::log::EventLog;
use super::metrics::{
    account_label, ABANDONED, EVENTS, EVENTS_READ, LOOKBACK, OLDEST_ABANDONED, OLDEST_UNDELIVERED,
    STUCK, TRUNCATED, UNDELIVERED,
};
use crate::error::{ProbeError, Reason};
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};

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
    pub log: Mutex<EventLog>,
}

impl EventsProbe {
    fn log(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn list(
        &self,
        query: Vec<(&'static str, String)>,
        cursor: Cursor,
        deadline: Instant,
    ) -> Result<(Vec<Event>, bool), ProbeError> {
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

    async fn run_once(&self, deadline: Instant) -> Result<Output, ProbeError> {
        let now = crate::sample::unix_now_secs();
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

impl Probe for EventsProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(self.run_once(deadline))
    }
}
