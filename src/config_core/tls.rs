//! `tls:` of a source: the files that let the exporter trust a server signed by a private CA
//! and prove itself with a client certificate, checked when the config loads so a wrong path
//! or a file that is not PEM is a config error naming the field, not a failing probe.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::ConfigError;

/// `tls:` of a source (Redis, RabbitMQ, S3): trust and identity beyond the built-in public roots.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file of the CA certificates that sign the server's certificate (a private or
    /// managed-service CA). Without it, the built-in public roots are trusted.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for servers that ask for one (mutual TLS), with
    /// `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// The contents of [`TlsFiles`], read once.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    /// The CA certificates, PEM.
    pub ca: Option<Vec<u8>>,
    /// The client certificate and key, PEM.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsMaterial {
    /// The material as the redis crate takes it (`Client::build_with_tls`): a Redis source
    /// and a Redis job store trust and identify themselves the same way.
    #[cfg(feature = "redis")]
    pub fn into_redis(self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .identity
                .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                }),
            root_cert: self.ca,
        }
    }
}

impl std::fmt::Debug for TlsMaterial {
    // A private key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

fn certificates(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let found = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    match found.is_empty() {
        true => Err(format!(
            "{}: no certificate found (expected PEM `BEGIN CERTIFICATE` blocks)",
            path.display()
        )),
        false => Ok(bytes),
    }
}

/// [`certificates`] that are also usable as trust anchors: a block that is PEM but not a parsable
/// certificate is refused here, where the error can name the field, rather than in a TLS
/// library that may panic on it.
fn trust_anchors(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = certificates(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes).flatten() {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(bytes)
}

fn private_key(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no PEM private key: {e}", path.display()))?;
    Ok(bytes)
}

impl TlsFiles {
    /// Reads and checks the files: errors name the field and the file.
    pub fn load(&self) -> Result<TlsMaterial, (&'static str, String)> {
        let ca = match &self.ca_file {
            Some(p) => Some(trust_anchors(p).map_err(|e| ("ca_file", e))?),
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((
                certificates(c).map_err(|e| ("cert_file", e))?,
                private_key(k).map_err(|e| ("key_file", e))?,
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err((
                    "key_file",
                    "required with cert_file: the client certificate's private key".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    "cert_file",
                    "required with key_file: the client certificate".to_owned(),
                ))
            }
        };
        Ok(TlsMaterial { ca, identity })
    }

    /// [`TlsFiles::load`] for a client built at run time: the error as one line naming the
    /// field (`tls.ca_file: …`), as a probe reports it.
    pub fn load_for_client(&self) -> Result<TlsMaterial, String> {
        self.load()
            .map_err(|(field, why)| format!("tls.{field}: {why}"))
    }

    /// The one rule of every `tls:` field, under `path`: it applies to a connection that
    /// speaks TLS (`secure`, else the error says `fix`: "use a rediss:// URL"), and its files
    /// load ([`TlsFiles::load`]).
    pub fn validate(&self, path: &str, secure: bool, fix: &str, errors: &mut Vec<ConfigError>) {
        if !secure {
            errors.push(ConfigError::new(
                path.to_owned(),
                format!("applies to TLS connections: {fix}"),
            ));
        }
        if let Err((field, why)) = self.load() {
            errors.push(ConfigError::new(format!("{path}.{field}"), why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
        let cert = dir.path().join("ca.pem");
        std::fs::write(&cert, ca.cert.pem()).unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, ca.key_pair.serialize_pem()).unwrap();
        let files = |yaml: String| serde_yaml::from_str::<TlsFiles>(&yaml).unwrap();
        let ok = files(format!(
            "{{ ca_file: {0}, cert_file: {0}, key_file: {1} }}",
            cert.display(),
            key.display()
        ));
        let loaded = ok.load().unwrap();
        assert!(loaded.ca.is_some() && loaded.identity.is_some());
        assert!(
            !format!("{loaded:?}").contains("PRIVATE"),
            "no key in Debug"
        );
        let err = |yaml: String| files(yaml).load().unwrap_err();
        assert_eq!(
            err(format!("{{ ca_file: {} }}", key.display())).0,
            "ca_file"
        );
        assert_eq!(err("{ ca_file: /nonexistent.pem }".to_owned()).0, "ca_file");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (field, why) = err(format!("{{ ca_file: {} }}", garbage.display()));
        assert_eq!(field, "ca_file");
        assert!(why.contains("not a usable CA certificate"), "{why}");
        assert_eq!(
            err(format!("{{ cert_file: {} }}", cert.display())).0,
            "key_file"
        );
        assert_eq!(
            err(format!(
                "{{ cert_file: {0}, key_file: {0} }}",
                cert.display()
            ))
            .0,
            "key_file"
        );
        assert!(serde_yaml::from_str::<TlsFiles>("{ ca: x }").is_err());
    }

    /// The kinds with a `tls:` field and the job store refuse it alike beside a connection
    /// that does not speak TLS, each naming its own fix, and still check its files.
    #[test]
    fn a_tls_field_beside_a_plain_connection_is_refused_alike_everywhere() {
        crate::config::assert_reports(
            r#"
sources:
  - { name: cache, kind: redis, url: "redis://cache:6379", tls: { ca_file: /nonexistent/ca.pem } }
  - name: broker
    kind: rabbitmq
    management_url: http://broker:15672
    username: guest
    password: guest
    tls: { ca_file: /nonexistent/ca.pem }
job_store: { redis: "redis://jobs:6379", tls: { ca_file: /nonexistent/ca.pem } }
"#,
            &[
                "sources[0].tls: applies to TLS connections: use a rediss:// URL",
                "sources[0].tls.ca_file: /nonexistent/ca.pem",
                "sources[1].tls: applies to TLS connections: use an https:// management_url or an amqps:// amqp_url",
                "sources[1].tls.ca_file: /nonexistent/ca.pem",
                "job_store.tls: applies to TLS connections: use a rediss:// URL",
                "job_store.tls.ca_file: /nonexistent/ca.pem",
            ],
        );
    }
}
