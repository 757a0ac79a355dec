//! The demo's Redis part, all under one key prefix: `ws_sessions:*` (one hash per open
//! WebSocket connection), the AI and preview queue lists, and CPU and GPU worker heartbeats
//! (one GPU worker drops out now and then). Queue items are JSON with their enqueue time.
//!
//! Three control keys steer the live demo, for trying the alerts: `control:ai_workers` set to
//! `paused` makes the AI workers take no jobs (the queue grows, no job completes, the workers
//! keep beating: stuck, not dead), `control:gpu_workers` set to a number keeps only that many
//! GPU workers beating (a scale-in), and `control:signups` set to `paused` stops new accounts
//! (a broken signup form: every database stays healthy).

use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::world::{World, DEVICES};
use super::{judge, DemoError};

/// Marker key (after the prefix) saying the prefix is the demo's.
const MARKER: &str = "_pulse_demo";
/// How long a WebSocket session key lives without a refresh.
const SESSION_TTL_SECS: i64 = 120;
/// CPU workers: (id, instance type, lifecycle).
const CPU_WORKERS: [(&str, &str, &str); 2] = [
    ("cpu-1", "c6i.large", "on-demand"),
    ("cpu-2", "c6i.large", "on-demand"),
];
/// GPU workers; `gpu-2` is the spot instance that goes away.
const GPU_WORKERS: [(&str, &str, &str); 2] = [
    ("gpu-1", "g5.xlarge", "on-demand"),
    ("gpu-2", "g5.2xlarge", "spot"),
];

/// Key names (after the prefix) the demo writes: exact names, or a name's start with `*`.
const OWN_KEYS: [&str; 6] = [
    MARKER,
    "control:*",
    "ws_sessions:*",
    "ai_queue:tasks",
    "preview_queue:builds",
    "worker:heartbeat:*",
];

/// What the control keys ask of the live demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controls {
    /// `control:ai_workers` is `paused`.
    pub ai_paused: bool,
    /// `control:gpu_workers`: how many GPU workers keep beating (all when unset).
    pub gpu_workers: Option<usize>,
    /// `control:signups` is `paused`: nobody signs up.
    pub signups_paused: bool,
}

impl Controls {
    /// What the values of `control:ai_workers`, `control:gpu_workers` and `control:signups`
    /// ask for; an absent or unreadable value asks for nothing.
    fn read(ai: Option<&str>, gpu: Option<&str>, signups: Option<&str>) -> Controls {
        let paused = |v: Option<&str>| v.map(str::trim) == Some("paused");
        Controls {
            ai_paused: paused(ai),
            gpu_workers: gpu.and_then(|g| g.trim().parse().ok()),
            signups_paused: paused(signups),
        }
    }
}

/// A queue item: the job's id and when it was enqueued (unix seconds).
fn job(id: impl std::fmt::Display, at: i64) -> String {
    serde_json::json!({"id": id.to_string(), "enqueued_at": at}).to_string()
}

/// A connected Redis target.
pub struct Target {
    conn: MultiplexedConnection,
    prefix: String,
    /// The WebSocket session keys written by `seed`, refreshed by `tick` (no keyspace scans).
    sessions: std::sync::Mutex<Vec<String>>,
}

/// Whether `name` (without the prefix) is one the demo writes.
fn own_name(name: &str) -> bool {
    OWN_KEYS.iter().any(|k| match k.strip_suffix('*') {
        Some(start) => name.starts_with(start),
        None => name == *k,
    })
}

impl Target {
    /// Connects; nothing is written yet.
    pub async fn connect(url: &str, prefix: &str) -> Result<Target, DemoError> {
        // A separator at the end keeps `app` from claiming `application:*` keys.
        if prefix.contains(['*', '?', '[', ']', '\\'])
            || !prefix.ends_with([':', '.', '_', '-', '/'])
        {
            return Err(DemoError::usage(format!(
                "--redis-prefix {prefix:?}: give a prefix without glob characters that ends with a separator (: . _ - /), e.g. pulse_demo:"
            )));
        }
        let client = redis::Client::open(url).map_err(|e| DemoError::target("redis", e))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| DemoError::target("redis", e))?;
        Ok(Target {
            conn,
            prefix: prefix.to_owned(),
            sessions: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Every key under the prefix (SCAN, never KEYS).
    async fn own_keys(&self) -> Result<Vec<String>, DemoError> {
        let mut conn = self.conn.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(|e| DemoError::target("redis", e))?;
            keys.extend(batch);
            if next == 0 {
                keys.sort();
                keys.dedup();
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Refuses a prefix that holds keys the demo does not write (unless `force`), or keys with
    /// the demo's names but no marker.
    pub async fn check_safe(&self, force: bool) -> Result<(), DemoError> {
        let keys = self.own_keys().await?;
        let names: Vec<String> = keys
            .iter()
            .map(|k| k[self.prefix.len()..].to_owned())
            .collect();
        let marked = names.iter().any(|n| n == MARKER);
        judge(
            "redis",
            format!("key prefix {:?}", self.prefix),
            &names,
            marked,
            own_name,
            force,
            "--redis-prefix",
        )
    }

    /// The keys under the prefix with the demo's names.
    async fn demo_keys(&self) -> Result<Vec<String>, DemoError> {
        Ok(self
            .own_keys()
            .await?
            .into_iter()
            .filter(|k| own_name(&k[self.prefix.len()..]))
            .collect())
    }

    /// Deletes `keys`, 500 at a time.
    async fn delete(&self, keys: &[String]) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(500) {
            let _: () = conn
                .del(chunk)
                .await
                .map_err(|e| DemoError::target("redis", e))?;
        }
        Ok(())
    }

    /// `demo --clean`: deletes the demo's keys under the prefix, marker last. Without the
    /// marker nothing is deleted; keys the demo does not write are never touched.
    pub async fn clean(&self) -> Result<String, DemoError> {
        let marker = self.key(MARKER);
        let keys = self.demo_keys().await?;
        if !keys.contains(&marker) {
            return Ok(format!(
                "redis: key prefix {:?} has no demo marker; nothing deleted",
                self.prefix
            ));
        }
        let (rest, marker): (Vec<String>, Vec<String>) =
            keys.into_iter().partition(|k| *k != marker);
        self.delete(&rest).await?;
        self.delete(&marker).await?;
        Ok(format!(
            "redis: deleted {} demo keys under {:?}",
            rest.len() + 1,
            self.prefix
        ))
    }

    /// Deletes the prefix's keys and writes the current state: open sessions, queued jobs,
    /// worker heartbeats.
    pub async fn seed(&self, world: &World) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        self.delete(&self.demo_keys().await?).await?;
        let mut pipe = redis::pipe();
        pipe.set(
            self.key(MARKER),
            "made by pulse-exporter demo; safe to delete",
        )
        .ignore();
        let mut sessions = Vec::new();
        for (n, (u, d)) in world.online.iter().enumerate() {
            let k = self.key(&format!("ws_sessions:s-open-{n}"));
            sessions.push(k.clone());
            pipe.hset_multiple(
                &k,
                &[
                    ("user_id", world.users[*u].id.as_str()),
                    ("device", DEVICES[*d]),
                ],
            )
            .ignore()
            // Long enough to outlive a test run of `demo --once`; live mode refreshes it.
            .expire(&k, 3_600)
            .ignore();
        }
        let now = world.now.timestamp();
        for i in 0..37 {
            pipe.rpush(self.key("ai_queue:tasks"), job(format!("ai-seed-{i}"), now))
                .ignore();
        }
        for i in 0..5 {
            pipe.rpush(
                self.key("preview_queue:builds"),
                job(format!("preview-seed-{i}"), now),
            )
            .ignore();
        }
        let _: () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| DemoError::target("redis", e))?;
        if let Ok(mut s) = self.sessions.lock() {
            *s = sessions;
        }
        self.beat(world.now.timestamp(), false, None).await
    }

    /// Reads the control keys; unreadable or absent ones ask for nothing.
    pub async fn controls(&self) -> Controls {
        let mut conn = self.conn.clone();
        let (ai, gpu, signups): (Option<String>, Option<String>, Option<String>) = redis::pipe()
            .get(self.key("control:ai_workers"))
            .get(self.key("control:gpu_workers"))
            .get(self.key("control:signups"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        Controls::read(ai.as_deref(), gpu.as_deref(), signups.as_deref())
    }

    /// Heartbeats of every worker; `gpu-2` is skipped while `gpu_offline`, and only the
    /// first `gpu_workers` GPU workers beat when that is set (the rest were scaled in).
    pub async fn beat(
        &self,
        now: i64,
        gpu_offline: bool,
        gpu_workers: Option<usize>,
    ) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (id, instance, lifecycle) in CPU_WORKERS {
            let v = serde_json::json!({"ts": now, "state": "healthy", "instance_type": instance, "lifecycle": lifecycle});
            pipe.set_ex(
                self.key(&format!("worker:heartbeat:cpu:{id}")),
                v.to_string(),
                86_400,
            )
            .ignore();
        }
        for (i, (id, instance, lifecycle)) in GPU_WORKERS.into_iter().enumerate() {
            if (gpu_offline && lifecycle == "spot") || gpu_workers.is_some_and(|n| i >= n) {
                continue;
            }
            // Active while work is queued on the minute's parity: states change visibly.
            let state = if (now / 60 + i as i64) % 3 == 0 {
                "idle"
            } else {
                "active"
            };
            let v = serde_json::json!({"ts": now, "state": state, "instance_type": instance, "lifecycle": lifecycle});
            pipe.set_ex(
                self.key(&format!("worker:heartbeat:gpu:{id}")),
                v.to_string(),
                86_400,
            )
            .ignore();
        }
        let _: () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| DemoError::target("redis", e))?;
        Ok(())
    }

    /// Live queues: new jobs are pushed, workers pop about as many (a little fewer while the
    /// spot GPU worker is away, so the AI queue grows), open sessions are refreshed.
    pub async fn tick(
        &self,
        world: &mut World,
        new_ai: &[i64],
        new_preview: &[i64],
        gpu_offline: bool,
        ai_paused: bool,
    ) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        let rng = world.rng();
        let mut pipe = redis::pipe();
        let now = chrono::Utc::now().timestamp();
        for id in new_ai {
            pipe.rpush(self.key("ai_queue:tasks"), job(id, now))
                .ignore();
        }
        for id in new_preview {
            pipe.rpush(self.key("preview_queue:builds"), job(id, now))
                .ignore();
        }
        let capacity = match (ai_paused, gpu_offline) {
            (true, _) => 0.0,
            (false, true) => 0.5,
            (false, false) => 1.3,
        };
        let pops = ((new_ai.len() as f64 + 0.5) * capacity * rng.random_range(0.6..1.4)) as usize;
        if pops > 0 {
            pipe.cmd("LPOP")
                .arg(self.key("ai_queue:tasks"))
                .arg(pops)
                .ignore();
        }
        if !new_preview.is_empty() || rng.random_bool(0.5) {
            pipe.cmd("LPOP")
                .arg(self.key("preview_queue:builds"))
                .arg(new_preview.len() + 1)
                .ignore();
        }
        let _: () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| DemoError::target("redis", e))?;
        let keys = self.sessions.lock().map(|s| s.clone()).unwrap_or_default();
        let mut refresh = redis::pipe();
        for k in &keys {
            refresh.expire(k, SESSION_TTL_SECS).ignore();
        }
        let _: () = refresh
            .query_async(&mut conn)
            .await
            .map_err(|e| DemoError::target("redis", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_values_ask_for_a_pause_or_a_scale_in_and_anything_else_for_nothing() {
        assert_eq!(Controls::read(None, None, None), Controls::default());
        let c = Controls::read(Some("paused"), Some(" 1\n"), Some("paused "));
        assert_eq!(
            c,
            Controls {
                ai_paused: true,
                gpu_workers: Some(1),
                signups_paused: true,
            }
        );
        let c = Controls::read(Some("stop"), Some("many"), Some("PAUSED"));
        assert_eq!(c, Controls::default());
    }
}
