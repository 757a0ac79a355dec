//! The lease table: which targets scrapers asked for through a template
//! (`/probe?template=…&target=…`), since when, how often, and when each lapses. A lease holds
//! its running source (checks and connection); removing it from the table drops them, which
//! stops the checks and closes the connections. The table only keeps time: [`crate::runtime::app`]
//! starts what a new lease runs and reaps the lapsed ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config_core::template::Template;

/// Request gaps remembered per lease: enough to see the scrape interval through the short
/// gaps an HA pair of Prometheus servers makes, scraping the same target a moment apart.
const GAPS_KEPT: usize = 8;

/// One leased target and what it runs.
#[derive(Debug)]
pub struct Lease<T> {
    /// The template it was made from, as it was when the lease began.
    pub template: Arc<Template>,
    /// The address asked for.
    pub target: String,
    /// When the first request came.
    pub since: SystemTime,
    last_request: Instant,
    gaps: VecDeque<Duration>,
    /// Whether a request has already waited for the first results (see
    /// [`Leases::first_wait`]).
    waited: bool,
    /// What the lease runs, dropped when it ends.
    pub held: T,
}

impl<T> Lease<T> {
    /// How long after its last request this lease lapses.
    pub fn idle_after(&self) -> Duration {
        self.template.idle_after(self.gaps.iter().max().copied())
    }

    /// How long since its last request, at `now`.
    pub fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_request)
    }
}

/// Why a lease could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    /// The cap that is reached (`global.max_leased_targets`).
    pub max: usize,
}

/// Every lease, by source name (`TEMPLATE/TARGET`).
#[derive(Debug)]
pub struct Leases<T> {
    by_source: HashMap<String, Lease<T>>,
}

impl<T> Default for Leases<T> {
    fn default() -> Self {
        Leases {
            by_source: HashMap::new(),
        }
    }
}

impl<T> Leases<T> {
    /// Records a request for `source` at `now`; false when it holds no lease.
    pub fn renew(&mut self, source: &str, now: Instant) -> bool {
        let Some(lease) = self.by_source.get_mut(source) else {
            return false;
        };
        let gap = now.saturating_duration_since(lease.last_request);
        if lease.gaps.len() == GAPS_KEPT {
            lease.gaps.pop_front();
        }
        lease.gaps.push_back(gap);
        lease.last_request = now;
        true
    }

    /// Whether a request for `source` may wait for its first results: true once per lease,
    /// for the first request that asks. Later requests, while a slow or hung target's first
    /// runs are still pending, are answered from the cache at once.
    pub fn first_wait(&mut self, source: &str) -> bool {
        self.by_source
            .get_mut(source)
            .is_some_and(|lease| !std::mem::replace(&mut lease.waited, true))
    }

    /// Whether one more lease fits under `max`.
    pub fn has_room(&self, max: usize) -> Result<(), Full> {
        if self.by_source.len() >= max {
            return Err(Full { max });
        }
        Ok(())
    }

    /// Adds the lease of `source`, first asked for at `now`, holding `held`.
    pub fn insert(
        &mut self,
        source: String,
        template: Arc<Template>,
        target: String,
        now: Instant,
        held: T,
    ) {
        let lease = Lease {
            template,
            target,
            since: SystemTime::now(),
            last_request: now,
            gaps: VecDeque::new(),
            waited: false,
            held,
        };
        self.by_source.insert(source, lease);
    }

    /// Takes out, and returns, every lease that lapsed by `now`.
    pub fn lapsed(&mut self, now: Instant) -> Vec<(String, Lease<T>)> {
        self.take_where(|lease| lease.idle(now) >= lease.idle_after())
    }

    /// Takes out, and returns, every lease for which `end` is true.
    pub fn take_where(&mut self, end: impl Fn(&Lease<T>) -> bool) -> Vec<(String, Lease<T>)> {
        self.take_named(|_, lease| end(lease))
    }

    /// Takes out, and returns, every lease for which `end` of its source name and itself is
    /// true.
    pub fn take_named(&mut self, end: impl Fn(&str, &Lease<T>) -> bool) -> Vec<(String, Lease<T>)> {
        let ending: Vec<String> = self
            .by_source
            .iter()
            .filter(|(name, lease)| end(name, lease))
            .map(|(name, _)| name.clone())
            .collect();
        ending
            .into_iter()
            .filter_map(|name| self.by_source.remove_entry(&name))
            .collect()
    }

    /// Whether `source` holds a lease.
    pub fn contains(&self, source: &str) -> bool {
        self.by_source.contains_key(source)
    }

    /// Leases held.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    /// True when no lease is held.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// Every lease, by source name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Lease<T>)> {
        self.by_source.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(idle: Option<&str>) -> Arc<Template> {
        let idle = idle.map(|i| format!(", idle: {i}")).unwrap_or_default();
        let config = crate::config::load_str(&format!(
            "templates:\n  - {{ name: fleet, kind: redis, url: 'redis://{{{{target}}}}', allowed_targets: ['.*']{idle} }}\n"
        ))
        .unwrap();
        Arc::new(config.templates[0].template.clone())
    }

    #[test]
    fn a_lease_lapses_four_scrape_intervals_after_its_last_request() {
        let mut leases = Leases::default();
        let t0 = Instant::now();
        leases.insert("fleet/a:1".into(), template(None), "a:1".into(), t0, ());
        // Before a second request the interval is unknown: five minutes.
        assert!(leases.lapsed(t0 + Duration::from_secs(299)).is_empty());
        let s = Duration::from_secs;
        // Scraped every 30s by an HA pair a second apart: the interval is the longer gap.
        for (i, at) in [30, 31, 60, 61, 90, 91].into_iter().enumerate() {
            assert!(leases.renew("fleet/a:1", t0 + s(at)), "{i}");
        }
        let lease = leases.iter().next().unwrap().1;
        assert_eq!(lease.idle_after(), s(120));
        assert!(leases.lapsed(t0 + s(91 + 119)).is_empty());
        let ended = leases.lapsed(t0 + s(91 + 120));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1.target, "a:1");
        assert!(leases.is_empty());
        assert!(!leases.renew("fleet/a:1", t0 + s(300)));
    }

    /// The first-scrape wait happens once per lease: the first request that asks waits, every
    /// later one (a hung target still warming) is answered at once; a new lease of the same
    /// target waits again; a target with no lease never does.
    #[test]
    fn only_the_first_request_of_a_lease_waits() {
        let mut leases = Leases::default();
        let t0 = Instant::now();
        assert!(!leases.first_wait("fleet/a:1"));
        leases.insert("fleet/a:1".into(), template(None), "a:1".into(), t0, ());
        assert!(leases.first_wait("fleet/a:1"));
        assert!(!leases.first_wait("fleet/a:1"));
        assert!(leases.renew("fleet/a:1", t0));
        assert!(!leases.first_wait("fleet/a:1"));
        leases.take_where(|_| true);
        leases.insert("fleet/a:1".into(), template(None), "a:1".into(), t0, ());
        assert!(leases.first_wait("fleet/a:1"));
    }

    #[test]
    fn a_set_idle_time_wins_and_the_table_has_a_cap() {
        let mut leases = Leases::default();
        let t0 = Instant::now();
        leases.insert(
            "fleet/a:1".into(),
            template(Some("3s")),
            "a:1".into(),
            t0,
            (),
        );
        assert_eq!(leases.has_room(2), Ok(()));
        leases.insert("fleet/b:1".into(), template(None), "b:1".into(), t0, ());
        assert_eq!(leases.has_room(2), Err(Full { max: 2 }));
        let ended = leases.lapsed(t0 + Duration::from_secs(3));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, "fleet/a:1");
        assert!(leases.contains("fleet/b:1"));
        assert_eq!(leases.len(), 1);
    }
}
