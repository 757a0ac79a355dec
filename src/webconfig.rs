//! `--web.config.file`, in the exporter-toolkit format shared by Prometheus exporters:
//! TLS (served by rustls) and HTTP basic auth with bcrypt-hashed passwords.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/pulse/tls.crt
//!   key_file: /etc/pulse/tls.key
//! basic_auth_users:
//!   admin: $2y$10$...   # htpasswd -nBC 10 "" | tr -d ':\n'
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The web config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Serve HTTPS with this certificate and key.
    pub tls_server_config: Option<TlsConfig>,
    /// Users allowed in, each with a bcrypt hash of their password. Empty: no auth.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// Oldest TLS version accepted: `TLS12` (default) or `TLS13`.
    #[serde(default)]
    pub min_version: Option<String>,
}

impl WebConfig {
    /// Reads and checks the file: the certificate and key load, every hash is bcrypt.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read web config {}: {e}", path.display()))?;
        let config: WebConfig = if text.trim().is_empty() {
            WebConfig::default()
        } else {
            serde_yaml::from_str(&text)
                .map_err(|e| format!("web config {}: {e}", path.display()))?
        };
        for (user, hash) in &config.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "web config {}: basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
                    path.display()
                ));
            }
        }
        if let Some(tls) = &config.tls_server_config {
            tls.server_config()
                .map_err(|e| format!("web config {}: tls_server_config: {e}", path.display()))?;
        }
        Ok(config)
    }
}

impl TlsConfig {
    /// The rustls server config (ring provider, HTTP/1.1 and HTTP/2).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .map_err(|e| format!("cert_file {}: {e}", self.cert_file))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cert_file {}: {e}", self.cert_file))?;
        if certs.is_empty() {
            return Err(format!(
                "cert_file {}: no certificate found",
                self.cert_file
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("key_file {}: {e}", self.key_file))?;
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version.as_deref() {
            None | Some("TLS12") => rustls::DEFAULT_VERSIONS,
            Some("TLS13") => &[&rustls::version::TLS13],
            Some(other) => return Err(format!("min_version {other:?}: use TLS12 or TLS13")),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Checks basic-auth credentials against the configured bcrypt hashes.
///
/// bcrypt is deliberately slow (tens of milliseconds); a scrape every 15 s must not pay that
/// each time, so credentials that verified once are remembered by a SHA-256 digest (never in
/// clear), as exporter-toolkit does.
#[derive(Debug, Default)]
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    /// An authenticator for `users` (user -> bcrypt hash); `None` when there are none.
    pub fn new(users: &BTreeMap<String, String>) -> Option<BasicAuth> {
        (!users.is_empty()).then(|| BasicAuth {
            users: users.clone(),
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// True when `user` exists and `password` matches its hash.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            // Spend the same time as a real check so that user names cannot be probed.
            let _ = bcrypt::verify(
                password,
                "$2y$10$0000000000000000000000000000000000000000000000000000.",
            );
            return false;
        };
        let digest: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .chain_update([0u8])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&digest)
        {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(digest);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_users_verify_and_cache() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("admin".to_owned(), hash)]);
        let auth = BasicAuth::new(&users).unwrap();
        assert!(auth.check("admin", "s3cret"));
        assert!(auth.check("admin", "s3cret"), "cached path");
        assert!(!auth.check("admin", "wrong"));
        assert!(!auth.check("nobody", "s3cret"));
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }

    #[test]
    fn rejects_non_bcrypt_hash_and_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "basic_auth_users:\n  admin: plaintext\n").unwrap();
        assert!(WebConfig::load(&p)
            .unwrap_err()
            .contains("basic_auth_users.admin"));
        std::fs::write(&p, "bogus: 1\n").unwrap();
        assert!(WebConfig::load(&p).unwrap_err().contains("bogus"));
    }
}
