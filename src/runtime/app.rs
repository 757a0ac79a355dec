//! Wiring: config -> sources -> check tasks -> store; applying a reloaded config while keeping
//! unchanged sources' connections and unchanged checks' schedules and cached results.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tokio::task::JoinHandle;

use crate::config::{Config, SourceConfig};
use crate::config_core::template::Template;
use crate::config_core::{CheckPlan, ConfigErrors};
use crate::jobs::config::JobSpec;
use crate::jobs::state::JobState;
#[cfg(feature = "jobs")]
use crate::jobs::tracker::JobTracker;
use crate::runtime::certificate_watch;
use crate::runtime::leases::Leases;
use crate::runtime::results::{Results, ShardStatus};
use crate::runtime::scheduler::{self, Start};
use crate::runtime::shard::Shard;
use crate::sources::registry::Connection;
use crate::sources::ConnectError;

/// A job store whose URL does not read, as a [`StartError`] of `job_store`'s field.
#[cfg(feature = "jobs")]
fn job_store_error(e: crate::jobs::store::OpenError) -> StartError {
    StartError {
        path: "job_store".to_owned(),
        error: ConnectError::field(e.field, e.message),
    }
}

/// Why a config could not be started: a source of it could not be made from its settings
/// (nothing connects at start, so a server that is down is never this).
#[derive(Debug)]
pub struct StartError {
    /// The source's place in the file, `sources[2]`.
    pub path: String,
    /// What was wrong with it.
    pub error: ConnectError,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.error)
    }
}

impl std::error::Error for StartError {}

/// Why a reload was rejected; the running config goes on in every case.
#[derive(Debug)]
pub enum ReloadError {
    /// The app was started from a config in memory: there is no file to read again.
    NoFile,
    /// The file does not load: every error, as `check` lists them.
    Invalid(ConfigErrors),
    /// The file loads, but a source of it could not be started.
    Start(StartError),
}

impl ReloadError {
    /// The `cause` field of the `config.reload_failed` log line.
    pub fn cause(&self) -> &'static str {
        match self {
            ReloadError::NoFile => "no_file",
            ReloadError::Invalid(_) => "invalid",
            ReloadError::Start(_) => "start",
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::NoFile => f.write_str("no config file to reload from"),
            ReloadError::Invalid(errors) => errors.fmt(f),
            ReloadError::Start(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReloadError {}

/// A running check task; dropping it cancels the task and any run in flight.
pub(super) struct RunningCheck {
    plan: Arc<CheckPlan>,
    handle: JoinHandle<()>,
}

impl Drop for RunningCheck {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A source's running checks, on its connection, and the config they run.
pub(super) struct RunningSource {
    pub(super) config: SourceConfig,
    pub(super) connection: Connection,
    pub(super) checks: HashMap<String, RunningCheck>,
}

/// Status of one source for humans (the landing page).
#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// Source kind.
    pub kind: &'static str,
    /// Endpoint with credentials removed.
    pub endpoint: String,
    /// The source's `tier`, if set (a label of its `/sd` target).
    pub tier: Option<String>,
    /// The source's `platform`, if set (a label of its `/sd` target).
    pub platform: Option<String>,
}

/// The running exporter: its store and the tasks feeding it.
pub struct App {
    pub(super) store: Arc<Results>,
    config_path: Option<PathBuf>,
    /// The part of every config this replica runs.
    shard: Shard,
    running: tokio::sync::Mutex<HashMap<String, RunningSource>>,
    sources: std::sync::Mutex<Vec<SourceStatus>>,
    generated: std::sync::Mutex<Arc<Generated>>,
    /// The templates and defaults leased targets are made with (see [`crate::runtime::targets`]).
    pub(super) lease_setup: std::sync::Mutex<Arc<LeaseSetup>>,
    /// The targets leased through templates.
    pub(super) leases: std::sync::Mutex<Leases<RunningSource>>,
    /// The jobs that report in (`jobs:`), their pings and store.
    #[cfg(feature = "jobs")]
    jobs: Arc<JobTracker>,
    /// How many reloads have been applied (see [`App::reloads`]).
    reloaded: tokio::sync::watch::Sender<u64>,
}

/// What a leased target is made with: the running config's templates and `global:`.
#[derive(Debug, Default)]
pub(super) struct LeaseSetup {
    pub(super) templates: HashMap<String, Arc<Template>>,
    pub(super) global: crate::config_core::Global,
}

/// The dashboard and rules generated from the running config (the whole file, every shard's
/// sources), served at `/dashboards.json` and `/rules.yml`. Each is rendered when it is first
/// asked for, then kept until the next reload: rendering parses and expands the bundled rule
/// files, which at start would be most of the heap's peak and its code resident, for pages
/// most exporters are never asked for.
#[derive(Debug, Default)]
pub struct Generated {
    /// The whole file's config (before this replica's shard is taken); none before the first
    /// config is applied, when both are empty.
    config: Option<Config>,
    /// The config file's path, which names the dashboard.
    path: Option<PathBuf>,
    dashboard: OnceLock<String>,
    rules: OnceLock<String>,
}

impl Generated {
    fn of(config: Config, path: Option<PathBuf>) -> Generated {
        Generated {
            config: Some(config),
            path,
            dashboard: OnceLock::new(),
            rules: OnceLock::new(),
        }
    }

    /// Grafana dashboard JSON.
    pub fn dashboard(&self) -> &str {
        use crate::generate::dashboards::from_config as dashboard;
        self.dashboard.get_or_init(|| {
            let Some(config) = &self.config else {
                return String::new();
            };
            let path = self
                .path
                .as_deref()
                .unwrap_or(std::path::Path::new("config"));
            dashboard::render(config, &dashboard::Options::for_file(path))
        })
    }

    /// Prometheus rule file.
    pub fn rules(&self) -> &str {
        use crate::generate::{bundle::Selection, rules};
        self.rules.get_or_init(|| match &self.config {
            Some(config) => rules::rules(config, &Selection::default()),
            None => String::new(),
        })
    }
}

impl App {
    /// Starts every check of `config`. `config_path` is what a reload re-reads.
    pub fn start(config: Config, config_path: Option<PathBuf>) -> Result<Arc<App>, StartError> {
        Self::start_sharded(config, config_path, Shard::default())
    }

    /// Starts the checks of the sources of `config` that `shard` owns; a reload applies the
    /// same shard to the new file.
    pub fn start_sharded(
        config: Config,
        config_path: Option<PathBuf>,
        shard: Shard,
    ) -> Result<Arc<App>, StartError> {
        let store = Arc::new(Results::new());
        #[cfg(feature = "jobs")]
        let jobs = {
            let store = store.clone();
            let publish = Arc::new(move |families| store.set_job_families(families));
            let jobs = JobTracker::new(config.jobs.clone(), publish).map_err(job_store_error)?;
            jobs.start();
            jobs
        };
        let app = Arc::new(App {
            #[cfg(feature = "jobs")]
            jobs,
            store,
            config_path,
            shard,
            running: tokio::sync::Mutex::new(HashMap::new()),
            sources: std::sync::Mutex::new(Vec::new()),
            generated: std::sync::Mutex::default(),
            lease_setup: std::sync::Mutex::default(),
            leases: std::sync::Mutex::new(Leases::default()),
            reloaded: tokio::sync::watch::Sender::new(0),
        });
        let mut running = app
            .running
            .try_lock()
            .expect("new app: no one else holds the lock");
        app.apply(&mut running, config)?;
        drop(running);
        // Leases: see crate::runtime::targets.
        app.spawn_reaper();
        Ok(app)
    }

    /// The jobs that report in.
    #[cfg(feature = "jobs")]
    pub fn jobs(&self) -> Arc<JobTracker> {
        self.jobs.clone()
    }

    /// Each job that reports in, with its state once it has one: none in a build without the
    /// `jobs` feature, which refuses a config that has jobs.
    pub fn job_list(&self) -> Vec<(JobSpec, Option<JobState>)> {
        #[cfg(feature = "jobs")]
        return self.jobs.jobs();
        #[cfg(not(feature = "jobs"))]
        Vec::new()
    }

    /// The number of reloads applied so far, changing at each: what the sources and checks a
    /// reload removed held is freed once their tasks end, and the binary then returns the
    /// allocator's free memory to the system.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloaded.subscribe()
    }

    /// The store that check tasks write and `/metrics` reads.
    pub fn store(&self) -> Arc<Results> {
        self.store.clone()
    }

    /// Sources of the running config, for the landing page.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.sources.locked().clone()
    }

    /// The dashboard and rules of the running config.
    pub fn generated(&self) -> Arc<Generated> {
        self.generated.locked().clone()
    }

    /// Re-reads the config file and applies it. An invalid file changes nothing: the error is
    /// logged, returned, and the running config goes on.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let Some(path) = &self.config_path else {
            return Err(ReloadError::NoFile);
        };
        let result = match crate::config::load_file(path) {
            Ok(config) => {
                let mut running = self.running.lock().await;
                self.apply(&mut running, config).map_err(ReloadError::Start)
            }
            Err(errors) => Err(ReloadError::Invalid(errors)),
        };
        match &result {
            Ok(()) => {
                self.reloaded.send_modify(|n| *n += 1);
                tracing::info!(event = "config.reloaded", file = %path.display(), "configuration reloaded")
            }
            Err(e) => {
                self.store
                    .set_reload_rejected(SystemTime::now(), &e.to_string());
                tracing::error!(event = "config.reload_failed", cause = e.cause(), file = %path.display(), error = %e, "reload rejected; the previous configuration keeps running");
            }
        }
        result
    }

    /// Stops every check task, leased targets' too.
    pub async fn shutdown(&self) {
        self.running.lock().await.clear();
        self.end_leases(|_| true, "shutdown");
    }

    /// This replica's shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    fn apply(
        &self,
        running: &mut HashMap<String, RunningSource>,
        mut config: Config,
    ) -> Result<(), StartError> {
        // A job store that cannot be opened rejects the config before anything changes.
        #[cfg(feature = "jobs")]
        let jobs = self
            .jobs
            .prepare(config.jobs.clone())
            .map_err(job_store_error)?;
        // Generated from the whole file: the dashboard and rules cover every shard.
        let generated = Arc::new(Generated::of(config.clone(), self.config_path.clone()));
        // The whole file was validated; this replica runs its shard of it.
        let total = config.sources.len();
        config.sources.retain(|s| self.shard.owns(&s.common.name));
        // Recorded once the config is applied: a reload rejected below changes nothing.
        let shard = ShardStatus {
            shard: self.shard,
            owned: config.sources.len(),
            total,
        };
        // Start every source first (connections are lazy; kept ones are taken up again), so
        // that a failure here leaves the running config untouched.
        let started = start_sources(running, &config.sources)?;
        let (next, statuses) = self.run_sources(running, started);
        // Sources no longer configured are dropped (cancelled) with the old map.
        *running = next;
        self.set_lease_setup(&config);
        self.retain_results(running);
        *self.sources.locked() = statuses;
        *self.generated.locked() = generated;
        self.store.set_shard(shard);
        self.store.set_timezone(config.global.timezone);
        #[cfg(feature = "jobs")]
        self.jobs.apply(jobs);
        self.store.set_reload(true, SystemTime::now());
        Ok(())
    }

    /// The running sources of the started ones, with their statuses for the landing page;
    /// the sources taken up leave `running`, so that what remains there is what stops.
    fn run_sources(
        &self,
        running: &mut HashMap<String, RunningSource>,
        started: Vec<(&SourceConfig, crate::sources::registry::Started<'_>)>,
    ) -> (HashMap<String, RunningSource>, Vec<SourceStatus>) {
        let mut next = HashMap::new();
        let mut statuses = Vec::new();
        for (s, source) in started {
            let name = s.common.name.clone();
            statuses.push(SourceStatus {
                name: name.clone(),
                kind: s.kind.name(),
                endpoint: s.kind.display_endpoint(),
                tier: s.common.tier.clone(),
                platform: s.common.platform.clone(),
            });
            // A kept connection brings its running checks and the config they run; a new one
            // starts every check afresh.
            let previous = running.remove(&name).filter(|_| source.kept);
            let connection = source.connection.clone();
            let checks = self.run_checks(s, source, previous, Start::Jittered);
            next.insert(
                name,
                RunningSource {
                    config: s.clone(),
                    connection,
                    checks,
                },
            );
        }
        (next, statuses)
    }

    /// Forgets the cached results of checks that no longer run, so that `/metrics` stops
    /// serving them; leased targets' are kept, since they run outside `running`.
    fn retain_results(&self, running: &HashMap<String, RunningSource>) {
        let leases = self.leases.locked();
        self.store.retain(|(source, check)| {
            running
                .get(source)
                .is_some_and(|r| r.checks.contains_key(check))
                || leases.contains(source)
        });
    }

    /// The running checks of a started source: its health probe (with the certificate reads)
    /// and each check, each kept from `previous` where nothing about it changed, else started
    /// anew, its first run at `start`. Checks of `previous` not taken up are dropped (cancelled) with it.
    pub(super) fn run_checks(
        &self,
        s: &SourceConfig,
        source: crate::sources::registry::Started<'_>,
        previous: Option<RunningSource>,
        start: Start,
    ) -> HashMap<String, RunningCheck> {
        let (mut old_checks, old_config) = match previous {
            Some(old) => (old.checks, Some(old.config)),
            None => (HashMap::new(), None),
        };
        let mut checks = HashMap::new();
        let health = s.plans.health.clone();
        let kept = keep(&mut old_checks, &health, true);
        checks.insert(
            health.check.clone(),
            kept.unwrap_or_else(|| {
                let probe = certificate_watch::Watch::wrap(
                    source.health,
                    s.kind.tls_endpoints(),
                    &s.common.name,
                    self.store.clone(),
                );
                RunningCheck {
                    handle: scheduler::spawn_after(
                        health.clone(),
                        probe,
                        self.store.clone(),
                        start,
                    ),
                    plan: health,
                }
            }),
        );
        for started in source.checks {
            let plan = started.plan;
            let same = old_config.as_ref().is_some_and(|o| {
                o.checks()
                    .into_iter()
                    .any(|old| old.name() == plan.check && old.same_check(started.check))
            });
            let check = keep(&mut old_checks, &plan, same).unwrap_or_else(|| RunningCheck {
                handle: scheduler::spawn_after(
                    plan.clone(),
                    started.probe,
                    self.store.clone(),
                    start,
                ),
                plan,
            });
            checks.insert(check.plan.check.clone(), check);
        }
        checks
    }
}

/// Starts every source of `sources`, on its connection in `running` where its shared fields
/// (timing, labels) did not change; the first that cannot start rejects them all, before
/// anything running changes.
fn start_sources<'a>(
    running: &HashMap<String, RunningSource>,
    sources: &'a [SourceConfig],
) -> Result<Vec<(&'a SourceConfig, crate::sources::registry::Started<'a>)>, StartError> {
    let mut started = Vec::new();
    for s in sources {
        // A source whose shared fields changed (timing, labels) connects anew.
        let previous = running
            .get(&s.common.name)
            .filter(|r| r.config.common == s.common)
            .map(|r| &r.connection);
        let source = s
            .kind
            .start(&s.common.name, previous, &s.plans.checks)
            .map_err(|error| StartError {
                path: s.path.clone(),
                error,
            })?;
        started.push((s, source));
    }
    Ok(started)
}

/// Takes the running check with `plan`'s name out of `old` if nothing about it changed: the
/// same plan, and (`same_config`) the same check config, its place in the file aside.
fn keep(
    old: &mut HashMap<String, RunningCheck>,
    plan: &CheckPlan,
    same_config: bool,
) -> Option<RunningCheck> {
    let existing = old.remove(&plan.check)?;
    (same_config && *existing.plan == *plan).then_some(existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Redis sources on a closed port (connections are lazy: nothing needs to answer).
    const TWO_SOURCES: &str = "sources:\n  - { name: alpha, kind: redis, url: 'redis://127.0.0.1:9' }\n  - { name: beta, kind: redis, url: 'redis://127.0.0.1:9' }\n";

    /// An app started from `TWO_SOURCES` written to a file, which a test rewrites and reloads
    /// (the folder goes with the test).
    fn started_from_a_file() -> (tempfile::TempDir, PathBuf, Arc<App>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pulse.yml");
        std::fs::write(&file, TWO_SOURCES).unwrap();
        let config = crate::config::load_str(TWO_SOURCES).unwrap();
        let app = App::start(config, Some(file.clone())).unwrap();
        (dir, file, app)
    }

    #[tokio::test]
    async fn a_shard_serves_the_dashboard_and_rules_of_the_whole_file() {
        let config = crate::config::load_str(TWO_SOURCES).unwrap();
        // The shard that runs alpha, of two: beta belongs to the other.
        let index = crate::runtime::shard::owner("alpha", 2);
        assert_ne!(
            crate::runtime::shard::owner("beta", 2),
            index,
            "the test needs a split"
        );
        let shard = Shard { index, count: 2 };
        let app = App::start_sharded(config, Some("/etc/pulse/team.yml".into()), shard).unwrap();
        let names: Vec<String> = app.sources().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["alpha"]);
        let generated = app.generated();
        let board: serde_json::Value = serde_json::from_str(generated.dashboard()).unwrap();
        assert_eq!(board["uid"], "pulse-team");
        for source in ["alpha", "beta"] {
            assert!(
                generated
                    .dashboard()
                    .contains(&format!("\"{source} (redis)\"")),
                "{source}"
            );
            assert!(
                generated.rules().contains(&format!("source=\"{source}\"")),
                "{source}"
            );
        }
        app.shutdown().await;
    }

    #[tokio::test]
    async fn the_dashboard_and_rules_once_served_follow_a_reload() {
        // Each is rendered when first asked for and then kept: a reload must not serve the
        // previous config's.
        let (_dir, file, app) = started_from_a_file();
        let before = app.generated();
        assert!(before.rules().contains("source=\"beta\""));
        assert!(before.dashboard().contains("\"beta (redis)\""));
        std::fs::write(&file, TWO_SOURCES.replace("beta", "gamma")).unwrap();
        app.reload().await.unwrap();
        let after = app.generated();
        for (text, what) in [(after.rules(), "rules"), (after.dashboard(), "dashboard")] {
            assert!(text.contains("gamma"), "{what}: {text}");
            assert!(!text.contains("beta"), "{what} of the previous config");
        }
        // A request that began before the reload still reads one whole config.
        assert!(!before.rules().contains("gamma"));
        app.shutdown().await;
    }

    #[tokio::test]
    async fn a_rejected_reload_says_which_kind_of_failure_it_was() {
        let config = crate::config::load_str(TWO_SOURCES).unwrap();
        let in_memory = App::start(config, None).unwrap();
        let e = in_memory.reload().await.unwrap_err();
        assert!(matches!(e, ReloadError::NoFile), "{e:?}");
        in_memory.shutdown().await;

        let (_dir, file, app) = started_from_a_file();
        std::fs::write(&file, "sources:\n  - { name: alpha, kind: redis }\n").unwrap();
        let e = app.reload().await.unwrap_err();
        assert_eq!(e.cause(), "invalid");
        let ReloadError::Invalid(errors) = &e else {
            panic!("{e:?}")
        };
        assert!(errors.0[0].message.contains("missing field `url`"), "{e}");
        assert_eq!(app.store().reload_status().last_error, Some(e.to_string()));
        // The running config went on.
        let names: Vec<String> = app.sources().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["alpha", "beta"]);
        app.shutdown().await;
    }

    #[tokio::test]
    async fn only_an_applied_reload_tells_the_binary_to_release_memory() {
        let (_dir, file, app) = started_from_a_file();
        let mut reloads = app.reloads();
        assert!(!reloads.has_changed().unwrap(), "starting is no reload");
        std::fs::write(&file, "sources:\n  - { name: alpha, kind: redis }\n").unwrap();
        app.reload().await.unwrap_err();
        assert!(
            !reloads.has_changed().unwrap(),
            "a rejected file changed nothing"
        );
        std::fs::write(&file, TWO_SOURCES.replace("beta", "gamma")).unwrap();
        app.reload().await.unwrap();
        assert!(reloads.has_changed().unwrap());
        assert_eq!(*reloads.borrow_and_update(), 1);
        app.shutdown().await;
    }
}
