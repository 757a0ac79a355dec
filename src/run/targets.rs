//! Leased targets in the running app: a `/probe?template=…&target=…` request takes a lease on
//! its target, whose first request starts the template's source (health probe and checks, in
//! the background on their own intervals, like a configured source's); later requests renew
//! it; a reaper ends the leases no request renewed for their idle time, which stops their
//! checks, closes their connections and forgets their series. A reload ends the leases of
//! templates it changed or removed: the next request starts them afresh.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::template::Refused;
use crate::configfile::Config;
use crate::run::app::{App, LeaseSetup, RunningSource};
use crate::run::leases::{Full, Lease};

/// How often the reaper looks for lapsed leases: the error on an idle time, which is at
/// least a second.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// A lease taken or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The source it runs, `TEMPLATE/TARGET`: the `source` label of its series.
    pub source: String,
    /// True when this request started it.
    pub new: bool,
}

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

    /// Takes or renews the lease of `target` through the template named `template`.
    pub fn lease(&self, template: &str, target: &str) -> Result<Leased, LeaseError> {
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
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.renew(&source, now) {
            return Ok(Leased { source, new: false });
        }
        leases
            .has_room(setup.global.max_leased_targets)
            .map_err(LeaseError::Full)?;
        let config = crate::configfile::template_source(template, target)
            .map_err(|e| LeaseError::Start(e.to_string()))?;
        // Nothing connects here: the checks connect in their tasks, so a dead target costs
        // the request nothing.
        let started = config
            .kind
            .start(&source, None, &|c| config.check_plan(&setup.global, c))
            .map_err(|e| LeaseError::Start(e.to_string()))?;
        let connection = started.connection.clone();
        // At once: this request waits for the first results.
        let checks = self.run_checks(
            &config,
            started,
            None,
            &setup.global,
            crate::run::scheduler::Start::Now,
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
        self.store
            .set_leased(leases.len(), setup.global.max_leased_targets);
        tracing::info!(event = "lease.started", source = %source, template = %template.name, target = %target, "target leased: its checks run until requests stop");
        Ok(Leased { source, new: true })
    }

    /// The leased targets, by source name.
    pub fn leases(&self) -> Vec<LeaseStatus> {
        let now = Instant::now();
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Ends the leases that lapsed.
    pub fn reap(&self) {
        let now = Instant::now();
        let lapsed = self
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lapsed(now);
        self.forget(lapsed, "idle");
    }

    /// Ends the leases for which `end` is true, saying `why` in the log.
    pub(super) fn end_leases(&self, end: impl Fn(&Lease<RunningSource>) -> bool, why: &str) {
        let ended = self
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_where(end);
        self.forget(ended, why);
    }

    /// Stops what `ended` ran (dropping the checks aborts their tasks; dropping the last
    /// handle on a connection closes it) and forgets their series.
    fn forget(&self, ended: Vec<(String, Lease<RunningSource>)>, why: &str) {
        if ended.is_empty() {
            return;
        }
        let now = Instant::now();
        let names: std::collections::HashSet<String> =
            ended.iter().map(|(name, _)| name.clone()).collect();
        for (source, lease) in &ended {
            tracing::info!(event = "lease.ended", source = %source, template = %lease.template.name, target = %lease.target, why, idle_seconds = lease.idle(now).as_secs(), "lease ended: its checks stopped and its connections closed");
        }
        drop(ended);
        self.store.retain(|(source, _)| !names.contains(source));
        let (count, max) = (
            self.leases.lock().unwrap_or_else(|e| e.into_inner()).len(),
            self.lease_setup().global.max_leased_targets,
        );
        self.store.set_leased(count, max);
    }

    fn lease_setup(&self) -> Arc<LeaseSetup> {
        self.lease_setup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        let previous = std::mem::replace(
            &mut *self.lease_setup.lock().unwrap_or_else(|e| e.into_inner()),
            setup.clone(),
        );
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
        let count = self.leases.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.store
            .set_leased(count, setup.global.max_leased_targets);
    }

    /// Checks of a leased `source` that have not finished a first run: it is warming while
    /// any has not.
    pub fn warming(&self, source: &str) -> usize {
        self.store.first_runs_pending(source)
    }
}
