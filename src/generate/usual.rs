//! The PromQL of a check's `drop:` (a drop-against-usual alert): its value now and what the
//! same time usually shows, written once for the rule that alerts on them and the panel that
//! draws them.
//!
//! Periods of whole days compare local times: where the exporter publishes the platform's UTC
//! offset (`global.timezone`, `pulse_timezone_offset_seconds`), a past period across a
//! daylight-saving change is read an hour further back or less far, as the bundle's business
//! rules do, so that 08:00 is compared with 08:00.

use super::style::fold;
use super::{matchers, selector, CheckInfo};
use crate::config_core::drop_alert::{
    promql_duration, DropAlert, DEFAULT_DROP_WINDOW, MIN_KNOWN_PERIODS,
};
use crate::config_core::shape::{Series, Shape};
use crate::series::own_metrics::TIMEZONE_OFFSET;
use std::time::Duration;

/// Seconds in a day: periods of whole days compare local times.
const DAY: u64 = 86_400;

/// A series' value and its usual, for a drop alert.
pub struct Usual {
    /// The value now: a counter's increase over the window, or a gauge as it is.
    pub now: String,
    /// The median of the value one, two, … `periods` periods ago.
    pub usual: String,
    /// Non-empty while at least two of those past values are known.
    pub known: String,
    /// What `now` measures, for descriptions: "value" or "increase over 1h".
    pub measured: String,
}

/// The expressions of `drop` on `series` of `check`, each series of the metric on its own;
/// `extra` filters them (a dashboard's variables, a rule file's `--selector`), and `on` is
/// the label list that joins a series with its exporter's clock (`instance`, or with
/// `--cluster-label` the cluster first). None for a metric that is neither a counter nor a
/// gauge (validation admits no other).
pub fn usual(
    check: &CheckInfo<'_>,
    series: &Series,
    drop: &DropAlert,
    extra: Option<&str>,
    on: &str,
) -> Option<Usual> {
    let sel = selector(&series.metric, &matchers(check, series), extra);
    let window = promql_duration(drop.window.map_or(DEFAULT_DROP_WINDOW, |w| w.0));
    // The value `back` ago.
    let at = |back: Duration| {
        let offset = match back.is_zero() {
            true => String::new(),
            false => format!(" offset {}", promql_duration(back)),
        };
        match series.shape {
            Shape::Counter => Some(fold(&format!("increase({sel}[{window}]{offset})"))),
            Shape::Gauge => Some(fold(&format!("{sel}{offset}"))),
            _ => None,
        }
    };
    let value = |ago: u32| -> Option<String> {
        let back = drop.period.0 * ago;
        if ago == 0 || !back.as_secs().is_multiple_of(DAY) {
            return at(back);
        }
        let offset = match extra {
            Some(_) => selector(TIMEZONE_OFFSET.name, &[], extra),
            None => TIMEZONE_OFFSET.name.to_owned(),
        };
        let shift = format!(
            "({} - {})",
            fold(&offset),
            fold(&format!("{offset} offset {}", promql_duration(back)))
        );
        let hour = Duration::from_secs(3600);
        Some(format!(
            "(\n    {} unless on ({on}) {shift} != 0\n    or {} and on ({on}) {shift} == -3600\n    or {} and on ({on}) {shift} == 3600\n  )",
            at(back)?,
            at(back + hour)?,
            at(back - hour)?,
        ))
    };
    let mut past = Vec::new();
    for ago in 1..=drop.periods {
        past.push(format!(
            "label_replace({}, \"periods_ago\", \"{ago}\", \"\", \"\")",
            value(ago)?
        ));
    }
    let past = past.join("\n  or ");
    Some(Usual {
        now: value(0)?,
        usual: format!("quantile without (periods_ago) (0.5,\n  {past}\n)"),
        known: format!("count without (periods_ago) (\n  {past}\n) >= {MIN_KNOWN_PERIODS}"),
        measured: match series.shape {
            Shape::Counter => format!("increase over {window}"),
            _ => "value".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_is_the_median_of_the_same_time_in_past_periods_each_series_apart() {
        let config = crate::config::load_str(
            "sources:\n  - name: db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - { metric: app_signups_1h, sql: 'SELECT 1 AS value', const_labels: { app: web }, drop: { periods: 2, period: 1d } }\n",
        )
        .unwrap();
        let checks = super::super::checks(&config);
        let c = &checks[0];
        let drop = c.common.drop.clone().unwrap();
        // A gauge is compared as it is, each series on its own (here the one of `app="web"`).
        let u = usual(
            c,
            &c.series[0],
            &drop,
            Some("instance=~\"$instance\""),
            "instance",
        )
        .unwrap();
        assert_eq!(
            u.now,
            "max without (pod) (app_signups_1h{app=\"web\", instance=~\"$instance\"})"
        );
        // Two days back, or an hour further or less far across a daylight-saving change of
        // the platform's clock.
        for branch in [
            "max without (pod) (app_signups_1h{app=\"web\", instance=~\"$instance\"} offset 2d) unless on (instance) (max without (pod) (pulse_timezone_offset_seconds{instance=~\"$instance\"}) - max without (pod) (pulse_timezone_offset_seconds{instance=~\"$instance\"} offset 2d)) != 0",
            "or max without (pod) (app_signups_1h{app=\"web\", instance=~\"$instance\"} offset 49h) and on (instance) (",
            ") == -3600",
            "or max without (pod) (app_signups_1h{app=\"web\", instance=~\"$instance\"} offset 47h) and on (instance) (",
        ] {
            assert!(u.usual.contains(branch), "{branch}\n{}", u.usual);
        }
        assert!(u.usual.contains("\"periods_ago\", \"2\""), "{}", u.usual);
        assert_eq!(u.measured, "value");
        // A counter (a log file's) by its increase over the window.
        let drop = DropAlert {
            window: Some(crate::config_core::Dur(std::time::Duration::from_secs(
                7200,
            ))),
            ..drop
        };
        let counter = Series::new("app_signups_total", Vec::new(), Shape::Counter);
        let u = usual(c, &counter, &drop, None, "instance").unwrap();
        assert_eq!(
            u.now,
            "max without (pod) (increase(app_signups_total{app=\"web\"}[2h]))"
        );
        let shift = "(max without (pod) (pulse_timezone_offset_seconds) - max without (pod) (pulse_timezone_offset_seconds offset 1d))";
        assert!(
            u.usual.starts_with(&format!(
                "quantile without (periods_ago) (0.5,\n  label_replace((\n    max without (pod) (increase(app_signups_total{{app=\"web\"}}[2h] offset 1d)) unless on (instance) {shift} != 0\n    or max without (pod) (increase(app_signups_total{{app=\"web\"}}[2h] offset 25h)) and on (instance) {shift} == -3600\n"
            )),
            "{}",
            u.usual
        );
        assert!(u.known.ends_with(") >= 2"), "{}", u.known);
        assert_eq!(u.measured, "increase over 2h");
        // A period shorter than a day compares with the time just before: no clock change.
        let hourly = DropAlert {
            period: crate::config_core::Dur(std::time::Duration::from_secs(3600)),
            window: None,
            ..drop
        };
        let u = usual(c, &counter, &hourly, None, "instance").unwrap();
        assert!(
            !u.usual.contains("pulse_timezone_offset_seconds"),
            "{}",
            u.usual
        );
    }
}
