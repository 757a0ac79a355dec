//! The config file as a whole: YAML, secret references, `global:`, sources of every kind
//! (through [`crate::sources::registry`]) and the rules across them, with every error found
//! reported together.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::Value;

use crate::config::names::is_object_name;
use crate::config::parse::{empty, key_text, parse_at, split_mapping};
use crate::config::validate::{label_name, metric_name, plan_timing, timing};
use crate::config::{
    interpolate, AnyCheck, CheckPlan, ConfigError, ConfigErrors, Global, SourceCommon, HEALTH_CHECK,
};
use crate::sources::registry::{parse_kind, AnyKind};

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Defaults for every source and check.
    pub global: Global,
    /// The systems to watch, in file order.
    pub sources: Vec<SourceConfig>,
}

/// One source: the fields every kind shares, and the kind's settings and checks.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Path of this source in the file, e.g. `sources[2]`.
    pub path: String,
    /// Name, kind and timing shared by every kind.
    pub common: SourceCommon,
    /// The kind's settings and checks.
    pub kind: Arc<dyn AnyKind>,
}

impl SourceConfig {
    /// The checks, in file order.
    pub fn checks(&self) -> Vec<&dyn AnyCheck> {
        self.kind.checks()
    }

    /// The health probe's plan.
    pub fn health_plan(&self, global: &Global) -> CheckPlan {
        self.common.health_plan(self.kind.name(), global)
    }

    /// A check's plan: check, then source, then kind, then global timing.
    pub fn check_plan(&self, global: &Global, check: &dyn AnyCheck) -> CheckPlan {
        self.common.check_plan(
            self.kind.name(),
            self.kind.default_interval(),
            global,
            check,
        )
    }

    /// True when `other` connects the same way (everything but the checks is equal), so a
    /// reload may keep this source's connections and unchanged checks.
    pub fn same_connection(&self, other: &SourceConfig) -> bool {
        self.common == other.common && self.kind.same_connection(other.kind.as_ref())
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )])
    })?;
    load_str(&text)
}

/// Parses and validates config text.
pub fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut root: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => empty(),
        Ok(v) => v,
        Err(e) => {
            return Err(ConfigErrors(vec![ConfigError::new(
                "",
                format!("invalid YAML: {e}"),
            )]))
        }
    };
    interpolate(&mut root, "", &mut errors);

    let Value::Mapping(mut top) = root else {
        return Err(ConfigErrors(vec![ConfigError::new(
            "",
            "the file must be a mapping with `global:` and `sources:`",
        )]));
    };
    let global = match top.remove("global") {
        Some(v) => parse_at::<Global>(v, "global", &mut errors).unwrap_or_default(),
        None => Global::default(),
    };
    let raw_sources = top.remove("sources");
    for (key, _) in top {
        errors.push(ConfigError::new(
            "",
            format!(
                "unknown field `{}`: the top level takes `global` and `sources`",
                key_text(&key)
            ),
        ));
    }
    let mut sources = Vec::new();
    match raw_sources {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(s) = parse_source(item, &format!("sources[{i}]"), &mut errors) {
                    sources.push(s);
                }
            }
        }
        Some(_) => errors.push(ConfigError::new("sources", "must be a list of sources")),
    }
    let config = Config { global, sources };
    validate(&config, &mut errors);
    // Built-in checks share their source's path, so one problem can be found once per check.
    let mut seen = HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn parse_source(value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<SourceConfig> {
    let (common, rest) = split_mapping(value, &SourceCommon::KEYS, path, errors)?;
    let common: SourceCommon = parse_at(common, path, errors)?;
    let kind = parse_kind(&common.kind, rest, path, errors)?;
    Some(SourceConfig {
        path: path.to_owned(),
        common,
        kind,
    })
}

/// Records every rule across sources and checks that `config` breaks: names, uniqueness,
/// timing; then each kind's own rules.
fn validate(config: &Config, errors: &mut Vec<ConfigError>) {
    let g = &config.global;
    timing("global", g.interval.0, g.timeout.0, "timeout", errors);
    timing(
        "global",
        g.health_interval.0,
        g.health_timeout.0,
        "health_timeout",
        errors,
    );
    if g.max_series == 0 {
        errors.push(ConfigError::new("global.max_series", "must be at least 1"));
    }

    let mut source_names = HashSet::new();
    for source in &config.sources {
        let name = &source.common.name;
        if !is_object_name(name) {
            errors.push(ConfigError::new(
                format!("{}.name", source.path),
                format!("{name:?} is not a valid source name: use 1-64 characters of letters, digits, `_`, `.`, `:` or `-`"),
            ));
        }
        if !source_names.insert(name.as_str()) {
            errors.push(ConfigError::new(
                format!("{}.name", source.path),
                format!("duplicate source name {name:?}: every source needs its own name"),
            ));
        }
        let health = source.health_plan(g);
        plan_timing(
            &source.path,
            &health,
            "health_timeout",
            "health_interval",
            errors,
        );
        let mut check_names = HashSet::new();
        for check in source.checks() {
            validate_check(source, g, check, &mut check_names, errors);
        }
        source.kind.validate(&source.path, errors);
    }
}

fn validate_check(
    source: &SourceConfig,
    g: &Global,
    check: &dyn AnyCheck,
    names: &mut HashSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    let path = check.path();
    let common = check.common();
    let plan = source.check_plan(g, check);
    plan_timing(path, &plan, "timeout", "interval", errors);
    if plan.stale_after < plan.interval {
        errors.push(ConfigError::new(
            format!("{path}.stale_after"),
            "must be at least the check's interval, or samples would vanish between two runs",
        ));
    }
    if plan.max_series == 0 {
        errors.push(ConfigError::new(
            format!("{path}.max_series"),
            "must be at least 1",
        ));
    }
    let check_name = check.name();
    // A check without a name and without a metric is reported once, by its kind's
    // `metric: required` rule, not a second time here as an empty name.
    let unnamed = check_name.is_empty() && common.name.is_none();
    if !unnamed
        && (check_name.is_empty()
            || check_name.len() > 200
            || check_name.chars().any(char::is_control))
    {
        errors.push(ConfigError::new(
            format!("{path}.name"),
            "a check name must be 1-200 printable characters",
        ));
    }
    if check_name == HEALTH_CHECK {
        errors.push(ConfigError::new(
            format!("{path}.name"),
            "`health` is the name of every source's built-in health probe: pick another name",
        ));
    } else if !unnamed && !names.insert(check_name.clone()) {
        errors.push(ConfigError::new(
            format!("{path}.name"),
            format!(
                "duplicate check name {check_name:?} in source {:?}: set a distinct `name`",
                source.common.name
            ),
        ));
    }
    if check.names_metric() {
        if let Some(metric) = &common.metric {
            metric_name(&format!("{path}.metric"), metric, errors);
        }
    }
    for label in common.const_labels.keys() {
        label_name(&format!("{path}.const_labels"), label, errors);
    }
    // Labels, HELP text and names are published as they are in /metrics.
    let published = common
        .const_labels
        .iter()
        .map(|(k, v)| (format!("const_labels.{k}"), v.as_str()))
        .chain(common.help.as_deref().map(|h| ("help".to_owned(), h)))
        .chain(common.name.as_deref().map(|n| ("name".to_owned(), n)));
    for (field, value) in published {
        if crate::secrets::scrub(value) != value {
            errors.push(ConfigError::new(
                format!("{path}.{field}"),
                "holds a secret (a ${env:}/${file:} value), which /metrics would publish: use a non-secret value",
            ));
        }
    }
}

/// Every error `load_str` reports for `yaml`, one per line (empty when it loads), for the
/// config tests beside each source kind.
#[cfg(test)]
pub(crate) fn errors_of(yaml: &str) -> String {
    match load_str(yaml) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// Asserts that loading `yaml` reports every one of `expected` (each a part of one error line,
/// typically the field's path and the start of its message).
#[cfg(test)]
pub(crate) fn assert_reports(yaml: &str, expected: &[&str]) {
    let errors = errors_of(yaml);
    for e in expected {
        assert!(errors.contains(e), "{e:?} not in:\n{errors}");
    }
}
