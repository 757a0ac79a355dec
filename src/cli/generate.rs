//! `pulse-exporter dashboards`, `rules`, `scrape-config` and `config-schema`: the generated
//! Grafana dashboard, alerting rules and scrape jobs of a config, and the config's own JSON
//! Schema, to a file or stdout.

use pulse_exporter::generate::slo_formats::{self, Format};
use std::process::ExitCode;

use pulse_exporter::config;

use pulse_exporter::generate::bundle::{Selection, RULE_FILES};

use super::{DashboardArgs, OutputArgs, ScrapeArgs, SelectionArgs};

/// `dashboards`: the dashboard of `config`, to `--output` or stdout.
pub(crate) fn dashboards(
    args: &DashboardArgs,
    path: &std::path::Path,
    config: &config::Config,
) -> ExitCode {
    use pulse_exporter::generate::dashboards::from_config as dashboard;
    let mut options = dashboard::Options::for_file(path);
    if let Some(uid) = &args.uid {
        if uid.is_empty() || uid.len() > 40 {
            eprintln!("error: --dashboard.uid must be 1 to 40 characters (Grafana's limit)");
            return ExitCode::from(2);
        }
        options.uid = uid.clone();
    }
    if let Some(title) = &args.title {
        options.title = title.clone();
    }
    options.selection = match selection(&args.selection) {
        Ok(s) => s,
        Err(code) => return code,
    };
    write_output(&args.out, &dashboard::render(config, &options))
}

/// `scrape-config`: the Prometheus job scraping each source of `config` through `/probe`.
pub(crate) fn scrape_config(args: &ScrapeArgs, config: &config::Config) -> ExitCode {
    use pulse_exporter::generate::scrape;
    if let Some(bad) = args.exporters.iter().find(|e| !is_host_port(e)) {
        eprintln!("error: --exporter {bad:?} is not host:port (e.g. pulse-exporter-0.pulse:7857)");
        return ExitCode::from(2);
    }
    let mut targets = std::collections::BTreeMap::new();
    for given in &args.targets {
        let known = |t: &str| config.templates.iter().any(|k| k.template.name == t);
        match given.split_once('=') {
            Some((template, sd)) if known(template) && !sd.is_empty() => {
                targets.insert(template.to_owned(), sd.to_owned());
            }
            Some((template, _)) if !known(template) => {
                let names: Vec<&str> = config
                    .templates
                    .iter()
                    .map(|t| t.template.name.as_str())
                    .collect();
                eprintln!(
                    "error: --targets {given:?}: the config has no template {template:?} (it has: {})",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                );
                return ExitCode::from(2);
            }
            _ => {
                eprintln!("error: --targets {given:?} is not TEMPLATE=URL or TEMPLATE=PATH");
                return ExitCode::from(2);
            }
        }
    }
    let prometheus_shard = match (args.prometheus_shard, args.prometheus_shards) {
        (Some(i), Some(n)) if n > 0 && i < n => Some((i, n)),
        (Some(i), Some(n)) => {
            eprintln!("error: --prometheus.shard {i} is not below --prometheus.shards {n} (shards count from 0)");
            return ExitCode::from(2);
        }
        _ => None,
    };
    let options = scrape::Options {
        exporters: args.exporters.clone(),
        scheme: args.scheme.clone(),
        job: args.job.clone(),
        targets,
        prometheus_shard,
    };
    if args.format == "operator" {
        let mut labels = std::collections::BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "pulse-exporter".to_owned(),
        )]);
        for given in &args.labels {
            match given.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    labels.insert(name.to_owned(), value.to_owned());
                }
                _ => {
                    eprintln!("error: --label {given:?} is not NAME=VALUE");
                    return ExitCode::from(2);
                }
            }
        }
        return write_output(
            &args.out,
            &scrape::render_operator(config, &options, &labels),
        );
    }
    write_output(&args.out, &scrape::render(config, &options))
}

/// `host:port`, a port of digits and a host without a scheme, path or space.
fn is_host_port(address: &str) -> bool {
    address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(['/', ' ', '@', '?', '#'])
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// The selection `--selector` and `--cluster-label` ask for; exit 2 naming the flag when
/// one cannot be used.
pub(crate) fn selection(args: &SelectionArgs) -> Result<Selection, ExitCode> {
    Selection::new(&args.selector, args.cluster_label.as_deref()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// `rules`: the alerting rules of `config` (or its objectives in an SLO tool's format), to
/// `--output` or stdout.
pub(crate) fn rules(
    out: &OutputArgs,
    format: Format,
    config: &config::Config,
    selection: &Selection,
) -> ExitCode {
    let text = match format {
        Format::Rules => pulse_exporter::generate::rules::rules(config, selection),
        Format::Pyrra => slo_formats::pyrra(config, selection),
        Format::Sloth => slo_formats::sloth(config, selection),
    };
    write_output(out, &text)
}

/// `bundle-rules`: the bundle's rule files for `selection`, into `dir`.
pub(crate) fn bundle_rules(dir: &std::path::Path, selection: &Selection) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for file in RULE_FILES {
        let path = dir.join(file.name());
        if let Err(e) = std::fs::write(&path, file.render(selection)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

/// `bundle-dashboards`: the bundle's dashboards for `selection`, into `dir`.
pub(crate) fn bundle_dashboards(dir: &std::path::Path, selection: &Selection) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (file, text) in pulse_exporter::generate::dashboards::bundle::render(selection) {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

/// `config-schema`: the JSON Schema of the config file, to `--output` or stdout.
pub(crate) fn config_schema(out: &OutputArgs) -> ExitCode {
    let schema = pulse_exporter::reference::schema::config_schema();
    let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    write_output(out, &format!("{text}\n"))
}

/// `text` to `--output`, or stdout without it.
fn write_output(out: &OutputArgs, text: &str) -> ExitCode {
    match &out.output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(out) => match std::fs::write(out, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", out.display());
                ExitCode::FAILURE
            }
        },
    }
}
