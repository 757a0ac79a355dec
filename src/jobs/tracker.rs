//! The jobs of the running config: taking pings (who may send one, how often, what it
//! changes), reading every job's state from the store in the background, forgetting silent
//! provisioned jobs, and publishing the `pulse_job_*` series into the exporter's store.

use crate::sync::{MutexExt, RwLockExt};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::jobs::config::{JobSpec, JobsConfig};
use crate::jobs::metrics::{job_families, JOB_STORE_UP};
use crate::jobs::state::{Applied, JobState, Ping, ABANDON_AFTER};
use crate::jobs::store::{OpenError, Store};
use crate::series::sample::{unix_now, Family, Output};

/// Pings one job may send per second, sustained.
pub const PINGS_PER_SECOND: u32 = 5;

/// Pings one job may send in a burst.
pub const PING_BURST: u32 = 50;

/// What a ping was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user of the web config's `basic_auth_users`, already verified.
    WebUser,
    /// `Authorization: Bearer …`.
    Bearer(String),
    /// Nothing.
    None,
}

/// Why a ping was refused, as the tracker sees it; the server answers each with its HTTP
/// status (`serve::refusal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The ping names its job the way no job is named.
    Malformed,
    /// The ping carries no credential the job accepts.
    Unsigned,
    /// The job takes no pings, belongs to another ping key, or its key made every job it
    /// may.
    Forbidden,
    /// No such job, and nothing in the ping that would make it.
    Unknown,
    /// More pings a second than a job may send.
    TooFast,
    /// The store did not record the ping.
    NotRecorded,
}

/// A refused ping: why, a message that says what to change, and when to send it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub why: Why,
    /// What was wrong, and the fix.
    pub message: String,
    /// Seconds to wait before trying again, when waiting helps.
    pub retry_after: Option<u64>,
}

impl Refused {
    /// A refusal with no retry.
    fn new(why: Why, message: impl Into<String>) -> Self {
        Refused {
            why,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The refusal of a new job for the ping key `key`, which has made its `max` jobs.
    fn key_full(key: &str, max: u32) -> Self {
        Refused::new(Why::Forbidden, format!("ping key {key:?} has made its {max} jobs (`max_jobs`): raise max_jobs, or let silent ones be forgotten after `forget_after`"))
    }
}

/// A reloaded jobs config, checked by [`JobTracker::prepare`] and not yet applied.
pub struct Prepared {
    config: JobsConfig,
    /// Its store, opened, when it is not the running one.
    backend: Option<Store>,
}

/// Where the tracker publishes the `pulse_job_*` series (the exporter's store, which sits
/// above this module).
pub type Publish = Arc<dyn Fn(Vec<Family>) + Send + Sync>;

/// The running jobs, their store, and what they last published.
pub struct JobTracker {
    config: RwLock<Arc<JobsConfig>>,
    backend: RwLock<Arc<Store>>,
    /// Every job's state as last read or written.
    cache: Mutex<BTreeMap<String, JobState>>,
    store_up: AtomicBool,
    /// Set when the declared jobs must be recorded in the store (at start, after a reload).
    ensure: AtomicBool,
    limiter: DefaultKeyedRateLimiter<String>,
    published: Publish,
    refresh: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for JobTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTracker").finish_non_exhaustive()
    }
}

impl Drop for JobTracker {
    fn drop(&mut self) {
        if let Some(h) = self.refresh.get_mut().ok().and_then(Option::take) {
            h.abort();
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares tokens by their digests, so the time taken says nothing of a guess's prefix.
fn same_token(a: &str, b: &str) -> bool {
    digest(a) == digest(b)
}

impl JobTracker {
    /// A tracker for `config`, publishing through `published`. Its store is opened (not
    /// connected); the background reads start with [`JobTracker::start`].
    pub fn new(config: JobsConfig, published: Publish) -> Result<Arc<JobTracker>, OpenError> {
        let backend = Store::open(&config.store)?;
        let quota = Quota::per_second(NonZeroU32::new(PINGS_PER_SECOND).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(PING_BURST).unwrap_or(NonZeroU32::MIN));
        let tracker = Arc::new(JobTracker {
            config: RwLock::new(Arc::new(config)),
            backend: RwLock::new(Arc::new(backend)),
            cache: Mutex::default(),
            store_up: AtomicBool::new(true),
            ensure: AtomicBool::new(true),
            limiter: RateLimiter::keyed(quota),
            published,
            refresh: Mutex::default(),
        });
        tracker.publish();
        Ok(tracker)
    }

    /// Starts reading the store every `refresh`, on the current Tokio runtime.
    pub fn start(self: &Arc<Self>) {
        let config = self.config();
        if !config.is_empty() && self.backend().describe() == "memory" {
            tracing::warn!(event = "jobs.memory_store", jobs = config.jobs.len(), "jobs are configured without `job_store:`: their pings are kept in this process only, lost at a restart and not seen by other replicas");
        }
        let weak = Arc::downgrade(self);
        let handle = tokio::spawn(async move {
            loop {
                let Some(tracker) = weak.upgrade() else {
                    return;
                };
                let every = tracker.config().store.refresh;
                tracker.refresh_once().await;
                drop(tracker);
                tokio::time::sleep(every).await;
            }
        });
        if let Some(old) = self.refresh.locked().replace(handle) {
            old.abort();
        }
    }

    /// Checks a reloaded config without changing anything: its store is opened when it is
    /// not the running one (an unreadable URL is refused here, before a reload commits).
    pub fn prepare(&self, config: JobsConfig) -> Result<Prepared, OpenError> {
        let backend = match config.store != self.config().store {
            true => Some(Store::open(&config.store)?),
            false => None,
        };
        Ok(Prepared { config, backend })
    }

    /// Applies a prepared config: a changed store replaces the old one (its states are read
    /// afresh); removed jobs leave at once.
    pub fn apply(&self, prepared: Prepared) {
        if let Some(backend) = prepared.backend {
            *self.backend.write_locked() = Arc::new(backend);
            self.cache.locked().clear();
        }
        *self.config.write_locked() = Arc::new(prepared.config);
        self.ensure.store(true, Ordering::Release);
        self.publish();
    }

    /// The jobs config in force.
    pub fn config(&self) -> Arc<JobsConfig> {
        self.config.read_locked().clone()
    }

    fn backend(&self) -> Arc<Store> {
        self.backend.read_locked().clone()
    }

    /// One read of the store: records declared jobs it does not hold yet, reads every state,
    /// forgets provisioned jobs silent past their key's `forget_after`, and publishes.
    pub async fn refresh_once(&self) {
        let config = self.config();
        let backend = self.backend();
        let timeout = config.store.timeout;
        let now = unix_now();
        if self.ensure.swap(false, Ordering::AcqRel) {
            let names: Vec<String> = config.jobs.iter().map(|j| j.name.clone()).collect();
            if backend
                .within(timeout, backend.ensure(&names, now))
                .await
                .is_err()
            {
                self.ensure.store(true, Ordering::Release);
            }
        }
        match backend.within(timeout, backend.load()).await {
            Ok(mut states) => {
                let mut forgotten = Vec::new();
                for (name, state) in &states {
                    let Some(key) = state.key.as_deref() else {
                        continue;
                    };
                    let Some(spec) = config.keys.iter().find(|k| k.name == key) else {
                        continue;
                    };
                    let silent_since = state.last_ping.unwrap_or(state.first_seen);
                    if now - silent_since > spec.forget_after.as_secs_f64() {
                        tracing::info!(event = "jobs.forgotten", job = %name, key = %key, "a job made by a ping key was silent past its forget_after; its series leave");
                        let _ = backend.within(timeout, backend.forget(name)).await;
                        forgotten.push(name.clone());
                    }
                }
                for name in forgotten {
                    states.remove(&name);
                }
                // A declared job the store lost (a Redis without persistence restarted empty)
                // is written back with the state this replica knows, its first_seen and last
                // runs, so a late job stays late; a replica that knows nothing of it leaves it
                // to the next that does (or to the reload's `ensure`).
                let lost: Vec<(String, JobState)> = {
                    let cache = self.cache.locked();
                    config
                        .jobs
                        .iter()
                        .filter(|j| !states.contains_key(&j.name))
                        .filter_map(|j| Some((j.name.clone(), cache.get(&j.name)?.clone())))
                        .collect()
                };
                if !lost.is_empty() {
                    tracing::warn!(event = "jobs.restored", jobs = lost.len(), "declared jobs were missing from the job store (restarted empty?): written back with the states this replica knew");
                    if let Err(e) = backend.within(timeout, backend.put_missing(&lost)).await {
                        tracing::warn!(event = "jobs.restore_failed", error = %e, "declared jobs missing from the job store could not be written back: kept from this replica's states, tried again at the next read");
                    }
                    states.extend(lost);
                }
                *self.cache.locked() = states;
                self.set_store_up(true, None);
            }
            Err(e) => self.set_store_up(false, Some(e.to_string())),
        }
        self.publish();
    }

    fn set_store_up(&self, up: bool, error: Option<String>) {
        let was = self.store_up.swap(up, Ordering::AcqRel);
        if was && !up {
            tracing::warn!(event = "jobs.store_down", error = %error.unwrap_or_default(), "the job store cannot be read: pings are refused with 503 and the last states read stay published");
        } else if !was && up {
            tracing::info!(event = "jobs.store_up", "the job store can be read again");
        }
    }

    /// The jobs published: the declared ones, then those the configured keys made (at most
    /// each key's `max_jobs`).
    pub fn jobs(&self) -> Vec<(JobSpec, Option<JobState>)> {
        let config = self.config();
        let cache = self.cache.locked();
        let mut out: Vec<(JobSpec, Option<JobState>)> = config
            .jobs
            .iter()
            .map(|j| (j.clone(), cache.get(&j.name).cloned()))
            .collect();
        for key in &config.keys {
            let made = cache
                .iter()
                .filter(|(name, s)| {
                    s.key.as_deref() == Some(key.name.as_str())
                        && !config.jobs.iter().any(|j| &j.name == *name)
                })
                .take(key.max_jobs as usize);
            for (name, state) in made {
                let mut spec = key.job.clone();
                spec.name = name.clone();
                out.push((spec, Some(state.clone())));
            }
        }
        out
    }

    fn publish(&self) {
        let config = self.config();
        let mut families = Vec::new();
        if !config.is_empty() {
            let mut own = Output::default();
            let up = if self.store_up.load(Ordering::Acquire) {
                1.0
            } else {
                0.0
            };
            own.add(&JOB_STORE_UP, &[self.backend().describe()], up);
            families.extend(own.families);
        }
        let now = unix_now();
        for (spec, state) in self.jobs() {
            families.extend(job_families(&spec, state.as_ref(), now));
        }
        (self.published)(families);
    }

    /// The job a ping for `name` signed with `credential` is for: a declared job its token or
    /// a web user signs, or a job a ping key makes (or made), with the key's name. Refused
    /// when nothing signs it, no job or key knows it, or the key may not make it.
    fn signed_spec(
        &self,
        config: &JobsConfig,
        name: &str,
        credential: &Credential,
        web_users: bool,
    ) -> Result<(JobSpec, Option<String>), Refused> {
        let bearer = match credential {
            Credential::Bearer(t) => Some(t.as_str()),
            _ => None,
        };
        let mut made_by = None;
        let spec = match config.jobs.iter().find(|j| j.name == name) {
            Some(job) => {
                let signed = *credential == Credential::WebUser
                    || matches!((bearer, &job.token), (Some(b), Some(t)) if same_token(b, t));
                if !signed {
                    if job.token.is_none() && !web_users {
                        return Err(Refused::new(Why::Forbidden, format!("job {name:?} takes no pings: it has no `token` and the web config has no `basic_auth_users`; set one of them")));
                    }
                    // A token that was sent and does not match is another mistake than none
                    // sent: a stale secret, or another job's token.
                    let message = match bearer {
                        Some(_) if job.token.is_some() => format!("the bearer token does not match job {name:?}'s `token`: send that job's own token (a rotated secret, or another job's token?)"),
                        Some(_) => format!("job {name:?} has no `token`, so a bearer token cannot sign its pings: sign them as a web config user (basic auth), or give the job a `token`"),
                        None => format!("a ping for job {name:?} must carry its token (`Authorization: Bearer …`) or a web config user (basic auth)"),
                    };
                    return Err(Refused::new(Why::Unsigned, message));
                }
                job.clone()
            }
            None => {
                let key = bearer.and_then(|b| config.keys.iter().find(|k| same_token(b, &k.key)));
                let Some(key) = key else {
                    if bearer.is_some() && !config.keys.is_empty() {
                        return Err(Refused::new(Why::Unsigned, format!("job {name:?} is not declared and the bearer token is not a ping key (`job_keys:`)")));
                    }
                    return Err(Refused::new(Why::Unknown, format!("no job {name:?}: declare it under `jobs:`, or ping with a `job_keys:` key to create it")));
                };
                if !crate::jobs::config::is_job_name(name) {
                    return Err(Refused::new(
                        Why::Malformed,
                        "a job name is 1-64 characters of letters, digits, `_`, `.` or `-`",
                    ));
                }
                {
                    let cache = self.cache.locked();
                    if let Some(owner) = cache.get(name).and_then(|s| s.key.as_deref()) {
                        if owner != key.name {
                            return Err(Refused::new(
                                Why::Forbidden,
                                format!(
                                    "job {name:?} was made by ping key {owner:?}, not {:?}",
                                    key.name
                                ),
                            ));
                        }
                    } else {
                        let made = cache
                            .values()
                            .filter(|s| s.key.as_deref() == Some(key.name.as_str()))
                            .count();
                        if made >= key.max_jobs as usize {
                            return Err(Refused::key_full(&key.name, key.max_jobs));
                        }
                    }
                }
                made_by = Some(key.name.clone());
                let mut spec = key.job.clone();
                spec.name = name.to_owned();
                spec
            }
        };
        Ok((spec, made_by))
    }

    /// Takes a ping for job `name`, signed with `credential`; `web_users` says whether the
    /// web config has users (who may sign any job's pings).
    pub async fn ping(
        &self,
        name: &str,
        credential: Credential,
        web_users: bool,
        ping: Ping,
    ) -> Result<Applied, Refused> {
        let config = self.config();
        let (spec, made_by) = self.signed_spec(&config, name, &credential, web_users)?;
        if self.limiter.check_key(&name.to_owned()).is_err() {
            return Err(Refused {
                retry_after: Some(1),
                ..Refused::new(Why::TooFast, format!("job {name:?} is sending more than {PINGS_PER_SECOND} pings a second (burst {PING_BURST}); slow down"))
            });
        }
        let abandon = spec.max_runtime.unwrap_or(ABANDON_AFTER);
        let backend = self.backend();
        let timeout = config.store.timeout;
        // A key's new job is counted against its max_jobs where the jobs are stored, in the
        // same atomic step as its first write: this replica's cache may be behind.
        let cap = made_by.as_deref().and_then(|k| {
            let key = config.keys.iter().find(|key| key.name == k)?;
            Some((k, key.max_jobs))
        });
        let update = backend.update(name, ping.at, cap, |state| {
            if state.key.is_none() {
                state.key = made_by.clone();
            }
            state.apply_for(&spec, &ping, abandon)
        });
        match backend.within(timeout, update).await {
            Ok(None) => {
                let (key, max) = cap.unwrap_or_default();
                Err(Refused::key_full(key, max))
            }
            Ok(Some((state, applied))) => {
                self.cache.locked().insert(name.to_owned(), state);
                self.set_store_up(true, None);
                self.publish();
                if let Some(key) = &made_by {
                    tracing::debug!(event = "jobs.ping", job = %name, key = %key, signal = ping.signal.as_str());
                }
                Ok(applied)
            }
            Err(e) => {
                let why = e.to_string();
                self.set_store_up(false, Some(why.clone()));
                self.publish();
                Err(Refused {
                    retry_after: Some(5),
                    ..Refused::new(
                        Why::NotRecorded,
                        format!("the ping was not recorded: {why}; send it again"),
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::state::Signal;

    fn tracker(yaml_jobs: &str, yaml_keys: &str) -> Arc<JobTracker> {
        let mut errors = Vec::new();
        let v = |t: &str| (!t.is_empty()).then(|| serde_yaml::from_str(t).unwrap());
        let config =
            crate::jobs::config::parse(v(yaml_jobs), v(yaml_keys), None, None, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        JobTracker::new(config, Arc::new(|_| {})).unwrap()
    }

    fn ping(signal: Signal) -> Ping {
        Ping {
            signal,
            rid: None,
            log: None,
            at: unix_now(),
        }
    }

    const TOKEN: &str = "tok-0123456789abcdef";
    const KEY: &str = "key-0123456789abcdef";

    #[tokio::test]
    async fn pings_are_signed_by_the_jobs_token_or_a_web_user() {
        let t = tracker(
            &format!("[{{name: a, every: 1h, token: {TOKEN}}}, {{name: open, every: 1h}}]"),
            "",
        );
        let bearer = |s: &str| Credential::Bearer(s.to_owned());
        assert!(t
            .ping("a", bearer(TOKEN), false, ping(Signal::Start))
            .await
            .is_ok());
        assert_eq!(
            t.ping(
                "a",
                bearer("wrong-0123456789ab"),
                false,
                ping(Signal::Start)
            )
            .await
            .unwrap_err()
            .why,
            Why::Unsigned
        );
        let wrong = t
            .ping(
                "a",
                bearer("wrong-0123456789ab"),
                false,
                ping(Signal::Start),
            )
            .await
            .unwrap_err();
        assert!(
            wrong.message.contains("does not match"),
            "{}",
            wrong.message
        );
        assert_eq!(
            t.ping("a", Credential::None, false, ping(Signal::Start))
                .await
                .unwrap_err()
                .why,
            Why::Unsigned
        );
        assert!(t
            .ping("a", Credential::WebUser, true, ping(Signal::Success))
            .await
            .is_ok());
        let refused = t
            .ping("open", Credential::None, false, ping(Signal::Start))
            .await
            .unwrap_err();
        assert_eq!(refused.why, Why::Forbidden);
        assert!(
            refused.message.contains("basic_auth_users"),
            "{}",
            refused.message
        );
        assert_eq!(
            t.ping("nope", Credential::None, false, ping(Signal::Start))
                .await
                .unwrap_err()
                .why,
            Why::Unknown
        );
    }

    #[tokio::test]
    async fn a_key_makes_jobs_up_to_its_cap_and_only_its_own() {
        let t = tracker(
            "",
            &format!("[{{name: k, key: {KEY}, every: 1h, max_jobs: 2}}, {{name: other, key: other-0123456789abcd, every: 1h}}]"),
        );
        let key = Credential::Bearer(KEY.to_owned());
        for name in ["one", "two"] {
            assert!(t
                .ping(name, key.clone(), false, ping(Signal::Success))
                .await
                .is_ok());
        }
        let full = t
            .ping("three", key.clone(), false, ping(Signal::Success))
            .await
            .unwrap_err();
        assert_eq!(full.why, Why::Forbidden);
        assert!(full.message.contains("max_jobs"), "{}", full.message);
        let theirs = Credential::Bearer("other-0123456789abcd".to_owned());
        assert_eq!(
            t.ping("one", theirs, false, ping(Signal::Success))
                .await
                .unwrap_err()
                .why,
            Why::Forbidden
        );
        assert_eq!(
            t.ping("bad name", key.clone(), false, ping(Signal::Success))
                .await
                .unwrap_err()
                .why,
            Why::Malformed
        );
        let published: Vec<String> = t.jobs().into_iter().map(|(s, _)| s.name).collect();
        assert_eq!(published, ["one", "two"]);
    }

    #[tokio::test]
    async fn a_flood_of_pings_is_refused_with_retry_after() {
        let t = tracker(&format!("[{{name: a, every: 1h, token: {TOKEN}}}]"), "");
        let mut limited = None;
        for _ in 0..(PING_BURST + 5) {
            if let Err(r) = t
                .ping(
                    "a",
                    Credential::Bearer(TOKEN.into()),
                    false,
                    ping(Signal::Start),
                )
                .await
            {
                limited = Some(r);
                break;
            }
        }
        let r = limited.expect("the burst is bounded");
        assert_eq!((r.why, r.retry_after), (Why::TooFast, Some(1)));
    }

    #[tokio::test]
    async fn only_a_removed_job_or_a_keys_silent_one_leaves_a_late_one_stays() {
        let t = tracker(
            &format!("[{{name: a, every: 1s, grace: 1s, token: {TOKEN}}}]"),
            &format!("[{{name: k, key: {KEY}, every: 1h, forget_after: 1m}}]"),
        );
        let key = Credential::Bearer(KEY.to_owned());
        let long_ago = Ping {
            at: unix_now() - 120.0,
            ..ping(Signal::Success)
        };
        t.ping("silent", key.clone(), false, long_ago)
            .await
            .unwrap();
        t.ping("recent", key, false, ping(Signal::Success))
            .await
            .unwrap();
        let old = Ping {
            at: unix_now() - 3600.0,
            ..ping(Signal::Success)
        };
        t.ping("a", Credential::Bearer(TOKEN.into()), false, old)
            .await
            .unwrap();
        t.refresh_once().await;
        let names =
            |t: &JobTracker| -> Vec<String> { t.jobs().into_iter().map(|(s, _)| s.name).collect() };
        // `a` is an hour late and stays; the key's job silent past forget_after leaves.
        assert_eq!(names(&t), ["a", "recent"]);
        let (spec, state) = &t.jobs()[0];
        assert!(state.as_ref().unwrap().deadline(spec).unwrap() < unix_now());
        // Removed from the config, `a` leaves at once.
        let mut errors = Vec::new();
        let keys = serde_yaml::from_str(&format!("[{{name: k, key: {KEY}, every: 1h}}]")).unwrap();
        let config = crate::jobs::config::parse(None, Some(keys), None, None, &mut errors);
        t.apply(t.prepare(config).unwrap());
        assert_eq!(names(&t), ["recent"]);
    }
}
