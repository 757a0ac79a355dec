//! S3 source (aws-sdk-s3 with the default credential chain, or static keys): bucket
//! reachability, an opt-in write canary (PUT, GET and compare, DELETE), and opt-in object
//! statistics under prefixes. `endpoint` and `path_style` serve MinIO and other S3 servers.
//!
//! The canary is the check for "uploads are failing": a failed step fails the check (with the
//! step's reason) and still publishes `pulse_s3_canary_success 0` for that step, so the gauge
//! never shows an old success. Prefix statistics page `ListObjectsV2` up to `max_pages` pages,
//! so a huge bucket never makes a probe unbounded, and say when they were cut short.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::Deserialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::{Kind, Parsed, Probe, ProbeFuture, Source};
use crate::certificates::{Endpoints, TlsEndpoint};
use crate::config::parse::builtin;
use crate::config::validate::in_range;
use crate::config::{CheckConfig, CheckPlan, CheckSpec, ConfigError};
use crate::error::{ProbeError, Reason};
use crate::metric::Metric;
use crate::sample::Output;

/// Connection settings and opt-in checks of a `kind: s3` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region (default: `us-east-1` with an `endpoint`; else the AWS default chain:
    /// environment, profile, instance metadata).
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible servers, e.g. `http://minio:9000`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need
    /// (default: true when `endpoint` is set).
    pub path_style: Option<bool>,
    /// Static access key id; without it the default AWS credential chain is used (environment,
    /// profile, web identity, ECS and EC2 instance roles).
    pub access_key_id: Option<String>,
    /// Static secret access key (use `${env:…}` or `${file:…}`).
    pub secret_access_key: Option<String>,
    /// `ca_file`: the CA that signs an `https://` endpoint's certificate (a private CA in front
    /// of MinIO or Ceph), trusted instead of the public roots. Client certificates are not
    /// supported for S3: the AWS SDK's HTTP client sends none.
    pub tls: Option<crate::config::tls::TlsFiles>,
    /// Write canary: PUT, GET and compare, DELETE a small object under this prefix each run.
    pub canary: Option<CanaryConfig>,
    /// Object statistics under prefixes.
    #[serde(default)]
    pub prefixes: Vec<PrefixConfig>,
}

/// `canary:`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Key prefix of canary objects (default `pulse-exporter-canary/`). Each run also deletes
    /// this source's canary objects older than three intervals (left by cancelled runs).
    #[serde(default = "default_canary_prefix")]
    pub prefix: String,
}

fn default_canary_prefix() -> String {
    "pulse-exporter-canary/".to_owned()
}

/// One entry of `prefixes:`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixConfig {
    /// The key prefix (may be empty for the whole bucket).
    pub prefix: String,
    /// Most pages of 1,000 keys listed per run (default 10, at most 10,000).
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

fn default_max_pages() -> u32 {
    10
}

/// Which built-in check an S3 source runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Check {
    /// The write canary.
    Canary,
    /// Statistics of the prefix at this index of `prefixes`.
    Prefix(usize),
}

impl CheckSpec for S3Check {}

/// The built-in metrics of an S3 source.
pub const METRICS: &[Metric] = &[
    CANARY_SUCCESS,
    CANARY_DURATION,
    PREFIX_OBJECTS,
    PREFIX_BYTES,
    PREFIX_NEWEST,
    PREFIX_TRUNCATED,
];

const CANARY_SUCCESS: Metric = Metric::gauge(
    "pulse_s3_canary_success",
    "Whether the canary's step (put, get, delete) succeeded in its last run.",
    &["source", "bucket", "step"],
)
.doc("1 if the canary's `put`, `get` (read back and compared) or `delete` step worked in its last run, 0 if it failed. After a failed `put` the later steps are not tried.");
const CANARY_DURATION: Metric = Metric::gauge(
    "pulse_s3_canary_duration_seconds",
    "Duration of the canary's step in its last run.",
    &["source", "bucket", "step"],
)
.doc("Duration of each canary step in its last run.");
const PREFIX_OBJECTS: Metric = Metric::gauge(
    "pulse_s3_prefix_objects",
    "Objects under the prefix (a lower bound when truncated).",
    &["source", "bucket", "prefix"],
)
.doc("Objects under the prefix (a lower bound when truncated).");
const PREFIX_BYTES: Metric = Metric::gauge(
    "pulse_s3_prefix_bytes",
    "Total size of the objects under the prefix (a lower bound when truncated).",
    &["source", "bucket", "prefix"],
)
.doc("Their total size.");
const PREFIX_NEWEST: Metric = Metric::gauge(
    "pulse_s3_prefix_newest_object_timestamp_seconds",
    "Last-modified time of the newest object under the prefix.",
    &["source", "bucket", "prefix"],
)
.doc("Last-modified time of the newest object; absent for an empty prefix.");
const PREFIX_TRUNCATED: Metric = Metric::gauge(
    "pulse_s3_prefix_truncated",
    "Whether the listing stopped at max_pages (1) before the end of the prefix.",
    &["source", "bucket", "prefix"],
)
.doc("1 when the listing stopped at `max_pages`.");

/// `kind: s3`.
pub struct S3;

impl Kind for S3 {
    const NAME: &'static str = "s3";
    const TITLE: &'static str = "S3";
    const METRICS_INTRO: &'static str = "The health probe is `HeadBucket` (`pulse_source_up`, `pulse_source_probe_duration_seconds`; \
        403 has reason `auth`, 404 `not_found`). The canary and prefix statistics are opt-in.";
    type Settings = S3Config;
    type Check = S3Check;
    type Source = S3Source;
    const METRICS: &'static [Metric] = METRICS;

    /// Its checks are built in from `canary` and `prefixes`.
    fn builtin_checks(settings: &S3Config, path: &str) -> Vec<CheckConfig<Self::Check>> {
        let mut checks = Vec::new();
        if settings.canary.is_some() {
            checks.push(builtin(path, "canary", S3Check::Canary));
        }
        for (i, p) in settings.prefixes.iter().enumerate() {
            let shown = if p.prefix.is_empty() {
                "*"
            } else {
                p.prefix.as_str()
            };
            checks.push(builtin(path, format!("prefix:{shown}"), S3Check::Prefix(i)));
        }
        checks
    }

    fn series(
        parsed: &Parsed<Self>,
        check: &CheckConfig<S3Check>,
    ) -> Vec<crate::config::shape::Series> {
        use crate::config::display::PanelKind;
        use crate::config::shape::{Builtin, Panel, PanelQuery, Pin, Series, Shape};
        match check.spec {
            S3Check::Canary => {
                let canary = Builtin {
                    panels: vec![
                        Panel {
                            key: "steps",
                            title: "Write canary".to_owned(),
                            description: "Each step of the last canary run: put, get (read back \
                                and compared), delete; 1 worked, 0 failed.",
                            unit: "none",
                            kind: PanelKind::Stat,
                            queries: vec![PanelQuery::metric(CANARY_SUCCESS.name, "{{step}}")],
                            outcome: true,
                        },
                        Panel {
                            key: "duration",
                            title: "Write canary duration".to_owned(),
                            description: "Duration of each canary step.",
                            unit: "s",
                            kind: PanelKind::Timeseries,
                            queries: vec![PanelQuery::metric(CANARY_DURATION.name, "{{step}}")],
                            outcome: false,
                        },
                    ],
                    alerts: &[],
                };
                vec![Series::new(
                    CANARY_SUCCESS.name,
                    vec!["step".to_owned()],
                    Shape::Builtin(canary),
                )]
            }
            S3Check::Prefix(i) => parsed
                .settings
                .prefixes
                .get(i)
                .map(|p| {
                    let objects = Builtin {
                        panels: vec![Panel {
                            key: "objects",
                            title: format!("Objects under {:?}", p.prefix),
                            description: "Objects under the prefix and their total size (lower \
                                bounds while the listing is truncated at max_pages).",
                            unit: "short",
                            kind: PanelKind::Stat,
                            queries: vec![
                                PanelQuery::metric(PREFIX_OBJECTS.name, "objects"),
                                PanelQuery {
                                    unit: Some("bytes"),
                                    ..PanelQuery::metric(PREFIX_BYTES.name, "bytes")
                                },
                            ],
                            outcome: false,
                        }],
                        alerts: &[],
                    };
                    Series::new(PREFIX_OBJECTS.name, Vec::new(), Shape::Builtin(objects))
                        .pinned(Pin::exact("prefix", &p.prefix))
                })
                .into_iter()
                .collect(),
        }
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(&parsed.settings, path, errors)
    }

    fn display_endpoint(c: &S3Config) -> String {
        match &c.endpoint {
            Some(e) => format!(
                "{}/{}",
                crate::secrets::display_url(e).trim_end_matches('/'),
                c.bucket
            ),
            None => format!("s3://{}", c.bucket),
        }
    }

    fn tls_endpoints(c: &S3Config) -> Endpoints {
        let endpoint = match &c.endpoint {
            Some(e) => e.clone(),
            // AWS itself: the region named, else the one the default chain would find in the
            // environment (a profile's or the instance's region is not looked up for this).
            None => {
                let region = c
                    .region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".to_owned());
                format!("https://s3.{region}.amazonaws.com")
            }
        };
        let Some(mut at) = TlsEndpoint::of_url(&endpoint, &["https"], 443) else {
            return Endpoints::None;
        };
        // Virtual-hosted style reaches the bucket's own name, which may present another
        // certificate than the endpoint's.
        if !c.path_style.unwrap_or(c.endpoint.is_some()) {
            at.host = format!("{}.{}", c.bucket, at.host);
        }
        Endpoints::Fixed(vec![at])
    }

    fn connect(settings: &S3Config, name: &str) -> Result<S3Source, String> {
        S3Source::new(settings, name)
    }
}

/// Records the s3 rules the source at `p` breaks.
fn validate(c: &S3Config, p: &str, errors: &mut Vec<ConfigError>) {
    if c.bucket.is_empty() {
        errors.push(ConfigError::new(format!("{p}.bucket"), "must not be empty"));
    }
    if c.access_key_id.is_some() != c.secret_access_key.is_some() {
        errors.push(ConfigError::new(
            format!("{p}.secret_access_key"),
            "set both `access_key_id` and `secret_access_key`, or neither to use the default AWS credential chain",
        ));
    }
    if let Some(e) = &c.endpoint {
        if !matches!(
            url::Url::parse(e).map(|u| u.scheme().to_owned()).as_deref(),
            Ok("http" | "https")
        ) {
            errors.push(ConfigError::new(
                format!("{p}.endpoint"),
                "expected an http(s) URL such as http://minio:9000",
            ));
        }
    }
    if let Some(tls) = &c.tls {
        let https = c
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("https://"));
        if !https {
            errors.push(ConfigError::new(
                format!("{p}.tls"),
                "applies to an https:// `endpoint` (AWS's own endpoints use public CAs)",
            ));
        }
        if tls.cert_file.is_some() || tls.key_file.is_some() {
            errors.push(ConfigError::new(
                format!("{p}.tls.cert_file"),
                "client certificates are not supported for S3 (the AWS SDK's HTTP client sends none): keep `ca_file` only",
            ));
        } else {
            tls.validate(&format!("{p}.tls"), errors);
        }
    }
    if let Some(canary) = &c.canary {
        if canary.prefix.is_empty() {
            errors.push(ConfigError::new(
                format!("{p}.canary.prefix"),
                "must not be empty: the canary writes and deletes objects under it",
            ));
        }
    }
    for (i, pc) in c.prefixes.iter().enumerate() {
        // 10,000 pages are 10 million keys listed per run.
        in_range(
            &format!("{p}.prefixes[{i}].max_pages"),
            pc.max_pages.into(),
            1,
            10_000,
            errors,
        );
    }
}

/// An S3 source; the client is built on first use (loading credentials may do I/O).
pub struct S3Source {
    name: String,
    config: S3Config,
    client: Arc<OnceCell<aws_sdk_s3::Client>>,
}

impl S3Source {
    /// Creates the source without connecting.
    pub fn new(c: &S3Config, name: &str) -> Result<Self, String> {
        if let Some(secret) = &c.secret_access_key {
            crate::secrets::register(secret);
        }
        Ok(S3Source {
            name: name.to_owned(),
            config: c.clone(),
            client: Arc::new(OnceCell::new()),
        })
    }
}

/// The trust of an endpoint with `tls.ca_file`: its CA alone, like the other kinds.
fn tls_context(c: &S3Config) -> Result<Option<aws_smithy_http_client::tls::TlsContext>, String> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let Some(tls) = &c.tls else { return Ok(None) };
    let material = tls.load_for_client()?;
    let Some(ca) = material.ca else {
        return Ok(None);
    };
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(ca))
        .build()
        .map(Some)
        .map_err(|e| format!("tls.ca_file: {e}"))
}

async fn build_client(c: &S3Config) -> Result<aws_sdk_s3::Client, String> {
    // rustls with ring, like every other TLS client here (the SDK's default would add aws-lc).
    let mut https = aws_smithy_http_client::Builder::new().tls_provider(
        aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ),
    );
    if let Some(context) = tls_context(c)? {
        https = https.tls_context(context);
    }
    let https = https.build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https);
    // S3-compatible servers ignore the region: with an endpoint and no region, name one rather
    // than let the default chain ask the EC2 metadata service for it.
    let region = c
        .region
        .clone()
        .or_else(|| c.endpoint.as_ref().map(|_| "us-east-1".to_owned()));
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    if let (Some(id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "pulse-exporter-config",
        ));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        builder = builder.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(e) = &c.endpoint {
        builder = builder.endpoint_url(e);
    }
    builder = builder.force_path_style(c.path_style.unwrap_or(c.endpoint.is_some()));
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

/// Classifies an SDK error by HTTP status and S3 error code.
fn classify<E>(e: &SdkError<E, HttpResponse>) -> ProbeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (reason, detail) = match e {
        SdkError::TimeoutError(_) => (Reason::Timeout, "timed out".to_owned()),
        SdkError::DispatchFailure(d) => {
            let reason = if d.is_timeout() {
                Reason::Timeout
            } else {
                Reason::Connect
            };
            (reason, format!("request not sent: {d:?}"))
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("");
            let status = s.raw().status().as_u16();
            let reason = match (code, status) {
                (
                    "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken",
                    _,
                )
                | (_, 401 | 403) => Reason::Auth,
                ("NoSuchBucket" | "NoSuchKey" | "NotFound", _) | (_, 404) => Reason::NotFound,
                (_, 500..=599) => Reason::Upstream,
                _ => Reason::Query,
            };
            (
                reason,
                format!("HTTP {status} {code} {}", s.err().message().unwrap_or("")),
            )
        }
        SdkError::ResponseError(_) => (Reason::Decode, "unreadable response".to_owned()),
        _ => (Reason::Query, e.to_string()),
    };
    ProbeError::new(reason, detail.trim())
}

impl Source<S3Check> for S3Source {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(Probes {
            source: self.name.clone(),
            config: self.config.clone(),
            client: self.client.clone(),
            which: None,
            sweep_after: Duration::ZERO,
        })
    }

    fn check(&self, check: &CheckConfig<S3Check>, plan: &CheckPlan) -> Arc<dyn Probe> {
        let which = check.spec.clone();
        Arc::new(Probes {
            source: self.name.clone(),
            config: self.config.clone(),
            client: self.client.clone(),
            which: Some(which),
            // Three intervals: a run still in flight (PUT done, DELETE to come) is never swept.
            sweep_after: plan.interval.saturating_mul(3),
        })
    }
}

/// The health probe (`which: None`) and the built-in checks of one source.
struct Probes {
    source: String,
    config: S3Config,
    client: Arc<OnceCell<aws_sdk_s3::Client>>,
    which: Option<S3Check>,
    /// Canary objects of this source older than this are leftovers of cancelled runs.
    sweep_after: Duration,
}

/// Whether `key` is a canary object of this source (`own` is `{prefix}{source}-`) written
/// more than `sweep_after` before `now_nanos`. Another source whose name starts with this one's
/// (`media` and `media-eu`) never matches: what follows `own` must be the nanoseconds alone.
fn stale_canary(key: &str, own: &str, now_nanos: u128, sweep_after: Duration) -> bool {
    key.strip_prefix(own)
        .and_then(|n| n.parse::<u128>().ok())
        .is_some_and(|at| now_nanos.saturating_sub(at) > sweep_after.as_nanos())
}

impl Probes {
    async fn canary(&self, client: &aws_sdk_s3::Client) -> Result<Output, ProbeError> {
        let prefix = &self
            .config
            .canary
            .as_ref()
            .map(|c| c.prefix.clone())
            .unwrap_or_else(default_canary_prefix);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let own = format!("{prefix}{}-", self.source);
        self.sweep(client, &own, nanos).await;
        let key = format!("{own}{nanos}");
        let body = format!("pulse-exporter canary {nanos}");
        let bucket = &self.config.bucket;
        let mut out = Output::default();
        let mut failure = None;
        for step in ["put", "get", "delete"] {
            let started = std::time::Instant::now();
            let result = match step {
                "put" => client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from(body.clone().into_bytes()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify(&e)),
                "get" => match client.get_object().bucket(bucket).key(&key).send().await {
                    Ok(obj) => match obj.body.collect().await {
                        Ok(data) => {
                            if data.into_bytes().as_ref() == body.as_bytes() {
                                Ok(())
                            } else {
                                Err(ProbeError::new(
                                    Reason::Decode,
                                    "the canary object read back differs from what was written",
                                ))
                            }
                        }
                        Err(e) => Err(ProbeError::new(
                            Reason::Connect,
                            format!("reading the canary object: {e}"),
                        )),
                    },
                    Err(e) => Err(classify(&e)),
                },
                _ => client
                    .delete_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify(&e)),
            };
            let ok = result.is_ok();
            let labels = [self.source.as_str(), self.config.bucket.as_str(), step];
            out.add(&CANARY_SUCCESS, &labels, f64::from(u8::from(ok)));
            out.add(&CANARY_DURATION, &labels, started.elapsed().as_secs_f64());
            if let Err(e) = result {
                failure = Some(ProbeError::new(
                    e.reason(),
                    format!("canary {step} s3://{bucket}/{key}: {}", e.message()),
                ));
                // Nothing to read back or delete after a failed write.
                if step == "put" {
                    break;
                }
            }
        }
        out.failure = failure;
        Ok(out)
    }

    /// Deletes this source's canary objects (`{prefix}{source}-{nanos}`) written more than
    /// `sweep_after` before `now_nanos`: a run cancelled between PUT and DELETE leaves one.
    /// Best effort: one page of keys per run, and a failure (say, no ListBucket permission)
    /// never fails the canary.
    async fn sweep(&self, client: &aws_sdk_s3::Client, own: &str, now_nanos: u128) {
        let listed = client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(own)
            .max_keys(100)
            .send()
            .await;
        let resp = match listed {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(source = %self.source, error = %classify(&e), "canary sweep: cannot list");
                return;
            }
        };
        for key in resp.contents().iter().filter_map(|o| o.key()) {
            if !stale_canary(key, own, now_nanos, self.sweep_after) {
                continue;
            }
            match client
                .delete_object()
                .bucket(&self.config.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(_) => {
                    tracing::info!(source = %self.source, key, "canary object left by a cancelled run deleted")
                }
                Err(e) => {
                    tracing::debug!(source = %self.source, key, error = %classify(&e), "canary sweep: cannot delete")
                }
            }
        }
    }

    async fn prefix_stats(
        &self,
        client: &aws_sdk_s3::Client,
        index: usize,
    ) -> Result<Output, ProbeError> {
        let pc = &self.config.prefixes[index];
        let (mut count, mut bytes, mut newest, mut truncated) = (0u64, 0i64, None::<i64>, false);
        let mut token: Option<String> = None;
        for page in 0..pc.max_pages {
            let resp = client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(&pc.prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for obj in resp.contents() {
                count += 1;
                bytes += obj.size().unwrap_or(0);
                if let Some(t) = obj.last_modified() {
                    newest = Some(newest.map_or(t.secs(), |n| n.max(t.secs())));
                }
            }
            token = resp.next_continuation_token().map(str::to_owned);
            if token.is_none() || !resp.is_truncated().unwrap_or(false) {
                break;
            }
            if page + 1 == pc.max_pages {
                truncated = true;
            }
        }
        let mut out = Output::default();
        let l = [
            self.source.as_str(),
            self.config.bucket.as_str(),
            pc.prefix.as_str(),
        ];
        out.add(&PREFIX_OBJECTS, &l, count as f64);
        out.add(&PREFIX_BYTES, &l, bytes as f64);
        if let Some(n) = newest {
            out.add(&PREFIX_NEWEST, &l, n as f64);
        }
        out.add(&PREFIX_TRUNCATED, &l, f64::from(u8::from(truncated)));
        Ok(out)
    }
}

impl Probe for Probes {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            // The TLS files were checked when the config loaded; one removed since fails the
            // probe until it is back, without caching a client that cannot connect.
            let client = self
                .client
                .get_or_try_init(|| build_client(&self.config))
                .await
                .map_err(|why| ProbeError::new(Reason::Connect, why))?;
            match &self.which {
                None => {
                    client
                        .head_bucket()
                        .bucket(&self.config.bucket)
                        .send()
                        .await
                        .map_err(|e| classify(&e))?;
                    Ok(Output::default())
                }
                Some(S3Check::Canary) => self.canary(client).await,
                Some(S3Check::Prefix(i)) => self.prefix_stats(client, *i).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configfile::{assert_reports, errors_of};
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_sdk_s3::primitives::SdkBody;

    /// What S3 answered with `status` and error `code` classifies as.
    fn service(status: u16, code: &str) -> ProbeError {
        let err = HeadBucketError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("said S3")
                .build(),
        );
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        classify(&SdkError::service_error(err, raw))
    }

    #[test]
    fn the_sweep_takes_only_this_sources_old_canary_objects() {
        let own = "pulse-exporter-canary/media-";
        let after = Duration::from_secs(60);
        let now: u128 = 1_700_000_000 * 1_000_000_000;
        let at = |secs_ago: u128| format!("{own}{}", now - secs_ago * 1_000_000_000);
        assert!(
            stale_canary(&at(61), own, now, after),
            "left by a cancelled run"
        );
        assert!(
            !stale_canary(&at(59), own, now, after),
            "perhaps a run in flight"
        );
        // Another source whose name starts with this one's, and objects not ours at all.
        let other = format!("pulse-exporter-canary/media-eu-{}", now - 3_600_000_000_000);
        assert!(!stale_canary(&other, own, now, after));
        assert!(!stale_canary(
            "pulse-exporter-canary/media-",
            own,
            now,
            after
        ));
        assert!(!stale_canary("uploads/media-1", own, now, after));
        // A clock that went back never makes a fresh object look old.
        assert!(!stale_canary(&format!("{own}{}", now + 5), own, now, after));
    }

    #[test]
    fn s3_errors_are_classified_by_code_then_status() {
        for (status, code, reason) in [
            (403, "AccessDenied", Reason::Auth),
            (400, "InvalidAccessKeyId", Reason::Auth),
            (403, "SignatureDoesNotMatch", Reason::Auth),
            (400, "ExpiredToken", Reason::Auth),
            (401, "", Reason::Auth),
            (404, "NoSuchBucket", Reason::NotFound),
            (404, "", Reason::NotFound),
            (400, "NoSuchKey", Reason::NotFound),
            (503, "SlowDown", Reason::Upstream),
            (500, "InternalError", Reason::Upstream),
            (400, "InvalidBucketName", Reason::Query),
        ] {
            let e = service(status, code);
            assert_eq!(e.reason(), reason, "{status} {code}");
            assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        }
        assert!(service(403, "AccessDenied").to_string().contains("said S3"));
        let timeout: SdkError<HeadBucketError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout).reason(), Reason::Timeout);
        let unreadable: SdkError<HeadBucketError, HttpResponse> = SdkError::response_error(
            "not XML",
            HttpResponse::new(200u16.try_into().unwrap(), SdkBody::empty()),
        );
        assert_eq!(classify(&unreadable).reason(), Reason::Decode);
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            r#"
sources:
  - name: media
    kind: s3
    bucket: ""
    endpoint: "minio:9000"
    access_key_id: AKIA
    canary: { prefix: "" }
    prefixes: [{ prefix: "uploads/", max_pages: 0 }]
"#,
            &[
                "sources[0].bucket: must not be empty",
                "sources[0].secret_access_key: set both `access_key_id` and `secret_access_key`",
                "sources[0].endpoint: expected an http(s) URL",
                "sources[0].canary.prefix: must not be empty",
                "sources[0].prefixes[0].max_pages: must be at least 1",
            ],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: media, kind: s3, bucket: media, region: eu-west-1, canary: {} }"),
            ""
        );
    }

    #[test]
    fn tls_needs_an_https_endpoint_and_takes_no_client_certificate() {
        assert_reports(
            r#"
sources:
  - { name: a, kind: s3, bucket: b, endpoint: "http://minio:9000", tls: { ca_file: /nonexistent/ca.pem } }
  - { name: c, kind: s3, bucket: b, endpoint: "https://minio:9000", tls: { cert_file: /c.pem, key_file: /k.pem } }
"#,
            &[
                "sources[0].tls: applies to an https:// `endpoint`",
                "sources[0].tls.ca_file: /nonexistent/ca.pem",
                "sources[1].tls.cert_file: client certificates are not supported for S3",
            ],
        );
    }
}
