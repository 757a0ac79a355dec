//! The config reference (`docs/config.md`), generated from the config structs' doc comments,
//! types and defaults (through their JSON schemas), never copied by hand. The bundle's
//! generated-files test fails when the file is stale; `scripts/generate` rewrites it.

use std::collections::BTreeMap;
use std::fmt::Write;

use schemars::Schema;
use serde_json::Value;

use crate::config_core::{CheckCommon, Global, SourceCommon};
use crate::sources::declare::schema;
use crate::sources::registry::KINDS;

use super::one_line;

/// The whole reference, as Markdown.
pub fn render() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the doc comments of the config structs by `src/reference/config.rs`; do not \
         edit by hand (`scripts/generate` rewrites it, and a test fails when it \
         is stale). docs/configuration.md explains the ideas; \
         this file lists every field.\n\n\
         A field without a default is required unless its type says `optional`. Durations are \
         text such as `500ms`, `15s`, `5m`, `1h30m`. Any text value (durations, URLs, names) may be `${env:NAME}` or \
         `${file:PATH}`; a number or a boolean is written as one. `pulse-exporter config-schema` \
         writes the JSON Schema of the file, for an editor's validation.\n",
    );
    global_and_source_sections(&mut out);
    job_sections(&mut out);
    let check = schema::<CheckCommon>();
    section(
        &mut out,
        "Fields of every check",
        "Every item of a kind's check lists (`checks:`, `keys:`, `heartbeats:`) takes these, \
         besides its own fields below.",
        &[&check],
    );
    kind_sections(&mut out);
    out
}

/// One section: its title and words, the table of the fields of `schemas` (the structs one
/// mapping is read as), then each nested type those fields name under its own heading, since
/// a table's type cell only names it.
fn section(out: &mut String, title: &str, about: &str, schemas: &[&Schema]) {
    let _ = write!(out, "\n## {title}\n\n{about}\n");
    let mut nested = BTreeMap::new();
    let values: Vec<&Value> = schemas.iter().map(|s| s.as_value()).collect();
    table(out, &values);
    for s in &values {
        collect_defs(s, &mut nested);
    }
    for (name, def) in nested {
        let _ = write!(out, "\n#### `{name}`\n\n");
        if let Some(d) = def.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}", one_line(d));
        }
        if def.get("properties").is_some() {
            table(out, &[&def]);
        } else {
            let _ = writeln!(out, "{}", type_of(&def));
        }
    }
}

/// The sections of `global:` and of the fields every source and every template take,
/// whatever its kind: what a reader needs before any kind's own fields.
fn global_and_source_sections(out: &mut String) {
    let global = schema::<Global>();
    section(
        out,
        "`global:`",
        "Defaults for every source and check.",
        &[&global],
    );
    let source = schema::<SourceCommon>();
    section(
        out,
        "Fields of every source (`sources:` items)",
        "Besides these, a source takes the fields of its kind, below.",
        &[&source],
    );
    let template = schema::<crate::config_core::template::TemplateFields>();
    section(
        out,
        "Fields of every template (`templates:` items)",
        "A template is a source written once for many addresses: every field of a source \
         (its `name` is the template's), with `{{target}}` where the address goes, and these. \
         A scraper asks for `/probe?template=NAME&target=HOST:PORT`; docs/scaling.md explains \
         leases.",
        &[&template],
    );
}

/// The sections of the jobs that report in: `jobs:`, `job_keys:` and `job_store:`.
fn job_sections(out: &mut String) {
    section(
        out,
        "`jobs:` items",
        "A job that reports in: it pings `/ping/NAME/start` when a run starts and \
         `/ping/NAME/success` or `/ping/NAME/fail?exit_code=N` when it ends (or runs under \
         `pulse-exporter run --job NAME -- COMMAND`), and `PulseJobLate` fires when no run has \
         finished by its deadline. docs/jobs.md explains the pings.",
        &[
            &schema::<crate::jobs::config::JobFields>(),
            &schema::<crate::jobs::config::ScheduleConfig>(),
        ],
    );
    section(
        out,
        "`job_keys:` items",
        "A ping key: pings signed with it to a job name the config does not declare make that \
         job (for fleets of scripts that name themselves).",
        &[
            &schema::<crate::jobs::config::JobKeyFields>(),
            &schema::<crate::jobs::config::ScheduleConfig>(),
        ],
    );
    section(
        out,
        "`job_store:`",
        "Where the jobs' pings are kept.",
        &[&schema::<crate::jobs::config::JobStoreConfig>()],
    );
}

/// The sections of each kind: its source fields, then each of its check lists.
fn kind_sections(out: &mut String) {
    for kind in KINDS {
        let r = (kind.reference)();
        section(
            out,
            &format!("`kind: {}`", kind.name),
            "Source fields:",
            &[&r.settings],
        );
        for list in &r.lists {
            let parts: Vec<&Schema> = list.parts.iter().collect();
            section(
                out,
                &format!("`kind: {}`, `{}:` items", kind.name, list.key),
                &format!("{} Besides the fields of every check:", list.about),
                &parts,
            );
        }
    }
}

/// One table of the properties of the object schemas `schemas` (the structs one mapping is
/// read as), in order.
fn table(out: &mut String, schemas: &[&Value]) {
    let mut rows = Vec::new();
    let mut required: Vec<&str> = Vec::new();
    for s in schemas {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            rows.extend(props.iter());
        }
        if let Some(r) = s.get("required").and_then(Value::as_array) {
            required.extend(r.iter().filter_map(Value::as_str));
        }
    }
    if rows.is_empty() {
        return;
    }
    out.push_str("\n| field | type | default | description |\n|---|---|---|---|\n");
    for (name, p) in rows {
        let default = match p.get("default") {
            _ if required.contains(&name.as_str()) => "required".to_owned(),
            None | Some(Value::Null) => String::new(),
            Some(d) => format!("`{}`", value_text(d)),
        };
        let description = p
            .get("description")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{name}` | {} | {default} | {} |",
            type_of(p),
            description.replace('|', "\\|")
        );
    }
}

/// Every named definition `s` refers to, by name.
fn collect_defs(s: &Value, into: &mut BTreeMap<String, Value>) {
    if let Some(defs) = s.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            into.insert(name.clone(), def.clone());
        }
    }
}

/// A property's type for humans: `text`, `list of text`, a link to a nested type, one of a
/// few values; `optional` when null is allowed.
fn type_of(p: &Value) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("`{name}`");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = p.get(key).and_then(Value::as_array) {
            let consts: Vec<String> = options
                .iter()
                .filter_map(|o| o.get("const").or_else(|| o.get("enum")?.get(0)))
                .map(|c| format!("`{}`", value_text(c)))
                .collect();
            if consts.len() == options.len() {
                return format!("one of {}", consts.join(", "));
            }
            let types: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(type_of)
                .collect();
            let nullable = types.len() < options.len();
            return format!(
                "{}{}",
                types.join(" or "),
                if nullable { ", optional" } else { "" }
            );
        }
    }
    if let Some(values) = p.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{}`", value_text(v)))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    let (ty, nullable) = match p.get("type") {
        Some(Value::Array(types)) => (
            types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("any"),
            types.iter().any(|t| t == "null"),
        ),
        Some(Value::String(t)) => (t.as_str(), false),
        _ => ("any", false),
    };
    let base = match ty {
        "string" if p.get("format").and_then(Value::as_str) == Some("duration") => {
            "duration".to_owned()
        }
        "string" => "text".to_owned(),
        "integer" => "integer".to_owned(),
        "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "array" => format!(
            "list of {}",
            p.get("items").map(type_of).unwrap_or_else(|| "any".into())
        ),
        "object" => match p.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("mapping of text to {}", type_of(v)),
            _ => "mapping".to_owned(),
        },
        _ => "any YAML".to_owned(),
    };
    if nullable {
        format!("{base}, optional")
    } else {
        base
    }
}

/// A default or constant as YAML would show it.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_every_check_list_is_documented() {
        let doc = render();
        for kind in KINDS {
            assert!(doc.contains(&format!("## `kind: {}`", kind.name)));
        }
        for key in ["checks", "keys", "heartbeats"] {
            assert!(doc.contains(&format!("`{key}:` items")), "{key}");
        }
        // Types, defaults and doc lines all come through.
        assert!(doc.contains("| `interval` | duration | `1m` |"), "{doc}");
        assert!(
            doc.contains("| `max_connections` | integer | `2` |"),
            "{doc}"
        );
        assert!(doc.contains("| `url` | text | required |"), "{doc}");
    }

    #[test]
    fn types_read_as_an_sre_would_write_them() {
        let t = |v: serde_json::Value| type_of(&v);
        assert_eq!(
            t(serde_json::json!({"type": ["string", "null"]})),
            "text, optional"
        );
        assert_eq!(
            t(serde_json::json!({"type": "array", "items": {"type": "string"}})),
            "list of text"
        );
        assert_eq!(
            t(serde_json::json!({"oneOf": [{"const": "head"}, {"const": "tail"}]})),
            "one of `head`, `tail`"
        );
        assert_eq!(
            t(serde_json::json!({"anyOf": [{"$ref": "#/$defs/Oldest"}, {"type": "null"}]})),
            "`Oldest`, optional"
        );
    }
}
