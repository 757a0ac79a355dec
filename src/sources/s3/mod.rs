//! S3 source (SigV4 with static keys or the AWS default credential chain): bucket
//! reachability, an opt-in write canary (PUT, GET and compare, DELETE), and opt-in object
//! statistics under prefixes. `endpoint` and `path_style` serve MinIO and other S3 servers.
//!
//! The canary is the check for "uploads are failing": a failed step fails the check (with the
//! step's reason) and still publishes `pulse_s3_canary_success 0` for that step, so the gauge
//! never shows an old success. Prefix statistics page `ListObjectsV2` up to `max_pages` pages,
//! so a huge bucket never makes a probe unbounded, and say when they were cut short.

mod canary;
mod client;
mod credentials;
mod metrics;
mod prefixes;
mod probes;
mod xml;

use serde::Deserialize;

use super::{Kind, Parsed};
use crate::config_core::parse::builtin;
use crate::config_core::validate::in_range;
use crate::config_core::{CheckConfig, CheckSpec, ConfigError};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, TlsEndpoint};
pub use client::S3Source;
pub use metrics::METRICS;
use metrics::{CANARY_DURATION, CANARY_SUCCESS, PREFIX_BYTES, PREFIX_OBJECTS};

/// Connection settings and opt-in checks of a `kind: s3` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region requests are signed for (default: `AWS_REGION`, else `AWS_DEFAULT_REGION`,
    /// else `us-east-1`; S3-compatible servers take any).
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible servers, e.g. `http://minio:9000`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need
    /// (default: true when `endpoint` is set, or when the bucket's name has a dot, which
    /// AWS's wildcard certificates do not cover as a host name).
    pub path_style: Option<bool>,
    /// Static access key id; without it the default AWS credential chain is used
    /// (environment, shared profile, cached SSO token, web identity, `credential_process`,
    /// ECS and Pod Identity, EC2 instance metadata).
    pub access_key_id: Option<String>,
    /// Static secret access key (use `${env:…}` or `${file:…}`).
    pub secret_access_key: Option<String>,
    /// `ca_file`: the CA that signs an `https://` endpoint's certificate (a private CA in front
    /// of MinIO or Ceph), trusted instead of the public roots; `cert_file` and `key_file`: the
    /// client certificate presented to an endpoint that asks for one.
    pub tls: Option<crate::config_core::tls::TlsFiles>,
    /// Write canary: PUT, GET and compare, DELETE a small object under this prefix each run.
    pub canary: Option<CanaryConfig>,
    /// Object statistics under prefixes.
    #[serde(default)]
    pub prefixes: Vec<PrefixConfig>,
}

impl S3Config {
    /// Whether requests address the bucket by path (`endpoint/bucket/key`) rather than by
    /// its own host name: `path_style`, by default on with an `endpoint` or a dotted bucket
    /// name (`logs.example.com.s3.amazonaws.com` matches no `*.s3.amazonaws.com` certificate).
    pub fn uses_path_style(&self) -> bool {
        self.path_style
            .unwrap_or(self.endpoint.is_some() || self.bucket.contains('.'))
    }
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
    /// Statistics of one entry of `prefixes`.
    Prefix {
        /// Its index in `prefixes`.
        index: usize,
    },
}

impl CheckSpec for S3Check {}

/// `kind: s3`.
pub struct S3;

impl Kind for S3 {
    const NAME: &'static str = "s3";
    const TITLE: &'static str = "S3";
    const EXAMPLE: &'static str = include_str!("example.yml");
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
            checks.push(builtin(
                path,
                format!("prefix:{shown}"),
                S3Check::Prefix { index: i },
            ));
        }
        checks
    }

    fn series(
        parsed: &Parsed<Self>,
        check: &CheckConfig<S3Check>,
    ) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::display::PanelKind;
        use crate::config_core::shape::{Builtin, Panel, PanelQuery, Pin, Series, Shape};
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
                    also_publishes: &[],
                };
                vec![Series::new(
                    CANARY_SUCCESS.name,
                    vec!["step".to_owned()],
                    Shape::Builtin(canary),
                )]
            }
            S3Check::Prefix { index: i } => parsed
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
                        also_publishes: &[],
                    };
                    Series::new(PREFIX_OBJECTS.name, Vec::new(), Shape::Builtin(objects))
                        .pinned(Pin::exact("prefix", &p.prefix))
                })
                .into_iter()
                .collect(),
        }
    }

    fn validate(parsed: &Parsed<Self>, p: &str, errors: &mut Vec<ConfigError>) {
        let c = &parsed.settings;
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
            let fix = "use an https:// `endpoint` (AWS's own endpoints use public CAs)";
            tls.validate(&format!("{p}.tls"), https, fix, errors);
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
            // AWS itself, in the region requests are signed for.
            None => format!("https://s3.{}.amazonaws.com", credentials::region(c)),
        };
        let Some(mut at) = TlsEndpoint::of_url(&endpoint, &["https"], 443) else {
            return Endpoints::None;
        };
        // Virtual-hosted style reaches the bucket's own name, which may present another
        // certificate than the endpoint's.
        if !c.uses_path_style() {
            at.host = format!("{}.{}", c.bucket, at.host);
        }
        Endpoints::Fixed(vec![at])
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{assert_reports, errors_of};

    /// A source with a bucket and nothing else set.
    pub(super) fn minimal() -> super::S3Config {
        super::S3Config {
            bucket: "media".to_owned(),
            region: None,
            endpoint: None,
            path_style: None,
            access_key_id: None,
            secret_access_key: None,
            tls: None,
            canary: None,
            prefixes: Vec::new(),
        }
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
    fn tls_needs_an_https_endpoint_and_its_files() {
        assert_reports(
            r#"
sources:
  - { name: a, kind: s3, bucket: b, endpoint: "http://minio:9000", tls: { ca_file: /nonexistent/ca.pem } }
  - { name: c, kind: s3, bucket: b, endpoint: "https://minio:9000", tls: { cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem } }
"#,
            &[
                "sources[0].tls: applies to TLS connections: use an https:// `endpoint`",
                "sources[0].tls.ca_file: /nonexistent/ca.pem",
                "sources[1].tls.cert_file: /nonexistent/c.pem",
            ],
        );
    }
}
