//! Command checks: one read-only command from an allowlist, whose numeric reply is the value.

use std::sync::Arc;
use std::time::SystemTime;

use redis::Value as RValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{classify, Conn};
use crate::config_core::time_template;
use crate::config_core::{CheckConfig, ConfigError};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable};

/// Commands a command check may send: read-only, with a numeric (or nil) reply.
pub const READ_ONLY_COMMANDS: [&str; 20] = [
    "BITCOUNT",
    "DBSIZE",
    "EXISTS",
    "GET",
    "HGET",
    "HLEN",
    "HSTRLEN",
    "LLEN",
    "PFCOUNT",
    "PTTL",
    "SCARD",
    "SISMEMBER",
    "STRLEN",
    "TTL",
    "XLEN",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANK",
    "ZSCORE",
];

/// A command check: one read-only command whose reply is the value.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// The command and its arguments, e.g. `[ZCOUNT, "ai:requests", "{{now-60s}}", "+inf"]`.
    /// Arguments may hold time expressions (see docs/configuration.md).
    pub command: Vec<String>,
}

/// Records the rules the command check `check` breaks.
pub(super) fn validate(
    check: &CheckConfig<super::RedisCheck>,
    c: &CommandCheck,
    errors: &mut Vec<ConfigError>,
) {
    let p = &check.path;
    if check.common.metric.is_none() {
        errors.push(ConfigError::new(
            format!("{p}.metric"),
            "required: the metric name the reply is published under",
        ));
    }
    match c.command.first() {
        None => errors.push(ConfigError::new(format!("{p}.command"), "must name a command, e.g. [ZCOUNT, key, min, max]")),
        Some(name) if !READ_ONLY_COMMANDS.contains(&name.to_ascii_uppercase().as_str()) => {
            errors.push(ConfigError::new(
                format!("{p}.command"),
                format!("{name:?} is not an allowed read-only command with a numeric reply: use one of {}", READ_ONLY_COMMANDS.join(", ")),
            ))
        }
        Some(_) => {}
    }
    for (i, arg) in c.command.iter().enumerate() {
        if let Err(e) = time_template::validate(arg) {
            errors.push(ConfigError::new(format!("{p}.command[{i}]"), e));
        }
    }
}

pub(super) struct CommandProbe {
    pub(super) conn: Arc<Conn>,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) command: Vec<String>,
}

impl Runnable for CommandProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let now = SystemTime::now();
            let args = self.command[1..]
                .iter()
                .map(|arg| time_template::expand(arg, now))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RunError::new(Reason::Query, e))?;
            let mut cmd = redis::cmd(&self.command[0].to_ascii_uppercase());
            cmd.arg(&args);
            let mut conn = self.conn.get().await?;
            // A value read whole could be any size (a 100 MB digit string): its length is
            // asked first, and one too long to be a number is never read.
            let name = self.command[0].to_ascii_uppercase();
            if let Some(length) = length_command(&name) {
                let bytes: u64 = redis::cmd(length)
                    .arg(&args)
                    .query_async(&mut conn)
                    .await
                    .map_err(classify)?;
                if bytes > MAX_VALUE_BYTES {
                    return Err(RunError::new(
                        Reason::TooLarge,
                        format!(
                            "{name}: the value is {bytes} bytes, over the {MAX_VALUE_BYTES} a number can take"
                        ),
                    ));
                }
            }
            let reply: RValue = cmd.query_async(&mut conn).await.map_err(classify)?;
            let mut out = Output::default();
            match reply_number(&reply) {
                Ok(Some(v)) => out.gauge(&self.metric, &self.help, Vec::new(), v),
                Ok(None) => {}
                Err(e) => {
                    return Err(RunError::new(
                        Reason::Decode,
                        format!("{}: {e}", self.command[0]),
                    ))
                }
            }
            Ok(out)
        })
    }
}

/// Longest string value a command check reads: no number is longer.
const MAX_VALUE_BYTES: u64 = 1024;

/// The command giving the length of what `command` (uppercase) would read whole, for the
/// commands that return a stored value.
fn length_command(command: &str) -> Option<&'static str> {
    match command {
        "GET" => Some("STRLEN"),
        "HGET" => Some("HSTRLEN"),
        _ => None,
    }
}

/// A reply as a number: integers, doubles and numeric strings; `None` for nil.
pub(super) fn reply_number(v: &RValue) -> Result<Option<f64>, String> {
    match v {
        RValue::Nil => Ok(None),
        RValue::Int(i) => Ok(Some(*i as f64)),
        RValue::Double(d) => Ok(Some(*d)),
        RValue::Boolean(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
        RValue::BulkString(bytes) => parse_number(&String::from_utf8_lossy(bytes)).map(Some),
        RValue::SimpleString(s) => parse_number(s).map(Some),
        other => Err(format!("reply {other:?} is not a number")),
    }
}

fn parse_number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| {
        let shown: String = s.chars().take(40).collect();
        format!("value {shown:?} is not a number")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_as_numbers_or_nothing() {
        assert_eq!(reply_number(&RValue::Int(7)), Ok(Some(7.0)));
        assert_eq!(reply_number(&RValue::Nil), Ok(None));
        assert_eq!(
            reply_number(&RValue::BulkString(b"2.5".to_vec())),
            Ok(Some(2.5))
        );
        assert!(reply_number(&RValue::BulkString(b"ready".to_vec())).is_err());
        assert!(reply_number(&RValue::Array(vec![])).is_err());
    }
}
