//! Reading a config file: YAML syntax, secret references, unknown fields, and collecting
//! every error (with its path) before anything is built.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::interpolate::interpolate;
use super::{
    CheckCommon, CheckConfig, Config, ConfigError, ConfigErrors, Global, SourceCommon, SourceConfig,
};
use crate::sources::{self, CheckSpec};

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
        Ok(Value::Null) => Value::Mapping(Mapping::new()),
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
    let mut sources_out = Vec::new();
    match raw_sources {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(s) = parse_source(item, &format!("sources[{i}]"), &mut errors) {
                    sources_out.push(s);
                }
            }
        }
        Some(_) => errors.push(ConfigError::new("sources", "must be a list of sources")),
    }
    let config = Config {
        global,
        sources: sources_out,
    };
    super::validate::validate(&config, &mut errors);
    // Built-in checks share their source's path, so one problem can be found once per check.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn parse_source(value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<SourceConfig> {
    let (common, rest) = split_keys(value, &SourceCommon::KEYS, path, errors)?;
    let common: SourceCommon = parse_at(common, path, errors)?;
    let (kind, checks) = sources::parse_kind(&common.kind, rest, path, errors)?;
    Some(SourceConfig {
        path: path.to_owned(),
        common,
        kind,
        checks,
    })
}

/// Parses one check of a source: the shared fields into [`CheckCommon`], the rest into the
/// kind's spec `S`, wrapped by `wrap` into a [`CheckSpec`].
pub fn parse_check<S: DeserializeOwned>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    wrap: fn(S) -> CheckSpec,
) -> Option<CheckConfig> {
    let (common, rest) = split_keys(value, &CheckCommon::KEYS, path, errors)?;
    let common: Option<CheckCommon> = parse_at(common, path, errors);
    let spec: Option<S> = parse_at(rest, path, errors);
    Some(CheckConfig {
        path: path.to_owned(),
        common: common?,
        spec: wrap(spec?),
    })
}

/// Deserializes `value` into `T`, recording a failure with the full path of the bad field.
pub fn parse_at<T: DeserializeOwned>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = match (path.is_empty(), inner.as_str()) {
                (_, ".") => path.to_owned(),
                (true, _) => inner,
                (false, _) => format!("{path}.{inner}"),
            };
            errors.push(ConfigError::new(full, e.into_inner().to_string()));
            None
        }
    }
}

/// Splits a mapping into the entries whose keys are in `keys` and the rest, or records that
/// `value` is no mapping.
fn split_keys(
    value: Value,
    keys: &[&str],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(Value, Value)> {
    let Value::Mapping(map) = value else {
        errors.push(ConfigError::new(path, "must be a mapping of fields"));
        return None;
    };
    let (picked, rest) = super::partition(map, keys);
    Some((Value::Mapping(picked), Value::Mapping(rest)))
}

fn key_text(key: &Value) -> String {
    key.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{key:?}"))
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
