//! Test data removed when the guard drops, however the test ends: a failed assertion unwinds
//! through the guard, so it never leaves tables, keys, collections, queues or vhosts behind on the shared
//! servers. Each kind of data is named when it is created:
//! `let _cleanup = Cleanup::default().pg("DROP TABLE t").redis_keys("prefix:*");`

use super::services::{MONGO_URL, PG_URL, RABBIT_API, REDIS_URL};

/// What to remove from the shared servers when dropped.
#[derive(Debug, Default)]
pub struct Cleanup {
    redis_patterns: Vec<String>,
    pg_statements: Vec<String>,
    mongo_databases: Vec<String>,
    rabbit_queues: Vec<(String, String)>,
    rabbit_vhosts: Vec<String>,
}

impl Cleanup {
    /// Deletes the Redis keys matching `pattern` (a `KEYS` pattern: test keys are few).
    pub fn redis_keys(mut self, pattern: impl Into<String>) -> Self {
        self.redis_patterns.push(pattern.into());
        self
    }

    /// Runs `statement` on Postgres, e.g. `DROP TABLE IF EXISTS …` or `DROP SCHEMA … CASCADE`.
    pub fn pg(mut self, statement: impl Into<String>) -> Self {
        self.pg_statements.push(statement.into());
        self
    }

    /// Drops a MongoDB database, every collection in it (the test's own: `scripts/services up`
    /// runs nx-27017 with a file per database, so this touches no other test's).
    pub fn mongo_database(mut self, database: impl Into<String>) -> Self {
        self.mongo_databases.push(database.into());
        self
    }

    /// Deletes a RabbitMQ queue of `vhost` through the management API.
    pub fn rabbit_queue(mut self, vhost: impl Into<String>, queue: impl Into<String>) -> Self {
        self.rabbit_queues.push((vhost.into(), queue.into()));
        self
    }

    /// Deletes a RabbitMQ vhost (and everything in it) through the management API.
    pub fn rabbit_vhost(mut self, vhost: impl Into<String>) -> Self {
        self.rabbit_vhosts.push(vhost.into());
        self
    }
}

fn encode(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let redis_patterns = std::mem::take(&mut self.redis_patterns);
        let pg_statements = std::mem::take(&mut self.pg_statements);
        let mongo_databases = std::mem::take(&mut self.mongo_databases);
        let rabbit_queues = std::mem::take(&mut self.rabbit_queues);
        let rabbit_vhosts = std::mem::take(&mut self.rabbit_vhosts);
        // Drop may run inside the test's runtime (or while it unwinds): the removal gets a
        // thread and a runtime of its own, and its failures are ignored, never a double panic.
        let work = std::thread::spawn(move || {
            if let Ok(mut c) = redis::Client::open(&*REDIS_URL).and_then(|c| c.get_connection()) {
                for pattern in &redis_patterns {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(pattern)
                        .query(&mut c)
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
                    }
                }
            }
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if !pg_statements.is_empty() {
                    if let Ok(pool) = sqlx::PgPool::connect(&PG_URL).await {
                        for s in &pg_statements {
                            let _ = sqlx::query(s).execute(&pool).await;
                        }
                        pool.close().await;
                    }
                }
                if !mongo_databases.is_empty() {
                    let uri = format!("{MONGO_URL}/?serverSelectionTimeoutMS=3000");
                    if let Ok(client) = mongodb::Client::with_uri_str(uri).await {
                        for db in &mongo_databases {
                            let _ = client.database(db).drop().await;
                        }
                    }
                }
                let http = reqwest::Client::new();
                let urls = rabbit_queues
                    .iter()
                    .map(|(v, q)| format!("{RABBIT_API}/api/queues/{}/{}", encode(v), encode(q)))
                    .chain(
                        rabbit_vhosts
                            .iter()
                            .map(|v| format!("{RABBIT_API}/api/vhosts/{}", encode(v))),
                    );
                for url in urls {
                    let _ = http
                        .delete(url)
                        .basic_auth("guest", Some("guest"))
                        .send()
                        .await;
                }
            });
        });
        let _ = work.join();
    }
}
