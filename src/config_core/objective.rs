//! Service level objectives: the share of a source's health probes that must succeed over a
//! window (its availability), with the error budget the rest leaves. Every source has one by
//! default; `objective:` on a source changes its target or window, or turns it off with
//! `false`. The rules that record the error ratios and page on the budget's burn rate are
//! generated from it ([`crate::generate::objectives`]).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Dur};

/// A source's availability objective when the config names none: 99.5 % of its health probes
/// succeed over 28 days (3 h 21 min of failed probes a window).
pub const DEFAULT_TARGET: f64 = 99.5;

/// A job's objective when the config names none: 95 % of its due runs finish well and on
/// time over 28 days (one in twenty may fail or be missed; a job's single failure already
/// pages as `PulseJobFailed`, the objective tells a habit).
pub const DEFAULT_JOB_TARGET: f64 = 95.0;

/// A check's objective when it names no target: 99 % of its runs succeed over the window. A
/// check fails whenever its source is down, and on its own query's errors besides: its budget
/// is wider than its source's (99.5 %).
pub const DEFAULT_CHECK_TARGET: f64 = 99.0;

/// The windows an objective may be counted over, in days: a week, four weeks (the default:
/// whole weeks, so every window holds as many weekends) or thirty days (a month, for a
/// contract's objective).
pub const WINDOW_DAYS: [u64; 3] = [7, 28, 30];

/// The default window, in days.
const DEFAULT_WINDOW_DAYS: u64 = 28;

/// One objective's target and window; each absent field takes its default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// The share of events that must be good over the window, in percent: above 0 and below
    /// 100 (default 99.5 for a source's availability, 99 for a check's runs, 95 for a job's,
    /// 99.9 for a Stripe source's deliveries). 99.9 leaves 0.1 % of the window's events as
    /// the error budget.
    pub target: Option<f64>,
    /// How long the budget is counted over: `7d`, `28d` (default) or `30d`.
    pub window: Option<Dur>,
}

impl Objective {
    /// The target, in percent.
    pub fn target(&self) -> f64 {
        self.target.unwrap_or(DEFAULT_TARGET)
    }

    /// The share of events the budget allows to be bad: `1 - target / 100`.
    pub fn budget(&self) -> f64 {
        1.0 - self.target() / 100.0
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
            .map_or(Duration::from_secs(DEFAULT_WINDOW_DAYS * 86_400), |w| w.0)
    }

    /// The window in whole days.
    pub fn window_days(&self) -> u64 {
        self.window().as_secs() / 86_400
    }

    /// Errors at `path` for a target without a budget or a good event, or a window other
    /// than those the alerts' arithmetic is made for.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if let Some(target) = self.target {
            if !(target > 0.0 && target < 100.0) {
                errors.push(ConfigError::new(
                    format!("{path}.target"),
                    format!("{target} is not a target: give the percent of events that must be good, above 0 and below 100 (100 leaves no error budget to burn), such as 99.5"),
                ));
            }
        }
        let exact_days = self.window().as_secs().is_multiple_of(86_400);
        if self.window.is_some() && !(exact_days && WINDOW_DAYS.contains(&self.window_days())) {
            errors.push(ConfigError::new(
                format!("{path}.window"),
                "an objective's window is 7d, 28d or 30d (the burn-rate alerts are made for them; 28d is the default)",
            ));
        }
    }
}

/// A latency objective's target when the config names none: 99 % of the operations under
/// the bound.
pub const DEFAULT_LATENCY_TARGET: f64 = 99.0;

/// A latency objective: the share of a source's operations (the series of its latency
/// histogram that `series` picks) that must finish under `under` over the window.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyObjective {
    /// Its name, unique within the source: the `objective` label of its series and alerts
    /// (`get-fast`).
    pub name: String,
    /// Which operations: values of the histogram's labels (`command: get` for Redis;
    /// `database`, `collection` and `op` for MongoDB). None: all of the source's.
    #[serde(default)]
    pub series: std::collections::BTreeMap<String, String>,
    /// The latency bound, one of the histogram's bucket bounds (Redis and MongoDB: powers of
    /// two microseconds, e.g. `4096us`, `8192us`; an error lists the nearest).
    pub under: Dur,
    /// The share of the operations that must finish under `under`, in percent: above 0 and
    /// below 100 (default 99).
    pub target: Option<f64>,
    /// How long the budget is counted over: `7d`, `28d` (default) or `30d`.
    pub window: Option<Dur>,
}

impl LatencyObjective {
    /// Its target and window, as an availability objective has them.
    pub fn objective(&self) -> Objective {
        Objective {
            target: Some(self.target.unwrap_or(DEFAULT_LATENCY_TARGET)),
            window: self.window,
        }
    }

    /// Errors at `path` in its name, target or window; the kind's histogram is checked
    /// where the source's kind is known.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if !super::names::is_object_name(&self.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} is not a valid objective name: use 1-64 characters of letters, digits, `_`, `.`, `:` or `-`", self.name),
            ));
        }
        Objective {
            target: self.target,
            window: self.window,
        }
        .validate(path, errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let o: Objective = serde_yaml::from_str(yaml).unwrap();
        let mut errors = Vec::new();
        o.validate("sources[0].objective", &mut errors);
        errors.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn the_defaults_are_99_5_over_28_days() {
        let o = Objective::default();
        assert_eq!(o.target(), 99.5);
        assert!((o.budget() - 0.005).abs() < 1e-12);
        assert_eq!(o.window_days(), 28);
    }

    #[test]
    fn a_target_without_budget_or_a_window_of_its_own_is_refused_naming_the_field() {
        for bad in ["100", "0", "101", "-3"] {
            assert_eq!(
                errors(&format!("target: {bad}")),
                ["sources[0].objective.target"],
                "{bad}"
            );
        }
        assert_eq!(errors("window: 5d"), ["sources[0].objective.window"]);
        assert_eq!(errors("window: 28d12h"), ["sources[0].objective.window"]);
        assert!(errors("{ target: 99.9, window: 7d }").is_empty());
        assert!(errors("window: 30d").is_empty());
    }

    #[test]
    fn a_config_names_the_objective_field_it_refuses() {
        let err = crate::config::load_str(
            "sources:\n  - { name: a, kind: redis, url: 'redis://h', objective: { target: 100, window: 5d } }\n  - { name: b, kind: redis, url: 'redis://h', objective: { taget: 99 } }\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "sources[0].objective.target",
            "sources[0].objective.window",
            "taget",
        ] {
            assert!(err.contains(wanted), "{wanted} not in {err}");
        }
        let err = crate::config::load_str(
            "sources:\n  - { name: pay, kind: stripe, api_key: sk_x, delivery_objective: { target: 0 } }\njobs:\n  - { name: a, every: 1h, token: 0123456789abcdef0, objective: { target: 101, window: 5d } }\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "sources[0].delivery_objective.target",
            "jobs[0].objective.target",
            "jobs[0].objective.window",
        ] {
            assert!(err.contains(wanted), "{wanted} not in {err}");
        }
        let err = crate::config::load_str(
            "sources: []\njobs:\n  - { name: a, every: 1h, token: 0123456789abcdef0, latency_objectives: [{ name: quick, under: 20s }, { name: quick, under: 16s, series: { queue: x } }] }\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "jobs[0].latency_objectives[0].under: 20s is not a bucket bound of pulse_job_duration_seconds, so no bucket counts what is under it: the nearest are 16s and 64s",
            "jobs[0].latency_objectives[1].name: duplicate objective name",
            "jobs[0].latency_objectives[1].series: a job's run durations have no labels to pick by",
        ] {
            assert!(err.contains(wanted), "{wanted} not in {err}");
        }
    }

    #[test]
    fn a_latency_objective_is_refused_where_no_histogram_can_hold_it() {
        let err = |yaml: &str| crate::config::load_str(yaml).unwrap_err().to_string();
        let pg = err("sources:\n  - { name: db, kind: postgres, url: 'postgres://u@h/d', latency_objectives: [{ name: fast, under: 4096us }] }\n");
        assert!(pg.contains("sources[0].latency_objectives[0]: a postgres source publishes no latency histogram"), "{pg}");
        let redis = err("sources:\n  - { name: c, kind: redis, url: 'redis://h', latency_objectives: [{ name: fast, under: 5ms, series: { cmd: get } }, { name: fast, under: 4096us, target: 100 }] }\n");
        for wanted in [
            "sources[0].latency_objectives[0].under: 5ms is not a bucket bound of pulse_redis_command_duration_seconds, so no bucket counts what is under it: the nearest are 4096us and 8192us",
            "sources[0].latency_objectives[0].series.cmd: pulse_redis_command_duration_seconds has no label \"cmd\" to pick by: it has command",
            "sources[0].latency_objectives[1].name: duplicate objective name",
            "sources[0].latency_objectives[1].target",
        ] {
            assert!(redis.contains(wanted), "{wanted} not in {redis}");
        }
        let off = err("sources:\n  - { name: c, kind: redis, url: 'redis://h', latency: false, latency_objectives: [{ name: fast, under: 4096us }] }\n");
        assert!(
            off.contains("the `latency` statistics of this source are off"),
            "{off}"
        );
        assert!(crate::config::load_str("sources:\n  - { name: c, kind: redis, url: 'redis://h', latency_objectives: [{ name: fast, under: 4096us, series: { command: get } }] }\n").is_ok());
    }
}
