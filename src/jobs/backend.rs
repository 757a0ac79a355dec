//! Where job states are kept: this process's memory, or the user's Redis or Postgres, so that
//! any replica takes a ping, every replica publishes the same state and a restart loses none.
//! A write reads the state, applies a pure step to it and writes it back only if nobody wrote
//! in between (a Lua compare-and-set on Redis, a row lock on Postgres).

use crate::sync::MutexExt;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

// The clients under names of their own: this module is no source kind, and names nothing of
// `sources::redis` or `sources::postgres` (tests/layout.rs tells the two apart by these paths).
use kv::aio::{ConnectionManager, ConnectionManagerConfig};
use redis as kv;
use sql::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::postgres as sql;
use sqlx::Row;

use crate::jobs::config::{StoreKind, StoreSettings};
use crate::jobs::state::JobState;

/// Most states one read of the store takes: the declared jobs' cap plus every key's.
const MAX_LOADED: usize = 100_000;

/// Largest state read back from the store; a bigger value is not one this exporter wrote.
const MAX_STATE_BYTES: usize = 64 * 1024;

/// How often a write is retried when another replica wrote the same job in between.
const CAS_ATTEMPTS: usize = 16;

/// A job store.
pub enum Backend {
    /// This process's memory.
    Memory(std::sync::Mutex<BTreeMap<String, JobState>>),
    /// A Redis: one string of JSON per job, and a set naming them.
    Redis {
        /// The client (its URL); boxed, as it is far larger than the other stores.
        client: Box<kv::Client>,
        /// Connected on first use; dropped after an error so the next use reconnects.
        conn: tokio::sync::Mutex<Option<ConnectionManager>>,
        /// Prefix of every key.
        prefix: String,
    },
    /// A Postgres table of (name, state).
    Postgres {
        /// A small lazily connecting pool.
        pool: PgPool,
        /// The table.
        table: String,
        /// Set once the table is known to exist.
        ready: AtomicBool,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why the store could not be read or written; the text names the store and never a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::secrets::scrub(&self.0))
    }
}

fn redis_error(e: kv::RedisError) -> StoreError {
    StoreError(format!("job store (Redis): {e}"))
}

fn pg_error(e: sqlx::Error) -> StoreError {
    StoreError(format!("job store (Postgres): {e}"))
}

impl Backend {
    /// The store `settings` name, connecting on first use; an unreadable URL is an error now.
    pub fn open(settings: &StoreSettings) -> Result<Backend, String> {
        match &settings.kind {
            StoreKind::Memory => Ok(Backend::Memory(Default::default())),
            StoreKind::Redis { url, prefix } => {
                let client = kv::Client::open(url.as_str()).map_err(|e| {
                    crate::secrets::scrub(&format!("the Redis URL does not read: {e}")).into_owned()
                })?;
                Ok(Backend::Redis {
                    client: Box::new(client),
                    conn: tokio::sync::Mutex::new(None),
                    prefix: prefix.clone(),
                })
            }
            StoreKind::Postgres { url, table } => {
                let options = PgConnectOptions::from_str(url).map_err(|e| {
                    crate::secrets::scrub(&format!("the Postgres URL does not read: {e}"))
                        .into_owned()
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .min_connections(0)
                    .acquire_timeout(settings.timeout)
                    .idle_timeout(Duration::from_secs(60))
                    .connect_lazy_with(options.application_name("pulse-exporter-jobs"));
                Ok(Backend::Postgres {
                    pool,
                    table: table.clone(),
                    ready: AtomicBool::new(false),
                })
            }
        }
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
                Err(StoreError(format!(
                    "job store ({}): no answer within {timeout:?}",
                    self.describe()
                )))
            })
    }

    /// `memory`, `redis` or `postgres`, for logs.
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            Backend::Redis { .. } => "redis",
            Backend::Postgres { .. } => "postgres",
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
        mut step: impl FnMut(&mut JobState) -> R,
    ) -> Result<Option<(JobState, R)>, StoreError> {
        match self {
            Backend::Memory(map) => {
                let mut map = map.locked();
                if let Some((key, max)) = cap {
                    let made = map
                        .values()
                        .filter(|s| s.key.as_deref() == Some(key))
                        .count();
                    if !map.contains_key(name) && made >= max as usize {
                        return Ok(None);
                    }
                }
                let state = map
                    .entry(name.to_owned())
                    .or_insert_with(|| JobState::new(now));
                let r = step(state);
                Ok(Some((state.clone(), r)))
            }
            Backend::Redis { prefix, .. } => {
                let key = format!("{prefix}job:{name}");
                let index = format!("{prefix}index");
                // Set only when the value is still the one read (`false` for none); a new job
                // of a ping key only while the key's jobs in the index number under its cap
                // (-1 refuses it).
                let script = kv::Script::new(
                    r"local cur = redis.call('GET', KEYS[1])
                      if cur == false and ARGV[4] ~= '' then
                        local made = 0
                        for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
                          local v = redis.call('GET', ARGV[6] .. n)
                          if v then
                            local ok, s = pcall(cjson.decode, v)
                            if ok and type(s) == 'table' and s.key == ARGV[4] then made = made + 1 end
                          end
                        end
                        if made >= tonumber(ARGV[5]) then return -1 end
                      end
                      if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
                        redis.call('SET', KEYS[1], ARGV[2])
                        redis.call('SADD', KEYS[2], ARGV[3])
                        return 1
                      end
                      return 0",
                );
                let (cap_key, cap_max) = cap.unwrap_or(("", 0));
                for _ in 0..CAS_ATTEMPTS {
                    let mut conn = self.redis().await?;
                    let current: Option<String> = kv::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| self.redis_failed(e))?;
                    let mut state =
                        decode(current.as_deref(), name).unwrap_or_else(|| JobState::new(now));
                    let before = state.clone();
                    let r = step(&mut state);
                    if current.is_some() && state == before {
                        return Ok(Some((state, r)));
                    }
                    let text = serde_json::to_string(&state)
                        .map_err(|e| StoreError(format!("job store: {e}")))?;
                    let set: i64 = script
                        .key(&key)
                        .key(&index)
                        .arg(current.as_deref().unwrap_or(""))
                        .arg(&text)
                        .arg(name)
                        .arg(cap_key)
                        .arg(cap_max)
                        .arg(format!("{prefix}job:"))
                        .invoke_async(&mut conn)
                        .await
                        .map_err(|e| self.redis_failed(e))?;
                    match set {
                        1 => return Ok(Some((state, r))),
                        -1 => return Ok(None),
                        _ => {}
                    }
                }
                Err(StoreError(format!(
                    "job store (Redis): job {name:?} kept changing under {CAS_ATTEMPTS} writes"
                )))
            }
            Backend::Postgres { pool, table, .. } => {
                self.ensure_table().await?;
                let mut tx = pool.begin().await.map_err(pg_error)?;
                if let Some((key, max)) = cap {
                    // One key's new jobs one at a time, across replicas: the count and the
                    // insert below see the same rows. The key is found in the stored text (as
                    // serde writes it), so a corrupt row is skipped rather than failing the cast.
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                        .bind(format!("{table}/{key}"))
                        .execute(&mut *tx)
                        .await
                        .map_err(pg_error)?;
                    let (exists, made): (bool, i64) = sqlx::query_as(&format!(
                        "SELECT EXISTS (SELECT 1 FROM {table} WHERE name = $1), \
                          (SELECT count(*) FROM {table} \
                          WHERE position('\"key\":' || to_json($2::text)::text IN state) > 0)"
                    ))
                    .bind(name)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(pg_error)?;
                    if !exists && made >= i64::from(max) {
                        tx.rollback().await.map_err(pg_error)?;
                        return Ok(None);
                    }
                }
                let fresh = serde_json::to_string(&JobState::new(now)).unwrap_or_default();
                sqlx::query(&format!(
                    "INSERT INTO {table} (name, state) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                ))
                .bind(name)
                .bind(&fresh)
                .execute(&mut *tx)
                .await
                .map_err(pg_error)?;
                let row = sqlx::query(&format!(
                    "SELECT state FROM {table} WHERE name = $1 FOR UPDATE"
                ))
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(pg_error)?;
                let text: String = row.try_get(0).map_err(pg_error)?;
                let mut state = decode(Some(&text), name).unwrap_or_else(|| JobState::new(now));
                let before = state.clone();
                let r = step(&mut state);
                if state != before {
                    let text = serde_json::to_string(&state)
                        .map_err(|e| StoreError(format!("job store: {e}")))?;
                    sqlx::query(&format!(
                        "UPDATE {table} SET state = $2, updated_at = now() WHERE name = $1"
                    ))
                    .bind(name)
                    .bind(&text)
                    .execute(&mut *tx)
                    .await
                    .map_err(pg_error)?;
                }
                tx.commit().await.map_err(pg_error)?;
                Ok(Some((state, r)))
            }
        }
    }

    /// Every job's state in the store. A value that does not read as a state is left out and
    /// logged, so one bad entry never hides the others.
    pub async fn load(&self) -> Result<BTreeMap<String, JobState>, StoreError> {
        let mut out = BTreeMap::new();
        match self {
            Backend::Memory(map) => {
                return Ok(map.locked().clone());
            }
            Backend::Redis { prefix, .. } => {
                let mut conn = self.redis().await?;
                let index = format!("{prefix}index");
                let names: Vec<String> = kv::cmd("SRANDMEMBER")
                    .arg(&index)
                    .arg(MAX_LOADED)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.redis_failed(e))?;
                for chunk in names.chunks(500) {
                    let keys: Vec<String> =
                        chunk.iter().map(|n| format!("{prefix}job:{n}")).collect();
                    let values: Vec<Option<String>> = kv::cmd("MGET")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| self.redis_failed(e))?;
                    for (name, value) in chunk.iter().zip(values) {
                        if let Some(state) = decode(value.as_deref(), name) {
                            out.insert(name.clone(), state);
                        }
                    }
                }
            }
            Backend::Postgres { pool, table, .. } => {
                self.ensure_table().await?;
                let rows = sqlx::query(&format!(
                    "SELECT name, state FROM {table} ORDER BY name LIMIT {MAX_LOADED}"
                ))
                .fetch_all(pool)
                .await
                .map_err(pg_error)?;
                for row in rows {
                    let (Ok(name), Ok(text)) =
                        (row.try_get::<String, _>(0), row.try_get::<String, _>(1))
                    else {
                        continue;
                    };
                    if let Some(state) = decode(Some(&text), &name) {
                        out.insert(name, state);
                    }
                }
            }
        }
        Ok(out)
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
        let encode = |state: &JobState| serde_json::to_string(state).unwrap_or_default();
        match self {
            Backend::Memory(map) => {
                let mut map = map.locked();
                for (n, state) in states {
                    map.entry(n.clone()).or_insert_with(|| state.clone());
                }
            }
            Backend::Redis { prefix, .. } => {
                let mut conn = self.redis().await?;
                let mut pipe = kv::pipe();
                for (n, state) in states {
                    pipe.cmd("SET")
                        .arg(format!("{prefix}job:{n}"))
                        .arg(encode(state))
                        .arg("NX")
                        .ignore();
                    pipe.cmd("SADD")
                        .arg(format!("{prefix}index"))
                        .arg(n)
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.redis_failed(e))?;
            }
            Backend::Postgres { pool, table, .. } => {
                self.ensure_table().await?;
                let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
                let texts: Vec<String> = states.iter().map(|(_, s)| encode(s)).collect();
                sqlx::query(&format!(
                    "INSERT INTO {table} (name, state) SELECT * FROM unnest($1::text[], $2::text[]) \
                     ON CONFLICT (name) DO NOTHING"
                ))
                .bind(&names)
                .bind(&texts)
                .execute(pool)
                .await
                .map_err(pg_error)?;
            }
        }
        Ok(())
    }

    /// Deletes job `name`'s state (a provisioned job silent past its key's `forget_after`).
    pub async fn forget(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Backend::Memory(map) => {
                map.locked().remove(name);
            }
            Backend::Redis { prefix, .. } => {
                let mut conn = self.redis().await?;
                kv::pipe()
                    .cmd("DEL")
                    .arg(format!("{prefix}job:{name}"))
                    .ignore()
                    .cmd("SREM")
                    .arg(format!("{prefix}index"))
                    .arg(name)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.redis_failed(e))?;
            }
            Backend::Postgres { pool, table, .. } => {
                sqlx::query(&format!("DELETE FROM {table} WHERE name = $1"))
                    .bind(name)
                    .execute(pool)
                    .await
                    .map_err(pg_error)?;
            }
        }
        Ok(())
    }

    async fn redis(&self) -> Result<ConnectionManager, StoreError> {
        let Backend::Redis { client, conn, .. } = self else {
            unreachable!("redis() is only called on a Redis store")
        };
        let mut guard = conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        // The caller bounds the whole operation; these keep a dead server from holding the
        // manager itself.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config((**client).clone(), config)
            .await
            .map_err(redis_error)?;
        *guard = Some(manager.clone());
        Ok(manager)
    }

    /// The error of a Redis command; the connection is dropped so the next use reconnects
    /// (a server that closed it, a proxy that answered garbage).
    fn redis_failed(&self, e: kv::RedisError) -> StoreError {
        if let Backend::Redis { conn, .. } = self {
            if let Ok(mut guard) = conn.try_lock() {
                *guard = None;
            }
        }
        redis_error(e)
    }

    async fn ensure_table(&self) -> Result<(), StoreError> {
        let Backend::Postgres { pool, table, ready } = self else {
            return Ok(());
        };
        if ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let created = sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, state text NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now())"
        ))
        .execute(pool)
        .await;
        match created {
            Ok(_) => {}
            // Two replicas creating the table at once: one loses the race, and the table is there.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {}
            Err(e) => return Err(pg_error(e)),
        }
        ready.store(true, Ordering::Release);
        Ok(())
    }
}

/// A stored state; `None` for none, or for one that does not read (logged: the job's next
/// ping rewrites it).
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

    fn memory() -> Backend {
        Backend::open(&StoreSettings::default()).unwrap()
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
    fn an_unreadable_url_is_refused_without_its_password() {
        let settings = |kind| StoreSettings {
            kind,
            ..StoreSettings::default()
        };
        let e = Backend::open(&settings(StoreKind::Postgres {
            url: "postgres://u:hunter2@db:notaport/x".into(),
            table: "t".into(),
        }))
        .unwrap_err();
        assert!(
            e.contains("Postgres URL does not read") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(Backend::open(&settings(StoreKind::Redis {
            url: "nonsense://x".into(),
            prefix: "p:".into(),
        }))
        .is_err());
    }
}
