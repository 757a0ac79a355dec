//! The S3 client of a source, built on first use: the source's HTTP client (rustls, and
//! with `tls:` its CA and client certificate), its SigV4 signer, and the bucket's URL, path
//! style or virtual-hosted. It sends the five requests the probes make (`HeadBucket`,
//! `ListObjectsV2`, and `PutObject`, `GetObject`, `DeleteObject` for the canary), each
//! answer bounded and each failure classified into a bounded reason.

use std::sync::Arc;

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqsign_aws_v4::Credential;
use reqsign_core::Signer;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::xml::{self, ListPage};
use super::{credentials, S3Config};
use crate::series::run_error::{Reason, RunError};
use crate::sources::http_body::{self, MAX_HTTP_BODY_BYTES};
use crate::sources::{Connect, ConnectError};

/// What S3's `UriEncode` leaves as it is: letters, digits and `-._~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An object key in a URL path: each segment encoded, the slashes kept.
const KEY: &AsciiSet = &UNRESERVED.remove(b'/');

/// Largest error answer read: S3's are a few hundred bytes of XML.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// An S3 source; the client is built on first use.
pub struct S3Source {
    pub(super) name: String,
    pub(super) config: S3Config,
    pub(super) client: Arc<OnceCell<S3Client>>,
}

impl Connect<S3Config> for S3Source {
    fn connect(c: &S3Config, name: &str) -> Result<Self, ConnectError> {
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

/// One source's client of its bucket.
pub(super) struct S3Client {
    http: reqwest::Client,
    signer: Signer<Credential>,
    /// The region requests are signed for.
    region: String,
    /// The bucket's URL: `endpoint/bucket` path style, `https://bucket.host` virtual-hosted.
    bucket_url: String,
}

/// The bucket's URL for `c`, with `region` naming AWS's endpoint when `endpoint` is unset.
fn bucket_url(c: &S3Config, region: &str) -> Result<String, String> {
    let endpoint = c
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let mut url = url::Url::parse(&endpoint).map_err(|e| format!("endpoint: {e}"))?;
    let bucket = utf8_percent_encode(&c.bucket, UNRESERVED).to_string();
    if c.uses_path_style() {
        let path = format!("{}/{bucket}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    } else {
        let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
        url.set_host(Some(&host))
            .map_err(|e| format!("bucket {:?} as a host name: {e}", c.bucket))?;
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(super) fn build_client(c: &S3Config) -> Result<S3Client, String> {
    let tls = c.tls.as_ref().map(|t| t.load_for_client()).transpose()?;
    let region = credentials::region(c);
    Ok(S3Client {
        http: crate::clients::http::client(tls.as_ref())?,
        signer: credentials::signer(c, &region)?,
        bucket_url: bucket_url(c, &region)?,
        region,
    })
}

impl S3Client {
    /// `HeadBucket`: the bucket exists and these credentials may use it.
    pub(super) async fn head_bucket(&self) -> Result<(), RunError> {
        self.send(Method::HEAD, self.bucket_url.clone(), None)
            .await
            .map(drop)
    }

    /// One page of `ListObjectsV2` under `prefix`, at most `max_keys` keys (S3's own limit,
    /// 1,000, when `None`), from `token` on.
    pub(super) async fn list(
        &self,
        prefix: &str,
        max_keys: Option<u32>,
        token: Option<&str>,
    ) -> Result<ListPage, RunError> {
        let mut query = vec![
            ("list-type", "2".to_owned()),
            ("encoding-type", "url".to_owned()),
            ("prefix", prefix.to_owned()),
        ];
        if let Some(n) = max_keys {
            query.push(("max-keys", n.to_string()));
        }
        if let Some(t) = token {
            query.push(("continuation-token", t.to_owned()));
        }
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, UNRESERVED)))
            .collect();
        let url = format!("{}?{}", self.bucket_url, query.join("&"));
        let resp = self.send(Method::GET, url, None).await?;
        let body = http_body::bytes(resp, "ListObjectsV2", MAX_HTTP_BODY_BYTES).await?;
        xml::list_page(&body).map_err(|why| RunError::new(Reason::Decode, why))
    }

    /// `PutObject` of `body` at `key`.
    pub(super) async fn put(&self, key: &str, body: Bytes) -> Result<(), RunError> {
        self.send(Method::PUT, self.object_url(key), Some(body))
            .await
            .map(drop)
    }

    /// `GetObject` of `key`, read up to `limit` bytes.
    pub(super) async fn get(&self, key: &str, limit: usize) -> Result<Vec<u8>, RunError> {
        let resp = self.send(Method::GET, self.object_url(key), None).await?;
        http_body::bytes(resp, "GetObject", limit).await
    }

    /// `DeleteObject` of `key`.
    pub(super) async fn delete(&self, key: &str) -> Result<(), RunError> {
        self.send(Method::DELETE, self.object_url(key), None)
            .await
            .map(drop)
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.bucket_url, utf8_percent_encode(key, KEY))
    }

    /// Signs and sends one request; an answer other than 2xx is an error named by S3's code
    /// and classified by it.
    async fn send(
        &self,
        method: Method,
        url: String,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, RunError> {
        let mut head = http::Request::builder().method(method.clone()).uri(&url);
        if let Some(b) = &body {
            // A signed payload: plain-HTTP endpoints (MinIO in a cluster) are not left
            // trusting an unsigned body.
            head = head.header("x-amz-content-sha256", hex::encode(Sha256::digest(b)));
        }
        let (mut parts, ()) = head
            .body(())
            .map_err(|e| RunError::new(Reason::Query, format!("{url}: {e}")))?
            .into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| RunError::new(Reason::Auth, credential_error(&e)))?;
        let mut req = self.http.request(method, &url).headers(parts.headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| {
            let causes = http_body::causes(&e).join(": ");
            RunError::new(
                http_body::transport_reason(&e),
                format!("request not sent: {causes}"),
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let located = resp
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .filter(|r| *r != self.region)
            .map(str::to_owned);
        let body = http_body::bytes(resp, "S3 error", MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let (mut code, message) = xml::error_code(&body);
        let reason = xml::reason(status.as_u16(), &code);
        // A HEAD answers no body: the status's own words say what S3 did not.
        if code.is_empty() {
            code = status.canonical_reason().unwrap_or_default().to_owned();
        }
        let mut detail = format!("HTTP {} {code} {message}", status.as_u16())
            .trim()
            .to_owned();
        if let Some(r) = located {
            detail.push_str(&format!(
                ": the bucket is in {r}, not {}: set `region: {r}`",
                self.region
            ));
        }
        Err(RunError::new(reason, detail))
    }
}

/// Why no signature could be made, with the causes reqsign's message leaves out (which file
/// or endpoint of the chain failed). reqsign never puts a secret in its errors.
fn credential_error(e: &reqsign_core::Error) -> String {
    let mut text = format!("no credentials to sign with: {e}");
    for cause in http_body::causes(e) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text.push_str(
        " (set `access_key_id` and `secret_access_key`, or give the AWS chain credentials: \
         AWS_ACCESS_KEY_ID, AWS_PROFILE, a web identity or an instance role)",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>, path_style: Option<bool>) -> S3Config {
        S3Config {
            endpoint: endpoint.map(str::to_owned),
            path_style,
            ..crate::sources::s3::tests::minimal()
        }
    }

    #[test]
    fn the_bucket_is_addressed_by_path_with_an_endpoint_and_by_host_on_aws() {
        let url = |c: S3Config| bucket_url(&c, "eu-west-1").unwrap();
        assert_eq!(
            url(config(None, None)),
            "https://media.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            url(config(Some("http://127.0.0.1:9000"), None)),
            "http://127.0.0.1:9000/media"
        );
        assert_eq!(
            url(config(Some("https://minio.example:9000/"), None)),
            "https://minio.example:9000/media"
        );
        assert_eq!(
            url(config(Some("https://ceph.example/s3"), Some(true))),
            "https://ceph.example/s3/media"
        );
        assert_eq!(
            url(config(Some("https://storage.example"), Some(false))),
            "https://media.storage.example"
        );
        assert_eq!(
            url(config(None, Some(true))),
            "https://s3.eu-west-1.amazonaws.com/media"
        );
        // A dotted name would be a host no wildcard certificate covers: by path, unless told.
        let dotted = |path_style| S3Config {
            bucket: "logs.example.com".to_owned(),
            ..config(None, path_style)
        };
        assert_eq!(
            url(dotted(None)),
            "https://s3.eu-west-1.amazonaws.com/logs.example.com"
        );
        assert_eq!(
            url(dotted(Some(false))),
            "https://logs.example.com.s3.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn keys_are_encoded_once_with_their_slashes_kept() {
        let encoded = utf8_percent_encode("uploads/a b+c/ü~x.jpg", KEY).to_string();
        assert_eq!(encoded, "uploads/a%20b%2Bc/%C3%BC~x.jpg");
    }
}
