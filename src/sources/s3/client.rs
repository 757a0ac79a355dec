//! The S3 client of a source, built on first use (rustls with ring, a private CA where
//! `tls.ca_file` names one, static keys or the default chain), and SDK errors classified into
//! bounded reasons.

use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

use super::S3Config;
use crate::series::run_error::{Reason, RunError};
use crate::sources::{Connect, ConnectError};

/// An S3 source; the client is built on first use (loading credentials may do I/O).
pub struct S3Source {
    pub(super) name: String,
    pub(super) config: S3Config,
    pub(super) client: Arc<OnceCell<aws_sdk_s3::Client>>,
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

pub(super) async fn build_client(c: &S3Config) -> Result<aws_sdk_s3::Client, String> {
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
    builder = builder.force_path_style(c.uses_path_style());
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

/// Classifies an SDK error by HTTP status and S3 error code.
pub(super) fn classify<E>(e: &SdkError<E, HttpResponse>) -> RunError
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
    RunError::new(reason, detail.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_sdk_s3::primitives::SdkBody;

    /// What S3 answered with `status` and error `code` classifies as.
    fn service(status: u16, code: &str) -> RunError {
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
}
