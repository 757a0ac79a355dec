//! A Redis source: the connection its probes share, and the probe for its health and for
//! each check.

use std::sync::Arc;

use super::client::Conn;
use super::{commands, health, heartbeats, keys, latency, RedisCheck, RedisConfig};
use crate::clients::redis::ClientError;
use crate::config_core::{CheckConfig, CheckPlan, Split};
use crate::sources::heartbeat::Tracker;
use crate::sources::{Connect, ConnectError};
use crate::sources::{Runnable, Source};

/// A Redis source.
pub struct RedisSource {
    name: String,
    conn: Arc<Conn>,
}

impl Connect<RedisConfig> for RedisSource {
    fn connect(config: &RedisConfig, name: &str) -> Result<Self, ConnectError> {
        crate::secrets::register_url_password(&config.url);
        let client = crate::clients::redis::client(config.url.as_str(), config.tls.as_ref())
            .map_err(|e| match e {
                ClientError::Tls(field) => ConnectError::tls(field),
                ClientError::Url(e) => {
                    ConnectError::field("url", crate::secrets::scrub(&e.to_string()))
                }
            })?;
        Ok(RedisSource {
            name: name.to_owned(),
            conn: Arc::new(Conn::new(client)),
        })
    }
}

impl Source<RedisCheck> for RedisSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            conn: self.conn.clone(),
            start: Default::default(),
        })
    }

    fn check(&self, check: &CheckConfig<RedisCheck>, plan: &CheckPlan) -> Arc<dyn Runnable> {
        let help = check.help(plan.interval);
        let (metric, builtin) = match &check.common.metric {
            Some(m) => (m.clone(), false),
            None => (keys::KEY_LENGTH.name.to_owned(), true),
        };
        match &check.spec {
            RedisCheck::Key(k) => Arc::new(keys::KeyProbe {
                source: builtin.then(|| self.name.clone()),
                conn: self.conn.clone(),
                metric,
                help: if builtin {
                    keys::KEY_LENGTH.help.to_owned()
                } else {
                    help
                },
                check: k.clone(),
                max_keys: plan.max_series,
            }),
            RedisCheck::Command(c) => Arc::new(commands::CommandProbe {
                conn: self.conn.clone(),
                metric,
                help,
                command: c.command.clone(),
            }),
            RedisCheck::Latency(settings) => Arc::new(latency::LatencyProbe {
                source: self.name.clone(),
                conn: self.conn.clone(),
                settings: settings.clone(),
                state: Default::default(),
            }),
            RedisCheck::Heartbeat(Split(hb, b)) => Arc::new(heartbeats::HeartbeatProbe {
                source: self.name.clone(),
                conn: self.conn.clone(),
                hb: hb.clone(),
                from: b.clone(),
                max_keys: plan.max_series,
                tracker: Tracker::default(),
                novalues: heartbeats::novalues_unknown(),
            }),
        }
    }
}
