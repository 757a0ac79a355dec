//! Certificate expiry: which TLS endpoints a source's clients connect to ([`Endpoints`]), the
//! certificate chain each one presents now ([`read`]) and when its first certificate expires
//! ([`earliest_expiry`]). [`crate::runtime::certificate_watch`] reads them beside the health probes.
//!
//! The chain is read by a handshake of its own, as a reconnect would see it, rather than from
//! the clients' long-lived connections: a server whose certificate was renewed (or replaced by
//! an expired one) shows it here before any client reconnects. The handshake trusts whatever
//! the server presents, because it reads a date and sends nothing; the clients verify as
//! configured, and a certificate they refuse fails the health probe with reason `tls`.

use crate::sync::MutexExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a read chain is trusted before it is read again.
pub const REFRESH: Duration = Duration::from_secs(600);
/// How soon a read that failed (the server down, a handshake cut short) is tried again.
pub const RETRY: Duration = Duration::from_secs(60);
/// How long the last read expiry is published when no read succeeds any more.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// How a client starts TLS on an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// TLS from the first byte (HTTPS, `rediss://`, `amqps://`, MongoDB `tls=true`).
    Direct,
    /// Postgres: an `SSLRequest` first; a server that answers `N` offers no TLS.
    Postgres,
}

/// One host and port a source's client reaches over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEndpoint {
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How TLS starts there.
    pub handshake: Handshake,
}

impl TlsEndpoint {
    /// An endpoint at `host` (brackets around an IPv6 address are dropped) and `port`.
    pub fn new(host: &str, port: u16, handshake: Handshake) -> TlsEndpoint {
        TlsEndpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            handshake,
        }
    }

    /// The endpoint of `url` when its scheme is one of `tls_schemes` (`https`, `rediss`, …),
    /// at `default_port` when the URL names none; `None` for another scheme or no host.
    pub fn of_url(url: &str, tls_schemes: &[&str], default_port: u16) -> Option<TlsEndpoint> {
        let parsed = url::Url::parse(url).ok()?;
        if !tls_schemes.contains(&parsed.scheme()) {
            return None;
        }
        let host = parsed.host_str().filter(|h| !h.is_empty())?;
        let port = parsed.port().unwrap_or(default_port);
        Some(TlsEndpoint::new(host, port, Handshake::Direct))
    }

    /// The `endpoint` label: `host:port`, an IPv6 address in brackets.
    pub fn label(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The future of an [`Endpoints::Lookup`].
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Vec<TlsEndpoint>, String>> + Send>>;

/// The TLS endpoints of a source, from its settings.
#[derive(Clone, Default)]
pub enum Endpoints {
    /// The source connects without TLS (or its kind has no network endpoint).
    #[default]
    None,
    /// These endpoints.
    Fixed(Vec<TlsEndpoint>),
    /// Endpoints known only by asking DNS at each read (MongoDB `mongodb+srv://`).
    Lookup(Arc<dyn Fn() -> LookupFuture + Send + Sync>),
}

impl std::fmt::Debug for Endpoints {
    // A lookup closure may hold a URL with a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoints::None => f.write_str("None"),
            Endpoints::Fixed(list) => f.debug_tuple("Fixed").field(list).finish(),
            Endpoints::Lookup(_) => f.write_str("Lookup"),
        }
    }
}

impl Endpoints {
    /// `Fixed` of the endpoints found, or `None` when there are none.
    pub fn fixed(list: impl IntoIterator<Item = Option<TlsEndpoint>>) -> Endpoints {
        let list: Vec<TlsEndpoint> = list.into_iter().flatten().collect();
        match list.is_empty() {
            true => Endpoints::None,
            false => Endpoints::Fixed(list),
        }
    }

    /// The endpoints now (a lookup asks DNS).
    pub async fn list(&self) -> Result<Vec<TlsEndpoint>, String> {
        match self {
            Endpoints::None => Ok(Vec::new()),
            Endpoints::Fixed(list) => Ok(list.clone()),
            Endpoints::Lookup(lookup) => lookup().await,
        }
    }
}

/// The earliest `notAfter` (Unix seconds) of `chain`, leaf and intermediates alike: the first
/// of them to expire breaks the chain. `None` when no certificate parses.
pub fn earliest_expiry(chain: &[CertificateDer<'_>]) -> Option<i64> {
    chain
        .iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// Reads the certificate chain `endpoint` presents and returns its [`earliest_expiry`];
/// `Ok(None)` when a Postgres server offers no TLS. The caller bounds the time it takes.
pub async fn read(endpoint: &TlsEndpoint) -> Result<Option<i64>, String> {
    let mut tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if endpoint.handshake == Handshake::Postgres {
        // SSLRequest: length 8, then the request code 1234.5679.
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .map_err(|e| format!("SSLRequest: {e}"))?;
        match tcp
            .read_u8()
            .await
            .map_err(|e| format!("SSLRequest: {e}"))?
        {
            b'S' => {}
            b'N' => return Ok(None),
            other => return Err(format!("SSLRequest: unexpected answer byte {other}")),
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        chain: Mutex::default(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| format!("{}: not a host name: {e}", endpoint.host))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    // The handshake may still fail after the chain was read (a server asking for a client
    // certificate this read does not send): the chain is what it came for.
    let handshake = connector.connect(name, tcp).await;
    let chain = std::mem::take(&mut *recorder.chain.locked());
    if let Ok(mut tls) = handshake {
        let _ = tls.shutdown().await;
    }
    match chain.is_empty() {
        true => Err("the handshake ended before the server presented a certificate".to_owned()),
        false => earliest_expiry(&chain)
            .map(Some)
            .ok_or_else(|| "no certificate of the chain parses as X.509".to_owned()),
    }
}

/// A verifier that keeps the chain the server presents and accepts it: the read sends
/// nothing, so trust is not needed, only the dates. Handshake signatures are still checked,
/// so the server proves it holds the certificate's key.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.locked();
        *chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: (i32, u8, u8)) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_first_certificate_of_the_chain_to_expire_is_the_expiry() {
        let leaf = certificate((2031, 1, 1));
        let intermediate = certificate((2030, 1, 1));
        // 2030-01-01T00:00:00Z.
        assert_eq!(
            earliest_expiry(&[leaf.clone(), intermediate]),
            Some(1_893_456_000)
        );
        assert_eq!(earliest_expiry(&[leaf]), Some(1_924_992_000));
        // Bytes that are no certificate are passed over, and nothing parsable is no expiry.
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(earliest_expiry(std::slice::from_ref(&junk)), None);
        assert_eq!(
            earliest_expiry(&[junk, certificate((2030, 1, 1))]),
            Some(1_893_456_000)
        );
    }

    #[test]
    fn endpoints_come_from_tls_urls_only_and_label_as_host_and_port() {
        let https = TlsEndpoint::of_url("https://user:pw@api.stripe.com/v1", &["https"], 443);
        assert_eq!(
            https.as_ref().map(TlsEndpoint::label).as_deref(),
            Some("api.stripe.com:443")
        );
        let v6 = TlsEndpoint::of_url("rediss://[::1]:6380/0", &["rediss"], 6379).unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.label()),
            ("::1", "[::1]:6380".to_owned())
        );
        assert_eq!(
            TlsEndpoint::of_url("redis://h:6379", &["rediss"], 6379),
            None
        );
        assert_eq!(TlsEndpoint::of_url("not a url", &["https"], 443), None);
        assert!(matches!(Endpoints::fixed([None, None]), Endpoints::None));
        assert!(!format!(
            "{:?}",
            Endpoints::Lookup(Arc::new(|| Box::pin(async { Ok(vec![]) })))
        )
        .contains("pw"));
    }

    #[tokio::test]
    async fn the_chain_is_read_from_a_server_that_wants_a_client_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        // Mutual TLS: the read sends no certificate, and still learns the server's.
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            acceptor.accept(socket).await.is_ok()
        });
        let endpoint = TlsEndpoint::new("127.0.0.1", port, Handshake::Direct);
        assert_eq!(read(&endpoint).await, Ok(Some(1_893_456_000)));
        assert!(
            !server.await.unwrap(),
            "the server refused the read without a client certificate"
        );
    }

    #[tokio::test]
    async fn a_postgres_without_tls_has_no_certificate_and_a_closed_port_is_an_error() {
        // A server that answers the SSLRequest with N, as Postgres with ssl=off does.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            socket.read_exact(&mut request).await.unwrap();
            socket.write_all(b"N").await.unwrap();
            request
        });
        let endpoint = TlsEndpoint::new("127.0.0.1", port, Handshake::Postgres);
        assert_eq!(read(&endpoint).await, Ok(None));
        assert_eq!(server.await.unwrap(), [0, 0, 0, 8, 4, 210, 22, 47]);
        // Nothing listens any more.
        let closed = read(&endpoint).await.unwrap_err();
        assert!(closed.starts_with("connect: "), "{closed}");
    }
}
