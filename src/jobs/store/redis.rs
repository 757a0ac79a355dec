//! The job store in the user's Redis: one string of JSON per job (`PREFIX job:NAME`) and a
//! set naming them (`PREFIX index`); a write sets the value only if it is still the one read
//! (a Lua compare-and-set), so replicas writing one job at once never lose a ping.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{decode, OpenError, StoreError, MAX_LOADED};
use crate::clients::redis::{ClientError, RedisConnection};
use crate::jobs::state::JobState;

/// How often a write is retried when another replica wrote the same job in between.
const CAS_ATTEMPTS: usize = 16;

/// Bound on opening the connection and on one answer; the caller bounds the whole
/// operation, these keep a dead server from holding the connection manager itself.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets `KEYS[1]` to `ARGV[2]` and adds `ARGV[3]` to the index `KEYS[2]` only while the value
/// is still `ARGV[1]` (`''` for none); a new job of ping key `ARGV[4]` only while that key's
/// jobs in the index (values under the key prefix `ARGV[6]`) number under `ARGV[5]`.
/// Returns 1 when set, 0 when the value changed meanwhile, -1 when the cap refused the job.
const COMPARE_AND_SET: &str = r"local cur = redis.call('GET', KEYS[1])
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
  return 0";

/// A Redis job store.
pub struct RedisStore {
    /// Connected on first use, checked after idleness (servers close idle clients), dropped
    /// after an error so the next use reconnects.
    conn: RedisConnection,
    /// Prefix of every key.
    prefix: String,
}

fn failed(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

impl RedisStore {
    /// The store at `url`, its keys under `prefix`, trusting and showing what `tls` names;
    /// nothing connects yet.
    pub fn open(
        url: &str,
        prefix: &str,
        tls: Option<&crate::config_core::tls::TlsFiles>,
    ) -> Result<RedisStore, OpenError> {
        let client = crate::clients::redis::client(url, tls).map_err(|e| match e {
            ClientError::Tls(field) => OpenError::tls(field),
            ClientError::Url(e) => OpenError::new("redis", e),
        })?;
        Ok(RedisStore {
            conn: RedisConnection::new(client, IO_TIMEOUT),
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}job:{name}", self.prefix)
    }

    fn index(&self) -> String {
        format!("{}index", self.prefix)
    }

    /// See [`super::Store::update`].
    pub async fn update<R>(
        &self,
        name: &str,
        now: f64,
        cap: Option<(&str, u32)>,
        mut step: impl FnMut(&mut JobState) -> R,
    ) -> Result<Option<(JobState, R)>, StoreError> {
        let key = self.key(name);
        let script = redis::Script::new(COMPARE_AND_SET);
        let (cap_key, cap_max) = cap.unwrap_or(("", 0));
        for _ in 0..CAS_ATTEMPTS {
            let mut conn = self.connection().await?;
            let current: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            let mut state = decode(current.as_deref(), name).unwrap_or_else(|| JobState::new(now));
            let before = state.clone();
            let r = step(&mut state);
            if current.is_some() && state == before {
                return Ok(Some((state, r)));
            }
            let text =
                serde_json::to_string(&state).map_err(|e| StoreError::Encode(e.to_string()))?;
            let set: i64 = script
                .key(&key)
                .key(self.index())
                .arg(current.as_deref().unwrap_or(""))
                .arg(&text)
                .arg(name)
                .arg(cap_key)
                .arg(cap_max)
                .arg(format!("{}job:", self.prefix))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            match set {
                1 => return Ok(Some((state, r))),
                -1 => return Ok(None),
                _ => {}
            }
        }
        Err(StoreError::Contended {
            job: name.to_owned(),
            attempts: CAS_ATTEMPTS,
        })
    }

    /// See [`super::Store::load`].
    pub async fn load(&self) -> Result<BTreeMap<String, JobState>, StoreError> {
        let mut out = BTreeMap::new();
        let mut conn = self.connection().await?;
        let names: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(self.index())
            .arg(MAX_LOADED)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        for chunk in names.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|n| self.key(n)).collect();
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            for (name, value) in chunk.iter().zip(values) {
                if let Some(state) = decode(value.as_deref(), name) {
                    out.insert(name.clone(), state);
                }
            }
        }
        Ok(out)
    }

    /// See [`super::Store::put_missing`].
    pub async fn put_missing(&self, states: &[(String, JobState)]) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for (n, state) in states {
            pipe.cmd("SET")
                .arg(self.key(n))
                .arg(serde_json::to_string(state).unwrap_or_default())
                .arg("NX")
                .ignore();
            pipe.cmd("SADD").arg(self.index()).arg(n).ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed(e))
    }

    /// See [`super::Store::forget`].
    pub async fn forget(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        redis::pipe()
            .cmd("DEL")
            .arg(self.key(name))
            .ignore()
            .cmd("SREM")
            .arg(self.index())
            .arg(name)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed(e))
    }

    /// The connection, opened on first use.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.conn.get().await.map_err(failed)
    }

    /// The error of a command; the connection is dropped so the next use reconnects (a
    /// server that closed it, a proxy that answered garbage).
    fn failed(&self, e: redis::RedisError) -> StoreError {
        self.conn.try_reset();
        failed(e)
    }
}
