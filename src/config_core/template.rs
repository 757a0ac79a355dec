//! Source templates (`templates:`): a source written once with `{{target}}` where the address
//! goes, made into a source for each address a scraper asks for at
//! `/probe?template=NAME&target=HOST:PORT` (see [`crate::runtime::leases`]). This module owns the
//! template's own fields, the shape a target must have, the allowed-target patterns and the
//! substitution; the rest of a template is read exactly as a source.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde_yaml::Value;

use super::{ConfigError, Dur};

/// What a template says in its text where the target's address goes.
pub const PLACEHOLDER: &str = "{{target}}";

/// The address a template is checked with when the config loads: a reserved name
/// (RFC 6761), so nothing is ever asked of it.
pub const SAMPLE_TARGET: &str = "template.invalid:1";

/// Longest target accepted: a DNS name (253) and a port.
pub const MAX_TARGET_BYTES: usize = 260;

/// The fields a template has besides those of a source (its `name` is the template's).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateFields {
    /// Regular expressions a target (`HOST:PORT`, or `HOST:PORT/NAME` to name a database)
    /// must match, whole, to be probed with this
    /// template, e.g. `'10\.1\.[0-9]+\.[0-9]+:5432'` or `'pg-[a-z0-9-]+\.db\.svc:5432'`. A
    /// scraper can ask for any address; only these get this template's credentials. Write
    /// `'.*'` to allow every address.
    pub allowed_targets: Vec<String>,
    /// How long a target stays leased after its last `/probe` request before its checks stop
    /// and its connections close. Default: four times the longest gap between its last
    /// requests (its scrape interval), at least 1m and at most 1h; 5m until a second request
    /// shows the interval.
    pub idle: Option<Dur>,
}

impl TemplateFields {
    /// Keys of a template mapping that belong to [`TemplateFields`].
    pub const KEYS: [&'static str; 2] = ["allowed_targets", "idle"];
}

/// Why a template does not take a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The target is not `HOST:PORT`.
    NotAddress(String),
    /// The target matches none of the template's `allowed_targets`.
    NotAllowed(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotAddress(m) | Refused::NotAllowed(m) => f.write_str(m),
        }
    }
}

/// A template as loaded: its fields, the compiled patterns, and the source text it makes
/// sources from (secrets already resolved, `{{target}}` still in place).
#[derive(Debug, Clone)]
pub struct Template {
    /// Path of this template in the file, e.g. `templates[0]`.
    pub path: String,
    /// The template's name: the `template=` of a `/probe` request.
    pub name: String,
    /// The kind of the sources it makes.
    pub kind: &'static str,
    /// The template's own fields.
    pub fields: TemplateFields,
    /// `allowed_targets`, each anchored at both ends.
    pub allowed: Vec<Regex>,
    /// The source mapping, without the template's own fields.
    pub body: Value,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.fields == other.fields && self.body == other.body
    }
}

impl Template {
    /// The `source` label of the targets it makes: `TEMPLATE/TARGET`. A configured source's
    /// name has no `/`, so a leased target never takes a configured source's series (see
    /// [`is_leased`]).
    pub fn source_name(&self, target: &str) -> String {
        format!("{}/{target}", self.name)
    }

    /// Why `target` may not be probed with this template, if it may not.
    pub fn refuses(&self, target: &str) -> Option<Refused> {
        if let Err(e) = check_address(target) {
            return Some(Refused::NotAddress(format!(
                "target {:?} is not an address: {e} (templates take HOST:PORT or \
                 HOST:PORT/NAME, e.g. 10.0.0.5:5432 or db-3.internal:5432/billing)",
                shown(target)
            )));
        }
        if !self.allowed.iter().any(|r| r.is_match(target)) {
            return Some(Refused::NotAllowed(format!(
                "target {target:?} is outside template {:?}'s allowed_targets ({}): add a \
                 pattern there to probe it",
                self.name,
                self.fields.allowed_targets.join(", ")
            )));
        }
        None
    }

    /// The idle time of a lease whose requests came `gaps` apart (see
    /// [`TemplateFields::idle`]).
    pub fn idle_after(&self, longest_gap: Option<Duration>) -> Duration {
        if let Some(idle) = self.fields.idle {
            return idle.0;
        }
        match longest_gap {
            None => Duration::from_secs(300),
            Some(gap) => (gap * 4).clamp(Duration::from_secs(60), Duration::from_secs(3600)),
        }
    }

    /// The source mapping for `target`: `{{target}}` replaced in every string, the name set to
    /// [`Template::source_name`].
    pub fn body_for(&self, target: &str) -> Value {
        let mut body = self.body.clone();
        put_target(&mut body, target);
        if let Value::Mapping(map) = &mut body {
            map.insert("name".into(), self.source_name(target).into());
        }
        body
    }
}

/// Whether `source` is a leased target's name ([`Template::source_name`]) rather than a
/// configured source's, which may not hold a `/`.
pub fn is_leased(source: &str) -> bool {
    source.contains('/')
}

/// Reads a template's own fields out of `map` and compiles its patterns, recording what is
/// wrong; also checks that the source text says `{{target}}` somewhere.
pub fn take_fields(
    map: &mut serde_yaml::Mapping,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(TemplateFields, Vec<Regex>)> {
    let mut own = serde_yaml::Mapping::new();
    for key in TemplateFields::KEYS {
        if let Some(v) = map.remove(key) {
            own.insert(key.into(), v);
        }
    }
    let mut text = false;
    mentions(&Value::Mapping(map.clone()), &mut text);
    if !text {
        errors.push(ConfigError::new(
            path,
            format!(
                "a template must say {PLACEHOLDER} where the target's address goes (e.g. \
                 `url: postgres://pulse@{PLACEHOLDER}/app`), or every target would probe the \
                 same server"
            ),
        ));
    }
    let fields: TemplateFields = super::parse::parse_at(Value::Mapping(own), path, errors)?;
    if fields.allowed_targets.is_empty() {
        errors.push(ConfigError::new(
            format!("{path}.allowed_targets"),
            "list at least one pattern of the addresses this template may probe ('.*' for any)",
        ));
    }
    let allowed = super::validate::whole_match_patterns(
        &fields.allowed_targets,
        &format!("{path}.allowed_targets"),
        errors,
    );
    if let Some(idle) = fields.idle {
        if idle.0 < Duration::from_secs(1) || idle.0 > Duration::from_secs(86_400) {
            errors.push(ConfigError::new(
                format!("{path}.idle"),
                "must be between 1s and 24h",
            ));
        }
    }
    Some((fields, allowed))
}

fn mentions(value: &Value, found: &mut bool) {
    match value {
        Value::String(s) => *found |= s.contains(PLACEHOLDER),
        Value::Sequence(items) => items.iter().for_each(|v| mentions(v, found)),
        Value::Mapping(map) => map.values().for_each(|v| mentions(v, found)),
        Value::Tagged(t) => mentions(&t.value, found),
        _ => {}
    }
}

/// Replaces `{{target}}` with `target` in every string of `value`.
pub fn put_target(value: &mut Value, target: &str) {
    match value {
        Value::String(s) if s.contains(PLACEHOLDER) => *s = s.replace(PLACEHOLDER, target),
        Value::Sequence(items) => items.iter_mut().for_each(|v| put_target(v, target)),
        Value::Mapping(map) => map.values_mut().for_each(|v| put_target(v, target)),
        Value::Tagged(t) => put_target(&mut t.value, target),
        _ => {}
    }
}

/// A target cut short and stripped of control characters, for a message.
fn shown(target: &str) -> String {
    target
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Checks that `target` is `HOST:PORT` or `HOST:PORT/NAME`: a DNS name, an IPv4 address or a
/// bracketed IPv6 address, a port from 1 to 65535, and optionally one path segment of up to
/// 63 letters, digits, `_`, `.` or `-` (a database, a Redis db index, a vhost: what the
/// template's URL takes as its path). Nothing else may reach a template's text, so a target
/// cannot add a user, a query or a second path segment to the URL it is put in.
pub fn check_address(target: &str) -> Result<(), String> {
    if target.len() > MAX_TARGET_BYTES {
        return Err(format!("longer than {MAX_TARGET_BYTES} bytes"));
    }
    let (address, name) = match target.split_once('/') {
        // An IPv6 address has no `/`, so the first one ends the address.
        Some((address, name)) => (address, Some(name)),
        None => (target, None),
    };
    if let Some(name) = name {
        let fits = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !name.bytes().all(|b| b == b'.');
        if !fits {
            return Err(format!(
                "{:?} after the address is not a name of 1 to 63 letters, digits, `_`, `.` or `-`",
                shown(name)
            ));
        }
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("no :PORT".into());
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => {
            return Err(format!(
                "port {:?} is not a number from 1 to 65535",
                shown(port)
            ))
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("{:?} is not an IPv6 address", shown(v6)));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "host {:?} is not a DNS name or an IP address",
            shown(host)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_host_and_port_and_nothing_more() {
        for ok in [
            "10.0.0.5:5432",
            "db-3.internal:5432",
            "localhost:6379",
            "[::1]:6379",
            "[fd00::5]:27017",
            "10.0.0.5:5432/billing",
            "db:6379/3",
            "[::1]:5432/app_db-2.x",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("10.0.0.5", "no :PORT"),
            ("db:0", "port"),
            ("db:65536", "port"),
            ("db:+5", "port"),
            ("user@db:5432", "host"),
            ("db:5432/app?sslmode=disable", "after the address"),
            ("db:5432/a/b", "after the address"),
            ("db:5432/..", "after the address"),
            ("db:5432/", "after the address"),
            ("db/other:5432", "after the address"),
            ("-db:5432", "host"),
            (":5432", "host"),
            ("db..x:5432", "host"),
            ("[zz]:1", "IPv6"),
            ("db\n:1", "host"),
        ] {
            let e = check_address(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(check_address(&format!("{}:1", "a".repeat(300)))
            .unwrap_err()
            .contains("longer"));
    }

    /// The template `fields` (a flow mapping's inside) describe, named `fleet`, or the
    /// errors of its own fields.
    fn template(fields: &str) -> Result<Template, String> {
        let mut errors = Vec::new();
        let Value::Mapping(mut map) = serde_yaml::from_str(&format!("{{ {fields} }}")).unwrap()
        else {
            panic!("{fields}")
        };
        let taken = take_fields(&mut map, "templates[0]", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        match taken {
            Some((fields, allowed)) if errors.is_empty() => Ok(Template {
                path: "templates[0]".into(),
                name: "fleet".into(),
                kind: "redis",
                fields,
                allowed,
                body: Value::Mapping(map),
            }),
            _ => Err(text.join("\n")),
        }
    }

    #[test]
    fn allowed_targets_match_whole_addresses() {
        let t = template(
            "kind: redis, url: 'redis://{{target}}', allowed_targets: ['10\\.1\\..*:6379', 'cache-[0-9]+:6379']",
        )
        .unwrap();
        assert_eq!(t.refuses("10.1.2.3:6379"), None);
        assert_eq!(t.refuses("cache-12:6379"), None);
        // Anchored: a pattern is not a prefix or a substring.
        let outside = t.refuses("cache-12:63790").unwrap();
        assert!(matches!(outside, Refused::NotAllowed(_)));
        let outside = outside.to_string();
        assert!(
            outside.contains("outside template \"fleet\"'s allowed_targets"),
            "{outside}"
        );
        assert!(t.refuses("x10.1.2.3:6379").is_some());
        let not_address = t.refuses("10.1.2.3:6379@evil").unwrap();
        assert!(matches!(not_address, Refused::NotAddress(_)));
        let not_address = not_address.to_string();
        assert!(not_address.contains("not an address"), "{not_address}");
    }

    #[test]
    fn the_target_goes_wherever_the_template_says_and_the_name_is_template_slash_target() {
        let t = template(
            "kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'], keys: [{ key: 'q:{{target}}' }]",
        )
        .unwrap();
        let body = t.body_for("10.0.0.5:6379/2");
        let expected: Value = serde_yaml::from_str(
            "{ kind: redis, url: 'redis://10.0.0.5:6379/2', keys: [{ key: 'q:10.0.0.5:6379/2' }], name: fleet/10.0.0.5:6379/2 }",
        )
        .unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn a_template_must_name_the_target_and_list_what_it_allows() {
        let text =
            template("kind: redis, url: 'redis://db:6379', allowed_targets: []").unwrap_err();
        assert!(
            text.contains("templates[0]: a template must say {{target}}"),
            "{text}"
        );
        assert!(
            text.contains("templates[0].allowed_targets: list at least one"),
            "{text}"
        );
        let text = template(
            "kind: redis, url: 'redis://{{target}}', allowed_targets: ['(unclosed'], idle: 0s",
        )
        .unwrap_err();
        assert!(
            text.contains("allowed_targets[0]: not a regular expression"),
            "{text}"
        );
        assert!(
            text.contains("templates[0].idle: must be between"),
            "{text}"
        );
    }

    #[test]
    fn the_idle_time_follows_the_scrape_interval_unless_set() {
        let t =
            template("kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*']").unwrap();
        assert_eq!(t.idle_after(None), Duration::from_secs(300));
        assert_eq!(
            t.idle_after(Some(Duration::from_secs(30))),
            Duration::from_secs(120)
        );
        assert_eq!(
            t.idle_after(Some(Duration::from_secs(1))),
            Duration::from_secs(60)
        );
        assert_eq!(
            t.idle_after(Some(Duration::from_secs(7200))),
            Duration::from_secs(3600)
        );
        let t =
            template("kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'], idle: 3s")
                .unwrap();
        assert_eq!(
            t.idle_after(Some(Duration::from_secs(30))),
            Duration::from_secs(3)
        );
    }
}
