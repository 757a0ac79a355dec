//! The config file as a whole: YAML, secret references, `global:`, sources of every kind
//! (through [`crate::sources::registry`]) and the rules across them, with every error found
//! reported together.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::Value;

use crate::config_core::collisions::{collisions, Declared};
use crate::config_core::names::is_object_name;
use crate::config_core::parse::{key_text, parse_at, split_mapping};
use crate::config_core::positions::Positions;
use crate::config_core::shape::Series;
use crate::config_core::template::{take_fields, Template, SAMPLE_TARGET};
use crate::config_core::validate::{
    alert_fits, drop_fits, in_range, label_name, metric_name, plan_timing, timing, MAX_BYTES,
    MAX_SERIES, MIN_BYTES,
};
use crate::config_core::{
    interpolate, AnyCheck, CheckPlan, ConfigError, ConfigErrors, Global, SourceCommon, HEALTH_CHECK,
};
use crate::sources::heartbeat;
use crate::sources::registry::{parse_kind, ParsedSource};

/// Longest `help` or `description` of a check.
const MAX_TEXT_BYTES: usize = 4096;

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Defaults for every source and check.
    pub global: Global,
    /// The systems to watch, in file order.
    pub sources: Vec<SourceConfig>,
    /// Sources written once for many addresses, made for each target a scraper leases (see
    /// [`crate::config_core::template`]).
    pub templates: Vec<TemplateConfig>,
    /// Jobs that report in, the ping keys that make them, and their store (`jobs:`,
    /// `job_keys:`, `job_store:`).
    pub jobs: crate::jobs::config::JobsConfig,
}

/// One template: its text, and the source it makes for [`SAMPLE_TARGET`].
#[derive(Debug, Clone)]
pub struct TemplateConfig {
    /// The template as written.
    pub template: Template,
    /// The source it makes for [`SAMPLE_TARGET`], named as the template: what the config was
    /// validated with, and what the generators read its checks from.
    pub sample: SourceConfig,
}

/// One source: the fields every kind shares, and the kind's settings and checks.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Path of this source in the file, e.g. `sources[2]`.
    pub path: String,
    /// Name, kind and timing shared by every kind.
    pub common: SourceCommon,
    /// The kind's settings and checks.
    pub kind: Arc<dyn ParsedSource>,
    /// Its health probe's and checks' timing and caps, made once when the config is read.
    pub plans: Arc<Plans>,
}

/// A source's plans, made once per load from the check's, source's, kind's and global
/// settings: what the scheduler runs, the validator judges and the generators write.
#[derive(Debug, Clone, PartialEq)]
pub struct Plans {
    /// The health probe's.
    pub health: Arc<CheckPlan>,
    /// Each check's, in file order (as [`SourceConfig::checks`]).
    pub checks: Vec<Arc<CheckPlan>>,
}

impl Plans {
    /// The plans of a source with `common` fields and `kind`, under `global`.
    fn of(common: &SourceCommon, kind: &dyn ParsedSource, global: &Global) -> Plans {
        Plans {
            health: Arc::new(common.health_plan(kind.name(), global)),
            checks: kind
                .checks()
                .into_iter()
                .map(|check| {
                    Arc::new(common.check_plan(kind.name(), kind.default_interval(), global, check))
                })
                .collect(),
        }
    }
}

impl SourceConfig {
    /// True for a template's sample (`templates[…]`): it stands for every target the template
    /// leases, whose `source` labels are `NAME/TARGET`.
    pub fn is_template(&self) -> bool {
        self.path.starts_with("templates[")
    }

    /// The configured sources, then the templates' samples: what the generators cover.
    pub fn all(config: &Config) -> impl Iterator<Item = &SourceConfig> {
        config
            .sources
            .iter()
            .chain(config.templates.iter().map(|t| &t.sample))
    }

    /// The checks, in file order.
    pub fn checks(&self) -> Vec<&dyn AnyCheck> {
        self.kind.checks()
    }

    /// The checks, in file order, each with its plan.
    pub fn planned_checks(&self) -> impl Iterator<Item = (&dyn AnyCheck, &Arc<CheckPlan>)> {
        self.checks().into_iter().zip(&self.plans.checks)
    }
}

/// Largest config file read: far above any real config (the 300-source capacity config is
/// about 60 KiB), and small enough that a path to a device or a runaway generator cannot
/// take the process's memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads, parses and validates the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_with(path, References::Resolve)
}

/// The text of the config file at `path`, refused when it is not a regular file (a pipe,
/// such as `<(envsubst …)`, reads empty at the next reload; a device never ends), larger
/// than [`MAX_CONFIG_BYTES`] or not UTF-8. The size is enforced while reading, so a file that
/// grows after the check is cut off, not read whole.
pub fn read_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "config file {shown} is not a regular file (a pipe, socket or device): it is read \
             again at every reload, so write the config to a file (values from the \
             environment go in as ${{env:NAME}})"
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "config file {shown} is over {} MiB: is it the right file?",
            MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "config file {shown} is not UTF-8 text (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads and parses the config file at `path`, its `${env:…}` and `${file:…}` references
/// treated as `references` says.
pub fn load_file_with(path: &Path, references: References) -> Result<Config, ConfigErrors> {
    let text = read_file(path).map_err(|e| ConfigErrors(vec![ConfigError::new("", e)]))?;
    load(&text, references)
}

/// Parses and validates config text.
pub fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    load(text, References::Resolve)
}

/// Parses config text without reading a variable or file it references: each reference is
/// replaced by a placeholder, and what validation says of a value that held one (a URL that
/// is all `${env:DATABASE_URL}`) is not an error. Everything else is validated as ever. The
/// config serves to generate rules, dashboards and scrape jobs, never to connect.
pub fn load_str_unresolved(text: &str) -> Result<Config, ConfigErrors> {
    load(text, References::Unresolved)
}

/// Whether a load reads the secrets its `${env:…}` and `${file:…}` references name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum References {
    /// Every reference must resolve: for whatever connects (serving, `check`, `probe`).
    Resolve,
    /// None is read (see [`load_str_unresolved`]): for the commands that write no secret
    /// (`rules`, `dashboards`, `scrape-config`), which must run where the secrets are not.
    Unresolved,
}

fn load(text: &str, references: References) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut root = parse_yaml(text)?;
    let unresolved = resolve_references(&mut root, references, &mut errors);
    let config = parse_config(root, &mut errors)?;
    validate(&config, &mut errors);
    tidy_errors(&mut errors, &unresolved);
    if errors.is_empty() {
        return Ok(config);
    }
    // Only a failing file pays for the second parse that finds where its fields are.
    let positions = Positions::of(text);
    for e in &mut errors {
        e.at = positions.find(&e.path);
    }
    Err(ConfigErrors(errors))
}

/// The file's YAML, refused whole when it is nested too deep, unreadable or empty: nothing
/// of such a file can be judged field by field.
fn parse_yaml(text: &str) -> Result<Value, ConfigErrors> {
    crate::config_core::parse::nesting_guard(text).map_err(|e| ConfigErrors(vec![e]))?;
    match serde_yaml::from_str(text) {
        // An empty file is more often a rewrite caught half-way, or a generator that failed,
        // than a wish to watch nothing: loading it would drop every source and its alerts.
        Ok(Value::Null) => Err(ConfigErrors(vec![ConfigError::new(
            "",
            "the config file is empty (or only comments): write `sources: []` to run \
             without sources",
        )])),
        Ok(v) => Ok(v),
        Err(e) => Err(ConfigErrors(vec![ConfigError::new(
            "",
            crate::config_core::yaml_error::explain(text, &e),
        )])),
    }
}

/// Replaces the `${env:…}` and `${file:…}` references in `root` as `references` says, and
/// returns the paths of the values left as placeholders, whose errors are no errors.
fn resolve_references(
    root: &mut Value,
    references: References,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let mut unresolved = Vec::new();
    match references {
        References::Resolve => interpolate(root, "", errors),
        References::Unresolved => {
            crate::config_core::interpolate::leave_unresolved(root, "", errors, &mut unresolved)
        }
    }
    unresolved
}

/// The sections of the file, each parsed as far as it can be, its errors recorded; refused
/// whole only when the file is no mapping.
fn parse_config(root: Value, errors: &mut Vec<ConfigError>) -> Result<Config, ConfigErrors> {
    let Value::Mapping(mut top) = root else {
        return Err(ConfigErrors(vec![ConfigError::new(
            "",
            "the file must be a mapping with `global:` and `sources:`",
        )]));
    };
    let global = match top.remove("global") {
        Some(v) => parse_at::<Global>(v, "global", errors).unwrap_or_default(),
        None => Global::default(),
    };
    let raw_sources = top.remove("sources");
    let raw_templates = top.remove("templates");
    let jobs = crate::jobs::config::parse(
        top.remove("jobs"),
        top.remove("job_keys"),
        top.remove("job_store"),
        global.timezone.as_ref(),
        errors,
    );
    for (key, _) in top {
        errors.push(ConfigError::new(
            "",
            format!(
                "unknown field `{}`: the top level takes `global`, `sources`, `templates`, `jobs`, `job_keys` and `job_store`",
                key_text(&key)
            ),
        ));
    }
    let sources = parse_sources(raw_sources, &global, errors);
    let templates = parse_templates(raw_templates, &global, errors);
    Ok(Config {
        global,
        sources,
        templates,
        jobs,
    })
}

/// The sources that parse; the others are recorded in `errors` and left out, so the rest of
/// the file is still judged.
fn parse_sources(
    raw: Option<Value>,
    global: &Global,
    errors: &mut Vec<ConfigError>,
) -> Vec<SourceConfig> {
    let mut sources = Vec::new();
    match raw {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(s) = parse_source(item, &format!("sources[{i}]"), global, errors) {
                    sources.push(s);
                }
            }
        }
        Some(_) => errors.push(ConfigError::new("sources", "must be a list of sources")),
    }
    sources
}

/// The errors as reported: each with the name meant where it names a near miss, each once,
/// and none about a placeholder left for an `unresolved` reference.
fn tidy_errors(errors: &mut Vec<ConfigError>, unresolved: &[String]) {
    for e in errors.iter_mut() {
        e.message = crate::config_core::suggest::with_suggestion(&e.message);
    }
    // Built-in checks share their source's path, so one problem can be found once per check.
    let mut seen = HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    // A placeholder is no value to judge.
    errors.retain(|e| {
        !unresolved.iter().any(|u| {
            e.path == *u
                || e.path
                    .strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    });
}

/// The templates, each with the source it makes for [`SAMPLE_TARGET`] (named as the
/// template), which is validated like a configured source.
fn parse_templates(
    raw: Option<Value>,
    global: &Global,
    errors: &mut Vec<ConfigError>,
) -> Vec<TemplateConfig> {
    let items = match raw {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            errors.push(ConfigError::new("templates", "must be a list of templates"));
            return Vec::new();
        }
    };
    let mut parsed = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("templates[{i}]");
        let Value::Mapping(mut map) = item else {
            errors.push(ConfigError::new(path, "must be a mapping of fields"));
            continue;
        };
        let Some((fields, allowed)) = take_fields(&mut map, &path, errors) else {
            continue;
        };
        let body = Value::Mapping(map);
        let mut with_sample = body.clone();
        crate::config_core::template::put_target(&mut with_sample, SAMPLE_TARGET);
        if let Some(sample) = parse_source(with_sample, &path, global, errors) {
            let template = Template {
                path: path.clone(),
                name: sample.common.name.clone(),
                kind: sample.kind.name(),
                fields,
                allowed,
                body,
            };
            parsed.push(TemplateConfig { template, sample });
        }
    }
    parsed
}

/// The source `template` makes for `target` (an address it allows), with the kind's own
/// rules checked: the template was checked with [`SAMPLE_TARGET`], but a kind may read the
/// address.
pub fn template_source(
    template: &Template,
    target: &str,
    global: &Global,
) -> Result<SourceConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let source = parse_source(
        template.body_for(target),
        &template.path,
        global,
        &mut errors,
    );
    if let Some(s) = &source {
        s.kind.validate(&s.path, &mut errors);
    }
    match source {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(ConfigErrors(errors)),
    }
}

fn parse_source(
    value: Value,
    path: &str,
    global: &Global,
    errors: &mut Vec<ConfigError>,
) -> Option<SourceConfig> {
    let (common, rest) = split_mapping(value, &SourceCommon::KEYS, path, errors)?;
    let common: SourceCommon = parse_at(common, path, errors)?;
    let kind = parse_kind(&common.kind, rest, path, errors)?;
    let plans = Arc::new(Plans::of(&common, kind.as_ref(), global));
    Some(SourceConfig {
        path: path.to_owned(),
        common,
        kind,
        plans,
    })
}

/// Records every rule across sources and checks that `config` breaks: names, uniqueness,
/// timing; then each kind's own rules.
fn validate(config: &Config, errors: &mut Vec<ConfigError>) {
    validate_global(&config.global, errors);
    let mut source_names = HashSet::new();
    // Series that share an exposition must not collide: the configured sources' (`/metrics`),
    // and each template's own (a leased target is served alone, at its `/probe`).
    let mut configured = Vec::new();
    // A template is checked as the source it makes, under the template's name: names are
    // unique across sources and templates, so a `/probe` never wonders which is meant.
    for source in SourceConfig::all(config) {
        let declared = validate_source(source, &mut source_names, errors);
        match source.is_template() {
            true => collisions(&declared, errors),
            false => configured.extend(declared),
        }
    }
    collisions(&configured, errors);
}

/// `global:`'s timing and caps, which every source and check inherits unless it sets its own.
fn validate_global(g: &Global, errors: &mut Vec<ConfigError>) {
    timing("global", g.interval.0, g.timeout.0, "timeout", errors);
    timing(
        "global",
        g.health_interval.0,
        g.health_timeout.0,
        "health_timeout",
        errors,
    );
    in_range(
        "global.max_series",
        g.max_series as u64,
        1,
        MAX_SERIES,
        errors,
    );
    if let Some(n) = g.max_bytes {
        in_range("global.max_bytes", n as u64, MIN_BYTES, MAX_BYTES, errors);
    }
    in_range(
        "global.max_leased_targets",
        g.max_leased_targets as u64,
        1,
        100_000,
        errors,
    );
}

/// One source's rules: its name (unique among `names`), its `/sd` labels, its health
/// timing, its checks and its kind's own; returns the series its checks declare, for the
/// collisions of the exposition they are served in.
fn validate_source<'a>(
    source: &'a SourceConfig,
    names: &mut HashSet<&'a str>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Declared> {
    validate_source_name(source, names, errors);
    validate_sd_labels(source, errors);
    if let Some(objective) = source.common.objective.on() {
        objective.validate(&format!("{}.objective", source.path), errors);
    }
    validate_latency_objectives(source, errors);
    plan_timing(
        &source.path,
        &source.plans.health,
        "health_timeout",
        "health_interval",
        errors,
    );
    let declared = validate_checks(source, errors);
    source.kind.validate(&source.path, errors);
    declared
}

/// Each latency objective: its own fields, a name of its own, and the kind's histogram (a
/// kind that has one, its check on, labels it has, a bound that is one of its buckets').
fn validate_latency_objectives(source: &SourceConfig, errors: &mut Vec<ConfigError>) {
    let objectives = &source.common.latency_objectives;
    let mut seen = HashSet::new();
    for (i, o) in objectives.iter().enumerate() {
        let path = format!("{}.latency_objectives[{i}]", source.path);
        o.validate(&path, errors);
        if !seen.insert(o.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate objective name {:?}: each latency objective of a source needs its own", o.name),
            ));
        }
        let Some(h) = source.kind.latency_histogram() else {
            errors.push(ConfigError::new(
                path,
                format!("a {} source publishes no latency histogram: latency objectives are for Redis commands and MongoDB collections", source.kind.name()),
            ));
            continue;
        };
        validate_against_histogram(source, o, &h, &path, errors);
    }
}

/// A latency objective against the kind's histogram: the check that publishes it is on, the
/// labels it picks are the histogram's, and `under` is one of its bucket bounds.
fn validate_against_histogram(
    source: &SourceConfig,
    o: &crate::config_core::objective::LatencyObjective,
    h: &crate::sources::LatencyHistogram,
    path: &str,
    errors: &mut Vec<ConfigError>,
) {
    if !source.planned_checks().any(|(c, _)| c.name() == h.check) {
        errors.push(ConfigError::new(
            path,
            format!("the `{}` statistics of this source are off, so {} is not published: turn them on or remove the objective", h.check, h.metric.name),
        ));
    }
    let usable = h.operation_labels();
    for label in o.series.keys() {
        if !usable.contains(&label.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.series.{label}"),
                format!(
                    "{} has no label {label:?} to pick by: it has {}",
                    h.metric.name,
                    usable.join(", ")
                ),
            ));
        }
    }
    let bounds = (h.bounds)();
    let under = o.under.0.as_secs_f64();
    if !bounds.iter().any(|b| (b - under).abs() <= b * 1e-9) {
        let below = bounds.iter().rev().find(|b| **b < under);
        let above = bounds.iter().find(|b| **b > under);
        let shown = |b: Option<&f64>| b.map(|b| format!("{}us", (b * 1e6).round()));
        let nearest: Vec<String> = [shown(below), shown(above)].into_iter().flatten().collect();
        errors.push(ConfigError::new(
            format!("{path}.under"),
            format!("{} is not a bucket bound of {}, so no bucket counts what is under it: the nearest are {}", crate::config_core::dur_text(o.under.0), h.metric.name, nearest.join(" and ")),
        ));
    }
}

/// The source's name: a valid object name, and its own among `names`, since a source is
/// asked for by name.
fn validate_source_name<'a>(
    source: &'a SourceConfig,
    names: &mut HashSet<&'a str>,
    errors: &mut Vec<ConfigError>,
) {
    let name = &source.common.name;
    if !is_object_name(name) {
        errors.push(ConfigError::new(
            format!("{}.name", source.path),
            format!("{name:?} is not a valid source name: use 1-64 characters of letters, digits, `_`, `.`, `:` or `-`"),
        ));
    }
    if !names.insert(name.as_str()) {
        errors.push(ConfigError::new(
            format!("{}.name", source.path),
            format!("duplicate source name {name:?}: every source needs its own name"),
        ));
    }
}

/// `tier` and `platform`, which label the source's `/sd` target: an empty or long one makes
/// a useless or unwieldy label.
fn validate_sd_labels(source: &SourceConfig, errors: &mut Vec<ConfigError>) {
    for (field, value) in [
        ("tier", &source.common.tier),
        ("platform", &source.common.platform),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.chars().count() > 64)
        {
            errors.push(ConfigError::new(
                format!("{}.{field}", source.path),
                "a label of the source's /sd target: 1 to 64 characters",
            ));
        }
    }
}

/// Each check of the source, and the series they declare with their constant labels: the
/// collisions are judged across checks, once all are known.
fn validate_checks(source: &SourceConfig, errors: &mut Vec<ConfigError>) -> Vec<Declared> {
    let mut check_names = HashSet::new();
    let mut declared = Vec::new();
    for ((check, plan), series) in source.planned_checks().zip(source.kind.series()) {
        validate_check(source, check, plan, &series, &mut check_names, errors);
        let consts = plan.const_labels.clone();
        declared.extend(series.into_iter().map(|series| {
            let mut consts = consts.clone();
            // A built-in metric (the reserved `pulse_` namespace: a key check's default
            // `pulse_redis_key_length`, say) carries its source's name as `source`, so two
            // sources' series of it never collide.
            if series.metric.starts_with("pulse_") {
                consts.push(("source".to_owned(), source.common.name.clone()));
            }
            Declared {
                path: check.path().to_owned(),
                series,
                consts,
            }
        }));
    }
    declared
}

fn validate_check(
    source: &SourceConfig,
    check: &dyn AnyCheck,
    plan: &CheckPlan,
    series: &[Series],
    names: &mut HashSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    validate_plan(check, plan, errors);
    validate_name(source, check, names, errors);
    validate_outputs(check, series, errors);
    validate_published(check.path(), check.common(), errors);
}

/// Timing and caps: timeout below interval, stale_after at least the interval, the caps in
/// range.
fn validate_plan(check: &dyn AnyCheck, plan: &CheckPlan, errors: &mut Vec<ConfigError>) {
    let (path, common) = (check.path(), check.common());
    plan_timing(path, plan, "timeout", "interval", errors);
    if plan.stale_after < plan.interval {
        errors.push(ConfigError::new(
            format!("{path}.stale_after"),
            "must be at least the check's interval, or samples would vanish between two runs",
        ));
    }
    // Built-in checks bounded by their own caps plan usize::MAX; only a configured value counts.
    if let Some(n) = common.max_series {
        in_range(
            &format!("{path}.max_series"),
            n as u64,
            1,
            MAX_SERIES,
            errors,
        );
    }
    if let Some(n) = common.max_bytes {
        in_range(
            &format!("{path}.max_bytes"),
            n as u64,
            MIN_BYTES,
            MAX_BYTES,
            errors,
        );
    }
}

/// The check's name: printable, not `health`, unique in its source.
fn validate_name(
    source: &SourceConfig,
    check: &dyn AnyCheck,
    names: &mut HashSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    let (path, common) = (check.path(), check.common());
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
}

/// What the check publishes and how it is shown and alerted on: a metric name where it
/// names one; a heartbeat check (which names none) has rules of its own.
fn validate_outputs(check: &dyn AnyCheck, series: &[Series], errors: &mut Vec<ConfigError>) {
    let (path, common) = (check.path(), check.common());
    if let Some(objective) = common.objective.as_ref().and_then(|o| o.on()) {
        objective.validate(&format!("{path}.objective"), errors);
    }
    if !check.names_metric() {
        heartbeat::refuse_metric_fields(path, common, errors);
        return;
    }
    if let Some(metric) = &common.metric {
        metric_name(&format!("{path}.metric"), metric, errors);
    }
    if let Some(alert) = &common.alert {
        alert_fits(&format!("{path}.alert"), alert, series, errors);
    }
    if let Some(drop) = &common.drop {
        drop_fits(&format!("{path}.drop"), drop, series, errors);
    }
}

/// Text served as it is (labels, HELP, names in /metrics, descriptions in the generated
/// views): bounded in size, and never a secret.
fn validate_published(
    path: &str,
    common: &crate::config_core::CheckCommon,
    errors: &mut Vec<ConfigError>,
) {
    for label in common.const_labels.keys() {
        label_name(&format!("{path}.const_labels"), label, errors);
    }
    // Labels, HELP text and names are published as they are in /metrics, descriptions in
    // /dashboards.json and /rules.yml.
    let published = common
        .const_labels
        .iter()
        .map(|(k, v)| (format!("const_labels.{k}"), v.as_str()))
        .chain(common.help.as_deref().map(|h| ("help".to_owned(), h)))
        .chain(
            common
                .description
                .as_deref()
                .map(|d| ("description".to_owned(), d)),
        )
        .chain(common.name.as_deref().map(|n| ("name".to_owned(), n)));
    for (field, value) in published {
        // HELP text and labels are served in every scrape: a long one costs every scrape.
        let max = match field.starts_with("const_labels.") {
            true => crate::series::sample::MAX_LABEL_VALUE_BYTES,
            false => MAX_TEXT_BYTES,
        };
        if value.len() > max {
            errors.push(ConfigError::new(
                format!("{path}.{field}"),
                format!(
                    "is {} bytes: at most {max} (it is served in every scrape); shorten it",
                    value.len()
                ),
            ));
        }
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

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn a_template_is_checked_as_the_source_it_makes() {
        let config = load_str(
            "templates:\n  - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }\n",
        )
        .unwrap();
        let t = &config.templates[0];
        assert_eq!(
            (t.template.name.as_str(), t.template.kind),
            ("fleet", "redis")
        );
        // The sample the config was checked with is named as the template.
        assert_eq!(t.sample.common.name, "fleet");
        assert_eq!(
            t.sample.kind.display_endpoint(),
            "redis://template.invalid:1"
        );
        let made = template_source(&t.template, "10.0.0.5:6379", &config.global).unwrap();
        assert_eq!(made.common.name, "fleet/10.0.0.5:6379");
        assert_eq!(made.kind.display_endpoint(), "redis://10.0.0.5:6379");
        // Its plans are made with it, under its own name: what its checks run and publish as.
        assert_eq!(made.plans.health.source, "fleet/10.0.0.5:6379");
        assert_eq!(made.plans.checks.len(), made.checks().len());
        assert!(made
            .plans
            .checks
            .iter()
            .all(|p| p.source == "fleet/10.0.0.5:6379"));
    }

    #[test]
    fn a_template_may_publish_what_a_source_does_since_its_targets_are_served_alone() {
        let check = "{ metric: app_users, sql: SELECT 1 AS value }";
        let both = format!(
            "sources:\n  - {{ name: db, kind: postgres, url: 'postgres://h/db', checks: [{check}] }}\ntemplates:\n  - {{ name: fleet, kind: postgres, url: 'postgres://{{{{target}}}}', allowed_targets: ['.*'], checks: [{check}] }}\n"
        );
        assert!(load_str(&both).is_ok(), "{}", errors_of(&both));
        // Within one template, the same series twice is refused as in a source.
        assert_reports(
            &format!("templates:\n  - {{ name: fleet, kind: postgres, url: 'postgres://{{{{target}}}}', allowed_targets: ['.*'], checks: [{check}, {{ name: b, metric: app_users, sql: SELECT 2 AS value }}] }}\n"),
            &["templates[0].checks[1]: templates[0].checks[0] also publishes `app_users`"],
        );
    }

    /// Commands that write no secret read none: every reference is a placeholder, and what
    /// validation says of a value that held one is no error; a malformed reference and every
    /// other mistake still are, and the resolving load still needs every secret.
    #[test]
    fn an_unresolved_load_reads_no_secret_and_judges_the_rest() {
        let text = "sources:\n  - { name: db, kind: postgres, url: '${env:PULSE_UNIT_NOT_SET}' }\n  - { name: mq, kind: rabbitmq, management_url: '${env:PULSE_UNIT_NOT_SET_URL}', username: u, password: '${file:/nonexistent/pw}' }\n";
        let c = load_str_unresolved(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sources.len(), 2);
        assert!(load_str(text).is_err());
        let malformed =
            "sources:\n  - { name: db, kind: postgres, url: '${env:PULSE_UNIT_NOT_SET' }\n";
        assert!(load_str_unresolved(malformed).is_err());
        let wrong = text.replace("name: db", "name: ''");
        assert!(
            load_str_unresolved(&wrong).is_err(),
            "an empty name is no placeholder's fault"
        );
    }

    /// Two shards watching the same queue key with the default metric: their
    /// `pulse_redis_key_length` series differ by `source`, so they load; the same key twice
    /// in one source, or under a metric of the user's (no `source` label), is still refused.
    #[test]
    fn only_series_that_really_collide_are_refused_the_source_label_included() {
        let shards = "sources:\n  - { name: shard-a, kind: redis, url: 'redis://a:6379', keys: [{ key: jobs }] }\n  - { name: shard-b, kind: redis, url: 'redis://b:6379', keys: [{ key: jobs }] }\n";
        assert!(load_str(shards).is_ok(), "{}", errors_of(shards));
        assert_reports(
            "sources:\n  - { name: shard-a, kind: redis, url: 'redis://a:6379', keys: [{ key: jobs }, { key: jobs, name: again }] }\n",
            &["sources[0].keys[1]: sources[0].keys[0] also publishes `pulse_redis_key_length`"],
        );
        assert_reports(
            "sources:\n  - { name: shard-a, kind: redis, url: 'redis://a:6379', keys: [{ key: jobs, metric: app_queue_depth }] }\n  - { name: shard-b, kind: redis, url: 'redis://b:6379', keys: [{ key: jobs, metric: app_queue_depth }] }\n",
            &["sources[1].keys[0]: sources[0].keys[0] also publishes `app_queue_depth`"],
        );
    }

    #[test]
    fn a_template_reports_its_errors_at_its_own_place() {
        assert_reports(
            "templates:\n  - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'], keys: [{ kye: x }] }\n",
            &["templates[0].keys[0]"],
        );
        assert_reports(
            "sources: [{ name: fleet, kind: redis, url: 'redis://h' }]\ntemplates: [{ name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }]\n",
            &["templates[0].name: duplicate source name \"fleet\""],
        );
        assert_reports(
            "templates: {}\n",
            &["templates: must be a list of templates"],
        );
        assert_reports(
            "templates: [3]\n",
            &["templates[0]: must be a mapping of fields"],
        );
        assert_reports(
            "global: { max_leased_targets: 0 }\nsources: []\n",
            &["global.max_leased_targets"],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS: &str = "kind: redis, url: 'redis://127.0.0.1:6379'";

    /// A misspelt field, top-level key or kind is answered with the name meant; a YAML
    /// syntax error with the key it stopped in and the likely fix.
    #[test]
    fn near_misses_are_answered_with_the_name_meant() {
        assert_reports(
            "sources:\n  - name: db\n    kind: postgres\n    url: postgres://h/db\n    checks:\n      - { metric: app_users, sql: SELECT 1 AS value, lables: [plan] }\n",
            &["sources[0].checks[0].lables: unknown field `lables`", "did you mean `labels`?"],
        );
        assert_reports("sourcse: []\n", &["did you mean `sources`?"]);
        assert_reports(
            "sources:\n  - { name: db, kind: postgress, url: 'postgres://h/db' }\n",
            &["unknown source kind \"postgress\": did you mean \"postgres\"?"],
        );
        assert_reports(
            "sources:\n  - name: db\n\tkind: postgres\n",
            &["invalid YAML", "indent with spaces"],
        );
    }

    #[test]
    fn a_valid_file_loads_with_its_defaults() {
        let c = load_str(&format!(
            "sources:\n  - {{ name: cache, {REDIS}, keys: [{{ key: q }}] }}"
        ))
        .unwrap();
        assert_eq!(c.global, Global::default());
        let s = &c.sources[0];
        assert_eq!((s.path.as_str(), s.kind.name()), ("sources[0]", "redis"));
        let plan = &s.plans.checks[0];
        assert_eq!(plan.check, "q");
        assert_eq!(plan.interval, std::time::Duration::from_secs(60));
        assert_eq!(plan.stale_after, std::time::Duration::from_secs(180));
        assert_eq!(
            load_str("sources: []").unwrap().sources.len(),
            0,
            "no sources, said explicitly, is no error"
        );
    }

    #[test]
    fn empty_unbounded_and_special_files_are_refused() {
        for text in ["", "\n\n", "# only a comment\n"] {
            assert_reports(text, &["the config file is empty"]);
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yml");
        let mut text = String::from("sources: []\n");
        text.push_str(&"#".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(&big, text).unwrap();
        assert!(read_file(&big).unwrap_err().contains("is over 4 MiB"));
        assert!(read_file(Path::new("/dev/zero"))
            .unwrap_err()
            .contains("is not a regular file"));
        assert!(read_file(dir.path())
            .unwrap_err()
            .contains("is not a regular file"));
        let bad = dir.path().join("latin1.yml");
        std::fs::write(&bad, b"sources: []\n# caf\xe9\n").unwrap();
        assert!(read_file(&bad).unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn a_sources_discovery_labels_are_short_and_not_empty() {
        let long = "x".repeat(65);
        assert_reports(
            &format!("sources:\n  - {{ name: c, kind: redis, url: 'redis://h', tier: '', platform: {long} }}\n"),
            &[
                "sources[0].tier: a label of the source's /sd target: 1 to 64 characters",
                "sources[0].platform: a label of the source's /sd target",
            ],
        );
    }

    #[test]
    fn the_file_and_its_sections_must_have_the_right_shape() {
        assert_reports(
            "[1, 2]",
            &["the file must be a mapping with `global:` and `sources:`"],
        );
        assert_reports("sources: {}", &["sources: must be a list of sources"]);
        assert_reports(
            "sources: [42]",
            &["sources[0]: must be a mapping of fields"],
        );
        assert_reports("a: [", &["invalid YAML"]);
        let long = "x".repeat(5000);
        assert_reports(
            &format!("sources:\n  - {{ name: c, kind: redis, url: 'redis://h', keys: [{{ key: k, metric: app_k, help: {long}, const_labels: {{ team: {long} }} }}] }}"),
            &[
                "sources[0].keys[0].help: is 5000 bytes: at most 4096",
                "sources[0].keys[0].const_labels.team: is 5000 bytes: at most 256",
            ],
        );
        assert_reports(
            "sources:\n  - { name: x, kind: mysql }",
            &["sources[0].kind: unknown source kind \"mysql\": use one of "],
        );
    }

    #[test]
    fn unknown_fields_are_errors_at_every_level() {
        assert_reports(
            &format!(
                "globl: {{}}\nglobal: {{ intervall: 1m }}\nsources:\n  - {{ name: c, {REDIS}, colour: red, keys: [{{ key: q, lable: x }}] }}"
            ),
            &[
                "unknown field `globl`: the top level takes `global`, `sources`, `templates`, `jobs`, `job_keys` and `job_store`",
                "global.intervall: unknown field `intervall`, expected one of `interval`",
                "sources[0].colour: unknown field `colour`, expected one of `url`, `tls`, `latency`",
                "sources[0].keys[0].lable: unknown field `lable`, expected one of `key`",
            ],
        );
    }

    #[test]
    fn durations_are_written_with_a_unit() {
        assert_reports(
            "global: { interval: 60 }",
            &[
                "global.interval: invalid duration \"60\"",
                "e.g. 500ms, 15s, 5m, 1h",
            ],
        );
    }

    #[test]
    fn timing_that_contradicts_itself_is_named() {
        assert_reports(
            &format!(
                "global: {{ interval: 10s, timeout: 10s, health_timeout: 0s }}\nsources:\n  - {{ name: c, {REDIS}, keys: [{{ key: a, interval: 500ms, timeout: 100ms }}, {{ key: b, stale_after: 5s }}] }}"
            ),
            &[
                "global.timeout: timeout 10s must be shorter than the interval 10s",
                "global.health_timeout: must be greater than 0",
                "sources[0].keys[0].interval: 500ms is too short: use at least 1s",
                "sources[0].keys[1].stale_after: must be at least the check's interval",
            ],
        );
    }

    #[test]
    fn series_caps_are_at_least_one() {
        assert_reports(
            &format!(
                "global: {{ max_series: 0 }}\nsources:\n  - {{ name: c, {REDIS}, keys: [{{ key: a, max_series: 0 }}] }}"
            ),
            &[
                "global.max_series: must be at least 1",
                "sources[0].keys[0].max_series: must be at least 1",
            ],
        );
    }

    #[test]
    fn source_and_check_names_are_valid_and_unique() {
        assert_reports(
            &format!(
                "sources:\n  - {{ name: 'bad name', {REDIS} }}\n  - {{ name: c, {REDIS} }}\n  - {{ name: c, {REDIS}, keys: [{{ key: q }}, {{ key: q }}, {{ key: h, name: health }}] }}"
            ),
            &[
                "sources[0].name: \"bad name\" is not a valid source name",
                "sources[2].name: duplicate source name \"c\"",
                "sources[2].keys[1].name: duplicate check name \"q\" in source \"c\"",
                "sources[2].keys[2].name: `health` is the name of every source's built-in health probe",
            ],
        );
    }

    #[test]
    fn metric_and_label_names_follow_prometheus_and_spare_the_reserved_ones() {
        assert_reports(
            &format!(
                "sources:\n  - {{ name: c, {REDIS}, keys: [{{ key: a, metric: 'app-depth' }}, {{ key: b, metric: pulse_mine }}, {{ key: d, metric: app_d, const_labels: {{ source: x, 'bad-label': y }} }}] }}"
            ),
            &[
                "sources[0].keys[0].metric: \"app-depth\" is not a valid Prometheus metric name",
                "sources[0].keys[1].metric: \"pulse_mine\" uses the `pulse_` prefix, which is reserved",
                "sources[0].keys[2].const_labels: label \"source\" is reserved",
                "sources[0].keys[2].const_labels: \"bad-label\" is not a valid Prometheus label name",
            ],
        );
    }

    #[test]
    fn a_check_without_name_or_metric_is_reported_once() {
        let errors = errors_of(
            "sources:\n  - { name: db, kind: postgres, url: 'postgres://127.0.0.1/x', checks: [{ sql: 'select 1' }] }",
        );
        assert!(
            errors.contains("sources[0].checks[0].metric: required"),
            "{errors}"
        );
        assert!(!errors.contains(".name:"), "{errors}");
        assert!(errors.starts_with("1 config error(s):"), "{errors}");
    }

    #[test]
    fn every_bound_is_enforced_at_load_and_extremes_never_panic() {
        assert_reports(
            &format!(
                "global: {{ interval: 6200000000000000000s }}\nsources:\n  - {{ name: c, {REDIS}, health_interval: 8d, keys: [{{ key: a, interval: 8d, timeout: 1m, scan_count: 100001 }}] }}"
            ),
            &[
                "global.interval: duration \"6200000000000000000s\" is longer than a year: use at most 365d",
                "sources[0].health_interval: 8days is too long: use at most 7d",
                "sources[0].keys[0].interval: 8days is too long: use at most 7d",
                "sources[0].keys[0].scan_count: 100001 is too large: use at most 100000",
            ],
        );
        assert_reports(
            "global: { max_series: 2000000 }",
            &["global.max_series: 2000000 is too large: use at most 1000000"],
        );
        for huge in [
            "18446744073709551615s",
            "99999999999999999999999h",
            "-5s",
            "1e309s",
        ] {
            let errors = errors_of(&format!("global: {{ timeout: '{huge}' }}"));
            assert!(errors.contains("global.timeout: "), "{huge}: {errors}");
        }
        // The kinds' counts are bounded too.
        assert_reports(
            "sources:\n  - { name: p, kind: postgres, url: 'postgres://h/db', max_connections: 101 }\n  - { name: s, kind: stripe, api_key: k, max_pages: 1001 }\n  - { name: b, kind: s3, bucket: b, prefixes: [{ prefix: a, max_pages: 10001 }] }\n  - { name: r, kind: rabbitmq, management_url: 'http://r:15672', username: u, password: p, max_queues: 100001 }",
            &[
                "sources[0].max_connections: 101 is too large: use at most 100",
                "sources[1].max_pages: 1001 is too large: use at most 1000",
                "sources[2].prefixes[0].max_pages: 10001 is too large: use at most 10000",
                "sources[3].max_queues: 100001 is too large: use at most 100000",
            ],
        );
    }

    #[test]
    fn errors_say_where_the_field_is_in_the_file() {
        let errors = errors_of(
            "global:\n  interval: 1m\nsources:\n  - name: c\n    kind: redis\n    url: 'redis://127.0.0.1'\n    keys:\n      - key: a\n        metric: pulse_a\n",
        );
        assert!(
            errors.contains("sources[0].keys[0].metric: \"pulse_a\" uses the `pulse_` prefix, which is reserved for built-in metrics: use your own prefix such as `app_` (line 9, column 9)"),
            "{errors}"
        );
        // A field the file lacks is placed at the mapping that should hold it.
        let errors =
            errors_of("sources:\n  - name: m\n    kind: mongodb\n    url: 'mongodb://h:27017'\n");
        assert!(errors.contains("sources[0].database: name the database, here or in the URL's path (line 2, column 5)"), "{errors}");
    }

    #[test]
    fn every_error_of_a_file_is_reported_together() {
        let errors = errors_of(&format!(
            "colour: red\nsources:\n  - {{ name: 'x y', {REDIS}, keys: [{{ key: a, metric: pulse_a }}] }}"
        ));
        assert!(errors.starts_with("3 config error(s):"), "{errors}");
    }
}
