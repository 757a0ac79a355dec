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

use crate::sync::MutexExt;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::Sha256;

/// The web config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Serve HTTPS with this certificate and key.
    pub tls_server_config: Option<TlsConfig>,
    /// Users allowed in, each with a bcrypt hash of their password. Empty: no auth.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    /// The file this was read from, which the server watches and re-reads when it (or the
    /// certificate or key it names) changes. `None` for a config built in code.
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
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
    /// PEM CA certificates that sign the client certificates accepted (mutual TLS), as in
    /// the Prometheus exporter toolkit.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// `NoClientCert` (default), `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`:
    /// the two last check a given certificate against `client_ca_file`, the last refuses a
    /// client without one.
    #[serde(default)]
    pub client_auth_type: Option<String>,
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
        let mut config = config;
        config.file = Some(path.to_owned());
        Ok(config)
    }
}

impl TlsConfig {
    /// The rustls server config (ring provider, HTTP/1.1 and HTTP/2).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let certs = self.certificates()?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("key_file {}: {e}", self.key_file))?;
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version.as_deref() {
            None | Some("TLS12") => rustls::DEFAULT_VERSIONS,
            Some("TLS13") => &[&rustls::version::TLS13],
            Some(other) => return Err(format!("min_version {other:?}: use TLS12 or TLS13")),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?;
        let builder = match self.client_verifier(provider)? {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The certificate chain in `cert_file`; an error names the file when it does not read
    /// or holds no certificate.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .map_err(|e| format!("cert_file {}: {e}", self.cert_file))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cert_file {}: {e}", self.cert_file))?;
        match certs.is_empty() {
            true => Err(format!(
                "cert_file {}: no certificate found",
                self.cert_file
            )),
            false => Ok(certs),
        }
    }

    /// The earliest `notAfter` (Unix seconds) of the chain in `cert_file`, published as
    /// `pulse_web_tls_certificate_expiry_timestamp_seconds`; `None` when it does not read.
    pub fn certificate_expiry(&self) -> Option<f64> {
        let certs = self.certificates().ok()?;
        crate::sources::certificates::earliest_expiry(&certs).map(|t| t as f64)
    }

    /// The client certificate check `client_auth_type` and `client_ca_file` ask for.
    fn client_verifier(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, String> {
        let optional = match self.client_auth_type.as_deref() {
            None | Some("NoClientCert") => {
                return match &self.client_ca_file {
                    Some(_) => Err("client_ca_file is set but client_auth_type is not: set it to RequireAndVerifyClientCert (or VerifyClientCertIfGiven)".to_owned()),
                    None => Ok(None),
                };
            }
            Some("RequireAndVerifyClientCert") => false,
            Some("VerifyClientCertIfGiven") => true,
            Some(other) => {
                return Err(format!(
                    "client_auth_type {other:?}: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert (a certificate is always verified)"
                ))
            }
        };
        let Some(ca_file) = &self.client_ca_file else {
            return Err(
                "client_auth_type needs client_ca_file: the CA that signs client certificates"
                    .to_owned(),
            );
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("client_ca_file {ca_file}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("client_ca_file {ca_file}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("client_ca_file {ca_file}: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("client_ca_file {ca_file}: no certificate found"));
        }
        let builder =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let builder = match optional {
            true => builder.allow_unauthenticated(),
            false => builder,
        };
        builder
            .build()
            .map(Some)
            .map_err(|e| format!("client_ca_file {ca_file}: {e}"))
    }
}

/// What a basic-auth check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials match.
    Allowed,
    /// They do not (or the user is unknown).
    Denied,
    /// The client spent its verification attempts: refused without running bcrypt.
    Limited,
}

/// Remembered credentials expire after this. A remembered digest binds the hash it matched,
/// and a changed web config starts an authenticator with an empty memory, so a long memory
/// never keeps a changed or removed password working; it spares the scraper a bcrypt (and a
/// wait behind a guesser at its address) for a day.
const REMEMBER_FOR: Duration = Duration::from_secs(86_400);

/// Credentials refused for want of attempts may try again through the repeat lane once
/// they have waited this long: a scraper repeats its credentials every scrape, a guesser
/// tries new ones.
const REPEAT_AFTER: Duration = Duration::from_secs(1);

/// The repeat lane of a client address: one verification every 3 s, for credentials it was
/// refused before. A guesser that sends each password once never uses it, so the right
/// password sent again by a scraper at the guesser's address gets through.
fn repeats_quota() -> Quota {
    Quota::with_period(Duration::from_secs(3))
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(1).expect("non-zero"))
}

/// Most credentials remembered at once (each entry is a digest and a time).
const MAX_REMEMBERED: usize = 1024;

/// bcrypt verifications a client address may run: 5 at once, then one every 6 s. A scraper
/// with the right password runs one and is remembered; one guessing passwords gets 10 a minute.
fn attempts_quota() -> Quota {
    Quota::with_period(Duration::from_secs(6))
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(5).expect("non-zero"))
}

/// The address whose attempts a client spends: an IPv6 client's /64 network (one host can
/// use every address in it, which would make a per-address limit endless), an IPv4 one's own
/// address.
pub(crate) fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.into(),
            None => {
                let s = v6.segments();
                std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0).into()
            }
        },
    }
}

/// Seconds a limited client should wait, for `Retry-After`.
pub const RETRY_AFTER_SECS: u64 = 6;

/// Checks basic-auth credentials against the configured bcrypt hashes.
///
/// bcrypt is deliberately slow (tens of milliseconds); a scrape every 15 s must not pay that
/// each time, so credentials that verified are remembered for a few minutes by an HMAC under
/// a key drawn at start (never in clear, useless outside this process). Verifications that
/// miss that cache are limited per client address (governor), so a password-guessing client
/// cannot take the CPU from legitimate scrapers.
#[derive(Debug)]
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// The users' costliest hash: an unknown user is verified against it (and refused
    /// whatever the result), so a wrong password costs the same whether the user exists.
    dummy: String,
    key: [u8; 32],
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    attempts: DefaultKeyedRateLimiter<IpAddr>,
    /// Digests refused for want of attempts, and when: the repeat lane's tickets.
    refused: Mutex<HashMap<[u8; 32], Instant>>,
    repeats: DefaultKeyedRateLimiter<IpAddr>,
    /// bcrypt runs on at most half the cores (at least one), whoever asks: guesses from many
    /// addresses queue here instead of taking every core from the scrapes.
    verifying: Arc<tokio::sync::Semaphore>,
}

/// What to do with credentials before any bcrypt runs (see [`BasicAuth::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Remembered: let in without bcrypt.
    Allowed,
    /// The client spent its attempts: refuse without bcrypt.
    Limited,
    /// Run [`BasicAuth::verify`] with this digest (one of the client's attempts is spent).
    Verify([u8; 32]),
}

impl BasicAuth {
    /// An authenticator for `users` (user -> bcrypt hash); `None` when there are none.
    pub fn new(users: &BTreeMap<String, String>) -> Option<BasicAuth> {
        // The costliest hash itself serves: its result for an unknown user is thrown away.
        let dummy = users
            .values()
            .max_by_key(|h| h.parse::<bcrypt::HashParts>().map_or(0, |p| p.get_cost()))?
            .clone();
        Some(BasicAuth {
            users: users.clone(),
            dummy,
            key: rand::random(),
            verified: Mutex::new(HashMap::new()),
            attempts: RateLimiter::keyed(attempts_quota()),
            refused: Mutex::new(HashMap::new()),
            repeats: RateLimiter::keyed(repeats_quota()),
            verifying: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
        })
    }

    /// The permit a caller holds while bcrypt runs, so at most half the cores verify at once.
    pub fn verification_slot(&self) -> Arc<tokio::sync::Semaphore> {
        self.verifying.clone()
    }

    /// True when `user` exists and `password` matches its hash (not limited: for callers
    /// without a client address).
    pub fn check(&self, user: &str, password: &str) -> bool {
        let digest = self.digest(user, password);
        self.remembered(&digest) || self.verify(user, password, digest)
    }

    /// Checks `user` and `password` sent from `client`: remembered credentials pass at once;
    /// anything else spends one of the client's verification attempts first.
    pub fn check_from(&self, client: IpAddr, user: &str, password: &str) -> AuthOutcome {
        match self.admit(client, user, password) {
            Admission::Allowed => AuthOutcome::Allowed,
            Admission::Limited => AuthOutcome::Limited,
            Admission::Verify(digest) => match self.verify(user, password, digest) {
                true => AuthOutcome::Allowed,
                false => AuthOutcome::Denied,
            },
        }
    }

    /// The cheap part of a check, fit for an async worker (one HMAC, no bcrypt): remembered
    /// credentials pass; otherwise the client spends one of its attempts or is limited.
    pub fn admit(&self, client: IpAddr, user: &str, password: &str) -> Admission {
        let digest = self.digest(user, password);
        if self.remembered(&digest) {
            return Admission::Allowed;
        }
        let key = limit_key(client);
        // Addresses that stopped trying are forgotten, so the limiters' memory stays bounded.
        if self.attempts.len() > MAX_REMEMBERED * 16 {
            self.attempts.retain_recent();
            self.repeats.retain_recent();
        }
        if self.attempts.check_key(&key).is_ok() {
            return Admission::Verify(digest);
        }
        let mut refused = self.refused.locked();
        let waited = refused
            .get(&digest)
            .is_some_and(|at| at.elapsed() >= REPEAT_AFTER);
        if waited && self.repeats.check_key(&key).is_ok() {
            // One ticket, one verification: a wrong password repeated must be refused again
            // (and wait again) before its next try.
            refused.remove(&digest);
            return Admission::Verify(digest);
        }
        if refused.len() >= MAX_REMEMBERED * 4 {
            refused.retain(|_, at| at.elapsed() < REMEMBER_FOR / 24);
            if refused.len() >= MAX_REMEMBERED * 4 {
                refused.clear();
            }
        }
        refused.entry(digest).or_insert_with(Instant::now);
        Admission::Limited
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        for part in [
            user,
            password,
            self.users.get(user).map_or("", String::as_str),
        ] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().into()
    }

    fn remembered(&self, digest: &[u8; 32]) -> bool {
        let verified = self.verified.locked();
        verified
            .get(digest)
            .is_some_and(|at| at.elapsed() < REMEMBER_FOR)
    }

    /// Runs bcrypt for credentials not remembered (slow: call it off the async workers), and
    /// remembers them by `digest` when they match.
    pub fn verify(&self, user: &str, password: &str, digest: [u8; 32]) -> bool {
        let Some(hash) = self.users.get(user) else {
            // Spend the same time as a real check so that user names cannot be probed.
            let _ = bcrypt::verify(password, &self.dummy);
            return false;
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut verified = self.verified.locked();
            verified.retain(|_, at| at.elapsed() < REMEMBER_FOR);
            if verified.len() >= MAX_REMEMBERED {
                verified.clear();
            }
            verified.insert(digest, Instant::now());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(limit_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

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
    fn the_right_password_repeated_at_a_guessers_address_gets_through() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new(&BTreeMap::from([("admin".to_owned(), hash)])).unwrap();
        let shared: IpAddr = "10.0.0.9".parse().unwrap();
        let mut guess = 0;
        let mut guesses = |n: usize| {
            (0..n)
                .map(|_| {
                    guess += 1;
                    auth.check_from(shared, "admin", &format!("guess-{guess}"))
                })
                .collect::<Vec<_>>()
        };
        assert!(guesses(10).ends_with(&[AuthOutcome::Limited; 5]));
        // The scraper behind the same address, nothing remembered yet: refused at first.
        assert_eq!(
            auth.check_from(shared, "admin", "s3cret"),
            AuthOutcome::Limited
        );
        assert!(guesses(20).iter().all(|o| *o == AuthOutcome::Limited));
        std::thread::sleep(REPEAT_AFTER);
        assert!(guesses(20).iter().all(|o| *o == AuthOutcome::Limited));
        // Its next scrape repeats the same credentials: let through, then remembered.
        assert_eq!(
            auth.check_from(shared, "admin", "s3cret"),
            AuthOutcome::Allowed
        );
        assert!(guesses(5).iter().all(|o| *o == AuthOutcome::Limited));
        assert_eq!(
            auth.check_from(shared, "admin", "s3cret"),
            AuthOutcome::Allowed
        );
        // A wrong password repeated gets one verification per refusal, never a free run.
        let wrong = |auth: &BasicAuth| auth.check_from(shared, "admin", "wrong-again");
        assert_eq!(wrong(&auth), AuthOutcome::Limited);
        // The lane's next verification is due 3 s after the scraper's.
        std::thread::sleep(Duration::from_secs(3));
        let outcomes: Vec<AuthOutcome> = (0..5).map(|_| wrong(&auth)).collect();
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == AuthOutcome::Denied)
                .count(),
            1,
            "{outcomes:?}"
        );
    }

    #[test]
    fn a_guessing_client_is_limited_and_a_remembered_scraper_is_not() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new(&BTreeMap::from([("admin".to_owned(), hash)])).unwrap();
        let (scraper, guesser): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(
            auth.check_from(scraper, "admin", "s3cret"),
            AuthOutcome::Allowed
        );
        let outcomes: Vec<AuthOutcome> = (0..8)
            .map(|i| auth.check_from(guesser, "admin", &format!("guess-{i}")))
            .collect();
        assert_eq!(
            &outcomes[..5],
            [AuthOutcome::Denied; 5],
            "five attempts at once"
        );
        assert_eq!(&outcomes[5..], [AuthOutcome::Limited; 3], "then limited");
        // A user it has not verified yet waits too: the limit guards bcrypt itself.
        assert_eq!(
            auth.check_from(guesser, "nobody", "s3cret"),
            AuthOutcome::Limited
        );
        // The scraper's remembered credentials pass whatever the others do.
        for _ in 0..20 {
            assert_eq!(
                auth.check_from(scraper, "admin", "s3cret"),
                AuthOutcome::Allowed
            );
        }
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
