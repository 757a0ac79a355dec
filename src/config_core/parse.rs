//! Parsing helpers every kind uses: a value into a typed struct with the full path of a bad
//! field, a mapping split between two structs, and a list of checks.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::{partition, CheckCommon, CheckConfig, ConfigError, FieldSet, Split};

/// Deepest `[`/`{` nesting a config may have. The YAML parser spends time proportional to the
/// depth on every token, so a hostile file of 20,000 brackets would take seconds to reject;
/// no real config nests a tenth as deep (a MongoDB pipeline is the deepest, at ten or so).
pub const MAX_FLOW_DEPTH: usize = 100;

/// Fails fast, before the YAML parser runs, on flow nesting deeper than [`MAX_FLOW_DEPTH`].
/// Brackets in quoted strings and comments do not count; where quoting fools the scan it can
/// only under-count, leaving the parser's own recursion limit to answer.
pub fn nesting_guard(text: &str) -> Result<(), ConfigError> {
    let (mut depth, mut quote, mut comment, mut prev) = (0usize, None, false, '\n');
    for c in text.chars() {
        match (quote, c) {
            _ if comment => comment = c != '\n',
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(ConfigError::new(
                        "",
                        format!("invalid YAML: brackets nested more than {MAX_FLOW_DEPTH} deep"),
                    ));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_brackets_are_refused_before_parsing_and_quoted_ones_do_not_count() {
        let deep = format!("sources: {}{}", "[".repeat(20_000), "]".repeat(20_000));
        let err = nesting_guard(&deep).unwrap_err().to_string();
        assert!(err.contains("nested more than 100 deep"), "{err}");
        let quoted = format!(
            "a: '{}'\nb: \"{}\" # {}\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert!(nesting_guard(&quoted).is_ok());
        assert!(nesting_guard("pipeline: [{ $match: { a: { $in: [1, 2] } } }]").is_ok());
    }
}
