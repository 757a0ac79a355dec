//! A private certificate authority for tests of TLS to sources: a CA, a server certificate
//! for 127.0.0.1 and a client certificate it signed, written as PEM files in a folder.

use std::path::{Path, PathBuf};

/// The notAfter of the certificates a [`TestCa`] issues: 2031-06-01T00:00:00Z.
pub const SERVER_NOT_AFTER: f64 = 1_938_038_400.0;

/// PEM files of a test CA and what it signed.
pub struct TestCa {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate (SAN 127.0.0.1 and localhost) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The server certificate's notAfter, Unix seconds: [`SERVER_NOT_AFTER`].
    pub server_not_after: f64,
    /// A client certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCa {
    /// Makes the CA and its certificates in `dir`.
    pub fn new(dir: &Path) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pulse-exporter test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let issue = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(names).unwrap();
            params.not_after = rcgen::date_time_ymd(2031, 6, 1);
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let (server_cert, server_key) = issue(vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = issue(vec!["pulse-exporter".into()]);
        TestCa {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            server_not_after: SERVER_NOT_AFTER,
            client_cert: write("client.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
        }
    }
}

/// A TLS front for a plain TCP service (the local RabbitMQ's AMQP port and management API,
/// MongoDB, S3): serves the CA's server certificate, requires a client certificate the CA
/// signed, and forwards the decrypted bytes. Stops when dropped.
pub struct TlsFront {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// A front that asks every client for a certificate the CA signed (mutual TLS).
    pub async fn start(ca: &TestCa, target: &str) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.server_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&ca.server_key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, target) = (acceptor.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut back) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                });
            }
        });
        TlsFront { port, task }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a test of a kind's TLS settings expects of sources that reach one TLS server at
/// `endpoint` (`host:port`): `trusted` up, every source of `refused` down, and the server
/// certificate's expiry read for every source of `read` (a refused one too: the read is
/// what a reconnect would be shown) and for no other.
pub struct TlsOutcome<'a> {
    pub trusted: &'a str,
    pub refused: &'a [&'a str],
    pub read: &'a [&'a str],
    pub endpoint: String,
}

/// Waits (up to `within`) for `want` on `e`, asserts it, and returns the scrape.
pub async fn assert_tls_outcome(
    e: &impl crate::Serving,
    ca: &TestCa,
    want: TlsOutcome<'_>,
    within: std::time::Duration,
) -> crate::Scrape {
    let m = e
        .wait_for(
            &format!("{} up, {:?} failing", want.trusted, want.refused),
            within,
            |m| {
                m.get("pulse_source_up", &[("source", want.trusted)]) == Some(1.0)
                    && want.refused.iter().all(|s| m.probe_failed(s))
                    && m.find("pulse_tls_certificate_expiry_timestamp_seconds", &[])
                        .len()
                        == want.read.len()
            },
        )
        .await;
    for source in want.read {
        assert_eq!(
            m.certificate_expiry(source, &want.endpoint),
            Some(ca.server_not_after),
            "{source}"
        );
    }
    for source in want.refused {
        assert_eq!(
            m.get("pulse_source_up", &[("source", source)]),
            Some(0.0),
            "{source}"
        );
    }
    m
}

impl TestCa {
    /// A `redis-server` in `dir` that speaks only TLS, with this CA's server certificate, and
    /// asks every client for a certificate the CA signed; its port, once it listens. Stopped
    /// when the guard drops.
    pub fn redis_server(&self, dir: &Path) -> (super::prometheus::Proc, u16) {
        let port = super::free_port();
        let path = |p: &Path| p.display().to_string();
        let tls_port = port.to_string();
        let ports = ["--port", "0", "--tls-port", tls_port.as_str()];
        let (cert, key, ca, dir_arg) = (
            path(&self.server_cert),
            path(&self.server_key),
            path(&self.ca),
            path(dir),
        );
        let files = [
            "--tls-cert-file",
            cert.as_str(),
            "--tls-key-file",
            key.as_str(),
            "--tls-ca-cert-file",
            ca.as_str(),
            "--tls-auth-clients",
            "yes",
            "--dir",
            dir_arg.as_str(),
        ];
        let args = [&ports[..], super::prometheus::EPHEMERAL_REDIS, &files[..]].concat();
        let server = super::prometheus::spawn("redis-server", &args, &dir.join("redis.log"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server --tls-port did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (server, port)
    }
}
