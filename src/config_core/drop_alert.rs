//! `drop:` of a check: the drop-against-usual alert of a business signal (signups, payments,
//! requests), whose swing between night and day and between weekdays and weekends no fixed
//! threshold can follow. This module holds the field, its defaults and what is wrong with
//! it on its own; `crate::generate::rules` writes the alert.

use std::time::Duration;

use serde::Deserialize;

use super::display::Severity;
use super::Dur;

/// `drop:` of a check: an alert in the generated rules when the check's value falls far below
/// what the same time usually shows. The usual is the median of the values one `period` ago,
/// two periods ago, … up to `periods` ago (the same hour of the last four weeks, by default),
/// once two of them are known; the alert fires while the value stays under `ratio` × the
/// usual, and only while the usual is at least `min_usual`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropAlert {
    /// Fire while the value is under this share of the usual, between 0 and 1 (default 0.5:
    /// under half). Lower it for a signal with holidays or campaigns that move it a lot.
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// The smallest usual value that is judged (default 20): at a quieter time (a night, a
    /// young platform) a fall from 4 to 1 is noise, and nothing fires.
    #[serde(default = "default_min_usual")]
    pub min_usual: f64,
    /// For a `_total` counter: the window its increase is taken over (default 1h). A gauge is
    /// compared as it is (a query that counts over its own window, such as signups in the
    /// last hour): leave this out.
    pub window: Option<Dur>,
    /// When the same time comes round again (default 1w: the same hour of the week, so that
    /// weekends compare with weekends; 1d for a signal without a weekly rhythm).
    #[serde(default = "default_period")]
    pub period: Dur,
    /// How many periods back the usual looks, from 2 to 8 (default 4): their median, so one
    /// holiday among them moves it little. Prometheus must keep `periods` × `period` of data.
    #[serde(default = "default_periods")]
    pub periods: u32,
    /// How long the value must stay under before the alert fires (default 15m).
    #[serde(rename = "for", default = "default_for")]
    pub for_: Dur,
    /// `warning` (default) or `critical`: a business signal warns unless a team opts in to be
    /// paged for it.
    #[serde(default)]
    pub severity: Severity,
}

fn default_ratio() -> f64 {
    0.5
}

fn default_min_usual() -> f64 {
    20.0
}

fn default_period() -> Dur {
    Dur(Duration::from_secs(7 * 86400))
}

fn default_periods() -> u32 {
    4
}

fn default_for() -> Dur {
    Dur(Duration::from_secs(900))
}

/// The counter window of a drop alert when none is set.
pub const DEFAULT_DROP_WINDOW: Duration = Duration::from_secs(3600);

/// The fewest periods whose values make a usual: one alone would be whatever happened then.
pub const MIN_KNOWN_PERIODS: u32 = 2;

impl DropAlert {
    /// What is wrong with the alert on its own (its fit to the check's metric is checked where
    /// the metric is known), with the field to fix.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if !(self.ratio > 0.0 && self.ratio < 1.0) {
            return Some((
                "ratio",
                "must be a share between 0 and 1: 0.5 fires under half the usual",
            ));
        }
        if !self.min_usual.is_finite() || self.min_usual < 0.0 {
            return Some(("min_usual", "must be a number of 0 or more"));
        }
        if !(MIN_KNOWN_PERIODS..=8).contains(&self.periods) {
            return Some((
                "periods",
                "must be from 2 to 8: the usual is the median of that many past periods",
            ));
        }
        if self.period.0 < Duration::from_secs(60) {
            return Some((
                "period",
                "must be at least 1m: the time after which the signal's rhythm repeats (1w, 1d)",
            ));
        }
        if let Some(w) = self.window {
            if w.0 < Duration::from_secs(60) {
                return Some((
                    "window",
                    "must be at least 1m: an increase needs several scrapes",
                ));
            }
            if w.0 > self.period.0 {
                return Some((
                    "window",
                    "must not be longer than `period`: the windows compared would overlap",
                ));
            }
        }
        None
    }
}

/// `d` as a PromQL duration, in weeks or days where it is whole ones (`1w` reads better in a
/// rule than `168h`).
pub fn promql_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => super::dur_text(d),
        _ if d.subsec_nanos() == 0 && secs.is_multiple_of(7 * 86400) => {
            format!("{}w", secs / (7 * 86400))
        }
        _ if d.subsec_nanos() == 0 && secs.is_multiple_of(86400) => format!("{}d", secs / 86400),
        _ => super::dur_text(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> DropAlert {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_defaults_compare_the_same_hour_of_the_last_four_weeks() {
        let d = parse("{}");
        assert_eq!((d.ratio, d.min_usual, d.periods), (0.5, 20.0, 4));
        assert_eq!(promql_duration(d.period.0), "1w");
        assert_eq!(d.for_.0.as_secs(), 900);
        assert_eq!((d.window, d.severity), (None, Severity::Warning));
        assert_eq!(d.problem(), None);
        // Short ones for a live test are allowed.
        assert_eq!(
            parse("{ period: 1m, periods: 2, for: 10s }").problem(),
            None
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |y: &str| parse(y).problem().map(|(f, _)| f);
        assert_eq!(field("{ ratio: 1.5 }"), Some("ratio"));
        assert_eq!(field("{ ratio: 0 }"), Some("ratio"));
        assert_eq!(field("{ ratio: .nan }"), Some("ratio"));
        assert_eq!(field("{ min_usual: -1 }"), Some("min_usual"));
        assert_eq!(field("{ periods: 1 }"), Some("periods"));
        assert_eq!(field("{ periods: 9 }"), Some("periods"));
        assert_eq!(field("{ period: 30s }"), Some("period"));
        assert_eq!(field("{ window: 30s }"), Some("window"));
        assert_eq!(field("{ window: 2d, period: 1d }"), Some("window"));
        assert!(serde_yaml::from_str::<DropAlert>("{ ratio: 0.5, below: 3 }").is_err());
        assert!(serde_yaml::from_str::<DropAlert>("{ severity: page }").is_err());
    }

    #[test]
    fn durations_read_as_weeks_and_days_where_whole() {
        let d = |s: u64| promql_duration(Duration::from_secs(s));
        assert_eq!(d(14 * 86400), "2w");
        assert_eq!(d(86400), "1d");
        assert_eq!(d(3600), "1h");
        assert_eq!(d(90), "90s");
        assert_eq!(d(8 * 86400), "8d");
    }
}
