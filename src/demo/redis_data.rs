//! The demo's Redis part, all under one key prefix: `ws_sessions:*` (one hash per open
//! WebSocket connection), the AI and preview queue lists, and CPU and GPU worker heartbeats
//! (one GPU worker drops out now and then).

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
const OWN_KEYS: [&str; 5] = [
    MARKER,
    "ws_sessions:*",
    "ai_queue:tasks",
    "preview_queue:builds",
    "worker:heartbeat:*",
];

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

    /// Deletes the prefix's keys and writes the current state: open sessions, queued jobs,
    /// worker heartbeats.
    pub async fn seed(&self, world: &World) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = self
            .own_keys()
            .await?
            .into_iter()
            .filter(|k| own_name(&k[self.prefix.len()..]))
            .collect();
        for chunk in keys.chunks(500) {
            let _: () = conn
                .del(chunk)
                .await
                .map_err(|e| DemoError::target("redis", e))?;
        }
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
        for i in 0..37 {
            pipe.rpush(self.key("ai_queue:tasks"), format!("ai-seed-{i}"))
                .ignore();
        }
        for i in 0..5 {
            pipe.rpush(
                self.key("preview_queue:builds"),
                format!("preview-seed-{i}"),
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
        self.beat(world.now.timestamp(), false).await
    }

    /// Heartbeats of every worker; `gpu-2` is skipped while `gpu_offline`.
    pub async fn beat(&self, now: i64, gpu_offline: bool) -> Result<(), DemoError> {
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
            if gpu_offline && lifecycle == "spot" {
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
    ) -> Result<(), DemoError> {
        let mut conn = self.conn.clone();
        let rng = world.rng();
        let mut pipe = redis::pipe();
        for id in new_ai {
            pipe.rpush(self.key("ai_queue:tasks"), id.to_string())
                .ignore();
        }
        for id in new_preview {
            pipe.rpush(self.key("preview_queue:builds"), id.to_string())
                .ignore();
        }
        let capacity = if gpu_offline { 0.5 } else { 1.3 };
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
