//! Where job states are kept: this process's memory, or the user's Redis or Postgres, so that
//! any replica takes a ping, every replica publishes the same state and a restart loses none.
//! A write reads the state, applies a pure step to it and writes it back only if nobody wrote
//! in between.
//!
//! [`Store`] is an enum whose arms delegate to a file per backend ([`memory`], [`redis`],
//! [`postgres`]), as mini-redis's commands do; this file holds what they share: the
//! operations every store has, the bound on a slow one, its errors and how a stored state is
//! read.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::jobs::config::{StoreKind, StoreSettings};
use crate::jobs::state::JobState;

// Shared by the Redis and Postgres stores, which a build may leave out.
/// Most states one read of the store takes: the declared jobs' cap plus every key's.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
const MAX_LOADED: usize = 100_000;

/// Largest state read back from the store; a bigger value is not one this exporter wrote.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
const MAX_STATE_BYTES: usize = 64 * 1024;

/// A job store.
pub enum Store {
    /// This process's memory.
    Memory(memory::MemoryStore),
    /// A Redis: one string of JSON per job, and a set naming them. Boxed, as it is far larger
    /// than the other stores.
    #[cfg(feature = "redis")]
    Redis(Box<redis::RedisStore>),
    /// A Postgres table of (name, state).
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresStore),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A `job_store:` URL its client refuses: which field, and why (secrets scrubbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    /// The field of `job_store:` (`redis`, `postgres`, `tls.ca_file`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl OpenError {
    fn new(field: &str, e: impl fmt::Display) -> OpenError {
        let message = crate::secrets::scrub(&format!("the URL does not read: {e}")).into_owned();
        OpenError {
            field: field.to_owned(),
            message,
        }
    }

    /// A TLS file error of [`crate::config_core::tls::TlsFiles::load`] (a file changed since the
    /// config loaded), under `tls.`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn tls((field, message): (&'static str, String)) -> OpenError {
        OpenError {
            field: format!("tls.{field}"),
            message,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job_store.{}: {}", self.field, self.message)
    }
}

impl std::error::Error for OpenError {}

/// Why the store could not be read or written; the text names the store and never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The Redis store's client or server failed.
    Redis(String),
    /// The Postgres store's client or server failed.
    Postgres(String),
    /// A state could not be written as JSON.
    Encode(String),
    /// Another replica kept writing one job under every compare-and-set attempt.
    Contended {
        /// The job.
        job: String,
        /// The attempts made.
        attempts: usize,
    },
    /// No answer within the bound of one operation.
    Timeout {
        /// `memory`, `redis` or `postgres`.
        store: &'static str,
        /// The bound.
        after: Duration,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            StoreError::Redis(e) => format!("job store (Redis): {e}"),
            StoreError::Postgres(e) => format!("job store (Postgres): {e}"),
            StoreError::Encode(e) => format!("job store: {e}"),
            StoreError::Contended { job, attempts } => {
                format!("job store (Redis): job {job:?} kept changing under {attempts} writes")
            }
            StoreError::Timeout { store, after } => {
                format!("job store ({store}): no answer within {after:?}")
            }
        };
        f.write_str(&crate::secrets::scrub(&text))
    }
}

impl std::error::Error for StoreError {}

impl Store {
    /// The store `settings` name, connecting on first use; an unreadable URL is an error now.
    pub fn open(settings: &StoreSettings) -> Result<Store, OpenError> {
        Ok(match &settings.kind {
            StoreKind::Memory => Store::Memory(memory::MemoryStore::default()),
            #[cfg(feature = "redis")]
            StoreKind::Redis { url, prefix, tls } => Store::Redis(Box::new(
                redis::RedisStore::open(url, prefix, tls.as_ref())?,
            )),
            #[cfg(feature = "postgres")]
            StoreKind::Postgres { url, table } => {
                Store::Postgres(postgres::PostgresStore::open(url, table, settings.timeout)?)
            }
            // The config refuses these at load (`clients::urls`); a build is never asked.
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis { .. } => {
                return Err(OpenError::new(
                    "redis",
                    crate::clients::urls::not_built("redis"),
                ))
            }
            #[cfg(not(feature = "postgres"))]
            StoreKind::Postgres { .. } => {
                return Err(OpenError::new(
                    "postgres",
                    crate::clients::urls::not_built("postgres"),
                ))
            }
        })
    }

    /// `work` (one of this store's operations), bounded by `timeout`: a store that does not
    /// answer is an error like any other.
    pub async fn within<T>(
        &self,
        timeout: Duration,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Timeout {
                    store: self.describe(),
                    after: timeout,
                })
            })
    }

    /// `memory`, `redis` or `postgres`, for logs.
    pub fn describe(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Store::Redis(_) => "redis",
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => "postgres",
        }
    }

    /// Applies `step` to the state of job `name` (a new one first seen at `now` when the
    /// store has none) and writes it back atomically; returns the state written and what
    /// `step` returned. A step that changes nothing writes nothing.
    ///
    /// For a job a ping key makes, `cap` is `(key, max_jobs)`: a job the store does not hold
    /// yet is created only while the key has made fewer than `max_jobs`, counted where the
    /// jobs are stored and in the same atomic step as the write (a Lua script in Redis, a
    /// transaction holding the key's advisory lock in Postgres), so concurrent first pings
    /// through any number of replicas never exceed it. `None` when the cap refused the job.
    pub async fn update<R>(
        &self,
        name: &str,
        now: f64,
        cap: Option<(&str, u32)>,
        step: impl FnMut(&mut JobState) -> R,
    ) -> Result<Option<(JobState, R)>, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.update(name, now, cap, step)),
            #[cfg(feature = "redis")]
            Store::Redis(s) => s.update(name, now, cap, step).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.update(name, now, cap, step).await,
        }
    }

    /// Every job's state in the store. A value that does not read as a state is left out and
    /// logged, so one bad entry never hides the others.
    pub async fn load(&self) -> Result<BTreeMap<String, JobState>, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.load()),
            #[cfg(feature = "redis")]
            Store::Redis(s) => s.load().await,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.load().await,
        }
    }

    /// Records each of `names` the store does not hold yet as first seen at `now`; a name it
    /// holds keeps its state (another replica, or this one before a restart, saw it first).
    pub async fn ensure(&self, names: &[String], now: f64) -> Result<(), StoreError> {
        let fresh: Vec<(String, JobState)> = names
            .iter()
            .map(|n| (n.clone(), JobState::new(now)))
            .collect();
        self.put_missing(&fresh).await
    }

    /// Writes each of `states` the store does not hold (a job it lost: a Redis without
    /// persistence that restarted empty); a job it holds keeps the stored state.
    pub async fn put_missing(&self, states: &[(String, JobState)]) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        match self {
            Store::Memory(s) => {
                s.put_missing(states);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Store::Redis(s) => s.put_missing(states).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.put_missing(states).await,
        }
    }

    /// Deletes job `name`'s state (a provisioned job silent past its key's `forget_after`).
    pub async fn forget(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => {
                s.forget(name);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Store::Redis(s) => s.forget(name).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.forget(name).await,
        }
    }
}

/// A stored state; `None` for none, or for one that does not read (logged: the job's next
/// ping rewrites it).
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
fn decode(text: Option<&str>, name: &str) -> Option<JobState> {
    let text = text?;
    if text.len() > MAX_STATE_BYTES {
        tracing::warn!(event = "jobs.store_bad_state", job = %name, bytes = text.len(), "a job's stored state is too large to be one this exporter wrote; it is ignored");
        return None;
    }
    serde_json::from_str(text)
        .map_err(|e| {
            tracing::warn!(event = "jobs.store_bad_state", job = %name, error = %e, "a job's stored state does not read; it is ignored until the job's next ping rewrites it");
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::state::{Ping, Signal};

    fn memory() -> Store {
        Store::open(&StoreSettings::default()).unwrap()
    }

    #[tokio::test]
    async fn a_first_seen_time_is_kept_and_a_step_that_changes_nothing_writes_nothing() {
        let b = memory();
        b.ensure(&["a".to_owned()], 10.0).await.unwrap();
        // A later ensure (a restart, another replica) keeps the first time.
        b.ensure(&["a".to_owned(), "b".to_owned()], 99.0)
            .await
            .unwrap();
        let states = b.load().await.unwrap();
        assert_eq!(
            (states["a"].first_seen, states["b"].first_seen),
            (10.0, 99.0)
        );
        let ping = Ping {
            signal: Signal::Success,
            rid: Some("r".into()),
            log: None,
            at: 20.0,
        };
        let (state, _) = b
            .update("a", 20.0, None, |s| s.apply(&ping, Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((state.first_seen, state.last_success), (10.0, Some(20.0)));
        // A job the store does not hold is first seen when its first ping arrives.
        let (state, _) = b.update("c", 30.0, None, |_| ()).await.unwrap().unwrap();
        assert_eq!(state.first_seen, 30.0);
        b.forget("c").await.unwrap();
        assert!(!b.load().await.unwrap().contains_key("c"));
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_is_an_error_naming_it() {
        let b = memory();
        let e = b
            .within(Duration::from_millis(10), async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "job store (memory): no answer within 10ms");
    }

    #[test]
    fn a_stored_state_that_does_not_read_is_none_and_a_good_one_reads() {
        assert_eq!(decode(None, "a"), None);
        assert_eq!(decode(Some("garbage"), "a"), None);
        assert_eq!(decode(Some(&"x".repeat(MAX_STATE_BYTES + 1)), "a"), None);
        assert_eq!(
            decode(Some(r#"{"first_seen": 5.0}"#), "a"),
            Some(JobState::new(5.0))
        );
    }

    #[test]
    fn an_unreadable_url_is_refused_naming_the_field_and_without_its_password() {
        let settings = |kind| StoreSettings {
            kind,
            ..StoreSettings::default()
        };
        let e = Store::open(&settings(StoreKind::Postgres {
            url: "postgres://u:hunter2@db:notaport/x".into(),
            table: "t".into(),
        }))
        .unwrap_err();
        assert_eq!(e.field, "postgres");
        let text = e.to_string();
        assert!(
            text.starts_with("job_store.postgres: the URL does not read")
                && !text.contains("hunter2"),
            "{text}"
        );
        let e = Store::open(&settings(StoreKind::Redis {
            url: "nonsense://x".into(),
            prefix: "p:".into(),
            tls: None,
        }))
        .unwrap_err();
        assert_eq!(e.field, "redis");
    }
}
