//! The JSON Schema of the config file (`pulse-exporter config-schema`), built from the same
//! config structs as docs/config.md: an editor validates a config with it, and the Helm
//! chart's `values.schema.json` embeds it under `config`, so `helm lint` catches a misspelt
//! field of a source before a pod refuses the file.
//!
//! It is draft-07 (`definitions`, `if`/`then`), the draft every Helm release validates. A
//! source is its kind's fields, the fields every source takes and its kind's check lists,
//! merged into one object that admits nothing else, as the loader does; `kind` picks which.
//! The schema is no stronger than the loader: ranges, patterns and cross-field rules stay
//! with `pulse-exporter check`.

use serde_json::{json, Map, Value};

use crate::config_core::template::TemplateFields;
use crate::config_core::{CheckCommon, Global, SourceCommon};
use crate::sources::declare::{schema, ListReference};
use crate::sources::registry::{Entry, KINDS};

/// Where draft-07 keeps named schemas, and how a reference names one.
const DEFS: &str = "definitions";

/// The schema of a whole config file.
pub fn config_schema() -> Value {
    let mut defs = Defs::default();
    let global = defs.take(schema::<Global>().to_value());
    let shared = Shared {
        common: defs.take(schema::<SourceCommon>().to_value()),
        template: defs.take(schema::<TemplateFields>().to_value()),
        check: defs.take(schema::<CheckCommon>().to_value()),
    };
    let (job, job_key) = job_schemas(&mut defs);
    let job_store = defs.take(schema::<crate::jobs::config::JobStoreConfig>().to_value());
    source_schemas(&mut defs, &shared);
    let mut root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://pulse-exporter.invalid/config.schema.json",
        "title": "pulse-exporter config",
        "description": "The config file of pulse-exporter (docs/config.md lists every field).",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "global": global,
            "sources": { "type": ["array", "null"], "items": { "$ref": format!("#/{DEFS}/source") } },
            "templates": { "type": ["array", "null"], "items": { "$ref": format!("#/{DEFS}/template") } },
            "jobs": { "type": ["array", "null"], "items": job },
            "job_keys": { "type": ["array", "null"], "items": job_key },
            "job_store": job_store,
        },
    });
    root[DEFS] = Value::Object(defs.defs);
    root
}

/// The parts every source takes whatever its kind, taken once into the file's definitions.
struct Shared {
    /// The fields of every source.
    common: Value,
    /// What a template adds to a source.
    template: Value,
    /// The fields of every check list's item.
    check: Value,
}

/// The schemas of a `jobs:` item and of a `job_keys:` item: each is its own fields and one
/// schedule, read from one mapping.
fn job_schemas(defs: &mut Defs) -> (Value, Value) {
    let schedule = defs.take(schema::<crate::jobs::config::ScheduleConfig>().to_value());
    let job = object(
        "One job that reports in (`jobs:` item).",
        vec![
            defs.take(schema::<crate::jobs::config::JobFields>().to_value()),
            schedule.clone(),
        ],
        &[],
    );
    let job_key = object(
        "A ping key (`job_keys:` item): a bearer token whose pings to a job name the config does not declare create that job, with this key's schedule, up to `max_jobs`.",
        vec![
            defs.take(schema::<crate::jobs::config::JobKeyFields>().to_value()),
            schedule,
        ],
        &[],
    );
    (job, job_key)
}

/// Defines each kind's source and template, then `source` and `template`, which pick one of
/// them by `kind`: a source is checked against its own kind's fields only, as the loader
/// reads it.
fn source_schemas(defs: &mut Defs, shared: &Shared) {
    let mut sources = Vec::new();
    let mut templates = Vec::new();
    for kind in KINDS {
        let (source, as_template) = kind_schemas(defs, kind, shared);
        sources.push(pick(kind.name, &source));
        templates.push(pick(kind.name, &as_template));
    }
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    let any = |about: &str, picks: Vec<Value>| {
        json!({
            "type": "object",
            "description": about,
            "required": ["name", "kind"],
            "properties": { "kind": { "enum": kinds } },
            "allOf": picks,
        })
    };
    defs.insert(
        "source",
        any(
            "A source: the fields of every source and of its kind.",
            sources,
        ),
    );
    defs.insert(
        "template",
        any(
            "A template: a source written once for many addresses.",
            templates,
        ),
    );
}

/// Defines a kind's source (`source_NAME`) and its template (`template_NAME`), and returns
/// their names. Each admits its kind's fields only, as the loader does.
fn kind_schemas(defs: &mut Defs, kind: &Entry, shared: &Shared) -> (String, String) {
    let reference = (kind.reference)();
    let settings = defs.take(reference.settings.to_value());
    let mut own = vec![shared.common.clone(), settings];
    for list in reference.lists {
        own.push(list_schema(defs, kind.name, list, &shared.check));
    }
    let name = kind.name;
    let source = format!("source_{name}");
    let as_template = format!("template_{name}");
    let kind_is = json!({ "properties": { "kind": { "const": name } } });
    defs.insert(
        &source,
        object(
            &format!("A `kind: {name}` source."),
            own.clone(),
            &[&kind_is],
        ),
    );
    own.push(shared.template.clone());
    defs.insert(
        &as_template,
        object(
            &format!(
                "A `kind: {name}` template: a source with `{{{{target}}}}` where the address goes."
            ),
            own,
            &[&kind_is],
        ),
    );
    (source, as_template)
}

/// A check list of a `kind` source, as a part of the source's object: the list's key, its
/// items the shared check fields and the list's own.
fn list_schema(defs: &mut Defs, kind: &str, list: ListReference, check: &Value) -> Value {
    let mut item = vec![check.clone()];
    item.extend(list.parts.into_iter().map(|p| defs.take(p.to_value())));
    let about = format!("`{}:` items of a {} source. {}", list.key, kind, list.about);
    json!({ "properties": { list.key: {
        "type": ["array", "null"],
        "description": about,
        "items": object(&about, item, &[]),
    }}})
}

/// `then` the named definition, `if` `kind` is `kind`.
fn pick(kind: &str, def: &str) -> Value {
    json!({
        "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
        "then": { "$ref": format!("#/{DEFS}/{def}") },
    })
}

/// One object admitting exactly the properties of `parts` (object schemas read from one
/// mapping), requiring what any part requires; `extra` adds properties without requiring
/// them.
fn object(description: &str, parts: Vec<Value>, extra: &[&Value]) -> Value {
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts.iter().chain(extra.iter().copied()) {
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            for (name, s) in p {
                properties.insert(name.clone(), s.clone());
            }
        }
        for r in part
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(r) {
                required.push(r.clone());
            }
        }
    }
    let mut out = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    if !description.is_empty() {
        out["description"] = Value::String(description.to_owned());
    }
    out
}

/// The named schemas of the whole file, gathered from the structs' own.
#[derive(Default)]
struct Defs {
    /// The definitions by name, references rewritten.
    defs: Map<String, Value>,
    /// Each name's definition as its struct gave it, to tell the same struct from another.
    raw: Map<String, Value>,
}

impl Defs {
    /// `schema` without its own definitions, which join the file's (renamed when another
    /// struct of the same name took the name first), its references rewritten to match.
    fn take(&mut self, mut schema: Value) -> Value {
        let own = match schema.as_object_mut() {
            Some(o) => {
                for key in ["$schema", "title"] {
                    o.remove(key);
                }
                o.remove("$defs")
            }
            None => None,
        };
        let mut renames = Vec::new();
        let own: Vec<(String, Value)> = match own {
            Some(Value::Object(m)) => m.into_iter().collect(),
            _ => Vec::new(),
        };
        for (name, body) in &own {
            // The same struct met again (through another kind) keeps its one definition;
            // another struct of the same name takes the next free `NAME2`, `NAME3`, ….
            let chosen = std::iter::once(name.clone())
                .chain((2..).map(|n| format!("{name}{n}")))
                .find(|c| self.raw.get(c).is_none_or(|seen| seen == body))
                .unwrap_or_else(|| name.clone());
            self.raw.insert(chosen.clone(), body.clone());
            renames.push((name.clone(), chosen));
        }
        let rewrite = |v: &mut Value| retarget(v, &renames);
        rewrite(&mut schema);
        for ((_, mut body), (_, chosen)) in own.into_iter().zip(&renames) {
            rewrite(&mut body);
            strip_formats(&mut body);
            self.defs.insert(chosen.clone(), body);
        }
        strip_formats(&mut schema);
        schema
    }

    fn insert(&mut self, name: &str, schema: Value) {
        self.defs.insert(name.to_owned(), schema);
    }
}

/// Points every `#/$defs/NAME` reference in `v` at `#/definitions/NEW`.
fn retarget(v: &mut Value, renames: &[(String, String)]) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    let to = renames
                        .iter()
                        .find(|(from, _)| from == name)
                        .map_or(name, |(_, to)| to.as_str());
                    *r = format!("#/{DEFS}/{to}");
                }
            }
            o.values_mut().for_each(|x| retarget(x, renames));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| retarget(x, renames)),
        _ => {}
    }
}

/// Drops `format`, which here names the loader's own parsers (`duration`, `uint`,
/// `iana-time-zone`): validators would ignore them at best, and the loader checks them.
fn strip_formats(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if matches!(o.get("format"), Some(Value::String(_))) {
                o.remove("format");
            }
            o.values_mut().for_each(strip_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_formats),
        _ => {}
    }
}

/// The Helm chart's `values.schema.json` with its `definitions` made anew: `config`, the config
/// file's own schema, and its parts. Every other key of `committed` (the chart's own part,
/// written by hand) is kept as it is.
pub fn chart_values_schema(committed: &Value) -> Value {
    let mut config = config_schema();
    let defs = match config.as_object_mut().and_then(|o| o.remove(DEFS)) {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    if let Some(o) = config.as_object_mut() {
        o.remove("$schema");
        o.remove("$id");
    }
    let mut definitions = Map::new();
    definitions.insert("config".into(), config);
    definitions.extend(defs);
    let mut schema = committed.clone();
    schema[DEFS] = Value::Object(definitions);
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_kind_is_picked() {
        let s = config_schema();
        let defs = s[DEFS].as_object().unwrap();
        let mut all = Vec::new();
        refs(&s, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("{r} is not a draft-07 definition"));
            assert!(defs.contains_key(name), "{r} points nowhere");
        }
        for kind in KINDS {
            for prefix in ["source", "template"] {
                let def = &defs[&format!("{prefix}_{}", kind.name)];
                assert_eq!(def["additionalProperties"], false);
                assert!(
                    def["properties"]["name"].is_object(),
                    "{prefix} {}",
                    kind.name
                );
            }
        }
        assert!(!s.to_string().contains("$defs"));
        assert!(!s.to_string().contains("\"format\""));
    }

    #[test]
    fn a_kinds_fields_and_lists_are_its_own() {
        let s = config_schema();
        let pg = &s[DEFS]["source_postgres"]["properties"];
        assert!(pg["url"].is_object() && pg["databases"].is_object());
        let item = &pg["checks"]["items"];
        // The fields of every check and the SQL check's own, nothing else.
        assert!(item["properties"]["metric"].is_object() && item["properties"]["sql"].is_object());
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(item["required"], json!(["sql"]));
        // A Redis source has no `sql`, a template has `allowed_targets`, a source has not.
        assert!(s[DEFS]["source_redis"]["properties"]["sql"].is_null());
        assert!(s[DEFS]["template_redis"]["properties"]["allowed_targets"].is_object());
        assert!(s[DEFS]["source_redis"]["properties"]["allowed_targets"].is_null());
        assert_eq!(
            s[DEFS]["template_redis"]["required"],
            json!(["name", "kind", "url", "allowed_targets"])
        );
    }

    #[test]
    fn a_definition_of_another_struct_under_a_taken_name_is_renamed() {
        let mut defs = Defs::default();
        let a = json!({ "properties": { "x": { "$ref": "#/$defs/T" } }, "$defs": { "T": { "type": "string" } } });
        let b = json!({ "properties": { "y": { "$ref": "#/$defs/T" } }, "$defs": { "T": { "type": "integer" } } });
        let same = a.clone();
        let a = defs.take(a);
        let b = defs.take(b);
        let again = defs.take(same);
        assert_eq!(a["properties"]["x"]["$ref"], "#/definitions/T");
        assert_eq!(b["properties"]["y"]["$ref"], "#/definitions/T2");
        assert_eq!(again["properties"]["x"]["$ref"], "#/definitions/T");
        assert_eq!(defs.defs["T"], json!({ "type": "string" }));
        assert_eq!(defs.defs["T2"], json!({ "type": "integer" }));
        assert_eq!(defs.defs.len(), 2);
    }
}
