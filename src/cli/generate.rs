//! `pulse-exporter dashboards` and `rules`: the generated Grafana dashboard and alerting
//! rules of a config, to a file or stdout.

use std::process::ExitCode;

use pulse_exporter::configfile;

use super::{DashboardArgs, OutputArgs};

/// `dashboards`: the dashboard of `config`, to `--output` or stdout.
pub(crate) fn dashboards(
    args: &DashboardArgs,
    path: &std::path::Path,
    config: &configfile::Config,
) -> ExitCode {
    use pulse_exporter::generate::dashboard;
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
    write_output(&args.out, &dashboard::render(config, &options))
}

/// `rules`: the alerting rules of `config`, to `--output` or stdout.
pub(crate) fn rules(out: &OutputArgs, config: &configfile::Config) -> ExitCode {
    write_output(out, &pulse_exporter::generate::rules::rules(config))
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
