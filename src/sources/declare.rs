//! What a kind declares once and everything else reads: its lists of checks
//! ([`CheckList`]: the key in the file, what an item does, the structs it is read as and how
//! it parses), and the reference the config docs are generated from ([`KindReference`]).

use schemars::{JsonSchema, Schema};
use serde_yaml::Value;

use crate::config_core::parse::{take_checks, SpecParser};
use crate::config_core::{CheckConfig, ConfigError};

/// One list of checks of a kind, such as `checks:` or `heartbeats:`: parsing and the config
/// reference both read this one declaration.
pub struct CheckList<C> {
    /// The key in the source mapping.
    pub key: &'static str,
    /// What one item does.
    pub about: &'static str,
    /// The structs an item's fields are read as, besides the shared check fields.
    pub parts: fn() -> Vec<Schema>,
    /// Parses an item's own fields into the kind's check.
    pub parse: SpecParser<C>,
}

impl<C> CheckList<C> {
    /// What the reference shows of the list.
    pub fn reference(&self) -> ListReference {
        ListReference {
            key: self.key,
            about: self.about,
            parts: (self.parts)(),
        }
    }
}

/// Takes every list of `lists` out of `rest` and parses its items, in the order declared.
pub fn take_lists<C>(
    lists: &[CheckList<C>],
    rest: &mut Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<CheckConfig<C>> {
    lists
        .iter()
        .flat_map(|l| take_checks(rest, l.key, path, errors, l.parse))
        .collect()
}

/// What a kind documents: the schema of its own source fields and of each list of checks.
pub struct KindReference {
    /// The kind's settings (every source field but the shared ones and the check lists).
    pub settings: Schema,
    /// Each list of checks.
    pub lists: Vec<ListReference>,
}

/// One list of checks as the reference shows it.
pub struct ListReference {
    /// The key in the source mapping.
    pub key: &'static str,
    /// What one item does.
    pub about: &'static str,
    /// The structs an item's fields are read as, besides the shared check fields.
    pub parts: Vec<Schema>,
}

/// The schema of `T`, for [`KindReference`].
pub fn schema<T: JsonSchema>() -> Schema {
    schemars::schema_for!(T)
}
