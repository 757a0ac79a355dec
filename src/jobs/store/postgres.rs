//! The job store in the user's Postgres: a table of (name, state, updated_at), created on
//! first use; a write holds the job's row lock, and a new job of a ping key the key's
//! advisory lock, so replicas writing at once never lose a ping or pass a key's cap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::Row;

use super::{decode, OpenError, StoreError, MAX_LOADED};
use crate::jobs::state::JobState;

/// Connections the store keeps at most: a ping and a background read at once, with room.
const MAX_CONNECTIONS: u32 = 4;

/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A Postgres job store.
pub struct PostgresStore {
    /// A small lazily connecting pool.
    pool: PgPool,
    /// The table.
    table: String,
    /// Set once the table is known to exist.
    ready: AtomicBool,
}

fn failed(e: sqlx::Error) -> StoreError {
    StoreError::Postgres(e.to_string())
}

impl PostgresStore {
    /// The store at `url`, in `table`, waiting at most `timeout` for a connection; nothing
    /// connects yet.
    pub fn open(url: &str, table: &str, timeout: Duration) -> Result<PostgresStore, OpenError> {
        let options = crate::clients::postgres::options(url, "pulse-exporter-jobs")
            .map_err(|e| OpenError::new("postgres", e))?;
        let pool =
            crate::clients::postgres::pool(options, MAX_CONNECTIONS, timeout, Some(IDLE_TIMEOUT));
        Ok(PostgresStore {
            pool,
            table: table.to_owned(),
            ready: AtomicBool::new(false),
        })
    }

    /// See [`super::Store::update`].
    pub async fn update<R>(
        &self,
        name: &str,
        now: f64,
        cap: Option<(&str, u32)>,
        step: impl FnOnce(&mut JobState) -> R,
    ) -> Result<Option<(JobState, R)>, StoreError> {
        self.ensure_table().await?;
        let table = &self.table;
        let mut tx = self.pool.begin().await.map_err(failed)?;
        if let Some((key, max)) = cap {
            // One key's new jobs one at a time, across replicas: the count and the insert
            // below see the same rows. The key is found in the stored text (as serde writes
            // it), so a corrupt row is skipped rather than failing the cast.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("{table}/{key}"))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            let (exists, made): (bool, i64) = sqlx::query_as(&format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE name = $1), \
                  (SELECT count(*) FROM {table} \
                  WHERE position('\"key\":' || to_json($2::text)::text IN state) > 0)"
            ))
            .bind(name)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
            if !exists && made >= i64::from(max) {
                tx.rollback().await.map_err(failed)?;
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
        .map_err(failed)?;
        let row = sqlx::query(&format!(
            "SELECT state FROM {table} WHERE name = $1 FOR UPDATE"
        ))
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed)?;
        let text: String = row.try_get(0).map_err(failed)?;
        let mut state = decode(Some(&text), name).unwrap_or_else(|| JobState::new(now));
        let before = state.clone();
        let r = step(&mut state);
        if state != before {
            let text =
                serde_json::to_string(&state).map_err(|e| StoreError::Encode(e.to_string()))?;
            sqlx::query(&format!(
                "UPDATE {table} SET state = $2, updated_at = now() WHERE name = $1"
            ))
            .bind(name)
            .bind(&text)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(Some((state, r)))
    }

    /// See [`super::Store::load`].
    pub async fn load(&self) -> Result<BTreeMap<String, JobState>, StoreError> {
        self.ensure_table().await?;
        let rows = sqlx::query(&format!(
            "SELECT name, state FROM {} ORDER BY name LIMIT {MAX_LOADED}",
            self.table
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (Ok(name), Ok(text)) = (row.try_get::<String, _>(0), row.try_get::<String, _>(1))
            else {
                continue;
            };
            if let Some(state) = decode(Some(&text), &name) {
                out.insert(name, state);
            }
        }
        Ok(out)
    }

    /// See [`super::Store::put_missing`].
    pub async fn put_missing(&self, states: &[(String, JobState)]) -> Result<(), StoreError> {
        self.ensure_table().await?;
        let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
        let texts: Vec<String> = states
            .iter()
            .map(|(_, s)| serde_json::to_string(s).unwrap_or_default())
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {} (name, state) SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT (name) DO NOTHING",
            self.table
        ))
        .bind(&names)
        .bind(&texts)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(())
    }

    /// See [`super::Store::forget`].
    pub async fn forget(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query(&format!("DELETE FROM {} WHERE name = $1", self.table))
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Creates the table unless this store saw it already.
    async fn ensure_table(&self) -> Result<(), StoreError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let created = sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, state text NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now())",
            self.table
        ))
        .execute(&self.pool)
        .await;
        match created {
            Ok(_) => {}
            // Two replicas creating the table at once: one loses the race, and the table is there.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {}
            Err(e) => return Err(failed(e)),
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }
}
