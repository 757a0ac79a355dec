//! A RabbitMQ source: the management API's HTTP client and the AMQP connection its probes
//! share, each with the source's TLS files, and the probe for each check.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::amqp::{Amqp, AmqpProbe, StreamLookup};
use super::broker_metrics::{BrokerMetrics, PROMETHEUS_ENDPOINT};
use super::health::HealthProbe;
use super::management::{Management, MANAGEMENT_API};
use super::queues::QueuesProbe;
use super::selection::Selection;
use super::{management_base, RabbitmqCheck, RabbitmqConfig};
use crate::config_core::{CheckConfig, CheckPlan};
use crate::sources::{Connect, ConnectError};
use crate::sources::{Runnable, Source};

/// A RabbitMQ source.
pub struct RabbitmqSource {
    name: String,
    /// The health probe's endpoints, as the settings name them.
    management: Option<Arc<Management>>,
    amqp: Option<Arc<Amqp>>,
    /// The transport the checks share with the health probe.
    http: reqwest::Client,
    username: String,
    password: String,
    amqp_tls: Option<lapin::tcp::OwnedTLSConfig>,
    amqp_conn: Arc<Mutex<Option<lapin::Connection>>>,
    selection: Arc<Selection>,
    max_queues: usize,
    /// The broker's Prometheus endpoint, when `prometheus_url` names it.
    broker_metrics: Option<Arc<BrokerMetrics>>,
}

/// The AMQP client's TLS settings: the CA and the client certificate and key, all PEM.
fn amqp_tls(tls: &crate::config_core::tls::TlsMaterial) -> lapin::tcp::OwnedTLSConfig {
    lapin::tcp::OwnedTLSConfig {
        // lapin reads the key as PEM (any of PKCS#8, PKCS#1 or SEC1), whatever the variant's name.
        identity: tls
            .identity
            .as_ref()
            .map(|(cert, key)| lapin::tcp::OwnedIdentity::PKCS8 {
                pem: cert.clone(),
                key: key.clone(),
            }),
        cert_chain: tls
            .ca
            .as_ref()
            .map(|ca| String::from_utf8_lossy(ca).into_owned()),
    }
}

impl Connect<RabbitmqConfig> for RabbitmqSource {
    fn connect(c: &RabbitmqConfig, name: &str) -> Result<Self, ConnectError> {
        if let Some(pw) = &c.password {
            crate::secrets::register(pw);
        }
        let tls = match &c.tls {
            Some(files) => Some(files.load().map_err(ConnectError::tls)?),
            None => None,
        };
        // Built from `tls:` only for a management API, as an AMQP-only source's TLS files are
        // meant for lapin alone.
        let http = match &c.management_url {
            Some(_) => crate::clients::http::client(tls.as_ref()),
            None => crate::clients::http::client(None),
        }
        .map_err(ConnectError::Client)?;
        let (username, password) = (
            c.username.clone().unwrap_or_default(),
            c.password.clone().unwrap_or_default(),
        );
        let management = match &c.management_url {
            Some(u) => Some(Arc::new(Management {
                what: MANAGEMENT_API,
                base: management_base(u)
                    .ok_or_else(|| ConnectError::field("management_url", "not a URL"))?,
                username: username.clone(),
                password: password.clone(),
                http: http.clone(),
            })),
            None => None,
        };
        let amqp_tls = tls.as_ref().map(amqp_tls);
        let amqp_conn = Arc::new(Mutex::new(None));
        let amqp = match &c.amqp_url {
            Some(u) => {
                crate::secrets::register_url_password(u);
                let uri: lapin::uri::AMQPUri = u.parse().map_err(|e: String| {
                    ConnectError::field("amqp_url", crate::secrets::scrub(&e))
                })?;
                crate::secrets::register(&uri.authority.userinfo.password);
                Some(Arc::new(Amqp {
                    tls: amqp_tls.clone(),
                    url: u.clone(),
                    vhost: uri.vhost.clone(),
                    queues: c.amqp_queues.clone(),
                    conn: amqp_conn.clone(),
                }))
            }
            None => None,
        };
        let broker_metrics = match &c.prometheus_url {
            Some(u) => Some(Arc::new(BrokerMetrics {
                endpoint: Management {
                    what: PROMETHEUS_ENDPOINT,
                    base: management_base(u)
                        .ok_or_else(|| ConnectError::field("prometheus_url", "not a URL"))?,
                    username: username.clone(),
                    password: password.clone(),
                    http: http.clone(),
                },
                vhosts: c.vhosts.clone(),
                per_object: Default::default(),
            })),
            None => None,
        };
        Ok(RabbitmqSource {
            name: name.to_owned(),
            management,
            amqp,
            http,
            username,
            password,
            amqp_tls,
            amqp_conn,
            selection: Arc::new(Selection::new(c)?),
            max_queues: c.max_queues,
            broker_metrics,
        })
    }
}

impl Source<RabbitmqCheck> for RabbitmqSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(HealthProbe {
            source: self.name.clone(),
            management: self.management.clone(),
            amqp: self.amqp.clone(),
            statistics: std::sync::atomic::AtomicU8::new(super::health::UNKNOWN),
        })
    }

    fn check(&self, check: &CheckConfig<RabbitmqCheck>, _plan: &CheckPlan) -> Arc<dyn Runnable> {
        match &check.spec {
            RabbitmqCheck::ManagementQueues(base) => Arc::new(QueuesProbe {
                source: self.name.clone(),
                management: Arc::new(Management {
                    what: MANAGEMENT_API,
                    base: base.clone(),
                    username: self.username.clone(),
                    password: self.password.clone(),
                    http: self.http.clone(),
                }),
                selection: self.selection.clone(),
                max_queues: self.max_queues,
                broker_metrics: self.broker_metrics.clone(),
                endpoint_failing: Default::default(),
                drain: Default::default(),
                stream_lag: Default::default(),
            }),
            RabbitmqCheck::AmqpQueues(target) => Arc::new(AmqpProbe {
                source: self.name.clone(),
                amqp: Arc::new(Amqp {
                    tls: self.amqp_tls.clone(),
                    url: target.url.clone(),
                    vhost: target.vhost.clone(),
                    queues: target.queues.clone(),
                    conn: self.amqp_conn.clone(),
                }),
                selection: self.selection.clone(),
                consumers_only: self.management.is_some(),
                streams: StreamLookup::new(self.management.clone(), self.broker_metrics.clone()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> RabbitmqConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[tokio::test]
    async fn a_new_source_connects_nothing_and_its_passwords_are_secrets() {
        // Nothing listens on port 9: creating the source must not try.
        let c = config(
            "{ management_url: 'http://127.0.0.1:9/api', username: u, password: mgmt-pw-5e1f, \
               amqp_url: 'amqp://g:amqp-pw-7c2d@127.0.0.1:9/prod', amqp_queues: [jobs] }",
        );
        let source = RabbitmqSource::connect(&c, "mq").unwrap();
        assert!(source.management.is_some() && source.amqp.is_some());
        assert!(
            source.amqp_conn.lock().await.is_none(),
            "no AMQP connection yet"
        );
        let logged = crate::secrets::scrub("mgmt-pw-5e1f and amqp-pw-7c2d");
        assert!(
            !logged.contains("mgmt-pw-5e1f") && !logged.contains("amqp-pw-7c2d"),
            "{logged}"
        );
        // An AMQP-only source has no management client to probe through.
        let amqp_only = config("{ amqp_url: 'amqp://127.0.0.1:9/%2f', amqp_queues: [jobs] }");
        let source = RabbitmqSource::connect(&amqp_only, "mq").unwrap();
        assert!(source.management.is_none() && source.amqp.is_some());
        // A selection regex that does not compile is refused here too.
        let bad = config("{ management_url: 'http://127.0.0.1:9', queues: { include: ['('] } }");
        assert!(RabbitmqSource::connect(&bad, "mq").is_err());
    }
}
