//! The real services the tests talk to (Postgres, Redis, RabbitMQ, the MongoDB and S3
//! servers `scripts/services up` starts): their addresses, each read from the environment
//! with the local service as its default (docs/development.md lists the variables), and
//! clients that fail loudly, never skip, when a service is not there.

use std::sync::OnceLock;

use super::*;

/// A service's URL: the environment variable `var` where it is set, else `default`. It reads
/// as a `&str` and formats as one (`format!("{PG_URL}/…")`).
pub struct EnvUrl {
    var: &'static str,
    default: &'static str,
    value: OnceLock<String>,
}

impl EnvUrl {
    const fn new(var: &'static str, default: &'static str) -> EnvUrl {
        EnvUrl {
            var,
            default,
            value: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for EnvUrl {
    type Target = str;
    fn deref(&self) -> &str {
        self.value
            .get_or_init(|| std::env::var(self.var).unwrap_or_else(|_| self.default.to_owned()))
    }
}

impl std::fmt::Display for EnvUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

pub static PG_URL: EnvUrl = EnvUrl::new(
    "PULSE_TEST_POSTGRES_URL",
    "postgres://postgres@127.0.0.1:5432/postgres",
);
pub static REDIS_URL: EnvUrl = EnvUrl::new("PULSE_TEST_REDIS_URL", "redis://127.0.0.1:6379");

/// Connects to the real Postgres, failing loudly (never skipping) when it is not there.
pub async fn pg() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&PG_URL)
        .await
        .unwrap_or_else(|e| panic!("Postgres must run at {PG_URL} (scripts/services up): {e}"))
}

/// Queries running on the server whose text contains `marker` (other than this one).
pub async fn active_queries(pool: &sqlx::PgPool, marker: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
    )
    .bind(format!("%{marker}%"))
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

/// A test's connection to the Redis at `url`. The client's own response timeout (half a
/// second) is the exporter's concern, not a test's: a test's 100 MB SET, or a list of 200k
/// items, on a machine whose cores are busy takes longer.
pub async fn redis_at(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(60)));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Connects to the real Redis, failing loudly when it is not there.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis_at(&REDIS_URL)
        .await
        .unwrap_or_else(|e| panic!("Redis must run at {REDIS_URL} (scripts/services up): {e}"))
}

pub static RABBIT_API: EnvUrl = EnvUrl::new("PULSE_TEST_RABBITMQ_API", "http://127.0.0.1:15672");
/// The broker's AMQP address (host and port; a vhost's URL adds its path).
pub static RABBIT_AMQP: EnvUrl = EnvUrl::new(
    "PULSE_TEST_RABBITMQ_AMQP",
    "amqp://guest:guest@127.0.0.1:5672",
);

/// A vhost of its own on the real RabbitMQ, so tests never see each other's queues.
pub struct RabbitVhost {
    pub name: String,
    http: reqwest::Client,
    /// Deletes the vhost when the test ends, even by a failed assertion.
    _cleanup: Cleanup,
}

impl RabbitVhost {
    pub async fn create() -> RabbitVhost {
        let name = unique("pulse_vh");
        let v = RabbitVhost {
            _cleanup: Cleanup::default().rabbit_vhost(name.clone()),
            name,
            http: reqwest::Client::new(),
        };
        let r = v
            .http
            .put(format!("{RABBIT_API}/api/vhosts/{}", v.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the RabbitMQ management API must run on 127.0.0.1:15672 (scripts/test enables it): {e}"));
        assert!(r.status().is_success(), "create vhost: {}", r.status());
        let r = v
            .api_put(
                &format!("/api/permissions/{}/guest", v.name),
                serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        assert!(r.is_success(), "permissions: {r}");
        v
    }

    async fn api_put(&self, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
        self.http
            .put(format!("{RABBIT_API}{path}"))
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn declare(&self, queue: &str, arguments: serde_json::Value) {
        let s = self
            .api_put(
                &format!("/api/queues/{}/{queue}", self.name),
                serde_json::json!({"durable": false, "arguments": arguments}),
            )
            .await;
        assert!(s.is_success(), "declare {queue}: {s}");
    }

    pub async fn delete_queue(&self, queue: &str) {
        let s = self
            .http
            .delete(format!("{RABBIT_API}/api/queues/{}/{queue}", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(s.is_success(), "delete {queue}: {s}");
    }

    pub async fn publish(&self, queue: &str, n: usize) {
        for _ in 0..n {
            let r: serde_json::Value = self
                .http
                .post(format!("{RABBIT_API}/api/exchanges/{}/amq.default/publish", self.name))
                .basic_auth("guest", Some("guest"))
                // Stamped like the demo's publishers do, so the broker reports the head's age.
                .json(&serde_json::json!({"properties": {"timestamp": now_secs()}, "routing_key": queue, "payload": "job", "payload_encoding": "string"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["routed"], true, "publish to {queue}");
        }
    }

    pub fn amqp_url(&self) -> String {
        format!("{RABBIT_AMQP}/{}", self.name)
    }

    pub async fn delete(self) {
        let _ = self
            .http
            .delete(format!("{RABBIT_API}/api/vhosts/{}", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
    }
}

pub static MONGO_URL: EnvUrl = EnvUrl::new("PULSE_TEST_MONGODB_URL", "mongodb://127.0.0.1:27017");

/// Connects to the MongoDB wire server (nx-27017 here, started by `scripts/services up`).
pub async fn mongo() -> mongodb::Client {
    let c = mongodb::Client::with_uri_str(format!("{MONGO_URL}/?serverSelectionTimeoutMS=3000"))
        .await
        .unwrap();
    c.database("admin")
        .run_command(mongodb::bson::doc! { "ping": 1 })
        .await
        .unwrap_or_else(|e| {
            panic!("a MongoDB server must run at {MONGO_URL} (scripts/services up starts nx-27017): {e}")
        });
    c
}

/// moto_server (S3 without signature checks), started by `scripts/services up`.
pub static MOTO_URL: EnvUrl = EnvUrl::new("PULSE_TEST_MOTO_URL", "http://127.0.0.1:9000");
/// s3s-fs (S3 with SigV4 checks), started by `scripts/services up` with these credentials.
pub static S3S_URL: EnvUrl = EnvUrl::new("PULSE_TEST_S3S_URL", "http://127.0.0.1:9001");
pub const S3S_KEY: &str = "pulse-test-key";
pub const S3S_SECRET: &str = "pulse-test-secret-0123456789";

/// An S3 client for a local server: path-style requests signed with SigV4 (reqsign, as the
/// exporter signs), for what a test puts in place and reads back.
#[derive(Clone)]
pub struct S3Admin {
    http: reqwest::Client,
    signer: reqsign_core::Signer<reqsign_aws_v4::Credential>,
    endpoint: String,
}

impl S3Admin {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<String, String> {
        let url = format!("{}{path}", self.endpoint);
        let (mut parts, ()) = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .body(())
            .unwrap()
            .into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| e.to_string())?;
        let resp = self
            .http
            .request(method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e:?}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{url}: HTTP {status} {text}"))
        }
    }

    /// Creates `bucket`.
    pub async fn create_bucket(&self, bucket: &str) {
        self.send(reqwest::Method::PUT, &format!("/{bucket}"), Vec::new())
            .await
            .unwrap();
    }

    /// Deletes `bucket`, which must be empty.
    pub async fn delete_bucket(&self, bucket: &str) {
        self.send(reqwest::Method::DELETE, &format!("/{bucket}"), Vec::new())
            .await
            .unwrap();
    }

    /// Writes `body` at `key` (a key of letters, digits and `/-_.`).
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.send(reqwest::Method::PUT, &format!("/{bucket}/{key}"), body)
            .await
            .unwrap();
    }

    /// The keys under `prefix` (one page, up to 1,000).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let path = format!(
            "/{bucket}?list-type=2&prefix={}",
            prefix.replace('/', "%2F")
        );
        let xml = self
            .send(reqwest::Method::GET, &path, Vec::new())
            .await
            .unwrap();
        regex::Regex::new("<Key>([^<]*)</Key>")
            .unwrap()
            .captures_iter(&xml)
            .map(|c| c[1].to_owned())
            .collect()
    }
}

/// An S3 client for a local S3 server at `endpoint`, checked to answer.
pub async fn s3_client(endpoint: &str, key: &str, secret: &str) -> S3Admin {
    let ctx = reqsign_core::Context::new();
    let signer = reqsign_core::Signer::new(
        ctx,
        reqsign_aws_v4::StaticCredentialProvider::new(key, secret),
        reqsign_aws_v4::RequestSigner::new("s3", "us-east-1"),
    );
    let client = S3Admin {
        http: reqwest::Client::new(),
        signer,
        endpoint: endpoint.trim_end_matches('/').to_owned(),
    };
    if let Err(e) = client.send(reqwest::Method::GET, "/", Vec::new()).await {
        panic!("an S3 server must run at {endpoint} (scripts/services up starts moto_server and s3s-fs): {e}");
    }
    client
}

/// Creates `bucket` on moto (which checks no signature) for a test's S3 source.
pub async fn moto_bucket(bucket: &str) {
    s3_client(&MOTO_URL, "test", "test")
        .await
        .create_bucket(bucket)
        .await;
}
