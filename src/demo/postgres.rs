//! The demo's Postgres part: the HiveSync/JOIP schema in a schema of its own, the history, and
//! live activity (AI and preview jobs that queue and complete, sessions, logins).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, QueryBuilder};

use super::world::{Activity, Plan, World, AI_STATUSES, DEVICES, FEATURE_ACTIONS};
use super::{judge, DemoError};

/// Tables the demo creates; the marker table says the schema is the demo's.
pub const TABLES: [&str; 16] = [
    "_pulse_demo",
    "users",
    "subscriptions",
    "subscription_invoices",
    "sessions",
    "ai_usage_events",
    "preview_jobs",
    "user_activity_logs",
    "user_usage_stats",
    "usage_analytics_daily",
    "projects",
    "content_sessions",
    "media_items",
    "community_likes",
    "credit_purchases",
    "referrals",
];

/// Rows per multi-row INSERT: well under Postgres' 65535 bind parameters.
const CHUNK: usize = 2_000;

/// A connected Postgres target.
pub struct Target {
    pool: PgPool,
    schema: String,
}

impl Target {
    /// Connects; nothing is written yet.
    pub async fn connect(url: &str, schema: &str) -> Result<Target, DemoError> {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(DemoError::usage(format!(
                "--postgres-schema {schema:?}: use lowercase letters, digits and _"
            )));
        }
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map_err(|e| DemoError::target("postgres", e))?
            // The seed's bulk statements are slow by design; sqlx would warn about each.
            .log_slow_statements(tracing::log::LevelFilter::Off, std::time::Duration::ZERO);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| DemoError::target("postgres", e))?;
        Ok(Target {
            pool,
            schema: schema.to_owned(),
        })
    }

    /// Refuses a schema that holds tables the demo did not make, unless `force`.
    pub async fn check_safe(&self, force: bool) -> Result<(), DemoError> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| DemoError::target("postgres", e))?;
        let marked = tables.iter().any(|t| t == "_pulse_demo");
        judge(
            "postgres",
            format!("schema {:?}", self.schema),
            &tables,
            marked,
            |t| TABLES.contains(&t),
            force,
            "--postgres-schema",
        )
    }

    /// `demo --clean`: drops the demo's tables, marker last, and the schema once nothing else
    /// is in it. Without the marker nothing is dropped: tables named like the demo's but
    /// unmarked are someone else's.
    pub async fn clean(&self) -> Result<String, DemoError> {
        let s = &self.schema;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(s)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        if !tables.iter().any(|t| t == "_pulse_demo") {
            return Ok(format!(
                "postgres: schema {s:?} has no demo marker; nothing dropped"
            ));
        }
        let own: Vec<&str> = TABLES
            .iter()
            .rev()
            .copied()
            .filter(|t| tables.iter().any(|x| x == t))
            .collect();
        // Without CASCADE: something of someone else's that depends on a demo table stops
        // the clean-up instead of vanishing with it.
        let mut ddl = String::new();
        for t in &own {
            ddl.push_str(&format!("DROP TABLE {s}.{t};"));
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        tx.execute(ddl.as_str()).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        let others = tables.len() - own.len();
        if others == 0 {
            // Only if empty now: no CASCADE here either.
            let _ = sqlx::query(&format!("DROP SCHEMA {s}"))
                .execute(&self.pool)
                .await;
            return Ok(format!(
                "postgres: dropped {} demo tables and the schema {s:?}",
                own.len()
            ));
        }
        Ok(format!(
            "postgres: dropped {} demo tables; kept the schema {s:?} and its {others} other tables",
            own.len()
        ))
    }

    /// Drops and recreates the demo's tables (without CASCADE: something of someone else's that
    /// depends on them stops the run instead of vanishing), then writes the history.
    pub async fn seed(&self, world: &World) -> Result<(), DemoError> {
        let s = &self.schema;
        let mut ddl = format!("CREATE SCHEMA IF NOT EXISTS {s}; SET LOCAL search_path = {s};");
        for t in TABLES.iter().rev() {
            ddl.push_str(&format!("DROP TABLE IF EXISTS {s}.{t};"));
        }
        ddl.push_str(SCHEMA);
        let mut tx = self.pool.begin().await.map_err(db)?;
        tx.execute(ddl.as_str()).await.map_err(db)?;
        insert_users(&mut tx, s, world).await?;
        insert_history(&mut tx, s, world).await?;
        insert_sessions(&mut tx, s, world).await?;
        tx.execute(
            format!(
                "SET LOCAL search_path = {s};
                 {JOIP_CONTENT}
                 INSERT INTO user_usage_stats (user_id, sessions_created, sessions_viewed,
                     sessions_shared, smart_captions_generated, custom_captions_generated,
                     babecock_images_created, babecock_remixes_created, media_uploaded,
                     media_shared, media_downloaded, bulk_downloads, login_count,
                     first_activity_at, last_activity_at)
                 SELECT u.id,
                   count(*) FILTER (WHERE l.action = 'session_created'),
                   count(*) FILTER (WHERE l.action = 'session_viewed'),
                   count(*) FILTER (WHERE l.action = 'session_shared'),
                   count(*) FILTER (WHERE l.action = 'smart_caption_generated'),
                   count(*) FILTER (WHERE l.action = 'custom_caption_created'),
                   count(*) FILTER (WHERE l.action = 'babecock_created'),
                   count(*) FILTER (WHERE l.action = 'babecock_remix'),
                   count(*) FILTER (WHERE l.action = 'media_uploaded'),
                   count(*) FILTER (WHERE l.action = 'media_shared'),
                   count(*) FILTER (WHERE l.action = 'media_downloaded'),
                   count(*) FILTER (WHERE l.action = 'bulk_download'),
                   count(*) FILTER (WHERE l.action = 'login'),
                   min(l.created_at), max(l.created_at)
                 FROM users u JOIN user_activity_logs l ON l.user_id = u.id GROUP BY u.id;
                 {ROLLUP}"
            )
            .as_str(),
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// The backend's daily roll-up job: rows for the past days that have none yet (after
    /// midnight, yesterday's), so the roll-up keeps advancing while the demo runs.
    pub async fn rollup(&self) -> Result<(), DemoError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        tx.execute(format!("SET LOCAL search_path = {}; {ROLLUP}", self.schema).as_str())
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// One second of live activity: new AI and preview jobs (left open, as queued work),
    /// completions of older ones, signups, logins, heartbeats of open sessions, sessions
    /// starting and ending. Returns the ids of jobs created, for the Redis queues.
    pub async fn tick(&self, live: &mut Live, world: &mut World) -> Result<(), DemoError> {
        use rand::Rng;
        let s = &self.schema;
        let now = Utc::now();
        let users = world.users.len();
        let rate = live.rate;
        let rng = world.rng();
        let mut tx = self.pool.begin().await.map_err(db)?;
        tx.execute(format!("SET LOCAL search_path = {s}").as_str())
            .await
            .map_err(db)?;
        // Finish what is due; timeouts and errors too. Paused workers finish nothing.
        if !live.ai_paused {
            let due = sqlx::query(
                "UPDATE ai_usage_events SET completed_at = $1 WHERE completed_at IS NULL AND created_at < $1 - (interval '1 millisecond' * latency_hint_ms) RETURNING id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            live.completed_ai += due.len() as u64;
        }
        sqlx::query("UPDATE preview_jobs SET completed_at = $1 WHERE completed_at IS NULL AND created_at < $1 - interval '3 seconds'")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let n = poisson_like(rng, rate);
        for i in 0..n {
            // One event in ten is a signup: a steady stream the business alerts can watch.
            if !live.signups_paused && rng.random_bool(0.1) {
                let id = format!("live-{}-{i}", now.timestamp_micros());
                sqlx::query("INSERT INTO users (id, username, email, plan, created_at) VALUES ($1, $1, $1 || '@demo.invalid', 'free', $2)")
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            let u = rng.random_range(0..users);
            if let Activity::Ai {
                status,
                latency_ms,
                tokens,
            } = super::world::ai_request(rng)
            {
                let user = format!("u{u:05}");
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO ai_usage_events (user_id, created_at, tokens, status, latency_hint_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(&user)
                .bind(now)
                .bind(tokens)
                .bind(AI_STATUSES[status].0)
                .bind(latency_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                live.new_ai.push(id);
                live.ai_lines
                    .push((user, AI_STATUSES[status].0, latency_ms, tokens));
            }
            if rng.random_bool(0.3) {
                let user = format!("u{:05}", rng.random_range(0..users));
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO preview_jobs (user_id, created_at, status) VALUES ($1, $2, 'ok') RETURNING id",
                )
                .bind(&user)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                live.new_preview.push(id);
                live.preview_lines
                    .push((user, "ok", rng.random_range(800..9_000)));
            }
            if rng.random_bool(0.2) {
                let (action, feature) = if rng.random_bool(0.5) {
                    ("login", "auth")
                } else {
                    FEATURE_ACTIONS[rng.random_range(0..FEATURE_ACTIONS.len())]
                };
                sqlx::query("INSERT INTO user_activity_logs (user_id, action, feature, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(format!("u{:05}", rng.random_range(0..users)))
                    .bind(action)
                    .bind(feature)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        // Open sessions beat; now and then one ends and another starts.
        sqlx::query("UPDATE sessions SET last_heartbeat_at = $1 WHERE ended_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if rng.random_bool(0.1) {
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = (SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY random() LIMIT 1)")
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if rng.random_bool(0.1) {
            let d = super::world::device(rng);
            sqlx::query("INSERT INTO sessions (id, user_id, device_type, started_at, last_heartbeat_at) VALUES ($1, $2, $3, $4, $4)")
                .bind(format!("s-live-{}", now.timestamp_micros()))
                .bind(format!("u{:05}", rng.random_range(0..users)))
                .bind(DEVICES[d])
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

/// Live state carried between ticks.
#[derive(Debug, Default)]
pub struct Live {
    /// Mean events per second.
    pub rate: f64,
    /// AI jobs created this tick (their ids go onto the Redis AI queue).
    pub new_ai: Vec<i64>,
    /// Preview jobs created this tick.
    pub new_preview: Vec<i64>,
    /// Log lines of this tick's AI requests: (user, status, latency ms, tokens).
    pub ai_lines: Vec<(String, &'static str, i64, i32)>,
    /// Log lines of this tick's preview builds: (user, status, latency ms).
    pub preview_lines: Vec<(String, &'static str, i64)>,
    /// AI jobs completed since the start.
    pub completed_ai: u64,
    /// The AI workers take no jobs (the `control:ai_workers` key says `paused`): AI jobs are
    /// created but none completes, as when every worker is stuck.
    pub ai_paused: bool,
    /// Nobody signs up (the `control:signups` key says `paused`), as when the signup form
    /// broke in a deploy.
    pub signups_paused: bool,
}

/// About `rate` events, varying from tick to tick.
fn poisson_like(rng: &mut rand::rngs::StdRng, rate: f64) -> usize {
    use rand::Rng;
    let whole = rate.floor();
    let extra = usize::from(rng.random_bool((rate - whole).clamp(0.0, 1.0)));
    let jitter = if whole >= 2.0 {
        rng.random_range(0..=(whole as usize / 2))
    } else {
        0
    };
    (whole as usize).saturating_sub(whole as usize / 4) + jitter + extra
}

fn db(e: sqlx::Error) -> DemoError {
    DemoError::target("postgres", e)
}

/// Multi-row INSERTs of `rows` into `table` (schema-qualified), [`CHUNK`] rows per
/// statement; `bind` pushes one row's values in the order of `columns`.
async fn insert_chunks<'a, T>(
    tx: &mut sqlx::PgConnection,
    table: &str,
    columns: &str,
    rows: &'a [T],
    bind: impl Fn(sqlx::query_builder::Separated<'_, 'a, sqlx::Postgres, &'static str>, &'a T),
) -> Result<(), DemoError> {
    for chunk in rows.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!("INSERT INTO {table} ({columns}) "));
        q.push_values(chunk, &bind);
        q.build().execute(&mut *tx).await.map_err(db)?;
    }
    Ok(())
}

async fn insert_users(
    tx: &mut sqlx::PgConnection,
    s: &str,
    world: &World,
) -> Result<(), DemoError> {
    insert_chunks(
        tx,
        &format!("{s}.users"),
        "id, username, email, plan, trial_ends_at, disabled, created_at",
        &world.users,
        |mut b, u| {
            b.push_bind(&u.id)
                .push_bind(&u.username)
                .push_bind(&u.email)
                .push_bind(u.plan.as_str())
                .push_bind(u.trial_ends_at)
                .push_bind(u.disabled)
                .push_bind(u.created_at);
        },
    )
    .await?;
    // Pro users pay through an active subscription; some free users cancelled one.
    let subs: Vec<(&str, &str, DateTime<Utc>)> = world
        .users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| match u.plan {
            Plan::Pro => Some((u.id.as_str(), "active", u.created_at)),
            Plan::Trial => Some((u.id.as_str(), "trialing", u.created_at)),
            Plan::Free if i.is_multiple_of(7) => Some((u.id.as_str(), "canceled", u.created_at)),
            Plan::Free => None,
        })
        .collect();
    insert_chunks(
        tx,
        &format!("{s}.subscriptions"),
        "user_id, status, plan, price_cents, started_at",
        &subs,
        |mut b, (id, status, at)| {
            b.push_bind(*id)
                .push_bind(*status)
                .push_bind("pro")
                .push_bind(1900i32)
                .push_bind(*at);
        },
    )
    .await?;
    Ok(())
}

async fn insert_history(
    tx: &mut sqlx::PgConnection,
    s: &str,
    world: &World,
) -> Result<(), DemoError> {
    let user = |i: usize| world.users[i].id.as_str();
    let mut ai = Vec::new();
    let mut preview = Vec::new();
    let mut logs = Vec::new();
    for e in &world.events {
        match e.what {
            Activity::Ai {
                status,
                latency_ms,
                tokens,
            } => ai.push((
                user(e.user),
                e.at,
                e.at + TimeDelta::milliseconds(latency_ms),
                tokens,
                AI_STATUSES[status].0,
                latency_ms,
            )),
            Activity::Preview { latency_ms, failed } => preview.push((
                user(e.user),
                e.at,
                e.at + TimeDelta::milliseconds(latency_ms),
                if failed { "failed" } else { "ok" },
            )),
            Activity::Login => logs.push((user(e.user), "login", "auth", e.at)),
            Activity::LiveView => logs.push((user(e.user), "live_view_joined", "live_view", e.at)),
            Activity::Feature(f) => logs.push((
                user(e.user),
                FEATURE_ACTIONS[f].0,
                FEATURE_ACTIONS[f].1,
                e.at,
            )),
        }
    }
    insert_chunks(
        tx,
        &format!("{s}.ai_usage_events"),
        "user_id, created_at, completed_at, tokens, status, latency_hint_ms",
        &ai,
        |mut b, r| {
            b.push_bind(r.0)
                .push_bind(r.1)
                .push_bind(r.2)
                .push_bind(r.3)
                .push_bind(r.4)
                .push_bind(r.5);
        },
    )
    .await?;
    insert_chunks(
        tx,
        &format!("{s}.preview_jobs"),
        "user_id, created_at, completed_at, status",
        &preview,
        |mut b, r| {
            b.push_bind(r.0)
                .push_bind(r.1)
                .push_bind(r.2)
                .push_bind(r.3);
        },
    )
    .await?;
    insert_chunks(
        tx,
        &format!("{s}.user_activity_logs"),
        "user_id, action, feature, created_at",
        &logs,
        |mut b, r| {
            b.push_bind(r.0)
                .push_bind(r.1)
                .push_bind(r.2)
                .push_bind(r.3);
        },
    )
    .await?;
    Ok(())
}

async fn insert_sessions(
    tx: &mut sqlx::PgConnection,
    s: &str,
    world: &World,
) -> Result<(), DemoError> {
    let now = world.now;
    let margin = TimeDelta::from_std(super::world::MARGIN).unwrap_or_default();
    let mut rows = Vec::new();
    for (n, (u, d)) in world.online.iter().enumerate() {
        // Open sessions: online whatever their last heartbeat says.
        rows.push((
            format!("s-open-{n}"),
            world.users[*u].id.as_str(),
            DEVICES[*d],
            now - TimeDelta::minutes(40),
            now - TimeDelta::seconds(20),
            None,
        ));
    }
    for (n, u) in world.users.iter().enumerate().step_by(3) {
        // Ended long ago: offline.
        rows.push((
            format!("s-ended-{n}"),
            u.id.as_str(),
            DEVICES[n % DEVICES.len()],
            now - margin * 4,
            now - margin * 3,
            Some(now - margin * 3),
        ));
    }
    insert_chunks(
        tx,
        &format!("{s}.sessions"),
        "id, user_id, device_type, started_at, last_heartbeat_at, ended_at",
        &rows,
        |mut b, r| {
            b.push_bind(&r.0)
                .push_bind(r.1)
                .push_bind(r.2)
                .push_bind(r.3)
                .push_bind(r.4)
                .push_bind(r.5);
        },
    )
    .await?;
    Ok(())
}

/// The demo schema, created under `search_path` = the demo's schema.
const SCHEMA: &str = r#"
CREATE TABLE _pulse_demo (created_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO _pulse_demo (note) VALUES ('made by pulse-exporter demo; safe to drop');
CREATE TABLE users (
  id text PRIMARY KEY,
  username text NOT NULL,
  email text NOT NULL,
  plan text NOT NULL CHECK (plan IN ('free', 'pro', 'trial')),
  trial_ends_at timestamptz,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE subscriptions (
  id serial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  status text NOT NULL,
  plan text NOT NULL,
  price_cents integer NOT NULL,
  started_at timestamptz NOT NULL,
  canceled_at timestamptz
);
CREATE TABLE projects (
  id serial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  name text NOT NULL
);
CREATE TABLE sessions (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  device_type text,
  started_at timestamptz NOT NULL,
  last_heartbeat_at timestamptz NOT NULL,
  ended_at timestamptz
);
CREATE TABLE ai_usage_events (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  created_at timestamptz NOT NULL,
  completed_at timestamptz,
  tokens integer NOT NULL,
  status text NOT NULL,
  latency_hint_ms bigint NOT NULL DEFAULT 0
);
CREATE INDEX ai_usage_events_created ON ai_usage_events (created_at);
CREATE INDEX ai_usage_events_completed ON ai_usage_events (completed_at);
CREATE TABLE preview_jobs (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  created_at timestamptz NOT NULL,
  completed_at timestamptz,
  status text NOT NULL
);
CREATE INDEX preview_jobs_created ON preview_jobs (created_at);
CREATE TABLE user_activity_logs (
  id bigserial PRIMARY KEY,
  user_id text REFERENCES users(id),
  action text NOT NULL,
  feature text NOT NULL,
  details jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_activity_logs_created ON user_activity_logs (created_at);
CREATE TABLE user_usage_stats (
  user_id text PRIMARY KEY REFERENCES users(id),
  sessions_created integer NOT NULL DEFAULT 0,
  sessions_viewed integer NOT NULL DEFAULT 0,
  sessions_shared integer NOT NULL DEFAULT 0,
  smart_captions_generated integer NOT NULL DEFAULT 0,
  custom_captions_generated integer NOT NULL DEFAULT 0,
  babecock_images_created integer NOT NULL DEFAULT 0,
  babecock_remixes_created integer NOT NULL DEFAULT 0,
  media_uploaded integer NOT NULL DEFAULT 0,
  media_shared integer NOT NULL DEFAULT 0,
  media_downloaded integer NOT NULL DEFAULT 0,
  bulk_downloads integer NOT NULL DEFAULT 0,
  login_count integer NOT NULL DEFAULT 0,
  first_activity_at timestamptz,
  last_activity_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE subscription_invoices (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  amount_cents integer NOT NULL,
  paid_at timestamptz NOT NULL
);
-- JOIP's content: its "sessions" are slideshow sessions, not the connections above.
CREATE TABLE content_sessions (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  caption_theme text NOT NULL,
  shared_to_community boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL
);
CREATE TABLE media_items (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  size_bytes bigint NOT NULL,
  shared_to_community boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  deleted_at timestamptz
);
CREATE TABLE community_likes (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  session_id bigint REFERENCES content_sessions(id),
  media_id bigint REFERENCES media_items(id),
  created_at timestamptz NOT NULL,
  CHECK ((session_id IS NULL) <> (media_id IS NULL))
);
CREATE TABLE credit_purchases (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id),
  credits integer NOT NULL,
  amount_cents integer NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE referrals (
  id bigserial PRIMARY KEY,
  referrer_id text NOT NULL REFERENCES users(id),
  referee_id text NOT NULL UNIQUE REFERENCES users(id),
  code text NOT NULL,
  credits_awarded integer NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE usage_analytics_daily (
  date date PRIMARY KEY,
  dau integer NOT NULL,
  mau integer NOT NULL,
  ai_requests integer NOT NULL,
  preview_requests integer NOT NULL,
  avg_latency_ms double precision,
  max_queue_depth integer NOT NULL
);
"#;

/// JOIP's content, money and referrals, derived from the activity history so the same seed
/// makes the same rows: caption themes and composition layouts in the events' details, one
/// slideshow session per `session_created` and one vault file per `media_uploaded` (some
/// shared to the community, some files deleted), likes on shared items, credit purchases,
/// monthly invoices of paid subscriptions, and referrals between users who signed up one
/// after the other.
const JOIP_CONTENT: &str = r#"
UPDATE user_activity_logs SET details = jsonb_build_object('theme',
    (ARRAY['joi', 'forced_bi', 'beta', 'cbt', 'cuckold'])[1 + id % 5])
  WHERE action IN ('smart_caption_generated', 'caption_regenerated', 'theme_selected');
UPDATE user_activity_logs SET details = jsonb_build_object('layout',
    CASE WHEN id % 3 = 0 THEN 'top_bottom' ELSE 'side_by_side' END)
  WHERE action IN ('babecock_created', 'babecock_remix', 'layout_detected');
INSERT INTO content_sessions (user_id, caption_theme, shared_to_community, created_at)
  SELECT user_id, (ARRAY['joi', 'forced_bi', 'beta', 'cbt', 'cuckold'])[1 + id % 5], id % 4 = 0, created_at
  FROM user_activity_logs WHERE action = 'session_created' ORDER BY id;
INSERT INTO media_items (user_id, size_bytes, shared_to_community, created_at, deleted_at)
  SELECT user_id, 50000 + (id * 7919) % 5000000, id % 6 = 0, created_at,
         CASE WHEN id % 10 = 0 THEN least(created_at + interval '1 hour', now()) END
  FROM user_activity_logs WHERE action = 'media_uploaded' ORDER BY id;
-- Each shared item gets a few likes from users picked by its id: (session, media, created,
-- likes, where the pick starts, its step).
INSERT INTO community_likes (user_id, session_id, media_id, created_at)
  SELECT u.id, i.session_id, i.media_id, i.created_at
  FROM (SELECT id AS session_id, NULL::bigint AS media_id, created_at, id % 7 AS likes, id * 31 AS start, 17 AS step
          FROM content_sessions WHERE shared_to_community
        UNION ALL
        SELECT NULL, id, created_at, id % 5, id * 13, 29
          FROM media_items WHERE shared_to_community AND deleted_at IS NULL) i
  CROSS JOIN generate_series(1, i.likes::int) k
  JOIN LATERAL (SELECT id FROM users ORDER BY id
                OFFSET (i.start + k * i.step) % (SELECT count(*) FROM users) LIMIT 1) u ON true;
INSERT INTO credit_purchases (user_id, credits, amount_cents, created_at)
  SELECT user_id, (ARRAY[100, 500, 1000])[1 + id % 3], (ARRAY[499, 1999, 3499])[1 + id % 3], created_at
  FROM user_activity_logs WHERE action = 'login' AND id % 20 = 0;
UPDATE subscriptions SET canceled_at = least(started_at + interval '20 days', now())
  WHERE status = 'canceled';
INSERT INTO subscription_invoices (user_id, amount_cents, paid_at)
  SELECT s.user_id, s.price_cents, t
  FROM subscriptions s
  CROSS JOIN LATERAL generate_series(s.started_at, coalesce(s.canceled_at, now()), interval '30 days') t
  WHERE s.status IN ('active', 'canceled');
WITH ordered AS (
  SELECT id, username, disabled, created_at, row_number() OVER (ORDER BY created_at, id) AS n FROM users
)
INSERT INTO referrals (referrer_id, referee_id, code, credits_awarded, created_at)
  SELECT r.id, u.id, 'REF-' || upper(r.username), CASE WHEN u.disabled THEN 0 ELSE 50 END, u.created_at
  FROM ordered u JOIN ordered r ON r.n = u.n / 2
  WHERE u.n % 4 = 0;
"#;

/// Daily roll-ups of the history, as the HiveSync backend would store them (past days only;
/// days already rolled up are kept, so it also serves as the live demo's daily job).
const ROLLUP: &str = r#"
WITH days AS (
  SELECT d::date AS date FROM generate_series(now() - interval '29 days', now() - interval '1 day', interval '1 day') d
), activity AS (
  SELECT user_id, created_at FROM user_activity_logs WHERE action IN ('login', 'live_view_joined')
  UNION ALL SELECT user_id, created_at FROM ai_usage_events
  UNION ALL SELECT user_id, created_at FROM preview_jobs
)
INSERT INTO usage_analytics_daily
SELECT days.date,
  (SELECT count(DISTINCT user_id) FROM activity a WHERE a.created_at::date = days.date),
  (SELECT count(DISTINCT user_id) FROM activity a WHERE a.created_at::date BETWEEN days.date - 29 AND days.date),
  (SELECT count(*) FROM ai_usage_events e WHERE e.created_at::date = days.date),
  (SELECT count(*) FROM preview_jobs p WHERE p.created_at::date = days.date),
  (SELECT avg(extract(epoch FROM e.completed_at - e.created_at) * 1000) FROM ai_usage_events e WHERE e.created_at::date = days.date),
  (10 + (extract(doy FROM days.date)::int * 7) % 40)
FROM days
ON CONFLICT (date) DO NOTHING;
"#;
