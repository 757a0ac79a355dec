//! Leased targets in the running app: a `/probe?template=…&target=…` request takes a lease on
//! its target, whose first request starts the template's source (health probe and checks, in
//! the background on their own intervals, like a configured source's); later requests renew
//! it; a reaper ends the leases no request renewed for their idle time, which stops their
//! checks, closes their connections and forgets their series. A reload ends the leases of
//! templates it changed or removed: the next request starts them afresh.

use crate::sync::MutexExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::config_core::template::Refused;
use crate::runtime::app::{App, LeaseSetup, RunningSource};
use crate::runtime::leases::{Full, Lease, Leases};

/// How often the reaper looks for lapsed leases: the error on an idle time, which is at
/// least a second.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How long a lease may have nothing in the cache before it is replaced (its checks register
/// their entries as it starts: this only ever catches a fault).
const SERVED_NOTHING_AFTER: Duration = Duration::from_secs(10);

/// Why a lease was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// No template of that name; the count of those there are.
    UnknownTemplate {
        /// The name asked for.
        name: String,
        /// How many templates the config has.
        known: usize,
    },
    /// The template does not take that target.
    Target(Refused),
    /// `global.max_leased_targets` leases are held.
    Full(Full),
    /// The template made no source for the target (its kind refused the address).
    Start(String),
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::UnknownTemplate { name, known } => write!(
                f,
                "no template named {:?}: the config has {known} (`templates:`)",
                crate::secrets::scrub(&name.chars().take(64).collect::<String>())
            ),
            LeaseError::Target(r) => r.fmt(f),
            LeaseError::Full(Full { max }) => write!(
                f,
                "{max} targets are leased, global.max_leased_targets: a new target is taken \
                 when an idle one lapses; raise the cap or shard the targets over more replicas"
            ),
            LeaseError::Start(e) => write!(f, "the template makes no source for this target: {e}"),
        }
    }
}

/// A leased target, for humans (the landing page).
#[derive(Debug, Clone)]
pub struct LeaseStatus {
    /// `TEMPLATE/TARGET`.
    pub source: String,
    /// The template's name.
    pub template: String,
    /// The target's address.
    pub target: String,
    /// When the first request came.
    pub since: SystemTime,
    /// How long since the last request.
    pub idle: Duration,
    /// When it lapses without a request.
    pub idle_after: Duration,
}

impl App {
    /// Starts the task that ends lapsed leases; it ends with the app.
    pub(super) fn spawn_reaper(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REAP_EVERY).await;
                let Some(app) = app.upgrade() else { return };
                app.reap();
            }
        });
    }

    /// Takes or renews the lease of `target` through the template named `template`: the
    /// source it runs, `TEMPLATE/TARGET`, the `source` label of its series.
    pub fn lease(&self, template: &str, target: &str) -> Result<String, LeaseError> {
        let setup = self.lease_setup();
        let Some(template) = setup.templates.get(template) else {
            return Err(LeaseError::UnknownTemplate {
                name: template.to_owned(),
                known: setup.templates.len(),
            });
        };
        if let Some(refused) = template.refuses(target) {
            return Err(LeaseError::Target(refused));
        }
        let source = template.source_name(target);
        let now = Instant::now();
        let mut leases = self.leases.locked();
        if leases.renew(&source, now) {
            return Ok(source);
        }
        leases
            .has_room(setup.global.max_leased_targets)
            .map_err(LeaseError::Full)?;
        let config = crate::config::template_source(template, target, &setup.global)
            .map_err(|e| LeaseError::Start(e.to_string()))?;
        // Nothing connects here: the checks connect in their tasks, so a dead target costs
        // the request nothing.
        let started = config
            .kind
            .start(&source, None, &config.plans.checks)
            .map_err(|e| LeaseError::Start(e.to_string()))?;
        let connection = started.connection.clone();
        // At once: this request waits for the first results.
        let checks = self.run_checks(
            &config,
            started,
            None,
            crate::runtime::scheduler::Start::Now,
        );
        let running = RunningSource {
            config,
            connection,
            checks,
        };
        leases.insert(
            source.clone(),
            template.clone(),
            target.to_owned(),
            now,
            running,
        );
        drop(leases);
        self.publish_leased();
        tracing::info!(event = "lease.started", source = %source, template = %template.name, target = %target, "target leased: its checks run until requests stop");
        Ok(source)
    }

    /// Publishes how many targets are leased, of how many that may be.
    fn publish_leased(&self) {
        let count = self.leases.locked().len();
        let max = self.lease_setup().global.max_leased_targets;
        self.store.set_leased(count, max);
    }

    /// The leased targets, by source name.
    pub fn leases(&self) -> Vec<LeaseStatus> {
        let now = Instant::now();
        let leases = self.leases.locked();
        let mut out: Vec<LeaseStatus> = leases
            .iter()
            .map(|(source, lease)| LeaseStatus {
                source: source.clone(),
                template: lease.template.name.clone(),
                target: lease.target.clone(),
                since: lease.since,
                idle: lease.idle(now),
                idle_after: lease.idle_after(),
            })
            .collect();
        out.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }

    /// Ends the leases that lapsed, and those whose target has had nothing in the cache for
    /// [`SERVED_NOTHING_AFTER`]: a lease's entries live exactly as long as the lease (see
    /// [`App::end`]), so such a lease is a fault, logged and counted, and ending it lets the
    /// next request start a fresh one rather than serve nothing for as long as it is scraped.
    pub fn reap(&self) {
        self.reap_at(Instant::now(), SystemTime::now());
    }

    /// [`App::reap`] as at `now` (and `wall`, the same moment on the wall clock).
    fn reap_at(&self, now: Instant, wall: SystemTime) {
        self.end("idle", |leases| leases.lapsed(now));
        let store = self.store.clone();
        let empty = self.end("served nothing", |leases| {
            leases.take_named(|source, lease| {
                let age = wall.duration_since(lease.since).unwrap_or_default();
                age > SERVED_NOTHING_AFTER && !store.serves(source)
            })
        });
        for source in empty {
            self.store.count_replaced_lease();
            tracing::warn!(event = "lease.replaced", source = %source, "a leased target had nothing in the cache: its lease ended, the next request starts a fresh one (please report this)");
        }
    }

    /// Ends the leases for which `end` is true, saying `why` in the log.
    pub(super) fn end_leases(&self, end: impl Fn(&Lease<RunningSource>) -> bool, why: &str) {
        self.end(why, |leases| leases.take_where(end));
    }

    /// Ends the leases `take` takes out of the table and forgets their series, saying `why`
    /// in the log; returns their sources. The series go under the same lock that [`App::lease`] registers a new
    /// lease's checks under: a request for one of these targets that lands meanwhile waits,
    /// then starts a lease whose entries nothing removes, so a lease's entries exist exactly
    /// as long as the lease. Stopping what the leases ran (dropping the checks aborts their
    /// tasks; dropping the last handle on a connection closes it) happens after.
    fn end(
        &self,
        why: &str,
        take: impl FnOnce(&mut Leases<RunningSource>) -> Vec<(String, Lease<RunningSource>)>,
    ) -> Vec<String> {
        let mut leases = self.leases.locked();
        let ended = take(&mut leases);
        if ended.is_empty() {
            return Vec::new();
        }
        let names: std::collections::HashSet<&String> =
            ended.iter().map(|(name, _)| name).collect();
        self.store.retain(|(source, _)| !names.contains(source));
        drop(leases);
        let now = Instant::now();
        for (source, lease) in &ended {
            tracing::info!(event = "lease.ended", source = %source, template = %lease.template.name, target = %lease.target, why, idle_seconds = lease.idle(now).as_secs(), "lease ended: its checks stopped and its connections closed");
        }
        let sources = ended.iter().map(|(source, _)| source.clone()).collect();
        drop(ended);
        self.publish_leased();
        sources
    }

    fn lease_setup(&self) -> Arc<LeaseSetup> {
        self.lease_setup.locked().clone()
    }

    /// Takes up `config`'s templates and defaults, ending the leases of templates that
    /// changed or went (and every lease when `global:` changed, which times their checks).
    pub(super) fn set_lease_setup(&self, config: &Config) {
        let setup = Arc::new(LeaseSetup {
            templates: config
                .templates
                .iter()
                .map(|t| (t.template.name.clone(), Arc::new(t.template.clone())))
                .collect(),
            global: config.global.clone(),
        });
        let previous = std::mem::replace(&mut *self.lease_setup.locked(), setup.clone());
        let global_changed = previous.global != setup.global;
        self.end_leases(
            |lease| {
                global_changed
                    || setup
                        .templates
                        .get(&lease.template.name)
                        .is_none_or(|t| **t != *lease.template)
            },
            "reload",
        );
        self.publish_leased();
    }

    /// Whether this request for the leased `source` may wait for its first results: once
    /// per lease (see [`Leases::first_wait`]).
    pub fn first_wait(&self, source: &str) -> bool {
        self.leases.locked().first_wait(source)
    }

    /// Checks of a leased `source` that have not finished a first run: it is warming while
    /// any has not.
    pub fn warming(&self, source: &str) -> usize {
        self.store.first_runs_pending(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_core::template::Refused;

    /// A Redis template over loopback ports; the targets' ports are closed (connections are
    /// lazy, nothing needs to answer).
    fn fleet(idle: &str, url: &str) -> String {
        format!(
            "global: {{ max_leased_targets: 2 }}\ntemplates:\n  - {{ name: fleet, kind: redis, url: '{url}', allowed_targets: ['127\\.0\\.0\\.1:[0-9]+'], idle: {idle} }}\n"
        )
    }

    fn start(yaml: &str, file: Option<std::path::PathBuf>) -> Arc<App> {
        App::start(crate::config::load_str(yaml).unwrap(), file).unwrap()
    }

    #[tokio::test]
    async fn a_lease_is_taken_once_renewed_and_refused_with_its_reason() {
        let app = start(&fleet("1h", "redis://{{target}}"), None);
        let source = "fleet/127.0.0.1:9".to_owned();
        assert_eq!(app.lease("fleet", "127.0.0.1:9"), Ok(source.clone()));
        // A second request renews the same lease: one lease, its checks started once.
        assert_eq!(app.lease("fleet", "127.0.0.1:9"), Ok(source.clone()));
        assert_eq!(app.leases().len(), 1);
        assert_eq!(app.store().leased(), (1, 2));
        assert!(!app.store().entries_of(&source).is_empty());
        assert!(matches!(
            app.lease("nope", "127.0.0.1:9"),
            Err(LeaseError::UnknownTemplate { known: 1, .. })
        ));
        assert!(matches!(
            app.lease("fleet", "10.0.0.5:9"),
            Err(LeaseError::Target(Refused::NotAllowed(_)))
        ));
        assert!(matches!(
            app.lease("fleet", "127.0.0.1"),
            Err(LeaseError::Target(Refused::NotAddress(_)))
        ));
        assert!(app.lease("fleet", "127.0.0.1:10").is_ok());
        assert_eq!(
            app.lease("fleet", "127.0.0.1:11"),
            Err(LeaseError::Full(Full { max: 2 }))
        );
        app.shutdown().await;
        assert_eq!(app.store().leased(), (0, 2));
        assert!(app.store().entries_of(&source).is_empty());
    }

    /// A lease whose target has nothing in the cache (a fault: its entries live as long as
    /// it does) is ended past the bound, counted, and the next request starts a fresh one
    /// that serves again; a lease with its entries is never touched.
    #[tokio::test]
    async fn a_lease_that_serves_nothing_is_replaced_and_counted() {
        let app = start(&fleet("1h", "redis://{{target}}"), None);
        let broken = app.lease("fleet", "127.0.0.1:9").unwrap();
        let fine = app.lease("fleet", "127.0.0.1:10").unwrap();
        app.store().retain(|(source, _)| *source != broken);
        let later = SystemTime::now() + SERVED_NOTHING_AFTER / 2;
        app.reap_at(Instant::now(), later);
        assert_eq!(app.leases().len(), 2, "within the bound nothing happens");
        let past = SystemTime::now() + SERVED_NOTHING_AFTER + Duration::from_secs(1);
        app.reap_at(Instant::now(), past);
        let left: Vec<String> = app.leases().into_iter().map(|l| l.source).collect();
        assert_eq!(left, [fine]);
        assert_eq!(app.store().leases_replaced(), 1);
        assert_eq!(app.lease("fleet", "127.0.0.1:9"), Ok(broken.clone()));
        assert!(!app.store().entries_of(&broken).is_empty());
        app.shutdown().await;
    }

    #[tokio::test]
    async fn an_idle_lease_lapses_and_its_series_go_with_it() {
        let app = start(&fleet("1s", "redis://{{target}}"), None);
        let source = app.lease("fleet", "127.0.0.1:9").unwrap();
        assert!(!app.store().entries_of(&source).is_empty());
        // The idle time, and the reaper's second.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(app.leases().is_empty());
        assert!(app.store().entries_of(&source).is_empty());
        assert_eq!(app.store().leased(), (0, 2));
    }

    #[tokio::test]
    async fn a_reload_ends_the_leases_of_a_changed_template_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pulse.yml");
        let before = fleet("1h", "redis://{{target}}");
        std::fs::write(&file, &before).unwrap();
        let app = start(&before, Some(file.clone()));
        let source = app.lease("fleet", "127.0.0.1:9").unwrap();
        // The same file again: the lease goes on.
        app.reload().await.unwrap();
        assert_eq!(app.leases().len(), 1);
        // Another URL: the lease ends, its series with it; the next request starts afresh.
        std::fs::write(&file, fleet("1h", "redis://{{target}}/1")).unwrap();
        app.reload().await.unwrap();
        assert!(app.leases().is_empty());
        assert!(app.store().entries_of(&source).is_empty());
        assert_eq!(app.lease("fleet", "127.0.0.1:9"), Ok(source));
        app.shutdown().await;
    }
}
