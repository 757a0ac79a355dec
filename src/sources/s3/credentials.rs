//! What an S3 source signs its requests with: reqsign's SigV4 signer, holding the config's
//! static keys or the AWS default credential chain (environment, shared profile, cached SSO
//! token, web identity for IRSA, `credential_process`, ECS and Pod Identity, IMDSv2), which
//! loads through a reqwest client of its own; and the region requests are signed for.

use std::time::Duration;

use bytes::Bytes;
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, HttpSend, OsEnv, Signer};

use super::S3Config;
use crate::sources::http_body;

/// Largest answer read from a credential endpoint (STS, ECS, instance metadata): they answer
/// a few kilobytes.
const MAX_CREDENTIAL_BODY_BYTES: usize = 1024 * 1024;

/// The region a source signs for: `region`, else `AWS_REGION` or `AWS_DEFAULT_REGION`, else
/// `us-east-1` (which S3-compatible servers accept whatever their own). A region named only
/// in a profile or by the instance is not looked up: an S3 answer naming the bucket's region
/// says which to set.
pub(super) fn region(c: &S3Config) -> String {
    c.region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned())
}

/// The signer of a source: its static keys when the config names them, else the default
/// chain. Credentials are loaded on the first request and cached until they expire.
pub(super) fn signer(c: &S3Config, region: &str) -> Result<Signer<Credential>, String> {
    // Bounded so that a chain that ends at the instance metadata off EC2 fails within a
    // probe's timeout rather than taking all of it.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the credential client: {e}"))?;
    let ctx = Context::new()
        .with_file_read(reqsign_file_read_tokio::TokioFileRead)
        .with_http_send(CredentialHttp(http))
        .with_env(OsEnv)
        .with_command_execute(reqsign_command_execute_tokio::TokioCommandExecute);
    let request = RequestSigner::new("s3", region);
    Ok(match (&c.access_key_id, &c.secret_access_key) {
        (Some(id), Some(secret)) => {
            Signer::new(ctx, StaticCredentialProvider::new(id, secret), request)
        }
        _ => Signer::new(ctx, DefaultCredentialProvider::new(), request),
    })
}

/// reqsign's HTTP hook, on reqwest: the requests of the credential chain itself.
#[derive(Debug)]
struct CredentialHttp(reqwest::Client);

impl HttpSend for CredentialHttp {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let unexpected = |what: &str| reqsign_core::Error::unexpected(what.to_owned());
        let req = reqwest::Request::try_from(req)
            .map_err(|e| unexpected("an unsendable credential request").with_source(e))?;
        let resp = self
            .0
            .execute(req)
            .await
            .map_err(|e| unexpected("the credential request failed").with_source(e))?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = http_body::bytes(resp, "credentials", MAX_CREDENTIAL_BODY_BYTES)
            .await
            .map_err(|e| unexpected(&e.to_string()))?;
        let mut answer = http::Response::new(Bytes::from(body));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}
