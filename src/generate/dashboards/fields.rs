//! How a panel's values read: colour steps, value mappings, a table's columns and the
//! transformations that join, rename and sort its rows, and a line's style. Named once here
//! for every dashboard.

use serde_json::{json, Map, Value};

/// Absolute thresholds from `(colour, from)` pairs, the first from nothing (`Value::Null`).
pub(super) fn steps(pairs: &[(&str, Value)]) -> Value {
    let steps: Vec<Value> = pairs
        .iter()
        .map(|(color, value)| json!({"color": color, "value": value}))
        .collect();
    json!({"mode": "absolute", "steps": steps})
}

/// A count with no good or bad value: blue.
pub(super) fn neutral() -> Value {
    steps(&[("blue", Value::Null)])
}

/// The order a column's properties are written in, whatever order they are given in.
const COLUMN_PROPERTIES: [&str; 5] = [
    "unit",
    "mappings",
    "thresholds",
    "custom.cellOptions",
    "custom.width",
];

/// A table column override, by the column's display name, of the properties given (see
/// [`unit`], [`mapped`], [`coloured`], [`cell`], [`width`]).
pub(super) fn column(name: &str, properties: &[(&str, Value)]) -> Value {
    let mut properties = properties.to_vec();
    properties.sort_by_key(|(id, _)| COLUMN_PROPERTIES.iter().position(|p| p == id));
    json!({"matcher": {"id": "byName", "options": name}, "properties": props(&properties)})
}

/// A column's unit.
pub(super) fn unit(unit: &str) -> (&'static str, Value) {
    ("unit", json!(unit))
}

/// A column's value mappings.
pub(super) fn mapped(mappings: Vec<Value>) -> (&'static str, Value) {
    ("mappings", json!(mappings))
}

/// A column's colour steps.
pub(super) fn coloured(thresholds: Value) -> (&'static str, Value) {
    ("thresholds", thresholds)
}

/// How a column's cells are drawn (`color-background`, `color-text`).
pub(super) fn cell(kind: &str) -> (&'static str, Value) {
    ("custom.cellOptions", json!({"type": kind}))
}

/// A column's width in pixels.
pub(super) fn width(px: u64) -> (&'static str, Value) {
    ("custom.width", json!(px))
}

/// A value mapping of `(value, text, colour)` entries; an empty colour sets none.
pub(super) fn value_map(entries: &[(&str, &str, &str)]) -> Value {
    let mut options = Map::new();
    for (index, (value, text, color)) in entries.iter().enumerate() {
        let mut entry = Map::new();
        if !text.is_empty() {
            entry.insert("text".into(), json!(text));
        }
        if !color.is_empty() {
            entry.insert("color".into(), json!(color));
        }
        entry.insert("index".into(), json!(index));
        options.insert((*value).to_owned(), Value::Object(entry));
    }
    json!({"type": "value", "options": options})
}

/// The `organize` transformation: `rename` columns, hide `Time` and `exclude`, and with
/// `order` put columns in that order.
pub(super) fn organize(rename: &[(&str, &str)], exclude: &[&str], order: &[&str]) -> Value {
    let excluded: Map<String, Value> = std::iter::once("Time")
        .chain(exclude.iter().copied())
        .map(|k| (k.to_owned(), json!(true)))
        .collect();
    let mut options = json!({"excludeByName": excluded});
    if !rename.is_empty() {
        let renamed: Map<String, Value> = rename
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        options["renameByName"] = Value::Object(renamed);
    }
    if !order.is_empty() {
        let index: Map<String, Value> = order
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).to_owned(), json!(i)))
            .collect();
        options["indexByName"] = Value::Object(index);
    }
    json!({"id": "organize", "options": options})
}

/// The `merge` transformation: the queries' rows joined on their labels.
pub(super) fn merge() -> Value {
    json!({"id": "merge", "options": {}})
}

/// The `sortBy` transformation on `field`, largest first unless `desc` is false.
pub(super) fn sort_by(field: &str, desc: bool) -> Value {
    json!({"id": "sortBy", "options": {"sort": [{"field": field, "desc": desc}]}})
}

/// A line style override for the query `ref_id`.
pub(super) fn by_query(ref_id: &str, properties: &[(&str, Value)]) -> Value {
    json!({"matcher": {"id": "byFrameRefID", "options": ref_id}, "properties": props(properties)})
}

/// An override's properties, `(id, value)` each.
fn props(properties: &[(&str, Value)]) -> Vec<Value> {
    properties
        .iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_writes_its_properties_in_one_order() {
        let c = column("age", &[cell("color-text"), unit("s")]);
        assert_eq!(c["properties"][0]["id"], "unit");
        assert_eq!(c["properties"][1]["id"], "custom.cellOptions");
    }

    #[test]
    fn organize_writes_only_what_it_is_given() {
        let bare = organize(&[], &["job"], &[]);
        assert_eq!(bare["options"]["excludeByName"]["Time"], true);
        assert!(bare["options"].get("renameByName").is_none());
        assert!(bare["options"].get("indexByName").is_none());
        let full = organize(&[("Value", "n")], &[], &["n"]);
        assert_eq!(full["options"]["renameByName"]["Value"], "n");
        assert_eq!(full["options"]["indexByName"]["n"], 0);
    }
}
