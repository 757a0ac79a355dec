//! Parsing helpers every kind uses: a value into a typed struct with the full path of a bad
//! field, a mapping split between two structs, and a list of checks.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::{partition, CheckCommon, CheckConfig, ConfigError, FieldSet, Split};

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
pub fn split_mapping(
    value: Value,
    keys: &[&str],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(Value, Value)> {
    let Value::Mapping(map) = value else {
        errors.push(ConfigError::new(path, "must be a mapping of fields"));
        return None;
    };
    let (picked, rest) = partition(map, keys);
    Some((Value::Mapping(picked), Value::Mapping(rest)))
}

/// Reads one mapping as two structs: `A` takes the keys it names, `B` the rest. Both are
/// parsed (so every error is reported) and a bad field keeps its full path.
pub fn parse_split<A: DeserializeOwned + FieldSet, B: DeserializeOwned>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Split<A, B>> {
    let (mine, rest) = split_mapping(value, A::KEYS, path, errors)?;
    let a = parse_at::<A>(mine, path, errors);
    let before = errors.len();
    let b = parse_at::<B>(rest, path, errors);
    // B's unknown-field message lists only B's fields; the shared ones are allowed too.
    for e in &mut errors[before..] {
        if e.message.starts_with("unknown field") {
            e.message = format!("{}, or one of `{}`", e.message, A::KEYS.join("`, `"));
        }
    }
    Some(Split(a?, b?))
}

/// A parser for one kind of check item: the fields [`CheckCommon`] leaves, into the kind's
/// check type.
pub type SpecParser<S> = fn(Value, &str, &mut Vec<ConfigError>) -> Option<S>;

/// Parses one check: the shared fields into [`CheckCommon`], the rest with `spec`.
pub fn parse_check<S>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    spec: SpecParser<S>,
) -> Option<CheckConfig<S>> {
    let (common, rest) = split_mapping(value, &CheckCommon::KEYS, path, errors)?;
    let common: Option<CheckCommon> = parse_at(common, path, errors);
    let spec = spec(rest, path, errors);
    Some(CheckConfig {
        path: path.to_owned(),
        common: common?,
        spec: spec?,
    })
}

/// Takes the list of checks under `key` out of a source mapping and parses each item with
/// [`parse_check`].
pub fn take_checks<S>(
    rest: &mut Value,
    key: &str,
    path: &str,
    errors: &mut Vec<ConfigError>,
    spec: SpecParser<S>,
) -> Vec<CheckConfig<S>> {
    let items = match rest.as_mapping_mut().and_then(|m| m.remove(key)) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            errors.push(ConfigError::new(format!("{path}.{key}"), "must be a list"));
            Vec::new()
        }
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| parse_check(v, &format!("{path}.{key}[{i}]"), errors, spec))
        .collect()
}

/// A built-in check the kind adds by itself (no list in the file): it shares the source's
/// path and carries a fixed name.
pub fn builtin<S>(path: &str, name: impl Into<String>, spec: S) -> CheckConfig<S> {
    CheckConfig {
        path: path.to_owned(),
        common: CheckCommon {
            name: Some(name.into()),
            ..CheckCommon::default()
        },
        spec,
    }
}

/// A mapping key as text, for messages.
pub fn key_text(key: &Value) -> String {
    key.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{key:?}"))
}

/// An empty mapping, for a file or section that is empty.
pub fn empty() -> Value {
    Value::Mapping(Mapping::new())
}
