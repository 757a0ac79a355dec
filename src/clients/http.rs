//! The HTTP client of a source that speaks HTTP (the RabbitMQ management API, S3): rustls,
//! and with a `tls:` block its CA trusted instead of the public roots and its client
//! certificate presented, the same way for every kind.

use crate::config_core::tls::TlsMaterial;

/// A client naming pulse-exporter in its user agent, with `tls` applied when given.
pub fn client(tls: Option<&TlsMaterial>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("pulse-exporter/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = tls {
        if let Some(ca) = &tls.ca {
            b = b.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("tls.ca_file: {e}"))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &tls.identity {
            let pem = [cert.as_slice(), b"\n", key.as_slice()].concat();
            b = b.identity(
                reqwest::Identity::from_pem(&pem).map_err(|e| format!("tls.key_file: {e}"))?,
            );
        }
    }
    b.build().map_err(|e| e.to_string())
}
