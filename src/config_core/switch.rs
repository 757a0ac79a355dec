//! A built-in check a source runs unless told not to ([`Switch`]): `false` turns it off,
//! `true` or a mapping of its settings turns it on.

use serde::{Deserialize, Deserializer};

/// On (with its settings) or off. Absent from the file, it is on with the default settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Switch<T> {
    /// `false`.
    Off,
    /// `true`, or a mapping of settings.
    On(T),
}

impl<T: Default> Default for Switch<T> {
    fn default() -> Self {
        Switch::On(T::default())
    }
}

impl<T> Switch<T> {
    /// The settings while on.
    pub fn on(&self) -> Option<&T> {
        match self {
            Switch::On(t) => Some(t),
            Switch::Off => None,
        }
    }
}

impl<'de, T: Default + serde::de::DeserializeOwned> Deserialize<'de> for Switch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::Bool(false) => Ok(Switch::Off),
            serde_yaml::Value::Bool(true) | serde_yaml::Value::Null => Ok(Switch::On(T::default())),
            v @ serde_yaml::Value::Mapping(_) => T::deserialize(v)
                .map(Switch::On)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected false, true or a mapping of settings, found {}",
                kind_of(&other)
            ))),
        }
    }
}

/// What a YAML value is, for messages.
fn kind_of(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        _ => "another value",
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Switch<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Switch_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [{ "type": "boolean" }, generator.subschema_for::<T>()]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Switch;

    #[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        top: usize,
    }

    fn parse(yaml: &str) -> Result<Switch<Settings>, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn false_turns_off_true_and_a_mapping_turn_on() {
        assert_eq!(parse("false").unwrap(), Switch::Off);
        assert_eq!(parse("true").unwrap(), Switch::On(Settings::default()));
        assert_eq!(
            parse("{ top: 5 }").unwrap(),
            Switch::On(Settings { top: 5 })
        );
        assert_eq!(
            Switch::<Settings>::default().on(),
            Some(&Settings::default())
        );
        let e = parse("{ topp: 5 }").unwrap_err();
        assert!(e.contains("topp"), "{e}");
        let e = parse("off").unwrap_err();
        assert!(e.contains("expected false, true or a mapping"), "{e}");
    }
}
